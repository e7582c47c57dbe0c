//! Search and export at scale (issue 25). 1,000,000 messages in the database: 100,000 of them
//! one user's (the searcher: 1,000 conversations of 100), the rest 900 other users' (9,000
//! conversations), all drawn from one vocabulary of 256 ordinary words, so that the index holds
//! every user's postings of each word and the searches hit (each word is in ~5 % of messages).
//! 16 clients search back to back as the palette does (single words, stemmed forms, prefixes of
//! the last word as typed, two and three words, a miss); before that the searcher's whole
//! account is exported (`GET /api/export`, streamed): its throughput, and the server's peak
//! memory over its baseline while it streams.
//!
//! Runs last, on a server of its own started after the seeding: the earlier phases leave the
//! allocator holding the pages of their peaks, which would hide the export's growth.
//! The seeding writes only the base columns: the search columns (generated) and indexes are
//! the schema's.

use std::{
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use anyhow::{bail, Context, Result};
use futures::StreamExt;
use serde_json::{json, Value};
use sqlx::{Connection, PgConnection};
use uuid::Uuid;

use super::{
    reads::percentile,
    setup::{rss_kb, start_server, Options, Server},
    streams::mint_users,
    verdict, Row,
};

const SEARCH: &str = "search p50 / p99 (1M messages, 100k the searcher's, 16 searchers)";
const EXPORT: &str = "export of 100k messages";

/// Messages in the database once seeded (whatever the earlier phases stored counts).
const TOTAL_MESSAGES: i64 = 1_000_000;
const SEARCHER_MESSAGES: i64 = 100_000;
const SEARCHER_CONVERSATIONS: i64 = 1_000;
/// Distinct message texts (as many as the searcher's messages).
const TEXTS: i64 = 100_000;
const OTHER_USERS: i64 = 900;
const OTHER_CONVERSATIONS: i64 = 9_000;
/// Key prefixes of the seeded rows (conversation ids are `md5('<prefix>-c' || n)`).
const MINE: &str = "search-mine";
const OTHERS: &str = "search-other";
const SEARCHERS: usize = 16;
const P99_BUDGET_MS: f64 = 50.0;
const RSS_GROWTH_BUDGET_MB: f64 = 20.0;

/// The words of every title and message, 256 of them (a word is picked by one byte of an md5),
/// none a stop word, no two with the same stem.
const VOCABULARY: &str = "\
    groceries milk bread eggs coffee dinner lunch breakfast recipe chicken pasta salad \
    soup vegetables fruit apples bananas cheese butter rice dentist doctor appointment \
    pharmacy prescription vitamins exercise running yoga gym swimming bicycle walk sleep \
    headache allergy insurance clinic checkup therapy meeting schedule calendar deadline \
    project report presentation budget invoice receipt contract proposal client manager \
    colleague office email spreadsheet agenda review quarterly revenue expenses taxes \
    payroll salary interview resume promotion conference workshop onboarding webinar \
    slides feedback strategy roadmap launch release migration database server deploy \
    backup password laptop keyboard monitor printer router software update bug feature \
    testing documentation repository branch merge pipeline garden plants tomatoes flowers \
    lawn fence garage kitchen bathroom bedroom furniture sofa curtains paint plumber \
    electrician repair leak roof window vacation flight hotel passport luggage beach \
    mountains camping hiking museum train airport rental itinerary reservation tickets \
    concert festival restaurant weekend birthday party wedding anniversary gift cake \
    balloons invitation guests family parents children school homework teacher library \
    books reading novel magazine laundry cleaning vacuum dishes trash recycling errands \
    shopping mall haircut car tires oil mechanic parking license registration bank \
    mortgage loan savings dog cat veterinarian grooming food leash puppy kitten aquarium \
    birds neighbor friend sister brother grandmother uncle cousin nephew niece babysitter \
    piano guitar lessons practice sculpture drawing photography camera podcast movie \
    series episode playlist music album game chess puzzle football tennis morning evening \
    tonight tomorrow monday tuesday wednesday thursday friday saturday sunday january \
    february march april june july august september october november december reminder \
    urgent important priority quickly carefully summary notes draft outline ideas \
    question answer";

/// What the searchers type, in turn: words, stemmed forms of them ("meetings" finds
/// "meeting"), prefixes of the last word, several words, and a miss.
const QUERIES: [&str; 24] = [
    "dentist",
    "invoice",
    "garden",
    "passport",
    "mortgage",
    "birthday",
    "meetings",
    "booking",
    "painted",
    "deployed",
    "groc",
    "appoin",
    "sched",
    "vacat",
    "rec",
    "dentist appointment",
    "budget review",
    "birthday party",
    "flight hotel",
    "dentist appo",
    "quarterly rev",
    "kitchen rep",
    "project deadline friday",
    "xylophone",
];

/// The seeded data and the searcher's session.
pub struct Seeded {
    pub token: String,
    pub total_messages: i64,
    pub searcher_messages: i64,
    pub secs: f64,
}

/// `n` words joined by spaces, with a period: word `k` picked by byte `k` of `h.a` (then of
/// `h.b`), both 16-byte md5s.
fn words(n: usize) -> String {
    let picks: Vec<String> = (0..n)
        .map(|k| {
            let (hash, byte) = if k < 16 { ("a", k) } else { ("b", k - 16) };
            format!("v.w[1 + get_byte(h.{hash}, {byte})]")
        })
        .collect();
    format!("{} || '.'", picks.join(" || ' ' || "))
}

fn vocabulary_sql() -> String {
    let quoted: Vec<String> = VOCABULARY
        .split_whitespace()
        .map(|w| format!("'{w}'"))
        .collect();
    assert_eq!(quoted.len(), 256, "one word per byte value");
    format!("ARRAY[{}]::text[]", quoted.join(","))
}

/// `count` conversations keyed by `prefix`, of `owner` (an SQL expression of `n`, the
/// conversation's number), holding `messages` messages between them (as `messages_sql` spreads
/// them: round robin, so `n` holds `messages / count`, one more when `n < messages % count`).
/// Titles of three words.
fn conversations_sql(prefix: &str, owner: &str, count: i64, messages: i64) -> String {
    format!(
        "WITH v AS (SELECT {vocabulary} AS w)
         INSERT INTO conversations (id, user_id, title, created_at, updated_at, last_seq, message_count)
         SELECT md5('{prefix}-c' || n)::uuid, {owner},
                initcap(v.w[1 + get_byte(h.t, 0)] || ' ' || v.w[1 + get_byte(h.t, 1)] || ' ' || v.w[1 + get_byte(h.t, 2)]),
                now() - {messages} * interval '1 second',
                now() - ({messages} - greatest(h.k - 1, 0) * {count} - n) * interval '1 second',
                h.k, h.k
         FROM v, generate_series(0, {last}) n,
              LATERAL (SELECT decode(md5('{prefix}-t' || n), 'hex') AS t,
                              {messages} / {count} + CASE WHEN n < {messages} % {count} THEN 1 ELSE 0 END AS k) h",
        vocabulary = vocabulary_sql(),
        last = count - 1,
    )
}

/// The texts the messages are given: `TEXTS` of them, each a user's (10 words) and an
/// assistant's (20 words), made once (picking words is the slow part of making a message).
fn texts_sql() -> String {
    format!(
        "WITH v AS (SELECT {vocabulary} AS w)
         INSERT INTO search_seed_texts (k, short, long)
         SELECT i, {short}, {long}
         FROM v, generate_series(0, {last}) i,
              LATERAL (SELECT decode(md5('search-a' || i), 'hex') AS a,
                              decode(md5('search-b' || i), 'hex') AS b) h",
        vocabulary = vocabulary_sql(),
        short = words(10),
        long = words(20),
        last = TEXTS - 1,
    )
}

/// Messages `from..to` of the `total` in `conversations` conversations keyed by `prefix`:
/// message `i` is in conversation `i % conversations` with seq `i / conversations + 1`, one
/// second after message `i - 1`, with text `i % TEXTS` (all the searcher's differ); odd seqs
/// are the user's, even ones the assistant's.
fn messages_sql(prefix: &str, conversations: i64, total: i64, from: i64, to: i64) -> String {
    format!(
        "INSERT INTO messages (id, conversation_id, seq, role, content, created_at)
         SELECT gen_random_uuid(), md5('{prefix}-c' || (i % {conversations}))::uuid, i / {conversations} + 1,
                CASE WHEN (i / {conversations}) % 2 = 0 THEN 'user' ELSE 'assistant' END,
                CASE WHEN (i / {conversations}) % 2 = 0 THEN t.short ELSE t.long END,
                now() - ({total} - i) * interval '1 second'
         FROM generate_series({from}, {last}) i JOIN search_seed_texts t ON t.k = i % {TEXTS}",
        last = to - 1,
    )
}

/// A statement's start from its INSERT, for an error's context (the vocabulary is long).
fn head(sql: &str) -> String {
    let from = sql.find("INSERT").unwrap_or(0);
    sql[from..].chars().take(160).collect()
}

/// The searcher (a session of its own, `mint_users`), its 100,000 messages, and the other
/// users' up to 1,000,000 in all; the inserts run in parallel, then everything is vacuumed
/// and analysed (which also flushes GIN pending lists).
async fn seed(db_url: &str) -> Result<Seeded> {
    let t = Instant::now();
    let token = mint_users(db_url, "searcher", 1)
        .await?
        .pop()
        .context("no searcher")?;
    let mut conn = PgConnection::connect(db_url).await?;
    let user: Uuid =
        sqlx::query_scalar("SELECT id FROM users WHERE email = 'searcher1@streams.example'")
            .fetch_one(&mut conn)
            .await?;
    let existing: i64 = sqlx::query_scalar("SELECT count(*) FROM messages")
        .fetch_one(&mut conn)
        .await?;
    let others = (TOTAL_MESSAGES - SEARCHER_MESSAGES - existing).max(0);
    let setup = [
        format!(
            "INSERT INTO users (id, email, password_hash)
             SELECT md5('search-user-' || u)::uuid, 'search-other' || u || '@search.example', 'no password'
             FROM generate_series(0, {}) u",
            OTHER_USERS - 1
        ),
        conversations_sql(
            MINE,
            &format!("'{user}'::uuid"),
            SEARCHER_CONVERSATIONS,
            SEARCHER_MESSAGES,
        ),
        conversations_sql(
            OTHERS,
            &format!("md5('search-user-' || (n % {OTHER_USERS}))::uuid"),
            OTHER_CONVERSATIONS,
            others,
        ),
        "CREATE UNLOGGED TABLE search_seed_texts (k integer PRIMARY KEY, short text NOT NULL, long text NOT NULL)"
            .to_string(),
        texts_sql(),
        "ANALYZE search_seed_texts".to_string(),
    ];
    for sql in &setup {
        sqlx::raw_sql(sql)
            .execute(&mut conn)
            .await
            .with_context(|| format!("seeding: {}", head(sql)))?;
    }
    // The searcher's messages, and the others' in one range per core (up to 8), at once.
    let mut inserts = vec![messages_sql(
        MINE,
        SEARCHER_CONVERSATIONS,
        SEARCHER_MESSAGES,
        0,
        SEARCHER_MESSAGES,
    )];
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get().clamp(1, 8)) as i64;
    let step = (others + cores - 1) / cores;
    let mut from = 0;
    while from < others {
        let to = (from + step).min(others);
        inserts.push(messages_sql(OTHERS, OTHER_CONVERSATIONS, others, from, to));
        from = to;
    }
    futures::future::try_join_all(inserts.iter().map(|sql| async move {
        let mut conn = PgConnection::connect(db_url).await?;
        // Room for the GIN pending lists' cleanups.
        for set in [
            "SET work_mem = '128MB'",
            "SET maintenance_work_mem = '256MB'",
        ] {
            sqlx::raw_sql(set).execute(&mut conn).await?;
        }
        sqlx::raw_sql(sql)
            .execute(&mut conn)
            .await
            .with_context(|| format!("seeding: {}", head(sql)))?;
        anyhow::Ok(())
    }))
    .await?;
    sqlx::raw_sql("DROP TABLE search_seed_texts")
        .execute(&mut conn)
        .await?;
    sqlx::raw_sql("SET maintenance_work_mem = '256MB'")
        .execute(&mut conn)
        .await?;
    sqlx::raw_sql("VACUUM ANALYZE users, conversations, messages")
        .execute(&mut conn)
        .await?;
    let total_messages: i64 = sqlx::query_scalar("SELECT count(*) FROM messages")
        .fetch_one(&mut conn)
        .await?;
    let searcher_messages: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM messages m JOIN conversations c ON c.id = m.conversation_id
         WHERE c.user_id = $1",
    )
    .bind(user)
    .fetch_one(&mut conn)
    .await?;
    Ok(Seeded {
        token,
        total_messages,
        searcher_messages,
        secs: t.elapsed().as_secs_f64(),
    })
}

