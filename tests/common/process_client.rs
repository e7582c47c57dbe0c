//! An API client of a server process (`process`), and the settings process tests share.
#![allow(dead_code)]

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::{
    mock_model::{MockModel, Step},
    process::ServerProcess,
};

/// Short leases so takeovers happen within a test's patience.
pub fn settings(model: &MockModel) -> Vec<(&'static str, String)> {
    vec![
        ("OPENAI_API_KEY", "test-key".into()),
        ("OPENAI_BASE_URL", model.base_url.clone()),
        ("MODEL_MAX_RETRIES", "0".into()),
        ("MODEL_TIMEOUT_SECS", "120".into()),
        ("TURN_LEASE_SECS", "3".into()),
        ("TURN_SWEEP_SECS", "1".into()),
    ]
}

pub fn add_milk() -> Step {
    Step::Tools(vec![(
        "add_task".into(),
        json!({ "title": "Buy milk" }).to_string(),
    )])
}

pub struct Client {
    pub http: reqwest::Client,
    pub token: String,
}

impl Client {
    pub async fn register(server: &ServerProcess, email: &str) -> Self {
        let http = reqwest::Client::new();
        let res = http
            .post(server.at("/api/auth/register"))
            .json(&json!({ "email": email, "password": "password123" }))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 201);
        let token = res.json::<Value>().await.unwrap()["access_token"]
            .as_str()
            .unwrap()
            .to_string();
        Self { http, token }
    }

    /// The signed-in user's id (`GET /api/auth/me`).
    pub async fn user_id(&self, server: &ServerProcess) -> uuid::Uuid {
        let me: Value = self
            .http
            .get(server.at("/api/auth/me"))
            .bearer_auth(&self.token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        me["id"].as_str().unwrap().parse().unwrap()
    }

    pub async fn conversation(&self, server: &ServerProcess) -> String {
        let res = self
            .http
            .post(server.at("/api/chat/conversations"))
            .bearer_auth(&self.token)
            .json(&json!({}))
            .send()
            .await
            .unwrap();
        res.json::<Value>().await.unwrap()["id"]
            .as_str()
            .unwrap()
            .to_string()
    }

    /// Sends in the background: the server may die before it answers.
    pub fn send(
        &self,
        server: &ServerProcess,
        conversation: &str,
        content: &str,
    ) -> tokio::task::JoinHandle<Option<Value>> {
        let request = self
            .http
            .post(server.at(&format!("/api/chat/conversations/{conversation}/messages")))
            .bearer_auth(&self.token)
            .json(&json!({ "content": content }));
        tokio::spawn(async move { request.send().await.ok()?.json().await.ok() })
    }

    pub async fn messages(&self, server: &ServerProcess, conversation: &str) -> Vec<Value> {
        let res = self
            .http
            .get(server.at(&format!("/api/chat/conversations/{conversation}/messages")))
            .bearer_auth(&self.token)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        res.json::<Value>().await.unwrap()["messages"]
            .as_array()
            .unwrap()
            .clone()
    }

    pub async fn tasks(&self, server: &ServerProcess) -> Vec<Value> {
        let res = self
            .http
            .get(server.at("/api/tasks"))
            .bearer_auth(&self.token)
            .send()
            .await
            .unwrap();
        res.json::<Value>()
            .await
            .unwrap()
            .as_array()
            .unwrap()
            .clone()
    }

    /// Polls until the conversation's last message is an assistant reply.
    pub async fn wait_for_reply(
        &self,
        server: &ServerProcess,
        conversation: &str,
        within: Duration,
    ) -> Vec<Value> {
        let deadline = Instant::now() + within;
        loop {
            let messages = self.messages(server, conversation).await;
            if messages.last().is_some_and(|m| m["role"] == "assistant") {
                return messages;
            }
            assert!(
                Instant::now() < deadline,
                "no reply within {within:?}: {messages:?}\n{}",
                std::fs::read_to_string(&server.log).unwrap_or_default()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// Waits until the model has received `n` requests.
pub async fn model_requests(model: &MockModel, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while model.requests().len() < n {
        assert!(
            Instant::now() < deadline,
            "the model got {} requests",
            model.requests().len()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
