//! Accounts over real HTTP: REST and server functions, tokens, cookies, origin check, limits.

mod common;

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use common::{expect_error, TestApp};
use reqwest::{header, StatusCode};
use serde_json::{json, Value};
use sqlx::PgPool;

async fn login(app: &TestApp, email: &str, password: &str) -> reqwest::Response {
    app.http
        .post(app.at("/api/auth/login"))
        .json(&json!({ "email": email, "password": password }))
        .send()
        .await
        .unwrap()
}

#[sqlx::test]
async fn register_login_me(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let res = app
        .http
        .post(app.at("/api/auth/register"))
        .json(&json!({ "email": "Alice@Example.com", "password": "password123" }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let cookie = res.headers()[header::SET_COOKIE]
        .to_str()
        .unwrap()
        .to_string();
    assert!(cookie.starts_with("chatkit_session="), "{cookie}");
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"),
        "{cookie}"
    );
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["user"]["email"], "Alice@Example.com");
    assert!(body.get("password_hash").is_none() && body["user"].get("password_hash").is_none());

    let res = login(&app, "alice@example.com", "password123").await;
    assert_eq!(res.status(), StatusCode::OK);
    let token = res.json::<Value>().await.unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_string();

    let me: Value = app.get(&token, "/api/auth/me").await.json().await.unwrap();
    assert_eq!(me["email"], "Alice@Example.com");
    assert_eq!(me["id"], body["user"]["id"]);

    // The cookie alone authenticates too.
    let cookie_pair = cookie.split(';').next().unwrap();
    let res = app
        .http
        .get(app.at("/api/auth/me"))
        .header(header::COOKIE, cookie_pair)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);

    // The stored hash is argon2id, never the password.
    let hash: String = sqlx::query_scalar("SELECT password_hash FROM users")
        .fetch_one(&app.state.pool)
        .await
        .unwrap();
    assert!(hash.starts_with("$argon2id$"), "{hash}");
}

#[sqlx::test]
async fn duplicate_email_is_409_whatever_the_case(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    app.register("bob@example.com").await;
    let res = app
        .http
        .post(app.at("/api/auth/register"))
        .json(&json!({ "email": "BOB@example.com", "password": "password123" }))
        .send()
        .await
        .unwrap();
    expect_error(res, StatusCode::CONFLICT).await;
    let users: i64 = sqlx::query_scalar("SELECT count(*) FROM users")
        .fetch_one(&app.state.pool)
        .await
        .unwrap();
    assert_eq!(users, 1);
}

#[sqlx::test]
async fn bad_registrations_are_400(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let cases = [
        json!({ "email": "carol@example.com", "password": "short" }),
        json!({ "email": "not-an-email", "password": "password123" }),
        json!({ "email": "a@b", "password": "password123" }),
        json!({ "email": 42, "password": "password123" }),
        json!({ "email": "carol@example.com" }),
    ];
    for body in cases {
        let res = app
            .http
            .post(app.at("/api/auth/register"))
            .json(&body)
            .send()
            .await
            .unwrap();
        let detail = expect_error(res, StatusCode::BAD_REQUEST).await;
        assert!(!detail.is_empty(), "{body}");
    }
    let res = app
        .http
        .post(app.at("/api/auth/register"))
        .header(header::CONTENT_TYPE, "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    expect_error(res, StatusCode::BAD_REQUEST).await;
    let users: i64 = sqlx::query_scalar("SELECT count(*) FROM users")
        .fetch_one(&app.state.pool)
        .await
        .unwrap();
    assert_eq!(users, 0);
}

#[sqlx::test]
async fn wrong_password_and_unknown_user_are_401(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    app.register("dave@example.com").await;
    assert_eq!(
        expect_error(
            login(&app, "dave@example.com", "wrong-password").await,
            StatusCode::UNAUTHORIZED
        )
        .await,
        "wrong email or password"
    );
    expect_error(
        login(&app, "nobody@example.com", "password123").await,
        StatusCode::UNAUTHORIZED,
    )
    .await;
}

fn sign(claims: &Value, secret: &[u8]) -> String {
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        claims,
        &jsonwebtoken::EncodingKey::from_secret(secret),
    )
    .unwrap()
}

