//! The MCP endpoint with the real rmcp client over HTTP, and the in-process client.

mod common;

use chatkit::{model::ToolCallStatus, server::mcp::InProcessClient};
use common::TestApp;
use reqwest::StatusCode;
use rmcp::{
    model::{
        CallToolRequestParams, CallToolResult, ClientCapabilities, ClientInfo, Implementation,
        JsonObject,
    },
    service::RunningService,
    transport::{
        streamable_http_client::StreamableHttpClientTransportConfig, StreamableHttpClientTransport,
    },
    RoleClient, ServiceExt,
};
use serde_json::{json, Value};
use sqlx::PgPool;

async fn connect(app: &TestApp, token: &str) -> RunningService<RoleClient, ClientInfo> {
    let config = StreamableHttpClientTransportConfig::with_uri(app.at("/mcp"))
        .auth_header(token.to_string());
    let transport = StreamableHttpClientTransport::from_config(config);
    ClientInfo::new(
        ClientCapabilities::default(),
        Implementation::new("chatkit-tests", "0.1"),
    )
    .serve(transport)
    .await
    .expect("MCP initialize")
}

fn args(value: Value) -> JsonObject {
    value.as_object().cloned().expect("object")
}

async fn call(
    client: &RunningService<RoleClient, ClientInfo>,
    name: &'static str,
    arguments: Value,
) -> CallToolResult {
    client
        .call_tool(CallToolRequestParams::new(name).with_arguments(args(arguments)))
        .await
        .expect("tool call is not a protocol error")
}

fn body(result: &CallToolResult) -> Value {
    result
        .structured_content
        .clone()
        .expect("structured result")
}

fn text(result: &CallToolResult) -> String {
    chatkit::server::mcp::text_of(result)
}

#[sqlx::test]
async fn lists_five_tools_with_schemas(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let token = app.register("tools@example.com").await;
    let client = connect(&app, &token).await;
    let info = client.peer_info().expect("server info");
    assert_eq!(
        info.server_info.as_ref().map(|s| s.name.as_str()),
        Some("chatkit-tasks")
    );
    let tools = client.list_all_tools().await.unwrap();
    let mut names: Vec<&str> = tools.iter().map(|t| t.name.as_ref()).collect();
    names.sort();
    assert_eq!(
        names,
        [
            "add_task",
            "complete_task",
            "delete_task",
            "list_tasks",
            "update_task"
        ]
    );
    let add = tools.iter().find(|t| t.name == "add_task").unwrap();
    let schema = Value::Object((*add.input_schema).clone());
    assert_eq!(schema["properties"]["title"]["type"], "string");
    assert!(schema["properties"]["title"]["description"]
        .as_str()
        .unwrap()
        .contains("200"));
    assert_eq!(schema["required"], json!(["title"]));
    let update = tools.iter().find(|t| t.name == "update_task").unwrap();
    let schema = Value::Object((*update.input_schema).clone());
    assert_eq!(schema["required"], json!(["task_id"]));
    for tool in &tools {
        assert!(
            tool.description.as_deref().is_some_and(|d| d.len() > 10),
            "{} needs a description",
            tool.name
        );
        let properties = tool
            .input_schema
            .get("properties")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        assert!(
            properties.keys().all(|k| !k.contains("user")),
            "{} must not take a user id",
            tool.name
        );
    }
    client.cancel().await.unwrap();
}

