//! Search across the caller's conversations, in Postgres: full-text search (English stemming,
//! the last word as a prefix while it is typed) over titles and message text, each through a
//! GIN index whose keys carry the owner; titles also match with a typo (trigrams). Ranked:
//! title matches first (the best-matching title first), then messages newest first, as the
//! chat apps people know order them (ChatGPT, Open WebUI).

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use chrono::{DateTime, Utc};
use sqlx::PgPool;
use uuid::Uuid;

use crate::{
    model::{Role, SearchHit, SearchPage, SearchQuery, MAX_SEARCH_CHARS},
    server::error::{AppError, AppResult},
};

/// Admits searches to the database (see `search`).
static SEARCHES_AT_ONCE: std::sync::OnceLock<tokio::sync::Semaphore> = std::sync::OnceLock::new();

/// Deepest a search pages: past this nobody reads on, and offsets get slow.
const MAX_OFFSET: i64 = 1_000;
/// Marks around a matched word in the snippet: private-use characters, removed from the text
/// first, so the escaped snippet can only ever hold the `<mark>`s put there.
const MARK_START: char = '\u{E000}';
const MARK_END: char = '\u{E001}';
/// `<` and `>` stand in for themselves while Postgres cuts the snippet: its parser would
/// take `<img …>` for a tag and drop it, and the snippet should show what was written.
const LESS_THAN: char = '\u{E002}';
const GREATER_THAN: char = '\u{E003}';

#[derive(sqlx::FromRow)]
struct HitRow {
    conversation_id: Uuid,
    title: String,
    message_id: Option<Uuid>,
    seq: Option<i64>,
    role: Option<String>,
    created_at: DateTime<Utc>,
    snippet: String,
}

