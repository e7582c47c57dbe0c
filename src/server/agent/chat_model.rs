//! The model the agent talks to: an OpenAI-compatible server, or the built-in offline one.

use super::{
    model::{ModelError, ModelReply, PromptMessage, TextSink, ToolSpec},
    offline::OfflineModel,
    openai::OpenAiModel,
};

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
