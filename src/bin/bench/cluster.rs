//! Several replicas: three release servers on one database, with each event bus backend in
//! turn (Postgres NOTIFY, then NATS). 1,000 event streams spread over the replicas (100 users,
//! 10 streams each); a committed message's latency to those streams, and how many deltas they
//! receive per second as more turns stream at once (the saturation curve of each backend).

use std::{
    path::Path,
    process::{Child, Command, Stdio},
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        Arc, Mutex,
    },
    time::{Duration, Instant, SystemTime},
};

use anyhow::{bail, Context, Result};
use axum::{routing::post, Json, Router};
use futures::StreamExt;
use serde_json::{json, Value};

const USERS: usize = 100;
const STREAMS_PER_USER: usize = 10;
/// Conversations per user: turns of one conversation run one after another.
const CONVERSATIONS_PER_USER: usize = 4;
/// Turns streaming at once, per step of the saturation curve.
pub const LEVELS: [usize; 5] = [16, 64, 128, 256, 400];

pub struct BusResult {
    pub backend: &'static str,
    pub streams: usize,
    pub commit_ms: Vec<f64>,
    /// (turns at once, deltas delivered to the streams per second, deltas published per s,
    /// turns completed per second).
    pub saturation: Vec<(usize, f64, f64, f64)>,
}

struct Replicas(Vec<Child>);

