//! `/api/auth/*`: register, login, logout, me.

use axum::{
    extract::State,
    http::{header, HeaderMap, StatusCode},
    response::{AppendHeaders, IntoResponse},
};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{ApiJson, ClientIp};
use crate::{
    model::{AuthSession, Credentials, User},
    server::{
        auth::{cookie_secure, session_cookie_header, AuthUser},
        error::AppResult,
        services::users,
        state::AppState,
    },
};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(register))
        .routes(routes!(login))
        .routes(routes!(logout))
        .routes(routes!(logout_everywhere))
        .routes(routes!(me, delete_me))
}

fn with_session_cookie(
    state: &AppState,
    headers: &HeaderMap,
    session: &AuthSession,
) -> AppendHeaders<[(header::HeaderName, String); 1]> {
    let cookie = session_cookie_header(
        Some(&session.access_token),
        state.jwt.ttl,
        cookie_secure(&state.config, headers),
    );
    AppendHeaders([(header::SET_COOKIE, cookie)])
}

/// Create an account. Sets the session cookie and returns a bearer token.
#[utoipa::path(post, path = "/api/auth/register", tag = "auth", request_body = Credentials, security(()),
    responses((status = 201, body = AuthSession), (status = 400), (status = 409), (status = 429)))]
async fn register(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    ApiJson(creds): ApiJson<Credentials>,
) -> AppResult<impl IntoResponse> {
    let session = users::register(&state, ip, creds).await?;
    Ok((
        StatusCode::CREATED,
        with_session_cookie(&state, &headers, &session),
        ApiJson(session),
    ))
}

/// Sign in. Sets the session cookie and returns a bearer token.
#[utoipa::path(post, path = "/api/auth/login", tag = "auth", request_body = Credentials, security(()),
    responses((status = 200, body = AuthSession), (status = 401), (status = 429)))]
async fn login(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    ApiJson(creds): ApiJson<Credentials>,
) -> AppResult<impl IntoResponse> {
    let session = users::login(&state, ip, creds).await?;
    Ok((
        with_session_cookie(&state, &headers, &session),
        ApiJson(session),
    ))
}

/// Sign out: the session ends on the server (its token, bearer or cookie, stops working on
/// every replica) and the cookie is cleared. Without a valid session it only clears the cookie.
#[utoipa::path(post, path = "/api/auth/logout", tag = "auth", security(()), responses((status = 204)))]
async fn logout(State(state): State<AppState>, headers: HeaderMap) -> AppResult<impl IntoResponse> {
    if let Ok(user) = state.sessions.authenticate(&headers).await {
        state.sessions.revoke(user.session).await?;
    }
    let cookie = session_cookie_header(None, state.jwt.ttl, cookie_secure(&state.config, &headers));
    Ok((
        StatusCode::NO_CONTENT,
        AppendHeaders([(header::SET_COOKIE, cookie)]),
    ))
}

/// Sign out everywhere: every session of the account ends (on every device and replica), this
/// one included, and the cookie is cleared.
#[utoipa::path(post, path = "/api/auth/logout-everywhere", tag = "auth", responses((status = 204), (status = 401)))]
async fn logout_everywhere(
    State(state): State<AppState>,
    user: AuthUser,
    headers: HeaderMap,
) -> AppResult<impl IntoResponse> {
    state.sessions.revoke_all(user.id).await?;
    let cookie = session_cookie_header(None, state.jwt.ttl, cookie_secure(&state.config, &headers));
    Ok((
        StatusCode::NO_CONTENT,
        AppendHeaders([(header::SET_COOKIE, cookie)]),
    ))
}

/// Delete the signed-in account with all its tasks and conversations. Every session of it
/// ends at once, on every replica.
#[utoipa::path(delete, path = "/api/auth/me", tag = "auth", responses((status = 204), (status = 401)))]
async fn delete_me(
    State(state): State<AppState>,
    user: AuthUser,
    headers: HeaderMap,
) -> AppResult<impl IntoResponse> {
    state.sessions.delete_account(user.id).await?;
    let cookie = session_cookie_header(None, state.jwt.ttl, cookie_secure(&state.config, &headers));
    Ok((
        StatusCode::NO_CONTENT,
        AppendHeaders([(header::SET_COOKIE, cookie)]),
    ))
}

/// The signed-in user.
#[utoipa::path(get, path = "/api/auth/me", tag = "auth", responses((status = 200, body = User), (status = 401)))]
async fn me(State(state): State<AppState>, user: AuthUser) -> AppResult<ApiJson<User>> {
    users::get(&state.pool, user.id).await.map(ApiJson)
}
