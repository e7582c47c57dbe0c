//! Reminders of tasks that come due. Which reminder is owed when is kept in the database
//! (`tasks.remind_at`, set by a trigger on every write of a task: its due time, or 09:00 of
//! a due day without one, in the user's zone); sending one clears it in the transaction that
//! stores its `reminder` event, so every replica may try and exactly one succeeds, and a
//! replica killed halfway leaves it owed for the next.

use chrono::{DateTime, Duration, NaiveDate, NaiveTime, SubsecRound, Utc};
use sqlx::{PgExecutor, PgPool};
use uuid::Uuid;

use super::{events, tasks::due::Due};
use crate::{
    model::{LiveEvent, Snooze, Snoozed, MAX_SNOOZE_MINUTES},
    server::{
        bus::EventBus,
        error::{AppError, AppResult},
    },
};

/// The channel the task trigger notifies when a reminder becomes owed.
pub const OWED_CHANNEL: &str = "chatkit_reminders";

/// A reminder this late (every replica was down at its time) is not sent: the task shows as
/// overdue instead, and a pile of stale alerts at start-up helps nobody.
pub const STALE_AFTER: Duration = Duration::hours(1);

/// Reminders sent per transaction.
const BATCH: i64 = 200;

/// When the earliest owed reminder is due, if any is.
pub async fn next_owed(db: impl PgExecutor<'_>) -> AppResult<Option<DateTime<Utc>>> {
    Ok(
        sqlx::query_scalar("SELECT min(remind_at) FROM tasks WHERE remind_at IS NOT NULL")
            .fetch_one(db)
            .await?,
    )
}

#[derive(sqlx::FromRow)]
struct Owed {
    user_id: Uuid,
    id: i32,
    title: String,
    due_date: Option<NaiveDate>,
    due_time: Option<NaiveTime>,
    remind_at: DateTime<Utc>,
}

/// Sends the reminders due at `now` (a batch at most; returns how many were due, sent or
/// stale). Rows another replica is sending are waited for, then skipped once it committed
/// (they are no longer owed) or taken if it died (its transaction rolled back).
pub async fn send_due(pool: &PgPool, bus: &EventBus, now: DateTime<Utc>) -> AppResult<usize> {
    let mut tx = pool.begin().await?;
    let owed: Vec<Owed> = sqlx::query_as(
        "WITH owed AS (
             SELECT user_id, id, remind_at FROM tasks
             WHERE remind_at IS NOT NULL AND remind_at <= $1
             ORDER BY remind_at LIMIT $2
             FOR UPDATE
         )
         UPDATE tasks t SET remind_at = NULL FROM owed
         WHERE t.user_id = owed.user_id AND t.id = owed.id
         RETURNING t.user_id, t.id, t.title, t.due_date, t.due_time, owed.remind_at",
    )
    .bind(now)
    .bind(BATCH)
    .fetch_all(&mut *tx)
    .await?;
    let due = owed.len();
    let mut outbox = events::Outbox::default();
    for reminder in owed
        .into_iter()
        .filter(|r| now - r.remind_at <= STALE_AFTER)
    {
        let event = LiveEvent::Reminder {
            task_id: reminder.id,
            title: reminder.title,
            due: reminder
                .due_date
                .map(|date| Due::format(date, reminder.due_time)),
            at: reminder.remind_at,
        };
        outbox = outbox.merge(events::record(&mut tx, bus, reminder.user_id, &event).await?);
    }
    tx.commit().await?;
    outbox.publish(bus, pool).await;
    Ok(due)
}

/// Snoozes the reminder of the user's task `id`: it comes again `minutes` after `now` (that
/// occurrence's, whether or not it was reminded yet). Every replica's sweeper is told, and
/// every tab closes its card (`reminder_snoozed`). A done or deleted task has none.
pub async fn snooze(
    pool: &PgPool,
    bus: &EventBus,
    user: Uuid,
    id: i32,
    snooze: &Snooze,
    now: DateTime<Utc>,
) -> AppResult<Snoozed> {
    if !(1..=MAX_SNOOZE_MINUTES).contains(&snooze.minutes) {
        return Err(AppError::validation(format!(
            "minutes must be 1 to {MAX_SNOOZE_MINUTES}, got {}",
            snooze.minutes
        )));
    }
    // Whole seconds: the instant round-trips through the database and JSON unchanged.
    let until = now.trunc_subsecs(0) + Duration::minutes(i64::from(snooze.minutes));
    let mut tx = pool.begin().await?;
    let found: Option<bool> = sqlx::query_scalar(
        "WITH t AS (
             UPDATE tasks SET remind_at = $3
             WHERE user_id = $1 AND id = $2 AND deleted_at IS NULL AND NOT completed
             RETURNING 1
         )
         SELECT EXISTS (SELECT 1 FROM t) AS snoozed FROM tasks
         CROSS JOIN LATERAL (SELECT pg_notify($4, '')) n
         WHERE user_id = $1 AND id = $2 AND deleted_at IS NULL",
    )
    .bind(user)
    .bind(id)
    .bind(until)
    .bind(OWED_CHANNEL)
    .fetch_optional(&mut *tx)
    .await?;
    match found {
        None => return Err(AppError::NotFound(format!("task {id}"))),
        Some(false) => {
            return Err(AppError::validation(
                "the task is done: it has no reminder to snooze",
            ))
        }
        Some(true) => {}
    }
    let event = LiveEvent::ReminderSnoozed { task_id: id, until };
    let outbox = events::record(&mut tx, bus, user, &event).await?;
    tx.commit().await?;
    outbox.publish(bus, pool).await;
    Ok(Snoozed { task_id: id, until })
}
