//! `/api/chat/conversations…`: conversations, their messages, and sending (one agent turn).

use axum::{
    extract::State,
    http::{header, HeaderMap, StatusCode},
    response::{sse::Sse, IntoResponse, Response},
};
use futures::StreamExt;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use super::{events, ApiJson, ApiPath, ApiQuery};
use crate::{
    model::{
        Conversation, ConversationChanges, ConversationPage, ConversationQuery, ConversationTitle,
        LiveEvent, MessagePage, MessageQuery, SearchPage, SearchQuery, SendMessage, StopResult,
        TurnResult,
    },
    server::{
        agent::{self, TurnEvent},
        auth::AuthUser,
        error::{AppError, AppResult},
        live,
        services::{chat, messages, search},
        state::AppState,
    },
};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_conversations, create_conversation))
        .routes(routes!(
            get_conversation,
            update_conversation,
            delete_conversation
        ))
        .routes(routes!(search_conversations))
        .routes(routes!(list_messages, send_message))
        .routes(routes!(stop_turn))
        .routes(routes!(retry_turn))
}

/// The user's conversations, most recently active first.
#[utoipa::path(get, path = "/api/chat/conversations", tag = "chat", params(ConversationQuery),
    responses((status = 200, body = ConversationPage), (status = 400), (status = 401)))]
async fn list_conversations(
    State(state): State<AppState>,
    user: AuthUser,
    ApiQuery(query): ApiQuery<ConversationQuery>,
) -> AppResult<ApiJson<ConversationPage>> {
    chat::list(&state.pool, user.id, &query).await.map(ApiJson)
}

/// Start a conversation. Without a title it is named after its first message.
#[utoipa::path(post, path = "/api/chat/conversations", tag = "chat", request_body = ConversationTitle,
    responses((status = 201, body = Conversation), (status = 400), (status = 401)))]
async fn create_conversation(
    State(state): State<AppState>,
    user: AuthUser,
    body: axum::body::Bytes,
) -> AppResult<(StatusCode, ApiJson<Conversation>)> {
    // The body is optional: no body (or `{}`) means "no title yet".
    let title = if body.iter().all(u8::is_ascii_whitespace) {
        None
    } else {
        serde_json::from_slice::<ConversationTitle>(&body)
            .map_err(|err| AppError::validation(format!("invalid JSON body: {err}")))?
            .title
    };
    let conversation = chat::create(&state.pool, &state.bus, user.id, title.as_deref()).await?;
    Ok((StatusCode::CREATED, ApiJson(conversation)))
}

/// One conversation.
#[utoipa::path(get, path = "/api/chat/conversations/{id}", tag = "chat", params(("id" = Uuid, Path)),
    responses((status = 200, body = Conversation), (status = 400), (status = 401), (status = 404)))]
async fn get_conversation(
    State(state): State<AppState>,
    user: AuthUser,
    ApiPath(id): ApiPath<Uuid>,
) -> AppResult<ApiJson<Conversation>> {
    chat::get(&state.pool, user.id, id).await.map(ApiJson)
}

/// Rename (it then keeps that title), pin or unpin, archive or restore a conversation.
#[utoipa::path(put, path = "/api/chat/conversations/{id}", tag = "chat", params(("id" = Uuid, Path)),
    request_body = ConversationChanges,
    responses((status = 200, body = Conversation), (status = 400), (status = 401), (status = 404)))]
async fn update_conversation(
    State(state): State<AppState>,
    user: AuthUser,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(changes): ApiJson<ConversationChanges>,
) -> AppResult<ApiJson<Conversation>> {
    chat::update(&state.pool, &state.bus, user.id, id, &changes)
        .await
        .map(ApiJson)
}

/// Search the user's conversations: titles and message text, best matches first.
#[utoipa::path(get, path = "/api/chat/search", tag = "chat", params(SearchQuery),
    responses((status = 200, body = SearchPage), (status = 400), (status = 401)))]
async fn search_conversations(
    State(state): State<AppState>,
    user: AuthUser,
    ApiQuery(query): ApiQuery<SearchQuery>,
) -> AppResult<ApiJson<SearchPage>> {
    search::search(&state.pool, user.id, &query)
        .await
        .map(ApiJson)
}

/// Delete a conversation (soft: it disappears, its rows are kept).
#[utoipa::path(delete, path = "/api/chat/conversations/{id}", tag = "chat", params(("id" = Uuid, Path)),
    responses((status = 204), (status = 400), (status = 401), (status = 404)))]
async fn delete_conversation(
    State(state): State<AppState>,
    user: AuthUser,
    ApiPath(id): ApiPath<Uuid>,
) -> AppResult<StatusCode> {
    chat::delete(&state.pool, &state.bus, user.id, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Messages in order. No cursor: the latest page; `after` polls; `before` pages back.
#[utoipa::path(get, path = "/api/chat/conversations/{id}/messages", tag = "chat", params(("id" = Uuid, Path), MessageQuery),
    responses((status = 200, body = MessagePage), (status = 400), (status = 401), (status = 404)))]
