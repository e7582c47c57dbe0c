//! One stateless agent turn (SPEC §7): store the user message, rebuild the prompt from the
//! database, let the model call the MCP task tools (as the authenticated user) until it answers,
//! store the reply. Turns in one conversation run one at a time, across replicas, under a
//! Postgres advisory lock.

mod offline;
mod openai;

use chrono::Utc;
use futures::FutureExt;
use serde_json::{json, Value};
use uuid::Uuid;

use super::{
    error::{AppError, AppResult},
    mcp::{InProcessClient, TOOL_NAMES},
    services::chat::{self, NewMessage},
    state::AppState,
};
use crate::model::{
    Message, MessageStatus, Role, ToolCallRecord, ToolCallStatus, ToolCalls, TurnResult,
};

pub use offline::OfflineModel;
pub use openai::OpenAiModel;

/// At most this many rounds of tool calls per turn; then the agent answers with what was done.
pub const MAX_TOOL_ROUNDS: usize = 5;

const SYSTEM_PROMPT: &str = "You are a friendly assistant that manages the user's personal to-do list. \
Use the tools to add, list, complete, update and delete tasks; never invent task numbers, list the tasks \
first when unsure. After using tools, say briefly what you did. Answer in Markdown.";

/// A message of the prompt, independent of any model API.
#[derive(Clone, Debug, PartialEq)]
pub enum PromptMessage {
    System(String),
    User(String),
    Assistant {
        content: Option<String>,
        tool_calls: Vec<ToolCallRequest>,
    },
    Tool {
        call_id: String,
        content: String,
    },
}

#[derive(Clone, Debug, PartialEq)]
pub struct ToolCallRequest {
    pub id: String,
    pub name: String,
    /// Raw JSON text as the model wrote it (it may be malformed).
    pub arguments: String,
}

/// A tool as offered to the model.
#[derive(Clone, Debug)]
pub struct ToolSpec {
    pub name: String,
    pub description: String,
    pub parameters: Value,
}

pub enum ModelReply {
    Text(String),
    ToolCalls(Vec<ToolCallRequest>),
}

#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("the model service did not answer in time")]
    Timeout,
    #[error("the model service is rate limiting us")]
    RateLimited,
    #[error("the model service failed ({0})")]
    Upstream(String),
    #[error("the model's answer could not be understood ({0})")]
    BadResponse(String),
}

/// The language model behind the agent: an OpenAI-compatible server, or the built-in offline one.
pub enum ChatModel {
    OpenAi(Box<OpenAiModel>),
    /// The built-in assistant, which pauses `think_time` before each answer (default none).
    Offline {
        model: OfflineModel,
        think_time: std::time::Duration,
    },
}

impl ChatModel {
    pub fn from_config(config: &super::config::Config) -> Self {
        match &config.openai_api_key {
            Some(key) => Self::OpenAi(Box::new(OpenAiModel::new(
                key,
                &config.openai_base_url,
                &config.openai_model,
                config.model_timeout,
                config.model_max_retries,
            ))),
            None => Self::Offline {
                model: OfflineModel,
                think_time: config.offline_think_time,
            },
        }
    }

    pub fn name(&self) -> String {
        match self {
            Self::OpenAi(model) => model.model.clone(),
            Self::Offline { .. } => "offline assistant".into(),
        }
    }

    async fn complete(
        &self,
        prompt: &[PromptMessage],
        tools: &[ToolSpec],
    ) -> Result<ModelReply, ModelError> {
        match self {
            Self::OpenAi(model) => model.complete(prompt, tools).await,
            Self::Offline { model, think_time } => {
                if !think_time.is_zero() {
                    tokio::time::sleep(*think_time).await;
                }
                Ok(model.complete(prompt))
            }
        }
    }
}

/// Sends a message and runs its turn. The turn runs as its own task: if the client disconnects,
/// it still completes and its reply appears on the next poll.
pub async fn send(
    state: &AppState,
    user: Uuid,
    conversation: Uuid,
    content: &str,
    client_id: Option<Uuid>,
) -> AppResult<TurnResult> {
    let content = chat::clean_content(content)?;
    chat::get(&state.pool, user, conversation).await?;
    state.limits.sends_by_user.check(&user)?;
    let task_state = state.clone();
    let turn = state
        .background
        .spawn(async move { run_turn(&task_state, user, conversation, &content, client_id).await });
    turn.await
        .map_err(|err| AppError::Internal(anyhow::anyhow!("agent turn task failed: {err}")))?
}

