//! The live layer against the release binary over real HTTP, on both event buses (Postgres
//! LISTEN/NOTIFY and NATS): task changes from every interface reach open streams on every
//! replica; a user's streams are capped and their state goes with the last one; a long replay
//! is read page by page; a client that stops reading is dropped and loses nothing on
//! reconnecting; idle streams cause no database work; an `EventSource` gets a single-use
//! ticket, never the session token, and logging out ends the session's streams.
//!
//! The NATS variants run against the NATS server `TEST_NATS_URL` names (`scripts/test.sh` sets
//! it); they fail, not skip, without it.

mod common;

use std::time::{Duration, Instant};

use chatkit::server::auth::JwtKeys;
use common::{
    cluster::wait_until_ready_says,
    mock_model::{MockModel, Step},
    process::{database_url, ServerProcess},
    process_client::{settings, Client},
    sse::{SseEvent, SseReader},
};
use futures::StreamExt;
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

/// The event bus the servers of a test carry live events on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Bus {
    /// Postgres `LISTEN/NOTIFY` (no `EVENT_BUS_URL`, the default).
    Postgres,
    /// The NATS server `TEST_NATS_URL` names (as the server's `EVENT_BUS_URL`).
    Nats,
}

impl Bus {
    /// The server settings that select this bus.
    fn env(self) -> Vec<(&'static str, String)> {
        match self {
            Self::Postgres => Vec::new(),
            Self::Nats => vec![("EVENT_BUS_URL", nats_url())],
        }
    }

    /// What `/readyz` says once this bus carries the events.
    fn ready(self) -> &'static str {
        match self {
            Self::Postgres => "event bus: postgres",
            Self::Nats => "event bus: nats (connected)",
        }
    }
}

/// The NATS server (with JetStream) of the NATS-bus tests: `TEST_NATS_URL`, required.
fn nats_url() -> String {
    match std::env::var("TEST_NATS_URL") {
        Ok(url) if !url.trim().is_empty() => url,
        _ => panic!(
            "TEST_NATS_URL is not set: the NATS-bus tests need the URL of a NATS server, \
             e.g. TEST_NATS_URL=nats://127.0.0.1:4222 (scripts/test.sh sets it)"
        ),
    }
}

/// A server on `bus` over `database`, with `env` on top of the test defaults, returned once
/// `/readyz` says its bus is up (on NATS: connected, so changes travel on NATS and not through
/// the Postgres fallback).
async fn start(bus: Bus, database: &str, env: &[(&str, String)]) -> ServerProcess {
    let mut all = env.to_vec();
    for (key, value) in bus.env() {
        all.push((key, value));
    }
    let server = ServerProcess::start(database, &all).await;
    wait_until_ready_says(&[&server], bus.ready()).await;
    server
}

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

/// The next event satisfying `wanted` on each of `tabs` (named, for the message), all within
/// `within` of the call, skipping others; returns them in the tabs' order.
async fn on_every_tab(
    tabs: &mut [(&str, SseReader)],
    within: Duration,
    what: &str,
    wanted: impl Fn(&Value) -> bool,
) -> Vec<SseEvent> {
    let deadline = Instant::now() + within;
    let mut found = Vec::new();
    for (tab, events) in tabs.iter_mut() {
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match events.next(left).await {
                Some(event) if wanted(&event.data) => {
                    found.push(event);
                    break;
                }
                Some(_) => continue,
                None => panic!("{what}: no event within {within:?} on {tab}"),
            }
        }
    }
    found
}

