//! Live-reply measures: model token to a delta on an event stream, and a committed message to
//! another tab's event; and the pieces the other live measures share (the mock model's
//! streamed answers, reading an event stream).

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant, SystemTime},
};

use anyhow::{Context, Result};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use serde_json::{json, Value};

/// When the mock model sent each streamed token.
#[derive(Clone, Default)]
pub struct TokenClock(Arc<Mutex<HashMap<String, Instant>>>);

impl TokenClock {
    /// For each token of a delta's `text` that the model sent, the time from its send to `at`
    /// (ms), pushed to `into`. Looked up under the lock: many readers at once should not each
    /// copy every send time on every delta.
    pub fn latencies(&self, text: &str, at: Instant, into: &mut Vec<f64>) {
        if let Ok(sent) = self.0.lock() {
            for word in text.split_whitespace() {
                if let Some(t) = sent.get(word) {
                    into.push(at.duration_since(*t).as_secs_f64() * 1000.0);
                }
            }
        }
    }
}

/// One chunk of a streamed completion, as an SSE `data:` line.
pub fn chunk(delta: &Value) -> String {
    let body = json!({ "id": "bench", "object": "chat.completion.chunk", "created": 0, "model": "mock",
        "choices": [{ "index": 0, "delta": delta, "finish_reason": null }] });
    format!("data: {body}\n\n")
}

/// A whole streamed completion at once (the instant model).
pub fn sse_body(deltas: &[Value]) -> Response {
    let mut body: String = deltas.iter().map(chunk).collect();
    body.push_str("data: [DONE]\n\n");
    ([("content-type", "text/event-stream")], body).into_response()
}

/// `n` tokens `gap` apart, each one's send time recorded.
pub fn streamed_tokens(clock: TokenClock, n: usize, gap: Duration) -> Response {
    let stream = futures::stream::unfold(0usize, move |i| {
        let clock = clock.clone();
        async move {
            if i > n {
                return None;
            }
            if i == n {
                return Some((
                    Ok::<_, std::convert::Infallible>("data: [DONE]\n\n".to_string()),
                    i + 1,
                ));
            }
            if i > 0 {
                tokio::time::sleep(gap).await;
            }
            let token = format!("t{}x{i} ", uuid::Uuid::new_v4().simple());
            if let Ok(mut sent) = clock.0.lock() {
                sent.insert(token.trim().to_string(), Instant::now());
            }
            Some((Ok(chunk(&json!({ "content": token }))), i + 1))
        }
    });
    (
        [("content-type", "text/event-stream")],
        axum::body::Body::from_stream(stream),
    )
        .into_response()
}

/// Reads `data:` JSON events from an SSE response, with their arrival time.
pub fn events(
    response: reqwest::Response,
) -> impl futures::Stream<Item = (Instant, SystemTime, Value)> {
    let body = response.bytes_stream();
    futures::stream::unfold((body, String::new()), |(mut body, mut buffer)| async move {
        loop {
            if let Some(end) = buffer.find("\n\n") {
                let block: String = buffer.drain(..end + 2).collect();
                let data: String = block
                    .lines()
                    .filter_map(|l| l.strip_prefix("data:"))
                    .map(str::trim_start)
                    .collect();
                if let Ok(value) = serde_json::from_str::<Value>(&data) {
                    return Some(((Instant::now(), SystemTime::now(), value), (body, buffer)));
                }
                continue;
            }
            let bytes = body.next().await?.ok()?;
            buffer.push_str(&String::from_utf8_lossy(&bytes));
        }
    })
}

pub async fn open_stream(
    http: &reqwest::Client,
    base: &str,
    token: &str,
) -> Result<reqwest::Response> {
    let res = http
        .get(format!("{base}/api/chat/events"))
        .bearer_auth(token)
        .send()
        .await?;
    anyhow::ensure!(res.status().is_success(), "events: {}", res.status());
    Ok(res)
}

