//! The message composer. A real `<form>` that posts to the send server function, so it works
//! without JavaScript; once hydrated it sends in place (Enter sends, Shift+Enter is a new line).

use leptos::{prelude::*, task::spawn_local};
use leptos_router::hooks::{use_navigate, use_query_map};
use uuid::Uuid;

use crate::{
    api::chat::create_conversation, contexts::chat::ChatContext, model::MAX_MESSAGE_CHARS,
};

/// Show the counter from this many characters on.
const COUNTER_FROM: usize = MAX_MESSAGE_CHARS - 1_000;

#[component]
pub fn Composer(
    /// The conversation to post into; `None` starts a new one with this message.
    conversation: Option<Uuid>,
    /// Called with the text when sent in place (JavaScript).
    on_submit: Callback<String>,
    /// Up in the empty box: edit the last message sent (in a conversation).
    #[prop(optional)]
    on_edit_last: Option<Callback<()>>,
    /// What a failed plain-form send (no JavaScript) had typed, kept by the server for the
    /// redirect back here (see `api::ssr::redirect_form_error`).
    #[prop(optional)]
    returned: String,
) -> impl IntoView {
    // The redirect names the reason in the URL; the text comes from the server.
    let query = use_query_map();
    let send_error = query.with_untracked(|q| q.get("error"));
    let draft = RwSignal::new(returned.clone());
    let hydrated = RwSignal::new(false);
    let input = NodeRef::<leptos::html::Textarea>::new();
    Effect::new(move |_| {
        hydrated.set(true);
        // A composer that appears where focus was lost (the page opened, the conversation
        // changed, the empty state's composer gave way) takes it, with a keyboard and mouse
        // (on a touch screen that would pop the on-screen keyboard up unasked).
        if let Some(el) = input.get() {
            let lost = document()
                .active_element()
                .is_none_or(|a| a.tag_name() == "BODY");
            let fine_pointer = window()
                .match_media("(pointer: fine)")
                .ok()
                .flatten()
                .is_some_and(|m| m.matches());
            if lost && fine_pointer {
                let _ = el.focus();
            }
        }
    });
    let count = Memo::new(move |_| draft.with(|d| d.trim().chars().count()));
    let too_long = move || count.get() > MAX_MESSAGE_CHARS;
    // Server-rendered, the button stays enabled so the form can be posted without JavaScript.
    let blocked = move || hydrated.get() && (count.get() == 0 || too_long());

    let send = move || {
        if blocked() {
            return;
        }
        let text = draft.get_untracked();
        draft.set(String::new());
        on_submit.run(text);
    };
    let on_keydown = move |ev: web_sys::KeyboardEvent| {
        if ev.key() == "Enter" && !ev.shift_key() && !ev.is_composing() {
            ev.prevent_default();
            send();
        } else if ev.key() == "ArrowUp" && !ev.shift_key() && draft.with_untracked(|d| d.is_empty())
        {
            if let Some(edit_last) = on_edit_last {
                ev.prevent_default();
                edit_last.run(());
            }
        }
    };
    let action = if conversation.is_some() {
        "/sfn/chat/send"
    } else {
        "/sfn/chat/start"
    };
    view! {
        <form
            class="composer"
            method="post"
            action=action
            on:submit=move |ev| {
                ev.prevent_default();
                send();
            }
        >
            {conversation.map(|id| view! { <input type="hidden" name="id" value=id.to_string() /> })}
            <label for="composer-input" class="visually-hidden">"Message"</label>
            <textarea
                node_ref=input
                id="composer-input"
                name="content"
                rows="2"
                placeholder="Type a message..."
                aria-describedby="composer-counter"
                prop:value=move || draft.get()
                on:input=move |ev| draft.set(event_target_value(&ev))
                on:keydown=on_keydown
            >
                {returned}
            </textarea>
            {send_error.map(|e| view! { <p class="form-error send-error" role="alert">{format!("Not sent: {e}")}</p> })}
            <div class="composer-side">
                <span
                    id="composer-counter"
                    class="counter"
                    class:over=too_long
                    aria-live="polite"
                    hidden=move || count.get() < COUNTER_FROM
                >
                    {move || format!("{} / {}", count.get(), MAX_MESSAGE_CHARS)}
                </span>
                <button type="submit" class="primary" disabled=blocked>
                    "Send"
                </button>
            </div>
        </form>
    }
}

/// The empty state's composer. Without JavaScript the form posts to `start`; with it, the
/// conversation is created first and opened, and its thread sends the message.
#[component]
pub fn StartComposer(
    /// Example prompts shown as buttons: one click sends it (a form post without JavaScript).
    #[prop(optional)]
    examples: &'static [&'static str],
) -> impl IntoView {
    let ctx = expect_context::<ChatContext>();
    let pending = RwSignal::new(None::<String>);
    let error = RwSignal::new(None::<String>);
    let navigate = use_navigate();
    let on_submit = Callback::new(move |content: String| {
        pending.set(Some(content.clone()));
        error.set(None);
        let navigate = navigate.clone();
        spawn_local(async move {
            match create_conversation(None).await {
                Ok(conversation) => {
                    ctx.first_message.set(Some(content));
                    ctx.sidebar_version.update(|v| *v += 1);
                    navigate(&format!("/chat/{}", conversation.id), Default::default());
                }
                Err(err) => {
                    error.set(Some(format!("Not sent: {}", err.detail)));
                    pending.set(Some(content));
                }
            }
        });
    });
    let examples = (!examples.is_empty()).then(|| {
        view! {
            <ul class="suggestions" aria-label="Examples to try">
                {examples
                    .iter()
                    .map(|&text| {
                        view! {
                            <li>
                                <form
                                    method="post"
                                    action="/sfn/chat/start"
                                    on:submit=move |ev| {
                                        ev.prevent_default();
                                        on_submit.run(text.to_string());
                                    }
                                >
                                    <input type="hidden" name="content" value=text />
                                    <button type="submit" class="suggestion" disabled=move || pending.get().is_some()>
                                        {text}
                                    </button>
                                </form>
                            </li>
                        }
                    })
                    .collect_view()}
            </ul>
        }
    });
    view! {
        {examples}
        <Show when=move || pending.get().is_some()>
            <ol class="messages">
                <li class="message user pending" class:failed=move || error.get().is_some()>
                    <div class="bubble"><p class="plain">{move || pending.get().unwrap_or_default()}</p></div>
                    {move || {
                        error.get().map(|e| {
                            view! {
                                <div class="send-error" role="alert">
                                    <span>{e}</span>
                                    <button
                                        class="ghost"
                                        on:click=move |_| {
                                            if let Some(text) = pending.get_untracked() {
                                                on_submit.run(text);
                                            }
                                        }
                                    >
                                        "Retry"
                                    </button>
                                </div>
                            }
                        })
                    }}
                </li>
                <Show when=move || error.get().is_none()>
                    <li class="typing"><span class="dot"></span><span class="dot"></span><span class="dot"></span><span class="visually-hidden" role="status">"Sending…"</span></li>
                </Show>
            </ol>
        </Show>
        <Composer conversation=None on_submit />
    }
}