#[sqlx::test]
async fn every_tool_works_and_missing_tasks_are_tool_errors(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let token = app.register("mcp@example.com").await;
    let client = connect(&app, &token).await;

    let added = call(
        &client,
        "add_task",
        json!({ "title": "Buy groceries", "description": "milk, eggs" }),
    )
    .await;
    assert_eq!(added.is_error, Some(false));
    assert_eq!(
        body(&added),
        json!({ "task_id": 1, "status": "created", "title": "Buy groceries" })
    );
    call(&client, "add_task", json!({ "title": "Walk the dog" })).await;

    let listed = body(&call(&client, "list_tasks", json!({})).await);
    assert_eq!(listed["count"], 2);
    assert_eq!(
        listed["tasks"][0],
        json!({ "id": 1, "title": "Buy groceries", "description": "milk, eggs", "completed": false })
    );

    let completed = body(&call(&client, "complete_task", json!({ "task_id": 1 })).await);
    assert_eq!(
        completed,
        json!({ "task_id": 1, "status": "completed", "title": "Buy groceries" })
    );
    let pending = body(&call(&client, "list_tasks", json!({ "status": "pending" })).await);
    assert_eq!(pending["tasks"].as_array().unwrap().len(), 1);
    assert_eq!(pending["tasks"][0]["id"], 2);

    // A quoted number is accepted (models do that).
    let updated = body(
        &call(
            &client,
            "update_task",
            json!({ "task_id": "2", "title": "Walk the dog twice" }),
        )
        .await,
    );
    assert_eq!(
        updated,
        json!({ "task_id": 2, "status": "updated", "title": "Walk the dog twice" })
    );
    let deleted = body(&call(&client, "delete_task", json!({ "task_id": 2 })).await);
    assert_eq!(
        deleted,
        json!({ "task_id": 2, "status": "deleted", "title": "Walk the dog twice" })
    );

    let missing = call(&client, "complete_task", json!({ "task_id": 7 })).await;
    assert_eq!(missing.is_error, Some(true));
    assert_eq!(text(&missing), "task 7 not found");
    let invalid = call(&client, "add_task", json!({ "title": "   " })).await;
    assert_eq!(invalid.is_error, Some(true));
    assert!(text(&invalid).contains("empty"), "{}", text(&invalid));
    let wrong_type = call(&client, "delete_task", json!({ "task_id": "seven" })).await;
    assert_eq!(wrong_type.is_error, Some(true));
    assert!(
        text(&wrong_type).starts_with("invalid arguments"),
        "{}",
        text(&wrong_type)
    );

    // The REST view agrees with what the tools did.
    let tasks: Vec<Value> = app.get(&token, "/api/tasks").await.json().await.unwrap();
    assert_eq!(tasks.len(), 1);
    assert_eq!(tasks[0]["completed"], true);
    client.cancel().await.unwrap();
}

#[sqlx::test]
async fn a_token_never_reaches_another_users_tasks(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let alice = app.register("alice@example.com").await;
    let bob = app.register("bob@example.com").await;
    for title in ["Bob 1", "Bob 2"] {
        app.post(&bob, "/api/tasks", json!({ "title": title }))
            .await;
    }
    let client = connect(&app, &alice).await;
    let listed = body(&call(&client, "list_tasks", json!({ "status": "all" })).await);
    assert_eq!(listed["count"], 0, "Alice sees none of Bob's tasks");
    for (tool, arguments) in [
        ("complete_task", json!({ "task_id": 1 })),
        ("update_task", json!({ "task_id": 1, "title": "hacked" })),
        ("delete_task", json!({ "task_id": 2 })),
    ] {
        let result = call(&client, tool, arguments).await;
        assert_eq!(result.is_error, Some(true), "{tool}");
        assert!(
            text(&result).ends_with("not found"),
            "{tool}: {}",
            text(&result)
        );
    }
    // Extra arguments naming a user are refused, not obeyed.
    let sneaky = call(&client, "list_tasks", json!({ "user_id": "someone" })).await;
    assert_eq!(sneaky.is_error, Some(true));
    // Alice's own task gets her number 1, unaffected by Bob's.
    assert_eq!(
        body(&call(&client, "add_task", json!({ "title": "Alice 1" })).await)["task_id"],
        1
    );

    let bobs: Vec<Value> = app.get(&bob, "/api/tasks").await.json().await.unwrap();
    let titles: Vec<&str> = bobs.iter().map(|t| t["title"].as_str().unwrap()).collect();
    assert_eq!(titles, ["Bob 1", "Bob 2"]);
    assert!(bobs.iter().all(|t| t["completed"] == false));
    client.cancel().await.unwrap();
}

