//! `/mcp` over HTTP: the Streamable HTTP service and its bearer-token gate.

use std::sync::Arc;

use axum::{
    extract::{Request, State},
    middleware::Next,
    response::{IntoResponse, Response},
};
use rmcp::transport::streamable_http_server::{
    session::local::LocalSessionManager, StreamableHttpServerConfig, StreamableHttpService,
};
use sqlx::PgPool;

use super::TaskTools;
use crate::server::{
    auth::bearer_token, bus::EventBus, config::Config, error::AppError, sessions::Sessions,
};

/// `/mcp` as a tower service: stateless Streamable HTTP with JSON responses, so any replica can
/// answer any request.
pub fn http_service(
    pool: PgPool,
    bus: Arc<EventBus>,
    config: &Config,
) -> StreamableHttpService<TaskTools, LocalSessionManager> {
    let mut hosts: Vec<String> = vec!["localhost".into(), "127.0.0.1".into(), "::1".into()];
    hosts.push(config.addr.to_string());
    hosts.extend(config.mcp_allowed_hosts.iter().cloned());
    let allowed_origins = config.allowed_origins.clone();
    let any_host = config.mcp_allowed_hosts.iter().any(|h| h == "*");
    let clock = config.clock;
    let mut config = StreamableHttpServerConfig::default()
        .with_legacy_session_mode(false)
        .with_json_response(true);
    // "*" turns the Host check off (e.g. behind a proxy that already pins the host).
    config = if any_host {
        config.disable_allowed_hosts()
    } else {
        config.with_allowed_hosts(hosts)
    };
    if !allowed_origins.is_empty() {
        config = config.with_allowed_origins(allowed_origins);
    }
    StreamableHttpService::new(
        move || Ok(TaskTools::for_http(pool.clone(), bus.clone(), clock)),
        Arc::new(LocalSessionManager::default()),
        config,
    )
}

/// 401 before any MCP work unless a valid bearer token is present; the user rides along in
/// the request extensions for the tools. Cookies are not accepted here.
pub async fn require_bearer(
    State(sessions): State<Arc<Sessions>>,
    mut request: Request,
    next: Next,
) -> Response {
    let token = bearer_token(request.headers());
    let user = match token {
        Some(token) => sessions.authenticate_token(&token).await.ok(),
        None => None,
    };
    match user {
        Some(user) => {
            request.extensions_mut().insert(user);
            next.run(request).await
        }
        _ => {
            let mut response = AppError::Unauthorized.into_response();
            response.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Bearer"),
            );
            response
        }
    }
}
