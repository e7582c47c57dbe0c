//! Feedback on assistant replies (thumbs up or down), one current kind per user and message.

use sqlx::PgPool;
use uuid::Uuid;

use crate::server::error::{AppError, AppResult};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FeedbackKind {
    Positive,
    Negative,
}

impl FeedbackKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Positive => "positive",
            Self::Negative => "negative",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "positive" => Some(Self::Positive),
            "negative" => Some(Self::Negative),
            _ => None,
        }
    }
}

/// Records `kind` on each of `messages` of the user's `conversation` (replacing earlier
/// feedback). All or nothing: a message that is not in the conversation is "not found" and
/// nothing is stored.
pub async fn record(
    pool: &PgPool,
    user: Uuid,
    conversation: Uuid,
    messages: &[Uuid],
    kind: FeedbackKind,
) -> AppResult<()> {
    if messages.is_empty() {
        return Err(AppError::validation("name at least one item"));
    }
    if messages.len() > 100 {
        return Err(AppError::validation("at most 100 items at a time"));
    }
    let mut tx = pool.begin().await?;
    let stored = sqlx::query(
        "INSERT INTO message_feedback (message_id, user_id, kind)
         SELECT m.id, $3, $4 FROM messages m JOIN conversations c ON c.id = m.conversation_id
         WHERE m.id = ANY($1) AND m.conversation_id = $2 AND c.user_id = $3 AND c.deleted_at IS NULL
         ON CONFLICT (message_id, user_id) DO UPDATE SET kind = EXCLUDED.kind, updated_at = now()",
    )
    .bind(messages)
    .bind(conversation)
    .bind(user)
    .bind(kind.as_str())
    .execute(&mut *tx)
    .await?;
    let distinct = {
        let mut ids = messages.to_vec();
        ids.sort_unstable();
        ids.dedup();
        ids.len()
    };
    if stored.rows_affected() as usize != distinct {
        return Err(AppError::NotFound("item".into()));
    }
    tx.commit().await?;
    Ok(())
}
