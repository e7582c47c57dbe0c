//! Reminders as they arrive on the tab's live stream: a card for each (until it is dismissed,
//! or its task is done or its reminder snoozed, here or anywhere) and, where the user allowed it, a browser
//! notification. Every open tab gets the reminder once; the notifications of all tabs carry
//! one tag per occurrence, so the browser shows a single one.

use chrono::{DateTime, Utc};
use leptos::{prelude::*, task::spawn_local};

use crate::{
    api::tasks::{set_task_completed, snooze_reminder},
    contexts::live::LiveContext,
    model::{LiveEvent, Snooze},
};

/// What "Snooze" puts a reminder off by.
const SNOOZE_MINUTES: u32 = 10;

#[derive(Clone, Debug, PartialEq)]
struct Shown {
    task_id: i32,
    title: String,
    due: Option<String>,
    at: DateTime<Utc>,
}

impl Shown {
    fn key(&self) -> (i32, i64) {
        (self.task_id, self.at.timestamp())
    }

    /// "Due at 17:00", or "Due today" for a day without a time.
    fn when(&self) -> String {
        match self.due.as_deref().and_then(|d| d.split_once('T')) {
            Some((_, time)) => format!("Due at {time}"),
            None => "Due today".into(),
        }
    }
}

#[component]
pub fn Reminders() -> impl IntoView {
    let shown = RwSignal::new(Vec::<Shown>::new());
    expect_context::<LiveContext>().subscribe(move |event| match event {
        LiveEvent::Reminder {
            task_id,
            title,
            due,
            at,
        } => {
            let reminder = Shown {
                task_id,
                title,
                due,
                at,
            };
            if shown.with_untracked(|list| list.iter().any(|r| r.key() == reminder.key())) {
                return;
            }
            #[cfg(any(feature = "hydrate", feature = "csr"))]
            notify_browser(&reminder);
            shown.update(|list| list.push(reminder));
        }
        LiveEvent::Task(task) if task.completed || task.due.is_none() => {
            shown.update(|list| list.retain(|r| r.task_id != task.id));
        }
        LiveEvent::TaskDeleted { id } | LiveEvent::ReminderSnoozed { task_id: id, .. } => {
            shown.update(|list| list.retain(|r| r.task_id != id))
        }
        _ => {}
    });
    let dismiss = move |key: (i32, i64)| shown.update(|list| list.retain(|r| r.key() != key));
    view! {
        <section class="reminders" aria-label="Reminders" data-testid="reminders">
            <For each=move || shown.get() key=Shown::key let:reminder>
                <ReminderCard reminder dismiss />
            </For>
        </section>
    }
}

#[component]
fn ReminderCard(
    reminder: Shown,
    dismiss: impl Fn((i32, i64)) + Copy + Send + Sync + 'static,
) -> impl IntoView {
    let key = reminder.key();
    let task_id = reminder.task_id;
    let when = reminder.when();
    let failed = RwSignal::new(None::<String>);
    let done = move |_| {
        spawn_local(async move {
            match set_task_completed(task_id, true).await {
                // The task's own event closes the card in every tab.
                Ok(_) => dismiss(key),
                Err(err) => failed.set(Some(err.detail)),
            }
        })
    };
    let snooze = move |_| {
        spawn_local(async move {
            let minutes = Snooze {
                minutes: SNOOZE_MINUTES,
            };
            match snooze_reminder(task_id, minutes).await {
                // Its `reminder_snoozed` event closes the card in every tab.
                Ok(_) => dismiss(key),
                Err(err) => failed.set(Some(err.detail)),
            }
        })
    };
    let ask = RwSignal::new(asks_for_notifications());
    view! {
        <div class="reminder" role="alert" data-task-id=task_id>
            <p class="reminder-title">
                <span class="reminder-label">"Reminder: "</span>
                {reminder.title}
            </p>
            <p class="reminder-when">{when}</p>
            {move || failed.get().map(|detail| view! { <p class="form-error">{detail}</p> })}
            <div class="reminder-actions">
                <button type="button" class="primary" on:click=done>
                    "Mark done"
                </button>
                <button type="button" class="ghost" on:click=snooze>
                    {format!("Snooze {SNOOZE_MINUTES} min")}
                </button>
                <button type="button" class="ghost" on:click=move |_| dismiss(key)>
                    "Dismiss"
                </button>
                <Show when=move || ask.get()>
                    <button
                        type="button"
                        class="ghost"
                        on:click=move |_| {
                            ask.set(false);
                            request_notifications();
                        }
                    >
                        "Notify me outside this tab"
                    </button>
                </Show>
            </div>
        </div>
    }
}

/// Whether the browser could show notifications and the user has not decided yet.
fn asks_for_notifications() -> bool {
    #[cfg(any(feature = "hydrate", feature = "csr"))]
    {
        supported()
            && web_sys::Notification::permission() == web_sys::NotificationPermission::Default
    }
    #[cfg(not(any(feature = "hydrate", feature = "csr")))]
    false
}

fn request_notifications() {
    #[cfg(any(feature = "hydrate", feature = "csr"))]
    if supported() {
        let _ = web_sys::Notification::request_permission();
    }
}

/// Some browsers (a phone's, outside an installed app) have no `Notification` at all.
#[cfg(any(feature = "hydrate", feature = "csr"))]
fn supported() -> bool {
    js_sys::Reflect::has(&window(), &"Notification".into()).unwrap_or(false)
}

/// A browser notification, where the user allowed them; one per occurrence however many tabs
/// send it (the tag).
#[cfg(any(feature = "hydrate", feature = "csr"))]
fn notify_browser(reminder: &Shown) {
    if !supported()
        || web_sys::Notification::permission() != web_sys::NotificationPermission::Granted
    {
        return;
    }
    let options = web_sys::NotificationOptions::new();
    options.set_body(&reminder.when());
    options.set_tag(&format!(
        "reminder-{}-{}",
        reminder.task_id,
        reminder.at.timestamp()
    ));
    let _ = web_sys::Notification::new_with_options(&reminder.title, &options);
}
