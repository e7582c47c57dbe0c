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
        ("/api/chat/conversations", "get"),
        ("/api/chat/conversations", "post"),
        ("/api/chat/conversations/{id}", "get"),
        ("/api/chat/conversations/{id}", "put"),
        ("/api/chat/conversations/{id}", "delete"),
        ("/api/chat/conversations/{id}/messages", "get"),
        ("/api/chat/conversations/{id}/messages", "post"),
        ("/api/chat/conversations/{id}/stop", "post"),
        ("/api/chat/conversations/{id}/retry", "post"),
        ("/api/chat/events", "get"),
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
