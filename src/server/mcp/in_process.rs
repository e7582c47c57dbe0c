//! The agent's MCP client: a real rmcp client connected to one user's task tools through an
//! in-memory pipe (no HTTP hop).

use std::{sync::Arc, time::Instant};

use rmcp::{
    model::{CallToolRequestParams, CallToolResult, JsonObject},
    service::RunningService,
    RoleClient, ServiceExt,
};
use serde_json::{json, Value};
use sqlx::PgPool;
use uuid::Uuid;

use super::{TaskTools, TURN_CALL_META};
use crate::{
    model::{TaskChange, ToolCallStatus},
    server::{
        bus::EventBus,
        error::{AppError, AppResult},
        services::turn_records::CallSlot,
    },
};

/// A real MCP client connected to the task tools of one user through an in-memory pipe.
pub struct InProcessClient {
    client: RunningService<RoleClient, ()>,
}

/// What one tool call produced, in the shape the agent records.
pub struct ToolOutcome {
    pub result: Value,
    pub status: ToolCallStatus,
    pub duration_ms: i64,
    /// What the call changed (for undo), when it was a turn's call that changed a task.
    pub change: Option<TaskChange>,
}

impl InProcessClient {
    pub async fn connect(
        pool: PgPool,
        bus: Arc<EventBus>,
        user: Uuid,
        clock: crate::server::config::Clock,
    ) -> AppResult<Self> {
        let (client_io, server_io) = tokio::io::duplex(64 * 1024);
        let server = TaskTools::for_user(pool, bus, user, clock);
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
        let mut change = None;
        let (result, status) = match response {
            Ok(result) => {
                change = result
                    .meta
                    .as_ref()
                    .and_then(|meta| meta.0.get(TURN_CALL_META))
                    .and_then(|v| serde_json::from_value::<TaskChange>(v.clone()).ok());
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
            change,
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
