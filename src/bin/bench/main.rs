//! The project's benchmark (SPEC §11). Run with `scripts/bench.sh` (it builds the release first).
//!
//! It starts the release server on its own database, seeds realistic data with bulk SQL, serves
//! an instant OpenAI-compatible mock model, drives load over loopback from this process, runs
//! the same SQL through `pgbench` for the raw floor, and prints one table (also written as JSON).

use std::{
    path::PathBuf,
    process::{Child, Command, Stdio},
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

mod cluster;
mod live;
mod render;

use anyhow::{bail, Context, Result};
use axum::{routing::post, Json, Router};
use serde_json::{json, Value};
use sqlx::{Connection, PgConnection};
use uuid::Uuid;

const BENCH_DB: &str = "chatkit_bench";
const PORT: u16 = 3300;

struct Options {
    admin_url: String,
    duration: Duration,
    concurrency: usize,
    server_bin: PathBuf,
    site_root: PathBuf,
    out: PathBuf,
}

impl Options {
    fn from_env() -> Self {
        let target = std::env::var("CARGO_TARGET_DIR").unwrap_or_else(|_| "target".into());
        let env = |k: &str, d: &str| std::env::var(k).unwrap_or_else(|_| d.to_string());
        Self {
            admin_url: env(
                "PG_ADMIN_URL",
                "postgres://postgres@127.0.0.1:5432/postgres",
            ),
            duration: Duration::from_secs(env("BENCH_SECONDS", "10").parse().unwrap_or(10)),
            concurrency: env("BENCH_CONCURRENCY", "64").parse().unwrap_or(64),
            server_bin: PathBuf::from(env(
                "BENCH_SERVER_BIN",
                &format!("{target}/release/chatkit"),
            )),
            site_root: PathBuf::from(env("LEPTOS_SITE_ROOT", "target/site")),
            out: PathBuf::from(env("BENCH_OUT", "bench/out/latest.json")),
        }
    }
}

/// Latency samples and throughput of one load run.
struct Load {
    requests: usize,
    errors: usize,
    per_second: f64,
    p50_ms: f64,
    p99_ms: f64,
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

/// `concurrency` workers issue GETs back to back for `duration`.
async fn load(
    http: &reqwest::Client,
    url: &str,
    token: &str,
    concurrency: usize,
    duration: Duration,
) -> Load {
    let started = Instant::now();
    let deadline = started + duration;
    let workers = (0..concurrency).map(|_| {
        let (http, url, token) = (http.clone(), url.to_string(), token.to_string());
        tokio::spawn(async move {
            let mut samples = Vec::with_capacity(4096);
            let mut errors = 0;
            while Instant::now() < deadline {
                let t = Instant::now();
                match http.get(&url).bearer_auth(&token).send().await {
                    Ok(res) if res.status().is_success() => {
                        let _ = res.bytes().await;
                        samples.push(t.elapsed());
                    }
                    _ => errors += 1,
                }
            }
            (samples, errors)
        })
    });
    let mut all = Vec::new();
    let mut errors = 0;
    for worker in futures::future::join_all(workers)
        .await
        .into_iter()
        .flatten()
    {
        all.extend(worker.0);
        errors += worker.1;
    }
    let elapsed = started.elapsed().as_secs_f64();
    all.sort();
    Load {
        requests: all.len(),
        errors,
        per_second: all.len() as f64 / elapsed,
        p50_ms: percentile(&all, 0.50),
        p99_ms: percentile(&all, 0.99),
    }
}

/// Sequential requests: latency of one request on an otherwise idle server.
async fn sequential(http: &reqwest::Client, url: &str, token: &str, n: usize) -> Vec<Duration> {
    let mut samples = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        if let Ok(res) = http.get(url).bearer_auth(token).send().await {
            let _ = res.bytes().await;
        }
        samples.push(t.elapsed());
    }
    samples.sort();
    samples
}

/// An instant OpenAI-compatible model, streaming as the server asks it to: one `add_task`
/// call, then a one-line answer. A message starting "stream" is answered with 100 tokens
/// 20 ms apart instead, each token's send time recorded (for the delta latency).
/// Returns its base URL, the total time spent inside its handler (nanoseconds), and the
/// token send times.
async fn start_mock_model() -> Result<(String, Arc<AtomicU64>, live::TokenClock)> {
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
                let delta = if after_tool {
                    json!({ "role": "assistant", "content": "Done." })
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
    Ok((format!("http://{addr}/v1"), busy, clock))
}

fn rss_kb(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .map(str::to_string)
        })
        .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        .unwrap_or(0)
}

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.0.id().to_string())
            .status();
        let _ = self.0.wait();
    }
}

