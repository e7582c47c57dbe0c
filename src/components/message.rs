//! One message: user text as typed, assistant markdown as the server rendered it (safely, see
//! `server::markdown`), tool calls as a compact expandable record, failed replies with a retry.

use chrono::{DateTime, Datelike, Utc};
use leptos::prelude::*;
use uuid::Uuid;

use super::{branch_nav::BranchNav, message_editor::MessageEditor};
use crate::model::{BranchChange, Message, MessageStatus, Role, ToolCallRecord, ToolCallStatus};

/// What can be done to the messages of a thread (see `Thread`).
#[derive(Clone, Copy)]
pub struct MessageActions {
    /// Sends a new version of a user message: (the message, its new text).
    pub edit: Callback<(Uuid, String)>,
    /// Asks for another answer beside this one.
    pub regenerate: Callback<Uuid>,
    /// Shows the branch through this message: (its id, the step taken to it, -1 or 1).
    pub switch: Callback<(Uuid, i32)>,
    /// An answer is being written: nothing that starts one, or changes the branch, is offered.
    pub busy: Signal<bool>,
    /// The message whose editor is open, if any.
    pub editing: RwSignal<Option<Uuid>>,
    /// Undoes the task change of a tool call: (the message, the call's index).
    pub undo: Callback<(Uuid, usize)>,
}

#[component]
pub fn MessageView(
    message: Message,
    actions: MessageActions,
    /// The newest reply while it is the failed or stopped answer of the last question: offered
    /// as Retry (another answer beside it; the model is shown what it already did).
    retryable: Signal<bool>,
) -> impl IntoView {
    let id = message.id;
    let is_user = message.role == Role::User;
    let failed = message.status == MessageStatus::Error;
    let stopped = message.status == MessageStatus::Stopped;
    let records = message
        .tool_calls
        .as_ref()
        .map(|t| t.tool_calls.clone())
        .unwrap_or_default();
    let changes = message.branch_changes.clone();
    let versions = (message.sibling_count > 1).then(|| message.clone());
    let original = message.content.clone();
    let (html, content) = (message.html, message.content);
    let body = move || match html.clone() {
        Some(html) if !is_user => view! { <div class="markdown" inner_html=html></div> }.into_any(),
        _ => view! { <p class="plain">{content.clone()}</p> }.into_any(),
    };
    let editing = move || actions.editing.get() == Some(id);
    let busy = actions.busy;
    view! {
        <li
            class="message"
            class:user=is_user
            class:assistant=!is_user
            class:error=failed
            class:stopped=stopped
            data-status=message.status.as_str()
            data-seq=message.seq
            data-id=id.to_string()
            data-testid=if is_user { "user-message" } else { "assistant-message" }
        >
            <div class="meta">
                <span class="author">{if is_user { "You" } else { "Assistant" }}</span>
                <Timestamp at=message.created_at />
            </div>
            {(!changes.is_empty()).then(|| view! { <BranchChanges changes /> })}
            {(!records.is_empty()).then(|| view! { <ToolCalls message=id records undo=actions.undo /> })}
            <Show
                when=editing
                fallback=move || view! { <div class="bubble">{body()}</div> }
            >
                <MessageEditor
                    original=original.clone()
                    on_save=Callback::new(move |text: String| {
                        actions.editing.set(None);
                        actions.edit.run((id, text));
                    })
                    on_cancel=Callback::new(move |()| {
                        actions.editing.set(None);
                        // Back to the control that opened it, not to the page.
                        super::browser::focus_soon_in(format!("li[data-id='{id}'] button.edit"));
                    })
                />
            </Show>
            {stopped.then(|| view! { <p class="stopped-note">"Stopped"</p> })}
            <div class="message-actions" class:hidden=editing>
                {versions.map(|message| view! { <BranchNav message on_switch=actions.switch busy /> })}
                {if is_user {
                    view! {
                        <button
                            type="button"
                            class="ghost edit"
                            aria-label="Edit this message"
                            disabled=move || busy.get()
                            on:click=move |_| actions.editing.set(Some(id))
                        >
                            "Edit"
                        </button>
                    }
                        .into_any()
                } else {
                    view! {
                        <Show
                            when=move || retryable.get()
                            fallback=move || view! {
                                <button
                                    type="button"
                                    class="ghost regenerate"
                                    aria-label="Regenerate this answer"
                                    disabled=move || busy.get()
                                    on:click=move |_| actions.regenerate.run(id)
                                >
                                    "Regenerate"
                                </button>
                            }
                        >
                            <button
                                type="button"
                                class="ghost retry"
                                disabled=move || busy.get()
                                on:click=move |_| actions.regenerate.run(id)
                            >
                                "Retry"
                            </button>
                        </Show>
                    }
                        .into_any()
                }}
            </div>
        </li>
    }
}

