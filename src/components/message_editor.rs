//! Editing a sent message in place: the text in a box, Enter saves and sends it as a new
//! version (the old one stays, as another branch), Escape or Cancel leaves it as it was.

use leptos::{html, prelude::*};

use crate::model::MAX_MESSAGE_CHARS;

#[component]
pub fn MessageEditor(
    original: String,
    /// Called with the new text.
    on_save: Callback<String>,
    on_cancel: Callback<()>,
) -> impl IntoView {
    let text = RwSignal::new(original.clone());
    let input = NodeRef::<html::Textarea>::new();
    Effect::new(move |_| {
        if let Some(el) = input.get() {
            let _ = el.focus();
            let end = el.value().len() as u32;
            let _ = el.set_selection_range(end, end);
        }
    });
    let unchanged = {
        let original = original.clone();
        move || text.with(|t| t.trim() == original.trim())
    };
    let invalid = move || {
        text.with(|t| {
            let n = t.trim().chars().count();
            n == 0 || n > MAX_MESSAGE_CHARS
        })
    };
    let save = {
        let unchanged = unchanged.clone();
        move || {
            if invalid() {
                return;
            }
            if unchanged() {
                on_cancel.run(());
            } else {
                on_save.run(text.get_untracked());
            }
        }
    };
    let on_keydown = {
        let save = save.clone();
        move |ev: web_sys::KeyboardEvent| match ev.key().as_str() {
            "Enter" if !ev.shift_key() && !ev.is_composing() => {
                ev.prevent_default();
                save();
            }
            "Escape" => {
                // Closes the editor only (not a dialog, not the running reply).
                ev.prevent_default();
                ev.stop_propagation();
                on_cancel.run(());
            }
            _ => {}
        }
    };
    view! {
        <div class="message-editor" data-testid="message-editor">
            <label class="visually-hidden" for="message-editor-input">"Edit your message"</label>
            <textarea
                id="message-editor-input"
                node_ref=input
                rows="3"
                prop:value=move || text.get()
                on:input=move |ev| text.set(event_target_value(&ev))
                on:keydown=on_keydown
            ></textarea>
            <div class="editor-actions">
                <button type="button" class="ghost" on:click=move |_| on_cancel.run(())>"Cancel"</button>
                <button
                    type="button"
                    class="primary"
                    disabled=invalid
                    on:click=move |_| save()
                >
                    "Save and send"
                </button>
            </div>
        </div>
    }
}