/// Model token sent → delta received on an event stream (ms, sorted).
pub async fn token_to_delta(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    conversation: &str,
    clock: &TokenClock,
) -> Result<Vec<f64>> {
    let stream = open_stream(http, base, token).await?;
    let reader = tokio::spawn({
        let clock = clock.clone();
        async move {
            let mut latencies = Vec::new();
            let mut events = std::pin::pin!(events(stream));
            while let Some((at, _, event)) = events.next().await {
                if event["type"] == "delta" {
                    let sent = clock.0.lock().map(|s| s.clone()).unwrap_or_default();
                    for word in event["text"]
                        .as_str()
                        .unwrap_or_default()
                        .split_whitespace()
                    {
                        if let Some(t) = sent.get(word) {
                            latencies.push(at.duration_since(*t).as_secs_f64() * 1000.0);
                        }
                    }
                }
                if event["type"] == "message" && event["role"] == "assistant" {
                    break;
                }
            }
            latencies
        }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    http.post(format!(
        "{base}/api/chat/conversations/{conversation}/messages"
    ))
    .bearer_auth(token)
    .json(&json!({ "content": "stream a long answer" }))
    .send()
    .await?
    .error_for_status()?;
    let mut latencies = tokio::time::timeout(Duration::from_secs(30), reader)
        .await
        .context("the delta stream did not finish")??;
    latencies.sort_by(f64::total_cmp);
    Ok(latencies)
}

/// A message committed (its `created_at`) → the `message` event on another tab (ms, sorted).
pub async fn commit_to_event(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    conversation: &str,
    sends: usize,
) -> Result<Vec<f64>> {
    let stream = open_stream(http, base, token).await?;
    let reader = tokio::spawn(async move {
        let mut latencies = Vec::new();
        let mut events = std::pin::pin!(events(stream));
        while let Some((_, now, event)) = events.next().await {
            if event["type"] == "message" && event["role"] == "user" {
                let created = event["created_at"]
                    .as_str()
                    .and_then(|c| chrono::DateTime::parse_from_rfc3339(c).ok());
                if let Some(created) = created {
                    let created: SystemTime = created.with_timezone(&chrono::Utc).into();
                    if let Ok(d) = now.duration_since(created) {
                        latencies.push(d.as_secs_f64() * 1000.0);
                    }
                }
                if latencies.len() == sends {
                    break;
                }
            }
        }
        latencies
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    for i in 0..sends {
        http.post(format!(
            "{base}/api/chat/conversations/{conversation}/messages"
        ))
        .bearer_auth(token)
        .json(&json!({ "content": format!("add event task {i}") }))
        .send()
        .await?
        .error_for_status()?;
    }
    let mut latencies = tokio::time::timeout(Duration::from_secs(30), reader)
        .await
        .context("the events did not all arrive")??;
    latencies.sort_by(f64::total_cmp);
    Ok(latencies)
}

/// Token → delta latencies (ms, unsorted) on one event stream, until the turn's assistant
/// message arrives.
pub async fn delta_latencies(stream: reqwest::Response, clock: TokenClock) -> Vec<f64> {
    let mut latencies = Vec::new();
    let mut events = std::pin::pin!(events(stream));
    while let Some((at, _, event)) = events.next().await {
        if event["type"] == "delta" {
            clock.latencies(
                event["text"].as_str().unwrap_or_default(),
                at,
                &mut latencies,
            );
        }
        if event["type"] == "message" && event["role"] == "assistant" {
            break;
        }
    }
    latencies
}

/// The two single-user live measures (ms, sorted).
pub struct Latencies {
    pub delta_ms: Vec<f64>,
    pub event_ms: Vec<f64>,
}

/// Both, on the benchmark user's `conversation`.
pub async fn measure(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    conversation: &str,
    clock: &TokenClock,
) -> Result<Latencies> {
    Ok(Latencies {
        delta_ms: token_to_delta(http, base, token, conversation, clock).await?,
        event_ms: commit_to_event(http, base, token, conversation, 50).await?,
    })
}

pub fn rows(live: &Latencies) -> Vec<super::Row> {
    let (delta, event) = (&live.delta_ms, &live.event_ms);
    vec![
        (
            "model token → delta on an event stream p50 / p99 ms",
            format!(
                "{:.1} / {:.1}",
                percentile(delta, 0.5),
                percentile(delta, 0.99)
            ),
            format!("{} tokens 20 ms apart; budget p50 ≤ 50", delta.len()),
            super::verdict(percentile(delta, 0.5) <= 50.0),
        ),
        (
            "message committed → another tab's event p50 / p99 ms",
            format!(
                "{:.1} / {:.1}",
                percentile(event, 0.5),
                percentile(event, 0.99)
            ),
            format!("{} sends; budget p50 ≤ 100 (polling: ~1,000)", event.len()),
            super::verdict(percentile(event, 0.5) <= 100.0),
        ),
    ]
}

/// `{ p50, p99, samples }` of sorted latencies, for the JSON report.
pub fn summary(sorted: &[f64]) -> Value {
    json!({ "p50": percentile(sorted, 0.5), "p99": percentile(sorted, 0.99), "samples": sorted.len() })
}

pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}
