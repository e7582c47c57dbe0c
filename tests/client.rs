//! Other apps as callers, over real HTTP: CORS for the origins in `CORS_ALLOWED_ORIGINS` only,
//! server functions with a bearer token, the token returned to callers on another origin, the
//! event stream's query token, and the example app's browser dependency tree.

mod common;

use common::TestApp;
use reqwest::{header, Method, StatusCode};
use serde_json::Value;
use sqlx::PgPool;

const PARTNER: &str = "http://partner.example:8080";
const STRANGER: &str = "http://stranger.example";

async fn partner_app(pool: PgPool) -> TestApp {
    TestApp::spawn_with(pool, |c| c.allowed_origins = vec![PARTNER.into()]).await
}

fn preflight(app: &TestApp, path: &str, origin: &str) -> reqwest::RequestBuilder {
    app.http
        .request(Method::OPTIONS, app.at(path))
        .header(header::ORIGIN, origin)
        .header(header::ACCESS_CONTROL_REQUEST_METHOD, "POST")
        .header(
            header::ACCESS_CONTROL_REQUEST_HEADERS,
            "authorization, content-type",
        )
}

#[sqlx::test]
async fn preflights_are_answered_for_listed_origins_only(pool: PgPool) {
    let app = partner_app(pool).await;
    for path in ["/sfn/chat/send", "/api/tasks"] {
        let res = preflight(&app, path, PARTNER).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::NO_CONTENT, "{path}");
        let h = res.headers();
        assert_eq!(h[header::ACCESS_CONTROL_ALLOW_ORIGIN], PARTNER);
        assert_eq!(h[header::ACCESS_CONTROL_ALLOW_CREDENTIALS], "true");
        let allowed = h[header::ACCESS_CONTROL_ALLOW_HEADERS].to_str().unwrap();
        assert!(allowed.contains("authorization") && allowed.contains("content-type"));

        let res = preflight(&app, path, STRANGER).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::FORBIDDEN, "{path}");
        assert!(res
            .headers()
            .get(header::ACCESS_CONTROL_ALLOW_ORIGIN)
            .is_none());
        let body: Value = res.json().await.unwrap();
        assert!(body["detail"]
            .as_str()
            .unwrap()
            .contains("CORS_ALLOWED_ORIGINS"));
    }
    // Pages are not part of the cross-origin surface.
    let res = preflight(&app, "/chat", PARTNER).send().await.unwrap();
    assert!(res
        .headers()
        .get(header::ACCESS_CONTROL_ALLOW_ORIGIN)
        .is_none());
}

