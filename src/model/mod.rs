//! Types shared by the server and the WASM client: what crosses the wire.
//! Field names are the JSON shapes of SPEC §4 (snake_case).

/// Longest user message, in characters after trimming (SPEC §4).
pub const MAX_MESSAGE_CHARS: usize = 10_000;
/// Longest task / conversation title, in characters after trimming.
pub const MAX_TITLE_CHARS: usize = 200;
/// Longest task description, in characters.
pub const MAX_DESCRIPTION_CHARS: usize = 1_000;
/// Shortest acceptable password, in characters.
pub const MIN_PASSWORD_CHARS: usize = 8;

mod account;
mod approvals;
mod branches;
mod chat;
mod error;
mod live;
mod planning;
mod search;
mod tasks;

pub use account::*;
pub use approvals::*;
pub use branches::*;
pub use chat::*;
pub use error::*;
pub use live::*;
pub use planning::*;
pub use search::*;
pub use tasks::*;
