//! The user's to-do list. Every query is scoped by the caller's user id; another user's task
//! is indistinguishable from a missing one. Every change is recorded as a live event (`task`,
//! `task_deleted`) in its own transaction, whichever interface made it, so every open tab
//! follows it.
//!
//! Each change comes twice: `create` etc. run in a transaction of their own and publish the
//! event after the commit; `create_in` etc. run in the caller's transaction (a tool call of a
//! turn, committed with its record) and hand back the `Outbox` to publish after that commit.

pub mod due;

use chrono::{DateTime, NaiveDate, NaiveTime, Utc};
use sqlx::{PgConnection, PgExecutor, PgPool};
use uuid::Uuid;

use super::events::{self, Outbox};
use crate::{
    model::{
        LiveEvent, NewTask, Task, TaskFilter, TaskPatch, TaskQuery, TaskState, TaskView,
        MAX_DESCRIPTION_CHARS, MAX_TITLE_CHARS, NO_PRIORITY,
    },
    server::{
        bus::EventBus,
        error::{AppError, AppResult},
    },
};
use due::Due;

const COLUMNS: &str = "id, title, description, completed, created_at, updated_at, due_date, \
     due_time, priority, tags, recurrence";

/// The instant a task with due day `$d` (and time `$t`) of user `$u` becomes overdue, in SQL:
/// its time, or the end of its day, in the user's zone.
fn overdue_at_sql(d: &str, t: &str, u: &str) -> String {
    format!(
        "(({d}::date + COALESCE({t}::time, time '24:00'))
           AT TIME ZONE COALESCE((SELECT time_zone FROM users WHERE id = {u}), 'UTC'))"
    )
}

#[derive(sqlx::FromRow)]
struct TaskRow {
    id: i32,
    title: String,
    description: Option<String>,
    completed: bool,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    due_date: Option<NaiveDate>,
    due_time: Option<NaiveTime>,
    priority: i16,
    tags: Vec<String>,
    recurrence: Option<String>,
}

impl From<TaskRow> for Task {
    fn from(r: TaskRow) -> Self {
        Self {
            id: r.id,
            title: r.title,
            description: r.description,
            completed: r.completed,
            created_at: r.created_at,
            updated_at: r.updated_at,
            due: r.due_date.map(|d| Due::format(d, r.due_time)),
            priority: u8::try_from(r.priority).unwrap_or(NO_PRIORITY),
            tags: r.tags,
            recurrence: r.recurrence,
        }
    }
}

/// A due date as given: trimmed, empty meaning none.
fn given_due(due: Option<&str>) -> AppResult<Option<Due>> {
    due.map(str::trim)
        .filter(|d| !d.is_empty())
        .map(Due::parse)
        .transpose()
}

/// The user's time zone (UTC until one is set).
async fn zone_of_user(db: impl PgExecutor<'_>, user: Uuid) -> AppResult<chrono_tz::Tz> {
    Ok(due::zone_of(zone_name_of_user(db, user).await?.as_deref()))
}

/// The user's time zone as set (`None` until one is).
async fn zone_name_of_user(db: impl PgExecutor<'_>, user: Uuid) -> AppResult<Option<String>> {
    let zone: Option<Option<String>> =
        sqlx::query_scalar("SELECT time_zone FROM users WHERE id = $1")
            .bind(user)
            .fetch_optional(db)
            .await?;
    Ok(zone.flatten())
}

/// A repeat and the due date it starts from: the given date, or the repeat's first
/// occurrence from today when none is given.
async fn with_repeat(
    tx: &mut PgConnection,
    user: Uuid,
    rule: &str,
    due: Option<Due>,
    now: DateTime<Utc>,
) -> AppResult<(Due, String)> {
    let zone = zone_of_user(&mut *tx, user).await?;
    due::clean_recurrence(rule, due, zone, due::today(zone, now))
}

pub fn clean_title(title: &str) -> AppResult<String> {
    super::required_text(title, "task title", MAX_TITLE_CHARS)
}

/// Trimmed; empty means "no description".
pub fn clean_description(description: Option<&str>) -> AppResult<Option<String>> {
    match description.map(str::trim).filter(|d| !d.is_empty()) {
        Some(d) => super::required_text(d, "description", MAX_DESCRIPTION_CHARS).map(Some),
        None => Ok(None),
    }
}

fn not_found(id: i32) -> AppError {
    AppError::NotFound(format!("task {id}"))
}

