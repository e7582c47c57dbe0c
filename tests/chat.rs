//! Conversations and messages over REST and server functions, with a real Postgres.

mod common;

use std::collections::HashSet;

use common::{expect_error, TestApp};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use sqlx::PgPool;
use uuid::Uuid;

async fn page(app: &TestApp, token: &str, query: &str) -> Value {
    let res = app
        .get(token, &format!("/api/chat/conversations{query}"))
        .await;
    assert_eq!(res.status(), StatusCode::OK, "{query}");
    res.json().await.unwrap()
}

#[sqlx::test]
async fn keyset_pagination_is_exact_under_ties(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let token = app.register("pages@example.com").await;
    let user = app.user_id(&token).await;
    sqlx::query(
        "INSERT INTO conversations (id, user_id, title, updated_at)
         SELECT gen_random_uuid(), $1, 'c' || i, '2026-01-01T00:00:00Z' FROM generate_series(1, 250) i",
    )
    .bind(user)
    .execute(&app.state.pool)
    .await
    .unwrap();
    let expected: Vec<Uuid> = sqlx::query_scalar(
        "SELECT id FROM conversations WHERE user_id = $1 ORDER BY updated_at DESC, id DESC",
    )
    .bind(user)
    .fetch_all(&app.state.pool)
    .await
    .unwrap();

    let mut seen: Vec<Uuid> = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let query = match &cursor {
            Some(c) => format!("?limit=7&cursor={c}"),
            None => "?limit=7".into(),
        };
        let body = page(&app, &token, &query).await;
        let items = body["conversations"].as_array().unwrap();
        seen.extend(
            items
                .iter()
                .map(|c| c["id"].as_str().unwrap().parse::<Uuid>().unwrap()),
        );
        pages += 1;
        if body["has_more"] == false {
            assert!(body["next_cursor"].is_null());
            break;
        }
        cursor = Some(body["next_cursor"].as_str().unwrap().to_string());
        assert!(pages < 100, "pagination does not terminate");
    }
    assert_eq!(pages, 36);
    assert_eq!(seen.len(), 250, "no gaps");
    assert_eq!(seen.iter().collect::<HashSet<_>>().len(), 250, "no repeats");
    assert_eq!(seen, expected, "newest first, exact order");
    // Default limit is 20.
    assert_eq!(
        page(&app, &token, "").await["conversations"]
            .as_array()
            .unwrap()
            .len(),
        20
    );
}

#[sqlx::test]
async fn list_validation(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let token = app.register("lv@example.com").await;
    for query in [
        "?limit=0",
        "?limit=101",
        "?limit=abc",
        "?cursor=!!!",
        "?cursor=bm9wZQ",
        "?limit=-5",
    ] {
        let res = app
            .get(&token, &format!("/api/chat/conversations{query}"))
            .await;
        expect_error(res, StatusCode::BAD_REQUEST).await;
    }
    assert_eq!(page(&app, &token, "?limit=100").await["has_more"], false);
}

