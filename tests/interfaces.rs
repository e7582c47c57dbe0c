//! One request context and one turn handle: every interface (REST, server functions, ChatKit,
//! MCP) gets the same guarantees. Against the release server binary over real HTTP.

mod common;

use std::time::{Duration, Instant};

use common::{
    process::{database_url, ServerProcess},
    process_client::Client,
    sse::SseReader,
};
use reqwest::StatusCode;
use serde_json::{json, Value};
use sqlx::PgPool;

fn chatkit_input(text: &str) -> Value {
    json!({ "content": [{ "type": "input_text", "text": text }], "attachments": [], "inference_options": {} })
}

impl Client {
    async fn sfn(
        &self,
        server: &ServerProcess,
        endpoint: &str,
        form: &[(&str, &str)],
    ) -> reqwest::Response {
        self.http
            .post(server.at(endpoint))
            .bearer_auth(&self.token)
            .form(form)
            .send()
            .await
            .unwrap()
    }

    async fn chatkit(&self, server: &ServerProcess, body: Value) -> reqwest::Response {
        self.http
            .post(server.at("/chatkit"))
            .bearer_auth(&self.token)
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    async fn mcp_add(&self, server: &ServerProcess, title: &str) -> reqwest::Response {
        self.http
            .post(server.at("/mcp"))
            .bearer_auth(&self.token)
            .header("accept", "application/json, text/event-stream")
            .json(&json!({ "jsonrpc": "2.0", "id": 1, "method": "tools/call",
                "params": { "name": "add_task", "arguments": { "title": title } } }))
            .send()
            .await
            .unwrap()
    }

    async fn rest_add(&self, server: &ServerProcess, title: &str) -> reqwest::Response {
        self.http
            .post(server.at("/api/tasks"))
            .bearer_auth(&self.token)
            .json(&json!({ "title": title }))
            .send()
            .await
            .unwrap()
    }
}

/// Counts the answers: (successes, 429s that carry `Retry-After`); anything else fails.
fn tally(statuses: &[(StatusCode, bool)]) -> (usize, usize) {
    let ok = statuses.iter().filter(|(s, _)| s.is_success()).count();
    let limited = statuses
        .iter()
        .filter(|(s, retry_after)| *s == StatusCode::TOO_MANY_REQUESTS && *retry_after)
        .count();
    assert_eq!(ok + limited, statuses.len(), "{statuses:?}");
    (ok, limited)
}

fn status_of(res: &reqwest::Response) -> (StatusCode, bool) {
    (res.status(), res.headers().contains_key("retry-after"))
}

#[sqlx::test]
async fn every_interface_passes_one_write_check_with_one_allowance(pool: PgPool) {
    let db = database_url(&pool);
    let server = ServerProcess::start(&db, &[("WRITE_RATE_PER_MINUTE", "10".into())]).await;

    // 30 writes in a row through each interface, each by its own user: at most 10 pass.
    let sfn_user = Client::register(&server, "sfn-writes@example.com").await;
    let mut statuses = Vec::new();
    for i in 0..30 {
        let title = format!("sfn {i}");
        let res = sfn_user
            .sfn(&server, "/sfn/tasks/add", &[("task[title]", &title)])
            .await;
        statuses.push(status_of(&res));
    }
    let (ok, limited) = tally(&statuses);
    assert!(
        (9..=10).contains(&ok),
        "server functions: {ok} writes passed"
    );
    assert!(limited >= 20);
    // The refused ones stored nothing.
    assert_eq!(sfn_user.tasks(&server).await.len(), ok);
    // ...and they used up the same allowance REST uses.
    let res = sfn_user.rest_add(&server, "rest after sfn").await;
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);

    let chatkit_user = Client::register(&server, "chatkit-writes@example.com").await;
    let thread = chatkit_user.conversation(&server).await; // one REST write
    let mut statuses = Vec::new();
    for i in 0..30 {
        let res = chatkit_user
            .chatkit(
                &server,
                json!({ "type": "threads.update",
                "params": { "thread_id": thread, "title": format!("title {i}") } }),
            )
            .await;
        statuses.push(status_of(&res));
    }
    let (ok, _) = tally(&statuses);
    assert!(
        (8..=9).contains(&ok),
        "ChatKit: {ok} writes passed after one REST write"
    );

