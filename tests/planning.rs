//! Tasks people can plan with (issue 26): due dates in the user's time zone, priorities, tags
//! and repeats, through REST, server functions and MCP (the official Python SDK), with the
//! server's clock stopped at a fixed instant (`Config::clock`, `CLOCK_AT`).

mod common;

use chrono::{DateTime, Utc};
use common::{expect_error, python_mcp, TestApp};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use sqlx::PgPool;

fn at(instant: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(instant)
        .unwrap()
        .with_timezone(&Utc)
}

/// A server whose clock stands at `instant`.
async fn stopped_at(pool: PgPool, instant: &str) -> TestApp {
    let now = at(instant);
    TestApp::spawn_with(pool, move |c| {
        c.clock = chatkit::server::config::Clock(Some(now))
    })
    .await
}

async fn set_zone(app: &TestApp, token: &str, zone: &str) {
    let res = app
        .send_json(
            Method::PUT,
            token,
            "/api/account/settings",
            json!({ "approval_policy": "deletes", "time_zone": zone }),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK, "set the zone to {zone}");
    assert_eq!(res.json::<Value>().await.unwrap()["time_zone"], zone);
}

async fn add(app: &TestApp, token: &str, task: Value) -> Value {
    let res = app.post(token, "/api/tasks", task.clone()).await;
    assert_eq!(res.status(), StatusCode::CREATED, "add {task}");
    res.json().await.unwrap()
}

/// The titles a view lists, in its order.
async fn view(app: &TestApp, token: &str, query: &str) -> Vec<String> {
    let res = app.get(token, &format!("/api/tasks?{query}")).await;
    assert_eq!(res.status(), StatusCode::OK, "{query}");
    let tasks: Vec<Value> = res.json().await.unwrap();
    tasks
        .iter()
        .map(|t| t["title"].as_str().unwrap().to_string())
        .collect()
}

#[sqlx::test]
async fn the_fields_round_trip_and_bad_ones_are_400(pool: PgPool) {
    let app = stopped_at(pool, "2026-03-09T10:00:00Z").await;
    let token = app.register("fields@example.com").await;
    let task = add(
        &app,
        &token,
        json!({ "title": "Call the dentist", "due": "2026-03-13T17:00", "priority": 1,
                "tags": ["#Health", "calls", "health"] }),
    )
    .await;
    assert_eq!(task["due"], "2026-03-13T17:00");
    assert_eq!(task["priority"], 1);
    assert_eq!(
        task["tags"],
        json!(["health", "calls"]),
        "lowercase, no #, no repeats"
    );
    assert_eq!(task["recurrence"], Value::Null);
    let plain = add(&app, &token, json!({ "title": "Plain" })).await;
    assert_eq!(plain["priority"], 4, "no priority is 4");
    assert_eq!(plain["due"], Value::Null);
    assert_eq!(plain["tags"], json!([]));

    // A change of some fields leaves the others; empty strings clear.
    let res = app
        .send_json(
            Method::PUT,
            &token,
            "/api/tasks/1",
            json!({ "priority": 2, "tags": [] }),
        )
        .await;
    let changed: Value = res.json().await.unwrap();
    assert_eq!(changed["priority"], 2);
    assert_eq!(changed["tags"], json!([]));
    assert_eq!(changed["due"], "2026-03-13T17:00");
    let res = app
        .send_json(Method::PUT, &token, "/api/tasks/1", json!({ "due": "" }))
        .await;
    assert_eq!(res.json::<Value>().await.unwrap()["due"], Value::Null);

    let bad = [
        json!({ "title": "x", "due": "Friday" }),
        json!({ "title": "x", "due": "2026-02-30" }),
        json!({ "title": "x", "due": "2026-03-13T25:00" }),
        json!({ "title": "x", "priority": 0 }),
        json!({ "title": "x", "priority": 5 }),
        json!({ "title": "x", "tags": ["two words"] }),
        json!({ "title": "x", "tags": (0..11).map(|i| format!("t{i}")).collect::<Vec<_>>() }),
        json!({ "title": "x", "recurrence": "FREQ=HOURLY" }),
        json!({ "title": "x", "recurrence": "FREQ=DAILY;COUNT=3" }),
        json!({ "title": "x", "recurrence": "FREQ=WEEKLY;BYDAY=XX" }),
        json!({ "title": "x", "recurrence": "every monday" }),
    ];
    for body in bad {
        let res = app.post(&token, "/api/tasks", body.clone()).await;
        let detail = expect_error(res, StatusCode::BAD_REQUEST).await;
        assert!(!detail.is_empty(), "{body}");
    }
    let res = app
        .send_json(
            Method::PUT,
            &token,
            "/api/account/settings",
            json!({ "approval_policy": "deletes", "time_zone": "Mars/Olympus" }),
        )
        .await;
    expect_error(res, StatusCode::BAD_REQUEST).await;
    for query in ["view=soon", "priority=9", "tag=two%20words"] {
        let res = app.get(&token, &format!("/api/tasks?{query}")).await;
        assert_eq!(res.status(), StatusCode::BAD_REQUEST, "{query}");
    }
    // Nothing of the refused ones was stored.
    assert_eq!(
        view(&app, &token, "view=all").await,
        ["Call the dentist", "Plain"]
    );
}

