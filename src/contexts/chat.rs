//! State shared by the chat page's parts (sidebar, thread, composer, task panel).

use leptos::prelude::*;

/// Signals shared by the chat page's parts.
#[derive(Clone, Copy)]
pub struct ChatContext {
    /// Bumped when the conversation list should be reloaded (send, rename, delete…).
    pub sidebar_version: RwSignal<u32>,
    /// Bumped when tasks may have changed (a turn used tools, a tick in the panel).
    pub tasks_version: RwSignal<u32>,
    /// False while the server cannot be reached; a banner shows and polling keeps trying.
    pub online: RwSignal<bool>,
    /// The sidebar drawer on narrow screens.
    pub drawer_open: RwSignal<bool>,
    /// The task panel drawer on narrow screens.
    pub tasks_open: RwSignal<bool>,
    /// A first message typed in the empty state, handed to the new conversation's thread,
    /// which sends it (so its progress shows there like any other message's).
    pub first_message: RwSignal<Option<String>>,
    /// What the screen reader's live region (`#announcer`) says: a reply, once, when it is
    /// complete (never token by token).
    pub announcement: RwSignal<String>,
    /// The search palette (Ctrl/⌘+K).
    pub search_open: RwSignal<bool>,
}
