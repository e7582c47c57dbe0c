//! Task server functions (`/sfn/tasks/*`) for the task panel and other Leptos apps.

use leptos::prelude::*;

use crate::model::{ApiError, NewTask, Task, TaskFilter, TaskPatch};

/// The user's tasks. Endpoint: `POST /sfn/tasks/list`.
#[server(prefix = "/sfn/tasks", endpoint = "list")]
pub async fn list_tasks(status: TaskFilter) -> Result<Vec<Task>, ApiError> {
    let (state, user) = super::ssr::authenticated().await?;
    crate::server::services::tasks::list(&state.pool, user.id, status)
        .await
        .map_err(super::ssr::fail)
}

/// Add a task. Endpoint: `POST /sfn/tasks/add`.
#[server(prefix = "/sfn/tasks", endpoint = "add")]
pub async fn add_task(task: NewTask) -> Result<Task, ApiError> {
    let (state, user) = super::ssr::authenticated().await?;
    crate::server::services::tasks::create(&state.pool, user.id, task)
        .await
        .map_err(super::ssr::fail)
}

/// Change a task. Endpoint: `POST /sfn/tasks/update`.
#[server(prefix = "/sfn/tasks", endpoint = "update")]
pub async fn update_task(id: i32, patch: TaskPatch) -> Result<Task, ApiError> {
    let (state, user) = super::ssr::authenticated().await?;
    crate::server::services::tasks::update(&state.pool, user.id, id, patch)
        .await
        .map_err(super::ssr::fail)
}

/// Tick a task off (or back on). Endpoint: `POST /sfn/tasks/set_completed`.
#[server(prefix = "/sfn/tasks", endpoint = "set_completed")]
pub async fn set_task_completed(id: i32, completed: bool) -> Result<Task, ApiError> {
    let (state, user) = super::ssr::authenticated().await?;
    crate::server::services::tasks::set_completed(&state.pool, user.id, id, completed)
        .await
        .map_err(super::ssr::fail)
}

/// Delete a task. Endpoint: `POST /sfn/tasks/delete`.
#[server(prefix = "/sfn/tasks", endpoint = "delete")]
pub async fn delete_task(id: i32) -> Result<Task, ApiError> {
    let (state, user) = super::ssr::authenticated().await?;
    crate::server::services::tasks::delete(&state.pool, user.id, id)
        .await
        .map_err(super::ssr::fail)
}
