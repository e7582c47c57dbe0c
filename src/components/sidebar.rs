//! The conversation list: pinned ones first in their own section, then newest first, more on
//! scroll; a search form; the archived ones as a view of their own. Updated from the live
//! event stream (a conversation created, renamed, pinned, archived, moved or deleted
//! anywhere); pages loaded by scrolling stay loaded. Without the stream it refreshes its
//! first page every 5 s.

use std::time::Duration;

use leptos::{prelude::*, task::spawn_local};
use leptos_router::hooks::{use_location, use_navigate};
use uuid::Uuid;

use super::{browser, conversation_item::ConversationItem};
use crate::{
    api::chat::{create_conversation, list_conversations},
    contexts::{chat::ChatContext, live::LiveContext},
    model::{ApiError, Conversation, ConversationPage, ConversationQuery, LiveEvent},
};

const REFRESH_EVERY: Duration = Duration::from_secs(5);

#[component]
pub fn Sidebar() -> impl IntoView {
    let ctx = expect_context::<ChatContext>();
    // The archived conversations instead of the others.
    let archived_view = RwSignal::new(false);
    let first_page = Resource::new(
        move || (ctx.sidebar_version.get(), archived_view.get()),
        |(_, archived)| {
            list_conversations(ConversationQuery {
                archived: Some(archived),
                ..Default::default()
            })
        },
    );
    // Every conversation loaded so far (first page, scrolled pages, live updates), newest
    // first, each once.
    let items: RwSignal<Vec<Conversation>> = RwSignal::new(Vec::new());
    // Where the next page starts; `None` once everything is loaded.
    let cursor: RwSignal<Option<String>> = RwSignal::new(None);
    let loading_more = RwSignal::new(false);
    let seeded = RwSignal::new(false);
    let live = expect_context::<LiveContext>();
    // A conversation changed: in its place in this view, or out of it.
    let place = move |conversation: Conversation| {
        items.update(|list| {
            if conversation.archived == archived_view.get_untracked() {
                upsert(list, conversation);
            } else {
                list.retain(|c| c.id != conversation.id);
            }
        })
    };
    let on_changed = Callback::new(place);
    live.subscribe(move |event| match event {
        LiveEvent::Conversation(conversation) => place(conversation),
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
                archived: Some(archived_view.get_untracked()),
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

    // Until the first page is merged (and without JavaScript, on the server) the list is that
    // page; `pinned` picks the pinned section or the rest.
    let listed = move |pinned: bool| -> Vec<Conversation> {
        let all = if seeded.get() {
            items.get()
        } else {
            first_page
                .get()
                .and_then(Result::ok)
                .map(|p| p.conversations)
                .unwrap_or_default()
        };
        // The archived view is one list, pinned or not (an archived pin must stay restorable).
        let archived = archived_view.get();
        all.into_iter()
            .filter(|c| {
                if archived {
                    !pinned
                } else {
                    c.pinned == pinned
                }
            })
            .collect()
    };

    view! {
        <nav id="sidebar" class="sidebar" aria-label="Conversations">
            <form method="post" action="/sfn/chat/create" on:submit=new_conversation>
                <button type="submit" class="primary new-conversation">"New conversation"</button>
            </form>
            <form class="sidebar-search" method="get" action="/chat/search" role="search">
                <label for="sidebar-search" class="visually-hidden">"Search conversations"</label>
                <input id="sidebar-search" type="search" name="q" placeholder="Search…  (Ctrl+K)" />
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
                    <Show when=move || !archived_view.get() && !listed(true).is_empty()>
                        <h2 class="list-heading" id="pinned-heading">"Pinned"</h2>
                        <ul class="conversation-list pinned-list" data-testid="pinned-list" aria-labelledby="pinned-heading">
                            <For each=move || listed(true) key=item_key let(conversation)>
                                <ConversationItem conversation active on_changed />
                            </For>
                        </ul>
                    </Show>
                    <Show when=move || archived_view.get()>
                        <h2 class="list-heading">"Archived"</h2>
                    </Show>
                    <ul
                        class="conversation-list"
                        data-testid=move || if archived_view.get() { "archived-list" } else { "conversation-list" }
                    >
                        <For each=move || listed(false) key=item_key let(conversation)>
                            <ConversationItem conversation active on_changed />
                        </For>
                    </ul>
                    {move || match first_page.get() {
                        Some(Ok(page)) if page.conversations.is_empty() => {
                            let hint = if archived_view.get() { "Nothing archived." } else { "No conversations yet." };
                            Some(view! { <p class="hint">{hint}</p> }.into_any())
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
            <button
                class="ghost archived-toggle"
                aria-pressed=move || archived_view.get().to_string()
                on:click=move |_| {
                    // Another list: start it afresh.
                    items.set(Vec::new());
                    cursor.set(None);
                    seeded.set(false);
                    archived_view.update(|a| *a = !*a);
                }
            >
                "Archived conversations"
            </button>
        </nav>
    }
}

/// What rebuilds an item when it changes (an inline rename in progress is otherwise kept).
fn item_key(c: &Conversation) -> (Uuid, String, chrono::DateTime<chrono::Utc>, bool, bool) {
    (c.id, c.title.clone(), c.updated_at, c.pinned, c.archived)
}

/// Puts `conversation` in its place (pinned first, then newest first), replacing an older
/// copy of it.
fn upsert(list: &mut Vec<Conversation>, conversation: Conversation) {
    list.retain(|c| c.id != conversation.id);
    let rank = |c: &Conversation| (c.pinned, c.updated_at, c.id);
    let at = list
        .iter()
        .position(|c| rank(c) < rank(&conversation))
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