/// The next stored event satisfying `wanted` on every tab within a second (the issue's bound).
async fn on_every_tab_within_a_second(
    tabs: &mut [(&str, SseReader)],
    what: &str,
    wanted: impl Fn(&Value) -> bool,
) {
    for event in on_every_tab(tabs, Duration::from_secs(1), what, wanted).await {
        assert!(
            event.id.is_some(),
            "{what}: a task event is stored (has an id)"
        );
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

/// Two replicas on one database and `bus`: a tab is open on each, every change is made through
/// replica B, and both tabs (A's is another process than the one that made the change) get
/// its event within a second. On NATS the events are also watched on the user's subject: they
/// really travel there, not through the Postgres fallback.
async fn task_changes_from_every_interface_reach_the_open_streams(pool: PgPool, bus: Bus) {
    let model = MockModel::start(vec![
        Step::Tools(vec![(
            "add_task".into(),
            json!({ "title": "Agent task" }).to_string(),
        )]),
        Step::Text("Added.".into()),
    ])
    .await;
    let database = database_url(&pool);
    let env = settings(&model);
    let a = start(bus, &database, &env).await;
    let b = start(bus, &database, &env).await;
    let client = Client::register(&a, "panel@example.com").await;
    let user = client.user_id(&a).await;
    let observer = match bus {
        Bus::Nats => {
            let url = nats_url();
            Some(async_nats::connect(&url).await.expect("connect to NATS"))
        }
        Bus::Postgres => None,
    };
    let on_nats = match &observer {
        Some(nats) => {
            let watched = nats
                .subscribe(format!("chatkit.live.{user}"))
                .await
                .expect("subscribe on NATS");
            nats.flush().await.expect("flush NATS");
            Some(watched)
        }
        None => None,
    };
    let mut tabs = [
        (
            "the tab on replica A",
            SseReader::new(open_events(&client.http, &a, &client.token, None).await),
        ),
        (
            "the tab on replica B",
            SseReader::new(open_events(&client.http, &b, &client.token, None).await),
        ),
    ];

    // REST.
    let res = client
        .http
        .post(b.at("/api/tasks"))
        .bearer_auth(&client.token)
        .json(&json!({ "title": "Rest task" }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let id = res.json::<Value>().await.unwrap()["id"].as_i64().unwrap();
    on_every_tab_within_a_second(&mut tabs, "REST add", task_event("Rest task", false)).await;
    rest(&client, &b, "POST", &format!("/api/tasks/{id}/complete")).await;
    on_every_tab_within_a_second(&mut tabs, "REST complete", task_event("Rest task", true)).await;
    rest(&client, &b, "DELETE", &format!("/api/tasks/{id}")).await;
    on_every_tab_within_a_second(&mut tabs, "REST delete", deleted(id)).await;

    // Server functions.
    let task = sfn(&client, &b, "add", &[("task[title]", "Sfn task")]).await;
    let id = task["id"].as_i64().unwrap();
    on_every_tab_within_a_second(&mut tabs, "sfn add", task_event("Sfn task", false)).await;
    let id_text = id.to_string();
    sfn(
        &client,
        &b,
        "set_completed",
        &[("id", &id_text), ("completed", "true")],
    )
    .await;
    on_every_tab_within_a_second(&mut tabs, "sfn complete", task_event("Sfn task", true)).await;
    sfn(&client, &b, "delete", &[("id", &id_text)]).await;
    on_every_tab_within_a_second(&mut tabs, "sfn delete", deleted(id)).await;

    // An MCP client over HTTP.
    let config = StreamableHttpClientTransportConfig::with_uri(b.at("/mcp"))
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
    on_every_tab_within_a_second(&mut tabs, "MCP add", task_event("Mcp task", false)).await;
    mcp.call_tool(call("complete_task", json!({ "task_id": id })))
        .await
        .unwrap();
    on_every_tab_within_a_second(&mut tabs, "MCP complete", task_event("Mcp task", true)).await;
    mcp.call_tool(call("delete_task", json!({ "task_id": id })))
        .await
        .unwrap();
    on_every_tab_within_a_second(&mut tabs, "MCP delete", deleted(id)).await;

    // The assistant's tool call (in its turn's transaction), its turn run by replica B.
    let conversation = client.conversation(&b).await;
    let _ = client.send(&b, &conversation, "add agent task").await;
    on_every_tab(
        &mut tabs,
        Duration::from_secs(10),
        "the agent's task",
        task_event("Agent task", false),
    )
    .await;

    // On NATS: every one of those task events went out on the user's subject.
    if let Some(mut on_nats) = on_nats {
        let mut carried: Vec<String> = Vec::new();
        while let Ok(Some(message)) =
            tokio::time::timeout(Duration::from_millis(500), on_nats.next()).await
        {
            let notice: Value =
                serde_json::from_slice(&message.payload).expect("a live notice is JSON");
            carried.push(notice["e"]["type"].as_str().unwrap_or_default().to_string());
        }
        let count = |kind: &str| carried.iter().filter(|k| k.as_str() == kind).count();
        assert!(
            count("task") >= 7 && count("task_deleted") >= 3,
            "7 task and 3 task_deleted events on chatkit.live.{user}, got {carried:?}"
        );
    }
}

#[sqlx::test]
async fn task_changes_from_every_interface_reach_the_open_streams_on_postgres(pool: PgPool) {
    task_changes_from_every_interface_reach_the_open_streams(pool, Bus::Postgres).await;
}

#[sqlx::test]
async fn task_changes_from_every_interface_reach_the_open_streams_on_nats(pool: PgPool) {
    task_changes_from_every_interface_reach_the_open_streams(pool, Bus::Nats).await;
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

async fn a_users_streams_are_capped_and_their_state_goes_with_the_last(pool: PgPool, bus: Bus) {
    let server = start(
        bus,
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
async fn a_users_streams_are_capped_and_their_state_goes_with_the_last_on_postgres(pool: PgPool) {
    a_users_streams_are_capped_and_their_state_goes_with_the_last(pool, Bus::Postgres).await;
}

#[sqlx::test]
async fn a_users_streams_are_capped_and_their_state_goes_with_the_last_on_nats(pool: PgPool) {
    a_users_streams_are_capped_and_their_state_goes_with_the_last(pool, Bus::Nats).await;
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

/// Stores 100 events of 100 KB each for `user` and announces them on `bus` as the server
/// announces any change's (Postgres: a NOTIFY naming each by id, sent as the storing
/// transaction commits; NATS: the whole event on the user's subject, after the commit).
/// Returns every stored id, in order.
async fn store_and_announce_big_events(pool: &PgPool, bus: Bus, user: Uuid) -> Vec<i64> {
    const STORE: &str = "INSERT INTO live_events (user_id, payload)
             SELECT $1, jsonb_build_object('type', 'task', 'id', i, 'title', 'Big ' || i,
                 'description', repeat('x', 100000), 'completed', false,
                 'created_at', now(), 'updated_at', now())
             FROM generate_series(1, 100) i
             RETURNING id, payload";
    match bus {
        Bus::Postgres => {
            let sql = format!(
                "WITH e AS ({STORE})
                 SELECT pg_notify('chatkit_live', json_build_object('u', $1::uuid, 'id', e.id)::text)
                 FROM e"
            );
            sqlx::query(&sql).bind(user).execute(pool).await.unwrap();
        }
        Bus::Nats => {
            let sql = format!("WITH e AS ({STORE}) SELECT id, payload::text FROM e ORDER BY id");
            let stored: Vec<(i64, String)> = sqlx::query_as(&sql)
                .bind(user)
                .fetch_all(pool)
                .await
                .unwrap();
            let url = nats_url();
            let nats = async_nats::connect(&url).await.expect("connect to NATS");
            for (id, event) in stored {
                let notice = format!(r#"{{"u":"{user}","id":{id},"e":{event}}}"#);
                nats.publish(format!("chatkit.live.{user}"), notice.into())
                    .await
                    .expect("publish on NATS");
            }
            nats.flush().await.expect("flush NATS");
        }
    }
    sqlx::query_scalar("SELECT id FROM live_events ORDER BY id")
        .fetch_all(pool)
        .await
        .unwrap()
}

async fn a_client_that_stops_reading_is_dropped_and_loses_nothing(pool: PgPool, bus: Bus) {
    let server = start(
        bus,
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
    let all = store_and_announce_big_events(&pool, bus, user).await;

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

#[sqlx::test]
async fn a_client_that_stops_reading_is_dropped_and_loses_nothing_on_postgres(pool: PgPool) {
    a_client_that_stops_reading_is_dropped_and_loses_nothing(pool, Bus::Postgres).await;
}

#[sqlx::test]
async fn a_client_that_stops_reading_is_dropped_and_loses_nothing_on_nats(pool: PgPool) {
    a_client_that_stops_reading_is_dropped_and_loses_nothing(pool, Bus::Nats).await;
}

/// Idle streams in the idle-stream test: each of another user, as in the benchmark's row.
const IDLE_STREAMS: usize = 50;
/// How long they idle while the database is watched: longer than every timer an open stream
/// or an idle server has during it (the streams' keep-alive comment, 20 s; a checked session's
/// trust, 5 s). Sweeps for interrupted turns are turned off for it; the rate-limit table's
/// clean-up (every 10 min) and the hourly prunes ran at start or not at all.
const IDLE_WINDOW: Duration = Duration::from_secs(25);

/// `IDLE_STREAMS` streams open on a server on `bus` and idle for `IDLE_WINDOW`: no statement
/// runs on the database meanwhile (as `tests/live.rs` measures it, from `pg_stat_activity`),
/// so 0 queries per stream; then a change still reaches one of them at once.
async fn idle_streams_cause_no_database_work(pool: PgPool, bus: Bus) {
    // No sweeps during the measurement (the one timer that reads the database by design, once
    // per replica, not per stream): only what the streams themselves would do counts.
    let server = start(
        bus,
        &database_url(&pool),
        &[("TURN_SWEEP_SECS", "3600".to_string())],
    )
    .await;
    let http = reqwest::Client::new();
    let tokens = seeded_users(&pool, IDLE_STREAMS).await;
    let mut tabs = Vec::new();
    for token in &tokens {
        let res = open_events(&http, &server, token, None).await;
        assert_eq!(res.status(), 200);
        tabs.push(SseReader::new(res));
    }
    // The streams' opening reads (where to start, turns running) are done by then.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let database: String = sqlx::query_scalar("SELECT current_database()")
        .fetch_one(&pool)
        .await
        .unwrap();
    let admin = PgPool::connect(&std::env::var("DATABASE_URL").expect("DATABASE_URL"))
        .await
        .unwrap();
    let since: chrono::DateTime<chrono::Utc> = sqlx::query_scalar("SELECT now()")
        .fetch_one(&admin)
        .await
        .unwrap();
    tokio::time::sleep(IDLE_WINDOW).await;
    // Any statement the server ran on this database since then moved its connection's
    // `state_change`; a connection it opened since then has a later `backend_start`.
    let busy: Vec<String> = sqlx::query_scalar(
        "SELECT coalesce(query, '') FROM pg_stat_activity
         WHERE datname = $1 AND pid <> pg_backend_pid()
           AND (state_change > $2 OR backend_start > $2)",
    )
    .bind(&database)
    .bind(since)
    .fetch_all(&admin)
    .await
    .unwrap();
    admin.close().await;
    assert!(
        busy.is_empty(),
        "{} database statements while {IDLE_STREAMS} streams idled for {IDLE_WINDOW:?} on the \
         {bus:?} bus (want 0 per stream): {busy:?}",
        busy.len()
    );

    // They were open all along: a change reaches its user's stream within a second.
    let res = http
        .post(server.at("/api/tasks"))
        .bearer_auth(&tokens[0])
        .json(&json!({ "title": "After the idle window" }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    within_a_second(
        &mut tabs[0],
        "a change after the idle window",
        task_event("After the idle window", false),
    )
    .await;
}

#[sqlx::test]
async fn idle_streams_cause_no_database_work_on_postgres(pool: PgPool) {
    idle_streams_cause_no_database_work(pool, Bus::Postgres).await;
}

#[sqlx::test]
async fn idle_streams_cause_no_database_work_on_nats(pool: PgPool) {
    idle_streams_cause_no_database_work(pool, Bus::Nats).await;
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
