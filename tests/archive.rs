//! Find, keep and take out (issue 25) against the release binary over real HTTP and real
//! Postgres: search (stemming, the last word as a prefix, titles first, snippets whose only
//! markup is `<mark>`, deleted and foreign conversations never), pin and archive (REST, server
//! functions, the event stream, ChatKit), export and import (a round trip into another account,
//! the same file twice, multipart, ChatGPT's `conversations.json` with a branch, a truncated
//! file), and memory that stays flat exporting 100,000 messages and importing a 50 MB file.
//!
//! Messages are sent to the built-in offline assistant (no model is configured). Anything it
//! does not understand gets its help text, which itself says "buy groceries" and "buy oat
//! milk": searches for those words also find every such reply, so those tests look for the
//! exact message they expect, and the exact-count searches use words the help never says.

mod common;

use std::time::Duration;

use chrono::{DateTime, Utc};
use common::{
    expect_error,
    process::{database_url, ServerProcess},
    process_client::Client,
    sse::SseReader,
};
use futures::StreamExt;
use reqwest::StatusCode;
use serde_json::{json, Value};
use sqlx::PgPool;
use uuid::Uuid;

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/// A server with room for many writes and slow requests (a 50 MB import answers at its end).
async fn start(pool: &PgPool) -> ServerProcess {
    ServerProcess::start(
        &database_url(pool),
        &[
            ("WRITE_RATE_PER_MINUTE", "100000".to_string()),
            ("REQUEST_TIMEOUT_SECS", "600".to_string()),
        ],
    )
    .await
}

async fn get(server: &ServerProcess, client: &Client, path: &str) -> reqwest::Response {
    client
        .http
        .get(server.at(path))
        .bearer_auth(&client.token)
        .send()
        .await
        .unwrap()
}

async fn put(
    server: &ServerProcess,
    client: &Client,
    path: &str,
    body: Value,
) -> reqwest::Response {
    client
        .http
        .put(server.at(path))
        .bearer_auth(&client.token)
        .json(&body)
        .send()
        .await
        .unwrap()
}

/// A server function call (url-encoded form), as this site's own page would make it.
async fn sfn(
    server: &ServerProcess,
    client: &Client,
    endpoint: &str,
    form: &[(&str, &str)],
) -> reqwest::Response {
    client
        .http
        .post(server.at(endpoint))
        .bearer_auth(&client.token)
        .header("origin", &server.url)
        .form(form)
        .send()
        .await
        .unwrap()
}

async fn ok_json(res: reqwest::Response, what: &str) -> Value {
    let status = res.status();
    let body = res.text().await.unwrap();
    assert_eq!(status, StatusCode::OK, "{what}: {body}");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("{what}: not JSON ({e}): {body}"))
}

/// A conversation with a custom title (so its title says only what the test wants).
async fn titled(server: &ServerProcess, client: &Client, title: &str) -> String {
    let res = client
        .http
        .post(server.at("/api/chat/conversations"))
        .bearer_auth(&client.token)
        .json(&json!({ "title": title }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED, "create {title:?}");
    res.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string()
}

/// Sends `content` and returns the answered turn (`user_message`, `assistant_message`).
async fn say(server: &ServerProcess, client: &Client, conversation: &str, content: &str) -> Value {
    let res = client
        .http
        .post(server.at(&format!("/api/chat/conversations/{conversation}/messages")))
        .bearer_auth(&client.token)
        .json(&json!({ "content": content }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED, "send {content:?}");
    res.json().await.unwrap()
}

async fn delete_conversation(server: &ServerProcess, client: &Client, id: &str) {
    let res = client
        .http
        .delete(server.at(&format!("/api/chat/conversations/{id}")))
        .bearer_auth(&client.token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
}

/// The conversation list (`query` e.g. `""` or `"?archived=true"`), first page of 100.
async fn list(server: &ServerProcess, client: &Client, query: &str) -> Vec<Value> {
    let sep = if query.is_empty() { "?" } else { "&" };
    let path = format!("/api/chat/conversations{query}{sep}limit=100");
    let page = ok_json(get(server, client, &path).await, &path).await;
    page["conversations"].as_array().unwrap().clone()
}

fn ids(conversations: &[Value]) -> Vec<String> {
    conversations
        .iter()
        .map(|c| c["id"].as_str().unwrap().to_string())
        .collect()
}

async fn search_res(
    server: &ServerProcess,
    client: &Client,
    params: &[(&str, &str)],
) -> reqwest::Response {
    let url = reqwest::Url::parse_with_params(&server.at("/api/chat/search"), params).unwrap();
    client
        .http
        .get(url)
        .bearer_auth(&client.token)
        .send()
        .await
        .unwrap()
}

/// Every hit for `q` (one page of 50, which holds them all here); each snippet checked safe.
async fn search(server: &ServerProcess, client: &Client, q: &str) -> Vec<Value> {
    let res = search_res(server, client, &[("q", q), ("limit", "50")]).await;
    let page = ok_json(res, &format!("search {q:?}")).await;
    assert_eq!(page["has_more"], false, "search {q:?}: {page}");
    assert!(page["next_cursor"].is_null(), "search {q:?}: {page}");
    let results = page["results"].as_array().unwrap().clone();
    results.iter().for_each(assert_safe_snippet);
    results
}

/// The snippet's only markup is `<mark>…</mark>`: everything else is escaped text.
fn assert_safe_snippet(hit: &Value) {
    let html = hit["snippet_html"]
        .as_str()
        .expect("snippet_html is a string");
    let bare = html.replace("<mark>", "").replace("</mark>", "");
    assert!(
        !bare.contains('<') && !bare.contains('>'),
        "markup other than <mark> in a snippet: {html}"
    );
}

fn hit_of<'a>(hits: &'a [Value], message_id: &Value) -> Option<&'a Value> {
    hits.iter().find(|h| &h["message_id"] == message_id)
}

fn conversation_ids(hits: &[Value]) -> Vec<String> {
    hits.iter()
        .map(|h| h["conversation_id"].as_str().unwrap().to_string())
        .collect()
}

fn instant(value: &Value) -> i64 {
    value
        .as_str()
        .unwrap_or_else(|| panic!("a timestamp: {value}"))
        .parse::<DateTime<Utc>>()
        .unwrap()
        .timestamp_micros()
}

async fn open_events(server: &ServerProcess, client: &Client) -> SseReader {
    let res = get(server, client, "/api/chat/events").await;
    assert_eq!(res.status(), StatusCode::OK);
    SseReader::new(res)
}

fn conversation_event<'a>(
    id: &'a str,
    field: &'a str,
    value: bool,
) -> impl Fn(&Value) -> bool + 'a {
    move |e| e["type"] == "conversation" && e["id"] == id && e[field] == value
}

async fn chatkit(server: &ServerProcess, client: &Client, kind: &str, params: Value) -> Value {
    let res = client
        .http
        .post(server.at("/chatkit"))
        .bearer_auth(&client.token)
        .json(&json!({ "type": kind, "params": params }))
        .send()
        .await
        .unwrap();
    ok_json(res, kind).await
}

/// `GET /api/export`, read whole: its headers and its body.
async fn export_all(
    server: &ServerProcess,
    client: &Client,
) -> (reqwest::header::HeaderMap, Vec<u8>) {
    let res = get(server, client, "/api/export").await;
    assert_eq!(res.status(), StatusCode::OK, "GET /api/export");
    let headers = res.headers().clone();
    (headers, res.bytes().await.unwrap().to_vec())
}

async fn export_json(server: &ServerProcess, client: &Client) -> Value {
    let (_, body) = export_all(server, client).await;
    serde_json::from_slice(&body).expect("the export is JSON")
}

async fn import(
    server: &ServerProcess,
    client: &Client,
    content_type: &str,
    body: Vec<u8>,
) -> reqwest::Response {
    client
        .http
        .post(server.at("/api/import"))
        .bearer_auth(&client.token)
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .unwrap()
}

/// Imports `body` as JSON and expects a report with `imported` and `skipped` and no errors.
async fn import_ok(
    server: &ServerProcess,
    client: &Client,
    body: Vec<u8>,
    imported: u64,
    skipped: u64,
) -> Value {
    let report = ok_json(
        import(server, client, "application/json", body).await,
        "import",
    )
    .await;
    assert_eq!(report["imported"], imported, "{report}");
    assert_eq!(report["skipped"], skipped, "{report}");
    assert_eq!(report["errors"], json!([]), "{report}");
    report
}