/// A query string's value, percent-encoded.
fn encode(q: &str) -> String {
    q.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// Whether a search answer has results.
fn found(body: &[u8]) -> bool {
    serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|page| page["results"].as_array().map(|r| !r.is_empty()))
        .unwrap_or(false)
}

pub struct SearchLoad {
    pub requests: usize,
    pub errors: usize,
    pub first_error: Option<String>,
    /// Answers with at least one result.
    pub with_results: usize,
    pub per_second: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
}

/// `SEARCHERS` clients search back to back for `duration`, each going through `QUERIES` from
/// its own starting point.
async fn search_load(server: &Server, token: &str, duration: Duration) -> Result<SearchLoad> {
    let started = Instant::now();
    let deadline = started + duration;
    let workers = (0..SEARCHERS).map(|worker| {
        let (http, base, token) = (server.http.clone(), server.base.clone(), token.to_string());
        tokio::spawn(async move {
            let mut samples = Vec::with_capacity(4096);
            let (mut errors, mut with_results, mut first_error) = (0, 0, None::<String>);
            let mut next = worker;
            while Instant::now() < deadline {
                let q = QUERIES[next % QUERIES.len()];
                next += 1;
                let url = format!("{base}/api/chat/search?q={}", encode(q));
                let t = Instant::now();
                let error = match http.get(&url).bearer_auth(&token).send().await {
                    Ok(res) if res.status().is_success() => match res.bytes().await {
                        Ok(body) => {
                            samples.push(t.elapsed());
                            with_results += usize::from(found(&body));
                            None
                        }
                        Err(err) => Some(format!("q={q}: {err}")),
                    },
                    Ok(res) => {
                        let status = res.status();
                        let body = res.text().await.unwrap_or_default();
                        Some(format!(
                            "q={q}: {status} {}",
                            body.chars().take(200).collect::<String>()
                        ))
                    }
                    Err(err) => Some(format!("q={q}: {err}")),
                };
                if let Some(error) = error {
                    errors += 1;
                    if first_error.is_none() {
                        first_error = Some(error);
                    }
                }
            }
            (samples, errors, with_results, first_error)
        })
    });
    let mut all = Vec::new();
    let (mut errors, mut with_results, mut first_error) = (0, 0, None);
    for (samples, e, w, first) in futures::future::join_all(workers)
        .await
        .into_iter()
        .flatten()
    {
        all.extend(samples);
        errors += e;
        with_results += w;
        first_error = first_error.or(first);
    }
    let elapsed = started.elapsed().as_secs_f64();
    if all.is_empty() {
        bail!(
            "no search succeeded ({errors} errors; {})",
            first_error.as_deref().unwrap_or("no request sent")
        );
    }
    all.sort();
    Ok(SearchLoad {
        requests: all.len(),
        errors,
        first_error,
        with_results,
        per_second: all.len() as f64 / elapsed,
        p50_ms: percentile(&all, 0.50),
        p99_ms: percentile(&all, 0.99),
    })
}

