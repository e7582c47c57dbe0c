//! Small browser-only helpers (they run in event handlers and effects, never on the server).

use leptos::{html, prelude::*};
use web_sys::wasm_bindgen::JsCast;

pub fn tab_visible() -> bool {
    document().visibility_state() != web_sys::VisibilityState::Hidden
}

/// After older messages were prepended: keep the same distance from the bottom, so the
/// message the user was reading does not jump.
pub fn keep_anchor_soon(node: NodeRef<html::Div>, distance_from_bottom: i32) {
    request_animation_frame(move || {
        if let Some(el) = node.get_untracked() {
            el.set_scroll_top(el.scroll_height() - distance_from_bottom);
        }
    });
}

/// Event delegation for the copy buttons inside rendered markdown code blocks.
pub fn copy_code_on_click(ev: web_sys::MouseEvent) {
    let Some(target) = ev
        .target()
        .and_then(|t| t.dyn_into::<web_sys::Element>().ok())
    else {
        return;
    };
    let Ok(Some(button)) = target.closest(".copy-code") else {
        return;
    };
    let code = button
        .closest(".code-block")
        .ok()
        .flatten()
        .and_then(|block| block.query_selector("code").ok().flatten())
        .and_then(|code| code.text_content());
    if let Some(code) = code {
        let _ = window().navigator().clipboard().write_text(&code);
        button.set_text_content(Some("Copied"));
        let button = button.clone();
        set_timeout(
            move || button.set_text_content(Some("Copy")),
            std::time::Duration::from_millis(1500),
        );
    }
}

/// Focuses the first element matching `selector` once the page has rendered (an element that
/// held focus may be about to go).
pub fn focus_soon(selector: &'static str) {
    focus_soon_in(selector.to_string());
}

/// Focuses, in the next frame, the first element found by the first selector that finds one.
pub fn focus_first_soon(selectors: Vec<String>) {
    request_animation_frame(move || {
        let found = selectors.iter().find_map(|selector| {
            document()
                .query_selector(selector)
                .ok()
                .flatten()
                .and_then(|el| el.dyn_into::<web_sys::HtmlElement>().ok())
        });
        if let Some(el) = found {
            let _ = el.focus();
        }
    });
}

/// `focus_soon` with a selector made at run time.
pub fn focus_soon_in(selector: String) {
    request_animation_frame(move || {
        let found = document()
            .query_selector(&selector)
            .ok()
            .flatten()
            .and_then(|el| el.dyn_into::<web_sys::HtmlElement>().ok());
        if let Some(el) = found {
            let _ = el.focus();
        }
    });
}

/// The browser's own yes/no question (keyboard- and screen-reader-friendly as it comes).
pub fn confirm(question: &str) -> bool {
    window().confirm_with_message(question).unwrap_or(false)
}
