//! Account server functions (`/sfn/auth/*`). They set the same HttpOnly cookie as REST and,
//! when posted by a plain HTML form (no JavaScript), redirect like a classic web app.

use leptos::prelude::*;

use crate::model::{ApiError, User};

/// Register and sign in. Endpoint: `POST /sfn/auth/register`.
#[server(prefix = "/sfn/auth", endpoint = "register")]
pub async fn register(email: String, password: String) -> Result<User, ApiError> {
    use super::ssr::*;
    use crate::{model::Credentials, server::services::users};
    let state = state()?;
    let session = users::register(&state, client_ip().await, Credentials { email, password })
        .await
        .map_err(fail)?;
    start_session(&state, &session.access_token).await?;
    Ok(session.user)
}

/// Sign in. Endpoint: `POST /sfn/auth/login`.
#[server(prefix = "/sfn/auth", endpoint = "login")]
pub async fn login(email: String, password: String) -> Result<User, ApiError> {
    use super::ssr::*;
    use crate::{model::Credentials, server::services::users};
    let state = state()?;
    let session = users::login(&state, client_ip().await, Credentials { email, password })
        .await
        .map_err(fail)?;
    start_session(&state, &session.access_token).await?;
    Ok(session.user)
}

/// Sign out: ends the session on the server (the token stops working everywhere) and clears
/// the cookie. Endpoint: `POST /sfn/auth/logout`.
#[server(prefix = "/sfn/auth", endpoint = "logout")]
pub async fn logout() -> Result<(), ApiError> {
    use super::ssr::*;
    use crate::server::auth::{cookie_secure, session_cookie_header};
    let state = state()?;
    let headers = headers().await?;
    if let Ok(user) = state.sessions.authenticate(&headers).await {
        state.sessions.revoke(user.session).await.map_err(fail)?;
    }
    let cookie = session_cookie_header(None, state.jwt.ttl, cookie_secure(&state.config, &headers));
    set_cookie(&cookie);
    leptos_axum::redirect("/login");
    Ok(())
}

/// Delete the signed-in account with all its tasks and conversations; every session of it
/// ends at once. Endpoint: `POST /sfn/auth/delete_account`.
#[server(prefix = "/sfn/auth", endpoint = "delete_account")]
pub async fn delete_account() -> Result<(), ApiError> {
    use super::ssr::*;
    use crate::server::auth::{cookie_secure, session_cookie_header};
    let (state, user) = authenticated().await?;
    state.sessions.delete_account(user.id).await.map_err(fail)?;
    let headers = headers().await?;
    set_cookie(&session_cookie_header(
        None,
        state.jwt.ttl,
        cookie_secure(&state.config, &headers),
    ));
    Ok(())
}

/// The signed-in user, or `None`. Endpoint: `POST /sfn/auth/me`.
#[server(prefix = "/sfn/auth", endpoint = "me")]
pub async fn current_user() -> Result<Option<User>, ApiError> {
    use super::ssr::*;
    use crate::server::services::users;
    let state = state()?;
    let Ok(user) = state.sessions.authenticate(&headers().await?).await else {
        return Ok(None);
    };
    // A token for a user that no longer exists counts as signed out.
    Ok(users::get(&state.pool, user.id).await.ok())
}

#[cfg(feature = "ssr")]
async fn start_session(
    state: &crate::server::state::AppState,
    token: &str,
) -> Result<(), ApiError> {
    use crate::server::auth::{cookie_secure, session_cookie_header};
    let headers = super::ssr::headers().await?;
    set_cookie(&session_cookie_header(
        Some(token),
        state.jwt.ttl,
        cookie_secure(&state.config, &headers),
    ));
    leptos_axum::redirect("/chat");
    Ok(())
}

#[cfg(feature = "ssr")]
fn set_cookie(cookie: &str) {
    if let (Some(response), Ok(value)) = (
        use_context::<leptos_axum::ResponseOptions>(),
        cookie.parse(),
    ) {
        response.append_header(axum::http::header::SET_COOKIE, value);
    }
}
