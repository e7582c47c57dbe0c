//! The durable tool-call record of a turn. A call of an agent turn runs in one transaction with
//! its record (`begin_call` … `RecordedCall::commit`), fenced by the attempt and its lease, so
//! a call that completed is never run again: a replay finds its row and returns the recorded
//! result, but only to the same tool with the same arguments.

use std::time::Instant;

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::{PgConnection, PgPool, Postgres, Transaction};
use uuid::Uuid;

use super::super::messages::without_nul;
use crate::{
    model::{TaskChange, ToolCallRecord, ToolCallStatus},
    server::error::{AppError, AppResult},
};

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
    change: Option<sqlx::types::Json<TaskChange>>,
}

fn status_of(text: &str) -> ToolCallStatus {
    ToolCallStatus::parse(text)
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
                c.started_at, c.duration_ms, c.change
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
            call_id: r.call_id.clone(),
            record: record_of(r),
        })
        .collect())
}

/// The records of one turn's calls, in order (a parked turn's reply lists them).
pub async fn done_calls_of_turn(
    db: &mut PgConnection,
    turn: Uuid,
) -> AppResult<Vec<ToolCallRecord>> {
    let rows = sqlx::query_as::<_, CallRow>(
        "SELECT turn_id, idx, call_id, tool_name, arguments, result, status, started_at,
                duration_ms, change
         FROM turn_tool_calls WHERE turn_id = $1 ORDER BY idx",
    )
    .bind(turn)
    .fetch_all(db)
    .await?;
    Ok(rows.into_iter().map(record_of).collect())
}

fn record_of(r: CallRow) -> ToolCallRecord {
    ToolCallRecord {
        tool_name: r.tool_name,
        arguments: r.arguments.0,
        result: r.result.0,
        timestamp: r.started_at,
        duration_ms: r.duration_ms,
        status: status_of(&r.status),
        change: r.change.map(|c| c.0),
        undone_at: None,
    }
}

/// Where a tool call of a turn is recorded: the turn, the attempt making it (the fence), the
/// call's place in the turn.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct CallSlot {
    pub turn: Uuid,
    pub attempt: Uuid,
    pub idx: i32,
    pub call_id: String,
}

/// How a recorded call begins.
pub enum CallStart {
    /// This very call already ran (an earlier attempt made it): its recorded outcome.
    Replay(Value, ToolCallStatus, Option<TaskChange>),
    /// It runs now, inside this transaction.
    Fresh(RecordedCall),
}

/// A tool call running in the transaction that will hold its record.
pub struct RecordedCall {
    tx: Transaction<'static, Postgres>,
    slot: CallSlot,
    tool_name: String,
    arguments: Value,
    started: DateTime<Utc>,
    clock: Instant,
}

/// Opens the call's transaction. `Err(Conflict)` unless `slot.attempt` still holds the turn's
/// lease (the row stays key-share-locked until commit, so no takeover's `FOR UPDATE` can slip
/// in, while renewals and stop requests go on), or when the
/// slot was recorded for another tool or other arguments (the model is told; it never gets
/// another call's result).
pub async fn begin_call(
    pool: &PgPool,
    user: Uuid,
    slot: &CallSlot,
    tool_name: &str,
    arguments: &Value,
) -> AppResult<CallStart> {
    let mut tx = pool.begin().await?;
    type Recorded = (
        Option<String>,
        Option<sqlx::types::Json<Value>>,
        Option<sqlx::types::Json<Value>>,
        Option<String>,
        Option<sqlx::types::Json<TaskChange>>,
    );
    let row: Option<Recorded> = sqlx::query_as(
        "SELECT c.tool_name, c.arguments, c.result, c.status, c.change FROM turns t
         LEFT JOIN turn_tool_calls c ON c.turn_id = t.id AND c.idx = $4
         WHERE t.id = $1 AND t.attempt_id = $2 AND t.user_id = $3 AND t.state = 'running'
           AND t.lease_until > clock_timestamp()
         FOR KEY SHARE OF t",
    )
    .bind(slot.turn)
    .bind(slot.attempt)
    .bind(user)
    .bind(slot.idx)
    .fetch_optional(&mut *tx)
    .await?;
    match row {
        None => Err(AppError::Conflict(
            "this turn is no longer run by this attempt; the call was not made".into(),
        )),
        Some((Some(name), Some(args), Some(result), Some(status), change)) => {
            if name == tool_name && same_arguments(&args.0, arguments) {
                Ok(CallStart::Replay(
                    result.0,
                    status_of(&status),
                    change.map(|c| c.0),
                ))
            } else {
                Err(AppError::Conflict(format!(
                    "call {} of this turn was already made as {name} with other arguments; \
                     this call was not made",
                    slot.idx + 1
                )))
            }
        }
        Some(_) => Ok(CallStart::Fresh(RecordedCall {
            tx,
            slot: slot.clone(),
            tool_name: tool_name.to_string(),
            arguments: arguments.clone(),
            started: Utc::now(),
            clock: Instant::now(),
        })),
    }
}

/// Arguments as recorded (NUL characters replaced, see `messages::without_nul`) against the
/// ones of the call now.
fn same_arguments(recorded: &Value, now: &Value) -> bool {
    recorded == now || *recorded == without_nul(now.clone())
}

impl RecordedCall {
    /// The connection the call's effect runs on.
    pub fn conn(&mut self) -> &mut PgConnection {
        &mut self.tx
    }

    /// Records the call's outcome (with what it changed, for undo) and commits it together
    /// with its effect.
    pub async fn commit(
        mut self,
        result: &Value,
        status: ToolCallStatus,
        change: Option<&TaskChange>,
    ) -> AppResult<()> {
        let record = ToolCallRecord {
            tool_name: self.tool_name.clone(),
            arguments: without_nul(self.arguments.clone()),
            result: without_nul(result.clone()),
            timestamp: self.started,
            duration_ms: self.clock.elapsed().as_millis() as i64,
            status,
            change: change.cloned(),
            undone_at: None,
        };
        sqlx::query(
            "INSERT INTO turn_tool_calls
                 (turn_id, idx, call_id, tool_name, arguments, result, status, started_at, duration_ms,
                  change)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(self.slot.turn)
        .bind(self.slot.idx)
        .bind(&self.slot.call_id)
        .bind(&record.tool_name)
        .bind(sqlx::types::Json(&record.arguments))
        .bind(sqlx::types::Json(&record.result))
        .bind(record.status.as_str())
        .bind(record.timestamp)
        .bind(record.duration_ms)
        .bind(record.change.as_ref().map(sqlx::types::Json))
        .execute(&mut *self.tx)
        .await?;
        self.tx.commit().await?;
        Ok(())
    }
}
