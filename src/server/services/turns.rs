//! The durable record of agent turns: which user message a turn answers, who runs it (a lease
//! the owner renews), how it ended, and every tool call it made. Each write that matters is
//! fenced by ownership: a replica that lost its lease can no longer record anything.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use super::messages::{self, NewMessage};
use crate::{
    model::{Message, MessageStatus, Role, ToolCallRecord, ToolCallStatus},
    server::{
        bus::EventBus,
        error::{AppError, AppResult},
    },
};

const TURN_COLUMNS: &str =
    "id, conversation_id, user_id, user_seq, state, attempts, stop_requested, reply_seq";

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct Turn {
    pub id: Uuid,
    pub conversation_id: Uuid,
    pub user_id: Uuid,
    pub user_seq: i64,
    pub state: String,
    pub attempts: i32,
    pub stop_requested: bool,
    pub reply_seq: Option<i64>,
}

impl Turn {
    pub fn is_running(&self) -> bool {
        self.state == "running"
    }
}

/// A new turn could not start because another one runs in the conversation.
pub struct Busy;

fn lease_secs(lease: Duration) -> f64 {
    lease.as_secs_f64()
}

fn is_unique_violation(err: &sqlx::Error, constraint: &str) -> bool {
    matches!(err, sqlx::Error::Database(db) if db.constraint() == Some(constraint))
}

async fn insert_turn(
    tx: &mut PgConnection,
    user: Uuid,
    conversation: Uuid,
    user_seq: i64,
    owner: Uuid,
    lease: Duration,
) -> Result<Turn, sqlx::Error> {
    sqlx::query_as::<_, Turn>(&format!(
        "INSERT INTO turns (id, conversation_id, user_id, user_seq, state, owner, lease_until)
         VALUES ($1, $2, $3, $4, 'running', $5, clock_timestamp() + make_interval(secs => $6))
         RETURNING {TURN_COLUMNS}"
    ))
    .bind(Uuid::new_v4())
    .bind(conversation)
    .bind(user)
    .bind(user_seq)
    .bind(owner)
    .bind(lease_secs(lease))
    .fetch_one(tx)
    .await
}

/// Stores the user message and starts the turn that answers it, in one transaction: there is
/// never a user message without a turn. `Busy` when a turn already runs in the conversation.
pub async fn begin(
    pool: &PgPool,
    bus: &EventBus,
    user: Uuid,
    conversation: Uuid,
    message: NewMessage<'_>,
    owner: Uuid,
    lease: Duration,
) -> AppResult<Result<(Turn, Message), Busy>> {
    let mut tx = pool.begin().await?;
    let (stored, outbox) =
        match messages::append_in(&mut tx, bus, user, conversation, message).await {
            Ok(appended) => appended,
            Err(AppError::Internal(err))
                if err
                    .downcast_ref::<sqlx::Error>()
                    .is_some_and(|e| is_unique_violation(e, "messages_client_id")) =>
            {
                // The same client_id raced in from another request: that one wins.
                return Err(AppError::Conflict(
                    "this message is already being sent".into(),
                ));
            }
            Err(err) => return Err(err),
        };
    match insert_turn(&mut tx, user, conversation, stored.seq, owner, lease).await {
        Ok(turn) => {
            tx.commit().await?;
            outbox.publish(bus, pool).await;
            Ok(Ok((turn, stored)))
        }
        Err(err) if is_unique_violation(&err, "turns_one_running") => Ok(Err(Busy)),
        Err(err) => Err(err.into()),
    }
}

/// Starts a new turn answering an existing user message (an honest retry).
pub async fn begin_again(
    pool: &PgPool,
    user: Uuid,
    conversation: Uuid,
    user_seq: i64,
    owner: Uuid,
    lease: Duration,
) -> AppResult<Result<Turn, Busy>> {
    let mut conn = pool.acquire().await?;
    match insert_turn(&mut conn, user, conversation, user_seq, owner, lease).await {
        Ok(turn) => Ok(Ok(turn)),
        Err(err) if is_unique_violation(&err, "turns_one_running") => Ok(Err(Busy)),
        Err(err) => Err(err.into()),
    }
}