/// A stable 64-bit advisory-lock key per conversation.
fn lock_key(conversation: Uuid) -> i64 {
    let bytes = conversation.as_bytes();
    i64::from_be_bytes(bytes[..8].try_into().unwrap_or([0; 8]))
}

/// Runs `work` holding the conversation's advisory lock on a dedicated connection.
async fn with_conversation_lock<T>(
    state: &AppState,
    conversation: Uuid,
    wait: bool,
    work: impl std::future::Future<Output = AppResult<T>>,
) -> AppResult<Option<T>> {
    let mut conn = state.lock_pool.acquire().await?;
    let key = lock_key(conversation);
    if wait {
        sqlx::query("SELECT pg_advisory_lock($1)")
            .bind(key)
            .execute(&mut *conn)
            .await?;
    } else {
        let got: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
            .bind(key)
            .fetch_one(&mut *conn)
            .await?;
        if !got {
            return Ok(None);
        }
    }
    // A panic must not return a connection that still holds the lock to the pool.
    let result = std::panic::AssertUnwindSafe(work).catch_unwind().await;
    let unlocked = sqlx::query("SELECT pg_advisory_unlock($1)")
        .bind(key)
        .execute(&mut *conn)
        .await;
    if unlocked.is_err() {
        let _ = conn.detach();
    }
    match result {
        Ok(value) => value.map(Some),
        Err(_) => Err(AppError::Internal(anyhow::anyhow!("agent turn panicked"))),
    }
}

async fn run_turn(
    state: &AppState,
    user: Uuid,
    conversation: Uuid,
    content: &str,
    client_id: Option<Uuid>,
) -> AppResult<TurnResult> {
    with_conversation_lock(state, conversation, true, async {
        // A retried send returns the first result; an unanswered one (crash) is finished now.
        let retried = match client_id {
            Some(id) => chat::find_by_client_id(&state.pool, conversation, id).await?,
            None => None,
        };
        let user_message = match retried {
            Some((user_message, Some(reply))) => {
                return Ok(TurnResult {
                    user_message,
                    assistant_message: reply,
                });
            }
            Some((user_message, None)) => user_message,
            None => {
                let message = NewMessage {
                    role: Role::User,
                    content,
                    tool_calls: None,
                    status: MessageStatus::Complete,
                    client_id,
                };
                chat::append(&state.pool, user, conversation, message).await?
            }
        };
        let progress = Progress {
            state,
            conversation,
            user_seq: user_message.seq,
        };
        progress.report(None).await;
        let reply = answer(state, user, &progress, &user_message).await;
        let tool_calls = (!reply.records.is_empty()).then_some(ToolCalls {
            tool_calls: reply.records,
        });
        let assistant_message = chat::append(
            &state.pool,
            user,
            conversation,
            NewMessage {
                role: Role::Assistant,
                content: &reply.content,
                tool_calls: tool_calls.as_ref(),
                status: reply.status,
                client_id: None,
            },
        )
        .await?;
        progress.finish().await;
        Ok(TurnResult {
            user_message,
            assistant_message,
        })
    })
    .await?
    .ok_or_else(|| AppError::Internal(anyhow::anyhow!("the conversation lock was not taken")))
}

/// Publishes what the running turn is doing (SPEC §9 "Using add_task…"). Best effort: a
/// failure to report progress is logged and never fails the turn.
struct Progress<'a> {
    state: &'a AppState,
    conversation: Uuid,
    user_seq: i64,
}

impl Progress<'_> {
    async fn report(&self, tool_name: Option<&str>) {
        let pool = &self.state.pool;
        if let Err(err) =
            chat::set_activity(pool, self.conversation, self.user_seq, tool_name).await
        {
            tracing::warn!(error = %err, "recording turn activity");
        }
    }

    async fn finish(&self) {
        if let Err(err) = chat::clear_activity(&self.state.pool, self.conversation).await {
            tracing::warn!(error = %err, "clearing turn activity");
        }
    }
}

struct Reply {
    content: String,
    status: MessageStatus,
    records: Vec<ToolCallRecord>,
}

impl Reply {
    fn error(content: String, records: Vec<ToolCallRecord>) -> Self {
        Self {
            content,
            status: MessageStatus::Error,
            records,
        }
    }
}

