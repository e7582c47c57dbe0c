//! The user's tasks beside the chat: Overdue, Today, Upcoming (the next 7 days, by day), the
//! rest, and Completed; each with its due date in words, priority and tags, tickable and
//! editable in place, filterable by tag. Refreshed by every task event of the live stream,
//! whatever made the change (this tab, another, the assistant, an API or MCP client).

use leptos::{prelude::*, task::spawn_local};

use crate::{
    api::{
        auth::adopt_time_zone,
        tasks::{set_task_completed, task_board, update_task},
    },
    contexts::{chat::ChatContext, live::LiveContext},
    model::{
        day_heading, due_in_words, parse_due, parse_now, sections, LiveEvent, Task, TaskBoard,
        TaskPatch, NO_PRIORITY,
    },
};

#[component]
pub fn TaskPanel() -> impl IntoView {
    let ctx = expect_context::<ChatContext>();
    expect_context::<LiveContext>().subscribe(move |event| {
        if matches!(
            event,
            LiveEvent::Task(_)
                | LiveEvent::TaskDeleted { .. }
                | LiveEvent::Reminder { .. }
                | LiveEvent::Resync
        ) {
            ctx.tasks_version.update(|v| *v += 1);
        }
    });
    let board = Resource::new(move || ctx.tasks_version.get(), |_| task_board());
    let tag = RwSignal::new(None::<String>);
    // Whether this page offered the browser's time zone already (see `Board`).
    let offered = StoredValue::new(false);
    view! {
        <aside id="task-panel" class="task-panel" aria-labelledby="tasks-title">
            <h2 id="tasks-title">"Tasks"</h2>
            {move || {
                tag.get()
                    .map(|t| {
                        view! {
                            <p class="tag-filter" data-testid="tag-filter">
                                {format!("Tagged #{t} ")}
                                <button type="button" class="ghost" on:click=move |_| tag.set(None)>
                                    "Show all"
                                </button>
                            </p>
                        }
                    })
            }}
            <Transition fallback=|| view! { <p class="loading">"Loading…"</p> }>
                {move || {
                    // Re-sorted when the tag filter changes, without asking the server again.
                    let chosen = tag.get();
                    board
                        .get()
                        .map(|result| match result {
                            Ok(board) => view! { <Board board tag chosen offered /> }.into_any(),
                            Err(err) => view! { <p class="form-error">{err.detail}</p> }.into_any(),
                        })
                }}
            </Transition>
        </aside>
    }
}

/// The browser's IANA time zone (`Intl.DateTimeFormat().resolvedOptions().timeZone`).
fn browser_time_zone() -> Option<String> {
    let options = js_sys::Intl::DateTimeFormat::new(&js_sys::Array::new(), &js_sys::Object::new())
        .resolved_options();
    js_sys::Reflect::get(&options, &"timeZone".into())
        .ok()?
        .as_string()
        .filter(|z| !z.is_empty())
}

#[component]
fn Board(
    board: TaskBoard,
    tag: RwSignal<Option<String>>,
    chosen: Option<String>,
    offered: StoredValue<bool>,
) -> impl IntoView {
    let ctx = expect_context::<ChatContext>();
    // An account without a time zone takes the browser's (the first sign-in). An effect, so
    // it runs in the browser only; it reads no resource (a resource read outside the panel's
    // own Transition would suspend the page around it).
    let unset = board.time_zone.is_none();
    Effect::new(move |_| {
        if unset && !offered.get_value() {
            offered.set_value(true);
            if let Some(zone) = browser_time_zone() {
                spawn_local(async move {
                    if adopt_time_zone(zone).await == Ok(true) {
                        ctx.tasks_version.update(|v| *v += 1);
                    }
                });
            }
        }
    });
    let now = parse_now(&board.local_now);
    let s = sections(&board, chosen.as_deref());
    let open = s.overdue.len()
        + s.today.len()
        + s.upcoming.iter().map(|(_, t)| t.len()).sum::<usize>()
        + s.later.len();
    let item = move |task: Task| view! { <TaskItem task now tag /> };
    let group = move |label: String, id: &'static str, tasks: Vec<Task>| {
        (!tasks.is_empty()).then(|| {
            view! {
                <section class="task-section" data-testid=format!("section-{id}")>
                    <h3>{format!("{label} ({})", tasks.len())}</h3>
                    <ul>{tasks.into_iter().map(item).collect_view()}</ul>
                </section>
            }
        })
    };
    let dated = s.overdue.len() + s.today.len() + s.upcoming.len() > 0;
    let rest_label = if dated { "Later" } else { "Pending" };
    let completed = s.completed.len();
    view! {
        <section class="task-group">
            <div data-testid="tasks-pending">
                {(open == 0).then(|| view! { <p class="hint">"Nothing pending. 🎉"</p> })}
                {group("Overdue".into(), "overdue", s.overdue)}
                {group("Today".into(), "today", s.today)}
                {(!s.upcoming.is_empty())
                    .then(|| {
                        let count: usize = s.upcoming.iter().map(|(_, t)| t.len()).sum();
                        view! {
                            <section class="task-section" data-testid="section-upcoming">
                                <h3>{format!("Upcoming ({count})")}</h3>
                                {s.upcoming
                                    .into_iter()
                                    .map(|(day, tasks)| {
                                        let heading = now
                                            .map(|now| day_heading(day, now))
                                            .unwrap_or_else(|| day.to_string());
                                        view! {
                                            <h4 class="task-day">{heading}</h4>
                                            <ul>{tasks.into_iter().map(item).collect_view()}</ul>
                                        }
                                    })
                                    .collect_view()}
                            </section>
                        }
                    })}
                {group(rest_label.into(), "later", s.later)}
            </div>
        </section>
        <section class="task-group">
            <h3>{format!("Completed ({completed})")}</h3>
            {(completed == 0).then(|| view! { <p class="hint">"Nothing completed yet."</p> })}
            <ul data-testid="tasks-completed">{s.completed.into_iter().map(item).collect_view()}</ul>
        </section>
    }
}

