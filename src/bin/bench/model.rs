//! The mock model: an instant OpenAI-compatible server on loopback, answering as the message
//! asks. Ordinary messages get one `add_task` call, then a one-line answer. A message starting
//! "park" gets a `delete_task` call of task 1 instead (which waits for the user's approval),
//! then, once its result is in, the same answer. A message starting "stream" is answered with
//! 100 tokens 20 ms apart, each token's send time recorded (for the delta latency); one
//! starting "long" with a 20,000-character reply in 2,000 small tokens.

use std::{
    convert::Infallible,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use anyhow::Result;
use axum::{
    response::{IntoResponse, Response},
    routing::post,
    Json, Router,
};
use serde_json::{json, Value};

use super::live;

/// Tokens of the long reply, each of `LONG_TOKEN_CHARS` characters.
pub const LONG_TOKENS: usize = 2_000;
pub const LONG_TOKEN_CHARS: usize = 10;

pub struct MockModel {
    /// Its base URL (`OPENAI_BASE_URL`).
    pub url: String,
    /// Nanoseconds spent inside the handler for the instant answers.
    pub busy: Arc<AtomicU64>,
    /// When each streamed token was sent.
    pub clock: live::TokenClock,
}

pub async fn start() -> Result<MockModel> {
    let busy = Arc::new(AtomicU64::new(0));
    let clock = live::TokenClock::default();
    let handler_busy = busy.clone();
    let handler_clock = clock.clone();
    let app = Router::new().route(
        "/v1/chat/completions",
        post(move |Json(body): Json<Value>| {
            let busy = handler_busy.clone();
            let clock = handler_clock.clone();
            async move {
                let t = Instant::now();
                let messages = body["messages"].as_array().cloned().unwrap_or_default();
                let after_tool = messages.last().is_some_and(|m| m["role"] == "tool");
                let last_user = messages
                    .iter()
                    .rev()
                    .find(|m| m["role"] == "user")
                    .and_then(|m| m["content"].as_str())
                    .unwrap_or_default()
                    .to_string();
                if last_user.starts_with("stream") {
                    return live::streamed_tokens(clock, 100, Duration::from_millis(20));
                }
                if last_user.starts_with("long") {
                    return long_reply();
                }
                let delta = if after_tool {
                    json!({ "role": "assistant", "content": "Done." })
                } else if last_user.starts_with("park") {
                    json!({ "role": "assistant", "tool_calls": [{
                        "index": 0, "id": "call_park", "type": "function",
                        "function": { "name": "delete_task", "arguments": "{\"task_id\":1}" } }] })
                } else {
                    json!({ "role": "assistant", "tool_calls": [{
                        "index": 0, "id": "call_1", "type": "function",
                        "function": { "name": "add_task", "arguments": "{\"title\":\"bench task\"}" } }] })
                };
                let body = live::sse_body(&[delta]);
                busy.fetch_add(t.elapsed().as_nanos() as u64, Ordering::Relaxed);
                body
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(MockModel {
        url: format!("http://{addr}/v1"),
        busy,
        clock,
    })
}

/// `LONG_TOKENS` tokens of `LONG_TOKEN_CHARS` characters (digits and a space), 1 ms apart
/// (the timer makes it 1–2 ms): many small deltas, as a fast model writes.
fn long_reply() -> Response {
    let stream = futures::stream::unfold(0usize, |i| async move {
        if i > LONG_TOKENS {
            return None;
        }
        if i == LONG_TOKENS {
            return Some((Ok::<_, Infallible>("data: [DONE]\n\n".to_string()), i + 1));
        }
        if i > 0 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let token = format!("{i:0width$} ", width = LONG_TOKEN_CHARS - 1);
        Some((Ok(live::chunk(&json!({ "content": token }))), i + 1))
    });
    (
        [("content-type", "text/event-stream")],
        axum::body::Body::from_stream(stream),
    )
        .into_response()
}
