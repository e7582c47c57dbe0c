//! The turn lifecycle through the HTTP API: honest retry, fairness under a flood, and every
//! failure inside a turn (deleted conversation, lost database connections, model failure)
//! ending with a stored outcome and no progress row left behind.

mod common;

use std::time::Duration;

use common::{
    expect_error,
    mock_model::{MockModel, Step},
    TestApp,
};
use reqwest::StatusCode;
use serde_json::{json, Value};
use sqlx::PgPool;

async fn count(app: &TestApp, sql: &str) -> i64 {
    sqlx::query_scalar(sql)
        .fetch_one(&app.state.pool)
        .await
        .unwrap()
}

/// Waits until the conversation has a running turn whose model request is under way.
async fn until_model_requests(model: &MockModel, n: usize) {
    for _ in 0..400 {
        if model.requests().len() >= n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the model got {} requests", model.requests().len());
}

#[sqlx::test]
async fn retry_after_an_error_shows_the_model_what_was_done(pool: PgPool) {
    let model = MockModel::start(vec![
        Step::Tools(vec![(
            "add_task".into(),
            json!({ "title": "Buy milk" }).to_string(),
        )]),
        Step::Status(500, None),
        Step::Text("Added **Buy milk** earlier; nothing else to do.".into()),
    ])
    .await;
    let app = TestApp::with_model(pool, &model).await;
    let token = app.register("retry@example.com").await;
    let id = app.conversation(&token).await;
    let failed = app.say(&token, &id, "add buy milk").await;
    assert_eq!(failed["assistant_message"]["status"], "error");
    assert_eq!(count(&app, "SELECT count(*) FROM tasks").await, 1);

    let res = app
        .post(
            &token,
            &format!("/api/chat/conversations/{id}/retry"),
            json!({}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let retried: Value = res.json().await.unwrap();
    assert_eq!(retried["assistant_message"]["status"], "complete");
    assert_eq!(
        retried["user_message"]["id"], failed["user_message"]["id"],
        "the same user message is answered again"
    );
    // The model's request shows the earlier call and its result; it is not run again.
    let requests = model.requests();
    assert_eq!(requests.len(), 3);
    let messages = requests[2]["messages"].as_array().unwrap();
    let call = messages
        .iter()
        .find(|m| m["role"] == "assistant" && m["tool_calls"].is_array())
        .expect("the earlier call is in the prompt");
    assert_eq!(call["tool_calls"][0]["function"]["name"], "add_task");
    let result = messages.iter().find(|m| m["role"] == "tool").unwrap();
    assert!(result["content"].as_str().unwrap().contains("created"));
    assert_eq!(
        messages.iter().filter(|m| m["role"] == "user").count(),
        1,
        "one user message in the prompt"
    );
    assert_eq!(
        count(&app, "SELECT count(*) FROM tasks").await,
        1,
        "no second task"
    );
    assert_eq!(
        count(&app, "SELECT count(*) FROM messages WHERE role = 'user'").await,
        1
    );
    // Nothing left to retry.
    let res = app
        .post(
            &token,
            &format!("/api/chat/conversations/{id}/retry"),
            json!({}),
        )
        .await;
    expect_error(res, StatusCode::CONFLICT).await;
}

#[sqlx::test]
async fn a_flood_from_one_user_gets_429s_and_never_delays_another(pool: PgPool) {
    let app = TestApp::spawn_with(pool, |c| c.offline_think_time = Duration::from_millis(50)).await;
    let flooder = app.register("flood@example.com").await;
    let other = app.register("calm@example.com").await;
    let flood_conversation = app.conversation(&flooder).await;
    let calm_conversation = app.conversation(&other).await;
    let path = format!("/api/chat/conversations/{flood_conversation}/messages");
    let flood = futures::future::join_all((0..200).map(|i| {
        app.post(
            &flooder,
            &path,
            json!({ "content": format!("add flood {i}") }),
        )
    }));
    let calm = async {
        let mut statuses = Vec::new();
        for i in 0..20 {
            let path = format!("/api/chat/conversations/{calm_conversation}/messages");
            let started = std::time::Instant::now();
            let res = app
                .post(&other, &path, json!({ "content": format!("add calm {i}") }))
                .await;
            statuses.push((res.status(), started.elapsed()));
        }
        statuses
    };
    let (flood, calm) = tokio::join!(flood, calm);
    let mut created = 0;
    for res in flood {
        match res.status() {
            StatusCode::CREATED => created += 1,
            StatusCode::TOO_MANY_REQUESTS => {
                assert!(res.headers().contains_key("retry-after"));
            }
            other => panic!("a flooded send answered {other}"),
        }
    }
    assert!(created >= 3, "the flooder's first turns run ({created})");
    assert!(created < 200, "the flood is bounded");
    for (status, took) in calm {
        assert_eq!(status, StatusCode::CREATED);
        // 50 ms of think time; a turn queued behind the flood would take seconds.
        assert!(took < Duration::from_secs(2), "a calm send took {took:?}");
    }
}

#[sqlx::test]
async fn a_conversation_deleted_mid_turn_ends_the_turn(pool: PgPool) {
    let model = MockModel::start(vec![Step::SlowText(800, "Too late.".into())]).await;
    let app = TestApp::with_model(pool, &model).await;
    let token = app.register("gone@example.com").await;
    let id = app.conversation(&token).await;
    let path = format!("/api/chat/conversations/{id}/messages");
    let send = app.post(&token, &path, json!({ "content": "hello" }));
    let delete = async {
        until_model_requests(&model, 1).await;
        let res = app
            .send_json(
                reqwest::Method::DELETE,
                &token,
                &format!("/api/chat/conversations/{id}"),
                json!({}),
            )
            .await;
        assert_eq!(res.status(), StatusCode::NO_CONTENT);
    };
    let (res, ()) = tokio::join!(send, delete);
    expect_error(res, StatusCode::NOT_FOUND).await;
    assert_eq!(
        count(
            &app,
            "SELECT count(*) FROM turns WHERE state = 'error' AND error_detail IS NOT NULL"
        )
        .await,
        1
    );
    assert_eq!(
        count(&app, "SELECT count(*) FROM turns WHERE state = 'running'").await,
        0
    );
    assert_eq!(count(&app, "SELECT count(*) FROM turn_activity").await, 0);
}

#[sqlx::test]
async fn a_turn_survives_its_database_connections_being_cut(pool: PgPool) {
    let model = MockModel::start(vec![
        Step::Tools(vec![(
            "add_task".into(),
            json!({ "title": "Survive" }).to_string(),
        )]),
        Step::SlowText(600, "Added it.".into()),
    ])
    .await;
    let app = TestApp::with_model(pool, &model).await;
    let token = app.register("cut@example.com").await;
    let id = app.conversation(&token).await;
    let path = format!("/api/chat/conversations/{id}/messages");
    let send = app.post(&token, &path, json!({ "content": "add survive" }));
    let cut = async {
        until_model_requests(&model, 2).await;
        // What a database restart does to the server's connections.
        let admin = sqlx::PgPool::connect(&std::env::var("DATABASE_URL").unwrap())
            .await
            .unwrap();
        let database: String = sqlx::query_scalar("SELECT current_database()")
            .fetch_one(&app.state.pool)
            .await
            .unwrap();
        sqlx::query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1")
            .bind(database)
            .execute(&admin)
            .await
            .unwrap();
    };
    let (res, ()) = tokio::join!(send, cut);
    assert_eq!(res.status(), StatusCode::CREATED);
    let turn: Value = res.json().await.unwrap();
    assert_eq!(turn["assistant_message"]["content"], "Added it.");
    assert_eq!(count(&app, "SELECT count(*) FROM tasks").await, 1);
    assert_eq!(count(&app, "SELECT count(*) FROM turn_activity").await, 0);
    assert_eq!(
        count(&app, "SELECT count(*) FROM turns WHERE state = 'complete'").await,
        1
    );
}

#[sqlx::test]
async fn stop_on_the_running_server_keeps_the_tool_calls_made(pool: PgPool) {
    let model = MockModel::start(vec![
        Step::Tools(vec![(
            "add_task".into(),
            json!({ "title": "Half done" }).to_string(),
        )]),
        Step::Stall(60_000),
    ])
    .await;
    let app = TestApp::with_model(pool, &model).await;
    let token = app.register("stop@example.com").await;
    let id = app.conversation(&token).await;
    let path = format!("/api/chat/conversations/{id}/messages");
    let send = app.post(&token, &path, json!({ "content": "add half done" }));
    let stop = async {
        until_model_requests(&model, 2).await;
        let res = app
            .post(
                &token,
                &format!("/api/chat/conversations/{id}/stop"),
                json!({}),
            )
            .await;
        assert_eq!(res.status(), StatusCode::OK);
        res.json::<Value>().await.unwrap()
    };
    let (sent, stopped) = tokio::join!(send, stop);
    assert_eq!(stopped["stopped"], true);
    let sent: Value = sent.json().await.unwrap();
    assert_eq!(sent["assistant_message"], stopped["assistant_message"]);
    let reply = &stopped["assistant_message"];
    assert_eq!(reply["status"], "stopped");
    assert_eq!(
        reply["tool_calls"]["tool_calls"][0]["tool_name"],
        "add_task"
    );
    assert!(reply["content"].as_str().unwrap().contains("Stopped"));
    assert_eq!(count(&app, "SELECT count(*) FROM turn_activity").await, 0);

    // Retry after a stop: the model is shown the call, which is not made twice.
    model.push(Step::Text("Done: Half done was already added.".into()));
    let res = app
        .post(
            &token,
            &format!("/api/chat/conversations/{id}/retry"),
            json!({}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    assert_eq!(count(&app, "SELECT count(*) FROM tasks").await, 1);
    let last = model.requests().pop().unwrap();
    assert!(last.to_string().contains("Half done"));
}

#[sqlx::test]
async fn the_offline_assistant_asks_before_touching_an_unnamed_task(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let token = app.register("offline-safe@example.com").await;
    let id = app.conversation(&token).await;
    app.say(&token, &id, "add edit the kitchen list").await;
    app.say(&token, &id, "add buy milk").await;
    app.say(&token, &id, "add buy oat milk").await;
    for text in [
        "delete",
        "done",
        "cancel",
        "forget it",
        "remove it",
        "finished",
        "close",
    ] {
        let turn = app.say(&token, &id, text).await;
        let reply = turn["assistant_message"]["content"].as_str().unwrap();
        assert!(reply.contains("Which task"), "{text}: {reply}");
    }
    let turn = app.say(&token, &id, "delete milk").await;
    let reply = turn["assistant_message"]["content"].as_str().unwrap();
    assert!(reply.contains("Several tasks match"), "{reply}");
    // The Kelvin sign lowercases to a shorter "k": no panic, no 500.
    let turn = app.say(&token, &id, "remove \u{212A}itchen").await;
    // It asks first (the default policy), naming the task it found; approved, it deletes.
    let asked = &turn["approvals"][0];
    assert_eq!(asked["task"]["title"], "Edit the kitchen list", "{turn}");
    let call = asked["call_id"].as_str().unwrap();
    let path = format!("/api/chat/conversations/{id}/approvals/{call}");
    let decided = app.post(&token, &path, json!({ "approve": true })).await;
    assert_eq!(decided.status().as_u16(), 200);
    let decided: Value = decided.json().await.unwrap();
    assert_eq!(decided["turn"]["assistant_message"]["status"], "complete");
    let titles: Vec<String> =
        sqlx::query_scalar("SELECT title FROM tasks WHERE deleted_at IS NULL ORDER BY id")
            .fetch_all(&app.state.pool)
            .await
            .unwrap();
    assert_eq!(
        titles.len(),
        2,
        "only the task named by a whole word went: {titles:?}"
    );
    assert!(!titles.contains(&"Edit the kitchen list".to_string()));
}

#[sqlx::test]
async fn a_model_answer_that_is_not_json_is_explained_in_plain_words(pool: PgPool) {
    let model = MockModel::start(vec![Step::RawSse(
        "data: this is not json\n\ndata: [DONE]\n\n".into(),
    )])
    .await;
    let app = TestApp::with_model(pool, &model).await;
    let token = app.register("garbled@example.com").await;
    let id = app.conversation(&token).await;
    let turn = app.say(&token, &id, "hello").await;
    let reply = &turn["assistant_message"];
    assert_eq!(reply["status"], "error");
    let content = reply["content"].as_str().unwrap();
    assert!(content.contains("could not be understood"), "{content}");
    assert!(
        !content.contains("line 1") && !content.contains("column"),
        "{content}"
    );
    assert_eq!(count(&app, "SELECT count(*) FROM turn_activity").await, 0);
}

#[sqlx::test]
async fn a_slow_turn_times_the_request_out_but_still_answers(pool: PgPool) {
    // The limit leaves room for registering (an argon2 hash, slow in a debug build on a busy
    // machine), which goes through the same limit.
    let model = MockModel::start(vec![Step::SlowText(3500, "Late but here.".into())]).await;
    let base = model.base_url.clone();
    let app = TestApp::spawn_with(pool, move |c| {
        c.openai_api_key = Some("sk-test".into());
        c.openai_base_url = base;
        c.request_timeout = Duration::from_secs(2);
    })
    .await;
    let token = app.register("slow@example.com").await;
    let id = app.conversation(&token).await;
    let res = app
        .post(
            &token,
            &format!("/api/chat/conversations/{id}/messages"),
            json!({ "content": "take your time" }),
        )
        .await;
    let detail = expect_error(res, StatusCode::REQUEST_TIMEOUT).await;
    assert!(detail.contains("will appear"), "{detail}");
    tokio::time::sleep(Duration::from_secs(4)).await;
    let page = app.messages(&token, &id, "").await;
    assert_eq!(page["messages"][1]["content"], "Late but here.");
}

#[sqlx::test]
async fn start_conversation_is_idempotent_on_client_id(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let token = app.register("start-once@example.com").await;
    let client_id = uuid::Uuid::new_v4();
    let start = || {
        app.http
            .post(app.at("/sfn/chat/start"))
            .bearer_auth(&token)
            .form(&[
                ("content", "add call the plumber"),
                ("client_id", &client_id.to_string()),
            ])
            .send()
    };
    let first: Value = start().await.unwrap().json().await.unwrap();
    let again: Value = start().await.unwrap().json().await.unwrap();
    assert_eq!(first, again, "the resend returns the first result");
    assert_eq!(count(&app, "SELECT count(*) FROM conversations").await, 1);
    assert_eq!(count(&app, "SELECT count(*) FROM tasks").await, 1);
}
