//! Task server functions (`/sfn/tasks/*`) for the task panel and other Leptos apps.

use super::declare::server_fns;

use crate::model::{
    ApiError, NewTask, Snooze, Snoozed, Task, TaskBoard, TaskFilter, TaskPatch, TaskQuery,
};

server_fns! {
    prefix = "/sfn/tasks";

    /// The user's tasks.
    #[endpoint = "list", name = ListTasks]
    pub async fn list_tasks(status: TaskFilter) -> Result<Vec<Task>, ApiError> {
        let (state, user) = super::ssr::authenticated().await?;
        crate::server::services::tasks::list(&state.pool, user.id, status)
            .await
            .map_err(super::ssr::fail)
    }

    /// The tasks a query selects: a status, a planning view (today, upcoming, overdue in the
    /// user's time zone), a tag, a priority.
    #[endpoint = "find", name = FindTasks]
    pub async fn find_tasks(query: TaskQuery) -> Result<Vec<Task>, ApiError> {
        let (state, user) = super::ssr::authenticated().await?;
        state.tasks().find(user.id, &query)
            .await
            .map_err(super::ssr::fail)
    }

    /// Every task with the user's local now (`YYYY-MM-DDTHH:MM` in their time zone): what the
    /// task panel sorts into Overdue, Today, Upcoming and the rest.
    #[endpoint = "board", name = TaskBoardOf]
    pub async fn task_board() -> Result<TaskBoard, ApiError> {
        let (state, user) = super::ssr::authenticated().await?;
        state.tasks().board(user.id)
            .await
            .map_err(super::ssr::fail)
    }

    /// Add a task.
    #[endpoint = "add", name = AddTask]
    pub async fn add_task(task: NewTask) -> Result<Task, ApiError> {
        let (state, user) = super::ssr::writer().await?;
        state.tasks().create(user.id, task)
            .await
            .map_err(super::ssr::fail)
    }

    /// Change a task.
    #[endpoint = "update", name = UpdateTask]
    pub async fn update_task(id: i32, patch: TaskPatch) -> Result<Task, ApiError> {
        let (state, user) = super::ssr::writer().await?;
        state.tasks().update(user.id, id, patch)
            .await
            .map_err(super::ssr::fail)
    }

    /// Tick a task off (or back on).
    #[endpoint = "set_completed", name = SetTaskCompleted]
    pub async fn set_task_completed(id: i32, completed: bool) -> Result<Task, ApiError> {
        let (state, user) = super::ssr::writer().await?;
        state.tasks().set_completed(user.id, id, completed)
            .await
            .map_err(super::ssr::fail)
    }

    /// Snooze a task's reminder: it comes again `snooze.minutes` from now.
    #[endpoint = "snooze", name = SnoozeReminder]
    pub async fn snooze_reminder(id: i32, snooze: Snooze) -> Result<Snoozed, ApiError> {
        let (state, user) = super::ssr::writer().await?;
        let now = state.config.now();
        crate::server::services::reminders::snooze(&state.pool, &state.bus, user.id, id, &snooze, now)
            .await
            .map_err(super::ssr::fail)
    }

    /// Delete a task.
    #[endpoint = "delete", name = DeleteTask]
    pub async fn delete_task(id: i32) -> Result<Task, ApiError> {
        let (state, user) = super::ssr::writer().await?;
        state.tasks().delete(user.id, id)
            .await
            .map_err(super::ssr::fail)
    }
}
