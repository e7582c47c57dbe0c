//! The full turn's server overhead: 200 sends answered by the instant mock model (one
//! `add_task` call, then a one-line answer), each send's time minus the time spent inside the
//! model's handler.

use std::{
    sync::atomic::{AtomicU64, Ordering},
    time::{Duration, Instant},
};

use anyhow::Result;
use serde_json::{json, Value};

use super::{
    reads::percentile,
    setup::{new_conversation, BenchUser, Server},
    verdict, Row,
};

pub struct Overhead {
    /// The conversation the turns ran in (the live measures use it next).
    pub conversation: String,
    /// Sorted.
    pub samples: Vec<Duration>,
}

pub async fn overhead(
    server: &Server,
    user: &BenchUser,
    model_busy: &AtomicU64,
) -> Result<Overhead> {
    let conversation = new_conversation(server, &user.token).await?;
    let url = format!(
        "{}/api/chat/conversations/{conversation}/messages",
        server.base
    );
    let mut samples = Vec::new();
    for i in 0..200 {
        let before = model_busy.load(Ordering::Relaxed);
        let t = Instant::now();
        let res = server
            .http
            .post(&url)
            .bearer_auth(&user.token)
            .json(&json!({ "content": format!("add bench task {i}") }))
            .send()
            .await?;
        let ok = res.status().is_success();
        let _ = res.bytes().await;
        let total = t.elapsed();
        let mock = Duration::from_nanos(model_busy.load(Ordering::Relaxed) - before);
        if ok {
            samples.push(total.saturating_sub(mock));
        }
    }
    samples.sort();
    Ok(Overhead {
        conversation,
        samples,
    })
}

pub fn row(overhead: &Overhead) -> Row {
    let p50 = percentile(&overhead.samples, 0.5);
    let p99 = percentile(&overhead.samples, 0.99);
    (
        "full turn server overhead p50 / p99 ms",
        format!("{p50:.2} / {p99:.2}"),
        "budget p50 ≤ 5".into(),
        verdict(p50 <= 5.0),
    )
}

pub fn report(overhead: &Overhead) -> Value {
    json!({
        "p50": percentile(&overhead.samples, 0.5),
        "p99": percentile(&overhead.samples, 0.99),
        "samples": overhead.samples.len(),
    })
}