pub async fn list(db: impl PgExecutor<'_>, user: Uuid, filter: TaskFilter) -> AppResult<Vec<Task>> {
    let query = TaskQuery {
        status: filter,
        ..Default::default()
    };
    find(db, user, &query, Utc::now()).await
}

/// The tasks `query` selects. The planning views hold open tasks only, in the order they are
/// due (then by priority); `all` is in task order. "Today" is the day in the user's zone at
/// `now`.
pub async fn find(
    db: impl PgExecutor<'_>,
    user: Uuid,
    query: &TaskQuery,
    now: DateTime<Utc>,
) -> AppResult<Vec<Task>> {
    let completed = match query.status {
        TaskFilter::All => None,
        TaskFilter::Pending => Some(false),
        TaskFilter::Completed => Some(true),
    };
    let tag = query
        .tag
        .as_deref()
        .map(|t| due::clean_tags(&[t.to_string()]))
        .transpose()?
        .and_then(|t| t.into_iter().next());
    let priority = query.priority.map(due::clean_priority).transpose()?;
    let view = match query.view {
        TaskView::All => "all",
        TaskView::Today => "today",
        TaskView::Upcoming => "upcoming",
        TaskView::Overdue => "overdue",
        TaskView::Week => "week",
    };
    let rows = sqlx::query_as::<_, TaskRow>(&format!(
        "SELECT {COLUMNS} FROM tasks,
             LATERAL (SELECT ($6::timestamptz AT TIME ZONE
                              COALESCE((SELECT time_zone FROM users WHERE id = $1), 'UTC'))::date AS today) d
         WHERE user_id = $1 AND deleted_at IS NULL
           AND ($2::boolean IS NULL OR completed = $2)
           AND ($3::text IS NULL OR $3 = ANY (tags))
           AND ($4::smallint IS NULL OR priority = $4)
           AND CASE $5
                 WHEN 'overdue' THEN NOT completed AND due_at < $6
                 WHEN 'today' THEN NOT completed AND due_at >= $6 AND due_date = d.today
                 WHEN 'upcoming' THEN NOT completed AND due_date > d.today AND due_date <= d.today + 7
                 WHEN 'week' THEN NOT completed AND due_at >= $6 AND due_date <= d.today + 7
                 ELSE true
               END
         ORDER BY CASE WHEN $5 = 'all' THEN NULL ELSE due_at END, CASE WHEN $5 = 'all' THEN 0 ELSE priority END, id"
    ))
    .bind(user)
    .bind(completed)
    .bind(tag)
    .bind(priority.map(i16::from))
    .bind(view)
    .bind(now)
    .fetch_all(db)
    .await?;
    Ok(rows.into_iter().map(Task::from).collect())
}

pub async fn get(db: impl PgExecutor<'_>, user: Uuid, id: i32) -> AppResult<Task> {
    sqlx::query_as::<_, TaskRow>(&format!(
        "SELECT {COLUMNS} FROM tasks WHERE user_id = $1 AND id = $2 AND deleted_at IS NULL"
    ))
    .bind(user)
    .bind(id)
    .fetch_optional(db)
    .await?
    .map(Task::from)
    .ok_or_else(|| not_found(id))
}

pub async fn create_in(
    tx: &mut PgConnection,
    bus: &EventBus,
    user: Uuid,
    new: NewTask,
    now: DateTime<Utc>,
) -> AppResult<(Task, Outbox)> {
    let title = clean_title(&new.title)?;
    let description = clean_description(new.description.as_deref())?;
    let due = given_due(new.due.as_deref())?;
    let priority = new.priority.map(due::clean_priority).transpose()?;
    let tags = due::clean_tags(new.tags.as_deref().unwrap_or_default())?;
    let (due, recurrence) = match new.recurrence.as_deref().map(str::trim) {
        Some(rule) if !rule.is_empty() => {
            let (due, rule) = with_repeat(tx, user, rule, due, now).await?;
            (Some(due), Some(rule))
        }
        _ => (due, None),
    };
    // One statement: the user's row lock hands out the next number atomically.
    let task = sqlx::query_as::<_, TaskRow>(&format!(
        "WITH next AS (
             UPDATE users SET last_task_number = last_task_number + 1 WHERE id = $1 RETURNING last_task_number
         )
         INSERT INTO tasks (user_id, id, title, description, due_date, due_time, due_at, priority,
                            tags, recurrence)
         SELECT $1, last_task_number, $2, $3, $4, $5, {}, $6, $7, $8 FROM next
         RETURNING {COLUMNS}",
        overdue_at_sql("$4", "$5", "$1")
    ))
    .bind(user)
    .bind(title)
    .bind(description)
    .bind(due.map(|d| d.date))
    .bind(due.and_then(|d| d.time))
    .bind(i16::from(priority.unwrap_or(NO_PRIORITY)))
    .bind(tags)
    .bind(recurrence)
    .fetch_optional(&mut *tx)
    .await?
    .map(Task::from)
    .ok_or(AppError::Unauthorized)?;
    changed(tx, bus, user, task).await
}

