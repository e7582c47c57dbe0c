//! Turns parked on the user's decision (issue #24). A turn whose model asks for a call that
//! needs approval parks: its pending calls are stored (each at the call slot it will be
//! recorded in), it gives up its lease and owner, and it waits in the database only, so it
//! survives restarts and any replica continues it. Once every call is decided, the deciding
//! replica takes the turn with a new attempt; the attempt makes the approved calls and
//! records the declined ones (exactly once, through the call slots) before the model goes on.

use std::time::Duration;

use serde_json::{json, Value};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use super::{
    super::{
        events,
        messages::{self, NewMessage, Parent},
    },
    begin_call, lease_secs, CallSlot, CallStart, Turn, TURN_COLUMNS,
};
use crate::{
    model::{
        ApprovalPolicy, LiveEvent, MessageStatus, PendingApproval, Role, TaskRef, ToolCallRecord,
        ToolCallStatus, ToolCalls,
    },
    server::{
        bus::EventBus,
        error::{AppError, AppResult},
    },
};

/// A call that waits, at its slot in the turn.
#[derive(Clone, Debug)]
pub struct ParkedCall {
    pub idx: i32,
    pub approval: PendingApproval,
}

#[derive(sqlx::FromRow)]
struct ApprovalRow {
    idx: i32,
    call_id: String,
    tool_name: String,
    arguments: sqlx::types::Json<Value>,
    task: Option<sqlx::types::Json<TaskRef>>,
}

impl From<ApprovalRow> for ParkedCall {
    fn from(r: ApprovalRow) -> Self {
        Self {
            idx: r.idx,
            approval: PendingApproval {
                call_id: r.call_id,
                tool_name: r.tool_name,
                arguments: r.arguments.0,
                task: r.task.map(|t| t.0),
            },
        }
    }
}

const APPROVAL_COLUMNS: &str = "idx, call_id, tool_name, arguments, task";

/// The result a declined call is recorded with (what the model reads).
fn declined_result(why: &str) -> Value {
    json!({ "declined": true, "error": format!("The user declined this call; nothing was changed. {why}") })
}

/// Parks the turn on `calls`, fenced like every write of an attempt: only the attempt holding
/// the lease parks it. Its progress rows go; each call is announced (a stored event, so a
/// reconnecting stream replays it). `false`: the attempt no longer holds the turn.
pub async fn park(
    pool: &PgPool,
    bus: &EventBus,
    turn: &Turn,
    calls: &[ParkedCall],
) -> AppResult<bool> {
    let mut tx = pool.begin().await?;
    let owned: Option<i32> = sqlx::query_scalar(
        "WITH t AS (
             UPDATE turns SET state = 'awaiting_approval', owner = NULL, lease_until = NULL,
                              updated_at = now()
             WHERE id = $1 AND attempt_id = $2 AND state = 'running'
               AND lease_until > clock_timestamp()
             RETURNING conversation_id
         ), a AS (
             DELETE FROM turn_activity WHERE conversation_id IN (SELECT conversation_id FROM t)
         ), p AS (
             DELETE FROM turn_reply_pieces WHERE conversation_id IN (SELECT conversation_id FROM t)
         )
         SELECT 1 FROM t",
    )
    .bind(turn.id)
    .bind(turn.attempt_id)
    .fetch_optional(&mut *tx)
    .await?;
    if owned.is_none() {
        return Ok(false);
    }
    let idx: Vec<i32> = calls.iter().map(|c| c.idx).collect();
    let call_ids: Vec<&str> = calls.iter().map(|c| c.approval.call_id.as_str()).collect();
    let tools: Vec<&str> = calls
        .iter()
        .map(|c| c.approval.tool_name.as_str())
        .collect();
    let arguments: Vec<sqlx::types::Json<&Value>> = calls
        .iter()
        .map(|c| sqlx::types::Json(&c.approval.arguments))
        .collect();
    let tasks: Vec<Option<sqlx::types::Json<&TaskRef>>> = calls
        .iter()
        .map(|c| c.approval.task.as_ref().map(sqlx::types::Json))
        .collect();
    sqlx::query(
        "INSERT INTO turn_approvals (turn_id, conversation_id, idx, call_id, tool_name, arguments, task)
         SELECT $1, $2, * FROM unnest($3::int[], $4::text[], $5::text[], $6::jsonb[], $7::jsonb[])",
    )
    .bind(turn.id)
    .bind(turn.conversation_id)
    .bind(&idx)
    .bind(&call_ids)
    .bind(&tools)
    .bind(&arguments)
    .bind(&tasks)
    .execute(&mut *tx)
    .await?;
    let announced: Vec<LiveEvent> = calls
        .iter()
        .map(|c| LiveEvent::approval(turn.conversation_id, turn.user_seq, &c.approval))
        .collect();
    let refs: Vec<&LiveEvent> = announced.iter().collect();
    let outbox = events::record_all(&mut tx, bus, turn.user_id, &refs).await?;
    tx.commit().await?;
    outbox.publish(bus, pool).await;
    Ok(true)
}

