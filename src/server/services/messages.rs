//! The messages of a conversation: pages (with a running turn's activity), appending with a
//! gap-free `seq`, idempotency by `client_id`, the agent's history. Every query is scoped by
//! the caller's user id, through the conversation.

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use super::{
    branches,
    chat::{
        auto_title, conversation_not_found, page_limit, preview, ConversationRow,
        CONVERSATION_COLUMNS,
    },
    events,
};
use crate::{
    model::{
        ActivityState, BranchChange, BranchView, LiveEvent, Message, MessagePage, MessageQuery,
        MessageStatus, Role, ToolCallRecord, ToolCalls, TurnActivity,
    },
    server::{
        bus::EventBus,
        error::{AppError, AppResult},
    },
};

pub(super) const MESSAGE_COLUMNS: &str =
    "id, conversation_id, seq, role, content, tool_calls, status, created_at, client_id, \
     parent_id, branch_changes";

#[derive(sqlx::FromRow)]
pub(super) struct MessageRow {
    id: Uuid,
    conversation_id: Uuid,
    seq: i64,
    role: String,
    content: String,
    tool_calls: Option<sqlx::types::Json<ToolCalls>>,
    status: String,
    created_at: DateTime<Utc>,
    client_id: Option<Uuid>,
    parent_id: Option<Uuid>,
    branch_changes: Option<sqlx::types::Json<Vec<BranchChange>>>,
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
            parent_id: r.parent_id,
            sibling_index: 1,
            sibling_count: 1,
            sibling_ids: Vec::new(),
            branch_changes: r.branch_changes.map(|j| j.0).unwrap_or_default(),
        }
    }
}

impl MessageRow {
    pub(super) fn seq(&self) -> i64 {
        self.seq
    }
}

/// A message read with its siblings' ids (`SIBLINGS` of `messages m`).
#[derive(sqlx::FromRow)]
pub(super) struct RowWithSiblings {
    #[sqlx(flatten)]
    pub(super) message: MessageRow,
    pub(super) sibling_ids: Option<Vec<Uuid>>,
}

impl From<RowWithSiblings> for Message {
    fn from(r: RowWithSiblings) -> Self {
        with_siblings(r.message, r.sibling_ids)
    }
}

/// The ids of `m`'s siblings (itself among them), in seq order.
const SIBLINGS: &str =
    "ARRAY(SELECT s.id FROM messages s WHERE s.sibling_of = m.sibling_of ORDER BY s.seq) AS sibling_ids";

