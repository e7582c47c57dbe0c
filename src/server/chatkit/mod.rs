//! `POST /chatkit`: OpenAI ChatKit's self-hosted server protocol (the `openai-chatkit` SDK's
//! `ChatKitServer.process`), so the ChatKit web component and `@openai/chatkit-react` can use
//! this server as their backend. Threads are our conversations and items our messages, over
//! the same services as REST, server functions and MCP: an adapter, no second store.
//! Authenticated like `/api` (bearer or cookie); errors in ChatKit's error shape.

mod items;
mod protocol;
mod stream;

use std::convert::Infallible;

use axum::{
    body::Bytes,
    extract::State,
    http::{HeaderMap, StatusCode},
    response::{
        sse::{Event as SseEvent, Sse},
        IntoResponse, Response,
    },
    routing::post,
    Json, Router,
};
use futures::{Stream, StreamExt};
use serde::de::DeserializeOwned;
use serde_json::{json, Value};

use protocol::{Event, Page, RawRequest, UserContent, UserMessageInput};
use stream::TurnEvents;

use super::{
    agent::{self, TurnHandle},
    auth::AuthUser,
    context::RequestContext,
    error::{AppError, AppResult, ErrorShape},
    live,
    rest::events::keep_alive,
    services::{chat, feedback, messages, turn_records},
    state::AppState,
};
use crate::model::{ConversationQuery, Role};

pub fn router() -> Router<AppState> {
    Router::new().route(super::CHATKIT_PATH, post(handle))
}

async fn handle(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    match respond(&state, &headers, &body).await {
        Ok(response) => response,
        Err(err) => err.into_shaped_response(ErrorShape::ChatKit),
    }
}

/// Request types of the protocol this server does not offer, and why.
fn unsupported(kind: &str) -> Option<&'static str> {
    Some(match kind {
        "attachments.create" | "attachments.delete" => {
            "attachments are not supported by this server: send text"
        }
        "input.transcribe" => "voice input (transcription) is not supported by this server",
        "threads.add_client_tool_output" => {
            "client tools are not supported by this server: its tools run on the server"
        }
        "threads.add_structured_input" => {
            "structured input is not supported by this server: the assistant never asks for it"
        }
        "threads.sync_custom_action" => {
            "synchronous widget actions are not supported by this server: its cards stream \
             (threads.custom_action)"
        }
        _ => return None,
    })
}

/// The request types that change something.
const WRITES: [&str; 7] = [
    "threads.create",
    "threads.custom_action",
    "threads.add_user_message",
    "threads.retry_after_item",
    "threads.update",
    "threads.delete",
    "items.feedback",
];

