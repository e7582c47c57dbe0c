//! "‹ 2/3 ›": moving between the versions of a message (its siblings: edits of a user message,
//! regenerated answers). Buttons with names a screen reader says, disabled at the ends and
//! while an answer is being written.

use leptos::prelude::*;
use uuid::Uuid;

use crate::model::{Message, Role};

#[component]
pub fn BranchNav(
    message: Message,
    /// Shows the branch through the chosen sibling: (its id, -1 for the previous one or 1).
    on_switch: Callback<(Uuid, i32)>,
    /// An answer is being written: the branch cannot change now.
    busy: Signal<bool>,
) -> impl IntoView {
    let index = message.sibling_index;
    let count = message.sibling_count;
    let previous = message.sibling(-1);
    let next = message.sibling(1);
    let what = if message.role == Role::User {
        "message"
    } else {
        "answer"
    };
    let label = format!("Version {index} of {count} of this {what}");
    view! {
        <div class="branch-nav" role="group" aria-label=label data-testid="branch-nav">
            <button
                type="button"
                class="ghost icon"
                aria-label=format!("Previous version of this {what}")
                data-step="-1"
                disabled=move || previous.is_none() || busy.get()
                on:click=move |_| {
                    if let Some(id) = previous {
                        on_switch.run((id, -1));
                    }
                }
            >
                "‹"
            </button>
            <span class="branch-count" aria-hidden="true">{format!("{index}/{count}")}</span>
            <button
                type="button"
                class="ghost icon"
                aria-label=format!("Next version of this {what}")
                data-step="1"
                disabled=move || next.is_none() || busy.get()
                on:click=move |_| {
                    if let Some(id) = next {
                        on_switch.run((id, 1));
                    }
                }
            >
                "›"
            </button>
        </div>
    }
}
