//! The real server binary as a separate process (the release build when `CHATKIT_SERVER_BIN`
//! names it, as `scripts/test.sh` does), for crash, restart and replica tests.
#![allow(dead_code)]

use std::{
    process::{Child, Command, Stdio},
    sync::atomic::{AtomicU32, Ordering},
    time::{Duration, Instant},
};

use sqlx::PgPool;

pub struct ServerProcess {
    child: Child,
    pub url: String,
    pub log: std::path::PathBuf,
}

/// The URL of the per-test database behind `pool` (created by `#[sqlx::test]`).
pub fn database_url(pool: &PgPool) -> String {
    let base = std::env::var("DATABASE_URL").expect("DATABASE_URL");
    let database = pool
        .connect_options()
        .get_database()
        .expect("a named database")
        .to_string();
    let server = base.rsplit_once('/').map(|(s, _)| s).unwrap_or(&base);
    format!("{server}/{database}")
}

/// A log file name no other server of this test run has.
fn new_log_path() -> std::path::PathBuf {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    std::env::temp_dir().join(format!("chatkit-server-{}-{n}.log", std::process::id()))
}

/// The port in the server's "listening on http://127.0.0.1:<port>" line, once it is there.
fn bound_port(log: &str) -> Option<u16> {
    let (_, rest) = log.split_once("listening on http://127.0.0.1:")?;
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

impl ServerProcess {
    /// Starts the server over `database_url`, with `env` on top of test defaults, and waits
    /// until it answers `/healthz`. The server binds port 0 and logs the port the kernel gave
    /// it: a port picked here and bound there later could be taken in between by another
    /// test's process (HAProxy binds with SO_REUSEPORT and would then answer in its place).
    pub async fn start(database_url: &str, env: &[(&str, String)]) -> Self {
        let bin = std::env::var("CHATKIT_SERVER_BIN")
            .unwrap_or_else(|_| env!("CARGO_BIN_EXE_chatkit").to_string());
        let log = new_log_path();
        let log_file = std::fs::File::create(&log).expect("log file");
        let mut command = Command::new(bin);
        command
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("ADDR", "127.0.0.1:0")
            .env("DATABASE_URL", database_url)
            .env("JWT_SECRET", "process-test-secret-process-test-secret!!")
            .env(
                "DATA_DIR",
                std::env::temp_dir().join("chatkit-process-tests"),
            )
            .env("AUTH_RATE_PER_MINUTE_IP", "1000")
            .env("AUTH_RATE_PER_MINUTE_EMAIL", "1000")
            .env("SEND_RATE_PER_MINUTE", "1000")
            .env("RUST_LOG", "info,sqlx=warn")
            .env("NO_COLOR", "1")
            .stdout(Stdio::from(log_file.try_clone().expect("log")))
            .stderr(Stdio::from(log_file));
        for (key, value) in env {
            command.env(key, value);
        }
        let mut child = command.spawn().expect("start the server binary");
        let deadline = Instant::now() + Duration::from_secs(30);
        let output = || std::fs::read_to_string(&log).unwrap_or_default();
        let port = loop {
            if let Some(port) = bound_port(&output()) {
                break port;
            }
            if let Ok(Some(status)) = child.try_wait() {
                panic!("the server exited ({status}): {}", output());
            }
            assert!(
                Instant::now() < deadline,
                "the server did not start: {}",
                output()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        let server = Self {
            child,
            url: format!("http://127.0.0.1:{port}"),
            log: log.clone(),
        };
        let http = reqwest::Client::new();
        loop {
            if let Ok(res) = http.get(format!("{}/healthz", server.url)).send().await {
                if res.status().is_success() {
                    return server;
                }
            }
            assert!(
                Instant::now() < deadline,
                "the server did not start: {}",
                output()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// SIGKILL: no shutdown code runs, as in a crash, an OOM kill or a lost machine.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGSTOP: the process freezes (every thread, its timers too), as under a long GC-like
    /// pause, a suspended VM or a debugger.
    pub fn freeze(&self) {
        self.signal("-STOP");
    }

    /// SIGCONT: a frozen process runs on from where it stopped.
    pub fn thaw(&self) {
        self.signal("-CONT");
    }

    fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .arg(signal)
            .arg(self.child.id().to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill {signal}");
    }

    /// The process's resident memory now (VmRSS), in kB.
    pub fn rss_kb(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn at(&self, path: &str) -> String {
        format!("{}{}", self.url, path)
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        self.kill();
    }
}
