//! The search palette (Ctrl/⌘+K): results as you type, arrow keys to choose, Enter to open
//! the conversation at the message (highlighted there), Escape to close (focus goes back where
//! it was).

use std::time::Duration;

use leptos::{prelude::*, task::spawn_local};
use leptos_router::hooks::use_navigate;
use web_sys::wasm_bindgen::JsCast;

use crate::{
    api::chat::search_conversations,
    contexts::chat::ChatContext,
    model::{SearchHit, SearchQuery},
};

/// Typing pauses this long before a search goes out (one request per pause, not per key).
const TYPING_PAUSE: Duration = Duration::from_millis(120);
const RESULTS: i64 = 10;

thread_local! {
    /// Where focus was when the palette opened (it goes back there when it closes).
    static RETURN_TO: std::cell::RefCell<Option<web_sys::HtmlElement>> =
        const { std::cell::RefCell::new(None) };
}

/// Where a hit opens: its conversation, at its message.
pub fn hit_href(hit: &SearchHit) -> String {
    match hit.seq {
        Some(seq) => format!("/chat/{}?at={seq}", hit.conversation_id),
        None => format!("/chat/{}", hit.conversation_id),
    }
}

#[component]
pub fn SearchPalette() -> impl IntoView {
    let ctx = expect_context::<ChatContext>();
    let text = RwSignal::new(String::new());
    let results: RwSignal<Vec<SearchHit>> = RwSignal::new(Vec::new());
    let selected = RwSignal::new(0_usize);
    let status = RwSignal::new(String::new());
    // Only the answer to the latest text counts.
    let generation = StoredValue::new(0_u64);
    let search = move |q: String| {
        generation.update_value(|g| *g += 1);
        let mine = generation.get_value();
        if q.trim().is_empty() {
            results.set(Vec::new());
            status.set(String::new());
            return;
        }
        set_timeout(
            move || {
                if generation.get_value() != mine {
                    return;
                }
                spawn_local(async move {
                    let query = SearchQuery {
                        q,
                        limit: Some(RESULTS),
                        cursor: None,
                    };
                    let answer = search_conversations(query).await;
                    if generation.get_value() != mine {
                        return;
                    }
                    match answer {
                        Ok(page) => {
                            status.set(match page.results.len() {
                                0 => "No matches".into(),
                                1 => "1 result".into(),
                                n => format!("{n} results"),
                            });
                            results.set(page.results);
                            selected.set(0);
                        }
                        Err(err) => status.set(err.detail),
                    }
                });
            },
            TYPING_PAUSE,
        );
    };
    // Opened: remember what had focus (not the palette itself, on a second Ctrl+K).
    Effect::new(move |_| {
        if !ctx.search_open.get() {
            return;
        }
        let active = document().active_element();
        if active
            .as_ref()
            .is_some_and(|el| matches!(el.closest(".palette"), Ok(Some(_))))
        {
            return;
        }
        let from = active
            .filter(|el| el.tag_name() != "BODY")
            .and_then(|el| el.dyn_into::<web_sys::HtmlElement>().ok());
        RETURN_TO.with(|r| *r.borrow_mut() = from);
    });
    let navigate = use_navigate();
    let close = move || {
        ctx.search_open.set(false);
        text.set(String::new());
        results.set(Vec::new());
        status.set(String::new());
    };
    // Escape or a click beside it: focus goes back where it was (the composer if that is gone
    // or hidden, e.g. in the drawer Ctrl+K closed).
    let dismiss = move || {
        close();
        let back = RETURN_TO.with(|r| r.borrow_mut().take());
        request_animation_frame(move || {
            let returned = back.is_some_and(|el| {
                let _ = el.focus();
                document()
                    .active_element()
                    .as_ref()
                    .is_some_and(|a| a == el.unchecked_ref::<web_sys::Element>())
            });
            if !returned {
                crate::components::browser::focus_soon("#composer-input");
            }
        });
    };
    let open = move |index: usize| {
        let Some(hit) = results.with_untracked(|r| r.get(index).cloned()) else {
            return;
        };
        close();
        ctx.drawer_open.set(false);
        navigate(&hit_href(&hit), Default::default());
    };
    let open = StoredValue::new(open);
    let on_keydown = move |ev: web_sys::KeyboardEvent| {
        let count = results.with_untracked(Vec::len);
        match ev.key().as_str() {
            "ArrowDown" if count > 0 => {
                ev.prevent_default();
                selected.update(|s| *s = (*s + 1) % count);
            }
            "ArrowUp" if count > 0 => {
                ev.prevent_default();
                selected.update(|s| *s = (*s + count - 1) % count);
            }
            "Enter" => {
                ev.prevent_default();
                open.with_value(|f| f(selected.get_untracked()));
            }
            "Escape" => {
                ev.prevent_default();
                dismiss();
            }
            _ => {}
        }
    };
    view! {
        <Show when=move || ctx.search_open.get()>
            <div
                class="dialog-backdrop"
                on:click=move |ev| {
                    // Only a click on the backdrop itself, not inside the dialog.
                    if ev.target() == ev.current_target() {
                        dismiss();
                    }
                }
            >
                <div class="dialog palette" role="dialog" aria-modal="true" aria-label="Search conversations">
                    <input
                        type="search"
                        class="palette-input"
                        role="combobox"
                        aria-label="Search"
                        aria-autocomplete="list"
                        aria-controls=move || (!results.with(Vec::is_empty)).then_some("palette-results")
                        aria-expanded=move || (!results.with(Vec::is_empty)).to_string()
                        aria-activedescendant=move || {
                            (!results.with(Vec::is_empty)).then(|| format!("hit-{}", selected.get()))
                        }
                        placeholder="Search conversations…"
                        autocomplete="off"
                        prop:value=move || text.get()
                        on:input=move |ev| {
                            let value = event_target_value(&ev);
                            text.set(value.clone());
                            search(value);
                        }
                        on:keydown=on_keydown
                        autofocus
                    />
                    // Only with options in it (an empty listbox is not a valid one).
                    <Show when=move || !results.with(Vec::is_empty)>
                    <ul id="palette-results" class="palette-results" role="listbox" aria-label="Results">
                        {move || {
                            results
                                .get()
                                .into_iter()
                                .enumerate()
                                .map(|(i, hit)| {
                                    view! {
                                        <li
                                            id=format!("hit-{i}")
                                            role="option"
                                            class="hit"
                                            aria-selected=move || (selected.get() == i).to_string()
                                            on:mousemove=move |_| selected.set(i)
                                            on:click=move |_| open.with_value(|f| f(i))
                                        >
                                            <span class="hit-title">{hit.conversation_title.clone()}</span>
                                            <span class="hit-snippet" inner_html=hit.snippet_html.clone()></span>
                                        </li>
                                    }
                                })
                                .collect_view()
                        }}
                    </ul>
                    </Show>
                    <p class="palette-status" role="status">{move || status.get()}</p>
                </div>
            </div>
        </Show>
    }
}
