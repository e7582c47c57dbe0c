//! `/chat` and `/chat/:id`: sidebar, thread, composer and task panel.

use leptos::prelude::*;
use leptos_router::{
    components::{Outlet, Redirect, A},
    hooks::{use_navigate, use_params_map, use_query_map},
};
use uuid::Uuid;

use crate::{
    api::{
        auth::{current_user, Logout},
        chat::{get_server_info, list_messages},
    },
    components::{
        composer::StartComposer,
        reminders::Reminders,
        search_palette::SearchPalette,
        shortcuts::Shortcuts,
        sidebar::Sidebar,
        task_panel::TaskPanel,
        thread::{Thread, ThreadGone},
    },
    contexts::{chat::ChatContext, live::LiveContext},
    model::{MessageQuery, User},
};

/// Checks the session once for every chat route; signed-out visitors go to `/login`.
#[component]
pub fn ChatLayout() -> impl IntoView {
    let user = Resource::new_blocking(|| (), |_| current_user());
    let info = Resource::new(|| (), |_| get_server_info());
    let ctx = ChatContext {
        sidebar_version: RwSignal::new(0),
        tasks_version: RwSignal::new(0),
        online: RwSignal::new(true),
        drawer_open: RwSignal::new(false),
        tasks_open: RwSignal::new(false),
        first_message: RwSignal::new(None),
        announcement: RwSignal::new(String::new()),
        search_open: RwSignal::new(false),
    };
    provide_context(ctx);
    // One live event stream per tab, shared by the thread, the sidebar and the task panel.
    let live = LiveContext::provide();
    Effect::new(move |_| {
        // Connected again after an outage: the stream replays what was missed.
        if live.connected.get() {
            ctx.online.set(true);
        }
    });
    view! {
        <Suspense fallback=|| view! { <p class="loading">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match user.await {
                    Ok(Some(user)) => {
                        provide_context(user.clone());
                        view! {
                            <div
                                class="app-frame"
                                class:drawer-open=move || ctx.drawer_open.get()
                                class:tasks-open=move || ctx.tasks_open.get()
                            >
                                <TopBar user info />
                                <div id="announcer" class="visually-hidden" role="status" aria-live="polite" aria-atomic="true">
                                    {move || ctx.announcement.get()}
                                </div>
                                <Shortcuts />
                                <SearchPalette />
                                <Reminders />
                                <Show when=move || !ctx.online.get()>
                                    <div class="banner offline" role="status">
                                        "Connection lost. Reconnecting…"
                                    </div>
                                </Show>
                                <div class="chat-shell">
                                    <Sidebar />
                                    <button
                                        class="drawer-scrim"
                                        aria-label="Close the side panel"
                                        on:click=move |_| {
                                            ctx.drawer_open.set(false);
                                            ctx.tasks_open.set(false);
                                        }
                                    ></button>
                                    <Outlet />
                                    <TaskPanel />
                                </div>
                            </div>
                        }
                            .into_any()
                    }
                    _ => view! { <Redirect path="/login" /> }.into_any(),
                }
            })}
        </Suspense>
    }
}

#[component]
fn TopBar(
    user: User,
    info: Resource<Result<crate::model::ServerInfo, crate::model::ApiError>>,
) -> impl IntoView {
    let ctx = expect_context::<ChatContext>();
    let logout = ServerAction::<Logout>::new();
    let navigate = use_navigate();
    Effect::new(move |_| {
        // Signed out (or the session had already ended): forget the token, back to sign-in.
        if logout.value().get().is_some() {
            #[cfg(feature = "client")]
            crate::api::client::set_token(None);
            navigate("/login", Default::default());
        }
    });
    view! {
        <header class="topbar">
            <button
                class="icon-button menu-button"
                aria-label="Open the conversation list"
                aria-controls="sidebar"
                aria-expanded=move || ctx.drawer_open.get().to_string()
                on:click=move |_| ctx.drawer_open.update(|open| *open = !*open)
            >
                "☰"
            </button>
            <span class="brand">"✓ Tasks chat"</span>
            <Transition>
                {move || {
                    info.get()
                        .and_then(Result::ok)
                        .map(|info| {
                            if info.offline_assistant {
                                view! {
                                    <span class="badge" title="No OPENAI_API_KEY is set: the built-in assistant answers">
                                        "Offline assistant"
                                    </span>
                                }
                                    .into_any()
                            } else {
                                view! { <span class="badge model">{info.model}</span> }.into_any()
                            }
                        })
                }}
            </Transition>
            <span class="spacer"></span>
            <button
                class="ghost tasks-button"
                aria-controls="task-panel"
                aria-expanded=move || ctx.tasks_open.get().to_string()
                on:click=move |_| ctx.tasks_open.update(|open| *open = !*open)
            >
                "Tasks"
            </button>
            <span class="who" data-testid="current-user">{user.email}</span>
            <A href="/settings" attr:class="settings-link">
                <span class="settings-icon" aria-hidden="true">"⚙"</span>
                <span class="settings-label">"Settings"</span>
            </A>
            <ActionForm action=logout attr:class="logout-form">
                <button type="submit" class="ghost">"Log out"</button>
            </ActionForm>
        </header>
    }
}