/// The calls waiting in the conversation, with the user message their turn answers.
pub async fn pending(pool: &PgPool, conversation: Uuid) -> AppResult<(i64, Vec<PendingApproval>)> {
    let rows: Vec<(i64, sqlx::types::Json<PendingApproval>)> = sqlx::query_as(
        "SELECT t.user_seq, jsonb_build_object('call_id', a.call_id, 'tool_name', a.tool_name,
                                              'arguments', a.arguments, 'task', a.task)
         FROM turn_approvals a JOIN turns t ON t.id = a.turn_id
         WHERE a.conversation_id = $1 AND a.decision IS NULL AND t.state = 'awaiting_approval'
         ORDER BY a.idx",
    )
    .bind(conversation)
    .fetch_all(pool)
    .await?;
    let seq = rows.first().map(|r| r.0).unwrap_or_default();
    Ok((seq, rows.into_iter().map(|r| r.1 .0).collect()))
}

/// How a decision went.
pub enum Decided {
    /// Other calls of the turn still wait.
    Waiting(Vec<PendingApproval>),
    /// That was the last: the turn runs again, owned by the deciding replica.
    Resumed(Turn),
}

/// Records the user's decision on call `call_id` of the conversation's parked turn, or on
/// every call that waits (`None`: "approve all"). 404: no such conversation of this user; 409:
/// nothing waits, or that call was decided already. The last decision takes the turn for
/// `owner` with a new attempt and lease.
pub async fn decide(
    pool: &PgPool,
    bus: &EventBus,
    user: Uuid,
    conversation: Uuid,
    call_id: Option<&str>,
    approve: bool,
    (owner, lease): (Uuid, Duration),
) -> AppResult<Decided> {
    let mut tx = pool.begin().await?;
    let parked = parked_turn(&mut tx, user, conversation).await?;
    let Some(turn) = parked else {
        return Err(AppError::Conflict(
            "nothing in this conversation waits for approval".into(),
        ));
    };
    let decided: Vec<String> = sqlx::query_scalar(
        "UPDATE turn_approvals SET decision = $3, decided_at = now()
         WHERE turn_id = $1 AND ($2::text IS NULL OR call_id = $2) AND decision IS NULL
         RETURNING call_id",
    )
    .bind(turn.id)
    .bind(call_id)
    .bind(if approve { "approved" } else { "declined" })
    .fetch_all(&mut *tx)
    .await?;
    if decided.is_empty() {
        return Err(AppError::Conflict(format!(
            "call {} does not wait for a decision (it was decided already, or is not this conversation's)",
            call_id.unwrap_or("*")
        )));
    }
    let decided: Vec<LiveEvent> = decided
        .into_iter()
        .map(|call_id| LiveEvent::ApprovalDecided {
            conversation_id: conversation,
            user_seq: turn.user_seq,
            call_id,
            approved: approve,
        })
        .collect();
    let outbox =
        events::record_all(&mut tx, bus, user, &decided.iter().collect::<Vec<_>>()).await?;
    let waiting: Vec<ParkedCall> = sqlx::query_as::<_, ApprovalRow>(&format!(
        "SELECT {APPROVAL_COLUMNS} FROM turn_approvals
         WHERE turn_id = $1 AND decision IS NULL ORDER BY idx"
    ))
    .bind(turn.id)
    .fetch_all(&mut *tx)
    .await?
    .into_iter()
    .map(ParkedCall::from)
    .collect();
    let decided = if waiting.is_empty() {
        let resumed = sqlx::query_as::<_, Turn>(&format!(
            "UPDATE turns SET state = 'running', owner = $2,
                    lease_until = clock_timestamp() + make_interval(secs => $3),
                    attempt_id = gen_random_uuid(), updated_at = now()
             WHERE id = $1
             RETURNING {TURN_COLUMNS}"
        ))
        .bind(turn.id)
        .bind(owner)
        .bind(lease_secs(lease))
        .fetch_one(&mut *tx)
        .await?;
        Decided::Resumed(resumed)
    } else {
        Decided::Waiting(waiting.into_iter().map(|c| c.approval).collect())
    };
    tx.commit().await?;
    outbox.publish(bus, pool).await;
    Ok(decided)
}

