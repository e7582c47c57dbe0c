//! One request context for every interface (REST, server functions, ChatKit, MCP): who the
//! caller is (user and session, from the bearer header or the session cookie) and the one
//! write check that every state-changing operation passes. The write allowance is the user's,
//! shared by all interfaces and all replicas (`rate_limit`).

use std::sync::Arc;

use axum::{
    extract::{FromRef, FromRequestParts},
    http::{request::Parts, HeaderMap},
};

use super::{
    auth::AuthUser,
    error::{AppError, AppResult},
    rate_limit::Limits,
    sessions::Sessions,
    state::AppState,
};

/// The caller of one request, and its limits.
#[derive(Clone)]
pub struct RequestContext {
    pub user: AuthUser,
    limits: Arc<Limits>,
}

impl RequestContext {
    /// The signed-in caller of a request with these headers, or 401.
    pub async fn of(
        sessions: &Sessions,
        limits: &Arc<Limits>,
        headers: &HeaderMap,
    ) -> AppResult<Self> {
        let user = sessions.authenticate(headers).await?;
        Ok(Self::for_user(user, limits))
    }

    /// The context of an already authenticated caller.
    pub fn for_user(user: AuthUser, limits: &Arc<Limits>) -> Self {
        Self {
            user,
            limits: limits.clone(),
        }
    }

    /// The write check: 429 with `Retry-After` once the caller's write allowance is used up.
    pub async fn write(&self) -> AppResult<()> {
        self.limits.writes_by_user.check(&self.user.id).await
    }
}

/// Any state that hands out the sessions and the limits builds the context of a request.
impl<S> FromRequestParts<S> for RequestContext
where
    S: Send + Sync,
    AppState: FromRef<S>,
{
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let state = AppState::from_ref(state);
        Self::of(&state.sessions, &state.limits, &parts.headers).await
    }
}
