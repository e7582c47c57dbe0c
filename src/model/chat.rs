//! Conversations, messages and turns.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::TurnActivity;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct Conversation {
    pub id: Uuid,
    pub user_id: Uuid,
    pub title: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub message_count: i32,
    pub last_message_preview: Option<String>,
    /// Kept at the top of the list.
    #[serde(default)]
    pub pinned: bool,
    /// Out of the list (and ChatKit's), in the archived view; it still opens and searches.
    #[serde(default)]
    pub archived: bool,
    /// The last message of the branch shown (null before the first message).
    #[serde(default)]
    pub current_message_id: Option<Uuid>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct ConversationPage {
    pub conversations: Vec<Conversation>,
    pub next_cursor: Option<String>,
    pub has_more: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum Role {
    User,
    Assistant,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum MessageStatus {
    Complete,
    Error,
    /// The user stopped the turn: the reply holds what was written and done until then.
    Stopped,
}

impl MessageStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Complete => "complete",
            Self::Error => "error",
            Self::Stopped => "stopped",
        }
    }

    /// The stored form; anything unknown reads as an error reply.
    pub fn parse(text: &str) -> Self {
        match text {
            "complete" => Self::Complete,
            "stopped" => Self::Stopped,
            _ => Self::Error,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum ToolCallStatus {
    Success,
    Error,
    /// The user declined the call (it waited for approval): nothing was changed.
    Declined,
}

impl ToolCallStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::Error => "error",
            Self::Declined => "declined",
        }
    }

    pub fn parse(text: &str) -> Self {
        match text {
            "success" => Self::Success,
            "declined" => Self::Declined,
            _ => Self::Error,
        }
    }
}

/// One tool call the assistant made during a turn, as stored and shown.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct ToolCallRecord {
    pub tool_name: String,
    #[cfg_attr(feature = "ssr", schema(value_type = Object))]
    pub arguments: serde_json::Value,
    #[cfg_attr(feature = "ssr", schema(value_type = Object))]
    pub result: serde_json::Value,
    pub timestamp: DateTime<Utc>,
    pub duration_ms: i64,
    pub status: ToolCallStatus,
    /// What the call changed (a task's state before and after), for undo.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub change: Option<super::TaskChange>,
    /// When the change was undone, if it was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub undone_at: Option<DateTime<Utc>>,
}

impl ToolCallRecord {
    /// Whether Undo applies: a change that is still in effect.
    pub fn can_undo(&self) -> bool {
        self.status == ToolCallStatus::Success && self.change.is_some() && self.undone_at.is_none()
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct ToolCalls {
    pub tool_calls: Vec<ToolCallRecord>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct Message {
    pub id: Uuid,
    pub conversation_id: Uuid,
    pub seq: i64,
    pub role: Role,
    pub content: String,
    pub tool_calls: Option<ToolCalls>,
    pub status: MessageStatus,
    pub created_at: DateTime<Utc>,
    /// The `client_id` a user message was sent with, if any: how a client recognises its own
    /// message when it arrives (never by its text).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<Uuid>,
    /// Server functions only: an assistant message's markdown rendered to HTML that is safe to
    /// insert (SPEC §10), so a browser needs no markdown renderer of its own. Never in REST.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ssr", schema(ignore))]
    pub html: Option<String>,
    /// The message this one follows (null for a first message). An edit is a sibling of the
    /// message it replaces; a regenerated answer, of the answer it replaces.
    #[serde(default)]
    pub parent_id: Option<Uuid>,
    /// This message's place among its siblings, oldest first (1-based).
    #[serde(default = "one")]
    pub sibling_index: i32,
    #[serde(default = "one")]
    pub sibling_count: i32,
    /// The siblings' ids in that order (this one included), when there are several.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sibling_ids: Vec<Uuid>,
    /// An answer on a new branch: the task changes other branches had made and that were in
    /// effect when it was written.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub branch_changes: Vec<super::BranchChange>,
}

fn one() -> i32 {
    1
}

impl Message {
    /// The sibling `step` places away (-1: the previous one), if there is one.
    pub fn sibling(&self, step: i32) -> Option<Uuid> {
        let at = usize::try_from(self.sibling_index - 1 + step).ok()?;
        self.sibling_ids.get(at).copied()
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct MessagePage {
    pub messages: Vec<Message>,
    pub conversation_id: Uuid,
    pub total_count: i64,
    pub has_more: bool,
    /// Set while the assistant is answering the conversation's last message.
    #[serde(default)]
    pub activity: Option<TurnActivity>,
    /// The last message of the branch shown (a poller sees another branch was chosen).
    #[serde(default)]
    pub current_message_id: Option<Uuid>,
}

/// A message to send: `client_id` makes retries safe (the same id never creates a second turn).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct SendMessage {
    /// 1..10,000 characters after trimming.
    #[cfg_attr(
        feature = "ssr",
        schema(min_length = 1, max_length = 10000, pattern = r"\S")
    )]
    pub content: String,
    #[serde(default)]
    pub client_id: Option<Uuid>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct ConversationTitle {
    /// 1..200 characters after trimming.
    #[serde(default)]
    #[cfg_attr(
        feature = "ssr",
        schema(min_length = 1, max_length = 200, pattern = r"\S")
    )]
    pub title: Option<String>,
}

/// What a `PUT` of a conversation changes: any of its title, pinned and archived (at least one).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct ConversationChanges {
    /// 1..200 characters after trimming.
    #[serde(default)]
    #[cfg_attr(
        feature = "ssr",
        schema(min_length = 1, max_length = 200, pattern = r"\S")
    )]
    pub title: Option<String>,
    #[serde(default)]
    pub pinned: Option<bool>,
    #[serde(default)]
    pub archived: Option<bool>,
}