    let mcp_user = Client::register(&server, "mcp-writes@example.com").await;
    let mut statuses = Vec::new();
    for i in 0..30 {
        let res = mcp_user.mcp_add(&server, &format!("mcp {i}")).await;
        statuses.push(status_of(&res));
    }
    let (ok, _) = tally(&statuses);
    assert!((9..=10).contains(&ok), "MCP: {ok} writes passed");
    assert_eq!(mcp_user.tasks(&server).await.len(), ok);

    // One user, every interface in turn: they share one allowance of 10.
    let mixed = Client::register(&server, "mixed-writes@example.com").await;
    let thread = mixed.conversation(&server).await; // 1
    let mut statuses = Vec::new();
    for i in 0..4 {
        let title = format!("mixed {i}");
        statuses.push(status_of(&mixed.rest_add(&server, &title).await));
        statuses.push(status_of(
            &mixed
                .sfn(&server, "/sfn/tasks/add", &[("task[title]", &title)])
                .await,
        ));
        statuses.push(status_of(
            &mixed
                .chatkit(
                    &server,
                    json!({ "type": "threads.update",
                    "params": { "thread_id": thread, "title": title } }),
                )
                .await,
        ));
        statuses.push(status_of(&mixed.mcp_add(&server, &title).await));
    }
    let (ok, limited) = tally(&statuses);
    assert!(
        (8..=10).contains(&ok),
        "{ok} of 16 mixed writes passed after one"
    );
    assert_eq!(ok + limited, 16);
    // Reads are not writes: the list still answers.
    let res = mixed
        .sfn(&server, "/sfn/tasks/list", &[("status", "all")])
        .await;
    assert_eq!(res.status(), StatusCode::OK);
}

#[sqlx::test]
async fn five_concurrent_resends_of_one_client_id_share_one_turn(pool: PgPool) {
    let db = database_url(&pool);
    // The offline assistant thinks for a while, so all five arrive while the first runs.
    let server = ServerProcess::start(&db, &[("OFFLINE_THINK_MS", "800".into())]).await;
    let client = Client::register(&server, "resends@example.com").await;
    let conversation = client.conversation(&server).await;
    let body = json!({ "content": "add buy milk", "client_id": uuid::Uuid::new_v4() });
    let path = server.at(&format!("/api/chat/conversations/{conversation}/messages"));
    let sends = (0..5).map(|_| {
        client
            .http
            .post(&path)
            .bearer_auth(&client.token)
            .json(&body)
            .send()
    });
    let answers = futures::future::join_all(sends).await;
    let mut results = Vec::new();
    for res in answers {
        let res = res.unwrap();
        assert_eq!(
            res.status(),
            StatusCode::CREATED,
            "every duplicate gets 201"
        );
        results.push(res.json::<Value>().await.unwrap());
    }
    for result in &results {
        assert_eq!(
            result["user_message"]["id"],
            results[0]["user_message"]["id"]
        );
        assert_eq!(
            result["assistant_message"]["id"],
            results[0]["assistant_message"]["id"]
        );
    }
    assert_eq!(client.messages(&server, &conversation).await.len(), 2);
    assert_eq!(client.tasks(&server).await.len(), 1, "one turn ran");

    // A resend once it is answered: the stored result, at once.
    let started = Instant::now();
    let res = client
        .http
        .post(&path)
        .bearer_auth(&client.token)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    assert!(
        started.elapsed() < Duration::from_millis(500),
        "{:?}",
        started.elapsed()
    );
    let again: Value = res.json().await.unwrap();
    assert_eq!(
        again["assistant_message"]["id"],
        results[0]["assistant_message"]["id"]
    );

    // start_conversation resent concurrently: one conversation.
    let start = [
        ("content", "add call mum"),
        ("client_id", &uuid::Uuid::new_v4().to_string()),
    ];
    let starts = (0..4).map(|_| client.sfn(&server, "/sfn/chat/start", &start));
    let started: Vec<reqwest::Response> = futures::future::join_all(starts).await;
    let mut conversations = Vec::new();
    for res in started {
        assert_eq!(res.status(), StatusCode::OK);
        let turn: Value = res.json().await.unwrap();
        conversations.push(turn["user_message"]["conversation_id"].clone());
    }
    assert!(
        conversations.windows(2).all(|w| w[0] == w[1]),
        "{conversations:?}"
    );
    let list = client
        .http
        .get(server.at("/api/chat/conversations"))
        .bearer_auth(&client.token)
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    assert_eq!(list["conversations"].as_array().unwrap().len(), 2);
}

