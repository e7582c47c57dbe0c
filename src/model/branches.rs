//! Branches of a conversation (issue 23): editing a sent message, regenerating an answer, and
//! which branch is shown.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// A sent user message, edited: a new message beside it (the same parent), answered anew.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct EditMessage {
    /// 1..10,000 characters after trimming (the rules of a send).
    #[cfg_attr(
        feature = "ssr",
        schema(min_length = 1, max_length = 10000, pattern = r"\S")
    )]
    pub content: String,
    /// Makes a resend safe: the same id never edits twice.
    #[serde(default)]
    pub client_id: Option<Uuid>,
}

/// Another answer to the user message an assistant message answered.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct RegenerateMessage {
    /// Makes a resend safe: the same id never regenerates twice.
    #[serde(default)]
    pub client_id: Option<Uuid>,
}

/// The branch to show: the one through `message_id` (its most recent message becomes the
/// conversation's current leaf).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct CurrentBranch {
    pub message_id: Uuid,
}

/// Which messages a page holds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum BranchView {
    /// The branch from the first message to the conversation's current leaf.
    #[default]
    Current,
    /// Every message of every branch, in `seq` order.
    All,
}

/// What a task is now.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum TaskNow {
    Pending,
    Completed,
    Deleted,
}

/// A change to a task made while writing an answer on another branch: it happened, and a new
/// branch starts from a list that already has it (the model is told, the answer shows it).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct BranchChange {
    pub tool_name: String,
    /// What the call did, as the tool said: `created`, `completed`, `updated`, `deleted`.
    pub action: String,
    pub task_id: Option<i64>,
    pub title: Option<String>,
    /// The task as it is now (`deleted` when it no longer exists).
    pub now: TaskNow,
}

impl BranchChange {
    /// In words, for people: "Added “Buy milk” (task 3), still pending".
    pub fn describe(&self) -> String {
        let what = match self.action.as_str() {
            "created" => "Added",
            "completed" => "Completed",
            "deleted" => "Deleted",
            "updated" => "Changed",
            _ => "Changed",
        };
        let title = self
            .title
            .as_deref()
            .map(|t| format!(" “{t}”"))
            .unwrap_or_default();
        let number = self
            .task_id
            .map(|id| format!(" (task {id})"))
            .unwrap_or_default();
        let now = match (self.action.as_str(), self.now) {
            ("deleted", TaskNow::Deleted) => "",
            (_, TaskNow::Pending) => ", still pending",
            (_, TaskNow::Completed) => ", now completed",
            (_, TaskNow::Deleted) => ", since deleted",
        };
        format!("{what}{title}{number}{now}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_change_reads_as_words() {
        let change = BranchChange {
            tool_name: "add_task".into(),
            action: "created".into(),
            task_id: Some(3),
            title: Some("Buy milk".into()),
            now: TaskNow::Pending,
        };
        assert_eq!(
            change.describe(),
            "Added “Buy milk” (task 3), still pending"
        );
        let gone = BranchChange {
            action: "deleted".into(),
            now: TaskNow::Deleted,
            ..change
        };
        assert_eq!(gone.describe(), "Deleted “Buy milk” (task 3)");
    }
}
