//! What a running turn is doing, for every open tab: its activity (thinking or a tool) and
//! the reply written so far, kept in the unlogged `turn_activity` row (and the reply's pieces
//! in `turn_reply_pieces`) and announced as live events (`activity`, `delta`).

use sqlx::PgPool;
use uuid::Uuid;

use crate::{
    model::LiveEvent,
    server::{
        bus::{process_id, transient_payload, EventBus, LIVE_CHANNEL, MAX_NOTIFY_BYTES},
        error::AppResult,
    },
};

/// The turn attempt that reports progress. Its writes land (and are announced) only while it
/// still holds the turn's lease: an attempt that lost it (frozen, taken over) cannot mix its
/// text into the reply of the attempt that replaced it.
#[derive(Clone, Copy, Debug)]
pub struct Reporter {
    pub user: Uuid,
    pub conversation: Uuid,
    /// The user message being answered.
    pub user_seq: i64,
    pub turn: Uuid,
    pub attempt: Uuid,
}

/// SQL: `$7` (turn) and `$8` (attempt) still hold the turn.
const HOLDS_TURN: &str = "EXISTS (SELECT 1 FROM turns WHERE id = $7 AND attempt_id = $8
     AND state = 'running' AND lease_until > clock_timestamp())";

/// Records what the turn answering `user_seq` is doing (`None`: thinking) and announces it to
/// the user's live streams. Unlogged and outside any transaction: cheap, and never holds up
/// the turn. Returns the length of the reply so far (the offset of the next delta), or `None`
/// when this attempt no longer holds the turn.
pub async fn set_activity(
    pool: &PgPool,
    bus: &EventBus,
    reporter: &Reporter,
    tool_name: Option<&str>,
) -> AppResult<Option<i64>> {
    let Reporter {
        user,
        conversation,
        user_seq,
        ..
    } = *reporter;
    let event = LiveEvent::working(conversation, user_seq, tool_name.map(str::to_string));
    // Decided once: the database announces it, or we publish it after.
    let in_database = bus.announces_in_database();
    let written: Option<i32> = sqlx::query_scalar(&format!(
        "WITH a AS (
             INSERT INTO turn_activity (conversation_id, user_seq, tool_name)
             SELECT $1, $2, $3 WHERE {HOLDS_TURN}
             ON CONFLICT (conversation_id) DO UPDATE
             SET user_seq = EXCLUDED.user_seq, tool_name = EXCLUDED.tool_name,
                 updated_at = clock_timestamp(),
                 partial_chars = CASE WHEN turn_activity.user_seq = EXCLUDED.user_seq
                                      THEN turn_activity.partial_chars ELSE 0 END
             RETURNING partial_chars
         ), stale AS (
             DELETE FROM turn_reply_pieces
             WHERE conversation_id = $1 AND user_seq <> $2 AND EXISTS (SELECT 1 FROM a)
         )
         SELECT a.partial_chars FROM a
         CROSS JOIN LATERAL (SELECT CASE WHEN $6 THEN pg_notify($4, $5) END) n"
    ))
    .bind(conversation)
    .bind(user_seq)
    .bind(tool_name)
    .bind(LIVE_CHANNEL)
    .bind(transient_payload(user, &event))
    .bind(in_database)
    .bind(reporter.turn)
    .bind(reporter.attempt)
    .fetch_optional(pool)
    .await?;
    if !in_database && written.is_some() {
        bus.publish_live(pool, user, None, &event).await;
    }
    Ok(written.map(i64::from))
}

/// Appends streamed text to the running turn's reply so far and announces it as a delta
/// (with its offset, so a client that read the reply so far can skip what it has). Constant
/// work per flush however long the reply: the text is added as a piece of its own, and the
/// activity row only counts characters.
pub async fn append_partial(
    pool: &PgPool,
    bus: &EventBus,
    reporter: &Reporter,
    text: &str,
) -> AppResult<()> {
    let Reporter {
        user,
        conversation,
        user_seq,
        ..
    } = *reporter;
    let mut rest = text;
    // NOTIFY payloads are bounded: a long flush goes out as several deltas.
    while !rest.is_empty() {
        let mut cut = rest.len().min(MAX_NOTIFY_BYTES / 2);
        while !rest.is_char_boundary(cut) {
            cut -= 1;
        }
        let (piece, tail) = rest.split_at(cut);
        let in_database = bus.announces_in_database();
        let at: Option<i32> = sqlx::query_scalar(&format!(
            "WITH a AS (
                 UPDATE turn_activity SET partial_chars = partial_chars + char_length($3)
                 WHERE conversation_id = $1 AND user_seq = $2 AND {HOLDS_TURN}
                 RETURNING partial_chars - char_length($3) AS at
             ), p AS (
                 INSERT INTO turn_reply_pieces (conversation_id, user_seq, at, piece)
                 SELECT $1, $2, a.at, $3 FROM a
             )
             SELECT a.at FROM a
             CROSS JOIN LATERAL (
                 SELECT CASE WHEN $6 THEN pg_notify($4, json_build_object('u', $5::uuid, 'o', $9::uuid, 'e',
                     json_build_object('type', 'delta', 'conversation_id', $1::uuid,
                         'seq', $2 + 1, 'text', $3::text, 'offset', a.at))::text) END
             ) n"
        ))
        .bind(conversation)
        .bind(user_seq)
        .bind(piece)
        .bind(LIVE_CHANNEL)
        .bind(user)
        .bind(in_database)
        .bind(reporter.turn)
        .bind(reporter.attempt)
        .bind(process_id())
        .fetch_optional(pool)
        .await?;
        if let Some(offset) = at.filter(|_| !in_database) {
            let event = LiveEvent::Delta {
                conversation_id: conversation,
                seq: user_seq + 1,
                text: piece.to_string(),
                offset: i64::from(offset),
            };
            bus.publish_live(pool, user, None, &event).await;
        }
        rest = tail;
    }
    Ok(())
}

/// The running turns of a user: (conversation, user seq, tool in use, reply so far), for a
/// live stream that (re)connects.
pub async fn running_turns(
    pool: &PgPool,
    user: Uuid,
) -> AppResult<Vec<(Uuid, i64, Option<String>, String)>> {
    Ok(sqlx::query_as(
        "SELECT a.conversation_id, a.user_seq, a.tool_name,
                COALESCE((SELECT string_agg(p.piece, '' ORDER BY p.at) FROM turn_reply_pieces p
                          WHERE p.conversation_id = a.conversation_id AND p.user_seq = a.user_seq),
                         '')
         FROM turn_activity a JOIN conversations c ON c.id = a.conversation_id
         WHERE c.user_id = $1 AND c.deleted_at IS NULL
           AND (a.user_seq = c.last_seq OR c.branched)",
    )
    .bind(user)
    .fetch_all(pool)
    .await?)
}