#[sqlx::test]
async fn no_token_or_a_bad_token_is_401(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let initialize = json!({
        "jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": { "protocolVersion": "2025-03-26", "capabilities": {}, "clientInfo": { "name": "curl", "version": "1" } }
    });
    let post = |token: Option<&str>| {
        let mut req = app
            .http
            .post(app.at("/mcp"))
            .header("accept", "application/json, text/event-stream")
            .json(&initialize);
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        req.send()
    };
    let res = post(None).await.unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(res.headers()["www-authenticate"], "Bearer");
    assert_eq!(
        post(Some("not-a-jwt")).await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
    // A browser session cookie is not accepted for MCP.
    let token = app.register("cookie@example.com").await;
    let res = app
        .http
        .post(app.at("/mcp"))
        .header("cookie", format!("chatkit_session={token}"))
        .header("origin", &app.url)
        .header("accept", "application/json, text/event-stream")
        .json(&initialize)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    // With the token, initialize succeeds.
    assert_eq!(post(Some(&token)).await.unwrap().status(), StatusCode::OK);
}

#[sqlx::test]
async fn in_process_client_gives_the_same_results(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let token = app.register("inproc@example.com").await;
    let me: Value = app.get(&token, "/api/auth/me").await.json().await.unwrap();
    let user: uuid::Uuid = me["id"].as_str().unwrap().parse().unwrap();

    let local = InProcessClient::connect(
        app.state.pool.clone(),
        app.state.bus.clone(),
        user,
        Default::default(),
    )
    .await
    .unwrap();
    let remote = connect(&app, &token).await;
    let local_tools: Vec<String> = local
        .list_tools()
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.name.to_string())
        .collect();
    let remote_tools: Vec<String> = remote
        .list_all_tools()
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.name.to_string())
        .collect();
    assert_eq!(local_tools, remote_tools);

    let added = local
        .call("add_task", args(json!({ "title": "Local task" })), None)
        .await;
    assert_eq!(added.status, ToolCallStatus::Success);
    assert_eq!(
        added.result,
        json!({ "task_id": 1, "status": "created", "title": "Local task" })
    );
    let via_http = body(&call(&remote, "add_task", json!({ "title": "Remote task" })).await);
    assert_eq!(via_http["task_id"], 2, "both paths share one numbering");
    let local_list = local.call("list_tasks", args(json!({})), None).await.result;
    let remote_list = body(&call(&remote, "list_tasks", json!({})).await);
    assert_eq!(local_list, remote_list);
    let missing = local
        .call("complete_task", args(json!({ "task_id": 42 })), None)
        .await;
    assert_eq!(missing.status, ToolCallStatus::Error);
    assert_eq!(missing.result, json!({ "error": "task 42 not found" }));
    local.close().await;
    remote.cancel().await.unwrap();
}

#[sqlx::test]
async fn a_recorded_call_is_replayed_only_to_the_same_tool_with_the_same_arguments(pool: PgPool) {
    use chatkit::server::services::turn_records::CallSlot;
    let app = TestApp::spawn(pool.clone()).await;
    let token = app.register("slots@example.com").await;
    let user = app.user_id(&token).await;
    let conversation: uuid::Uuid = app.conversation(&token).await.parse().unwrap();
    // A running turn with an unexpired lease, run by `attempt`.
    let (turn, attempt) = (uuid::Uuid::new_v4(), uuid::Uuid::new_v4());
    sqlx::query(
        "INSERT INTO turns (id, conversation_id, user_id, user_seq, state, owner, lease_until, attempt_id)
         VALUES ($1, $2, $3, 1, 'running', $4, now() + interval '1 minute', $4)",
    )
    .bind(turn)
    .bind(conversation)
    .bind(user)
    .bind(attempt)
    .execute(&pool)
    .await
    .unwrap();
    let client = InProcessClient::connect(
        pool.clone(),
        std::sync::Arc::new(chatkit::server::bus::EventBus::new(None)),
        user,
        Default::default(),
    )
    .await
    .unwrap();
    let slot = |attempt: uuid::Uuid| CallSlot {
        turn,
        attempt,
        idx: 0,
        call_id: "call_a".into(),
    };
    let milk = || args(json!({ "title": "Buy milk" }));
    let first = client.call("add_task", milk(), Some(&slot(attempt))).await;
    assert_eq!(first.status, ToolCallStatus::Success);
    // The same call again (a resumed attempt): its recorded result, nothing runs twice.
    let again = client.call("add_task", milk(), Some(&slot(attempt))).await;
    assert_eq!(again.result, first.result);
    // The same slot for other arguments, or another tool: refused, never the recorded result.
    let other = client
        .call(
            "add_task",
            args(json!({ "title": "Buy bread" })),
            Some(&slot(attempt)),
        )
        .await;
    assert_eq!(other.status, ToolCallStatus::Error);
    assert!(
        other.result["error"]
            .as_str()
            .unwrap()
            .contains("other arguments"),
        "{:?}",
        other.result
    );
    let delete = client
        .call(
            "delete_task",
            args(json!({ "task_id": 1 })),
            Some(&slot(attempt)),
        )
        .await;
    assert_eq!(delete.status, ToolCallStatus::Error);
    // Another attempt (one whose lease was taken over) cannot call at all.
    let stale = client
        .call(
            "add_task",
            args(json!({ "title": "Stale" })),
            Some(&CallSlot {
                idx: 1,
                ..slot(uuid::Uuid::new_v4())
            }),
        )
        .await;
    assert_eq!(stale.status, ToolCallStatus::Error);
    assert!(stale.result["error"]
        .as_str()
        .unwrap()
        .contains("no longer run"));
    let tasks: Vec<String> = sqlx::query_scalar("SELECT title FROM tasks ORDER BY id")
        .fetch_all(&pool)
        .await
        .unwrap();
    assert_eq!(tasks, vec!["Buy milk".to_string()]);
    client.close().await;
}
