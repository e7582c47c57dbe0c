//! Conversations and their messages. Every query is scoped by the caller's user id; a deleted
//! or foreign conversation is "not found" everywhere.

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use super::events;
use crate::{
    model::{
        ActivityState, Conversation, ConversationPage, ConversationQuery, LiveEvent, Message,
        MessagePage, MessageQuery, MessageStatus, Role, ToolCallRecord, ToolCalls, TurnActivity,
        MAX_MESSAGE_CHARS, MAX_TITLE_CHARS,
    },
    server::error::{AppError, AppResult},
};

pub const DEFAULT_TITLE: &str = "New conversation";
const AUTO_TITLE_CHARS: usize = 50;
const PREVIEW_CHARS: usize = 100;

const CONVERSATION_COLUMNS: &str =
    "id, user_id, title, created_at, updated_at, message_count, last_message_preview";
const MESSAGE_COLUMNS: &str =
    "id, conversation_id, seq, role, content, tool_calls, status, created_at";

#[derive(sqlx::FromRow)]
struct ConversationRow {
    id: Uuid,
    user_id: Uuid,
    title: String,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    message_count: i32,
    last_message_preview: Option<String>,
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
        }
    }
}

#[derive(sqlx::FromRow)]
struct MessageRow {
    id: Uuid,
    conversation_id: Uuid,
    seq: i64,
    role: String,
    content: String,
    tool_calls: Option<sqlx::types::Json<ToolCalls>>,
    status: String,
    created_at: DateTime<Utc>,
}

impl From<MessageRow> for Message {
    fn from(r: MessageRow) -> Self {
        Self {
            id: r.id,
            conversation_id: r.conversation_id,
            seq: r.seq,
            role: if r.role == "user" {
                Role::User
            } else {
                Role::Assistant
            },
            content: r.content,
            tool_calls: r.tool_calls.map(|j| j.0),
            status: MessageStatus::parse(&r.status),
            created_at: r.created_at,
            html: None,
        }
    }
}

