//! `GET /api/chat/events`: the signed-in user's live events as Server-Sent Events (see
//! `model::LiveEvent`), `POST /api/chat/events/ticket` for an `EventSource` that cannot send
//! headers, and the rendering of events as SSE shared with the streaming send.

use std::{convert::Infallible, time::Duration};

use axum::{
    extract::{Query, State},
    http::{HeaderMap, StatusCode},
    response::sse::{Event, KeepAlive, Sse},
};
use futures::{Stream, StreamExt};
use serde::Deserialize;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::ApiJson;
use crate::{
    model::{LiveEvent, StreamTicket},
    server::{
        auth::AuthUser,
        error::AppResult,
        live::{self, Envelope},
        services::stream_tickets,
        state::AppState,
    },
};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(live_events))
        .routes(routes!(stream_ticket))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct EventsQuery {
    /// A stream ticket (`POST /api/chat/events/ticket`), for an `EventSource` that cannot send
    /// headers. Otherwise the `Authorization` header or the session cookie, as everywhere.
    ticket: Option<String>,
    /// Same as the `Last-Event-ID` header, for a client that reconnects with a new ticket.
    last_event_id: Option<i64>,
}

/// A ticket for one event stream, for an `EventSource` that cannot send an `Authorization`
/// header (never put the session token in a URL). Good for one stream, for 60 s, for this
/// session only: it dies with the session.
#[utoipa::path(post, path = "/api/chat/events/ticket", tag = "chat",
    responses((status = 201, body = StreamTicket), (status = 401)))]
async fn stream_ticket(
    State(state): State<AppState>,
    user: AuthUser,
) -> AppResult<(StatusCode, ApiJson<StreamTicket>)> {
    let ticket = stream_tickets::issue(&state.pool, &user).await?;
    Ok((StatusCode::CREATED, ApiJson(ticket)))
}

/// The user's live events, one `data:` line of JSON per event (`LiveEvent`). Stored events
/// carry an `id:`; reconnect with `Last-Event-ID` to get what was missed. On connect, each
/// running turn's activity and reply so far (`partial`) come first. Comments keep idle
/// connections open. At most `MAX_STREAMS_PER_USER` streams per user per replica (then 429);
/// a client that stops reading is dropped once `LIVE_STREAM_QUEUE` events wait for it (it
/// reconnects with `Last-Event-ID` and loses nothing); logging out ends the session's streams.
#[utoipa::path(get, path = "/api/chat/events", tag = "chat",
    security(("bearer" = []), ("cookie" = []), ("ticket" = [])),
    params(EventsQuery,
        ("Last-Event-ID" = Option<i64>, Header, description = "the last stored event id received")),
    responses(
        (status = 200, content_type = "text/event-stream", body = LiveEvent,
         description = "a stream of `data: <LiveEvent JSON>` lines"),
        (status = 401), (status = 429)))]
async fn live_events(
    State(state): State<AppState>,
    Query(query): Query<EventsQuery>,
    headers: HeaderMap,
) -> AppResult<Sse<impl Stream<Item = Result<Event, Infallible>>>> {
    let user = match query.ticket.as_deref() {
        Some(ticket) => stream_tickets::take(&state.pool, ticket).await?,
        None => state.sessions.authenticate(&headers).await?,
    };
    let last_id = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<i64>().ok())
        .or(query.last_event_id);
    let subscription = state.live.open(&user)?;
    // A revoked session's streams are closed by the fan-out at once; one that expires ends at
    // its next event.
    let sessions = state.sessions.clone();
    let stream = live::user_stream(state.pool.clone(), user.id, subscription, last_id)
        .take_while(move |_| {
            let sessions = sessions.clone();
            // Boxed: between events an idle stream keeps no space for this check's query.
            Box::pin(async move { sessions.still_live(&user).await })
        })
        .map(|envelope| Ok(to_sse(&envelope)));
    Ok(Sse::new(stream).keep_alive(keep_alive()))
}

pub fn keep_alive() -> KeepAlive {
    KeepAlive::new().interval(Duration::from_secs(20)).text("")
}

/// One event as SSE: its JSON, made once however many streams send it (assistant messages
/// carry `html`, their markdown rendered safely, so a browser needs no markdown renderer).
pub fn to_sse(envelope: &Envelope) -> Event {
    let event = Event::default().data(&*envelope.data);
    match envelope.id {
        Some(id) => event.id(id.to_string()),
        None => event,
    }
}
