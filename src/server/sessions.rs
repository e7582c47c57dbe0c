//! Who a request is: the token's signature and expiry (`auth::JwtKeys`), then its session,
//! which must be live in the database (not revoked by a logout, its user not deleted).
//! Sessions are checked through a cache of a few seconds so a busy client costs no extra query
//! per request; a revocation clears the cache of every replica at once (NOTIFY).

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use axum::{
    extract::{FromRef, FromRequestParts},
    http::{request::Parts, HeaderMap},
};
use sqlx::PgPool;
use uuid::Uuid;

use super::{
    auth::{request_token, AuthUser, JwtKeys},
    error::{AppError, AppResult},
    services::sessions,
};

/// How long a checked session is trusted without asking the database again (a revocation
/// announced by NOTIFY takes effect at once regardless).
const TRUST_FOR: Duration = Duration::from_secs(5);
/// Bound on the cache: past it, it starts over.
const MAX_CACHED: usize = 100_000;

pub struct Sessions {
    pub jwt: Arc<JwtKeys>,
    pool: PgPool,
    checked: Mutex<HashMap<Uuid, (Uuid, Instant)>>,
}

impl Sessions {
    pub fn new(jwt: Arc<JwtKeys>, pool: PgPool) -> Self {
        Self {
            jwt,
            pool,
            checked: Mutex::default(),
        }
    }

    /// Starts a session for `user` and returns its token.
    pub async fn issue(&self, user: Uuid) -> AppResult<String> {
        let session = sessions::create(&self.pool, user, self.jwt.ttl).await?;
        self.jwt.issue(user, session)
    }

    /// The user behind `token`, if its session is live.
    pub async fn authenticate_token(&self, token: &str) -> AppResult<AuthUser> {
        let claims = self.jwt.verify(token)?;
        let user = AuthUser {
            id: claims.user,
            session: claims.session,
        };
        if self.is_live(&user).await? {
            Ok(user)
        } else {
            Err(AppError::Unauthorized)
        }
    }

    /// Whether an authenticated user's session is still live (an unreachable database does
    /// not end it).
    pub async fn still_live(&self, user: &AuthUser) -> bool {
        self.is_live(user).await.unwrap_or(true)
    }

    /// Asks the database unless the session was found live within `TRUST_FOR`.
    async fn is_live(&self, user: &AuthUser) -> AppResult<bool> {
        let fresh = self
            .checked
            .lock()
            .ok()
            .and_then(|c| c.get(&user.session).copied())
            .is_some_and(|(u, at)| u == user.id && at.elapsed() < TRUST_FOR);
        if fresh {
            return Ok(true);
        }
        let live = sessions::is_live(&self.pool, user.session, user.id).await?;
        if live {
            if let Ok(mut cache) = self.checked.lock() {
                if cache.len() >= MAX_CACHED {
                    cache.clear();
                }
                cache.insert(user.session, (user.id, Instant::now()));
            }
        }
        Ok(live)
    }

    /// The user of a request (bearer header first, then the session cookie).
    pub async fn authenticate(&self, headers: &HeaderMap) -> AppResult<AuthUser> {
        let token = request_token(headers).ok_or(AppError::Unauthorized)?;
        self.authenticate_token(&token).await
    }

    /// Ends a session (logout) on every replica.
    pub async fn revoke(&self, session: Uuid) -> AppResult<()> {
        self.forget(&session.to_string());
        sessions::revoke(&self.pool, session).await
    }

    /// Ends every session of the user (sign out everywhere), on every replica.
    pub async fn revoke_all(&self, user: Uuid) -> AppResult<()> {
        sessions::revoke_all(&self.pool, user).await?;
        self.forget(&format!("user:{user}"));
        Ok(())
    }

    /// Deletes the account with everything it owns; its sessions end on every replica.
    pub async fn delete_account(&self, user: Uuid) -> AppResult<()> {
        sessions::delete_account(&self.pool, user).await?;
        self.forget(&format!("user:{user}"));
        Ok(())
    }

    /// Drops a revoked session (`<id>`) or all of a user's (`user:<id>`) from the cache.
    fn forget(&self, what: &str) {
        let Ok(mut cache) = self.checked.lock() else {
            return;
        };
        match what.strip_prefix("user:").map(str::parse::<Uuid>) {
            Some(Ok(user)) => cache.retain(|_, (u, _)| *u != user),
            _ => {
                if let Ok(session) = what.parse::<Uuid>() {
                    cache.remove(&session);
                }
            }
        }
    }

    /// Forgets everything checked (after missed revocations may have happened).
    pub fn forget_all(&self) {
        if let Ok(mut cache) = self.checked.lock() {
            cache.clear();
        }
    }

    /// A revocation announced by any replica.
    pub fn handle(&self, payload: &str) {
        self.forget(payload);
    }

    /// Deletes sessions that ended over a day ago, every hour.
    pub async fn prune_forever(self: Arc<Self>) {
        loop {
            if self.pool.is_closed() {
                return;
            }
            if let Err(err) = sessions::prune(&self.pool).await {
                tracing::warn!(error = %err, "pruning sessions");
            }
            tokio::time::sleep(Duration::from_secs(3600)).await;
        }
    }
}

/// Any state that can hand out `Sessions` (as a `FromRef` sub-state) authenticates.
impl<S> FromRequestParts<S> for AuthUser
where
    S: Send + Sync,
    Arc<Sessions>: FromRef<S>,
{
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Arc::<Sessions>::from_ref(state)
            .authenticate(&parts.headers)
            .await
    }
}
