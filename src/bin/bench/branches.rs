//! Branches (issue 23): listing the current branch of a conversation whose messages form a
//! tree costs no more than twice listing a straight one of the same size.
//!
//! Two conversations of the benchmark user, seeded with bulk SQL (parents and depths given, so
//! the `messages_tree` trigger leaves them alone): a straight line of 10,000 messages, and a
//! tree of 10,000 with 1,000 branch points: a main path of 9,000 messages where every 9th has
//! an earlier version beside it (an edited question or a regenerated answer, a leaf, inserted
//! just before the version that replaced it), so `seq` stays gap-free in insertion order and
//! the current branch (the main path, up to its leaf) is 9,000 long. `CLIENTS` clients read
//! the default page (the newest 50 of the current branch) and a page further back
//! (`?before=` the first seq of the default page) of each, back to back.

use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};
use sqlx::{Connection, PgConnection};
use uuid::Uuid;

use super::{
    reads::percentile,
    setup::{BenchUser, Options, Server},
    verdict, Row,
};

const ROW: &str =
    "current branch page (10,000 messages, 1,000 branch points) p50/p99 ms vs straight";

/// Messages in each conversation.
const MESSAGES: i64 = 10_000;
/// Messages with an earlier version beside them in the branched conversation.
const BRANCH_POINTS: i64 = 1_000;
/// The main path's messages per branch point: every 9th has a sibling.
const EVERY: i64 = 9;
/// The branched conversation's current branch.
const MAIN_PATH: i64 = MESSAGES - BRANCH_POINTS;
const _: () = assert!(EVERY * BRANCH_POINTS == MAIN_PATH);
/// The server's default page.
const PAGE: usize = 50;
const CLIENTS: usize = 16;
const RATIO_BUDGET: f64 = 2.0;

/// The seeded conversations, and what the database holds for them once seeded.
pub struct Seeded {
    pub straight: Uuid,
    pub branched: Uuid,
    pub straight_messages: i64,
    pub branched_messages: i64,
    /// Sibling groups of more than one message in the branched conversation.
    pub branch_points: i64,
    /// The depth of the branched conversation's current leaf.
    pub branch_length: Option<i64>,
    pub secs: f64,
}

/// The straight conversation, then the branched one (see the module's comment), then ANALYZE.
async fn seed(db_url: &str, user: Uuid) -> Result<Seeded> {
    let t = Instant::now();
    let mut conn = PgConnection::connect(db_url).await?;
    let straight = Uuid::new_v4();
    let branched = Uuid::new_v4();
    let text = "' with some ordinary text in it, about the length people type.'";
    let statements = [
        // The current leaves: the straight line's last message, the main path's last.
        format!(
            "INSERT INTO conversations (id, user_id, title, message_count, last_seq, last_message_preview,
                                        branched, current_message_id)
             VALUES ('{straight}', '{user}', 'Straight', {MESSAGES}, {MESSAGES}, 'preview', false,
                     md5('{straight}-m{MESSAGES}')::uuid),
                    ('{branched}', '{user}', 'Branched', {MESSAGES}, {MESSAGES}, 'preview', true,
                     md5('{branched}-m{MAIN_PATH}')::uuid)"
        ),
        format!(
            "INSERT INTO messages (id, conversation_id, seq, role, content, created_at, parent_id, depth)
             SELECT md5('{straight}-m' || i)::uuid, '{straight}', i,
                    CASE WHEN i % 2 = 1 THEN 'user' ELSE 'assistant' END,
                    'Message number ' || i || {text},
                    now() - ({MESSAGES} - i) * interval '1 second',
                    CASE WHEN i > 1 THEN md5('{straight}-m' || (i - 1))::uuid END,
                    i
             FROM generate_series(1, {MESSAGES}) i"
        ),
        // Main path message k has seq k + k / EVERY; the earlier version of message k = EVERY * j
        // (same parent, same role) has the seq just before it, k + j - 1.
        format!(
            "INSERT INTO messages (id, conversation_id, seq, role, content, created_at, parent_id, depth)
             SELECT t.id, '{branched}', t.seq, t.role, t.content,
                    now() - ({MESSAGES} - t.seq) * interval '1 second', t.parent_id, t.depth
             FROM (
                 SELECT md5('{branched}-m' || k)::uuid AS id, k + k / {EVERY} AS seq,
                        CASE WHEN k % 2 = 1 THEN 'user' ELSE 'assistant' END AS role,
                        'Message number ' || k || {text} AS content,
                        CASE WHEN k > 1 THEN md5('{branched}-m' || (k - 1))::uuid END AS parent_id,
                        k AS depth
                 FROM generate_series(1, {MAIN_PATH}) k
                 UNION ALL
                 SELECT md5('{branched}-s' || j)::uuid, {EVERY} * j + j - 1,
                        CASE WHEN ({EVERY} * j) % 2 = 1 THEN 'user' ELSE 'assistant' END,
                        CASE WHEN ({EVERY} * j) % 2 = 1
                             THEN 'An earlier version of message ' || ({EVERY} * j) || ', since edited' || {text}
                             ELSE 'An earlier answer at message ' || ({EVERY} * j) || ', since regenerated' || {text}
                        END,
                        md5('{branched}-m' || ({EVERY} * j - 1))::uuid,
                        {EVERY} * j
                 FROM generate_series(1, {BRANCH_POINTS}) j
             ) t
             ORDER BY t.seq"
        ),
        "ANALYZE conversations, messages".to_string(),
    ];
    for sql in &statements {
        sqlx::query(sql)
            .execute(&mut conn)
            .await
            .with_context(|| format!("seeding the branches' conversations: {sql}"))?;
    }
    let (straight_messages, branched_messages, branch_points, branch_length): (
        i64,
        i64,
        i64,
        Option<i64>,
    ) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM messages WHERE conversation_id = $1),
                (SELECT count(*) FROM messages WHERE conversation_id = $2),
                (SELECT count(*) FROM (SELECT sibling_of FROM messages WHERE conversation_id = $2
                                       GROUP BY sibling_of HAVING count(*) > 1) b),
                (SELECT m.depth::bigint FROM conversations c
                 JOIN messages m ON m.id = c.current_message_id WHERE c.id = $2)",
    )
    .bind(straight)
    .bind(branched)
    .fetch_one(&mut conn)
    .await?;
    Ok(Seeded {
        straight,
        branched,
        straight_messages,
        branched_messages,
        branch_points,
        branch_length,
        secs: t.elapsed().as_secs_f64(),
    })
}