pub async fn get(pool: &PgPool, id: Uuid) -> AppResult<Option<Turn>> {
    Ok(
        sqlx::query_as::<_, Turn>(&format!("SELECT {TURN_COLUMNS} FROM turns WHERE id = $1"))
            .bind(id)
            .fetch_optional(pool)
            .await?,
    )
}

/// Whether a turn runs in the conversation now.
pub async fn running_in(pool: &PgPool, conversation: Uuid) -> AppResult<bool> {
    Ok(sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM turns WHERE conversation_id = $1 AND state = 'running')",
    )
    .bind(conversation)
    .fetch_one(pool)
    .await?)
}

/// The newest turn answering the user message at `user_seq`.
pub async fn latest_for_message(
    pool: &PgPool,
    conversation: Uuid,
    user_seq: i64,
) -> AppResult<Option<Turn>> {
    Ok(sqlx::query_as::<_, Turn>(&format!(
        "SELECT {TURN_COLUMNS} FROM turns WHERE conversation_id = $1 AND user_seq = $2
         ORDER BY created_at DESC LIMIT 1"
    ))
    .bind(conversation)
    .bind(user_seq)
    .fetch_optional(pool)
    .await?)
}

/// Renews the lease. `None`: the turn is no longer ours (taken over, or ended); otherwise
/// whether a stop was requested.
pub async fn renew(
    pool: &PgPool,
    turn: Uuid,
    owner: Uuid,
    lease: Duration,
) -> AppResult<Option<bool>> {
    Ok(sqlx::query_scalar(
        "UPDATE turns SET lease_until = clock_timestamp() + make_interval(secs => $3)
         WHERE id = $1 AND owner = $2 AND state = 'running'
         RETURNING stop_requested",
    )
    .bind(turn)
    .bind(owner)
    .bind(lease_secs(lease))
    .fetch_optional(pool)
    .await?)
}

/// Takes over running turns whose owner let the lease expire (it died or hung).
pub async fn claim_expired(
    pool: &PgPool,
    owner: Uuid,
    lease: Duration,
    limit: i64,
) -> AppResult<Vec<Turn>> {
    Ok(sqlx::query_as::<_, Turn>(&format!(
        "UPDATE turns SET owner = $1, lease_until = clock_timestamp() + make_interval(secs => $2),
                attempts = attempts + 1, updated_at = now()
         WHERE id IN (
             SELECT id FROM turns WHERE state = 'running' AND lease_until < clock_timestamp()
             ORDER BY lease_until LIMIT $3 FOR UPDATE SKIP LOCKED
         )
         RETURNING {TURN_COLUMNS}"
    ))
    .bind(owner)
    .bind(lease_secs(lease))
    .bind(limit)
    .fetch_all(pool)
    .await?)
}

/// A running turn that was asked to stop, and whether its lease has expired (its owner died).
pub struct StopRequest {
    pub turn: Uuid,
    pub lease_expired: bool,
}

/// Marks the conversation's running turn as asked to stop. `None` when nothing runs.
pub async fn request_stop(
    pool: &PgPool,
    user: Uuid,
    conversation: Uuid,
) -> AppResult<Option<StopRequest>> {
    let row: Option<(Uuid, bool)> = sqlx::query_as(
        "UPDATE turns SET stop_requested = true
         WHERE conversation_id = $1 AND user_id = $2 AND state = 'running'
         RETURNING id, lease_until < clock_timestamp()",
    )
    .bind(conversation)
    .bind(user)
    .fetch_optional(pool)
    .await?;
    Ok(row.map(|(turn, lease_expired)| StopRequest {
        turn,
        lease_expired,
    }))
}

/// A recorded tool call, with the turn and the model's call id it belongs to.
pub struct DoneCall {
    pub turn_id: Uuid,
    pub idx: i32,
    pub call_id: String,
    pub record: ToolCallRecord,
}

