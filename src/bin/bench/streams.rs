//! What open event streams cost when each is a different user's (a user's fan-out state exists
//! only while one of its streams is open, so this is the expensive case): 10,000 idle streams
//! of 10,000 users (server memory per stream, database queries per stream), and 2,000 users
//! opening and closing one stream each (the memory must come back).
//!
//! The users are created in bulk in the database, each with a live session, and their tokens
//! signed here with the server's key (`setup::JWT_SECRET`): registering 12,000 users through
//! the API would hash 12,000 passwords.

use std::time::Duration;

use anyhow::{anyhow, bail, Result};
use chatkit::server::auth::JwtKeys;
use serde_json::{json, Value};
use sqlx::{Connection, PgConnection};
use uuid::Uuid;

use super::{
    live::open_stream,
    setup::{rss_kb, Server, JWT_SECRET},
    verdict, Row,
};

/// Idle streams, one per user.
const IDLE_USERS: usize = 10_000;
/// Users that open and close one stream each.
const CHURN_USERS: usize = 2_000;
/// Descriptors a process needs besides the streams (pools, pooled connections, files).
const FD_MARGIN: u64 = 2_048;
/// How long idle streams are watched (and, before they open, the server without them).
const WINDOW: Duration = Duration::from_secs(20);
/// Statistics reach `pg_stat_database` lazily (up to 10 s after a backend goes idle).
const STATS_LAG: Duration = Duration::from_secs(12);
/// More transactions in `WINDOW` with the streams than without that still count as none per
/// stream: the server's timers (the turn sweeper every 2 s) and the statistics' flushes land a
/// few more or less in a window, while even one query per stream per minute would add 3,000.
const NOISE: i64 = 10;
/// Streams opened at once.
const OPEN_AT_ONCE: usize = 500;

/// Creates `n` users (emails `<prefix><i>@streams.example`) with a live session each, and
/// returns their tokens.
pub async fn mint_users(db_url: &str, prefix: &str, n: usize) -> Result<Vec<String>> {
    let mut conn = PgConnection::connect(db_url).await?;
    let sessions: Vec<(Uuid, Uuid)> = sqlx::query_as(
        "WITH u AS (
             INSERT INTO users (id, email, password_hash)
             SELECT gen_random_uuid(), $1 || i || '@streams.example', 'no password'
             FROM generate_series(1, $2) i
             RETURNING id)
         INSERT INTO sessions (id, user_id, expires_at)
         SELECT gen_random_uuid(), id, now() + interval '1 day' FROM u
         RETURNING user_id, id",
    )
    .bind(prefix)
    .bind(n as i32)
    .fetch_all(&mut conn)
    .await?;
    let keys = JwtKeys::new(JWT_SECRET.as_bytes(), Duration::from_secs(86_400));
    sessions
        .into_iter()
        .map(|(user, session)| {
            keys.issue(user, session)
                .map_err(|err| anyhow!("signing a token: {err}"))
        })
        .collect()
}

/// One stream per token, `OPEN_AT_ONCE` at a time; each response is in (the server has
/// registered the stream) when this returns.
async fn open_all(
    http: &reqwest::Client,
    base: &str,
    tokens: &[String],
) -> Result<Vec<reqwest::Response>> {
    let mut streams = Vec::with_capacity(tokens.len());
    for chunk in tokens.chunks(OPEN_AT_ONCE) {
        let opened =
            futures::future::join_all(chunk.iter().map(|token| open_stream(http, base, token)))
                .await;
        for stream in opened {
            streams.push(stream?);
        }
    }
    Ok(streams)
}

/// Transactions this database has committed or rolled back, as the statistics say now.
async fn transactions(conn: &mut PgConnection) -> Result<i64> {
    sqlx::query("SELECT pg_stat_clear_snapshot()")
        .execute(&mut *conn)
        .await?;
    Ok(sqlx::query_scalar(
        "SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = current_database()",
    )
    .fetch_one(&mut *conn)
    .await?)
}

