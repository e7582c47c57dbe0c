//! The live layer against the release binary over real HTTP: task changes from every
//! interface reach open streams; a user's streams are capped and their state goes with the
//! last one; a long replay is read page by page; a client that stops reading is dropped and
//! loses nothing on reconnecting; an `EventSource` gets a single-use ticket, never the session
//! token, and logging out ends the session's streams.

mod common;

use std::time::{Duration, Instant};

use chatkit::server::auth::JwtKeys;
use common::{
    mock_model::{MockModel, Step},
    process::{database_url, ServerProcess},
    process_client::{settings, Client},
    sse::{SseEvent, SseReader},
};
use rmcp::{
    model::{CallToolRequestParams, ClientCapabilities, ClientInfo, Implementation},
    transport::{
        streamable_http_client::StreamableHttpClientTransportConfig, StreamableHttpClientTransport,
    },
    ServiceExt,
};
use serde_json::{json, Value};
use sqlx::PgPool;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use uuid::Uuid;

/// The secret `ServerProcess` starts servers with (tokens for seeded users are minted with it).
const JWT_SECRET: &str = "process-test-secret-process-test-secret!!";

async fn open_events(
    http: &reqwest::Client,
    server: &ServerProcess,
    token: &str,
    last_id: Option<i64>,
) -> reqwest::Response {
    let mut request = http.get(server.at("/api/chat/events")).bearer_auth(token);
    if let Some(id) = last_id {
        request = request.header("last-event-id", id.to_string());
    }
    request.send().await.unwrap()
}

/// The next event satisfying `wanted` within a second (the issue's bound), skipping others.
async fn within_a_second(events: &mut SseReader, what: &str, wanted: impl Fn(&Value) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(1);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match events.next(left).await {
            Some(event) if wanted(&event.data) => {
                assert!(
                    event.id.is_some(),
                    "{what}: a task event is stored (has an id)"
                );
                return;
            }
            Some(_) => continue,
            None => panic!("{what}: no event within 1 s"),
        }
    }
}

fn task_event(title: &str, completed: bool) -> impl Fn(&Value) -> bool + '_ {
    move |e| e["type"] == "task" && e["title"] == title && e["completed"] == completed
}

fn deleted(id: i64) -> impl Fn(&Value) -> bool {
    move |e| e["type"] == "task_deleted" && e["id"] == id
}

async fn rest(client: &Client, server: &ServerProcess, method: &str, path: &str) -> Value {
    let request = match method {
        "POST" => client.http.post(server.at(path)),
        _ => client.http.delete(server.at(path)),
    };
    let res = request.bearer_auth(&client.token).send().await.unwrap();
    assert!(
        res.status().is_success(),
        "{method} {path}: {}",
        res.status()
    );
    res.json().await.unwrap_or(Value::Null)
}

async fn sfn(client: &Client, server: &ServerProcess, name: &str, form: &[(&str, &str)]) -> Value {
    let res = client
        .http
        .post(server.at(&format!("/sfn/tasks/{name}")))
        .bearer_auth(&client.token)
        .form(form)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "/sfn/tasks/{name}");
    res.json().await.unwrap()
}

