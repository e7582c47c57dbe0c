//! One conversation in the sidebar: its link, rename and delete (with a confirmation), and
//! a menu with pin, archive and export.

use leptos::{prelude::*, task::spawn_local};
use leptos_router::{components::A, hooks::use_navigate};
use uuid::Uuid;

use super::{browser, message::relative};
use crate::{
    api::chat::{delete_conversation, rename_conversation, update_conversation},
    contexts::chat::ChatContext,
    model::{Conversation, ConversationChanges},
};

thread_local! {
    /// The conversation whose item, rebuilt after its rename, should take the focus back.
    static REFOCUS: std::cell::Cell<Option<Uuid>> = const { std::cell::Cell::new(None) };
}

#[component]
pub fn ConversationItem(
    conversation: Conversation,
    active: Memo<Option<Uuid>>,
    /// Told the conversation as it is after a pin or archive here (it moves at once).
    on_changed: Callback<Conversation>,
) -> impl IntoView {
    let ctx = expect_context::<ChatContext>();
    let id = conversation.id;
    let editing = RwSignal::new(false);
    let confirming = RwSignal::new(false);
    let title = RwSignal::new(conversation.title.clone());
    let draft = RwSignal::new(conversation.title.clone());
    let error = RwSignal::new(None::<String>);
    let menu_open = RwSignal::new(false);
    let (pinned, archived) = (conversation.pinned, conversation.archived);
    let navigate = use_navigate();
    let change = move |changes: ConversationChanges| {
        spawn_local(async move {
            match update_conversation(id, changes).await {
                Ok(changed) => {
                    on_changed.run(changed);
                    menu_open.set(false);
                    error.set(None);
                    // The item moves (or leaves this list): focus must not fall to the page.
                    browser::focus_soon("#composer-input");
                    ctx.sidebar_version.update(|v| *v += 1);
                }
                Err(err) => error.set(Some(err.detail)),
            }
        });
    };

    let save = move || {
        let new_title = draft.get_untracked();
        spawn_local(async move {
            match rename_conversation(id, new_title).await {
                Ok(c) => {
                    title.set(c.title);
                    editing.set(false);
                    error.set(None);
                    // The list rebuilds the renamed item: the new one takes the focus back.
                    REFOCUS.with(|r| r.set(Some(id)));
                    browser::focus_soon_in(format!("[data-id='{id}'] .rename"));
                    ctx.sidebar_version.update(|v| *v += 1);
                }
                Err(err) => error.set(Some(err.detail)),
            }
        });
    };
    let remove = move || {
        let navigate = navigate.clone();
        spawn_local(async move {
            // Already gone (deleted in another tab) is as good as deleted: refresh either way.
            let _ = delete_conversation(id).await;
            confirming.set(false);
            // The item goes: focus must not fall to the page.
            browser::focus_soon("#composer-input");
            ctx.sidebar_version.update(|v| *v += 1);
            if active.get_untracked() == Some(id) {
                navigate("/chat", Default::default());
            }
        });
    };
    let remove = StoredValue::new(remove);
    Effect::new(move |_| {
        if REFOCUS.with(|r| r.get()) == Some(id) {
            REFOCUS.with(|r| r.set(None));
            browser::focus_soon_in(format!("[data-id='{id}'] .rename"));
        }
    });
    let href = format!("/chat/{id}");
    let preview = conversation
        .last_message_preview
        .clone()
        .unwrap_or_default();
    let when = relative(conversation.updated_at);
    view! {
        <li class="conversation" class:pinned=pinned class:active=move || active.get() == Some(id) data-testid="conversation" data-id=id.to_string()>
            <Show
                when=move || editing.get()
                fallback=move || {
                    let href = href.clone();
                    let preview = preview.clone();
                    let when = when.clone();
                    view! {
                        <A href=href attr:class="conversation-link" on:click=move |_| ctx.drawer_open.set(false)>
                            <span class="conversation-title">{move || title.get()}</span>
                            <span class="conversation-time">{when}</span>
                            <span class="conversation-preview">{preview}</span>
                        </A>
                    }
                }
            >
                <input
                    class="rename-input"
                    aria-label="Conversation title"
                    prop:value=move || draft.get()
                    on:input=move |ev| draft.set(event_target_value(&ev))
                    on:keydown=move |ev: web_sys::KeyboardEvent| match ev.key().as_str() {
                        "Enter" => {
                            ev.prevent_default();
                            save();
                        }
                        "Escape" => {
                            ev.prevent_default();
                            draft.set(title.get_untracked());
                            editing.set(false);
                            error.set(None);
                            browser::focus_soon_in(format!("[data-id='{id}'] .rename"));
                        }
                        _ => {}
                    }
                    autofocus
                />
            </Show>
            <Show when=move || !editing.get() && !confirming.get()>
                <div class="conversation-actions">
                    <button
                        class="icon-button rename"
                        aria-label=move || format!("Rename {}", title.get())
                        on:click=move |_| {
                            draft.set(title.get_untracked());
                            editing.set(true);
                            browser::focus_soon_in(format!("[data-id='{id}'] .rename-input"));
                        }
                    >
                        "✎"
                    </button>
                    <button
                        class="icon-button delete"
                        aria-label=move || format!("Delete {}", title.get())
                        on:click=move |_| {
                            confirming.set(true);
                            browser::focus_soon_in(format!("[data-id='{id}'] .cancel"));
                        }
                    >
                        "✕"
                    </button>
                    <button
                        class="icon-button more"
                        aria-label=move || format!("More actions for {}", title.get())
                        aria-expanded=move || menu_open.get().to_string()
                        aria-controls=format!("menu-{id}")
                        on:click=move |_| menu_open.update(|open| *open = !*open)
                    >
                        "⋯"
                    </button>
                </div>
                {archived.then(|| view! {
                    <button class="ghost restore" on:click=move |_| change(ConversationChanges { archived: Some(false), ..Default::default() })>
                        "Restore"
                    </button>
                })}
            </Show>
            <Show when=move || menu_open.get() && !editing.get() && !confirming.get()>
                <div
                    class="conversation-menu"
                    id=format!("menu-{id}")
                    role="group"
                    aria-label=move || format!("Actions for {}", title.get())
                    on:keydown=move |ev: web_sys::KeyboardEvent| {
                        if ev.key() == "Escape" {
                            ev.prevent_default();
                            menu_open.set(false);
                            browser::focus_soon_in(format!("[data-id='{id}'] .more"));
                        }
                    }
                >
                    {(!archived).then(|| view! {
                        <button class="ghost" on:click=move |_| change(ConversationChanges { pinned: Some(!pinned), ..Default::default() })>
                            {if pinned { "Unpin" } else { "Pin" }}
                        </button>
                        <button class="ghost" on:click=move |_| change(ConversationChanges { archived: Some(true), ..Default::default() })>
                            "Archive"
                        </button>
                    })}
                    <a class="button ghost" href=format!("/api/chat/conversations/{id}/export?format=markdown") download>"Export as Markdown"</a>
                    <a class="button ghost" href=format!("/api/chat/conversations/{id}/export?format=json") download>"Export as JSON"</a>
                </div>
            </Show>
            <Show when=move || confirming.get()>
                // Focus goes to the safe choice; cancelling gives it back to "Delete …".
                <div class="confirm" role="alertdialog" aria-label="Confirm deletion" aria-describedby=format!("confirm-{id}")>
                    <span id=format!("confirm-{id}")>"Delete this conversation?"</span>
                    <button
                        class="ghost cancel"
                        on:click=move |_| {
                            confirming.set(false);
                            browser::focus_soon_in(format!("[data-id='{id}'] .delete"));
                        }
                        autofocus
                    >
                        "Cancel"
                    </button>
                    <button class="danger" on:click=move |_| remove.with_value(|f| f())>"Delete"</button>
                </div>
            </Show>
            {move || error.get().map(|e| view! { <p class="form-error" role="alert">{e}</p> })}
        </li>
    }
}
