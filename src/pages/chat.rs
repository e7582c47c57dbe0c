//! `/chat` and `/chat/:id`: the signed-in home.

use leptos::prelude::*;
use leptos_router::components::{Outlet, Redirect};

use crate::{
    api::auth::{current_user, Logout},
    model::User,
};

/// Checks the session once for every chat route; signed-out visitors go to `/login`.
#[component]
pub fn ChatLayout() -> impl IntoView {
    let user = Resource::new_blocking(|| (), |_| current_user());
    view! {
        <Suspense fallback=|| view! { <p class="loading">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match user.await {
                    Ok(Some(user)) => {
                        provide_context(user.clone());
                        view! {
                            <div class="app-frame">
                                <TopBar user />
                                <Outlet />
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
fn TopBar(user: User) -> impl IntoView {
    let logout = ServerAction::<Logout>::new();
    view! {
        <header class="topbar">
            <span class="brand">"✓ Tasks chat"</span>
            <span class="who" data-testid="current-user">{user.email}</span>
            <ActionForm action=logout attr:class="logout-form">
                <button type="submit" class="ghost">"Log out"</button>
            </ActionForm>
        </header>
    }
}

#[component]
pub fn ChatPage() -> impl IntoView {
    view! {
        <main class="chat-main">
            <h1>"Your assistant"</h1>
        </main>
    }
}