#[sqlx::test]
async fn bad_tokens_are_401(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let token = app.register("erin@example.com").await;
    assert_eq!(
        app.get(&token, "/api/auth/me").await.status(),
        StatusCode::OK
    );
    let me: Value = app.get(&token, "/api/auth/me").await.json().await.unwrap();
    let sub = me["id"].as_str().unwrap();
    let secret = app.state.config.jwt_secret.clone().unwrap().into_bytes();
    let now = chrono::Utc::now().timestamp();

    // Tampered payload: another subject, original signature.
    let parts: Vec<&str> = token.split('.').collect();
    let forged_claims = URL_SAFE_NO_PAD
        .encode(json!({ "sub": uuid::Uuid::new_v4(), "iat": now, "exp": now + 3600 }).to_string());
    let tampered = format!("{}.{}.{}", parts[0], forged_claims, parts[2]);
    // alg: none.
    let none_header = URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#);
    let none_claims =
        URL_SAFE_NO_PAD.encode(json!({ "sub": sub, "iat": now, "exp": now + 3600 }).to_string());
    let alg_none = format!("{none_header}.{none_claims}.");
    let expired = sign(
        &json!({ "sub": sub, "iat": now - 7200, "exp": now - 3600 }),
        &secret,
    );
    let wrong_key = sign(
        &json!({ "sub": sub, "iat": now, "exp": now + 3600 }),
        b"another-secret-another-secret-000000",
    );
    let no_exp = sign(&json!({ "sub": sub, "iat": now }), &secret);

    for (name, bad) in [
        ("tampered", tampered),
        ("alg none", alg_none),
        ("expired", expired),
        ("wrong key", wrong_key),
        ("no exp", no_exp),
        ("garbage", "abc".into()),
    ] {
        let res = app.get(&bad, "/api/auth/me").await;
        assert_eq!(
            res.status(),
            StatusCode::UNAUTHORIZED,
            "{name} token must be refused"
        );
    }
    // A correctly signed token for the live session works: the refusals above are about the
    // defects. Signed but naming no live session, it is refused.
    let payload: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
    let sid = payload["sid"].as_str().unwrap();
    let good = sign(
        &json!({ "sub": sub, "sid": sid, "iat": now, "exp": now + 3600 }),
        &secret,
    );
    assert_eq!(
        app.get(&good, "/api/auth/me").await.status(),
        StatusCode::OK
    );
    let unknown_session = sign(
        &json!({ "sub": sub, "sid": uuid::Uuid::new_v4(), "iat": now, "exp": now + 3600 }),
        &secret,
    );
    assert_eq!(
        app.get(&unknown_session, "/api/auth/me").await.status(),
        StatusCode::UNAUTHORIZED
    );
}

#[sqlx::test]
async fn login_is_rate_limited_per_email(pool: PgPool) {
    let app = TestApp::spawn_with(pool, |c| c.auth_rate_per_email = 3).await;
    app.register("frank@example.com").await; // attempt 1
    for _ in 0..2 {
        assert_eq!(
            login(&app, "frank@example.com", "nope-nope").await.status(),
            StatusCode::UNAUTHORIZED
        );
    }
    let res = login(&app, "FRANK@example.com", "password123").await;
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry_after: u64 = res.headers()[header::RETRY_AFTER]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry_after >= 1);
    expect_error(res, StatusCode::TOO_MANY_REQUESTS).await;
    // Another email is unaffected.
    assert_eq!(
        login(&app, "someone@example.com", "password123")
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );
}

#[sqlx::test]
async fn login_is_rate_limited_per_ip(pool: PgPool) {
    let app = TestApp::spawn_with(pool, |c| c.auth_rate_per_ip = 4).await;
    for i in 0..4 {
        login(&app, &format!("u{i}@example.com"), "password123").await;
    }
    assert_eq!(
        login(&app, "u9@example.com", "password123").await.status(),
        StatusCode::TOO_MANY_REQUESTS
    );
}

#[sqlx::test]
async fn server_functions_share_the_accounts(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let res = app
        .http
        .post(app.at("/sfn/auth/register"))
        .header(header::ORIGIN, &app.url)
        .form(&[("email", "gina@example.com"), ("password", "password123")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let cookie = res.headers()[header::SET_COOKIE]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    // A script on our own page gets data, not a redirect, and no token (the cookie holds it).
    assert!(res.headers().get("serverfnredirect").is_none());
    let signed_in: Value = res.json().await.unwrap();
    assert_eq!(signed_in["user"]["email"], "gina@example.com");
    assert!(signed_in["access_token"].is_null());

    // The same account works through REST.
    assert_eq!(
        login(&app, "gina@example.com", "password123")
            .await
            .status(),
        StatusCode::OK
    );

    let me: Value = app
        .http
        .post(app.at("/sfn/auth/me"))
        .header(header::COOKIE, &cookie)
        .header(header::ORIGIN, &app.url)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me["email"], "gina@example.com");

    // Duplicate through the server function: 409 with the shared error shape.
    let res = app
        .http
        .post(app.at("/sfn/auth/register"))
        .form(&[("email", "GINA@example.com"), ("password", "password123")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CONFLICT);
    let err: Value = res.json().await.unwrap();
    assert_eq!(err["detail"], "an account with this email already exists");
}

#[sqlx::test]
async fn cookie_authenticated_changes_need_an_allowed_origin(pool: PgPool) {
    let app = TestApp::spawn_with(pool, |c| {
        c.allowed_origins = vec!["https://partner.example".into()]
    })
    .await;
    let token = app.register("hank@example.com").await;
    let cookie = format!("chatkit_session={token}");
    let logout = |origin: Option<&str>| {
        let mut req = app
            .http
            .post(app.at("/api/auth/logout"))
            .header(header::COOKIE, &cookie);
        if let Some(origin) = origin {
            req = req.header(header::ORIGIN, origin);
        }
        req.send()
    };
    assert_eq!(
        logout(Some("https://evil.example")).await.unwrap().status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(logout(None).await.unwrap().status(), StatusCode::FORBIDDEN);
    assert_eq!(
        logout(Some(&app.url)).await.unwrap().status(),
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        logout(Some("https://partner.example"))
            .await
            .unwrap()
            .status(),
        StatusCode::NO_CONTENT
    );
    // Bearer-authenticated API clients are not browsers: no Origin needed.
    let res = app
        .http
        .post(app.at("/api/auth/logout"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
}

#[sqlx::test]
async fn health_and_readiness(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    assert_eq!(
        app.http
            .get(app.at("/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    assert_eq!(
        app.http
            .get(app.at("/readyz"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    app.state.pool.close().await;
    assert_eq!(
        app.http
            .get(app.at("/readyz"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::SERVICE_UNAVAILABLE
    );
}
