//! A real server on a real port over the per-test database `#[sqlx::test]` provides.
#![allow(dead_code)]

pub mod cluster;
pub mod mock_model;
pub mod process;
pub mod process_client;
pub mod sse;

use chatkit::server::{self, auth::JwtKeys, config::Config, state::AppState};
use reqwest::{Client, Response, StatusCode};
use serde_json::{json, Value};
use sqlx::PgPool;

pub struct TestApp {
    pub url: String,
    pub state: AppState,
    pub http: Client,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
}

impl TestApp {
    pub async fn spawn(pool: PgPool) -> Self {
        Self::spawn_with(pool, |_| {}).await
    }

    pub async fn spawn_with(pool: PgPool, configure: impl FnOnce(&mut Config)) -> Self {
        let mut config = Config::for_tests();
        configure(&mut config);
        let jwt = JwtKeys::from_config(&config).expect("jwt keys");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        config.addr = addr;
        let options = server::leptos_options(&config);
        let state = AppState::new(pool, config, jwt, options);
        state.start();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let app = server::router(state.clone());
        tokio::spawn(server::serve(listener, app, async move {
            let _ = rx.await;
        }));
        Self {
            url: format!("http://{addr}"),
            state,
            http: Client::new(),
            shutdown: Some(tx),
        }
    }

    /// A server whose model is `model` (a scripted OpenAI-compatible server), no retries.
    pub async fn with_model(pool: PgPool, model: &mock_model::MockModel) -> Self {
        let base = model.base_url.clone();
        Self::spawn_with(pool, move |c| {
            c.openai_api_key = Some("sk-test".into());
            c.openai_base_url = base;
            c.model_max_retries = 0;
        })
        .await
    }

    /// A JSON-RPC request to `/mcp` with `token`.
    pub async fn mcp(&self, token: &str, body: Value) -> Response {
        self.http
            .post(self.at("/mcp"))
            .bearer_auth(token)
            .header("accept", "application/json, text/event-stream")
            .json(&body)
            .send()
            .await
            .expect("MCP request")
    }

    pub fn at(&self, path: &str) -> String {
        format!("{}{}", self.url, path)
    }

    /// Registers `email` and returns its bearer token.
    pub async fn register(&self, email: &str) -> String {
        let res = self
            .http
            .post(self.at("/api/auth/register"))
            .json(&json!({ "email": email, "password": "password123" }))
            .send()
            .await
            .expect("register");
        assert_eq!(res.status(), StatusCode::CREATED, "register {email}");
        let body: Value = res.json().await.expect("json");
        body["access_token"].as_str().expect("token").to_string()
    }

    pub async fn get(&self, token: &str, path: &str) -> Response {
        self.http
            .get(self.at(path))
            .bearer_auth(token)
            .send()
            .await
            .expect("GET")
    }

    pub async fn send_json(
        &self,
        method: reqwest::Method,
        token: &str,
        path: &str,
        body: Value,
    ) -> Response {
        self.http
            .request(method, self.at(path))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .expect("request")
    }

    pub async fn post(&self, token: &str, path: &str, body: Value) -> Response {
        self.send_json(reqwest::Method::POST, token, path, body)
            .await
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        // Close the pool as a server shutdown does: the background tasks and the notification
        // listener let go of their connections, so the test database can be dropped at once.
        let pool = self.state.pool.clone();
        tokio::spawn(async move { pool.close().await });
    }
}

/// Asserts the status and the `{"detail": ...}` error shape; returns the detail.
pub async fn expect_error(res: Response, status: StatusCode) -> String {
    assert_eq!(res.status(), status, "unexpected status");
    let body: Value = res.json().await.expect("error body is JSON");
    body["detail"].as_str().expect("detail string").to_string()
}

impl TestApp {
    /// Creates a conversation and returns its id.
    pub async fn conversation(&self, token: &str) -> String {
        let res = self.post(token, "/api/chat/conversations", json!({})).await;
        assert_eq!(res.status(), StatusCode::CREATED);
        res.json::<Value>().await.unwrap()["id"]
            .as_str()
            .unwrap()
            .to_string()
    }

    /// Sends a message; returns the turn's JSON.
    pub async fn say(&self, token: &str, conversation: &str, content: &str) -> Value {
        let path = format!("/api/chat/conversations/{conversation}/messages");
        let res = self.post(token, &path, json!({ "content": content })).await;
        assert_eq!(res.status(), StatusCode::CREATED, "send {content:?}");
        res.json().await.unwrap()
    }

    /// A page of a conversation's messages over REST; `query` is e.g. `""` or `"?after=0"`.
    pub async fn messages(&self, token: &str, conversation: &str, query: &str) -> Value {
        let path = format!("/api/chat/conversations/{conversation}/messages{query}");
        let res = self.get(token, &path).await;
        assert_eq!(res.status(), StatusCode::OK, "GET {path}");
        res.json().await.unwrap()
    }

    pub async fn user_id(&self, token: &str) -> uuid::Uuid {
        let me: Value = self.get(token, "/api/auth/me").await.json().await.unwrap();
        me["id"].as_str().unwrap().parse().unwrap()
    }
}

/// The Python with the project's tools (`scripts/setup.sh --test`: the MCP SDK, openai-chatkit).
pub fn python() -> String {
    std::env::var("CHATKIT_PYTHON").unwrap_or_else(|_| {
        let tools = std::env::var("TOOLS_DIR")
            .unwrap_or_else(|_| format!("{}/.cache/chatkit/tools", std::env::var("HOME").unwrap()));
        format!("{tools}/venv/bin/python")
    })
}

/// One tool call through the official MCP Python SDK (`end2end/mcp-call.py`).
pub async fn python_mcp(mcp_url: &str, token: &str, tool: &str, arguments: Value) -> Value {
    let output = tokio::process::Command::new(python())
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/end2end/mcp-call.py"))
        .arg(mcp_url)
        .arg(tool)
        .arg(arguments.to_string())
        .env("MCP_BEARER_TOKEN", token)
        .output()
        .await
        .expect("run the MCP Python SDK (scripts/setup.sh --test installs it)");
    assert!(
        output.status.success(),
        "{tool}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("the tool's JSON result")
}