/// 23:30 UTC on Monday 9 March 2026: already Tuesday 10 March in Berlin, still Monday in New
/// York. The same tasks fall into different views for the two users.
#[sqlx::test]
async fn views_follow_the_day_in_each_users_zone(pool: PgPool) {
    let app = stopped_at(pool, "2026-03-09T23:30:00Z").await;
    let berlin = app.register("berlin@example.com").await;
    let new_york = app.register("newyork@example.com").await;
    set_zone(&app, &berlin, "Europe/Berlin").await;
    set_zone(&app, &new_york, "America/New_York").await;
    for token in [&berlin, &new_york] {
        for (title, due) in [
            ("monday all day", "2026-03-09"),
            ("monday 20:00", "2026-03-09T20:00"),
            ("tuesday all day", "2026-03-10"),
            ("tuesday 08:00", "2026-03-10T08:00"),
            ("next monday", "2026-03-16"),
            ("next wednesday", "2026-03-18"),
        ] {
            add(
                &app,
                token,
                json!({ "title": title, "due": due, "tags": ["plan"] }),
            )
            .await;
        }
        add(&app, token, json!({ "title": "no date" })).await;
    }
    // Berlin, 00:30 on Tuesday: Monday is over, Tuesday has begun.
    assert_eq!(
        view(&app, &berlin, "view=overdue").await,
        ["monday 20:00", "monday all day"]
    );
    assert_eq!(
        view(&app, &berlin, "view=today").await,
        ["tuesday 08:00", "tuesday all day"]
    );
    assert_eq!(view(&app, &berlin, "view=upcoming").await, ["next monday"]);
    // New York, 19:30 on Monday: Monday evening is still to come; the 7 days end on the 16th.
    assert_eq!(
        view(&app, &new_york, "view=overdue").await,
        Vec::<String>::new()
    );
    assert_eq!(
        view(&app, &new_york, "view=today").await,
        ["monday 20:00", "monday all day"]
    );
    assert_eq!(
        view(&app, &new_york, "view=upcoming").await,
        ["tuesday 08:00", "tuesday all day", "next monday"]
    );
    // Completed tasks leave the views; the tag and priority filters combine with them.
    let res = app.post(&berlin, "/api/tasks/3/complete", json!({})).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(view(&app, &berlin, "view=today").await, ["tuesday 08:00"]);
    assert_eq!(
        view(&app, &berlin, "view=today&tag=plan").await,
        ["tuesday 08:00"]
    );
    assert!(view(&app, &berlin, "view=today&tag=other").await.is_empty());
    assert!(view(&app, &berlin, "view=today&priority=1")
        .await
        .is_empty());
    assert_eq!(view(&app, &berlin, "tag=plan").await.len(), 6);

    // A user who moves to New York sees their tasks by New York's day at once.
    set_zone(&app, &berlin, "America/New_York").await;
    assert_eq!(
        view(&app, &berlin, "view=overdue").await,
        Vec::<String>::new()
    );
    assert_eq!(
        view(&app, &berlin, "view=today").await,
        ["monday 20:00", "monday all day"]
    );
}

