//! CORS for `/sfn`, `/api` and `/chatkit`: pages on the origins in `CORS_ALLOWED_ORIGINS` (the CSR build,
//! other Leptos apps) may call the server functions and the REST API, with credentials. Any
//! other origin's preflight is refused with 403, and its responses carry no CORS headers, so
//! the browser keeps them from the page.

use std::sync::Arc;

use axum::{
    extract::{Request, State},
    http::{header, HeaderMap, HeaderValue, Method, StatusCode},
    middleware::Next,
    response::{IntoResponse, Response},
};

use super::{config::Config, error::AppError};

/// Request headers a caller may send.
const ALLOWED_HEADERS: &str = "authorization, content-type, accept, last-event-id";
/// Response headers a caller may read.
const EXPOSED_HEADERS: &str = "retry-after, x-request-id, serverfnredirect";
const ALLOWED_METHODS: &str = "GET, POST, PUT, PATCH, DELETE";
/// How long a browser may reuse a preflight's answer.
const MAX_AGE_SECS: &str = "600";

pub async fn cors(State(config): State<Arc<Config>>, request: Request, next: Next) -> Response {
    let path = request.uri().path();
    let covered =
        path.starts_with("/sfn/") || path.starts_with("/api/") || path == super::CHATKIT_PATH;
    let Some(origin) = covered
        .then(|| request.headers().get(header::ORIGIN).cloned())
        .flatten()
    else {
        return next.run(request).await;
    };
    let allowed = origin
        .to_str()
        .is_ok_and(|origin| config.allows_origin(origin));
    let preflight = request.method() == Method::OPTIONS
        && request
            .headers()
            .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);
    if preflight {
        if !allowed {
            return AppError::Forbidden(
                "cross-origin request refused: the Origin is not in CORS_ALLOWED_ORIGINS".into(),
            )
            .into_response();
        }
        let mut response = StatusCode::NO_CONTENT.into_response();
        let headers = response.headers_mut();
        headers.append(header::VARY, HeaderValue::from_static("origin"));
        allow(headers, origin);
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static(ALLOWED_METHODS),
        );
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            HeaderValue::from_static(ALLOWED_HEADERS),
        );
        headers.insert(
            header::ACCESS_CONTROL_MAX_AGE,
            HeaderValue::from_static(MAX_AGE_SECS),
        );
        return response;
    }
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    // Answers differ by Origin: caches must keep them apart.
    headers.append(header::VARY, HeaderValue::from_static("origin"));
    if allowed {
        allow(headers, origin);
        headers.insert(
            header::ACCESS_CONTROL_EXPOSE_HEADERS,
            HeaderValue::from_static(EXPOSED_HEADERS),
        );
    }
    response
}

fn allow(headers: &mut HeaderMap, origin: HeaderValue) {
    headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
        HeaderValue::from_static("true"),
    );
}