/// The task changes other branches made that this answer started from.
#[component]
fn BranchChanges(changes: Vec<BranchChange>) -> impl IntoView {
    view! {
        <div class="branch-changes" data-testid="branch-changes">
            <p>"Already done in another version of this conversation:"</p>
            <ul>
                {changes
                    .into_iter()
                    .map(|c| view! { <li>{c.describe()}</li> })
                    .collect_view()}
            </ul>
        </div>
    }
}

/// A message's key in the thread's list: it is drawn again when one of its changes is undone.
pub fn render_key(message: &Message) -> (Uuid, usize) {
    let undone = message
        .tool_calls
        .as_ref()
        .map(|t| {
            t.tool_calls
                .iter()
                .filter(|r| r.undone_at.is_some())
                .count()
        })
        .unwrap_or(0);
    (message.id, undone)
}

#[component]
fn ToolCalls(
    message: Uuid,
    records: Vec<ToolCallRecord>,
    undo: Callback<(Uuid, usize)>,
) -> impl IntoView {
    view! {
        <ul class="tool-calls" aria-label="Tools used">
            {records
                .into_iter()
                .enumerate()
                .map(|(index, r)| {
                    let ok = r.status == ToolCallStatus::Success;
                    let declined = r.status == ToolCallStatus::Declined;
                    let undoable = r.can_undo();
                    let undone = r.undone_at.is_some();
                    let status = if undone {
                        "undone"
                    } else if declined {
                        "declined"
                    } else if ok {
                        "done"
                    } else {
                        "failed"
                    };
                    let label = format!("Undo {}", r.tool_name);
                    let arguments = serde_json::to_string_pretty(&r.arguments).unwrap_or_default();
                    let result = serde_json::to_string_pretty(&r.result).unwrap_or_default();
                    view! {
                        <li class="tool-call" class:failed=!ok && !declined class:undone=undone data-testid="tool-call" data-status=status>
                            <details>
                                <summary>
                                    <span class="tool-icon" aria-hidden="true">{if ok { "⚙" } else { "⚠" }}</span>
                                    <span class="tool-name">{r.tool_name}</span>
                                    <span class="tool-status">{status}</span>
                                    <span class="tool-duration">{format!("{} ms", r.duration_ms)}</span>
                                </summary>
                                <div class="tool-detail">
                                    <h4>"Arguments"</h4>
                                    <pre>{arguments}</pre>
                                    <h4>"Result"</h4>
                                    <pre>{result}</pre>
                                </div>
                            </details>
                            {undoable.then(|| view! {
                                <button
                                    type="button"
                                    class="ghost undo"
                                    data-testid="undo"
                                    aria-label=label
                                    on:click=move |_| undo.run((message, index))
                                >
                                    "Undo"
                                </button>
                            })}
                        </li>
                    }
                })
                .collect_view()}
        </ul>
    }
}

#[component]
pub fn Timestamp(at: DateTime<Utc>) -> impl IntoView {
    let iso = at.to_rfc3339();
    view! {
        <time datetime=iso.clone() title=iso>
            {relative(at)}
        </time>
    }
}

/// "just now", "5 min ago", "3 h ago", "Nov 3".
pub fn relative(at: DateTime<Utc>) -> String {
    let secs = (Utc::now() - at).num_seconds().max(0);
    match secs {
        0..=59 => "just now".into(),
        60..=3599 => format!("{} min ago", secs / 60),
        3600..=86_399 => format!("{} h ago", secs / 3600),
        86_400..=604_799 => format!("{} d ago", secs / 86_400),
        // Written out rather than `format("%b %-d")`: strftime would add to the WASM bundle.
        _ => {
            const MONTHS: [&str; 12] = [
                "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
            ];
            format!("{} {}", MONTHS[at.month0() as usize % 12], at.day())
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::{Duration, TimeZone};

    use super::*;

    #[test]
    fn relative_times() {
        let now = Utc::now();
        assert_eq!(relative(now), "just now");
        assert_eq!(relative(now - Duration::minutes(5)), "5 min ago");
        assert_eq!(relative(now - Duration::hours(3)), "3 h ago");
        assert_eq!(relative(now - Duration::days(2)), "2 d ago");
        let old = Utc.with_ymd_and_hms(2025, 11, 3, 12, 0, 0).unwrap();
        assert_eq!(relative(old), "Nov 3");
        let january = Utc.with_ymd_and_hms(2024, 1, 31, 0, 0, 0).unwrap();
        assert_eq!(relative(january), "Jan 31");
    }
}