#[sqlx::test]
async fn titles_auto_and_custom(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let token = app.register("titles@example.com").await;
    let auto = app.conversation(&token).await;
    let conv: Value = app
        .get(&token, &format!("/api/chat/conversations/{auto}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(conv["title"], "New conversation");
    assert_eq!(conv["message_count"], 0);
    let long = "Please add a task to renew my passport before the summer holidays begin";
    app.say(&token, &auto, long).await;
    let conv: Value = app
        .get(&token, &format!("/api/chat/conversations/{auto}"))
        .await
        .json()
        .await
        .unwrap();
    let title = conv["title"].as_str().unwrap();
    assert!(
        title.starts_with("Please add a task to renew my passport"),
        "{title}"
    );
    assert!(title.chars().count() <= 51, "{title}");
    assert_eq!(conv["message_count"], 2);
    assert!(conv["last_message_preview"]
        .as_str()
        .unwrap()
        .contains("Renew my passport"));
    // The second message does not retitle.
    app.say(&token, &auto, "show my tasks").await;
    let again: Value = app
        .get(&token, &format!("/api/chat/conversations/{auto}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(again["title"], conv["title"]);

    let res = app
        .post(
            &token,
            "/api/chat/conversations",
            json!({ "title": "  Groceries  " }),
        )
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let custom = res.json::<Value>().await.unwrap();
    assert_eq!(custom["title"], "Groceries");
    let custom_id = custom["id"].as_str().unwrap().to_string();
    app.say(&token, &custom_id, "add milk").await;
    let after: Value = app
        .get(&token, &format!("/api/chat/conversations/{custom_id}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(after["title"], "Groceries", "a custom title is kept");

    // Renamed before the first message: also kept.
    let renamed = app.conversation(&token).await;
    let res = app
        .send_json(
            Method::PUT,
            &token,
            &format!("/api/chat/conversations/{renamed}"),
            json!({ "title": "Mine" }),
        )
        .await;
    assert_eq!(res.json::<Value>().await.unwrap()["title"], "Mine");
    app.say(&token, &renamed, "add bread").await;
    let after: Value = app
        .get(&token, &format!("/api/chat/conversations/{renamed}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(after["title"], "Mine");
    for bad in [
        json!({ "title": "   " }),
        json!({ "title": "x".repeat(201) }),
        json!({}),
        json!({ "title": 3 }),
    ] {
        let res = app
            .send_json(
                Method::PUT,
                &token,
                &format!("/api/chat/conversations/{renamed}"),
                bad,
            )
            .await;
        expect_error(res, StatusCode::BAD_REQUEST).await;
    }
}

#[sqlx::test]
async fn soft_delete_hides_everywhere_and_keeps_rows(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let token = app.register("del@example.com").await;
    let id = app.conversation(&token).await;
    app.say(&token, &id, "add something").await;
    let res = app
        .http
        .delete(app.at(&format!("/api/chat/conversations/{id}")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let base = format!("/api/chat/conversations/{id}");
    expect_error(app.get(&token, &base).await, StatusCode::NOT_FOUND).await;
    expect_error(
        app.get(&token, &format!("{base}/messages")).await,
        StatusCode::NOT_FOUND,
    )
    .await;
    expect_error(
        app.post(
            &token,
            &format!("{base}/messages"),
            json!({ "content": "hi" }),
        )
        .await,
        StatusCode::NOT_FOUND,
    )
    .await;
    expect_error(
        app.send_json(Method::PUT, &token, &base, json!({ "title": "x" }))
            .await,
        StatusCode::NOT_FOUND,
    )
    .await;
    let res = app
        .http
        .delete(app.at(&base))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    expect_error(res, StatusCode::NOT_FOUND).await;
    assert_eq!(
        page(&app, &token, "").await["conversations"]
            .as_array()
            .unwrap()
            .len(),
        0
    );
    let (deleted, messages): (bool, i64) = sqlx::query_as(
        "SELECT deleted_at IS NOT NULL, (SELECT count(*) FROM messages WHERE conversation_id = $1) FROM conversations WHERE id = $1",
    )
    .bind(id.parse::<Uuid>().unwrap())
    .fetch_one(&app.state.pool)
    .await
    .unwrap();
    assert!(deleted);
    assert_eq!(messages, 2, "rows stay");
}

#[sqlx::test]
async fn content_bounds_and_bad_input(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let token = app.register("bounds@example.com").await;
    let id = app.conversation(&token).await;
    let path = format!("/api/chat/conversations/{id}/messages");
    let ok = app
        .post(&token, &path, json!({ "content": "x".repeat(10_000) }))
        .await;
    assert_eq!(ok.status(), StatusCode::CREATED);
    for body in [
        json!({ "content": "x".repeat(10_001) }),
        json!({ "content": "   \n\t " }),
        json!({ "content": "" }),
        json!({ "content": 12 }),
        json!({}),
        json!({ "content": "hi", "client_id": "not-a-uuid" }),
    ] {
        expect_error(app.post(&token, &path, body).await, StatusCode::BAD_REQUEST).await;
    }
    let res = app
        .http
        .post(app.at(&path))
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .body("{\"content\": ")
        .send()
        .await
        .unwrap();
    expect_error(res, StatusCode::BAD_REQUEST).await;
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM messages")
        .fetch_one(&app.state.pool)
        .await
        .unwrap();
    assert_eq!(count, 2, "only the valid send was stored");

    for path in [
        "/api/chat/conversations/not-a-uuid".to_string(),
        "/api/chat/conversations/123/messages".to_string(),
        format!("/api/chat/conversations/{id}/messages?limit=0"),
        format!("/api/chat/conversations/{id}/messages?limit=101"),
        format!("/api/chat/conversations/{id}/messages?after=1&before=5"),
        format!("/api/chat/conversations/{id}/messages?after=-1"),
        format!("/api/chat/conversations/{id}/messages?since=yesterday"),
    ] {
        expect_error(app.get(&token, &path).await, StatusCode::BAD_REQUEST).await;
    }
    expect_error(
        app.get(
            &token,
            &format!("/api/chat/conversations/{}", Uuid::new_v4()),
        )
        .await,
        StatusCode::NOT_FOUND,
    )
    .await;
}

#[sqlx::test]
async fn message_pages_latest_before_after_since(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let token = app.register("msgs@example.com").await;
    let id = app.conversation(&token).await;
    for i in 0..6 {
        app.say(&token, &id, &format!("add task number {i}")).await;
    }
    let get = |q: String| {
        let app = &app;
        let token = token.clone();
        let id = id.clone();
        async move {
            let body: Value = app
                .get(&token, &format!("/api/chat/conversations/{id}/messages{q}"))
                .await
                .json()
                .await
                .unwrap();
            let seqs: Vec<i64> = body["messages"]
                .as_array()
                .unwrap()
                .iter()
                .map(|m| m["seq"].as_i64().unwrap())
                .collect();
            (
                seqs,
                body["has_more"].as_bool().unwrap(),
                body["total_count"].as_i64().unwrap(),
            )
        }
    };
    assert_eq!(get(String::new()).await, ((1..=12).collect(), false, 12));
    assert_eq!(get("?limit=5".into()).await, ((8..=12).collect(), true, 12));
    assert_eq!(
        get("?limit=5&before=8".into()).await,
        ((3..=7).collect(), true, 12)
    );
    assert_eq!(
        get("?limit=5&before=3".into()).await,
        (vec![1, 2], false, 12)
    );
    assert_eq!(get("?after=10".into()).await, (vec![11, 12], false, 12));
    assert_eq!(
        get("?after=2&limit=3".into()).await,
        (vec![3, 4, 5], true, 12)
    );
    assert_eq!(get("?after=12".into()).await, (vec![], false, 12));
    assert_eq!(
        get("?since=2000-01-01T00:00:00Z&limit=2".into()).await,
        (vec![1, 2], true, 12)
    );
    let body: Value = app
        .get(
            &token,
            &format!("/api/chat/conversations/{id}/messages?limit=2"),
        )
        .await
        .json()
        .await
        .unwrap();
    let reply = &body["messages"][1];
    assert_eq!(reply["role"], "assistant");
    assert_eq!(reply["status"], "complete");
    assert_eq!(
        reply["tool_calls"]["tool_calls"][0]["tool_name"],
        "add_task"
    );
    assert_eq!(reply["tool_calls"]["tool_calls"][0]["status"], "success");
    assert!(body["messages"][0]["tool_calls"].is_null());
}

#[sqlx::test]
async fn another_users_conversation_is_404_everywhere(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let alice = app.register("alice@example.com").await;
    let mallory = app.register("mallory@example.com").await;
    let id = app.conversation(&alice).await;
    app.say(&alice, &id, "add Alice's secret").await;
    let base = format!("/api/chat/conversations/{id}");
    let attempts = [
        (Method::GET, base.clone(), json!(null)),
        (Method::PUT, base.clone(), json!({ "title": "pwned" })),
        (Method::DELETE, base.clone(), json!(null)),
        (Method::GET, format!("{base}/messages"), json!(null)),
        (Method::GET, format!("{base}/messages?after=0"), json!(null)),
        (
            Method::POST,
            format!("{base}/messages"),
            json!({ "content": "hi" }),
        ),
    ];
    for (method, path, body) in attempts {
        let res = app.send_json(method.clone(), &mallory, &path, body).await;
        expect_error(res, StatusCode::NOT_FOUND).await;
    }
    // The same through the server functions, with Mallory's cookie.
    let cookie = format!("chatkit_session={mallory}");
    for (endpoint, form) in [
        ("/sfn/chat/get", vec![("id", id.clone())]),
        (
            "/sfn/chat/rename",
            vec![("id", id.clone()), ("title", "pwned".into())],
        ),
        ("/sfn/chat/delete", vec![("id", id.clone())]),
        ("/sfn/chat/messages", vec![("id", id.clone())]),
        (
            "/sfn/chat/send",
            vec![("id", id.clone()), ("content", "hi".into())],
        ),
    ] {
        let res = app
            .http
            .post(app.at(endpoint))
            .header("cookie", &cookie)
            .header("origin", &app.url)
            .form(&form)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::NOT_FOUND, "{endpoint}");
    }
    let conv: Value = app.get(&alice, &base).await.json().await.unwrap();
    assert_eq!(conv["title"], "add Alice's secret");
    assert_eq!(conv["message_count"], 2);
    let tasks: Vec<Value> = app.get(&mallory, "/api/tasks").await.json().await.unwrap();
    assert!(tasks.is_empty());
}

#[sqlx::test]
async fn server_functions_cover_the_chat(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let token = app.register("sfchat@example.com").await;
    let cookie = format!("chatkit_session={token}");
    let call = |endpoint: &'static str, form: Vec<(&'static str, String)>| {
        app.http
            .post(app.at(endpoint))
            .header("cookie", &cookie)
            .header("origin", &app.url)
            .form(&form)
            .send()
    };
    let conv: Value = call("/sfn/chat/create", vec![])
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = conv["id"].as_str().unwrap().to_string();
    let turn: Value = call(
        "/sfn/chat/send",
        vec![("id", id.clone()), ("content", "add walk the dog".into())],
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert_eq!(turn["user_message"]["seq"], 1);
    assert_eq!(
        turn["assistant_message"]["content"],
        "Added task 1: **Walk the dog**."
    );
    // Server functions hand the browser the markdown already rendered (safely).
    assert_eq!(
        turn["assistant_message"]["html"],
        "<p>Added task 1: <strong>Walk the dog</strong>.</p>\n"
    );
    assert_eq!(turn["user_message"].get("html"), None);
    let page: Value = call(
        "/sfn/chat/messages",
        vec![("id", id.clone()), ("query[after]", "1".into())],
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert_eq!(page["messages"].as_array().unwrap().len(), 1);
    assert_eq!(
        page["messages"][0]["html"],
        turn["assistant_message"]["html"]
    );
    assert_eq!(page["activity"], Value::Null);
    // REST keeps the SPEC's message shape: markdown only.
    let rest: Value = app.messages(&token, &id, "").await;
    assert_eq!(
        rest["messages"][1]["content"],
        "Added task 1: **Walk the dog**."
    );
    assert_eq!(rest["messages"][1].get("html"), None);
    let list: Value = call(
        "/sfn/chat/conversations",
        vec![("query[limit]", "5".into())],
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert_eq!(list["conversations"][0]["title"], "add walk the dog");
    let res = call(
        "/sfn/chat/send",
        vec![("id", id.clone()), ("content", "  ".into())],
    )
    .await
    .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let info: Value = call("/sfn/chat/info", vec![])
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(info["offline_assistant"], true);
}

#[sqlx::test]
async fn parallel_sends_get_gapless_seqs_and_a_poller_sees_each_once(pool: PgPool) {
    // Twenty sends at once: room for all of them in the user's turn bound.
    let app = TestApp::spawn_with(pool, |c| c.turns_per_user = 20).await;
    let token = app.register("race@example.com").await;
    let id = app.conversation(&token).await;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let poller = {
        let (http, url, token, id, stop) = (
            app.http.clone(),
            app.url.clone(),
            token.clone(),
            id.clone(),
            stop.clone(),
        );
        tokio::spawn(async move {
            let mut seen: Vec<i64> = Vec::new();
            let mut last = 0;
            loop {
                let done = stop.load(std::sync::atomic::Ordering::SeqCst);
                let body: Value = http
                    .get(format!(
                        "{url}/api/chat/conversations/{id}/messages?after={last}&limit=100"
                    ))
                    .bearer_auth(&token)
                    .send()
                    .await
                    .unwrap()
                    .json()
                    .await
                    .unwrap();
                for m in body["messages"].as_array().unwrap() {
                    let seq = m["seq"].as_i64().unwrap();
                    seen.push(seq);
                    last = seq;
                }
                if done {
                    return seen;
                }
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            }
        })
    };
    let sends = (0..20).map(|i| {
        let (app, token, id) = (&app, token.clone(), id.clone());
        async move {
            app.say(&token, &id, &format!("add parallel task {i}"))
                .await
        }
    });
    let turns = futures::future::join_all(sends).await;
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let seen = poller.await.unwrap();

    let seqs: Vec<i64> =
        sqlx::query_scalar("SELECT seq FROM messages WHERE conversation_id = $1 ORDER BY seq")
            .bind(id.parse::<Uuid>().unwrap())
            .fetch_all(&app.state.pool)
            .await
            .unwrap();
    assert_eq!(seqs, (1..=40).collect::<Vec<_>>());
    assert_eq!(
        seen,
        (1..=40).collect::<Vec<_>>(),
        "the poller saw every message exactly once, in order"
    );
    // Turns alternate: each reply directly follows its own user message.
    for turn in &turns {
        assert_eq!(
            turn["assistant_message"]["seq"].as_i64().unwrap(),
            turn["user_message"]["seq"].as_i64().unwrap() + 1
        );
    }
    let tasks: Vec<Value> = app.get(&token, "/api/tasks").await.json().await.unwrap();
    assert_eq!(tasks.len(), 20);
}

#[sqlx::test]
async fn a_repeated_client_id_runs_one_turn(pool: PgPool) {
    // Five sends at once: room for all of them in the user's turn bound.
    let app = TestApp::spawn_with(pool, |c| c.turns_per_user = 8).await;
    let token = app.register("idem@example.com").await;
    let id = app.conversation(&token).await;
    let client_id = Uuid::new_v4();
    let path = format!("/api/chat/conversations/{id}/messages");
    let send = || {
        app.post(
            &token,
            &path,
            json!({ "content": "add exactly once", "client_id": client_id }),
        )
    };
    let first: Value = send().await.json().await.unwrap();
    let parallel = futures::future::join_all((0..4).map(|_| send())).await;
    for res in parallel {
        assert_eq!(res.status(), StatusCode::CREATED);
        let body: Value = res.json().await.unwrap();
        assert_eq!(body, first, "a retry returns the first result");
    }
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM messages")
        .fetch_one(&app.state.pool)
        .await
        .unwrap();
    assert_eq!(count, 2, "one user message, one reply");
    let tasks: Vec<Value> = app.get(&token, "/api/tasks").await.json().await.unwrap();
    assert_eq!(tasks.len(), 1, "one agent turn");

    // All five in parallel from the start, with a fresh id.
    let client_id = Uuid::new_v4();
    let results = futures::future::join_all((0..5).map(|_| {
        app.post(
            &token,
            &path,
            json!({ "content": "add parallel once", "client_id": client_id }),
        )
    }))
    .await;
    let mut bodies = Vec::new();
    for res in results {
        assert_eq!(res.status(), StatusCode::CREATED);
        bodies.push(res.json::<Value>().await.unwrap());
    }
    assert!(bodies.windows(2).all(|w| w[0] == w[1]));
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM messages")
        .fetch_one(&app.state.pool)
        .await
        .unwrap();
    assert_eq!(count, 4);
}

#[sqlx::test]
async fn sends_are_rate_limited_per_user(pool: PgPool) {
    let app = TestApp::spawn_with(pool, |c| c.send_rate_per_user = 2).await;
    let token = app.register("limit@example.com").await;
    let id = app.conversation(&token).await;
    app.say(&token, &id, "add one").await;
    app.say(&token, &id, "add two").await;
    let res = app
        .post(
            &token,
            &format!("/api/chat/conversations/{id}/messages"),
            json!({ "content": "add three" }),
        )
        .await;
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(res.headers().contains_key("retry-after"));
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM messages")
        .fetch_one(&app.state.pool)
        .await
        .unwrap();
    assert_eq!(count, 4);
}

#[sqlx::test]
async fn queries_use_index_range_scans(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let token = app.register("plan@example.com").await;
    let user = app.user_id(&token).await;
    sqlx::query("INSERT INTO conversations (id, user_id, title) SELECT gen_random_uuid(), $1, 'c' FROM generate_series(1, 2000)")
        .bind(user)
        .execute(&app.state.pool)
        .await
        .unwrap();
    let busy = app.conversation(&token).await.parse::<Uuid>().unwrap();
    sqlx::query(
        "INSERT INTO messages (id, conversation_id, seq, role, content)
         SELECT gen_random_uuid(), $1, i, 'user', 'm' FROM generate_series(1, 5000) i",
    )
    .bind(busy)
    .execute(&app.state.pool)
    .await
    .unwrap();
    sqlx::query("ANALYZE conversations")
        .execute(&app.state.pool)
        .await
        .unwrap();
    sqlx::query("ANALYZE messages")
        .execute(&app.state.pool)
        .await
        .unwrap();
    let plan = |sql: &'static str| {
        let pool = app.state.pool.clone();
        async move {
            let rows: Vec<(String,)> = sqlx::query_as(sql)
                .bind(user)
                .fetch_all(&pool)
                .await
                .unwrap();
            rows.into_iter().map(|r| r.0).collect::<Vec<_>>().join("\n")
        }
    };
    let list = plan(
        "EXPLAIN SELECT id FROM conversations WHERE user_id = $1 AND deleted_at IS NULL
         AND archived_at IS NULL
         AND (pinned, updated_at, id) < (false, '2030-01-01'::timestamptz, '00000000-0000-0000-0000-000000000000'::uuid)
         ORDER BY pinned DESC, updated_at DESC, id DESC LIMIT 21",
    )
    .await;
    assert!(
        list.contains("Scan using conversations_user_recent"),
        "{list}"
    );
    assert!(
        list.contains("Index Cond") && list.contains("ROW(pinned, updated_at, id) <"),
        "the cursor is an index condition: {list}"
    );
    assert!(!list.contains("Sort"), "{list}");
    let rows: Vec<(String,)> = sqlx::query_as("EXPLAIN SELECT seq FROM messages WHERE conversation_id = $1 AND seq > 4900 ORDER BY seq LIMIT 51")
        .bind(busy)
        .fetch_all(&app.state.pool)
        .await
        .unwrap();
    let messages = rows.into_iter().map(|r| r.0).collect::<Vec<_>>().join("\n");
    assert!(messages.contains("messages_conversation_seq"), "{messages}");
}

#[sqlx::test]
async fn nul_characters_are_a_clear_400_not_a_500(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let token = app.register("nul@example.com").await;
    let id = app.conversation(&token).await;
    let res = app
        .post(
            &token,
            &format!("/api/chat/conversations/{id}/messages"),
            json!({ "content": "hi\u{0}there" }),
        )
        .await;
    assert!(expect_error(res, StatusCode::BAD_REQUEST)
        .await
        .contains("NUL"));
    let res = app
        .send_json(
            Method::PUT,
            &token,
            &format!("/api/chat/conversations/{id}"),
            json!({ "title": "a\u{0}b" }),
        )
        .await;
    expect_error(res, StatusCode::BAD_REQUEST).await;
    let res = app
        .post(&token, "/api/tasks", json!({ "title": "t\u{0}" }))
        .await;
    expect_error(res, StatusCode::BAD_REQUEST).await;
    let res = app
        .post(
            &token,
            "/api/tasks",
            json!({ "title": "ok", "description": "d\u{0}" }),
        )
        .await;
    expect_error(res, StatusCode::BAD_REQUEST).await;
    let res = app
        .http
        .post(app.at("/api/auth/register"))
        .json(&json!({ "email": "a\u{0}@example.com", "password": "password123" }))
        .send()
        .await
        .unwrap();
    expect_error(res, StatusCode::BAD_REQUEST).await;
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM messages")
        .fetch_one(&app.state.pool)
        .await
        .unwrap();
    assert_eq!(count, 0);
}
