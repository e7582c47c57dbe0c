//! The prompt, rebuilt from the database at every model call (no conversation state lives in
//! memory): the history up to the user message being answered, then every tool call already
//! made while answering it (by an earlier attempt that crashed, failed or was stopped), so
//! the model continues from there and never repeats one.

use crate::{
    model::{BranchChange, Message, MessageStatus, Role, ToolCallRecord},
    server::services::turn_records::DoneCall,
};

use super::model::{PromptMessage, ToolCallRequest};

const SYSTEM_PROMPT: &str = "You are a friendly assistant that manages the user's personal to-do list. \
Use the tools to add, list, complete, update and delete tasks; never invent task numbers, list the tasks \
first when unsure. After using tools, say briefly what you did. Answer in Markdown. Tool calls that \
already appear in this conversation have been made: do not repeat them. Put dates, times, repeats, \
priorities and tags in the tools' own fields, not in titles; give due dates in the user's time zone. \
When a date the user names has passed or is unclear, ask instead of guessing.";

/// The user's wall clock, told to the model so "on Friday" and "what's due today" mean the
/// user's Friday and today.
pub struct LocalNow {
    pub at: chrono::NaiveDateTime,
    pub zone: String,
}

/// The marker the offline assistant reads the user's local time after.
pub const NOW_MARKER: &str = "Now, in the user's time zone: ";

impl LocalNow {
    pub fn of(zone: Option<&str>, now: chrono::DateTime<chrono::Utc>) -> Self {
        let tz = crate::server::services::tasks::due::zone_of(zone);
        Self {
            at: now.with_timezone(&tz).naive_local(),
            zone: tz.name().to_string(),
        }
    }

    fn line(&self) -> String {
        format!(
            "{NOW_MARKER}{} ({}, {}).",
            self.at.format("%Y-%m-%dT%H:%M"),
            self.at.format("%A %-d %B %Y"),
            self.zone
        )
    }
}

/// The prompt for answering the last message of `history` (a user message). `elsewhere`: the
/// task changes other branches of the conversation made (an abandoned answer, an edited-away
/// message): they happened, and are told so the model does not do them again.
pub fn build(
    history: &[Message],
    done: &[DoneCall],
    elsewhere: &[BranchChange],
    now: &LocalNow,
) -> Vec<PromptMessage> {
    let mut prompt = vec![PromptMessage::System(format!(
        "{SYSTEM_PROMPT} {}",
        now.line()
    ))];
    if !elsewhere.is_empty() {
        prompt.push(PromptMessage::System(branch_note(elsewhere)));
    }
    for message in history {
        match message.role {
            Role::User => prompt.push(PromptMessage::User(message.content.clone())),
            Role::Assistant => {
                let records = message
                    .tool_calls
                    .as_ref()
                    .map(|t| t.tool_calls.as_slice())
                    .unwrap_or_default();
                let ids = (0..records.len()).map(|i| format!("call_{}_{i}", message.seq));
                replay(&mut prompt, ids.zip(records));
                // An error reply is our own text, not the model's: its tool calls are shown
                // (they happened), its words are not.
                if message.status != MessageStatus::Error {
                    prompt.push(PromptMessage::Assistant {
                        content: Some(message.content.clone()),
                        tool_calls: vec![],
                    });
                }
            }
        }
    }
    let ids = done
        .iter()
        .map(|d| format!("call_{}_{}", &d.turn_id.simple().to_string()[..8], d.idx));
    replay(&mut prompt, ids.zip(done.iter().map(|d| &d.record)));
    prompt
}

/// What other branches did, in words the model can act on.
fn branch_note(elsewhere: &[BranchChange]) -> String {
    let lines: Vec<String> = elsewhere
        .iter()
        .map(|c| format!("- {}", c.describe()))
        .collect();
    format!(
        "This conversation has other branches (the user edited a message or asked for another \
         answer). While answering there, these changes were already made to the user's tasks \
         and are in effect now; do not make them again unless the user asks:\n{}",
        lines.join("\n")
    )
}

/// Earlier tool calls as the model's own calls, each followed by its result.
fn replay<'a>(
    prompt: &mut Vec<PromptMessage>,
    calls: impl Iterator<Item = (String, &'a ToolCallRecord)>,
) {
    let calls: Vec<(String, &ToolCallRecord)> = calls.collect();
    if calls.is_empty() {
        return;
    }
    prompt.push(PromptMessage::Assistant {
        content: None,
        tool_calls: calls
            .iter()
            .map(|(id, r)| ToolCallRequest {
                id: id.clone(),
                name: r.tool_name.clone(),
                arguments: r.arguments.to_string(),
            })
            .collect(),
    });
    for (id, r) in calls {
        prompt.push(PromptMessage::Tool {
            call_id: id,
            content: r.result.to_string(),
        });
    }
}
