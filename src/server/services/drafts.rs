//! Drafts of failed no-JavaScript sends, kept for the redirect back to the page (so the text
//! is not lost and does not travel in a URL). Reading one does not consume it: the page it
//! belongs to also keeps its error in the URL, so a reload (or a browser that repeats the
//! request) shows both again; left-overs go after an hour.

use sqlx::PgPool;
use uuid::Uuid;

use super::super::error::AppResult;

/// Keeps `content` for `user` and returns the id the redirect names (older left-overs go).
pub async fn keep(pool: &PgPool, user: Uuid, content: &str) -> AppResult<Uuid> {
    let id = Uuid::new_v4();
    sqlx::query(
        "WITH old AS (DELETE FROM form_drafts WHERE created_at < now() - interval '1 hour')
         INSERT INTO form_drafts (id, user_id, content) VALUES ($1, $2, $3)",
    )
    .bind(id)
    .bind(user)
    .bind(content.replace('\0', "\u{FFFD}"))
    .execute(pool)
    .await?;
    Ok(id)
}

/// The draft `id` of `user`, while it is kept.
pub async fn get(pool: &PgPool, user: Uuid, id: Uuid) -> AppResult<Option<String>> {
    Ok(sqlx::query_scalar(
        "SELECT content FROM form_drafts
         WHERE id = $1 AND user_id = $2 AND created_at > now() - interval '1 hour'",
    )
    .bind(id)
    .bind(user)
    .fetch_optional(pool)
    .await?)
}
