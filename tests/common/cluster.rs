//! Several replicas behind a real load balancer (HAProxy, round-robin, no stickiness), and a
//! NATS server of a test's own, as separate processes.
#![allow(dead_code)]

use std::{
    net::TcpListener,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use super::process::ServerProcess;

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn haproxy_bin() -> String {
    ["/usr/sbin/haproxy", "/usr/bin/haproxy"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
        .unwrap_or("haproxy")
        .to_string()
}

/// HAProxy in front of `backends`: round-robin, health-checked on `/readyz` every 250 ms, a
/// request that cannot reach a replica is sent to another.
pub struct Balancer {
    child: Child,
    pub url: String,
    config: std::path::PathBuf,
}

impl Balancer {
    /// HAProxy in front of `backends`. It binds without SO_REUSEPORT, so a port another
    /// process took since `free_port` chose it makes HAProxy exit (and another port is tried)
    /// instead of sharing the port with, say, another test's balancer.
    pub async fn start(backends: &[&ServerProcess]) -> Self {
        for _ in 0..5 {
            if let Some(balancer) = Self::try_start(backends).await {
                return balancer;
            }
        }
        panic!("HAProxy did not come up on any of 5 ports");
    }

    async fn try_start(backends: &[&ServerProcess]) -> Option<Self> {
        let port = free_port();
        let servers: String = backends
            .iter()
            .enumerate()
            .map(|(i, b)| {
                format!(
                    "    server r{i} {} check\n",
                    b.url.trim_start_matches("http://")
                )
            })
            .collect();
        let config = format!(
            "global\n    maxconn 4000\n    noreuseport\n\
             defaults\n    mode http\n    timeout connect 1s\n    timeout client 120s\n    \
             timeout server 120s\n    timeout tunnel 1h\n    option redispatch\n    retries 3\n\
             frontend web\n    bind 127.0.0.1:{port}\n    default_backend replicas\n\
             backend replicas\n    balance roundrobin\n    option httpchk GET /readyz\n    \
             default-server inter 250ms fall 2 rise 1\n{servers}"
        );
        let path = std::env::temp_dir().join(format!("chatkit-haproxy-{port}.cfg"));
        std::fs::write(&path, config).expect("haproxy config");
        let log =
            std::fs::File::create(std::env::temp_dir().join(format!("chatkit-haproxy-{port}.log")))
                .expect("haproxy log");
        let child = Command::new(haproxy_bin())
            .arg("-f")
            .arg(&path)
            .arg("-db")
            .stdout(Stdio::from(log.try_clone().expect("log")))
            .stderr(Stdio::from(log))
            .spawn()
            .expect("start HAProxy (scripts/setup.sh --test installs it)");
        let mut balancer = Self {
            child,
            url: format!("http://127.0.0.1:{port}"),
            config: path,
        };
        let http = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(10);
        // Every replica up (round-robin sends each of these to the next one).
        let mut ok = 0;
        while ok < backends.len() * 2 {
            if let Ok(Some(_)) = balancer.child.try_wait() {
                return None; // the port was taken
            }
            match http.get(balancer.at("/readyz")).send().await {
                Ok(res) if res.status().is_success() => ok += 1,
                _ => {
                    assert!(Instant::now() < deadline, "HAProxy did not come up");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
        // Answers from another listener on a port HAProxy could not bind are not ours.
        match balancer.child.try_wait() {
            Ok(None) => Some(balancer),
            _ => None,
        }
    }

    pub fn at(&self, path: &str) -> String {
        format!("{}{}", self.url, path)
    }
}

impl Drop for Balancer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.config);
    }
}

/// A NATS server of the test's own on a private port, which the test can stop and start.
pub struct Nats {
    child: Option<Child>,
    pub port: u16,
}

impl Nats {
    pub async fn start() -> Self {
        let mut nats = Self {
            child: None,
            port: free_port(),
        };
        nats.resume().await;
        nats
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Kills the server (its clients see the connection drop).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port.
    pub async fn resume(&mut self) {
        let bin = ["/usr/sbin/nats-server", "/usr/bin/nats-server"]
            .into_iter()
            .find(|p| std::path::Path::new(p).exists())
            .unwrap_or("nats-server");
        let child = Command::new(bin)
            .args(["-a", "127.0.0.1", "-p", &self.port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start nats-server");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "nats-server did not start");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Nats {
    fn drop(&mut self) {
        self.stop();
    }
}

/// What a replica's `/readyz` says (its replica id and its event bus state).
pub async fn readyz(server: &ServerProcess) -> String {
    match reqwest::get(server.at("/readyz")).await {
        Ok(res) => res.text().await.unwrap_or_default(),
        Err(_) => String::new(),
    }
}

/// Waits until every server's `/readyz` contains `words`.
pub async fn wait_until_ready_says(servers: &[&ServerProcess], words: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    for server in servers {
        loop {
            let said = readyz(server).await;
            if said.contains(words) {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "/readyz never said {words:?}: {said:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}
