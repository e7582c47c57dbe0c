//! The OpenAPI document is generated from the routes and covers every REST operation.

mod common;

use common::TestApp;
use serde_json::Value;
use sqlx::PgPool;

#[sqlx::test]
async fn openapi_describes_every_rest_route(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let doc: Value = app
        .http
        .get(app.at("/api/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
    let expected = [
        ("/api/auth/register", "post"),
        ("/api/auth/login", "post"),
        ("/api/auth/logout", "post"),
        ("/api/auth/me", "get"),
        ("/api/auth/me", "delete"),
        ("/api/tasks", "get"),
        ("/api/tasks", "post"),
        ("/api/tasks/{id}", "get"),
        ("/api/tasks/{id}", "put"),
        ("/api/tasks/{id}", "delete"),
        ("/api/tasks/{id}/complete", "post"),
        ("/api/tasks/{id}/reopen", "post"),
        ("/api/tasks/{id}/snooze", "post"),
        ("/api/chat/conversations", "get"),
        ("/api/chat/conversations", "post"),
        ("/api/chat/conversations/{id}", "get"),
        ("/api/chat/conversations/{id}", "put"),
        ("/api/chat/conversations/{id}", "delete"),
        ("/api/chat/conversations/{id}/messages", "get"),
        ("/api/chat/conversations/{id}/messages", "post"),
        ("/api/chat/conversations/{id}/stop", "post"),
        ("/api/chat/conversations/{id}/retry", "post"),
        (
            "/api/chat/conversations/{id}/messages/{message_id}/edit",
            "post",
        ),
        (
            "/api/chat/conversations/{id}/messages/{message_id}/regenerate",
            "post",
        ),
        ("/api/chat/conversations/{id}/current", "put"),
        ("/api/chat/conversations/{id}/approvals", "post"),
        ("/api/chat/conversations/{id}/approvals/{call_id}", "post"),
        (
            "/api/chat/conversations/{id}/messages/{message_id}/tool_calls/{index}/undo",
            "post",
        ),
        ("/api/account/settings", "get"),
        ("/api/account/settings", "put"),
        ("/api/auth/logout-everywhere", "post"),
        ("/api/chat/events", "get"),
        ("/api/chat/events/ticket", "post"),
        ("/api/chat/search", "get"),
        ("/api/chat/conversations/{id}/export", "get"),
        ("/api/export", "get"),
        ("/api/import", "post"),
    ];
    for (path, method) in expected {
        assert!(
            doc["paths"][path][method].is_object(),
            "{method} {path} is not documented"
        );
    }
    let documented: usize = doc["paths"]
        .as_object()
        .unwrap()
        .values()
        .map(|p| p.as_object().unwrap().len())
        .sum();
    assert_eq!(
        documented,
        expected.len(),
        "no undocumented extras or missing routes"
    );
    for schema in [
        "Conversation",
        "Message",
        "Task",
        "TurnResult",
        "ToolCallRecord",
        "TurnActivity",
        "StopResult",
        "LiveEvent",
    ] {
        assert!(
            doc["components"]["schemas"][schema].is_object(),
            "schema {schema}"
        );
    }
    // The poll's progress report is documented; the server-function-only `html` is not.
    let schemas = &doc["components"]["schemas"];
    assert!(schemas["MessagePage"]["properties"]["activity"].is_object());
    assert!(schemas["Message"]["properties"]["content"].is_object());
    assert!(schemas["Message"]["properties"].get("html").is_none());
    // The constraints the server enforces are declared.
    let send = &schemas["SendMessage"]["properties"]["content"];
    assert_eq!(send["maxLength"], 10000);
    assert_eq!(send["minLength"], 1);
    assert_eq!(schemas["NewTask"]["properties"]["title"]["maxLength"], 200);
    // Issue 26: what a planned task accepts.
    let new_task = &schemas["NewTask"]["properties"];
    assert!(new_task["due"]["pattern"]
        .as_str()
        .unwrap()
        .contains("T[0-9]{2}:[0-9]{2}"));
    assert_eq!(new_task["priority"]["minimum"], 1);
    assert_eq!(new_task["priority"]["maximum"], 4);
    assert_eq!(new_task["tags"]["maxItems"], 10);
    assert_eq!(new_task["recurrence"]["maxLength"], 200);
    for field in ["due", "priority", "tags", "recurrence"] {
        assert!(
            schemas["Task"]["properties"][field].is_object(),
            "Task.{field}"
        );
        assert!(
            schemas["TaskPatch"]["properties"][field].is_object(),
            "TaskPatch.{field}"
        );
    }
    let list_params: Vec<&str> = doc["paths"]["/api/tasks"]["get"]["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p["name"].as_str())
        .collect();
    for param in ["status", "view", "tag", "priority"] {
        assert!(list_params.contains(&param), "GET /api/tasks ?{param}");
    }
    assert_eq!(
        schemas["Credentials"]["properties"]["password"]["minLength"],
        8
    );
    let list = &doc["paths"]["/api/chat/conversations/{id}/messages"]["get"];
    let limit = list["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "limit")
        .unwrap();
    assert_eq!(limit["schema"]["maximum"], 100);
    // Errors: the body, 429 with Retry-After, 413; sign-in needs no token; an optional body.
    let send_op = &doc["paths"]["/api/chat/conversations/{id}/messages"]["post"];
    assert!(send_op["responses"]["429"]["headers"]["Retry-After"].is_object());
    assert!(send_op["responses"]["413"]["content"]["application/json"].is_object());
    assert!(schemas["ErrorBody"]["properties"]["detail"].is_object());
    assert_eq!(
        doc["paths"]["/api/auth/login"]["post"]["security"],
        serde_json::json!([{}])
    );
    assert_eq!(
        doc["paths"]["/api/chat/conversations"]["post"]["requestBody"]["required"],
        false
    );
    let statuses = &schemas["MessageStatus"]["enum"];
    assert!(
        statuses.as_array().unwrap().contains(&"stopped".into()),
        "{statuses}"
    );
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
    // Every path the document names answers (not 404/405) on this server.
    let res = app
        .http
        .get(app.at("/api/chat/conversations"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
}
