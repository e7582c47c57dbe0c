//! The chat's keyboard: shortcuts (Ctrl/Cmd+Shift+O a new conversation, Shift+Escape the
//! composer, `?` this list, Escape closes what is open or stops a running reply) and focus
//! management (an open dialog or drawer keeps Tab inside it and gives focus back when it
//! closes). One key listener for the page; which key means what is `shortcut`, a pure function.

use leptos::prelude::*;

use crate::contexts::chat::ChatContext;

/// What a key press asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shortcut {
    NewConversation,
    FocusComposer,
    ShowHelp,
    /// The search palette (in a text field too).
    Search,
    /// Close what is open, or stop the running reply from the composer.
    Escape,
}

/// The shortcut a key press is, if any. `in_field`: focus is in a text field, where typing
/// must never trigger anything but the shortcuts meant to work there.
pub fn shortcut(key: &str, ctrl_or_meta: bool, shift: bool, in_field: bool) -> Option<Shortcut> {
    match key {
        "Escape" if shift => Some(Shortcut::FocusComposer),
        "Escape" => Some(Shortcut::Escape),
        "o" | "O" if ctrl_or_meta && shift => Some(Shortcut::NewConversation),
        "?" if !in_field && !ctrl_or_meta => Some(Shortcut::ShowHelp),
        "k" | "K" if ctrl_or_meta && !shift => Some(Shortcut::Search),
        _ => None,
    }
}

/// The shortcuts, as the help lists them.
const LIST: &[(&str, &str)] = &[
    ("Enter", "Send the message"),
    ("Shift + Enter", "New line in the message"),
    (
        "Escape",
        "Stop the reply being written (in the message box); close a dialog or panel",
    ),
    ("Shift + Escape", "Go to the message box"),
    ("↑ (in an empty message box)", "Edit your last message"),
    (
        "Ctrl + Shift + O (⌘ + Shift + O on a Mac)",
        "New conversation",
    ),
    ("Ctrl + K (⌘ + K on a Mac)", "Search conversations"),
    ("?", "Show these shortcuts"),
];

#[component]
pub fn Shortcuts() -> impl IntoView {
    let ctx = expect_context::<ChatContext>();
    let help_open = RwSignal::new(false);
    #[cfg(any(feature = "hydrate", feature = "csr"))]
    {
        keys::listen(ctx, help_open);
        // A drawer that opens takes focus; one that closes gives it back to its button.
        keys::focus_follows(ctx.drawer_open, "#sidebar", ".menu-button");
        keys::focus_follows(ctx.tasks_open, "#task-panel", ".tasks-button");
    }
    #[cfg(not(any(feature = "hydrate", feature = "csr")))]
    let _ = ctx;
    let close = move |_| keys::close_help(help_open);
    view! {
        <Show when=move || help_open.get()>
            <div class="dialog-backdrop">
                <div class="dialog" role="dialog" aria-modal="true" aria-labelledby="shortcuts-title">
                    <h2 id="shortcuts-title">"Keyboard shortcuts"</h2>
                    <dl class="shortcut-list">
                        {LIST
                            .iter()
                            .map(|(keys, what)| view! { <dt><kbd>{*keys}</kbd></dt><dd>{*what}</dd> })
                            .collect_view()}
                    </dl>
                    <button class="primary" on:click=close autofocus>"Close"</button>
                </div>
            </div>
        </Show>
    }
}

mod keys {
    //! The page's key listener and the focus moves (browser only).
    use leptos::prelude::*;

    #[cfg(any(feature = "hydrate", feature = "csr"))]
    use super::{shortcut, Shortcut};
    #[cfg(any(feature = "hydrate", feature = "csr"))]
    use crate::{components::browser::focus_soon, contexts::chat::ChatContext};

    thread_local! {
        /// Where focus was when the help opened (it goes back there).
        static RETURN_TO: std::cell::RefCell<Option<web_sys::HtmlElement>> =
            const { std::cell::RefCell::new(None) };
    }

