//! Protections every request passes through: body size limits (413) and undecodable bodies
//! (400) per route family, a per-user limit on writes, security headers, and a JSON 404 for
//! unknown API paths. The error bodies are the same `{"detail": …}` as everywhere.

use std::sync::Arc;

use axum::{
    body::Body,
    extract::{Request, State},
    http::{header, HeaderValue, Method, StatusCode},
    middleware::Next,
    response::{IntoResponse, Response},
};

use super::{
    context::RequestContext,
    error::{AppError, ErrorShape},
    rate_limit::Limits,
    sessions::Sessions,
};

/// The largest body each route family accepts. A chat message is at most 10,000 characters
/// (40 KB of UTF-8 at worst) plus JSON; MCP requests carry tool arguments of similar size.
#[derive(Clone, Copy)]
pub struct BodyRules {
    pub limit: usize,
    /// Server-function bodies are URL-encoded or JSON text: invalid UTF-8 is refused up front.
    pub utf8: bool,
}

pub const API_BODY: BodyRules = BodyRules {
    limit: 64 * 1024,
    utf8: false,
};
pub const SFN_BODY: BodyRules = BodyRules {
    limit: 64 * 1024,
    utf8: true,
};
pub const MCP_BODY: BodyRules = BodyRules {
    limit: 256 * 1024,
    utf8: false,
};
/// An import (`/api/import`): read as a stream by its handler, which counts it; only a
/// declared length over the limit is refused here.
pub const IMPORT_PATH: &str = "/api/import";
/// A 50 MB file, with room for a multipart envelope around it.
pub const IMPORT_BODY_LIMIT: usize = 50 * 1024 * 1024 + 64 * 1024;

fn too_large(shape: ErrorShape, limit: usize) -> Response {
    shape.response(
        StatusCode::PAYLOAD_TOO_LARGE,
        &format!(
            "the request body is too large (the limit is {} KB)",
            limit / 1024
        ),
        None,
    )
}

/// The rules for a path: server functions (all under `/sfn`, whichever router serves them),
/// MCP, and everything else (the REST API, pages and their form posts).
fn rules_for(path: &str) -> BodyRules {
    if path.starts_with("/sfn/") {
        SFN_BODY
    } else if path == "/mcp" || path.starts_with("/mcp/") {
        MCP_BODY
    } else {
        API_BODY
    }
}

/// Reads the body up to its route family's limit (413 past it; 400 for invalid UTF-8 where
/// text is expected). Requests without a body pass untouched.
pub async fn limit_body(request: Request, next: Next) -> Response {
    if matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS
    ) && !request.headers().contains_key(header::CONTENT_LENGTH)
    {
        return next.run(request).await;
    }
    let rules = rules_for(request.uri().path());
    let shape = ErrorShape::for_path(request.uri().path());
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if request.uri().path() == IMPORT_PATH {
        return if declared.is_some_and(|n| n > IMPORT_BODY_LIMIT) {
            too_large(shape, IMPORT_BODY_LIMIT)
        } else {
            next.run(request).await
        };
    }
    if declared.is_some_and(|n| n > rules.limit) {
        return too_large(shape, rules.limit);
    }
    let (parts, body) = request.into_parts();
    let bytes = match axum::body::to_bytes(body, rules.limit).await {
        Ok(bytes) => bytes,
        Err(err) => {
            let over = std::error::Error::source(&err)
                .is_some_and(|e| e.to_string().contains("length limit"))
                || err.to_string().contains("length limit");
            return if over {
                too_large(shape, rules.limit)
            } else {
                shape.response(
                    StatusCode::BAD_REQUEST,
                    "the request body could not be read",
                    None,
                )
            };
        }
    };
    if rules.utf8 && std::str::from_utf8(&bytes).is_err() {
        return shape.response(
            StatusCode::BAD_REQUEST,
            "the request body is not valid UTF-8 text",
            None,
        );
    }
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}

/// State of the write limit: who the request is, and the limiter.
#[derive(Clone)]
pub struct WriteLimit {
    pub sessions: Arc<Sessions>,
    pub limits: Arc<Limits>,
}

