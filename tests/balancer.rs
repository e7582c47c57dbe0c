//! Several replicas behind a real load balancer (HAProxy, round-robin, no stickiness), as
//! separate processes of the server binary on one database: the replica running a turn is
//! killed mid-stream, with NATS and with the Postgres bus; NATS goes away and comes back; the
//! per-user send limit holds in total.

mod common;

use std::{
    collections::HashSet,
    time::{Duration, Instant},
};

use common::{
    cluster::{readyz, wait_until_ready_says, Balancer, Nats},
    mock_model::{MockModel, Step},
    process::{database_url, ServerProcess},
    sse::SseReader,
};
use futures::StreamExt;
use serde_json::{json, Value};
use sqlx::PgPool;

/// The shared NATS: the machine's on 127.0.0.1:4222, or the one `scripts/test.sh` started.
fn shared_nats() -> String {
    std::env::var("TEST_NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".into())
}

struct Api {
    http: reqwest::Client,
    base: String,
    token: String,
}

impl Api {
    async fn register(base: &str, email: &str) -> Self {
        let http = reqwest::Client::new();
        let res = http
            .post(format!("{base}/api/auth/register"))
            .json(&json!({ "email": email, "password": "password123" }))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 201);
        let token = res.json::<Value>().await.unwrap()["access_token"]
            .as_str()
            .unwrap()
            .to_string();
        Self {
            http,
            base: base.to_string(),
            token,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    async fn conversation(&self) -> String {
        let res = self
            .http
            .post(self.url("/api/chat/conversations"))
            .bearer_auth(&self.token)
            .json(&json!({}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 201);
        res.json::<Value>().await.unwrap()["id"]
            .as_str()
            .unwrap()
            .to_string()
    }

    async fn get(&self, path: &str) -> Value {
        let res = self
            .http
            .get(self.url(path))
            .bearer_auth(&self.token)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200, "GET {path}");
        res.json().await.unwrap()
    }

    /// The user's live events, resuming after `last_id`.
    async fn events(&self, last_id: Option<&str>) -> SseReader {
        let mut request = self
            .http
            .get(self.url("/api/chat/events"))
            .bearer_auth(&self.token);
        if let Some(id) = last_id {
            request = request.header("last-event-id", id);
        }
        let res = request.send().await.unwrap();
        assert_eq!(res.status(), 200);
        SseReader::new(res)
    }

    async fn send(&self, conversation: &str, content: &str) -> reqwest::Response {
        self.http
            .post(self.url(&format!("/api/chat/conversations/{conversation}/messages")))
            .bearer_auth(&self.token)
            .json(&json!({ "content": content }))
            .send()
            .await
            .unwrap()
    }
}

/// What one client saw across its reconnections.
#[derive(Default)]
struct Seen {
    stored_ids: Vec<i64>,
    replies: Vec<Value>,
    user_messages: usize,
    reconnects: usize,
}

impl Seen {
    fn take(&mut self, event: &common::sse::SseEvent) {
        if let Some(id) = &event.id {
            self.stored_ids.push(id.parse().unwrap());
        }
        if event.data["type"] == "message" {
            if event.data["role"] == "assistant" {
                self.replies.push(event.data.clone());
            } else {
                self.user_messages += 1;
            }
        }
    }

    fn last_id(&self) -> Option<String> {
        self.stored_ids.last().map(|id| id.to_string())
    }

