//! ChatKit's server protocol (`POST /chatkit`) over real HTTP: conformance with the reference
//! SDK's models (a Python client, `tests/chatkit_conformance.py`), the same data as REST,
//! tenancy, bad input, and cancel (a client that leaves stops the turn; our stop ends the
//! ChatKit stream as stopped).

mod common;

use std::time::Duration;

use common::{
    mock_model::{MockModel, Step},
    sse::SseReader,
    TestApp,
};
use reqwest::{header, StatusCode};
use serde_json::{json, Value};
use sqlx::PgPool;

async fn chatkit(app: &TestApp, token: &str, body: Value) -> reqwest::Response {
    app.post(token, "/chatkit", body).await
}

/// A non-streaming request that must succeed; its JSON.
async fn call(app: &TestApp, token: &str, kind: &str, params: Value) -> Value {
    let res = chatkit(app, token, json!({ "type": kind, "params": params })).await;
    assert_eq!(res.status(), StatusCode::OK, "{kind}");
    assert!(res.headers()[header::CONTENT_TYPE]
        .to_str()
        .unwrap()
        .starts_with("application/json"));
    res.json().await.unwrap()
}

/// A streaming request; its open event stream.
async fn open_stream(app: &TestApp, token: &str, kind: &str, params: Value) -> SseReader {
    let res = chatkit(app, token, json!({ "type": kind, "params": params })).await;
    assert_eq!(res.status(), StatusCode::OK, "{kind}");
    assert!(res.headers()[header::CONTENT_TYPE]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    SseReader::new(res)
}

/// Every event of a streaming request, to its end.
async fn stream_all(app: &TestApp, token: &str, kind: &str, params: Value) -> Vec<Value> {
    let mut reader = open_stream(app, token, kind, params).await;
    let mut events = Vec::new();
    while let Some(event) = reader.next(Duration::from_secs(20)).await {
        events.push(event.data);
    }
    events
}

fn input(text: &str) -> Value {
    json!({ "content": [{ "type": "input_text", "text": text }], "attachments": [], "inference_options": {} })
}

/// Asserts ChatKit's error shape and the status; returns the message.
async fn expect_chatkit_error(res: reqwest::Response, status: StatusCode) -> String {
    assert_eq!(res.status(), status);
    let body: Value = res.json().await.expect("error body is JSON");
    assert_eq!(body["type"], "error", "{body}");
    assert_eq!(body["code"], "custom", "{body}");
    assert!(body["allow_retry"].is_boolean(), "{body}");
    body["message"].as_str().expect("message").to_string()
}

#[sqlx::test]
async fn every_response_and_event_parses_with_the_reference_sdk(pool: PgPool) {
    // Paced like a remote model, so its reply streams as deltas.
    let offline = TestApp::spawn_with(pool.clone(), |c| {
        c.offline_think_time = Duration::from_millis(800)
    })
    .await;
    // The same database behind a scripted model: its first answer fails, the retry succeeds.
    let model = MockModel::start(vec![
        Step::Status(500, None),
        Step::Tokens(vec!["You have ".into(), "three tasks.".into()], 20),
    ])
    .await;
    let scripted = TestApp::with_model(pool.clone(), &model).await;
    let token = offline.register("sdk@example.com").await;

    let output = tokio::process::Command::new(common::python())
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/chatkit_conformance.py"
        ))
        .arg(&offline.url)
        .arg(&scripted.url)
        .arg(&token)
        .output()
        .await
        .expect("run the conformance client (scripts/setup.sh --test installs openai-chatkit)");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!("{stdout}{stderr}");
    assert!(
        output.status.success(),
        "conformance failed:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("stream events parsed by openai-chatkit's models"));
    assert!(
        stdout.contains("approval widget and custom_action parsed by openai-chatkit's models"),
        "the approval section did not finish:\n{stdout}"
    );

    // The feedback it gave is stored.
    let kinds: Vec<String> = sqlx::query_scalar("SELECT kind FROM message_feedback")
        .fetch_all(&pool)
        .await
        .unwrap();
    assert_eq!(kinds, ["positive"]);
    // The tasks the offline assistant added through /chatkit are the user's tasks.
    let tasks: Value = offline
        .get(&token, "/api/tasks")
        .await
        .json()
        .await
        .unwrap();
    let titles: Vec<&str> = tasks
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["title"].as_str().unwrap())
        .collect();
    for title in ["Buy oat milk", "Call the bank", "Water the plants"] {
        assert!(titles.contains(&title), "{titles:?}");
    }
    // The one the approval section added was deleted once approved through the card.
    assert!(!titles.contains(&"Buy milk"), "{titles:?}");
    assert_eq!(titles.len(), 5, "each task once: {titles:?}");
}