/// A multipart/form-data body with `file` as the field `file`, built by hand.
fn multipart(file: &[u8]) -> (String, Vec<u8>) {
    let boundary = "----chatkit-archive-test-7d1f0c";
    let mut body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; \
         filename=\"chatkit-export.json\"\r\nContent-Type: application/json\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(file);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

/// The conversations of an export as they must survive a round trip: everything but ids,
/// `updated_at` and feedback, sorted by title.
fn comparable(export: &Value) -> Vec<Value> {
    let mut conversations: Vec<Value> = export["conversations"]
        .as_array()
        .expect("conversations")
        .iter()
        .map(|c| {
            let messages: Vec<Value> = c["messages"]
                .as_array()
                .expect("messages")
                .iter()
                .map(|m| {
                    json!({
                        "seq": m["seq"],
                        "role": m["role"],
                        "content": m["content"],
                        "status": m["status"],
                        "tool_calls": m["tool_calls"],
                        "created_at": instant(&m["created_at"]),
                    })
                })
                .collect();
            json!({
                "title": c["title"],
                "created_at": instant(&c["created_at"]),
                "pinned": c["pinned"],
                "archived": c["archived"],
                "messages": messages,
            })
        })
        .collect();
    conversations.sort_by(|a, b| a["title"].as_str().cmp(&b["title"].as_str()));
    conversations
}

/// One node of a ChatGPT `mapping` (`role` None: a node without a message).
fn chatgpt_node(
    id: &str,
    role: Option<&str>,
    text: &str,
    time: f64,
    parent: Option<&str>,
    children: &[&str],
) -> Value {
    let message = role.map(|role| {
        json!({
            "id": id,
            "author": { "role": role, "name": null, "metadata": {} },
            "create_time": time,
            "update_time": null,
            "content": { "content_type": "text", "parts": [text] },
            "status": "finished_successfully",
            "end_turn": true,
            "weight": 1.0,
            "metadata": {},
            "recipient": "all"
        })
    });
    json!({ "id": id, "message": message, "parent": parent, "children": children })
}

fn chatgpt_conversation(
    id: &str,
    title: &str,
    create_time: f64,
    update_time: f64,
    nodes: Vec<Value>,
    current_node: &str,
) -> Value {
    let mapping: serde_json::Map<String, Value> = nodes
        .into_iter()
        .map(|n| (n["id"].as_str().unwrap().to_string(), n))
        .collect();
    json!({
        "title": title,
        "create_time": create_time,
        "update_time": update_time,
        "mapping": mapping,
        "moderation_results": [],
        "current_node": current_node,
        "plugin_ids": null,
        "conversation_id": id,
        "id": id,
        "default_model_slug": "gpt-4o",
        "is_archived": false
    })
}

// ---------------------------------------------------------------------------------------------
// Search
// ---------------------------------------------------------------------------------------------

struct SearchFixture {
    alice: Client,
    bob: Client,
    itinerary: String,
    notes: String,
    shopping: String,
    errands: String,
    aquarium: String,
    deleted: String,
    bobs: String,
    buy: Value,
    groceries: Value,
    zanzibar: Value,
    xss: Value,
}

const XSS: &str = "zebrafish <img src=x onerror=alert(1)> zebrafish";

impl SearchFixture {
    async fn new(server: &ServerProcess) -> Self {
        let alice = Client::register(server, "searcher@example.com").await;
        let bob = Client::register(server, "someone-else@example.com").await;

        // A title that matches, and another conversation whose message says it three times.
        let itinerary = titled(server, &alice, "Zanzibar itinerary").await;
        say(server, &alice, &itinerary, "pack sunscreen and flippers").await;
        let notes = titled(server, &alice, "Holiday notes").await;
        let zanzibar = say(
            server,
            &alice,
            &notes,
            "zanzibar ferry timetable, zanzibar spice tour, zanzibar beaches",
        )
        .await["user_message"]
            .clone();
        // "buy" (found by "buying"), "groceries" (found by "groc"), an XSS payload.
        let shopping = titled(server, &alice, "Shopping").await;
        let buy =
            say(server, &alice, &shopping, "I want to buy a kayak").await["user_message"].clone();
        let errands = titled(server, &alice, "Errands").await;
        let groceries = say(server, &alice, &errands, "Pick up the groceries after work").await
            ["user_message"]
            .clone();
        let aquarium = titled(server, &alice, "Aquarium").await;
        let xss = say(server, &alice, &aquarium, XSS).await["user_message"].clone();
        assert_eq!(xss["content"], XSS, "stored as typed");

        // A conversation that matches every search, then deleted (found before: it was indexed).
        let deleted = titled(server, &alice, "Zanzibar zebrafish groceries").await;
        say(
            server,
            &alice,
            &deleted,
            "buy groceries in zanzibar for the zebrafish",
        )
        .await;
        let before = search(server, &alice, "zebrafish").await;
        assert!(
            conversation_ids(&before).contains(&deleted),
            "a live conversation is found: {before:?}"
        );
        delete_conversation(server, &alice, &deleted).await;

        // Another user's conversation that matches every search.
        let bobs = titled(server, &bob, "Zanzibar zebrafish").await;
        say(
            server,
            &bob,
            &bobs,
            "buy groceries in zanzibar for the zebrafish",
        )
        .await;

        Self {
            alice,
            bob,
            itinerary,
            notes,
            shopping,
            errands,
            aquarium,
            deleted,
            bobs,
            buy,
            groceries,
            zanzibar,
            xss,
        }
    }
}

#[sqlx::test]
async fn search_stems_completes_the_last_word_ranks_titles_first_and_escapes(pool: PgPool) {
    let server = start(&pool).await;
    let f = SearchFixture::new(&server).await;

    // Stemming: "buying" finds the message that says "buy".
    let hits = search(&server, &f.alice, "buying").await;
    let hit = hit_of(&hits, &f.buy["id"])
        .unwrap_or_else(|| panic!("\"buying\" finds \"I want to buy a kayak\": {hits:?}"));
    assert_eq!(hit["conversation_id"], f.shopping.as_str());
    assert_eq!(hit["conversation_title"], "Shopping");
    assert_eq!(hit["role"], "user");
    assert_eq!(hit["seq"], f.buy["seq"]);
    assert_eq!(instant(&hit["created_at"]), instant(&f.buy["created_at"]));
    let snippet = hit["snippet_html"].as_str().unwrap().to_lowercase();
    assert!(snippet.contains("<mark>buy</mark>"), "{snippet}");
    assert!(snippet.contains("kayak"), "{snippet}");

    // The last word is a prefix while typing: "groc" finds "groceries".
    let hits = search(&server, &f.alice, "groc").await;
    let hit = hit_of(&hits, &f.groceries["id"])
        .unwrap_or_else(|| panic!("\"groc\" finds \"groceries\": {hits:?}"));
    assert_eq!(hit["conversation_id"], f.errands.as_str());
    let snippet = hit["snippet_html"].as_str().unwrap().to_lowercase();
    assert!(snippet.contains("<mark>groceries</mark>"), "{snippet}");
    // ...and so does a prefix after a whole word.
    let hits = search(&server, &f.alice, "pick up the groc").await;
    assert!(
        hit_of(&hits, &f.groceries["id"]).is_some(),
        "\"pick up the groc\": {hits:?}"
    );

    // Ranking: the conversation whose title matches comes first, as a title hit, although the
    // other conversation's message says the word three times.
    let hits = search(&server, &f.alice, "zanzibar").await;
    assert_eq!(hits.len(), 2, "one title hit and one message hit: {hits:?}");
    let title = &hits[0];
    assert_eq!(title["conversation_id"], f.itinerary.as_str(), "{hits:?}");
    assert_eq!(title["conversation_title"], "Zanzibar itinerary");
    assert!(title["message_id"].is_null(), "a title hit: {title}");
    assert!(title["seq"].is_null(), "a title hit: {title}");
    assert!(title["role"].is_null(), "a title hit: {title}");
    assert!(
        title["snippet_html"]
            .as_str()
            .unwrap()
            .to_lowercase()
            .contains("<mark>zanzibar</mark>"),
        "{title}"
    );
    let message = &hits[1];
    assert_eq!(message["conversation_id"], f.notes.as_str());
    assert_eq!(message["message_id"], f.zanzibar["id"]);
    assert_eq!(message["role"], "user");
    // The prefix finds the title too.
    let hits = search(&server, &f.alice, "zanzi").await;
    assert_eq!(
        hits.first().map(|h| &h["conversation_id"]),
        Some(&json!(f.itinerary)),
        "{hits:?}"
    );

    // An XSS payload in a message comes back as inert text; only the match is marked.
    let hits = search(&server, &f.alice, "zebrafish").await;
    assert_eq!(
        hits.len(),
        1,
        "only the live conversation's message: {hits:?}"
    );
    let hit = &hits[0];
    assert_eq!(hit["conversation_id"], f.aquarium.as_str());
    assert_eq!(hit["message_id"], f.xss["id"]);
    let snippet = hit["snippet_html"].as_str().unwrap();
    assert!(snippet.contains("&lt;img"), "the tag is escaped: {snippet}");
    assert!(snippet.contains("&gt;"), "the tag is escaped: {snippet}");
    assert!(!snippet.contains("<img"), "{snippet}");
    assert!(
        snippet.to_lowercase().contains("<mark>zebrafish</mark>"),
        "{snippet}"
    );
    assert!(
        !snippet.to_lowercase().contains("<mark>img")
            && !snippet.to_lowercase().contains("<mark>onerror"),
        "only matched words are marked: {snippet}"
    );
}

/// `count` messages in `conversation`, written straight into the table (as an import or a
/// long history would leave them): message `n` (1-based) is `text(n)`, one second after
/// message `n - 1`, the last one now.
async fn bulk_messages(pool: &PgPool, conversation: &str, count: i64, text: &str) {
    let conversation: Uuid = conversation.parse().unwrap();
    sqlx::query(
        "INSERT INTO messages (id, conversation_id, seq, role, content, created_at)
         SELECT gen_random_uuid(), $1, n, CASE WHEN n % 2 = 1 THEN 'user' ELSE 'assistant' END,
                replace($3, '{n}', n::text), now() - ($2 - n) * interval '1 second'
         FROM generate_series(1, $2) n",
    )
    .bind(conversation)
    .bind(count)
    .bind(text)
    .execute(pool)
    .await
    .unwrap();
    sqlx::query("UPDATE conversations SET last_seq = $2, message_count = $2 WHERE id = $1")
        .bind(conversation)
        .bind(count)
        .execute(pool)
        .await
        .unwrap();
}

/// The seqs of a search's hits, page after page (`limit` each) while there are more.
async fn paged_seqs(
    server: &ServerProcess,
    client: &Client,
    q: &str,
    limit: &str,
    pages: usize,
) -> Vec<i64> {
    let mut seqs = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..pages {
        let mut params = vec![("q", q), ("limit", limit)];
        if let Some(c) = cursor.as_deref() {
            params.push(("cursor", c));
        }
        let page = ok_json(search_res(server, client, &params).await, q).await;
        for hit in page["results"].as_array().unwrap() {
            assert_safe_snippet(hit);
            seqs.push(hit["seq"].as_i64().expect("a message hit"));
        }
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_string()),
            None => break,
        }
    }
    seqs
}