    /// Nothing twice, in order.
    fn assert_once_each(&self, who: &str) {
        let unique: HashSet<_> = self.stored_ids.iter().collect();
        assert_eq!(
            unique.len(),
            self.stored_ids.len(),
            "{who}: an event came twice: {:?}",
            self.stored_ids
        );
        assert!(
            self.stored_ids.windows(2).all(|w| w[0] < w[1]),
            "{who}: out of order: {:?}",
            self.stored_ids
        );
        assert_eq!(
            self.replies.len(),
            1,
            "{who}: the answer must arrive exactly once: {:?}",
            self.replies
        );
        assert!(
            self.user_messages <= 1,
            "{who}: the user message came twice"
        );
    }
}

/// Reads `reader` (reconnecting through the balancer by `Last-Event-ID` whenever its replica
/// goes away) until the assistant's reply arrived, then a little longer to catch repeats.
async fn follow_to_the_reply(api: &Api, mut reader: SseReader, seen: &mut Seen) {
    let deadline = Instant::now() + Duration::from_secs(40);
    let mut quiet_until: Option<Instant> = None;
    loop {
        let now = Instant::now();
        if quiet_until.is_some_and(|t| now > t) {
            return;
        }
        assert!(
            now < deadline,
            "no reply; replies so far {:?}",
            seen.replies
        );
        match reader.next(Duration::from_millis(500)).await {
            Some(event) => {
                seen.take(&event);
                if !seen.replies.is_empty() && quiet_until.is_none() {
                    quiet_until = Some(Instant::now() + Duration::from_millis(1500));
                }
            }
            None if quiet_until.is_some() => {}
            None => {
                // Ended (its replica died) or idle: reconnect through the balancer and resume.
                seen.reconnects += 1;
                reader = api.events(seen.last_id().as_deref()).await;
            }
        }
    }
}

fn model_settings(model: &MockModel) -> Vec<(&'static str, String)> {
    vec![
        ("OPENAI_API_KEY", "test-key".into()),
        ("OPENAI_BASE_URL", model.base_url.clone()),
        ("MODEL_MAX_RETRIES", "0".into()),
        ("MODEL_TIMEOUT_SECS", "120".into()),
        ("TURN_LEASE_SECS", "3".into()),
        ("TURN_SWEEP_SECS", "1".into()),
    ]
}

async fn three_replicas(pool: &PgPool, env: &[(&'static str, String)]) -> Vec<ServerProcess> {
    let db = database_url(pool);
    let mut replicas = Vec::new();
    for _ in 0..3 {
        replicas.push(ServerProcess::start(&db, env).await);
    }
    replicas
}

/// The replica whose turn is running (by the owner recorded on the turn).
async fn owner_of_the_running_turn(pool: &PgPool, replicas: &[ServerProcess]) -> usize {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let owner: Option<uuid::Uuid> =
            sqlx::query_scalar("SELECT owner FROM turns WHERE state = 'running' LIMIT 1")
                .fetch_optional(pool)
                .await
                .unwrap()
                .flatten();
        if let Some(owner) = owner {
            for (i, replica) in replicas.iter().enumerate() {
                if readyz(replica).await.contains(&owner.to_string()) {
                    return i;
                }
            }
        }
        assert!(Instant::now() < deadline, "no running turn");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn kill_the_turns_replica_mid_stream(pool: PgPool, bus: Option<&str>) {
    let model = MockModel::start(vec![
        Step::Tools(vec![(
            "add_task".into(),
            json!({ "title": "Buy milk" }).to_string(),
        )]),
        // The answer streams slowly: the replica is killed while it is being written.
        Step::Tokens((0..40).map(|i| format!("word{i} ")).collect(), 100),
        // The replica that takes the turn over asks the model again, with the tool result.
        Step::Tokens(vec!["Added ".into(), "Buy milk.".into()], 20),
    ])
    .await;
    let mut env = model_settings(&model);
    if let Some(url) = bus {
        env.push(("EVENT_BUS_URL", url.to_string()));
    }
    let mut replicas = three_replicas(&pool, &env).await;
    let expected_bus = if bus.is_some() {
        "nats (connected)"
    } else {
        "event bus: postgres"
    };
    wait_until_ready_says(&replicas.iter().collect::<Vec<_>>(), expected_bus).await;
    let balancer = Balancer::start(&replicas.iter().collect::<Vec<_>>()).await;

    let api = Api::register(&balancer.url, "many@example.com").await;
    let conversation = api.conversation().await;
    // A tab's event stream, and an API client streaming its send, both through the balancer.
    let tab = api.events(None).await;
    let res = api
        .http
        .post(api.url(&format!("/api/chat/conversations/{conversation}/messages")))
        .bearer_auth(&api.token)
        .header("accept", "text/event-stream")
        .json(&json!({ "content": "Add milk to my list" }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let mut sender = SseReader::new(res);
    let mut sender_seen = Seen::default();
    let mut deltas = 0;
    while deltas < 3 {
        let event = sender
            .next(Duration::from_secs(15))
            .await
            .expect("the streaming send's first deltas");
        sender_seen.take(&event);
        if event.data["type"] == "delta" {
            deltas += 1;
        }
    }
    // SIGKILL the replica running the turn, mid-answer.
    let owner = owner_of_the_running_turn(&pool, &replicas).await;
    replicas[owner].kill();

    let mut tab_seen = Seen::default();
    let (_, _) = tokio::join!(
        follow_to_the_reply(&api, sender, &mut sender_seen),
        follow_to_the_reply(&api, tab, &mut tab_seen),
    );
    sender_seen.assert_once_each("API client");
    tab_seen.assert_once_each("tab");
    assert!(
        sender_seen.reconnects >= 1,
        "the sender's replica died: it had to reconnect"
    );

    // The stored answer is the one both saw, stored once; the task exists once.
    let messages = api
        .get(&format!("/api/chat/conversations/{conversation}/messages"))
        .await["messages"]
        .clone();
    let messages = messages.as_array().unwrap();
    assert_eq!(messages.len(), 2, "{messages:?}");
    assert_eq!(messages[1]["content"], "Added Buy milk.");
    assert_eq!(sender_seen.replies[0]["id"], messages[1]["id"]);
    assert_eq!(tab_seen.replies[0]["id"], messages[1]["id"]);
    let tasks = api.get("/api/tasks").await;
    assert_eq!(tasks.as_array().unwrap().len(), 1, "no task twice: {tasks}");
    // The replica that took over showed the model the call already made.
    assert_eq!(model.requests().len(), 3);
}

#[sqlx::test]
async fn with_nats_a_killed_replicas_turn_is_finished_elsewhere_and_streams_once(pool: PgPool) {
    kill_the_turns_replica_mid_stream(pool, Some(&shared_nats())).await;
}

#[sqlx::test]
async fn with_postgres_a_killed_replicas_turn_is_finished_elsewhere_and_streams_once(pool: PgPool) {
    kill_the_turns_replica_mid_stream(pool, None).await;
}

/// Reads the tab until one more assistant reply arrives; returns its text.
async fn await_reply(tab: &mut SseReader, seen: &mut Seen) -> String {
    let deadline = Instant::now() + Duration::from_secs(15);
    let before = seen.replies.len();
    while seen.replies.len() == before {
        assert!(Instant::now() < deadline, "the tab got no reply");
        if let Some(event) = tab.next(Duration::from_millis(500)).await {
            seen.take(&event);
        }
    }
    seen.replies.last().unwrap()["content"]
        .as_str()
        .unwrap()
        .to_string()
}

#[sqlx::test]
async fn nats_going_away_and_coming_back_loses_nothing(pool: PgPool) {
    let mut nats = Nats::start().await;
    let env = vec![("EVENT_BUS_URL", nats.url())];
    let db = database_url(&pool);
    let a = ServerProcess::start(&db, &env).await;
    let b = ServerProcess::start(&db, &env).await;
    wait_until_ready_says(&[&a, &b], "nats (connected)").await;

    // Watches the bus itself: events really travel on NATS while it is up.
    let observer = async_nats::ConnectOptions::new()
        .retry_on_initial_connect()
        .connect(nats.url())
        .await
        .unwrap();
    let mut on_nats = observer.subscribe("chatkit.live.>").await.unwrap();
    observer.flush().await.unwrap();

    let on_a = Api::register(&a.url, "outage@example.com").await;
    let on_b = Api {
        http: reqwest::Client::new(),
        base: b.url.clone(),
        token: on_a.token.clone(),
    };
    let conversation = on_b.conversation().await;
    let mut tab = on_a.events(None).await;
    let mut seen = Seen::default();
    let mut replies = Vec::new();
    let say = |text: &'static str| {
        let on_b = &on_b;
        let conversation = conversation.clone();
        async move {
            let res = on_b.send(&conversation, text).await;
            assert_eq!(res.status(), 201, "{text}");
        }
    };

    // 1. NATS up: the reply reaches the tab on the other replica, through NATS.
    say("Add a task to buy apples").await;
    replies.push(await_reply(&mut tab, &mut seen).await);
    let carried = tokio::time::timeout(Duration::from_secs(2), on_nats.next()).await;
    assert!(matches!(carried, Ok(Some(_))), "NATS carried no event");

    // 2. NATS stopped: both replicas say so and keep serving through Postgres.
    nats.stop();
    wait_until_ready_says(&[&a, &b], "nats unreachable").await;
    say("Add a task to buy pears").await;
    replies.push(await_reply(&mut tab, &mut seen).await);

    // 3. NATS back: both reconnect by themselves; events travel on it again.
    nats.resume().await;
    wait_until_ready_says(&[&a, &b], "nats (connected)").await;
    while tokio::time::timeout(Duration::from_millis(200), on_nats.next())
        .await
        .is_ok()
    {}
    say("Add a task to buy plums").await;
    replies.push(await_reply(&mut tab, &mut seen).await);
    let carried = tokio::time::timeout(Duration::from_secs(5), on_nats.next()).await;
    assert!(matches!(carried, Ok(Some(_))), "NATS carries events again");

    // Nothing lost, nothing twice, in order.
    tokio::time::sleep(Duration::from_millis(800)).await;
    while let Some(event) = tab.next(Duration::from_millis(300)).await {
        seen.take(&event);
    }
    assert_eq!(replies.len(), 3);
    assert_eq!(seen.replies.len(), 3, "each reply once: {:?}", seen.replies);
    for (reply, item) in replies.iter().zip(["Buy apples", "Buy pears", "Buy plums"]) {
        assert!(reply.contains(item), "{reply}");
    }
    let unique: HashSet<_> = seen.stored_ids.iter().collect();
    assert_eq!(unique.len(), seen.stored_ids.len(), "an event came twice");
    assert!(seen.stored_ids.windows(2).all(|w| w[0] < w[1]));
    let tasks = on_a.get("/api/tasks").await;
    assert_eq!(tasks.as_array().unwrap().len(), 3);
}

#[sqlx::test]
async fn the_send_limit_holds_across_three_replicas(pool: PgPool) {
    let env = vec![
        ("SEND_RATE_PER_MINUTE", "20".to_string()),
        ("TURNS_PER_USER", "100".to_string()),
        ("WRITE_RATE_PER_MINUTE", "1000".to_string()),
    ];
    let replicas = three_replicas(&pool, &env).await;
    let balancer = Balancer::start(&replicas.iter().collect::<Vec<_>>()).await;
    let api = Api::register(&balancer.url, "flood@example.com").await;
    let mut conversations = Vec::new();
    for _ in 0..6 {
        conversations.push(api.conversation().await);
    }
    // 60 sends, spread round-robin over the three replicas (20 each: each replica alone
    // would allow all of its share).
    let sends = (0..60).map(|i| {
        let conversation = conversations[i % 6].clone();
        let api = &api;
        async move {
            api.send(&conversation, &format!("Add a task to buy item {i}"))
                .await
                .status()
        }
    });
    let started = Instant::now();
    let statuses = futures::future::join_all(sends).await;
    let elapsed = started.elapsed();
    let accepted = statuses.iter().filter(|s| s.as_u16() == 201).count();
    let limited = statuses.iter().filter(|s| s.as_u16() == 429).count();
    assert_eq!(accepted + limited, 60, "{statuses:?}");
    // 20 per minute in total: the burst of 20, plus one refill every 3 s while they ran.
    let refills = (elapsed.as_secs_f64() / 3.0).ceil() as usize;
    assert!(
        (20..=20 + refills.max(1)).contains(&accepted),
        "accepted {accepted} of 60 in {elapsed:?}"
    );
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM messages WHERE role = 'user'")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(stored as usize, accepted, "refused sends stored nothing");
}
