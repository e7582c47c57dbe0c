//! Hardening through the real HTTP entry points: sessions end server-side (logout, deleted
//! account) on every replica sharing the database; bodies that are too large or not text get
//! clear 4xx everywhere; unknown API paths answer JSON; security headers; rate limits that hold
//! behind a trusted proxy and cannot lock a victim out.

mod common;

use common::{expect_error, TestApp};
use reqwest::StatusCode;
use serde_json::{json, Value};
use sqlx::PgPool;

#[sqlx::test]
async fn logout_revokes_the_token_on_every_replica(pool: PgPool) {
    let a = TestApp::spawn(pool.clone()).await;
    let b = TestApp::spawn(pool).await;
    let token = a.register("leave@example.com").await;
    let events = b
        .http
        .get(b.at("/api/chat/events"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    let mut stream = common::sse::SseReader::new(events);
    // Both replicas know the session (and cache it).
    assert_eq!(b.get(&token, "/api/auth/me").await.status(), StatusCode::OK);
    assert_eq!(a.get(&token, "/api/tasks").await.status(), StatusCode::OK);
    let res = a.post(&token, "/api/auth/logout", json!({})).await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    // The copied token is dead everywhere, at once.
    for app in [&a, &b] {
        for path in ["/api/auth/me", "/api/tasks", "/api/chat/conversations"] {
            assert_eq!(
                app.get(&token, path).await.status(),
                StatusCode::UNAUTHORIZED,
                "{path}"
            );
        }
    }
    // MCP too.
    let res = a
        .mcp(
            &token,
            json!({ "jsonrpc": "2.0", "id": 1, "method": "tools/list" }),
        )
        .await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    // Another session of the same user is untouched.
    let again = a
        .http
        .post(a.at("/api/auth/login"))
        .json(&json!({ "email": "leave@example.com", "password": "password123" }))
        .send()
        .await
        .unwrap();
    let fresh = again.json::<Value>().await.unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(b.get(&fresh, "/api/auth/me").await.status(), StatusCode::OK);
    // The event stream opened with the revoked token ends instead of carrying the next event.
    a.conversation(&fresh).await;
    assert!(
        stream
            .next(std::time::Duration::from_secs(3))
            .await
            .is_none(),
        "a revoked session's stream is closed"
    );
}

#[sqlx::test]
async fn deleting_the_account_ends_every_session_and_its_data(pool: PgPool) {
    let a = TestApp::spawn(pool.clone()).await;
    let b = TestApp::spawn(pool.clone()).await;
    let token = a.register("gone@example.com").await;
    let other_session = a
        .http
        .post(a.at("/api/auth/login"))
        .json(&json!({ "email": "gone@example.com", "password": "password123" }))
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let conversation = a.conversation(&token).await;
    a.say(&token, &conversation, "add water the plants").await;
    assert_eq!(
        b.get(&other_session, "/api/tasks").await.status(),
        StatusCode::OK
    );

    let res = a
        .send_json(reqwest::Method::DELETE, &token, "/api/auth/me", json!({}))
        .await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    for app in [&a, &b] {
        for t in [&token, &other_session] {
            for path in ["/api/auth/me", "/api/tasks", "/api/chat/conversations"] {
                assert_eq!(
                    app.get(t, path).await.status(),
                    StatusCode::UNAUTHORIZED,
                    "{path}"
                );
            }
            // Creating things fails cleanly (it used to be a 500).
            let res = app.post(t, "/api/chat/conversations", json!({})).await;
            assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
        }
    }
    for table in [
        "users",
        "tasks",
        "conversations",
        "messages",
        "sessions",
        "turns",
    ] {
        let n: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM {table}"))
            .fetch_one(&pool)
            .await
            .unwrap();
        assert_eq!(n, 0, "{table} keeps nothing of the account");
    }
}

#[sqlx::test]
async fn oversize_and_undecodable_bodies_get_clear_4xx(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let token = app.register("big@example.com").await;
    let conversation = app.conversation(&token).await;
    let big = vec![b'a'; 10 * 1024 * 1024];
    for (path, content_type) in [
        (
            format!("/api/chat/conversations/{conversation}/messages"),
            "application/json",
        ),
        (
            "/sfn/chat/send".to_string(),
            "application/x-www-form-urlencoded",
        ),
        ("/mcp".to_string(), "application/json"),
    ] {
        let res = app
            .http
            .post(app.at(&path))
            .bearer_auth(&token)
            .header("content-type", content_type)
            .header("accept", "application/json, text/event-stream")
            .body(big.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::PAYLOAD_TOO_LARGE, "{path}");
        let detail = expect_error(res, StatusCode::PAYLOAD_TOO_LARGE).await;
        assert!(detail.contains("too large"), "{path}: {detail}");
    }
    // Not UTF-8, where text is expected.
    let res = app
        .http
        .post(app.at("/sfn/chat/send"))
        .bearer_auth(&token)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(vec![b'i', b'd', b'=', 0xff, 0xfe, 0xfd])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let res = app
        .http
        .post(app.at(&format!("/api/chat/conversations/{conversation}/messages")))
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .body(vec![b'{', b'"', 0xff, b'"', b'}'])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let res = app
        .http
        .post(app.at("/mcp"))
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .body(vec![b'{', b'"', 0xff, b'"', b'}'])
        .send()
        .await
        .unwrap();
    assert!(res.status().is_client_error(), "{}", res.status());
    // Nothing was stored by any of them.
    let page = app.messages(&token, &conversation, "").await;
    assert_eq!(page["total_count"], 0);
}

#[sqlx::test]
async fn unknown_api_paths_answer_json_and_pages_carry_security_headers(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let res = app
        .http
        .get(app.at("/api/nope/nothing"))
        .send()
        .await
        .unwrap();
    let detail = expect_error(res, StatusCode::NOT_FOUND).await;
    assert!(detail.contains("not found"), "{detail}");
    for path in ["/login", "/api/openapi.json", "/healthz"] {
        let res = app.http.get(app.at(path)).send().await.unwrap();
        let headers = res.headers();
        let csp = headers["content-security-policy"].to_str().unwrap();
        assert!(csp.contains("frame-ancestors 'none'"), "{path}: {csp}");
        assert_eq!(headers["x-content-type-options"], "nosniff");
        assert_eq!(headers["referrer-policy"], "same-origin");
    }
}

#[sqlx::test]
async fn the_kelvin_sign_is_an_ordinary_message(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let token = app.register("kelvin@example.com").await;
    let conversation = app.conversation(&token).await;
    for text in [
        "\u{212A}",
        "delete \u{212A}elvin",
        "rename \u{212A} to \u{212A}\u{212A}",
        "\u{212A} done",
    ] {
        let turn = app.say(&token, &conversation, text).await;
        assert_eq!(turn["assistant_message"]["status"], "complete", "{text}");
    }
}

#[sqlx::test]
async fn logins_are_limited_per_ip_and_email_behind_a_trusted_proxy(pool: PgPool) {
    let app = TestApp::spawn_with(pool, |c| {
        c.auth_rate_per_email = 3;
        c.auth_rate_per_ip = 1000;
        c.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
    })
    .await;
    app.register("victim@example.com").await;
    let login = |ip: &'static str, password: &'static str| {
        app.http
            .post(app.at("/api/auth/login"))
            .header("x-forwarded-for", ip)
            .json(&json!({ "email": "victim@example.com", "password": password }))
            .send()
    };
    // An attacker behind the proxy exhausts their own allowance for the victim's email…
    let mut limited = false;
    for _ in 0..6 {
        if login("203.0.113.66", "wrong-password")
            .await
            .unwrap()
            .status()
            == StatusCode::TOO_MANY_REQUESTS
        {
            limited = true;
        }
    }
    assert!(limited, "the attacker is limited");
    // …while the victim, from their own address through the same proxy, still signs in.
    let res = login("198.51.100.7", "password123").await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
}

#[sqlx::test]
async fn rest_writes_and_mcp_requests_are_rate_limited(pool: PgPool) {
    let app = TestApp::spawn_with(pool, |c| c.write_rate_per_user = 5).await;
    let token = app.register("writer@example.com").await;
    let mut statuses = Vec::new();
    for i in 0..8 {
        let res = app
            .post(
                &token,
                "/api/tasks",
                json!({ "title": format!("task {i}") }),
            )
            .await;
        statuses.push(res.status());
    }
    assert!(
        statuses.contains(&StatusCode::TOO_MANY_REQUESTS),
        "{statuses:?}"
    );
    assert!(!statuses.contains(&StatusCode::INTERNAL_SERVER_ERROR));
    let res = app
        .mcp(
            &token,
            json!({ "jsonrpc": "2.0", "id": 1, "method": "tools/list" }),
        )
        .await;
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(res.headers().contains_key("retry-after"));
    // Reads are not writes.
    assert_eq!(app.get(&token, "/api/tasks").await.status(), StatusCode::OK);
}
