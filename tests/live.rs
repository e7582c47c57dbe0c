//! Live replies over real HTTP: the streamed model's text reaches API clients and every open
//! event stream as deltas while it is written; events carry ids that a reconnecting client
//! resumes from; a stream opened mid-turn starts with the reply so far.

mod common;

use std::time::Duration;

use common::{
    mock_model::{MockModel, Step},
    sse::SseReader,
    TestApp,
};
use serde_json::{json, Value};
use sqlx::PgPool;

fn forty_tokens() -> Vec<String> {
    (0..40).map(|i| format!("word{i} ")).collect()
}

async fn open_events(app: &TestApp, token: &str, last_id: Option<&str>) -> SseReader {
    let mut request = app.http.get(app.at("/api/chat/events")).bearer_auth(token);
    if let Some(id) = last_id {
        request = request.header("last-event-id", id);
    }
    let res = request.send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    SseReader::new(res)
}

fn is_assistant_message(data: &Value) -> bool {
    data["type"] == "message" && data["role"] == "assistant"
}

#[sqlx::test]
async fn a_streaming_send_shows_the_reply_as_it_is_written(pool: PgPool) {
    let model = MockModel::start(vec![Step::Tokens(forty_tokens(), 50)]).await;
    let app = TestApp::with_model(pool, &model).await;
    let token = app.register("stream@example.com").await;
    let id = app.conversation(&token).await;
    let res = app
        .http
        .post(app.at(&format!("/api/chat/conversations/{id}/messages")))
        .bearer_auth(&token)
        .header("accept", "text/event-stream")
        .json(&json!({ "content": "tell me a story" }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let mut reader = SseReader::new(res);
    let events = reader
        .until(Duration::from_secs(10), is_assistant_message)
        .await;
    let kinds: Vec<&str> = events
        .iter()
        .map(|e| e.data["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds[0], "message",
        "the user message comes first: {kinds:?}"
    );
    assert_eq!(events[0].data["role"], "user");
    assert!(kinds.contains(&"activity"));
    let deltas: Vec<&Value> = events
        .iter()
        .map(|e| &e.data)
        .filter(|d| d["type"] == "delta")
        .collect();
    assert!(deltas.len() >= 3, "intermediate states: {}", deltas.len());
    let streamed: String = deltas.iter().map(|d| d["text"].as_str().unwrap()).collect();
    let last = &events.last().unwrap().data;
    assert_eq!(
        last["content"].as_str().unwrap(),
        streamed,
        "deltas add up to the reply"
    );
    assert_eq!(streamed, forty_tokens().concat());
    // Deltas arrived over time, not all at the end.
    let first_delta = events
        .iter()
        .find(|e| e.data["type"] == "delta")
        .unwrap()
        .at;
    assert!(events.last().unwrap().at.duration_since(first_delta) > Duration::from_millis(800));
    // The stream ends after the reply.
    assert!(reader.next(Duration::from_secs(2)).await.is_none());
    // Stored as streamed.
    let page = app.messages(&token, &id, "").await;
    assert_eq!(page["messages"][1]["content"].as_str().unwrap(), streamed);
}

#[sqlx::test]
async fn every_open_stream_sees_the_turn_and_a_reconnect_misses_nothing(pool: PgPool) {
    let model = MockModel::start(vec![
        Step::Tools(vec![(
            "add_task".into(),
            json!({ "title": "Buy milk" }).to_string(),
        )]),
        Step::Tokens(vec!["Added ".into(), "**Buy ".into(), "milk**.".into()], 30),
    ])
    .await;
    let app = TestApp::with_model(pool, &model).await;
    let token = app.register("tabs@example.com").await;
    let id = app.conversation(&token).await;
    let mut tab = open_events(&app, &token, None).await;
    app.say(&token, &id, "add buy milk").await;
    let events = tab
        .until(Duration::from_secs(10), is_assistant_message)
        .await;
    let kinds: Vec<String> = events
        .iter()
        .map(|e| e.data["type"].as_str().unwrap().to_string())
        .collect();
    assert!(kinds.contains(&"delta".to_string()), "{kinds:?}");
    let tool = events
        .iter()
        .find(|e| e.data["type"] == "activity" && e.data["state"] == "tool")
        .expect("the tool shows live");
    assert_eq!(tool.data["tool_name"], "add_task");
    let reply = &events.last().unwrap().data;
    assert!(reply["html"]
        .as_str()
        .unwrap()
        .contains("<strong>Buy milk</strong>"));
    assert!(reply.get("tool_calls").is_some());
    // The conversation moved (new preview): the sidebar learns it from the stream.
    let moved = tab
        .until(Duration::from_secs(5), |d| d["type"] == "conversation")
        .await;
    assert_eq!(moved.last().unwrap().data["id"], id.as_str());
    // Previews are plain words, not markdown.
    assert_eq!(
        moved.last().unwrap().data["last_message_preview"],
        "Added Buy milk."
    );
    let stored_ids: Vec<i64> = events
        .iter()
        .chain(moved.iter())
        .filter_map(|e| e.id.as_ref())
        .map(|id| id.parse().unwrap())
        .collect();
    assert!(stored_ids.windows(2).all(|w| w[0] < w[1]), "{stored_ids:?}");
    let last_seen = stored_ids.last().unwrap().to_string();
    drop(tab);

    // While away: a rename and another turn.
    let res = app
        .send_json(
            reqwest::Method::PUT,
            &token,
            &format!("/api/chat/conversations/{id}"),
            json!({ "title": "Groceries" }),
        )
        .await;
    assert_eq!(res.status(), 200);
    model.push(Step::Text("Nothing else.".into()));
    app.say(&token, &id, "anything else?").await;

    let mut back = open_events(&app, &token, Some(&last_seen)).await;
    let missed = back
        .until(Duration::from_secs(5), is_assistant_message)
        .await;
    let missed_ids: Vec<i64> = missed
        .iter()
        .filter_map(|e| e.id.as_ref())
        .map(|id| id.parse().unwrap())
        .collect();
    assert!(
        missed_ids
            .iter()
            .all(|i| *i > last_seen.parse::<i64>().unwrap()),
        "nothing twice"
    );
    let kinds: Vec<(String, Option<String>)> = missed
        .iter()
        .map(|e| {
            (
                e.data["type"].as_str().unwrap().to_string(),
                e.data["title"].as_str().map(str::to_string),
            )
        })
        .collect();
    assert_eq!(
        kinds[0],
        ("conversation".to_string(), Some("Groceries".to_string())),
        "the rename first: {kinds:?}"
    );
    assert_eq!(missed.last().unwrap().data["content"], "Nothing else.");
    let user = missed
        .iter()
        .find(|e| e.data["type"] == "message" && e.data["role"] == "user")
        .unwrap();
    assert_eq!(user.data["content"], "anything else?");
}

#[sqlx::test]
async fn a_stream_opened_mid_turn_starts_with_the_reply_so_far(pool: PgPool) {
    let model = MockModel::start(vec![Step::Tokens(forty_tokens(), 50)]).await;
    let app = TestApp::with_model(pool, &model).await;
    let token = app.register("late@example.com").await;
    let id = app.conversation(&token).await;
    let send = {
        let (http, url, token, id) = (app.http.clone(), app.url.clone(), token.clone(), id.clone());
        tokio::spawn(async move {
            http.post(format!("{url}/api/chat/conversations/{id}/messages"))
                .bearer_auth(&token)
                .json(&json!({ "content": "write" }))
                .send()
                .await
                .unwrap()
                .json::<Value>()
                .await
                .unwrap()
        })
    };
    tokio::time::sleep(Duration::from_millis(900)).await;
    let mut late = open_events(&app, &token, None).await;
    let events = late
        .until(Duration::from_secs(10), is_assistant_message)
        .await;
    let partial = events
        .iter()
        .find(|e| e.data["type"] == "partial")
        .expect("the reply so far comes first");
    let so_far = partial.data["text"].as_str().unwrap().to_string();
    assert!(so_far.len() > 20, "{so_far:?}");
    // Partial, then deltas from where it ended: the text adds up exactly.
    let mut text = so_far.clone();
    for e in events.iter().filter(|e| e.data["type"] == "delta") {
        let offset = e.data["offset"].as_u64().unwrap() as usize;
        let piece = e.data["text"].as_str().unwrap();
        let have = text.chars().count();
        if offset + piece.chars().count() <= have {
            continue;
        }
        let skip = have.saturating_sub(offset);
        text.extend(piece.chars().skip(skip));
    }
    let turn = send.await.unwrap();
    let final_text = turn["assistant_message"]["content"].as_str().unwrap();
    assert_eq!(text, final_text);
    assert_eq!(events.last().unwrap().data["content"], final_text);
}

#[sqlx::test]
async fn idle_streams_cost_no_queries(pool: PgPool) {
    // No sweeps during the measurement: only what the streams themselves would do counts.
    let app = TestApp::spawn_with(pool.clone(), |c| {
        c.turn_sweep = Duration::from_secs(3600);
    })
    .await;
    let token = app.register("idle@example.com").await;
    let mut tabs = Vec::new();
    for _ in 0..20 {
        tabs.push(open_events(&app, &token, None).await);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let database: String = sqlx::query_scalar("SELECT current_database()")
        .fetch_one(&pool)
        .await
        .unwrap();
    let admin = sqlx::PgPool::connect(&std::env::var("DATABASE_URL").unwrap())
        .await
        .unwrap();
    let start: chrono::DateTime<chrono::Utc> = sqlx::query_scalar("SELECT now()")
        .fetch_one(&admin)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(5)).await;
    // Any statement the server ran on this database since `start` moved its backend's
    // `state_change`.
    let busy: Vec<String> = sqlx::query_scalar(
        "SELECT coalesce(query, '') FROM pg_stat_activity
         WHERE datname = $1 AND state_change > $2 AND pid <> pg_backend_pid()",
    )
    .bind(&database)
    .bind(start)
    .fetch_all(&admin)
    .await
    .unwrap();
    assert!(busy.is_empty(), "queries while 20 streams idled: {busy:?}");
    drop(tabs);
}