impl Drop for Replicas {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A model that streams 200 short tokens 5 ms apart for "stream…", and answers "ok" at once
/// otherwise.
async fn streaming_model() -> Result<String> {
    let app = Router::new().route(
        "/v1/chat/completions",
        post(|Json(body): Json<Value>| async move {
            let last = body["messages"]
                .as_array()
                .and_then(|m| m.iter().rev().find(|m| m["role"] == "user"))
                .and_then(|m| m["content"].as_str())
                .unwrap_or_default()
                .to_string();
            if last.starts_with("stream") {
                super::live::streamed_tokens(
                    super::live::TokenClock::default(),
                    200,
                    Duration::from_millis(5),
                )
            } else {
                super::live::sse_body(&[json!({ "role": "assistant", "content": "ok" })])
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(format!("http://{addr}/v1"))
}

/// Runs the whole measure for one backend (`nats`: its URL, or none for Postgres).
pub async fn measure(
    server_bin: &Path,
    site_root: &Path,
    db_url: &str,
    first_port: u16,
    nats: Option<&str>,
) -> Result<BusResult> {
    let backend = if nats.is_some() { "nats" } else { "postgres" };
    let model = streaming_model().await?;
    let mut children = Vec::new();
    let mut bases = Vec::new();
    for i in 0..3u16 {
        let port = first_port + i;
        let mut command = Command::new(server_bin);
        command
            .env("ADDR", format!("127.0.0.1:{port}"))
            .env("DATABASE_URL", db_url)
            .env("DATA_DIR", std::env::temp_dir().join("chatkit-bench"))
            .env("JWT_SECRET", "bench-cluster-secret-bench-cluster-secret!")
            .env("LEPTOS_SITE_ROOT", site_root)
            .env("OPENAI_API_KEY", "bench")
            .env("OPENAI_BASE_URL", &model)
            .env("AUTH_RATE_PER_MINUTE_IP", "100000")
            .env("AUTH_RATE_PER_MINUTE_EMAIL", "100000")
            .env("SEND_RATE_PER_MINUTE", "100000")
            .env("WRITE_RATE_PER_MINUTE", "100000")
            .env("TURNS_PER_USER", "100")
            .env("DB_MAX_CONNECTIONS", "24")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null());
        if let Some(url) = nats {
            command.env("EVENT_BUS_URL", url);
        }
        children.push(command.spawn().context("starting a replica")?);
        bases.push(format!("http://127.0.0.1:{port}"));
    }
    let _replicas = Replicas(children);
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(256)
        .build()?;
    for base in &bases {
        let mut ready = false;
        for _ in 0..150 {
            if let Ok(res) = http.get(format!("{base}/readyz")).send().await {
                let text = res.text().await.unwrap_or_default();
                if text.starts_with("ready")
                    && (nats.is_none() || text.contains("nats (connected)"))
                {
                    ready = true;
                    break;
                }
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        if !ready {
            bail!("replica {base} did not become ready ({backend})");
        }
    }

    // Users (registered through the API, spread over the replicas) and a conversation each.
    let mut users = Vec::new();
    for chunk in (0..USERS).collect::<Vec<_>>().chunks(10) {
        let registered = futures::future::join_all(chunk.iter().map(|&i| {
            let http = http.clone();
            let base = bases[i % 3].clone();
            async move {
                let session: Value = http
                    .post(format!("{base}/api/auth/register"))
                    .json(&json!({ "email": format!("{backend}-{i}@cluster.example"), "password": "bench-password" }))
                    .send()
                    .await?
                    .json()
                    .await?;
                let token = session["access_token"].as_str().context("no token")?.to_string();
                let mut ids = Vec::new();
                for _ in 0..CONVERSATIONS_PER_USER {
                    let conversation: Value = http
                        .post(format!("{base}/api/chat/conversations"))
                        .bearer_auth(&token)
                        .json(&json!({}))
                        .send()
                        .await?
                        .json()
                        .await?;
                    ids.push(conversation["id"].as_str().context("no conversation")?.to_string());
                }
                Ok::<_, anyhow::Error>((token, ids))
            }
        }))
        .await;
        for user in registered {
            users.push(user?);
        }
    }

    // 1,000 streams, round-robin over the replicas; each records user-message latencies and
    // counts deltas.
    let commit_ms = Arc::new(Mutex::new(Vec::new()));
    let deltas = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let mut readers = Vec::new();
    let mut n = 0usize;
    for (token, _) in &users {
        for _ in 0..STREAMS_PER_USER {
            let base = &bases[n % 3];
            n += 1;
            let res = http
                .get(format!("{base}/api/chat/events"))
                .bearer_auth(token)
                .send()
                .await?;
            if !res.status().is_success() {
                bail!("opening an event stream: {}", res.status());
            }
            let (commit_ms, deltas, stop) = (commit_ms.clone(), deltas.clone(), stop.clone());
            readers.push(tokio::spawn(async move {
                let mut events = std::pin::pin!(super::live::events(res));
                while let Some((_, now, event)) = events.next().await {
                    if stop.load(Ordering::Relaxed) {
                        return;
                    }
                    if event["type"] == "delta" {
                        deltas.fetch_add(1, Ordering::Relaxed);
                    } else if event["type"] == "message" && event["role"] == "user" {
                        let created = event["created_at"]
                            .as_str()
                            .and_then(|c| chrono::DateTime::parse_from_rfc3339(c).ok());
                        if let Some(created) = created {
                            let created: SystemTime = created.with_timezone(&chrono::Utc).into();
                            if let Ok(d) = now.duration_since(created) {
                                if let Ok(mut all) = commit_ms.lock() {
                                    all.push(d.as_secs_f64() * 1000.0);
                                }
                            }
                        }
                    }
                }
            }));
        }
    }
    tokio::time::sleep(Duration::from_secs(2)).await;

    // Commit → event: 200 sends, 20 per second, round-robin over users and replicas.
    let mut sends = Vec::new();
    for i in 0..200usize {
        let (token, conversations) = users[i % USERS].clone();
        let conversation = &conversations[0];
        let url = format!(
            "{}/api/chat/conversations/{conversation}/messages",
            bases[i % 3]
        );
        let http = http.clone();
        sends.push(tokio::spawn(async move {
            let _ = http
                .post(url)
                .bearer_auth(token)
                .json(&json!({ "content": format!("hello {i}") }))
                .send()
                .await;
        }));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    futures::future::join_all(sends).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut commit = commit_ms.lock().map(|c| c.clone()).unwrap_or_default();
    commit.sort_by(f64::total_cmp);

    // Saturation: `level` turns streaming at once (200 tokens each, 5 ms apart).
    let mut saturation = Vec::new();
    for level in LEVELS {
        let before = deltas.load(Ordering::Relaxed);
        let started = Instant::now();
        let turns = (0..level).map(|i| {
            let (token, conversations) = users[i % USERS].clone();
            let conversation = &conversations[(i / USERS) % CONVERSATIONS_PER_USER];
            let url = format!(
                "{}/api/chat/conversations/{conversation}/messages",
                bases[i % 3]
            );
            let http = http.clone();
            async move {
                let _ = http
                    .post(url)
                    .bearer_auth(token)
                    .json(&json!({ "content": "stream please" }))
                    .send()
                    .await;
            }
        });
        futures::future::join_all(turns).await;
        let turns_per_second = level as f64 / started.elapsed().as_secs_f64();
        // Deliveries lag the turns' end a little: count until the streams go quiet.
        let mut last = deltas.load(Ordering::Relaxed);
        loop {
            tokio::time::sleep(Duration::from_millis(300)).await;
            let now = deltas.load(Ordering::Relaxed);
            if now == last {
                break;
            }
            last = now;
        }
        let elapsed = started.elapsed().as_secs_f64() - 0.3;
        let delivered = (last - before) as f64;
        saturation.push((
            level,
            delivered / elapsed,
            delivered / STREAMS_PER_USER as f64 / elapsed,
            turns_per_second,
        ));
        eprintln!(
            "[bench] {backend}: {level} turns at once → {:.0} deltas/s delivered, {turns_per_second:.0} turns/s",
            delivered / elapsed
        );
    }
    stop.store(true, Ordering::Relaxed);
    for reader in readers {
        reader.abort();
    }
    Ok(BusResult {
        backend,
        streams: n,
        commit_ms: commit,
        saturation,
    })
}