async fn list_messages(
    State(state): State<AppState>,
    user: AuthUser,
    ApiPath(id): ApiPath<Uuid>,
    ApiQuery(query): ApiQuery<MessageQuery>,
) -> AppResult<ApiJson<MessagePage>> {
    messages::page(&state.pool, user.id, id, &query)
        .await
        .map(ApiJson)
}

/// Send a message and get the assistant's reply (one agent turn). Repeating a `client_id`
/// returns the first result. With `Accept: text/event-stream` the turn's events stream as they
/// happen (user message, activity, deltas, conversation) and the stream ends with the stored
/// assistant message (or an `error` event); refusals (400, 404, 429) stay JSON.
#[utoipa::path(post, path = "/api/chat/conversations/{id}/messages", tag = "chat", params(("id" = Uuid, Path)),
    request_body = SendMessage,
    responses(
        (status = 201, body = TurnResult),
        (status = 200, content_type = "text/event-stream", body = LiveEvent,
         description = "with `Accept: text/event-stream`: the turn's live events"),
        (status = 400), (status = 401), (status = 404), (status = 429)))]
async fn send_message(
    State(state): State<AppState>,
    user: AuthUser,
    ApiPath(id): ApiPath<Uuid>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<SendMessage>,
) -> AppResult<Response> {
    answer_turn(&state, &user, &headers, || {
        agent::start_send(&state.agent, user.id, id, &body.content, body.client_id)
    })
    .await
}

/// The answer to a request that starts a turn (a send, an edit, a regeneration): with
/// `Accept: text/event-stream` the turn's events as they happen, else 201 with both messages
/// once it ends. The stream is subscribed before the turn starts, so no event is missed.
pub(super) async fn answer_turn<F, Fut>(
    state: &AppState,
    user: &AuthUser,
    headers: &HeaderMap,
    start: F,
) -> AppResult<Response>
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = AppResult<agent::TurnHandle>>,
{
    let streaming = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/event-stream"));
    let receiver = streaming
        .then(|| state.live.open_for_turn(user))
        .transpose()?;
    let turn = start().await?;
    match receiver {
        Some(receiver) => {
            // A client that leaves does not stop the turn: its reply appears in the conversation.
            let stream = turn.events(receiver, false).map(|event| {
                Ok::<_, std::convert::Infallible>(events::to_sse(&envelope_of(event)))
            });
            Ok(Sse::new(stream)
                .keep_alive(events::keep_alive())
                .into_response())
        }
        None => {
            let turn = turn.result().await?;
            Ok((StatusCode::CREATED, ApiJson(turn)).into_response())
        }
    }
}

/// A turn's event as the streamed send sends it: the user message, its live events, and last
/// the stored assistant message or an `error` (with the status the JSON answer would have).
fn envelope_of(event: TurnEvent) -> live::Envelope {
    let event = match event {
        TurnEvent::Live(envelope) => return envelope,
        TurnEvent::UserMessage(message) => LiveEvent::Message(message),
        TurnEvent::Ended(Ok(turn)) => match (turn.assistant_message, turn.approvals.first()) {
            (Some(reply), _) => LiveEvent::Message(reply),
            // Parked: the stream ends on (again) the first call that waits.
            (None, Some(pending)) => LiveEvent::approval(
                turn.user_message.conversation_id,
                turn.user_message.seq,
                pending,
            ),
            (None, None) => LiveEvent::Resync,
        },
        TurnEvent::Ended(Err(err)) => {
            let api = err.to_api_error();
            LiveEvent::Error {
                status: api.status,
                detail: api.detail,
            }
        }
    };
    live::Envelope::new(None, event)
}

/// Stop the conversation's running turn, whichever replica runs it. The partial reply is kept
/// as an assistant message with status `stopped`. Stopping when nothing runs is harmless.
#[utoipa::path(post, path = "/api/chat/conversations/{id}/stop", tag = "chat", params(("id" = Uuid, Path)),
    responses((status = 200, body = StopResult), (status = 400), (status = 401), (status = 404)))]
async fn stop_turn(
    State(state): State<AppState>,
    user: AuthUser,
    ApiPath(id): ApiPath<Uuid>,
) -> AppResult<ApiJson<StopResult>> {
    agent::stop(&state.agent, user.id, id).await.map(ApiJson)
}

/// Answer the last user message again after its reply failed or was stopped. No second user
/// message is stored, and the model sees the tool calls already made, so none is repeated.
#[utoipa::path(post, path = "/api/chat/conversations/{id}/retry", tag = "chat", params(("id" = Uuid, Path)),
    responses((status = 201, body = TurnResult), (status = 400), (status = 401), (status = 404), (status = 409), (status = 429)))]
async fn retry_turn(
    State(state): State<AppState>,
    user: AuthUser,
    ApiPath(id): ApiPath<Uuid>,
) -> AppResult<(StatusCode, ApiJson<TurnResult>)> {
    let turn = agent::retry(&state.agent, user.id, id).await?;
    Ok((StatusCode::CREATED, ApiJson(turn)))
}
