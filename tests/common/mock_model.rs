//! A scripted OpenAI-compatible server over real HTTP: answers `/v1/chat/completions` from a
//! script, records every request body it received.
#![allow(dead_code)]

use std::{
    collections::VecDeque,
    sync::{Arc, Mutex},
};

use axum::{extract::State, http::StatusCode, response::IntoResponse, routing::post, Json, Router};
use serde_json::{json, Value};

#[derive(Clone)]
pub enum Step {
    /// A final text answer.
    Text(String),
    /// Tool calls: (name, raw arguments text).
    Tools(Vec<(String, String)>),
    /// An HTTP error with optional Retry-After seconds.
    Status(u16, Option<u64>),
    /// A text answer after a delay (milliseconds).
    SlowText(u64, String),
    /// Tool calls after a delay (milliseconds).
    SlowTools(u64, Vec<(String, String)>),
    /// Never answers in time: holds the request for this long (milliseconds), then answers
    /// "(stalled)". A client that gives up closes the connection, which `closed()` counts.
    Stall(u64),
    /// Streams these text pieces this many milliseconds apart (then the end of the answer).
    Tokens(Vec<String>, u64),
    /// Streams these pieces, then holds the stream open without finishing (a stop test).
    TokensThenStall(Vec<String>, u64),
    /// Answers 200 with this body as the event stream, verbatim (a broken model).
    RawSse(String),
    /// This step after a delay (milliseconds).
    Delayed(u64, Box<Step>),
    /// Calls `add_task` with this title unless the prompt already holds a tool result; then
    /// answers "Added.". (The answer depends on what the model is shown, as a real one's does.)
    AddOnce(String),
}

#[derive(Clone, Default)]
struct Script {
    steps: Arc<Mutex<VecDeque<Step>>>,
    /// Used when the script runs out.
    fallback: Arc<Mutex<Option<Step>>>,
    requests: Arc<Mutex<Vec<Value>>>,
    /// Requests whose connection the client closed before the answer.
    closed: Arc<std::sync::atomic::AtomicUsize>,
}

/// Counts a request as closed by the client unless it was answered.
struct Answered {
    closed: Arc<std::sync::atomic::AtomicUsize>,
    done: bool,
}

impl Answered {
    fn answer(&mut self) {
        self.done = true;
    }
}

impl Drop for Answered {
    fn drop(&mut self) {
        if !self.done {
            self.closed
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
    }
}

pub struct MockModel {
    pub base_url: String,
    script: Script,
}

impl MockModel {
    pub async fn start(steps: Vec<Step>) -> Self {
        Self::start_with_fallback(steps, None).await
    }

