//! Reusable UI pieces of the chat page.

pub mod browser;
pub mod composer;
pub mod follow;
pub mod message;
pub mod shortcuts;
pub mod sidebar;
pub mod task_panel;
pub mod thread;
