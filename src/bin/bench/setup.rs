//! Setting a run up: the options, a fresh database, the release server on it (this process's
//! open-file limit raised first: the server inherits it, and both ends hold 10,000 streams),
//! and the benchmark user with its seeded data.

use std::{
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};
use sqlx::{Connection, PgConnection};
use uuid::Uuid;

const BENCH_DB: &str = "chatkit_bench";
pub const PORT: u16 = 3300;
/// The server's signing key, so that this process can sign tokens for the sessions it creates
/// in bulk (`streams::mint_users`).
pub const JWT_SECRET: &str = "bench-jwt-secret-bench-jwt-secret-bench-jwt";

pub struct Options {
    pub admin_url: String,
    pub duration: Duration,
    pub concurrency: usize,
    pub server_bin: PathBuf,
    pub site_root: PathBuf,
    pub out: PathBuf,
}

impl Options {
    pub fn from_env() -> Self {
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

/// "2 cores, <CPU model>".
pub fn machine() -> String {
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_default();
    format!("{cores} cores, {model}")
}

/// Raises this process's soft open-file limit to its hard limit and returns the limit now.
/// Processes started afterwards (the servers) inherit it.
pub fn raise_fd_limit() -> u64 {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit only read and write the struct passed to them.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return 0;
        }
        // An unlimited hard limit still stops at the kernel's nr_open (1,048,576 by default).
        let wanted = limit.rlim_max.min(1 << 20);
        if limit.rlim_cur < wanted {
            let raised = libc::rlimit {
                rlim_cur: wanted,
                rlim_max: limit.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                limit.rlim_cur = wanted;
            }
        }
    }
    limit.rlim_cur
}

/// Drops and recreates the benchmark database; returns its URL.
pub async fn fresh_database(admin_url: &str) -> Result<String> {
    let mut admin = PgConnection::connect(admin_url)
        .await
        .context("connecting to PostgreSQL (set PG_ADMIN_URL)")?;
    sqlx::query(&format!("DROP DATABASE IF EXISTS {BENCH_DB} WITH (FORCE)"))
        .execute(&mut admin)
        .await?;
    sqlx::query(&format!("CREATE DATABASE {BENCH_DB}"))
        .execute(&mut admin)
        .await?;
    Ok(format!(
        "{}/{BENCH_DB}",
        admin_url
            .rsplit_once('/')
            .map_or(admin_url, |(base, _)| base)
    ))
}

/// The release server under test, stopped (SIGTERM) when dropped.
pub struct Server {
    child: Child,
    pub pid: u32,
    pub base: String,
    /// A pooled client for the ordinary requests.
    pub http: reqwest::Client,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
    }
}

/// Starts the server on `db_url` with the mock model at `model_url`, and waits until it is ready.
pub async fn start_server(opts: &Options, db_url: &str, model_url: &str) -> Result<Server> {
    let data_dir = std::env::temp_dir().join("chatkit-bench");
    let child = Command::new(&opts.server_bin)
        .env("ADDR", format!("127.0.0.1:{PORT}"))
        .env("DATABASE_URL", db_url)
        .env("DATA_DIR", &data_dir)
        .env("JWT_SECRET", JWT_SECRET)
        .env("LEPTOS_SITE_ROOT", &opts.site_root)
        .env("OPENAI_API_KEY", "bench")
        .env("OPENAI_BASE_URL", model_url)
        .env("AUTH_RATE_PER_MINUTE_IP", "100000")
        .env("SEND_RATE_PER_MINUTE", "100000")
        .env("WRITE_RATE_PER_MINUTE", "100000")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()
        .context("starting the server")?;
    let server = Server {
        pid: child.id(),
        child,
        base: format!("http://127.0.0.1:{PORT}"),
        http: reqwest::Client::builder()
            .pool_max_idle_per_host(1024)
            .build()?,
    };
    for _ in 0..150 {
        let ready = server
            .http
            .get(format!("{}/readyz", server.base))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success());
        if ready {
            return Ok(server);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    bail!("the server did not become ready")
}

/// The benchmark user and its seeded conversations.
pub struct BenchUser {
    pub id: Uuid,
    pub token: String,
    /// 100 messages.
    pub small: Uuid,
    /// 100,000 messages.
    pub big: Uuid,
}

/// Registers the benchmark user through the API (a real password hash), then seeds its data
/// and 1,000 other users' with bulk SQL.
pub async fn bench_user(server: &Server, db_url: &str) -> Result<BenchUser> {
    let session: Value = server
        .http
        .post(format!("{}/api/auth/register", server.base))
        .json(&json!({ "email": "bench@bench.example", "password": "bench-password" }))
        .send()
        .await?
        .json()
        .await?;
    let token = session["access_token"]
        .as_str()
        .context("no token")?
        .to_string();
    let id: Uuid = session["user"]["id"]
        .as_str()
        .context("no user id")?
        .parse()?;
    let mut conn = PgConnection::connect(db_url).await?;
    let hash: String = sqlx::query_scalar("SELECT password_hash FROM users WHERE id = $1")
        .bind(id)
        .fetch_one(&mut conn)
        .await?;
    let t = Instant::now();
    let (small, big) = seed(db_url, id, &hash).await?;
    eprintln!("[bench] seeded in {:.1} s", t.elapsed().as_secs_f64());
    Ok(BenchUser {
        id,
        token,
        small,
        big,
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

/// A process's resident memory in KB (0 when unreadable).
pub fn rss_kb(pid: u32) -> u64 {
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

/// A new conversation of the user behind `token`; returns its id.
pub async fn new_conversation(server: &Server, token: &str) -> Result<String> {
    let conversation: Value = server
        .http
        .post(format!("{}/api/chat/conversations", server.base))
        .bearer_auth(token)
        .json(&json!({}))
        .send()
        .await?
        .json()
        .await?;
    Ok(conversation["id"]
        .as_str()
        .context("no conversation")?
        .to_string())
}
