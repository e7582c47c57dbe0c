//! The live event stream's vocabulary.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{Conversation, Message, PendingApproval, Task, TaskRef};

/// What a running turn is doing: thinking (`tool_name` null) or using a tool.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct TurnActivity {
    /// The seq of the user message being answered.
    pub user_seq: i64,
    pub tool_name: Option<String>,
    /// When the current step (thinking or this tool) began.
    pub since: DateTime<Utc>,
    /// `approval` while the turn waits on the user (then `approvals` lists the calls).
    #[serde(default)]
    pub state: ActivityState,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub approvals: Vec<PendingApproval>,
}

/// What a running turn is doing, in a live `activity` event.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum ActivityState {
    #[default]
    Thinking,
    Tool,
    /// Parked: a tool call waits for the user to approve or decline it.
    Approval,
}

/// One event of a user's live stream (`GET /api/chat/events`, Server-Sent Events): one
/// `data:` line of JSON with a `type`. `message`, the conversation and the task events carry an SSE `id`
/// (replayed after `Last-Event-ID`); `delta`, `partial` and `activity` describe a running turn.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum LiveEvent {
    /// A stored message (user or assistant, complete); its fields are inlined.
    Message(Message),
    /// Text the assistant added to the reply `seq` since the previous delta. `offset` is the
    /// length of the reply before it, in Unicode code points: a client that already has that
    /// text (from a `partial`) skips it.
    Delta {
        conversation_id: Uuid,
        seq: i64,
        text: String,
        offset: i64,
    },
    /// The whole reply written so far (sent on connect and reconnect during a turn); replaces
    /// what the client had for `seq`.
    Partial {
        conversation_id: Uuid,
        seq: i64,
        text: String,
    },
    /// What the turn answering the user message `user_seq` is doing.
    Activity {
        conversation_id: Uuid,
        #[serde(default)]
        user_seq: i64,
        state: ActivityState,
        tool_name: Option<String>,
        /// With `approval`: the call waiting, its arguments and the task it would change.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        call_id: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[cfg_attr(feature = "ssr", schema(value_type = Option<Object>))]
        arguments: Option<serde_json::Value>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        task: Option<TaskRef>,
    },
    /// A call that waited for approval was approved or declined (by any tab, or by a new
    /// message, which declines what waits).
    ApprovalDecided {
        conversation_id: Uuid,
        user_seq: i64,
        call_id: String,
        approved: bool,
    },
    /// A tool call's change was undone: the record `index` of message `message_id`.
    ToolCallUndone {
        conversation_id: Uuid,
        message_id: Uuid,
        index: usize,
        undone_at: DateTime<Utc>,
    },
    /// A conversation that was created, renamed or moved (a new message); fields inlined.
    Conversation(Conversation),
    ConversationDeleted {
        id: Uuid,
    },
    /// A task that was created or changed, through any interface (REST, server functions,
    /// MCP, the assistant); fields inlined.
    Task(Task),
    /// A task that was deleted (its number).
    TaskDeleted {
        id: i32,
    },
    /// A task's reminder: it is due now (`at`, its due time, or 09:00 of a due day without
    /// one, in the user's zone). Sent once per occurrence to every open stream of the user.
    Reminder {
        task_id: i32,
        title: String,
        /// The occurrence reminded of, as `Task::due` writes it.
        due: Option<String>,
        at: DateTime<Utc>,
    },
    /// A task's reminder was snoozed (in any tab): it comes again at `until`; every tab closes
    /// the card it shows for it.
    ReminderSnoozed {
        task_id: i32,
        until: DateTime<Utc>,
    },
    /// Events were missed that can no longer be replayed: reload the data.
    Resync,
    /// Only in a streaming send: the turn could not run (`status` as the JSON API would give).
    Error {
        status: u16,
        detail: String,
    },
}

impl LiveEvent {
    /// The `activity` event announcing one call that waits for approval.
    pub fn approval(conversation_id: Uuid, user_seq: i64, pending: &PendingApproval) -> Self {
        Self::Activity {
            conversation_id,
            user_seq,
            state: ActivityState::Approval,
            tool_name: Some(pending.tool_name.clone()),
            call_id: Some(pending.call_id.clone()),
            arguments: Some(pending.arguments.clone()),
            task: pending.task.clone(),
        }
    }

    /// A running turn's `activity`: thinking (no tool) or using `tool_name`.
    pub fn working(conversation_id: Uuid, user_seq: i64, tool_name: Option<String>) -> Self {
        Self::Activity {
            conversation_id,
            user_seq,
            state: if tool_name.is_some() {
                ActivityState::Tool
            } else {
                ActivityState::Thinking
            },
            tool_name,
            call_id: None,
            arguments: None,
            task: None,
        }
    }
}

/// A single-use ticket for one event stream (`GET /api/chat/events?ticket=…`), for an
/// `EventSource` that cannot send an `Authorization` header: the session token never goes
/// into a URL.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct StreamTicket {
    pub ticket: String,
    /// Seconds it is good for (it opens one stream, which then lives on).
    pub expires_in: u64,
}
