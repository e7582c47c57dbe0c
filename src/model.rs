//! Types shared by the server and the WASM client: what crosses the wire.
//! Field names are the JSON shapes of SPEC §4 (snake_case).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Longest user message, in characters after trimming (SPEC §4).
pub const MAX_MESSAGE_CHARS: usize = 10_000;
/// Longest task / conversation title, in characters after trimming.
pub const MAX_TITLE_CHARS: usize = 200;
/// Longest task description, in characters.
pub const MAX_DESCRIPTION_CHARS: usize = 1_000;
/// Shortest acceptable password, in characters.
pub const MIN_PASSWORD_CHARS: usize = 8;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct User {
    pub id: Uuid,
    pub email: String,
    pub created_at: DateTime<Utc>,
}

/// Returned by register and login: the user and, for API clients, the bearer token.
/// Browsers get the same token as an HttpOnly cookie and can ignore it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct AuthSession {
    pub user: User,
    pub access_token: String,
    pub token_type: String,
    pub expires_in: i64,
}

/// What the sign-in server functions return. `access_token` is there for callers on another
/// origin and for non-browser callers (send it as `Authorization: Bearer`); our own pages keep
/// the session in an HttpOnly cookie and get no token.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct SignedIn {
    pub user: User,
    pub access_token: Option<String>,
    /// Seconds the session lasts.
    pub expires_in: i64,
}

/// Never prints the token.
impl std::fmt::Debug for SignedIn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignedIn")
            .field("user", &self.user)
            .field("access_token", &self.access_token.as_ref().map(|_| "…"))
            .field("expires_in", &self.expires_in)
            .finish()
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct Credentials {
    #[cfg_attr(feature = "ssr", schema(min_length = 3, max_length = 254, format = Email, example = "you@example.com"))]
    pub email: String,
    #[cfg_attr(feature = "ssr", schema(min_length = 8, max_length = 1024))]
    pub password: String,
}

/// A task as the user sees it: `id` is the user's own task number (1, 2, 3…).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct Task {
    pub id: i32,
    pub title: String,
    pub description: Option<String>,
    pub completed: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// Which tasks to list.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema, schemars::JsonSchema))]
#[serde(rename_all = "lowercase")]
pub enum TaskFilter {
    #[default]
    All,
    Pending,
    Completed,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct NewTask {
    /// 1..200 characters after trimming.
    #[cfg_attr(
        feature = "ssr",
        schema(min_length = 1, max_length = 200, pattern = r"\S")
    )]
    pub title: String,
    /// Up to 1,000 characters; empty means none.
    #[serde(default)]
    #[cfg_attr(feature = "ssr", schema(max_length = 1000))]
    pub description: Option<String>,
}

/// A partial update: absent fields are left as they are. An empty description clears it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct TaskPatch {
    #[serde(default)]
    #[cfg_attr(
        feature = "ssr",
        schema(min_length = 1, max_length = 200, pattern = r"\S")
    )]
    pub title: Option<String>,
    #[serde(default)]
    #[cfg_attr(feature = "ssr", schema(max_length = 1000))]
    pub description: Option<String>,
    #[serde(default)]
    pub completed: Option<bool>,
}

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
    /// Server functions only: an assistant message's markdown rendered to HTML that is safe to
    /// insert (SPEC §10), so a browser needs no markdown renderer of its own. Never in REST.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ssr", schema(ignore))]
    pub html: Option<String>,
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
}

/// What a running turn is doing: thinking (`tool_name` null) or using a tool.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct TurnActivity {
    /// The seq of the user message being answered.
    pub user_seq: i64,
    pub tool_name: Option<String>,
    /// When the current step (thinking or this tool) began.
    pub since: DateTime<Utc>,
}

/// What a running turn is doing, in a live `activity` event.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum ActivityState {
    Thinking,
    Tool,
}

/// One event of a user's live stream (`GET /api/chat/events`, Server-Sent Events): one
/// `data:` line of JSON with a `type`. `message` and the conversation events carry an SSE `id`
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
    Activity {
        conversation_id: Uuid,
        state: ActivityState,
        tool_name: Option<String>,
    },
    /// A conversation that was created, renamed or moved (a new message); fields inlined.
    Conversation(Conversation),
    ConversationDeleted {
        id: Uuid,
    },
    /// Events were missed that can no longer be replayed: reload the data.
    Resync,
    /// Only in a streaming send: the turn could not run (`status` as the JSON API would give).
    Error {
        status: u16,
        detail: String,
    },
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
}

/// The result of one send: the stored user message and the assistant's reply.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct TurnResult {
    pub user_message: Message,
    pub assistant_message: Message,
}

/// The body of every error answer: `{"detail": "…"}` in plain words.
#[cfg(feature = "ssr")]
#[derive(utoipa::ToSchema)]
pub struct ErrorBody {
    pub detail: String,
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

/// The error every interface returns: an HTTP status and a sentence for the user.
/// REST sends it as `{"detail": "..."}`; server functions carry it as their error type.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{detail}")]
pub struct ApiError {
    pub status: u16,
    pub detail: String,
}

impl ApiError {
    pub fn new(status: u16, detail: impl Into<String>) -> Self {
        Self {
            status,
            detail: detail.into(),
        }
    }

    pub fn is_not_found(&self) -> bool {
        self.status == 404
    }

    pub fn is_unauthorized(&self) -> bool {
        self.status == 401
    }
}

impl leptos::server_fn::error::FromServerFnError for ApiError {
    type Encoder = leptos::server_fn::codec::JsonEncoding;

    fn from_server_fn_error(value: leptos::server_fn::error::ServerFnErrorErr) -> Self {
        use leptos::server_fn::error::ServerFnErrorErr as E;
        // Transport and decoding failures are the client's or the network's, not a server bug.
        let status = match &value {
            E::Request(_) | E::Response(_) => 0,
            E::Args(_) | E::Deserialization(_) | E::MissingArg(_) => 400,
            _ => 500,
        };
        Self::new(status, value.to_string())
    }
}
