//! Conversations: list, create, rename, delete (their messages are in `messages`, a running
//! turn's progress in `activity`). Every query is scoped by the caller's user id; a deleted or
//! foreign conversation is "not found" everywhere.

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use chrono::{DateTime, Utc};
use sqlx::PgPool;
use uuid::Uuid;

use super::events;
use crate::{
    model::{
        Conversation, ConversationChanges, ConversationPage, ConversationQuery, LiveEvent, Role,
        MAX_MESSAGE_CHARS, MAX_TITLE_CHARS,
    },
    server::{
        bus::EventBus,
        error::{AppError, AppResult},
    },
};

pub const DEFAULT_TITLE: &str = "New conversation";
const AUTO_TITLE_CHARS: usize = 50;
const PREVIEW_CHARS: usize = 100;

pub(super) const CONVERSATION_COLUMNS: &str =
    "id, user_id, title, created_at, updated_at, message_count, last_message_preview, pinned, \
     archived_at IS NOT NULL AS archived, current_message_id";

#[derive(sqlx::FromRow)]
pub(super) struct ConversationRow {
    id: Uuid,
    user_id: Uuid,
    title: String,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    message_count: i32,
    last_message_preview: Option<String>,
    pinned: bool,
    archived: bool,
    pub(super) current_message_id: Option<Uuid>,
}

impl From<ConversationRow> for Conversation {
    fn from(r: ConversationRow) -> Self {
        Self {
            id: r.id,
            user_id: r.user_id,
            title: r.title,
            created_at: r.created_at,
            updated_at: r.updated_at,
            message_count: r.message_count,
            last_message_preview: r.last_message_preview,
            pinned: r.pinned,
            archived: r.archived,
            current_message_id: r.current_message_id,
        }
    }
}

pub(super) fn conversation_not_found() -> AppError {
    AppError::NotFound("conversation".into())
}

/// Trimmed, 1..=200 characters.
pub fn clean_title(title: &str) -> AppResult<String> {
    super::required_text(title, "title", MAX_TITLE_CHARS)
}

/// Trimmed, 1..=10,000 characters.
pub fn clean_content(content: &str) -> AppResult<String> {
    super::required_text(content, "message", MAX_MESSAGE_CHARS)
}

/// The first ~50 characters of a message, cut at a word boundary, on one line.
pub fn auto_title(content: &str) -> String {
    let flat = content.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() <= AUTO_TITLE_CHARS {
        return if flat.is_empty() {
            DEFAULT_TITLE.into()
        } else {
            flat
        };
    }
    let cut: String = flat.chars().take(AUTO_TITLE_CHARS).collect();
    let at_word = match cut.rfind(' ') {
        Some(i) if i >= AUTO_TITLE_CHARS / 2 => &cut[..i],
        _ => cut.as_str(),
    };
    format!(
        "{}…",
        at_word.trim_end_matches([',', '.', ';', ':', '-', ' '])
    )
}

/// The start of a message as plain words (markdown removed: user text is shown as typed,
/// but a preview must not show `**`), for the sidebar.
pub(super) fn preview(content: &str, role: Role) -> String {
    let flat = match role {
        Role::Assistant => crate::server::markdown::plain_text(content),
        Role::User => content.split_whitespace().collect::<Vec<_>>().join(" "),
    };
    if flat.chars().count() <= PREVIEW_CHARS {
        flat
    } else {
        let mut cut: String = flat.chars().take(PREVIEW_CHARS - 1).collect();
        cut.push('…');
        cut
    }
}

/// Where a page of the list starts: after this (pinned, updated_at, id).
type ListPosition = (bool, DateTime<Utc>, Uuid);

fn encode_cursor((pinned, updated_at, id): ListPosition) -> String {
    URL_SAFE_NO_PAD.encode(format!(
        "{}|{}|{id}",
        u8::from(pinned),
        updated_at.timestamp_micros()
    ))
}

