//! The user's to-do list. Every query is scoped by the caller's user id; another user's task
//! is indistinguishable from a missing one. Every change is recorded as a live event (`task`,
//! `task_deleted`) in its own transaction, whichever interface made it, so every open tab
//! follows it.
//!
//! Each change comes twice: `create` etc. run in a transaction of their own and publish the
//! event after the commit; `create_in` etc. run in the caller's transaction (a tool call of a
//! turn, committed with its record) and hand back the `Outbox` to publish after that commit.

use sqlx::{PgConnection, PgExecutor, PgPool};
use uuid::Uuid;

use super::events::{self, Outbox};
use crate::{
    model::{
        LiveEvent, NewTask, Task, TaskFilter, TaskPatch, TaskState, MAX_DESCRIPTION_CHARS,
        MAX_TITLE_CHARS,
    },
    server::{
        bus::EventBus,
        error::{AppError, AppResult},
    },
};

const COLUMNS: &str = "id, title, description, completed, created_at, updated_at";

#[derive(sqlx::FromRow)]
struct TaskRow {
    id: i32,
    title: String,
    description: Option<String>,
    completed: bool,
    created_at: chrono::DateTime<chrono::Utc>,
    updated_at: chrono::DateTime<chrono::Utc>,
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
        }
    }
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
    let completed = match filter {
        TaskFilter::All => None,
        TaskFilter::Pending => Some(false),
        TaskFilter::Completed => Some(true),
    };
    let rows = sqlx::query_as::<_, TaskRow>(&format!(
        "SELECT {COLUMNS} FROM tasks WHERE user_id = $1 AND deleted_at IS NULL
           AND ($2::boolean IS NULL OR completed = $2) ORDER BY id"
    ))
    .bind(user)
    .bind(completed)
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
) -> AppResult<(Task, Outbox)> {
    let title = clean_title(&new.title)?;
    let description = clean_description(new.description.as_deref())?;
    // One statement: the user's row lock hands out the next number atomically.
    let task = sqlx::query_as::<_, TaskRow>(&format!(
        "WITH next AS (
             UPDATE users SET last_task_number = last_task_number + 1 WHERE id = $1 RETURNING last_task_number
         )
         INSERT INTO tasks (user_id, id, title, description)
         SELECT $1, last_task_number, $2, $3 FROM next
         RETURNING {COLUMNS}"
    ))
    .bind(user)
    .bind(title)
    .bind(description)
    .fetch_optional(&mut *tx)
    .await?
    .map(Task::from)
    .ok_or(AppError::Unauthorized)?;
    changed(tx, bus, user, task).await
}

pub async fn update_in(
    tx: &mut PgConnection,
    bus: &EventBus,
    user: Uuid,
    id: i32,
    patch: TaskPatch,
) -> AppResult<(Task, Outbox)> {
    if patch.title.is_none() && patch.description.is_none() && patch.completed.is_none() {
        return Err(AppError::validation(
            "nothing to update: give a title, a description or completed",
        ));
    }
    let title = patch.title.as_deref().map(clean_title).transpose()?;
    // `Some("")` clears the description; `None` leaves it.
    let description = patch
        .description
        .as_deref()
        .map(|d| clean_description(Some(d)))
        .transpose()?;
    let task = sqlx::query_as::<_, TaskRow>(&format!(
        "UPDATE tasks SET
             title = COALESCE($3, title),
             description = CASE WHEN $4 THEN $5 ELSE description END,
             completed = COALESCE($6, completed),
             updated_at = now()
         WHERE user_id = $1 AND id = $2 AND deleted_at IS NULL
         RETURNING {COLUMNS}"
    ))
    .bind(user)
    .bind(id)
    .bind(title)
    .bind(description.is_some())
    .bind(description.flatten())
    .bind(patch.completed)
    .fetch_optional(&mut *tx)
    .await?
    .map(Task::from)
    .ok_or_else(|| not_found(id))?;
    changed(tx, bus, user, task).await
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
    let task = sqlx::query_as::<_, TaskRow>(&format!(
        "UPDATE tasks SET title = $3, description = $4, completed = $5, deleted_at = NULL,
                          updated_at = now()
         WHERE user_id = $1 AND id = $2
         RETURNING {COLUMNS}"
    ))
    .bind(user)
    .bind(id)
    .bind(&state.title)
    .bind(&state.description)
    .bind(state.completed)
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
}

impl Tasks<'_> {
    pub async fn create(&self, user: Uuid, new: NewTask) -> AppResult<Task> {
        let mut tx = self.pool.begin().await?;
        let done = create_in(&mut tx, self.bus, user, new).await?;
        self.commit(tx, done).await
    }

    pub async fn update(&self, user: Uuid, id: i32, patch: TaskPatch) -> AppResult<Task> {
        let mut tx = self.pool.begin().await?;
        let done = update_in(&mut tx, self.bus, user, id, patch).await?;
        self.commit(tx, done).await
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
) -> AppResult<(Task, Outbox)> {
    update_in(tx, bus, user, id, completion(completed)).await
}
