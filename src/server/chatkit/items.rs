//! Our conversations as ChatKit threads and our messages as thread items, with ChatKit's
//! item paging. Ids round-trip: a thread id is the conversation's id and an item id the
//! message's; the tool calls of a reply are a workflow item with the id `wf_<reply id>`, just
//! before the reply.

use serde_json::{json, Value};
use sqlx::PgPool;
use uuid::Uuid;

use super::protocol::{
    Item, Order, OutputText, Page, Task, Thread, ThreadStatus, UserText, Workflow, WorkflowSummary,
};
use crate::{
    model::{
        Conversation, Message, MessageQuery, PendingApproval, Role, ToolCallRecord, ToolCallStatus,
    },
    server::{
        error::{AppError, AppResult},
        services::messages,
    },
};

const WORKFLOW_PREFIX: &str = "wf_";
const APPROVAL_PREFIX: &str = "appr_";
/// ChatKit's default page size (`DEFAULT_PAGE_SIZE` in the SDK).
pub const DEFAULT_PAGE: i64 = 20;
/// Our largest page; a larger `limit` gets a full page and `has_more`.
pub const MAX_PAGE: i64 = 100;

/// ChatKit's `limit`: none (or 0) is its default page, more than ours is our largest.
pub fn page_size(limit: Option<i64>) -> AppResult<i64> {
    match limit {
        None | Some(0) => Ok(DEFAULT_PAGE),
        Some(n) if n < 0 => Err(AppError::validation(format!(
            "limit must be 1 or more, got {n}"
        ))),
        Some(n) => Ok(n.min(MAX_PAGE)),
    }
}

pub fn thread(conversation: &Conversation, items: Page<Item>) -> Thread {
    Thread {
        id: conversation.id.to_string(),
        title: conversation.title.clone(),
        created_at: conversation.created_at,
        status: ThreadStatus { kind: "active" },
        metadata: serde_json::Map::new(),
        items,
    }
}

/// A thread id as a conversation id; anything else names no thread of this user.
pub fn thread_id(id: &str) -> AppResult<Uuid> {
    Uuid::parse_str(id).map_err(|_| AppError::NotFound("thread".into()))
}

/// What an item id names: a message, the workflow (tool calls) of a reply, or the approval
/// card of a call waiting in the turn answering a user message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ItemRef {
    Message(Uuid),
    Workflow(Uuid),
    Approval(Uuid),
}

impl ItemRef {
    pub fn parse(id: &str) -> AppResult<Self> {
        let not_found = || AppError::NotFound("item".into());
        if let Some(rest) = id.strip_prefix(WORKFLOW_PREFIX) {
            return Uuid::parse_str(rest)
                .map(Self::Workflow)
                .map_err(|_| not_found());
        }
        if let Some(rest) = id.strip_prefix(APPROVAL_PREFIX) {
            let message = rest.get(..36).ok_or_else(not_found)?;
            return Uuid::parse_str(message)
                .map(Self::Approval)
                .map_err(|_| not_found());
        }
        Uuid::parse_str(id)
            .map(Self::Message)
            .map_err(|_| not_found())
    }

    pub fn message(self) -> Uuid {
        match self {
            Self::Message(id) | Self::Workflow(id) | Self::Approval(id) => id,
        }
    }
}

/// The item id of the approval card of `call_id`, in the turn answering `user_message`.
pub fn approval_id(user_message: Uuid, call_id: &str) -> String {
    format!("{APPROVAL_PREFIX}{user_message}_{call_id}")
}

