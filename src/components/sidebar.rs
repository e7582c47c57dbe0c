//! The conversation list: newest first, more on scroll, new / rename / delete. Updated from
//! the live event stream (a conversation created, renamed, moved or deleted anywhere); pages
//! loaded by scrolling stay loaded. Without the stream it refreshes its first page every 5 s.

use std::time::Duration;

use leptos::{prelude::*, task::spawn_local};
use leptos_router::{
    components::A,
    hooks::{use_location, use_navigate},
};
use uuid::Uuid;

use super::{browser, message::relative};
use crate::{
    api::chat::{
        create_conversation, delete_conversation, list_conversations, rename_conversation,
    },
    contexts::{chat::ChatContext, live::LiveContext},
    model::{ApiError, Conversation, ConversationPage, ConversationQuery, LiveEvent},
};

const REFRESH_EVERY: Duration = Duration::from_secs(5);

#[component]
pub fn Sidebar() -> impl IntoView {
    let ctx = expect_context::<ChatContext>();
    let first_page = Resource::new(
        move || ctx.sidebar_version.get(),
        |_| list_conversations(ConversationQuery::default()),
    );
    // Every conversation loaded so far (first page, scrolled pages, live updates), newest
    // first, each once.
    let items: RwSignal<Vec<Conversation>> = RwSignal::new(Vec::new());
    // Where the next page starts; `None` once everything is loaded.
    let cursor: RwSignal<Option<String>> = RwSignal::new(None);
    let loading_more = RwSignal::new(false);
    let seeded = RwSignal::new(false);
    let live = expect_context::<LiveContext>();
    live.subscribe(move |event| match event {
        LiveEvent::Conversation(conversation) => items.update(|list| upsert(list, conversation)),
        LiveEvent::ConversationDeleted { id } => items.update(|list| list.retain(|c| c.id != id)),
        LiveEvent::Resync => ctx.sidebar_version.update(|v| *v += 1),
        _ => {}
    });
    // Without the live stream, other tabs' and devices' changes come from refreshing.
    Effect::new(move |_| {
        if let Ok(handle) = set_interval_with_handle(
            move || {
                if !live.connected.get_untracked() && browser::tab_visible() {
                    ctx.sidebar_version.update(|v| *v += 1);
                }
            },
            REFRESH_EVERY,
        ) {
            on_cleanup(move || handle.clear());
        }
    });
    let load_more = move || {
        let Some(next) = cursor.get_untracked() else {
            return;
        };
        if loading_more.get_untracked() {
            return;
        }
        loading_more.set(true);
        spawn_local(async move {
            let query = ConversationQuery {
                cursor: Some(next),
                ..Default::default()
            };
            if let Ok(page) = list_conversations(query).await {
                items.update(|list| {
                    for c in page.conversations {
                        upsert(list, c);
                    }
                });
                cursor.set(page.next_cursor);
            }
            loading_more.set(false);
        });
    };
    let location = use_location();
    let active = Memo::new(move |_| {
        location
            .pathname
            .get()
            .strip_prefix("/chat/")
            .and_then(|id| id.parse::<Uuid>().ok())
    });
    let navigate = use_navigate();
    let new_conversation = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let navigate = navigate.clone();
        spawn_local(async move {
            if let Ok(conversation) = create_conversation(None).await {
                ctx.sidebar_version.update(|v| *v += 1);
                ctx.drawer_open.set(false);
                navigate(&format!("/chat/{}", conversation.id), Default::default());
            }
        });
    };

    view! {
        <nav id="sidebar" class="sidebar" aria-label="Conversations">
            <form method="post" action="/sfn/chat/create" on:submit=new_conversation>
                <button type="submit" class="primary new-conversation">"New conversation"</button>
            </form>
            <div
                class="conversation-scroll"
                on:scroll=move |ev| {
                    let el = event_target::<web_sys::HtmlElement>(&ev);
                    if el.scroll_height() - el.scroll_top() - el.client_height() < 120 {
                        load_more();
                    }
                }
            >
                <Transition fallback=|| view! { <p class="loading">"Loading…"</p> }>
                    <FirstPage first_page items cursor seeded />
                    // One keyed list that survives refreshes: an item is rebuilt only when it
                    // changed, so an inline rename in progress is not interrupted.
                    <ul class="conversation-list" data-testid="conversation-list">
                        <For
                            each=move || {
                                // Until the first page is merged (and without JavaScript, on
                                // the server) the list is that page.
                                if seeded.get() {
                                    items.get()
                                } else {
                                    first_page.get().and_then(Result::ok).map(|p| p.conversations).unwrap_or_default()
                                }
                            }
                            key=|c| (c.id, c.title.clone(), c.updated_at)
                            let(conversation)
                        >
                            <ConversationItem conversation active />
                        </For>
                    </ul>
                    {move || match first_page.get() {
                        Some(Ok(page)) if page.conversations.is_empty() => {
                            Some(view! { <p class="hint">"No conversations yet."</p> }.into_any())
                        }
                        Some(Err(err)) => Some(view! { <p class="form-error">{err.detail}</p> }.into_any()),
                        _ => None,
                    }}
                </Transition>
                <Show when=move || cursor.get().is_some()>
                    <button class="ghost load-more" on:click=move |_| load_more() disabled=move || loading_more.get()>
                        "Load more"
                    </button>
                </Show>
            </div>
        </nav>
    }
}

thread_local! {
    /// The conversation whose item, rebuilt after its rename, should take the focus back.
    static REFOCUS: std::cell::Cell<Option<Uuid>> = const { std::cell::Cell::new(None) };
}

#[component]
fn ConversationItem(conversation: Conversation, active: Memo<Option<Uuid>>) -> impl IntoView {
    let ctx = expect_context::<ChatContext>();
    let id = conversation.id;
    let editing = RwSignal::new(false);
    let confirming = RwSignal::new(false);
    let title = RwSignal::new(conversation.title.clone());
    let draft = RwSignal::new(conversation.title.clone());
    let error = RwSignal::new(None::<String>);
    let navigate = use_navigate();

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
        <li class="conversation" class:active=move || active.get() == Some(id) data-testid="conversation" data-id=id.to_string()>
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

/// Puts `conversation` in its place (newest first), replacing an older copy of it.
fn upsert(list: &mut Vec<Conversation>, conversation: Conversation) {
    list.retain(|c| c.id != conversation.id);
    let at = list
        .iter()
        .position(|c| (c.updated_at, c.id) < (conversation.updated_at, conversation.id))
        .unwrap_or(list.len());
    list.insert(at, conversation);
}

/// Merges each (re)loaded first page into the list; the first one also starts paging. This
/// lives inside the list's `<Transition>` on purpose: reading a resource registers it with the
/// nearest suspense boundary, and read from the sidebar's own scope that is the page-wide
/// `<Suspense>`, which would then blank the whole chat (and reset the composer).
#[component]
fn FirstPage(
    first_page: Resource<Result<ConversationPage, ApiError>>,
    items: RwSignal<Vec<Conversation>>,
    cursor: RwSignal<Option<String>>,
    seeded: RwSignal<bool>,
) -> impl IntoView {
    Effect::new(move |_| {
        if let Some(Ok(page)) = first_page.get() {
            items.update(|list| {
                for c in page.conversations {
                    upsert(list, c);
                }
            });
            if !seeded.get_untracked() {
                cursor.set(page.next_cursor);
                seeded.set(true);
            }
        }
    });
}
