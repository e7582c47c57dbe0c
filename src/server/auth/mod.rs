//! How a request proves who it is: `Authorization: Bearer` for API/MCP clients, an HttpOnly
//! cookie for browsers (with an Origin check on browser writes, `origin`); passwords
//! (`passwords`) and session tokens (`tokens`).

mod origin;
mod passwords;
mod tokens;

pub use origin::{origin_guard, wants_token};
pub use passwords::{hash_password, verify_password};
pub use tokens::{JwtKeys, TokenClaims};

use std::time::Duration;

use axum::http::{header, HeaderMap};
use uuid::Uuid;

use super::config::Config;

pub const SESSION_COOKIE: &str = "chatkit_session";

/// The token a request carries: the bearer header first, then the session cookie.
pub fn request_token(headers: &HeaderMap) -> Option<String> {
    if headers.contains_key(header::AUTHORIZATION) {
        return bearer_token(headers);
    }
    session_cookie(headers)
}

/// The token of an `Authorization: Bearer …` header (API and MCP clients).
pub fn bearer_token(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim().to_string())
}

pub(super) fn session_cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(cookie::Cookie::split_parse)
        .filter_map(Result::ok)
        .find(|c| c.name() == SESSION_COOKIE)
        .map(|c| c.value().to_string())
}

/// The `Set-Cookie` value that stores a session (or, with `None`, clears it).
pub fn session_cookie_header(token: Option<&str>, ttl: Duration, secure: bool) -> String {
    let mut builder =
        cookie::Cookie::build((SESSION_COOKIE, token.unwrap_or_default().to_string()))
            .http_only(true)
            .same_site(cookie::SameSite::Lax)
            .secure(secure)
            .path("/");
    builder = match token {
        Some(_) => builder.max_age(cookie::time::Duration::seconds(ttl.as_secs() as i64)),
        None => builder.max_age(cookie::time::Duration::ZERO),
    };
    builder.build().to_string()
}

/// Whether the session cookie should be `Secure`: configured, or the request came over https.
pub fn cookie_secure(config: &Config, headers: &HeaderMap) -> bool {
    config.cookie_secure
        || headers
            .get("x-forwarded-proto")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.eq_ignore_ascii_case("https"))
}

/// The authenticated user of a request (and the session it came with). Extracting it checks
/// the token and that its session is live; it fails with 401.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AuthUser {
    pub id: Uuid,
    pub session: Uuid,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_beats_cookie() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            "a=b; chatkit_session=from-cookie".parse().unwrap(),
        );
        assert_eq!(request_token(&headers).as_deref(), Some("from-cookie"));
        headers.insert(header::AUTHORIZATION, "Bearer from-header".parse().unwrap());
        assert_eq!(request_token(&headers).as_deref(), Some("from-header"));
    }
}