/// A `/proc/<pid>/status` field in KB (0 when unreadable).
fn status_kb(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}

pub struct Export {
    pub bytes: usize,
    pub secs: f64,
    /// Until the first chunk of the body.
    pub first_chunk_ms: f64,
    pub conversations: usize,
    pub messages: usize,
    pub rss_before_kb: u64,
    pub rss_peak_kb: u64,
    /// The peak is the kernel's (VmHWM, reset before the export), not only samples.
    pub from_hwm: bool,
}

impl Export {
    pub fn mb_per_second(&self) -> f64 {
        self.bytes as f64 / 1e6 / self.secs
    }

    pub fn growth_mb(&self) -> f64 {
        (self.rss_peak_kb as f64 - self.rss_before_kb as f64) / 1024.0
    }
}

/// The searcher's whole account through `GET /api/export`, read as fast as it comes, while the
/// server's RSS is sampled every 2 ms (and its high-water mark, reset first, read after); then
/// the document is parsed and its messages counted.
async fn export(server: &Server, token: &str) -> Result<Export> {
    let pid = server.pid;
    let rss_before_kb = rss_kb(pid);
    // "5" resets the peak resident size (VmHWM) to the current one (Linux ≥ 4.0).
    let from_hwm = std::fs::write(format!("/proc/{pid}/clear_refs"), "5").is_ok()
        && status_kb(pid, "VmHWM:") > 0;
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = tokio::spawn({
        let stop = stop.clone();
        async move {
            let mut peak = 0;
            loop {
                peak = peak.max(rss_kb(pid));
                if stop.load(Ordering::Relaxed) {
                    break peak;
                }
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        }
    });
    let t = Instant::now();
    let download = async {
        let res = server
            .http
            .get(format!("{}/api/export", server.base))
            .bearer_auth(token)
            .send()
            .await?;
        let status = res.status();
        if !status.is_success() {
            let body = res.text().await.unwrap_or_default();
            bail!(
                "GET /api/export: {status} {}",
                body.chars().take(200).collect::<String>()
            );
        }
        let mut first_chunk_ms = f64::NAN;
        let mut body = Vec::new();
        let mut chunks = res.bytes_stream();
        while let Some(chunk) = chunks.next().await {
            if first_chunk_ms.is_nan() {
                first_chunk_ms = t.elapsed().as_secs_f64() * 1000.0;
            }
            body.extend_from_slice(&chunk?);
        }
        anyhow::Ok((body, first_chunk_ms))
    }
    .await;
    let secs = t.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    let sampled = sampler.await.unwrap_or(0);
    let hwm = if from_hwm {
        status_kb(pid, "VmHWM:")
    } else {
        0
    };
    let (body, first_chunk_ms) = download?;
    let document: Value = serde_json::from_slice(&body)
        .with_context(|| format!("the export ({} bytes) is not one JSON document", body.len()))?;
    let conversations = document["conversations"]
        .as_array()
        .context("the export has no conversations array")?;
    let messages = conversations
        .iter()
        .map(|c| c["messages"].as_array().map_or(0, Vec::len))
        .sum();
    Ok(Export {
        bytes: body.len(),
        secs,
        first_chunk_ms,
        conversations: conversations.len(),
        messages,
        rss_before_kb,
        rss_peak_kb: hwm.max(sampled),
        from_hwm,
    })
}

pub struct Measured {
    pub seeded: Seeded,
    pub export: Result<Export>,
    pub search: Result<SearchLoad>,
}

/// Seeds, starts a server of its own, exports, then searches (`opts.duration`, after 1 s of
/// warm-up).
pub async fn measure(opts: &Options, db_url: &str, model_url: &str) -> Result<Measured> {
    let seeded = seed(db_url).await?;
    eprintln!(
        "[bench] seeded {} messages ({} the searcher's) in {:.1} s",
        seeded.total_messages, seeded.searcher_messages, seeded.secs
    );
    let server = start_server(opts, db_url, model_url).await?;
    // The pool's first connection and the session check, before the baseline.
    let _ = server
        .http
        .get(format!("{}/api/chat/conversations?limit=20", server.base))
        .bearer_auth(&seeded.token)
        .send()
        .await?
        .bytes()
        .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    eprintln!("[bench] export of the searcher's {SEARCHER_MESSAGES} messages");
    let export = export(&server, &seeded.token).await;
    if let Err(err) = &export {
        eprintln!("[bench] could not measure the export: {err:#}");
    }
    eprintln!("[bench] search, {SEARCHERS} clients, {:?}", opts.duration);
    let _ = search_load(&server, &seeded.token, Duration::from_secs(1)).await;
    let search = search_load(&server, &seeded.token, opts.duration).await;
    if let Err(err) = &search {
        eprintln!("[bench] could not measure search: {err:#}");
    }
    Ok(Measured {
        seeded,
        export,
        search,
    })
}

fn peak_from(export: &Export) -> &'static str {
    if export.from_hwm {
        "VmHWM"
    } else {
        "sampled every 2 ms"
    }
}