/// One page as the API answers it, read once before the load.
pub struct Checked {
    pub messages: usize,
    pub total_count: i64,
    pub has_more: bool,
    pub first_seq: i64,
    pub last_seq: i64,
    /// Messages of the page with siblings (branch points on it).
    pub with_siblings: usize,
}

async fn check(http: &reqwest::Client, url: &str, token: &str) -> Result<Checked> {
    let res = http
        .get(url)
        .bearer_auth(token)
        .send()
        .await
        .with_context(|| format!("GET {url}"))?;
    let status = res.status();
    if !status.is_success() {
        let body = res.text().await.unwrap_or_default();
        bail!(
            "GET {url}: {status} {}",
            body.chars().take(200).collect::<String>()
        );
    }
    let page: Value = res
        .json()
        .await
        .with_context(|| format!("GET {url}: not a message page"))?;
    let messages = page["messages"]
        .as_array()
        .with_context(|| format!("GET {url}: no messages array"))?;
    let seq = |m: &Value| m["seq"].as_i64();
    Ok(Checked {
        messages: messages.len(),
        total_count: page["total_count"].as_i64().unwrap_or(-1),
        has_more: page["has_more"].as_bool().unwrap_or(false),
        first_seq: messages
            .first()
            .and_then(seq)
            .with_context(|| format!("GET {url}: an empty page"))?,
        last_seq: messages.last().and_then(seq).unwrap_or(0),
        with_siblings: messages
            .iter()
            .filter(|m| m["sibling_count"].as_i64().unwrap_or(1) > 1)
            .count(),
    })
}

/// Latency samples and throughput of one load run.
pub struct PageLoad {
    pub requests: usize,
    pub errors: usize,
    pub first_error: Option<String>,
    pub per_second: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
}

