//! Accounts: register, log in, look up. Validation and rate limits live here, once.

use std::net::IpAddr;

use sqlx::PgPool;
use uuid::Uuid;

use crate::{
    model::{AuthSession, Credentials, User, MIN_PASSWORD_CHARS},
    server::{
        auth::{hash_password, verify_password},
        error::{AppError, AppResult},
        rate_limit::with_hash_slot,
        state::AppState,
    },
};

/// Longest accepted password: argon2 hashing is costly, so unbounded input is a DoS vector.
const MAX_PASSWORD_CHARS: usize = 1024;

#[derive(sqlx::FromRow)]
struct UserRow {
    id: Uuid,
    email: String,
    password_hash: String,
    created_at: chrono::DateTime<chrono::Utc>,
}

impl From<UserRow> for User {
    fn from(row: UserRow) -> Self {
        Self {
            id: row.id,
            email: row.email,
            created_at: row.created_at,
        }
    }
}

pub fn normalize_email(email: &str) -> AppResult<String> {
    let email = email.trim();
    let valid = email.len() <= 254
        && !email.chars().any(|c| c.is_whitespace() || c.is_control())
        && email.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty()
                && !domain.contains('@')
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
        });
    if valid {
        Ok(email.to_string())
    } else {
        Err(AppError::validation(
            "enter a valid email address, like name@example.com",
        ))
    }
}

fn check_password(password: &str) -> AppResult<()> {
    let chars = password.chars().count();
    if password.contains('\0') {
        return Err(AppError::validation(
            "the password contains a NUL character",
        ));
    }
    if chars < MIN_PASSWORD_CHARS {
        return Err(AppError::validation(format!(
            "the password must be at least {MIN_PASSWORD_CHARS} characters long"
        )));
    }
    if chars > MAX_PASSWORD_CHARS {
        return Err(AppError::validation(format!(
            "the password must be at most {MAX_PASSWORD_CHARS} characters long"
        )));
    }
    Ok(())
}

/// Counts one login/register attempt against the caller's IP, and against the IP and the
/// email together (never the email alone: that would let anyone lock its owner out).
async fn rate_limit(state: &AppState, ip: Option<IpAddr>, email: &str) -> AppResult<()> {
    if let Some(ip) = ip {
        state.limits.auth_by_ip.check(&ip).await?;
    }
    state
        .limits
        .auth_by_ip_and_email
        .check(&(ip, email.to_lowercase()))
        .await
}

async fn session(state: &AppState, user: User) -> AppResult<AuthSession> {
    Ok(AuthSession {
        access_token: state.sessions.issue(user.id).await?,
        token_type: "Bearer".into(),
        expires_in: state.jwt.ttl.as_secs() as i64,
        user,
    })
}

pub async fn register(
    state: &AppState,
    ip: Option<IpAddr>,
    creds: Credentials,
) -> AppResult<AuthSession> {
    let email = normalize_email(&creds.email)?;
    rate_limit(state, ip, &email).await?;
    check_password(&creds.password)?;
    let password_hash = with_hash_slot(&state.limits, hash_password(creds.password)).await??;
    let inserted = sqlx::query_as::<_, UserRow>(
        "INSERT INTO users (id, email, password_hash) VALUES ($1, $2, $3)
         ON CONFLICT DO NOTHING
         RETURNING id, email, password_hash, created_at",
    )
    .bind(Uuid::new_v4())
    .bind(&email)
    .bind(&password_hash)
    .fetch_optional(&state.pool)
    .await?;
    let user = inserted
        .ok_or_else(|| AppError::Conflict("an account with this email already exists".into()))?;
    tracing::info!(user_id = %user.id, "registered a new user");
    session(state, user.into()).await
}