#[component]
fn TaskItem(
    task: Task,
    now: Option<chrono::NaiveDateTime>,
    tag: RwSignal<Option<String>>,
) -> impl IntoView {
    let ctx = expect_context::<ChatContext>();
    let id = task.id;
    let completed = task.completed;
    let editing = RwSignal::new(false);
    let due_words = task
        .due
        .as_deref()
        .map(|due| now.map_or_else(|| due.to_string(), |now| due_in_words(due, now)));
    let overdue = due_words
        .as_deref()
        .is_some_and(|w| w.starts_with("overdue"))
        && !completed;
    let priority = task.priority;
    let editable = task.clone();
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
                <span class="task-title">{task.title.clone()}</span>
            </label>
            <div class="task-meta">
                {due_words
                    .map(|words| {
                        view! {
                            <span class="task-due" class:overdue=overdue data-testid="task-due">
                                {task.recurrence.as_ref().map(|_| "↻ ")}
                                {words}
                            </span>
                        }
                    })}
                {(priority < NO_PRIORITY)
                    .then(|| {
                        view! {
                            <span class=format!("task-priority p{priority}") data-testid="task-priority">
                                {format!("P{priority}")}
                            </span>
                        }
                    })}
                {task
                    .tags
                    .iter()
                    .map(|t| {
                        let chosen = t.clone();
                        view! {
                            <button
                                type="button"
                                class="task-tag"
                                data-testid="task-tag"
                                aria-label=format!("Show only tasks tagged {t}")
                                on:click=move |_| tag.set(Some(chosen.clone()))
                            >
                                {format!("#{t}")}
                            </button>
                        }
                    })
                    .collect_view()}
                <button
                    type="button"
                    class="ghost task-edit"
                    aria-expanded=move || editing.get().to_string()
                    aria-label=format!("Edit task {id}")
                    on:click=move |_| editing.update(|e| *e = !*e)
                >
                    "Edit"
                </button>
            </div>
            {task.description.map(|d| view! { <p class="task-description">{d}</p> })}
            {move || editing.get().then(|| view! { <TaskEditor task=editable.clone() editing /> })}
        </li>
    }
}

/// The due date, priority and tags of one task, edited in place.
#[component]
fn TaskEditor(task: Task, editing: RwSignal<bool>) -> impl IntoView {
    let ctx = expect_context::<ChatContext>();
    let id = task.id;
    let (date, time) = task
        .due
        .as_deref()
        .and_then(parse_due)
        .map(|(d, t)| {
            (
                d.format("%Y-%m-%d").to_string(),
                t.map(|t| t.format("%H:%M").to_string()).unwrap_or_default(),
            )
        })
        .unwrap_or_default();
    let date = RwSignal::new(date);
    let time = RwSignal::new(time);
    let priority = RwSignal::new(task.priority.to_string());
    let tags = RwSignal::new(task.tags.join(" "));
    let error = RwSignal::new(None::<String>);
    let save = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let due = match (date.get_untracked(), time.get_untracked()) {
            (d, _) if d.is_empty() => String::new(),
            (d, t) if t.is_empty() => d,
            (d, t) => format!("{d}T{t}"),
        };
        let patch = TaskPatch {
            due: Some(due),
            priority: priority.get_untracked().parse().ok(),
            tags: Some(
                tags.get_untracked()
                    .split([' ', ','])
                    .filter(|t| !t.is_empty())
                    .map(String::from)
                    .collect(),
            ),
            ..Default::default()
        };
        spawn_local(async move {
            match update_task(id, patch).await {
                Ok(_) => {
                    editing.set(false);
                    ctx.tasks_version.update(|v| *v += 1);
                }
                Err(err) => error.set(Some(err.detail)),
            }
        });
    };
    let field = move |name: &str| format!("task-{id}-{name}");
    view! {
        <form class="task-editor" data-testid="task-editor" on:submit=save>
            <label for=field("date")>"Due"</label>
            <input id=field("date") type="date" prop:value=date on:input=move |ev| date.set(event_target_value(&ev)) />
            <label for=field("time")>"Time"</label>
            <input id=field("time") type="time" prop:value=time on:input=move |ev| time.set(event_target_value(&ev)) />
            <label for=field("priority")>"Priority"</label>
            <select id=field("priority") prop:value=priority on:change=move |ev| priority.set(event_target_value(&ev))>
                <option value="1">"P1 (urgent)"</option>
                <option value="2">"P2 (high)"</option>
                <option value="3">"P3 (medium)"</option>
                <option value="4">"None"</option>
            </select>
            <label for=field("tags")>"Tags"</label>
            <input id=field("tags") type="text" placeholder="work home" prop:value=tags on:input=move |ev| tags.set(event_target_value(&ev)) />
            <div class="task-editor-actions">
                <button type="submit" class="primary">"Save"</button>
                <button type="button" class="ghost" on:click=move |_| editing.set(false)>"Cancel"</button>
            </div>
            {move || error.get().map(|e| view! { <p class="form-error" role="alert">{e}</p> })}
        </form>
    }
}
