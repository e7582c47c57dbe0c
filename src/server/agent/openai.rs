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

use futures::StreamExt;

use super::model::{ModelError, ModelReply, PromptMessage, TextSink, ToolCallRequest, ToolSpec};

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
        // Replies stream: the timeout bounds the wait for each piece (the first one included),
        // not the whole reply. The retry layer sits above it.
        let http = reqwest::Client::builder()
            .read_timeout(timeout)
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
        on_text: &TextSink<'_>,
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
        // Streamed (SSE): text goes to `on_text` as it arrives; tool calls arrive in pieces
        // (id and name first, arguments in fragments) and are put together by index.
        let mut stream = self
            .client
            .chat()
            .create_stream(request)
            .await
            .map_err(classify)?;
        let mut text = String::new();
        let mut calls: std::collections::BTreeMap<u32, ToolCallRequest> = Default::default();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(classify)?;
            for choice in chunk.choices {
                if let Some(piece) = choice.delta.content.filter(|p| !p.is_empty()) {
                    on_text(&piece);
                    text.push_str(&piece);
                }
                for part in choice.delta.tool_calls.unwrap_or_default() {
                    let call = calls.entry(part.index).or_insert_with(|| ToolCallRequest {
                        id: String::new(),
                        name: String::new(),
                        arguments: String::new(),
                    });
                    if let Some(id) = part.id {
                        call.id = id;
                    }
                    if let Some(function) = part.function {
                        call.name.push_str(&function.name.unwrap_or_default());
                        call.arguments
                            .push_str(&function.arguments.unwrap_or_default());
                    }
                }
            }
        }
        if calls.is_empty() {
            Ok(ModelReply::Text(text))
        } else {
            Ok(ModelReply::ToolCalls(
                calls
                    .into_values()
                    .enumerate()
                    .map(|(i, mut call)| {
                        if call.id.is_empty() {
                            call.id = format!("call_{i}");
                        }
                        call
                    })
                    .collect(),
            ))
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
        OpenAIError::JSONDeserialize(e, _) => {
            tracing::warn!(error = %e, "unreadable model answer");
            ModelError::BadResponse(e.to_string())
        }
        other => {
            tracing::warn!(error = %other, "model call failed");
            ModelError::Upstream("its answer broke off".into())
        }
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