#[sqlx::test]
async fn search_shows_the_newest_matches_first_however_common_or_old(pool: PgPool) {
    let server = start(&pool).await;
    let alice = Client::register(&server, "newest-alice@example.com").await;
    let bob = Client::register(&server, "newest-bob@example.com").await;
    // 4,000 messages: every fourth says "pelican" (a common word: its newest matches are
    // among the newest messages), the first three say "quokka" (rare, and older than any
    // window of recent messages), the rest neither.
    let history = alice.conversation(&server).await;
    bulk_messages(&pool, &history, 4_000, "filler {n}").await;
    sqlx::query(
        "UPDATE messages SET content = CASE WHEN seq <= 3 THEN 'a quokka sighting number ' || seq
                                            ELSE 'the pelican report number ' || seq END
         WHERE conversation_id = $1 AND (seq <= 3 OR seq % 4 = 0)",
    )
    .bind(history.parse::<Uuid>().unwrap())
    .execute(&pool)
    .await
    .unwrap();
    // Bob's newest messages say both words: none of them is ever Alice's hit.
    let bobs = bob.conversation(&server).await;
    bulk_messages(&pool, &bobs, 2_000, "quokka and pelican {n}").await;

    // A common word: newest first, page after page, each match once, nothing skipped (pages
    // of 10 read a window of 512 newest messages of the 4,000; of 40, one of 2,048).
    let expected: Vec<i64> = (1..=4_000).rev().filter(|n| n % 4 == 0).take(120).collect();
    assert_eq!(
        paged_seqs(&server, &alice, "pelican", "10", 12).await,
        expected
    );
    assert_eq!(
        paged_seqs(&server, &alice, "pelican", "40", 3).await,
        expected
    );
    // The same while its last word is still being typed.
    assert_eq!(
        paged_seqs(&server, &alice, "pelic", "10", 12).await,
        expected
    );
    // A rare word whose matches are the oldest messages: all of them, newest first.
    assert_eq!(
        paged_seqs(&server, &alice, "quokka", "50", 2).await,
        vec![3, 2, 1]
    );
    assert_eq!(
        paged_seqs(&server, &alice, "quokka sigh", "2", 3).await,
        vec![3, 2, 1]
    );
    // Both words: no message of Alice's says both (Bob's all do).
    assert!(search(&server, &alice, "pelican quokka").await.is_empty());
    // Bob finds only his own, newest first.
    let page = ok_json(
        search_res(&server, &bob, &[("q", "quokka"), ("limit", "50")]).await,
        "bob's search",
    )
    .await;
    let bobs_hits = page["results"].as_array().unwrap();
    assert!(
        conversation_ids(bobs_hits).iter().all(|c| c == &bobs),
        "{page}"
    );
    let seqs: Vec<i64> = bobs_hits
        .iter()
        .map(|h| h["seq"].as_i64().unwrap())
        .collect();
    assert_eq!(seqs, (1_951..=2_000).rev().collect::<Vec<_>>());
    assert_eq!(page["has_more"], true);
}

#[sqlx::test]
async fn search_leaves_out_deleted_and_foreign_conversations_pages_and_refuses_bad_queries(
    pool: PgPool,
) {
    let server = start(&pool).await;
    let f = SearchFixture::new(&server).await;

    // Neither the deleted conversation nor another user's ever matches, for any query.
    for q in [
        "buying",
        "groc",
        "groceries",
        "zanzibar",
        "zebrafish",
        "zebrafish zanzibar",
    ] {
        let hits = search(&server, &f.alice, q).await;
        let found = conversation_ids(&hits);
        assert!(!found.contains(&f.deleted), "{q:?} found the deleted one");
        assert!(!found.contains(&f.bobs), "{q:?} found another user's");
    }
    // Bob finds his own, and none of Alice's.
    let hits = search(&server, &f.bob, "zebrafish").await;
    assert!(!hits.is_empty(), "bob finds his own conversation");
    assert!(
        conversation_ids(&hits).iter().all(|c| c == &f.bobs),
        "bob sees only his own: {hits:?}"
    );

    // Refused queries: empty, blank, over 200 characters, a cursor that is not one.
    for (params, why) in [
        (vec![("q", "")], "empty q"),
        (vec![("q", "   ")], "blank q"),
        (vec![], "no q"),
    ] {
        let res = search_res(&server, &f.alice, &params).await;
        let detail = expect_error(res, StatusCode::BAD_REQUEST).await;
        assert!(!detail.is_empty(), "{why}");
    }
    let long = "a".repeat(201);
    let res = search_res(&server, &f.alice, &[("q", long.as_str())]).await;
    expect_error(res, StatusCode::BAD_REQUEST).await;
    let longest = "a".repeat(200);
    let res = search_res(&server, &f.alice, &[("q", longest.as_str())]).await;
    assert_eq!(res.status(), StatusCode::OK, "200 characters are allowed");
    let res = search_res(
        &server,
        &f.alice,
        &[("q", "buying"), ("cursor", "not-a-cursor!!")],
    )
    .await;
    expect_error(res, StatusCode::BAD_REQUEST).await;

    // Pages of one: a cursor while there is more, every hit once, the same order as one page.
    let all = search(&server, &f.alice, "buying").await;
    assert!(all.len() >= 3, "several hits to page through: {all:?}");
    let key = |h: &Value| (h["conversation_id"].clone(), h["message_id"].clone());
    let mut paged = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..=all.len() + 1 {
        let mut params = vec![("q", "buying"), ("limit", "1")];
        if let Some(c) = cursor.as_deref() {
            params.push(("cursor", c));
        }
        let page = ok_json(search_res(&server, &f.alice, &params).await, "page").await;
        let results = page["results"].as_array().unwrap();
        assert_eq!(results.len(), 1, "{page}");
        paged.push(key(&results[0]));
        if page["has_more"] == true {
            cursor = Some(
                page["next_cursor"]
                    .as_str()
                    .unwrap_or_else(|| panic!("has_more with a next_cursor: {page}"))
                    .to_string(),
            );
        } else {
            assert!(page["next_cursor"].is_null(), "{page}");
            cursor = None;
            break;
        }
    }
    assert!(cursor.is_none(), "the pages end");
    let distinct: std::collections::HashSet<String> =
        paged.iter().map(|(c, m)| format!("{c}/{m}")).collect();
    assert_eq!(distinct.len(), paged.len(), "no hit twice: {paged:?}");
    assert_eq!(paged, all.iter().map(key).collect::<Vec<_>>());

    // The server function answers the same.
    for q in ["buying", "zanzibar"] {
        let rest = search(&server, &f.alice, q).await;
        let page = ok_json(
            sfn(
                &server,
                &f.alice,
                "/sfn/chat/search",
                &[("query[q]", q), ("query[limit]", "50")],
            )
            .await,
            "/sfn/chat/search",
        )
        .await;
        assert_eq!(page["results"], json!(rest), "sfn search {q:?}");
        assert_eq!(page["has_more"], false);
    }
    let res = sfn(&server, &f.alice, "/sfn/chat/search", &[("query[q]", "")]).await;
    assert_eq!(
        res.status(),
        StatusCode::BAD_REQUEST,
        "sfn search with an empty q"
    );
}

// ---------------------------------------------------------------------------------------------
// Pin and archive
// ---------------------------------------------------------------------------------------------