#[sqlx::test]
async fn task_changes_from_every_interface_reach_the_open_streams(pool: PgPool) {
    let model = MockModel::start(vec![
        Step::Tools(vec![(
            "add_task".into(),
            json!({ "title": "Agent task" }).to_string(),
        )]),
        Step::Text("Added.".into()),
    ])
    .await;
    let server = ServerProcess::start(&database_url(&pool), &settings(&model)).await;
    let client = Client::register(&server, "panel@example.com").await;
    let mut events = SseReader::new(open_events(&client.http, &server, &client.token, None).await);

    // REST.
    let res = client
        .http
        .post(server.at("/api/tasks"))
        .bearer_auth(&client.token)
        .json(&json!({ "title": "Rest task" }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let id = res.json::<Value>().await.unwrap()["id"].as_i64().unwrap();
    within_a_second(&mut events, "REST add", task_event("Rest task", false)).await;
    rest(
        &client,
        &server,
        "POST",
        &format!("/api/tasks/{id}/complete"),
    )
    .await;
    within_a_second(&mut events, "REST complete", task_event("Rest task", true)).await;
    rest(&client, &server, "DELETE", &format!("/api/tasks/{id}")).await;
    within_a_second(&mut events, "REST delete", deleted(id)).await;

    // Server functions.
    let task = sfn(&client, &server, "add", &[("task[title]", "Sfn task")]).await;
    let id = task["id"].as_i64().unwrap();
    within_a_second(&mut events, "sfn add", task_event("Sfn task", false)).await;
    let id_text = id.to_string();
    sfn(
        &client,
        &server,
        "set_completed",
        &[("id", &id_text), ("completed", "true")],
    )
    .await;
    within_a_second(&mut events, "sfn complete", task_event("Sfn task", true)).await;
    sfn(&client, &server, "delete", &[("id", &id_text)]).await;
    within_a_second(&mut events, "sfn delete", deleted(id)).await;

    // An MCP client over HTTP.
    let config = StreamableHttpClientTransportConfig::with_uri(server.at("/mcp"))
        .auth_header(client.token.clone());
    let mcp = ClientInfo::new(
        ClientCapabilities::default(),
        Implementation::new("live-layer-test", "0.1"),
    )
    .serve(StreamableHttpClientTransport::from_config(config))
    .await
    .expect("MCP initialize");
    let call = |name: &'static str, args: Value| {
        CallToolRequestParams::new(name).with_arguments(args.as_object().cloned().unwrap())
    };
    let added = mcp
        .call_tool(call("add_task", json!({ "title": "Mcp task" })))
        .await
        .unwrap();
    let id = added.structured_content.unwrap()["task_id"]
        .as_i64()
        .unwrap();
    within_a_second(&mut events, "MCP add", task_event("Mcp task", false)).await;
    mcp.call_tool(call("complete_task", json!({ "task_id": id })))
        .await
        .unwrap();
    within_a_second(&mut events, "MCP complete", task_event("Mcp task", true)).await;
    mcp.call_tool(call("delete_task", json!({ "task_id": id })))
        .await
        .unwrap();
    within_a_second(&mut events, "MCP delete", deleted(id)).await;

    // The assistant's tool call (in its turn's transaction).
    let conversation = client.conversation(&server).await;
    let _ = client.send(&server, &conversation, "add agent task").await;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let event = events
            .next(deadline.saturating_duration_since(Instant::now()))
            .await
            .expect("the agent's task event");
        if task_event("Agent task", false)(&event.data) {
            break;
        }
    }
}

/// Users with sessions, made in the database (registering thousands would hash thousands of
/// passwords), and their bearer tokens.
async fn seeded_users(pool: &PgPool, n: usize) -> Vec<String> {
    let users: Vec<Uuid> = (0..n).map(|_| Uuid::new_v4()).collect();
    let sessions: Vec<Uuid> = (0..n).map(|_| Uuid::new_v4()).collect();
    sqlx::query(
        "INSERT INTO users (id, email, password_hash)
         SELECT u, u::text || '@seeded.example', 'x' FROM unnest($1::uuid[]) u",
    )
    .bind(&users)
    .execute(pool)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO sessions (id, user_id, expires_at)
         SELECT s, u, now() + interval '1 hour' FROM unnest($1::uuid[], $2::uuid[]) AS t(s, u)",
    )
    .bind(&sessions)
    .bind(&users)
    .execute(pool)
    .await
    .unwrap();
    let keys = JwtKeys::new(JWT_SECRET.as_bytes(), Duration::from_secs(3600));
    users
        .iter()
        .zip(&sessions)
        .map(|(u, s)| keys.issue(*u, *s).unwrap())
        .collect()
}

/// Opens one stream per token, reads its first bytes (it is registered by then), and closes
/// them all.
async fn open_and_close(http: &reqwest::Client, server: &ServerProcess, tokens: &[String]) {
    for chunk in tokens.chunks(100) {
        let opened = futures::future::join_all(chunk.iter().map(|token| async move {
            let res = open_events(http, server, token, None).await;
            assert_eq!(res.status(), 200);
            res
        }))
        .await;
        drop(opened);
    }
}

#[sqlx::test]
async fn a_users_streams_are_capped_and_their_state_goes_with_the_last(pool: PgPool) {
    let server = ServerProcess::start(
        &database_url(&pool),
        &[("MAX_STREAMS_PER_USER", "3".to_string())],
    )
    .await;
    let http = reqwest::Client::new();
    let tokens = seeded_users(&pool, 2_200).await;

    // The cap: three open, the fourth refused (the open ones are kept), a free place reused.
    let one = &tokens[0];
    let mut open = Vec::new();
    for _ in 0..3 {
        let res = open_events(&http, &server, one, None).await;
        assert_eq!(res.status(), 200);
        open.push(res);
    }
    let refused = open_events(&http, &server, one, None).await;
    assert_eq!(refused.status(), 429);
    let body: Value = refused.json().await.unwrap();
    assert!(
        body["detail"].as_str().unwrap().contains("event streams"),
        "{body}"
    );
    drop(open.pop());
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let res = open_events(&http, &server, one, None).await;
        if res.status() == 200 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "a closed stream's place is freed"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    drop(open);

    // Memory grows with what is open, not with everyone who ever connected: 2,000 distinct
    // users each open and close a stream (after a warm-up of 200 that sizes the allocator).
    open_and_close(&http, &server, &tokens[..200]).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let before = server.rss_kb();
    open_and_close(&http, &server, &tokens[200..]).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = server.rss_kb();
    assert!(
        after <= before + 5 * 1024,
        "RSS {before} kB → {after} kB after 2,000 users came and went"
    );
}

