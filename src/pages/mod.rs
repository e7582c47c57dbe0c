//! One module per page.

pub mod auth;
pub mod chat;
pub mod home;
pub mod not_found;
pub mod search;
pub mod settings;
