//! Branches of a conversation (issue 23) against the release server binary over real HTTP and
//! real Postgres, with a scripted model over HTTP: editing a sent message (the model sees the
//! path to it, not the old branch), regenerating an answer (the model is shown what the earlier
//! answer did, so a task is added once; an edit is told of it in words), switching branches
//! (stored: a reload and another device keep it), polling and the event stream (every branch,
//! with `parent_id`), refusals over REST and server functions, idempotent resends, a SIGKILL
//! during an edit's turn, and ChatKit's `threads.retry_after_item`.

mod common;

use std::time::{Duration, Instant};

use common::{
    mock_model::{MockModel, Step},
    process::{database_url, ServerProcess},
    process_client::{add_milk, model_requests, settings, Client},
    sse::SseReader,
};
use reqwest::StatusCode;
use serde_json::{json, Value};
use sqlx::PgPool;
use uuid::Uuid;

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/// The settings of a server over `model` (short leases), room for many writes, and `extra`.
fn server_env(model: &MockModel, extra: &[(&'static str, String)]) -> Vec<(&'static str, String)> {
    let mut env = settings(model);
    env.push(("WRITE_RATE_PER_MINUTE", "100000".to_string()));
    env.extend(extra.iter().cloned());
    env
}

async fn start(pool: &PgPool, model: &MockModel) -> ServerProcess {
    ServerProcess::start(&database_url(pool), &server_env(model, &[])).await
}

/// A fresh sign-in of `email` (another device: its own token and HTTP client).
async fn sign_in(server: &ServerProcess, email: &str) -> Client {
    let http = reqwest::Client::new();
    let res = http
        .post(server.at("/api/auth/login"))
        .json(&json!({ "email": email, "password": "password123" }))
        .send()
        .await
        .unwrap();
    let session = json_with(res, StatusCode::OK, "sign in").await;
    let token = session["access_token"]
        .as_str()
        .expect("an access token")
        .to_string();
    Client { http, token }
}

/// Asserts the status; the JSON body.
async fn json_with(res: reqwest::Response, status: StatusCode, what: &str) -> Value {
    let got = res.status();
    let text = res.text().await.unwrap();
    assert_eq!(got, status, "{what}: {text}");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{what}: not JSON ({e}): {text}"))
}

/// Asserts the status and the `{"detail": ...}` error shape with a non-empty detail.
async fn refused(res: reqwest::Response, status: StatusCode, what: &str) {
    let got = res.status();
    let text = res.text().await.unwrap();
    assert_eq!(got, status, "{what}: {text}");
    let body: Value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{what}: not JSON ({e}): {text}"));
    assert!(
        body["detail"].as_str().is_some_and(|d| !d.is_empty()),
        "{what}: a detail says why: {body}"
    );
}

fn id(message: &Value) -> String {
    message["id"]
        .as_str()
        .unwrap_or_else(|| panic!("an id: {message}"))
        .to_string()
}

fn ids(messages: &[Value]) -> Vec<String> {
    messages.iter().map(id).collect()
}

/// Sends `content` over REST and returns the answered turn.
async fn say(server: &ServerProcess, client: &Client, conversation: &str, content: &str) -> Value {
    let res = client
        .http
        .post(server.at(&format!("/api/chat/conversations/{conversation}/messages")))
        .bearer_auth(&client.token)
        .json(&json!({ "content": content }))
        .send()
        .await
        .unwrap();
    json_with(res, StatusCode::CREATED, &format!("send {content:?}")).await
}

fn edit_path(conversation: &str, message: &str) -> String {
    format!("/api/chat/conversations/{conversation}/messages/{message}/edit")
}

fn regenerate_path(conversation: &str, message: &str) -> String {
    format!("/api/chat/conversations/{conversation}/messages/{message}/regenerate")
}

async fn edit(
    server: &ServerProcess,
    client: &Client,
    conversation: &str,
    message: &str,
    body: Value,
) -> reqwest::Response {
    client
        .http
        .post(server.at(&edit_path(conversation, message)))
        .bearer_auth(&client.token)
        .json(&body)
        .send()
        .await
        .unwrap()
}

/// A regeneration, with a JSON body or none at all (the body is optional).
async fn regenerate(
    server: &ServerProcess,
    client: &Client,
    conversation: &str,
    message: &str,
    body: Option<Value>,
) -> reqwest::Response {
    let mut request = client
        .http
        .post(server.at(&regenerate_path(conversation, message)))
        .bearer_auth(&client.token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    request.send().await.unwrap()
}

async fn put_current(
    server: &ServerProcess,
    client: &Client,
    conversation: &str,
    message: &str,
) -> reqwest::Response {
    client
        .http
        .put(server.at(&format!("/api/chat/conversations/{conversation}/current")))
        .bearer_auth(&client.token)
        .json(&json!({ "message_id": message }))
        .send()
        .await
        .unwrap()
}

async fn get(server: &ServerProcess, client: &Client, path: &str) -> reqwest::Response {
    client
        .http
        .get(server.at(path))
        .bearer_auth(&client.token)
        .send()
        .await
        .unwrap()
}

/// `GET …/messages{query}` (200); the page.
async fn page(server: &ServerProcess, client: &Client, conversation: &str, query: &str) -> Value {
    let path = format!("/api/chat/conversations/{conversation}/messages{query}");
    json_with(get(server, client, &path).await, StatusCode::OK, &path).await
}

/// The messages of `GET …/messages{query}`.
async fn listed(
    server: &ServerProcess,
    client: &Client,
    conversation: &str,
    query: &str,
) -> Vec<Value> {
    page(server, client, conversation, query).await["messages"]
        .as_array()
        .expect("messages")
        .clone()
}

async fn conversation_json(server: &ServerProcess, client: &Client, conversation: &str) -> Value {
    let path = format!("/api/chat/conversations/{conversation}");
    json_with(get(server, client, &path).await, StatusCode::OK, &path).await
}

/// A server function call (url-encoded form), as this site's own page makes it.
async fn sfn(
    server: &ServerProcess,
    client: &Client,
    endpoint: &str,
    form: &[(&str, &str)],
) -> reqwest::Response {
    client
        .http
        .post(server.at(endpoint))
        .bearer_auth(&client.token)
        .header("origin", &server.url)
        .form(form)
        .send()
        .await
        .unwrap()
}

async fn chatkit(server: &ServerProcess, client: &Client, body: Value) -> reqwest::Response {
    client
        .http
        .post(server.at("/chatkit"))
        .bearer_auth(&client.token)
        .json(&body)
        .send()
        .await
        .unwrap()
}

async fn open_events(server: &ServerProcess, client: &Client) -> SseReader {
    let res = get(server, client, "/api/chat/events").await;
    assert_eq!(res.status(), StatusCode::OK, "the event stream opens");
    SseReader::new(res)
}

/// Every event of an event-stream response, to its end (or `within`).
async fn stream_to_end(res: reqwest::Response, within: Duration) -> Vec<Value> {
    assert_eq!(res.status(), StatusCode::OK, "a stream");
    let mut reader = SseReader::new(res);
    let deadline = Instant::now() + within;
    let mut events = Vec::new();
    while let Some(event) = reader
        .next(deadline.saturating_duration_since(Instant::now()))
        .await
    {
        events.push(event.data);
    }
    events
}

/// The messages of the model's request `i`.
fn prompt_of(model: &MockModel, i: usize) -> Vec<Value> {
    let requests = model.requests();
    requests
        .get(i)
        .and_then(|r| r["messages"].as_array().cloned())
        .unwrap_or_else(|| panic!("no model request {i}: {} requests", requests.len()))
}

async fn count(pool: &PgPool, sql: &str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(pool).await.unwrap()
}

async fn messages_saying(pool: &PgPool, content: &str) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM messages WHERE content = $1")
        .bind(content)
        .fetch_one(pool)
        .await
        .unwrap()
}

/// Both answers name the same two stored messages.
fn same_turn(a: &Value, b: &Value) {
    assert_eq!(a["user_message"]["id"], b["user_message"]["id"], "{a}\n{b}");
    assert_eq!(
        a["assistant_message"]["id"], b["assistant_message"]["id"],
        "{a}\n{b}"
    );
}

// ---------------------------------------------------------------------------------------------
// Edit, switch, reload
// ---------------------------------------------------------------------------------------------

#[sqlx::test]
async fn an_edit_of_the_first_message_is_a_branch_and_switching_back_shows_the_old_one(
    pool: PgPool,
) {
    let model = MockModel::start(vec![
        Step::Text("Picnic planned.".into()),
        Step::Text("Neighbours invited.".into()),
        Step::Text("Barbecue planned.".into()),
    ])
    .await;
    let server = start(&pool, &model).await;
    let email = "edit-first@example.com";
    let client = Client::register(&server, email).await;
    let conversation = client.conversation(&server).await;
    let first = say(&server, &client, &conversation, "Plan the picnic").await;
    let second = say(&server, &client, &conversation, "Invite the neighbours").await;
    let old = vec![
        id(&first["user_message"]),
        id(&first["assistant_message"]),
        id(&second["user_message"]),
        id(&second["assistant_message"]),
    ];
    assert_eq!(model.requests().len(), 2);

    let edited = json_with(
        edit(
            &server,
            &client,
            &conversation,
            &old[0],
            json!({ "content": "Plan the barbecue" }),
        )
        .await,
        StatusCode::CREATED,
        "edit of message 1",
    )
    .await;
    let new_user = edited["user_message"].clone();
    let new_answer = edited["assistant_message"].clone();
    let (new_user_id, new_answer_id) = (id(&new_user), id(&new_answer));
    assert!(!old.contains(&new_user_id), "an edit is a new message");
    assert_eq!(new_user["role"], "user");
    assert_eq!(new_user["content"], "Plan the barbecue");
    assert_eq!(new_user["seq"], 5, "seq stays the insertion order");
    assert!(
        new_user["parent_id"].is_null(),
        "a first message's sibling has no parent: {new_user}"
    );
    assert_eq!(new_user["sibling_index"], 2, "{new_user}");
    assert_eq!(new_user["sibling_count"], 2, "{new_user}");
    assert_eq!(new_user["sibling_ids"], json!([old[0], new_user_id]));
    assert_eq!(new_answer["role"], "assistant");
    assert_eq!(new_answer["content"], "Barbecue planned.");
    assert_eq!(new_answer["status"], "complete");
    assert_eq!(new_answer["parent_id"], new_user_id.as_str());
    assert_eq!(new_answer["seq"], 6);

    // The model was asked with the path to the new message: its text, not the old branch.
    assert_eq!(
        model.requests().len(),
        3,
        "one model call answered the edit"
    );
    let asked = prompt_of(&model, 2);
    let text = Value::Array(asked.clone()).to_string().to_lowercase();
    assert!(text.contains("plan the barbecue"), "{text}");
    for gone in ["picnic", "neighbours"] {
        assert!(
            !text.contains(gone),
            "the old branch ({gone}) is in the edit's prompt: {text}"
        );
    }
    assert_eq!(
        asked.iter().filter(|m| m["role"] == "user").count(),
        1,
        "{text}"
    );
    assert!(
        !asked.iter().any(|m| m["role"] == "assistant"),
        "no earlier answer is on the new path: {text}"
    );

    // The current branch: the new message and its answer.
    let shown = page(&server, &client, &conversation, "").await;
    assert_eq!(shown["total_count"], 2, "{shown}");
    let shown = shown["messages"].as_array().unwrap().clone();
    assert_eq!(
        ids(&shown),
        vec![new_user_id.clone(), new_answer_id.clone()]
    );
    for message in &shown {
        assert!(
            message.as_object().unwrap().contains_key("parent_id"),
            "every message says its parent: {message}"
        );
    }
    assert!(shown[0]["parent_id"].is_null());
    assert_eq!(shown[1]["parent_id"], new_user_id.as_str());
    assert_eq!(shown[0]["sibling_index"], 2);
    assert_eq!(shown[0]["sibling_count"], 2);
    assert_eq!(shown[0]["sibling_ids"], json!([old[0], new_user_id]));
    assert_eq!(shown[1]["sibling_index"], 1);
    assert_eq!(shown[1]["sibling_count"], 1);
    assert_eq!(
        conversation_json(&server, &client, &conversation).await["current_message_id"],
        new_answer_id.as_str()
    );

    // Back to the first version: its most recent descendant becomes the current leaf.
    let switched = json_with(
        put_current(&server, &client, &conversation, &old[0]).await,
        StatusCode::OK,
        "switch to the first version",
    )
    .await;
    assert_eq!(switched["id"], conversation.as_str());
    assert_eq!(
        switched["current_message_id"],
        old[3].as_str(),
        "{switched}"
    );
    let shown = client.messages(&server, &conversation).await;
    assert_eq!(ids(&shown), old, "the first four again");
    assert!(shown[0]["parent_id"].is_null());
    for pair in shown.windows(2) {
        assert_eq!(pair[1]["parent_id"], pair[0]["id"], "{pair:?}");
    }
    assert_eq!(shown[0]["sibling_index"], 1);
    assert_eq!(shown[0]["sibling_count"], 2);
    assert_eq!(shown[0]["sibling_ids"], json!([old[0], new_user_id]));
    assert_eq!(
        page(&server, &client, &conversation, "").await["total_count"],
        4
    );
    let current = listed(&server, &client, &conversation, "?branch=current").await;
    assert_eq!(ids(&current), old, "branch=current is the default");

    // A reload, and another device, show the same branch: the choice is stored.
    let reloaded = client.messages(&server, &conversation).await;
    assert_eq!(ids(&reloaded), old);
    let device = sign_in(&server, email).await;
    assert_eq!(ids(&device.messages(&server, &conversation).await), old);
    assert_eq!(
        conversation_json(&server, &device, &conversation).await["current_message_id"],
        old[3].as_str()
    );

    // Every branch, in seq order.
    let all = listed(&server, &client, &conversation, "?branch=all").await;
    let mut every = old.clone();
    every.push(new_user_id.clone());
    every.push(new_answer_id.clone());
    assert_eq!(ids(&all), every);
    let seqs: Vec<i64> = all.iter().map(|m| m["seq"].as_i64().unwrap()).collect();
    assert_eq!(seqs, vec![1, 2, 3, 4, 5, 6]);
    assert_eq!(all[4]["parent_id"], Value::Null);
    assert_eq!(all[5]["parent_id"], new_user_id.as_str());

    // And to the edited version again, through its user message.
    let again = json_with(
        put_current(&server, &client, &conversation, &new_user_id).await,
        StatusCode::OK,
        "switch to the edited version",
    )
    .await;
    assert_eq!(again["current_message_id"], new_answer_id.as_str());
    assert_eq!(
        ids(&client.messages(&server, &conversation).await),
        vec![new_user_id, new_answer_id]
    );
    assert_eq!(model.requests().len(), 3, "a switch asks the model nothing");
    assert_eq!(count(&pool, "SELECT count(*) FROM messages").await, 6);
}

// ---------------------------------------------------------------------------------------------
// Regenerate after add_task, then edit: the task exists once and the edit is told of it
// ---------------------------------------------------------------------------------------------

#[sqlx::test]
async fn a_regeneration_is_shown_the_task_its_sibling_added_and_an_edit_is_told_of_it(
    pool: PgPool,
) {
    let model = MockModel::start(vec![
        add_milk(),
        Step::Text("Added Buy milk.".into()),
        // The regeneration: adds the task again unless its prompt shows it added.
        Step::AddOnce("Buy milk".into()),
        // The edit.
        Step::Text("Bread it is.".into()),
    ])
    .await;
    let server = start(&pool, &model).await;
    let client = Client::register(&server, "regenerate@example.com").await;
    let conversation = client.conversation(&server).await;
    let sent = say(&server, &client, &conversation, "add buy milk").await;
    let question = id(&sent["user_message"]);
    let old_answer = id(&sent["assistant_message"]);
    assert_eq!(count(&pool, "SELECT count(*) FROM tasks").await, 1);
    assert_eq!(model.requests().len(), 2);

    // Regenerated with no body at all.
    let regenerated = json_with(
        regenerate(&server, &client, &conversation, &old_answer, None).await,
        StatusCode::CREATED,
        "regenerate",
    )
    .await;
    assert_eq!(regenerated["user_message"]["id"], question.as_str());
    let answer = regenerated["assistant_message"].clone();
    let answer_id = id(&answer);
    assert_ne!(answer_id, old_answer, "a new answer");
    assert_eq!(answer["parent_id"], question.as_str(), "{answer}");
    assert_eq!(answer["sibling_count"], 2, "{answer}");
    assert_eq!(answer["sibling_index"], 2, "{answer}");
    assert_eq!(answer["sibling_ids"], json!([old_answer, answer_id]));
    assert_eq!(answer["content"], "Added.", "the model saw the task added");

    // Its prompt showed the earlier answer's add_task as the model's own call, with its result.
    assert_eq!(
        model.requests().len(),
        3,
        "one model call, no second add_task"
    );
    let asked = prompt_of(&model, 2);
    let text = Value::Array(asked.clone()).to_string();
    let call_id = asked
        .iter()
        .filter(|m| m["role"] == "assistant")
        .filter_map(|m| m["tool_calls"].as_array())
        .flatten()
        .find(|c| c["function"]["name"] == "add_task")
        .unwrap_or_else(|| panic!("no add_task call in the regeneration's prompt: {text}"))["id"]
        .clone();
    let result = asked
        .iter()
        .find(|m| m["role"] == "tool" && m["tool_call_id"] == call_id)
        .unwrap_or_else(|| panic!("no result for the replayed call: {text}"));
    assert!(
        result["content"].to_string().contains("Buy milk"),
        "{result}"
    );
    assert!(
        !text.contains("Added Buy milk."),
        "the answer being replaced is not in the prompt: {text}"
    );
    assert_eq!(asked.iter().filter(|m| m["role"] == "user").count(), 1);
    assert_eq!(
        count(&pool, "SELECT count(*) FROM tasks").await,
        1,
        "the task exists once"
    );
    let changes = answer["branch_changes"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(
        changes
            .iter()
            .any(|c| c["tool_name"] == "add_task" && c["title"] == "Buy milk"),
        "the regenerated answer shows the earlier answer's change: {answer}"
    );
    // Both answers are kept; the new one is shown.
    let all = listed(&server, &client, &conversation, "?branch=all").await;
    assert_eq!(
        ids(&all),
        vec![question.clone(), old_answer.clone(), answer_id.clone()]
    );
    assert_eq!(
        ids(&client.messages(&server, &conversation).await),
        vec![question.clone(), answer_id.clone()]
    );

    // An edit of the question: a branch that never made the change is told of it in words.
    let edited = json_with(
        edit(
            &server,
            &client,
            &conversation,
            &question,
            json!({ "content": "add bread instead" }),
        )
        .await,
        StatusCode::CREATED,
        "edit",
    )
    .await;
    assert_eq!(model.requests().len(), 4);
    let asked = prompt_of(&model, 3);
    let text = Value::Array(asked.clone()).to_string();
    let note = asked
        .iter()
        .filter(|m| m["role"] == "system")
        .map(|m| m["content"].to_string())
        .find(|c| c.contains("Buy milk"))
        .unwrap_or_else(|| panic!("no system message tells of the task added: {text}"));
    assert!(note.contains("already"), "{note}");
    assert!(note.contains("pending"), "{note}");
    assert!(
        !asked.iter().any(|m| m["role"] == "tool"),
        "the other branch's calls are not replayed as this one's: {text}"
    );
    assert!(
        !text.contains("add buy milk"),
        "the old question is not in it: {text}"
    );
    assert!(text.contains("add bread instead"), "{text}");

    let tasks = client.tasks(&server).await;
    assert_eq!(tasks.len(), 1, "{tasks:?}");
    let task_id = tasks[0]["id"].clone();
    let new_answer = edited["assistant_message"].clone();
    assert_eq!(new_answer["content"], "Bread it is.");
    let changes = new_answer["branch_changes"]
        .as_array()
        .cloned()
        .unwrap_or_else(|| {
            panic!("the edit's answer lists the other branch's change: {new_answer}")
        });
    assert_eq!(changes.len(), 1, "{changes:?}");
    assert_eq!(changes[0]["tool_name"], "add_task");
    assert_eq!(changes[0]["action"], "created");
    assert_eq!(changes[0]["title"], "Buy milk");
    assert_eq!(changes[0]["task_id"], task_id);
    assert_eq!(changes[0]["now"], "pending");
    // Stored with the answer: a reload shows it too.
    let shown = client.messages(&server, &conversation).await;
    assert_eq!(
        ids(&shown),
        vec![id(&edited["user_message"]), id(&new_answer)]
    );
    assert_eq!(shown[1]["branch_changes"], json!(changes));
    assert_eq!(count(&pool, "SELECT count(*) FROM tasks").await, 1);
}

// ---------------------------------------------------------------------------------------------
// Polling
// ---------------------------------------------------------------------------------------------

#[sqlx::test]
async fn a_poller_after_a_seq_gets_the_new_branch_with_its_parent_ids(pool: PgPool) {
    let model = MockModel::start(vec![
        Step::Text("Picnic planned.".into()),
        Step::Text("Neighbours invited.".into()),
        Step::Text("Cousins invited.".into()),
    ])
    .await;
    let server = start(&pool, &model).await;
    let client = Client::register(&server, "poller@example.com").await;
    let conversation = client.conversation(&server).await;
    let first = say(&server, &client, &conversation, "Plan the picnic").await;
    let second = say(&server, &client, &conversation, "Invite the neighbours").await;
    let a1 = id(&first["assistant_message"]);
    let q2 = id(&second["user_message"]);
    let a2 = id(&second["assistant_message"]);
    assert!(listed(&server, &client, &conversation, "?after=4")
        .await
        .is_empty());

    let edited = json_with(
        edit(
            &server,
            &client,
            &conversation,
            &q2,
            json!({ "content": "Invite the cousins" }),
        )
        .await,
        StatusCode::CREATED,
        "edit of message 3",
    )
    .await;
    let new_user = id(&edited["user_message"]);
    let new_answer = id(&edited["assistant_message"]);

    let polled = listed(&server, &client, &conversation, "?after=4").await;
    assert_eq!(ids(&polled), vec![new_user.clone(), new_answer.clone()]);
    assert_eq!(polled[0]["seq"], 5);
    assert_eq!(polled[1]["seq"], 6);
    assert_eq!(polled[0]["parent_id"], a1.as_str(), "{:?}", polled[0]);
    assert_eq!(polled[1]["parent_id"], new_user.as_str(), "{:?}", polled[1]);
    assert_eq!(polled[0]["content"], "Invite the cousins");
    assert_eq!(polled[0]["sibling_index"], 2);
    assert_eq!(polled[0]["sibling_count"], 2);

    // From the start: every branch, in seq order, each message with its parent.
    let everything = listed(&server, &client, &conversation, "?after=0").await;
    let seqs: Vec<i64> = everything
        .iter()
        .map(|m| m["seq"].as_i64().unwrap())
        .collect();
    assert_eq!(seqs, vec![1, 2, 3, 4, 5, 6]);
    assert!(everything[0]["parent_id"].is_null());
    assert_eq!(everything[2]["parent_id"], a1.as_str());
    assert_eq!(everything[3]["parent_id"], q2.as_str());
    assert_eq!(
        everything[4]["parent_id"],
        a1.as_str(),
        "an edit is a sibling"
    );

    // On the old branch again: polling still delivers the other branch's messages; only
    // `branch=current` keeps to the branch shown.
    let switched = json_with(
        put_current(&server, &client, &conversation, &q2).await,
        StatusCode::OK,
        "switch back",
    )
    .await;
    assert_eq!(switched["current_message_id"], a2.as_str());
    assert_eq!(
        ids(&listed(&server, &client, &conversation, "?after=4").await),
        vec![new_user.clone(), new_answer.clone()]
    );
    assert!(
        listed(&server, &client, &conversation, "?after=4&branch=current")
            .await
            .is_empty(),
        "the old branch has nothing after seq 4"
    );
    assert_eq!(
        ids(&listed(&server, &client, &conversation, "?after=2&branch=current").await),
        vec![q2, a2]
    );
}

// ---------------------------------------------------------------------------------------------
// Refusals, REST and server functions
// ---------------------------------------------------------------------------------------------

#[sqlx::test]
async fn edits_regenerations_and_switches_refuse_what_they_must_over_rest_and_server_functions(
    pool: PgPool,
) {
    let model = MockModel::start_with_fallback(Vec::new(), Some(Step::Text("Fine.".into()))).await;
    let server = start(&pool, &model).await;
    let alice = Client::register(&server, "alice-branches@example.com").await;
    let bob = Client::register(&server, "bob-branches@example.com").await;
    let conversation = alice.conversation(&server).await;
    let turn = say(&server, &alice, &conversation, "Plan the picnic").await;
    let question = id(&turn["user_message"]);
    let answer = id(&turn["assistant_message"]);
    let bobs = bob.conversation(&server).await;
    say(&server, &bob, &bobs, "Plan my week").await;
    let asked = model.requests().len();
    let fine = || json!({ "content": "Plan the barbecue" });

    // 400 over REST.
    refused(
        edit(&server, &alice, &conversation, &answer, fine()).await,
        StatusCode::BAD_REQUEST,
        "edit of an assistant message",
    )
    .await;
    refused(
        regenerate(&server, &alice, &conversation, &question, None).await,
        StatusCode::BAD_REQUEST,
        "regenerate of a user message",
    )
    .await;
    for content in ["", "   ", " \n\t "] {
        refused(
            edit(
                &server,
                &alice,
                &conversation,
                &question,
                json!({ "content": content }),
            )
            .await,
            StatusCode::BAD_REQUEST,
            &format!("edit to {content:?}"),
        )
        .await;
    }
    let too_long = "x".repeat(10_001);
    refused(
        edit(
            &server,
            &alice,
            &conversation,
            &question,
            json!({ "content": too_long }),
        )
        .await,
        StatusCode::BAD_REQUEST,
        "a 10,001-character edit",
    )
    .await;
    refused(
        edit(&server, &alice, &conversation, &question, json!({})).await,
        StatusCode::BAD_REQUEST,
        "an edit without content",
    )
    .await;
    refused(
        edit(&server, &alice, &conversation, "not-a-uuid", fine()).await,
        StatusCode::BAD_REQUEST,
        "an edit of no message id",
    )
    .await;
    let res = alice
        .http
        .post(server.at(&regenerate_path(&conversation, &answer)))
        .bearer_auth(&alice.token)
        .header("content-type", "application/json")
        .body("{")
        .send()
        .await
        .unwrap();
    refused(
        res,
        StatusCode::BAD_REQUEST,
        "a regeneration with a broken body",
    )
    .await;
    refused(
        put_current(&server, &alice, &conversation, "nope").await,
        StatusCode::BAD_REQUEST,
        "a switch to no message id",
    )
    .await;
    refused(
        get(
            &server,
            &alice,
            &format!("/api/chat/conversations/{conversation}/messages?branch=sideways"),
        )
        .await,
        StatusCode::BAD_REQUEST,
        "branch=sideways",
    )
    .await;

    // 404: another user's ids, in their conversation or in one's own; unknown ids.
    for target in [conversation.as_str(), bobs.as_str()] {
        refused(
            edit(&server, &bob, target, &question, fine()).await,
            StatusCode::NOT_FOUND,
            "edit of another user's message",
        )
        .await;
        refused(
            regenerate(&server, &bob, target, &answer, None).await,
            StatusCode::NOT_FOUND,
            "regenerate of another user's answer",
        )
        .await;
        refused(
            put_current(&server, &bob, target, &question).await,
            StatusCode::NOT_FOUND,
            "switch to another user's message",
        )
        .await;
    }
    let nobody = Uuid::new_v4().to_string();
    refused(
        edit(&server, &alice, &conversation, &nobody, fine()).await,
        StatusCode::NOT_FOUND,
        "edit of an unknown message",
    )
    .await;
    refused(
        put_current(&server, &alice, &conversation, &nobody).await,
        StatusCode::NOT_FOUND,
        "switch to an unknown message",
    )
    .await;
    refused(
        put_current(&server, &alice, &nobody, &question).await,
        StatusCode::NOT_FOUND,
        "switch in an unknown conversation",
    )
    .await;

    // Nothing refused was stored or asked.
    assert_eq!(model.requests().len(), asked);
    assert_eq!(
        listed(&server, &alice, &conversation, "?branch=all")
            .await
            .len(),
        2
    );
    assert_eq!(
        listed(&server, &bob, &bobs, "?branch=all").await.len(),
        2,
        "bob's conversation is untouched"
    );
    assert_eq!(
        conversation_json(&server, &alice, &conversation).await["current_message_id"],
        answer.as_str()
    );

    // 409: no switch while an answer is being written.
    model.push(Step::SlowText(4_000, "Slow answer.".into()));
    let running = alice.send(&server, &conversation, "Invite the neighbours");
    model_requests(&model, asked + 1).await;
    refused(
        put_current(&server, &alice, &conversation, &question).await,
        StatusCode::CONFLICT,
        "switch while a turn runs",
    )
    .await;
    refused(
        sfn(
            &server,
            &alice,
            "/sfn/chat/current",
            &[("id", &conversation), ("message_id", &question)],
        )
        .await,
        StatusCode::CONFLICT,
        "sfn switch while a turn runs",
    )
    .await;
    let done = running
        .await
        .unwrap()
        .expect("the running send is answered");
    assert_eq!(done["assistant_message"]["content"], "Slow answer.");
    let latest = id(&done["assistant_message"]);
    let switched = json_with(
        put_current(&server, &alice, &conversation, &question).await,
        StatusCode::OK,
        "switch once the turn is done",
    )
    .await;
    assert_eq!(switched["current_message_id"], latest.as_str());
    let asked = model.requests().len();

    // The same rules through the server functions.
    let (conv, q, a) = (conversation.as_str(), question.as_str(), answer.as_str());
    let long = "y".repeat(10_001);
    let bad = [
        (
            "/sfn/chat/edit",
            vec![
                ("id", conv),
                ("message_id", a),
                ("content", "Plan the barbecue"),
            ],
            "sfn edit of an assistant message",
        ),
        (
            "/sfn/chat/regenerate",
            vec![("id", conv), ("message_id", q)],
            "sfn regenerate of a user message",
        ),
        (
            "/sfn/chat/edit",
            vec![("id", conv), ("message_id", q), ("content", "")],
            "sfn empty edit",
        ),
        (
            "/sfn/chat/edit",
            vec![("id", conv), ("message_id", q), ("content", "   ")],
            "sfn blank edit",
        ),
        (
            "/sfn/chat/edit",
            vec![("id", conv), ("message_id", q), ("content", long.as_str())],
            "sfn 10,001-character edit",
        ),
        // Malformed arguments: 400, not 500.
        (
            "/sfn/chat/edit",
            vec![
                ("id", conv),
                ("message_id", "not-a-uuid"),
                ("content", "Plan the barbecue"),
            ],
            "sfn edit with a bad message_id",
        ),
        (
            "/sfn/chat/edit",
            vec![("id", conv), ("message_id", q)],
            "sfn edit without content",
        ),
        (
            "/sfn/chat/edit",
            vec![
                ("id", conv),
                ("message_id", q),
                ("content", "Plan the barbecue"),
                ("client_id", "nope"),
            ],
            "sfn edit with a bad client_id",
        ),
        (
            "/sfn/chat/regenerate",
            vec![("id", "x"), ("message_id", a)],
            "sfn regenerate with a bad id",
        ),
        (
            "/sfn/chat/current",
            vec![("id", conv)],
            "sfn switch without message_id",
        ),
        (
            "/sfn/chat/current",
            vec![("id", conv), ("message_id", "nope")],
            "sfn switch with a bad message_id",
        ),
    ];
    for (endpoint, form, what) in bad {
        refused(
            sfn(&server, &alice, endpoint, &form).await,
            StatusCode::BAD_REQUEST,
            what,
        )
        .await;
    }
    for target in [conversation.as_str(), bobs.as_str()] {
        refused(
            sfn(
                &server,
                &bob,
                "/sfn/chat/edit",
                &[
                    ("id", target),
                    ("message_id", q),
                    ("content", "Plan the barbecue"),
                ],
            )
            .await,
            StatusCode::NOT_FOUND,
            "sfn edit of another user's message",
        )
        .await;
        refused(
            sfn(
                &server,
                &bob,
                "/sfn/chat/regenerate",
                &[("id", target), ("message_id", a)],
            )
            .await,
            StatusCode::NOT_FOUND,
            "sfn regenerate of another user's answer",
        )
        .await;
        refused(
            sfn(
                &server,
                &bob,
                "/sfn/chat/current",
                &[("id", target), ("message_id", q)],
            )
            .await,
            StatusCode::NOT_FOUND,
            "sfn switch to another user's message",
        )
        .await;
    }
    assert_eq!(
        model.requests().len(),
        asked,
        "nothing refused reached the model"
    );
    assert_eq!(
        listed(&server, &alice, &conversation, "?branch=all")
            .await
            .len(),
        4
    );

    // ...and what is allowed works through them.
    let edited = json_with(
        sfn(
            &server,
            &alice,
            "/sfn/chat/edit",
            &[
                ("id", &conversation),
                ("message_id", &question),
                ("content", "Plan the barbecue"),
            ],
        )
        .await,
        StatusCode::OK,
        "sfn edit",
    )
    .await;
    let edited_user = id(&edited["user_message"]);
    assert_eq!(edited["user_message"]["content"], "Plan the barbecue");
    assert!(edited["user_message"]["parent_id"].is_null());
    assert_eq!(edited["user_message"]["sibling_count"], 2);
    assert_eq!(
        edited["assistant_message"]["parent_id"],
        edited_user.as_str()
    );
    let edited_answer = id(&edited["assistant_message"]);
    let regenerated = json_with(
        sfn(
            &server,
            &alice,
            "/sfn/chat/regenerate",
            &[("id", &conversation), ("message_id", &edited_answer)],
        )
        .await,
        StatusCode::OK,
        "sfn regenerate",
    )
    .await;
    assert_eq!(regenerated["user_message"]["id"], edited_user.as_str());
    assert_eq!(
        regenerated["assistant_message"]["parent_id"],
        edited_user.as_str()
    );
    assert_eq!(regenerated["assistant_message"]["sibling_count"], 2);
    let switched = json_with(
        sfn(
            &server,
            &alice,
            "/sfn/chat/current",
            &[("id", &conversation), ("message_id", &question)],
        )
        .await,
        StatusCode::OK,
        "sfn switch",
    )
    .await;
    assert_eq!(switched["current_message_id"], latest.as_str());
    let all = json_with(
        sfn(
            &server,
            &alice,
            "/sfn/chat/messages",
            &[("id", &conversation), ("query[branch]", "all")],
        )
        .await,
        StatusCode::OK,
        "sfn messages of every branch",
    )
    .await;
    assert_eq!(all["messages"].as_array().unwrap().len(), 7, "{all}");
    let current = json_with(
        sfn(
            &server,
            &alice,
            "/sfn/chat/messages",
            &[("id", &conversation)],
        )
        .await,
        StatusCode::OK,
        "sfn messages of the current branch",
    )
    .await;
    let shown = current["messages"].as_array().unwrap();
    assert_eq!(shown.len(), 4, "{current}");
    assert_eq!(shown[0]["id"], question.as_str());
    assert_eq!(shown[3]["id"], latest.as_str());

    // The longest allowed edit is accepted.
    let longest = "z".repeat(10_000);
    let accepted = json_with(
        edit(
            &server,
            &alice,
            &conversation,
            &question,
            json!({ "content": longest }),
        )
        .await,
        StatusCode::CREATED,
        "a 10,000-character edit",
    )
    .await;
    assert_eq!(
        accepted["user_message"]["content"].as_str().unwrap().len(),
        10_000
    );
}

// ---------------------------------------------------------------------------------------------
// Idempotency
// ---------------------------------------------------------------------------------------------

#[sqlx::test]
async fn an_edit_or_a_regeneration_resent_with_its_client_id_happens_once(pool: PgPool) {
    let model =
        MockModel::start_with_fallback(Vec::new(), Some(Step::SlowText(400, "Answer.".into())))
            .await;
    let server = ServerProcess::start(
        &database_url(&pool),
        &server_env(&model, &[("TURNS_PER_USER", "10".to_string())]),
    )
    .await;
    let client = Client::register(&server, "resend-edits@example.com").await;
    let conversation = client.conversation(&server).await;
    let first = say(&server, &client, &conversation, "Plan the picnic").await;
    say(&server, &client, &conversation, "Invite the neighbours").await;
    let q1 = id(&first["user_message"]);
    let edit_url = server.at(&edit_path(&conversation, &q1));
    let post = |url: &str, body: &Value| {
        client
            .http
            .post(url)
            .bearer_auth(&client.token)
            .json(body)
            .send()
    };

    // The same edit twice in a row.
    let body = json!({ "content": "Edited once", "client_id": Uuid::new_v4() });
    let a = json_with(
        post(edit_url.as_str(), &body).await.unwrap(),
        StatusCode::CREATED,
        "edit",
    )
    .await;
    let b = json_with(
        post(edit_url.as_str(), &body).await.unwrap(),
        StatusCode::CREATED,
        "the same edit again",
    )
    .await;
    same_turn(&a, &b);
    assert_eq!(messages_saying(&pool, "Edited once").await, 1);

    // Three at once.
    let body = json!({ "content": "Edited concurrently", "client_id": Uuid::new_v4() });
    let answers = futures::future::join_all((0..3).map(|_| post(edit_url.as_str(), &body))).await;
    let mut edits = Vec::new();
    for res in answers {
        edits.push(json_with(res.unwrap(), StatusCode::CREATED, "a concurrent edit").await);
    }
    for other in &edits {
        same_turn(&edits[0], other);
    }
    assert_ne!(edits[0]["user_message"]["id"], a["user_message"]["id"]);
    assert_eq!(messages_saying(&pool, "Edited concurrently").await, 1);
    assert_eq!(count(&pool, "SELECT count(*) FROM messages").await, 8);
    assert_eq!(count(&pool, "SELECT count(*) FROM turns").await, 4);
    assert_eq!(model.requests().len(), 4, "one model call per edit");

    // Regenerations of the edit's answer: twice in a row...
    let edited_user = id(&edits[0]["user_message"]);
    let target = id(&edits[0]["assistant_message"]);
    let regenerate_url = server.at(&regenerate_path(&conversation, &target));
    let body = json!({ "client_id": Uuid::new_v4() });
    let a = json_with(
        post(regenerate_url.as_str(), &body).await.unwrap(),
        StatusCode::CREATED,
        "regenerate",
    )
    .await;
    let b = json_with(
        post(regenerate_url.as_str(), &body).await.unwrap(),
        StatusCode::CREATED,
        "the same regeneration again",
    )
    .await;
    same_turn(&a, &b);
    assert_eq!(a["user_message"]["id"], edited_user.as_str());
    assert_eq!(a["assistant_message"]["parent_id"], edited_user.as_str());
    assert_ne!(a["assistant_message"]["id"], target.as_str());
    assert_eq!(count(&pool, "SELECT count(*) FROM turns").await, 5);
    assert_eq!(count(&pool, "SELECT count(*) FROM messages").await, 9);

    // ...and three at once.
    let client_id = Uuid::new_v4();
    let body = json!({ "client_id": client_id });
    let answers =
        futures::future::join_all((0..3).map(|_| post(regenerate_url.as_str(), &body))).await;
    let mut regenerations = Vec::new();
    for res in answers {
        regenerations.push(
            json_with(
                res.unwrap(),
                StatusCode::CREATED,
                "a concurrent regeneration",
            )
            .await,
        );
    }
    for other in &regenerations {
        same_turn(&regenerations[0], other);
    }
    assert_ne!(
        regenerations[0]["assistant_message"]["id"],
        a["assistant_message"]["id"]
    );
    assert_eq!(
        count(&pool, "SELECT count(*) FROM turns").await,
        6,
        "one turn"
    );
    assert_eq!(
        count(&pool, "SELECT count(*) FROM messages").await,
        10,
        "one answer"
    );
    let with_id: i64 = sqlx::query_scalar("SELECT count(*) FROM turns WHERE client_id = $1")
        .bind(client_id)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(with_id, 1);
    assert_eq!(model.requests().len(), 6, "one model call per regeneration");
    let all = listed(&server, &client, &conversation, "?branch=all").await;
    let answers_to_edit = all
        .iter()
        .filter(|m| m["parent_id"] == edited_user.as_str())
        .count();
    assert_eq!(
        answers_to_edit, 3,
        "the edit's answer and two regenerations"
    );
    assert_eq!(
        ids(&client.messages(&server, &conversation).await),
        vec![edited_user, id(&regenerations[0]["assistant_message"])]
    );
}

// ---------------------------------------------------------------------------------------------
// Live events
// ---------------------------------------------------------------------------------------------

#[sqlx::test]
async fn open_streams_get_the_new_branch_with_parent_ids_and_follow_a_switch(pool: PgPool) {
    let model = MockModel::start(vec![
        Step::Text("Picnic planned.".into()),
        Step::Text("Neighbours invited.".into()),
        Step::Text("Cousins invited.".into()),
    ])
    .await;
    let server = start(&pool, &model).await;
    let client = Client::register(&server, "live-branches@example.com").await;
    let conversation = client.conversation(&server).await;
    let first = say(&server, &client, &conversation, "Plan the picnic").await;
    let second = say(&server, &client, &conversation, "Invite the neighbours").await;
    let a1 = id(&first["assistant_message"]);
    let q2 = id(&second["user_message"]);
    let a2 = id(&second["assistant_message"]);
    // Two tabs.
    let mut tabs = [
        open_events(&server, &client).await,
        open_events(&server, &client).await,
    ];
    tokio::time::sleep(Duration::from_millis(300)).await;

    let edited = json_with(
        edit(
            &server,
            &client,
            &conversation,
            &q2,
            json!({ "content": "Invite the cousins" }),
        )
        .await,
        StatusCode::CREATED,
        "edit",
    )
    .await;
    let new_user = id(&edited["user_message"]);
    let new_answer = id(&edited["assistant_message"]);
    for tab in &mut tabs {
        let seen = tab
            .until(Duration::from_secs(5), |e: &Value| {
                e["type"] == "message" && e["id"] == new_answer.as_str()
            })
            .await;
        let user_event = seen
            .iter()
            .map(|e| &e.data)
            .find(|e| e["type"] == "message" && e["id"] == new_user.as_str())
            .unwrap_or_else(|| panic!("no event for the edited message: {seen:?}"));
        assert_eq!(user_event["parent_id"], a1.as_str(), "{user_event}");
        assert_eq!(user_event["seq"], 5);
        assert_eq!(user_event["role"], "user");
        assert_eq!(user_event["content"], "Invite the cousins");
        let answer_event = &seen.last().unwrap().data;
        assert_eq!(
            answer_event["parent_id"],
            new_user.as_str(),
            "{answer_event}"
        );
        assert_eq!(answer_event["seq"], 6);
        // The conversation's current leaf moves with the new branch.
        tab.until(Duration::from_secs(5), |e: &Value| {
            e["type"] == "conversation"
                && e["id"] == conversation.as_str()
                && e["current_message_id"] == new_answer.as_str()
        })
        .await;
    }

    // A switch back reaches both tabs, with the new current leaf.
    let switched = json_with(
        put_current(&server, &client, &conversation, &q2).await,
        StatusCode::OK,
        "switch",
    )
    .await;
    assert_eq!(switched["current_message_id"], a2.as_str());
    for tab in &mut tabs {
        let seen = tab
            .until(Duration::from_secs(5), |e: &Value| {
                e["type"] == "conversation"
                    && e["id"] == conversation.as_str()
                    && e["current_message_id"] == a2.as_str()
            })
            .await;
        let event = seen.last().unwrap();
        assert!(
            event.id.is_some(),
            "a branch switch is a stored event (replayed after a reconnect)"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// SIGKILL during an edit's turn
// ---------------------------------------------------------------------------------------------

#[sqlx::test]
async fn an_edit_whose_server_is_killed_mid_turn_is_answered_once_on_its_branch(pool: PgPool) {
    let model = MockModel::start(vec![
        Step::Text("Picnic planned.".into()),
        Step::Text("Neighbours invited.".into()),
        // The edit's first attempt: the model never answers before the kill.
        Step::Stall(120_000),
        // The resumed attempt.
        Step::Text("Barbecue planned.".into()),
    ])
    .await;
    let db = database_url(&pool);
    let env = server_env(&model, &[]);
    let mut server = ServerProcess::start(&db, &env).await;
    let client = Client::register(&server, "killed-edit@example.com").await;
    let conversation = client.conversation(&server).await;
    let first = say(&server, &client, &conversation, "Plan the picnic").await;
    let second = say(&server, &client, &conversation, "Invite the neighbours").await;
    let old = [
        id(&first["user_message"]),
        id(&first["assistant_message"]),
        id(&second["user_message"]),
        id(&second["assistant_message"]),
    ];
    let request = client
        .http
        .post(server.at(&edit_path(&conversation, &old[0])))
        .bearer_auth(&client.token)
        .json(&json!({ "content": "Plan the barbecue" }));
    let _edit = tokio::spawn(async move { request.send().await.ok() });
    // The edit is stored and its turn is asking the model: kill the only server.
    model_requests(&model, 3).await;
    assert_eq!(
        count(&pool, "SELECT count(*) FROM turns WHERE state = 'running'").await,
        1
    );
    server.kill();

    let server = ServerProcess::start(&db, &env).await;
    let shown = client
        .wait_for_reply(&server, &conversation, Duration::from_secs(25))
        .await;
    assert_eq!(shown.len(), 2, "the edited branch: {shown:?}");
    let new_user = id(&shown[0]);
    assert!(!old.contains(&new_user));
    assert_eq!(shown[0]["content"], "Plan the barbecue");
    assert!(shown[0]["parent_id"].is_null());
    assert_eq!(shown[0]["sibling_count"], 2);
    assert_eq!(shown[0]["sibling_index"], 2);
    assert_eq!(shown[1]["parent_id"], new_user.as_str());
    assert_eq!(shown[1]["content"], "Barbecue planned.");
    assert_eq!(shown[1]["status"], "complete");
    assert_eq!(
        conversation_json(&server, &client, &conversation).await["current_message_id"],
        shown[1]["id"]
    );

    // Answered once: nothing more arrives, one turn, one answer to the edited message.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let all = listed(&server, &client, &conversation, "?branch=all").await;
    assert_eq!(all.len(), 6, "{all:?}");
    assert_eq!(
        all.iter()
            .filter(|m| m["parent_id"] == new_user.as_str())
            .count(),
        1,
        "one answer to the edit: {all:?}"
    );
    assert_eq!(&ids(&all)[..4], &old[..], "the old branch is kept");
    let turns: Vec<(String, i32)> =
        sqlx::query_as("SELECT state, attempts FROM turns WHERE user_seq = 5")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(turns, vec![("complete".to_string(), 2)]);
    assert_eq!(
        count(&pool, "SELECT count(*) FROM turns WHERE state = 'running'").await,
        0
    );

    // The resumed attempt asked the model with the new text, not the old branch.
    assert_eq!(model.requests().len(), 4);
    let text = Value::Array(prompt_of(&model, 3))
        .to_string()
        .to_lowercase();
    assert!(text.contains("plan the barbecue"), "{text}");
    assert!(
        !text.contains("picnic") && !text.contains("neighbours"),
        "{text}"
    );
    assert_eq!(
        ids(&client.messages(&server, &conversation).await),
        ids(&shown),
        "still the edited branch"
    );
}

// ---------------------------------------------------------------------------------------------
// ChatKit
// ---------------------------------------------------------------------------------------------

#[sqlx::test]
async fn chatkit_retry_after_item_removes_the_old_answer_and_keeps_it_as_a_branch(pool: PgPool) {
    let model = MockModel::start(vec![
        add_milk(),
        Step::Text("Added Buy milk.".into()),
        // The retry: adds the task again unless its prompt shows it added.
        Step::AddOnce("Buy milk".into()),
    ])
    .await;
    let server = start(&pool, &model).await;
    let client = Client::register(&server, "chatkit-branches@example.com").await;
    let conversation = client.conversation(&server).await;
    let sent = say(&server, &client, &conversation, "add buy milk").await;
    let question = id(&sent["user_message"]);
    let old_answer = id(&sent["assistant_message"]);
    let before = json_with(
        chatkit(
            &server,
            &client,
            json!({ "type": "items.list",
                    "params": { "thread_id": conversation, "order": "asc" } }),
        )
        .await,
        StatusCode::OK,
        "items.list before",
    )
    .await;
    let before: Vec<String> = before["data"].as_array().unwrap().iter().map(id).collect();
    assert_eq!(
        before,
        vec![
            question.clone(),
            format!("wf_{old_answer}"),
            old_answer.clone()
        ]
    );

    let res = chatkit(
        &server,
        &client,
        json!({ "type": "threads.retry_after_item",
                "params": { "thread_id": conversation, "item_id": question } }),
    )
    .await;
    let events = stream_to_end(res, Duration::from_secs(20)).await;
    let mut removed: Vec<String> = events
        .iter()
        .filter(|e| e["type"] == "thread.item.removed")
        .map(|e| e["item_id"].as_str().unwrap().to_string())
        .collect();
    removed.sort();
    let mut expected = [old_answer.clone(), format!("wf_{old_answer}")];
    expected.sort();
    assert_eq!(
        removed, expected,
        "the items after the question leave: {events:?}"
    );
    let done_at = events
        .iter()
        .position(|e| e["type"] == "thread.item.done" && e["item"]["type"] == "assistant_message")
        .unwrap_or_else(|| panic!("no new answer: {events:?}"));
    let last_removed = events
        .iter()
        .rposition(|e| e["type"] == "thread.item.removed")
        .unwrap();
    assert!(
        last_removed < done_at,
        "removed first, then the new answer: {events:?}"
    );
    let new_answer = id(&events[done_at]["item"]);
    assert_ne!(new_answer, old_answer);

    // items.list: the current branch only.
    let items = json_with(
        chatkit(
            &server,
            &client,
            json!({ "type": "items.list",
                    "params": { "thread_id": conversation, "order": "asc" } }),
        )
        .await,
        StatusCode::OK,
        "items.list after",
    )
    .await;
    let items = items["data"].as_array().unwrap().clone();
    assert_eq!(
        ids(&items),
        vec![question.clone(), new_answer.clone()],
        "{items:?}"
    );
    assert_eq!(items[0]["type"], "user_message");
    assert_eq!(items[1]["type"], "assistant_message");

    // REST: both answers are kept, siblings of each other; the new one is shown.
    let all = listed(&server, &client, &conversation, "?branch=all").await;
    assert_eq!(
        ids(&all),
        vec![question.clone(), old_answer.clone(), new_answer.clone()]
    );
    for answer in &all[1..] {
        assert_eq!(answer["parent_id"], question.as_str(), "{answer}");
        assert_eq!(answer["sibling_count"], 2, "{answer}");
    }
    assert_eq!(
        ids(&client.messages(&server, &conversation).await),
        vec![question, new_answer]
    );
    // The model was shown the task already added: it exists once.
    assert_eq!(model.requests().len(), 3);
    assert_eq!(count(&pool, "SELECT count(*) FROM tasks").await, 1);
}
