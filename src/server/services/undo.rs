//! Undoing a task change the assistant made in a chat turn (issue #24): the record of the call
//! (in its message) holds the task before and after; undo puts the task back as it was before,
//! but never silently over a later change (the caller must confirm then). The undo is marked
//! on the record, announced live, and can happen only once.

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use super::{
    events::{self, Outbox},
    messages, tasks,
};
use crate::{
    model::{LiveEvent, Task, TaskChange, TaskState, ToolCallRecord, ToolCalls, UndoResult},
    server::{
        bus::EventBus,
        error::{AppError, AppResult},
    },
};

/// Which recorded call to undo.
#[derive(Clone, Copy, Debug)]
pub struct CallRef {
    pub conversation: Uuid,
    pub message: Uuid,
    pub index: usize,
}

/// What an undo did, before the message is read back.
pub struct Undone {
    pub call: CallRef,
    pub task: Option<Task>,
    pub detail: String,
    pub undone_at: DateTime<Utc>,
}

/// Undoes call `call` in its own transaction (the Undo button, REST, server functions).
pub async fn undo(
    pool: &PgPool,
    bus: &EventBus,
    user: Uuid,
    call: CallRef,
    confirm: bool,
) -> AppResult<UndoResult> {
    let mut tx = pool.begin().await?;
    let (undone, outbox) = undo_in(&mut tx, bus, user, call, confirm).await?;
    tx.commit().await?;
    outbox.publish(bus, pool).await;
    let message = messages::by_id(pool, user, call.conversation, call.message).await?;
    Ok(UndoResult {
        message,
        task: undone.task,
        detail: undone.detail,
    })
}

/// Undoes call `call` in the caller's transaction (also an assistant's `undo_change`, recorded
/// with it). 404: no such message or call for this user; 409: already undone, or the task
/// changed since and `confirm` is not set; 400: the call changed nothing.
pub async fn undo_in(
    tx: &mut PgConnection,
    bus: &EventBus,
    user: Uuid,
    call: CallRef,
    confirm: bool,
) -> AppResult<(Undone, Outbox)> {
    let stored: Option<sqlx::types::Json<ToolCalls>> = sqlx::query_scalar(
        "SELECT m.tool_calls FROM messages m JOIN conversations c ON c.id = m.conversation_id
         WHERE m.id = $1 AND m.conversation_id = $2 AND c.user_id = $3 AND c.deleted_at IS NULL
         FOR UPDATE OF m",
    )
    .bind(call.message)
    .bind(call.conversation)
    .bind(user)
    .fetch_optional(&mut *tx)
    .await?
    .ok_or_else(|| AppError::NotFound("message".into()))?;
    let record = stored
        .and_then(|calls| calls.0.tool_calls.into_iter().nth(call.index))
        .ok_or_else(|| AppError::NotFound(format!("tool call {}", call.index)))?;
    if record.undone_at.is_some() {
        return Err(AppError::Conflict("this change was already undone".into()));
    }
    let change = match (&record.change, record.can_undo()) {
        (Some(change), true) => change.clone(),
        _ => {
            return Err(AppError::validation(
                "this tool call changed nothing that can be undone",
            ))
        }
    };
    let (task, outbox, detail) = revert(tx, bus, user, &record, &change, confirm).await?;
    let undone_at: DateTime<Utc> = sqlx::query_scalar(
        "UPDATE messages
         SET tool_calls = jsonb_set(tool_calls, ARRAY['tool_calls', $2::text, 'undone_at'],
                                    to_jsonb(now()))
         WHERE id = $1
         RETURNING now()",
    )
    .bind(call.message)
    .bind(call.index.to_string())
    .fetch_one(&mut *tx)
    .await?;
    let event = LiveEvent::ToolCallUndone {
        conversation_id: call.conversation,
        message_id: call.message,
        index: call.index,
        undone_at,
    };
    let marked = events::record(tx, bus, user, &event).await?;
    Ok((
        Undone {
            call,
            task,
            detail,
            undone_at,
        },
        outbox.merge(marked),
    ))
}

/// Puts the task back as `change.before` found it, after checking it is still as the call
/// left it.
async fn revert(
    tx: &mut PgConnection,
    bus: &EventBus,
    user: Uuid,
    record: &ToolCallRecord,
    change: &TaskChange,
    confirm: bool,
) -> AppResult<(Option<Task>, Outbox, String)> {
    let id = change.task_id;
    let Some((task, deleted)) = tasks::lock_in(tx, user, id).await? else {
        return Err(AppError::Conflict(format!(
            "task {id} no longer exists; there is nothing to undo"
        )));
    };
    let now = (!deleted).then(|| TaskState::from(&task));
    if now != change.after && !confirm {
        return Err(AppError::Conflict(format!(
            "task {id} changed since: {}. Undo anyway to put it back as it was before this change (confirm: true).",
            describe_now(now.as_ref())
        )));
    }
    match &change.before {
        // It was added: undoing removes it (if it is still there).
        None if deleted => Ok((
            None,
            Outbox::default(),
            format!("Task {id} was already deleted."),
        )),
        None => {
            let (task, outbox) = tasks::delete_in(tx, bus, user, id).await?;
            let detail = format!("Removed task {id} “{}” again.", task.title);
            Ok((None, outbox, detail))
        }
        Some(before) => {
            let (task, outbox) = tasks::restore_in(tx, bus, user, id, before).await?;
            let detail = match record.tool_name.as_str() {
                "delete_task" => format!("Task {id} “{}” is back.", task.title),
                "complete_task" => format!("Task {id} “{}” is open again.", task.title),
                _ => format!("Task {id} is “{}” again.", task.title),
            };
            Ok((Some(task), outbox, detail))
        }
    }
}

fn describe_now(now: Option<&TaskState>) -> String {
    match now {
        None => "it was deleted".into(),
        Some(state) => format!(
            "it is now “{}”{}",
            state.title,
            if state.completed { ", done" } else { "" }
        ),
    }
}

/// The newest change of the assistant in `conversation` still in effect (of task `task`, when
/// given): what "undo that" means.
pub async fn latest_change(
    db: &mut PgConnection,
    conversation: Uuid,
    task: Option<i32>,
) -> AppResult<Option<CallRef>> {
    let rows: Vec<(Uuid, sqlx::types::Json<ToolCalls>)> = sqlx::query_as(
        "SELECT id, tool_calls FROM messages
         WHERE conversation_id = $1 AND role = 'assistant' AND tool_calls IS NOT NULL
         ORDER BY seq DESC LIMIT 50",
    )
    .bind(conversation)
    .fetch_all(db)
    .await?;
    for (message, calls) in rows {
        let found = calls.0.tool_calls.iter().enumerate().rev().find(|(_, r)| {
            r.can_undo()
                && r.tool_name != "undo_change"
                && task.is_none_or(|t| r.change.as_ref().is_some_and(|c| c.task_id == t))
        });
        if let Some((index, _)) = found {
            return Ok(Some(CallRef {
                conversation,
                message,
                index,
            }));
        }
    }
    Ok(None)
}
