//! The model/tool loop of one turn attempt (SPEC §7 step 3): call the model with the tools,
//! run each tool call through MCP as the user, feed the results back, until the model answers
//! in text (at most `MAX_TOOL_ROUNDS` rounds). Every completed call lands in the turn's durable
//! record (see `services::turn_records`) and in `log`, which outlives this future if it is dropped.

use std::sync::{
    atomic::{AtomicBool, Ordering},
    Arc, Mutex,
};

use chrono::Utc;
use serde_json::{json, Value};

use super::{
    model::{ModelReply, PromptMessage, ToolCallRequest, ToolSpec},
    progress::Progress,
    undo_tool::{self, UNDO_TOOL},
    AgentState,
};
use crate::{
    model::{
        ApprovalPolicy, MessageStatus, PendingApproval, TaskRef, ToolCallRecord, ToolCallStatus,
    },
    server::{
        mcp::{InProcessClient, ToolOutcome, TOOL_NAMES},
        services::{
            tasks,
            turn_records::{CallSlot, ParkedCall},
        },
    },
};

/// At most this many rounds of tool calls per turn; then the agent answers with what was done.
pub const MAX_TOOL_ROUNDS: usize = 5;

/// What a turn attempt has done so far: shared with the lifecycle, which reads it when the
/// attempt is stopped or fails.
#[derive(Default)]
pub struct TurnLog {
    pub records: Mutex<Vec<ToolCallRecord>>,
    /// Other branches' task changes the model was told about (shown on the answer).
    pub branch_changes: Mutex<Vec<crate::model::BranchChange>>,
}

impl TurnLog {
    pub fn branch_changes(&self) -> Vec<crate::model::BranchChange> {
        self.branch_changes
            .lock()
            .map(|c| c.clone())
            .unwrap_or_default()
    }

    pub fn records(&self) -> Vec<ToolCallRecord> {
        self.records.lock().map(|r| r.clone()).unwrap_or_default()
    }

    fn push(&self, record: ToolCallRecord) {
        if let Ok(mut records) = self.records.lock() {
            records.push(record);
        }
    }
}

pub struct Reply {
    pub content: String,
    pub status: MessageStatus,
    pub records: Vec<ToolCallRecord>,
    /// Calls waiting for the user's approval: the turn parks instead of answering.
    pub parked: Vec<ParkedCall>,
}

impl Reply {
    pub fn new(content: String, status: MessageStatus, records: Vec<ToolCallRecord>) -> Self {
        Self {
            content,
            status,
            records,
            parked: vec![],
        }
    }

    pub fn error(content: String, records: Vec<ToolCallRecord>) -> Self {
        Self::new(content, MessageStatus::Error, records)
    }
}

/// Whose turn this is, and when it asks before a call.
#[derive(Clone, Copy, Debug)]
pub struct TurnScope {
    pub user: uuid::Uuid,
    pub conversation: uuid::Uuid,
    pub policy: ApprovalPolicy,
}

/// Where this attempt records its calls: the turn, its owner, the next free index.
pub struct CallSlots {
    pub turn: uuid::Uuid,
    pub attempt: uuid::Uuid,
    pub next: i32,
}

impl CallSlots {
    fn take(&mut self, call_id: &str) -> CallSlot {
        let slot = CallSlot {
            turn: self.turn,
            attempt: self.attempt,
            idx: self.next,
            call_id: call_id.to_string(),
        };
        self.next += 1;
        slot
    }
}

