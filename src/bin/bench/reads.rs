//! Reads: the conversation list and an empty poll under load (`concurrency` clients back to
//! back), the latest 50 messages of a small and a huge conversation, what 500 pollers cost in
//! memory, and the raw floor of the same SQL through `pgbench` (with what the Postgres NOTIFY
//! bus can carry).

use std::{
    process::Command,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use anyhow::{Context, Result};
use serde_json::{json, Value};
use uuid::Uuid;

use super::{
    setup::{rss_kb, BenchUser, Options, Server},
    verdict, Row,
};

/// Latency samples and throughput of one load run.
pub struct Load {
    pub requests: usize,
    pub errors: usize,
    pub per_second: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
}

pub fn percentile(sorted: &[Duration], p: f64) -> f64 {
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

pub struct Reads {
    pub rss_idle_mb: f64,
    pub list: Load,
    pub poll: Load,
    pub latest_small: Vec<Duration>,
    pub latest_big: Vec<Duration>,
}

fn poll_url(server: &Server, user: &BenchUser) -> String {
    format!(
        "{}/api/chat/conversations/{}/messages?after=100",
        server.base, user.small
    )
}

/// The idle server's memory, then the list and the poll under load, then the latest 50.
pub async fn measure(server: &Server, user: &BenchUser, opts: &Options) -> Reads {
    let (http, base, token) = (&server.http, &server.base, &user.token);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rss_idle_mb = rss_kb(server.pid) as f64 / 1024.0;

    let list_url = format!("{base}/api/chat/conversations?limit=20");
    let poll_url = poll_url(server, user);
    // Warm-up, then the measured runs.
    load(
        http,
        &list_url,
        token,
        opts.concurrency,
        Duration::from_secs(1),
    )
    .await;
    eprintln!(
        "[bench] conversation list, {} clients, {:?}",
        opts.concurrency, opts.duration
    );
    let list = load(http, &list_url, token, opts.concurrency, opts.duration).await;
    eprintln!("[bench] empty poll");
    let poll = load(http, &poll_url, token, opts.concurrency, opts.duration).await;

    eprintln!("[bench] latest 50 messages: 100 vs 100,000");
    let latest = |conversation: Uuid| {
        format!("{base}/api/chat/conversations/{conversation}/messages?limit=50")
    };
    let latest_small = sequential(http, &latest(user.small), token, 500).await;
    let latest_big = sequential(http, &latest(user.big), token, 500).await;
    Reads {
        rss_idle_mb,
        list,
        poll,
        latest_small,
        latest_big,
    }
}

/// The server's memory with 500 clients polling every 2 s, as the UI does (MB).
pub async fn pollers_rss_mb(server: &Server, user: &BenchUser) -> f64 {
    let poll_url = poll_url(server, user);
    let stop = Arc::new(AtomicBool::new(false));
    let pollers: Vec<_> = (0..500)
        .map(|i| {
            let (http, url, token, stop) = (
                server.http.clone(),
                poll_url.clone(),
                user.token.clone(),
                stop.clone(),
            );
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
    let rss_mb = rss_kb(server.pid) as f64 / 1024.0;
    stop.store(true, Ordering::Relaxed);
    futures::future::join_all(pollers).await;
    rss_mb
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

/// What the database alone does for the same reads, per second.
pub struct Floors {
    pub list: f64,
    pub poll: f64,
    pub notify: f64,
}

/// Run while the server is up: it receives the NOTIFYs (and skips them).
pub fn floors(db_url: &str, user: &BenchUser, opts: &Options) -> Result<Floors> {
    let secs = opts.duration.as_secs().max(5);
    let (id, small) = (user.id, user.small);
    let list_sql = format!(
        "SELECT id, user_id, title, created_at, updated_at, message_count, last_message_preview, pinned,
             archived_at IS NOT NULL AS archived FROM conversations
         WHERE user_id = '{id}' AND deleted_at IS NULL AND archived_at IS NULL
         ORDER BY pinned DESC, updated_at DESC, id DESC LIMIT 21;\n"
    );
    let poll_sql = format!(
        "SELECT message_count FROM conversations WHERE id = '{small}' AND user_id = '{id}' AND deleted_at IS NULL;\n\
         SELECT id, conversation_id, seq, role, content, tool_calls, status, created_at FROM messages
         WHERE conversation_id = '{small}' AND seq > 100 ORDER BY seq LIMIT 101;\n"
    );
    // What the Postgres event bus can carry: delta-sized notifications on the live channel,
    // which the running server receives (and skips: nobody listens to that user).
    let notify_sql = "SELECT pg_notify('chatkit_live', '{\"u\":\"00000000-0000-0000-0000-000000000000\",\"e\":{\"type\":\"delta\",\"conversation_id\":\"00000000-0000-0000-0000-000000000000\",\"seq\":2,\"text\":\"a few words of a reply \",\"offset\":120}}');\n";
    let notify = pgbench(db_url, notify_sql, 16, secs)?;
    let list = pgbench(db_url, &list_sql, opts.concurrency, secs)?;
    let poll = pgbench(db_url, &poll_sql, opts.concurrency, secs)?;
    Ok(Floors { list, poll, notify })
}

/// The list and poll rows (throughput against the floor, latency).
pub fn load_rows(reads: &Reads, floors: &Floors) -> Vec<Row> {
    let (list, poll) = (&reads.list, &reads.poll);
    vec![
        (
            "conversation list req/s (64 clients)",
            format!("{:.0}", list.per_second),
            format!(
                "floor {:.0}/s, ratio {:.2}",
                floors.list,
                list.per_second / floors.list
            ),
            verdict(list.per_second >= 10_000.0 && list.per_second / floors.list >= 0.25),
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
                floors.poll,
                poll.per_second / floors.poll
            ),
            verdict(poll.per_second >= 10_000.0 && poll.per_second / floors.poll >= 0.25),
        ),
        (
            "empty poll p50 / p99 ms",
            format!("{:.2} / {:.2}", poll.p50_ms, poll.p99_ms),
            "budget p99 ≤ 10".into(),
            verdict(poll.p99_ms <= 10.0),
        ),
    ]
}

/// NOTIFY throughput, the latest 50, and the server's memory idle and with pollers.
pub fn other_rows(reads: &Reads, floors: &Floors, rss_pollers_mb: f64) -> Vec<Row> {
    let small_p50 = percentile(&reads.latest_small, 0.5);
    let big_p50 = percentile(&reads.latest_big, 0.5);
    vec![
        (
            "Postgres NOTIFY throughput (delta-sized, 16 clients) per s",
            format!("{:.0}", floors.notify),
            format!(
                "one flush per streaming turn every 15 ms: ~{:.0} turns streaming at once",
                floors.notify / 66.0
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
            format!("{:.1} / {rss_pollers_mb:.1}", reads.rss_idle_mb),
            "budget 40 / 100".into(),
            verdict(reads.rss_idle_mb <= 40.0 && rss_pollers_mb <= 100.0),
        ),
    ]
}

/// The JSON report's entries for the reads.
pub fn report(reads: &Reads, floors: &Floors, rss_pollers_mb: f64) -> Value {
    let load = |l: &Load, floor: f64| json!({ "rps": l.per_second, "p50_ms": l.p50_ms, "p99_ms": l.p99_ms, "errors": l.errors, "pgbench_tps": floor, "ratio": l.per_second / floor });
    json!({
        "conversation_list": load(&reads.list, floors.list),
        "empty_poll": load(&reads.poll, floors.poll),
        "notify_per_second": floors.notify,
        "latest_50_p50_ms": { "messages_100": percentile(&reads.latest_small, 0.5), "messages_100000": percentile(&reads.latest_big, 0.5) },
        "rss_mb": { "idle": reads.rss_idle_mb, "pollers_500": rss_pollers_mb },
    })
}
