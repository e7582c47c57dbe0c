//! Server functions: the RPC surface of the UI and of other Leptos apps that depend on this
//! crate. Every endpoint is stable (`/sfn/<area>/<name>`, no hash suffix) and each function is a
//! thin adapter over `server::services`. `declare` explains how one declaration serves as the
//! server's function (feature `ssr`) and as everyone else's client stub.

pub mod auth;
pub mod chat;
#[cfg(feature = "client")]
pub mod client;
mod declare;
pub mod events;
pub mod tasks;

#[cfg(feature = "ssr")]
pub(crate) mod ssr {
    //! Glue between server functions and the service layer.
    use std::net::{IpAddr, SocketAddr};

    use axum::{extract::ConnectInfo, http::HeaderMap};
    use leptos::prelude::*;
    use leptos_axum::ResponseOptions;

    use crate::{
        model::{ApiError, Message},
        server::{auth::AuthUser, context::RequestContext, error::AppError, state::AppState},
    };

    /// Renders an assistant message's markdown for the browser (see `Message::html`): the
    /// renderer stays on the server, which keeps it out of the WASM bundle.
    pub fn render_markdown(message: &mut Message) {
        crate::server::rendered::present(message);
    }

    /// A turn's reply rendered (a parked turn has none yet).
    pub fn render_turn(turn: &mut crate::model::TurnResult) {
        if let Some(message) = turn.assistant_message.as_mut() {
            render_markdown(message);
        }
    }

    /// The caller's decision on its parked turn (`call_id` none: every call that waits), the
    /// continued turn's reply rendered.
    pub async fn decide(
        conversation: uuid::Uuid,
        call_id: Option<&str>,
        approve: bool,
    ) -> Result<crate::model::DecisionResult, ApiError> {
        let (state, user) = writer().await?;
        let mut result =
            crate::server::agent::decide(&state.agent, user.id, conversation, call_id, approve)
                .await
                .map_err(fail)?;
        if let Some(turn) = result.turn.as_mut() {
            render_turn(turn);
        }
        Ok(result)
    }

    pub fn state() -> Result<AppState, ApiError> {
        use_context::<AppState>().ok_or_else(|| ApiError::new(500, "server state missing"))
    }

    /// Turns a service error into the function's error, with the matching HTTP status.
    /// A plain HTML form post (no JavaScript) keeps the framework's redirect back to the form,
    /// which carries the error in its URL, so its status is left alone.
    pub fn fail(err: AppError) -> ApiError {
        if let Some(response) = use_context::<ResponseOptions>().filter(|_| !is_form_post()) {
            response.set_status(err.status());
            if let AppError::RateLimited { retry_after } = &err {
                if let Ok(value) = retry_after.as_secs().max(1).to_string().parse() {
                    response.insert_header(axum::http::header::RETRY_AFTER, value);
                }
            }
        }
        err.to_api_error()
    }

    /// A plain HTML form post (no JavaScript) asks for HTML back.
    fn is_form_post() -> bool {
        use_context::<axum::http::request::Parts>().is_some_and(|parts| {
            parts
                .headers
                .get(axum::http::header::ACCEPT)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.contains("text/html"))
        })
    }

    /// A plain HTML form post that failed goes back to `path` with why it failed; what was
    /// typed is kept on the server for that one redirect (`services::drafts`), so the page
    /// shows it again and it never travels in the URL.
    pub async fn redirect_form_error(
        state: &AppState,
        user: &AuthUser,
        path: &str,
        draft: &str,
        detail: &str,
    ) {
        if !is_form_post() {
            return;
        }
        let kept = crate::server::services::drafts::keep(&state.pool, user.id, draft).await;
        let draft = match kept {
            Ok(id) => format!("&draft={id}"),
            Err(err) => {
                tracing::warn!(error = %err, "keeping a failed send's draft");
                String::new()
            }
        };
        leptos_axum::redirect(&format!(
            "{path}?error={}{draft}",
            crate::server::query_value(detail)
        ));
    }

    /// Redirects a plain HTML form post; script callers get data, not a redirect.
    pub fn redirect_form_post(path: &str) {
        if is_form_post() {
            leptos_axum::redirect(path);
        }
    }

    pub async fn headers() -> Result<HeaderMap, ApiError> {
        leptos_axum::extract::<HeaderMap>()
            .await
            .map_err(|e| ApiError::new(400, e.to_string()))
    }

    pub async fn client_ip() -> Option<IpAddr> {
        let peer = leptos_axum::extract::<ConnectInfo<SocketAddr>>()
            .await
            .ok()
            .map(|c| c.0.ip());
        let (state, headers) = (state().ok()?, headers().await.ok()?);
        crate::server::client_ip::resolve(peer, &headers, &state.config.trusted_proxies)
    }

    /// The state and the signed-in user, or a 401.
    pub async fn authenticated() -> Result<(AppState, AuthUser), ApiError> {
        let state = state()?;
        let context = RequestContext::of(&state.sessions, &state.limits, &headers().await?)
            .await
            .map_err(fail)?;
        Ok((state, context.user))
    }

    /// Like `authenticated`, for a function that changes something: it passes the one write
    /// check, sharing the user's allowance with REST, ChatKit and MCP (429 past it).
    pub async fn writer() -> Result<(AppState, AuthUser), ApiError> {
        let state = state()?;
        let context = RequestContext::of(&state.sessions, &state.limits, &headers().await?)
            .await
            .map_err(fail)?;
        context.write().await.map_err(fail)?;
        Ok((state, context.user))
    }
}
