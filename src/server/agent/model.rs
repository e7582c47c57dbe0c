//! The language model behind the agent, independent of any model API: the prompt it reads,
//! the tools it is offered, what it answers, and how it fails.

use serde_json::Value;

use super::{offline::OfflineModel, openai::OpenAiModel};

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

/// Receives the model's text as it is written.
pub type TextSink<'a> = dyn Fn(&str) + Send + Sync + 'a;

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
    /// The detail is for the log; users are told in plain words.
    #[error("the model's answer could not be understood")]
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
    pub fn from_config(config: &crate::server::config::Config) -> Self {
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

    /// One model call. Text is passed to `on_text` as it is written (streamed), and is also
    /// the returned `Text` in full.
    pub async fn complete(
        &self,
        prompt: &[PromptMessage],
        tools: &[ToolSpec],
        on_text: &TextSink<'_>,
    ) -> Result<ModelReply, ModelError> {
        match self {
            Self::OpenAi(model) => model.complete(prompt, tools, on_text).await,
            Self::Offline { model, think_time } => {
                if !think_time.is_zero() {
                    tokio::time::sleep(*think_time).await;
                }
                let reply = model.complete(prompt);
                if let ModelReply::Text(text) = &reply {
                    // Written a few words at a time, like a remote model; paced only when the
                    // think time asks for a visible demo.
                    let pause = *think_time / 40;
                    for chunk in text.split_inclusive(' ').collect::<Vec<_>>().chunks(3) {
                        on_text(&chunk.concat());
                        if !pause.is_zero() {
                            tokio::time::sleep(pause).await;
                        }
                    }
                }
                Ok(reply)
            }
        }
    }
}
