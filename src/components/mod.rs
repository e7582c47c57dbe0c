//! Reusable UI pieces of the chat page.

pub mod approval_card;
pub mod branch_nav;
pub mod browser;
pub mod composer;
pub mod conversation_item;
pub mod follow;
pub mod message;
pub mod message_editor;
pub mod reminders;
pub mod search_palette;
pub mod shortcuts;
pub mod sidebar;
pub mod task_panel;
pub mod thread;
pub mod thread_jump;
pub mod thread_state;
