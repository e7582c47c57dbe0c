//! Tasks through REST and server functions: CRUD, filters, numbering, bounds, tenancy.

mod common;

use common::{expect_error, TestApp};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use sqlx::PgPool;

async fn create(app: &TestApp, token: &str, title: &str) -> Value {
    let res = app
        .post(token, "/api/tasks", json!({ "title": title }))
        .await;
    assert_eq!(res.status(), StatusCode::CREATED, "create {title}");
    res.json().await.unwrap()
}

#[sqlx::test]
async fn crud_filters_and_per_user_numbers(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let alice = app.register("alice@example.com").await;
    let bob = app.register("bob@example.com").await;

    let a1 = create(&app, &alice, "  Buy milk  ").await;
    assert_eq!(a1["id"], 1);
    assert_eq!(a1["title"], "Buy milk", "titles are trimmed");
    assert_eq!(a1["completed"], false);
    // Bob's first task is 1 too, whatever Alice has.
    assert_eq!(create(&app, &bob, "Bob's task").await["id"], 1);
    let a2 = app
        .post(
            &alice,
            "/api/tasks",
            json!({ "title": "Call mum", "description": "Sunday" }),
        )
        .await;
    let a2: Value = a2.json().await.unwrap();
    assert_eq!(a2["id"], 2);
    assert_eq!(a2["description"], "Sunday");

    let done: Value = app
        .post(&alice, "/api/tasks/1/complete", json!({}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(done["completed"], true);

    let list = |filter: &'static str| {
        let app = &app;
        let alice = alice.clone();
        async move {
            let tasks: Vec<Value> = app
                .get(&alice, &format!("/api/tasks?status={filter}"))
                .await
                .json()
                .await
                .unwrap();
            tasks
                .iter()
                .map(|t| t["id"].as_i64().unwrap())
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(list("all").await, vec![1, 2]);
    assert_eq!(list("pending").await, vec![2]);
    assert_eq!(list("completed").await, vec![1]);
    expect_error(
        app.get(&alice, "/api/tasks?status=bogus").await,
        StatusCode::BAD_REQUEST,
    )
    .await;

    let reopened: Value = app
        .post(&alice, "/api/tasks/1/reopen", json!({}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(reopened["completed"], false);

    let updated: Value = app
        .send_json(
            Method::PUT,
            &alice,
            "/api/tasks/2",
            json!({ "title": "Call mum and dad", "description": "" }),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(updated["title"], "Call mum and dad");
    assert!(
        updated["description"].is_null(),
        "an empty description clears it"
    );

    let res = app
        .http
        .delete(app.at("/api/tasks/1"))
        .bearer_auth(&alice)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    expect_error(app.get(&alice, "/api/tasks/1").await, StatusCode::NOT_FOUND).await;
    // Numbers are never reused.
    assert_eq!(create(&app, &alice, "Third").await["id"], 3);
}

#[sqlx::test]
async fn validation_bounds(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let token = app.register("v@example.com").await;
    assert_eq!(
        create(&app, &token, &"x".repeat(200)).await["title"]
            .as_str()
            .unwrap()
            .len(),
        200
    );
    for body in [
        json!({ "title": "x".repeat(201) }),
        json!({ "title": "   " }),
        json!({ "title": "" }),
        json!({ "title": "ok", "description": "d".repeat(1001) }),
        json!({ "title": 5 }),
        json!({}),
    ] {
        expect_error(
            app.post(&token, "/api/tasks", body.clone()).await,
            StatusCode::BAD_REQUEST,
        )
        .await;
    }
    expect_error(
        app.send_json(Method::PUT, &token, "/api/tasks/1", json!({}))
            .await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    expect_error(
        app.get(&token, "/api/tasks/abc").await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    expect_error(
        app.get(&token, "/api/tasks/99999999999").await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    expect_error(
        app.get(&token, "/api/tasks/-1").await,
        StatusCode::NOT_FOUND,
    )
    .await;
    assert_eq!(create(&app, &token, "ok").await["description"], Value::Null);
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM tasks")
        .fetch_one(&app.state.pool)
        .await
        .unwrap();
    assert_eq!(count, 2, "nothing invalid was stored");
    let res = app.http.get(app.at("/api/tasks")).send().await.unwrap();
    expect_error(res, StatusCode::UNAUTHORIZED).await;
}

#[sqlx::test]
async fn another_users_task_is_404_on_every_route_and_unchanged(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let alice = app.register("alice@example.com").await;
    let mallory = app.register("mallory@example.com").await;
    create(&app, &alice, "Alice's secret").await;
    // Mallory has no task 1 of her own; Alice's task 1 must stay invisible and untouched.
    let attempts = [
        (Method::GET, "/api/tasks/1", json!(null)),
        (Method::PUT, "/api/tasks/1", json!({ "title": "pwned" })),
        (Method::POST, "/api/tasks/1/complete", json!({})),
        (Method::POST, "/api/tasks/1/reopen", json!({})),
        (Method::DELETE, "/api/tasks/1", json!(null)),
    ];
    for (method, path, body) in attempts {
        let res = app.send_json(method.clone(), &mallory, path, body).await;
        expect_error(res, StatusCode::NOT_FOUND).await;
    }
    let mallory_list: Vec<Value> = app.get(&mallory, "/api/tasks").await.json().await.unwrap();
    assert!(mallory_list.is_empty());
    let task: Value = app.get(&alice, "/api/tasks/1").await.json().await.unwrap();
    assert_eq!(task["title"], "Alice's secret");
    assert_eq!(task["completed"], false);
    assert_eq!(task["created_at"], task["updated_at"]);
}

#[sqlx::test]
async fn server_functions_use_the_same_service(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let token = app.register("sf@example.com").await;
    let cookie = format!("chatkit_session={token}");
    let call = |endpoint: &'static str, form: Vec<(&'static str, String)>| {
        app.http
            .post(app.at(endpoint))
            .header("cookie", &cookie)
            .header("origin", &app.url)
            .form(&form)
            .send()
    };
    let res = call(
        "/sfn/tasks/add",
        vec![("task[title]", "From a server fn".into())],
    )
    .await
    .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let task: Value = res.json().await.unwrap();
    assert_eq!(task["id"], 1);
    let res = call("/sfn/tasks/add", vec![("task[title]", " ".into())])
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let res = call(
        "/sfn/tasks/set_completed",
        vec![("id", "1".into()), ("completed", "true".into())],
    )
    .await
    .unwrap();
    assert_eq!(res.json::<Value>().await.unwrap()["completed"], true);
    let res = call("/sfn/tasks/delete", vec![("id", "7".into())])
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        res.json::<Value>().await.unwrap()["detail"],
        "task 7 not found"
    );
    // Visible through REST.
    let tasks: Vec<Value> = app
        .get(&token, "/api/tasks?status=completed")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(tasks.len(), 1);
    // And no cookie, no access.
    let res = app
        .http
        .post(app.at("/sfn/tasks/list"))
        .form(&[("status", "all")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
}
