//! Crash, restart, replica and stop behaviour of agent turns, against the real server binary
//! as separate processes (SIGKILL, two replicas on one database) and a scripted
//! OpenAI-compatible model over real HTTP.

mod common;

use std::time::{Duration, Instant};

use common::{
    mock_model::{MockModel, Step},
    process::{database_url, ServerProcess},
    process_client::{add_milk, model_requests, settings, Client},
};
use serde_json::Value;
use sqlx::PgPool;

/// The tool messages the model was shown in request `i`.
fn tool_results_in(model: &MockModel, i: usize) -> Vec<String> {
    model.requests()[i]["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["role"] == "tool")
        .map(|m| m["content"].as_str().unwrap_or_default().to_string())
        .collect()
}

#[sqlx::test]
async fn a_server_killed_mid_turn_resumes_the_turn_after_restart(pool: PgPool) {
    let model = MockModel::start(vec![
        add_milk(),
        Step::Stall(120_000),
        Step::Text("Added **Buy milk**.".into()),
    ])
    .await;
    let db = database_url(&pool);
    let mut server = ServerProcess::start(&db, &settings(&model)).await;
    let client = Client::register(&server, "crash@example.com").await;
    let conversation = client.conversation(&server).await;
    let _send = client.send(&server, &conversation, "add buy milk");
    // The tool ran, and the model is thinking about its result: kill the only server.
    model_requests(&model, 2).await;
    server.kill();
    let killed_at = Instant::now();

    let server = ServerProcess::start(&db, &settings(&model)).await;
    let messages = client
        .wait_for_reply(&server, &conversation, Duration::from_secs(20))
        .await;
    eprintln!("crash-to-resumed: {:?}", killed_at.elapsed());
    assert_eq!(
        messages.len(),
        2,
        "one user message, one reply: {messages:?}"
    );
    assert_eq!(messages[1]["status"], "complete");
    assert_eq!(messages[1]["content"], "Added **Buy milk**.");
    let calls = messages[1]["tool_calls"]["tool_calls"].as_array().unwrap();
    assert_eq!(
        calls.len(),
        1,
        "the call made before the crash is part of the reply"
    );
    assert_eq!(calls[0]["tool_name"], "add_task");
    let tasks = client.tasks(&server).await;
    assert_eq!(tasks.len(), 1, "the task exists once: {tasks:?}");
    // The resumed model call saw the tool call already done, with its result.
    assert_eq!(model.requests().len(), 3);
    let shown = tool_results_in(&model, 2);
    assert_eq!(shown.len(), 1, "{shown:?}");
    assert!(shown[0].contains("Buy milk") && shown[0].contains("created"));
    let activity: i64 = sqlx::query_scalar("SELECT count(*) FROM turn_activity")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(activity, 0);
}

#[sqlx::test]
async fn a_replica_takes_over_the_turn_of_a_killed_replica(pool: PgPool) {
    let model = MockModel::start(vec![
        add_milk(),
        Step::Stall(120_000),
        Step::Text("Added it.".into()),
    ])
    .await;
    let db = database_url(&pool);
    let mut a = ServerProcess::start(&db, &settings(&model)).await;
    let b = ServerProcess::start(&db, &settings(&model)).await;
    let client = Client::register(&a, "replicas@example.com").await;
    let conversation = client.conversation(&a).await;
    let _send = client.send(&a, &conversation, "add buy milk");
    model_requests(&model, 2).await;
    a.kill();
    let killed_at = Instant::now();
    // Lease 3 s + sweep 1 s: well within the 15 s the issue allows after expiry.
    let messages = client
        .wait_for_reply(&b, &conversation, Duration::from_secs(15))
        .await;
    eprintln!("replica takeover: {:?}", killed_at.elapsed());
    assert_eq!(messages.len(), 2, "{messages:?}");
    assert_eq!(messages[1]["content"], "Added it.");
    assert_eq!(client.tasks(&b).await.len(), 1, "no duplicated task");
    let turns: Vec<(String, i32)> = sqlx::query_as("SELECT state, attempts FROM turns")
        .fetch_all(&pool)
        .await
        .unwrap();
    assert_eq!(turns, vec![("complete".to_string(), 2)]);
}

#[sqlx::test]
async fn stop_on_the_other_replica_ends_the_turn_within_a_second(pool: PgPool) {
    // A tool call, then an answer that starts streaming and never finishes.
    let model = MockModel::start(vec![
        add_milk(),
        Step::TokensThenStall(vec!["Adding ".into(), "it ".into(), "now, ".into()], 20),
    ])
    .await;
    let db = database_url(&pool);
    let a = ServerProcess::start(&db, &settings(&model)).await;
    let b = ServerProcess::start(&db, &settings(&model)).await;
    let client = Client::register(&a, "stop@example.com").await;
    let conversation = client.conversation(&a).await;
    let send = client.send(&a, &conversation, "add buy milk");
    model_requests(&model, 2).await;
    // The partial answer has been written (streamed and stored as the reply so far).
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let partial: Option<String> =
            sqlx::query_scalar("SELECT string_agg(piece, '' ORDER BY at) FROM turn_reply_pieces")
                .fetch_one(&pool)
                .await
                .unwrap();
        if partial.is_some_and(|p| p.contains("now,")) {
            break;
        }
        assert!(Instant::now() < deadline, "the answer never started");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let asked = Instant::now();
    let res = client
        .http
        .post(b.at(&format!("/api/chat/conversations/{conversation}/stop")))
        .bearer_auth(&client.token)
        .send()
        .await
        .unwrap();
    let took = asked.elapsed();
    assert_eq!(res.status(), 200);
    let stop: Value = res.json().await.unwrap();
    assert!(took < Duration::from_secs(1), "stop took {took:?}");
    assert_eq!(stop["stopped"], true);
    let reply = &stop["assistant_message"];
    assert_eq!(reply["status"], "stopped", "{stop}");
    assert_eq!(
        reply["content"], "Adding it now, ",
        "the partial text is kept"
    );
    assert_eq!(
        reply["tool_calls"]["tool_calls"][0]["tool_name"],
        "add_task"
    );
    // The sender on A gets the stopped reply too.
    let sent = send.await.unwrap().expect("the send answers");
    assert_eq!(sent["assistant_message"]["status"], "stopped");
    // The model request was dropped, not left running.
    let deadline = Instant::now() + Duration::from_secs(2);
    while model.closed() < 1 {
        assert!(
            Instant::now() < deadline,
            "the model connection stayed open"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Stopping again is harmless and says so.
    let again: Value = client
        .http
        .post(a.at(&format!("/api/chat/conversations/{conversation}/stop")))
        .bearer_auth(&client.token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(again["stopped"], false);
    assert!(again["detail"]
        .as_str()
        .unwrap()
        .contains("Nothing is running"));
    assert_eq!(client.tasks(&a).await.len(), 1);
}

#[sqlx::test]
async fn a_tab_on_one_replica_watches_a_turn_on_another_live(pool: PgPool) {
    let tokens: Vec<String> = (0..40).map(|i| format!("t{i} ")).collect();
    let model = MockModel::start(vec![Step::Tokens(tokens.clone(), 50)]).await;
    let db = database_url(&pool);
    let a = ServerProcess::start(&db, &settings(&model)).await;
    let b = ServerProcess::start(&db, &settings(&model)).await;
    let client = Client::register(&a, "watch@example.com").await;
    let conversation = client.conversation(&a).await;
    let res = client
        .http
        .get(b.at("/api/chat/events"))
        .bearer_auth(&client.token)
        .send()
        .await
        .unwrap();
    let mut tab = common::sse::SseReader::new(res);
    let send = client.send(&a, &conversation, "stream it");
    let events = tab
        .until(Duration::from_secs(10), |d| {
            d["type"] == "message" && d["role"] == "assistant"
        })
        .await;
    let deltas: Vec<&common::sse::SseEvent> = events
        .iter()
        .filter(|e| e.data["type"] == "delta")
        .collect();
    let span = deltas.last().unwrap().at.duration_since(deltas[0].at);
    let per_second = (deltas.len() - 1) as f64 / span.as_secs_f64();
    assert!(per_second >= 4.0, "{} deltas over {span:?}", deltas.len());
    let text: String = deltas
        .iter()
        .map(|e| e.data["text"].as_str().unwrap())
        .collect();
    assert_eq!(text, tokens.concat());
    assert_eq!(events.last().unwrap().data["content"], text.as_str());
    let sent = send.await.unwrap().unwrap();
    assert_eq!(sent["assistant_message"]["content"], text.as_str());
}
