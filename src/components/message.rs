//! One message: user text as typed, assistant markdown as the server rendered it (safely, see
//! `server::markdown`), tool calls as a compact expandable record, failed replies with a retry.

use chrono::{DateTime, Datelike, Utc};
use leptos::prelude::*;

use crate::model::{Message, MessageStatus, Role, ToolCallRecord, ToolCallStatus};

#[component]
pub fn MessageView(
    message: Message,
    /// Answers the question again (an honest retry); offered on the newest reply while it is
    /// the failed or stopped answer of the last question.
    retry: Callback<()>,
    retryable: Signal<bool>,
) -> impl IntoView {
    let is_user = message.role == Role::User;
    let failed = message.status == MessageStatus::Error;
    let stopped = message.status == MessageStatus::Stopped;
    let records = message.tool_calls.map(|t| t.tool_calls).unwrap_or_default();
    let body = match message.html {
        Some(html) if !is_user => view! { <div class="markdown" inner_html=html></div> }.into_any(),
        _ => view! { <p class="plain">{message.content}</p> }.into_any(),
    };
    view! {
        <li
            class="message"
            class:user=is_user
            class:assistant=!is_user
            class:error=failed
            class:stopped=stopped
            data-status=message.status.as_str()
            data-seq=message.seq
            data-testid=if is_user { "user-message" } else { "assistant-message" }
        >
            <div class="meta">
                <span class="author">{if is_user { "You" } else { "Assistant" }}</span>
                <Timestamp at=message.created_at />
            </div>
            {(!records.is_empty()).then(|| view! { <ToolCalls records /> })}
            <div class="bubble">{body}</div>
            {stopped.then(|| view! { <p class="stopped-note">"Stopped"</p> })}
            <Show when=move || retryable.get()>
                <button class="ghost retry" on:click=move |_| retry.run(())>
                    "Retry"
                </button>
            </Show>
        </li>
    }
}

#[component]
fn ToolCalls(records: Vec<ToolCallRecord>) -> impl IntoView {
    view! {
        <ul class="tool-calls" aria-label="Tools used">
            {records
                .into_iter()
                .map(|r| {
                    let ok = r.status == ToolCallStatus::Success;
                    let arguments = serde_json::to_string_pretty(&r.arguments).unwrap_or_default();
                    let result = serde_json::to_string_pretty(&r.result).unwrap_or_default();
                    view! {
                        <li class="tool-call" class:failed=!ok data-testid="tool-call">
                            <details>
                                <summary>
                                    <span class="tool-icon" aria-hidden="true">{if ok { "⚙" } else { "⚠" }}</span>
                                    <span class="tool-name">{r.tool_name}</span>
                                    <span class="tool-status">{if ok { "done" } else { "failed" }}</span>
                                    <span class="tool-duration">{format!("{} ms", r.duration_ms)}</span>
                                </summary>
                                <div class="tool-detail">
                                    <h4>"Arguments"</h4>
                                    <pre>{arguments}</pre>
                                    <h4>"Result"</h4>
                                    <pre>{result}</pre>
                                </div>
                            </details>
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