#[sqlx::test]
async fn completing_a_repeating_task_moves_it_on_and_keeps_the_completion(pool: PgPool) {
    // Wednesday 11 March 2026, noon in Berlin.
    let app = stopped_at(pool.clone(), "2026-03-11T11:00:00Z").await;
    let token = app.register("repeat@example.com").await;
    set_zone(&app, &token, "Europe/Berlin").await;
    // "Water the plants every Monday" without a date: due next Monday.
    let plants = add(
        &app,
        &token,
        json!({ "title": "Water the plants", "recurrence": "FREQ=WEEKLY;BYDAY=MO" }),
    )
    .await;
    assert_eq!(plants["due"], "2026-03-16");
    assert_eq!(plants["recurrence"], "FREQ=WEEKLY;BYDAY=MO");
    // Done (early): it moves to the Monday after, and stays open.
    let done: Value = app
        .post(&token, "/api/tasks/1/complete", json!({}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(done["due"], "2026-03-23");
    assert_eq!(done["completed"], false);
    // Every other Friday at 17:00, from a Friday long past: the next one after today.
    add(
        &app,
        &token,
        json!({ "title": "Team drinks", "due": "2026-02-20T17:00",
                "recurrence": "FREQ=WEEKLY;INTERVAL=2;BYDAY=FR" }),
    )
    .await;
    let res = app
        .send_json(
            Method::PUT,
            &token,
            "/api/tasks/2",
            json!({ "completed": true }),
        )
        .await;
    let drinks: Value = res.json().await.unwrap();
    assert_eq!(drinks["due"], "2026-03-20T17:00");
    // The last occurrence (UNTIL) completes it for real.
    add(
        &app,
        &token,
        json!({ "title": "Rent", "due": "2026-03-01",
                "recurrence": "FREQ=MONTHLY;BYMONTHDAY=1;UNTIL=20260331" }),
    )
    .await;
    let rent: Value = app
        .post(&token, "/api/tasks/3/complete", json!({}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(rent["completed"], true);
    assert_eq!(rent["due"], "2026-03-01");
    // Every completion is kept, with the occurrence it completed.
    let kept: Vec<(i32, String)> = sqlx::query_as(
        "SELECT task_id, due_date::text FROM task_completions ORDER BY task_id, completed_at",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(
        kept,
        [
            (1, "2026-03-16".into()),
            (2, "2026-02-20".into()),
            (3, "2026-03-01".into())
        ]
    );
    // Removing the due date stops the repeat too.
    let res = app
        .send_json(Method::PUT, &token, "/api/tasks/1", json!({ "due": "" }))
        .await;
    let undated: Value = res.json().await.unwrap();
    assert_eq!(undated["recurrence"], Value::Null);
}

#[sqlx::test]
async fn server_functions_take_the_same_fields(pool: PgPool) {
    let app = stopped_at(pool, "2026-03-09T10:00:00Z").await;
    let token = app.register("sfn-plan@example.com").await;
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
        vec![
            ("task[title]", "From a form".into()),
            ("task[due]", "2026-03-09T18:00".into()),
            ("task[priority]", "2".into()),
            ("task[tags][0]", "work".into()),
        ],
    )
    .await
    .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let task: Value = res.json().await.unwrap();
    assert_eq!(task["due"], "2026-03-09T18:00");
    assert_eq!(task["tags"], json!(["work"]));
    let res = call(
        "/sfn/tasks/add",
        vec![("task[title]", "x".into()), ("task[priority]", "7".into())],
    )
    .await
    .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let res = call(
        "/sfn/tasks/find",
        vec![
            ("query[view]", "today".into()),
            ("query[tag]", "work".into()),
        ],
    )
    .await
    .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let found: Vec<Value> = res.json().await.unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0]["title"], "From a form");
    let res = call("/sfn/tasks/find", vec![("query[view]", "soon".into())])
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
}

#[sqlx::test]
async fn the_browsers_zone_is_taken_only_while_none_is_set(pool: PgPool) {
    let app = stopped_at(pool, "2026-03-09T23:30:00Z").await;
    let token = app.register("adopt@example.com").await;
    add(
        &app,
        &token,
        json!({ "title": "Tuesday", "due": "2026-03-10" }),
    )
    .await;
    // UTC until a zone is set: 23:30 on Monday, Tuesday is still to come.
    assert!(view(&app, &token, "view=today").await.is_empty());
    let cookie = format!("chatkit_session={token}");
    let adopt = |zone: &'static str| {
        app.http
            .post(app.at("/sfn/auth/adopt_time_zone"))
            .header("cookie", &cookie)
            .header("origin", &app.url)
            .form(&[("time_zone", zone)])
            .send()
    };
    let res = adopt("Europe/Berlin").await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.json::<Value>().await.unwrap(), json!(true));
    // Already 00:30 on Tuesday in Berlin: the task is due today now.
    assert_eq!(view(&app, &token, "view=today").await, ["Tuesday"]);
    // Another browser's zone does not replace it; a chosen one does.
    let res = adopt("America/New_York").await.unwrap();
    assert_eq!(res.json::<Value>().await.unwrap(), json!(false));
    let settings: Value = app
        .get(&token, "/api/account/settings")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(settings["time_zone"], "Europe/Berlin");
    let res = adopt("Nowhere/Atlantis").await.unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    set_zone(&app, &token, "America/New_York").await;
    assert!(view(&app, &token, "view=today").await.is_empty());
}

