//! Passwords (argon2id), session tokens (JWT, algorithm pinned, `exp` required), and how a
//! request proves who it is: `Authorization: Bearer` for API/MCP clients, an HttpOnly cookie
//! for browsers (with an Origin check on state changes, see `origin_guard`).

use std::{io::Write, path::Path, sync::Arc, time::Duration};

use anyhow::Context;
use argon2::{
    password_hash::{rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString},
    Argon2,
};
use axum::{
    extract::{Request, State},
    http::{header, HeaderMap, Method},
    middleware::Next,
    response::{IntoResponse, Response},
};
use jsonwebtoken::{decode, encode, Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{
    config::Config,
    error::{AppError, AppResult},
};

pub const SESSION_COOKIE: &str = "chatkit_session";

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    sub: Uuid,
    /// The server-side session (see `services::sessions`): revocable, shared by replicas.
    sid: Uuid,
    iat: i64,
    exp: i64,
}

/// What a valid token says: whose it is, and which session.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TokenClaims {
    pub user: Uuid,
    pub session: Uuid,
}

/// Signs and checks session tokens.
pub struct JwtKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    pub ttl: Duration,
}

impl JwtKeys {
    /// From `JWT_SECRET`, or the secret generated once into the data directory.
    pub fn from_config(config: &Config) -> anyhow::Result<Self> {
        let secret = match &config.jwt_secret {
            Some(secret) => secret.clone().into_bytes(),
            None => load_or_create_secret(&config.data_dir.join("jwt_secret"))?,
        };
        Ok(Self::new(&secret, config.jwt_ttl))
    }

    pub fn new(secret: &[u8], ttl: Duration) -> Self {
        // Only HS256 is accepted: `alg: none` and algorithm confusion fail validation.
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_required_spec_claims(&["exp", "sub", "iat"]);
        validation.leeway = 5;
        Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
            ttl,
        }
    }

    pub fn issue(&self, user_id: Uuid, session: Uuid) -> AppResult<String> {
        let now = chrono::Utc::now().timestamp();
        let claims = Claims {
            sub: user_id,
            sid: session,
            iat: now,
            exp: now + self.ttl.as_secs() as i64,
        };
        encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(|err| AppError::Internal(anyhow::anyhow!("signing a token: {err}")))
    }

    /// The claims of a well-signed, unexpired token; any defect is simply "unauthorized".
    /// Whether its session is still live is `Sessions::authenticate`'s question.
    pub fn verify(&self, token: &str) -> AppResult<TokenClaims> {
        decode::<Claims>(token, &self.decoding, &self.validation)
            .map(|data| TokenClaims {
                user: data.claims.sub,
                session: data.claims.sid,
            })
            .map_err(|_| AppError::Unauthorized)
    }
}

fn load_or_create_secret(path: &Path) -> anyhow::Result<Vec<u8>> {
    if let Ok(existing) = std::fs::read_to_string(path) {
        let existing = existing.trim();
        if existing.len() >= 32 {
            return Ok(existing.as_bytes().to_vec());
        }
    }
    use rand::RngCore;
    let mut bytes = [0u8; 48];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    let secret: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options
        .open(path)
        .with_context(|| format!("writing {}", path.display()))?;
    file.write_all(secret.as_bytes())?;
    tracing::info!(path = %path.display(), "generated a new JWT secret");
    Ok(secret.into_bytes())
}

pub async fn hash_password(password: String) -> AppResult<String> {
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::generate(&mut OsRng);
        Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map(|hash| hash.to_string())
            .map_err(|err| AppError::Internal(anyhow::anyhow!("hashing a password: {err}")))
    })
    .await
    .map_err(|err| AppError::Internal(err.into()))?
}

/// Verifies off the async threads: argon2id is deliberately slow.
pub async fn verify_password(password: String, hash: String) -> bool {
    tokio::task::spawn_blocking(move || {
        PasswordHash::new(&hash)
            .map(|parsed| {
                Argon2::default()
                    .verify_password(password.as_bytes(), &parsed)
                    .is_ok()
            })
            .unwrap_or(false)
    })
    .await
    .unwrap_or(false)
}

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

fn session_cookie(headers: &HeaderMap) -> Option<String> {
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

/// CSRF defence: a state-changing request not authenticated by a bearer header (which
/// browsers never add by themselves) must come from an allowed origin, this site itself or one
/// listed in `CORS_ALLOWED_ORIGINS`, when it carries the session cookie or a browser says where
/// it comes from. So another site can neither act with a visitor's session nor sign the
/// visitor's browser into an account of its choosing (login and register set the cookie).
/// Callers that are no browser (no cookie, no `Origin`) pass.
pub async fn origin_guard(
    State(config): State<Arc<Config>>,
    request: Request,
    next: Next,
) -> Response {
    let safe_method = matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS
    );
    let headers = request.headers();
    let bearer = headers.contains_key(header::AUTHORIZATION);
    let browser = session_cookie(headers).is_some() || request_origin(headers).is_some();
    if safe_method || bearer || !browser || origin_allowed(&config, headers) {
        return next.run(request).await;
    }
    AppError::Forbidden("cross-origin request refused: the Origin is not allowed".into())
        .into_response()
}

fn origin_allowed(config: &Config, headers: &HeaderMap) -> bool {
    request_origin(headers)
        .is_some_and(|origin| is_same_origin(headers, &origin) || config.allows_origin(&origin))
}

/// The origin a browser says a request comes from (`Origin`, else the `Referer`'s).
fn request_origin(headers: &HeaderMap) -> Option<String> {
    let origin = headers
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .or_else(|| {
            let referer = headers.get(header::REFERER)?.to_str().ok()?;
            let (scheme, rest) = referer.split_once("://")?;
            let authority = rest.split('/').next()?;
            Some(format!("{scheme}://{authority}"))
        })?;
    Some(origin.trim_end_matches('/').to_string())
}

/// Whether a sign-in should hand its bearer token to the caller: a caller that is no browser
/// (no `Origin`), or a page on one of `CORS_ALLOWED_ORIGINS` other than this site. Our own pages
/// never get it, even behind a proxy that rewrites `Host`: their origin is not in the list.
pub fn wants_token(config: &Config, headers: &HeaderMap) -> bool {
    request_origin(headers)
        .is_none_or(|origin| !is_same_origin(headers, &origin) && config.allows_origin(&origin))
}

/// Whether `origin`, the request's, is this very site (it names the `Host`).
fn is_same_origin(headers: &HeaderMap, origin: &str) -> bool {
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    origin
        .split_once("://")
        .is_some_and(|(_, authority)| !host.is_empty() && authority.eq_ignore_ascii_case(host))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_reject_other_keys() {
        let keys = JwtKeys::new(b"0123456789abcdef0123456789abcdef", Duration::from_secs(60));
        let other = JwtKeys::new(b"fedcba9876543210fedcba9876543210", Duration::from_secs(60));
        let id = Uuid::new_v4();
        let session = Uuid::new_v4();
        let token = keys.issue(id, session).expect("token");
        assert_eq!(
            keys.verify(&token).expect("valid"),
            TokenClaims { user: id, session }
        );
        assert!(other.verify(&token).is_err());
        assert!(keys.verify("not-a-token").is_err());
    }

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