/// A repeating task as a completion finds it (locked): its due date, its rule, the user's zone.
async fn repeating(
    tx: &mut PgConnection,
    user: Uuid,
    id: i32,
) -> AppResult<Option<(Due, String, chrono_tz::Tz)>> {
    let row: Option<(NaiveDate, Option<NaiveTime>, String, Option<String>)> = sqlx::query_as(
        "SELECT t.due_date, t.due_time, t.recurrence, u.time_zone
         FROM tasks t JOIN users u ON u.id = t.user_id
         WHERE t.user_id = $1 AND t.id = $2 AND t.deleted_at IS NULL AND NOT t.completed
           AND t.recurrence IS NOT NULL AND t.due_date IS NOT NULL
         FOR UPDATE OF t",
    )
    .bind(user)
    .bind(id)
    .fetch_optional(&mut *tx)
    .await?;
    Ok(row
        .map(|(date, time, rule, zone)| (Due { date, time }, rule, due::zone_of(zone.as_deref()))))
}

pub async fn update_in(
    tx: &mut PgConnection,
    bus: &EventBus,
    user: Uuid,
    id: i32,
    patch: TaskPatch,
    now: DateTime<Utc>,
) -> AppResult<(Task, Outbox)> {
    if patch.is_empty() {
        return Err(AppError::validation(
            "nothing to update: give a title, a description, completed, due, priority, tags or recurrence",
        ));
    }
    let mut patch = patch;
    let title = patch.title.as_deref().map(clean_title).transpose()?;
    // `Some("")` clears the description; `None` leaves it.
    let description = patch
        .description
        .as_deref()
        .map(|d| clean_description(Some(d)))
        .transpose()?;
    let priority = patch.priority.map(due::clean_priority).transpose()?;
    let tags = patch.tags.as_deref().map(due::clean_tags).transpose()?;
    // Completing a repeating task records the completion and moves it to its next
    // occurrence after the later of its due day and today; past its last one it is done.
    let mut completion = None;
    if patch.completed == Some(true) {
        if let Some((was_due, rule, zone)) = repeating(tx, user, id).await? {
            let after = was_due.date.max(due::today(zone, now));
            if let Some(next) = due::next_occurrence(&rule, was_due, zone, after) {
                patch.completed = None;
                patch.due = Some(Due::format(next.date, next.time));
                patch.recurrence = None;
            }
            completion = Some(was_due);
        }
    }
    // `Some("")` clears the due date (and the repeat, which needs one); `None` leaves it.
    let due_given = patch.due.is_some();
    let mut due = given_due(patch.due.as_deref())?;
    let recurrence = match patch.recurrence.as_deref().map(str::trim) {
        None => None,
        Some("") => Some(None),
        Some(rule) => {
            let start = match due {
                Some(due) => Some(due),
                None if due_given => None,
                None => current_due(tx, user, id).await?,
            };
            let (start, rule) = with_repeat(tx, user, rule, start, now).await?;
            due = Some(start);
            Some(Some(rule))
        }
    };
    let due_changes = due_given || matches!(recurrence, Some(Some(_)));
    let task = sqlx::query_as::<_, TaskRow>(&format!(
        "UPDATE tasks SET
             title = COALESCE($3, title),
             description = CASE WHEN $4 THEN $5 ELSE description END,
             completed = COALESCE($6, completed),
             due_date = CASE WHEN $7 THEN $8 ELSE due_date END,
             due_time = CASE WHEN $7 THEN $9 ELSE due_time END,
             due_at = CASE WHEN $7 THEN {} ELSE due_at END,
             priority = COALESCE($10, priority),
             tags = COALESCE($11, tags),
             recurrence = CASE WHEN $12 THEN $13 WHEN $7 AND $8::date IS NULL THEN NULL ELSE recurrence END,
             updated_at = now()
         WHERE user_id = $1 AND id = $2 AND deleted_at IS NULL
         RETURNING {COLUMNS}",
        overdue_at_sql("$8", "$9", "$1")
    ))
    .bind(user)
    .bind(id)
    .bind(title)
    .bind(description.is_some())
    .bind(description.flatten())
    .bind(patch.completed)
    .bind(due_changes)
    .bind(due.map(|d| d.date))
    .bind(due.and_then(|d| d.time))
    .bind(priority.map(i16::from))
    .bind(tags)
    .bind(recurrence.is_some())
    .bind(recurrence.flatten())
    .fetch_optional(&mut *tx)
    .await?
    .map(Task::from)
    .ok_or_else(|| not_found(id))?;
    if let Some(done) = completion {
        sqlx::query(
            "INSERT INTO task_completions (user_id, task_id, due_date, due_time) VALUES ($1, $2, $3, $4)",
        )
        .bind(user)
        .bind(id)
        .bind(done.date)
        .bind(done.time)
        .execute(&mut *tx)
        .await?;
    }
    changed(tx, bus, user, task).await
}

