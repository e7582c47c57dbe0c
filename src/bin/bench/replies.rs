//! Streamed replies: the server's CPU time per delta along one 20,000-character reply (a delta
//! near the end must cost what one near the start costs: nothing per delta may grow with the
//! reply so far), and model token → delta latency with 64 users' turns streaming at once on
//! one replica.

use std::{collections::HashMap, time::Duration};

use anyhow::{bail, Context, Result};
use futures::StreamExt;
use serde_json::{json, Value};

use super::{
    live::{self, open_stream, percentile, TokenClock},
    model::{LONG_TOKENS, LONG_TOKEN_CHARS},
    setup::{new_conversation, Server},
    streams::mint_users,
    verdict, Row,
};

/// Turns streaming at once, one per user.
const TURNS_AT_ONCE: usize = 64;

/// The server's CPU time, from its threads' scheduler statistics (`/proc/<pid>/task/*/schedstat`,
/// nanoseconds): `/proc/<pid>/stat` counts 10 ms ticks, too coarse for windows of a few
/// hundred milliseconds. Each thread counts from when it is first seen, so a thread that exits
/// between samples does not take its time off the total. Without schedstat (missing, or all
/// zeros), `/proc/<pid>/stat`.
struct CpuMeter {
    pid: u32,
    by_thread: bool,
    seen: HashMap<u32, u64>,
    total_ns: u64,
    /// `utime + stime` when created, for the fallback.
    start_ns: u64,
}

impl CpuMeter {
    fn new(pid: u32) -> Self {
        let seen: HashMap<u32, u64> = thread_times(pid).into_iter().collect();
        Self {
            pid,
            by_thread: seen.values().any(|&ns| ns > 0),
            seen,
            total_ns: 0,
            start_ns: stat_ns(pid),
        }
    }

    /// The server's CPU time since `new` (ns).
    fn sample(&mut self) -> u64 {
        if !self.by_thread {
            return stat_ns(self.pid).saturating_sub(self.start_ns);
        }
        for (tid, ns) in thread_times(self.pid) {
            // A thread started since the last sample: all its time is new.
            let before = self.seen.insert(tid, ns).unwrap_or(0);
            self.total_ns += ns.saturating_sub(before);
        }
        self.total_ns
    }
}

/// (thread id, CPU ns so far) of each thread of `pid`.
fn thread_times(pid: u32) -> Vec<(u32, u64)> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    tasks
        .flatten()
        .filter_map(|task| {
            let tid: u32 = task.file_name().to_str()?.parse().ok()?;
            let stat = std::fs::read_to_string(task.path().join("schedstat")).ok()?;
            let ns: u64 = stat.split_whitespace().next()?.parse().ok()?;
            Some((tid, ns))
        })
        .collect()
}

/// `utime + stime` of `pid` in ns (10 ms steps where the clock ticks 100 times a second).
fn stat_ns(pid: u32) -> u64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0;
    };
    // After the command name (in parentheses, may hold spaces): field 3 on; utime is 14.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or("", |(_, rest)| rest)
        .split_whitespace()
        .collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    // SAFETY: sysconf only reads a system constant.
    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    (ticks(11) + ticks(12)) * 1_000_000_000 / per_second
}

pub struct CpuPerDelta {
    pub deltas: usize,
    pub chars: usize,
    /// CPU µs per delta over the first and the last 10 % of the deltas.
    pub first_us: f64,
    pub last_us: f64,
}