/// Runs the model/tool loop for `user_message`; never fails: failures become an error reply.
async fn answer(
    state: &AppState,
    user: Uuid,
    progress: &Progress<'_>,
    user_message: &Message,
) -> Reply {
    let history = match chat::history(
        &state.pool,
        progress.conversation,
        user_message.seq,
        state.config.history_limit,
    )
    .await
    {
        Ok(history) => history,
        Err(err) => {
            tracing::error!(error = %err, "loading history");
            return Reply::error(
                "I couldn't load this conversation's history. Please try again.".into(),
                vec![],
            );
        }
    };
    let mcp = match InProcessClient::connect(state.clone(), user).await {
        Ok(client) => client,
        Err(err) => {
            tracing::error!(error = %err, "connecting the MCP client");
            return Reply::error(
                "My task tools are unavailable right now. Please try again.".into(),
                vec![],
            );
        }
    };
    let reply = tool_loop(state, &mcp, progress, build_prompt(&history)).await;
    mcp.close().await;
    reply
}

async fn tool_loop(
    state: &AppState,
    mcp: &InProcessClient,
    progress: &Progress<'_>,
    mut prompt: Vec<PromptMessage>,
) -> Reply {
    // The tool set is fixed for the life of the process: listed once, then reused.
    let listed = state
        .tool_specs
        .get_or_try_init(|| async {
            mcp.list_tools().await.map(|tools| {
                tools
                    .into_iter()
                    .map(|t| ToolSpec {
                        name: t.name.to_string(),
                        description: t.description.map(|d| d.to_string()).unwrap_or_default(),
                        parameters: Value::Object((*t.input_schema).clone()),
                    })
                    .collect::<Vec<_>>()
            })
        })
        .await;
    let tools: &[ToolSpec] = match listed {
        Ok(tools) => tools,
        Err(err) => {
            tracing::error!(error = %err, "listing MCP tools");
            return Reply::error(
                "My task tools are unavailable right now. Please try again.".into(),
                vec![],
            );
        }
    };
    let mut records: Vec<ToolCallRecord> = Vec::new();
    for _round in 0..MAX_TOOL_ROUNDS {
        let calls = match state.model.complete(&prompt, tools).await {
            Ok(ModelReply::Text(text)) => {
                let content = if text.trim().is_empty() {
                    summary_of(&records)
                } else {
                    text
                };
                return Reply {
                    content,
                    status: MessageStatus::Complete,
                    records,
                };
            }
            Ok(ModelReply::ToolCalls(calls)) => calls,
            Err(err) => {
                tracing::warn!(error = %err, "model call failed");
                let done = if records.is_empty() {
                    String::new()
                } else {
                    format!(" Before that: {}", summary_of(&records))
                };
                return Reply::error(
                    format!("Sorry, I couldn't answer: {err}. Your message is saved; please try again.{done}"),
                    records,
                );
            }
        };
        prompt.push(PromptMessage::Assistant {
            content: None,
            tool_calls: calls.clone(),
        });
        for call in calls {
            let started = Utc::now();
            // A call the tools cannot run ends the turn with a plain explanation.
            let refuse = |mut records: Vec<ToolCallRecord>, error: &str, message: String| {
                records.push(record(
                    &call,
                    json!(call.arguments),
                    json!({ "error": error }),
                    started,
                    0,
                    ToolCallStatus::Error,
                ));
                Reply::error(message, records)
            };
            if !TOOL_NAMES.contains(&call.name.as_str()) {
                let message = format!(
                    "Sorry, something went wrong: the model asked for a tool that doesn't exist (\"{}\"). Please try again.",
                    call.name
                );
                return refuse(records, "unknown tool", message);
            }
            let raw = if call.arguments.trim().is_empty() {
                "{}"
            } else {
                call.arguments.as_str()
            };
            let Ok(Value::Object(arguments)) = serde_json::from_str::<Value>(raw) else {
                let message = format!(
                    "Sorry, something went wrong: the model sent unreadable arguments for {}. \
                     Nothing was changed by that call; please try again.",
                    call.name
                );
                return refuse(records, "arguments are not a JSON object", message);
            };
            // The tool's name stays up while the model reads its result: that is the wait a
            // user notices, the tool itself takes milliseconds.
            progress.report(Some(&call.name)).await;
            let outcome = mcp.call(&call.name, arguments.clone()).await;
            prompt.push(PromptMessage::Tool {
                call_id: call.id.clone(),
                content: outcome.result.to_string(),
            });
            records.push(record(
                &call,
                Value::Object(arguments),
                outcome.result,
                started,
                outcome.duration_ms,
                outcome.status,
            ));
        }
    }
    // The model kept calling tools: stop and say what was done.
    Reply {
        content: format!(
            "I stopped after {MAX_TOOL_ROUNDS} rounds of tool use. {}",
            summary_of(&records)
        ),
        status: MessageStatus::Complete,
        records,
    }
}