async fn respond(state: &AppState, headers: &HeaderMap, body: &[u8]) -> AppResult<Response> {
    let context = RequestContext::of(&state.sessions, &state.limits, headers).await?;
    let user = context.user;
    let request: RawRequest = serde_json::from_slice(body).map_err(|err| {
        AppError::validation(format!(
            "the body is not a ChatKit request ({{\"type\", \"params\"}}): {}",
            without_position(&err)
        ))
    })?;
    if request
        .metadata
        .as_ref()
        .is_some_and(|m| !m.is_object() && !m.is_null())
    {
        return Err(AppError::validation("metadata must be an object"));
    }
    let kind = request.kind.as_str();
    // Every request that changes something passes the one write check, as on REST.
    if WRITES.contains(&kind) {
        context.write().await?;
    }
    match kind {
        "threads.create" => create(state, user, params(&request)?).await,
        "threads.add_user_message" => add_user_message(state, user, params(&request)?).await,
        "threads.retry_after_item" => retry_after_item(state, user, params(&request)?).await,
        "threads.custom_action" => custom_action(state, user, params(&request)?).await,
        "threads.get_by_id" => {
            let p: protocol::ThreadIdParams = params(&request)?;
            let id = items::thread_id(&p.thread_id)?;
            let conversation = chat::get(&state.pool, user.id, id).await?;
            let page = items::page(
                &state.pool,
                user.id,
                id,
                Some(items::DEFAULT_PAGE),
                protocol::Order::Asc,
                None,
            )
            .await?;
            json_response(&items::thread(&conversation, page))
        }
        "threads.list" => {
            // Every field of the list's params is optional: no params lists the first page.
            let p: protocol::ListParams = match &request.params {
                None | Some(Value::Null) => Default::default(),
                Some(_) => params(&request)?,
            };
            // Archived threads stay out of ChatKit's list (they still open by id).
            let query = ConversationQuery {
                limit: Some(items::page_size(p.limit)?),
                cursor: p.after,
                ..Default::default()
            };
            let order = match p.order {
                protocol::Order::Asc => chat::Order::OldestFirst,
                protocol::Order::Desc => chat::Order::NewestFirst,
            };
            let page = chat::list_in_order(&state.pool, user.id, &query, order).await?;
            json_response(&Page {
                data: page
                    .conversations
                    .iter()
                    .map(|c| items::thread(c, Page::empty()))
                    .collect(),
                has_more: page.has_more,
                after: page.next_cursor,
            })
        }
        "items.list" => {
            let p: protocol::ItemsListParams = params(&request)?;
            let id = items::thread_id(&p.thread_id)?;
            let page = items::page(
                &state.pool,
                user.id,
                id,
                p.limit,
                p.order,
                p.after.as_deref(),
            )
            .await?;
            json_response(&page)
        }
        "threads.update" => {
            let p: protocol::UpdateParams = params(&request)?;
            let id = items::thread_id(&p.thread_id)?;
            let conversation = chat::rename(&state.pool, &state.bus, user.id, id, &p.title).await?;
            json_response(&items::thread(&conversation, Page::empty()))
        }
        "threads.delete" => {
            let p: protocol::ThreadIdParams = params(&request)?;
            let id = items::thread_id(&p.thread_id)?;
            chat::delete(&state.pool, &state.bus, user.id, id).await?;
            json_response(&json!({}))
        }
        "items.feedback" => {
            let p: protocol::FeedbackParams = params(&request)?;
            let id = items::thread_id(&p.thread_id)?;
            chat::get(&state.pool, user.id, id).await?;
            let ids = p
                .item_ids
                .iter()
                .map(|item| items::ItemRef::parse(item).map(items::ItemRef::message))
                .collect::<AppResult<Vec<_>>>()?;
            let kind = match p.kind {
                protocol::FeedbackKind::Positive => feedback::FeedbackKind::Positive,
                protocol::FeedbackKind::Negative => feedback::FeedbackKind::Negative,
            };
            feedback::record(&state.pool, user.id, id, &ids, kind).await?;
            json_response(&json!({}))
        }
        other => match unsupported(other) {
            Some(reason) => {
                // Another user's thread is "not found" here too, as everywhere.
                let thread = request
                    .params
                    .as_ref()
                    .and_then(|p| p.get("thread_id"))
                    .and_then(Value::as_str);
                if let Some(thread) = thread {
                    chat::get(&state.pool, user.id, items::thread_id(thread)?).await?;
                }
                Err(AppError::validation(format!("{other}: {reason}")))
            }
            None => Err(AppError::validation(format!(
                "unknown request type \"{other}\"; this server supports threads.create, \
                 threads.add_user_message, threads.retry_after_item, threads.custom_action, \
                 threads.get_by_id, threads.list, threads.update, threads.delete, items.list \
                 and items.feedback"
            ))),
        },
    }
}

/// `threads.create`: a new thread with its first message, streamed.
async fn create(
    state: &AppState,
    user: AuthUser,
    p: protocol::CreateParams,
) -> AppResult<Response> {
    let content = chat::clean_content(&input_text(&p.input)?)?;
    // Subscribed before the turn starts, so its first events are not missed.
    let receiver = state.live.open_for_turn(&user)?;
    let (conversation, turn) =
        agent::start_conversation(&state.agent, user.id, &content, None).await?;
    let opening = vec![Event::ThreadCreated {
        thread: items::thread(&conversation, Page::empty()),
    }];
    let events = TurnEvents::for_send(&conversation);
    Ok(stream_turn(receiver, turn, events, opening))
}