/// The conversation's parked turn, locked. 404 when the conversation is not the user's.
async fn parked_turn(
    tx: &mut PgConnection,
    user: Uuid,
    conversation: Uuid,
) -> AppResult<Option<Turn>> {
    let found: Option<(bool, Option<Uuid>)> = sqlx::query_as(
        "SELECT true, (SELECT id FROM turns WHERE conversation_id = c.id
                        AND state = 'awaiting_approval')
         FROM conversations c WHERE c.id = $1 AND c.user_id = $2 AND c.deleted_at IS NULL",
    )
    .bind(conversation)
    .bind(user)
    .fetch_optional(&mut *tx)
    .await?;
    let Some((_, turn)) = found else {
        return Err(AppError::NotFound("conversation".into()));
    };
    let Some(turn) = turn else {
        return Ok(None);
    };
    Ok(sqlx::query_as::<_, Turn>(&format!(
        "SELECT {TURN_COLUMNS} FROM turns WHERE id = $1 AND state = 'awaiting_approval' FOR UPDATE"
    ))
    .bind(turn)
    .fetch_optional(&mut *tx)
    .await?)
}

/// A decided call the turn has not recorded yet: approved ones are made, declined ones
/// recorded as declined, each at its slot.
pub struct DecidedCall {
    pub slot: CallSlot,
    pub tool_name: String,
    pub arguments: Value,
    pub approved: bool,
}

/// What a turn attempt reads about approvals when it starts, in one query: the user's policy
/// and the decided calls of `turn` not yet in its record (all of them right after the
/// decision; after a crash, those the attempt that died did not get to).
/// What a turn starts with, read together: the approval policy, the calls decided while it was
/// parked, and the user's time zone (for the prompt's "now").
pub async fn at_start(
    pool: &PgPool,
    turn: &Turn,
) -> AppResult<(ApprovalPolicy, Vec<DecidedCall>, Option<String>)> {
    type Row = (
        String,
        Option<String>,
        Option<i32>,
        Option<String>,
        Option<String>,
        Option<sqlx::types::Json<Value>>,
        Option<bool>,
    );
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT u.approval_policy, u.time_zone, d.idx, d.call_id, d.tool_name, d.arguments, d.approved
         FROM users u
         LEFT JOIN LATERAL (
             SELECT a.idx, a.call_id, a.tool_name, a.arguments, a.decision = 'approved' AS approved
             FROM turn_approvals a
             WHERE a.turn_id = $1 AND a.decision IS NOT NULL
               AND NOT EXISTS (SELECT 1 FROM turn_tool_calls c
                               WHERE c.turn_id = a.turn_id AND c.idx = a.idx)
         ) d ON true
         WHERE u.id = $2
         ORDER BY d.idx",
    )
    .bind(turn.id)
    .bind(turn.user_id)
    .fetch_all(pool)
    .await?;
    let policy = rows
        .first()
        .map(|r| ApprovalPolicy::parse(&r.0))
        .unwrap_or_default();
    let zone = rows.first().and_then(|r| r.1.clone());
    let decided = rows
        .into_iter()
        .filter_map(|(_, _, idx, call_id, tool_name, arguments, approved)| {
            Some(DecidedCall {
                slot: CallSlot {
                    turn: turn.id,
                    attempt: turn.attempt_id,
                    idx: idx?,
                    call_id: call_id?,
                },
                tool_name: tool_name?,
                arguments: arguments?.0,
                approved: approved?,
            })
        })
        .collect();
    Ok((policy, decided, zone))
}