/// The conversation in the URL, or the empty state.
#[component]
pub fn ChatPage() -> impl IntoView {
    let params = use_params_map();
    let conversation = Memo::new(move |_| {
        params
            .read()
            .get("id")
            .and_then(|id| id.parse::<Uuid>().ok())
    });
    let has_id = Memo::new(move |_| params.read().get("id").is_some());
    // With the messages: after a failed no-JavaScript send, what was typed (kept on the
    // server for this page). Only the server-rendered page the form was redirected to has
    // one; the browser never asks (the page came with it), so that call stays out of the WASM.
    // The draft is read from the URL untracked: opening another conversation finds none.
    let query = use_query_map();
    // A search hit opens the thread at its message; another hit reopens it there.
    let at = Memo::new(move |_| query.read().get("at").and_then(|s| s.parse::<i64>().ok()));
    let initial = Resource::new_blocking(
        move || (conversation.get(), at.get()),
        move |(id, _)| {
            let draft =
                query.with_untracked(|q| q.get("draft").and_then(|d| d.parse::<Uuid>().ok()));
            async move {
                let page = match id {
                    Some(id) => Some(list_messages(id, MessageQuery::default()).await),
                    None => None,
                };
                #[cfg(feature = "ssr")]
                let returned = match draft {
                    Some(draft) => crate::api::chat::get_draft(draft)
                        .await
                        .ok()
                        .flatten()
                        .unwrap_or_default(),
                    None => String::new(),
                };
                #[cfg(not(feature = "ssr"))]
                let returned = {
                    let _ = draft;
                    String::new()
                };
                (page, returned)
            }
        },
    );
    view! {
        <main class="chat-main" id="main">
            <Suspense fallback=|| view! { <p class="loading">"Loading messages…"</p> }>
                {move || Suspend::new(async move {
                    let (page, returned) = initial.await;
                    match (page, conversation.get_untracked()) {
                        (Some(Ok(page)), Some(id)) => {
                            view! { <Thread id initial=page returned at=at.get_untracked() /> }.into_any()
                        }
                        (Some(Err(err)), _) if err.is_not_found() => view! { <ThreadGone /> }.into_any(),
                        (Some(Err(err)), _) => {
                            view! { <p class="form-error" role="alert">{err.detail}</p> }.into_any()
                        }
                        (None, _) if has_id.get_untracked() => view! { <ThreadGone /> }.into_any(),
                        _ => view! { <EmptyState /> }.into_any(),
                    }
                })}
            </Suspense>
        </main>
    }
}

/// No conversation selected: a welcome with first messages to try.
#[component]
fn EmptyState() -> impl IntoView {
    // Each one works with the offline assistant too.
    const EXAMPLES: &[&str] = &[
        "Add a task to buy groceries",
        "Show my pending tasks",
        "What can you do?",
    ];
    view! {
        <section class="empty-state" aria-labelledby="empty-title">
            <h1 id="empty-title">"What needs doing?"</h1>
            <p>"Tell the assistant about your tasks in plain words. Try:"</p>
            <StartComposer examples=EXAMPLES />
        </section>
    }
}
