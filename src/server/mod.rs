//! Everything that runs only on the server (the `ssr` feature).

pub mod agent;
pub mod auth;
pub mod bus;
pub mod chatkit;
pub mod client_ip;
pub mod config;
pub mod context;
pub mod cors;
pub mod db;
pub mod error;
pub mod guards;
pub mod listener;
pub mod live;
pub mod markdown;
pub mod mcp;
pub mod rate_limit;
mod reminder_sweeper;
pub mod rendered;
pub mod rest;
mod router;
mod serve;
pub mod services;
pub mod sessions;
pub mod state;
mod telemetry;

pub use router::{leptos_options, router, CHATKIT_PATH};
pub use serve::{serve, shutdown_signal};
pub use telemetry::init_tracing;

/// `text` as one percent-encoded URL query value (for redirects that name an outcome).
pub fn query_value(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
