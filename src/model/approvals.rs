//! Asking before the assistant changes tasks, and undoing what it changed (issue #24).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{Message, Task, TurnResult};

/// When the chat assistant asks before it runs a tool (a per-user setting).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub enum ApprovalPolicy {
    /// Ask before deleting a task (the default).
    #[default]
    #[serde(rename = "deletes")]
    AskBeforeDeleting,
    /// Ask before any change (add, complete, update, delete, undo).
    #[serde(rename = "changes")]
    AskBeforeChanges,
    /// Never ask.
    #[serde(rename = "never")]
    Never,
}

/// The tools that change tasks (everything but `list_tasks`).
pub const CHANGING_TOOLS: [&str; 5] = [
    "add_task",
    "complete_task",
    "update_task",
    "delete_task",
    "undo_change",
];

impl ApprovalPolicy {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AskBeforeDeleting => "deletes",
            Self::AskBeforeChanges => "changes",
            Self::Never => "never",
        }
    }

    pub fn parse(text: &str) -> Self {
        match text {
            "changes" => Self::AskBeforeChanges,
            "never" => Self::Never,
            _ => Self::AskBeforeDeleting,
        }
    }

    /// Whether a call of `tool` waits for the user's decision.
    pub fn needs_approval(self, tool: &str) -> bool {
        match self {
            Self::AskBeforeDeleting => tool == "delete_task",
            Self::AskBeforeChanges => CHANGING_TOOLS.contains(&tool),
            Self::Never => false,
        }
    }

    /// In words, for the settings page.
    pub fn label(self) -> &'static str {
        match self {
            Self::AskBeforeDeleting => "Ask before deleting a task",
            Self::AskBeforeChanges => "Ask before any change",
            Self::Never => "Never ask",
        }
    }

    pub const ALL: [Self; 3] = [Self::AskBeforeDeleting, Self::AskBeforeChanges, Self::Never];
}

/// The account's settings (`GET`/`PUT /api/account/settings`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct AccountSettings {
    pub approval_policy: ApprovalPolicy,
    /// The IANA time zone due dates are in (`Europe/Berlin`); unset until the browser tells it
    /// (UTC meanwhile). A `PUT` without it leaves it as it is.
    #[serde(default)]
    #[cfg_attr(feature = "ssr", schema(max_length = 64, example = "Europe/Berlin"))]
    pub time_zone: Option<String>,
}

/// A task as a call names it: its number and title.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct TaskRef {
    pub id: i32,
    pub title: String,
}

/// A tool call the assistant wants to make and waits for the user to approve.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct PendingApproval {
    pub call_id: String,
    pub tool_name: String,
    #[cfg_attr(feature = "ssr", schema(value_type = Object))]
    pub arguments: serde_json::Value,
    /// The task it would change (null for a new task; then its title is in `arguments`).
    pub task: Option<TaskRef>,
}

impl PendingApproval {
    /// What the call would do, in words.
    pub fn describe(&self) -> String {
        let args = &self.arguments;
        let text = |key: &str| args.get(key).and_then(|v| v.as_str()).unwrap_or_default();
        let named = match &self.task {
            Some(task) => format!("task {} “{}”", task.id, task.title),
            None => args
                .get("task_id")
                .map(|id| {
                    format!(
                        "task {}",
                        id.as_str().map(str::to_string).unwrap_or(id.to_string())
                    )
                })
                .unwrap_or_else(|| "a task".into()),
        };
        match self.tool_name.as_str() {
            "delete_task" => format!("Delete {named}"),
            "complete_task" => format!("Mark {named} as done"),
            "add_task" => format!("Add the task “{}”", text("title")),
            "update_task" if !text("title").is_empty() => {
                format!("Rename {named} to “{}”", text("title"))
            }
            "update_task" => format!("Change the description of {named}"),
            "undo_change" => "Undo the assistant's last change".into(),
            other => format!("Run {other}"),
        }
    }
}

/// `POST /api/chat/conversations/{id}/approvals/{call_id}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct ApprovalDecision {
    /// true: make the call; false: the model is told the user declined.
    pub approve: bool,
}

/// What a decision did: the calls still waiting, or (once none is) the turn's continuation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct DecisionResult {
    pub approved: bool,
    /// The calls of the same turn still waiting for a decision.
    pub pending: Vec<PendingApproval>,
    /// Once every call is decided: the answer (or the next calls it waits for).
    pub turn: Option<TurnResult>,
}

/// A task's fields as a change found and left them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct TaskState {
    pub title: String,
    pub description: Option<String>,
    pub completed: bool,
    // Recorded since issue 26; older records have none of these.
    #[serde(default)]
    pub due: Option<String>,
    #[serde(default = "super::tasks::no_priority")]
    pub priority: u8,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub recurrence: Option<String>,
}

impl From<&Task> for TaskState {
    fn from(task: &Task) -> Self {
        Self {
            title: task.title.clone(),
            description: task.description.clone(),
            completed: task.completed,
            due: task.due.clone(),
            priority: task.priority,
            tags: task.tags.clone(),
            recurrence: task.recurrence.clone(),
        }
    }
}

/// What a tool call did to a task, for undo: its state before (none: it was added) and after
/// (none: it was deleted).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct TaskChange {
    pub task_id: i32,
    pub before: Option<TaskState>,
    pub after: Option<TaskState>,
}

/// `POST …/messages/{message_id}/tool_calls/{index}/undo`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct UndoRequest {
    /// Undo even though the task was changed since (the first try says so with a 409).
    #[serde(default)]
    pub confirm: bool,
}

/// What an undo did.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct UndoResult {
    /// The message holding the call, its record marked undone.
    pub message: Message,
    /// The task as it is now (null when the undo removed it).
    pub task: Option<Task>,
    /// In words, what was undone.
    pub detail: String,
}

/// When a recorded change was undone.
pub type UndoneAt = DateTime<Utc>;
