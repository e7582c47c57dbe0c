//! A small Server-Sent Events reader over a real HTTP response.
#![allow(dead_code)]

use std::time::{Duration, Instant};

use futures::StreamExt;
use serde_json::Value;

pub struct SseReader {
    body: std::pin::Pin<Box<dyn futures::Stream<Item = reqwest::Result<bytes::Bytes>> + Send>>,
    buffer: String,
}

/// One event: its `id:` (if any), its JSON `data:`, and when it arrived.
#[derive(Clone, Debug)]
pub struct SseEvent {
    pub id: Option<String>,
    pub data: Value,
    pub at: Instant,
}

impl SseReader {
    pub fn new(response: reqwest::Response) -> Self {
        Self {
            body: Box::pin(response.bytes_stream()),
            buffer: String::new(),
        }
    }

    /// The next event, or `None` when the stream ends or nothing comes within `wait`.
    pub async fn next(&mut self, wait: Duration) -> Option<SseEvent> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let mut id = None;
                let mut data = String::new();
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("id:") {
                        id = Some(v.trim().to_string());
                    } else if let Some(v) = line.strip_prefix("data:") {
                        data.push_str(v.trim_start());
                    }
                }
                if data.is_empty() {
                    continue; // a keep-alive comment
                }
                let data = serde_json::from_str(&data).expect("event data is JSON");
                return Some(SseEvent {
                    id,
                    data,
                    at: Instant::now(),
                });
            }
            let chunk = tokio::time::timeout_at(deadline, self.body.next())
                .await
                .ok()??;
            // A broken connection (its server died) ends the stream like a closed one.
            let chunk = chunk.ok()?;
            self.buffer.push_str(&String::from_utf8_lossy(&chunk));
        }
    }

    /// Events until one satisfies `stop` (included), within `wait` overall.
    pub async fn until(&mut self, wait: Duration, stop: impl Fn(&Value) -> bool) -> Vec<SseEvent> {
        let deadline = Instant::now() + wait;
        let mut events = Vec::new();
        while let Some(event) = self
            .next(deadline.saturating_duration_since(Instant::now()))
            .await
        {
            let done = stop(&event.data);
            events.push(event);
            if done {
                return events;
            }
        }
        panic!(
            "the awaited event never came; got {:?}",
            events.iter().map(|e| &e.data).collect::<Vec<_>>()
        );
    }
}