/// Transactions over the next `WINDOW`.
async fn transactions_over_window(conn: &mut PgConnection) -> Result<i64> {
    let before = transactions(conn).await?;
    tokio::time::sleep(WINDOW).await;
    Ok(transactions(conn).await? - before)
}

pub struct IdleCost {
    pub streams: usize,
    pub rss_before_kb: u64,
    pub rss_with_kb: u64,
    /// Transactions in `WINDOW` before the streams opened, and with them open.
    pub without: i64,
    pub with: i64,
}

impl IdleCost {
    pub fn kb_per_stream(&self) -> f64 {
        (self.rss_with_kb as f64 - self.rss_before_kb as f64) / self.streams as f64
    }

    /// Transactions the streams caused in `WINDOW` (the difference, never below 0).
    pub fn extra(&self) -> i64 {
        (self.with - self.without).max(0)
    }

    pub fn queries_per_second_per_stream(&self) -> f64 {
        self.extra() as f64 / WINDOW.as_secs_f64() / self.streams as f64
    }
}

/// The server's memory and the database's transactions without streams, then with one idle
/// stream per token.
async fn idle(server: &Server, db_url: &str, tokens: &[String]) -> Result<IdleCost> {
    let mut conn = PgConnection::connect(db_url).await?;
    tokio::time::sleep(STATS_LAG).await;
    let without = transactions_over_window(&mut conn).await?;
    let rss_before_kb = rss_kb(server.pid);
    // One client: each open response holds a connection of its own, as browsers hold them.
    let http = reqwest::Client::builder().build()?;
    let streams = open_all(&http, &server.base, tokens).await?;
    tokio::time::sleep(STATS_LAG).await;
    let with = transactions_over_window(&mut conn).await?;
    let rss_with_kb = rss_kb(server.pid);
    let count = streams.len();
    drop(streams);
    Ok(IdleCost {
        streams: count,
        rss_before_kb,
        rss_with_kb,
        without,
        with,
    })
}

/// Two rounds of different users: the first sizes the allocator (which keeps the pages of its
/// peak for reuse rather than handing them back), the second shows whether anything stays
/// per user who came and went (with per-user state kept forever, it grows again).
pub struct Churn {
    pub users: usize,
    /// RSS before the first round.
    pub rss_start_kb: u64,
    /// RSS before and after the second round.
    pub rss_before_kb: u64,
    pub rss_after_kb: u64,
}

impl Churn {
    pub fn growth_kb(&self) -> i64 {
        self.rss_after_kb as i64 - self.rss_before_kb as i64
    }
}

/// One stream per token opened, then all closed; the number of streams.
async fn open_and_close(server: &Server, tokens: &[String]) -> Result<usize> {
    let http = reqwest::Client::builder().build()?;
    let streams = open_all(&http, &server.base, tokens).await?;
    let users = streams.len();
    // Dropping an unfinished response closes its connection; the server then drops the
    // stream, and with the user's last stream the user's fan-out state.
    drop(streams);
    drop(http);
    tokio::time::sleep(Duration::from_secs(2)).await;
    Ok(users)
}

/// Two rounds (see `Churn`); the server's memory before each and 2 s after the second.
async fn churn(server: &Server, tokens: &[String]) -> Result<Churn> {
    let (first, second) = tokens.split_at(tokens.len() / 2);
    let rss_start_kb = rss_kb(server.pid);
    open_and_close(server, first).await?;
    let rss_before_kb = rss_kb(server.pid);
    let users = open_and_close(server, second).await?;
    Ok(Churn {
        users,
        rss_start_kb,
        rss_before_kb,
        rss_after_kb: rss_kb(server.pid),
    })
}

pub struct StreamCosts {
    pub churn: Churn,
    pub idle: IdleCost,
}

