//! The whole application as one axum router: REST, MCP, ChatKit, server functions, pages and
//! assets, with the guards every request passes; and the health endpoints.

use std::time::Duration;

use axum::{
    body::Body,
    extract::{Request, State},
    http::{HeaderName, StatusCode},
    middleware,
    response::{IntoResponse, Response},
    routing::{any, get},
    Router,
};
use leptos::prelude::*;
use leptos_axum::{generate_route_list, LeptosRoutes};
use tower_http::{
    compression::{
        predicate::{NotForContentType, Predicate},
        CompressionLayer, DefaultPredicate,
    },
    request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer},
    services::ServeDir,
    trace::TraceLayer,
};

use super::{auth, chatkit, cors, error, guards, mcp, rest, state::AppState};
use crate::app::{shell, App};

/// ChatKit's endpoint (`chatkit`); its errors have ChatKit's shape (`error::ErrorShape`).
pub const CHATKIT_PATH: &str = "/chatkit";

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The whole application as one axum router: REST, MCP, server functions, pages, assets.
pub fn router(state: AppState) -> Router {
    let leptos_options = state.leptos_options.clone();
    let routes = generate_route_list(App);
    let context_state = state.clone();
    let fallback_state = state.clone();
    let writes = guards::WriteLimit {
        sessions: state.sessions.clone(),
        limits: state.limits.clone(),
    };
    let (api, live_events) = rest::router();
    let api = api.route("/api/{*rest}", any(guards::api_not_found)).layer(
        middleware::from_fn_with_state(writes.clone(), guards::limit_writes),
    );
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .merge(api)
        .merge(chatkit::router())
        .nest_service(
            "/mcp",
            tower::ServiceBuilder::new()
                .layer(middleware::from_fn_with_state(state.sessions.clone(), mcp::require_bearer))
                .layer(middleware::from_fn_with_state(writes, guards::limit_writes))
                .service(mcp::http_service(state.pool.clone(), state.bus.clone(), &state.config)),
        )
        // Leptos also routes each server function's own path; this catches any other.
        .route("/sfn/{*fn_name}", get(server_fn_handler).post(server_fn_handler))
        // The WASM/JS/CSS bundle, precompressed at build time (scripts/precompress.mjs).
        .nest_service(
            "/pkg",
            ServeDir::new(format!("{}/pkg", state.config.site_root))
                .precompressed_br()
                .precompressed_gzip(),
        )
        .leptos_routes_with_context(
            &state,
            routes,
            move || {
                provide_context(context_state.clone());
                guards::allow_page_scripts();
            },
            move || shell(leptos_options.clone()),
        )
        .fallback(leptos_axum::file_and_error_handler_with_context::<AppState, _>(
            move || {
                provide_context(fallback_state.clone());
                guards::allow_page_scripts();
            },
            shell,
        ))
        // Body limits and the time limit apply to every route family, server functions
        // included (Leptos registers those paths itself).
        .layer(middleware::from_fn(guards::server_fn_status))
        .layer(middleware::from_fn(guards::limit_body))
        .layer(middleware::from_fn_with_state(state.config.request_timeout, time_limit))
        .layer(middleware::from_fn_with_state(state.config.clone(), auth::origin_guard))
        // Event streams are not compressed: a compressor per open stream would cost far more
        // memory than the few bytes it saves, and would delay deltas.
        .layer(CompressionLayer::new().compress_when(
            DefaultPredicate::new().and(NotForContentType::const_new("text/event-stream")),
        ))
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(TraceLayer::new_for_http().make_span_with(|request: &Request<Body>| {
            // One span per request; headers (cookies, tokens) are deliberately not recorded.
            let request_id = request.headers().get(REQUEST_ID).and_then(|v| v.to_str().ok()).unwrap_or("-");
            tracing::info_span!("request", method = %request.method(), path = %request.uri().path(), request_id)
        }))
        .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
        .merge(live_events)
        .layer(middleware::from_fn_with_state(state.config.clone(), cors::cors))
        .layer(middleware::from_fn(guards::security_headers))
        .with_state(state)
}

/// 408 with the usual JSON error when a response does not start within `limit`. (Work that
/// must outlive its request, such as an agent turn, runs as its own task and goes on.)
async fn time_limit(
    State(limit): State<Duration>,
    request: Request<Body>,
    next: middleware::Next,
) -> Response {
    let shape = error::ErrorShape::for_path(request.uri().path());
    match tokio::time::timeout(limit, next.run(request)).await {
        Ok(response) => response,
        Err(_) => guards::timed_out(shape),
    }
}

async fn readyz(State(state): State<AppState>) -> Response {
    let ping = tokio::time::timeout(
        Duration::from_secs(2),
        sqlx::query("SELECT 1").execute(&state.pool),
    )
    .await;
    // The detail says which replica answers and how its events travel (NATS can be away:
    // the replica still serves, through Postgres).
    let detail = format!(
        "replica {}; turns running: {}; {}",
        state.agent.replica,
        state.agent.running_turns(),
        state.bus.state().describe()
    );
    match ping {
        Ok(Ok(_)) => (StatusCode::OK, format!("ready; {detail}")).into_response(),
        _ => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("database unreachable; {detail}"),
        )
            .into_response(),
    }
}

async fn server_fn_handler(
    State(state): State<AppState>,
    request: Request<Body>,
) -> impl IntoResponse {
    leptos_axum::handle_server_fns_with_context(move || provide_context(state.clone()), request)
        .await
}

/// Leptos settings for serving the compiled site (cargo-leptos output).
pub fn leptos_options(config: &super::config::Config) -> LeptosOptions {
    LeptosOptions::builder()
        .output_name("chatkit")
        .site_root(config.site_root.as_str())
        .site_pkg_dir("pkg")
        .site_addr(config.addr)
        .build()
}
