//! The tree of a conversation's messages (issue 23): the branch shown (a walk up from its
//! leaf), moving to another branch, and what other branches did to the user's tasks (a new
//! branch starts from a task list those changes are still in).

use sqlx::PgPool;
use uuid::Uuid;

use super::{
    chat::{ConversationRow, CONVERSATION_COLUMNS},
    events,
    messages::{self, with_siblings, MessageRow, MESSAGE_COLUMNS, PATH_COLUMNS},
};
use crate::{
    model::{BranchChange, Conversation, LiveEvent, Message, TaskNow},
    server::{
        bus::EventBus,
        error::{AppError, AppResult},
    },
};

/// The task tools whose calls change tasks.
const CHANGING_TOOLS: [&str; 4] = ["add_task", "complete_task", "update_task", "delete_task"];

#[derive(sqlx::FromRow)]
struct BranchRow {
    #[sqlx(flatten)]
    message: MessageRow,
    sibling_ids: Vec<Uuid>,
}

/// One page of the branch ending at `leaf` (the newest message when unset), oldest first,
/// and whether more remain: the `limit` newest messages with a seq below `before`, or the
/// `limit` oldest above `after`. The walk up from the leaf stops as soon as the page is full
/// (or below `after`), so a page costs its own length plus the distance from the leaf.
pub(super) async fn page(
    pool: &PgPool,
    conversation: Uuid,
    leaf: Option<Uuid>,
    before: Option<i64>,
    after: Option<i64>,
    limit: i64,
) -> AppResult<(Vec<Message>, bool)> {
    // Walk order is newest first: without an ORDER BY the LIMIT ends the walk early.
    let pick = if after.is_some() {
        "ORDER BY n DESC LIMIT $5"
    } else {
        "LIMIT $5"
    };
    let mut rows = sqlx::query_as::<_, BranchRow>(&format!(
        "WITH RECURSIVE path AS (
             SELECT {MESSAGE_COLUMNS}, sibling_of, 1 AS n FROM messages
             WHERE conversation_id = $1
               AND id = COALESCE($2, (SELECT id FROM messages WHERE conversation_id = $1
                                      ORDER BY seq DESC LIMIT 1))
             UNION ALL
             SELECT {PATH_COLUMNS}, m.sibling_of, path.n + 1
             FROM path JOIN messages m ON m.id = path.parent_id
             WHERE path.seq > $4
         )
         SELECT {MESSAGE_COLUMNS},
                ARRAY(SELECT s.id FROM messages s WHERE s.sibling_of = path.sibling_of
                      ORDER BY s.seq) AS sibling_ids
         FROM path WHERE seq < $3 AND seq > $4
         {pick}"
    ))
    .bind(conversation)
    .bind(leaf)
    .bind(before.unwrap_or(i64::MAX))
    .bind(after.unwrap_or(0))
    .bind(limit + 1)
    .fetch_all(pool)
    .await?;
    let has_more = rows.len() as i64 > limit;
    // The newest `limit` (walking up), or the oldest `limit` (above `after`).
    rows.sort_by_key(|r| r.message.seq());
    if has_more {
        if after.is_some() {
            rows.truncate(limit as usize);
        } else {
            rows.remove(0);
        }
    }
    Ok((
        rows.into_iter()
            .map(|r| with_siblings(r.message, Some(r.sibling_ids)))
            .collect(),
        has_more,
    ))
}

/// Shows the branch through `message`: its most recent descendant becomes the current leaf
/// (stored, so a reload and every device show it; other tabs follow its event). Refused while
/// an answer is being written in the conversation.
pub async fn switch(
    pool: &PgPool,
    bus: &EventBus,
    user: Uuid,
    conversation: Uuid,
    message: Uuid,
) -> AppResult<Conversation> {
    messages::by_id(pool, user, conversation, message).await?;
    let mut tx = pool.begin().await?;
    // Under the conversation's lock, like the start of every turn: a turn either started
    // before (the switch is refused) or starts after it, from the branch chosen.
    sqlx::query("SELECT 1 FROM conversations WHERE id = $1 AND user_id = $2 FOR UPDATE")
        .bind(conversation)
        .bind(user)
        .execute(&mut *tx)
        .await?;
    let running: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM turns WHERE conversation_id = $1 AND state = 'running')",
    )
    .bind(conversation)
    .fetch_one(&mut *tx)
    .await?;
    if running {
        return Err(AppError::Conflict(
            "an answer is being written in this conversation; stop it or wait for it before switching branches"
                .into(),
        ));
    }
    // The newest message of a subtree is one of its leaves (a child is always newer).
    let row = sqlx::query_as::<_, ConversationRow>(&format!(
        "WITH RECURSIVE below AS (
             SELECT id, seq FROM messages WHERE id = $2
             UNION ALL
             SELECT m.id, m.seq FROM below JOIN messages m ON m.sibling_of = below.id
             WHERE m.parent_id = below.id
         )
         UPDATE conversations
         SET current_message_id = (SELECT id FROM below ORDER BY seq DESC LIMIT 1)
         WHERE id = $1 AND user_id = $3 AND deleted_at IS NULL
         RETURNING {CONVERSATION_COLUMNS}"
    ))
    .bind(conversation)
    .bind(message)
    .bind(user)
    .fetch_optional(&mut *tx)
    .await?
    .ok_or_else(|| AppError::NotFound("conversation".into()))?;
    let changed = Conversation::from(row);
    let outbox = events::record(
        &mut tx,
        bus,
        user,
        &LiveEvent::Conversation(changed.clone()),
    )
    .await?;
    tx.commit().await?;
    outbox.publish(bus, pool).await;
    Ok(changed)
}

