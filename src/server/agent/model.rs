//! The vocabulary of the language model, independent of any model API: the prompt it reads,
//! the tools it is offered, what it answers, and how it fails. The models themselves
//! (`openai`, `offline`) speak it; `chat_model` picks one.

use serde_json::Value;

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
