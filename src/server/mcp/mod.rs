//! The MCP server: the five task tools over the task service, served as Streamable HTTP at
//! `/mcp` (bearer JWT required) and in-process for the agent (a duplex pipe, no HTTP hop), so
//! tool behaviour exists once. The user always comes from the token, never from arguments.

use std::sync::Arc;

use sqlx::{PgConnection, PgPool};

use rmcp::{
    handler::server::{common::schema_for_type, router::tool::ToolRouter, wrapper::Parameters},
    model::{
        CallToolResult, ContentBlock, Implementation, JsonObject, ServerCapabilities, ServerInfo,
    },
    service::RequestContext,
    tool, tool_handler, tool_router, ErrorData as McpError, RoleServer, ServerHandler,
};
use schemars::JsonSchema;
use serde::{de::DeserializeOwned, Deserialize, Deserializer};
use serde_json::{json, Value};
use uuid::Uuid;

use super::{
    auth::AuthUser,
    bus::EventBus,
    error::{AppError, AppResult},
    services::{
        events::Outbox,
        tasks,
        turn_records::{self, CallSlot, CallStart},
    },
};
use crate::model::{
    NewTask, Task, TaskChange, TaskFilter, TaskPatch, TaskQuery, TaskState, TaskView,
    ToolCallStatus,
};

use super::config::Clock;

/// The `_meta` key under which the agent names the turn call slot of an in-process tool call
/// (see `services::turn_records::CallSlot`): the call's effect and its record then commit together.
const TURN_CALL_META: &str = "io.chatkit/turn-call";