/// The card of a call the assistant waits on (ChatKit's `Card` widget): what it would do and
/// two buttons, the safe one first and primary; once decided, the outcome and no buttons to
/// press.
pub fn approval_item(
    conversation: Uuid,
    asked: &Message,
    approval: &PendingApproval,
    decided: Option<bool>,
) -> Item {
    let what = approval.describe();
    let action = |approve: bool| {
        json!({
            "type": APPROVAL_ACTION,
            "payload": { "call_id": approval.call_id, "approve": approve },
        })
    };
    let (title, note) = match decided {
        None => (
            "The assistant asks first".to_string(),
            "Nothing is changed until you decide.",
        ),
        Some(true) => ("Approved".to_string(), "You approved this change."),
        Some(false) => ("Declined".to_string(), "You declined: nothing was changed."),
    };
    let disabled = decided.is_some();
    let widget = json!({
        "type": "Card",
        "size": "sm",
        "children": [
            { "type": "Title", "value": title, "size": "sm" },
            { "type": "Text", "value": format!("{what}?"), "lineThrough": decided == Some(false) },
            { "type": "Text", "value": note, "color": "secondary", "size": "sm" },
            { "type": "Row", "gap": 2, "justify": "end", "children": [
                { "type": "Button", "label": "Keep it", "style": "primary", "disabled": disabled,
                  "onClickAction": action(false) },
                { "type": "Button", "label": approve_label(&approval.tool_name), "color": "danger",
                  "variant": "outline", "disabled": disabled, "onClickAction": action(true) },
            ]},
        ],
    });
    Item::Widget {
        id: approval_id(asked.id, &approval.call_id),
        thread_id: conversation.to_string(),
        // The message it answers: a card keeps its time however often it is read.
        created_at: asked.created_at,
        widget,
        copy_text: format!("{what}? Keep it / {}", approve_label(&approval.tool_name)),
    }
}

/// The `type` of the approval card's actions.
pub const APPROVAL_ACTION: &str = "approval.decide";

fn approve_label(tool: &str) -> &'static str {
    match tool {
        "delete_task" => "Delete",
        _ => "Approve",
    }
}

pub fn workflow_id(reply: Uuid) -> String {
    format!("{WORKFLOW_PREFIX}{reply}")
}

/// A message as the thread items it shows as (a reply with tool calls is two), oldest first.
pub fn items_of(message: &Message) -> Vec<Item> {
    let thread_id = message.conversation_id.to_string();
    match message.role {
        Role::User => vec![Item::UserMessage {
            id: message.id.to_string(),
            thread_id,
            created_at: message.created_at,
            content: vec![UserText {
                kind: "input_text",
                text: message.content.clone(),
            }],
            attachments: [],
            inference_options: serde_json::Map::new(),
        }],
        Role::Assistant => {
            let mut items = Vec::with_capacity(2);
            let calls = message
                .tool_calls
                .as_ref()
                .map(|t| t.tool_calls.as_slice())
                .unwrap_or_default();
            if !calls.is_empty() {
                items.push(Item::Workflow {
                    id: workflow_id(message.id),
                    thread_id: thread_id.clone(),
                    created_at: message.created_at,
                    workflow: workflow(calls),
                });
            }
            items.push(assistant_item(
                message.id,
                message.conversation_id,
                message.created_at,
                &message.content,
            ));
            items
        }
    }
}

pub fn assistant_item(
    id: Uuid,
    conversation: Uuid,
    created_at: chrono::DateTime<chrono::Utc>,
    text: &str,
) -> Item {
    Item::AssistantMessage {
        id: id.to_string(),
        thread_id: conversation.to_string(),
        created_at,
        content: vec![OutputText::new(text.to_string())],
    }
}

/// The tool calls of a reply, done, as a collapsed workflow.
pub fn workflow(calls: &[ToolCallRecord]) -> Workflow {
    Workflow {
        kind: "custom",
        tasks: calls.iter().map(done_task).collect(),
        summary: Some(WorkflowSummary {
            title: match calls.len() {
                1 => "Used 1 tool".into(),
                n => format!("Used {n} tools"),
            },
            icon: "bolt",
        }),
        expanded: false,
    }
}

/// A tool running now.
pub fn running_task(tool_name: &str) -> Task {
    Task {
        kind: "custom",
        title: format!("Using {tool_name}…"),
        icon: "bolt",
        content: None,
        status_indicator: "loading",
    }
}

/// A tool that finished (its outcome comes with the stored reply).
pub fn used_task(tool_name: &str) -> Task {
    Task {
        kind: "custom",
        title: format!("Used {tool_name}"),
        icon: "bolt",
        content: None,
        status_indicator: "complete",
    }
}

