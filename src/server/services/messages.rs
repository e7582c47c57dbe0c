//! The messages of a conversation: pages (with a running turn's activity), appending with a
//! gap-free `seq`, idempotency by `client_id`, the agent's history. Every query is scoped by
//! the caller's user id, through the conversation.

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use super::{
    chat::{
        auto_title, conversation_not_found, page_limit, preview, ConversationRow,
        CONVERSATION_COLUMNS,
    },
    events,
};
use crate::{
    model::{
        LiveEvent, Message, MessagePage, MessageQuery, MessageStatus, Role, ToolCallRecord,
        ToolCalls, TurnActivity,
    },
    server::{
        bus::EventBus,
        error::{AppError, AppResult},
    },
};

const MESSAGE_COLUMNS: &str =
    "id, conversation_id, seq, role, content, tool_calls, status, created_at, client_id";

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
    client_id: Option<Uuid>,
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
            client_id: r.client_id,
            html: None,
        }
    }
}

pub async fn page(
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
                m.id, m.conversation_id, m.seq, m.role, m.content, m.tool_calls, m.status, m.created_at,
                m.client_id
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
    client_id: Option<Uuid>,
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
            client_id: self.client_id,
        })
    }
}

/// The id of the message at `seq` in `conversation`: derived, so a stream can name the reply
/// a running turn will store (ChatKit's `thread.item.added` before its `thread.item.done`).
/// (conversation, seq) is unique, hence so is the id.
pub fn message_id(conversation: Uuid, seq: i64) -> Uuid {
    Uuid::new_v5(&conversation, &seq.to_be_bytes())
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
/// the caller's transaction (a turn stores its message and its record at once): a poller
/// reading `after=seq` can never skip a message that commits later. The outbox holds its
/// live events for after the commit.
pub async fn append_in(
    tx: &mut PgConnection,
    bus: &EventBus,
    user: Uuid,
    conversation: Uuid,
    message: NewMessage<'_>,
) -> AppResult<(Message, events::Outbox)> {
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
    .bind(message_id(conversation, seq))
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
    let outbox = events::record_all(
        tx,
        bus,
        user,
        &[
            &LiveEvent::Message(stored.clone()),
            &LiveEvent::Conversation(changed.into()),
        ],
    )
    .await?;
    Ok((stored, outbox))
}

#[derive(sqlx::FromRow)]
struct SeqAndConversation {
    last_seq: i64,
    #[sqlx(flatten)]
    conversation: ConversationRow,
}

/// Replaces NUL characters in every string of a JSON value (jsonb cannot store them).
pub(crate) fn without_nul(value: serde_json::Value) -> serde_json::Value {
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

/// The message `id` of the user's conversation: "not found" when either is someone else's,
/// deleted or missing.
pub async fn by_id(pool: &PgPool, user: Uuid, conversation: Uuid, id: Uuid) -> AppResult<Message> {
    sqlx::query_as::<_, MessageRow>(
        "SELECT m.id, m.conversation_id, m.seq, m.role, m.content, m.tool_calls, m.status,
                m.created_at, m.client_id
         FROM messages m JOIN conversations c ON c.id = m.conversation_id
         WHERE m.id = $1 AND m.conversation_id = $2 AND c.user_id = $3 AND c.deleted_at IS NULL",
    )
    .bind(id)
    .bind(conversation)
    .bind(user)
    .fetch_optional(pool)
    .await?
    .map(Message::from)
    .ok_or_else(|| AppError::NotFound("message".into()))
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