/// Three conversations made in this order (each with a message; the second says "quokka").
async fn three_conversations(server: &ServerProcess, client: &Client) -> [String; 3] {
    let first = titled(server, client, "First").await;
    say(server, client, &first, "hello from the first one").await;
    let second = titled(server, client, "Second").await;
    say(server, client, &second, "quokka sightings near the river").await;
    let third = titled(server, client, "Third").await;
    say(server, client, &third, "hello from the third one").await;
    [first, second, third]
}

#[sqlx::test]
async fn pinned_first_archived_aside_and_restored_over_rest_live_and_chatkit(pool: PgPool) {
    let server = start(&pool).await;
    let alice = Client::register(&server, "keeper@example.com").await;
    let bob = Client::register(&server, "other-keeper@example.com").await;
    let [first, second, third] = three_conversations(&server, &alice).await;
    let bobs = titled(&server, &bob, "Bob's").await;
    let mut events = open_events(&server, &alice).await;

    // Pin the oldest; then the newest gets a message: the pinned one still comes first.
    let path = |id: &str| format!("/api/chat/conversations/{id}");
    let pinned = ok_json(
        put(&server, &alice, &path(&first), json!({ "pinned": true })).await,
        "pin",
    )
    .await;
    assert_eq!(pinned["id"], first.as_str());
    assert_eq!(pinned["pinned"], true);
    assert_eq!(pinned["archived"], false);
    assert_eq!(pinned["title"], "First");
    events
        .until(
            Duration::from_secs(5),
            conversation_event(&first, "pinned", true),
        )
        .await;
    say(&server, &alice, &third, "one more hello").await;
    let listed = list(&server, &alice, "").await;
    assert_eq!(
        ids(&listed),
        vec![first.clone(), third.clone(), second.clone()]
    );
    assert_eq!(listed[0]["pinned"], true);
    assert_eq!(listed[1]["pinned"], false);
    assert!(listed.iter().all(|c| c["archived"] == false));

    // Archive: out of the list, in the archived view, still opens and still matches.
    let archived = ok_json(
        put(&server, &alice, &path(&second), json!({ "archived": true })).await,
        "archive",
    )
    .await;
    assert_eq!(archived["archived"], true);
    assert_eq!(archived["pinned"], false);
    events
        .until(
            Duration::from_secs(5),
            conversation_event(&second, "archived", true),
        )
        .await;
    assert_eq!(
        ids(&list(&server, &alice, "").await),
        vec![first.clone(), third.clone()]
    );
    let archived_view = list(&server, &alice, "?archived=true").await;
    assert_eq!(ids(&archived_view), vec![second.clone()]);
    assert_eq!(archived_view[0]["archived"], true);
    assert_eq!(
        ids(&list(&server, &alice, "?archived=false").await).len(),
        2
    );
    let opened = ok_json(get(&server, &alice, &path(&second)).await, "GET archived").await;
    assert_eq!(opened["archived"], true);
    let messages = ok_json(
        get(&server, &alice, &format!("{}/messages", path(&second))).await,
        "messages of an archived conversation",
    )
    .await;
    assert_eq!(
        messages["messages"][0]["content"],
        "quokka sightings near the river"
    );
    let hits = search(&server, &alice, "quokka").await;
    assert!(
        conversation_ids(&hits).contains(&second),
        "an archived conversation still matches: {hits:?}"
    );

    // ChatKit's threads.list leaves it out; it still opens by id.
    let threads = chatkit(&server, &alice, "threads.list", json!({})).await;
    let thread_ids: Vec<&str> = threads["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap())
        .collect();
    assert!(
        thread_ids.contains(&first.as_str()) && thread_ids.contains(&third.as_str()),
        "{threads}"
    );
    assert!(
        !thread_ids.contains(&second.as_str()),
        "archived in threads.list: {threads}"
    );
    let thread = chatkit(
        &server,
        &alice,
        "threads.get_by_id",
        json!({ "thread_id": second }),
    )
    .await;
    assert_eq!(thread["id"], second.as_str());

    // Restore: back in the list, out of the archived view.
    let restored = ok_json(
        put(
            &server,
            &alice,
            &path(&second),
            json!({ "archived": false }),
        )
        .await,
        "restore",
    )
    .await;
    assert_eq!(restored["archived"], false);
    events
        .until(
            Duration::from_secs(5),
            conversation_event(&second, "archived", false),
        )
        .await;
    assert!(ids(&list(&server, &alice, "").await).contains(&second));
    assert!(list(&server, &alice, "?archived=true").await.is_empty());
    let threads = chatkit(&server, &alice, "threads.list", json!({})).await;
    assert!(threads["data"]
        .as_array()
        .unwrap()
        .iter()
        .any(|t| t["id"] == second.as_str()));

    // Unpin: back in date order.
    let unpinned = ok_json(
        put(&server, &alice, &path(&first), json!({ "pinned": false })).await,
        "unpin",
    )
    .await;
    assert_eq!(unpinned["pinned"], false);
    say(&server, &alice, &third, "and a last hello").await;
    let listed = list(&server, &alice, "").await;
    assert!(listed.iter().all(|c| c["pinned"] == false));
    assert_eq!(
        listed[0]["id"],
        third.as_str(),
        "date order again: {listed:?}"
    );

    // An empty change is refused; another user's conversation is not found (and unchanged).
    let res = put(&server, &alice, &path(&first), json!({})).await;
    expect_error(res, StatusCode::BAD_REQUEST).await;
    let res = put(&server, &alice, &path(&bobs), json!({ "pinned": true })).await;
    expect_error(res, StatusCode::NOT_FOUND).await;
    let res = put(&server, &alice, &path(&bobs), json!({ "archived": true })).await;
    expect_error(res, StatusCode::NOT_FOUND).await;
    let res = put(
        &server,
        &alice,
        &path(&Uuid::new_v4().to_string()),
        json!({ "pinned": true }),
    )
    .await;
    expect_error(res, StatusCode::NOT_FOUND).await;
    let bob_list = list(&server, &bob, "").await;
    assert_eq!(ids(&bob_list), vec![bobs.clone()]);
    assert_eq!(bob_list[0]["pinned"], false);
    assert_eq!(bob_list[0]["archived"], false);
}

/// `/sfn/chat/update` with one change.
async fn sfn_update(
    server: &ServerProcess,
    client: &Client,
    id: &str,
    field: &str,
    value: &str,
) -> reqwest::Response {
    let key = format!("changes[{field}]");
    sfn(
        server,
        client,
        "/sfn/chat/update",
        &[("id", id), (key.as_str(), value)],
    )
    .await
}

/// `/sfn/chat/conversations`, with `query[archived]` when given.
async fn sfn_list(server: &ServerProcess, client: &Client, archived: Option<&str>) -> Vec<Value> {
    let mut form = vec![("query[limit]", "100")];
    if let Some(archived) = archived {
        form.push(("query[archived]", archived));
    }
    let page = ok_json(
        sfn(server, client, "/sfn/chat/conversations", &form).await,
        "/sfn/chat/conversations",
    )
    .await;
    page["conversations"].as_array().unwrap().clone()
}

#[sqlx::test]
async fn server_functions_pin_archive_and_restore_like_rest(pool: PgPool) {
    let server = start(&pool).await;
    let alice = Client::register(&server, "sfn-keeper@example.com").await;
    let bob = Client::register(&server, "sfn-other@example.com").await;
    let [first, second, third] = three_conversations(&server, &alice).await;
    let bobs = titled(&server, &bob, "Bob's").await;
    // Archive through the server function: out of both lists' default view.
    let archived = ok_json(
        sfn_update(&server, &alice, &second, "archived", "true").await,
        "sfn archive",
    )
    .await;
    assert_eq!(archived["id"], second.as_str());
    assert_eq!(archived["archived"], true);
    assert!(!ids(&sfn_list(&server, &alice, None).await).contains(&second));
    assert!(!ids(&list(&server, &alice, "").await).contains(&second));
    assert_eq!(
        ids(&sfn_list(&server, &alice, Some("true")).await),
        vec![second.clone()]
    );
    assert_eq!(
        ids(&list(&server, &alice, "?archived=true").await),
        vec![second.clone()]
    );
    assert_eq!(
        ids(&sfn_list(&server, &alice, Some("false")).await).len(),
        2
    );

    // Pin the oldest: first in both lists.
    let pinned = ok_json(
        sfn_update(&server, &alice, &first, "pinned", "true").await,
        "sfn pin",
    )
    .await;
    assert_eq!(pinned["pinned"], true);
    assert_eq!(
        ids(&sfn_list(&server, &alice, None).await),
        vec![first.clone(), third.clone()]
    );
    assert_eq!(
        ids(&list(&server, &alice, "").await),
        vec![first.clone(), third.clone()]
    );

    // Restore and unpin.
    let restored = ok_json(
        sfn_update(&server, &alice, &second, "archived", "false").await,
        "sfn restore",
    )
    .await;
    assert_eq!(restored["archived"], false);
    assert!(ids(&sfn_list(&server, &alice, None).await).contains(&second));
    assert!(sfn_list(&server, &alice, Some("true")).await.is_empty());
    let unpinned = ok_json(
        sfn_update(&server, &alice, &first, "pinned", "false").await,
        "sfn unpin",
    )
    .await;
    assert_eq!(unpinned["pinned"], false);
    assert!(list(&server, &alice, "")
        .await
        .iter()
        .all(|c| c["pinned"] == false));

    // A rename through the same function.
    let renamed = ok_json(
        sfn_update(&server, &alice, &third, "title", "Renamed by update").await,
        "sfn rename",
    )
    .await;
    assert_eq!(renamed["title"], "Renamed by update");
    let opened = ok_json(
        get(&server, &alice, &format!("/api/chat/conversations/{third}")).await,
        "GET",
    )
    .await;
    assert_eq!(opened["title"], "Renamed by update");

    // No change at all: 400; another user's: 404, and unchanged.
    let res = sfn(
        &server,
        &alice,
        "/sfn/chat/update",
        &[("id", first.as_str())],
    )
    .await;
    assert_eq!(
        res.status(),
        StatusCode::BAD_REQUEST,
        "an update with no change"
    );
    let res = sfn_update(&server, &alice, &bobs, "archived", "true").await;
    assert_eq!(
        res.status(),
        StatusCode::NOT_FOUND,
        "another user's conversation"
    );
    assert_eq!(list(&server, &bob, "").await[0]["archived"], false);
}

// ---------------------------------------------------------------------------------------------
// Export and import
// ---------------------------------------------------------------------------------------------

struct Account {
    client: Client,
    email: String,
    /// "add a task to buy milk" (add_task), then "show my tasks" (list_tasks).
    milk: String,
    milk_reply: Value,
    /// "remind me to call mum" (add_task), renamed "Family errands".
    mum: String,
}

/// An account with two conversations (tool calls included), feedback on a reply, two tasks,
/// and a deleted conversation.
async fn seed_account(server: &ServerProcess, pool: &PgPool, email: &str) -> Account {
    let client = Client::register(server, email).await;
    let milk = client.conversation(server).await;
    let turn = say(server, &client, &milk, "add a task to buy milk").await;
    let milk_reply = turn["assistant_message"].clone();
    assert_eq!(
        milk_reply["tool_calls"]["tool_calls"][0]["tool_name"], "add_task",
        "the offline assistant added the task: {milk_reply}"
    );
    say(server, &client, &milk, "show my tasks").await;
    let mum = client.conversation(server).await;
    say(server, &client, &mum, "remind me to call mum").await;
    let res = put(
        server,
        &client,
        &format!("/api/chat/conversations/{mum}"),
        json!({ "title": "Family errands" }),
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK, "rename");
    let gone = client.conversation(server).await;
    say(server, &client, &gone, "hello there, this one goes away").await;
    delete_conversation(server, &client, &gone).await;
    let user = client.user_id(server).await;
    let reply: Uuid = milk_reply["id"].as_str().unwrap().parse().unwrap();
    sqlx::query(
        "INSERT INTO message_feedback (message_id, user_id, kind) VALUES ($1, $2, 'positive')",
    )
    .bind(reply)
    .bind(user)
    .execute(pool)
    .await
    .unwrap();
    Account {
        client,
        email: email.to_string(),
        milk,
        milk_reply,
        mum,
    }
}

#[sqlx::test]
async fn an_export_imports_into_another_account_and_exports_the_same(pool: PgPool) {
    let server = start(&pool).await;
    let a = seed_account(&server, &pool, "exporter@example.com").await;

    let (headers, body) = export_all(&server, &a.client).await;
    let content_type = headers["content-type"].to_str().unwrap();
    assert!(
        content_type.starts_with("application/json"),
        "{content_type}"
    );
    let disposition = headers
        .get("content-disposition")
        .expect("a Content-Disposition")
        .to_str()
        .unwrap();
    assert!(disposition.starts_with("attachment"), "{disposition}");
    assert!(disposition.contains("filename="), "{disposition}");
    let export: Value = serde_json::from_slice(&body).expect("the export is JSON");
    assert_eq!(export["format"], "chatkit-tasks-export");
    assert_eq!(export["version"], 1);
    assert!(export["exported_at"].is_string());
    assert_eq!(export["account"]["email"], a.email.as_str());
    assert_eq!(
        export["account"]["id"],
        a.client.user_id(&server).await.to_string()
    );
    let mut task_titles: Vec<&str> = export["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["title"].as_str().unwrap())
        .collect();
    task_titles.sort();
    assert_eq!(task_titles, vec!["Buy milk", "Call mum"]);

    // Every live conversation (not the deleted one), every message in seq order, tool calls,
    // feedback.
    let conversations = export["conversations"].as_array().unwrap();
    assert_eq!(
        conversations.len(),
        2,
        "the deleted conversation is not exported"
    );
    let milk = conversations
        .iter()
        .find(|c| c["id"] == a.milk.as_str())
        .expect("the milk conversation");
    let mum = conversations
        .iter()
        .find(|c| c["id"] == a.mum.as_str())
        .expect("the mum conversation");
    assert_eq!(milk["title"], "add a task to buy milk");
    assert_eq!(mum["title"], "Family errands");
    assert_eq!(milk["pinned"], false);
    assert_eq!(milk["archived"], false);
    let messages = milk["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 4);
    let seqs: Vec<i64> = messages
        .iter()
        .map(|m| m["seq"].as_i64().unwrap())
        .collect();
    assert_eq!(seqs, vec![1, 2, 3, 4]);
    let roles: Vec<&str> = messages
        .iter()
        .map(|m| m["role"].as_str().unwrap())
        .collect();
    assert_eq!(roles, vec!["user", "assistant", "user", "assistant"]);
    assert_eq!(messages[0]["content"], "add a task to buy milk");
    assert_eq!(messages[1]["id"], a.milk_reply["id"]);
    assert_eq!(messages[1]["content"], a.milk_reply["content"]);
    assert_eq!(messages[1]["tool_calls"], a.milk_reply["tool_calls"]);
    assert_eq!(
        messages[1]["tool_calls"]["tool_calls"][0]["status"],
        "success"
    );
    assert_eq!(
        messages[3]["tool_calls"]["tool_calls"][0]["tool_name"],
        "list_tasks"
    );
    assert!(messages[0]["tool_calls"].is_null());
    assert_eq!(messages[1]["feedback"], "positive");
    assert!(messages[3]["feedback"].is_null());
    assert_eq!(mum["messages"].as_array().unwrap().len(), 2);

    // Into another account: both conversations, no task made, no tool run.
    let b = Client::register(&server, "importer@example.com").await;
    import_ok(&server, &b, body.clone(), 2, 0).await;
    let b_list = list(&server, &b, "").await;
    assert_eq!(b_list.len(), 2);
    assert!(
        ids(&b_list).iter().all(|id| id != &a.milk && id != &a.mum),
        "imported conversations get their own ids"
    );
    assert!(
        b.tasks(&server).await.is_empty(),
        "imported tasks are not created"
    );
    let b_export = export_json(&server, &b).await;
    assert_eq!(b_export["account"]["email"], "importer@example.com");
    assert_eq!(
        comparable(&b_export),
        comparable(&export),
        "the same, ids aside"
    );
    let b_messages = b.messages(&server, b_list[0]["id"].as_str().unwrap()).await;
    assert!(!b_messages.is_empty(), "imported messages open over REST");
    // The imported text is searchable.
    let hits = search(&server, &b, "mum").await;
    assert!(!hits.is_empty(), "imported messages are searchable");

    // The same file again: nothing new.
    import_ok(&server, &b, body, 0, 2).await;
    assert_eq!(list(&server, &b, "").await.len(), 2);
    assert_eq!(
        comparable(&export_json(&server, &b).await),
        comparable(&export)
    );
    // Nothing changed for the exporter.
    assert_eq!(list(&server, &a.client, "").await.len(), 2);
}

#[sqlx::test]
async fn import_takes_the_file_as_a_multipart_field(pool: PgPool) {
    let server = start(&pool).await;
    let a = seed_account(&server, &pool, "multipart-exporter@example.com").await;
    let (_, body) = export_all(&server, &a.client).await;
    let export: Value = serde_json::from_slice(&body).unwrap();

    let c = Client::register(&server, "multipart-importer@example.com").await;
    let (content_type, form) = multipart(&body);
    let report = ok_json(
        import(&server, &c, &content_type, form.clone()).await,
        "multipart import",
    )
    .await;
    assert_eq!(report["imported"], 2, "{report}");
    assert_eq!(report["skipped"], 0, "{report}");
    assert_eq!(report["errors"], json!([]), "{report}");
    assert_eq!(list(&server, &c, "").await.len(), 2);
    assert_eq!(
        comparable(&export_json(&server, &c).await),
        comparable(&export)
    );
    // Again, as multipart: skipped.
    let report = ok_json(
        import(&server, &c, &content_type, form).await,
        "multipart again",
    )
    .await;
    assert_eq!(report["imported"], 0, "{report}");
    assert_eq!(report["skipped"], 2, "{report}");
}

#[sqlx::test]
async fn one_conversation_exports_as_markdown_or_json(pool: PgPool) {
    let server = start(&pool).await;
    let a = seed_account(&server, &pool, "one-export@example.com").await;
    let path = |query: &str| format!("/api/chat/conversations/{}/export{query}", a.milk);

    // Markdown: the title, each message's text, tool calls as short lines.
    let res = get(&server, &a.client, &path("?format=markdown")).await;
    assert_eq!(res.status(), StatusCode::OK);
    let disposition = res.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(disposition.starts_with("attachment"), "{disposition}");
    assert!(disposition.contains(".md"), "{disposition}");
    let markdown = res.text().await.unwrap();
    assert!(
        markdown
            .lines()
            .any(|l| l.trim() == "# add a task to buy milk"),
        "the title as a heading: {markdown}"
    );
    for text in [
        "show my tasks",
        a.milk_reply["content"].as_str().unwrap(),
        "**You**",
        "**Assistant**",
        "add_task",
        "list_tasks",
    ] {
        assert!(markdown.contains(text), "{text:?} in:\n{markdown}");
    }
    assert!(
        !markdown.contains("\"tool_calls\""),
        "no JSON in the Markdown: {markdown}"
    );

    // JSON (also the default): the conversation with every message.
    for query in ["?format=json", ""] {
        let res = get(&server, &a.client, &path(query)).await;
        assert_eq!(res.status(), StatusCode::OK, "{query:?}");
        let disposition = res.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .to_string();
        assert!(disposition.starts_with("attachment"), "{disposition}");
        assert!(disposition.contains(".json"), "{disposition}");
        let conversation: Value = res.json().await.unwrap();
        assert_eq!(conversation["id"], a.milk.as_str());
        assert_eq!(conversation["title"], "add a task to buy milk");
        let messages = conversation["messages"].as_array().unwrap();
        assert_eq!(messages.len(), 4);
        assert_eq!(messages[0]["content"], "add a task to buy milk");
        assert_eq!(messages[1]["tool_calls"], a.milk_reply["tool_calls"]);
        assert_eq!(messages[1]["feedback"], "positive");
    }

    // An unknown format; another user's conversation.
    let res = get(&server, &a.client, &path("?format=xml")).await;
    expect_error(res, StatusCode::BAD_REQUEST).await;
    let other = Client::register(&server, "not-the-owner@example.com").await;
    let res = get(&server, &other, &path("?format=markdown")).await;
    expect_error(res, StatusCode::NOT_FOUND).await;
}

#[sqlx::test]
async fn a_chatgpt_export_imports_only_the_current_branch_with_its_timestamps(pool: PgPool) {
    let server = start(&pool).await;
    let b = Client::register(&server, "from-chatgpt@example.com").await;
    let nodes = vec![
        chatgpt_node(
            "sys",
            Some("system"),
            "You are ChatGPT, a large language model.",
            1_700_000_000.25,
            None,
            &["u1"],
        ),
        chatgpt_node(
            "u1",
            Some("user"),
            "Remind me to book a hotel in Lisbon",
            1_700_000_100.5,
            Some("sys"),
            &["a1", "a2"],
        ),
        chatgpt_node(
            "a1",
            Some("assistant"),
            "First draft: stay in Alfama.",
            1_700_000_200.75,
            Some("u1"),
            &[],
        ),
        chatgpt_node(
            "a2",
            Some("assistant"),
            "Second draft: stay in Baixa and visit Belém.",
            1_700_000_300.125,
            Some("u1"),
            &[],
        ),
    ];
    let file = json!([chatgpt_conversation(
        "6f1c2d3e-0000-4000-8000-00000000b1a5",
        "Branching trip plan",
        1_700_000_000.25,
        1_700_000_300.125,
        nodes,
        "a2",
    )]);
    let body = serde_json::to_vec(&file).unwrap();
    import_ok(&server, &b, body.clone(), 1, 0).await;

    let listed = list(&server, &b, "").await;
    assert_eq!(listed.len(), 1);
    let conversation = &listed[0];
    assert_eq!(conversation["title"], "Branching trip plan");
    assert_eq!(instant(&conversation["created_at"]), 1_700_000_000_250_000);
    let messages = b
        .messages(&server, conversation["id"].as_str().unwrap())
        .await;
    let got: Vec<(i64, &str, &str, i64)> = messages
        .iter()
        .map(|m| {
            (
                m["seq"].as_i64().unwrap(),
                m["role"].as_str().unwrap(),
                m["content"].as_str().unwrap(),
                instant(&m["created_at"]),
            )
        })
        .collect();
    let expected: Vec<(i64, &str, &str, i64)> = vec![
        (
            1,
            "user",
            "Remind me to book a hotel in Lisbon",
            1_700_000_100_500_000,
        ),
        (
            2,
            "assistant",
            "Second draft: stay in Baixa and visit Belém.",
            1_700_000_300_125_000,
        ),
    ];
    assert_eq!(
        got, expected,
        "only the path to current_node, the system node skipped, timestamps kept"
    );
    assert!(messages.iter().all(|m| m["status"] == "complete"));
    assert!(
        b.tasks(&server).await.is_empty(),
        "no tool ran during the import"
    );
    let hits = search(&server, &b, "alfama").await;
    assert!(
        hits.is_empty(),
        "the branch not taken is not stored: {hits:?}"
    );

    // The same file again: skipped.
    import_ok(&server, &b, body, 0, 1).await;
    assert_eq!(list(&server, &b, "").await.len(), 1);
}

#[sqlx::test]
async fn a_truncated_file_is_400_and_keeps_only_the_complete_conversations(pool: PgPool) {
    let server = start(&pool).await;
    let a = seed_account(&server, &pool, "truncated-exporter@example.com").await;
    let (_, full) = export_all(&server, &a.client).await;
    let export: Value = serde_json::from_slice(&full).unwrap();
    let first = &export["conversations"][0];
    let second = &export["conversations"][1];
    // Cut inside the second conversation's last plain-text message, after some of its messages:
    // that text's first occurrence in the file is inside that conversation (neither the tasks
    // nor the first conversation say it).
    let content = second["messages"]
        .as_array()
        .unwrap()
        .iter()
        .rev()
        .filter_map(|m| m["content"].as_str())
        .find(|c| c.is_ascii() && !c.contains(['\\', '"', '\n']))
        .expect("a plain message");
    let fragment = serde_json::to_string(content).unwrap();
    let fragment = fragment.trim_matches('"');
    assert!(!serde_json::to_string(first).unwrap().contains(fragment));
    assert!(!serde_json::to_string(&export["tasks"])
        .unwrap()
        .contains(fragment));
    let at = full
        .windows(fragment.len())
        .position(|w| w == fragment.as_bytes())
        .expect("the fragment is in the file");
    let truncated = full[..at + 5].to_vec();

    let b = Client::register(&server, "truncated-importer@example.com").await;
    let res = import(&server, &b, "application/json", truncated).await;
    let detail = expect_error(res, StatusCode::BAD_REQUEST).await;
    assert!(detail.contains("line"), "says where: {detail}");
    assert!(detail.contains("column"), "says where: {detail}");

    // The complete first conversation was committed, nothing of the second.
    let listed = list(&server, &b, "").await;
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0]["title"], first["title"]);
    let messages = b.messages(&server, listed[0]["id"].as_str().unwrap()).await;
    let contents: Vec<&Value> = messages.iter().map(|m| &m["content"]).collect();
    let expected: Vec<&Value> = first["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| &m["content"])
        .collect();
    assert_eq!(contents, expected);
    let user = b.user_id(&server).await;
    let (conversations, stored): (i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM conversations WHERE user_id = $1),
                (SELECT count(*) FROM messages m JOIN conversations c ON c.id = m.conversation_id
                 WHERE c.user_id = $1)",
    )
    .bind(user)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(
        conversations, 1,
        "no partial second conversation, not even deleted"
    );
    assert_eq!(stored as usize, expected.len(), "no stray messages");
    assert!(b.tasks(&server).await.is_empty());

    // The whole file afterwards: the first is skipped, the second imported.
    import_ok(&server, &b, full, 1, 1).await;
    assert_eq!(list(&server, &b, "").await.len(), 2);
}

// ---------------------------------------------------------------------------------------------
// Memory
// ---------------------------------------------------------------------------------------------

const RSS_GROWTH_KB: u64 = 20 * 1024;

#[derive(serde::Deserialize)]
struct ExportShape {
    format: String,
    conversations: Vec<ConversationShape>,
}

#[derive(serde::Deserialize)]
struct ConversationShape {
    messages: Vec<serde::de::IgnoredAny>,
}

#[sqlx::test]
async fn exporting_100000_messages_streams_with_flat_memory(pool: PgPool) {
    let server = start(&pool).await;
    let big = Client::register(&server, "big-exporter@example.com").await;
    let user = big.user_id(&server).await;
    sqlx::query(
        "INSERT INTO conversations (id, user_id, title, created_at, updated_at, last_seq, message_count)
         SELECT gen_random_uuid(), $1, 'Seeded conversation ' || c,
                now() - (100000 - c) * interval '1 second', now() - (100000 - c) * interval '1 second',
                100, 100
         FROM generate_series(1, 1000) AS c",
    )
    .bind(user)
    .execute(&pool)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO messages (id, conversation_id, seq, role, content, created_at)
         SELECT gen_random_uuid(), cv.id, s,
                CASE WHEN s % 2 = 1 THEN 'user' ELSE 'assistant' END,
                'Seeded message ' || s || ' of ' || cv.title || '. '
                    || repeat('The quick brown fox jumps over the lazy dog. ', 6),
                cv.created_at + s * interval '1 millisecond'
         FROM conversations cv, generate_series(1, 100) AS s
         WHERE cv.user_id = $1",
    )
    .bind(user)
    .execute(&pool)
    .await
    .unwrap();

    // Warm up the export's code paths with a small account, then measure.
    let small = Client::register(&server, "small-exporter@example.com").await;
    let conversation = small.conversation(&server).await;
    say(&server, &small, &conversation, "add a task to buy milk").await;
    export_all(&server, &small).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = server.rss_kb();

    let res = get(&server, &big, "/api/export").await;
    assert_eq!(res.status(), StatusCode::OK);
    assert!(res.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/json"));
    let mut stream = res.bytes_stream();
    let mut body: Vec<u8> = Vec::new();
    let mut peak = before;
    let mut next_sample = 0usize;
    let mut next_pause = 5 << 20;
    while let Some(chunk) = stream.next().await {
        body.extend_from_slice(&chunk.expect("the body streams to its end"));
        if body.len() >= next_sample {
            peak = peak.max(server.rss_kb());
            next_sample = body.len() + (512 << 10);
        }
        if body.len() >= next_pause {
            // A slower reader: the server must not read ahead of it into memory.
            tokio::time::sleep(Duration::from_millis(20)).await;
            next_pause = body.len() + (5 << 20);
        }
    }
    peak = peak.max(server.rss_kb());
    assert!(
        body.len() > 30 << 20,
        "the export is large enough to show buffering: {} bytes",
        body.len()
    );
    eprintln!("RSS growth: {} kB ({before} → {peak} kB)", peak - before);
    assert!(
        peak <= before + RSS_GROWTH_KB,
        "RSS {before} kB rose to {peak} kB exporting {} MB",
        body.len() >> 20
    );
    let export: ExportShape = serde_json::from_slice(&body).expect("the export parses as JSON");
    assert_eq!(export.format, "chatkit-tasks-export");
    assert_eq!(export.conversations.len(), 1000);
    let messages: usize = export.conversations.iter().map(|c| c.messages.len()).sum();
    assert_eq!(messages, 100_000);
}

/// Deterministic filler text of `words` words.
fn filler(seed: &mut u64, words: usize) -> String {
    const VOCAB: [&str; 24] = [
        "garden", "invoice", "river", "meeting", "bicycle", "lantern", "harbour", "recipe",
        "window", "planet", "ticket", "orchard", "violin", "summit", "pencil", "market", "thunder",
        "library", "compass", "blanket", "castle", "meadow", "rocket", "saddle",
    ];
    let mut out = String::with_capacity(words * 8);
    for i in 0..words {
        *seed = seed
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        if i > 0 {
            out.push(' ');
        }
        out.push_str(VOCAB[(*seed >> 33) as usize % VOCAB.len()]);
        if (*seed >> 20).is_multiple_of(7) {
            out.push_str(&((*seed >> 40) % 1000).to_string());
        }
    }
    out
}

/// A ChatGPT conversation: a root without a message, then user, assistant, user, assistant.
fn bulk_conversation(prefix: &str, i: usize, seed: &mut u64) -> Value {
    let t = 1_600_000_000.0 + i as f64 * 60.0;
    let id = format!("{prefix}-{i:06}");
    let nodes = vec![
        chatgpt_node("root", None, "", t, None, &["u1"]),
        chatgpt_node(
            "u1",
            Some("user"),
            &filler(seed, 300),
            t + 1.0,
            Some("root"),
            &["a1"],
        ),
        chatgpt_node(
            "a1",
            Some("assistant"),
            &filler(seed, 420),
            t + 2.0,
            Some("u1"),
            &["u2"],
        ),
        chatgpt_node(
            "u2",
            Some("user"),
            &filler(seed, 300),
            t + 3.0,
            Some("a1"),
            &["a2"],
        ),
        chatgpt_node(
            "a2",
            Some("assistant"),
            &filler(seed, 420),
            t + 4.0,
            Some("u2"),
            &[],
        ),
    ];
    chatgpt_conversation(
        &id,
        &format!("Bulk conversation {prefix} {i}"),
        t,
        t + 4.0,
        nodes,
        "a2",
    )
}

/// A ChatGPT `conversations.json` of `count` conversations, or as many as fit in `max_bytes`.
fn bulk_file(prefix: &str, count: usize, max_bytes: usize) -> (Vec<u8>, usize) {
    let mut seed = 42u64;
    let mut file = b"[".to_vec();
    let mut n = 0;
    while n < count {
        let one = serde_json::to_vec(&bulk_conversation(prefix, n, &mut seed)).unwrap();
        let separator = usize::from(n > 0);
        if file.len() + separator + one.len() + 1 > max_bytes {
            break;
        }
        if n > 0 {
            file.push(b',');
        }
        file.extend_from_slice(&one);
        n += 1;
    }
    file.push(b']');
    (file, n)
}

#[sqlx::test]
async fn importing_a_50_mb_file_keeps_memory_flat(pool: PgPool) {
    let server = start(&pool).await;
    // Just under the 50 MB limit.
    let (file, count) = bulk_file("bulk", usize::MAX, 50 * 1024 * 1024 - 64 * 1024);
    assert!(file.len() > 49 * 1024 * 1024, "{} bytes", file.len());
    serde_json::from_slice::<serde::de::IgnoredAny>(&file).expect("the file is valid JSON");

    // Warm up the import's code paths with a small file for another user, then measure.
    let warm = Client::register(&server, "warm-importer@example.com").await;
    let (small, small_count) = bulk_file("warm", 20, usize::MAX);
    import_ok(&server, &warm, small, small_count as u64, 0).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = server.rss_kb();

    let fresh = Client::register(&server, "big-importer@example.com").await;
    let upload = {
        let request = fresh
            .http
            .post(server.at("/api/import"))
            .bearer_auth(&fresh.token)
            .header("content-type", "application/json")
            .body(file);
        tokio::spawn(async move { request.send().await })
    };
    let mut peak = before;
    while !upload.is_finished() {
        peak = peak.max(server.rss_kb());
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let res = upload.await.unwrap().expect("the upload is answered");
    peak = peak.max(server.rss_kb());
    let report = ok_json(res, "50 MB import").await;
    assert_eq!(report["imported"], count as u64, "{report}");
    assert_eq!(report["skipped"], 0, "{report}");
    assert_eq!(report["errors"], json!([]), "{report}");
    eprintln!("RSS growth: {} kB ({before} → {peak} kB)", peak - before);
    assert!(
        peak <= before + RSS_GROWTH_KB,
        "RSS {before} kB rose to {peak} kB importing a 50 MB file"
    );

    let user = fresh.user_id(&server).await;
    let (conversations, messages): (i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM conversations WHERE user_id = $1 AND deleted_at IS NULL),
                (SELECT count(*) FROM messages m JOIN conversations c ON c.id = m.conversation_id
                 WHERE c.user_id = $1)",
    )
    .bind(user)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(conversations as usize, count);
    assert_eq!(
        messages as usize,
        count * 4,
        "the root without a message is skipped"
    );
}

// ---------------------------------------------------------------------------------------------
// A backup restores, branches survive, download names keep their letters
// ---------------------------------------------------------------------------------------------

/// Each message's role and text, in the order given.
fn roles_and_texts(messages: &[Value]) -> Vec<(String, String)> {
    messages
        .iter()
        .map(|m| {
            (
                m["role"]
                    .as_str()
                    .unwrap_or_else(|| panic!("a role: {m}"))
                    .to_string(),
                m["content"]
                    .as_str()
                    .unwrap_or_else(|| panic!("a content: {m}"))
                    .to_string(),
            )
        })
        .collect()
}

/// The tree of `messages` by position: each message's parent as the index of that parent in
/// the list (`None`: no parent). Panics when a parent is not in the list.
fn parent_shape(messages: &[Value]) -> Vec<Option<usize>> {
    messages
        .iter()
        .map(|m| {
            let parent = &m["parent_id"];
            if parent.is_null() {
                None
            } else {
                Some(
                    messages
                        .iter()
                        .position(|other| &other["id"] == parent)
                        .unwrap_or_else(|| panic!("the parent of {m} is in the list")),
                )
            }
        })
        .collect()
}

/// Every message of every branch (`?branch=all`), in seq order.
async fn every_branch(server: &ServerProcess, client: &Client, conversation: &str) -> Vec<Value> {
    let path = format!("/api/chat/conversations/{conversation}/messages?branch=all&limit=100");
    let page = ok_json(get(server, client, &path).await, &path).await;
    page["messages"].as_array().unwrap().clone()
}

#[sqlx::test]
async fn a_deleted_conversation_comes_back_from_its_own_export(pool: PgPool) {
    let server = start(&pool).await;
    let a = Client::register(&server, "restorer@example.com").await;
    let conversation = titled(&server, &a, "Weekend backup").await;
    say(
        &server,
        &a,
        &conversation,
        "hello there, the first question",
    )
    .await;
    say(
        &server,
        &a,
        &conversation,
        "hello there, the second question",
    )
    .await;
    let before = a.messages(&server, &conversation).await;
    assert_eq!(before.len(), 4, "two exchanges: {before:?}");
    let expected = roles_and_texts(&before);
    assert_eq!(
        expected.iter().map(|(r, _)| r.as_str()).collect::<Vec<_>>(),
        vec!["user", "assistant", "user", "assistant"]
    );

    // Its own download: the conversation's object, no envelope.
    let res = get(
        &server,
        &a,
        &format!("/api/chat/conversations/{conversation}/export"),
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK, "GET …/export");
    let file = res.bytes().await.unwrap().to_vec();
    let exported: Value = serde_json::from_slice(&file).expect("the download is JSON");
    assert_eq!(exported["id"], conversation.as_str(), "{exported}");
    assert!(
        exported.get("conversations").is_none(),
        "one conversation, no envelope: {exported}"
    );
    assert_eq!(exported["messages"].as_array().unwrap().len(), 4);

    // Deleted, then restored from that file.
    delete_conversation(&server, &a, &conversation).await;
    assert!(list(&server, &a, "").await.is_empty(), "deleted");
    import_ok(&server, &a, file.clone(), 1, 0).await;
    let listed = list(&server, &a, "").await;
    assert_eq!(listed.len(), 1, "it is back: {listed:?}");
    assert_eq!(listed[0]["title"], "Weekend backup");
    let restored = listed[0]["id"].as_str().unwrap().to_string();
    let messages = a.messages(&server, &restored).await;
    assert_eq!(
        roles_and_texts(&messages),
        expected,
        "the same messages in the same order"
    );
    let seqs: Vec<i64> = messages
        .iter()
        .map(|m| m["seq"].as_i64().unwrap())
        .collect();
    assert_eq!(seqs, vec![1, 2, 3, 4]);
    assert!(messages[0]["parent_id"].is_null());
    for pair in messages.windows(2) {
        assert_eq!(
            pair[1]["parent_id"], pair[0]["id"],
            "a straight line: {pair:?}"
        );
    }

    // The same file again: the restored conversation is live, so this is a duplicate.
    import_ok(&server, &a, file, 0, 1).await;
    let listed = list(&server, &a, "").await;
    assert_eq!(ids(&listed), vec![restored.clone()], "no second copy");
    assert_eq!(
        roles_and_texts(&a.messages(&server, &restored).await),
        expected
    );
}

#[sqlx::test]
async fn an_imported_export_keeps_its_branches(pool: PgPool) {
    let server = start(&pool).await;
    let a = Client::register(&server, "branch-exporter@example.com").await;
    let conversation = titled(&server, &a, "Branching plans").await;
    let first = say(&server, &a, &conversation, "hello there, the first version").await;
    say(&server, &a, &conversation, "hello there, a follow-up").await;
    let first_question = first["user_message"]["id"].as_str().unwrap().to_string();

    // An edit of message 1: a second first message, and its answer, shown.
    let res = a
        .http
        .post(server.at(&format!(
            "/api/chat/conversations/{conversation}/messages/{first_question}/edit"
        )))
        .bearer_auth(&a.token)
        .json(&json!({ "content": "hello there, the edited version" }))
        .send()
        .await
        .unwrap();
    let status = res.status();
    let text = res.text().await.unwrap();
    assert_eq!(status, StatusCode::CREATED, "edit of message 1: {text}");
    let edited: Value = serde_json::from_str(&text).unwrap();
    let edit_answer = edited["assistant_message"].clone();
    assert!(edited["user_message"]["parent_id"].is_null(), "{edited}");

    let original_all = every_branch(&server, &a, &conversation).await;
    assert_eq!(original_all.len(), 6, "{original_all:?}");
    let shape = parent_shape(&original_all);
    assert_eq!(
        shape,
        vec![None, Some(0), Some(1), Some(2), None, Some(4)],
        "two exchanges, then an edit of the first message with its answer"
    );
    let original_current = a.messages(&server, &conversation).await;
    assert_eq!(
        original_current.len(),
        2,
        "the edit's branch: {original_current:?}"
    );
    assert_eq!(original_current[1]["id"], edit_answer["id"]);

    // The account's export carries the tree and the branch shown.
    let (_, body) = export_all(&server, &a).await;
    let export: Value = serde_json::from_slice(&body).expect("the export is JSON");
    let exported = &export["conversations"][0];
    assert_eq!(
        exported["current_message_id"], edit_answer["id"],
        "{exported}"
    );
    assert_eq!(exported["messages"].as_array().unwrap().len(), 6);

    // Into another account.
    let b = Client::register(&server, "branch-importer@example.com").await;
    import_ok(&server, &b, body, 1, 0).await;
    let listed = list(&server, &b, "").await;
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0]["title"], "Branching plans");
    let imported = listed[0]["id"].as_str().unwrap().to_string();
    assert_ne!(imported, conversation, "its own id");

    // The default view: the edit's branch, its first message one of two siblings.
    let current = b.messages(&server, &imported).await;
    assert_eq!(
        roles_and_texts(&current),
        roles_and_texts(&original_current),
        "the branch shown is the edit's"
    );
    assert_eq!(current.len(), 2);
    assert_eq!(current[0]["content"], "hello there, the edited version");
    assert_eq!(current[0]["sibling_count"], 2, "{:?}", current[0]);
    assert!(current[0]["parent_id"].is_null(), "{:?}", current[0]);
    assert_eq!(
        current[1]["parent_id"], current[0]["id"],
        "{:?}",
        current[1]
    );
    let opened = ok_json(
        get(&server, &b, &format!("/api/chat/conversations/{imported}")).await,
        "GET the imported conversation",
    )
    .await;
    assert_eq!(opened["current_message_id"], current[1]["id"], "{opened}");

    // Every branch: the same messages, the same tree.
    let all = every_branch(&server, &b, &imported).await;
    assert_eq!(all.len(), 6, "every branch was imported: {all:?}");
    assert_eq!(roles_and_texts(&all), roles_and_texts(&original_all));
    assert_eq!(parent_shape(&all), shape, "the same tree: {all:?}");
    let firsts: Vec<&Value> = all.iter().filter(|m| m["parent_id"].is_null()).collect();
    assert_eq!(firsts.len(), 2, "two first messages: {all:?}");
    assert!(firsts.iter().all(|m| m["role"] == "user"));
    for (i, m) in all.iter().enumerate() {
        if m["role"] == "assistant" {
            let parent = shape[i].expect("an answer has a parent");
            assert_eq!(
                all[parent]["role"], "user",
                "an answer follows its question"
            );
            assert_eq!(parent + 1, i, "each answer's parent is its question");
        }
    }
}