fn conversation_not_found() -> AppError {
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
fn preview(content: &str, role: Role) -> String {
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

fn encode_cursor(updated_at: DateTime<Utc>, id: Uuid) -> String {
    URL_SAFE_NO_PAD.encode(format!("{}|{id}", updated_at.timestamp_micros()))
}

fn decode_cursor(cursor: &str) -> AppResult<(DateTime<Utc>, Uuid)> {
    let invalid = || AppError::validation("invalid cursor");
    let raw = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| invalid())?;
    let raw = String::from_utf8(raw).map_err(|_| invalid())?;
    let (micros, id) = raw.split_once('|').ok_or_else(invalid)?;
    let micros: i64 = micros.parse().map_err(|_| invalid())?;
    let at = DateTime::from_timestamp_micros(micros).ok_or_else(invalid)?;
    Ok((at, id.parse().map_err(|_| invalid())?))
}

fn page_limit(limit: Option<i64>, default: i64) -> AppResult<i64> {
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
    let limit = page_limit(query.limit, 20)?;
    let cursor = query
        .cursor
        .as_deref()
        .filter(|c| !c.is_empty())
        .map(decode_cursor)
        .transpose()?;
    let (after_at, after_id) = cursor.unzip();
    // Row comparison on the index's own columns: exact under ties, one index range scan.
    let mut rows = sqlx::query_as::<_, ConversationRow>(&format!(
        "SELECT {CONVERSATION_COLUMNS} FROM conversations
         WHERE user_id = $1 AND deleted_at IS NULL
           AND ($2::timestamptz IS NULL OR (updated_at, id) < ($2, $3))
         ORDER BY updated_at DESC, id DESC
         LIMIT $4"
    ))
    .bind(user)
    .bind(after_at)
    .bind(after_id)
    .bind(limit + 1)
    .fetch_all(pool)
    .await?;
    let has_more = rows.len() as i64 > limit;
    rows.truncate(limit as usize);
    let next_cursor = has_more
        .then(|| rows.last().map(|r| encode_cursor(r.updated_at, r.id)))
        .flatten();
    Ok(ConversationPage {
        conversations: rows.into_iter().map(Conversation::from).collect(),
        next_cursor,
        has_more,
    })
}

pub async fn create(pool: &PgPool, user: Uuid, title: Option<&str>) -> AppResult<Conversation> {
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
    events::record(
        &mut tx,
        user,
        &LiveEvent::Conversation(conversation.clone()),
    )
    .await?;
    tx.commit().await?;
    Ok(conversation)
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

pub async fn rename(pool: &PgPool, user: Uuid, id: Uuid, title: &str) -> AppResult<Conversation> {
    let title = clean_title(title)?;
    let mut tx = pool.begin().await?;
    let conversation = sqlx::query_as::<_, ConversationRow>(&format!(
        "UPDATE conversations SET title = $3, title_is_custom = true
         WHERE id = $1 AND user_id = $2 AND deleted_at IS NULL
         RETURNING {CONVERSATION_COLUMNS}"
    ))
    .bind(id)
    .bind(user)
    .bind(title)
    .fetch_optional(&mut *tx)
    .await?
    .map(Conversation::from)
    .ok_or_else(conversation_not_found)?;
    events::record(
        &mut tx,
        user,
        &LiveEvent::Conversation(conversation.clone()),
    )
    .await?;
    tx.commit().await?;
    Ok(conversation)
}

/// Soft delete: the rows stay, the conversation disappears from every interface.
pub async fn delete(pool: &PgPool, user: Uuid, id: Uuid) -> AppResult<()> {
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
    events::record(&mut tx, user, &LiveEvent::ConversationDeleted { id }).await?;
    tx.commit().await?;
    Ok(())
}

pub async fn messages(
    pool: &PgPool,
    user: Uuid,
    id: Uuid,
    query: &MessageQuery,
) -> AppResult<MessagePage> {
    let limit = page_limit(query.limit, 50)?;
    let cursors = [
        query.after.is_some(),
        query.before.is_some(),
        query.since.is_some(),
    ];
    if cursors.iter().filter(|c| **c).count() > 1 {
        return Err(AppError::validation(
            "use at most one of after, before and since",
        ));
    }
    if query.after.is_some_and(|s| s < 0) || query.before.is_some_and(|s| s < 0) {
        return Err(AppError::validation(
            "after and before must be sequence numbers (0 or more)",
        ));
    }
    // One round trip: the ownership check, the total and the page (a LEFT JOIN keeps the
    // conversation row when the page is empty, so "no messages" and "not found" differ).
    let (condition, order) = if query.after.is_some() {
        ("seq > $3", "seq")
    } else if query.since.is_some() {
        ("created_at > $4", "seq")
    } else {
        ("seq < $3", "seq DESC")
    };
    let sql = format!(
        "SELECT c.message_count, a.user_seq AS activity_seq, a.tool_name AS activity_tool,
                a.updated_at AS activity_since,
                m.id, m.conversation_id, m.seq, m.role, m.content, m.tool_calls, m.status, m.created_at
         FROM conversations c
         LEFT JOIN turn_activity a ON a.conversation_id = c.id AND a.user_seq = c.last_seq
         LEFT JOIN LATERAL (
             SELECT {MESSAGE_COLUMNS} FROM messages
             WHERE conversation_id = c.id AND {condition} ORDER BY {order} LIMIT $5
         ) m ON true
         WHERE c.id = $1 AND c.user_id = $2 AND c.deleted_at IS NULL"
    );
    let seq_cursor = query.after.or(query.before).unwrap_or(i64::MAX);
    let rows: Vec<PageRow> = sqlx::query_as(&sql)
        .bind(id)
        .bind(user)
        .bind(seq_cursor)
        .bind(query.since)
        .bind(limit + 1)
        .fetch_all(pool)
        .await?;
    let first = rows.first().ok_or_else(conversation_not_found)?;
    let total = first.message_count;
    let activity = match (first.activity_seq, first.activity_since) {
        (Some(user_seq), Some(since)) => Some(TurnActivity {
            user_seq,
            tool_name: first.activity_tool.clone(),
            since,
        }),
        _ => None,
    };
    let newest_first = query.after.is_none() && query.since.is_none();
    let mut rows: Vec<MessageRow> = rows.into_iter().filter_map(PageRow::into_message).collect();
    let has_more = rows.len() as i64 > limit;
    rows.truncate(limit as usize);
    if newest_first {
        rows.reverse();
    }
    Ok(MessagePage {
        messages: rows.into_iter().map(Message::from).collect(),
        conversation_id: id,
        total_count: i64::from(total),
        has_more,
        activity,
    })
}

/// A row of the one-query message page: the conversation's total and, if any, one message.
#[derive(sqlx::FromRow)]
struct PageRow {
    message_count: i32,
    activity_seq: Option<i64>,
    activity_tool: Option<String>,
    activity_since: Option<DateTime<Utc>>,
    id: Option<Uuid>,
    conversation_id: Option<Uuid>,
    seq: Option<i64>,
    role: Option<String>,
    content: Option<String>,
    tool_calls: Option<sqlx::types::Json<ToolCalls>>,
    status: Option<String>,
    created_at: Option<DateTime<Utc>>,
}

impl PageRow {
    fn into_message(self) -> Option<MessageRow> {
        Some(MessageRow {
            id: self.id?,
            conversation_id: self.conversation_id?,
            seq: self.seq?,
            role: self.role?,
            content: self.content?,
            tool_calls: self.tool_calls,
            status: self.status?,
            created_at: self.created_at?,
        })
    }
}

/// A message to append to a conversation.
pub struct NewMessage<'a> {
    pub role: Role,
    pub content: &'a str,
    pub tool_calls: Option<&'a ToolCalls>,
    pub status: MessageStatus,
    pub client_id: Option<Uuid>,
}

/// Appends a message with the next `seq`, allocated under the conversation row's lock inside
/// this transaction: a poller reading `after=seq` can never skip a message that commits later.
pub async fn append(
    pool: &PgPool,
    user: Uuid,
    conversation: Uuid,
    message: NewMessage<'_>,
) -> AppResult<Message> {
    let mut tx = pool.begin().await?;
    let stored = append_in(&mut tx, user, conversation, message).await?;
    tx.commit().await?;
    Ok(stored)
}

/// `append` inside the caller's transaction (a turn stores its reply and its outcome at once).
pub async fn append_in(
    tx: &mut PgConnection,
    user: Uuid,
    conversation: Uuid,
    message: NewMessage<'_>,
) -> AppResult<Message> {
    // PostgreSQL text and jsonb cannot hold NUL; model output may contain one.
    let content = message.content.replace('\0', "\u{FFFD}");
    let tool_calls = message.tool_calls.map(|t| ToolCalls {
        tool_calls: t
            .tool_calls
            .iter()
            .map(|r| ToolCallRecord {
                tool_name: r.tool_name.replace('\0', "\u{FFFD}"),
                arguments: without_nul(r.arguments.clone()),
                result: without_nul(r.result.clone()),
                ..r.clone()
            })
            .collect(),
    });
    let message = NewMessage {
        content: &content,
        tool_calls: tool_calls.as_ref(),
        ..message
    };
    let first_title = (message.role == Role::User).then(|| auto_title(message.content));
    let (seq, changed): (i64, ConversationRow) = sqlx::query_as::<_, SeqAndConversation>(&format!(
        "UPDATE conversations SET
             last_seq = last_seq + 1,
             message_count = message_count + 1,
             updated_at = clock_timestamp(),
             last_message_preview = $3,
             title = CASE WHEN $4::text IS NOT NULL AND NOT title_is_custom AND message_count = 0 THEN $4 ELSE title END
         WHERE id = $1 AND user_id = $2 AND deleted_at IS NULL
         RETURNING last_seq, {CONVERSATION_COLUMNS}"
    ))
    .bind(conversation)
    .bind(user)
    .bind(preview(message.content, message.role))
    .bind(first_title)
    .fetch_optional(&mut *tx)
    .await?
    .map(|r| (r.last_seq, r.conversation))
    .ok_or_else(conversation_not_found)?;
    let row = sqlx::query_as::<_, MessageRow>(&format!(
        "INSERT INTO messages (id, conversation_id, seq, role, content, tool_calls, status, client_id)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
         RETURNING {MESSAGE_COLUMNS}"
    ))
    .bind(Uuid::new_v4())
    .bind(conversation)
    .bind(seq)
    .bind(match message.role {
        Role::User => "user",
        Role::Assistant => "assistant",
    })
    .bind(message.content)
    .bind(message.tool_calls.map(sqlx::types::Json))
    .bind(message.status.as_str())
    .bind(message.client_id)
    .fetch_one(&mut *tx)
    .await?;
    let stored = Message::from(row);
    events::record_pair(
        tx,
        user,
        &LiveEvent::Message(stored.clone()),
        &LiveEvent::Conversation(changed.into()),
    )
    .await?;
    Ok(stored)
}

#[derive(sqlx::FromRow)]
struct SeqAndConversation {
    last_seq: i64,
    #[sqlx(flatten)]
    conversation: ConversationRow,
}

/// Replaces NUL characters in every string of a JSON value (jsonb cannot store them).
fn without_nul(value: serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match value {
        Value::String(s) if s.contains('\0') => Value::String(s.replace('\0', "\u{FFFD}")),
        Value::Array(items) => Value::Array(items.into_iter().map(without_nul).collect()),
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| (k.replace('\0', "\u{FFFD}"), without_nul(v)))
                .collect(),
        ),
        other => other,
    }
}

