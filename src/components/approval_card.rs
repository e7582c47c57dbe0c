//! The cards of calls the assistant waits on (issue #24): what it would do, to which task (by
//! title), and two buttons, the safe one first and primary; with several, a row to decide all
//! together. Shown live in every tab; the newest card's safe button takes the focus when it
//! appears, so a keyboard user can decide at once.

use leptos::prelude::*;

use crate::model::PendingApproval;

#[component]
pub fn ApprovalCards(
    approvals: Signal<Vec<PendingApproval>>,
    /// (call id, or none for every call together; approve)
    on_decide: Callback<(Option<String>, bool)>,
    /// A decision is on its way: the buttons wait.
    deciding: Signal<bool>,
) -> impl IntoView {
    let several = move || approvals.with(|a| a.len() > 1);
    view! {
        <li class="approvals" data-testid="approvals">
            <For
                each=move || approvals.get()
                key=|a| a.call_id.clone()
                let(approval)
            >
                <ApprovalCard approval on_decide deciding />
            </For>
            <Show when=several>
                <div class="approval-actions approval-all" role="group" aria-label="All of these changes">
                    <button
                        type="button"
                        class="primary"
                        data-testid="approval-keep-all"
                        disabled=move || deciding.get()
                        on:click=move |_| on_decide.run((None, false))
                    >
                        {move || format!("Decline all {}", approvals.with(Vec::len))}
                    </button>
                    <button
                        type="button"
                        class="ghost"
                        data-testid="approval-approve-all"
                        disabled=move || deciding.get()
                        on:click=move |_| on_decide.run((None, true))
                    >
                        {move || format!("Approve all {}", approvals.with(Vec::len))}
                    </button>
                </div>
            </Show>
        </li>
    }
}

#[component]
fn ApprovalCard(
    approval: PendingApproval,
    on_decide: Callback<(Option<String>, bool)>,
    deciding: Signal<bool>,
) -> impl IntoView {
    let heading_id = format!("approval-{}", approval.call_id);
    let what = approval.describe();
    let destructive = approval.tool_name == "delete_task";
    let yes = if destructive { "Delete" } else { "Approve" };
    let (keep, go) = (approval.call_id.clone(), approval.call_id.clone());
    let keep_button = NodeRef::<leptos::html::Button>::new();
    // The safe choice takes the focus: Enter keeps the task.
    Effect::new(move |_| {
        if let Some(button) = keep_button.get() {
            let _ = button.focus();
        }
    });
    view! {
        <section
            class="approval-card"
            role="group"
            aria-labelledby=heading_id
            data-testid="approval-card"
            data-call-id=approval.call_id.clone()
        >
            <h3 id=heading_id.clone()>"The assistant asks first"</h3>
            <p class="approval-what" data-testid="approval-what">{format!("{what}?")}</p>
            <p class="approval-note">"Nothing changes until you decide."</p>
            <div class="approval-actions">
                <button
                    type="button"
                    class="primary"
                    node_ref=keep_button
                    data-testid="approval-keep"
                    disabled=move || deciding.get()
                    on:click=move |_| on_decide.run((Some(keep.clone()), false))
                >
                    {if destructive { "Keep it" } else { "Don't" }}
                </button>
                <button
                    type="button"
                    class="ghost"
                    class:danger=destructive
                    data-testid="approval-approve"
                    disabled=move || deciding.get()
                    on:click=move |_| on_decide.run((Some(go.clone()), true))
                >
                    {yes}
                </button>
            </div>
        </section>
    }
}