/// The task's due date now, if it has one.
async fn current_due(tx: &mut PgConnection, user: Uuid, id: i32) -> AppResult<Option<Due>> {
    let row: Option<(Option<NaiveDate>, Option<NaiveTime>)> = sqlx::query_as(
        "SELECT due_date, due_time FROM tasks WHERE user_id = $1 AND id = $2 AND deleted_at IS NULL",
    )
    .bind(user)
    .bind(id)
    .fetch_optional(&mut *tx)
    .await?;
    let (date, time) = row.ok_or_else(|| not_found(id))?;
    Ok(date.map(|date| Due { date, time }))
}

fn completion(completed: bool) -> TaskPatch {
    TaskPatch {
        completed: Some(completed),
        ..Default::default()
    }
}

/// Deletes and returns the task (its title is worth confirming to the user). The row stays,
/// marked deleted, so the deletion can be undone (the task keeps its number).
pub async fn delete_in(
    tx: &mut PgConnection,
    bus: &EventBus,
    user: Uuid,
    id: i32,
) -> AppResult<(Task, Outbox)> {
    let task = sqlx::query_as::<_, TaskRow>(&format!(
        "UPDATE tasks SET deleted_at = now(), updated_at = now()
         WHERE user_id = $1 AND id = $2 AND deleted_at IS NULL RETURNING {COLUMNS}"
    ))
    .bind(user)
    .bind(id)
    .fetch_optional(&mut *tx)
    .await?
    .map(Task::from)
    .ok_or_else(|| not_found(id))?;
    let outbox = events::record(tx, bus, user, &LiveEvent::TaskDeleted { id }).await?;
    Ok((task, outbox))
}

/// The task as it is now, deleted or not, locked for the change that reads it (undo compares
/// it with what a call left).
pub async fn lock_in(
    tx: &mut PgConnection,
    user: Uuid,
    id: i32,
) -> AppResult<Option<(Task, bool)>> {
    #[derive(sqlx::FromRow)]
    struct Locked {
        #[sqlx(flatten)]
        task: TaskRow,
        deleted: bool,
    }
    Ok(sqlx::query_as::<_, Locked>(&format!(
        "SELECT {COLUMNS}, deleted_at IS NOT NULL AS deleted FROM tasks
         WHERE user_id = $1 AND id = $2 FOR UPDATE"
    ))
    .bind(user)
    .bind(id)
    .fetch_optional(&mut *tx)
    .await?
    .map(|l| (Task::from(l.task), l.deleted)))
}

