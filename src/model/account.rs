//! Accounts and sessions.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct User {
    pub id: Uuid,
    pub email: String,
    pub created_at: DateTime<Utc>,
}

/// Returned by register and login: the user and, for API clients, the bearer token.
/// Browsers get the same token as an HttpOnly cookie and can ignore it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct AuthSession {
    pub user: User,
    pub access_token: String,
    pub token_type: String,
    pub expires_in: i64,
}

/// What the sign-in server functions return. `access_token` is there for callers on another
/// origin and for non-browser callers (send it as `Authorization: Bearer`); our own pages keep
/// the session in an HttpOnly cookie and get no token.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct SignedIn {
    pub user: User,
    pub access_token: Option<String>,
    /// Seconds the session lasts.
    pub expires_in: i64,
}

/// Never prints the token.
impl std::fmt::Debug for SignedIn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignedIn")
            .field("user", &self.user)
            .field("access_token", &self.access_token.as_ref().map(|_| "…"))
            .field("expires_in", &self.expires_in)
            .finish()
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct Credentials {
    #[cfg_attr(feature = "ssr", schema(min_length = 3, max_length = 254, format = Email, example = "you@example.com"))]
    pub email: String,
    /// 8..1024 characters, no NUL character.
    #[cfg_attr(
        feature = "ssr",
        schema(min_length = 8, max_length = 1024, pattern = r"^[^\x00]*$")
    )]
    pub password: String,
}