/// Which page of a conversation's messages to read (at most one of after / before / since).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::IntoParams))]
#[cfg_attr(feature = "ssr", into_params(parameter_in = Query))]
pub struct MessageQuery {
    /// 1..100, default 50.
    #[serde(default)]
    #[cfg_attr(feature = "ssr", param(minimum = 1, maximum = 100))]
    pub limit: Option<i64>,
    /// Messages with a larger seq (polling).
    #[serde(default)]
    #[cfg_attr(feature = "ssr", param(minimum = 0))]
    pub after: Option<i64>,
    /// Messages with a smaller seq (older pages).
    #[serde(default)]
    #[cfg_attr(feature = "ssr", param(minimum = 0))]
    pub before: Option<i64>,
    /// Messages created after this RFC 3339 instant (kept for compatibility).
    #[serde(default)]
    pub since: Option<DateTime<Utc>>,
    /// `current`: the branch shown (from the first message to the conversation's current
    /// leaf), oldest first; `all`: every branch in `seq` order. Unset: the current branch,
    /// except that polling (`after`, `since`) reads every branch.
    #[serde(default)]
    pub branch: Option<super::BranchView>,
}

/// One page of the conversation list.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::IntoParams))]
#[cfg_attr(feature = "ssr", into_params(parameter_in = Query))]
pub struct ConversationQuery {
    /// 1..100, default 20.
    #[serde(default)]
    #[cfg_attr(feature = "ssr", param(minimum = 1, maximum = 100))]
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page.
    #[serde(default)]
    pub cursor: Option<String>,
    /// `true`: the archived conversations; otherwise the others, pinned first.
    #[serde(default)]
    pub archived: Option<bool>,
}

/// The result of one send: the stored user message and the assistant's reply.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct TurnResult {
    pub user_message: Message,
    /// The reply; null while the turn waits for the user to approve `approvals`.
    pub assistant_message: Option<Message>,
    /// The calls the turn waits on (empty once it answered).
    #[serde(default)]
    pub approvals: Vec<super::PendingApproval>,
}

impl TurnResult {
    pub fn answered(user_message: Message, assistant_message: Message) -> Self {
        Self {
            user_message,
            assistant_message: Some(assistant_message),
            approvals: vec![],
        }
    }
}

/// What a stop request did.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct StopResult {
    /// True when a running turn was stopped; false when nothing was running.
    pub stopped: bool,
    /// In plain words, what happened.
    pub detail: String,
    /// The stopped reply (partial text and the tool calls already made), once it is stored.
    pub assistant_message: Option<Message>,
}

/// What the UI needs to know about the server once per page.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ServerInfo {
    /// True when no model API key is configured and the built-in offline assistant answers.
    pub offline_assistant: bool,
    pub model: String,
}