/// A message with its siblings' ids (this one among them), in `seq` order.
pub(super) fn with_siblings(row: MessageRow, siblings: Option<Vec<Uuid>>) -> Message {
    let mut message = Message::from(row);
    if let Some(ids) = siblings.filter(|ids| ids.len() > 1) {
        if let Some(at) = ids.iter().position(|id| *id == message.id) {
            message.sibling_index = at as i32 + 1;
            message.sibling_count = ids.len() as i32;
            message.sibling_ids = ids;
        }
    }
    message
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
    // Polling (after, since) reads every branch, unless `branch=current` says otherwise; so
    // does `branch=all`. The current branch of a conversation that never branched is every
    // message, read by `seq` alone.
    let every_branch = query.branch == Some(BranchView::All)
        || query.since.is_some()
        || (query.after.is_some() && query.branch != Some(BranchView::Current));
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
        "SELECT c.message_count, c.branched, c.current_message_id,
                (SELECT depth FROM messages WHERE id = c.current_message_id) AS current_depth,
                a.user_seq AS activity_seq, a.tool_name AS activity_tool,
                a.updated_at AS activity_since, w.parked_seq, w.parked_since, w.approvals,
                m.id, m.conversation_id, m.seq, m.role, m.content, m.tool_calls, m.status, m.created_at,
                m.client_id, m.parent_id, m.branch_changes, m.sibling_ids
         FROM conversations c
         LEFT JOIN turn_activity a ON a.conversation_id = c.id
             AND (a.user_seq = c.last_seq OR c.branched)
         LEFT JOIN LATERAL (
             SELECT t.user_seq AS parked_seq, min(p.created_at) AS parked_since,
                    jsonb_agg(jsonb_build_object('call_id', p.call_id, 'tool_name', p.tool_name,
                                                 'arguments', p.arguments, 'task', p.task)
                              ORDER BY p.idx) AS approvals
             FROM turn_approvals p JOIN turns t ON t.id = p.turn_id
             WHERE p.conversation_id = c.id AND p.decision IS NULL
               AND t.state = 'awaiting_approval'
             GROUP BY t.user_seq
         ) w ON true
         LEFT JOIN LATERAL (
             SELECT {MESSAGE_COLUMNS},
                    CASE WHEN c.branched THEN
                        ARRAY(SELECT s.id FROM messages s WHERE s.sibling_of = x.sibling_of ORDER BY s.seq)
                    END AS sibling_ids
             FROM messages x
             WHERE conversation_id = c.id AND {condition} AND ($6 OR NOT c.branched)
             ORDER BY {order} LIMIT $5
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
        .bind(every_branch)
        .fetch_all(pool)
        .await?;
    let first = rows.first().ok_or_else(conversation_not_found)?;
    let activity = match (first.activity_seq, first.activity_since) {
        _ if first.approvals.is_some() => first.approvals.as_ref().map(|approvals| TurnActivity {
            user_seq: first.parked_seq.unwrap_or_default(),
            tool_name: approvals.0.first().map(|a| a.tool_name.clone()),
            since: first.parked_since.unwrap_or_else(Utc::now),
            state: ActivityState::Approval,
            approvals: approvals.0.clone(),
        }),
        (Some(user_seq), Some(since)) => Some(TurnActivity {
            user_seq,
            tool_name: first.activity_tool.clone(),
            since,
            state: if first.activity_tool.is_some() {
                ActivityState::Tool
            } else {
                ActivityState::Thinking
            },
            approvals: vec![],
        }),
        _ => None,
    };
    if first.branched && !every_branch {
        let leaf = first.current_message_id;
        let (messages, has_more) =
            branches::page(pool, id, leaf, query.before, query.after, limit).await?;
        return Ok(MessagePage {
            messages,
            conversation_id: id,
            total_count: i64::from(first.current_depth.unwrap_or(0)),
            has_more,
            activity,
            current_message_id: leaf,
        });
    }
    let total = first.message_count;
    let current_message_id = first.current_message_id;
    let newest_first = query.after.is_none() && query.since.is_none();
    let mut rows: Vec<(MessageRow, Option<Vec<Uuid>>)> =
        rows.into_iter().filter_map(PageRow::into_message).collect();
    let has_more = rows.len() as i64 > limit;
    rows.truncate(limit as usize);
    if newest_first {
        rows.reverse();
    }
    Ok(MessagePage {
        messages: rows
            .into_iter()
            .map(|(row, siblings)| with_siblings(row, siblings))
            .collect(),
        conversation_id: id,
        total_count: i64::from(total),
        has_more,
        activity,
        current_message_id,
    })
}

/// A row of the one-query message page: the conversation's total and, if any, one message.
#[derive(sqlx::FromRow)]
struct PageRow {
    message_count: i32,
    branched: bool,
    current_message_id: Option<Uuid>,
    current_depth: Option<i32>,
    activity_seq: Option<i64>,
    activity_tool: Option<String>,
    activity_since: Option<DateTime<Utc>>,
    parked_seq: Option<i64>,
    parked_since: Option<DateTime<Utc>>,
    approvals: Option<sqlx::types::Json<Vec<crate::model::PendingApproval>>>,
    id: Option<Uuid>,
    conversation_id: Option<Uuid>,
    seq: Option<i64>,
    role: Option<String>,
    content: Option<String>,
    tool_calls: Option<sqlx::types::Json<ToolCalls>>,
    status: Option<String>,
    created_at: Option<DateTime<Utc>>,
    client_id: Option<Uuid>,
    parent_id: Option<Uuid>,
    branch_changes: Option<sqlx::types::Json<Vec<BranchChange>>>,
    sibling_ids: Option<Vec<Uuid>>,
}

impl PageRow {
    fn into_message(self) -> Option<(MessageRow, Option<Vec<Uuid>>)> {
        Some((
            MessageRow {
                id: self.id?,
                conversation_id: self.conversation_id?,
                seq: self.seq?,
                role: self.role?,
                content: self.content?,
                tool_calls: self.tool_calls,
                status: self.status?,
                created_at: self.created_at?,
                client_id: self.client_id,
                parent_id: self.parent_id,
                branch_changes: self.branch_changes,
            },
            self.sibling_ids,
        ))
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
    /// Where it goes in the conversation's tree.
    pub parent: Parent,
    /// An answer's changes from other branches (see `BranchChange`).
    pub branch_changes: &'a [BranchChange],
}

/// The message a new one follows.
#[derive(Clone, Copy, Debug)]
pub enum Parent {
    /// The current leaf: a send continues the branch shown.
    Current,
    /// This message (`None`: a first message): an edit starts a branch beside the message it
    /// replaces.
    Message(Option<Uuid>),
    /// The message at this `seq`: an answer follows the user message its turn answers.
    AtSeq(i64),
}

/// Appends a message with the next `seq`, allocated under the conversation row's lock inside
/// the caller's transaction (a turn stores its message and its record at once): a poller
/// reading `after=seq` can never skip a message that commits later. A user message becomes
/// the current leaf; an answer does when its user message still is (the reader did not move
/// to another branch meanwhile). The outbox holds its live events for after the commit.
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
    let forks = matches!(message.parent, Parent::Message(_));
    let appended = sqlx::query_as::<_, SeqAndConversation>(&format!(
        "UPDATE conversations SET
             last_seq = last_seq + 1,
             message_count = message_count + 1,
             updated_at = clock_timestamp(),
             last_message_preview = $3,
             title = CASE WHEN $4::text IS NOT NULL AND NOT title_is_custom AND message_count = 0 THEN $4 ELSE title END,
             branched = branched OR $5
         WHERE id = $1 AND user_id = $2 AND deleted_at IS NULL
         RETURNING last_seq, branched, {CONVERSATION_COLUMNS}"
    ))
    .bind(conversation)
    .bind(user)
    .bind(preview(message.content, message.role))
    .bind(first_title)
    .bind(forks)
    .fetch_optional(&mut *tx)
    .await?
    .ok_or_else(conversation_not_found)?;
    let seq = appended.last_seq;
    let mut changed = appended.conversation;
    let (parent_id, parent_seq) = match message.parent {
        Parent::Current => match changed.current_message_id {
            Some(id) => (Some(id), None),
            // Never pointed (bulk-written): the straight line's last message.
            None => (None, (seq > 1).then_some(seq - 1)),
        },
        Parent::Message(id) => (id, None),
        Parent::AtSeq(at) => (None, Some(at)),
    };
    let row = sqlx::query_as::<_, AppendedRow>(&format!(
        "WITH parent AS (
             SELECT id, depth FROM messages WHERE id = $9
             UNION ALL
             SELECT id, depth FROM messages WHERE $9::uuid IS NULL AND conversation_id = $2 AND seq = $10
         ), m AS (
             INSERT INTO messages (id, conversation_id, seq, role, content, tool_calls, status,
                                   client_id, parent_id, depth, branch_changes)
             SELECT $1, $2, $3, $4, $5, $6, $7, $8, (SELECT id FROM parent LIMIT 1),
                    COALESCE((SELECT depth FROM parent LIMIT 1), 0) + 1, $12
             RETURNING {MESSAGE_COLUMNS}, sibling_of
         ), c AS (
             UPDATE conversations SET current_message_id = m.id FROM m
             WHERE conversations.id = $2
               AND ($11 OR conversations.current_message_id IS NOT DISTINCT FROM m.parent_id)
             RETURNING 1
         )
         SELECT m.*, EXISTS (SELECT 1 FROM c) AS became_current,
                CASE WHEN $13 THEN
                    ARRAY(SELECT s.id FROM messages s WHERE s.sibling_of = m.sibling_of ORDER BY s.seq)
                END AS older_siblings
         FROM m"
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
    .bind(parent_id)
    .bind(parent_seq)
    .bind(message.role == Role::User)
    .bind((!message.branch_changes.is_empty()).then_some(sqlx::types::Json(message.branch_changes)))
    .bind(appended.branched)
    .fetch_one(&mut *tx)
    .await?;
    let siblings = row.older_siblings.map(|mut ids| {
        ids.push(row.message.id);
        ids
    });
    if row.became_current {
        changed.current_message_id = Some(row.message.id);
    }
    let stored = with_siblings(row.message, siblings);
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
    branched: bool,
    #[sqlx(flatten)]
    conversation: ConversationRow,
}

#[derive(sqlx::FromRow)]
struct AppendedRow {
    #[sqlx(flatten)]
    message: MessageRow,
    became_current: bool,
    older_siblings: Option<Vec<Uuid>>,
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

/// The user message sent with `client_id`, and the first answer to it, if any.
pub async fn find_by_client_id(
    pool: &PgPool,
    conversation: Uuid,
    client_id: Uuid,
) -> AppResult<Option<(Message, Option<Message>)>> {
    let rows = sqlx::query_as::<_, RowWithSiblings>(&format!(
        "WITH sent AS (
             SELECT {PATH_COLUMNS}, {SIBLINGS} FROM messages m
             WHERE conversation_id = $1 AND client_id = $2
         )
         SELECT * FROM sent
         UNION ALL
         (SELECT {PATH_COLUMNS}, {SIBLINGS} FROM messages m
          WHERE sibling_of = (SELECT id FROM sent) AND parent_id IS NOT NULL
          ORDER BY seq LIMIT 1)"
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

/// The `limit` messages of the branch ending at `up_to_seq`, oldest first: the agent's
/// history (the path from the first message; other branches are not in it). A conversation
/// that never branched is read by `seq`.
pub async fn history(
    pool: &PgPool,
    conversation: Uuid,
    up_to_seq: i64,
    limit: i64,
) -> AppResult<Vec<Message>> {
    let mut rows = sqlx::query_as::<_, MessageRow>(&format!(
        "WITH RECURSIVE c AS (SELECT branched FROM conversations WHERE id = $1),
         path AS (
             SELECT {MESSAGE_COLUMNS}, 1 AS n FROM messages
             WHERE conversation_id = $1 AND seq = $2 AND (SELECT branched FROM c)
             UNION ALL
             SELECT {PATH_COLUMNS}, path.n + 1 FROM path JOIN messages m ON m.id = path.parent_id
             WHERE path.n < $3
         )
         SELECT {MESSAGE_COLUMNS} FROM path
         UNION ALL
         (SELECT {MESSAGE_COLUMNS} FROM messages
          WHERE conversation_id = $1 AND seq <= $2 AND NOT (SELECT branched FROM c)
          ORDER BY seq DESC LIMIT $3)"
    ))
    .bind(conversation)
    .bind(up_to_seq)
    .bind(limit.max(1))
    .fetch_all(pool)
    .await?;
    // A branch's seq grows from its first message to its last.
    rows.sort_by_key(|r| r.seq);
    Ok(rows.into_iter().map(Message::from).collect())
}

/// `MESSAGE_COLUMNS` of `messages m`, for the recursive step of a walk up a branch.
pub(super) const PATH_COLUMNS: &str = "m.id, m.conversation_id, m.seq, m.role, m.content, \
     m.tool_calls, m.status, m.created_at, m.client_id, m.parent_id, m.branch_changes";

/// The message at `seq`, if any.
pub async fn message_at(
    db: impl sqlx::PgExecutor<'_>,
    conversation: Uuid,
    seq: i64,
) -> AppResult<Option<Message>> {
    Ok(sqlx::query_as::<_, RowWithSiblings>(&format!(
        "SELECT {PATH_COLUMNS}, {SIBLINGS} FROM messages m WHERE conversation_id = $1 AND seq = $2"
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
    sqlx::query_as::<_, RowWithSiblings>(&format!(
        "SELECT {PATH_COLUMNS}, {SIBLINGS}
         FROM messages m JOIN conversations c ON c.id = m.conversation_id
         WHERE m.id = $1 AND m.conversation_id = $2 AND c.user_id = $3 AND c.deleted_at IS NULL"
    ))
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