pub async fn search(pool: &PgPool, user: Uuid, query: &SearchQuery) -> AppResult<SearchPage> {
    let q = super::required_text(&query.q, "search", MAX_SEARCH_CHARS)?;
    let limit = match query.limit.unwrap_or(20) {
        n @ 1..=50 => n,
        n => {
            return Err(AppError::validation(format!(
                "limit must be between 1 and 50, got {n}"
            )))
        }
    };
    let offset = query
        .cursor
        .as_deref()
        .filter(|c| !c.is_empty())
        .map(decode_cursor)
        .transpose()?
        .unwrap_or(0);
    let Some(ts_query) = ts_query(&q) else {
        // Only punctuation: nothing can match.
        return Ok(SearchPage {
            results: Vec::new(),
            next_cursor: None,
            has_more: false,
        });
    };
    let options = format!(
        "StartSel=\"{MARK_START}\", StopSel=\"{MARK_END}\", MaxWords=28, MinWords=10, \
         MaxFragments=2, FragmentDelimiter=\" … \""
    );
    // Every part of the page reads about as many rows as it can show: title hits from the
    // user's titles, message hits from the user's newest messages (`newest_matches`).
    let wanted = offset + limit + 1;
    let sql = format!(
        "WITH query AS (SELECT to_tsquery('english', $2) AS q),
         owned AS (SELECT owned_query($1, q) AS q FROM query),
         deleted AS (SELECT id FROM conversations WHERE user_id = $1 AND deleted_at IS NOT NULL),
         titles AS (
             SELECT c.id AS conversation_id, NULL::uuid AS message_id, NULL::bigint AS seq,
                    NULL::text AS role, c.updated_at AS created_at, 1 AS kind,
                    ts_rank_cd(c.title_search, query.q) + word_similarity($3, c.title) AS rank
             FROM conversations c, query
             WHERE c.user_id = $1 AND c.deleted_at IS NULL
               AND (c.title_search @@ query.q OR ($4 AND $3 <% c.title))
             ORDER BY rank DESC, c.updated_at DESC, c.id
             LIMIT $10
         ),
         {messages},
         hits AS (
             SELECT * FROM titles
             UNION ALL
             SELECT conversation_id, message_id, seq, role, created_at, 0, 0 FROM message_hits
         ),
         page AS (
             SELECT * FROM hits
             ORDER BY kind DESC, rank DESC, created_at DESC, message_id DESC NULLS FIRST, conversation_id
             LIMIT $5 OFFSET $6
         )
         SELECT page.conversation_id, c.title, page.message_id, page.seq, page.role,
                page.created_at,
                ts_headline('english', translate(COALESCE(m.content, c.title), $7, $8),
                            query.q, $9) AS snippet
         FROM page
         JOIN conversations c ON c.id = page.conversation_id
         LEFT JOIN messages m ON m.id = page.message_id,
         query
         ORDER BY page.kind DESC, page.rank DESC, page.created_at DESC,
                  page.message_id DESC NULLS FIRST, page.conversation_id",
        messages = newest_matches(wanted),
    );
    // At most two searches per core run at once, the rest wait their turn in order: a search
    // is CPU work in Postgres, and sharing the cores among more of them only stretches each
    // (a slow one the most). Two per core keep the cores busy while one waits on a round
    // trip (one per core: 477 searches/s, p99 58 ms; unbounded: 620/s, p99 78 ms).
    let _running = SEARCHES_AT_ONCE
        .get_or_init(|| {
            let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
            tokio::sync::Semaphore::new(2 * cores)
        })
        .acquire()
        .await
        .map_err(|_| AppError::Internal(anyhow::anyhow!("the search queue is closed")))?;
    let mut rows = sqlx::query_as::<_, HitRow>(&sql)
        .bind(user)
        .bind(&ts_query)
        .bind(&q)
        .bind(q.chars().count() >= 3)
        .bind(limit + 1)
        .bind(offset)
        .bind(format!("<>{MARK_START}{MARK_END}"))
        .bind(format!("{LESS_THAN}{GREATER_THAN}"))
        .bind(options)
        .bind(wanted)
        .fetch_all(pool)
        .await?;
    let has_more = rows.len() as i64 > limit && offset + limit < MAX_OFFSET;
    rows.truncate(limit as usize);
    let results = rows
        .into_iter()
        .map(|r| SearchHit {
            conversation_id: r.conversation_id,
            conversation_title: r.title,
            message_id: r.message_id,
            seq: r.seq,
            role: r.role.as_deref().map(|role| match role {
                "user" => Role::User,
                _ => Role::Assistant,
            }),
            snippet_html: snippet_html(&r.snippet),
            created_at: r.created_at,
        })
        .collect();
    Ok(SearchPage {
        results,
        next_cursor: has_more.then(|| encode_cursor(offset + limit)),
        has_more,
    })
}

/// The CTEs that end in `message_hits`: the user's `wanted` newest matching messages (newest
/// first), over `query`, `owned` and `deleted`, binding `$1` (the user) and `$10` (`wanted`).
///
/// A window of the user's newest messages is read first, newest first, until `wanted` of
/// them match: a common word (most searches) is found in the first few hundred rows, and
/// when the window holds `wanted` matches they are the newest ones. Only a rarer query, with
/// fewer matches in the window, reads its matches through the index (the user's posting
/// lists: few rows, since the query is rare for this user), and sorts them.
fn newest_matches(wanted: i64) -> String {
    // Enough rows for a query matching one message in 32 to fill the page from the window
    // (a page of 20: 1,024 rows). A rarer query reads the whole window before its index
    // lookup, so the window is no larger: at 2,048 rows, the slowest searches of the
    // benchmark (two words, one of them a prefix) spent a third of their time in it.
    let window = (wanted * 32).max(512) as u64;
    let window = window.next_power_of_two();
    format!(
        "recent AS MATERIALIZED (
             SELECT w.conversation_id, w.id AS message_id, w.seq, w.role, w.created_at
             FROM (SELECT m.conversation_id, m.id, m.seq, m.role, m.created_at, m.search
                   FROM messages m WHERE m.user_id = $1
                   ORDER BY m.created_at DESC, m.id DESC LIMIT {window}) w, owned
             WHERE w.search @@ owned.q AND w.conversation_id NOT IN (SELECT id FROM deleted)
             ORDER BY w.created_at DESC, w.id DESC
             LIMIT $10
         ),
         -- The owner is compared outside: inside, the planner may take the owner's index
         -- and test every one of the user's messages instead of the GIN lookup.
         rarer AS MATERIALIZED (
             SELECT m.conversation_id, m.id AS message_id, m.seq, m.role, m.created_at, m.user_id
             FROM messages m, owned
             WHERE m.search @@ owned.q AND (SELECT count(*) FROM recent) < $10
         ),
         message_hits AS (
             SELECT * FROM recent WHERE (SELECT count(*) FROM recent) >= $10
             UNION ALL
             (SELECT conversation_id, message_id, seq, role, created_at FROM rarer
              WHERE user_id = $1 AND conversation_id NOT IN (SELECT id FROM deleted)
              ORDER BY created_at DESC, message_id DESC
              LIMIT $10)
         )"
    )
}

