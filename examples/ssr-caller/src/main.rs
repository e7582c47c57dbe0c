//! Checks that a caller running its own Leptos server gets chatkit's server functions only as
//! HTTP calls: its server-function registry holds its own function and nothing under `/sfn/`.

use leptos::prelude::*;

/// The caller's own server function: proof that registration works in this build at all.
#[server(prefix = "/caller", endpoint = "hello")]
pub async fn hello() -> Result<String, ServerFnError> {
    Ok("hello".into())
}

fn main() {
    // Use chatkit's functions, as a caller's shared UI code would, so they are linked in.
    let _calls = (
        chatkit::api::chat::list_conversations,
        chatkit::api::auth::login,
        chatkit::api::tasks::list_tasks,
    );
    let paths: Vec<String> = leptos::server_fn::axum::server_fn_paths()
        .map(|(path, _)| path.to_string())
        .collect();
    assert!(
        paths.iter().any(|p| p == "/caller/hello"),
        "the caller's own function is registered: {paths:?}"
    );
    let ours: Vec<&String> = paths.iter().filter(|p| p.starts_with("/sfn/")).collect();
    assert!(ours.is_empty(), "chatkit's functions were registered: {ours:?}");
    println!("ssr-caller: {} registered, none of chatkit's", paths.len());
}