/// pgbench with a custom script: transactions per second (prepared statements).
fn pgbench(url: &str, script: &str, clients: usize, seconds: u64) -> Result<f64> {
    let file = std::env::temp_dir().join(format!("chatkit-bench-{}.sql", Uuid::new_v4()));
    std::fs::write(&file, script)?;
    let output = Command::new("pgbench")
        .args([
            "-n",
            "-M",
            "prepared",
            "-c",
            &clients.to_string(),
            "-j",
            "2",
            "-T",
            &seconds.to_string(),
            "-f",
        ])
        .arg(&file)
        .arg(url)
        .output()
        .context("running pgbench (install postgresql-contrib / the PostgreSQL client tools)")?;
    let _ = std::fs::remove_file(&file);
    let text = String::from_utf8_lossy(&output.stdout);
    text.lines()
        .find(|l| l.starts_with("tps = "))
        .and_then(|l| l.split_whitespace().nth(2))
        .and_then(|v| v.parse().ok())
        .with_context(|| {
            format!(
                "pgbench gave no tps: {}",
                String::from_utf8_lossy(&output.stderr)
            )
        })
}

async fn seed(db_url: &str, user: Uuid, password_hash: &str) -> Result<(Uuid, Uuid)> {
    let mut conn = PgConnection::connect(db_url).await?;
    let small = Uuid::new_v4();
    let big = Uuid::new_v4();
    let statements = [
        // 10,000 conversations for the benchmark user, distinct activity times.
        format!(
            "INSERT INTO conversations (id, user_id, title, updated_at, created_at, message_count, last_seq, last_message_preview)
             SELECT gen_random_uuid(), '{user}', 'Conversation ' || i, now() - i * interval '1 minute',
                    now() - i * interval '1 minute', 2, 2, 'preview ' || i
             FROM generate_series(1, 10000) i"
        ),
        format!("INSERT INTO conversations (id, user_id, title, message_count, last_seq) VALUES ('{small}', '{user}', 'Small', 100, 100), ('{big}', '{user}', 'Big', 100000, 100000)"),
        format!(
            "INSERT INTO messages (id, conversation_id, seq, role, content, created_at)
             SELECT gen_random_uuid(), c.id, i, CASE WHEN i % 2 = 1 THEN 'user' ELSE 'assistant' END,
                    'Message number ' || i || ' with some ordinary text in it, about the length people type.',
                    now() - (c.n - i) * interval '1 second'
             FROM (VALUES ('{small}'::uuid, 100), ('{big}'::uuid, 100000)) AS c(id, n), generate_series(1, c.n) i"
        ),
        // 1,000 other users with a few conversations each.
        format!(
            "INSERT INTO users (id, email, password_hash)
             SELECT gen_random_uuid(), 'other' || i || '@bench.example', '{password_hash}' FROM generate_series(1, 1000) i"
        ),
        "INSERT INTO conversations (id, user_id, title, message_count, last_seq)
         SELECT gen_random_uuid(), u.id, 'Other ' || k, 4, 4 FROM users u, generate_series(1, 3) k
         WHERE u.email LIKE '%@bench.example'"
            .to_string(),
        "INSERT INTO messages (id, conversation_id, seq, role, content)
         SELECT gen_random_uuid(), c.id, s, CASE WHEN s % 2 = 1 THEN 'user' ELSE 'assistant' END, 'hello'
         FROM conversations c, generate_series(1, 4) s WHERE c.title LIKE 'Other %'"
            .to_string(),
        "ANALYZE".to_string(),
    ];
    for sql in statements {
        sqlx::query(&sql)
            .execute(&mut conn)
            .await
            .with_context(|| format!("seeding: {sql}"))?;
    }
    Ok((small, big))
}