/// The words of `q` as a `to_tsquery` expression: all of them, the last as a prefix (it may
/// still be being typed). Words are letters and digits only, each quoted, so nothing in `q`
/// is syntax.
fn ts_query(q: &str) -> Option<String> {
    let words: Vec<String> = q
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(|w| format!("'{}'", w.to_lowercase()))
        .collect();
    let (last, rest) = words.split_last()?;
    let mut terms: Vec<String> = rest.to_vec();
    terms.push(format!("{last}:*"));
    Some(terms.join(" & "))
}

/// Escapes the snippet for HTML and turns the marks into `<mark>` elements.
fn snippet_html(snippet: &str) -> String {
    let mut html = String::with_capacity(snippet.len() + 32);
    for c in snippet.chars() {
        match c {
            '&' => html.push_str("&amp;"),
            '<' | LESS_THAN => html.push_str("&lt;"),
            '>' | GREATER_THAN => html.push_str("&gt;"),
            '"' => html.push_str("&quot;"),
            '\'' => html.push_str("&#39;"),
            MARK_START => html.push_str("<mark>"),
            MARK_END => html.push_str("</mark>"),
            c => html.push(c),
        }
    }
    html
}

fn encode_cursor(offset: i64) -> String {
    URL_SAFE_NO_PAD.encode(format!("o{offset}"))
}

fn decode_cursor(cursor: &str) -> AppResult<i64> {
    let invalid = || AppError::validation("invalid cursor");
    let raw = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| invalid())?;
    let raw = String::from_utf8(raw).map_err(|_| invalid())?;
    match raw.strip_prefix('o').and_then(|n| n.parse::<i64>().ok()) {
        Some(n @ 0..=MAX_OFFSET) => Ok(n),
        _ => Err(invalid()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_are_words_with_the_last_as_a_prefix() {
        assert_eq!(
            ts_query("buying groc").as_deref(),
            Some("'buying' & 'groc':*")
        );
        assert_eq!(
            ts_query("it's a 'quote' & | ! (x)").as_deref(),
            Some("'it' & 's' & 'a' & 'quote' & 'x':*")
        );
        assert_eq!(ts_query("Café").as_deref(), Some("'café':*"));
        assert_eq!(ts_query("!!! ..."), None);
    }

    #[test]
    fn snippets_hold_no_markup_but_marks() {
        let raw = format!(
            "<img src=x onerror=alert(1)> {LESS_THAN}b{GREATER_THAN} {MARK_START}milk{MARK_END} & \"more\""
        );
        assert_eq!(
            snippet_html(&raw),
            "&lt;img src=x onerror=alert(1)&gt; &lt;b&gt; <mark>milk</mark> &amp; &quot;more&quot;"
        );
    }

    #[test]
    fn cursors_are_bounded_offsets() {
        assert_eq!(decode_cursor(&encode_cursor(40)).unwrap(), 40);
        for bad in [
            "",
            "!!",
            &URL_SAFE_NO_PAD.encode("o-1"),
            &URL_SAFE_NO_PAD.encode("o5000"),
        ] {
            assert!(decode_cursor(bad).is_err(), "{bad}");
        }
    }
}