/// A task change made on another branch, whether it was made answering the very user message
/// being answered now (an earlier answer to it, which the prompt replays as calls), and
/// whether an earlier answer on this branch already showed it.
pub struct ChangeElsewhere {
    pub change: BranchChange,
    pub same_message: bool,
    pub shown: bool,
}

#[derive(sqlx::FromRow)]
struct CallRow {
    user_seq: i64,
    tool_name: String,
    result: sqlx::types::Json<serde_json::Value>,
    shown: bool,
}

/// The task changes made by every other turn of the conversation whose answer is not on the
/// branch ending at `user_seq` (abandoned answers and edited-away branches), oldest first,
/// with each task as it is now. Nothing to read in a conversation that never branched.
pub async fn changes_elsewhere(
    pool: &PgPool,
    user: Uuid,
    conversation: Uuid,
    turn: Uuid,
    user_seq: i64,
) -> AppResult<Vec<ChangeElsewhere>> {
    let calls = sqlx::query_as::<_, CallRow>(
        "WITH RECURSIVE path AS (
             SELECT id, parent_id, seq, branch_changes FROM messages
             WHERE conversation_id = $1 AND seq = $2
             UNION ALL
             SELECT m.id, m.parent_id, m.seq, m.branch_changes
             FROM path JOIN messages m ON m.id = path.parent_id
         )
         SELECT t.user_seq, c.tool_name, c.result,
                EXISTS (SELECT 1 FROM path p, jsonb_array_elements(p.branch_changes) e
                        WHERE p.branch_changes IS NOT NULL
                          AND e->>'tool_name' = c.tool_name
                          AND e->>'action' IS NOT DISTINCT FROM c.result->>'status'
                          AND e->>'task_id' IS NOT DISTINCT FROM c.result->>'task_id') AS shown
         FROM turns t JOIN turn_tool_calls c ON c.turn_id = t.id
         WHERE (SELECT branched FROM conversations WHERE id = $1)
           AND t.conversation_id = $1 AND t.id <> $3 AND c.status = 'success'
           AND c.tool_name = ANY($4)
           AND (t.reply_seq IS NULL OR t.reply_seq NOT IN (SELECT seq FROM path))
         ORDER BY t.created_at, c.idx",
    )
    .bind(conversation)
    .bind(user_seq)
    .bind(turn)
    .bind(&CHANGING_TOOLS[..])
    .fetch_all(pool)
    .await?;
    if calls.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<i32> = calls
        .iter()
        .filter_map(|c| c.result.0.get("task_id")?.as_i64())
        .filter_map(|id| i32::try_from(id).ok())
        .collect();
    let tasks: Vec<(i32, bool)> =
        sqlx::query_as("SELECT id, completed FROM tasks WHERE user_id = $1 AND id = ANY($2) AND deleted_at IS NULL")
            .bind(user)
            .bind(&ids)
            .fetch_all(pool)
            .await?;
    Ok(calls
        .into_iter()
        .map(|c| {
            let result = &c.result.0;
            let task_id = result.get("task_id").and_then(serde_json::Value::as_i64);
            let now = match tasks.iter().find(|(id, _)| Some(i64::from(*id)) == task_id) {
                Some((_, true)) => TaskNow::Completed,
                Some((_, false)) => TaskNow::Pending,
                None => TaskNow::Deleted,
            };
            let text = |key: &str| result.get(key).and_then(|v| v.as_str()).map(String::from);
            ChangeElsewhere {
                change: BranchChange {
                    tool_name: c.tool_name,
                    action: text("status").unwrap_or_else(|| "changed".into()),
                    task_id,
                    title: text("title"),
                    now,
                },
                same_message: c.user_seq == user_seq,
                shown: c.shown,
            }
        })
        .collect())
}
