//! Origin checks: the CSRF guard on browser writes, and whether a sign-in hands its token to
//! the caller.

use std::sync::Arc;

use axum::{
    extract::{Request, State},
    http::{header, HeaderMap, Method},
    middleware::Next,
    response::{IntoResponse, Response},
};

use super::{
    super::{config::Config, error::AppError},
    session_cookie,
};

/// CSRF defence: a state-changing request not authenticated by a bearer header (which
/// browsers never add by themselves) must come from an allowed origin, this site itself or one
/// listed in `CORS_ALLOWED_ORIGINS`, when it carries the session cookie or a browser says where
/// it comes from. So another site can neither act with a visitor's session nor sign the
/// visitor's browser into an account of its choosing (login and register set the cookie).
/// Callers that are no browser (no cookie, no `Origin`) pass.
pub async fn origin_guard(
    State(config): State<Arc<Config>>,
    request: Request,
    next: Next,
) -> Response {
    let safe_method = matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS
    );
    let headers = request.headers();
    // Only a bearer token: browsers add cached Basic/Digest/Negotiate credentials by themselves.
    let bearer = super::bearer_token(headers).is_some();
    let browser = session_cookie(headers).is_some() || request_origin(headers).is_some();
    if safe_method || bearer || !browser || origin_allowed(&config, headers) {
        return next.run(request).await;
    }
    AppError::Forbidden("cross-origin request refused: the Origin is not allowed".into())
        .into_response()
}

fn origin_allowed(config: &Config, headers: &HeaderMap) -> bool {
    request_origin(headers)
        .is_some_and(|origin| is_same_origin(headers, &origin) || config.allows_origin(&origin))
}

/// The origin a browser says a request comes from (`Origin`, else the `Referer`'s).
fn request_origin(headers: &HeaderMap) -> Option<String> {
    let origin = headers
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .or_else(|| {
            let referer = headers.get(header::REFERER)?.to_str().ok()?;
            let (scheme, rest) = referer.split_once("://")?;
            let authority = rest.split('/').next()?;
            Some(format!("{scheme}://{authority}"))
        })?;
    Some(origin.trim_end_matches('/').to_string())
}

/// Whether a sign-in should hand its bearer token to the caller: a caller that is no browser
/// (no `Origin`), or a page on one of `CORS_ALLOWED_ORIGINS` other than this site. Our own pages
/// never get it, even behind a proxy that rewrites `Host`: their origin is not in the list.
pub fn wants_token(config: &Config, headers: &HeaderMap) -> bool {
    request_origin(headers)
        .is_none_or(|origin| !is_same_origin(headers, &origin) && config.allows_origin(&origin))
}

/// Whether `origin`, the request's, is this very site (it names the `Host`).
fn is_same_origin(headers: &HeaderMap, origin: &str) -> bool {
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    origin
        .split_once("://")
        .is_some_and(|(_, authority)| !host.is_empty() && authority.eq_ignore_ascii_case(host))
}