#[sqlx::test]
async fn malformed_server_function_arguments_are_400_with_a_detail(pool: PgPool) {
    let db = database_url(&pool);
    let server = ServerProcess::start(&db, &[]).await;
    let client = Client::register(&server, "sfn-args@example.com").await;
    let cases: [(&str, &[(&str, &str)]); 5] = [
        ("/sfn/tasks/add", &[("title", "x")]),
        (
            "/sfn/tasks/set_completed",
            &[("id", "one"), ("completed", "true")],
        ),
        ("/sfn/tasks/delete", &[]),
        ("/sfn/chat/send", &[("id", "not-a-uuid"), ("content", "hi")]),
        (
            "/sfn/chat/rename",
            &[("id", "00000000-0000-0000-0000-000000000000")],
        ),
    ];
    for (endpoint, form) in cases {
        let res = client.sfn(&server, endpoint, form).await;
        assert_eq!(res.status(), StatusCode::BAD_REQUEST, "{endpoint} {form:?}");
        let body: Value = res.json().await.unwrap();
        assert!(
            body["detail"].as_str().is_some_and(|d| !d.is_empty()),
            "{body}"
        );
    }
    assert!(client.tasks(&server).await.is_empty(), "nothing was stored");
    let res = client
        .sfn(&server, "/sfn/tasks/add", &[("task[title]", "x")])
        .await;
    assert_eq!(res.status(), StatusCode::OK);
}