    pub async fn start_with_fallback(steps: Vec<Step>, fallback: Option<Step>) -> Self {
        let script = Script {
            steps: Arc::new(Mutex::new(steps.into())),
            fallback: Arc::new(Mutex::new(fallback)),
            requests: Arc::default(),
            closed: Arc::default(),
        };
        let app = Router::new()
            .route("/v1/chat/completions", post(complete))
            .with_state(script.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self {
            base_url: format!("http://{addr}/v1"),
            script,
        }
    }

    pub fn push(&self, step: Step) {
        self.script.steps.lock().unwrap().push_back(step);
    }

    pub fn requests(&self) -> Vec<Value> {
        self.script.requests.lock().unwrap().clone()
    }

    /// How many requests the client abandoned (closed the connection) before the answer.
    pub fn closed(&self) -> usize {
        self.script.closed.load(std::sync::atomic::Ordering::SeqCst)
    }
}

async fn complete(
    State(script): State<Script>,
    Json(body): Json<Value>,
) -> axum::response::Response {
    let streaming = body["stream"] == true;
    let told = body["messages"]
        .as_array()
        .is_some_and(|m| m.iter().any(|m| m["role"] == "tool"));
    script.requests.lock().unwrap().push(body);
    let step = script
        .steps
        .lock()
        .unwrap()
        .pop_front()
        .or_else(|| script.fallback.lock().unwrap().clone());
    let n = script.requests.lock().unwrap().len();
    let mut answered = Answered {
        closed: script.closed.clone(),
        done: false,
    };
    let mut step = step.unwrap_or(Step::Text("(script exhausted)".into()));
    if let Step::Delayed(ms, inner) = step {
        tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
        step = *inner;
    }
    let step = match step {
        Step::AddOnce(title) => {
            if told {
                Step::Text("Added.".into())
            } else {
                Step::Tools(vec![(
                    "add_task".into(),
                    json!({ "title": title }).to_string(),
                )])
            }
        }
        other => other,
    };
    let step = match step {
        Step::Stall(ms) => {
            tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
            Step::Text("(stalled)".into())
        }
        Step::SlowText(ms, text) => {
            tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
            Step::Text(text)
        }
        Step::SlowTools(ms, calls) => {
            tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
            Step::Tools(calls)
        }
        other => other,
    };
    // Headers go out now; from here the stream itself notices a client that leaves.
    answered.answer();
    let pieces =
        |text: &str| -> Vec<String> { text.split_inclusive(' ').map(str::to_string).collect() };
    match step {
        Step::Status(code, retry_after) => {
            let status = StatusCode::from_u16(code).unwrap();
            let body = Json(
                json!({ "error": { "message": "scripted failure", "type": "server_error", "param": null, "code": null } }),
            );
            match retry_after {
                Some(secs) => (status, [("retry-after", secs.to_string())], body).into_response(),
                None => (status, body).into_response(),
            }
        }
        Step::Text(text) if !streaming => Json(completion(
            json!({ "role": "assistant", "content": text }),
            "stop",
        ))
        .into_response(),
        Step::Tools(calls) if !streaming => Json(completion(
            json!({ "role": "assistant", "content": null, "tool_calls": tool_calls(n, &calls) }),
            "tool_calls",
        ))
        .into_response(),
        Step::RawSse(body) => axum::response::Response::builder()
            .header("content-type", "text/event-stream")
            .body(axum::body::Body::from(body))
            .unwrap(),
        Step::Text(text) => sse(text_chunks(pieces(&text)), 0, false, script.closed.clone()),
        Step::Tokens(tokens, gap) => sse(text_chunks(tokens), gap, false, script.closed.clone()),
        Step::TokensThenStall(tokens, gap) => {
            sse(text_chunks(tokens), gap, true, script.closed.clone())
        }
        Step::Tools(calls) => {
            // Streamed as OpenAI does: id and name first, the arguments in two fragments.
            let mut chunks = Vec::new();
            for (i, call) in tool_calls(n, &calls).iter().enumerate() {
                let arguments = call["function"]["arguments"].as_str().unwrap_or_default();
                let mut cut = arguments.len() / 2;
                while !arguments.is_char_boundary(cut) {
                    cut -= 1;
                }
                chunks.push(
                    json!({ "tool_calls": [{ "index": i, "id": call["id"], "type": "function",
                    "function": { "name": call["function"]["name"], "arguments": "" } }] }),
                );
                chunks.push(json!({ "tool_calls": [{ "index": i, "function": { "arguments": &arguments[..cut] } }] }));
                chunks.push(json!({ "tool_calls": [{ "index": i, "function": { "arguments": &arguments[cut..] } }] }));
            }
            sse(chunks, 0, false, script.closed.clone())
        }
        Step::SlowText(..)
        | Step::SlowTools(..)
        | Step::Stall(..)
        | Step::Delayed(..)
        | Step::AddOnce(..) => {
            unreachable!("delays and choices are taken above")
        }
    }
}

fn tool_calls(n: usize, calls: &[(String, String)]) -> Vec<Value> {
    calls
        .iter()
        .enumerate()
        .map(|(i, (name, args))| {
            json!({ "id": format!("call_{n}_{i}"), "type": "function", "function": { "name": name, "arguments": args } })
        })
        .collect()
}

fn text_chunks(pieces: Vec<String>) -> Vec<Value> {
    pieces
        .into_iter()
        .map(|p| json!({ "content": p }))
        .collect()
}

/// A streamed completion: one `chat.completion.chunk` per delta, `gap_ms` apart, then
/// `[DONE]` (or, with `stall`, nothing more while the client stays).
fn sse(
    deltas: Vec<Value>,
    gap_ms: u64,
    stall: bool,
    closed: Arc<std::sync::atomic::AtomicUsize>,
) -> axum::response::Response {
    let chunk = |delta: Value, finish: Value| {
        let body = json!({
            "id": "chatcmpl-test", "object": "chat.completion.chunk", "created": 1_700_000_000u32,
            "model": "scripted",
            "choices": [{ "index": 0, "delta": delta, "finish_reason": finish, "logprobs": null }]
        });
        format!("data: {body}\n\n")
    };
    let mut frames: Vec<String> = vec![chunk(json!({ "role": "assistant" }), Value::Null)];
    frames.extend(deltas.into_iter().map(|d| chunk(d, Value::Null)));
    if !stall {
        frames.push(chunk(json!({}), json!("stop")));
        frames.push("data: [DONE]\n\n".into());
    }
    let guard = Answered {
        closed,
        done: false,
    };
    let state = (frames.into_iter(), guard, stall, true);
    let stream = futures::stream::unfold(
        state,
        move |(mut frames, mut guard, stall, first)| async move {
            if !first && gap_ms > 0 {
                tokio::time::sleep(std::time::Duration::from_millis(gap_ms)).await;
            }
            match frames.next() {
                Some(frame) => Some((
                    Ok::<_, std::convert::Infallible>(axum::body::Bytes::from(frame)),
                    (frames, guard, stall, false),
                )),
                None if stall => {
                    tokio::time::sleep(std::time::Duration::from_secs(600)).await;
                    None
                }
                None => {
                    guard.answer();
                    None
                }
            }
        },
    );
    axum::response::Response::builder()
        .header("content-type", "text/event-stream")
        .body(axum::body::Body::from_stream(stream))
        .unwrap()
}

fn completion(message: Value, finish_reason: &str) -> Value {
    json!({
        "id": "chatcmpl-test",
        "object": "chat.completion",
        "created": 1_700_000_000u32,
        "model": "scripted",
        "choices": [{ "index": 0, "message": message, "finish_reason": finish_reason, "logprobs": null }],
        "usage": { "prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2 }
    })
}