    pub fn close_help(help_open: RwSignal<bool>) {
        help_open.set(false);
        if let Some(el) = RETURN_TO.with(|r| r.borrow_mut().take()) {
            request_animation_frame(move || {
                let _ = el.focus();
            });
        }
    }

    #[cfg(any(feature = "hydrate", feature = "csr"))]
    pub fn listen(ctx: ChatContext, help_open: RwSignal<bool>) {
        use leptos_router::hooks::use_navigate;

        let navigate = use_navigate();
        let handle = window_event_listener(leptos::ev::keydown, move |ev| {
            // Handled where it happened (e.g. Escape cancelling a rename).
            if ev.default_prevented() {
                return;
            }
            if ev.key() == "Tab" {
                if let Some(container) = modal(ctx, help_open) {
                    trap(&ev, &container);
                }
                return;
            }
            let active = document().active_element();
            let in_field = active.as_ref().is_some_and(|el| {
                matches!(el.tag_name().as_str(), "INPUT" | "TEXTAREA" | "SELECT")
            });
            let Some(wanted) = shortcut(
                &ev.key(),
                ev.ctrl_key() || ev.meta_key(),
                ev.shift_key(),
                in_field,
            ) else {
                return;
            };
            match wanted {
                Shortcut::FocusComposer => {
                    ev.prevent_default();
                    focus_soon("#composer-input");
                }
                Shortcut::NewConversation => {
                    ev.prevent_default();
                    ctx.drawer_open.set(false);
                    navigate("/chat", Default::default());
                    focus_soon("#composer-input");
                }
                Shortcut::ShowHelp => {
                    ev.prevent_default();
                    let from = active.and_then(|el| {
                        use wasm_bindgen::JsCast;
                        el.dyn_into::<web_sys::HtmlElement>().ok()
                    });
                    RETURN_TO.with(|r| *r.borrow_mut() = from);
                    help_open.set(true);
                    focus_soon(".dialog button");
                }
                Shortcut::Search => {
                    ev.prevent_default();
                    ctx.drawer_open.set(false);
                    ctx.search_open.set(true);
                    focus_soon(".palette-input");
                }
                Shortcut::Escape => escape(ctx, help_open, active),
            }
        });
        on_cleanup(move || handle.remove());
    }

    /// Focus into `container` when `open` turns true; back to `toggle` when it turns false
    /// with focus inside (or lost).
    #[cfg(any(feature = "hydrate", feature = "csr"))]
    pub fn focus_follows(open: RwSignal<bool>, container: &'static str, toggle: &'static str) {
        Effect::new(move |was: Option<bool>| {
            let now = open.get();
            match (was, now) {
                (Some(false), true) => {
                    // Once the drawer is shown (a hidden element cannot take focus).
                    set_timeout(
                        move || {
                            if let Some(first) = focusables(container).into_iter().next() {
                                let _ = first.focus();
                            }
                        },
                        std::time::Duration::from_millis(50),
                    );
                }
                (Some(true), false) => {
                    let active = document().active_element();
                    let lost = active.as_ref().is_none_or(|a| {
                        a.tag_name() == "BODY"
                            || element(container).is_some_and(|c| {
                                use wasm_bindgen::JsCast;
                                c.contains(Some(a.unchecked_ref()))
                            })
                    });
                    if lost {
                        focus_soon(toggle);
                    }
                }
                _ => {}
            }
            now
        });
    }

    /// Escape closes the innermost thing open; in the composer, it stops the running reply.
    #[cfg(any(feature = "hydrate", feature = "csr"))]
    fn escape(ctx: ChatContext, help_open: RwSignal<bool>, active: Option<web_sys::Element>) {
        if help_open.get_untracked() {
            close_help(help_open);
        } else if let Some(cancel) = element(".confirm .cancel") {
            cancel.click();
        } else if ctx.drawer_open.get_untracked() {
            ctx.drawer_open.set(false);
            focus_soon(".menu-button");
        } else if ctx.tasks_open.get_untracked() {
            ctx.tasks_open.set(false);
            focus_soon(".tasks-button");
        } else if active.is_some_and(|el| el.id() == "composer-input") {
            if let Some(stop) = element("[data-testid=stop]") {
                stop.click();
            }
        }
    }

