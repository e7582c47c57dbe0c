//! The agent turn through async-openai against a scripted OpenAI-compatible server (real HTTP),
//! and the offline assistant, both acting through the MCP tools on a real Postgres.

mod common;

use std::time::{Duration, Instant};

use common::{
    mock_model::{MockModel, Step},
    TestApp,
};
use reqwest::StatusCode;
use serde_json::{json, Value};
use sqlx::PgPool;

fn tools(calls: &[(&str, Value)]) -> Step {
    Step::Tools(
        calls
            .iter()
            .map(|(n, a)| (n.to_string(), a.to_string()))
            .collect(),
    )
}

async fn app_with_model(pool: PgPool, model: &MockModel) -> TestApp {
    let base = model.base_url.clone();
    TestApp::spawn_with(pool, move |c| {
        c.openai_api_key = Some("sk-test".into());
        c.openai_base_url = base;
        c.model_max_retries = 2;
    })
    .await
}

async fn task_titles(app: &TestApp) -> Vec<String> {
    sqlx::query_scalar("SELECT title FROM tasks ORDER BY id")
        .fetch_all(&app.state.pool)
        .await
        .unwrap()
}

/// The messages (role, content) of one request the model received, without the system prompt.
fn conversation_of(request: &Value) -> Vec<(String, String)> {
    request["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["role"] != "system")
        .map(|m| {
            (
                m["role"].as_str().unwrap().to_string(),
                m["content"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

#[sqlx::test]
async fn a_tool_call_goes_through_mcp_into_postgres(pool: PgPool) {
    let model = MockModel::start(vec![
        tools(&[("add_task", json!({ "title": "Buy groceries" }))]),
        Step::Text("I added **Buy groceries**.".into()),
    ])
    .await;
    let app = app_with_model(pool, &model).await;
    let token = app.register("agent@example.com").await;
    let id = app.conversation(&token).await;
    let turn = app.say(&token, &id, "Add a task to buy groceries").await;

    assert_eq!(task_titles(&app).await, ["Buy groceries"]);
    let reply = &turn["assistant_message"];
    assert_eq!(reply["content"], "I added **Buy groceries**.");
    assert_eq!(reply["status"], "complete");
    let record = &reply["tool_calls"]["tool_calls"][0];
    assert_eq!(record["tool_name"], "add_task");
    assert_eq!(record["arguments"], json!({ "title": "Buy groceries" }));
    assert_eq!(
        record["result"],
        json!({ "task_id": 1, "status": "created", "title": "Buy groceries" })
    );
    assert_eq!(record["status"], "success");
    assert!(record["duration_ms"].as_i64().unwrap() >= 0);
    assert!(record["timestamp"].as_str().is_some());

    let requests = model.requests();
    assert_eq!(requests.len(), 2);
    let offered: Vec<&str> = requests[0]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["function"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(offered.len(), 6);
    assert!(offered.contains(&"add_task") && offered.contains(&"update_task"));
    assert!(
        offered.contains(&"undo_change"),
        "the agent's own tool: {offered:?}"
    );
    assert_eq!(
        requests[0]["tools"][0]["function"]["parameters"]["type"],
        "object"
    );
    // The tool result was fed back to the model with the call's id.
    let second = requests[1]["messages"].as_array().unwrap();
    let tool_message = second
        .iter()
        .find(|m| m["role"] == "tool")
        .expect("tool message");
    assert_eq!(tool_message["tool_call_id"], "call_1_0");
    assert!(tool_message["content"]
        .as_str()
        .unwrap()
        .contains("\"task_id\":1"));
}

#[sqlx::test]
async fn two_tool_rounds(pool: PgPool) {
    let model = MockModel::start(vec![
        tools(&[("list_tasks", json!({ "status": "pending" }))]),
        tools(&[
            ("complete_task", json!({ "task_id": 1 })),
            ("add_task", json!({ "title": "Celebrate" })),
        ]),
        Step::Text("Done and added a follow-up.".into()),
    ])
    .await;
    let app = app_with_model(pool, &model).await;
    let token = app.register("rounds@example.com").await;
    app.post(&token, "/api/tasks", json!({ "title": "Write report" }))
        .await;
    let id = app.conversation(&token).await;
    let turn = app
        .say(&token, &id, "finish my pending task and add a celebration")
        .await;
    let records = turn["assistant_message"]["tool_calls"]["tool_calls"]
        .as_array()
        .unwrap();
    let names: Vec<&str> = records
        .iter()
        .map(|r| r["tool_name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["list_tasks", "complete_task", "add_task"]);
    assert_eq!(model.requests().len(), 3);
    let completed: bool = sqlx::query_scalar("SELECT completed FROM tasks WHERE id = 1")
        .fetch_one(&app.state.pool)
        .await
        .unwrap();
    assert!(completed);
    assert_eq!(task_titles(&app).await, ["Write report", "Celebrate"]);
}

#[sqlx::test]
async fn a_missing_task_is_fed_back_as_a_tool_error(pool: PgPool) {
    let model = MockModel::start(vec![
        tools(&[("delete_task", json!({ "task_id": 42 }))]),
        Step::Text("There is no task 42.".into()),
    ])
    .await;
    let app = app_with_model(pool, &model).await;
    let token = app.register("missing@example.com").await;
    let id = app.conversation(&token).await;
    let turn = app.say(&token, &id, "delete task 42").await;
    assert_eq!(turn["assistant_message"]["status"], "complete");
    let record = &turn["assistant_message"]["tool_calls"]["tool_calls"][0];
    assert_eq!(record["status"], "error");
    assert_eq!(record["result"], json!({ "error": "task 42 not found" }));
    let fed_back = model.requests()[1]["messages"]
        .as_array()
        .unwrap()
        .iter()
        .any(|m| {
            m["role"] == "tool" && m["content"].as_str().unwrap().contains("task 42 not found")
        });
    assert!(fed_back);
}

#[sqlx::test]
async fn an_unknown_tool_ends_in_an_error_message(pool: PgPool) {
    let model = MockModel::start(vec![tools(&[("launch_rockets", json!({}))])]).await;
    let app = app_with_model(pool, &model).await;
    let token = app.register("unknown@example.com").await;
    let id = app.conversation(&token).await;
    let turn = app.say(&token, &id, "do something odd").await;
    let reply = &turn["assistant_message"];
    assert_eq!(reply["status"], "error");
    assert!(reply["content"]
        .as_str()
        .unwrap()
        .contains("launch_rockets"));
    assert!(reply["content"].as_str().unwrap().contains("try again"));
    assert_eq!(turn["user_message"]["content"], "do something odd");
    assert!(task_titles(&app).await.is_empty());
}

#[sqlx::test]
async fn malformed_arguments_end_in_an_error_message(pool: PgPool) {
    let model = MockModel::start(vec![Step::Tools(vec![(
        "add_task".into(),
        "{\"title\": \"unterminated".into(),
    )])])
    .await;
    let app = app_with_model(pool, &model).await;
    let token = app.register("malformed@example.com").await;
    let id = app.conversation(&token).await;
    let turn = app.say(&token, &id, "add something").await;
    let reply = &turn["assistant_message"];
    assert_eq!(reply["status"], "error");
    assert!(
        reply["content"]
            .as_str()
            .unwrap()
            .contains("unreadable arguments"),
        "{}",
        reply["content"]
    );
    assert_eq!(reply["tool_calls"]["tool_calls"][0]["status"], "error");
    assert!(task_titles(&app).await.is_empty());
}

#[sqlx::test]
async fn rate_limited_then_success_honours_retry_after(pool: PgPool) {
    let model = MockModel::start(vec![
        Step::Status(429, Some(1)),
        Step::Text("Hello after waiting.".into()),
    ])
    .await;
    let app = app_with_model(pool, &model).await;
    let token = app.register("retry@example.com").await;
    let id = app.conversation(&token).await;
    let started = Instant::now();
    let turn = app.say(&token, &id, "hello").await;
    assert!(
        started.elapsed() >= Duration::from_millis(950),
        "waited {:?}",
        started.elapsed()
    );
    assert_eq!(turn["assistant_message"]["status"], "complete");
    assert_eq!(turn["assistant_message"]["content"], "Hello after waiting.");
    assert_eq!(model.requests().len(), 2);
}

#[sqlx::test]
async fn a_model_failing_forever_gives_an_error_reply_and_keeps_the_message(pool: PgPool) {
    let model = MockModel::start_with_fallback(vec![], Some(Step::Status(500, None))).await;
    let app = app_with_model(pool, &model).await;
    let token = app.register("down@example.com").await;
    let id = app.conversation(&token).await;
    let turn = app.say(&token, &id, "add buy milk").await;
    let reply = &turn["assistant_message"];
    assert_eq!(reply["status"], "error");
    let content = reply["content"].as_str().unwrap();
    assert!(
        content.contains("try again") && content.contains("model service failed"),
        "{content}"
    );
    assert_eq!(model.requests().len(), 3, "one call plus two retries");
    let stored: Vec<(String, String)> =
        sqlx::query_as("SELECT role, status FROM messages ORDER BY seq")
            .fetch_all(&app.state.pool)
            .await
            .unwrap();
    assert_eq!(
        stored,
        [
            ("user".into(), "complete".into()),
            ("assistant".into(), "error".into())
        ]
    );
}

#[sqlx::test]
async fn a_model_that_never_stops_calling_tools_is_stopped_after_five_rounds(pool: PgPool) {
    let model =
        MockModel::start_with_fallback(vec![], Some(tools(&[("list_tasks", json!({}))]))).await;
    let app = app_with_model(pool, &model).await;
    let token = app.register("loop@example.com").await;
    let id = app.conversation(&token).await;
    let turn = app.say(&token, &id, "loop forever").await;
    assert_eq!(model.requests().len(), 5);
    let reply = &turn["assistant_message"];
    assert_eq!(reply["status"], "complete");
    assert!(reply["content"]
        .as_str()
        .unwrap()
        .starts_with("I stopped after 5 rounds"));
    assert_eq!(
        reply["tool_calls"]["tool_calls"].as_array().unwrap().len(),
        5
    );
}

#[sqlx::test]
async fn turns_are_stateless_across_a_restart(pool: PgPool) {
    let model = MockModel::start(vec![
        tools(&[("add_task", json!({ "title": "Buy milk" }))]),
        Step::Text("Added Buy milk.".into()),
        Step::Text("You have one task: Buy milk.".into()),
    ])
    .await;
    let first = app_with_model(pool.clone(), &model).await;
    let token = first.register("restart@example.com").await;
    let id = first.conversation(&token).await;
    first.say(&token, &id, "add buy milk").await;
    // A brand-new server process state (with its own connections) over the same database.
    let fresh = sqlx::PgPool::connect_with((*pool.connect_options()).clone())
        .await
        .unwrap();
    drop(first);
    let second = app_with_model(fresh, &model).await;
    second.say(&token, &id, "what do I have?").await;
    let requests = model.requests();
    assert_eq!(requests.len(), 3);
    let prompt = conversation_of(&requests[2]);
    let users: Vec<&(String, String)> = prompt.iter().filter(|(role, _)| role == "user").collect();
    assert_eq!(users.len(), 2);
    assert_eq!(users[0].1, "add buy milk");
    assert_eq!(users[1].1, "what do I have?");
    assert_eq!(
        prompt
            .iter()
            .filter(|(_, c)| c == "what do I have?")
            .count(),
        1,
        "the new message appears once"
    );
    assert!(prompt
        .iter()
        .any(|(role, c)| role == "assistant" && c == "Added Buy milk."));
    assert!(
        prompt
            .iter()
            .any(|(role, c)| role == "tool" && c.contains("Buy milk")),
        "earlier tool use is replayed"
    );
    assert_eq!(
        prompt.last().unwrap(),
        &("user".to_string(), "what do I have?".to_string())
    );
}

#[sqlx::test]
async fn offline_assistant_understands_everyday_phrasings(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let token = app.register("offline@example.com").await;
    let id = app.conversation(&token).await;
    let tasks = || async {
        let tasks: Vec<Value> = app.get(&token, "/api/tasks").await.json().await.unwrap();
        tasks
            .iter()
            .map(|t| {
                (
                    t["id"].as_i64().unwrap(),
                    t["title"].as_str().unwrap().to_string(),
                    t["completed"].as_bool().unwrap(),
                )
            })
            .collect::<Vec<_>>()
    };
    app.say(&token, &id, "Add a task to buy groceries").await;
    app.say(&token, &id, "remember to call the dentist").await;
    app.say(&token, &id, "Create a task called pay rent").await;
    assert_eq!(
        tasks().await,
        [
            (1, "Buy groceries".into(), false),
            (2, "Call the dentist".into(), false),
            (3, "Pay rent".into(), false)
        ]
    );

    let list = app.say(&token, &id, "show my tasks").await;
    let content = list["assistant_message"]["content"].as_str().unwrap();
    assert!(
        content.contains("| 1 | Buy groceries |") && content.contains("| 3 | Pay rent |"),
        "{content}"
    );
    assert_eq!(
        list["assistant_message"]["tool_calls"]["tool_calls"][0]["tool_name"],
        "list_tasks"
    );

    app.say(&token, &id, "mark task 1 as done").await;
    app.say(&token, &id, "I finished pay rent").await;
    assert_eq!(
        tasks()
            .await
            .iter()
            .filter(|t| t.2)
            .map(|t| t.0)
            .collect::<Vec<_>>(),
        [1, 3]
    );
    let done = app.say(&token, &id, "What have I completed?").await;
    let content = done["assistant_message"]["content"].as_str().unwrap();
    assert!(content.contains("2 completed tasks"), "{content}");
    let pending = app.say(&token, &id, "what's pending?").await;
    assert!(pending["assistant_message"]["content"]
        .as_str()
        .unwrap()
        .contains("1 pending task"));

    app.say(&token, &id, "rename task 2 to call the dentist on Monday")
        .await;
    app.say(&token, &id, "change pay rent to pay rent and bills")
        .await;
    let titles: Vec<String> = tasks().await.into_iter().map(|t| t.1).collect();
    assert_eq!(
        titles,
        [
            "Buy groceries",
            "call the dentist on Monday",
            "pay rent and bills"
        ]
    );

    // Deletes ask first (the default policy): each is approved.
    for text in ["delete task 1", "remove pay rent and bills"] {
        let parked = app.say(&token, &id, text).await;
        assert_eq!(
            parked["approvals"][0]["tool_name"], "delete_task",
            "{parked}"
        );
        let call = parked["approvals"][0]["call_id"].as_str().unwrap();
        let res = app
            .post(
                &token,
                &format!("/api/chat/conversations/{id}/approvals/{call}"),
                json!({ "approve": true }),
            )
            .await;
        assert_eq!(res.status(), StatusCode::OK, "{text}");
    }
    // A task that does not exist: nothing to ask about, the call fails at once.
    let cancel = app.say(&token, &id, "cancel task 9").await;
    assert!(cancel["assistant_message"]["content"]
        .as_str()
        .unwrap()
        .contains("task 9 not found"));
    assert_eq!(
        tasks().await.into_iter().map(|t| t.0).collect::<Vec<_>>(),
        [2]
    );

    let help = app.say(&token, &id, "hello there").await;
    assert!(help["assistant_message"]["content"]
        .as_str()
        .unwrap()
        .contains("offline assistant"));
    assert!(help["assistant_message"]["tool_calls"].is_null());
}

#[sqlx::test]
async fn a_running_turn_reports_what_it_is_doing(pool: PgPool) {
    let model = MockModel::start(vec![
        Step::SlowTools(
            700,
            vec![(
                "add_task".into(),
                json!({ "title": "Call mum" }).to_string(),
            )],
        ),
        Step::SlowText(700, "Added **Call mum**.".into()),
    ])
    .await;
    let app = app_with_model(pool, &model).await;
    let token = app.register("progress@example.com").await;
    let id = app.conversation(&token).await;
    let idle: Value = app.messages(&token, &id, "").await;
    assert_eq!(idle["activity"], Value::Null);

    let send = {
        let url = app.at(&format!("/api/chat/conversations/{id}/messages"));
        let token = token.clone();
        tokio::spawn(async move {
            reqwest::Client::new()
                .post(url)
                .bearer_auth(token)
                .json(&json!({ "content": "remind me to call mum" }))
                .send()
                .await
                .unwrap()
                .status()
        })
    };
    // Poll as the UI does, recording every distinct step the server reports.
    let mut steps: Vec<Value> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    let last_page = loop {
        let page: Value = app.messages(&token, &id, "?after=0").await;
        let activity = &page["activity"];
        if !activity.is_null() {
            assert_eq!(activity["user_seq"], 1, "{activity}");
            assert!(activity["since"].as_str().is_some());
            if steps.last() != Some(&activity["tool_name"]) {
                steps.push(activity["tool_name"].clone());
            }
        }
        if page["messages"].as_array().unwrap().len() == 2 {
            break page;
        }
        assert!(Instant::now() < deadline, "the turn never completed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(send.await.unwrap(), 201);
    // Thinking first, then the tool's name while the model reads its result.
    assert_eq!(steps, [Value::Null, json!("add_task")]);
    // With the reply stored, nothing is reported, and nothing is left behind.
    assert_eq!(last_page["activity"], Value::Null);
    let left: i64 = sqlx::query_scalar("SELECT count(*) FROM turn_activity")
        .fetch_one(&app.state.pool)
        .await
        .unwrap();
    assert_eq!(left, 0);
}

#[sqlx::test]
async fn a_turn_completes_after_the_client_disconnects(pool: PgPool) {
    let model = MockModel::start(vec![Step::SlowText(1500, "Finished anyway.".into())]).await;
    let app = app_with_model(pool, &model).await;
    let token = app.register("leaver@example.com").await;
    let id = app.conversation(&token).await;
    let impatient = reqwest::Client::builder()
        .timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    let res = impatient
        .post(app.at(&format!("/api/chat/conversations/{id}/messages")))
        .bearer_auth(&token)
        .json(&json!({ "content": "take your time" }))
        .send()
        .await;
    assert!(res.is_err(), "the client gave up before the reply");
    // The reply still arrives, for the next poll.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let page: Value = app.messages(&token, &id, "?after=0").await;
        let messages = page["messages"].as_array().unwrap().clone();
        if messages.len() == 2 {
            assert_eq!(messages[0]["content"], "take your time");
            assert_eq!(messages[1]["content"], "Finished anyway.");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the turn never completed: {messages:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[sqlx::test]
async fn nul_characters_from_the_model_are_stored_safely(pool: PgPool) {
    let model = MockModel::start(vec![
        tools(&[("add_task", json!({ "title": "bad\u{0}title" }))]),
        Step::Text("Done\u{0} anyway".into()),
    ])
    .await;
    let app = app_with_model(pool, &model).await;
    let token = app.register("nulmodel@example.com").await;
    let id = app.conversation(&token).await;
    let turn = app.say(&token, &id, "add something odd").await;
    let reply = &turn["assistant_message"];
    assert_eq!(reply["content"], "Done\u{FFFD} anyway");
    let record = &reply["tool_calls"]["tool_calls"][0];
    assert_eq!(record["arguments"]["title"], "bad\u{FFFD}title");
    assert_eq!(
        record["status"], "error",
        "the service refused the NUL title"
    );
    assert!(task_titles(&app).await.is_empty());
}

#[sqlx::test]
async fn the_offline_assistant_explains_itself_without_calling_a_tool(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let token = app.register("help@example.com").await;
    let id = app.conversation(&token).await;
    app.say(&token, &id, "add buy milk").await;
    for question in [
        "help",
        "What can you do?",
        "how does this work?",
        "Can you help me?",
        "?",
    ] {
        let turn = app.say(&token, &id, question).await;
        let reply = &turn["assistant_message"];
        let content = reply["content"].as_str().unwrap();
        assert!(
            content.starts_with("I'm the offline assistant."),
            "{question}: {content}"
        );
        for example in [
            "add buy groceries",
            "show my tasks",
            "mark task 1 as done",
            "delete task 3",
        ] {
            assert!(content.contains(example), "{question}: {example} missing");
        }
        assert!(
            reply["tool_calls"].is_null(),
            "{question}: no tool is called"
        );
    }
    let calls: i64 = sqlx::query_scalar("SELECT count(*) FROM turn_tool_calls")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(calls, 1, "only the add called a tool");
}
