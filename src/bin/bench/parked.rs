//! Parked turns (issue 24): a turn waiting for the user's approval costs the server no memory
//! beyond its rows. `USERS` users registered through the API, each with task 1 and
//! `CONVERSATIONS` conversations; "park it" is sent in each (the mock model calls `delete_task`,
//! which asks first by default), `IN_FLIGHT` at a time, in rounds of one send per user (a
//! user's turns in progress are limited). The server's RSS before the sends, once all are
//! parked and after `SETTLE`; then one turn per user approved, one at a time, each round trip
//! including the continued turn (answered by the instant model).

use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use futures::{StreamExt, TryStreamExt};
use serde_json::{json, Value};

use super::{
    reads::percentile,
    setup::{new_conversation, rss_kb, Server},
    verdict, Row,
};

const USERS: usize = 100;
const CONVERSATIONS: usize = 10;
const PARKED: usize = USERS * CONVERSATIONS;
const IN_FLIGHT: usize = 16;
const SETTLE: Duration = Duration::from_secs(5);
const BUDGET_BYTES: f64 = 2048.0;
const ROW: &str = "server memory per parked turn (1,000 awaiting approval), bytes";
const DECIDE_ROW: &str = "approve a parked turn p50 / p99 ms (continued turn included)";

struct User {
    token: String,
    conversations: Vec<String>,
}

pub struct Measured {
    pub park_secs: f64,
    /// The server's RSS before the sends, once all are parked, and `SETTLE` later.
    pub rss_kb: [u64; 3],
    /// The sends that did not park as they should.
    pub park_failures: Vec<String>,
    /// The approvals' round trips, sorted, and what went wrong with the others.
    pub decide: Vec<Duration>,
    pub decide_failures: Vec<String>,
}

impl Measured {
    /// RSS growth from before the sends to `rss_kb[i]`, per parked turn, in bytes.
    fn per_turn(&self, i: usize) -> f64 {
        (self.rss_kb[i] as f64 - self.rss_kb[0] as f64) * 1024.0 / PARKED as f64
    }

    fn parked(&self) -> usize {
        PARKED - self.park_failures.len()
    }
}

fn clip(text: &str) -> String {
    text.chars().take(200).collect()
}