#[sqlx::test]
async fn the_mcp_tools_plan_too(pool: PgPool) {
    let app = stopped_at(pool, "2026-03-09T10:00:00Z").await;
    let token = app.register("mcp-plan@example.com").await;
    set_zone(&app, &token, "Europe/Berlin").await;
    let added = python_mcp(
        &app.at("/mcp"),
        &token,
        "add_task",
        json!({ "title": "Send the report", "due": "2026-03-09T17:00", "tags": ["work"],
                "priority": 1 }),
    )
    .await;
    assert_eq!(added["status"], "created");
    assert_eq!(added["due"], "2026-03-09T17:00");
    python_mcp(
        &app.at("/mcp"),
        &token,
        "add_task",
        json!({ "title": "Later", "due": "2026-03-12" }),
    )
    .await;
    let today = python_mcp(
        &app.at("/mcp"),
        &token,
        "list_tasks",
        json!({ "view": "today" }),
    )
    .await;
    assert_eq!(today["count"], 1, "{today}");
    assert_eq!(today["tasks"][0]["title"], "Send the report");
    assert_eq!(today["tasks"][0]["tags"], json!(["work"]));
    assert_eq!(today["tasks"][0]["priority"], 1);
    let upcoming = python_mcp(
        &app.at("/mcp"),
        &token,
        "list_tasks",
        json!({ "view": "upcoming" }),
    )
    .await;
    assert_eq!(upcoming["tasks"][0]["title"], "Later");
    let updated = python_mcp(
        &app.at("/mcp"),
        &token,
        "update_task",
        json!({ "task_id": 2, "recurrence": "FREQ=WEEKLY;BYDAY=TH" }),
    )
    .await;
    assert_eq!(updated["status"], "updated");
    let completed = python_mcp(
        &app.at("/mcp"),
        &token,
        "complete_task",
        json!({ "task_id": 2 }),
    )
    .await;
    assert_eq!(completed["next_due"], "2026-03-19", "{completed}");
    // The schema says what is accepted: a bad date is the tool's error, not a stored task.
    let output = tokio::process::Command::new(common::python())
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/end2end/mcp-call.py"))
        .arg(app.at("/mcp"))
        .arg("add_task")
        .arg(json!({ "title": "x", "due": "next week" }).to_string())
        .env("MCP_BEARER_TOKEN", &token)
        .output()
        .await
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("due must be"));
    let all: Vec<Value> = app.get(&token, "/api/tasks").await.json().await.unwrap();
    assert_eq!(all.len(), 2);
}