    /// The open dialog or drawer that keeps focus inside it, if any.
    #[cfg(any(feature = "hydrate", feature = "csr"))]
    fn modal(ctx: ChatContext, help_open: RwSignal<bool>) -> Option<web_sys::HtmlElement> {
        if help_open.get_untracked() || ctx.search_open.get_untracked() {
            element(".dialog")
        } else if let Some(confirm) = element(".confirm") {
            Some(confirm)
        } else if ctx.drawer_open.get_untracked() {
            element("#sidebar")
        } else if ctx.tasks_open.get_untracked() {
            element("#task-panel")
        } else {
            None
        }
    }

    /// What can take focus inside `container`, in document order.
    #[cfg(any(feature = "hydrate", feature = "csr"))]
    fn within(container: &web_sys::HtmlElement) -> Vec<web_sys::HtmlElement> {
        use wasm_bindgen::JsCast;
        let Ok(found) = container.query_selector_all(
            "a[href], button:not([disabled]), input:not([disabled]), textarea:not([disabled]), [tabindex]:not([tabindex='-1'])",
        ) else {
            return Vec::new();
        };
        (0..found.length())
            .filter_map(|i| found.item(i))
            .filter_map(|n| n.dyn_into::<web_sys::HtmlElement>().ok())
            .collect()
    }

    #[cfg(any(feature = "hydrate", feature = "csr"))]
    fn focusables(selector: &str) -> Vec<web_sys::HtmlElement> {
        element(selector).map(|c| within(&c)).unwrap_or_default()
    }

    #[cfg(any(feature = "hydrate", feature = "csr"))]
    fn element(selector: &str) -> Option<web_sys::HtmlElement> {
        use wasm_bindgen::JsCast;
        document()
            .query_selector(selector)
            .ok()
            .flatten()
            .and_then(|el| el.dyn_into().ok())
    }

    /// Tab from the last focusable element goes to the first, Shift+Tab from the first to the
    /// last, and focus outside comes in.
    #[cfg(any(feature = "hydrate", feature = "csr"))]
    fn trap(ev: &web_sys::KeyboardEvent, container: &web_sys::HtmlElement) {
        use wasm_bindgen::JsCast;
        let focusable = within(container);
        let (Some(first), Some(last)) = (focusable.first(), focusable.last()) else {
            return;
        };
        let active = document().active_element();
        let inside = active
            .as_ref()
            .is_some_and(|a| container.contains(Some(a.unchecked_ref())));
        let at = |el: &web_sys::HtmlElement| {
            active
                .as_ref()
                .is_some_and(|a| a == el.unchecked_ref::<web_sys::Element>())
        };
        let target = if !inside {
            Some(if ev.shift_key() { last } else { first })
        } else if ev.shift_key() && at(first) {
            Some(last)
        } else if !ev.shift_key() && at(last) {
            Some(first)
        } else {
            None
        };
        if let Some(target) = target {
            ev.prevent_default();
            let _ = target.focus();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_mean_what_the_help_says_and_typing_stays_typing() {
        assert_eq!(
            shortcut("Escape", false, true, true),
            Some(Shortcut::FocusComposer)
        );
        assert_eq!(
            shortcut("Escape", false, false, true),
            Some(Shortcut::Escape)
        );
        assert_eq!(
            shortcut("O", true, true, true),
            Some(Shortcut::NewConversation)
        );
        assert_eq!(
            shortcut("o", true, true, false),
            Some(Shortcut::NewConversation)
        );
        assert_eq!(
            shortcut("o", true, false, false),
            None,
            "Ctrl+O is the browser's"
        );
        assert_eq!(shortcut("?", false, true, false), Some(Shortcut::ShowHelp));
        assert_eq!(
            shortcut("?", false, true, true),
            None,
            "a ? typed in the composer is text"
        );
        assert_eq!(shortcut("k", true, false, true), Some(Shortcut::Search));
        assert_eq!(shortcut("k", false, false, false), None);
        assert_eq!(shortcut("a", false, false, false), None);
    }
}