/// `threads.add_user_message`: a message in an existing thread, its answer streamed.
async fn add_user_message(
    state: &AppState,
    user: AuthUser,
    p: protocol::AddUserMessageParams,
) -> AppResult<Response> {
    let id = items::thread_id(&p.thread_id)?;
    let conversation = chat::get(&state.pool, user.id, id).await?;
    let content = chat::clean_content(&input_text(&p.input)?)?;
    let receiver = state.live.open_for_turn(&user)?;
    let turn = agent::start_send(&state.agent, user.id, id, &content, None).await?;
    let events = TurnEvents::for_send(&conversation);
    Ok(stream_turn(receiver, turn, events, Vec::new()))
}

/// `threads.retry_after_item`: another answer to a user message. The items after it on the
/// branch shown leave ChatKit's thread (`thread.item.removed`); our history keeps them as a
/// sibling branch (REST `?branch=all`). The model is told what the earlier answers did.
async fn retry_after_item(
    state: &AppState,
    user: AuthUser,
    p: protocol::RetryParams,
) -> AppResult<Response> {
    let id = items::thread_id(&p.thread_id)?;
    let conversation = chat::get(&state.pool, user.id, id).await?;
    let item = items::ItemRef::parse(&p.item_id)?;
    let message = messages::by_id(&state.pool, user.id, id, item.message()).await?;
    if message.role != Role::User || !matches!(item, items::ItemRef::Message(_)) {
        return Err(AppError::validation(
            "item_id must name a user message: an answer is retried from the message it answers",
        ));
    }
    let shown = messages::page(
        &state.pool,
        user.id,
        id,
        &crate::model::MessageQuery {
            limit: Some(items::MAX_PAGE),
            after: Some(message.seq),
            branch: Some(crate::model::BranchView::Current),
            ..Default::default()
        },
    )
    .await?;
    let after = shown.messages;
    let receiver = state.live.open_for_turn(&user)?;
    let reply_seq = messages::last_message(&state.pool, id)
        .await?
        .map_or(message.seq, |m| m.seq)
        + 1;
    let turn = match after
        .first()
        .filter(|m| m.role == Role::Assistant && m.parent_id == Some(message.id))
    {
        Some(answer) => {
            agent::start_regenerate(&state.agent, user.id, id, answer.id, None)
                .await?
                .1
        }
        // No answer to replace (it never came): answer it.
        None => {
            agent::start_retry(&state.agent, user.id, id, Some(message.id))
                .await?
                .1
        }
    };
    let removed = after
        .iter()
        .flat_map(items::items_of)
        .map(|item| Event::ItemRemoved {
            item_id: item.id().to_string(),
        })
        .collect();
    let events = TurnEvents::for_retry(&conversation, message.seq, reply_seq);
    Ok(stream_turn(receiver, turn, events, removed))
}