pub fn rows(measured: &Result<Measured>) -> Vec<Row> {
    let not = |name: &'static str, err: &anyhow::Error| -> Row {
        (
            name,
            "not measured".to_string(),
            format!("{err:#}"),
            "NOT measured",
        )
    };
    let m = match measured {
        Ok(m) => m,
        Err(err) => return vec![not(SEARCH, err), not(EXPORT, err)],
    };
    let seeded = &m.seeded;
    let search = match &m.search {
        Ok(load) => (
            SEARCH,
            format!("{:.2} / {:.2} ms", load.p50_ms, load.p99_ms),
            format!(
                "{} searches ({:.0}/s), {:.0} % with results, {} errors{}; {} messages, {} the searcher's in {SEARCHER_CONVERSATIONS} conversations, seeded in {:.0} s; budget p99 ≤ {P99_BUDGET_MS}, most searches with results",
                load.requests,
                load.per_second,
                100.0 * load.with_results as f64 / load.requests as f64,
                load.errors,
                load.first_error
                    .as_ref()
                    .map_or(String::new(), |e| format!(" (first: {e})")),
                seeded.total_messages,
                seeded.searcher_messages,
                seeded.secs
            ),
            verdict(
                load.p99_ms <= P99_BUDGET_MS
                    && load.errors == 0
                    && 2 * load.with_results > load.requests,
            ),
        ),
        Err(err) => not(SEARCH, err),
    };
    let export = match &m.export {
        Ok(e) => (
            EXPORT,
            format!(
                "{:.1} MB/s; peak RSS +{:.1} MB",
                e.mb_per_second(),
                e.growth_mb()
            ),
            format!(
                "{:.1} MB in {:.2} s (first chunk after {:.0} ms), {} messages in {} conversations; RSS {:.1} → peak {:.1} MB ({}); budget growth < {RSS_GROWTH_BUDGET_MB} MB, all {SEARCHER_MESSAGES} messages",
                e.bytes as f64 / 1e6,
                e.secs,
                e.first_chunk_ms,
                e.messages,
                e.conversations,
                e.rss_before_kb as f64 / 1024.0,
                e.rss_peak_kb as f64 / 1024.0,
                peak_from(e)
            ),
            verdict(
                e.growth_mb() < RSS_GROWTH_BUDGET_MB
                    && e.messages as i64 == seeded.searcher_messages
            ),
        ),
        Err(err) => not(EXPORT, err),
    };
    vec![search, export]
}

