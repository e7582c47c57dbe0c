//! Recording live events (see `model::LiveEvent`). Stored events are written in the
//! transaction of the change they describe and announced with NOTIFY when it commits, so an
//! event is never announced for a change that rolled back, nor lost for one that committed.
//! Events about a running turn (deltas, activity) are announced only.

use sqlx::{PgConnection, PgExecutor};
use uuid::Uuid;

use crate::{model::LiveEvent, server::error::AppResult};

/// The NOTIFY channel of live events. Payload: `{"u": user, "id": stored id}` or
/// `{"u": user, "e": event}` for an event that is not stored.
pub const CHANNEL: &str = "chatkit_live";
/// NOTIFY payloads must stay under 8,000 bytes.
pub const MAX_NOTIFY_BYTES: usize = 7_000;

/// Stores `event` for `user` in the caller's transaction and announces it at commit.
pub async fn record(tx: &mut PgConnection, user: Uuid, event: &LiveEvent) -> AppResult<i64> {
    Ok(sqlx::query_scalar(
        "WITH e AS (INSERT INTO live_events (user_id, payload) VALUES ($1, $2) RETURNING id)
         SELECT e.id FROM e
         CROSS JOIN LATERAL (SELECT pg_notify($3, json_build_object('u', $1, 'id', e.id)::text)) n",
    )
    .bind(user)
    .bind(sqlx::types::Json(event))
    .bind(CHANNEL)
    .fetch_one(tx)
    .await?)
}

/// Stores two events for `user` in one statement (a message and the conversation it moved).
pub async fn record_pair(
    tx: &mut PgConnection,
    user: Uuid,
    first: &LiveEvent,
    second: &LiveEvent,
) -> AppResult<()> {
    sqlx::query(
        "WITH e AS (
             INSERT INTO live_events (user_id, payload) VALUES ($1, $2), ($1, $3) RETURNING id
         )
         SELECT pg_notify($4, json_build_object('u', $1, 'id', e.id)::text) FROM e ORDER BY e.id",
    )
    .bind(user)
    .bind(sqlx::types::Json(first))
    .bind(sqlx::types::Json(second))
    .bind(CHANNEL)
    .execute(tx)
    .await?;
    Ok(())
}

/// The NOTIFY payload of an event that is not stored.
pub fn transient_payload(user: Uuid, event: &LiveEvent) -> String {
    serde_json::json!({ "u": user, "e": event }).to_string()
}

/// Stored events of `user` after `after`, oldest first (at most `limit`).
pub async fn since(
    db: impl PgExecutor<'_>,
    user: Uuid,
    after: i64,
    limit: i64,
) -> AppResult<Vec<(i64, LiveEvent)>> {
    let rows: Vec<(i64, sqlx::types::Json<LiveEvent>)> = sqlx::query_as(
        "SELECT id, payload FROM live_events WHERE user_id = $1 AND id > $2 ORDER BY id LIMIT $3",
    )
    .bind(user)
    .bind(after)
    .bind(limit)
    .fetch_all(db)
    .await?;
    Ok(rows.into_iter().map(|(id, e)| (id, e.0)).collect())
}

/// One stored event by id, with its user.
pub async fn by_id(db: impl PgExecutor<'_>, id: i64) -> AppResult<Option<(Uuid, LiveEvent)>> {
    let row: Option<(Uuid, sqlx::types::Json<LiveEvent>)> =
        sqlx::query_as("SELECT user_id, payload FROM live_events WHERE id = $1")
            .bind(id)
            .fetch_optional(db)
            .await?;
    Ok(row.map(|(user, e)| (user, e.0)))
}

/// The oldest stored event id still kept (a `Last-Event-ID` before it missed events).
pub async fn oldest_kept(db: impl PgExecutor<'_>, user: Uuid) -> AppResult<Option<i64>> {
    Ok(
        sqlx::query_scalar("SELECT min(id) FROM live_events WHERE user_id = $1")
            .bind(user)
            .fetch_one(db)
            .await?,
    )
}

/// Forgets events older than a day (clients that were away longer reload).
pub async fn prune(db: impl PgExecutor<'_>) -> AppResult<u64> {
    Ok(
        sqlx::query("DELETE FROM live_events WHERE created_at < now() - interval '1 day'")
            .execute(db)
            .await?
            .rows_affected(),
    )
}