/// How soon a chat page is interactive after navigation starts (SPEC §11: ≤ 1 s on loopback).
struct Interactive {
    p50_ms: f64,
    max_ms: f64,
    samples: usize,
}

/// Loads `path` signed in as `token`, in headless Chromium with an empty cache, several times;
/// `scripts/bench-interactive.mjs` does the browser side.
fn interactive_after_load(base: &str, token: &str, path: &str) -> Result<Interactive> {
    let output = Command::new("node")
        .args(["scripts/bench-interactive.mjs", base, token, path, "7"])
        .stderr(Stdio::inherit())
        .output()
        .context("running node (scripts/setup.sh --test installs Chromium and Playwright)")?;
    if !output.status.success() {
        bail!("bench-interactive.mjs failed ({})", output.status);
    }
    let report: Value = serde_json::from_slice(&output.stdout)
        .context("reading the bench-interactive.mjs report")?;
    let number = |key: &str| report[key].as_f64().context("incomplete report");
    Ok(Interactive {
        p50_ms: number("p50_ms")?,
        max_ms: number("max_ms")?,
        samples: report["samples_ms"].as_array().map_or(0, Vec::len),
    })
}

#[tokio::main]
async fn main() -> Result<()> {
    let opts = Options::from_env();
    if !opts.server_bin.exists() {
        bail!(
            "{} is missing: build the release first (scripts/bench.sh does)",
            opts.server_bin.display()
        );
    }
    let machine = format!(
        "{} cores, {}",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1),
        std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(
                |c| c.lines().find(|l| l.starts_with("model name")).map(|l| l
                    .split(':')
                    .nth(1)
                    .unwrap_or("")
                    .trim()
                    .to_string())
            )
            .unwrap_or_default()
    );
    eprintln!("[bench] machine: {machine}");

    // A fresh database.
    let mut admin = PgConnection::connect(&opts.admin_url)
        .await
        .context("connecting to PostgreSQL (set PG_ADMIN_URL)")?;
    sqlx::query(&format!("DROP DATABASE IF EXISTS {BENCH_DB} WITH (FORCE)"))
        .execute(&mut admin)
        .await?;
    sqlx::query(&format!("CREATE DATABASE {BENCH_DB}"))
        .execute(&mut admin)
        .await?;
    let db_url = format!(
        "{}/{BENCH_DB}",
        opts.admin_url
            .rsplit_once('/')
            .map_or(opts.admin_url.as_str(), |(base, _)| base)
    );

    let (model_url, model_busy, token_clock) = start_mock_model().await?;
    let data_dir = std::env::temp_dir().join("chatkit-bench");
    let child = Command::new(&opts.server_bin)
        .env("ADDR", format!("127.0.0.1:{PORT}"))
        .env("DATABASE_URL", &db_url)
        .env("DATA_DIR", &data_dir)
        .env("LEPTOS_SITE_ROOT", &opts.site_root)
        .env("OPENAI_API_KEY", "bench")
        .env("OPENAI_BASE_URL", &model_url)
        .env("AUTH_RATE_PER_MINUTE_IP", "100000")
        .env("SEND_RATE_PER_MINUTE", "100000")
        .env("WRITE_RATE_PER_MINUTE", "100000")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()
        .context("starting the server")?;
    let server = Server(child);
    let pid = server.0.id();
    let base = format!("http://127.0.0.1:{PORT}");
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(1024)
        .build()?;
    let ready = async {
        for _ in 0..150 {
            if http
                .get(format!("{base}/readyz"))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success())
            {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        false
    };
    if !ready.await {
        bail!("the server did not become ready");
    }

    // The benchmark user, registered through the API (real password hash), then bulk data.
    let session: Value = http
        .post(format!("{base}/api/auth/register"))
        .json(&json!({ "email": "bench@bench.example", "password": "bench-password" }))
        .send()
        .await?
        .json()
        .await?;
    let token = session["access_token"]
        .as_str()
        .context("no token")?
        .to_string();
    let user: Uuid = session["user"]["id"]
        .as_str()
        .context("no user id")?
        .parse()?;
    let mut conn = PgConnection::connect(&db_url).await?;
    let hash: String = sqlx::query_scalar("SELECT password_hash FROM users WHERE id = $1")
        .bind(user)
        .fetch_one(&mut conn)
        .await?;
    let t = Instant::now();
    let (small, big) = seed(&db_url, user, &hash).await?;
    eprintln!("[bench] seeded in {:.1} s", t.elapsed().as_secs_f64());

    tokio::time::sleep(Duration::from_secs(2)).await;
    let rss_idle_mb = rss_kb(pid) as f64 / 1024.0;

    let list_url = format!("{base}/api/chat/conversations?limit=20");
    let poll_url = format!("{base}/api/chat/conversations/{small}/messages?after=100");
    // Warm-up, then the measured runs.
    load(
        &http,
        &list_url,
        &token,
        opts.concurrency,
        Duration::from_secs(1),
    )
    .await;
    eprintln!(
        "[bench] conversation list, {} clients, {:?}",
        opts.concurrency, opts.duration
    );
    let list = load(&http, &list_url, &token, opts.concurrency, opts.duration).await;
    eprintln!("[bench] empty poll");
    let poll = load(&http, &poll_url, &token, opts.concurrency, opts.duration).await;

    eprintln!("[bench] latest 50 messages: 100 vs 100,000");
    let latest_small = sequential(
        &http,
        &format!("{base}/api/chat/conversations/{small}/messages?limit=50"),
        &token,
        500,
    )
    .await;
    let latest_big = sequential(
        &http,
        &format!("{base}/api/chat/conversations/{big}/messages?limit=50"),
        &token,
        500,
    )
    .await;

    eprintln!("[bench] full turns with the instant mock model");
    let turn_conversation: Value = http
        .post(format!("{base}/api/chat/conversations"))
        .bearer_auth(&token)
        .json(&json!({}))
        .send()
        .await?
        .json()
        .await?;
    let turn_id = turn_conversation["id"]
        .as_str()
        .context("no conversation")?
        .to_string();
    let mut overheads = Vec::new();
    for i in 0..200 {
        let before = model_busy.load(Ordering::Relaxed);
        let t = Instant::now();
        let res = http
            .post(format!("{base}/api/chat/conversations/{turn_id}/messages"))
            .bearer_auth(&token)
            .json(&json!({ "content": format!("add bench task {i}") }))
            .send()
            .await?;
        let ok = res.status().is_success();
        let _ = res.bytes().await;
        let total = t.elapsed();
        let mock = Duration::from_nanos(model_busy.load(Ordering::Relaxed) - before);
        if ok {
            overheads.push(total.saturating_sub(mock));
        }
    }
    overheads.sort();

    eprintln!("[bench] live replies: model token to delta, commit to another tab's event");
    let delta_ms = live::token_to_delta(&http, &base, &token, &turn_id, &token_clock).await?;
    let event_ms = live::commit_to_event(&http, &base, &token, &turn_id, 50).await?;

    eprintln!("[bench] 500 pollers (every 2 s, as the UI does)");
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let pollers: Vec<_> = (0..500)
        .map(|i| {
            let (http, url, token, stop) =
                (http.clone(), poll_url.clone(), token.clone(), stop.clone());
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis((i * 4) as u64)).await;
                while !stop.load(Ordering::Relaxed) {
                    if let Ok(res) = http.get(&url).bearer_auth(&token).send().await {
                        let _ = res.bytes().await;
                    }
                    tokio::time::sleep(Duration::from_secs(2)).await;
                }
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(8)).await;
    let rss_pollers_mb = rss_kb(pid) as f64 / 1024.0;
    stop.store(true, Ordering::Relaxed);
    futures::future::join_all(pollers).await;

    eprintln!("[bench] 5,000 idle event streams");
    let idle = live::idle_streams(&base, &token, pid, &db_url, 5000).await?;

    eprintln!("[bench] page weight (as served, compressed by the server)");
    let mut page = serde_json::Map::new();
    for (encoding, label) in [("identity", "raw"), ("gzip", "gzip"), ("br", "brotli")] {
        let mut total = 0usize;
        for asset in ["chatkit.wasm", "chatkit.js", "chatkit.css"] {
            let res = http
                .get(format!("{base}/pkg/{asset}"))
                .header("accept-encoding", encoding)
                .send()
                .await?;
            total += res.bytes().await?.len();
        }
        page.insert(label.into(), json!(total));
    }

    eprintln!("[bench] chat page interactive after load (headless Chromium, empty cache)");
    let interactive = interactive_after_load(&base, &token, &format!("/chat/{small}"));
    if let Err(err) = &interactive {
        eprintln!("[bench] could not measure interactivity: {err:#}");
    }

    eprintln!("[bench] pgbench floors");
    let secs = opts.duration.as_secs().max(5);
    let list_sql = format!(
        "SELECT id, user_id, title, created_at, updated_at, message_count, last_message_preview FROM conversations
         WHERE user_id = '{user}' AND deleted_at IS NULL ORDER BY updated_at DESC, id DESC LIMIT 21;\n"
    );
    let poll_sql = format!(
        "SELECT message_count FROM conversations WHERE id = '{small}' AND user_id = '{user}' AND deleted_at IS NULL;\n\
         SELECT id, conversation_id, seq, role, content, tool_calls, status, created_at FROM messages
         WHERE conversation_id = '{small}' AND seq > 100 ORDER BY seq LIMIT 101;\n"
    );
    // What the Postgres event bus can carry: delta-sized notifications on the live channel,
    // which the running server receives (and skips: nobody listens to that user).
    let notify_sql = "SELECT pg_notify('chatkit_live', '{\"u\":\"00000000-0000-0000-0000-000000000000\",\"e\":{\"type\":\"delta\",\"conversation_id\":\"00000000-0000-0000-0000-000000000000\",\"seq\":2,\"text\":\"a few words of a reply \",\"offset\":120}}');\n";
    let notify_tps = pgbench(&db_url, notify_sql, 16, secs)?;
    let list_floor = pgbench(&db_url, &list_sql, opts.concurrency, secs)?;
    let poll_floor = pgbench(&db_url, &poll_sql, opts.concurrency, secs)?;
    drop(server);

    // Several replicas, each bus backend in turn (the single server above is stopped).
    eprintln!("[bench] 3 replicas, 1,000 event streams: Postgres NOTIFY bus");
    let on_postgres =
        cluster::measure(&opts.server_bin, &opts.site_root, &db_url, PORT + 10, None).await?;
    let nats_url =
        std::env::var("BENCH_NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".into());
    eprintln!("[bench] 3 replicas, 1,000 event streams: NATS bus ({nats_url})");
    let on_nats = cluster::measure(
        &opts.server_bin,
        &opts.site_root,
        &db_url,
        PORT + 20,
        Some(&nats_url),
    )
    .await?;
    let curve = |r: &cluster::BusResult| {
        r.saturation
            .iter()
            .map(|(_, delivered, _, turns)| format!("{delivered:.0} ({turns:.0} turns/s)"))
            .collect::<Vec<_>>()
            .join(" / ")
    };
    // The first step where NOTIFY delivers less than 90 % of what NATS delivers.
    let crossover = on_postgres
        .saturation
        .iter()
        .zip(&on_nats.saturation)
        .find(|((_, pg, _, _), (_, nats, _, _))| *pg < 0.9 * *nats)
        .map(|((level, pg, _, _), (_, nats, _, _))| {
            format!("at {level} turns streaming at once ({pg:.0} vs {nats:.0} deltas/s)")
        })
        .unwrap_or_else(|| {
            format!(
                "not within {} turns at once",
                cluster::LEVELS[cluster::LEVELS.len() - 1]
            )
        });

    let small_p50 = percentile(&latest_small, 0.5);
    let big_p50 = percentile(&latest_big, 0.5);
    let overhead_p50 = percentile(&overheads, 0.5);
    let overhead_p99 = percentile(&overheads, 0.99);
    let wire = page.get("brotli").and_then(Value::as_u64).unwrap_or(0);
    let verdict = |ok: bool| if ok { "met" } else { "NOT met" };
    let rows = vec![
        (
            "conversation list req/s (64 clients)",
            format!("{:.0}", list.per_second),
            format!(
                "floor {:.0}/s, ratio {:.2}",
                list_floor,
                list.per_second / list_floor
            ),
            verdict(list.per_second >= 10_000.0 && list.per_second / list_floor >= 0.25),
        ),
        (
            "conversation list p50 / p99 ms",
            format!("{:.2} / {:.2}", list.p50_ms, list.p99_ms),
            "budget p99 ≤ 10".into(),
            verdict(list.p99_ms <= 10.0),
        ),
        (
            "empty poll req/s (64 clients)",
            format!("{:.0}", poll.per_second),
            format!(
                "floor {:.0}/s, ratio {:.2}",
                poll_floor,
                poll.per_second / poll_floor
            ),
            verdict(poll.per_second >= 10_000.0 && poll.per_second / poll_floor >= 0.25),
        ),
        (
            "empty poll p50 / p99 ms",
            format!("{:.2} / {:.2}", poll.p50_ms, poll.p99_ms),
            "budget p99 ≤ 10".into(),
            verdict(poll.p99_ms <= 10.0),
        ),
        (
            "full turn server overhead p50 / p99 ms",
            format!("{overhead_p50:.2} / {overhead_p99:.2}"),
            "budget p50 ≤ 5".into(),
            verdict(overhead_p50 <= 5.0),
        ),
        (
            "model token → delta on an event stream p50 / p99 ms",
            format!(
                "{:.1} / {:.1}",
                live::percentile(&delta_ms, 0.5),
                live::percentile(&delta_ms, 0.99)
            ),
            format!("{} tokens 20 ms apart; budget p50 ≤ 50", delta_ms.len()),
            verdict(live::percentile(&delta_ms, 0.5) <= 50.0),
        ),
        (
            "message committed → another tab's event p50 / p99 ms",
            format!(
                "{:.1} / {:.1}",
                live::percentile(&event_ms, 0.5),
                live::percentile(&event_ms, 0.99)
            ),
            format!("{} sends; budget p50 ≤ 100 (polling: ~1,000)", event_ms.len()),
            verdict(live::percentile(&event_ms, 0.5) <= 100.0),
        ),
        (
            "5,000 idle event streams: RSS before / with MB; DB transactions per s",
            format!(
                "{:.1} / {:.1}; {:.2}",
                idle.rss_before_mb, idle.rss_mb, idle.transactions_per_second
            ),
            format!(
                "{} open streams; the rate is the turn sweeper's (every 2 s), none per stream; budget RSS ≤ 100",
                idle.connections
            ),
            verdict(idle.rss_mb <= 100.0 && idle.transactions_per_second <= 1.0),
        ),
        (
            "Postgres NOTIFY throughput (delta-sized, 16 clients) per s",
            format!("{notify_tps:.0}"),
            format!(
                "one flush per streaming turn every 15 ms: ~{:.0} turns streaming at once",
                notify_tps / 66.0
            ),
            "measured",
        ),
        (
            "latest 50: 100-msg vs 100k-msg p50 ms",
            format!("{small_p50:.2} vs {big_p50:.2}"),
            format!("ratio {:.2}, budget ≤ 2", big_p50 / small_p50),
            verdict(big_p50 <= 2.0 * small_p50),
        ),
        (
            "server RSS idle / 500 pollers MB",
            format!("{rss_idle_mb:.1} / {rss_pollers_mb:.1}"),
            "budget 40 / 100".into(),
            verdict(rss_idle_mb <= 40.0 && rss_pollers_mb <= 100.0),
        ),
        (
            "chat page JS+WASM+CSS bytes raw / gzip / br",
            format!("{} / {} / {}", page["raw"], page["gzip"], page["brotli"]),
            "budget ≤ 350 KB compressed".into(),
            verdict(wire <= 350 * 1024),
        ),
        (
            "3 replicas, 1,000 streams: commit → event p50 / p99 ms, Postgres bus",
            format!(
                "{:.1} / {:.1}",
                live::percentile(&on_postgres.commit_ms, 0.5),
                live::percentile(&on_postgres.commit_ms, 0.99)
            ),
            format!(
                "{} streams, {} deliveries of 200 sends at 20/s",
                on_postgres.streams,
                on_postgres.commit_ms.len()
            ),
            "measured",
        ),
        (
            "3 replicas, 1,000 streams: commit → event p50 / p99 ms, NATS bus",
            format!(
                "{:.1} / {:.1}",
                live::percentile(&on_nats.commit_ms, 0.5),
                live::percentile(&on_nats.commit_ms, 0.99)
            ),
            format!(
                "{} streams, {} deliveries of 200 sends at 20/s",
                on_nats.streams,
                on_nats.commit_ms.len()
            ),
            "measured",
        ),
        (
            "deltas/s delivered to 1,000 streams, Postgres bus",
            curve(&on_postgres),
            format!("{:?} turns streaming at once (200 tokens 5 ms apart each)", cluster::LEVELS),
            "measured",
        ),
        (
            "deltas/s delivered to 1,000 streams, NATS bus",
            curve(&on_nats),
            format!("{:?} turns streaming at once (200 tokens 5 ms apart each)", cluster::LEVELS),
            "measured",
        ),
        (
            "where the NOTIFY bus falls behind NATS",
            crossover.clone(),
            "first step where Postgres delivers < 90 % of NATS".into(),
            "measured",
        ),
        bundle_row("CSR build (Trunk) JS+WASM+CSS bytes raw / br", "target/csr"),
        bundle_row(
            "example app (feature client) JS+WASM bytes raw / br",
            "examples/tasks-client/dist",
        ),
        match &interactive {
            Ok(page) => (
                "chat page interactive after load p50 / max ms",
                format!("{:.0} / {:.0}", page.p50_ms, page.max_ms),
                format!("{} loads of a 100-message conversation", page.samples),
                verdict(page.max_ms <= 1000.0),
            ),
            Err(err) => (
                "chat page interactive after load",
                "not measured".into(),
                format!("{err:#}"),
                "NOT measured",
            ),
        },
    ];
    let mut rows = rows;
    rows.extend(render::rows(&opts.server_bin));
    println!("\nchatkit benchmark — {machine}\n");
    println!("| measure | value | context | budget |\n|---|---|---|---|");
    for (name, value, context, verdict) in &rows {
        println!("| {name} | {value} | {context} | {verdict} |");
    }
    println!(
        "\n(errors: list {}, poll {}; requests: list {}, poll {})",
        list.errors, poll.errors, list.requests, poll.requests
    );

    let report = json!({
        "machine": machine,
        "duration_secs": opts.duration.as_secs(),
        "concurrency": opts.concurrency,
        "conversation_list": { "rps": list.per_second, "p50_ms": list.p50_ms, "p99_ms": list.p99_ms, "errors": list.errors, "pgbench_tps": list_floor, "ratio": list.per_second / list_floor },
        "empty_poll": { "rps": poll.per_second, "p50_ms": poll.p50_ms, "p99_ms": poll.p99_ms, "errors": poll.errors, "pgbench_tps": poll_floor, "ratio": poll.per_second / poll_floor },
        "turn_overhead_ms": { "p50": overhead_p50, "p99": overhead_p99, "samples": overheads.len() },
        "token_to_delta_ms": { "p50": live::percentile(&delta_ms, 0.5), "p99": live::percentile(&delta_ms, 0.99), "samples": delta_ms.len() },
        "commit_to_event_ms": { "p50": live::percentile(&event_ms, 0.5), "p99": live::percentile(&event_ms, 0.99), "samples": event_ms.len() },
        "notify_per_second": notify_tps,
        "replicas": ([&on_postgres, &on_nats]).iter().map(|r| json!({
            "backend": r.backend,
            "streams": r.streams,
            "commit_to_event_ms": { "p50": live::percentile(&r.commit_ms, 0.5), "p99": live::percentile(&r.commit_ms, 0.99), "samples": r.commit_ms.len() },
            "saturation": r.saturation.iter().map(|(level, delivered, published, turns)| json!({ "turns": level, "delivered_per_s": delivered, "published_per_s": published, "turns_per_s": turns })).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
        "notify_falls_behind": crossover,
        "idle_streams": { "connections": idle.connections, "rss_before_mb": idle.rss_before_mb, "rss_mb": idle.rss_mb, "transactions_per_second": idle.transactions_per_second },
        "latest_50_p50_ms": { "messages_100": small_p50, "messages_100000": big_p50 },
        "rss_mb": { "idle": rss_idle_mb, "pollers_500": rss_pollers_mb },
        "page_bytes": page,
        "interactive_ms": interactive.as_ref().ok().map(|p| json!({ "p50": p.p50_ms, "max": p.max_ms, "samples": p.samples })),
        "verdicts": rows.iter().map(|r| json!({ "measure": r.0, "value": r.1, "budget": r.3 })).collect::<Vec<_>>(),
    });
    if let Some(dir) = opts.out.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(&opts.out, serde_json::to_string_pretty(&report)?)?;
    println!("\nJSON written to {}", opts.out.display());
    Ok(())
}

/// The size of a client-side build as a static host serves it: each `.wasm`, `.js` and `.css`
/// in `dir`, raw and with brotli (the `.br` files `scripts/precompress.mjs` wrote beside them).
fn bundle_row(name: &'static str, dir: &str) -> (&'static str, String, String, &'static str) {
    let mut raw = 0u64;
    let mut brotli = 0u64;
    let entries = std::fs::read_dir(dir).into_iter().flatten().flatten();
    for entry in entries {
        let path = entry.path();
        let asset = matches!(
            path.extension().and_then(|e| e.to_str()),
            Some("wasm" | "js" | "css")
        );
        if !asset {
            continue;
        }
        raw += entry.metadata().map(|m| m.len()).unwrap_or(0);
        let compressed = format!("{}.br", path.display());
        brotli += std::fs::metadata(compressed).map(|m| m.len()).unwrap_or(0);
    }
    if raw == 0 || brotli == 0 {
        return (
            name,
            "not built".into(),
            format!("no build in {dir}"),
            "NOT measured",
        );
    }
    let verdict = if brotli <= 350 * 1024 {
        "met"
    } else {
        "NOT met"
    };
    (
        name,
        format!("{raw} / {brotli}"),
        "budget ≤ 350 KB brotli".into(),
        verdict,
    )
}
