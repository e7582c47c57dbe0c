//! Search across a user's conversations.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::Role;

/// Longest search query, in characters after trimming.
pub const MAX_SEARCH_CHARS: usize = 200;

/// A search: words (the last one may be the start of a word, as typed so far).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::IntoParams))]
#[cfg_attr(feature = "ssr", into_params(parameter_in = Query))]
pub struct SearchQuery {
    /// 1..200 characters after trimming.
    #[cfg_attr(feature = "ssr", param(min_length = 1, max_length = 200))]
    pub q: String,
    /// 1..50, default 20.
    #[serde(default)]
    #[cfg_attr(feature = "ssr", param(minimum = 1, maximum = 50))]
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page.
    #[serde(default)]
    pub cursor: Option<String>,
}

/// One match: a conversation's title (no message) or one of its messages.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct SearchHit {
    pub conversation_id: Uuid,
    pub conversation_title: String,
    pub message_id: Option<Uuid>,
    pub seq: Option<i64>,
    pub role: Option<Role>,
    /// The matching passage, HTML-escaped, the matched words in `<mark>` (the only markup).
    pub snippet_html: String,
    pub created_at: DateTime<Utc>,
}

/// Best matches first: titles (the best-matching first), then messages newest first.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct SearchPage {
    pub results: Vec<SearchHit>,
    pub next_cursor: Option<String>,
    pub has_more: bool,
}

/// What an import did: conversations stored, already there, and refused (with why).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct ImportReport {
    pub imported: u32,
    pub skipped: u32,
    pub errors: Vec<ImportFailure>,
}

/// A conversation of the file that was not imported.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct ImportFailure {
    /// Its place in the file, from 0.
    pub index: u32,
    pub title: Option<String>,
    pub reason: String,
}
