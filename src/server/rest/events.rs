//! `GET /api/chat/events`: the signed-in user's live events as Server-Sent Events (see
//! `model::LiveEvent`), and the rendering of events as SSE shared with the streaming send.

use std::{convert::Infallible, time::Duration};

use axum::{
    extract::{Query, State},
    http::HeaderMap,
    response::sse::{Event, KeepAlive, Sse},
};
use futures::{Stream, StreamExt};
use serde::Deserialize;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{
    model::{LiveEvent, Role},
    server::{
        error::AppResult,
        live::{self, Envelope},
        state::AppState,
    },
};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(live_events))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct EventsQuery {
    /// The bearer token, for an `EventSource` on another origin (it cannot send headers).
    /// Otherwise the `Authorization` header or the session cookie, as everywhere.
    access_token: Option<String>,
}

/// The user's live events, one `data:` line of JSON per event (`LiveEvent`). Stored events
/// carry an `id:`; reconnect with `Last-Event-ID` to get what was missed. On connect, each
/// running turn's activity and reply so far (`partial`) come first. Comments keep idle
/// connections open.
#[utoipa::path(get, path = "/api/chat/events", tag = "chat",
    security(("bearer" = []), ("cookie" = []), ("access_token" = [])),
    params(EventsQuery,
        ("Last-Event-ID" = Option<i64>, Header, description = "the last stored event id received")),
    responses(
        (status = 200, content_type = "text/event-stream", body = LiveEvent,
         description = "a stream of `data: <LiveEvent JSON>` lines"),
        (status = 401)))]
async fn live_events(
    State(state): State<AppState>,
    Query(query): Query<EventsQuery>,
    headers: HeaderMap,
) -> AppResult<Sse<impl Stream<Item = Result<Event, Infallible>>>> {
    let user = match query.access_token.as_deref() {
        Some(token) => state.sessions.authenticate_token(token).await?,
        None => state.sessions.authenticate(&headers).await?,
    };
    let last_id = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<i64>().ok());
    // A session that ends (logout, deleted account) ends its streams at their next event.
    let sessions = state.sessions.clone();
    let stream = live::user_stream(state.live.clone(), state.pool.clone(), user.id, last_id)
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

/// One event as SSE. Assistant messages carry `html` (their markdown rendered safely, as the
/// server functions do), so a browser needs no markdown renderer.
pub fn to_sse(envelope: &Envelope) -> Event {
    let data = match envelope.event.as_ref() {
        LiveEvent::Message(message)
            if message.role == Role::Assistant && message.html.is_none() =>
        {
            let mut message = message.clone();
            crate::server::rendered::present(&mut message);
            serde_json::to_string(&LiveEvent::Message(message))
        }
        event => serde_json::to_string(event),
    }
    .unwrap_or_else(|_| "{\"type\":\"resync\"}".into());
    let event = Event::default().data(data);
    match envelope.id {
        Some(id) => event.id(id.to_string()),
        None => event,
    }
}
