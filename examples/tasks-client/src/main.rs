//! A minimal separate Leptos app that uses chatkit's server functions from another origin:
//! sign in, list conversations, send a message, show the reply and the tasks.

use chatkit::{
    api::{auth, chat, client, tasks},
    model::{ApiError, ConversationQuery, TaskFilter},
};
use leptos::prelude::*;

fn main() {
    console_error_panic_hook::set_once();
    let server = option_env!("CHATKIT_SERVER_URL").unwrap_or("http://127.0.0.1:3000");
    client::set_server_url(server.trim_end_matches('/'));
    leptos::mount::mount_to_body(App);
    if let Some(body) = document().body() {
        let _ = body.set_attribute("data-hydrated", "true");
    }
}

#[component]
fn App() -> impl IntoView {
    // The token survives a reload (chatkit keeps it in localStorage).
    let signed_in = RwSignal::new(client::token().is_some());
    view! {
        <h1>"Tasks, from another app"</h1>
        <Show when=move || signed_in.get() fallback=move || view! { <SignIn signed_in /> }>
            <Chat signed_in />
        </Show>
    }
}

#[component]
fn SignIn(signed_in: RwSignal<bool>) -> impl IntoView {
    let (email, password) = (RwSignal::new(String::new()), RwSignal::new(String::new()));
    let login = Action::new_local(|(email, password): &(String, String)| {
        auth::login(email.clone(), password.clone())
    });
    Effect::new(move |_| {
        if let Some(Ok(session)) = login.value().get() {
            client::set_token(session.access_token);
            signed_in.set(true);
        }
    });
    view! {
        <form on:submit=move |ev| {
            ev.prevent_default();
            login.dispatch((email.get(), password.get()));
        }>
            <input type="email" placeholder="Email" aria-label="Email" bind:value=email />
            <input type="password" placeholder="Password" aria-label="Password" bind:value=password />
            <button type="submit">"Sign in"</button>
        </form>
        <p class="error" role="alert">{move || error_of(login.value().get())}</p>
    }
}

#[component]
fn Chat(signed_in: RwSignal<bool>) -> impl IntoView {
    let draft = RwSignal::new(String::new());
    let send = Action::new_local(|text: &String| chat::start_conversation(text.clone(), None));
    // Reloaded after every send.
    let conversations = LocalResource::new(move || {
        send.version().track();
        chat::list_conversations(ConversationQuery::default())
    });
    let task_list = LocalResource::new(move || {
        send.version().track();
        tasks::list_tasks(TaskFilter::All)
    });
    // A token that no longer works (signed out elsewhere, expired): sign in again.
    Effect::new(move |_| {
        if let Some(Err(err)) = conversations.get() {
            if err.is_unauthorized() {
                client::set_token(None);
                signed_in.set(false);
            }
        }
    });
    // Replies come with `html`: their markdown rendered by the server, safe to insert.
    let reply = move || {
        send.value()
            .get()
            .and_then(Result::ok)
            .and_then(|turn| turn.assistant_message.and_then(|reply| reply.html))
    };
    view! {
        <form on:submit=move |ev| {
            ev.prevent_default();
            send.dispatch(draft.get());
            draft.set(String::new());
        }>
            <input placeholder="Message" aria-label="Message" bind:value=draft />
            <button type="submit" disabled=move || send.pending().get()>"Send"</button>
        </form>
        <p class="error" role="alert">{move || error_of(send.value().get())}</p>
        <div data-testid="reply" inner_html=reply></div>
        <h2>"Conversations"</h2>
        <ul data-testid="conversations">
            {move || conversations.get().and_then(Result::ok).map(|page| {
                page.conversations.into_iter().map(|c| view! { <li>{c.title}</li> }).collect_view()
            })}
        </ul>
        <h2>"Tasks"</h2>
        <ul data-testid="tasks">
            {move || task_list.get().and_then(Result::ok).map(|list| {
                list.into_iter().map(|t| view! { <li>{t.title}</li> }).collect_view()
            })}
        </ul>
    }
}

fn error_of<T>(result: Option<Result<T, ApiError>>) -> Option<String> {
    result.and_then(Result::err).map(|err| err.detail)
}