/// Records a declined call at its slot (once: a replay finds it), for the model to read.
pub async fn record_declined(pool: &PgPool, user: Uuid, call: &DecidedCall) -> AppResult<()> {
    match begin_call(pool, user, &call.slot, &call.tool_name, &call.arguments).await? {
        CallStart::Replay(..) => Ok(()),
        CallStart::Fresh(recorded) => {
            let result = declined_result("Ask what they want instead, or leave it.");
            recorded
                .commit(&result, ToolCallStatus::Declined, None)
                .await
        }
    }
}

/// Ends the conversation's parked turn because the user moved on (a new message, another
/// answer, Stop): every call still waiting is declined, and the turn's reply says what was
/// not done. That reply; `None` when no turn was parked.
pub async fn decline_parked(
    pool: &PgPool,
    bus: &EventBus,
    user: Uuid,
    conversation: Uuid,
    why: &str,
) -> AppResult<Option<crate::model::Message>> {
    let mut tx = pool.begin().await?;
    let Some(turn) = parked_turn(&mut tx, user, conversation).await? else {
        return Ok(None);
    };
    let unmade: Vec<ParkedCall> = sqlx::query_as::<_, ApprovalRow>(&format!(
        "UPDATE turn_approvals a SET decision = 'declined', decided_at = now()
         WHERE a.turn_id = $1
           AND NOT EXISTS (SELECT 1 FROM turn_tool_calls c WHERE c.turn_id = a.turn_id AND c.idx = a.idx)
         RETURNING {APPROVAL_COLUMNS}"
    ))
    .bind(turn.id)
    .fetch_all(&mut *tx)
    .await?
    .into_iter()
    .map(ParkedCall::from)
    .collect();
    let made = super::done_calls_of_turn(&mut tx, turn.id).await?;
    let now = chrono::Utc::now();
    let declined = unmade.iter().map(|c| ToolCallRecord {
        tool_name: c.approval.tool_name.clone(),
        arguments: c.approval.arguments.clone(),
        result: declined_result(why),
        timestamp: now,
        duration_ms: 0,
        status: ToolCallStatus::Declined,
        change: None,
        undone_at: None,
    });
    let tool_calls = ToolCalls {
        tool_calls: made.into_iter().chain(declined).collect(),
    };
    let list: Vec<String> = unmade.iter().map(|c| c.approval.describe()).collect();
    let content = format!("Not done, {why}: {}.", list.join("; "));
    let reply = NewMessage {
        role: Role::Assistant,
        content: &content,
        tool_calls: Some(&tool_calls),
        status: MessageStatus::Complete,
        client_id: None,
        parent: Parent::AtSeq(turn.user_seq),
        branch_changes: &[],
    };
    let (stored, mut outbox) = messages::append_in(&mut tx, bus, user, conversation, reply).await?;
    sqlx::query(
        "UPDATE turns SET state = 'complete', reply_seq = $2, updated_at = now() WHERE id = $1",
    )
    .bind(turn.id)
    .bind(stored.seq)
    .execute(&mut *tx)
    .await?;
    let announced: Vec<LiveEvent> = unmade
        .iter()
        .map(|c| LiveEvent::ApprovalDecided {
            conversation_id: conversation,
            user_seq: turn.user_seq,
            call_id: c.approval.call_id.clone(),
            approved: false,
        })
        .collect();
    let refs: Vec<&LiveEvent> = announced.iter().collect();
    outbox = outbox.merge(events::record_all(&mut tx, bus, user, &refs).await?);
    tx.commit().await?;
    outbox.publish(bus, pool).await;
    Ok(Some(stored))
}
