//! Settings from the environment (and `.env`), each with a default. The README lists them all.

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use anyhow::{bail, Context};

/// Not `Debug`-derived: it holds the JWT secret and the model API key (see the manual
/// `Debug` below, which redacts them).
#[derive(Clone)]
pub struct Config {
    /// `ADDR`: where the server listens.
    pub addr: SocketAddr,
    /// `DATABASE_URL`: when unset, see `db::connect`.
    pub database_url: Option<String>,
    /// `DATA_DIR`: the generated JWT secret and the private Postgres cluster live here.
    pub data_dir: PathBuf,
    /// `JWT_SECRET` (≥ 32 bytes); generated once into `DATA_DIR` when unset.
    pub jwt_secret: Option<String>,
    /// `JWT_TTL_HOURS`: session length.
    pub jwt_ttl: Duration,
    /// `COOKIE_SECURE`: mark the session cookie `Secure` (set it behind https).
    pub cookie_secure: bool,
    /// `CORS_ALLOWED_ORIGINS`: comma-separated extra origins allowed with credentials.
    pub allowed_origins: Vec<String>,
    /// `EVENT_BUS_URL`: `nats://host:port` to carry live events and stop requests on NATS;
    /// unset, they go through Postgres LISTEN/NOTIFY.
    pub event_bus_url: Option<String>,
    /// `MCP_ALLOWED_HOSTS`: extra `Host` values the MCP endpoint accepts (loopback and `ADDR` always).
    pub mcp_allowed_hosts: Vec<String>,
    /// `TRUSTED_PROXIES`: comma-separated addresses or CIDR ranges of reverse proxies whose
    /// `X-Forwarded-For` is believed (the client is the nearest address not in this list).
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// `WRITE_RATE_PER_MINUTE`: REST writes and MCP requests per user.
    pub write_rate_per_user: u32,
    /// `REQUEST_TIMEOUT_SECS`: longest a request may take before its response starts (408).
    pub request_timeout: Duration,
    /// `AUTH_RATE_PER_MINUTE_IP` / `AUTH_RATE_PER_MINUTE_EMAIL`: login/register attempts per
    /// IP, and per IP and email together (so nobody can lock someone else's account out).
    pub auth_rate_per_ip: u32,
    pub auth_rate_per_email: u32,
    /// `SEND_RATE_PER_MINUTE`: chat messages per user.
    pub send_rate_per_user: u32,
    /// `DB_MAX_CONNECTIONS`: pool size.
    pub db_max_connections: u32,
    /// `TURNS_PER_USER`: a user's agent turns running or queued at once (beyond: 429).
    pub turns_per_user: usize,
    /// `MAX_STREAMS_PER_USER`: a user's open event streams on one replica (beyond: 429).
    pub streams_per_user: usize,
    /// `LIVE_STREAM_QUEUE`: events waiting for a stream that does not read before it is
    /// dropped (its client reconnects with `Last-Event-ID` and loses nothing).
    pub live_stream_queue: usize,
    /// `TURN_LEASE_SECS`: how long a turn's owner may go without renewing its lease before
    /// another replica takes the turn over.
    pub turn_lease: Duration,
    /// `TURN_SWEEP_SECS`: how often each replica looks for turns whose lease expired.
    pub turn_sweep: Duration,
    /// `TURN_MAX_ATTEMPTS`: starts of one turn (first run plus takeovers) before it ends as an
    /// error reply.
    pub turn_max_attempts: i32,
    /// `OPENAI_API_KEY`: selects the OpenAI path; unset means the offline assistant.
    pub openai_api_key: Option<String>,
    /// `OPENAI_BASE_URL`: any OpenAI-compatible server.
    pub openai_base_url: String,
    /// `OPENAI_MODEL`.
    pub openai_model: String,
    /// `MODEL_TIMEOUT_SECS`: per model call.
    pub model_timeout: Duration,
    /// `MODEL_MAX_RETRIES`: for 429 and 5xx answers.
    pub model_max_retries: u32,
    /// `OFFLINE_THINK_MS`: a pause before each answer of the offline assistant, so that its
    /// progress ("Using add_task…") can be watched in demos and the browser tests.
    pub offline_think_time: Duration,
    /// `AGENT_HISTORY_LIMIT`: messages of history sent to the model per turn.
    pub history_limit: i64,
    /// `SHUTDOWN_GRACE_SECS`: how long in-flight requests and turns get on shutdown.
    pub shutdown_grace: Duration,
    /// `LEPTOS_SITE_ROOT`: where cargo-leptos put the compiled site.
    pub site_root: String,
    /// `CLOCK_AT` (RFC 3339): a test hook that stops the clock the task views and due dates
    /// read at this instant ("today" in the user's zone). Unset: the real clock.
    pub clock: Clock,
}

