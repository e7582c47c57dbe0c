//! The application shell and routes.

use leptos::prelude::*;
use leptos_meta::{provide_meta_context, Meta, MetaTags, Stylesheet, Title};
use leptos_router::{
    components::{ParentRoute, Route, Router, Routes},
    path, SsrMode,
};

use crate::pages::{
    auth::{LoginPage, RegisterPage},
    chat::{ChatLayout, ChatPage},
    home::HomePage,
    not_found::NotFound,
    search::SearchPage,
    settings::SettingsPage,
};

pub fn shell(options: LeptosOptions) -> impl IntoView {
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8" />
                <meta name="viewport" content="width=device-width, initial-scale=1" />
                <meta name="color-scheme" content="light dark" />
                <link rel="icon" href="/favicon.svg" type="image/svg+xml" />
                <HydrationScripts options />
                <MetaTags />
            </head>
            <body>
                <App />
            </body>
        </html>
    }
}

#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    view! {
        // The CSR build links its stylesheet from `index.html` (Trunk hashes it).
        {(!cfg!(feature = "csr")).then(|| view! { <Stylesheet id="leptos" href="/pkg/chatkit.css" /> })}
        <Title text="Tasks chat" />
        <Meta name="description" content="Manage your to-do list by chatting with an assistant." />
        <Router>
            <Routes fallback=NotFound>
                <Route path=path!("") view=HomePage ssr=SsrMode::Async />
                <Route path=path!("/login") view=LoginPage />
                <Route path=path!("/register") view=RegisterPage />
                // Rendered whole before sending, so history and forms work without JavaScript.
                <ParentRoute path=path!("/chat") view=ChatLayout ssr=SsrMode::Async>
                    <Route path=path!("") view=ChatPage />
                    <Route path=path!("search") view=SearchPage />
                    <Route path=path!(":id") view=ChatPage />
                </ParentRoute>
                <ParentRoute path=path!("/settings") view=ChatLayout ssr=SsrMode::Async>
                    <Route path=path!("") view=SettingsPage />
                </ParentRoute>
            </Routes>
        </Router>
    }
}

/// Lets end-to-end tests (and CSS) know the page is interactive.
#[cfg(any(feature = "hydrate", feature = "csr"))]
pub fn mark_interactive() {
    if let Some(body) = document().body() {
        let _ = body.set_attribute("data-hydrated", "true");
    }
}