pub async fn login(
    state: &AppState,
    ip: Option<IpAddr>,
    creds: Credentials,
) -> AppResult<AuthSession> {
    let email = normalize_email(&creds.email).map_err(|_| AppError::InvalidCredentials)?;
    rate_limit(state, ip, &email).await?;
    let row = sqlx::query_as::<_, UserRow>(
        "SELECT id, email, password_hash, created_at FROM users WHERE lower(email) = lower($1)",
    )
    .bind(&email)
    .fetch_optional(&state.pool)
    .await?;
    // Verify against a dummy hash when the user is unknown so timing does not reveal accounts.
    const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$Yq3rQ5H3lDCQ3mXKvV0Jx8u1bT+7aC2sBfGkQJ0qVxE";
    let hash = row
        .as_ref()
        .map_or(DUMMY_HASH.to_string(), |r| r.password_hash.clone());
    let valid = with_hash_slot(&state.limits, verify_password(creds.password, hash)).await?;
    match row {
        Some(row) if valid => session(state, row.into()).await,
        _ => Err(AppError::InvalidCredentials),
    }
}

pub async fn get(pool: &PgPool, user_id: Uuid) -> AppResult<User> {
    sqlx::query_as::<_, UserRow>(
        "SELECT id, email, password_hash, created_at FROM users WHERE id = $1",
    )
    .bind(user_id)
    .fetch_optional(pool)
    .await?
    .map(User::from)
    .ok_or(AppError::Unauthorized)
}

/// The account's settings.
pub async fn settings(pool: &PgPool, user_id: Uuid) -> AppResult<crate::model::AccountSettings> {
    let row: Option<(String, Option<String>)> =
        sqlx::query_as("SELECT approval_policy, time_zone FROM users WHERE id = $1")
            .bind(user_id)
            .fetch_optional(pool)
            .await?;
    let (policy, time_zone) = row.ok_or(AppError::Unauthorized)?;
    Ok(crate::model::AccountSettings {
        approval_policy: crate::model::ApprovalPolicy::parse(&policy),
        time_zone,
    })
}

/// Changes the account's settings; the next tool call of any turn follows them. A new time
/// zone moves the instants the user's tasks become overdue with it.
pub async fn update_settings(
    pool: &PgPool,
    user_id: Uuid,
    settings: &crate::model::AccountSettings,
) -> AppResult<crate::model::AccountSettings> {
    let zone = settings
        .time_zone
        .as_deref()
        .map(super::tasks::due::clean_zone)
        .transpose()?;
    let mut tx = pool.begin().await?;
    let saved: Option<Option<String>> = sqlx::query_scalar(
        "UPDATE users SET approval_policy = $2, time_zone = COALESCE($3, time_zone) WHERE id = $1
         RETURNING time_zone",
    )
    .bind(user_id)
    .bind(settings.approval_policy.as_str())
    .bind(&zone)
    .fetch_optional(&mut *tx)
    .await?;
    let time_zone = saved.ok_or(AppError::Unauthorized)?;
    if zone.is_some() {
        super::tasks::rezone_in(&mut tx, user_id).await?;
    }
    tx.commit().await?;
    Ok(crate::model::AccountSettings {
        approval_policy: settings.approval_policy,
        time_zone,
    })
}

/// The browser's time zone, taken on the first sign-in: only while the account has none (a zone
/// the user chose is never replaced by a browser's).
pub async fn adopt_time_zone(pool: &PgPool, user_id: Uuid, zone: &str) -> AppResult<bool> {
    let zone = super::tasks::due::clean_zone(zone)?;
    let mut tx = pool.begin().await?;
    let adopted =
        sqlx::query("UPDATE users SET time_zone = $2 WHERE id = $1 AND time_zone IS NULL")
            .bind(user_id)
            .bind(&zone)
            .execute(&mut *tx)
            .await?
            .rows_affected()
            == 1;
    if adopted {
        super::tasks::rezone_in(&mut tx, user_id).await?;
    }
    tx.commit().await?;
    Ok(adopted)
}

#[cfg(test)]
mod tests {
    use super::normalize_email;

    #[test]
    fn emails() {
        assert_eq!(
            normalize_email("  A@Example.com ").unwrap(),
            "A@Example.com"
        );
        for bad in [
            "",
            "a",
            "a@b",
            "@b.com",
            "a@@b.com",
            "a b@c.com",
            "a@.com",
            "a@b.com.",
        ] {
            assert!(normalize_email(bad).is_err(), "{bad} should be rejected");
        }
    }
}
