//! Opening a thread at one message (a search hit, `?at=<seq>`): older pages are loaded until
//! it is there, then it is scrolled into view and highlighted.

use leptos::{html, prelude::*, task::spawn_local};
use uuid::Uuid;

use super::follow::Follow;
use crate::{
    api::chat::list_messages,
    model::{Message, MessageQuery},
};

/// The thread's state that going to a message reads and moves.
#[derive(Clone, Copy)]
pub struct ThreadView {
    pub conversation: Uuid,
    pub messages: RwSignal<Vec<Message>>,
    pub has_older: RwSignal<bool>,
    /// Held while pages load here, so scrolling does not load the same pages at once.
    pub loading_older: RwSignal<bool>,
    pub scroller: NodeRef<html::Div>,
    pub follow: Follow,
}

/// Most messages read per request while going back to the target.
const STEP: i64 = 100;

/// Loads pages before the first loaded message until `seq` is loaded (or there is nothing
/// older), then shows it.
pub fn open_at(view: ThreadView, seq: i64) {
    let ThreadView {
        conversation,
        messages,
        has_older,
        loading_older,
        scroller,
        follow,
    } = view;
    loading_older.set(true);
    spawn_local(async move {
        loop {
            let first = messages.with_untracked(|m| m.first().map(|m| m.seq));
            let Some(first) = first else { break };
            if first <= seq || !has_older.get_untracked() {
                break;
            }
            let query = MessageQuery {
                before: Some(first),
                limit: Some((first - seq + 5).clamp(1, STEP)),
                ..Default::default()
            };
            let Ok(page) = list_messages(conversation, query).await else {
                break;
            };
            has_older.set(page.has_more);
            if page.messages.is_empty() {
                break;
            }
            messages.update(|list| {
                let mut older = page.messages;
                older.retain(|m| !list.iter().any(|x| x.id == m.id));
                older.append(list);
                *list = older;
            });
        }
        loading_older.set(false);
        // The reader is at this message now, not at the bottom.
        follow.following.set(false);
        // After the thread's own "open at the bottom" and the new rows' layout.
        request_animation_frame(move || {
            request_animation_frame(move || show(seq, scroller));
        });
    });
}

fn show(seq: i64, scroller: NodeRef<html::Div>) {
    let Some(thread) = scroller.get_untracked() else {
        return;
    };
    let Ok(Some(target)) = thread.query_selector(&format!("[data-seq='{seq}']")) else {
        return;
    };
    let _ = target.class_list().add_1("highlighted");
    let options = web_sys::ScrollIntoViewOptions::new();
    options.set_block(web_sys::ScrollLogicalPosition::Center);
    target.scroll_into_view_with_scroll_into_view_options(&options);
}
