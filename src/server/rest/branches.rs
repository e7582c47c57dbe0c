//! `/api/chat/conversations/{id}/messages/{message_id}/edit|regenerate` and `…/current`:
//! branches of a conversation (issue 23), over the same turn and branch services as a send.

use axum::{extract::State, http::HeaderMap, response::Response};
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use super::{chat::answer_turn, ApiJson, ApiPath};
use crate::{
    model::{Conversation, CurrentBranch, EditMessage, LiveEvent, RegenerateMessage, TurnResult},
    server::{
        agent,
        auth::AuthUser,
        error::{AppError, AppResult},
        services::branches,
        state::AppState,
    },
};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(edit_message))
        .routes(routes!(regenerate_message))
        .routes(routes!(switch_branch))
}

/// Edit a sent user message: a new message beside it (the old one and its answers stay, as
/// another branch), answered like a send. `client_id` makes resends safe. With
/// `Accept: text/event-stream` the turn's events stream as for a send.
#[utoipa::path(post, path = "/api/chat/conversations/{id}/messages/{message_id}/edit", tag = "chat",
    params(("id" = Uuid, Path), ("message_id" = Uuid, Path)),
    request_body = EditMessage,
    responses(
        (status = 201, body = TurnResult),
        (status = 200, content_type = "text/event-stream", body = LiveEvent,
         description = "with `Accept: text/event-stream`: the turn's live events"),
        (status = 400), (status = 401), (status = 404), (status = 409), (status = 429)))]
async fn edit_message(
    State(state): State<AppState>,
    user: AuthUser,
    ApiPath((id, message_id)): ApiPath<(Uuid, Uuid)>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<EditMessage>,
) -> AppResult<Response> {
    answer_turn(&state, &user, &headers, || {
        agent::start_edit(
            &state.agent,
            user.id,
            id,
            message_id,
            &body.content,
            body.client_id,
        )
    })
    .await
}

/// Another answer to the message an assistant message answered, beside the old one (which
/// stays, as another branch). The model is told what earlier answers already did to the
/// tasks. The body is optional. Streams like a send with `Accept: text/event-stream`.
#[utoipa::path(post, path = "/api/chat/conversations/{id}/messages/{message_id}/regenerate", tag = "chat",
    params(("id" = Uuid, Path), ("message_id" = Uuid, Path)),
    request_body = RegenerateMessage,
    responses(
        (status = 201, body = TurnResult),
        (status = 200, content_type = "text/event-stream", body = LiveEvent,
         description = "with `Accept: text/event-stream`: the turn's live events"),
        (status = 400), (status = 401), (status = 404), (status = 409), (status = 429)))]
async fn regenerate_message(
    State(state): State<AppState>,
    user: AuthUser,
    ApiPath((id, message_id)): ApiPath<(Uuid, Uuid)>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> AppResult<Response> {
    let body = if body.iter().all(u8::is_ascii_whitespace) {
        RegenerateMessage::default()
    } else {
        serde_json::from_slice::<RegenerateMessage>(&body)
            .map_err(|err| AppError::validation(format!("invalid JSON body: {err}")))?
    };
    answer_turn(&state, &user, &headers, || async {
        agent::start_regenerate(&state.agent, user.id, id, message_id, body.client_id)
            .await
            .map(|(_, turn)| turn)
    })
    .await
}

/// Show another branch: the one through `message_id`, whose most recent message becomes the
/// current leaf (kept for reloads and other devices; other tabs follow). 409 while an answer
/// is being written.
#[utoipa::path(put, path = "/api/chat/conversations/{id}/current", tag = "chat",
    params(("id" = Uuid, Path)),
    request_body = CurrentBranch,
    responses((status = 200, body = Conversation), (status = 400), (status = 401), (status = 404), (status = 409)))]
async fn switch_branch(
    State(state): State<AppState>,
    user: AuthUser,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(body): ApiJson<CurrentBranch>,
) -> AppResult<ApiJson<Conversation>> {
    branches::switch(&state.pool, &state.bus, user.id, id, body.message_id)
        .await
        .map(ApiJson)
}
