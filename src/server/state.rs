//! What every handler, server function and MCP tool shares.

use std::sync::Arc;

use axum::extract::FromRef;
use leptos::config::LeptosOptions;
use sqlx::PgPool;

use super::{
    agent::{ChatModel, ToolSpec},
    auth::JwtKeys,
    config::Config,
    rate_limit::Limits,
};

#[derive(Clone)]
pub struct AppState {
    pub pool: PgPool,
    /// Connections that hold per-conversation advisory locks for whole agent turns. Separate
    /// from `pool`, so turns waiting for a lock can never starve the turn that holds it.
    pub lock_pool: PgPool,
    pub config: Arc<Config>,
    pub jwt: Arc<JwtKeys>,
    pub limits: Arc<Limits>,
    /// The agent's language model: OpenAI-compatible, or the offline assistant.
    pub model: Arc<ChatModel>,
    pub leptos_options: LeptosOptions,
    /// The MCP tools as offered to the model, listed on the first turn.
    pub tool_specs: Arc<tokio::sync::OnceCell<Vec<ToolSpec>>>,
    /// Work that must outlive its request (agent turns); drained on graceful shutdown.
    pub background: tokio_util::task::TaskTracker,
}

impl AppState {
    pub fn new(pool: PgPool, config: Config, jwt: JwtKeys, leptos_options: LeptosOptions) -> Self {
        let lock_pool = sqlx::postgres::PgPoolOptions::new()
            .max_connections(config.turn_lock_connections)
            .min_connections(0)
            .acquire_timeout(std::time::Duration::from_secs(120))
            .connect_lazy_with((*pool.connect_options()).clone());
        Self {
            pool,
            lock_pool,
            limits: Arc::new(Limits::new(&config)),
            model: Arc::new(ChatModel::from_config(&config)),
            config: Arc::new(config),
            jwt: Arc::new(jwt),
            leptos_options,
            tool_specs: Arc::default(),
            background: tokio_util::task::TaskTracker::new(),
        }
    }
}

impl FromRef<AppState> for LeptosOptions {
    fn from_ref(state: &AppState) -> Self {
        state.leptos_options.clone()
    }
}