/// The user message sent with `client_id`, and the reply that followed it, if any.
pub async fn find_by_client_id(
    pool: &PgPool,
    conversation: Uuid,
    client_id: Uuid,
) -> AppResult<Option<(Message, Option<Message>)>> {
    let rows = sqlx::query_as::<_, MessageRow>(&format!(
        "SELECT {MESSAGE_COLUMNS} FROM messages
         WHERE conversation_id = $1
           AND seq IN (SELECT seq + d FROM messages, (VALUES (0), (1)) AS v(d)
                       WHERE conversation_id = $1 AND client_id = $2)
         ORDER BY seq"
    ))
    .bind(conversation)
    .bind(client_id)
    .fetch_all(pool)
    .await?;
    let mut messages = rows.into_iter().map(Message::from);
    let Some(user_message) = messages.next() else {
        return Ok(None);
    };
    let reply = messages.next().filter(|m| m.role == Role::Assistant);
    Ok(Some((user_message, reply)))
}

/// The conversation a message with `client_id` was first sent in (`start_conversation`
/// resent after a lost response).
pub async fn conversation_of_client_id(
    pool: &PgPool,
    user: Uuid,
    client_id: Uuid,
) -> AppResult<Option<Conversation>> {
    Ok(sqlx::query_as::<_, ConversationRow>(&format!(
        "SELECT {CONVERSATION_COLUMNS} FROM conversations c
         WHERE c.user_id = $1 AND c.deleted_at IS NULL
           AND EXISTS (SELECT 1 FROM messages m WHERE m.conversation_id = c.id AND m.client_id = $2)
         LIMIT 1"
    ))
    .bind(user)
    .bind(client_id)
    .fetch_optional(pool)
    .await?
    .map(Conversation::from))
}

