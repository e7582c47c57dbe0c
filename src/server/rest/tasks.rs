//! `/api/tasks`: the signed-in user's to-do list.

use axum::{extract::State, http::StatusCode};
use serde::Deserialize;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{ApiJson, ApiPath, ApiQuery};
use crate::{
    model::{NewTask, Snooze, Snoozed, Task, TaskFilter, TaskPatch, TaskQuery, TaskView},
    server::{
        auth::AuthUser,
        error::AppResult,
        services::{reminders, tasks},
        state::AppState,
    },
};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_tasks, create_task))
        .routes(routes!(get_task, update_task, delete_task))
        .routes(routes!(complete_task))
        .routes(routes!(reopen_task))
        .routes(routes!(snooze_reminder))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct ListParams {
    /// all (default), pending or completed
    #[serde(default)]
    status: TaskFilter,
    /// all (default), or a planning view of open tasks in the user's time zone: today (due
    /// today), upcoming (the next 7 days), week (today and the next 7 days) or overdue
    #[serde(default)]
    view: TaskView,
    /// only tasks with this tag
    #[param(max_length = 32)]
    tag: Option<String>,
    /// only tasks of this priority (1 highest … 4 none)
    #[param(minimum = 1, maximum = 4)]
    priority: Option<u8>,
}

/// The user's tasks: all of them in task order, or a planning view in the order they are due.
#[utoipa::path(get, path = "/api/tasks", tag = "tasks", params(ListParams),
    responses((status = 200, body = Vec<Task>), (status = 400), (status = 401)))]
async fn list_tasks(
    State(state): State<AppState>,
    user: AuthUser,
    ApiQuery(params): ApiQuery<ListParams>,
) -> AppResult<ApiJson<Vec<Task>>> {
    let query = TaskQuery {
        status: params.status,
        view: params.view,
        tag: params.tag,
        priority: params.priority,
    };
    state.tasks().find(user.id, &query).await.map(ApiJson)
}

/// Add a task.
#[utoipa::path(post, path = "/api/tasks", tag = "tasks", request_body = NewTask,
    responses((status = 201, body = Task), (status = 400), (status = 401)))]
async fn create_task(
    State(state): State<AppState>,
    user: AuthUser,
    ApiJson(new): ApiJson<NewTask>,
) -> AppResult<(StatusCode, ApiJson<Task>)> {
    let task = state.tasks().create(user.id, new).await?;
    Ok((StatusCode::CREATED, ApiJson(task)))
}

/// One task by its number.
#[utoipa::path(get, path = "/api/tasks/{id}", tag = "tasks", params(("id" = i32, Path, description = "task number")),
    responses((status = 200, body = Task), (status = 400), (status = 401), (status = 404)))]
async fn get_task(
    State(state): State<AppState>,
    user: AuthUser,
    ApiPath(id): ApiPath<i32>,
) -> AppResult<ApiJson<Task>> {
    tasks::get(&state.pool, user.id, id).await.map(ApiJson)
}

/// Change the title, description (empty string clears it), completion, due date (empty
/// string clears it), priority, tags or repeat (empty string stops it). Completing a repeating
/// task records the completion and moves it to its next occurrence.
#[utoipa::path(put, path = "/api/tasks/{id}", tag = "tasks", params(("id" = i32, Path, description = "task number")),
    request_body = TaskPatch,
    responses((status = 200, body = Task), (status = 400), (status = 401), (status = 404)))]
async fn update_task(
    State(state): State<AppState>,
    user: AuthUser,
    ApiPath(id): ApiPath<i32>,
    ApiJson(patch): ApiJson<TaskPatch>,
) -> AppResult<ApiJson<Task>> {
    state.tasks().update(user.id, id, patch).await.map(ApiJson)
}

/// Delete a task.
#[utoipa::path(delete, path = "/api/tasks/{id}", tag = "tasks", params(("id" = i32, Path, description = "task number")),
    responses((status = 204), (status = 400), (status = 401), (status = 404)))]
async fn delete_task(
    State(state): State<AppState>,
    user: AuthUser,
    ApiPath(id): ApiPath<i32>,
) -> AppResult<StatusCode> {
    state.tasks().delete(user.id, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Mark a task done.
#[utoipa::path(post, path = "/api/tasks/{id}/complete", tag = "tasks", params(("id" = i32, Path, description = "task number")),
    responses((status = 200, body = Task), (status = 400), (status = 401), (status = 404)))]
async fn complete_task(
    State(state): State<AppState>,
    user: AuthUser,
    ApiPath(id): ApiPath<i32>,
) -> AppResult<ApiJson<Task>> {
    state
        .tasks()
        .set_completed(user.id, id, true)
        .await
        .map(ApiJson)
}

/// Mark a task not done again.
#[utoipa::path(post, path = "/api/tasks/{id}/reopen", tag = "tasks", params(("id" = i32, Path, description = "task number")),
    responses((status = 200, body = Task), (status = 400), (status = 401), (status = 404)))]
async fn reopen_task(
    State(state): State<AppState>,
    user: AuthUser,
    ApiPath(id): ApiPath<i32>,
) -> AppResult<ApiJson<Task>> {
    state
        .tasks()
        .set_completed(user.id, id, false)
        .await
        .map(ApiJson)
}

/// Snooze the task's reminder: it comes again `minutes` (1 to 1440) from now, to every open
/// tab, which close the card they show for it meanwhile. A done task has none to snooze (400).
#[utoipa::path(post, path = "/api/tasks/{id}/snooze", tag = "tasks", params(("id" = i32, Path, description = "task number")),
    request_body = Snooze,
    responses((status = 200, body = Snoozed), (status = 400), (status = 401), (status = 404)))]
async fn snooze_reminder(
    State(state): State<AppState>,
    user: AuthUser,
    ApiPath(id): ApiPath<i32>,
    ApiJson(snooze): ApiJson<Snooze>,
) -> AppResult<ApiJson<Snoozed>> {
    let now = state.config.now();
    reminders::snooze(&state.pool, &state.bus, user.id, id, &snooze, now)
        .await
        .map(ApiJson)
}