/// A cursor from before pins existed (`micros|id`) points past every pinned conversation.
fn decode_cursor(cursor: &str) -> AppResult<ListPosition> {
    let invalid = || AppError::validation("invalid cursor");
    let raw = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| invalid())?;
    let raw = String::from_utf8(raw).map_err(|_| invalid())?;
    let parts: Vec<&str> = raw.split('|').collect();
    let (pinned, micros, id) = match parts[..] {
        [pinned @ ("0" | "1"), micros, id] => (pinned == "1", micros, id),
        [micros, id] => (false, micros, id),
        _ => return Err(invalid()),
    };
    let micros: i64 = micros.parse().map_err(|_| invalid())?;
    let at = DateTime::from_timestamp_micros(micros).ok_or_else(invalid)?;
    Ok((pinned, at, id.parse().map_err(|_| invalid())?))
}

pub(super) fn page_limit(limit: Option<i64>, default: i64) -> AppResult<i64> {
    match limit.unwrap_or(default) {
        n @ 1..=100 => Ok(n),
        n => Err(AppError::validation(format!(
            "limit must be between 1 and 100, got {n}"
        ))),
    }
}

pub async fn list(
    pool: &PgPool,
    user: Uuid,
    query: &ConversationQuery,
) -> AppResult<ConversationPage> {
    list_in_order(pool, user, query, Order::NewestFirst).await
}

/// Which end of the conversation list comes first (by last activity).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Order {
    NewestFirst,
    OldestFirst,
}

/// `list`, in either order; the cursor of one order is valid only in that order.
pub async fn list_in_order(
    pool: &PgPool,
    user: Uuid,
    query: &ConversationQuery,
    order: Order,
) -> AppResult<ConversationPage> {
    let limit = page_limit(query.limit, 20)?;
    let cursor = query
        .cursor
        .as_deref()
        .filter(|c| !c.is_empty())
        .map(decode_cursor)
        .transpose()?;
    let (after_pinned, after_at, after_id) = match cursor {
        Some((pinned, at, id)) => (Some(pinned), Some(at), Some(id)),
        None => (None, None, None),
    };
    let (compare, direction) = match order {
        Order::NewestFirst => ("<", "DESC"),
        Order::OldestFirst => (">", "ASC"),
    };
    // Each list has its own partial index; the condition is spelled out so the planner uses it.
    let archived = if query.archived == Some(true) {
        "archived_at IS NOT NULL"
    } else {
        "archived_at IS NULL"
    };
    // Row comparison on the index's own columns: exact under ties, one index range scan
    // (read backwards for the oldest first).
    let mut rows = sqlx::query_as::<_, ConversationRow>(&format!(
        "SELECT {CONVERSATION_COLUMNS} FROM conversations
         WHERE user_id = $1 AND deleted_at IS NULL AND {archived}
           AND ($2::timestamptz IS NULL OR (pinned, updated_at, id) {compare} ($5, $2, $3))
         ORDER BY pinned {direction}, updated_at {direction}, id {direction}
         LIMIT $4"
    ))
    .bind(user)
    .bind(after_at)
    .bind(after_id)
    .bind(limit + 1)
    .bind(after_pinned)
    .fetch_all(pool)
    .await?;
    let has_more = rows.len() as i64 > limit;
    rows.truncate(limit as usize);
    let next_cursor = has_more
        .then(|| {
            rows.last()
                .map(|r| encode_cursor((r.pinned, r.updated_at, r.id)))
        })
        .flatten();
    Ok(ConversationPage {
        conversations: rows.into_iter().map(Conversation::from).collect(),
        next_cursor,
        has_more,
    })
}

