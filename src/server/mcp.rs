//! The MCP server: the five task tools over the task service, served as Streamable HTTP at
//! `/mcp` (bearer JWT required) and in-process for the agent (a duplex pipe, no HTTP hop), so
//! tool behaviour exists once. The user always comes from the token, never from arguments.

use std::{sync::Arc, time::Instant};

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
    error::{AppError, AppResult},
    services::tasks,
    state::AppState,
};
use crate::model::{NewTask, Task, TaskFilter, TaskPatch, ToolCallStatus};

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
    state: AppState,
    user: Option<Uuid>,
    tool_router: ToolRouter<TaskTools>,
}

#[tool_router]
impl TaskTools {
    /// For the HTTP endpoint: the user is read from each request (see `require_bearer`).
    pub fn for_http(state: AppState) -> Self {
        Self {
            state,
            user: None,
            tool_router: Self::tool_router(),
        }
    }

    /// For the agent: every call acts as `user`.
    pub fn for_user(state: AppState, user: Uuid) -> Self {
        Self {
            state,
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
        let user = self.user(&ctx)?;
        Ok(run(args, |a: AddTaskArgs| async move {
            let task = tasks::create(
                &self.state.pool,
                user,
                NewTask {
                    title: a.title,
                    description: a.description,
                },
            )
            .await?;
            Ok(summary(&task, "created"))
        })
        .await)
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
        let user = self.user(&ctx)?;
        Ok(run(args, |a: ListTasksArgs| async move {
            let list = tasks::list(&self.state.pool, user, a.status.unwrap_or_default()).await?;
            let items: Vec<Value> = list
                .iter()
                .map(|t| json!({ "id": t.id, "title": t.title, "description": t.description, "completed": t.completed }))
                .collect();
            Ok(json!({ "tasks": items, "count": items.len() }))
        })
        .await)
    }

    #[tool(description = "Mark a task as completed (done).", input_schema = schema_for_type::<TaskIdArgs>())]
    async fn complete_task(
        &self,
        Parameters(args): Parameters<JsonObject>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, McpError> {
        let user = self.user(&ctx)?;
        Ok(run(args, |a: TaskIdArgs| async move {
            let task = tasks::set_completed(&self.state.pool, user, a.task_id, true).await?;
            Ok(summary(&task, "completed"))
        })
        .await)
    }

    #[tool(description = "Delete a task permanently.", input_schema = schema_for_type::<TaskIdArgs>())]
    async fn delete_task(
        &self,
        Parameters(args): Parameters<JsonObject>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, McpError> {
        let user = self.user(&ctx)?;
        Ok(run(args, |a: TaskIdArgs| async move {
            let task = tasks::delete(&self.state.pool, user, a.task_id).await?;
            Ok(summary(&task, "deleted"))
        })
        .await)
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
        let user = self.user(&ctx)?;
        Ok(run(args, |a: UpdateTaskArgs| async move {
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
            let task = tasks::update(&self.state.pool, user, a.task_id, patch).await?;
            Ok(summary(&task, "updated"))
        })
        .await)
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

/// Parses the arguments and runs the tool. Bad arguments and service errors (e.g. "task 7 not
/// found") become tool results with `isError: true`, which a model can read and act on.
async fn run<A, F, Fut>(args: JsonObject, f: F) -> CallToolResult
where
    A: DeserializeOwned,
    F: FnOnce(A) -> Fut,
    Fut: std::future::Future<Output = AppResult<Value>>,
{
    let parsed = match serde_json::from_value::<A>(Value::Object(args)) {
        Ok(parsed) => parsed,
        Err(err) => return tool_error(format!("invalid arguments: {err}")),
    };
    match f(parsed).await {
        Ok(value) => {
            let mut result = CallToolResult::success(vec![ContentBlock::text(value.to_string())]);
            result.structured_content = Some(value);
            result
        }
        Err(AppError::Internal(err)) => {
            tracing::error!(error = ?err, "tool failed");
            tool_error("the task store failed; try again shortly".into())
        }
        Err(err) => tool_error(err.to_string()),
    }
}

fn tool_error(message: String) -> CallToolResult {
    CallToolResult::error(vec![ContentBlock::text(message)])
}

/// `/mcp` as a tower service: stateless Streamable HTTP with JSON responses, so any replica can
/// answer any request.
pub fn http_service(state: AppState) -> StreamableHttpService<TaskTools, LocalSessionManager> {
    let mut hosts: Vec<String> = vec!["localhost".into(), "127.0.0.1".into(), "::1".into()];
    hosts.push(state.config.addr.to_string());
    hosts.extend(state.config.mcp_allowed_hosts.iter().cloned());
    let mut config = StreamableHttpServerConfig::default()
        .with_legacy_session_mode(false)
        .with_json_response(true);
    // "*" turns the Host check off (e.g. behind a proxy that already pins the host).
    config = if state.config.mcp_allowed_hosts.iter().any(|h| h == "*") {
        config.disable_allowed_hosts()
    } else {
        config.with_allowed_hosts(hosts)
    };
    if !state.config.allowed_origins.is_empty() {
        config = config.with_allowed_origins(state.config.allowed_origins.clone());
    }
    StreamableHttpService::new(
        move || Ok(TaskTools::for_http(state.clone())),
        Arc::new(LocalSessionManager::default()),
        config,
    )
}

/// 401 before any MCP work unless a valid bearer token is present; the user rides along in
/// the request extensions for the tools. Cookies are not accepted here.
pub async fn require_bearer(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    let token = super::auth::bearer_token(request.headers());
    match token.map(|t| state.jwt.verify(&t)) {
        Some(Ok(id)) => {
            request.extensions_mut().insert(AuthUser { id });
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
    pub async fn connect(state: AppState, user: Uuid) -> AppResult<Self> {
        let (client_io, server_io) = tokio::io::duplex(64 * 1024);
        let server = TaskTools::for_user(state, user);
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

    /// Calls a tool; tool errors come back as `status: error` with a readable result.
    pub async fn call(&self, name: &str, arguments: JsonObject) -> ToolOutcome {
        let started = Instant::now();
        let response = self
            .client
            .call_tool(CallToolRequestParams::new(name.to_string()).with_arguments(arguments))
            .await;
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
