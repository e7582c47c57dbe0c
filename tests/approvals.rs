//! The assistant asks before it deletes, and every change it made can be undone (issue #24),
//! over real HTTP and real Postgres with a scripted model over HTTP: a parked turn decided on
//! another replica, declined, surviving a SIGKILL (parked, and approved mid-answer), holding no
//! turn slot, declined by a new message; undo of each kind of change (and of one changed
//! since); the same rules through server functions and ChatKit; the offline assistant; MCP
//! clients, which delete directly.

mod common;

use std::time::Duration;

use common::{
    expect_error,
    mock_model::{MockModel, Step},
    process::{database_url, ServerProcess},
    process_client::{model_requests, settings, Client},
    sse::SseReader,
    TestApp,
};
use reqwest::{Method, Response, StatusCode};
use rmcp::{
    model::{CallToolRequestParams, ClientCapabilities, ClientInfo, Implementation},
    transport::{
        streamable_http_client::StreamableHttpClientTransportConfig, StreamableHttpClientTransport,
    },
    ServiceExt,
};
use serde_json::{json, Value};
use sqlx::PgPool;

#[sqlx::test]
async fn delete_waits_for_approval_and_a_second_replica_approves(pool: PgPool) {
    let model = MockModel::start(vec![
        tool("delete_task", json!({ "task_id": 1 })),
        Step::Text("Deleted.".into()),
    ])
    .await;
    let db = database_url(&pool);
    let a = ServerProcess::start(&db, &settings(&model)).await;
    let b = ServerProcess::start(&db, &settings(&model)).await;
    let client = Client::register(&a, "approve-replicas@example.com").await;
    let title = json!({ "title": "Water the plants" });
    let task = api(&a, &client, Method::POST, "/api/tasks", Some(title)).await;
    assert_eq!(json_with(task, StatusCode::CREATED, "add").await["id"], 1);
    let conversation = client.conversation(&a).await;
    let events = api(&b, &client, Method::GET, "/api/chat/events", None).await;
    assert_eq!(events.status(), StatusCode::OK);
    let mut tab = SseReader::new(events);

    let body = json!({ "content": "delete the plants task" });
    let res = api(
        &a,
        &client,
        Method::POST,
        &messages_path(&conversation),
        Some(body),
    )
    .await;
    let sent = json_with(res, StatusCode::CREATED, "send").await;
    assert!(sent["assistant_message"].is_null(), "it asks first: {sent}");
    let approvals = sent["approvals"].as_array().expect("approvals");
    assert_eq!(approvals.len(), 1, "{sent}");
    assert_eq!(approvals[0]["tool_name"], "delete_task");
    assert_eq!(approvals[0]["arguments"], json!({ "task_id": 1 }));
    assert_eq!(
        approvals[0]["task"],
        json!({ "id": 1, "title": "Water the plants" })
    );
    let call = approvals[0]["call_id"].as_str().unwrap().to_string();
    let res = api(&a, &client, Method::GET, "/api/tasks/1", None).await;
    assert_eq!(
        res.status(),
        StatusCode::OK,
        "nothing is deleted before the decision"
    );
    let res = api(
        &b,
        &client,
        Method::GET,
        &messages_path(&conversation),
        None,
    )
    .await;
    let page = json_with(res, StatusCode::OK, "messages").await;
    assert_eq!(page["activity"]["state"], "approval", "{page}");
    assert_eq!(page["activity"]["tool_name"], "delete_task");
    assert_eq!(page["activity"]["user_seq"], sent["user_message"]["seq"]);
    assert_eq!(page["activity"]["approvals"], sent["approvals"]);
    // The tab on the other replica was told, with a stored (replayable) event.
    let seen = tab
        .until(Duration::from_secs(10), |d| {
            d["type"] == "activity" && d["state"] == "approval"
        })
        .await;
    let announced = seen.last().unwrap();
    assert!(announced.id.is_some(), "a stored event: {announced:?}");
    assert_eq!(announced.data["call_id"], call.as_str());
    assert_eq!(announced.data["conversation_id"], conversation.as_str());
    assert_eq!(announced.data["tool_name"], "delete_task");
    assert_eq!(announced.data["task"]["title"], "Water the plants");

    let approve = json!({ "approve": true });
    let res = api(
        &b,
        &client,
        Method::POST,
        &decide_path(&conversation, &call),
        Some(approve),
    )
    .await;
    let decided = json_with(res, StatusCode::OK, "approve on B").await;
    assert_eq!(decided["approved"], true);
    assert_eq!(decided["pending"], json!([]));
    let turn = &decided["turn"];
    assert_eq!(turn["user_message"]["id"], sent["user_message"]["id"]);
    assert_eq!(
        turn["assistant_message"]["content"], "Deleted.",
        "{decided}"
    );
    let record = &turn["assistant_message"]["tool_calls"]["tool_calls"][0];
    assert_eq!(record["tool_name"], "delete_task");
    assert_eq!(record["status"], "success");
    let before = json!({ "title": "Water the plants", "description": null, "completed": false,
                         "due": null, "priority": 4, "tags": [], "recurrence": null });
    assert_eq!(
        record["change"],
        json!({ "task_id": 1, "before": before, "after": null })
    );
    let gone = api(&a, &client, Method::GET, "/api/tasks/1", None).await;
    refused(gone, StatusCode::NOT_FOUND, "the deleted task").await;
    // The model was asked twice in all: the question, then the answer shown the delete.
    assert_eq!(model.requests().len(), 2);
    let told = tool_messages(&model, 1);
    assert_eq!(told.len(), 1, "{told:?}");
    assert_eq!(called(&model, 1, &told[0]), "delete_task");
    assert!(
        told[0]["content"].as_str().unwrap().contains("deleted"),
        "{told:?}"
    );
    let mut seen = tab
        .until(Duration::from_secs(10), |d| d["type"] == "task_deleted")
        .await;
    let decided_event =
        |d: &Value| d["type"] == "approval_decided" && d["call_id"] == call.as_str();
    if !seen.iter().any(|e| decided_event(&e.data)) {
        seen.extend(tab.until(Duration::from_secs(5), decided_event).await);
    }
    let event = seen.iter().find(|e| decided_event(&e.data)).unwrap();
    assert_eq!(event.data["approved"], true);

    for (server, approve) in [(&a, false), (&b, true)] {
        let body = json!({ "approve": approve });
        let path = decide_path(&conversation, &call);
        let res = api(server, &client, Method::POST, &path, Some(body));
        refused(res.await, StatusCode::CONFLICT, "deciding again").await;
    }
    assert_eq!(model.requests().len(), 2, "deciding again asked nothing");
    assert_eq!(client.messages(&a, &conversation).await.len(), 2);
}

