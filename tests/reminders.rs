//! Reminders (issue 26): at a task's due time every open stream of its user gets one
//! `reminder` event, whichever replica sends it and whichever dies; what is owed is found in
//! the database. Against the release binary as separate processes, over real HTTP; and which
//! reminder is owed after a write, through every interface (REST, server functions, MCP,
//! ChatKit).

mod common;

use std::time::Duration;

use chrono::{DateTime, Duration as Span, NaiveDate, NaiveTime, TimeZone, Timelike, Utc};
use common::{
    cluster::Nats,
    process::{database_url, ServerProcess},
    process_client::Client,
    python_mcp,
    sse::{SseEvent, SseReader},
    TestApp,
};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use sqlx::PgPool;

/// A due time (`YYYY-MM-DDTHH:MM`, UTC: the zone of a user who set none) between `soonest`
/// and `latest` seconds from now: due times are whole minutes, so this waits for the right
/// moment of the current one.
async fn due_soon(soonest: i64, latest: i64) -> (String, DateTime<Utc>) {
    loop {
        let now = Utc::now();
        let minute = now.with_second(0).unwrap().with_nanosecond(0).unwrap();
        let next = minute + Span::minutes(1);
        let left = (next - now).num_milliseconds();
        if (soonest * 1000..=latest * 1000).contains(&left) {
            return (next.format("%Y-%m-%dT%H:%M").to_string(), next);
        }
        let wait = if left > latest * 1000 {
            left - latest * 1000
        } else {
            left + 60_000 - latest * 1000
        };
        tokio::time::sleep(Duration::from_millis(wait as u64 + 20)).await;
    }
}

/// A tab's event stream on `server`, resuming after `last_id` when given.
async fn open_tab(client: &Client, server: &ServerProcess, last_id: Option<&str>) -> SseReader {
    let mut request = client
        .http
        .get(server.at("/api/chat/events"))
        .bearer_auth(&client.token);
    if let Some(id) = last_id {
        request = request.header("last-event-id", id);
    }
    let res = request.send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    SseReader::new(res)
}

async fn add(client: &Client, server: &ServerProcess, task: Value) -> Value {
    let res = client
        .http
        .post(server.at("/api/tasks"))
        .bearer_auth(&client.token)
        .json(&task)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED, "{task}");
    res.json().await.unwrap()
}

/// The reminder this tab gets (within `wait`), after which nothing reminds it again for 3 s.
async fn one_reminder(tab: &mut SseReader, wait: Duration) -> SseEvent {
    let events = tab.until(wait, |d| d["type"] == "reminder").await;
    let reminder = events.last().unwrap().clone();
    while let Some(later) = tab.next(Duration::from_secs(3)).await {
        assert_ne!(
            later.data["type"], "reminder",
            "a second reminder: {later:?}"
        );
    }
    reminder
}

fn assert_reminds_of(reminder: &SseEvent, task: &Value, due: &str, at: DateTime<Utc>) {
    assert_eq!(reminder.data["task_id"], task["id"], "{:?}", reminder.data);
    assert_eq!(reminder.data["title"], task["title"]);
    assert_eq!(reminder.data["due"], due);
    let sent_for: DateTime<Utc> = reminder.data["at"].as_str().unwrap().parse().unwrap();
    assert_eq!(sent_for, at);
    assert!(Utc::now() >= at, "not before its time");
    assert!(
        reminder.id.is_some(),
        "stored: a reconnecting tab replays it"
    );
}

async fn reminder_events(pool: &PgPool) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM live_events WHERE payload->>'type' = 'reminder'")
        .fetch_one(pool)
        .await
        .unwrap()
}

async fn remind_at(pool: &PgPool, title: &str) -> Option<DateTime<Utc>> {
    sqlx::query_scalar("SELECT remind_at FROM tasks WHERE title = $1")
        .bind(title)
        .fetch_one(pool)
        .await
        .unwrap()
}

