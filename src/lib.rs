#![recursion_limit = "256"]
//! chatkit: a to-do list you manage by chatting with an assistant.
//!
//! - `app`, `pages`, `components`, `contexts`: the Leptos UI (feature `ui`: server-rendered and
//!   hydrated, or client-side rendered with feature `csr`);
//! - `api`: server functions, the stable RPC surface other Leptos apps call (feature `client`);
//! - `model`: types shared by server and browser;
//! - `server` (feature `ssr`): config, database, auth, services, REST, MCP, agent.

#[cfg(any(feature = "ssr", feature = "client"))]
pub mod api;
#[cfg(feature = "ui")]
pub mod app;
#[cfg(feature = "ui")]
pub mod components;
#[cfg(feature = "ui")]
pub mod contexts;
pub mod model;
#[cfg(feature = "ui")]
pub mod pages;
#[cfg(feature = "ssr")]
pub mod server;

#[cfg(feature = "hydrate")]
#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    leptos::mount::hydrate_body(app::App);
    app::mark_interactive();
}

/// The client-side-rendered app (Trunk): talks to the server at `CHATKIT_SERVER_URL`, fixed at
/// build time (empty: the origin the page was served from).
#[cfg(feature = "csr")]
pub fn mount_csr() {
    console_error_panic_hook::set_once();
    if let Some(url) = option_env!("CHATKIT_SERVER_URL").filter(|url| !url.is_empty()) {
        api::client::set_server_url(url.trim_end_matches('/'));
    }
    leptos::mount::mount_to_body(app::App);
    app::mark_interactive();
}
