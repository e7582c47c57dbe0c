//! Approving the assistant's calls and undoing its changes (issue #24), and the account
//! settings that choose when it asks: thin adapters over the agent and the undo service.

use axum::extract::State;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use super::{ApiJson, ApiPath};
use crate::{
    model::{AccountSettings, ApprovalDecision, DecisionResult, UndoRequest, UndoResult},
    server::{
        agent,
        auth::AuthUser,
        error::{AppError, AppResult},
        services::{undo, users},
        state::AppState,
    },
};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(decide))
        .routes(routes!(decide_all))
        .routes(routes!(undo_call))
        .routes(routes!(get_settings, put_settings))
}

/// Approve or decline a call the assistant waits on (a pending `approval` in the
/// conversation's `activity`). Once every call of the turn is decided, the turn continues and
/// its answer (or the next calls it waits on) is in `turn`. Deciding twice, or a call that
/// does not wait, is 409.
#[utoipa::path(post, path = "/api/chat/conversations/{id}/approvals/{call_id}", tag = "chat",
    params(("id" = Uuid, Path), ("call_id" = String, Path)),
    request_body = ApprovalDecision,
    responses((status = 200, body = DecisionResult), (status = 400), (status = 401), (status = 404),
              (status = 409), (status = 429)))]
async fn decide(
    State(state): State<AppState>,
    user: AuthUser,
    ApiPath((id, call_id)): ApiPath<(Uuid, String)>,
    ApiJson(body): ApiJson<ApprovalDecision>,
) -> AppResult<ApiJson<DecisionResult>> {
    agent::decide(&state.agent, user.id, id, Some(&call_id), body.approve)
        .await
        .map(ApiJson)
}

/// Approve or decline every call the assistant waits on in the conversation, together; the
/// turn then continues as after the last single decision. Nothing waiting is 409.
#[utoipa::path(post, path = "/api/chat/conversations/{id}/approvals", tag = "chat",
    params(("id" = Uuid, Path)),
    request_body = ApprovalDecision,
    responses((status = 200, body = DecisionResult), (status = 400), (status = 401), (status = 404),
              (status = 409), (status = 429)))]
async fn decide_all(
    State(state): State<AppState>,
    user: AuthUser,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(body): ApiJson<ApprovalDecision>,
) -> AppResult<ApiJson<DecisionResult>> {
    agent::decide(&state.agent, user.id, id, None, body.approve)
        .await
        .map(ApiJson)
}

/// Undo the task change made by tool call `index` (from 0) of an assistant message: the task
/// goes back exactly as it was before (a deleted one is restored with its number). If the task
/// changed since, 409 says how; send `{"confirm": true}` to undo anyway. Undoing twice is 409.
/// The body is optional.
#[utoipa::path(post, path = "/api/chat/conversations/{id}/messages/{message_id}/tool_calls/{index}/undo",
    tag = "chat",
    params(("id" = Uuid, Path), ("message_id" = Uuid, Path), ("index" = u32, Path)),
    request_body = UndoRequest,
    responses((status = 200, body = UndoResult), (status = 400), (status = 401), (status = 404),
              (status = 409)))]
async fn undo_call(
    State(state): State<AppState>,
    user: AuthUser,
    ApiPath((id, message_id, index)): ApiPath<(Uuid, Uuid, u32)>,
    body: axum::body::Bytes,
) -> AppResult<ApiJson<UndoResult>> {
    let body = if body.iter().all(u8::is_ascii_whitespace) {
        UndoRequest::default()
    } else {
        serde_json::from_slice::<UndoRequest>(&body)
            .map_err(|err| AppError::validation(format!("invalid JSON body: {err}")))?
    };
    let call = undo::CallRef {
        conversation: id,
        message: message_id,
        index: index as usize,
    };
    undo::undo(&state.pool, &state.bus, user.id, call, body.confirm)
        .await
        .map(ApiJson)
}

/// The account's settings: when the assistant asks before it changes tasks.
#[utoipa::path(get, path = "/api/account/settings", tag = "auth",
    responses((status = 200, body = AccountSettings), (status = 401)))]
async fn get_settings(
    State(state): State<AppState>,
    user: AuthUser,
) -> AppResult<ApiJson<AccountSettings>> {
    users::settings(&state.pool, user.id).await.map(ApiJson)
}

/// Change the account's settings (`approval_policy`: `deletes`, `changes` or `never`).
#[utoipa::path(put, path = "/api/account/settings", tag = "auth", request_body = AccountSettings,
    responses((status = 200, body = AccountSettings), (status = 400), (status = 401)))]
async fn put_settings(
    State(state): State<AppState>,
    user: AuthUser,
    ApiJson(body): ApiJson<AccountSettings>,
) -> AppResult<ApiJson<AccountSettings>> {
    users::update_settings(&state.pool, user.id, &body)
        .await
        .map(ApiJson)
}