pub const TOOL_NAMES: [&str; 5] = [
    "add_task",
    "list_tasks",
    "complete_task",
    "delete_task",
    "update_task",
];

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AddTaskArgs {
    /// Short title of the task, 1 to 200 characters, e.g. "Buy groceries" (without the date,
    /// priority or tags: those go in their own fields).
    pub title: String,
    /// Optional longer details, up to 1000 characters.
    #[serde(default)]
    pub description: Option<String>,
    /// When it is due, in the user's time zone: "2026-03-13" (a day) or "2026-03-13T17:00" (a
    /// day and a time).
    #[serde(default)]
    #[schemars(regex(pattern = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}(T[0-9]{2}:[0-9]{2})?$"))]
    pub due: Option<String>,
    /// 1 (highest, urgent) to 4 (none, the default).
    #[serde(default)]
    #[schemars(range(min = 1, max = 4))]
    pub priority: Option<u8>,
    /// Up to 10 short lowercase words without "#", e.g. ["work"].
    #[serde(default)]
    pub tags: Option<Vec<String>>,
    /// How it repeats, as an RFC 5545 RRULE: FREQ=DAILY|WEEKLY|MONTHLY|YEARLY with optional
    /// INTERVAL, BYDAY (MO,TU,…), BYMONTHDAY and UNTIL (a day, 20261231), e.g.
    /// "FREQ=WEEKLY;INTERVAL=2;BYDAY=FR" for every other Friday. Without `due` it starts at its
    /// first occurrence from today.
    #[serde(default)]
    pub recurrence: Option<String>,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListTasksArgs {
    /// Which tasks to list: "all" (default), "pending" (not done yet) or "completed".
    #[serde(default)]
    pub status: Option<TaskFilter>,
    /// A planning view of open tasks: "today" (due today), "upcoming" (the next 7 days),
    /// "week" (today and the next 7 days), "overdue", or "all" (default).
    #[serde(default)]
    pub view: Option<TaskView>,
    /// Only tasks with this tag.
    #[serde(default)]
    pub tag: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TaskIdArgs {
    /// The task's number as shown by list_tasks (the user's own numbering: 1, 2, 3…).
    #[serde(deserialize_with = "int_or_numeric_string")]
    #[schemars(with = "i32")]
    pub task_id: i32,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateTaskArgs {
    /// The task's number as shown by list_tasks.
    #[serde(deserialize_with = "int_or_numeric_string")]
    #[schemars(with = "i32")]
    pub task_id: i32,
    /// New title, 1 to 200 characters. Omit to keep the current one.
    #[serde(default)]
    pub title: Option<String>,
    /// New description, up to 1000 characters; an empty string removes it. Omit to keep it.
    #[serde(default)]
    pub description: Option<String>,
    /// New due date as in add_task; an empty string removes it (and the repeat).
    #[serde(default)]
    #[schemars(regex(pattern = r"^([0-9]{4}-[0-9]{2}-[0-9]{2}(T[0-9]{2}:[0-9]{2})?)?$"))]
    pub due: Option<String>,
    /// New priority, 1 (highest) to 4 (none).
    #[serde(default)]
    #[schemars(range(min = 1, max = 4))]
    pub priority: Option<u8>,
    /// The new tags (replacing the old ones; an empty list removes them).
    #[serde(default)]
    pub tags: Option<Vec<String>>,
    /// A new repeat as in add_task; an empty string stops it.
    #[serde(default)]
    pub recurrence: Option<String>,
}

/// Models sometimes quote numbers ("3"); accept both forms.
fn int_or_numeric_string<'de, D: Deserializer<'de>>(deserializer: D) -> Result<i32, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum IntOrString {
        Int(i64),
        Str(String),
    }
    let n = match IntOrString::deserialize(deserializer)? {
        IntOrString::Int(n) => n,
        IntOrString::Str(s) => s
            .trim()
            .trim_start_matches('#')
            .parse::<i64>()
            .map_err(|_| {
                serde::de::Error::custom(format!("task_id must be a number, got {s:?}"))
            })?,
    };
    i32::try_from(n).map_err(|_| serde::de::Error::custom(format!("task_id {n} is out of range")))
}

/// The task tools, for one user (in-process) or for whoever the bearer token names (HTTP).
#[derive(Clone)]
pub struct TaskTools {
    pool: PgPool,
    /// Every task change is announced to the user's open streams.
    bus: Arc<EventBus>,
    user: Option<Uuid>,
    /// What "today" is for due dates and views.
    clock: Clock,
    tool_router: ToolRouter<TaskTools>,
}

#[tool_router]
impl TaskTools {
    /// For the HTTP endpoint: the user is read from each request (see `require_bearer`).
    pub fn for_http(pool: PgPool, bus: Arc<EventBus>, clock: Clock) -> Self {
        Self {
            pool,
            bus,
            user: None,
            clock,
            tool_router: Self::tool_router(),
        }
    }

    /// For the agent: every call acts as `user`.
    pub fn for_user(pool: PgPool, bus: Arc<EventBus>, user: Uuid, clock: Clock) -> Self {
        Self {
            pool,
            bus,
            user: Some(user),
            clock,
            tool_router: Self::tool_router(),
        }
    }

    fn user(&self, ctx: &RequestContext<RoleServer>) -> Result<Uuid, McpError> {
        self.user
            .or_else(|| {
                ctx.extensions
                    .get::<axum::http::request::Parts>()
                    .and_then(|parts| parts.extensions.get::<AuthUser>())
                    .map(|user| user.id)
            })
            .ok_or_else(|| McpError::invalid_request("authentication required", None))
    }

    #[tool(
        description = "Add a task to the user's to-do list, optionally with a due date (and time), a priority, tags and a repeat. Returns the new task's number.",
        input_schema = schema_for_type::<AddTaskArgs>()
    )]
    async fn add_task(
        &self,
        Parameters(args): Parameters<JsonObject>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, McpError> {
        self.perform(&ctx, "add_task", args, TaskOp::Add).await
    }

    #[tool(
        description = "List the user's tasks with their numbers, titles, descriptions, due dates, priorities, tags, repeats and whether they are completed; or a planning view (today, upcoming, overdue), or one tag.",
        input_schema = schema_for_type::<ListTasksArgs>()
    )]
    async fn list_tasks(
        &self,
        Parameters(args): Parameters<JsonObject>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, McpError> {
        self.perform(&ctx, "list_tasks", args, TaskOp::List).await
    }

    #[tool(description = "Mark a task as completed (done).", input_schema = schema_for_type::<TaskIdArgs>())]
    async fn complete_task(
        &self,
        Parameters(args): Parameters<JsonObject>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, McpError> {
        self.perform(&ctx, "complete_task", args, TaskOp::Complete)
            .await
    }

    #[tool(description = "Delete a task (it can be restored by undoing the deletion).", input_schema = schema_for_type::<TaskIdArgs>())]
    async fn delete_task(
        &self,
        Parameters(args): Parameters<JsonObject>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, McpError> {
        self.perform(&ctx, "delete_task", args, TaskOp::Delete)
            .await
    }

    #[tool(
        description = "Change a task's title, description, due date, priority, tags or repeat. Give at least one of them.",
        input_schema = schema_for_type::<UpdateTaskArgs>()
    )]
    async fn update_task(
        &self,
        Parameters(args): Parameters<JsonObject>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, McpError> {
        self.perform(&ctx, "update_task", args, TaskOp::Update)
            .await
    }
}

/// One task operation, with its parsed arguments.
enum TaskOp {
    Add(AddTaskArgs),
    List(ListTasksArgs),
    Complete(TaskIdArgs),
    Delete(TaskIdArgs),
    Update(UpdateTaskArgs),
}

/// What a task operation did: the tool's JSON result, the change's event (published after
/// the commit) and, for a change, the task before and after it (recorded for undo).
struct Applied {
    value: Value,
    outbox: Outbox,
    change: Option<TaskChange>,
}

/// The task as a change finds it (locked until the commit), for the record.
async fn state_before(tx: &mut PgConnection, user: Uuid, id: i32) -> AppResult<Option<TaskState>> {
    Ok(tasks::lock_in(tx, user, id)
        .await?
        .filter(|(_, deleted)| !deleted)
        .map(|(task, _)| TaskState::from(&task)))
}

/// Runs `op` for `user` in `tx` (its own, or the transaction that also records the call).
async fn apply(
    tx: &mut PgConnection,
    bus: &EventBus,
    (user, now): (Uuid, chrono::DateTime<chrono::Utc>),
    op: TaskOp,
) -> AppResult<Applied> {
    let (task, outbox, status, before) = match op {
        TaskOp::Add(a) => {
            let new = NewTask {
                title: a.title,
                description: a.description,
                due: a.due,
                priority: a.priority,
                tags: a.tags,
                recurrence: a.recurrence,
            };
            let (task, outbox) = tasks::create_in(tx, bus, user, new, now).await?;
            (task, outbox, "created", None)
        }
        TaskOp::List(a) => {
            let query = TaskQuery {
                status: a.status.unwrap_or_default(),
                view: a.view.unwrap_or_default(),
                tag: a.tag,
                priority: None,
            };
            let list = tasks::find(&mut *tx, user, &query, now).await?;
            let items: Vec<Value> = list.iter().map(listed).collect();
            let list = json!({ "tasks": items, "count": items.len() });
            return Ok(Applied {
                value: list,
                outbox: Outbox::default(),
                change: None,
            });
        }
        TaskOp::Complete(a) => {
            let was = state_before(tx, user, a.task_id).await?;
            let (task, outbox) =
                tasks::set_completed_in(tx, bus, user, a.task_id, true, now).await?;
            (task, outbox, "completed", was)
        }
        TaskOp::Delete(a) => {
            let was = state_before(tx, user, a.task_id).await?;
            let (task, outbox) = tasks::delete_in(tx, bus, user, a.task_id).await?;
            (task, outbox, "deleted", was)
        }
        TaskOp::Update(a) => {
            let patch = TaskPatch {
                title: a.title,
                description: a.description,
                completed: None,
                due: a.due,
                priority: a.priority,
                tags: a.tags,
                recurrence: a.recurrence,
            };
            if patch.is_empty() {
                return Err(AppError::validation(
                    "give a new title, description, due date, priority, tags or repeat for the task",
                ));
            }
            let was = state_before(tx, user, a.task_id).await?;
            let (task, outbox) = tasks::update_in(tx, bus, user, a.task_id, patch, now).await?;
            (task, outbox, "updated", was)
        }
    };
    let change = TaskChange {
        task_id: task.id,
        before,
        after: (status != "deleted").then(|| TaskState::from(&task)),
    };
    Ok(Applied {
        value: summary(&task, status),
        outbox,
        change: Some(change),
    })
}

impl TaskTools {
    /// A call outside any turn (an MCP client's): its own transaction.
    async fn apply_alone(&self, user: Uuid, op: TaskOp) -> AppResult<Value> {
        let mut tx = self.pool.begin().await?;
        let applied = apply(&mut tx, &self.bus, (user, self.clock.now()), op).await?;
        tx.commit().await?;
        applied.outbox.publish(&self.bus, &self.pool).await;
        Ok(applied.value)
    }

    /// Parses the arguments and runs the tool. Bad arguments and service errors (e.g. "task 7
    /// not found") become tool results with `isError: true`, which a model can read and act
    /// on. A call of an agent turn (its slot in `_meta`, in-process only) runs in one
    /// transaction with its record, and a call that already ran returns its recorded result.
    async fn perform<A: DeserializeOwned>(
        &self,
        ctx: &RequestContext<RoleServer>,
        name: &str,
        args: JsonObject,
        op: fn(A) -> TaskOp,
    ) -> Result<CallToolResult, McpError> {
        let user = self.user(ctx)?;
        let parsed = serde_json::from_value::<A>(Value::Object(args.clone()))
            .map(op)
            .map_err(|err| AppError::validation(format!("invalid arguments: {err}")));
        let slot = self
            .user
            .and_then(|_| ctx.meta.0 .0.get(TURN_CALL_META))
            .and_then(|v| serde_json::from_value::<CallSlot>(v.clone()).ok());
        let Some(slot) = slot else {
            let outcome = match parsed {
                Ok(op) => self.apply_alone(user, op).await,
                Err(err) => Err(err),
            };
            return Ok(to_result(outcome_value(outcome), None));
        };
        let recorded = async {
            let arguments = Value::Object(args);
            let mut call = match turn_records::begin_call(&self.pool, user, &slot, name, &arguments)
                .await?
            {
                CallStart::Replay(result, status, change) => return Ok((result, status, change)),
                CallStart::Fresh(call) => call,
            };
            let outcome = match parsed {
                Ok(op) => apply(call.conn(), &self.bus, (user, self.clock.now()), op).await,
                Err(err) => Err(err),
            };
            // A failed statement voids the transaction: nothing happened, nothing is recorded.
            let (outcome, outbox, change) = match outcome {
                Err(AppError::Internal(err)) => return Err(AppError::Internal(err)),
                Ok(applied) => (Ok(applied.value), applied.outbox, applied.change),
                Err(err) => (Err(err), Outbox::default(), None),
            };
            let (result, status) = outcome_value(outcome);
            call.commit(&result, status, change.as_ref()).await?;
            outbox.publish(&self.bus, &self.pool).await;
            Ok::<_, AppError>((result, status, change))
        }
        .await;
        let (result, status, change) = match recorded {
            Ok(recorded) => recorded,
            Err(err) => {
                let (result, status) = outcome_value(Err(err));
                (result, status, None)
            }
        };
        Ok(to_result((result, status), change))
    }
}

/// A tool's outcome as (JSON result, status); internal failures are logged, not shown.
fn outcome_value(outcome: AppResult<Value>) -> (Value, ToolCallStatus) {
    match outcome {
        Ok(value) => (value, ToolCallStatus::Success),
        Err(AppError::Internal(err)) => {
            tracing::error!(error = ?err, "tool failed");
            (
                json!({ "error": "the task store failed; try again shortly" }),
                ToolCallStatus::Error,
            )
        }
        Err(err) => (json!({ "error": err.to_string() }), ToolCallStatus::Error),
    }
}

/// The tool result; an agent turn's call also gets what it changed, in `_meta` (the in-process
/// client records it for undo; MCP clients never see it).
fn to_result(
    (value, status): (Value, ToolCallStatus),
    change: Option<TaskChange>,
) -> CallToolResult {
    match status {
        ToolCallStatus::Success => {
            let mut result = CallToolResult::success(vec![ContentBlock::text(value.to_string())]);
            result.structured_content = Some(value);
            if let Some(change) = change {
                let mut meta = JsonObject::new();
                meta.insert(TURN_CALL_META.into(), json!(change));
                result.meta = Some(rmcp::model::MetaObject(meta));
            }
            result
        }
        ToolCallStatus::Error | ToolCallStatus::Declined => {
            let message = value
                .get("error")
                .and_then(Value::as_str)
                .unwrap_or("the tool failed")
                .to_string();
            CallToolResult::error(vec![ContentBlock::text(message)])
        }
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for TaskTools {
    fn get_info(&self) -> ServerInfo {
        ServerInfo::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new("chatkit-tasks", env!("CARGO_PKG_VERSION")))
            .with_instructions(
                "Tools for the authenticated user's to-do list. Tasks are identified by the user's own \
                 task numbers (1, 2, 3…) as returned by list_tasks.",
            )
    }
}

/// A task as list_tasks shows it (the planning fields only when set).
fn listed(task: &Task) -> Value {
    let mut item = json!({
        "id": task.id, "title": task.title, "description": task.description,
        "completed": task.completed,
    });
    if let Some(due) = &task.due {
        item["due"] = json!(due);
    }
    if task.priority != crate::model::NO_PRIORITY {
        item["priority"] = json!(task.priority);
    }
    if !task.tags.is_empty() {
        item["tags"] = json!(task.tags);
    }
    if let Some(rule) = &task.recurrence {
        item["recurrence"] = json!(rule);
    }
    item
}

fn summary(task: &Task, status: &str) -> Value {
    let mut result = json!({ "task_id": task.id, "status": status, "title": task.title });
    match &task.due {
        // A repeating task that was completed moved on to its next occurrence.
        Some(due) if status == "completed" && !task.completed => result["next_due"] = json!(due),
        Some(due) if status != "deleted" => result["due"] = json!(due),
        _ => {}
    }
    result
}

mod http;
mod in_process;

pub use http::{http_service, require_bearer};
pub use in_process::{text_of, InProcessClient, ToolOutcome};