/// `threads.custom_action` from an approval card: the user's decision on the call it shows.
/// The card is replaced by its decided form; once the turn's last call is decided, the turn
/// continues in this stream to its answer (or its next cards).
async fn custom_action(
    state: &AppState,
    user: AuthUser,
    p: protocol::CustomActionParams,
) -> AppResult<Response> {
    let id = items::thread_id(&p.thread_id)?;
    let conversation = chat::get(&state.pool, user.id, id).await?;
    if p.action.kind != items::APPROVAL_ACTION {
        return Err(AppError::validation(format!(
            "unknown action \"{}\"; this server's cards send \"{}\"",
            p.action.kind,
            items::APPROVAL_ACTION
        )));
    }
    let call_id = p.action.payload.get("call_id").and_then(Value::as_str);
    let approve = p.action.payload.get("approve").and_then(Value::as_bool);
    let (Some(call_id), Some(approve)) = (call_id, approve) else {
        return Err(AppError::validation(
            "the action's payload needs call_id (a string) and approve (true or false)",
        ));
    };
    // The card pressed must be this call's, in this thread's parked turn.
    let (user_seq, pending) = turn_records::pending(&state.pool, id).await?;
    let approval = pending
        .iter()
        .find(|a| a.call_id == call_id)
        .cloned()
        .ok_or_else(|| {
            AppError::Conflict(format!("call {call_id} does not wait for a decision"))
        })?;
    let asked = messages::message_at(&state.pool, id, user_seq)
        .await?
        .ok_or_else(|| AppError::NotFound("item".into()))?;
    let card = items::approval_id(asked.id, call_id);
    // ChatKit sends "" for an action outside any item.
    let pressed = p.item_id.as_deref().filter(|item| !item.is_empty());
    if pressed.is_some_and(|item| item != card) {
        return Err(AppError::validation("item_id is not the card of this call"));
    }
    let receiver = state.live.open_for_turn(&user)?;
    let decision = agent::start_decision(&state.agent, user.id, id, Some(call_id), approve).await?;
    let decided = Event::ItemReplaced {
        item: items::approval_item(id, &asked, &approval, Some(approve)),
    };
    match decision.turn {
        None => {
            let options = Event::StreamOptions {
                stream_options: protocol::StreamOptions {
                    allow_cancel: false,
                },
            };
            Ok(sse(futures::stream::iter([options, decided])))
        }
        Some((_, turn)) => {
            let reply_seq = messages::last_message(&state.pool, id)
                .await?
                .map_or(user_seq, |m| m.seq)
                + 1;
            let events = TurnEvents::for_retry(&conversation, user_seq, reply_seq);
            Ok(stream_turn(receiver, turn, events, vec![decided]))
        }
    }
}

/// The ChatKit answer to a turn that was started after `receiver` subscribed (so none of its
/// events is missed): `opening`, then the turn's events as `events` sees them.
fn stream_turn(
    receiver: live::Subscription,
    turn: TurnHandle,
    events: TurnEvents,
    opening: Vec<Event>,
) -> Response {
    sse(stream::turn_events(turn, receiver, events, opening))
}

/// The text of a user message: its text and tag parts, after the quoted text it replies to.
fn input_text(input: &UserMessageInput) -> AppResult<String> {
    if !input.attachments.is_empty() {
        return Err(AppError::validation(
            "attachments are not supported by this server: send text",
        ));
    }
    let text: String = input
        .content
        .iter()
        .map(|part| match part {
            UserContent::InputText { text } | UserContent::InputTag { text } => text.as_str(),
        })
        .collect();
    Ok(match input.quoted_text.as_deref().map(str::trim) {
        Some(quoted) if !quoted.is_empty() => {
            let quoted: Vec<String> = quoted.lines().map(|l| format!("> {l}")).collect();
            format!("{}\n\n{text}", quoted.join("\n"))
        }
        _ => text,
    })
}

/// The request's `params` as `T` (400 naming the field that is missing or of the wrong type).
fn params<T: DeserializeOwned>(request: &RawRequest) -> AppResult<T> {
    let Some(params) = request.params.clone().filter(|p| !p.is_null()) else {
        return Err(AppError::validation(format!(
            "{} needs params",
            request.kind
        )));
    };
    serde_json::from_value(params).map_err(|err| {
        AppError::validation(format!(
            "invalid params for {}: {}",
            request.kind,
            without_position(&err)
        ))
    })
}

/// serde's message without its line and column (they help nobody reading an API error).
fn without_position(err: &serde_json::Error) -> String {
    let text = err.to_string();
    text.split(" at line ")
        .next()
        .unwrap_or_default()
        .to_string()
}

fn json_response(value: &impl serde::Serialize) -> AppResult<Response> {
    Ok((StatusCode::OK, Json(value)).into_response())
}

/// A stream of ChatKit events as `text/event-stream`, one `data: <json>` line each.
fn sse(events: impl Stream<Item = Event> + Send + 'static) -> Response {
    let stream = events.map(|event| {
        let data = serde_json::to_string(&event).unwrap_or_else(|_| {
            r#"{"type":"error","code":"stream.error","allow_retry":true}"#.into()
        });
        Ok::<_, Infallible>(SseEvent::default().data(data))
    });
    Sse::new(stream).keep_alive(keep_alive()).into_response()
}
