//! What every handler, server function and MCP tool shares, with `FromRef` sub-states so a
//! module takes only what it needs (the agent its `AgentState`, auth the token keys).

use std::sync::Arc;

use axum::extract::FromRef;
use leptos::config::LeptosOptions;
use sqlx::PgPool;

use super::{agent::AgentState, auth::JwtKeys, config::Config, rate_limit::Limits};

#[derive(Clone)]
pub struct AppState {
    pub pool: PgPool,
    pub config: Arc<Config>,
    pub jwt: Arc<JwtKeys>,
    pub limits: Arc<Limits>,
    pub agent: AgentState,
    pub leptos_options: LeptosOptions,
}

impl AppState {
    pub fn new(pool: PgPool, config: Config, jwt: JwtKeys, leptos_options: LeptosOptions) -> Self {
        let limits = Arc::new(Limits::new(&config));
        Self {
            agent: AgentState::new(pool.clone(), &config, limits.clone()),
            pool,
            limits,
            config: Arc::new(config),
            jwt: Arc::new(jwt),
            leptos_options,
        }
    }
}

impl FromRef<AppState> for LeptosOptions {
    fn from_ref(state: &AppState) -> Self {
        state.leptos_options.clone()
    }
}

impl FromRef<AppState> for Arc<JwtKeys> {
    fn from_ref(state: &AppState) -> Self {
        state.jwt.clone()
    }
}

impl FromRef<AppState> for Arc<Config> {
    fn from_ref(state: &AppState) -> Self {
        state.config.clone()
    }
}

impl FromRef<AppState> for AgentState {
    fn from_ref(state: &AppState) -> Self {
        state.agent.clone()
    }
}