#[sqlx::test]
async fn a_caller_on_another_origin_signs_in_with_a_token(pool: PgPool) {
    let app = partner_app(pool).await;
    app.register("ada@example.com").await;

    // Login from the partner's page: data (no redirect), and the token to keep.
    let res = app
        .http
        .post(app.at("/sfn/auth/login"))
        .header(header::ORIGIN, PARTNER)
        .form(&[("email", "ada@example.com"), ("password", "password123")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()[header::ACCESS_CONTROL_ALLOW_ORIGIN], PARTNER);
    assert!(res.headers().get("serverfnredirect").is_none());
    let signed_in: Value = res.json().await.unwrap();
    assert_eq!(signed_in["user"]["email"], "ada@example.com");
    let token = signed_in["access_token"]
        .as_str()
        .expect("a token")
        .to_string();
    assert!(signed_in["expires_in"].as_i64().unwrap() > 0);

    // Server functions take it as a bearer token (no cookie anywhere).
    let res = app
        .http
        .post(app.at("/sfn/chat/start"))
        .header(header::ORIGIN, PARTNER)
        .bearer_auth(&token)
        .form(&[("content", "Add a task to buy milk")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()[header::ACCESS_CONTROL_ALLOW_ORIGIN], PARTNER);
    let turn: Value = res.json().await.unwrap();
    assert!(turn["assistant_message"]["content"].is_string());
    let res = app
        .http
        .post(app.at("/sfn/tasks/list"))
        .bearer_auth(&token)
        .form(&[("status", "all")])
        .send()
        .await
        .unwrap();
    let tasks: Value = res.json().await.unwrap();
    assert_eq!(tasks[0]["title"], "Buy milk", "{tasks}");

    // A stranger's page gets the same data only if it holds a token; its responses carry no
    // CORS headers, so a browser keeps them from the page.
    let res = app
        .http
        .post(app.at("/sfn/auth/me"))
        .header(header::ORIGIN, STRANGER)
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert!(res
        .headers()
        .get(header::ACCESS_CONTROL_ALLOW_ORIGIN)
        .is_none());

    // Logout through the server function ends that token everywhere, without redirecting.
    let res = app
        .http
        .post(app.at("/sfn/auth/logout"))
        .header(header::ORIGIN, PARTNER)
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert!(res.headers().get("serverfnredirect").is_none());
    let res = app
        .http
        .post(app.at("/sfn/chat/conversations"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
}

/// The token goes to callers that are not our pages: no browser at all, or a listed origin.
/// A stranger's page, and our own page seen through a proxy that rewrites `Host`, get none.
#[sqlx::test]
async fn only_callers_that_are_not_our_pages_get_the_token(pool: PgPool) {
    let app = partner_app(pool).await;
    app.register("dee@example.com").await;
    let login = |origin: Option<&str>, host: Option<&str>| {
        let mut req = app
            .http
            .post(app.at("/sfn/auth/login"))
            .form(&[("email", "dee@example.com"), ("password", "password123")]);
        if let Some(origin) = origin {
            req = req.header(header::ORIGIN, origin);
        }
        if let Some(host) = host {
            req = req.header(header::HOST, host);
        }
        async move {
            let body: Value = req.send().await.unwrap().json().await.unwrap();
            body["access_token"].is_string()
        }
    };
    assert!(login(None, None).await, "a non-browser caller");
    assert!(login(Some(PARTNER), None).await, "a listed origin");
    assert!(!login(Some(STRANGER), None).await, "an unlisted origin");
    assert!(!login(Some(&app.url), None).await, "our own page");
    assert!(
        !login(Some("https://tasks.example"), Some("upstream:3000")).await,
        "our own page behind a proxy"
    );
}

#[sqlx::test]
async fn a_plain_form_sign_in_still_redirects(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    app.register("bo@example.com").await;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let res = http
        .post(app.at("/sfn/auth/login"))
        .header(header::ORIGIN, &app.url)
        .header(header::ACCEPT, "text/html")
        .form(&[("email", "bo@example.com"), ("password", "password123")])
        .send()
        .await
        .unwrap();
    assert!(res.status().is_redirection(), "{}", res.status());
    assert_eq!(res.headers()[header::LOCATION], "/chat");
    assert!(res.headers().get(header::SET_COOKIE).is_some());
}

#[sqlx::test]
async fn the_event_stream_takes_a_ticket_in_its_query_never_the_token(pool: PgPool) {
    let app = partner_app(pool).await;
    let token = app.register("cy@example.com").await;
    let res = app
        .http
        .post(app.at("/api/chat/events/ticket"))
        .header(header::ORIGIN, PARTNER)
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    assert_eq!(res.headers()[header::ACCESS_CONTROL_ALLOW_ORIGIN], PARTNER);
    let ticket = res.json::<Value>().await.unwrap()["ticket"]
        .as_str()
        .unwrap()
        .to_string();
    let res = app
        .http
        .get(app.at(&format!("/api/chat/events?ticket={ticket}")))
        .header(header::ORIGIN, PARTNER)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()[header::CONTENT_TYPE], "text/event-stream");
    assert_eq!(res.headers()[header::ACCESS_CONTROL_ALLOW_ORIGIN], PARTNER);
    drop(res);
    // The session token itself is not taken from a URL (it would land in access logs).
    let res = app
        .http
        .get(app.at(&format!("/api/chat/events?access_token={token}")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
}

/// The example app depends on chatkit with feature `client` only: for the browser that must
/// bring no server crate.
#[test]
fn the_example_app_compiles_no_server_crates_for_the_browser() {
    let manifest = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/tasks-client/Cargo.toml"
    );
    let output = std::process::Command::new(env!("CARGO"))
        .args(["tree", "--offline", "--manifest-path", manifest])
        .args(["--target", "wasm32-unknown-unknown", "--edges", "normal"])
        .args(["--prefix", "none", "--format", "{p}"])
        .output()
        .expect("cargo tree runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let tree = String::from_utf8_lossy(&output.stdout);
    let crates: Vec<&str> = tree
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .collect();
    assert!(
        crates.contains(&"chatkit") && crates.contains(&"leptos"),
        "{tree}"
    );
    for server_only in [
        "axum",
        "sqlx",
        "tokio",
        "hyper",
        "mio",
        "leptos_axum",
        "rmcp",
        "async-openai",
        "argon2",
        "reqwest",
    ] {
        assert!(
            !crates.contains(&server_only),
            "{server_only} is compiled for the browser:\n{tree}"
        );
    }
}
