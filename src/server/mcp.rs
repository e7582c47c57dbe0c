//! The MCP server: the five task tools over the task service, served as Streamable HTTP at
//! `/mcp` (bearer JWT required) and in-process for the agent (a duplex pipe, no HTTP hop), so
//! tool behaviour exists once. The user always comes from the token, never from arguments.

use std::{sync::Arc, time::Instant};

use chrono::Utc;
use sqlx::{PgConnection, PgPool};

use axum::{
    extract::{Request, State},
    middleware::Next,
    response::{IntoResponse, Response},
};
use rmcp::{
    handler::server::{common::schema_for_type, router::tool::ToolRouter, wrapper::Parameters},
    model::{
        CallToolRequestParams, CallToolResult, ContentBlock, Implementation, JsonObject,
        ServerCapabilities, ServerInfo,
    },
    service::{RequestContext, RunningService},
    tool, tool_handler, tool_router,
    transport::streamable_http_server::{
        session::local::LocalSessionManager, StreamableHttpServerConfig, StreamableHttpService,
    },
    ErrorData as McpError, RoleClient, RoleServer, ServerHandler, ServiceExt,
};
use schemars::JsonSchema;
use serde::{de::DeserializeOwned, Deserialize, Deserializer};
use serde_json::{json, Value};
use uuid::Uuid;

use super::{
    auth::AuthUser,
    config::Config,
    error::{AppError, AppResult},
    services::{
        tasks,
        turns::{self, CallSlot},
    },
};
use crate::model::{NewTask, Task, TaskFilter, TaskPatch, ToolCallRecord, ToolCallStatus};

/// The `_meta` key under which the agent names the turn call slot of an in-process tool call
/// (see `services::turns::CallSlot`): the call's effect and its record then commit together.
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
    /// Short title of the task, 1 to 200 characters, e.g. "Buy groceries".
    pub title: String,
    /// Optional longer details, up to 1000 characters.
    #[serde(default)]
    pub description: Option<String>,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListTasksArgs {
    /// Which tasks to list: "all" (default), "pending" (not done yet) or "completed".
    #[serde(default)]
    pub status: Option<TaskFilter>,
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
    user: Option<Uuid>,
    tool_router: ToolRouter<TaskTools>,
}

#[tool_router]
impl TaskTools {
    /// For the HTTP endpoint: the user is read from each request (see `require_bearer`).
    pub fn for_http(pool: PgPool) -> Self {
        Self {
            pool,
            user: None,
            tool_router: Self::tool_router(),
        }
    }