/// Puts a task back to `state`, restoring it if it was deleted (undo of a change or a
/// deletion). The row must exist (see `lock_in`).
pub async fn restore_in(
    tx: &mut PgConnection,
    bus: &EventBus,
    user: Uuid,
    id: i32,
    state: &TaskState,
) -> AppResult<(Task, Outbox)> {
    let due = given_due(state.due.as_deref())?;
    let task = sqlx::query_as::<_, TaskRow>(&format!(
        "UPDATE tasks SET title = $3, description = $4, completed = $5, deleted_at = NULL,
                          due_date = $6, due_time = $7, due_at = {}, priority = $8, tags = $9,
                          recurrence = $10, updated_at = now()
         WHERE user_id = $1 AND id = $2
         RETURNING {COLUMNS}",
        overdue_at_sql("$6", "$7", "$1")
    ))
    .bind(user)
    .bind(id)
    .bind(&state.title)
    .bind(&state.description)
    .bind(state.completed)
    .bind(due.map(|d| d.date))
    .bind(due.and_then(|d| d.time))
    .bind(i16::from(state.priority))
    .bind(&state.tags)
    .bind(due.and(state.recurrence.as_ref()))
    .fetch_optional(&mut *tx)
    .await?
    .map(Task::from)
    .ok_or_else(|| not_found(id))?;
    changed(tx, bus, user, task).await
}

/// Records the changed task's event in the change's transaction.
async fn changed(
    tx: &mut PgConnection,
    bus: &EventBus,
    user: Uuid,
    task: Task,
) -> AppResult<(Task, Outbox)> {
    let outbox = events::record(tx, bus, user, &LiveEvent::Task(task.clone())).await?;
    Ok((task, outbox))
}

/// The changes in a transaction of their own, their events published after the commit.
pub struct Tasks<'a> {
    pub pool: &'a PgPool,
    pub bus: &'a EventBus,
    /// Now, as due dates and repeats see it (`Config::now`).
    pub now: DateTime<Utc>,
}

impl Tasks<'_> {
    pub async fn create(&self, user: Uuid, new: NewTask) -> AppResult<Task> {
        let mut tx = self.pool.begin().await?;
        let done = create_in(&mut tx, self.bus, user, new, self.now).await?;
        self.commit(tx, done).await
    }

    pub async fn update(&self, user: Uuid, id: i32, patch: TaskPatch) -> AppResult<Task> {
        let mut tx = self.pool.begin().await?;
        let done = update_in(&mut tx, self.bus, user, id, patch, self.now).await?;
        self.commit(tx, done).await
    }

    /// Every task of the user with their local now, for the task panel's sections.
    pub async fn board(&self, user: Uuid) -> AppResult<crate::model::TaskBoard> {
        let zone_name = zone_name_of_user(self.pool, user);
        let every = TaskQuery::default();
        let (zone_name, tasks) =
            tokio::try_join!(zone_name, find(self.pool, user, &every, self.now))?;
        let zone = due::zone_of(zone_name.as_deref());
        let local_now = self
            .now
            .with_timezone(&zone)
            .format("%Y-%m-%dT%H:%M")
            .to_string();
        Ok(crate::model::TaskBoard {
            local_now,
            time_zone: zone_name,
            tasks,
        })
    }

    /// The tasks `query` selects (see `find`).
    pub async fn find(&self, user: Uuid, query: &TaskQuery) -> AppResult<Vec<Task>> {
        find(self.pool, user, query, self.now).await
    }

    pub async fn set_completed(&self, user: Uuid, id: i32, completed: bool) -> AppResult<Task> {
        self.update(user, id, completion(completed)).await
    }

    pub async fn delete(&self, user: Uuid, id: i32) -> AppResult<Task> {
        let mut tx = self.pool.begin().await?;
        let done = delete_in(&mut tx, self.bus, user, id).await?;
        self.commit(tx, done).await
    }

    async fn commit(
        &self,
        tx: sqlx::Transaction<'_, sqlx::Postgres>,
        (task, outbox): (Task, Outbox),
    ) -> AppResult<Task> {
        tx.commit().await?;
        outbox.publish(self.bus, self.pool).await;
        Ok(task)
    }
}

/// Ticks a task off (or back on) in the caller's transaction.
pub async fn set_completed_in(
    tx: &mut PgConnection,
    bus: &EventBus,
    user: Uuid,
    id: i32,
    completed: bool,
    now: DateTime<Utc>,
) -> AppResult<(Task, Outbox)> {
    update_in(tx, bus, user, id, completion(completed), now).await
}

/// The user's time zone changed: the instants their tasks become overdue follow it.
pub async fn rezone_in(tx: &mut PgConnection, user: Uuid) -> AppResult<()> {
    sqlx::query(&format!(
        "UPDATE tasks SET due_at = {} WHERE user_id = $1 AND due_date IS NOT NULL",
        overdue_at_sql("due_date", "due_time", "$1")
    ))
    .bind(user)
    .execute(&mut *tx)
    .await?;
    Ok(())
}
