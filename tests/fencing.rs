//! Attempts are fenced, not replicas: a process frozen (SIGSTOP) past its turn's lease wakes up
//! unable to run a tool or store an answer, whether another replica took the turn over or its
//! own sweeper did; retries racing on two replicas answer once. Against the release server
//! binary as separate processes and a scripted model over real HTTP.

mod common;

use std::time::{Duration, Instant};

use common::{
    mock_model::{MockModel, Step},
    process::{database_url, ServerProcess},
    process_client::{add_milk, model_requests, settings, Client},
};
use sqlx::PgPool;

/// The model's call ids of the recorded tool calls. The frozen attempt's model answer is the
/// first request's, whose call is `call_1_0`: had it run, it would be recorded.
async fn recorded_calls(pool: &PgPool) -> Vec<String> {
    sqlx::query_scalar("SELECT call_id FROM turn_tool_calls ORDER BY idx")
        .fetch_all(pool)
        .await
        .unwrap()
}

/// The turns of the test database: (state, attempts).
async fn turns(pool: &PgPool) -> Vec<(String, i32)> {
    sqlx::query_as("SELECT state, attempts FROM turns ORDER BY created_at")
        .fetch_all(pool)
        .await
        .unwrap()
}

#[sqlx::test]
async fn a_frozen_replica_woken_after_a_takeover_neither_runs_its_tool_nor_stores_an_answer(
    pool: PgPool,
) {
    // The first model call (replica A's) answers add_task after 7 s; every later call adds the
    // task unless it was shown a tool result, then answers.
    let model = MockModel::start_with_fallback(
        vec![Step::Delayed(7_000, Box::new(add_milk()))],
        Some(Step::AddOnce("Buy milk".into())),
    )
    .await;
    let db = database_url(&pool);
    let a = ServerProcess::start(&db, &settings(&model)).await;
    let b = ServerProcess::start(&db, &settings(&model)).await;
    let client = Client::register(&a, "frozen-a@example.com").await;
    let conversation = client.conversation(&a).await;
    let send = client.send(&a, &conversation, "add buy milk");
    model_requests(&model, 1).await;
    a.freeze();
    let frozen_at = Instant::now();

    // Lease 3 s, sweep 1 s: B takes the turn over and answers it.
    let messages = client
        .wait_for_reply(&b, &conversation, Duration::from_secs(15))
        .await;
    assert_eq!(messages.len(), 2, "{messages:?}");
    assert_eq!(messages[1]["content"], "Added.");
    assert_eq!(client.tasks(&b).await.len(), 1);

    // A wakes once its own model answer (add_task) has arrived, and acts on it.
    tokio::time::sleep(Duration::from_secs(8).saturating_sub(frozen_at.elapsed())).await;
    a.thaw();
    let answered = tokio::time::timeout(Duration::from_secs(15), send)
        .await
        .expect("A answers its client")
        .unwrap()
        .expect("a JSON answer");
    // A's client gets the one stored answer, B's.
    assert_eq!(answered["assistant_message"]["id"], messages[1]["id"]);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let tasks = client.tasks(&b).await;
    assert_eq!(tasks.len(), 1, "the task exists once: {tasks:?}");
    assert_eq!(
        client.messages(&b, &conversation).await.len(),
        2,
        "one answer is stored"
    );
    assert_eq!(turns(&pool).await, vec![("complete".to_string(), 2)]);
    let calls = recorded_calls(&pool).await;
    assert_eq!(calls.len(), 1, "only B's call is recorded: {calls:?}");
    assert_ne!(calls[0], "call_1_0", "the frozen attempt's call never ran");
}

#[sqlx::test]
async fn a_single_server_frozen_past_its_lease_answers_once_when_woken(pool: PgPool) {
    let model = MockModel::start_with_fallback(
        vec![Step::Delayed(5_000, Box::new(add_milk()))],
        Some(Step::AddOnce("Buy milk".into())),
    )
    .await;
    let db = database_url(&pool);
    let server = ServerProcess::start(&db, &settings(&model)).await;
    let client = Client::register(&server, "frozen-one@example.com").await;
    let conversation = client.conversation(&server).await;
    let _send = client.send(&server, &conversation, "add buy milk");
    model_requests(&model, 1).await;
    server.freeze();
    // Past the 3 s lease: on waking, the attempt's lease has lapsed.
    tokio::time::sleep(Duration::from_secs(5)).await;
    server.thaw();

    let messages = client
        .wait_for_reply(&server, &conversation, Duration::from_secs(15))
        .await;
    assert_eq!(messages.len(), 2, "{messages:?}");
    assert_eq!(messages[1]["content"], "Added.");
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(client.tasks(&server).await.len(), 1, "the task exists once");
    assert_eq!(client.messages(&server, &conversation).await.len(), 2);
    // The lapsed attempt ended itself; this very process's sweeper then started a new one,
    // and only that one's call ran.
    assert_eq!(turns(&pool).await, vec![("complete".to_string(), 2)]);
    let calls = recorded_calls(&pool).await;
    assert_eq!(calls.len(), 1, "{calls:?}");
    assert_ne!(calls[0], "call_1_0", "the frozen attempt's call never ran");
}

#[sqlx::test]
async fn two_retries_sent_at_once_to_two_replicas_answer_once(pool: PgPool) {
    let model = MockModel::start_with_fallback(
        vec![Step::Status(500, None)],
        Some(Step::SlowText(800, "Here it is.".into())),
    )
    .await;
    let db = database_url(&pool);
    let a = ServerProcess::start(&db, &settings(&model)).await;
    let b = ServerProcess::start(&db, &settings(&model)).await;
    let client = Client::register(&a, "retries@example.com").await;
    let conversation = client.conversation(&a).await;
    let failed = client
        .send(&a, &conversation, "hello")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(failed["assistant_message"]["status"], "error");

    let retry = |server: &ServerProcess| {
        client
            .http
            .post(server.at(&format!("/api/chat/conversations/{conversation}/retry")))
            .bearer_auth(&client.token)
            .send()
    };
    let (first, second) = tokio::join!(retry(&a), retry(&b));
    let mut answers = Vec::new();
    for res in [first.unwrap(), second.unwrap()] {
        let status = res.status().as_u16();
        let body: serde_json::Value = res.json().await.unwrap();
        assert!(
            status == 201 || status == 409,
            "a retry answers or says one runs: {status} {body}"
        );
        if status == 201 {
            answers.push(body["assistant_message"]["id"].clone());
        }
    }
    assert!(!answers.is_empty(), "one retry answered");
    assert!(
        answers.windows(2).all(|w| w[0] == w[1]),
        "both got the same answer: {answers:?}"
    );
    let messages = client
        .wait_for_reply(&a, &conversation, Duration::from_secs(10))
        .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let messages_after = client.messages(&a, &conversation).await;
    assert_eq!(messages_after, messages, "nothing more arrives");
    let contents: Vec<&str> = messages
        .iter()
        .map(|m| m["content"].as_str().unwrap())
        .collect();
    // The branch shown: the question and its new answer; the failed answer stays beside it.
    assert_eq!(contents, ["hello", "Here it is."], "{contents:?}");
    let all: serde_json::Value = client
        .http
        .get(a.at(&format!(
            "/api/chat/conversations/{conversation}/messages?branch=all"
        )))
        .bearer_auth(&client.token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let every: Vec<&str> = all["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["content"].as_str().unwrap())
        .collect();
    assert_eq!(
        every.len(),
        3,
        "user, failed answer, one new answer: {every:?}"
    );
    assert_eq!(every[2], "Here it is.");
    assert_eq!(model.requests().len(), 2, "the model was asked again once");
}