#[sqlx::test]
async fn rest_and_chatkit_show_the_same_threads(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let token = app.register("same@example.com").await;

    // Made over REST, read through ChatKit.
    let conversation = app.conversation(&token).await;
    app.say(&token, &conversation, "Add a task to buy bread")
        .await;
    let rest: Value = app
        .get(&token, &format!("/api/chat/conversations/{conversation}"))
        .await
        .json()
        .await
        .unwrap();
    let messages = app.messages(&token, &conversation, "").await["messages"].clone();
    let thread = call(
        &app,
        &token,
        "threads.get_by_id",
        json!({ "thread_id": conversation }),
    )
    .await;
    assert_eq!(thread["id"], rest["id"]);
    assert_eq!(thread["title"], rest["title"]);
    assert_eq!(
        thread["created_at"]
            .as_str()
            .unwrap()
            .parse::<chrono::DateTime<chrono::Utc>>()
            .unwrap(),
        rest["created_at"]
            .as_str()
            .unwrap()
            .parse::<chrono::DateTime<chrono::Utc>>()
            .unwrap()
    );
    let items = thread["items"]["data"].as_array().unwrap();
    assert_eq!(items.len(), 3, "{items:?}");
    assert_eq!(items[0]["type"], "user_message");
    assert_eq!(items[0]["id"], messages[0]["id"]);
    assert_eq!(items[0]["content"][0]["text"], messages[0]["content"]);
    assert_eq!(items[1]["type"], "workflow");
    assert_eq!(
        items[1]["id"],
        format!("wf_{}", messages[1]["id"].as_str().unwrap())
    );
    assert!(items[1]["workflow"]["tasks"][0]["title"]
        .as_str()
        .unwrap()
        .starts_with("add_task"));
    assert_eq!(items[2]["type"], "assistant_message");
    assert_eq!(items[2]["id"], messages[1]["id"]);
    assert_eq!(items[2]["content"][0]["text"], messages[1]["content"]);
    assert_eq!(
        items[2]["created_at"]
            .as_str()
            .unwrap()
            .parse::<chrono::DateTime<chrono::Utc>>()
            .unwrap(),
        messages[1]["created_at"]
            .as_str()
            .unwrap()
            .parse::<chrono::DateTime<chrono::Utc>>()
            .unwrap()
    );

    // Made through ChatKit, read over REST: the streamed ids are the stored ones.
    let events = stream_all(
        &app,
        &token,
        "threads.create",
        json!({ "input": input("Add a task to fix the bike") }),
    )
    .await;
    let thread_id = events[0]["thread"]["id"].as_str().unwrap().to_string();
    let added_reply = events
        .iter()
        .find(|e| e["type"] == "thread.item.added" && e["item"]["type"] == "assistant_message")
        .unwrap()["item"]["id"]
        .clone();
    let stored = app.messages(&token, &thread_id, "").await["messages"].clone();
    assert_eq!(
        stored[1]["id"], added_reply,
        "the reply streams under its stored id"
    );
    let page: Value = app
        .get(&token, "/api/chat/conversations")
        .await
        .json()
        .await
        .unwrap();
    let listed = page["conversations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == thread_id.as_str())
        .expect("the ChatKit thread is a conversation")
        .clone();
    assert_eq!(listed["title"], "Add a task to fix the bike");
    assert_eq!(listed["message_count"], 2);

    // Renamed through ChatKit: REST sees the title; through REST: ChatKit does.
    call(
        &app,
        &token,
        "threads.update",
        json!({ "thread_id": thread_id, "title": "Bike" }),
    )
    .await;
    let rest: Value = app
        .get(&token, &format!("/api/chat/conversations/{thread_id}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(rest["title"], "Bike");
    let res = app
        .send_json(
            reqwest::Method::PUT,
            &token,
            &format!("/api/chat/conversations/{thread_id}"),
            json!({ "title": "Cycling" }),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let listed = call(&app, &token, "threads.list", json!({})).await;
    assert!(listed["data"]
        .as_array()
        .unwrap()
        .iter()
        .any(|t| t["id"] == thread_id.as_str() && t["title"] == "Cycling"));

    // Deleted through ChatKit: gone from REST.
    call(
        &app,
        &token,
        "threads.delete",
        json!({ "thread_id": thread_id }),
    )
    .await;
    let res = app
        .get(&token, &format!("/api/chat/conversations/{thread_id}"))
        .await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
}

#[sqlx::test]
async fn another_users_thread_is_not_found_in_every_request_type(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let owner = app.register("owner@example.com").await;
    let other = app.register("other@example.com").await;
    let events = stream_all(
        &app,
        &owner,
        "threads.create",
        json!({ "input": input("Add a task to pay rent") }),
    )
    .await;
    let thread = events[0]["thread"]["id"].as_str().unwrap().to_string();
    let user_item = events
        .iter()
        .find(|e| e["type"] == "thread.item.done" && e["item"]["type"] == "user_message")
        .unwrap()["item"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let requests = [
        json!({ "type": "threads.get_by_id", "params": { "thread_id": thread } }),
        json!({ "type": "threads.add_user_message", "params": { "thread_id": thread, "input": input("Delete all my tasks") } }),
        json!({ "type": "threads.retry_after_item", "params": { "thread_id": thread, "item_id": user_item } }),
        json!({ "type": "items.list", "params": { "thread_id": thread } }),
        json!({ "type": "threads.update", "params": { "thread_id": thread, "title": "mine now" } }),
        json!({ "type": "threads.delete", "params": { "thread_id": thread } }),
        json!({ "type": "items.feedback", "params": { "thread_id": thread, "item_ids": [user_item], "kind": "negative" } }),
        json!({ "type": "threads.add_client_tool_output", "params": { "thread_id": thread, "result": {} } }),
        json!({ "type": "threads.add_structured_input", "params": { "thread_id": thread, "item_id": user_item, "input": {} } }),
        json!({ "type": "threads.custom_action", "params": { "thread_id": thread, "action": { "type": "x" } } }),
        json!({ "type": "threads.sync_custom_action", "params": { "thread_id": thread, "action": { "type": "x" } } }),
    ];
    for request in requests {
        let kind = request["type"].clone();
        let message =
            expect_chatkit_error(chatkit(&app, &other, request).await, StatusCode::NOT_FOUND).await;
        assert!(message.contains("not found"), "{kind}: {message}");
    }
    // Nothing happened to the owner's thread.
    let listed = call(&app, &other, "threads.list", json!({})).await;
    assert_eq!(listed["data"], json!([]));
    let mine = call(
        &app,
        &owner,
        "threads.get_by_id",
        json!({ "thread_id": thread }),
    )
    .await;
    assert_eq!(mine["title"], "Add a task to pay rent");
    assert_eq!(mine["items"]["data"].as_array().unwrap().len(), 3);
    let tasks: Value = app.get(&owner, "/api/tasks").await.json().await.unwrap();
    assert_eq!(tasks.as_array().unwrap().len(), 1);
}

#[sqlx::test]
async fn bad_input_gets_a_chatkit_error_and_changes_nothing(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let token = app.register("bad@example.com").await;
    let post_raw = |body: Vec<u8>| {
        app.http
            .post(app.at("/chatkit"))
            .bearer_auth(&token)
            .header(header::CONTENT_TYPE, "application/json")
            .body(body)
            .send()
    };
    let cases: Vec<(Vec<u8>, StatusCode, &str)> = vec![
        (b"not json".to_vec(), StatusCode::BAD_REQUEST, "not a ChatKit request"),
        (br#"{"params":{}}"#.to_vec(), StatusCode::BAD_REQUEST, "missing field `type`"),
        (br#"{"type":"threads.teleport","params":{}}"#.to_vec(), StatusCode::BAD_REQUEST, "unknown request type"),
        (br#"{"type":"threads.get_by_id"}"#.to_vec(), StatusCode::BAD_REQUEST, "needs params"),
        (br#"{"type":"threads.get_by_id","params":{"thread_id":5}}"#.to_vec(), StatusCode::BAD_REQUEST, "invalid type"),
        (br#"{"type":"items.list","params":{}}"#.to_vec(), StatusCode::BAD_REQUEST, "missing field `thread_id`"),
        (br#"{"type":"threads.list","params":{"limit":-1}}"#.to_vec(), StatusCode::BAD_REQUEST, "limit"),
        (br#"{"type":"threads.list","params":{"order":"sideways"}}"#.to_vec(), StatusCode::BAD_REQUEST, "unknown variant"),
        (br#"{"type":"threads.list","params":{"after":"garbage"}}"#.to_vec(), StatusCode::BAD_REQUEST, "cursor"),
        (br#"{"type":"threads.list","params":{},"metadata":7}"#.to_vec(), StatusCode::BAD_REQUEST, "metadata"),
        (br#"{"type":"threads.create","params":{"input":{"content":[{"type":"input_text","text":"   "}],"attachments":[]}}}"#.to_vec(), StatusCode::BAD_REQUEST, "cannot be empty"),
        (br#"{"type":"threads.create","params":{"input":{"content":[{"type":"input_text","text":"hi"}],"attachments":["att_1"]}}}"#.to_vec(), StatusCode::BAD_REQUEST, "attachments are not supported"),
        (br#"{"type":"threads.create","params":{"input":{"content":[{"type":"input_image","url":"x"}],"attachments":[]}}}"#.to_vec(), StatusCode::BAD_REQUEST, "unknown variant"),
        (br#"{"type":"input.transcribe","params":{"audio_base64":"","mime_type":"audio/webm"}}"#.to_vec(), StatusCode::BAD_REQUEST, "not supported"),
        (br#"{"type":"threads.update","params":{"thread_id":"0b7e1f36-6c1f-4f4e-9d55-2f1f7a1e0c11","title":"x"}}"#.to_vec(), StatusCode::NOT_FOUND, "not found"),
        (br#"{"type":"threads.get_by_id","params":{"thread_id":"thr_not-a-uuid"}}"#.to_vec(), StatusCode::NOT_FOUND, "not found"),
    ];
    for (body, status, words) in cases {
        let shown = String::from_utf8_lossy(&body).to_string();
        let message = expect_chatkit_error(post_raw(body).await.unwrap(), status).await;
        assert!(
            message.contains(words),
            "{shown}: {message:?} should say {words:?}"
        );
        assert!(!message.contains("line 1"), "{message}");
    }
    // Too large: 413, same shape.
    let huge = format!(
        r#"{{"type":"threads.create","params":{{"input":{{"content":[{{"type":"input_text","text":"{}"}}],"attachments":[]}}}}}}"#,
        "a".repeat(100_000)
    );
    let message = expect_chatkit_error(
        post_raw(huge.into_bytes()).await.unwrap(),
        StatusCode::PAYLOAD_TOO_LARGE,
    )
    .await;
    assert!(message.contains("too large"), "{message}");
    // Not signed in: 401, same shape.
    let res = app
        .http
        .post(app.at("/chatkit"))
        .json(&json!({ "type": "threads.list", "params": {} }))
        .send()
        .await
        .unwrap();
    expect_chatkit_error(res, StatusCode::UNAUTHORIZED).await;
    // Nothing was created by any of it.
    let listed = call(&app, &token, "threads.list", json!({})).await;
    assert_eq!(listed["data"], json!([]));
    let page: Value = app
        .get(&token, "/api/chat/conversations")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(page["conversations"], json!([]));
}

#[sqlx::test]
async fn a_chatkit_page_on_a_listed_origin_may_call_with_its_bearer(pool: PgPool) {
    const PARTNER: &str = "http://chat.partner.example";
    let app = TestApp::spawn_with(pool, |c| c.allowed_origins = vec![PARTNER.into()]).await;
    let token = app.register("partner@example.com").await;
    // ChatKit's custom fetch adds the Authorization header: the browser asks first.
    let res = app
        .http
        .request(reqwest::Method::OPTIONS, app.at("/chatkit"))
        .header(header::ORIGIN, PARTNER)
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "authorization, content-type",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    assert_eq!(res.headers()["access-control-allow-origin"], PARTNER);
    let res = app
        .http
        .post(app.at("/chatkit"))
        .bearer_auth(&token)
        .header(header::ORIGIN, PARTNER)
        .json(&json!({ "type": "threads.list", "params": {} }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["access-control-allow-origin"], PARTNER);
    // Another origin's preflight is refused.
    let res = app
        .http
        .request(reqwest::Method::OPTIONS, app.at("/chatkit"))
        .header(header::ORIGIN, "https://evil.example")
        .header("access-control-request-method", "POST")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    assert!(res.headers().get("access-control-allow-origin").is_none());
}

#[sqlx::test]
async fn a_session_cookie_authenticates_too(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let res = app
        .http
        .post(app.at("/api/auth/register"))
        .json(&json!({ "email": "cookie@example.com", "password": "password123" }))
        .send()
        .await
        .unwrap();
    let cookie = res.headers()[header::SET_COOKIE]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let res = app
        .http
        .post(app.at("/chatkit"))
        .header(header::COOKIE, &cookie)
        .header(header::ORIGIN, &app.url)
        .json(&json!({ "type": "threads.list", "params": {} }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    // The cookie from another site's page is refused (CSRF).
    let res = app
        .http
        .post(app.at("/chatkit"))
        .header(header::COOKIE, &cookie)
        .header(header::ORIGIN, "https://evil.example")
        .json(&json!({ "type": "threads.delete", "params": { "thread_id": uuid::Uuid::new_v4() } }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
}

/// Waits until the conversation's reply is stored; returns it.
async fn stored_reply(app: &TestApp, token: &str, conversation: &str) -> Value {
    for _ in 0..200 {
        let messages = app.messages(token, conversation, "").await;
        if let Some(reply) = messages["messages"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["role"] == "assistant")
        {
            return reply.clone();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no reply was stored");
}

#[sqlx::test]
async fn a_client_that_disconnects_stops_the_turn(pool: PgPool) {
    let model = MockModel::start(vec![Step::TokensThenStall(
        vec!["Once ".into(), "upon ".into(), "a time".into()],
        30,
    )])
    .await;
    let app = TestApp::with_model(pool, &model).await;
    let token = app.register("cancel@example.com").await;
    let mut reader = open_stream(
        &app,
        &token,
        "threads.create",
        json!({ "input": input("Tell me a story") }),
    )
    .await;
    let thread = reader.next(Duration::from_secs(5)).await.unwrap().data["thread"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let events = reader
        .until(Duration::from_secs(10), |e| {
            e["update"]["delta"]
                .as_str()
                .is_some_and(|d| d.ends_with("a time"))
        })
        .await;
    assert!(events
        .iter()
        .any(|e| e.data["type"] == "stream_options"
            && e.data["stream_options"]["allow_cancel"] == true));
    // The ChatKit client cancels: it closes the connection.
    drop(reader);
    let reply = stored_reply(&app, &token, &thread).await;
    assert_eq!(reply["status"], "stopped", "{reply}");
    assert_eq!(reply["content"], "Once upon a time");
    // The model's stream was closed too: the turn really ended.
    for _ in 0..100 {
        if model.closed() >= 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(model.closed() >= 1, "the model request was not cancelled");
}

#[sqlx::test]
async fn our_stop_ends_the_chatkit_stream_as_stopped(pool: PgPool) {
    let model = MockModel::start(vec![Step::TokensThenStall(
        vec!["Half ".into(), "an answer".into()],
        30,
    )])
    .await;
    let app = TestApp::with_model(pool, &model).await;
    let token = app.register("stop@example.com").await;
    let conversation = app.conversation(&token).await;
    let mut reader = open_stream(
        &app,
        &token,
        "threads.add_user_message",
        json!({ "thread_id": conversation, "input": input("Explain something long") }),
    )
    .await;
    reader
        .until(Duration::from_secs(10), |e| {
            e["update"]["delta"]
                .as_str()
                .is_some_and(|d| d.ends_with("an answer"))
        })
        .await;
    // Stopped from our UI or REST, not by the ChatKit client.
    let res = app
        .post(
            &token,
            &format!("/api/chat/conversations/{conversation}/stop"),
            json!({}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let mut rest = Vec::new();
    while let Some(event) = reader.next(Duration::from_secs(10)).await {
        rest.push(event.data);
    }
    let done = rest
        .iter()
        .find(|e| e["type"] == "thread.item.done" && e["item"]["type"] == "assistant_message")
        .unwrap_or_else(|| panic!("the stream ends with the stopped reply: {rest:?}"));
    assert_eq!(done["item"]["content"][0]["text"], "Half an answer");
    assert!(
        !rest.iter().any(|e| e["type"] == "error"),
        "a stop is not an error: {rest:?}"
    );
    let reply = stored_reply(&app, &token, &conversation).await;
    assert_eq!(reply["status"], "stopped");
    assert_eq!(reply["id"], done["item"]["id"]);
}

/// Sends over REST in the background (the turn that runs first).
fn send_in_background(
    app: &TestApp,
    token: &str,
    conversation: &str,
    content: &str,
) -> tokio::task::JoinHandle<Value> {
    let request = app
        .http
        .post(app.at(&format!("/api/chat/conversations/{conversation}/messages")))
        .bearer_auth(token)
        .json(&json!({ "content": content }));
    tokio::spawn(async move { request.send().await.unwrap().json().await.unwrap() })
}

fn alpha_words() -> Vec<String> {
    (0..15).map(|i| format!("alpha{i} ")).collect()
}

#[sqlx::test]
async fn a_queued_message_streams_only_its_own_answer(pool: PgPool) {
    let model = MockModel::start(vec![
        Step::Tokens(alpha_words(), 60),
        Step::Tokens(vec!["Beta ".into(), "answer".into()], 20),
    ])
    .await;
    let app = TestApp::with_model(pool, &model).await;
    let token = app.register("queued@example.com").await;
    let conversation = app.conversation(&token).await;
    let first = send_in_background(&app, &token, &conversation, "Tell me about alpha");
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Sent while the first answer is still being written: it waits for it.
    let events = stream_all(
        &app,
        &token,
        "threads.add_user_message",
        json!({ "thread_id": conversation, "input": input("And beta?") }),
    )
    .await;
    let text = serde_json::to_string(&events).unwrap();
    assert!(
        !text.contains("alpha"),
        "another turn leaked into this stream: {text}"
    );
    let users: Vec<&Value> = events
        .iter()
        .filter(|e| e["type"] == "thread.item.done" && e["item"]["type"] == "user_message")
        .collect();
    assert_eq!(users.len(), 1);
    assert_eq!(users[0]["item"]["content"][0]["text"], "And beta?");
    let done = events.last().unwrap();
    assert_eq!(done["item"]["content"][0]["text"], "Beta answer");
    let deltas: String = events
        .iter()
        .filter_map(|e| e["update"]["delta"].as_str())
        .collect();
    assert!("Beta answer".starts_with(&deltas), "{deltas:?}");
    assert_eq!(
        first.await.unwrap()["assistant_message"]["status"],
        "complete"
    );
}

#[sqlx::test]
async fn leaving_while_the_message_waits_cancels_it_and_stops_nothing_else(pool: PgPool) {
    let model = MockModel::start(vec![Step::Tokens(alpha_words(), 60)]).await;
    let app = TestApp::with_model(pool, &model).await;
    let token = app.register("leaver@example.com").await;
    let conversation = app.conversation(&token).await;
    let first = send_in_background(&app, &token, &conversation, "Tell me about alpha");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let reader = open_stream(
        &app,
        &token,
        "threads.add_user_message",
        json!({ "thread_id": conversation, "input": input("Never mind this one") }),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    drop(reader);
    // The running answer is not stopped; the waiting message is never stored or answered.
    let first = first.await.unwrap();
    assert_eq!(first["assistant_message"]["status"], "complete", "{first}");
    tokio::time::sleep(Duration::from_millis(800)).await;
    let messages = app.messages(&token, &conversation, "").await["messages"].clone();
    let contents: Vec<&str> = messages
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["content"].as_str().unwrap())
        .collect();
    assert_eq!(contents.len(), 2, "{contents:?}");
    assert!(!contents.contains(&"Never mind this one"));
    assert_eq!(model.requests().len(), 1);
}

/// Every `Button` in a widget, in order.
fn buttons(component: &Value) -> Vec<&Value> {
    let mut found = Vec::new();
    if component["type"] == "Button" {
        found.push(component);
    }
    if let Some(children) = component["children"].as_array() {
        for child in children {
            found.extend(buttons(child));
        }
    }
    found
}

/// Checks an approval card's two buttons (keep first, then approve; disabled once decided);
/// returns the call id they decide.
fn card_buttons(card: &Value, decided: bool) -> String {
    let buttons = buttons(&card["widget"]);
    assert_eq!(buttons.len(), 2, "{card}");
    let call_id = buttons[0]["onClickAction"]["payload"]["call_id"]
        .as_str()
        .unwrap_or_else(|| panic!("no call_id: {card}"))
        .to_string();
    for (button, approve) in buttons.iter().zip([false, true]) {
        assert_eq!(
            button["onClickAction"]["type"], "approval.decide",
            "{button}"
        );
        assert_eq!(
            button["onClickAction"]["payload"],
            json!({ "call_id": call_id, "approve": approve }),
            "{button}"
        );
        assert_eq!(
            button["disabled"].as_bool().unwrap_or(false),
            decided,
            "{button}"
        );
    }
    call_id
}

/// The approval card a parked turn's stream ends with, and the call id it decides.
fn waiting_card(events: &[Value]) -> (Value, String) {
    let last = events.last().expect("the stream sent nothing");
    assert_eq!(
        last["type"], "thread.item.done",
        "a parked turn's stream ends with its card: {events:?}"
    );
    let card = last["item"].clone();
    assert_eq!(card["type"], "widget", "{card}");
    assert!(card["id"].as_str().unwrap().starts_with("appr_"), "{card}");
    assert_eq!(card["widget"]["type"], "Card", "{card}");
    assert!(
        !events
            .iter()
            .any(|e| e["type"] == "thread.item.done" && e["item"]["type"] == "assistant_message"),
        "a parked turn has no answer yet: {events:?}"
    );
    let call_id = card_buttons(&card, false);
    (card, call_id)
}

/// The params of `threads.custom_action` for a button of `card`.
fn decision(thread: &str, card: &Value, call_id: &str, approve: bool) -> Value {
    json!({
        "thread_id": thread,
        "item_id": card["id"],
        "action": { "type": "approval.decide", "payload": { "call_id": call_id, "approve": approve } },
    })
}

/// What the model was told the newest call of `tool` returned, in its request `request`. (The
/// prompt names calls by their record, the same in every attempt, not by the model's own id.)
fn tool_result(request: &Value, tool: &str) -> String {
    let messages = request["messages"].as_array().unwrap();
    let id = messages
        .iter()
        .filter_map(|m| m["tool_calls"].as_array())
        .flatten()
        .rfind(|c| c["function"]["name"] == tool)
        .unwrap_or_else(|| panic!("no call of {tool} in {request}"))["id"]
        .clone();
    messages
        .iter()
        .find(|m| m["role"] == "tool" && m["tool_call_id"] == id)
        .unwrap_or_else(|| panic!("no result of {id} in {request}"))["content"]
        .as_str()
        .unwrap()
        .to_string()
}

/// The one `thread.item.done` of a workflow in `events`: its first task's title.
fn workflow_title(events: &[Value]) -> String {
    let done: Vec<&Value> = events
        .iter()
        .filter(|e| e["type"] == "thread.item.done" && e["item"]["type"] == "workflow")
        .collect();
    assert_eq!(done.len(), 1, "{events:?}");
    done[0]["item"]["workflow"]["tasks"][0]["title"]
        .as_str()
        .unwrap()
        .to_string()
}

async fn item_list(app: &TestApp, token: &str, thread: &str) -> Vec<Value> {
    let page = call(
        app,
        token,
        "items.list",
        json!({ "thread_id": thread, "limit": 50, "order": "asc" }),
    )
    .await;
    page["data"].as_array().unwrap().clone()
}

#[sqlx::test]
async fn approval_card_continues_the_turn_in_the_action_stream(pool: PgPool) {
    let model = MockModel::start(vec![
        Step::Tools(vec![("delete_task".into(), r#"{"task_id":1}"#.into())]),
        Step::Text("Gone.".into()),
    ])
    .await;
    let app = TestApp::with_model(pool, &model).await;
    let token = app.register("approver@example.com").await;
    let other = app.register("bystander@example.com").await;
    let created = app
        .post(&token, "/api/tasks", json!({ "title": "Buy milk" }))
        .await;
    assert_eq!(created.status(), StatusCode::CREATED);
    assert_eq!(created.json::<Value>().await.unwrap()["id"], 1);

    // The model asks to delete (the default policy asks first): the turn parks, and its
    // stream ends with the card.
    let events = stream_all(
        &app,
        &token,
        "threads.create",
        json!({ "input": input("remove it") }),
    )
    .await;
    let thread = events[0]["thread"]["id"].as_str().unwrap().to_string();
    let (card, call_id) = waiting_card(&events);
    assert_eq!(card["thread_id"], thread.as_str());
    assert!(
        card["copy_text"]
            .as_str()
            .unwrap()
            .contains("Delete task 1"),
        "{card}"
    );
    let user_item = events
        .iter()
        .find(|e| e["type"] == "thread.item.done" && e["item"]["type"] == "user_message")
        .expect("the user message")["item"]["id"]
        .clone();
    assert_eq!(
        app.get(&token, "/api/tasks/1").await.status(),
        StatusCode::OK,
        "nothing is deleted before the decision"
    );
    assert_eq!(model.requests().len(), 1);
    let items = item_list(&app, &token, &thread).await;
    let shown = items.last().unwrap();
    assert_eq!(shown["id"], card["id"], "{items:?}");
    assert_eq!(shown["widget"], card["widget"]);

    // An action must be this server's, name its call and answer, and come from its card;
    // another user's is not found. None of these decides anything.
    let action = |params: Value| json!({ "type": "threads.custom_action", "params": params });
    let mut unknown = decision(&thread, &card, &call_id, true);
    unknown["action"]["type"] = json!("approval.guess");
    let mut no_answer = decision(&thread, &card, &call_id, true);
    no_answer["action"]["payload"] = json!({ "call_id": call_id });
    let mut wrong_item = decision(&thread, &card, &call_id, true);
    wrong_item["item_id"] = user_item;
    let mut wrong_call = decision(&thread, &card, &call_id, true);
    wrong_call["action"]["payload"]["call_id"] = json!("call_that_never_was");
    let cases = [
        (&token, unknown, StatusCode::BAD_REQUEST, "unknown action"),
        (&token, no_answer, StatusCode::BAD_REQUEST, "payload needs"),
        (&token, wrong_item, StatusCode::BAD_REQUEST, "not the card"),
        (&token, wrong_call, StatusCode::CONFLICT, "does not wait"),
        (
            &other,
            decision(&thread, &card, &call_id, true),
            StatusCode::NOT_FOUND,
            "not found",
        ),
    ];
    for (who, params, status, words) in cases {
        let shown = params.to_string();
        let message = expect_chatkit_error(chatkit(&app, who, action(params)).await, status).await;
        assert!(message.contains(words), "{shown}: {message:?}");
    }
    assert_eq!(
        app.get(&token, "/api/tasks/1").await.status(),
        StatusCode::OK
    );
    assert_eq!(
        item_list(&app, &token, &thread).await.last().unwrap()["id"],
        card["id"],
        "the card still waits"
    );
    assert_eq!(model.requests().len(), 1);

    // Approved: the decided card replaces it, then the turn goes on in this stream.
    let decided = stream_all(
        &app,
        &token,
        "threads.custom_action",
        decision(&thread, &card, &call_id, true),
    )
    .await;
    assert_eq!(decided[0]["type"], "stream_options", "{decided:?}");
    assert_eq!(decided[1]["type"], "thread.item.replaced", "{decided:?}");
    let replaced = &decided[1]["item"];
    assert_eq!(replaced["id"], card["id"]);
    assert_eq!(card_buttons(replaced, true), call_id);
    assert!(
        replaced["widget"].to_string().contains("Approved"),
        "{replaced}"
    );
    assert!(
        !decided.iter().any(|e| e["type"] == "error"
            || (e["type"] == "thread.item.done" && e["item"]["type"] == "user_message")),
        "{decided:?}"
    );
    let answer = decided.last().unwrap();
    assert_eq!(answer["type"], "thread.item.done", "{decided:?}");
    assert_eq!(answer["item"]["type"], "assistant_message");
    assert_eq!(answer["item"]["content"][0]["text"], "Gone.");
    assert!(workflow_title(&decided).contains("deleted"), "{decided:?}");
    // The call ran (once); the model was told its result and answered.
    assert_eq!(
        app.get(&token, "/api/tasks/1").await.status(),
        StatusCode::NOT_FOUND
    );
    let requests = model.requests();
    assert_eq!(requests.len(), 2);
    let told = tool_result(&requests[1], "delete_task");
    assert!(
        told.contains("deleted") && !told.contains("declined"),
        "{told}"
    );
    // The card waits no more: the thread ends with the answer, under its streamed id.
    let items = item_list(&app, &token, &thread).await;
    assert!(!items.iter().any(|i| i["type"] == "widget"), "{items:?}");
    assert_eq!(items.last().unwrap()["id"], answer["item"]["id"]);
    // Pressed again (a second tab, a double click): nothing waits, ChatKit's error shape.
    let message = expect_chatkit_error(
        chatkit(
            &app,
            &token,
            action(decision(&thread, &card, &call_id, false)),
        )
        .await,
        StatusCode::CONFLICT,
    )
    .await;
    assert!(message.contains("does not wait"), "{message}");
    assert_eq!(model.requests().len(), 2);

    // Declined, in another thread: the call does not run, and the model is told so.
    let created = app
        .post(&token, "/api/tasks", json!({ "title": "Call the bank" }))
        .await;
    assert_eq!(created.status(), StatusCode::CREATED);
    let kept = created.json::<Value>().await.unwrap()["id"]
        .as_i64()
        .unwrap();
    model.push(Step::Tools(vec![(
        "delete_task".into(),
        json!({ "task_id": kept }).to_string(),
    )]));
    model.push(Step::Text("Kept.".into()));
    let events = stream_all(
        &app,
        &token,
        "threads.create",
        json!({ "input": input("remove the bank one") }),
    )
    .await;
    let second = events[0]["thread"]["id"].as_str().unwrap().to_string();
    let (card, call_id) = waiting_card(&events);
    let decided = stream_all(
        &app,
        &token,
        "threads.custom_action",
        decision(&second, &card, &call_id, false),
    )
    .await;
    assert_eq!(decided[1]["type"], "thread.item.replaced", "{decided:?}");
    let replaced = &decided[1]["item"];
    assert_eq!(card_buttons(replaced, true), call_id);
    assert!(
        replaced["widget"].to_string().contains("Declined"),
        "{replaced}"
    );
    let answer = decided.last().unwrap();
    assert_eq!(answer["item"]["type"], "assistant_message", "{decided:?}");
    assert_eq!(answer["item"]["content"][0]["text"], "Kept.");
    assert!(workflow_title(&decided).contains("declined"), "{decided:?}");
    assert_eq!(
        app.get(&token, &format!("/api/tasks/{kept}"))
            .await
            .status(),
        StatusCode::OK,
        "a declined call does not run"
    );
    let requests = model.requests();
    assert_eq!(requests.len(), 4);
    let last = requests.last().unwrap();
    assert!(last.to_string().contains("declined"), "{last}");
    let told = tool_result(last, "delete_task");
    assert!(told.contains("declined"), "{told}");
}

/// Every item id of a thread, read in pages of `limit` in `order`.
async fn paged_ids(
    app: &TestApp,
    token: &str,
    thread: &str,
    limit: i64,
    order: &str,
) -> Vec<String> {
    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    for _ in 0..50 {
        let mut params = json!({ "thread_id": thread, "limit": limit, "order": order });
        if let Some(after) = &after {
            params["after"] = json!(after);
        }
        let page = call(app, token, "items.list", params).await;
        seen.extend(
            page["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(|i| i["id"].as_str().unwrap().to_string()),
        );
        if page["has_more"] != true {
            return seen;
        }
        after = Some(
            page["after"]
                .as_str()
                .unwrap_or_else(|| panic!("has_more without after: {page}"))
                .to_string(),
        );
    }
    panic!("items.list never ended: {seen:?}");
}

#[sqlx::test]
async fn a_waiting_card_pages_like_every_other_item(pool: PgPool) {
    // The offline assistant: "delete task 1" asks first.
    let app = TestApp::spawn(pool).await;
    let token = app.register("pager@example.com").await;
    let created = app
        .post(&token, "/api/tasks", json!({ "title": "Buy milk" }))
        .await;
    assert_eq!(created.status(), StatusCode::CREATED);
    let events = stream_all(
        &app,
        &token,
        "threads.create",
        json!({ "input": input("Add a task to call the bank") }),
    )
    .await;
    let thread = events[0]["thread"]["id"].as_str().unwrap().to_string();
    let events = stream_all(
        &app,
        &token,
        "threads.add_user_message",
        json!({ "thread_id": thread, "input": input("delete task 1") }),
    )
    .await;
    let (card, _) = waiting_card(&events);
    let items = item_list(&app, &token, &thread).await;
    let kinds: Vec<&str> = items.iter().map(|i| i["type"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        [
            "user_message",
            "workflow",
            "assistant_message",
            "user_message",
            "widget"
        ]
    );
    let ids: Vec<String> = items
        .iter()
        .map(|i| i["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids.last().unwrap(), card["id"].as_str().unwrap());
    let reversed: Vec<String> = ids.iter().rev().cloned().collect();
    // Pages of any size add up to the whole list, the card included, nothing twice or lost
    // (a page may end on the card's user message, or on the card itself).
    for limit in 1..=4 {
        assert_eq!(
            paged_ids(&app, &token, &thread, limit, "asc").await,
            ids,
            "asc pages of {limit}"
        );
        assert_eq!(
            paged_ids(&app, &token, &thread, limit, "desc").await,
            reversed,
            "desc pages of {limit}"
        );
    }
}