/// A tool call that ended: what it did in plain words, and its arguments.
fn done_task(call: &ToolCallRecord) -> Task {
    let outcome = match call.status {
        ToolCallStatus::Success => match (
            call.result.get("task_id").or_else(|| call.result.get("id")),
            call.result.get("status").and_then(Value::as_str),
        ) {
            (Some(id), Some(status)) => format!("{}: task {id} {status}", call.tool_name),
            _ => format!("{}: done", call.tool_name),
        },
        ToolCallStatus::Declined => format!("{}: declined", call.tool_name),
        ToolCallStatus::Error => format!(
            "{}: failed ({})",
            call.tool_name,
            call.result
                .get("error")
                .and_then(Value::as_str)
                .unwrap_or("error")
        ),
    };
    Task {
        kind: "custom",
        title: outcome,
        icon: match call.status {
            ToolCallStatus::Success => "check",
            ToolCallStatus::Error | ToolCallStatus::Declined => "info",
        },
        content: Some(call.arguments.to_string()),
        status_indicator: "complete",
    }
}

/// An item's place in its thread: (message seq, 0 for a workflow / 1 for the message).
type Position = (i64, u8);

fn position(item: &Item, seq: i64) -> Position {
    match item {
        Item::Workflow { .. } => (seq, 0),
        // After the user message whose turn waits on it.
        Item::Widget { .. } => (seq, 2),
        _ => (seq, 1),
    }
}

/// One page of a thread's items (ChatKit's `items.list`): `after` is the id of the last item
/// of the previous page.
pub async fn page(
    pool: &PgPool,
    user: Uuid,
    conversation: Uuid,
    limit: Option<i64>,
    order: Order,
    after: Option<&str>,
) -> AppResult<Page<Item>> {
    let limit = page_size(limit)?;
    let cursor = match after.filter(|a| !a.is_empty()) {
        None => None,
        Some(after) => {
            let item = ItemRef::parse(after)
                .map_err(|_| AppError::validation("after is not an item of this thread"))?;
            let message = messages::by_id(pool, user, conversation, item.message())
                .await
                .map_err(|err| match err {
                    AppError::NotFound(_) => {
                        AppError::validation("after is not an item of this thread")
                    }
                    other => other,
                })?;
            Some(match item {
                ItemRef::Workflow(_) => (message.seq, 0),
                ItemRef::Message(_) => (message.seq, 1),
                ItemRef::Approval(_) => (message.seq, 2),
            })
        }
    };
    // Each message is at least one item, and only the cursor's message is read again and left
    // out (its cards aside), so limit + 1 messages fill the page.
    let query = MessageQuery {
        limit: Some((limit + 1).min(MAX_PAGE)),
        after: match (order, cursor) {
            // The cursor's message is read again: a card after it hangs on it.
            (Order::Asc, Some((seq, _))) => Some(seq - 1),
            // From the first message (no cursor reads the newest page).
            (Order::Asc, None) => Some(0),
            _ => None,
        },
        before: match (order, cursor) {
            (Order::Desc, Some((seq, part))) => Some(if part == 0 { seq } else { seq + 1 }),
            _ => None,
        },
        since: None,
        // Items are the branch shown (other branches stay in our history).
        branch: Some(crate::model::BranchView::Current),
    };
    let fetched = messages::page(pool, user, conversation, &query).await?;
    let mut positioned: Vec<(Position, Item)> = fetched
        .messages
        .iter()
        .flat_map(|m| {
            items_of(m)
                .into_iter()
                .map(move |item| (position(&item, m.seq), item))
        })
        .collect();
    // A turn parked on the user's decision shows its cards after the message it answers.
    if let Some(activity) = fetched.activity.as_ref() {
        let asked = fetched.messages.iter().find(|m| m.seq == activity.user_seq);
        if let Some(asked) = asked {
            positioned.extend(activity.approvals.iter().map(|approval| {
                let item = approval_item(conversation, asked, approval, None);
                ((asked.seq, 2), item)
            }));
        }
    }
    if order == Order::Desc {
        positioned.reverse();
    }
    let mut items: Vec<Item> = positioned
        .into_iter()
        .filter(|(at, _)| match (order, cursor) {
            (_, None) => true,
            (Order::Asc, Some(cursor)) => *at > cursor,
            (Order::Desc, Some(cursor)) => *at < cursor,
        })
        .map(|(_, item)| item)
        .collect();
    let has_more = items.len() as i64 > limit || fetched.has_more;
    items.truncate(limit as usize);
    let after = has_more
        .then(|| items.last().map(|i| i.id().to_string()))
        .flatten();
    Ok(Page {
        data: items,
        has_more,
        after,
    })
}