#[sqlx::test]
async fn sign_in_from_another_site_is_refused(pool: PgPool) {
    let db = database_url(&pool);
    let server = ServerProcess::start(&db, &[]).await;
    Client::register(&server, "victim@example.com").await;
    let http = reqwest::Client::new();
    let form = [("email", "victim@example.com"), ("password", "password123")];
    let new_account = [
        ("email", "attacker-made@example.com"),
        ("password", "password123"),
    ];
    for (path, form) in [
        ("/sfn/auth/login", &form),
        ("/sfn/auth/register", &new_account),
        ("/api/auth/login", &form),
        ("/api/auth/register", &new_account),
    ] {
        let request = http
            .post(server.at(path))
            .header("origin", "https://evil.example");
        let request = if path.starts_with("/api") {
            request.json(&json!({ "email": form[0].1, "password": form[1].1 }))
        } else {
            request.form(form)
        };
        let res = request.send().await.unwrap();
        assert_eq!(res.status(), StatusCode::FORBIDDEN, "{path}");
        assert!(
            res.headers().get("set-cookie").is_none(),
            "{path} set a cookie"
        );
        let body: Value = res.json().await.unwrap();
        assert!(body["detail"].as_str().unwrap().contains("Origin"));
    }
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM users")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(count, 1, "no account was made");
    // This site's own form, and a client that is no browser, still sign in.
    let res = http
        .post(server.at("/sfn/auth/login"))
        .header("origin", &server.url)
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert!(res.headers().get("set-cookie").is_some());
    let res = http
        .post(server.at("/api/auth/login"))
        .json(&json!({ "email": "victim@example.com", "password": "password123" }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
}

#[sqlx::test]
async fn html_published_on_the_bus_by_a_third_party_never_reaches_the_page(pool: PgPool) {
    let nats_url =
        std::env::var("TEST_NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".into());
    let db = database_url(&pool);
    let server = ServerProcess::start(&db, &[("EVENT_BUS_URL", nats_url.clone())]).await;
    let client = Client::register(&server, "bus-html@example.com").await;
    let conversation = client.conversation(&server).await;
    let user = client.user_id(&server).await.to_string();
    let res = client
        .http
        .get(server.at("/api/chat/events"))
        .bearer_auth(&client.token)
        .send()
        .await
        .unwrap();
    let mut events = SseReader::new(res);
    // Give the stream a moment to subscribe, then publish as anyone with bus access could.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let nats = async_nats::connect(&nats_url).await.expect("NATS");
    let forged = json!({ "u": user, "id": null, "e": {
        "type": "message", "id": uuid::Uuid::new_v4(), "conversation_id": conversation, "seq": 99,
        "role": "assistant", "content": "Hello **there**", "tool_calls": null, "status": "complete",
        "created_at": "2026-12-01T00:00:00Z",
        "html": "<img src=x onerror=\"window.__pwned=1\"><script>alert(1)</script>" } });
    nats.publish(format!("chatkit.live.{user}"), forged.to_string().into())
        .await
        .unwrap();
    nats.flush().await.unwrap();
    let seen = events
        .until(Duration::from_secs(5), |e| {
            e["type"] == "message" && e["seq"] == 99
        })
        .await;
    let message = &seen.last().expect("the event arrived").data;
    assert_eq!(message["seq"], 99);
    let html = message["html"].as_str().unwrap();
    assert_eq!(
        html.trim(),
        "<p>Hello <strong>there</strong></p>",
        "rendered here: {html}"
    );
    assert!(!html.contains("<img") && !html.contains("<script"));
}

/// Reads a ChatKit stream to its end (or `wait`); the events.
async fn chatkit_events(res: reqwest::Response, wait: Duration) -> Vec<Value> {
    assert_eq!(res.status(), StatusCode::OK);
    let mut reader = SseReader::new(res);
    let mut events = Vec::new();
    let deadline = Instant::now() + wait;
    while let Some(event) = reader
        .next(deadline.saturating_duration_since(Instant::now()))
        .await
    {
        events.push(event.data);
    }
    events
}

#[sqlx::test]
async fn a_chatkit_stream_closed_at_any_instant_leaves_the_thread_usable(pool: PgPool) {
    let db = database_url(&pool);
    let server = ServerProcess::start(
        &db,
        &[
            ("OFFLINE_THINK_MS", "400".into()),
            ("TURN_LEASE_SECS", "3".into()),
        ],
    )
    .await;
    let client = Client::register(&server, "cancels@example.com").await;
    let thread = client.conversation(&server).await;
    let add = |text: &str| {
        json!({ "type": "threads.add_user_message",
        "params": { "thread_id": thread, "input": chatkit_input(text) } })
    };
    let mut waiting_cancelled = Vec::new();
    for (round, delay) in [0u64, 5, 20, 50, 100, 200, 450, 700]
        .into_iter()
        .enumerate()
    {
        // (1) Closed while idle: the message may be stored (then it is stopped) or not.
        let res = client
            .chatkit(&server, add(&format!("idle {round}: show my tasks")))
            .await;
        tokio::time::sleep(Duration::from_millis(delay)).await;
        drop(res);
        // (2) Closed while waiting behind a running answer: never stored, never answered.
        let busy = client
            .chatkit(
                &server,
                add(&format!("busy {round}: add task alpha {round}")),
            )
            .await;
        let waiting = format!("waiting {round}: add task never {round}");
        let res = client.chatkit(&server, add(&waiting)).await;
        tokio::time::sleep(Duration::from_millis(delay.min(300))).await;
        drop(res);
        waiting_cancelled.push(waiting);
        chatkit_events(busy, Duration::from_secs(10)).await;
        // The next message is answered at once.
        let started = Instant::now();
        let next = client
            .chatkit(&server, add(&format!("next {round}: show my tasks")))
            .await;
        let events = chatkit_events(next, Duration::from_secs(5)).await;
        assert!(
            events.iter().any(
                |e| e["type"] == "thread.item.done" && e["item"]["type"] == "assistant_message"
            ),
            "round {round} (closed after {delay} ms): the next message was answered: {events:?}"
        );
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "round {round}: {:?}",
            started.elapsed()
        );
    }
    let running: i64 = sqlx::query_scalar("SELECT count(*) FROM turns WHERE state = 'running'")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(running, 0, "no turn stays running");
    let history: Vec<(String, String, String)> =
        sqlx::query_as("SELECT role, content, status FROM messages ORDER BY seq")
            .fetch_all(&pool)
            .await
            .unwrap();
    for waiting in &waiting_cancelled {
        assert!(
            !history.iter().any(|(_, content, _)| content == waiting),
            "{waiting:?} was cancelled before it was stored, yet is in the history"
        );
    }
    // Every stored user message has its answer right after it.
    for (i, (role, content, _)) in history.iter().enumerate() {
        if role == "user" {
            assert_eq!(
                history.get(i + 1).map(|m| m.0.as_str()),
                Some("assistant"),
                "{content:?} has no answer: {history:?}"
            );
        }
    }
    let tasks: Vec<Value> = client.tasks(&server).await;
    assert!(tasks
        .iter()
        .all(|t| !t["title"].as_str().unwrap().contains("never")));
}

#[sqlx::test]
async fn pages_allow_only_their_own_nonced_scripts(pool: PgPool) {
    let db = database_url(&pool);
    let server = ServerProcess::start(&db, &[]).await;
    let client = Client::register(&server, "csp@example.com").await;
    let cookie = format!("chatkit_session={}", client.token);
    let mut nonces = Vec::new();
    for path in ["/login", "/register", "/chat", "/no-such-page"] {
        let res = client
            .http
            .get(server.at(path))
            .header("cookie", &cookie)
            .send()
            .await
            .unwrap();
        let csp = res.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .to_string();
        let html = res.text().await.unwrap();
        let scripts = csp
            .split(';')
            .find(|d| d.trim_start().starts_with("script-src"))
            .unwrap()
            .to_string();
        assert!(!scripts.contains("unsafe-inline"), "{path}: {scripts}");
        let nonce = scripts
            .split_whitespace()
            .find_map(|s| s.strip_prefix("'nonce-"))
            .and_then(|s| s.strip_suffix('\''))
            .unwrap_or_else(|| panic!("{path}: no nonce in {scripts}"))
            .to_string();
        assert!(
            html.contains(&format!("nonce=\"{nonce}\"")),
            "{path}: scripts carry the nonce"
        );
        nonces.push(nonce);
    }
    let mut unique = nonces.clone();
    unique.dedup();
    assert_eq!(unique.len(), nonces.len(), "a new nonce per response");
    // Other answers allow no inline script at all.
    let res = client
        .http
        .get(server.at("/api/openapi.json"))
        .send()
        .await
        .unwrap();
    let csp = res.headers()["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("script-src 'self' 'wasm-unsafe-eval';"),
        "{csp}"
    );
}

#[sqlx::test]
async fn a_failed_no_js_send_keeps_its_text_on_the_server_not_in_the_url(pool: PgPool) {
    let db = database_url(&pool);
    let server = ServerProcess::start(&db, &[("SEND_RATE_PER_MINUTE", "1".into())]).await;
    let client = Client::register(&server, "nojs@example.com").await;
    let conversation = client.conversation(&server).await;
    let cookie = format!("chatkit_session={}", client.token);
    let no_redirects = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let post = |content: String| {
        no_redirects
            .post(server.at("/sfn/chat/send"))
            .header("cookie", &cookie)
            .header("origin", &server.url)
            .header("accept", "text/html")
            .form(&[("id", conversation.clone()), ("content", content)])
            .send()
    };
    let first = post("hello".into()).await.unwrap();
    assert!(first.status().is_redirection());
    // The second send is over the send limit: it fails, and comes back to the page.
    let long: String = "draft text ".repeat(1_000).chars().take(10_000).collect();
    let res = post(long.clone()).await.unwrap();
    assert!(res.status().is_redirection(), "{}", res.status());
    let location = res.headers()["location"].to_str().unwrap().to_string();
    assert!(
        location.len() < 1024,
        "Location is {} bytes",
        location.len()
    );
    assert!(location.contains("error="), "{location}");
    let page = || async {
        no_redirects
            .get(server.at(&location))
            .header("cookie", &cookie)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    };
    let shown = page().await;
    assert!(shown.contains(long.trim()), "the page shows the kept text");
    assert!(shown.contains("Not sent:"), "and why it was not sent");
    // A reload shows it again, with the error its URL still names; nobody else sees it.
    let again = page().await;
    assert!(again.contains(long.trim()), "a reload keeps the text");
    let other = Client::register(&server, "nojs-other@example.com").await;
    let foreign = no_redirects
        .get(server.at(&location))
        .header("cookie", format!("chatkit_session={}", other.token))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        !foreign.contains(long.trim()),
        "another user's page has no draft"
    );
    let messages = client.messages(&server, &conversation).await;
    assert_eq!(messages.len(), 2, "the failed send stored nothing");
}