pub async fn create(
    pool: &PgPool,
    bus: &EventBus,
    user: Uuid,
    title: Option<&str>,
) -> AppResult<Conversation> {
    let custom = title.map(clean_title).transpose()?;
    let mut tx = pool.begin().await?;
    let conversation = sqlx::query_as::<_, ConversationRow>(&format!(
        "INSERT INTO conversations (id, user_id, title, title_is_custom) VALUES ($1, $2, $3, $4)
         RETURNING {CONVERSATION_COLUMNS}"
    ))
    .bind(Uuid::new_v4())
    .bind(user)
    .bind(custom.as_deref().unwrap_or(DEFAULT_TITLE))
    .bind(custom.is_some())
    .fetch_one(&mut *tx)
    .await
    .map(Conversation::from)?;
    announce(
        pool,
        bus,
        tx,
        user,
        LiveEvent::Conversation(conversation.clone()),
    )
    .await?;
    Ok(conversation)
}

/// Records `event` in `tx`, commits, and publishes it.
async fn announce(
    pool: &PgPool,
    bus: &EventBus,
    mut tx: sqlx::Transaction<'_, sqlx::Postgres>,
    user: Uuid,
    event: LiveEvent,
) -> AppResult<()> {
    let outbox = events::record(&mut tx, bus, user, &event).await?;
    tx.commit().await?;
    outbox.publish(bus, pool).await;
    Ok(())
}

pub async fn get(pool: &PgPool, user: Uuid, id: Uuid) -> AppResult<Conversation> {
    sqlx::query_as::<_, ConversationRow>(&format!(
        "SELECT {CONVERSATION_COLUMNS} FROM conversations WHERE id = $1 AND user_id = $2 AND deleted_at IS NULL"
    ))
    .bind(id)
    .bind(user)
    .fetch_optional(pool)
    .await?
    .map(Conversation::from)
    .ok_or_else(conversation_not_found)
}

pub async fn rename(
    pool: &PgPool,
    bus: &EventBus,
    user: Uuid,
    id: Uuid,
    title: &str,
) -> AppResult<Conversation> {
    let changes = ConversationChanges {
        title: Some(title.to_string()),
        ..Default::default()
    };
    update(pool, bus, user, id, &changes).await
}

/// Renames, pins or unpins, archives or restores (any of them at once; at least one).
/// Pinning and archiving leave `updated_at` alone: the conversation keeps its place in time.
pub async fn update(
    pool: &PgPool,
    bus: &EventBus,
    user: Uuid,
    id: Uuid,
    changes: &ConversationChanges,
) -> AppResult<Conversation> {
    if changes.title.is_none() && changes.pinned.is_none() && changes.archived.is_none() {
        return Err(AppError::validation(
            "nothing to change: give a title, pinned or archived",
        ));
    }
    let title = changes.title.as_deref().map(clean_title).transpose()?;
    let mut tx = pool.begin().await?;
    let conversation = sqlx::query_as::<_, ConversationRow>(&format!(
        "UPDATE conversations SET
             title = COALESCE($3, title),
             title_is_custom = title_is_custom OR $3 IS NOT NULL,
             pinned = COALESCE($4, pinned),
             archived_at = CASE WHEN $5 IS NULL THEN archived_at
                                WHEN $5 THEN COALESCE(archived_at, now())
                                ELSE NULL END
         WHERE id = $1 AND user_id = $2 AND deleted_at IS NULL
         RETURNING {CONVERSATION_COLUMNS}"
    ))
    .bind(id)
    .bind(user)
    .bind(title)
    .bind(changes.pinned)
    .bind(changes.archived)
    .fetch_optional(&mut *tx)
    .await?
    .map(Conversation::from)
    .ok_or_else(conversation_not_found)?;
    announce(
        pool,
        bus,
        tx,
        user,
        LiveEvent::Conversation(conversation.clone()),
    )
    .await?;
    Ok(conversation)
}

/// Soft delete: the rows stay, the conversation disappears from every interface.
pub async fn delete(pool: &PgPool, bus: &EventBus, user: Uuid, id: Uuid) -> AppResult<()> {
    let mut tx = pool.begin().await?;
    let result = sqlx::query(
        "UPDATE conversations SET deleted_at = now() WHERE id = $1 AND user_id = $2 AND deleted_at IS NULL",
    )
    .bind(id)
    .bind(user)
    .execute(&mut *tx)
    .await?;
    if result.rows_affected() == 0 {
        return Err(conversation_not_found());
    }
    announce(pool, bus, tx, user, LiveEvent::ConversationDeleted { id }).await
}

