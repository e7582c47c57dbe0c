//! The user's tasks beside the chat, tickable in place; refreshed by every task event of the
//! live stream, whatever made the change (this tab, another, the assistant, an API or MCP
//! client).

use leptos::{prelude::*, task::spawn_local};

use crate::{
    api::tasks::{list_tasks, set_task_completed},
    contexts::{chat::ChatContext, live::LiveContext},
    model::{LiveEvent, Task, TaskFilter},
};

#[component]
pub fn TaskPanel() -> impl IntoView {
    let ctx = expect_context::<ChatContext>();
    expect_context::<LiveContext>().subscribe(move |event| {
        if matches!(
            event,
            LiveEvent::Task(_) | LiveEvent::TaskDeleted { .. } | LiveEvent::Resync
        ) {
            ctx.tasks_version.update(|v| *v += 1);
        }
    });
    let tasks = Resource::new(
        move || ctx.tasks_version.get(),
        |_| list_tasks(TaskFilter::All),
    );
    view! {
        <aside id="task-panel" class="task-panel" aria-labelledby="tasks-title">
            <h2 id="tasks-title">"Tasks"</h2>
            <Transition fallback=|| view! { <p class="loading">"Loading…"</p> }>
                {move || {
                    tasks
                        .get()
                        .map(|result| match result {
                            Ok(list) => {
                                let (done, pending): (Vec<Task>, Vec<Task>) = list.into_iter().partition(|t| t.completed);
                                view! {
                                    <TaskGroup label="Pending" tasks=pending empty="Nothing pending. 🎉" />
                                    <TaskGroup label="Completed" tasks=done empty="Nothing completed yet." />
                                }
                                    .into_any()
                            }
                            Err(err) => view! { <p class="form-error">{err.detail}</p> }.into_any(),
                        })
                }}
            </Transition>
        </aside>
    }
}

#[component]
fn TaskGroup(label: &'static str, tasks: Vec<Task>, empty: &'static str) -> impl IntoView {
    let ctx = expect_context::<ChatContext>();
    let count = tasks.len();
    view! {
        <section class="task-group">
            <h3>{format!("{label} ({count})")}</h3>
            {(count == 0).then(|| view! { <p class="hint">{empty}</p> })}
            <ul data-testid=format!("tasks-{}", label.to_lowercase())>
                {tasks
                    .into_iter()
                    .map(|task| {
                        let id = task.id;
                        let completed = task.completed;
                        view! {
                            <li class="task" class:done=completed data-testid="task">
                                <label>
                                    <input
                                        type="checkbox"
                                        checked=completed
                                        on:change=move |_| {
                                            spawn_local(async move {
                                                let _ = set_task_completed(id, !completed).await;
                                                ctx.tasks_version.update(|v| *v += 1);
                                            });
                                        }
                                    />
                                    <span class="task-number">{format!("{id}.")}</span>
                                    <span class="task-title">{task.title}</span>
                                </label>
                                {task.description.map(|d| view! { <p class="task-description">{d}</p> })}
                            </li>
                        }
                    })
                    .collect_view()}
            </ul>
        </section>
    }
}
