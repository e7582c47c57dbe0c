//! UI contexts, each in its own module, so components share state without importing pages.

pub mod chat;
pub mod live;