    /// For the agent: every call acts as `user`.
    pub fn for_user(pool: PgPool, user: Uuid) -> Self {
        Self {
            pool,
            user: Some(user),
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
        description = "Add a task to the user's to-do list. Returns the new task's number.",
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
        description = "List the user's tasks with their numbers, titles, descriptions and whether they are completed.",
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

    #[tool(description = "Delete a task permanently.", input_schema = schema_for_type::<TaskIdArgs>())]
    async fn delete_task(
        &self,
        Parameters(args): Parameters<JsonObject>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, McpError> {
        self.perform(&ctx, "delete_task", args, TaskOp::Delete)
            .await
    }

    #[tool(
        description = "Change a task's title and/or description. Give at least one of them.",
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

/// Runs `op` for `user` on `conn` (a pooled connection, or the transaction that also records
/// the call), returning the tool's JSON result.
async fn apply(conn: &mut PgConnection, user: Uuid, op: TaskOp) -> AppResult<Value> {
    match op {
        TaskOp::Add(a) => {
            let new = NewTask {
                title: a.title,
                description: a.description,
            };
            Ok(summary(&tasks::create(conn, user, new).await?, "created"))
        }
        TaskOp::List(a) => {
            let list = tasks::list(conn, user, a.status.unwrap_or_default()).await?;
            let items: Vec<Value> = list
                .iter()
                .map(|t| json!({ "id": t.id, "title": t.title, "description": t.description, "completed": t.completed }))
                .collect();
            Ok(json!({ "tasks": items, "count": items.len() }))
        }
        TaskOp::Complete(a) => {
            let task = tasks::set_completed(conn, user, a.task_id, true).await?;
            Ok(summary(&task, "completed"))
        }
        TaskOp::Delete(a) => Ok(summary(
            &tasks::delete(conn, user, a.task_id).await?,
            "deleted",
        )),
        TaskOp::Update(a) => {
            if a.title.is_none() && a.description.is_none() {
                return Err(AppError::validation(
                    "give a new title or description for the task",
                ));
            }
            let patch = TaskPatch {
                title: a.title,
                description: a.description,
                completed: None,
            };
            Ok(summary(
                &tasks::update(conn, user, a.task_id, patch).await?,
                "updated",
            ))
        }
    }
}

impl TaskTools {
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
                Ok(op) => match self.pool.acquire().await {
                    Ok(mut conn) => apply(&mut conn, user, op).await,
                    Err(err) => Err(err.into()),
                },
                Err(err) => Err(err),
            };
            return Ok(to_result(outcome_value(outcome)));
        };
        let started = Utc::now();
        let clock = Instant::now();
        let recorded = async {
            let mut tx = self.pool.begin().await?;
            if let Some(done) = turns::check_slot(&mut tx, user, &slot).await? {
                return Ok(done);
            }
            let outcome = match parsed {
                Ok(op) => apply(&mut tx, user, op).await,
                Err(err) => Err(err),
            };
            // A failed statement voids the transaction: nothing happened, nothing is recorded.
            if let Err(AppError::Internal(err)) = outcome {
                return Err(AppError::Internal(err));
            }
            let (result, status) = outcome_value(outcome);
            let record = ToolCallRecord {
                tool_name: name.to_string(),
                arguments: Value::Object(args),
                result: result.clone(),
                timestamp: started,
                duration_ms: clock.elapsed().as_millis() as i64,
                status,
            };
            turns::record_call(&mut tx, &slot, &record).await?;
            tx.commit().await?;
            Ok::<_, AppError>((result, status))
        }
        .await;
        Ok(to_result(
            recorded.unwrap_or_else(|err| outcome_value(Err(err))),
        ))
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

fn to_result((value, status): (Value, ToolCallStatus)) -> CallToolResult {
    match status {
        ToolCallStatus::Success => {
            let mut result = CallToolResult::success(vec![ContentBlock::text(value.to_string())]);
            result.structured_content = Some(value);
            result
        }
        ToolCallStatus::Error => {
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

fn summary(task: &Task, status: &str) -> Value {
    json!({ "task_id": task.id, "status": status, "title": task.title })
}

/// `/mcp` as a tower service: stateless Streamable HTTP with JSON responses, so any replica can
/// answer any request.
pub fn http_service(
    pool: PgPool,
    config: &Config,
) -> StreamableHttpService<TaskTools, LocalSessionManager> {
    let mut hosts: Vec<String> = vec!["localhost".into(), "127.0.0.1".into(), "::1".into()];
    hosts.push(config.addr.to_string());
    hosts.extend(config.mcp_allowed_hosts.iter().cloned());
    let allowed_origins = config.allowed_origins.clone();
    let any_host = config.mcp_allowed_hosts.iter().any(|h| h == "*");
    let mut config = StreamableHttpServerConfig::default()
        .with_legacy_session_mode(false)
        .with_json_response(true);
    // "*" turns the Host check off (e.g. behind a proxy that already pins the host).
    config = if any_host {
        config.disable_allowed_hosts()
    } else {
        config.with_allowed_hosts(hosts)
    };
    if !allowed_origins.is_empty() {
        config = config.with_allowed_origins(allowed_origins);
    }
    StreamableHttpService::new(
        move || Ok(TaskTools::for_http(pool.clone())),
        Arc::new(LocalSessionManager::default()),
        config,
    )
}

/// 401 before any MCP work unless a valid bearer token is present; the user rides along in
/// the request extensions for the tools. Cookies are not accepted here.
pub async fn require_bearer(
    State(sessions): State<Arc<super::sessions::Sessions>>,
    mut request: Request,
    next: Next,
) -> Response {
    let token = super::auth::bearer_token(request.headers());
    let user = match token {
        Some(token) => sessions.authenticate_token(&token).await.ok(),
        None => None,
    };
    match user {
        Some(user) => {
            request.extensions_mut().insert(user);
            next.run(request).await
        }
        _ => {
            let mut response = AppError::Unauthorized.into_response();
            response.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Bearer"),
            );
            response
        }
    }
}

/// A real MCP client connected to the task tools of one user through an in-memory pipe.
pub struct InProcessClient {
    client: RunningService<RoleClient, ()>,
}

/// What one tool call produced, in the shape the agent records.
pub struct ToolOutcome {
    pub result: Value,
    pub status: ToolCallStatus,
    pub duration_ms: i64,
}

impl InProcessClient {
    pub async fn connect(pool: PgPool, user: Uuid) -> AppResult<Self> {
        let (client_io, server_io) = tokio::io::duplex(64 * 1024);
        let server = TaskTools::for_user(pool, user);
        tokio::spawn(async move {
            match server.serve(server_io).await {
                Ok(running) => {
                    let _ = running.waiting().await;
                }
                Err(err) => tracing::error!(error = %err, "in-process MCP server failed to start"),
            }
        });
        let client = ()
            .serve(client_io)
            .await
            .map_err(|err| AppError::Internal(anyhow::anyhow!("in-process MCP client: {err}")))?;
        Ok(Self { client })
    }

    /// The tools as the model should see them (name, description, JSON schema).
    pub async fn list_tools(&self) -> AppResult<Vec<rmcp::model::Tool>> {
        self.client
            .list_all_tools()
            .await
            .map_err(|err| AppError::Internal(anyhow::anyhow!("listing MCP tools: {err}")))
    }

    /// Calls a tool (as call `slot` of a turn, when given); tool errors come back as
    /// `status: error` with a readable result.
    pub async fn call(
        &self,
        name: &str,
        arguments: JsonObject,
        slot: Option<&CallSlot>,
    ) -> ToolOutcome {
        let started = Instant::now();
        let mut params = CallToolRequestParams::new(name.to_string()).with_arguments(arguments);
        if let Some(slot) = slot {
            let mut meta = JsonObject::new();
            meta.insert(TURN_CALL_META.into(), json!(slot));
            params.meta = Some(rmcp::model::RequestMetaObject(rmcp::model::MetaObject(
                meta,
            )));
        }
        let response = self.client.call_tool(params).await;
        let duration_ms = started.elapsed().as_millis() as i64;
        let (result, status) = match response {
            Ok(result) => {
                let is_error = result.is_error.unwrap_or(false);
                let value = result
                    .structured_content
                    .clone()
                    .unwrap_or_else(|| json!({ "text": text_of(&result) }));
                let value = if is_error {
                    json!({ "error": text_of(&result) })
                } else {
                    value
                };
                (
                    value,
                    if is_error {
                        ToolCallStatus::Error
                    } else {
                        ToolCallStatus::Success
                    },
                )
            }
            Err(err) => (json!({ "error": err.to_string() }), ToolCallStatus::Error),
        };
        ToolOutcome {
            result,
            status,
            duration_ms,
        }
    }

    pub async fn close(self) {
        let _ = self.client.cancel().await;
    }
}

/// The text content of a tool result, joined.
pub fn text_of(result: &CallToolResult) -> String {
    result
        .content
        .iter()
        .filter_map(|c| c.as_text().map(|t| t.text.clone()))
        .collect::<Vec<_>>()
        .join("\n")
}