/// The clock task views, due dates and repeats read: the real one, or stopped at an instant.
#[derive(Clone, Copy, Debug, Default)]
pub struct Clock(pub Option<chrono::DateTime<chrono::Utc>>);

impl Clock {
    pub fn now(&self) -> chrono::DateTime<chrono::Utc> {
        self.0.unwrap_or_else(chrono::Utc::now)
    }
}

impl Config {
    /// Now, as the task views and due dates see it (see `clock`).
    pub fn now(&self) -> chrono::DateTime<chrono::Utc> {
        self.clock.now()
    }
}

impl Config {
    /// Whether `origin` (e.g. `https://app.example.com`) is one of `CORS_ALLOWED_ORIGINS`.
    pub fn allows_origin(&self, origin: &str) -> bool {
        let origin = origin.trim_end_matches('/');
        self.allowed_origins
            .iter()
            .any(|allowed| allowed.eq_ignore_ascii_case(origin))
    }

    /// Reads `.env` (if present) and the environment.
    pub fn from_env() -> anyhow::Result<Self> {
        let _ = dotenvy::dotenv();
        let get = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        fn num<T: std::str::FromStr>(
            name: &str,
            value: Option<String>,
            default: T,
        ) -> anyhow::Result<T> {
            match value {
                None => Ok(default),
                Some(v) => v
                    .trim()
                    .parse()
                    .map_err(|_| anyhow::anyhow!("{name} must be a number, got {v:?}")),
            }
        }
        let list = |name: &str| -> Vec<String> {
            get(name)
                .map(|v| {
                    v.split(',')
                        .map(|s| s.trim().trim_end_matches('/').to_string())
                        .filter(|s| !s.is_empty())
                        .collect()
                })
                .unwrap_or_default()
        };

        let addr: SocketAddr = get("ADDR")
            .or_else(|| get("LEPTOS_SITE_ADDR"))
            .unwrap_or_else(|| "127.0.0.1:3000".into())
            .parse()
            .context("ADDR must look like 127.0.0.1:3000")?;
        let jwt_secret = get("JWT_SECRET");
        if let Some(secret) = &jwt_secret {
            if secret.len() < 32 {
                bail!("JWT_SECRET must be at least 32 bytes long");
            }
        }
        Ok(Self {
            addr,
            database_url: get("DATABASE_URL"),
            data_dir: get("DATA_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from(".data")),
            jwt_secret,
            jwt_ttl: Duration::from_secs(
                3600 * num("JWT_TTL_HOURS", get("JWT_TTL_HOURS"), 24 * 7)?,
            ),
            clock: Clock(
                get("CLOCK_AT")
                    .map(|v| {
                        chrono::DateTime::parse_from_rfc3339(v.trim())
                            .map(|t| t.with_timezone(&chrono::Utc))
                            .map_err(|_| {
                                anyhow::anyhow!("CLOCK_AT must be an RFC 3339 instant, got {v:?}")
                            })
                    })
                    .transpose()?,
            ),
            cookie_secure: matches!(get("COOKIE_SECURE").as_deref(), Some("1" | "true" | "yes")),
            allowed_origins: list("CORS_ALLOWED_ORIGINS"),
            event_bus_url: get("EVENT_BUS_URL").filter(|url| !url.trim().is_empty()),
            trusted_proxies: list("TRUSTED_PROXIES")
                .iter()
                .map(|p| {
                    p.parse::<ipnet::IpNet>()
                        .or_else(|_| p.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                        .map_err(|_| {
                            anyhow::anyhow!(
                                "TRUSTED_PROXIES: {p:?} is not an address or CIDR range"
                            )
                        })
                })
                .collect::<anyhow::Result<_>>()?,
            write_rate_per_user: num("WRITE_RATE_PER_MINUTE", get("WRITE_RATE_PER_MINUTE"), 120)?,
            request_timeout: Duration::from_secs(num(
                "REQUEST_TIMEOUT_SECS",
                get("REQUEST_TIMEOUT_SECS"),
                120,
            )?),
            mcp_allowed_hosts: list("MCP_ALLOWED_HOSTS"),
            auth_rate_per_ip: num(
                "AUTH_RATE_PER_MINUTE_IP",
                get("AUTH_RATE_PER_MINUTE_IP"),
                30,
            )?,
            auth_rate_per_email: num(
                "AUTH_RATE_PER_MINUTE_EMAIL",
                get("AUTH_RATE_PER_MINUTE_EMAIL"),
                10,
            )?,
            send_rate_per_user: num("SEND_RATE_PER_MINUTE", get("SEND_RATE_PER_MINUTE"), 30)?,
            db_max_connections: num("DB_MAX_CONNECTIONS", get("DB_MAX_CONNECTIONS"), 16)?,
            turns_per_user: num("TURNS_PER_USER", get("TURNS_PER_USER"), 3)?,
            streams_per_user: num("MAX_STREAMS_PER_USER", get("MAX_STREAMS_PER_USER"), 20)?,
            live_stream_queue: num("LIVE_STREAM_QUEUE", get("LIVE_STREAM_QUEUE"), 256)?,
            turn_lease: Duration::from_secs(num("TURN_LEASE_SECS", get("TURN_LEASE_SECS"), 10)?),
            turn_sweep: Duration::from_secs(num("TURN_SWEEP_SECS", get("TURN_SWEEP_SECS"), 2)?),
            turn_max_attempts: num("TURN_MAX_ATTEMPTS", get("TURN_MAX_ATTEMPTS"), 3)?,
            openai_api_key: get("OPENAI_API_KEY"),
            openai_base_url: get("OPENAI_BASE_URL")
                .unwrap_or_else(|| "https://api.openai.com/v1".into()),
            openai_model: get("OPENAI_MODEL").unwrap_or_else(|| "gpt-4o-mini".into()),
            model_timeout: Duration::from_secs(num(
                "MODEL_TIMEOUT_SECS",
                get("MODEL_TIMEOUT_SECS"),
                30,
            )?),
            model_max_retries: num("MODEL_MAX_RETRIES", get("MODEL_MAX_RETRIES"), 3)?,
            offline_think_time: Duration::from_millis(num(
                "OFFLINE_THINK_MS",
                get("OFFLINE_THINK_MS"),
                0,
            )?),
            history_limit: num("AGENT_HISTORY_LIMIT", get("AGENT_HISTORY_LIMIT"), 50)?,
            shutdown_grace: Duration::from_secs(num(
                "SHUTDOWN_GRACE_SECS",
                get("SHUTDOWN_GRACE_SECS"),
                40,
            )?),
            site_root: get("LEPTOS_SITE_ROOT").unwrap_or_else(|| "target/site".into()),
        })
    }

    /// Defaults for tests: nothing read from the environment but the database.
    pub fn for_tests() -> Self {
        Self {
            addr: "127.0.0.1:0".parse().expect("static address"),
            database_url: None,
            data_dir: std::env::temp_dir().join("chatkit-tests"),
            jwt_secret: Some("test-secret-test-secret-test-secret-0123".into()),
            jwt_ttl: Duration::from_secs(3600),
            cookie_secure: false,
            allowed_origins: vec![],
            event_bus_url: None,
            trusted_proxies: vec![],
            write_rate_per_user: 10_000,
            request_timeout: Duration::from_secs(120),
            mcp_allowed_hosts: vec![],
            auth_rate_per_ip: 1000,
            auth_rate_per_email: 1000,
            send_rate_per_user: 1000,
            db_max_connections: 8,
            turns_per_user: 3,
            streams_per_user: 20,
            live_stream_queue: 256,
            turn_lease: Duration::from_secs(10),
            turn_sweep: Duration::from_secs(2),
            turn_max_attempts: 3,
            openai_api_key: None,
            openai_base_url: "http://127.0.0.1:9/v1".into(),
            openai_model: "test-model".into(),
            model_timeout: Duration::from_secs(5),
            model_max_retries: 2,
            offline_think_time: Duration::ZERO,
            history_limit: 50,
            shutdown_grace: Duration::from_secs(5),
            site_root: "target/site".into(),
            clock: Clock::default(),
        }
    }

    pub fn offline_assistant(&self) -> bool {
        self.openai_api_key.is_none()
    }
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let redacted = |set: bool| if set { "<set>" } else { "<unset>" };
        f.debug_struct("Config")
            .field("addr", &self.addr)
            .field("database_url", &self.database_url.as_ref().map(|_| "<set>"))
            .field("data_dir", &self.data_dir)
            .field("jwt_secret", &redacted(self.jwt_secret.is_some()))
            .field("openai_api_key", &redacted(self.openai_api_key.is_some()))
            .field("openai_base_url", &self.openai_base_url)
            .field("openai_model", &self.openai_model)
            .field("trusted_proxies", &self.trusted_proxies)
            .finish_non_exhaustive()
    }
}