#[sqlx::test]
async fn a_download_keeps_a_non_ascii_title(pool: PgPool) {
    let server = start(&pool).await;
    let a = Client::register(&server, "cafe-owner@example.com").await;
    let conversation = a.conversation(&server).await;
    say(&server, &a, &conversation, "hello there, about the weekend").await;
    let res = put(
        &server,
        &a,
        &format!("/api/chat/conversations/{conversation}"),
        json!({ "title": "Café plans" }),
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK, "rename");

    for (kind, extension) in [("markdown", "md"), ("json", "json")] {
        let res = get(
            &server,
            &a,
            &format!("/api/chat/conversations/{conversation}/export?format={kind}"),
        )
        .await;
        assert_eq!(res.status(), StatusCode::OK, "export as {kind}");
        let disposition = String::from_utf8_lossy(
            res.headers()
                .get("content-disposition")
                .expect("a Content-Disposition")
                .as_bytes(),
        )
        .to_string();
        assert!(disposition.is_ascii(), "an ASCII header: {disposition}");
        assert!(disposition.starts_with("attachment"), "{disposition}");
        let encoded = format!("filename*=UTF-8''Caf%C3%A9-plans.{extension}");
        assert!(
            disposition.contains(&encoded),
            "the UTF-8 name ({encoded}) in: {disposition}"
        );
        let plain = disposition
            .split_once("filename=\"")
            .and_then(|(_, rest)| rest.split_once('"'))
            .map(|(name, _)| name.to_string())
            .unwrap_or_else(|| panic!("a quoted ASCII filename in: {disposition}"));
        assert!(
            !plain.is_empty() && plain.chars().all(|c| c.is_ascii_graphic()),
            "an ASCII fallback name: {plain:?}"
        );
        assert!(plain.starts_with("Caf"), "{plain:?}");
        assert!(plain.ends_with(&format!(".{extension}")), "{plain:?}");
        let body = res.text().await.unwrap();
        if kind == "markdown" {
            assert!(
                body.lines().any(|l| l.trim() == "# Café plans"),
                "the title as a heading: {body}"
            );
        } else {
            let exported: Value = serde_json::from_str(&body).expect("JSON");
            assert_eq!(exported["title"], "Café plans");
        }
    }
}