/// The REST and MCP adapters of the write check (`RequestContext::write`): every REST write
/// (POST/PUT/DELETE) and every MCP request passes it; 429 with `Retry-After` past the user's
/// allowance. Unauthenticated requests pass (the handler answers 401).
pub async fn limit_writes(
    State(state): State<WriteLimit>,
    request: Request,
    next: Next,
) -> Response {
    let reads = matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS
    );
    if !reads {
        if let Ok(context) =
            RequestContext::of(&state.sessions, &state.limits, request.headers()).await
        {
            if let Err(err) = context.write().await {
                return err.into_response();
            }
        }
    }
    next.run(request).await
}

/// The Content-Security-Policy: scripts only from this origin, plus (on a page) its inline
/// hydration scripts by the page's own nonce; WASM needs `'wasm-unsafe-eval'`. No
/// `'unsafe-inline'` for scripts, and assistant HTML is sanitised on the server besides.
fn content_security_policy(nonce: Option<&str>) -> String {
    let scripts = match nonce {
        Some(nonce) => format!("'self' 'nonce-{nonce}' 'wasm-unsafe-eval'"),
        None => "'self' 'wasm-unsafe-eval'".to_string(),
    };
    format!(
        "default-src 'self'; script-src {scripts}; style-src 'self' 'unsafe-inline'; \
         img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'self'; \
         form-action 'self'; frame-ancestors 'none'"
    )
}

/// For a page being rendered (called in its Leptos context): its CSP allows the nonce Leptos
/// put on this page's hydration scripts (a new one per response).
pub fn allow_page_scripts() {
    use leptos::prelude::use_context;
    if let (Some(nonce), Some(response)) = (
        leptos::nonce::use_nonce(),
        use_context::<leptos_axum::ResponseOptions>(),
    ) {
        if let Ok(value) = HeaderValue::from_str(&content_security_policy(Some(&nonce))) {
            response.insert_header(header::CONTENT_SECURITY_POLICY, value);
        }
    }
}

/// Security headers on every response (a page has set its own CSP already).
pub async fn security_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    if !headers.contains_key(header::CONTENT_SECURITY_POLICY) {
        if let Ok(value) = HeaderValue::from_str(&content_security_policy(None)) {
            headers.insert(header::CONTENT_SECURITY_POLICY, value);
        }
    }
    let set = |headers: &mut axum::http::HeaderMap, name: &'static str, value: &'static str| {
        headers
            .entry(name)
            .or_insert(HeaderValue::from_static(value));
    };
    set(headers, "x-content-type-options", "nosniff");
    set(headers, "referrer-policy", "same-origin");
    set(headers, "x-frame-options", "DENY");
    response
}

/// Server functions answer every error they could not run with 500 (the framework's choice),
/// their body saying the real status: arguments that do not decode are the caller's mistake,
/// so the answer gets the status its body names (400), never a 500.
pub async fn server_fn_status(request: Request, next: Next) -> Response {
    if !request.uri().path().starts_with("/sfn/") {
        return next.run(request).await;
    }
    let response = next.run(request).await;
    if response.status() != StatusCode::INTERNAL_SERVER_ERROR
        || !response.headers().contains_key("serverfnerror")
    {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, 64 * 1024).await else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    if let Some(status) = serde_json::from_slice::<crate::model::ApiError>(&bytes)
        .ok()
        .and_then(|err| StatusCode::from_u16(err.status).ok())
        .filter(StatusCode::is_client_error)
    {
        parts.status = status;
    }
    Response::from_parts(parts, Body::from(bytes))
}

/// Unknown `/api/...` paths answer like the rest of the API.
pub async fn api_not_found() -> AppError {
    AppError::NotFound("API endpoint".into())
}

/// A request that took longer than `REQUEST_TIMEOUT_SECS` to start answering.
pub fn timed_out(shape: ErrorShape) -> Response {
    shape.response(
        StatusCode::REQUEST_TIMEOUT,
        "the request took too long; if it was a message, its answer will appear in the conversation",
        None,
    )
}