#[derive(sqlx::FromRow)]
struct CallRow {
    turn_id: Uuid,
    idx: i32,
    call_id: String,
    tool_name: String,
    arguments: sqlx::types::Json<Value>,
    result: sqlx::types::Json<Value>,
    status: String,
    started_at: DateTime<Utc>,
    duration_ms: i64,
}

fn status_of(text: &str) -> ToolCallStatus {
    if text == "success" {
        ToolCallStatus::Success
    } else {
        ToolCallStatus::Error
    }
}

/// Every tool call made while answering the user message at `user_seq`, by any turn (earlier
/// attempts that failed or were stopped included), in the order they ran.
pub async fn done_calls(
    pool: &PgPool,
    conversation: Uuid,
    user_seq: i64,
) -> AppResult<Vec<DoneCall>> {
    let rows = sqlx::query_as::<_, CallRow>(
        "SELECT c.turn_id, c.idx, c.call_id, c.tool_name, c.arguments, c.result, c.status,
                c.started_at, c.duration_ms
         FROM turns t JOIN turn_tool_calls c ON c.turn_id = t.id
         WHERE t.conversation_id = $1 AND t.user_seq = $2
         ORDER BY t.created_at, c.idx",
    )
    .bind(conversation)
    .bind(user_seq)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| DoneCall {
            turn_id: r.turn_id,
            idx: r.idx,
            call_id: r.call_id,
            record: ToolCallRecord {
                tool_name: r.tool_name,
                arguments: r.arguments.0,
                result: r.result.0,
                timestamp: r.started_at,
                duration_ms: r.duration_ms,
                status: status_of(&r.status),
            },
        })
        .collect())
}

/// Where a tool call of a turn is recorded: the turn, its owner (the fence), the call's place.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct CallSlot {
    pub turn: Uuid,
    pub owner: Uuid,
    pub idx: i32,
    pub call_id: String,
}

/// Inside the tool's transaction, before its effect: `Err(Conflict)` unless `slot.owner` still
/// runs the turn (the row stays share-locked until commit, so no takeover can slip in), and the
/// recorded outcome if this call already ran.
pub async fn check_slot(
    tx: &mut PgConnection,
    user: Uuid,
    slot: &CallSlot,
) -> AppResult<Option<(Value, ToolCallStatus)>> {
    let row: Option<(Option<sqlx::types::Json<Value>>, Option<String>)> = sqlx::query_as(
        "SELECT c.result, c.status FROM turns t
         LEFT JOIN turn_tool_calls c ON c.turn_id = t.id AND c.idx = $4
         WHERE t.id = $1 AND t.owner = $2 AND t.user_id = $3 AND t.state = 'running'
         FOR SHARE OF t",
    )
    .bind(slot.turn)
    .bind(slot.owner)
    .bind(user)
    .bind(slot.idx)
    .fetch_optional(&mut *tx)
    .await?;
    match row {
        None => Err(AppError::Conflict(
            "this turn is no longer run here; the call was not made".into(),
        )),
        Some((Some(result), Some(status))) => Ok(Some((result.0, status_of(&status)))),
        Some(_) => Ok(None),
    }
}