#[sqlx::test]
async fn decline_tells_the_model_and_keeps_the_task(pool: PgPool) {
    let model = MockModel::start(vec![
        tool("delete_task", json!({ "task_id": 1 })),
        Step::Text("OK, I kept it.".into()),
    ])
    .await;
    let app = TestApp::with_model(pool, &model).await;
    let token = app.register("decline@example.com").await;
    add_task(&app, &token, "Call the bank").await;
    let kept = task_state(&app, &token, 1).await;
    let id = app.conversation(&token).await;
    let parked = app.say(&token, &id, "delete the bank task").await;
    assert!(parked["assistant_message"].is_null(), "{parked}");
    let call = parked["approvals"][0]["call_id"]
        .as_str()
        .unwrap()
        .to_string();

    let decided = json_with(
        decide(&app, &token, &id, &call, false).await,
        StatusCode::OK,
        "decline",
    )
    .await;
    assert_eq!(decided["approved"], false);
    let reply = &decided["turn"]["assistant_message"];
    assert_eq!(reply["content"], "OK, I kept it.", "{decided}");
    let record = &reply["tool_calls"]["tool_calls"][0];
    assert_eq!(record["tool_name"], "delete_task");
    assert_eq!(record["status"], "declined");
    assert_eq!(record["result"]["declined"], true);
    assert!(
        record["change"].is_null(),
        "a declined call changed nothing: {record}"
    );
    assert_eq!(
        task_state(&app, &token, 1).await,
        kept,
        "the task is untouched"
    );
    assert_eq!(model.requests().len(), 2);
    let told = tool_messages(&model, 1);
    assert_eq!(told.len(), 1, "{told:?}");
    assert_eq!(called(&model, 1, &told[0]), "delete_task");
    assert!(
        told[0]["content"].as_str().unwrap().contains("declined"),
        "{told:?}"
    );
    // Stored: the page shows the reply and its declined record; nothing waits.
    let page = app.messages(&token, &id, "").await;
    assert!(page["activity"].is_null(), "{page}");
    let messages = page["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 2, "{page}");
    assert_eq!(messages[1]["id"], reply["id"]);
    assert_eq!(
        messages[1]["tool_calls"]["tool_calls"][0]["status"],
        "declined"
    );
    // Nothing to undo (400), nothing to decide again (409).
    let reply_id = reply["id"].as_str().unwrap();
    refused(
        undo(&app, &token, &id, reply_id, json!({})).await,
        StatusCode::BAD_REQUEST,
        "undo of a declined call",
    )
    .await;
    refused(
        decide(&app, &token, &id, &call, true).await,
        StatusCode::CONFLICT,
        "approve after decline",
    )
    .await;
    assert_eq!(task_state(&app, &token, 1).await, kept);
    assert_eq!(model.requests().len(), 2);
}

#[sqlx::test]
async fn a_parked_turn_survives_sigkill(pool: PgPool) {
    let model = MockModel::start(vec![
        tool("delete_task", json!({ "task_id": 1 })),
        Step::Text("Deleted.".into()),
    ])
    .await;
    let db = database_url(&pool);
    let mut server = ServerProcess::start(&db, &settings(&model)).await;
    let client = Client::register(&server, "parked-kill@example.com").await;
    let (conversation, sent, call) = park_a_delete(&server, &client).await;
    server.kill();

    let server = ServerProcess::start(&db, &settings(&model)).await;
    // Past a lease and a sweep: no sweeper takes up a parked turn by itself.
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(model.requests().len(), 1, "the parked turn waited");
    let res = api(
        &server,
        &client,
        Method::GET,
        &messages_path(&conversation),
        None,
    )
    .await;
    let page = json_with(res, StatusCode::OK, "messages after the restart").await;
    assert_eq!(page["activity"]["state"], "approval", "{page}");
    assert_eq!(page["activity"]["approvals"][0]["call_id"], call.as_str());
    let res = api(&server, &client, Method::GET, "/api/tasks/1", None).await;
    assert_eq!(res.status(), StatusCode::OK);

    let approve = json!({ "approve": true });
    let res = api(
        &server,
        &client,
        Method::POST,
        &decide_path(&conversation, &call),
        Some(approve),
    )
    .await;
    let decided = json_with(res, StatusCode::OK, "approve after the restart").await;
    assert_eq!(
        decided["turn"]["assistant_message"]["content"], "Deleted.",
        "{decided}"
    );
    assert_eq!(model.requests().len(), 2);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let path = format!("{}?branch=all", messages_path(&conversation));
    let res = api(&server, &client, Method::GET, &path, None).await;
    let all = json_with(res, StatusCode::OK, "every branch").await;
    let all = all["messages"].as_array().unwrap();
    assert_eq!(all.len(), 2, "the question and one answer: {all:?}");
    let answers: Vec<&Value> = all.iter().filter(|m| m["role"] == "assistant").collect();
    assert_eq!(answers.len(), 1, "{all:?}");
    assert_eq!(answers[0]["parent_id"], sent["user_message"]["id"]);
    assert_eq!(answers[0]["content"], "Deleted.");
    let gone = api(&server, &client, Method::GET, "/api/tasks/1", None).await;
    refused(gone, StatusCode::NOT_FOUND, "the deleted task").await;
    assert_eq!(deletes_made(&pool).await, 1, "the task was deleted once");
    assert_eq!(model.requests().len(), 2, "nothing more was asked");
}

#[sqlx::test]
async fn an_approved_delete_killed_mid_answer_is_made_once(pool: PgPool) {
    let model = MockModel::start(vec![
        tool("delete_task", json!({ "task_id": 1 })),
        Step::Stall(120_000),
        Step::Text("Deleted.".into()),
    ])
    .await;
    let db = database_url(&pool);
    let mut server = ServerProcess::start(&db, &settings(&model)).await;
    let client = Client::register(&server, "approved-kill@example.com").await;
    let (conversation, _, call) = park_a_delete(&server, &client).await;
    let approve = client
        .http
        .post(server.at(&decide_path(&conversation, &call)))
        .bearer_auth(&client.token)
        .json(&json!({ "approve": true }));
    let _decision = tokio::spawn(async move { approve.send().await });
    // The call is made (with its record) before the model is asked to go on: kill it then.
    model_requests(&model, 2).await;
    assert_eq!(deletes_made(&pool).await, 1);
    server.kill();

    let server = ServerProcess::start(&db, &settings(&model)).await;
    let messages = client
        .wait_for_reply(&server, &conversation, Duration::from_secs(20))
        .await;
    assert_eq!(messages.len(), 2, "{messages:?}");
    assert_eq!(messages[1]["content"], "Deleted.");
    let calls = messages[1]["tool_calls"]["tool_calls"].as_array().unwrap();
    assert_eq!(calls.len(), 1, "{calls:?}");
    assert_eq!(calls[0]["tool_name"], "delete_task");
    assert_eq!(calls[0]["status"], "success");
    // The resumed attempt showed the model the call made, and did not make it again.
    assert_eq!(model.requests().len(), 3);
    let told = tool_messages(&model, 2);
    assert_eq!(told.len(), 1, "{told:?}");
    assert!(told[0]["content"].as_str().unwrap().contains("deleted"));
    assert_eq!(deletes_made(&pool).await, 1);
    let gone = api(&server, &client, Method::GET, "/api/tasks/1", None).await;
    refused(gone, StatusCode::NOT_FOUND, "the deleted task").await;
}

#[sqlx::test]
async fn parked_turn_holds_no_slot(pool: PgPool) {
    let model = MockModel::start(vec![
        tool("delete_task", json!({ "task_id": 1 })),
        Step::Text("Hello there.".into()),
        Step::SlowText(1_500, "Slowly.".into()),
        Step::Text("Deleted.".into()),
    ])
    .await;
    let base = model.base_url.clone();
    let app = TestApp::spawn_with(pool, move |c| {
        c.openai_api_key = Some("sk-test".into());
        c.openai_base_url = base;
        c.model_max_retries = 0;
        c.turns_per_user = 1;
    })
    .await;
    let token = app.register("slots@example.com").await;
    add_task(&app, &token, "Old notes").await;
    let (a, b, c) = (
        app.conversation(&token).await,
        app.conversation(&token).await,
        app.conversation(&token).await,
    );
    let parked = app.say(&token, &a, "delete the old notes").await;
    assert!(parked["assistant_message"].is_null(), "{parked}");
    let call = parked["approvals"][0]["call_id"]
        .as_str()
        .unwrap()
        .to_string();

    let answered = app.say(&token, &b, "hello").await;
    assert_eq!(
        answered["assistant_message"]["content"], "Hello there.",
        "{answered}"
    );
    // The bound is real: while a turn runs, another one of this user is refused.
    let slow_path = messages_path(&b);
    let slow = app.post(&token, &slow_path, json!({ "content": "take your time" }));
    let meanwhile = async {
        model_requests(&model, 3).await;
        let res = app
            .post(
                &token,
                &messages_path(&c),
                json!({ "content": "and this?" }),
            )
            .await;
        assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    };
    let (slow, ()) = tokio::join!(slow, meanwhile);
    assert_eq!(slow.status(), StatusCode::CREATED);
    // The parked turn takes a slot again once decided, and goes on.
    let decided = json_with(
        decide(&app, &token, &a, &call, true).await,
        StatusCode::OK,
        "approve",
    )
    .await;
    assert_eq!(
        decided["turn"]["assistant_message"]["content"], "Deleted.",
        "{decided}"
    );
    assert!(task_state(&app, &token, 1).await.is_none());
}

#[sqlx::test]
async fn a_new_message_declines_what_waits(pool: PgPool) {
    let model = MockModel::start(vec![
        tool("delete_task", json!({ "task_id": 1 })),
        Step::Text("Sure, bread it is.".into()),
    ])
    .await;
    let app = TestApp::with_model(pool, &model).await;
    let token = app.register("moved-on@example.com").await;
    add_task(&app, &token, "Milk").await;
    let id = app.conversation(&token).await;
    let parked = app.say(&token, &id, "delete milk").await;
    assert!(parked["assistant_message"].is_null(), "{parked}");
    let call = parked["approvals"][0]["call_id"]
        .as_str()
        .unwrap()
        .to_string();

    let next = app.say(&token, &id, "no wait, add bread instead").await;
    assert_eq!(
        next["assistant_message"]["content"], "Sure, bread it is.",
        "{next}"
    );
    assert_eq!(next["approvals"], json!([]));
    let page = app.messages(&token, &id, "").await;
    assert!(page["activity"].is_null(), "nothing waits any more: {page}");
    let messages = page["messages"].as_array().unwrap();
    let contents: Vec<&str> = messages
        .iter()
        .map(|m| m["content"].as_str().unwrap())
        .collect();
    assert_eq!(
        contents,
        [
            "delete milk",
            "Not done, because a new message was sent before it was approved: Delete task 1 “Milk”.",
            "no wait, add bread instead",
            "Sure, bread it is.",
        ]
    );
    assert_eq!(messages[1]["role"], "assistant");
    assert_eq!(messages[1]["parent_id"], parked["user_message"]["id"]);
    let record = &messages[1]["tool_calls"]["tool_calls"][0];
    assert_eq!(record["tool_name"], "delete_task");
    assert_eq!(record["status"], "declined");
    assert!(
        task_state(&app, &token, 1).await.is_some(),
        "the task is kept"
    );
    assert_eq!(
        model.requests().len(),
        2,
        "the declined question was not asked again"
    );
    refused(
        decide(&app, &token, &id, &call, true).await,
        StatusCode::CONFLICT,
        "approve what was declined",
    )
    .await;
    let decisions: Vec<String> = sqlx::query_scalar("SELECT decision FROM turn_approvals")
        .fetch_all(&app.state.pool)
        .await
        .unwrap();
    assert_eq!(decisions, ["declined"]);
    assert!(task_state(&app, &token, 1).await.is_some());
}

#[sqlx::test]
async fn several_calls_of_one_round_are_decided_one_by_one_or_together(pool: PgPool) {
    let two_deletes = |a: i64, b: i64| {
        Step::Tools(vec![
            ("delete_task".into(), json!({ "task_id": a }).to_string()),
            ("delete_task".into(), json!({ "task_id": b }).to_string()),
        ])
    };
    let model = MockModel::start(vec![
        two_deletes(1, 2),
        Step::Text("Deleted one, kept one.".into()),
        two_deletes(3, 4),
        Step::Text("Both gone.".into()),
    ])
    .await;
    let app = TestApp::with_model(pool, &model).await;
    let token = app.register("several@example.com").await;
    for title in ["One", "Two", "Three", "Four"] {
        add_task(&app, &token, title).await;
    }
    let id = app.conversation(&token).await;
    let parked = app.say(&token, &id, "delete one and two").await;
    let calls: Vec<String> = parked["approvals"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["call_id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(calls.len(), 2, "both calls wait: {parked}");
    assert_eq!(parked["approvals"][1]["task"]["title"], "Two");

    // One by one: the first decision leaves the other waiting, and nothing runs yet.
    let first = json_with(
        decide(&app, &token, &id, &calls[0], true).await,
        StatusCode::OK,
        "approve the first",
    )
    .await;
    assert!(first["turn"].is_null(), "{first}");
    assert_eq!(first["pending"].as_array().unwrap().len(), 1, "{first}");
    assert_eq!(first["pending"][0]["call_id"], calls[1].as_str());
    assert!(task_state(&app, &token, 1).await.is_some(), "not yet");
    assert_eq!(model.requests().len(), 1);
    let page = app.messages(&token, &id, "").await;
    assert_eq!(page["activity"]["approvals"], first["pending"], "{page}");
    // The rest together (here: the one left), declined.
    let all = format!("/api/chat/conversations/{id}/approvals");
    let rest = json_with(
        app.post(&token, &all, json!({ "approve": false })).await,
        StatusCode::OK,
        "decline the rest",
    )
    .await;
    assert_eq!(
        rest["turn"]["assistant_message"]["content"], "Deleted one, kept one.",
        "{rest}"
    );
    let records = rest["turn"]["assistant_message"]["tool_calls"]["tool_calls"]
        .as_array()
        .unwrap();
    let statuses: Vec<&str> = records
        .iter()
        .map(|r| r["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["success", "declined"]);
    assert!(task_state(&app, &token, 1).await.is_none());
    assert!(task_state(&app, &token, 2).await.is_some());
    let told = tool_messages(&model, 1);
    assert_eq!(told.len(), 2, "{told:?}");
    assert!(told[0]["content"].as_str().unwrap().contains("deleted"));
    assert!(told[1]["content"].as_str().unwrap().contains("declined"));
    refused(
        app.post(&token, &all, json!({ "approve": true })).await,
        StatusCode::CONFLICT,
        "approve all when nothing waits",
    )
    .await;

    // Together, through server functions: both calls at once.
    let parked = app.say(&token, &id, "delete three and four").await;
    assert_eq!(parked["approvals"].as_array().unwrap().len(), 2, "{parked}");
    let form = [("id", id.as_str()), ("approve", "true")];
    let decided = json_with(
        sfn(&app, &token, "/sfn/chat/approve_all", &form).await,
        StatusCode::OK,
        "sfn approve_all",
    )
    .await;
    assert_eq!(
        decided["turn"]["assistant_message"]["content"], "Both gone.",
        "{decided}"
    );
    assert!(task_state(&app, &token, 3).await.is_none());
    assert!(task_state(&app, &token, 4).await.is_none());
    let told = tool_messages(&model, 3);
    let latest: Vec<&str> = told[told.len().saturating_sub(2)..]
        .iter()
        .map(|m| m["content"].as_str().unwrap())
        .collect();
    assert!(
        latest.len() == 2 && latest.iter().all(|c| c.contains("deleted")),
        "both results shown: {told:?}"
    );
    refused(
        sfn(&app, &token, "/sfn/chat/approve_all", &form).await,
        StatusCode::CONFLICT,
        "sfn approve_all twice",
    )
    .await;
    let decisions: Vec<String> =
        sqlx::query_scalar("SELECT decision FROM turn_approvals ORDER BY decided_at, idx")
            .fetch_all(&app.state.pool)
            .await
            .unwrap();
    assert_eq!(decisions, ["approved", "declined", "approved", "approved"]);
}

#[sqlx::test]
async fn undo_each_kind_of_change(pool: PgPool) {
    let model = MockModel::start(vec![
        tool("add_task", json!({ "title": "Buy milk" })),
        Step::Text("Added.".into()),
        tool("complete_task", json!({ "task_id": 1 })),
        Step::Text("Done.".into()),
        tool(
            "update_task",
            json!({ "task_id": 1, "title": "Buy oat milk" }),
        ),
        Step::Text("Renamed.".into()),
        tool("delete_task", json!({ "task_id": 1 })),
        Step::Text("Deleted.".into()),
    ])
    .await;
    let app = TestApp::with_model(pool, &model).await;
    let token = app.register("undo@example.com").await;
    set_policy(&app, &token, "never").await;
    let settings = json_with(
        app.get(&token, "/api/account/settings").await,
        StatusCode::OK,
        "settings",
    )
    .await;
    assert_eq!(
        settings,
        json!({ "approval_policy": "never", "time_zone": null })
    );
    let id = app.conversation(&token).await;
    let mut before = Vec::new();
    let mut replies = Vec::new();
    for text in [
        "add buy milk",
        "mark it done",
        "call it oat milk",
        "delete it",
    ] {
        before.push(task_state(&app, &token, 1).await);
        let turn = app.say(&token, &id, text).await;
        assert_eq!(turn["approvals"], json!([]), "policy never asks: {turn}");
        let record = &turn["assistant_message"]["tool_calls"]["tool_calls"][0];
        assert_eq!(record["status"], "success", "{turn}");
        replies.push(
            turn["assistant_message"]["id"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    assert!(task_state(&app, &token, 1).await.is_none(), "deleted");
    let page = app.messages(&token, &id, "").await;
    let added = &page["messages"][1]["tool_calls"]["tool_calls"][0]["change"];
    let milk = json!({ "title": "Buy milk", "description": null, "completed": false,
                       "due": null, "priority": 4, "tags": [], "recurrence": null });
    assert_eq!(
        *added,
        json!({ "task_id": 1, "before": null, "after": milk })
    );

    // Newest first: each undo puts the task back exactly as its call found it.
    for (i, reply) in replies.iter().enumerate().rev() {
        let res = undo(&app, &token, &id, reply, json!({})).await;
        let undone = json_with(res, StatusCode::OK, &format!("undo of turn {i}")).await;
        assert_eq!(
            task_state(&app, &token, 1).await,
            before[i],
            "undo of turn {i}"
        );
        match &before[i] {
            None => assert!(undone["task"].is_null(), "{undone}"),
            Some(state) => assert_eq!(fields(&undone["task"]), *state),
        }
        assert_eq!(undone["message"]["id"], reply.as_str());
        let record = &undone["message"]["tool_calls"]["tool_calls"][0];
        assert!(record["undone_at"].is_string(), "{undone}");
        assert!(undone["detail"].as_str().is_some_and(|d| !d.is_empty()));
        let again = undo(&app, &token, &id, reply, json!({ "confirm": true })).await;
        refused(
            again,
            StatusCode::CONFLICT,
            &format!("undo of turn {i} twice"),
        )
        .await;
    }
    let tasks = json_with(app.get(&token, "/api/tasks").await, StatusCode::OK, "tasks").await;
    assert_eq!(tasks, json!([]));
    let page = app.messages(&token, &id, "").await;
    let undone = page["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["tool_calls"]["tool_calls"][0]["undone_at"].is_string());
    assert_eq!(
        undone.count(),
        4,
        "every record stays marked undone: {page}"
    );

    // A task renamed since the assistant's change: undo says so, and goes ahead if confirmed.
    model.push(tool("add_task", json!({ "title": "Call mom" })));
    model.push(Step::Text("Added.".into()));
    let added = app.say(&token, &id, "add call mom").await;
    let task = added["assistant_message"]["tool_calls"]["tool_calls"][0]["change"]["task_id"]
        .as_i64()
        .unwrap();
    model.push(tool(
        "update_task",
        json!({ "task_id": task, "title": "Call mum" }),
    ));
    model.push(Step::Text("Renamed.".into()));
    let renamed = app.say(&token, &id, "spell it mum").await;
    let reply = renamed["assistant_message"]["id"].as_str().unwrap();
    let res = app
        .send_json(
            Method::PUT,
            &token,
            &format!("/api/tasks/{task}"),
            json!({ "title": "Call mother" }),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let detail = expect_error(
        undo(&app, &token, &id, reply, json!({})).await,
        StatusCode::CONFLICT,
    )
    .await;
    assert!(detail.contains("changed since"), "{detail}");
    assert_eq!(
        task_state(&app, &token, task).await.unwrap()["title"],
        "Call mother"
    );
    let res = undo(&app, &token, &id, reply, json!({ "confirm": true })).await;
    let undone = json_with(res, StatusCode::OK, "confirmed undo").await;
    assert_eq!(undone["task"]["title"], "Call mom");
    assert_eq!(
        task_state(&app, &token, task).await.unwrap()["title"],
        "Call mom"
    );
}

#[sqlx::test]
async fn undo_and_decide_through_every_interface(pool: PgPool) {
    let model = MockModel::start(vec![
        tool("complete_task", json!({ "task_id": 1 })),
        Step::Text("Marked it done.".into()),
        tool("delete_task", json!({ "task_id": 2 })),
        Step::Text("Kept it.".into()),
    ])
    .await;
    let app = TestApp::with_model(pool, &model).await;
    let alice = app.register("alice-interfaces@example.com").await;
    let bob = app.register("bob-interfaces@example.com").await;
    add_task(&app, &alice, "Water the plants").await;
    add_task(&app, &alice, "Pay rent").await;
    // The setting through server functions, read back over REST; it is per user.
    let form = [("approval_policy", "changes")];
    let saved = json_with(
        sfn(&app, &alice, "/sfn/auth/update_settings", &form).await,
        StatusCode::OK,
        "sfn update_settings",
    )
    .await;
    assert_eq!(saved["approval_policy"], "changes");
    let read = json_with(
        app.get(&alice, "/api/account/settings").await,
        StatusCode::OK,
        "settings",
    )
    .await;
    assert_eq!(read["approval_policy"], "changes");
    let read = json_with(
        sfn(&app, &alice, "/sfn/auth/settings", &[]).await,
        StatusCode::OK,
        "sfn settings",
    )
    .await;
    assert_eq!(read["approval_policy"], "changes");
    let bobs = json_with(
        app.get(&bob, "/api/account/settings").await,
        StatusCode::OK,
        "settings",
    )
    .await;
    assert_eq!(bobs["approval_policy"], "deletes");

    // Decided through server functions.
    let c1 = app.conversation(&alice).await;
    let parked = app.say(&alice, &c1, "I watered the plants").await;
    assert!(
        parked["assistant_message"].is_null(),
        "policy changes asks: {parked}"
    );
    assert_eq!(parked["approvals"][0]["tool_name"], "complete_task");
    let call = parked["approvals"][0]["call_id"]
        .as_str()
        .unwrap()
        .to_string();
    let approve = [
        ("id", c1.as_str()),
        ("call_id", call.as_str()),
        ("approve", "true"),
    ];
    refused(
        decide(&app, &bob, &c1, &call, true).await,
        StatusCode::NOT_FOUND,
        "REST decide, another user",
    )
    .await;
    refused(
        sfn(&app, &bob, "/sfn/chat/approve", &approve).await,
        StatusCode::NOT_FOUND,
        "sfn approve, another user",
    )
    .await;
    assert_eq!(
        task_state(&app, &alice, 1).await.unwrap()["completed"],
        false
    );
    let decided = json_with(
        sfn(&app, &alice, "/sfn/chat/approve", &approve).await,
        StatusCode::OK,
        "sfn approve",
    )
    .await;
    assert_eq!(decided["approved"], true);
    assert_eq!(
        decided["turn"]["assistant_message"]["content"], "Marked it done.",
        "{decided}"
    );
    assert_eq!(
        task_state(&app, &alice, 1).await.unwrap()["completed"],
        true
    );
    refused(
        sfn(&app, &alice, "/sfn/chat/approve", &approve).await,
        StatusCode::CONFLICT,
        "sfn approve twice",
    )
    .await;
    refused(
        decide(&app, &alice, &c1, &call, false).await,
        StatusCode::CONFLICT,
        "REST decide after sfn",
    )
    .await;

    // Undone through server functions.
    let reply = decided["turn"]["assistant_message"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let form = [
        ("id", c1.as_str()),
        ("message_id", reply.as_str()),
        ("index", "0"),
    ];
    refused(
        undo(&app, &bob, &c1, &reply, json!({})).await,
        StatusCode::NOT_FOUND,
        "REST undo, another user",
    )
    .await;
    refused(
        sfn(&app, &bob, "/sfn/chat/undo", &form).await,
        StatusCode::NOT_FOUND,
        "sfn undo, another user",
    )
    .await;
    assert_eq!(
        task_state(&app, &alice, 1).await.unwrap()["completed"],
        true
    );
    let undone = json_with(
        sfn(&app, &alice, "/sfn/chat/undo", &form).await,
        StatusCode::OK,
        "sfn undo",
    )
    .await;
    assert_eq!(undone["task"]["id"], 1);
    assert_eq!(undone["task"]["completed"], false);
    assert!(undone["message"]["tool_calls"]["tool_calls"][0]["undone_at"].is_string());
    assert_eq!(
        task_state(&app, &alice, 1).await.unwrap()["completed"],
        false
    );
    refused(
        sfn(&app, &alice, "/sfn/chat/undo", &form).await,
        StatusCode::CONFLICT,
        "sfn undo twice",
    )
    .await;
    refused(
        undo(&app, &alice, &c1, &reply, json!({})).await,
        StatusCode::CONFLICT,
        "REST undo after sfn",
    )
    .await;

    // Decided through ChatKit: the parked stream ends with the card, the action decides.
    let c2 = app.conversation(&alice).await;
    let input = json!({ "content": [{ "type": "input_text", "text": "drop the rent task" }],
        "attachments": [], "inference_options": {} });
    let send = json!({ "type": "threads.add_user_message", "params": { "thread_id": c2, "input": input } });
    let events = chatkit_stream(&app, &alice, send).await;
    let asked = events
        .iter()
        .find(|e| e["type"] == "thread.item.done" && e["item"]["type"] == "user_message")
        .unwrap_or_else(|| panic!("the user message: {events:?}"))["item"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let last = events.last().unwrap();
    assert_eq!(last["type"], "thread.item.done", "{events:?}");
    assert_eq!(last["item"]["type"], "widget", "{last}");
    let page = app.messages(&alice, &c2, "").await;
    let call = page["activity"]["approvals"][0]["call_id"]
        .as_str()
        .unwrap()
        .to_string();
    let card = last["item"]["id"].as_str().unwrap().to_string();
    assert_eq!(card, format!("appr_{asked}_{call}"));
    let buttons = &last["item"]["widget"]["children"][3]["children"];
    let keep =
        json!({ "type": "approval.decide", "payload": { "call_id": call, "approve": false } });
    assert_eq!(buttons[0]["onClickAction"], keep, "{last}");
    assert_eq!(buttons[1]["onClickAction"]["payload"]["approve"], true);
    let list = json!({ "type": "items.list", "params": { "thread_id": c2 } });
    let listed = json_with(
        app.post(&alice, "/chatkit", list).await,
        StatusCode::OK,
        "items.list",
    )
    .await;
    assert!(
        listed["data"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["id"] == card.as_str()),
        "{listed}"
    );
    let action = json!({ "type": "threads.custom_action", "params": { "thread_id": c2, "item_id": card,
        "action": { "type": "approval.decide", "payload": { "call_id": call, "approve": false } } } });
    let res = app.post(&bob, "/chatkit", action.clone()).await;
    chatkit_refused(res, StatusCode::NOT_FOUND).await;
    let events = chatkit_stream(&app, &alice, action.clone()).await;
    assert_eq!(events[0]["type"], "stream_options", "{events:?}");
    assert_eq!(events[1]["type"], "thread.item.replaced");
    assert_eq!(events[1]["item"]["id"], card.as_str());
    assert_eq!(
        events[1]["item"]["widget"]["children"][3]["children"][0]["disabled"],
        true
    );
    let done = events.last().unwrap();
    assert_eq!(done["type"], "thread.item.done", "{events:?}");
    assert_eq!(done["item"]["type"], "assistant_message");
    assert_eq!(done["item"]["content"][0]["text"], "Kept it.");
    assert!(
        task_state(&app, &alice, 2).await.is_some(),
        "declined: the task is kept"
    );
    assert!(tool_messages(&model, 3)[0]["content"]
        .as_str()
        .unwrap()
        .contains("declined"));
    chatkit_refused(
        app.post(&alice, "/chatkit", action).await,
        StatusCode::CONFLICT,
    )
    .await;
    refused(
        decide(&app, &alice, &c2, &call, true).await,
        StatusCode::CONFLICT,
        "REST decide after ChatKit",
    )
    .await;
    assert_eq!(model.requests().len(), 4);
}

#[sqlx::test]
async fn offline_assistant_asks_and_undoes(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let token = app.register("offline-undo@example.com").await;
    let id = app.conversation(&token).await;
    app.say(&token, &id, "add buy milk").await;
    let parked = app.say(&token, &id, "delete task 1").await;
    assert!(parked["assistant_message"].is_null(), "{parked}");
    assert_eq!(parked["approvals"][0]["tool_name"], "delete_task");
    assert_eq!(
        parked["approvals"][0]["task"],
        json!({ "id": 1, "title": "Buy milk" })
    );
    assert!(task_state(&app, &token, 1).await.is_some());
    let call = parked["approvals"][0]["call_id"]
        .as_str()
        .unwrap()
        .to_string();
    let decided = json_with(
        decide(&app, &token, &id, &call, true).await,
        StatusCode::OK,
        "approve",
    )
    .await;
    let reply = decided["turn"]["assistant_message"]["content"]
        .as_str()
        .unwrap();
    assert!(reply.contains("Deleted task 1"), "{reply}");
    assert!(task_state(&app, &token, 1).await.is_none());

    app.say(&token, &id, "add call mom").await;
    assert_eq!(
        task_state(&app, &token, 2).await.unwrap()["title"],
        "Call mom"
    );
    let turn = app.say(&token, &id, "undo that").await;
    let reply = turn["assistant_message"]["content"].as_str().unwrap();
    assert!(
        reply.contains("Undone") && reply.contains("task 2"),
        "{reply}"
    );
    assert!(
        task_state(&app, &token, 2).await.is_none(),
        "the added task is gone"
    );
    assert!(
        task_state(&app, &token, 1).await.is_none(),
        "only the newest change was undone"
    );
    // Again: the next newest change still in effect, the approved delete.
    let turn = app.say(&token, &id, "undo that").await;
    let reply = turn["assistant_message"]["content"].as_str().unwrap();
    assert!(reply.contains("Undone"), "{reply}");
    assert_eq!(
        task_state(&app, &token, 1).await.unwrap()["title"],
        "Buy milk"
    );
}

#[sqlx::test]
async fn mcp_delete_is_direct_and_parks_nothing(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let token = app.register("mcp-delete@example.com").await;
    // Even an account whose assistant asks before any change: MCP clients call tools directly.
    set_policy(&app, &token, "changes").await;
    add_task(&app, &token, "Old draft").await;
    add_task(&app, &token, "Keep me").await;
    let config =
        StreamableHttpClientTransportConfig::with_uri(app.at("/mcp")).auth_header(token.clone());
    let client = ClientInfo::new(
        ClientCapabilities::default(),
        Implementation::new("approvals-tests", "0.1"),
    )
    .serve(StreamableHttpClientTransport::from_config(config))
    .await
    .expect("MCP initialize");
    let call = |name: &'static str, arguments: Value| {
        let arguments = arguments.as_object().cloned().unwrap();
        client.call_tool(CallToolRequestParams::new(name).with_arguments(arguments))
    };
    let deleted = call("delete_task", json!({ "task_id": 1 })).await.unwrap();
    assert_eq!(deleted.is_error, Some(false));
    assert_eq!(
        deleted.structured_content.clone().unwrap(),
        json!({ "task_id": 1, "status": "deleted", "title": "Old draft" })
    );
    let listed = call("list_tasks", json!({}))
        .await
        .unwrap()
        .structured_content
        .unwrap();
    assert_eq!(listed["count"], 1, "{listed}");
    assert_eq!(listed["tasks"][0]["id"], 2);
    refused(
        app.get(&token, "/api/tasks/1").await,
        StatusCode::NOT_FOUND,
        "the deleted task",
    )
    .await;
    let pool = &app.state.pool;
    assert_eq!(count(pool, "SELECT count(*) FROM turn_approvals").await, 0);
    assert_eq!(count(pool, "SELECT count(*) FROM turns").await, 0);
    client.cancel().await.unwrap();
}

/// The settings page's "Sign out everywhere", through REST and through its server function:
/// every session of the account ends, on the other replica too; another account's do not.
#[sqlx::test]
async fn sign_out_everywhere_ends_every_session_on_every_replica(pool: PgPool) {
    let model = MockModel::start(vec![]).await;
    let db = database_url(&pool);
    let a = ServerProcess::start(&db, &settings(&model)).await;
    let b = ServerProcess::start(&db, &settings(&model)).await;
    let first = Client::register(&a, "everywhere@example.com").await;
    let other = Client::register(&a, "someone-else@example.com").await;
    let login = |server: &ServerProcess| {
        let url = server.at("/api/auth/login");
        async move {
            let res = reqwest::Client::new()
                .post(url)
                .json(&json!({ "email": "everywhere@example.com", "password": "password123" }))
                .send()
                .await
                .unwrap();
            json_with(res, StatusCode::OK, "login").await["access_token"]
                .as_str()
                .unwrap()
                .to_string()
        }
    };
    let status = |server: &ServerProcess, token: &str| {
        let request = reqwest::Client::new()
            .get(server.at("/api/tasks"))
            .bearer_auth(token);
        async move { request.send().await.unwrap().status() }
    };
    // Signed out on B within the session cache's refresh.
    let until_refused = |server: &ServerProcess, token: String| {
        let server_at = server.at("/api/tasks");
        async move {
            for _ in 0..100 {
                let res = reqwest::Client::new()
                    .get(&server_at)
                    .bearer_auth(&token)
                    .send()
                    .await
                    .unwrap();
                if res.status() == StatusCode::UNAUTHORIZED {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            panic!("a revoked session still answers on {server_at}");
        }
    };

    for through_sfn in [false, true] {
        let (here, there) = (login(&a).await, login(&b).await);
        assert_eq!(status(&b, &there).await, StatusCode::OK);
        let res = if through_sfn {
            reqwest::Client::new()
                .post(a.at("/sfn/auth/logout_everywhere"))
                .bearer_auth(&here)
                .header("content-type", "application/x-www-form-urlencoded")
                .body("")
                .send()
                .await
                .unwrap()
        } else {
            reqwest::Client::new()
                .post(a.at("/api/auth/logout-everywhere"))
                .bearer_auth(&here)
                .send()
                .await
                .unwrap()
        };
        assert!(
            res.status().is_success(),
            "sfn {through_sfn}: {}",
            res.status()
        );
        assert_eq!(status(&a, &here).await, StatusCode::UNAUTHORIZED);
        until_refused(&b, there).await;
        assert_eq!(status(&a, &first.token).await, StatusCode::UNAUTHORIZED);
        assert_eq!(
            status(&b, &other.token).await,
            StatusCode::OK,
            "another account"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/// A model answer calling one tool.
fn tool(name: &str, arguments: Value) -> Step {
    Step::Tools(vec![(name.to_string(), arguments.to_string())])
}

fn messages_path(conversation: &str) -> String {
    format!("/api/chat/conversations/{conversation}/messages")
}

fn decide_path(conversation: &str, call: &str) -> String {
    format!("/api/chat/conversations/{conversation}/approvals/{call}")
}

/// Asserts the status; the JSON body.
async fn json_with(res: Response, status: StatusCode, what: &str) -> Value {
    let got = res.status();
    let text = res.text().await.unwrap();
    assert_eq!(got, status, "{what}: {text}");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{what}: not JSON ({e}): {text}"))
}

/// Asserts the status and the `{"detail": ...}` error shape with a non-empty detail.
async fn refused(res: Response, status: StatusCode, what: &str) {
    let body = json_with(res, status, what).await;
    assert!(
        body["detail"].as_str().is_some_and(|d| !d.is_empty()),
        "{what}: {body}"
    );
}

/// Asserts the status and ChatKit's error shape.
async fn chatkit_refused(res: Response, status: StatusCode) {
    let body = json_with(res, status, "ChatKit").await;
    assert_eq!(body["type"], "error", "{body}");
}

/// A request of `client` to a server process.
async fn api(
    server: &ServerProcess,
    client: &Client,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> Response {
    let mut request = client
        .http
        .request(method, server.at(path))
        .bearer_auth(&client.token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    request.send().await.unwrap()
}

/// Adds task 1 over REST and sends a message the model answers with `delete_task` of it:
/// (the conversation, the parked send's answer, the call id it waits on).
async fn park_a_delete(server: &ServerProcess, client: &Client) -> (String, Value, String) {
    let res = api(
        server,
        client,
        Method::POST,
        "/api/tasks",
        Some(json!({ "title": "Old notes" })),
    );
    assert_eq!(
        json_with(res.await, StatusCode::CREATED, "add").await["id"],
        1
    );
    let conversation = client.conversation(server).await;
    let body = json!({ "content": "delete the old notes" });
    let res = api(
        server,
        client,
        Method::POST,
        &messages_path(&conversation),
        Some(body),
    )
    .await;
    let sent = json_with(res, StatusCode::CREATED, "send").await;
    assert!(sent["assistant_message"].is_null(), "{sent}");
    assert_eq!(sent["approvals"][0]["task"]["title"], "Old notes");
    let call = sent["approvals"][0]["call_id"]
        .as_str()
        .unwrap()
        .to_string();
    (conversation, sent, call)
}

async fn decide(
    app: &TestApp,
    token: &str,
    conversation: &str,
    call: &str,
    approve: bool,
) -> Response {
    app.post(
        token,
        &decide_path(conversation, call),
        json!({ "approve": approve }),
    )
    .await
}

/// Undo of the first tool call of assistant message `message`.
async fn undo(
    app: &TestApp,
    token: &str,
    conversation: &str,
    message: &str,
    body: Value,
) -> Response {
    let path =
        format!("/api/chat/conversations/{conversation}/messages/{message}/tool_calls/0/undo");
    app.post(token, &path, body).await
}

/// A server function call (url-encoded form), as this site's own scripts make it.
async fn sfn(app: &TestApp, token: &str, endpoint: &str, form: &[(&str, &str)]) -> Response {
    app.http
        .post(app.at(endpoint))
        .bearer_auth(token)
        .form(form)
        .send()
        .await
        .unwrap()
}

async fn set_policy(app: &TestApp, token: &str, policy: &str) {
    let body = json!({ "approval_policy": policy });
    let res = app
        .send_json(Method::PUT, token, "/api/account/settings", body)
        .await;
    assert_eq!(
        json_with(res, StatusCode::OK, "PUT settings").await["approval_policy"],
        policy
    );
}

async fn add_task(app: &TestApp, token: &str, title: &str) {
    let res = app
        .post(token, "/api/tasks", json!({ "title": title }))
        .await;
    json_with(res, StatusCode::CREATED, "add a task").await;
}

/// Task `id` as `GET /api/tasks/{id}` shows it (all but `updated_at`); `None` when it is 404.
async fn task_state(app: &TestApp, token: &str, id: i64) -> Option<Value> {
    let res = app.get(token, &format!("/api/tasks/{id}")).await;
    if res.status() == StatusCode::NOT_FOUND {
        return None;
    }
    Some(fields(&json_with(res, StatusCode::OK, "GET a task").await))
}

fn fields(task: &Value) -> Value {
    json!({ "id": task["id"], "title": task["title"], "description": task["description"],
        "completed": task["completed"], "created_at": task["created_at"] })
}

/// The tool the model's request `i` shows as called for `told`, one of its tool messages (the
/// prompt names a call by its record, the same in every attempt, not by the model's own id).
fn called(model: &MockModel, i: usize, told: &Value) -> String {
    let id = &told["tool_call_id"];
    model.requests()[i]["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["tool_calls"].as_array())
        .flatten()
        .find(|c| c["id"] == *id)
        .and_then(|c| c["function"]["name"].as_str())
        .unwrap_or_else(|| panic!("no call {id} in request {i}"))
        .to_string()
}

/// The tool messages of the model's request `i`.
fn tool_messages(model: &MockModel, i: usize) -> Vec<Value> {
    model.requests()[i]["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["role"] == "tool")
        .cloned()
        .collect()
}

async fn count(pool: &PgPool, sql: &str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(pool).await.unwrap()
}

/// How many `delete_task` calls were made (recorded and marked deleted).
async fn deletes_made(pool: &PgPool) -> i64 {
    let recorded = count(
        pool,
        "SELECT count(*) FROM turn_tool_calls WHERE tool_name = 'delete_task'",
    )
    .await;
    let deleted = count(
        pool,
        "SELECT count(*) FROM tasks WHERE deleted_at IS NOT NULL",
    )
    .await;
    assert_eq!(recorded, deleted, "each recorded delete deleted a task");
    recorded
}

/// Every event of a ChatKit streaming request, to its end.
async fn chatkit_stream(app: &TestApp, token: &str, body: Value) -> Vec<Value> {
    let res = app.post(token, "/chatkit", body).await;
    assert_eq!(res.status(), StatusCode::OK, "a ChatKit stream");
    let mut reader = SseReader::new(res);
    let mut events = Vec::new();
    while let Some(event) = reader.next(Duration::from_secs(20)).await {
        events.push(event.data);
    }
    events
}