/// The long reply on the benchmark user's event stream: the server's CPU time read as each
/// delta arrives.
pub async fn cpu_per_delta(server: &Server, token: &str) -> Result<CpuPerDelta> {
    let conversation = new_conversation(server, token).await?;
    let stream = open_stream(&server.http, &server.base, token).await?;
    let pid = server.pid;
    let reader = tokio::spawn(async move {
        let mut meter = CpuMeter::new(pid);
        let mut samples = Vec::new();
        let mut chars = 0;
        let mut events = std::pin::pin!(live::events(stream));
        while let Some((_, _, event)) = events.next().await {
            if event["type"] == "delta" {
                samples.push(meter.sample());
                chars += event["text"].as_str().map_or(0, |t| t.chars().count());
            }
            if event["type"] == "message" && event["role"] == "assistant" {
                break;
            }
        }
        (samples, chars)
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    send(server, token, &conversation, "long reply, please").await?;
    let (samples, chars) = tokio::time::timeout(Duration::from_secs(60), reader)
        .await
        .context("the long reply did not finish")??;
    let n = samples.len();
    if n < 20 {
        bail!(
            "only {n} deltas for a {}-character reply",
            LONG_TOKENS * LONG_TOKEN_CHARS
        );
    }
    // A tenth of the deltas at each end, each window's CPU from its first delta to its last.
    // The very last delta is left out: the turn's end (storing and rendering the reply) runs
    // right after it, and would land in the window depending on when the sample is read.
    let k = n / 10;
    let per_delta = |from: usize, to: usize| {
        samples[to].saturating_sub(samples[from]) as f64 / 1000.0 / k as f64
    };
    let (first_us, last_us) = (per_delta(0, k), per_delta(n - 2 - k, n - 2));
    if first_us <= 0.0 {
        bail!("no CPU time read for the server over its first {k} deltas");
    }
    Ok(CpuPerDelta {
        deltas: n,
        chars,
        first_us,
        last_us,
    })
}

/// `TURNS_AT_ONCE` users, each with an event stream open, send one "stream" message at the
/// same moment; the latency of each model token to its delta on that user's stream (ms, sorted).
pub async fn concurrent_turns(
    server: &Server,
    db_url: &str,
    clock: &TokenClock,
) -> Result<Vec<f64>> {
    let tokens = mint_users(db_url, "turns", TURNS_AT_ONCE).await?;
    let conversations =
        futures::future::join_all(tokens.iter().map(|token| new_conversation(server, token)))
            .await
            .into_iter()
            .collect::<Result<Vec<_>>>()?;
    let mut readers = Vec::new();
    for token in &tokens {
        let stream = open_stream(&server.http, &server.base, token).await?;
        readers.push(tokio::spawn(live::delta_latencies(stream, clock.clone())));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let sends = tokens
        .iter()
        .zip(&conversations)
        .map(|(token, conversation)| async move {
            send(server, token, conversation, "stream at once").await?;
            Ok::<_, anyhow::Error>(())
        });
    for sent in futures::future::join_all(sends).await {
        sent?;
    }
    let all = tokio::time::timeout(Duration::from_secs(60), futures::future::join_all(readers))
        .await
        .context("the streams did not all finish")?;
    let mut latencies = Vec::new();
    for reader in all {
        latencies.extend(reader?);
    }
    if latencies.is_empty() {
        bail!("no delta on the {TURNS_AT_ONCE} streams carried a model token");
    }
    latencies.sort_by(f64::total_cmp);
    Ok(latencies)
}

pub struct Replies {
    pub cpu: Result<CpuPerDelta>,
    pub concurrent_ms: Result<Vec<f64>>,
}

pub async fn measure(server: &Server, db_url: &str, token: &str, clock: &TokenClock) -> Replies {
    // The idle streams just closed: let the server settle first.
    tokio::time::sleep(Duration::from_secs(2)).await;
    eprintln!("[bench] a 20,000-character streamed reply: server CPU per delta");
    let cpu = cpu_per_delta(server, token).await;
    eprintln!("[bench] model token → delta with {TURNS_AT_ONCE} turns streaming at once");
    let concurrent_ms = concurrent_turns(server, db_url, clock).await;
    Replies { cpu, concurrent_ms }
}

pub fn rows(replies: &Replies) -> Vec<Row> {
    const CPU: &str = "20,000-character streamed reply: server CPU µs per delta, first / last 10 %";
    const CONCURRENT: &str =
        "model token → delta, 64 turns streaming at once (same replica) p50 / p99 ms";
    let not = |name: &'static str, err: &anyhow::Error| -> Row {
        (
            name,
            "not measured".to_string(),
            format!("{err:#}"),
            "NOT measured",
        )
    };
    let cpu = match &replies.cpu {
        Ok(cpu) => (
            CPU,
            format!("{:.0} / {:.0}", cpu.first_us, cpu.last_us),
            format!(
                "{} deltas, {} characters ({LONG_TOKENS} tokens ~1 ms apart); ratio {:.2}, budget last ≤ 1.5 × first",
                cpu.deltas,
                cpu.chars,
                cpu.last_us / cpu.first_us
            ),
            verdict(cpu.last_us <= 1.5 * cpu.first_us),
        ),
        Err(err) => not(CPU, err),
    };
    let concurrent = match &replies.concurrent_ms {
        Ok(ms) => (
            CONCURRENT,
            format!("{:.1} / {:.1}", percentile(ms, 0.5), percentile(ms, 0.99)),
            format!(
                "{} tokens of {TURNS_AT_ONCE} users' turns (100 tokens 20 ms apart each); budget p50 ≤ 10, p99 ≤ 30",
                ms.len()
            ),
            verdict(percentile(ms, 0.5) <= 10.0 && percentile(ms, 0.99) <= 30.0),
        ),
        Err(err) => not(CONCURRENT, err),
    };
    vec![cpu, concurrent]
}

pub fn report(replies: &Replies) -> Value {
    json!({
        "long_reply_cpu_us_per_delta": replies.cpu.as_ref().ok().map(|c| json!({
            "deltas": c.deltas, "chars": c.chars, "first_10pct": c.first_us, "last_10pct": c.last_us,
        })),
        "token_to_delta_64_turns_ms": replies.concurrent_ms.as_ref().ok().map(Vec::as_slice).map(live::summary),
    })
}

/// Sends `content` in `conversation` (the turn's reply streams to the user's event stream).
async fn send(server: &Server, token: &str, conversation: &str, content: &str) -> Result<()> {
    server
        .http
        .post(format!(
            "{}/api/chat/conversations/{conversation}/messages",
            server.base
        ))
        .bearer_auth(token)
        .json(&json!({ "content": content }))
        .send()
        .await?
        .error_for_status()?;
    Ok(())
}