/// The `limit` messages ending at `up_to_seq`, oldest first: the agent's history.
pub async fn history(
    pool: &PgPool,
    conversation: Uuid,
    up_to_seq: i64,
    limit: i64,
) -> AppResult<Vec<Message>> {
    let mut rows = sqlx::query_as::<_, MessageRow>(&format!(
        "SELECT {MESSAGE_COLUMNS} FROM messages WHERE conversation_id = $1 AND seq <= $2 ORDER BY seq DESC LIMIT $3"
    ))
    .bind(conversation)
    .bind(up_to_seq)
    .bind(limit.max(1))
    .fetch_all(pool)
    .await?;
    rows.reverse();
    Ok(rows.into_iter().map(Message::from).collect())
}

/// Records what the turn answering `user_seq` is doing (`None`: thinking) and announces it to
/// the user's live streams. Unlogged and outside any transaction: cheap, and never holds up
/// the turn.
pub async fn set_activity(
    pool: &PgPool,
    user: Uuid,
    conversation: Uuid,
    user_seq: i64,
    tool_name: Option<&str>,
) -> AppResult<()> {
    let event = LiveEvent::Activity {
        conversation_id: conversation,
        state: if tool_name.is_some() {
            ActivityState::Tool
        } else {
            ActivityState::Thinking
        },
        tool_name: tool_name.map(str::to_string),
    };
    sqlx::query(
        "WITH a AS (
             INSERT INTO turn_activity (conversation_id, user_seq, tool_name)
             VALUES ($1, $2, $3)
             ON CONFLICT (conversation_id) DO UPDATE
             SET user_seq = EXCLUDED.user_seq, tool_name = EXCLUDED.tool_name,
                 updated_at = clock_timestamp(),
                 partial = CASE WHEN turn_activity.user_seq = EXCLUDED.user_seq
                                THEN turn_activity.partial ELSE '' END
             RETURNING 1
         )
         SELECT pg_notify($4, $5) FROM a",
    )
    .bind(conversation)
    .bind(user_seq)
    .bind(tool_name)
    .bind(events::CHANNEL)
    .bind(events::transient_payload(user, &event))
    .execute(pool)
    .await?;
    Ok(())
}