/// Both measures, on users of their own (churn first: its users are new to the server).
/// `fd_limit`: this process's open-file limit, which the server inherited.
pub async fn measure(server: &Server, db_url: &str, fd_limit: u64) -> Result<StreamCosts> {
    let needed = IDLE_USERS as u64 + FD_MARGIN;
    if fd_limit < needed {
        bail!(
            "the open-file limit is {fd_limit}; {} streams need {needed} \
             (raise the hard limit, `ulimit -Hn`, before scripts/bench.sh)",
            IDLE_USERS
        );
    }
    let churn_tokens = mint_users(db_url, "churn", 2 * CHURN_USERS).await?;
    let idle_tokens = mint_users(db_url, "idle", IDLE_USERS).await?;
    // Vacuumed and analysed now, so that autovacuum does not take up these tables (12,000 rows
    // more each) in a measured window.
    let mut conn = PgConnection::connect(db_url).await?;
    sqlx::raw_sql("VACUUM ANALYZE users, sessions")
        .execute(&mut conn)
        .await?;
    eprintln!(
        "[bench] {} users open and close one event stream each",
        CHURN_USERS
    );
    let churn = churn(server, &churn_tokens).await?;
    eprintln!("[bench] {} idle event streams of as many users", IDLE_USERS);
    let idle = idle(server, db_url, &idle_tokens).await?;
    Ok(StreamCosts { churn, idle })
}

pub fn rows(costs: &Result<StreamCosts>) -> Vec<Row> {
    const IDLE: &str = "10,000 idle event streams of 10,000 distinct users: server RSS KB per stream; DB queries per s per stream";
    const CHURN: &str =
        "2,000 distinct users open and close one stream each: server RSS before / after MB";
    let costs = match costs {
        Ok(costs) => costs,
        Err(err) => {
            let not = |name: &'static str| -> Row {
                (
                    name,
                    "not measured".to_string(),
                    format!("{err:#}"),
                    "NOT measured",
                )
            };
            return vec![not(IDLE), not(CHURN)];
        }
    };
    let (idle, churn) = (&costs.idle, &costs.churn);
    let mb = |kb: u64| kb as f64 / 1024.0;
    vec![
        (
            IDLE,
            format!(
                "{:.1}; {:.6}",
                idle.kb_per_stream(),
                idle.queries_per_second_per_stream()
            ),
            format!(
                "{} streams; RSS {:.1} → {:.1} MB; {} DB transactions in {} s with them, {} without (the turn sweeper's); budget ≤ 12 KB, 0 queries (within {NOISE} transactions)",
                idle.streams,
                mb(idle.rss_before_kb),
                mb(idle.rss_with_kb),
                idle.with,
                WINDOW.as_secs(),
                idle.without
            ),
            verdict(idle.kb_per_stream() <= 12.0 && idle.with - idle.without <= NOISE),
        ),
        (
            CHURN,
            format!("{:.1} / {:.1}", mb(churn.rss_before_kb), mb(churn.rss_after_kb)),
            format!(
                "{} users, after {} others came and went ({:.1} → {:.1} MB: the allocator keeps its peak); {:+} KB 2 s after the last close; budget within 5 MB",
                churn.users,
                churn.users,
                mb(churn.rss_start_kb),
                mb(churn.rss_before_kb),
                churn.growth_kb()
            ),
            verdict(churn.growth_kb() <= 5 * 1024),
        ),
    ]
}

pub fn report(costs: &Result<StreamCosts>) -> Value {
    let Ok(costs) = costs else {
        return json!({ "idle_streams": null, "stream_churn": null });
    };
    let (idle, churn) = (&costs.idle, &costs.churn);
    json!({
        "idle_streams": {
            "streams": idle.streams,
            "distinct_users": true,
            "rss_before_mb": idle.rss_before_kb as f64 / 1024.0,
            "rss_mb": idle.rss_with_kb as f64 / 1024.0,
            "kb_per_stream": idle.kb_per_stream(),
            "window_secs": WINDOW.as_secs(),
            "transactions_without_streams": idle.without,
            "transactions_with_streams": idle.with,
            "queries_per_second_per_stream": idle.queries_per_second_per_stream(),
        },
        "stream_churn": {
            "users": churn.users,
            "rss_before_mb": churn.rss_before_kb as f64 / 1024.0,
            "rss_after_mb": churn.rss_after_kb as f64 / 1024.0,
            "growth_kb": churn.growth_kb(),
        },
    })
}