/// The conversation a first message with `client_id` starts (`start_conversation`), and
/// whether this call created it. Its id derives from the user and the `client_id`, so resends
/// racing each other on any replica all find the one conversation.
pub async fn create_for_first_message(
    pool: &PgPool,
    bus: &EventBus,
    user: Uuid,
    client_id: Uuid,
) -> AppResult<(Conversation, bool)> {
    let id = Uuid::new_v5(&user, client_id.as_bytes());
    let mut tx = pool.begin().await?;
    let created = sqlx::query_as::<_, ConversationRow>(&format!(
        "INSERT INTO conversations (id, user_id, title, title_is_custom) VALUES ($1, $2, $3, false)
         ON CONFLICT (id) DO NOTHING
         RETURNING {CONVERSATION_COLUMNS}"
    ))
    .bind(id)
    .bind(user)
    .bind(DEFAULT_TITLE)
    .fetch_optional(&mut *tx)
    .await?
    .map(Conversation::from);
    let Some(conversation) = created else {
        drop(tx);
        return Ok((get(pool, user, id).await?, false));
    };
    announce(
        pool,
        bus,
        tx,
        user,
        LiveEvent::Conversation(conversation.clone()),
    )
    .await?;
    Ok((conversation, true))
}

/// Removes a conversation that never got a message (its first one was refused), so a resend
/// of that message can create it again.
pub async fn discard_if_empty(
    pool: &PgPool,
    bus: &EventBus,
    user: Uuid,
    id: Uuid,
) -> AppResult<()> {
    let mut tx = pool.begin().await?;
    let removed = sqlx::query(
        "DELETE FROM conversations WHERE id = $1 AND user_id = $2 AND message_count = 0",
    )
    .bind(id)
    .bind(user)
    .execute(&mut *tx)
    .await?;
    if removed.rows_affected() == 0 {
        return Ok(());
    }
    announce(pool, bus, tx, user, LiveEvent::ConversationDeleted { id }).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_titles_cut_at_a_word() {
        assert_eq!(auto_title("  Add   milk\n"), "Add milk");
        let long =
            "Please add a task to buy groceries and then remind me about the dentist appointment";
        let title = auto_title(long);
        assert!(title.chars().count() <= AUTO_TITLE_CHARS + 1, "{title}");
        assert!(title.ends_with('…'));
        assert!(long.starts_with(title.trim_end_matches('…')));
        assert!(!title.trim_end_matches('…').ends_with(' '));
    }

    #[test]
    fn cursors_round_trip_and_reject_garbage() {
        let at = DateTime::from_timestamp_micros(1_700_000_000_123_456).unwrap();
        let id = Uuid::new_v4();
        for pinned in [false, true] {
            let position = (pinned, at, id);
            assert_eq!(decode_cursor(&encode_cursor(position)).unwrap(), position);
        }
        let legacy = URL_SAFE_NO_PAD.encode(format!("{}|{id}", at.timestamp_micros()));
        assert_eq!(decode_cursor(&legacy).unwrap(), (false, at, id));
        for bad in [
            "",
            "!!",
            "bm90LWEtY3Vyc29y",
            &URL_SAFE_NO_PAD.encode("12|not-a-uuid"),
            &URL_SAFE_NO_PAD.encode(format!("2|12|{}", Uuid::nil())),
        ] {
            assert!(decode_cursor(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn content_bounds() {
        assert!(clean_content(&"a".repeat(MAX_MESSAGE_CHARS)).is_ok());
        assert!(clean_content(&"a".repeat(MAX_MESSAGE_CHARS + 1)).is_err());
        assert!(clean_content(" \n\t ").is_err());
        assert_eq!(clean_content("  hi  ").unwrap(), "hi");
    }
}