fn record(
    call: &ToolCallRequest,
    arguments: Value,
    result: Value,
    timestamp: chrono::DateTime<Utc>,
    duration_ms: i64,
    status: ToolCallStatus,
) -> ToolCallRecord {
    ToolCallRecord {
        tool_name: call.name.clone(),
        arguments,
        result,
        timestamp,
        duration_ms,
        status,
    }
}

/// A plain summary of the tool calls made, for when the model gives no text of its own.
fn summary_of(records: &[ToolCallRecord]) -> String {
    if records.is_empty() {
        return "I didn't change anything.".into();
    }
    let parts: Vec<String> = records
        .iter()
        .map(
            |r| match (r.status, r.result.get("status").and_then(Value::as_str)) {
                (ToolCallStatus::Success, Some(status)) => format!(
                    "task {} {}",
                    r.result
                        .get("task_id")
                        .map(Value::to_string)
                        .unwrap_or_default(),
                    status
                ),
                (ToolCallStatus::Success, None) => format!("{} done", r.tool_name),
                (ToolCallStatus::Error, _) => format!(
                    "{} failed ({})",
                    r.tool_name,
                    r.result
                        .get("error")
                        .and_then(Value::as_str)
                        .unwrap_or("error")
                ),
            },
        )
        .collect();
    format!("What I did: {}.", parts.join("; "))
}

/// The prompt from stored history: earlier tool use is replayed as tool messages so the model
/// remembers what it did; error replies are not model output and are left out.
fn build_prompt(history: &[Message]) -> Vec<PromptMessage> {
    let mut prompt = vec![PromptMessage::System(SYSTEM_PROMPT.into())];
    for message in history {
        match message.role {
            Role::User => prompt.push(PromptMessage::User(message.content.clone())),
            Role::Assistant if message.status == MessageStatus::Error => {}
            Role::Assistant => {
                let records = message
                    .tool_calls
                    .as_ref()
                    .map(|t| t.tool_calls.as_slice())
                    .unwrap_or_default();
                if !records.is_empty() {
                    let calls: Vec<ToolCallRequest> = records
                        .iter()
                        .enumerate()
                        .map(|(i, r)| ToolCallRequest {
                            id: format!("call_{}_{i}", message.seq),
                            name: r.tool_name.clone(),
                            arguments: r.arguments.to_string(),
                        })
                        .collect();
                    prompt.push(PromptMessage::Assistant {
                        content: None,
                        tool_calls: calls.clone(),
                    });
                    for (call, r) in calls.into_iter().zip(records) {
                        prompt.push(PromptMessage::Tool {
                            call_id: call.id,
                            content: r.result.to_string(),
                        });
                    }
                }
                prompt.push(PromptMessage::Assistant {
                    content: Some(message.content.clone()),
                    tool_calls: vec![],
                });
            }
        }
    }
    prompt
}

/// After a crash or restart: every turn left without a reply gets an error reply, unless
/// another replica is still running it (it holds the lock).
pub async fn recover_interrupted_turns(state: &AppState) -> AppResult<usize> {
    let mut recovered = 0;
    for (conversation, user) in chat::unanswered(&state.pool).await? {
        let done = with_conversation_lock(state, conversation, false, async {
            let still_unanswered = chat::last_message(&state.pool, conversation)
                .await?
                .is_some_and(|m| m.role == Role::User);
            if still_unanswered {
                let message = NewMessage {
                    role: Role::Assistant,
                    content: "I was interrupted before I could answer (the server restarted). \
                              Your message is saved; please send it again.",
                    tool_calls: None,
                    status: MessageStatus::Error,
                    client_id: None,
                };
                chat::append(&state.pool, user, conversation, message).await?;
                chat::clear_activity(&state.pool, conversation).await?;
            }
            Ok(still_unanswered)
        })
        .await?;
        if done == Some(true) {
            recovered += 1;
        }
    }
    if recovered > 0 {
        tracing::warn!(recovered, "marked interrupted turns as failed");
    }
    Ok(recovered)
}