/// What the user says, and the task's title, due, priority, tags and recurrence.
type Phrasing = (
    &'static str,
    &'static str,
    Option<&'static str>,
    u8,
    &'static [&'static str],
    Option<&'static str>,
);

/// The offline assistant over REST, for a user in Berlin on Tuesday 10 March 2026 at 10:00
/// there: each phrasing becomes a task with the expected title, due date, priority, tags and
/// repeat, or (a date that has passed) a question and no task.
#[sqlx::test]
async fn the_offline_assistant_plans_in_plain_words(pool: PgPool) {
    let app = stopped_at(pool, "2026-03-10T09:00:00Z").await;
    let token = app.register("words@example.com").await;
    set_zone(&app, &token, "Europe/Berlin").await;
    let conversation = app.conversation(&token).await;
    let table: [Phrasing; 28] = [
        (
            "remind me to call the dentist on Friday",
            "Call the dentist",
            Some("2026-03-13"),
            4,
            &[],
            None,
        ),
        (
            "add buy milk today",
            "Buy milk",
            Some("2026-03-10"),
            4,
            &[],
            None,
        ),
        (
            "add submit the report tomorrow at 5pm",
            "Submit the report",
            Some("2026-03-11T17:00"),
            4,
            &[],
            None,
        ),
        (
            "add water the plants every Monday",
            "Water the plants",
            Some("2026-03-16"),
            4,
            &[],
            Some("FREQ=WEEKLY;BYDAY=MO"),
        ),
        (
            "add team drinks every other Friday at 18:00",
            "Team drinks",
            Some("2026-03-13T18:00"),
            4,
            &[],
            Some("FREQ=WEEKLY;INTERVAL=2;BYDAY=FR"),
        ),
        (
            "add pay rent every month on the 1st",
            "Pay rent",
            Some("2026-04-01"),
            4,
            &[],
            Some("FREQ=MONTHLY;BYMONTHDAY=1"),
        ),
        (
            "add stretch every day",
            "Stretch",
            Some("2026-03-10"),
            4,
            &[],
            Some("FREQ=DAILY"),
        ),
        (
            "add take vitamins every day at 8am",
            "Take vitamins",
            Some("2026-03-11T08:00"),
            4,
            &[],
            Some("FREQ=DAILY"),
        ),
        (
            "add renew passport in 3 days",
            "Renew passport",
            Some("2026-03-13"),
            4,
            &[],
            None,
        ),
        (
            "add book flights next Monday",
            "Book flights",
            Some("2026-03-16"),
            4,
            &[],
            None,
        ),
        (
            "add call mum on 12 March",
            "Call mum",
            Some("2026-03-12"),
            4,
            &[],
            None,
        ),
        (
            "add file taxes by the end of the month",
            "File taxes",
            Some("2026-03-31"),
            4,
            &[],
            None,
        ),
        (
            "add fix the leak urgent",
            "Fix the leak",
            None,
            1,
            &[],
            None,
        ),
        ("add review budget p2", "Review budget", None, 2, &[], None),
        (
            "add clean the garage, low priority",
            "Clean the garage",
            None,
            4,
            &[],
            None,
        ),
        (
            "add prepare slides #work",
            "Prepare slides",
            None,
            4,
            &["work"],
            None,
        ),
        (
            "add order printer ink #work #office p3",
            "Order printer ink",
            None,
            3,
            &["work", "office"],
            None,
        ),
        (
            "add call the plumber tomorrow at noon",
            "Call the plumber",
            Some("2026-03-11T12:00"),
            4,
            &[],
            None,
        ),
        (
            "add dinner with Sam tonight",
            "Dinner with Sam",
            Some("2026-03-10T20:00"),
            4,
            &[],
            None,
        ),
        (
            "add gym at 6pm",
            "Gym",
            Some("2026-03-10T18:00"),
            4,
            &[],
            None,
        ),
        (
            "add dentist appointment on March 20 at 9:30am",
            "Dentist appointment",
            Some("2026-03-20T09:30"),
            4,
            &[],
            None,
        ),
        (
            "add send the invoice in a week",
            "Send the invoice",
            Some("2026-03-17"),
            4,
            &[],
            None,
        ),
        (
            "add yoga every weekday at 7am",
            "Yoga",
            Some("2026-03-11T07:00"),
            4,
            &[],
            Some("FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR"),
        ),
        (
            "add weekly review every Friday at 4pm #work",
            "Weekly review",
            Some("2026-03-13T16:00"),
            4,
            &["work"],
            Some("FREQ=WEEKLY;BYDAY=FR"),
        ),
        (
            "add renew insurance on 12 March 2027",
            "Renew insurance",
            Some("2027-03-12"),
            4,
            &[],
            None,
        ),
        (
            "add call grandma this Sunday",
            "Call grandma",
            Some("2026-03-15"),
            4,
            &[],
            None,
        ),
        (
            "add back up the laptop monthly",
            "Back up the laptop",
            Some("2026-03-10"),
            4,
            &[],
            Some("FREQ=MONTHLY"),
        ),
        (
            "add quarterly report by Friday, high priority #work",
            "Quarterly report",
            Some("2026-03-13"),
            2,
            &["work"],
            None,
        ),
    ];
    for (n, (said, title, due, priority, tags, recurrence)) in table.iter().enumerate() {
        let turn = app.say(&token, &conversation, said).await;
        let reply = turn["assistant_message"]["content"]
            .as_str()
            .unwrap_or_default();
        assert!(reply.starts_with("Added task"), "{said}: {reply}");
        let task: Value = app
            .get(&token, &format!("/api/tasks/{}", n + 1))
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(task["title"], *title, "{said}");
        assert_eq!(task["due"], json!(due), "{said}");
        assert_eq!(task["priority"], *priority, "{said}");
        assert_eq!(task["tags"], json!(tags), "{said}");
        assert_eq!(task["recurrence"], json!(recurrence), "{said}");
    }
    // A date or time that has passed is asked about, and nothing is added.
    for said in ["add pay rent on 1 March", "add stand-up today at 9am"] {
        let turn = app.say(&token, &conversation, said).await;
        let reply = turn["assistant_message"]["content"].as_str().unwrap();
        assert!(reply.contains("already passed"), "{said}: {reply}");
    }
    let all: Vec<Value> = app.get(&token, "/api/tasks").await.json().await.unwrap();
    assert_eq!(all.len(), table.len());
    // And it answers what is due.
    let turn = app.say(&token, &conversation, "what's due today?").await;
    let reply = turn["assistant_message"]["content"].as_str().unwrap();
    for due_today in [
        "Buy milk",
        "Stretch",
        "Dinner with Sam",
        "Gym",
        "Back up the laptop",
    ] {
        assert!(reply.contains(due_today), "{due_today} in {reply}");
    }
    assert!(!reply.contains("Call the dentist"), "{reply}");
    let turn = app
        .say(&token, &conversation, "What's due this week?")
        .await;
    let reply = turn["assistant_message"]["content"].as_str().unwrap();
    assert!(
        reply.contains("Call the dentist") && reply.contains("Buy milk"),
        "{reply}"
    );
    assert!(
        !reply.contains("Renew insurance") && !reply.contains("File taxes"),
        "{reply}"
    );
    let turn = app.say(&token, &conversation, "anything overdue?").await;
    let reply = turn["assistant_message"]["content"].as_str().unwrap();
    assert_eq!(reply, "You have no overdue tasks.");
}