pub async fn run(
    agent: &AgentState,
    mcp: &InProcessClient,
    progress: &Progress,
    scope: TurnScope,
    mut prompt: Vec<PromptMessage>,
    mut slots: CallSlots,
    log: Arc<TurnLog>,
) -> Reply {
    let tools = match tool_specs(agent, mcp).await {
        Some(tools) => tools,
        None => {
            return Reply::error(
                "My task tools are unavailable right now. Please try again.".into(),
                log.records(),
            )
        }
    };
    for _round in 0..MAX_TOOL_ROUNDS {
        // Text written in an earlier round (before tool calls) stays; a new paragraph starts.
        let needs_break = AtomicBool::new(!progress.spoken().is_empty());
        let sink = |piece: &str| {
            if needs_break.swap(false, Ordering::Relaxed) {
                progress.text("\n\n");
            }
            progress.text(piece);
        };
        let calls = match agent.model.complete(&prompt, tools, &sink).await {
            Ok(ModelReply::Text(text)) => {
                let records = log.records();
                let spoken = progress.spoken();
                let content = if !spoken.trim().is_empty() {
                    spoken
                } else if !text.trim().is_empty() {
                    text
                } else {
                    summary_of(&records)
                };
                return Reply::new(content, MessageStatus::Complete, records);
            }
            Ok(ModelReply::ToolCalls(calls)) => calls,
            Err(err) => {
                tracing::warn!(error = %err, "model call failed");
                let records = log.records();
                let done = if records.is_empty() {
                    String::new()
                } else {
                    format!(" Before that: {}", summary_of(&records))
                };
                return Reply::error(
                    format!("Sorry, I couldn't answer: {err}. Your message is saved; press Retry to try again.{done}"),
                    records,
                );
            }
        };
        prompt.push(PromptMessage::Assistant {
            content: None,
            tool_calls: calls.clone(),
        });
        let mut parked = Vec::new();
        for call in calls {
            let started = Utc::now();
            // A call the tools cannot run ends the turn with a plain explanation.
            let refuse = |error: &str, message: String| {
                let mut records = log.records();
                records.push(record(
                    &call,
                    json!(call.arguments),
                    json!({ "error": error }),
                    started,
                    0,
                    ToolCallStatus::Error,
                ));
                Reply::error(message, records)
            };
            if !TOOL_NAMES.contains(&call.name.as_str()) && call.name != UNDO_TOOL {
                let message = format!(
                    "Sorry, something went wrong: the model asked for a tool that doesn't exist (\"{}\"). Please try again.",
                    call.name
                );
                return refuse("unknown tool", message);
            }
            let raw = if call.arguments.trim().is_empty() {
                "{}"
            } else {
                call.arguments.as_str()
            };
            let Ok(Value::Object(arguments)) = serde_json::from_str::<Value>(raw) else {
                let message = format!(
                    "Sorry, something went wrong: the model sent unreadable arguments for {}. \
                     Nothing was changed by that call; please try again.",
                    call.name
                );
                return refuse("arguments are not a JSON object", message);
            };
            let slot = slots.take(&call.id);
            let asks = scope.policy.needs_approval(&call.name);
            let task = if asks {
                named_task(agent, scope.user, &arguments).await
            } else {
                None
            };
            // A call on a task that does not exist changes nothing: it is made at once, fails,
            // and the model is told (no card asks about a task nobody has).
            if asks && (task.is_some() || !arguments.contains_key("task_id")) {
                // Not made now: the turn parks on it once the round's other calls are made.
                let approval = PendingApproval {
                    call_id: call.id.clone(),
                    tool_name: call.name.clone(),
                    task,
                    arguments: Value::Object(arguments),
                };
                parked.push(ParkedCall {
                    idx: slot.idx,
                    approval,
                });
                continue;
            }
            // The tool's name stays up while the model reads its result: that is the wait a
            // user notices, the tool itself takes milliseconds. Reported while the call runs.
            let (_, outcome) = tokio::join!(
                progress.report(Some(&call.name)),
                call_tool(agent, mcp, scope, &call.name, arguments.clone(), &slot),
            );
            prompt.push(PromptMessage::Tool {
                call_id: call.id.clone(),
                content: outcome.result.to_string(),
            });
            let mut done = record(
                &call,
                Value::Object(arguments),
                outcome.result,
                started,
                outcome.duration_ms,
                outcome.status,
            );
            done.change = outcome.change;
            log.push(done);
        }
        if !parked.is_empty() {
            let mut reply = Reply::new(String::new(), MessageStatus::Complete, log.records());
            reply.parked = parked;
            return reply;
        }
    }
    // The model kept calling tools: stop and say what was done.
    let records = log.records();
    Reply::new(
        format!(
            "I stopped after {MAX_TOOL_ROUNDS} rounds of tool use. {}",
            summary_of(&records)
        ),
        MessageStatus::Complete,
        records,
    )
}

