//! Sessions as rows: issued at login, checked on every authenticated request (through a
//! short-lived cache, see `auth::Sessions`), revoked at logout, gone with their user.

use std::time::Duration;

use sqlx::PgPool;
use uuid::Uuid;

use crate::server::error::AppResult;

/// The NOTIFY channel announcing revocations (payload: a session id, or `user:<id>`), so
/// every replica forgets them at once.
pub const REVOKED_CHANNEL: &str = "chatkit_revoked";

pub async fn create(pool: &PgPool, user: Uuid, ttl: Duration) -> AppResult<Uuid> {
    let id = Uuid::new_v4();
    sqlx::query(
        "INSERT INTO sessions (id, user_id, expires_at)
         VALUES ($1, $2, now() + make_interval(secs => $3))",
    )
    .bind(id)
    .bind(user)
    .bind(ttl.as_secs_f64())
    .execute(pool)
    .await?;
    Ok(id)
}

/// Whether `session` of `user` is live (not revoked, not expired, its user not deleted).
pub async fn is_live(pool: &PgPool, session: Uuid, user: Uuid) -> AppResult<bool> {
    Ok(sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM sessions
         WHERE id = $1 AND user_id = $2 AND revoked_at IS NULL AND expires_at > now())",
    )
    .bind(session)
    .bind(user)
    .fetch_one(pool)
    .await?)
}

/// Revokes one session (logout), and tells every replica.
pub async fn revoke(pool: &PgPool, session: Uuid) -> AppResult<()> {
    sqlx::query(
        "WITH r AS (UPDATE sessions SET revoked_at = now() WHERE id = $1 AND revoked_at IS NULL RETURNING 1)
         SELECT pg_notify($2, $1::text)",
    )
    .bind(session)
    .bind(REVOKED_CHANNEL)
    .execute(pool)
    .await?;
    Ok(())
}

/// Revokes every session of a user (sign out everywhere), and tells every replica.
pub async fn revoke_all(pool: &PgPool, user: Uuid) -> AppResult<()> {
    sqlx::query(
        "WITH r AS (UPDATE sessions SET revoked_at = now() WHERE user_id = $1 AND revoked_at IS NULL
                    RETURNING 1)
         SELECT pg_notify($2, 'user:' || $1::text)",
    )
    .bind(user)
    .bind(REVOKED_CHANNEL)
    .execute(pool)
    .await?;
    Ok(())
}

/// Deletes an account and everything it owns (tasks, conversations, messages, turns and
/// sessions cascade with the user row), and ends its sessions on every replica.
pub async fn delete_account(pool: &PgPool, user: Uuid) -> AppResult<()> {
    let mut tx = pool.begin().await?;
    sqlx::query(
        "WITH p AS (
             DELETE FROM turn_reply_pieces
             WHERE conversation_id IN (SELECT id FROM conversations WHERE user_id = $1)
         )
         DELETE FROM turn_activity WHERE conversation_id IN (SELECT id FROM conversations WHERE user_id = $1)",
    )
    .bind(user)
    .execute(&mut *tx)
    .await?;
    sqlx::query("DELETE FROM live_events WHERE user_id = $1")
        .bind(user)
        .execute(&mut *tx)
        .await?;
    sqlx::query("DELETE FROM users WHERE id = $1")
        .bind(user)
        .execute(&mut *tx)
        .await?;
    sqlx::query("SELECT pg_notify($1, 'user:' || $2::text)")
        .bind(REVOKED_CHANNEL)
        .bind(user)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}

/// Forgets expired and long-revoked sessions.
pub async fn prune(pool: &PgPool) -> AppResult<u64> {
    Ok(sqlx::query(
        "DELETE FROM sessions WHERE expires_at < now() - interval '1 day'
            OR revoked_at < now() - interval '1 day'",
    )
    .execute(pool)
    .await?
    .rows_affected())
}