#[sqlx::test]
async fn a_long_replay_arrives_whole_in_order_with_flat_memory(pool: PgPool) {
    let server = ServerProcess::start(&database_url(&pool), &[]).await;
    let tokens = seeded_users(&pool, 1).await;
    let user: Uuid = sqlx::query_scalar("SELECT id FROM users LIMIT 1")
        .fetch_one(&pool)
        .await
        .unwrap();
    sqlx::query(
        "INSERT INTO live_events (user_id, payload)
         SELECT $1, jsonb_build_object('type', 'task_deleted', 'id', i) FROM generate_series(1, 50000) i",
    )
    .bind(user)
    .execute(&pool)
    .await
    .unwrap();
    let first: i64 = sqlx::query_scalar("SELECT min(id) FROM live_events")
        .fetch_one(&pool)
        .await
        .unwrap();
    let before = server.rss_kb();
    let http = reqwest::Client::new();
    let res = open_events(&http, &server, &tokens[0], Some(first - 1)).await;
    let mut events = SseReader::new(res);
    let mut peak = before;
    let mut expected = 1;
    while expected <= 50_000 {
        let event = events
            .next(Duration::from_secs(10))
            .await
            .unwrap_or_else(|| panic!("event {expected} of 50,000 never came"));
        assert_eq!(event.data["id"], expected, "every event once, in order");
        assert_eq!(event.id, Some((first - 1 + expected).to_string()));
        expected += 1;
        if expected % 5_000 == 0 {
            peak = peak.max(server.rss_kb());
            // A slow reader: the server must not read ahead of it.
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    assert!(
        peak <= before + 10 * 1024,
        "RSS {before} kB rose to {peak} kB during the replay"
    );
}

/// An HTTP/1.1 response body with chunked framing removed.
fn dechunk(raw: &[u8]) -> String {
    let text = String::from_utf8_lossy(raw);
    let (_, mut rest) = text.split_once("\r\n\r\n").expect("headers");
    let mut body = String::new();
    while let Some((size, tail)) = rest.split_once("\r\n") {
        let Ok(size) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if size == 0 || tail.len() < size {
            break;
        }
        body.push_str(&tail[..size]);
        rest = tail[size..].trim_start_matches("\r\n");
    }
    body
}

fn ids_in(body: &str) -> Vec<i64> {
    body.lines()
        .filter_map(|l| l.strip_prefix("id:"))
        .filter_map(|v| v.trim().parse().ok())
        .collect()
}

#[sqlx::test]
async fn a_client_that_stops_reading_is_dropped_and_loses_nothing(pool: PgPool) {
    let server = ServerProcess::start(
        &database_url(&pool),
        &[
            ("LIVE_STREAM_QUEUE", "8".to_string()),
            ("WRITE_RATE_PER_MINUTE", "100000".to_string()),
        ],
    )
    .await;
    let client = Client::register(&server, "slow@example.com").await;
    // A socket that takes little before the sender must wait: the server's writes back up.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let address = server.url.trim_start_matches("http://").parse().unwrap();
    let mut stream = socket.connect(address).await.unwrap();
    let request = format!(
        "GET /api/chat/events HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {}\r\nConnection: close\r\n\r\n",
        client.token
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut head = [0u8; 64];
    let n = stream.read(&mut head).await.unwrap();
    assert!(String::from_utf8_lossy(&head[..n]).starts_with("HTTP/1.1 200"));

    // While it does not read: 100 events of 100 KB each, stored and announced as any change's
    // are (more than the socket buffers on both sides hold: up to 4 MB on Linux).
    let user: Uuid = client.user_id(&server).await;
    sqlx::query(
        "WITH e AS (
             INSERT INTO live_events (user_id, payload)
             SELECT $1, jsonb_build_object('type', 'task', 'id', i, 'title', 'Big ' || i,
                 'description', repeat('x', 100000), 'completed', false,
                 'created_at', now(), 'updated_at', now())
             FROM generate_series(1, 100) i
             RETURNING id
         )
         SELECT pg_notify('chatkit_live', json_build_object('u', $1::uuid, 'id', e.id)::text) FROM e",
    )
    .bind(user)
    .execute(&pool)
    .await
    .unwrap();
    let all: Vec<i64> = sqlx::query_scalar("SELECT id FROM live_events ORDER BY id")
        .fetch_all(&pool)
        .await
        .unwrap();

    // The server gave up on it: what it had sent ends (the connection closes), well before
    // everything.
    let mut raw = Vec::new();
    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        let read = tokio::time::timeout(Duration::from_secs(3), stream.read(&mut buffer)).await;
        match read {
            Ok(Ok(0)) => break,
            Ok(Ok(n)) => raw.extend_from_slice(&buffer[..n]),
            Ok(Err(err)) => panic!("reading: {err}"),
            Err(_) => panic!(
                "the server keeps a stream that did not read open ({} bytes, {} events read)",
                raw.len(),
                ids_in(&dechunk(&raw)).len()
            ),
        }
    }
    let got = ids_in(&dechunk(&raw));
    assert!(
        got.len() < all.len(),
        "dropped before the end: {} of {}",
        got.len(),
        all.len()
    );

    // Reconnecting after the last one it got brings every other one, once.
    let after = got.last().copied().unwrap_or(0);
    let mut rest =
        SseReader::new(open_events(&client.http, &server, &client.token, Some(after)).await);
    let mut seen = got.clone();
    while seen.len() < all.len() {
        let event: SseEvent = rest
            .next(Duration::from_secs(5))
            .await
            .unwrap_or_else(|| panic!("missing events after {} of {}", seen.len(), all.len()));
        if let Some(id) = event.id {
            seen.push(id.parse().unwrap());
        }
    }
    assert_eq!(seen, all, "every event once, in order");
}

async fn ticket(http: &reqwest::Client, server: &ServerProcess, token: &str) -> String {
    let res = http
        .post(server.at("/api/chat/events/ticket"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["expires_in"], 60);
    body["ticket"].as_str().unwrap().to_string()
}

#[sqlx::test]
async fn an_event_source_uses_single_use_tickets_that_die_with_the_session(pool: PgPool) {
    let server = ServerProcess::start(&database_url(&pool), &[]).await;
    let client = Client::register(&server, "ticket@example.com").await;
    let http = reqwest::Client::new();
    let events = |query: String| {
        http.get(server.at(&format!("/api/chat/events?{query}")))
            .send()
    };

    // The session token is not accepted in a URL.
    let res = events(format!("access_token={}", client.token))
        .await
        .unwrap();
    assert_eq!(res.status(), 401);

    // A ticket opens one stream, once.
    let first = ticket(&http, &server, &client.token).await;
    assert!(!first.contains(&client.token));
    let res = events(format!("ticket={first}")).await.unwrap();
    assert_eq!(res.status(), 200);
    let mut stream = SseReader::new(res);
    assert_eq!(
        events(format!("ticket={first}")).await.unwrap().status(),
        401
    );
    assert_eq!(events("ticket=made-up".into()).await.unwrap().status(), 401);

    // An expired ticket is refused.
    let old = ticket(&http, &server, &client.token).await;
    sqlx::query("UPDATE stream_tickets SET expires_at = now() - interval '1 second'")
        .execute(&pool)
        .await
        .unwrap();
    assert_eq!(events(format!("ticket={old}")).await.unwrap().status(), 401);

    // The stream works: a change arrives.
    let unused = ticket(&http, &server, &client.token).await;
    let res = client
        .http
        .post(server.at("/api/tasks"))
        .bearer_auth(&client.token)
        .json(&json!({ "title": "Seen" }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    within_a_second(&mut stream, "ticketed stream", task_event("Seen", false)).await;

    // Logging out ends the session's stream at once, and its unused tickets.
    let res = client
        .http
        .post(server.at("/api/auth/logout"))
        .bearer_auth(&client.token)
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success(), "{}", res.status());
    let logged_out = Instant::now();
    assert!(stream.next(Duration::from_secs(5)).await.is_none());
    assert!(
        logged_out.elapsed() < Duration::from_secs(2),
        "the stream ends with its session, not at a timeout: {:?}",
        logged_out.elapsed()
    );
    assert_eq!(
        events(format!("ticket={unused}")).await.unwrap().status(),
        401
    );
}