/// Makes one call: an MCP task tool, or the agent's own `undo_change`.
pub async fn call_tool(
    agent: &AgentState,
    mcp: &InProcessClient,
    scope: TurnScope,
    name: &str,
    arguments: serde_json::Map<String, Value>,
    slot: &CallSlot,
) -> ToolOutcome {
    if name == UNDO_TOOL {
        let arguments = Value::Object(arguments);
        return undo_tool::call(agent, scope.user, scope.conversation, &arguments, slot).await;
    }
    mcp.call(name, arguments, Some(slot)).await
}

/// The task a call names (`task_id`), with its title, for the approval card.
async fn named_task(
    agent: &AgentState,
    user: uuid::Uuid,
    arguments: &serde_json::Map<String, Value>,
) -> Option<TaskRef> {
    let id = arguments.get("task_id")?;
    let id = id
        .as_i64()
        .or_else(|| id.as_str()?.trim().trim_start_matches('#').parse().ok())?;
    let task = tasks::get(&agent.pool, user, i32::try_from(id).ok()?)
        .await
        .ok()?;
    Some(TaskRef {
        id: task.id,
        title: task.title,
    })
}

/// The tool set is fixed for the life of the process: listed once, then reused.
async fn tool_specs<'a>(agent: &'a AgentState, mcp: &InProcessClient) -> Option<&'a [ToolSpec]> {
    let listed = agent
        .tool_specs
        .get_or_try_init(|| async {
            mcp.list_tools().await.map(|tools| {
                tools
                    .into_iter()
                    .map(|t| ToolSpec {
                        name: t.name.to_string(),
                        description: t.description.map(|d| d.to_string()).unwrap_or_default(),
                        parameters: Value::Object((*t.input_schema).clone()),
                    })
                    .chain(std::iter::once(undo_tool::spec()))
                    .collect::<Vec<_>>()
            })
        })
        .await;
    match listed {
        Ok(tools) => Some(tools.as_slice()),
        Err(err) => {
            tracing::error!(error = %err, "listing MCP tools");
            None
        }
    }
}

fn record(
    call: &ToolCallRequest,
    arguments: Value,
    result: Value,
    timestamp: chrono::DateTime<Utc>,
    duration_ms: i64,
    status: ToolCallStatus,
) -> ToolCallRecord {
    ToolCallRecord {
        tool_name: call.name.clone(),
        arguments,
        result,
        timestamp,
        duration_ms,
        status,
        change: None,
        undone_at: None,
    }
}

/// A plain summary of the tool calls made, for when the model gives no text of its own.
pub fn summary_of(records: &[ToolCallRecord]) -> String {
    if records.is_empty() {
        return "I didn't change anything.".into();
    }
    let parts: Vec<String> = records
        .iter()
        .map(
            |r| match (r.status, r.result.get("status").and_then(Value::as_str)) {
                (ToolCallStatus::Success, Some(status)) => format!(
                    "task {} {}",
                    r.result
                        .get("task_id")
                        .map(Value::to_string)
                        .unwrap_or_default(),
                    status
                ),
                (ToolCallStatus::Success, None) => format!("{} done", r.tool_name),
                (ToolCallStatus::Declined, _) => format!("{} declined by you", r.tool_name),
                (ToolCallStatus::Error, _) => format!(
                    "{} failed ({})",
                    r.tool_name,
                    r.result
                        .get("error")
                        .and_then(Value::as_str)
                        .unwrap_or("error")
                ),
            },
        )
        .collect();
    format!("What I did: {}.", parts.join("; "))
}
