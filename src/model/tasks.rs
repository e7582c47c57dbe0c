//! Tasks.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// A task as the user sees it: `id` is the user's own task number (1, 2, 3…).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct Task {
    pub id: i32,
    pub title: String,
    pub description: Option<String>,
    pub completed: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// When it is due, in the user's time zone: a day (`2026-03-13`) or a day and a time
    /// (`2026-03-13T17:00`). A repeating task is due at its next occurrence.
    #[serde(default)]
    #[cfg_attr(feature = "ssr", schema(example = "2026-03-13T17:00"))]
    pub due: Option<String>,
    /// 1 (highest) … 4 (none).
    #[serde(default = "no_priority")]
    pub priority: u8,
    /// Short lowercase words (`work`, `home`), without `#`.
    #[serde(default)]
    pub tags: Vec<String>,
    /// How it repeats from its due date: an RFC 5545 RRULE such as `FREQ=WEEKLY;BYDAY=MO`.
    #[serde(default)]
    pub recurrence: Option<String>,
}

/// The priority of a task nobody prioritised.
pub const NO_PRIORITY: u8 = 4;

pub(crate) fn no_priority() -> u8 {
    NO_PRIORITY
}

/// Most tags a task has; longest tag, in characters.
pub const MAX_TAGS: usize = 10;
pub const MAX_TAG_CHARS: usize = 32;

/// The tasks a planning view shows (open ones only, except `all`), in the user's time zone.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema, schemars::JsonSchema))]
#[serde(rename_all = "lowercase")]
pub enum TaskView {
    /// Every task (the `status` filter applies).
    #[default]
    All,
    /// Due today and not yet overdue.
    Today,
    /// Due in the next 7 days after today.
    Upcoming,
    /// Due today (and not yet overdue) or in the next 7 days: today and upcoming together.
    Week,
    /// Past its due day (or its due time today).
    Overdue,
}

/// Which tasks to list: a status, a planning view, a tag, a priority.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskQuery {
    #[serde(default)]
    pub status: TaskFilter,
    #[serde(default)]
    pub view: TaskView,
    #[serde(default)]
    pub tag: Option<String>,
    #[serde(default)]
    pub priority: Option<u8>,
}

/// Which tasks to list.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema, schemars::JsonSchema))]
#[serde(rename_all = "lowercase")]
pub enum TaskFilter {
    #[default]
    All,
    Pending,
    Completed,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct NewTask {
    /// 1..200 characters after trimming.
    #[cfg_attr(
        feature = "ssr",
        schema(min_length = 1, max_length = 200, pattern = r"\S")
    )]
    pub title: String,
    /// Up to 1,000 characters; empty means none.
    #[serde(default)]
    #[cfg_attr(feature = "ssr", schema(max_length = 1000))]
    pub description: Option<String>,
    /// `YYYY-MM-DD` or `YYYY-MM-DDTHH:MM`, in the user's time zone. A repeating task without
    /// one is due at its first occurrence from today.
    #[serde(default)]
    #[cfg_attr(
        feature = "ssr",
        schema(pattern = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}(T[0-9]{2}:[0-9]{2})?$")
    )]
    pub due: Option<String>,
    /// 1 (highest) … 4 (none, the default).
    #[serde(default)]
    #[cfg_attr(feature = "ssr", schema(minimum = 1, maximum = 4))]
    pub priority: Option<u8>,
    /// Up to 10 tags of 1..32 letters, digits, `-` or `_` (a leading `#` is dropped; stored
    /// lowercase).
    #[serde(default)]
    #[cfg_attr(feature = "ssr", schema(max_items = 10))]
    pub tags: Option<Vec<String>>,
    /// An RRULE: FREQ=DAILY|WEEKLY|MONTHLY|YEARLY with INTERVAL, BYDAY, BYMONTHDAY, UNTIL.
    #[serde(default)]
    #[cfg_attr(feature = "ssr", schema(max_length = 200))]
    pub recurrence: Option<String>,
}

/// A partial update: absent fields are left as they are. An empty description clears it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct TaskPatch {
    #[serde(default)]
    #[cfg_attr(
        feature = "ssr",
        schema(min_length = 1, max_length = 200, pattern = r"\S")
    )]
    pub title: Option<String>,
    #[serde(default)]
    #[cfg_attr(feature = "ssr", schema(max_length = 1000))]
    pub description: Option<String>,
    #[serde(default)]
    pub completed: Option<bool>,
    /// As in `NewTask`; an empty string removes the due date (and the repeat with it).
    #[serde(default)]
    #[cfg_attr(
        feature = "ssr",
        schema(pattern = r"^([0-9]{4}-[0-9]{2}-[0-9]{2}(T[0-9]{2}:[0-9]{2})?)?$")
    )]
    pub due: Option<String>,
    #[serde(default)]
    #[cfg_attr(feature = "ssr", schema(minimum = 1, maximum = 4))]
    pub priority: Option<u8>,
    /// The new tags (an empty list removes them all).
    #[serde(default)]
    #[cfg_attr(feature = "ssr", schema(max_items = 10))]
    pub tags: Option<Vec<String>>,
    /// As in `NewTask`; an empty string stops the repeat.
    #[serde(default)]
    #[cfg_attr(feature = "ssr", schema(max_length = 200))]
    pub recurrence: Option<String>,
}

impl TaskPatch {
    /// Whether it changes nothing at all.
    pub fn is_empty(&self) -> bool {
        self.title.is_none()
            && self.description.is_none()
            && self.completed.is_none()
            && self.due.is_none()
            && self.priority.is_none()
            && self.tags.is_none()
            && self.recurrence.is_none()
    }
}

/// The longest snooze of a reminder, in minutes (a day).
pub const MAX_SNOOZE_MINUTES: u32 = 24 * 60;

/// Snoozing a task's reminder: it comes again `minutes` from now.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct Snooze {
    #[cfg_attr(feature = "ssr", schema(minimum = 1, maximum = 1440))]
    pub minutes: u32,
}

/// A snoozed reminder: when it comes again.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct Snoozed {
    pub task_id: i32,
    pub until: chrono::DateTime<chrono::Utc>,
}
