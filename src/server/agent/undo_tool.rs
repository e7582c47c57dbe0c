//! `undo_change`, the chat agent's own tool (not an MCP tool: MCP clients call tools directly
//! and undo nothing): "undo that" undoes the assistant's newest change in the conversation
//! still in effect, through the same service as the Undo button, recorded at its call slot
//! in one transaction with its effect.

use serde_json::{json, Value};
use uuid::Uuid;

use super::{model::ToolSpec, AgentState};
use crate::{
    model::ToolCallStatus,
    server::{
        error::AppError,
        mcp::ToolOutcome,
        services::{
            turn_records::{begin_call, CallSlot, CallStart},
            undo,
        },
    },
};

pub const UNDO_TOOL: &str = "undo_change";

pub fn spec() -> ToolSpec {
    ToolSpec {
        name: UNDO_TOOL.into(),
        description: "Undo the newest change you (the assistant) made to the user's tasks in this \
            conversation, or the newest change to one task: an added task is removed again, a \
            completed, renamed or deleted task is put back exactly as it was. If the task was \
            changed since, this fails and says how; then ask the user and, if they agree, call \
            it again with confirm: true."
            .into(),
        parameters: json!({
            "type": "object",
            "properties": {
                "task_id": {"type": "integer", "description": "Only undo the newest change to this task number."},
                "confirm": {"type": "boolean", "description": "Undo even though the task changed since (only after the user agreed)."}
            },
            "additionalProperties": false
        }),
    }
}

/// Runs `undo_change` as call `slot` of a turn of `user` in `conversation`.
pub async fn call(
    agent: &AgentState,
    user: Uuid,
    conversation: Uuid,
    arguments: &Value,
    slot: &CallSlot,
) -> ToolOutcome {
    let started = std::time::Instant::now();
    let (result, status) = match run(agent, user, conversation, arguments, slot).await {
        Ok(done) => done,
        Err(AppError::Internal(err)) => {
            tracing::error!(error = ?err, "undo_change failed");
            (
                json!({ "error": "the task store failed; try again shortly" }),
                ToolCallStatus::Error,
            )
        }
        Err(err) => (json!({ "error": err.to_string() }), ToolCallStatus::Error),
    };
    ToolOutcome {
        result,
        status,
        duration_ms: started.elapsed().as_millis() as i64,
        change: None,
    }
}

async fn run(
    agent: &AgentState,
    user: Uuid,
    conversation: Uuid,
    arguments: &Value,
    slot: &CallSlot,
) -> Result<(Value, ToolCallStatus), AppError> {
    let task = match arguments.get("task_id") {
        None | Some(Value::Null) => None,
        Some(v) => Some(
            v.as_i64()
                .or_else(|| {
                    v.as_str()
                        .and_then(|s| s.trim().trim_start_matches('#').parse().ok())
                })
                .and_then(|n| i32::try_from(n).ok())
                .ok_or_else(|| AppError::validation("task_id must be a task number"))?,
        ),
    };
    let confirm = arguments
        .get("confirm")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let mut call = match begin_call(&agent.pool, user, slot, UNDO_TOOL, arguments).await? {
        CallStart::Replay(result, status, _) => return Ok((result, status)),
        CallStart::Fresh(call) => call,
    };
    let found = undo::latest_change(call.conn(), conversation, task).await?;
    let outcome = match found {
        None => Err(AppError::Conflict(match task {
            Some(id) => format!("there is no change of yours to task {id} left to undo here"),
            None => "there is no change of yours left to undo in this conversation".into(),
        })),
        Some(target) => undo::undo_in(call.conn(), &agent.bus, user, target, confirm).await,
    };
    let (result, status, outbox) = match outcome {
        Ok((undone, outbox)) => (
            json!({
                "undone": true,
                "task_id": undone.task.as_ref().map(|t| t.id),
                "detail": undone.detail,
            }),
            ToolCallStatus::Success,
            Some(outbox),
        ),
        Err(AppError::Internal(err)) => return Err(AppError::Internal(err)),
        Err(err) => (
            json!({ "error": err.to_string() }),
            ToolCallStatus::Error,
            None,
        ),
    };
    call.commit(&result, status, None).await?;
    if let Some(outbox) = outbox {
        outbox.publish(&agent.bus, &agent.pool).await;
    }
    Ok((result, status))
}
