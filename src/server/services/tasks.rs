//! The user's to-do list. Every query is scoped by the caller's user id; another user's task
//! is indistinguishable from a missing one.

use sqlx::PgExecutor;
use uuid::Uuid;

use crate::{
    model::{NewTask, Task, TaskFilter, TaskPatch, MAX_DESCRIPTION_CHARS, MAX_TITLE_CHARS},
    server::error::{AppError, AppResult},
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
        "SELECT {COLUMNS} FROM tasks WHERE user_id = $1 AND ($2::boolean IS NULL OR completed = $2) ORDER BY id"
    ))
    .bind(user)
    .bind(completed)
    .fetch_all(db)
    .await?;
    Ok(rows.into_iter().map(Task::from).collect())
}

pub async fn get(db: impl PgExecutor<'_>, user: Uuid, id: i32) -> AppResult<Task> {
    sqlx::query_as::<_, TaskRow>(&format!(
        "SELECT {COLUMNS} FROM tasks WHERE user_id = $1 AND id = $2"
    ))
    .bind(user)
    .bind(id)
    .fetch_optional(db)
    .await?
    .map(Task::from)
    .ok_or_else(|| not_found(id))
}

pub async fn create(db: impl PgExecutor<'_>, user: Uuid, new: NewTask) -> AppResult<Task> {
    let title = clean_title(&new.title)?;
    let description = clean_description(new.description.as_deref())?;
    // One statement: the user's row lock hands out the next number atomically.
    sqlx::query_as::<_, TaskRow>(&format!(
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
    .fetch_optional(db)
    .await?
    .map(Task::from)
    .ok_or(AppError::Unauthorized)
}

pub async fn update(
    db: impl PgExecutor<'_>,
    user: Uuid,
    id: i32,
    patch: TaskPatch,
) -> AppResult<Task> {
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
    sqlx::query_as::<_, TaskRow>(&format!(
        "UPDATE tasks SET
             title = COALESCE($3, title),
             description = CASE WHEN $4 THEN $5 ELSE description END,
             completed = COALESCE($6, completed),
             updated_at = now()
         WHERE user_id = $1 AND id = $2
         RETURNING {COLUMNS}"
    ))
    .bind(user)
    .bind(id)
    .bind(title)
    .bind(description.is_some())
    .bind(description.flatten())
    .bind(patch.completed)
    .fetch_optional(db)
    .await?
    .map(Task::from)
    .ok_or_else(|| not_found(id))
}

pub async fn set_completed(
    db: impl PgExecutor<'_>,
    user: Uuid,
    id: i32,
    completed: bool,
) -> AppResult<Task> {
    update(
        db,
        user,
        id,
        TaskPatch {
            completed: Some(completed),
            ..Default::default()
        },
    )
    .await
}

/// Deletes and returns the task (its title is worth confirming to the user).
pub async fn delete(db: impl PgExecutor<'_>, user: Uuid, id: i32) -> AppResult<Task> {
    sqlx::query_as::<_, TaskRow>(&format!(
        "DELETE FROM tasks WHERE user_id = $1 AND id = $2 RETURNING {COLUMNS}"
    ))
    .bind(user)
    .bind(id)
    .fetch_optional(db)
    .await?
    .map(Task::from)
    .ok_or_else(|| not_found(id))
}