pub fn report(measured: &Result<Measured>) -> Value {
    let Ok(m) = measured else {
        return json!({ "search": null, "export": null });
    };
    let seeded = &m.seeded;
    json!({
        "search": m.search.as_ref().ok().map(|l| json!({
            "messages": seeded.total_messages,
            "searcher_messages": seeded.searcher_messages,
            "searcher_conversations": SEARCHER_CONVERSATIONS,
            "seed_secs": seeded.secs,
            "searchers": SEARCHERS,
            "queries": QUERIES,
            "requests": l.requests,
            "rps": l.per_second,
            "p50_ms": l.p50_ms,
            "p99_ms": l.p99_ms,
            "errors": l.errors,
            "with_results": l.with_results,
        })),
        "export": m.export.as_ref().ok().map(|e| json!({
            "bytes": e.bytes,
            "secs": e.secs,
            "mb_per_second": e.mb_per_second(),
            "first_chunk_ms": e.first_chunk_ms,
            "conversations": e.conversations,
            "messages": e.messages,
            "rss_before_mb": e.rss_before_kb as f64 / 1024.0,
            "rss_peak_mb": e.rss_peak_kb as f64 / 1024.0,
            "rss_growth_mb": e.growth_mb(),
            "peak_from": peak_from(e),
        })),
    })
}
