//! Stream tickets: what an `EventSource` that cannot send an `Authorization` header (the CSR
//! build, another app on another origin) puts in its URL instead of the session token. A
//! ticket is random, lives at most `TICKET_TTL`, is good for one stream, and is bound to its
//! user and session (a revoked session's tickets die with it). Only its hash is stored, in
//! Postgres, so any replica can take it.

use std::time::Duration;

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use rand::RngCore;
use sqlx::PgPool;

use crate::{
    model::StreamTicket,
    server::{
        auth::AuthUser,
        error::{AppError, AppResult},
    },
};

/// How long a ticket is good for (the stream it opens lives on).
pub const TICKET_TTL: Duration = Duration::from_secs(60);

/// A new ticket for `user`'s session.
pub async fn issue(pool: &PgPool, user: &AuthUser) -> AppResult<StreamTicket> {
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    let ticket = URL_SAFE_NO_PAD.encode(bytes);
    // Expired ones go with each issue: the table holds only the last minute's.
    sqlx::query(
        "WITH gone AS (DELETE FROM stream_tickets WHERE expires_at < now())
         INSERT INTO stream_tickets (ticket_hash, user_id, session_id, expires_at)
         VALUES (sha256(convert_to($1, 'UTF8')), $2, $3, now() + make_interval(secs => $4))",
    )
    .bind(&ticket)
    .bind(user.id)
    .bind(user.session)
    .bind(TICKET_TTL.as_secs_f64())
    .execute(pool)
    .await?;
    Ok(StreamTicket {
        ticket,
        expires_in: TICKET_TTL.as_secs(),
    })
}

/// Takes a ticket (once): the user and session it was issued to, if it is still good and its
/// session still live.
pub async fn take(pool: &PgPool, ticket: &str) -> AppResult<AuthUser> {
    if ticket.is_empty() || ticket.len() > 100 {
        return Err(AppError::Unauthorized);
    }
    let row: Option<(uuid::Uuid, uuid::Uuid)> = sqlx::query_as(
        "DELETE FROM stream_tickets t
         USING sessions s
         WHERE t.ticket_hash = sha256(convert_to($1, 'UTF8')) AND t.expires_at > now()
           AND s.id = t.session_id AND s.user_id = t.user_id
           AND s.revoked_at IS NULL AND s.expires_at > now()
         RETURNING t.user_id, t.session_id",
    )
    .bind(ticket)
    .fetch_optional(pool)
    .await?;
    row.map(|(id, session)| AuthUser { id, session })
        .ok_or(AppError::Unauthorized)
}