/// `CLIENTS` workers issue GETs of `url` back to back for `duration`.
async fn run_load(http: &reqwest::Client, url: &str, token: &str, duration: Duration) -> PageLoad {
    let started = Instant::now();
    let deadline = started + duration;
    let workers = (0..CLIENTS).map(|_| {
        let (http, url, token) = (http.clone(), url.to_string(), token.to_string());
        tokio::spawn(async move {
            let mut samples: Vec<Duration> = Vec::with_capacity(4096);
            let mut errors = 0usize;
            let mut first_error: Option<String> = None;
            while Instant::now() < deadline {
                let t = Instant::now();
                let error = match http.get(&url).bearer_auth(&token).send().await {
                    Ok(res) if res.status().is_success() => match res.bytes().await {
                        Ok(_) => {
                            samples.push(t.elapsed());
                            None
                        }
                        Err(err) => Some(err.to_string()),
                    },
                    Ok(res) => Some(res.status().to_string()),
                    Err(err) => Some(err.to_string()),
                };
                if let Some(error) = error {
                    errors += 1;
                    if first_error.is_none() {
                        first_error = Some(error);
                    }
                }
            }
            (samples, errors, first_error)
        })
    });
    let mut all: Vec<Duration> = Vec::new();
    let mut errors = 0usize;
    let mut first_error: Option<String> = None;
    for (samples, e, first) in futures::future::join_all(workers)
        .await
        .into_iter()
        .flatten()
    {
        all.extend(samples);
        errors += e;
        first_error = first_error.or(first);
    }
    let elapsed = started.elapsed().as_secs_f64();
    all.sort();
    PageLoad {
        requests: all.len(),
        errors,
        first_error,
        per_second: all.len() as f64 / elapsed,
        p50_ms: percentile(&all, 0.50),
        p99_ms: percentile(&all, 0.99),
    }
}

/// One page measured: checked once, 1 s of warm-up, then `duration` of load.
pub struct Page {
    pub before: Option<i64>,
    pub checked: Checked,
    pub load: PageLoad,
}

async fn page(
    server: &Server,
    token: &str,
    conversation: Uuid,
    before: Option<i64>,
    duration: Duration,
) -> Result<Page> {
    let mut url = format!(
        "{}/api/chat/conversations/{conversation}/messages",
        server.base
    );
    if let Some(before) = before {
        url.push_str(&format!("?before={before}"));
    }
    let checked = check(&server.http, &url, token).await?;
    let _ = run_load(&server.http, &url, token, Duration::from_secs(1)).await;
    let load = run_load(&server.http, &url, token, duration).await;
    Ok(Page {
        before,
        checked,
        load,
    })
}

pub struct Measured {
    pub seeded: Seeded,
    pub straight_latest: Page,
    pub branched_latest: Page,
    pub straight_older: Page,
    pub branched_older: Page,
    /// What differs from the data and pages described (empty when all is as seeded).
    pub problems: Vec<String>,
}

/// Seeds the two conversations for `user`, then loads each of the four pages in turn.
pub async fn measure(
    server: &Server,
    user: &BenchUser,
    db_url: &str,
    opts: &Options,
) -> Result<Measured> {
    let seeded = seed(db_url, user.id).await?;
    eprintln!(
        "[bench] seeded a straight and a branched conversation of {MESSAGES} messages ({} branch points) in {:.1} s",
        seeded.branch_points, seeded.secs
    );
    let (token, duration) = (&user.token, opts.duration);
    eprintln!("[bench] current branch page vs straight, {CLIENTS} clients, {duration:?} each");
    let straight_latest = page(server, token, seeded.straight, None, duration).await?;
    let branched_latest = page(server, token, seeded.branched, None, duration).await?;
    let before = Some(straight_latest.checked.first_seq);
    let straight_older = page(server, token, seeded.straight, before, duration).await?;
    let before = Some(branched_latest.checked.first_seq);
    let branched_older = page(server, token, seeded.branched, before, duration).await?;

    let mut problems = Vec::new();
    let s = &seeded;
    if s.straight_messages != MESSAGES || s.branched_messages != MESSAGES {
        problems.push(format!(
            "seeded {} straight and {} branched messages",
            s.straight_messages, s.branched_messages
        ));
    }
    if s.branch_points != BRANCH_POINTS || s.branch_length != Some(MAIN_PATH) {
        problems.push(format!(
            "seeded {} branch points, a current branch of {:?}",
            s.branch_points, s.branch_length
        ));
    }
    for (name, p, total) in [
        ("straight, latest", &straight_latest, MESSAGES),
        ("branched, latest", &branched_latest, MAIN_PATH),
        ("straight, further back", &straight_older, MESSAGES),
        ("branched, further back", &branched_older, MAIN_PATH),
    ] {
        let c = &p.checked;
        if c.messages != PAGE || !c.has_more || c.total_count != total {
            problems.push(format!(
                "{name}: {} messages, total_count {}, has_more {}",
                c.messages, c.total_count, c.has_more
            ));
        }
    }
    for (name, p) in [
        ("straight", &straight_latest),
        ("branched", &branched_latest),
    ] {
        if p.checked.last_seq != MESSAGES {
            problems.push(format!(
                "{name}: the latest page ends at seq {}",
                p.checked.last_seq
            ));
        }
    }
    for (name, older, latest) in [
        ("straight", &straight_older, &straight_latest),
        ("branched", &branched_older, &branched_latest),
    ] {
        if older.checked.last_seq >= latest.checked.first_seq {
            problems.push(format!(
                "{name}: the page further back ends at seq {}, not before {}",
                older.checked.last_seq, latest.checked.first_seq
            ));
        }
    }
    if branched_latest.checked.with_siblings == 0 || branched_older.checked.with_siblings == 0 {
        problems.push("a branched page shows no message with siblings".into());
    }
    for problem in &problems {
        eprintln!("[bench] branches: {problem}");
    }
    Ok(Measured {
        seeded,
        straight_latest,
        branched_latest,
        straight_older,
        branched_older,
        problems,
    })
}