#[sqlx::test]
async fn every_tab_on_every_replica_gets_each_reminder_once(pool: PgPool) {
    let db = database_url(&pool);
    let a = ServerProcess::start(&db, &[]).await;
    let b = ServerProcess::start(&db, &[]).await;
    let client = Client::register(&a, "remind@example.com").await;
    let mut tab_a = open_tab(&client, &a, None).await;
    let mut tab_b = open_tab(&client, &b, None).await;
    let (due, at) = due_soon(3, 6).await;
    let dentist = add(
        &client,
        &a,
        json!({ "title": "Call the dentist", "due": due }),
    )
    .await;
    let ticked = add(&client, &b, json!({ "title": "Done in time", "due": due })).await;
    let res = client
        .http
        .put(b.at(&format!("/api/tasks/{}", ticked["id"])))
        .bearer_auth(&client.token)
        .json(&json!({ "completed": true }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let tomorrow = (at + Span::days(1)).date_naive();
    add(
        &client,
        &a,
        json!({ "title": "Some day", "due": tomorrow.to_string() }),
    )
    .await;
    let wait = Duration::from_secs(15);
    let (on_a, on_b) = tokio::join!(
        one_reminder(&mut tab_a, wait),
        one_reminder(&mut tab_b, wait)
    );
    assert_reminds_of(&on_a, &dentist, &due, at);
    assert_reminds_of(&on_b, &dentist, &due, at);
    assert_eq!(on_a.id, on_b.id, "one reminder, sent once, reached both");
    assert_eq!(reminder_events(&pool).await, 1);
    assert_eq!(remind_at(&pool, "Call the dentist").await, None, "sent");
    assert_eq!(remind_at(&pool, "Done in time").await, None, "done first");
    // A day without a time is reminded at 09:00 of that day (the user's zone: UTC here).
    assert_eq!(
        remind_at(&pool, "Some day").await,
        Some(Utc.from_utc_datetime(&tomorrow.and_hms_opt(9, 0, 0).unwrap()))
    );
}

/// Both replicas are up, a tab on each; the replica the task was made on is killed before
/// its time: the other one sends it, and the killed replica's tab, reconnecting to the
/// survivor with `Last-Event-ID`, gets it once too. Over NATS.
#[sqlx::test]
async fn a_replica_killed_before_the_due_time_leaves_the_reminder_to_the_other(pool: PgPool) {
    let nats = Nats::start().await;
    let env = [("EVENT_BUS_URL", nats.url())];
    let db = database_url(&pool);
    let mut a = ServerProcess::start(&db, &env).await;
    let b = ServerProcess::start(&db, &env).await;
    let client = Client::register(&a, "killed@example.com").await;
    let mut tab_a = open_tab(&client, &a, None).await;
    let mut tab_b = open_tab(&client, &b, None).await;
    let (due, at) = due_soon(4, 7).await;
    let task = add(
        &client,
        &a,
        json!({ "title": "Take the pills", "due": due }),
    )
    .await;
    let seen = tab_a
        .until(Duration::from_secs(5), |d| d["type"] == "task")
        .await;
    let last_id = seen.last().unwrap().id.clone().unwrap();
    a.kill();
    assert!(
        tab_a.next(Duration::from_secs(2)).await.is_none(),
        "its stream died with it"
    );
    let mut tab_a = open_tab(&client, &b, Some(&last_id)).await;
    let wait = Duration::from_secs(15);
    let (on_a, on_b) = tokio::join!(
        one_reminder(&mut tab_a, wait),
        one_reminder(&mut tab_b, wait)
    );
    assert_reminds_of(&on_a, &task, &due, at);
    assert_reminds_of(&on_b, &task, &due, at);
    assert_eq!(reminder_events(&pool).await, 1);
}

/// The only replica is killed before the due time and comes back after it: the reminder it
/// owed is found in the database and sent, late, once.
#[sqlx::test]
async fn a_reminder_owed_while_every_replica_was_down_is_sent_when_one_is_back(pool: PgPool) {
    let db = database_url(&pool);
    let mut server = ServerProcess::start(&db, &[]).await;
    let client = Client::register(&server, "down@example.com").await;
    let mut tab = open_tab(&client, &server, None).await;
    let (due, at) = due_soon(3, 6).await;
    let task = add(
        &client,
        &server,
        json!({ "title": "Feed the cat", "due": due }),
    )
    .await;
    let seen = tab
        .until(Duration::from_secs(5), |d| d["type"] == "task")
        .await;
    let last_id = seen.last().unwrap().id.clone().unwrap();
    server.kill();
    let late = (at - Utc::now()).to_std().unwrap_or_default() + Duration::from_secs(2);
    tokio::time::sleep(late).await;
    assert_eq!(reminder_events(&pool).await, 0, "nobody was up to send it");
    let server = ServerProcess::start(&db, &[]).await;
    let mut tab = open_tab(&client, &server, Some(&last_id)).await;
    let reminder = one_reminder(&mut tab, Duration::from_secs(10)).await;
    assert_reminds_of(&reminder, &task, &due, at);
    assert_eq!(reminder_events(&pool).await, 1);
}

/// Which reminder is owed follows every write, whichever interface makes it: the due time
/// (in the user's zone), 09:00 of a day without one, none for a past time, a done or
/// deleted task; a repeat's next occurrence once one is done.
#[sqlx::test]
async fn every_interface_s_writes_keep_the_owed_reminder(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let token = app.register("owed@example.com").await;
    let res = app
        .send_json(
            Method::PUT,
            &token,
            "/api/account/settings",
            json!({ "approval_policy": "deletes", "time_zone": "Europe/Berlin" }),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let berlin = chrono_tz::Europe::Berlin;
    let today = Utc::now().with_timezone(&berlin).date_naive();
    let tomorrow = today + Span::days(1);
    let local = |day: NaiveDate, h: u32, m: u32| {
        berlin
            .from_local_datetime(&day.and_time(NaiveTime::from_hms_opt(h, m, 0).unwrap()))
            .single()
            .unwrap()
            .with_timezone(&Utc)
    };
    // REST: a time, a day, a time already past.
    let rest = app
        .post(
            &token,
            "/api/tasks",
            json!({ "title": "REST", "due": format!("{tomorrow}T17:30") }),
        )
        .await;
    assert_eq!(rest.status(), StatusCode::CREATED);
    let rest: Value = rest.json().await.unwrap();
    assert_eq!(
        remind_at(&pool, "REST").await,
        Some(local(tomorrow, 17, 30))
    );
    app.post(
        &token,
        "/api/tasks",
        json!({ "title": "A day", "due": tomorrow.to_string() }),
    )
    .await;
    assert_eq!(remind_at(&pool, "A day").await, Some(local(tomorrow, 9, 0)));
    let yesterday = today - Span::days(1);
    app.post(
        &token,
        "/api/tasks",
        json!({ "title": "Past", "due": format!("{yesterday}T08:00") }),
    )
    .await;
    assert_eq!(remind_at(&pool, "Past").await, None);
    // Done, reopened, deleted.
    let path = format!("/api/tasks/{}", rest["id"]);
    let tick = |completed: bool| {
        app.send_json(
            Method::PUT,
            &token,
            &path,
            json!({ "completed": completed }),
        )
    };
    assert_eq!(tick(true).await.status(), StatusCode::OK);
    assert_eq!(remind_at(&pool, "REST").await, None);
    assert_eq!(tick(false).await.status(), StatusCode::OK);
    assert_eq!(
        remind_at(&pool, "REST").await,
        Some(local(tomorrow, 17, 30))
    );
    let deleted = app
        .http
        .delete(app.at(&path))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert!(deleted.status().is_success());
    assert_eq!(remind_at(&pool, "REST").await, None);
    // Server functions.
    let res = app
        .http
        .post(app.at("/sfn/tasks/add"))
        .header("cookie", format!("chatkit_session={token}"))
        .header("origin", &app.url)
        .form(&[
            ("task[title]", "From a form".to_string()),
            ("task[due]", format!("{tomorrow}T07:15")),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(
        remind_at(&pool, "From a form").await,
        Some(local(tomorrow, 7, 15))
    );
    // MCP (the official Python SDK): a repeat; done, it is owed its next occurrence's.
    let added = python_mcp(
        &app.at("/mcp"),
        &token,
        "add_task",
        json!({ "title": "Stretch", "due": format!("{tomorrow}T06:45"), "recurrence": "FREQ=DAILY" }),
    )
    .await;
    assert_eq!(
        remind_at(&pool, "Stretch").await,
        Some(local(tomorrow, 6, 45))
    );
    python_mcp(
        &app.at("/mcp"),
        &token,
        "complete_task",
        json!({ "task_id": added["task_id"] }),
    )
    .await;
    assert_eq!(
        remind_at(&pool, "Stretch").await,
        Some(local(tomorrow + Span::days(1), 6, 45))
    );
    // ChatKit, through the assistant.
    let res = app
        .post(
            &token,
            "/chatkit",
            json!({ "type": "threads.create", "params": { "input": {
                "content": [{ "type": "input_text", "text": "remind me to call the bank tomorrow at 5pm" }],
                "attachments": [], "inference_options": {} } } }),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let _ = res.text().await;
    assert_eq!(
        remind_at(&pool, "Call the bank").await,
        Some(local(tomorrow, 17, 0))
    );
}

/// "Snooze": every tab closes its card (`reminder_snoozed`), and the reminder comes again once
/// the snooze is over, at its new time. Bad snoozes are 400 (REST and server functions alike),
/// another user's task 404, a done task's 400; none of them changes what is owed.
#[sqlx::test]
async fn a_snoozed_reminder_leaves_every_tab_and_comes_again(pool: PgPool) {
    let db = database_url(&pool);
    let server = ServerProcess::start(&db, &[]).await;
    let client = Client::register(&server, "snooze@example.com").await;
    let other = Client::register(&server, "other-snooze@example.com").await;
    let mut tab = open_tab(&client, &server, None).await;
    let mut second_tab = open_tab(&client, &server, None).await;
    let (due, at) = due_soon(3, 6).await;
    let task = add(
        &client,
        &server,
        json!({ "title": "Call back", "due": due }),
    )
    .await;
    let first = tab
        .until(Duration::from_secs(15), |d| d["type"] == "reminder")
        .await;
    assert_reminds_of(first.last().unwrap(), &task, &due, at);
    let path = format!("/api/tasks/{}/snooze", task["id"]);
    let snooze = |who: &Client, body: Value| {
        who.http
            .post(server.at(&path))
            .bearer_auth(&who.token)
            .json(&body)
            .send()
    };
    for bad in [
        json!({ "minutes": 0 }),
        json!({ "minutes": 1441 }),
        json!({}),
        json!({ "minutes": "ten" }),
    ] {
        let res = snooze(&client, bad.clone()).await.unwrap();
        assert_eq!(res.status(), StatusCode::BAD_REQUEST, "{bad}");
    }
    let sfn = |minutes: &str| {
        client
            .http
            .post(server.at("/sfn/tasks/snooze"))
            .header("cookie", format!("chatkit_session={}", client.token))
            .header("origin", &server.url)
            .form(&[
                ("id", task["id"].to_string()),
                ("snooze[minutes]", minutes.to_string()),
            ])
            .send()
    };
    assert_eq!(sfn("0").await.unwrap().status(), StatusCode::BAD_REQUEST);
    assert_eq!(sfn("x").await.unwrap().status(), StatusCode::BAD_REQUEST);
    let res = snooze(&other, json!({ "minutes": 1 })).await.unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND, "another user's task");
    assert_eq!(
        remind_at(&pool, "Call back").await,
        None,
        "nothing owed yet"
    );
    // Snoozed through the server function (the card's button) by a minute.
    let res = sfn("1").await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let snoozed: Value = res.json().await.unwrap();
    let until: DateTime<Utc> = snoozed["until"].as_str().unwrap().parse().unwrap();
    assert!((until - Utc::now() - Span::minutes(1)).num_seconds().abs() <= 2);
    assert_eq!(remind_at(&pool, "Call back").await, Some(until));
    for t in [&mut tab, &mut second_tab] {
        let events = t
            .until(Duration::from_secs(5), |d| d["type"] == "reminder_snoozed")
            .await;
        assert_eq!(events.last().unwrap().data["task_id"], task["id"]);
    }
    let again = one_reminder(&mut tab, Duration::from_secs(75)).await;
    assert_reminds_of(&again, &task, &due, until);
    assert_eq!(
        reminder_events(&pool).await,
        2,
        "the first one and the snoozed one"
    );
    // Done: nothing to snooze.
    let res = client
        .http
        .post(server.at(&format!("/api/tasks/{}/complete", task["id"])))
        .bearer_auth(&client.token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let res = snooze(&client, json!({ "minutes": 5 })).await.unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert_eq!(remind_at(&pool, "Call back").await, None);
}
