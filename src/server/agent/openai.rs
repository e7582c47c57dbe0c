//! The OpenAI-compatible model (OpenAI, Ollama, vLLM, LM Studio…) through async-openai, with its
//! retry middleware: 429 and 5xx are retried with backoff honouring `Retry-After`.

use std::time::Duration;

use async_openai::{
    config::OpenAIConfig,
    error::OpenAIError,
    middleware::{retry::OpenAIRetryLayer, ReqwestService},
    types::chat::{
        ChatCompletionMessageToolCall, ChatCompletionMessageToolCalls,
        ChatCompletionRequestAssistantMessage, ChatCompletionRequestMessage,
        ChatCompletionRequestSystemMessage, ChatCompletionRequestToolMessage,
        ChatCompletionRequestUserMessage, ChatCompletionTool, ChatCompletionTools,
        CreateChatCompletionRequest, FunctionCall, FunctionObject,
    },
    Client,
};

use super::{ModelError, ModelReply, PromptMessage, ToolCallRequest, ToolSpec};

pub struct OpenAiModel {
    client: Client<OpenAIConfig>,
    pub model: String,
}

impl OpenAiModel {
    pub fn new(
        api_key: &str,
        base_url: &str,
        model: &str,
        timeout: Duration,
        max_retries: u32,
    ) -> Self {
        let config = OpenAIConfig::new()
            .with_api_key(api_key)
            .with_api_base(base_url.trim_end_matches('/'));
        // The timeout is per HTTP attempt; the retry layer sits above it.
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(Duration::from_secs(5))
            .build()
            .unwrap_or_default();
        let service = tower::ServiceBuilder::new()
            .layer(OpenAIRetryLayer::new(max_retries as usize))
            .service(ReqwestService::new(http));
        Self {
            client: Client::with_config(config).with_http_service(service),
            model: model.to_string(),
        }
    }

    pub async fn complete(
        &self,
        prompt: &[PromptMessage],
        tools: &[ToolSpec],
    ) -> Result<ModelReply, ModelError> {
        let request = CreateChatCompletionRequest {
            model: self.model.clone(),
            messages: prompt.iter().map(to_openai).collect(),
            tools: Some(
                tools
                    .iter()
                    .map(|t| {
                        ChatCompletionTools::Function(ChatCompletionTool {
                            function: FunctionObject {
                                name: t.name.clone(),
                                description: Some(t.description.clone()),
                                parameters: Some(t.parameters.clone()),
                                strict: None,
                            },
                        })
                    })
                    .collect(),
            ),
            ..Default::default()
        };
        let response = self.client.chat().create(request).await.map_err(classify)?;
        let message = response
            .choices
            .into_iter()
            .next()
            .ok_or_else(|| ModelError::BadResponse("no choices".into()))?
            .message;
        let calls: Vec<ToolCallRequest> = message
            .tool_calls
            .unwrap_or_default()
            .into_iter()
            .map(|call| match call {
                ChatCompletionMessageToolCalls::Function(f) => ToolCallRequest {
                    id: f.id,
                    name: f.function.name,
                    arguments: f.function.arguments,
                },
                ChatCompletionMessageToolCalls::Custom(c) => ToolCallRequest {
                    id: c.id,
                    name: c.custom_tool.name,
                    arguments: c.custom_tool.input,
                },
            })
            .collect();
        if calls.is_empty() {
            Ok(ModelReply::Text(message.content.unwrap_or_default()))
        } else {
            Ok(ModelReply::ToolCalls(calls))
        }
    }
}

fn classify(err: OpenAIError) -> ModelError {
    match err {
        OpenAIError::Reqwest(e) if e.is_timeout() => ModelError::Timeout,
        OpenAIError::Reqwest(e) => {
            ModelError::Upstream(format!("connection failed: {}", e.without_url()))
        }
        OpenAIError::ApiError(e) if e.status_code.as_u16() == 429 => ModelError::RateLimited,
        OpenAIError::ApiError(e) => {
            ModelError::Upstream(format!("HTTP {}", e.status_code.as_u16()))
        }
        OpenAIError::JSONDeserialize(e, _) => ModelError::BadResponse(e.to_string()),
        other => ModelError::Upstream(other.to_string()),
    }
}

fn to_openai(message: &PromptMessage) -> ChatCompletionRequestMessage {
    match message {
        PromptMessage::System(text) => {
            ChatCompletionRequestSystemMessage::from(text.as_str()).into()
        }
        PromptMessage::User(text) => ChatCompletionRequestUserMessage::from(text.as_str()).into(),
        PromptMessage::Assistant {
            content,
            tool_calls,
        } => ChatCompletionRequestAssistantMessage {
            content: content.as_ref().map(|c| c.as_str().into()),
            tool_calls: (!tool_calls.is_empty()).then(|| {
                tool_calls
                    .iter()
                    .map(|c| {
                        ChatCompletionMessageToolCalls::Function(ChatCompletionMessageToolCall {
                            id: c.id.clone(),
                            function: FunctionCall {
                                name: c.name.clone(),
                                arguments: c.arguments.clone(),
                            },
                        })
                    })
                    .collect()
            }),
            ..Default::default()
        }
        .into(),
        PromptMessage::Tool { call_id, content } => {
            ChatCompletionRequestMessage::Tool(ChatCompletionRequestToolMessage {
                content: content.as_str().into(),
                tool_call_id: call_id.clone(),
            })
        }
    }
}
