//! The service layer: every rule (validation, tenancy, limits) lives here once, and REST,
//! server functions and MCP tools are thin adapters over it.

pub mod activity;
pub mod branches;
pub mod chat;
pub mod drafts;
pub mod events;
pub mod export;
pub mod feedback;
pub mod import;
pub mod messages;
pub mod reminders;
pub mod search;
pub mod sessions;
pub mod stream_tickets;
pub mod tasks;
pub mod turn_records;
pub mod undo;
pub mod users;

use super::error::{AppError, AppResult};

/// Trims `value` and checks it has 1..=`max` characters; `what` names it in the error.
pub fn required_text(value: &str, what: &str, max: usize) -> AppResult<String> {
    let value = value.trim();
    if value.contains('\0') {
        return Err(AppError::validation(format!(
            "the {what} contains a NUL character"
        )));
    }
    match value.chars().count() {
        0 => Err(AppError::validation(format!("the {what} cannot be empty"))),
        n if n > max => Err(AppError::validation(format!(
            "the {what} is {n} characters long; the limit is {max}"
        ))),
        _ => Ok(value.to_string()),
    }
}