/// POSTs `body` to `path` (as the user behind `token`, if any); the answer's JSON (null if
/// none), or what went wrong (a status that is not a success, with the start of its text).
async fn post(
    server: &Server,
    token: Option<&str>,
    path: &str,
    body: Value,
) -> Result<Value, String> {
    let mut request = server.http.post(format!("{}{path}", server.base));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let res = request
        .json(&body)
        .send()
        .await
        .map_err(|err| err.to_string())?;
    let status = res.status();
    let text = res.text().await.map_err(|err| err.to_string())?;
    if !status.is_success() {
        return Err(format!("{path}: {status} {}", clip(&text)));
    }
    Ok(serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// A user registered through the API, its task 1, and its conversations.
async fn user(server: &Server, i: usize) -> Result<User> {
    let body =
        json!({ "email": format!("parked-{i}@parked.example"), "password": "bench-password" });
    let session = post(server, None, "/api/auth/register", body)
        .await
        .map_err(anyhow::Error::msg)?;
    let Some(token) = session["access_token"].as_str() else {
        bail!("registering: no token in {session}");
    };
    let task = json!({ "title": "A task to delete" });
    post(server, Some(token), "/api/tasks", task)
        .await
        .map_err(anyhow::Error::msg)?;
    let mut conversations = Vec::with_capacity(CONVERSATIONS);
    for _ in 0..CONVERSATIONS {
        conversations.push(new_conversation(server, token).await?);
    }
    let token = token.to_string();
    Ok(User {
        token,
        conversations,
    })
}

/// Sends "park it" in conversation `c` of `user`: the call id the turn waits on (that of
/// `delete_task` of task 1, the send's only one, with no answer yet), or what went wrong.
async fn park(server: &Server, user: &User, c: usize) -> Result<String, String> {
    let path = format!("/api/chat/conversations/{}/messages", user.conversations[c]);
    let send = json!({ "content": "park it" });
    let body = post(server, Some(&user.token), &path, send).await?;
    let approval = &body["approvals"][0];
    if !body["assistant_message"].is_null()
        || body["approvals"].as_array().map(Vec::len) != Some(1)
        || approval["tool_name"] != "delete_task"
        || approval["task"]["id"] != 1
    {
        return Err(format!("not parked as asked: {}", clip(&body.to_string())));
    }
    let call_id = approval["call_id"].as_str();
    call_id
        .map(str::to_string)
        .ok_or_else(|| "no call_id".into())
}

/// Approves the call `calls[u]` in user `u`'s first conversation, one user after another:
/// the round trips (until the continued turn's answer is read), sorted, and what went wrong.
async fn approve_all(
    server: &Server,
    users: &[User],
    calls: &[Result<String, String>],
) -> (Vec<Duration>, Vec<String>) {
    let (mut samples, mut failures) = (Vec::with_capacity(USERS), Vec::new());
    for (user, call) in users.iter().zip(calls) {
        let Ok(call) = call else { continue };
        let path = format!(
            "/api/chat/conversations/{}/approvals/{call}",
            user.conversations[0]
        );
        let t = Instant::now();
        match post(server, Some(&user.token), &path, json!({ "approve": true })).await {
            Ok(body)
                if body["approved"] == true
                    && body["pending"].as_array().map(Vec::len) == Some(0)
                    && body["turn"]["assistant_message"]["content"] == "Done." =>
            {
                samples.push(t.elapsed())
            }
            Ok(body) => failures.push(format!("not answered: {}", clip(&body.to_string()))),
            Err(err) => failures.push(err),
        }
    }
    samples.sort();
    (samples, failures)
}

pub async fn measure(server: &Server) -> Result<Measured> {
    let t = Instant::now();
    let users: Vec<User> = futures::stream::iter(0..USERS)
        .map(|i| user(server, i))
        .buffered(10)
        .try_collect()
        .await?;
    let secs = t.elapsed().as_secs_f64();
    eprintln!("[bench] parked turns: {USERS} users with a task and {CONVERSATIONS} conversations each, registered in {secs:.1} s; {PARKED} sends");
    let rss_before_kb = rss_kb(server.pid);
    let t = Instant::now();
    // Send k is in conversation k / USERS of user k % USERS: the sends in flight together are
    // different users', and calls[u] waits in user u's first conversation.
    let calls: Vec<Result<String, String>> = futures::stream::iter(0..PARKED)
        .map(|k| park(server, &users[k % USERS], k / USERS))
        .buffered(IN_FLIGHT)
        .collect()
        .await;
    let park_secs = t.elapsed().as_secs_f64();
    let rss_parked_kb = rss_kb(server.pid);
    tokio::time::sleep(SETTLE).await;
    let rss = [rss_before_kb, rss_parked_kb, rss_kb(server.pid)];
    let park_failures: Vec<String> = calls
        .iter()
        .filter_map(|c| c.as_ref().err().cloned())
        .collect();
    eprintln!("[bench] parked turns: approving one per user, one at a time");
    let (decide, decide_failures) = approve_all(server, &users, &calls[..USERS]).await;
    for failure in park_failures.iter().chain(&decide_failures).take(5) {
        eprintln!("[bench] parked turns: {failure}");
    }
    Ok(Measured {
        park_secs,
        rss_kb: rss,
        park_failures,
        decide,
        decide_failures,
    })
}

fn failed(failures: &[String]) -> String {
    match failures.first() {
        Some(first) => format!("; {} FAILED (first: {first})", failures.len()),
        None => String::new(),
    }
}

pub fn rows(measured: &Result<Measured>) -> Vec<Row> {
    let m = match measured {
        Ok(m) => m,
        Err(err) => {
            let row = |name: &'static str| {
                (
                    name,
                    "not measured".to_string(),
                    format!("{err:#}"),
                    "NOT measured",
                )
            };
            return vec![row(ROW), row(DECIDE_ROW)];
        }
    };
    let per_turn = m.per_turn(2);
    let [before, parked, settled] = m.rss_kb;
    let memory = format!(
        "RSS {before} KB before, {parked} KB with {} parked ({:.0} B per turn), {settled} KB {} s later; {USERS} users × {CONVERSATIONS} conversations, {IN_FLIGHT} sends in flight, parked in {:.1} s{}; budget ≤ {BUDGET_BYTES} B per turn",
        m.parked(), m.per_turn(1), SETTLE.as_secs(), m.park_secs, failed(&m.park_failures),
    );
    let ok = per_turn <= BUDGET_BYTES && m.park_failures.is_empty() && before > 0 && settled > 0;
    let (p50, p99) = (percentile(&m.decide, 0.5), percentile(&m.decide, 0.99));
    let decide = format!(
        "{} approvals, one at a time, instant model{}",
        m.decide.len(),
        failed(&m.decide_failures)
    );
    vec![
        (ROW, format!("{per_turn:.0}"), memory, verdict(ok)),
        (DECIDE_ROW, format!("{p50:.2} / {p99:.2}"), decide, "—"),
    ]
}

pub fn report(measured: &Result<Measured>) -> Value {
    let Ok(m) = measured else {
        return json!({ "parked_turns": null });
    };
    let decide = |p| percentile(&m.decide, p);
    json!({ "parked_turns": {
        "turns": PARKED, "parked": m.parked(), "users": USERS, "in_flight": IN_FLIGHT,
        "park_secs": m.park_secs, "settle_secs": SETTLE.as_secs(),
        "rss_before_kb": m.rss_kb[0], "rss_parked_kb": m.rss_kb[1], "rss_settled_kb": m.rss_kb[2],
        "bytes_per_turn": m.per_turn(2), "bytes_per_turn_before_settle": m.per_turn(1),
        "budget_bytes": BUDGET_BYTES, "park_failures": m.park_failures,
        "decide_ms": {
            "p50": decide(0.5), "p99": decide(0.99),
            "samples": m.decide.len(), "failures": m.decide_failures,
        },
    } })
}
