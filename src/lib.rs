#![recursion_limit = "256"]
//! chatkit: a to-do list you manage by chatting with an assistant.
//!
//! - `app`, `pages`, `components`: the Leptos UI (server-rendered, hydrated in the browser);
//! - `api`: server functions, the stable RPC surface other Leptos apps can call;
//! - `model`: types shared by server and browser;
//! - `server` (feature `ssr`): config, database, auth, services, REST, MCP, agent.

pub mod api;
pub mod app;
pub mod components;
pub mod contexts;
pub mod model;
pub mod pages;
#[cfg(feature = "ssr")]
pub mod server;

#[cfg(feature = "hydrate")]
#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    leptos::mount::hydrate_body(app::App);
    // Lets end-to-end tests (and CSS) know the page is interactive.
    if let Some(body) = leptos::prelude::document().body() {
        let _ = body.set_attribute("data-hydrated", "true");
    }
}
