//! ChatKit's wire format, as `openai-chatkit`'s `chatkit/types.py` defines it: the requests we
//! read and the threads, items, pages and stream events we write. Only what this server uses;
//! the conformance test parses everything we send with the SDK's own pydantic models.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A request before its `type` is known: `{type, params, metadata?}`.
#[derive(Deserialize)]
pub struct RawRequest {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub params: Option<Value>,
    /// Integration metadata: accepted (an object, if given) and not used.
    #[serde(default)]
    pub metadata: Option<Value>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Order {
    Asc,
    #[default]
    Desc,
}

#[derive(Deserialize)]
pub struct ThreadIdParams {
    pub thread_id: String,
}

#[derive(Deserialize)]
pub struct CreateParams {
    pub input: UserMessageInput,
}

#[derive(Deserialize)]
pub struct AddUserMessageParams {
    pub thread_id: String,
    pub input: UserMessageInput,
}

#[derive(Default, Deserialize)]
pub struct ListParams {
    #[serde(default)]
    pub limit: Option<i64>,
    #[serde(default)]
    pub order: Order,
    #[serde(default)]
    pub after: Option<String>,
}

#[derive(Deserialize)]
pub struct ItemsListParams {
    pub thread_id: String,
    #[serde(default)]
    pub limit: Option<i64>,
    #[serde(default)]
    pub order: Order,
    #[serde(default)]
    pub after: Option<String>,
}

#[derive(Deserialize)]
pub struct UpdateParams {
    pub thread_id: String,
    pub title: String,
}

#[derive(Deserialize)]
pub struct RetryParams {
    pub thread_id: String,
    pub item_id: String,
}

#[derive(Deserialize)]
pub struct FeedbackParams {
    pub thread_id: String,
    pub item_ids: Vec<String>,
    pub kind: FeedbackKind,
}

#[derive(Clone, Copy, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FeedbackKind {
    Positive,
    Negative,
}

/// What the user typed, as ChatKit sends it.
#[derive(Deserialize)]
pub struct UserMessageInput {
    pub content: Vec<UserContent>,
    #[serde(default)]
    pub attachments: Vec<String>,
    #[serde(default)]
    pub quoted_text: Option<String>,
    /// A model or tool choice: accepted and not used (the server's model and tools answer).
    #[serde(default)]
    #[allow(dead_code)]
    pub inference_options: Option<Value>,
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum UserContent {
    InputText { text: String },
    InputTag { text: String },
}

/// A page of a listing, ChatKit's `Page`.
#[derive(Serialize)]
pub struct Page<T> {
    pub data: Vec<T>,
    pub has_more: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub after: Option<String>,
}

impl<T> Page<T> {
    pub fn empty() -> Self {
        Self {
            data: Vec::new(),
            has_more: false,
            after: None,
        }
    }
}

/// A conversation, as a ChatKit thread.
#[derive(Serialize)]
pub struct Thread {
    pub id: String,
    pub title: String,
    pub created_at: DateTime<Utc>,
    pub status: ThreadStatus,
    pub metadata: serde_json::Map<String, Value>,
    pub items: Page<Item>,
}

#[derive(Serialize)]
pub struct ThreadStatus {
    #[serde(rename = "type")]
    pub kind: &'static str,
}

/// A thread item: our messages, and the tool calls of a reply as a workflow before it.
#[derive(Clone, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Item {
    UserMessage {
        id: String,
        thread_id: String,
        created_at: DateTime<Utc>,
        content: Vec<UserText>,
        attachments: [(); 0],
        inference_options: serde_json::Map<String, Value>,
    },
    AssistantMessage {
        id: String,
        thread_id: String,
        created_at: DateTime<Utc>,
        content: Vec<OutputText>,
    },
    Workflow {
        id: String,
        thread_id: String,
        created_at: DateTime<Utc>,
        workflow: Workflow,
    },
    /// A widget (the approval card of a call the assistant waits on).
    Widget {
        id: String,
        thread_id: String,
        created_at: DateTime<Utc>,
        widget: Value,
        copy_text: String,
    },
}

impl Item {
    pub fn id(&self) -> &str {
        match self {
            Self::UserMessage { id, .. }
            | Self::AssistantMessage { id, .. }
            | Self::Workflow { id, .. }
            | Self::Widget { id, .. } => id,
        }
    }
}

#[derive(Clone, Serialize)]
pub struct UserText {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub text: String,
}

#[derive(Clone, Serialize)]
pub struct OutputText {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub text: String,
    pub annotations: [(); 0],
}

impl OutputText {
    pub fn new(text: String) -> Self {
        Self {
            kind: "output_text",
            text,
            annotations: [],
        }
    }
}

#[derive(Clone, Serialize)]
pub struct Workflow {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub tasks: Vec<Task>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub summary: Option<WorkflowSummary>,
    pub expanded: bool,
}

#[derive(Clone, Serialize)]
pub struct WorkflowSummary {
    pub title: String,
    pub icon: &'static str,
}

/// A workflow task (`CustomTask`): one tool call.
#[derive(Clone, Serialize)]
pub struct Task {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub title: String,
    pub icon: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
    /// none, loading or complete.
    pub status_indicator: &'static str,
}

/// One event of a streamed response (`ThreadStreamEvent`).
#[derive(Serialize)]
#[serde(tag = "type")]
pub enum Event {
    #[serde(rename = "thread.created")]
    ThreadCreated { thread: Thread },
    #[serde(rename = "thread.updated")]
    ThreadUpdated { thread: Thread },
    #[serde(rename = "thread.item.added")]
    ItemAdded { item: Item },
    #[serde(rename = "thread.item.updated")]
    ItemUpdated { item_id: String, update: ItemUpdate },
    #[serde(rename = "thread.item.done")]
    ItemDone { item: Item },
    #[serde(rename = "thread.item.removed")]
    ItemRemoved { item_id: String },
    #[serde(rename = "thread.item.replaced")]
    ItemReplaced { item: Item },
    #[serde(rename = "stream_options")]
    StreamOptions { stream_options: StreamOptions },
    #[serde(rename = "progress_update")]
    ProgressUpdate { icon: &'static str, text: String },
    #[serde(rename = "error")]
    Error {
        code: &'static str,
        message: String,
        allow_retry: bool,
    },
}

#[derive(Serialize)]
pub struct StreamOptions {
    pub allow_cancel: bool,
}

/// How an item changes while it streams (`ThreadItemUpdate`).
#[derive(Serialize)]
#[serde(tag = "type")]
pub enum ItemUpdate {
    #[serde(rename = "assistant_message.content_part.added")]
    ContentPartAdded {
        content_index: usize,
        content: OutputText,
    },
    #[serde(rename = "assistant_message.content_part.text_delta")]
    TextDelta { content_index: usize, delta: String },
    #[serde(rename = "assistant_message.content_part.done")]
    ContentPartDone {
        content_index: usize,
        content: OutputText,
    },
    #[serde(rename = "workflow.task.added")]
    TaskAdded { task_index: usize, task: Task },
    #[serde(rename = "workflow.task.updated")]
    TaskUpdated { task_index: usize, task: Task },
}

/// `threads.custom_action`: a widget's button was pressed. (Open to fields newer ChatKit
/// clients add: an action carries whatever its widget declared.)
#[derive(Deserialize)]
pub struct CustomActionParams {
    pub thread_id: String,
    #[serde(default)]
    pub item_id: Option<String>,
    pub action: Action,
}

#[derive(Deserialize)]
pub struct Action {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub payload: Value,
}