/// Appends streamed text to the running turn's reply so far and announces it as a delta
/// (with its offset, so a client that read the reply so far can skip what it has).
pub async fn append_partial(
    pool: &PgPool,
    user: Uuid,
    conversation: Uuid,
    user_seq: i64,
    text: &str,
) -> AppResult<()> {
    let mut rest = text;
    // NOTIFY payloads are bounded: a long flush goes out as several deltas.
    while !rest.is_empty() {
        let mut cut = rest.len().min(events::MAX_NOTIFY_BYTES / 2);
        while !rest.is_char_boundary(cut) {
            cut -= 1;
        }
        let (piece, tail) = rest.split_at(cut);
        sqlx::query(
            "WITH a AS (
                 UPDATE turn_activity SET partial = partial || $3
                 WHERE conversation_id = $1 AND user_seq = $2
                 RETURNING char_length(partial) - char_length($3) AS at
             )
             SELECT pg_notify($4, json_build_object('u', $5::uuid, 'e', json_build_object(
                 'type', 'delta', 'conversation_id', $1::uuid, 'seq', $2 + 1, 'text', $3::text,
                 'offset', a.at))::text)
             FROM a",
        )
        .bind(conversation)
        .bind(user_seq)
        .bind(piece)
        .bind(events::CHANNEL)
        .bind(user)
        .execute(pool)
        .await?;
        rest = tail;
    }
    Ok(())
}

/// The running turns of a user: (conversation, user seq, tool in use, reply so far), for a
/// live stream that (re)connects.
pub async fn running_turns(
    pool: &PgPool,
    user: Uuid,
) -> AppResult<Vec<(Uuid, i64, Option<String>, String)>> {
    Ok(sqlx::query_as(
        "SELECT a.conversation_id, a.user_seq, a.tool_name, a.partial
         FROM turn_activity a JOIN conversations c ON c.id = a.conversation_id
         WHERE c.user_id = $1 AND c.deleted_at IS NULL AND a.user_seq = c.last_seq",
    )
    .bind(user)
    .fetch_all(pool)
    .await?)
}

/// The message at `seq`, if any.
pub async fn message_at(
    db: impl sqlx::PgExecutor<'_>,
    conversation: Uuid,
    seq: i64,
) -> AppResult<Option<Message>> {
    Ok(sqlx::query_as::<_, MessageRow>(&format!(
        "SELECT {MESSAGE_COLUMNS} FROM messages WHERE conversation_id = $1 AND seq = $2"
    ))
    .bind(conversation)
    .bind(seq)
    .fetch_optional(db)
    .await?
    .map(Message::from))
}

/// The last message of a conversation, if any.
pub async fn last_message(pool: &PgPool, conversation: Uuid) -> AppResult<Option<Message>> {
    Ok(sqlx::query_as::<_, MessageRow>(&format!(
        "SELECT {MESSAGE_COLUMNS} FROM messages WHERE conversation_id = $1 ORDER BY seq DESC LIMIT 1"
    ))
    .bind(conversation)
    .fetch_optional(pool)
    .await?
    .map(Message::from))
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
        assert_eq!(decode_cursor(&encode_cursor(at, id)).unwrap(), (at, id));
        for bad in [
            "",
            "!!",
            "bm90LWEtY3Vyc29y",
            &URL_SAFE_NO_PAD.encode("12|not-a-uuid"),
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
