//! Recording live events (see `model::LiveEvent`). Stored events are written in the
//! transaction of the change they describe. On the Postgres bus they are announced with
//! NOTIFY when it commits, so an event is never announced for a change that rolled back, nor
//! lost for one that committed; on NATS the caller publishes them once it has committed (the
//! `Outbox`). Events about a running turn (deltas, activity) are announced only.

use sqlx::{PgConnection, PgExecutor, PgPool};
use uuid::Uuid;

use crate::{
    model::LiveEvent,
    server::{
        bus::{EventBus, LIVE_CHANNEL},
        error::AppResult,
    },
};

/// Stored events to publish once their transaction has committed (empty when the database
/// announced them itself).
#[must_use = "publish the events after the commit"]
#[derive(Default)]
pub struct Outbox(Vec<(Uuid, i64, LiveEvent)>);

impl Outbox {
    pub fn merge(mut self, other: Outbox) -> Outbox {
        self.0.extend(other.0);
        self
    }

    /// Publishes the events (call after the commit).
    pub async fn publish(self, bus: &EventBus, pool: &PgPool) {
        for (user, id, event) in self.0 {
            bus.publish_live(pool, user, Some(id), &event).await;
        }
    }
}

/// Stores `events` for `user` in the caller's transaction: announced at commit by the
/// database, or returned in the outbox for the caller to publish after it.
pub async fn record_all(
    tx: &mut PgConnection,
    bus: &EventBus,
    user: Uuid,
    events: &[&LiveEvent],
) -> AppResult<Outbox> {
    let payloads: Vec<sqlx::types::Json<&LiveEvent>> =
        events.iter().map(|e| sqlx::types::Json(*e)).collect();
    let in_database = bus.announces_in_database();
    let ids: Vec<i64> = sqlx::query_scalar(
        "WITH e AS (
             INSERT INTO live_events (user_id, payload)
             SELECT $1, p FROM unnest($2::jsonb[]) WITH ORDINALITY AS u(p, n) ORDER BY n
             RETURNING id
         )
         SELECT e.id FROM e
         CROSS JOIN LATERAL (
             SELECT CASE WHEN $4 THEN pg_notify($3, json_build_object('u', $1, 'id', e.id)::text) END
         ) n
         ORDER BY e.id",
    )
    .bind(user)
    .bind(payloads)
    .bind(LIVE_CHANNEL)
    .bind(in_database)
    .fetch_all(tx)
    .await?;
    if in_database {
        return Ok(Outbox::default());
    }
    Ok(Outbox(
        ids.into_iter()
            .zip(events)
            .map(|(id, event)| (user, id, (*event).clone()))
            .collect(),
    ))
}

/// `record_all` of one event.
pub async fn record(
    tx: &mut PgConnection,
    bus: &EventBus,
    user: Uuid,
    event: &LiveEvent,
) -> AppResult<Outbox> {
    record_all(tx, bus, user, &[event]).await
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

/// Stored events by id: (id, (user, event)), for those still kept.
pub async fn by_ids(
    db: impl PgExecutor<'_>,
    ids: &[i64],
) -> AppResult<Vec<(i64, (Uuid, LiveEvent))>> {
    let rows: Vec<(i64, Uuid, sqlx::types::Json<LiveEvent>)> =
        sqlx::query_as("SELECT id, user_id, payload FROM live_events WHERE id = ANY($1)")
            .bind(ids)
            .fetch_all(db)
            .await?;
    Ok(rows
        .into_iter()
        .map(|(id, user, e)| (id, (user, e.0)))
        .collect())
}

/// The newest stored event id of `user` (a stream without `Last-Event-ID` starts after it).
pub async fn newest(db: impl PgExecutor<'_>, user: Uuid) -> AppResult<Option<i64>> {
    Ok(
        sqlx::query_scalar("SELECT max(id) FROM live_events WHERE user_id = $1")
            .bind(user)
            .fetch_one(db)
            .await?,
    )
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
