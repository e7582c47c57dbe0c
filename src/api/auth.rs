//! Account server functions (`/sfn/auth/*`). They set the same HttpOnly cookie as REST and,
//! when posted by a plain HTML form (no JavaScript), redirect like a classic web app.

use super::declare::server_fns;

use crate::model::{AccountSettings, ApiError, ApprovalPolicy, SignedIn, User};

server_fns! {
    prefix = "/sfn/auth";

    /// Register and sign in.
    #[endpoint = "register", name = Register]
    pub async fn register(email: String, password: String) -> Result<SignedIn, ApiError> {
        use super::ssr::*;
        use crate::{model::Credentials, server::services::users};
        let state = state()?;
        let session = users::register(&state, client_ip().await, Credentials { email, password })
            .await
            .map_err(fail)?;
        start_session(&state, session).await
    }

    /// Sign in.
    #[endpoint = "login", name = Login]
    pub async fn login(email: String, password: String) -> Result<SignedIn, ApiError> {
        use super::ssr::*;
        use crate::{model::Credentials, server::services::users};
        let state = state()?;
        let session = users::login(&state, client_ip().await, Credentials { email, password })
            .await
            .map_err(fail)?;
        start_session(&state, session).await
    }

    /// Sign out: ends the session on the server (the token stops working everywhere) and clears
    /// the cookie.
    #[endpoint = "logout", name = Logout]
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
        redirect_form_post("/login");
        Ok(())
    }

    /// Sign out everywhere: every session of the account ends, on every device. A plain form
    /// post is sent to the sign-in page.
    #[endpoint = "logout_everywhere", name = LogoutEverywhere]
    pub async fn logout_everywhere() -> Result<(), ApiError> {
        use super::ssr::*;
        use crate::server::auth::{cookie_secure, session_cookie_header};
        let (state, user) = writer().await?;
        state.sessions.revoke_all(user.id).await.map_err(fail)?;
        let headers = headers().await?;
        set_cookie(&session_cookie_header(
            None,
            state.jwt.ttl,
            cookie_secure(&state.config, &headers),
        ));
        redirect_form_post("/login");
        Ok(())
    }

    /// Delete the signed-in account with all its tasks and conversations; every session of it
    /// ends at once.
    #[endpoint = "delete_account", name = DeleteAccount]
    pub async fn delete_account() -> Result<(), ApiError> {
        use super::ssr::*;
        use crate::server::auth::{cookie_secure, session_cookie_header};
        let (state, user) = writer().await?;
        state.sessions.delete_account(user.id).await.map_err(fail)?;
        let headers = headers().await?;
        set_cookie(&session_cookie_header(
            None,
            state.jwt.ttl,
            cookie_secure(&state.config, &headers),
        ));
        redirect_form_post("/register");
        Ok(())
    }

    /// The account's settings (when the assistant asks before changing tasks).
    #[endpoint = "settings", name = GetAccountSettings]
    pub async fn get_account_settings() -> Result<AccountSettings, ApiError> {
        let (state, user) = super::ssr::authenticated().await?;
        crate::server::services::users::settings(&state.pool, user.id)
            .await
            .map_err(super::ssr::fail)
    }

    /// Change when the assistant asks before changing tasks. A plain form post is sent back
    /// to the settings page.
    #[endpoint = "update_settings", name = UpdateAccountSettings]
    pub async fn update_account_settings(
        approval_policy: ApprovalPolicy,
        time_zone: Option<String>,
    ) -> Result<AccountSettings, ApiError> {
        let (state, user) = super::ssr::writer().await?;
        // An empty field leaves the zone as it is.
        let time_zone = time_zone.filter(|z| !z.trim().is_empty());
        let settings = AccountSettings { approval_policy, time_zone };
        let saved = crate::server::services::users::update_settings(&state.pool, user.id, &settings)
            .await
            .map_err(super::ssr::fail)?;
        super::ssr::redirect_form_post("/settings?saved=1");
        Ok(saved)
    }

    /// Offers the browser's time zone (an IANA name): taken only while the account has none.
    /// Whether it was taken.
    #[endpoint = "adopt_time_zone", name = AdoptTimeZone]
    pub async fn adopt_time_zone(time_zone: String) -> Result<bool, ApiError> {
        let (state, user) = super::ssr::writer().await?;
        crate::server::services::users::adopt_time_zone(&state.pool, user.id, &time_zone)
            .await
            .map_err(super::ssr::fail)
    }

    /// The signed-in user, or `None`.
    #[endpoint = "me", name = CurrentUser]
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
}

/// Sets the session cookie and says who signed in. The token itself goes only to callers that
/// are not our own pages (see `server::auth::wants_token`): our pages keep it in the HttpOnly
/// cookie, out of reach of scripts. A plain HTML form post is sent on to the chat.
#[cfg(feature = "ssr")]
async fn start_session(
    state: &crate::server::state::AppState,
    session: crate::model::AuthSession,
) -> Result<SignedIn, ApiError> {
    use crate::server::auth::{cookie_secure, session_cookie_header, wants_token};
    let headers = super::ssr::headers().await?;
    set_cookie(&session_cookie_header(
        Some(&session.access_token),
        state.jwt.ttl,
        cookie_secure(&state.config, &headers),
    ));
    super::ssr::redirect_form_post("/chat");
    Ok(SignedIn {
        user: session.user,
        access_token: wants_token(&state.config, &headers).then_some(session.access_token),
        expires_in: session.expires_in,
    })
}

#[cfg(feature = "ssr")]
fn set_cookie(cookie: &str) {
    if let (Some(response), Ok(value)) = (
        leptos::prelude::use_context::<leptos_axum::ResponseOptions>(),
        cookie.parse(),
    ) {
        response.append_header(axum::http::header::SET_COOKIE, value);
    }
}
