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

use super::live::percentile;

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

/// A user's token and conversations.
type User = (String, Vec<String>);

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
    let (_replicas, bases) =
        start_replicas(server_bin, site_root, db_url, first_port, nats, &model)?;
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(256)
        .build()?;
    wait_ready(&http, &bases, nats.is_some(), backend).await?;
    let users = register_users(&http, &bases, backend).await?;
    let streams = open_streams(&http, &bases, &users).await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let commit = commit_latency(&http, &bases, &users, &streams.commit_ms).await;
    let saturation = saturation(&http, &bases, &users, &streams.deltas, backend).await;
    streams.stop.store(true, Ordering::Relaxed);
    for reader in streams.readers {
        reader.abort();
    }
    Ok(BusResult {
        backend,
        streams: streams.count,
        commit_ms: commit,
        saturation,
    })
}

/// Three replicas on consecutive ports; returns them with their base URLs.
fn start_replicas(
    server_bin: &Path,
    site_root: &Path,
    db_url: &str,
    first_port: u16,
    nats: Option<&str>,
    model: &str,
) -> Result<(Replicas, Vec<String>)> {
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
            .env("OPENAI_BASE_URL", model)
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
    Ok((Replicas(children), bases))
}

/// Waits until every replica is ready (and, with NATS, connected to it).
async fn wait_ready(
    http: &reqwest::Client,
    bases: &[String],
    nats: bool,
    backend: &str,
) -> Result<()> {
    for base in bases {
        let mut ready = false;
        for _ in 0..150 {
            if let Ok(res) = http.get(format!("{base}/readyz")).send().await {
                let text = res.text().await.unwrap_or_default();
                if text.starts_with("ready") && (!nats || text.contains("nats (connected)")) {
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
    Ok(())
}

/// Users (registered through the API, spread over the replicas) and their conversations.
async fn register_users(
    http: &reqwest::Client,
    bases: &[String],
    backend: &str,
) -> Result<Vec<User>> {
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
    Ok(users)
}

/// The open streams, with what their readers record.
struct Streams {
    count: usize,
    commit_ms: Arc<Mutex<Vec<f64>>>,
    deltas: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    readers: Vec<tokio::task::JoinHandle<()>>,
}

/// `STREAMS_PER_USER` streams per user, round-robin over the replicas; each records
/// user-message latencies and counts deltas.
async fn open_streams(http: &reqwest::Client, bases: &[String], users: &[User]) -> Result<Streams> {
    let mut streams = Streams {
        count: 0,
        commit_ms: Arc::new(Mutex::new(Vec::new())),
        deltas: Arc::new(AtomicU64::new(0)),
        stop: Arc::new(AtomicBool::new(false)),
        readers: Vec::new(),
    };
    for (token, _) in users {
        for _ in 0..STREAMS_PER_USER {
            let base = &bases[streams.count % 3];
            streams.count += 1;
            let res = http
                .get(format!("{base}/api/chat/events"))
                .bearer_auth(token)
                .send()
                .await?;
            if !res.status().is_success() {
                bail!("opening an event stream: {}", res.status());
            }
            let (commit_ms, deltas, stop) = (
                streams.commit_ms.clone(),
                streams.deltas.clone(),
                streams.stop.clone(),
            );
            streams
                .readers
                .push(tokio::spawn(read_stream(res, commit_ms, deltas, stop)));
        }
    }
    Ok(streams)
}

async fn read_stream(
    res: reqwest::Response,
    commit_ms: Arc<Mutex<Vec<f64>>>,
    deltas: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
) {
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
}

/// Commit → event: 200 sends, 20 per second, round-robin over users and replicas (ms, sorted).
async fn commit_latency(
    http: &reqwest::Client,
    bases: &[String],
    users: &[User],
    commit_ms: &Mutex<Vec<f64>>,
) -> Vec<f64> {
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
    commit
}

/// Saturation: `level` turns streaming at once (200 tokens each, 5 ms apart), per level.
async fn saturation(
    http: &reqwest::Client,
    bases: &[String],
    users: &[User],
    deltas: &AtomicU64,
    backend: &str,
) -> Vec<(usize, f64, f64, f64)> {
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
    saturation
}

/// The first step where NOTIFY delivers less than 90 % of what NATS delivers.
pub fn crossover(on_postgres: &BusResult, on_nats: &BusResult) -> String {
    on_postgres
        .saturation
        .iter()
        .zip(&on_nats.saturation)
        .find(|((_, pg, _, _), (_, nats, _, _))| *pg < 0.9 * *nats)
        .map(|((level, pg, _, _), (_, nats, _, _))| {
            format!("at {level} turns streaming at once ({pg:.0} vs {nats:.0} deltas/s)")
        })
        .unwrap_or_else(|| format!("not within {} turns at once", LEVELS[LEVELS.len() - 1]))
}

/// The rows of both backends: commit → event, the delta curve, and where NOTIFY falls behind.
pub fn rows(on_postgres: &BusResult, on_nats: &BusResult) -> Vec<super::Row> {
    let commit = |r: &BusResult| {
        format!(
            "{:.1} / {:.1}",
            percentile(&r.commit_ms, 0.5),
            percentile(&r.commit_ms, 0.99)
        )
    };
    let deliveries = |r: &BusResult| {
        format!(
            "{} streams, {} deliveries of 200 sends at 20/s",
            r.streams,
            r.commit_ms.len()
        )
    };
    let curve = |r: &BusResult| {
        r.saturation
            .iter()
            .map(|(_, delivered, _, turns)| format!("{delivered:.0} ({turns:.0} turns/s)"))
            .collect::<Vec<_>>()
            .join(" / ")
    };
    let levels = format!(
        "{:?} turns streaming at once (200 tokens 5 ms apart each)",
        LEVELS
    );
    vec![
        (
            "3 replicas, 1,000 streams: commit → event p50 / p99 ms, Postgres bus",
            commit(on_postgres),
            deliveries(on_postgres),
            "measured",
        ),
        (
            "3 replicas, 1,000 streams: commit → event p50 / p99 ms, NATS bus",
            commit(on_nats),
            deliveries(on_nats),
            "measured",
        ),
        (
            "deltas/s delivered to 1,000 streams, Postgres bus",
            curve(on_postgres),
            levels.clone(),
            "measured",
        ),
        (
            "deltas/s delivered to 1,000 streams, NATS bus",
            curve(on_nats),
            levels,
            "measured",
        ),
        (
            "where the NOTIFY bus falls behind NATS",
            crossover(on_postgres, on_nats),
            "first step where Postgres delivers < 90 % of NATS".into(),
            "measured",
        ),
    ]
}

/// Both backends, for the JSON report.
pub fn report(on_postgres: &BusResult, on_nats: &BusResult) -> Value {
    let backends: Vec<Value> = [on_postgres, on_nats]
        .iter()
        .map(|r| json!({
            "backend": r.backend,
            "streams": r.streams,
            "commit_to_event_ms": { "p50": percentile(&r.commit_ms, 0.5), "p99": percentile(&r.commit_ms, 0.99), "samples": r.commit_ms.len() },
            "saturation": r.saturation.iter().map(|(level, delivered, published, turns)| json!({ "turns": level, "delivered_per_s": delivered, "published_per_s": published, "turns_per_s": turns })).collect::<Vec<_>>(),
        }))
        .collect();
    Value::Array(backends)
}
