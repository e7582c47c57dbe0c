//! Everything that runs only on the server (the `ssr` feature).

pub mod agent;
pub mod auth;
pub mod bus;
pub mod chatkit;
pub mod client_ip;
pub mod config;
pub mod context;
pub mod cors;
pub mod db;
pub mod error;
pub mod guards;
pub mod listener;
pub mod live;
pub mod markdown;
pub mod mcp;
pub mod rate_limit;
pub mod rest;
pub mod services;
pub mod sessions;
pub mod state;

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

use crate::app::{shell, App};
use state::AppState;

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
                .service(mcp::http_service(state.pool.clone(), &state.config)),
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

/// Serves HTTP/1.1 until `shutdown` resolves, then lets in-flight requests finish (each
/// connection is asked to close after its current response). Connections are served by hyper's
/// HTTP/1 server directly rather than by a protocol-detecting one: an open event stream then
/// costs only what HTTP/1 needs (README "Performance").
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    use axum::extract::ConnectInfo;
    use hyper_util::{rt::TokioIo, service::TowerToHyperService};
    use tower::ServiceExt;

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let connections = tokio_util::task::TaskTracker::new();
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    // Out of file descriptors and the like: wait a moment, keep serving.
                    tracing::warn!(error = %err, "accepting a connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let service =
            app.clone()
                .map_request(move |mut request: Request<hyper::body::Incoming>| {
                    request.extensions_mut().insert(ConnectInfo(peer));
                    request.map(Body::new)
                });
        let mut stop = stop_rx.clone();
        connections.spawn(async move {
            let connection = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), TowerToHyperService::new(service))
                .with_upgrades();
            tokio::pin!(connection);
            tokio::select! {
                _ = connection.as_mut() => {}
                _ = async { stop.wait_for(|stopping| *stopping).await.map(|_| ()) } => {
                    connection.as_mut().graceful_shutdown();
                    let _ = connection.await;
                }
            }
        });
    }
    let _ = stop_tx.send(true);
    connections.close();
    connections.wait().await;
    Ok(())
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
    tracing::info!("shutdown requested; finishing in-flight work");
}

/// Structured logs; `RUST_LOG` overrides the default level, `LOG_FORMAT=json` for JSON lines.
pub fn init_tracing() {
    use tracing_subscriber::{fmt, prelude::*, EnvFilter};
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,tower_http=info,rmcp=warn"));
    let json = std::env::var("LOG_FORMAT").is_ok_and(|v| v.eq_ignore_ascii_case("json"));
    let registry = tracing_subscriber::registry().with(filter);
    if json {
        registry.with(fmt::layer().json()).init();
    } else {
        registry.with(fmt::layer()).init();
    }
}

/// Leptos settings for serving the compiled site (cargo-leptos output).
pub fn leptos_options(config: &config::Config) -> LeptosOptions {
    LeptosOptions::builder()
        .output_name("chatkit")
        .site_root(config.site_root.as_str())
        .site_pkg_dir("pkg")
        .site_addr(config.addr)
        .build()
}
