//! What every handler, server function and MCP tool shares.

use std::sync::Arc;

use axum::extract::FromRef;
use leptos::config::LeptosOptions;
use sqlx::PgPool;

use super::{agent::ChatModel, auth::JwtKeys, config::Config, rate_limit::Limits};

#[derive(Clone)]
pub struct AppState {
    pub pool: PgPool,
    pub config: Arc<Config>,
    pub jwt: Arc<JwtKeys>,
    pub limits: Arc<Limits>,
    /// The agent's language model: OpenAI-compatible, or the offline assistant.
    pub model: Arc<ChatModel>,
    pub leptos_options: LeptosOptions,
    /// Work that must outlive its request (agent turns); drained on graceful shutdown.
    pub background: tokio_util::task::TaskTracker,
}

impl AppState {
    pub fn new(pool: PgPool, config: Config, jwt: JwtKeys, leptos_options: LeptosOptions) -> Self {
        Self {
            pool,
            limits: Arc::new(Limits::new(&config)),
            model: Arc::new(ChatModel::from_config(&config)),
            config: Arc::new(config),
            jwt: Arc::new(jwt),
            leptos_options,
            background: tokio_util::task::TaskTracker::new(),
        }
    }
}

impl FromRef<AppState> for LeptosOptions {
    fn from_ref(state: &AppState) -> Self {
        state.leptos_options.clone()
    }
}