/// Records a tool call in the transaction that made its effect.
pub async fn record_call(
    tx: &mut PgConnection,
    slot: &CallSlot,
    record: &ToolCallRecord,
) -> AppResult<()> {
    sqlx::query(
        "INSERT INTO turn_tool_calls
             (turn_id, idx, call_id, tool_name, arguments, result, status, started_at, duration_ms)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(slot.turn)
    .bind(slot.idx)
    .bind(&slot.call_id)
    .bind(&record.tool_name)
    .bind(sqlx::types::Json(&record.arguments))
    .bind(sqlx::types::Json(&record.result))
    .bind(match record.status {
        ToolCallStatus::Success => "success",
        ToolCallStatus::Error => "error",
    })
    .bind(record.timestamp)
    .bind(record.duration_ms)
    .execute(tx)
    .await?;
    Ok(())
}

/// How ending a turn went.
pub enum Finished {
    /// The reply is stored and the turn ended with its status.
    Stored(Message),
    /// Another replica owns the turn now: nothing was written.
    NotOwner,
    /// The conversation was deleted: the turn ended as `error` without a reply.
    ConversationGone,
}

/// Ends a turn: its reply, its outcome and the removal of its progress row commit together,
/// and only while `owner` still owns it.
pub async fn finish(
    pool: &PgPool,
    bus: &EventBus,
    turn: &Turn,
    owner: Uuid,
    content: &str,
    status: MessageStatus,
    tool_calls: Option<&crate::model::ToolCalls>,
) -> AppResult<Finished> {
    let mut tx = pool.begin().await?;
    let reply = NewMessage {
        role: Role::Assistant,
        content,
        tool_calls,
        status,
        client_id: None,
    };
    let appended =
        messages::append_in(&mut tx, bus, turn.user_id, turn.conversation_id, reply).await;
    let (stored, outbox) = match appended {
        Ok(appended) => appended,
        Err(AppError::NotFound(_)) => {
            drop(tx);
            end_without_reply(pool, turn, owner, "the conversation was deleted").await?;
            return Ok(Finished::ConversationGone);
        }
        Err(err) => return Err(err),
    };
    // Fenced: only the owner ends the turn; otherwise the reply above rolls back.
    let owned: Option<i32> = sqlx::query_scalar(
        "WITH t AS (
             UPDATE turns SET state = $3, reply_seq = $4, updated_at = now(), lease_until = NULL
             WHERE id = $1 AND owner = $2 AND state = 'running' RETURNING conversation_id
         ), a AS (
             DELETE FROM turn_activity WHERE conversation_id IN (SELECT conversation_id FROM t)
         )
         SELECT 1 FROM t",
    )
    .bind(turn.id)
    .bind(owner)
    .bind(status.as_str())
    .bind(stored.seq)
    .fetch_optional(&mut *tx)
    .await?;
    if owned.is_none() {
        return Ok(Finished::NotOwner);
    }
    tx.commit().await?;
    outbox.publish(bus, pool).await;
    Ok(Finished::Stored(stored))
}

/// Ends a turn as `error` with no reply (there is nowhere to store one).
async fn end_without_reply(pool: &PgPool, turn: &Turn, owner: Uuid, why: &str) -> AppResult<()> {
    let mut tx = pool.begin().await?;
    sqlx::query(
        "UPDATE turns SET state = 'error', error_detail = $3, updated_at = now(), lease_until = NULL
         WHERE id = $1 AND owner = $2 AND state = 'running'",
    )
    .bind(turn.id)
    .bind(owner)
    .bind(why)
    .execute(&mut *tx)
    .await?;
    sqlx::query("DELETE FROM turn_activity WHERE conversation_id = $1")
        .bind(turn.conversation_id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}

/// The conversation's last user message and whether it still waits for an answer that no
/// turn is giving (its last turn ended `error` or `stopped`, or it has no reply at all).
pub async fn retryable_message(
    pool: &PgPool,
    user: Uuid,
    conversation: Uuid,
) -> AppResult<Option<Message>> {
    let last_user_seq: Option<i64> = sqlx::query_scalar(
        "SELECT max(m.seq) FROM messages m JOIN conversations c ON c.id = m.conversation_id
         WHERE m.conversation_id = $1 AND c.user_id = $2 AND c.deleted_at IS NULL AND m.role = 'user'",
    )
    .bind(conversation)
    .bind(user)
    .fetch_one(pool)
    .await?;
    let Some(seq) = last_user_seq else {
        return Ok(None);
    };
    // Retryable while the newest message is that user message (unanswered) or a reply that
    // failed or was stopped; a complete reply answered it.
    let newest = messages::last_message(pool, conversation).await?;
    if newest.is_some_and(|m| m.role == Role::Assistant && m.status == MessageStatus::Complete) {
        return Ok(None);
    }
    messages::message_at(pool, conversation, seq).await
}