fn ratio(branched: &Page, straight: &Page) -> f64 {
    branched.load.p50_ms / straight.load.p50_ms
}

impl Measured {
    fn pages(&self) -> [&Page; 4] {
        [
            &self.straight_latest,
            &self.branched_latest,
            &self.straight_older,
            &self.branched_older,
        ]
    }

    fn errors(&self) -> usize {
        self.pages().iter().map(|p| p.load.errors).sum()
    }

    fn first_error(&self) -> Option<&str> {
        self.pages()
            .into_iter()
            .find_map(|p| p.load.first_error.as_deref())
    }
}

pub fn rows(measured: &Result<Measured>) -> Vec<Row> {
    let m = match measured {
        Ok(m) => m,
        Err(err) => {
            return vec![(
                ROW,
                "not measured".to_string(),
                format!("{err:#}"),
                "NOT measured",
            )]
        }
    };
    let (sl, bl, so, bo) = (
        &m.straight_latest.load,
        &m.branched_latest.load,
        &m.straight_older.load,
        &m.branched_older.load,
    );
    let latest_ratio = ratio(&m.branched_latest, &m.straight_latest);
    let older_ratio = ratio(&m.branched_older, &m.straight_older);
    let errors = m.errors();
    let s = &m.seeded;
    let problems = if m.problems.is_empty() {
        String::new()
    } else {
        format!("; PROBLEMS: {}", m.problems.join("; "))
    };
    vec![(
        ROW,
        format!(
            "{:.2}/{:.2} vs {:.2}/{:.2}",
            bl.p50_ms, bl.p99_ms, sl.p50_ms, sl.p99_ms
        ),
        format!(
            "ratio {latest_ratio:.2} (default page of {PAGE}); a page further back (before=): {:.2}/{:.2} vs {:.2}/{:.2}, ratio {older_ratio:.2}; req/s {:.0} vs {:.0}, further back {:.0} vs {:.0} ({CLIENTS} clients, {errors} errors{}); current branch {} of {} messages, {} branch points, seeded in {:.1} s{problems}; budget ratio ≤ {RATIO_BUDGET}",
            bo.p50_ms,
            bo.p99_ms,
            so.p50_ms,
            so.p99_ms,
            bl.per_second,
            sl.per_second,
            bo.per_second,
            so.per_second,
            m.first_error()
                .map_or(String::new(), |e| format!(", first: {e}")),
            s.branch_length.unwrap_or(0),
            s.branched_messages,
            s.branch_points,
            s.secs,
        ),
        verdict(
            latest_ratio <= RATIO_BUDGET
                && older_ratio <= RATIO_BUDGET
                && errors == 0
                && m.problems.is_empty(),
        ),
    )]
}

pub fn report(measured: &Result<Measured>) -> Value {
    let Ok(m) = measured else {
        return json!({ "current_branch_page": null });
    };
    let page = |p: &Page| {
        json!({
            "before": p.before,
            "p50_ms": p.load.p50_ms,
            "p99_ms": p.load.p99_ms,
            "rps": p.load.per_second,
            "requests": p.load.requests,
            "errors": p.load.errors,
            "total_count": p.checked.total_count,
            "with_siblings": p.checked.with_siblings,
        })
    };
    let s = &m.seeded;
    json!({
        "current_branch_page": {
            "messages": s.branched_messages,
            "branch_points": s.branch_points,
            "current_branch": s.branch_length,
            "seed_secs": s.secs,
            "clients": CLIENTS,
            "straight_latest": page(&m.straight_latest),
            "branched_latest": page(&m.branched_latest),
            "straight_further_back": page(&m.straight_older),
            "branched_further_back": page(&m.branched_older),
            "ratio_latest_p50": ratio(&m.branched_latest, &m.straight_latest),
            "ratio_further_back_p50": ratio(&m.branched_older, &m.straight_older),
            "problems": m.problems,
        }
    })
}
