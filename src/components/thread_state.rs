//! The thread's state changes as pure functions of what it has and what arrived (a live event,
//! a page read again, confirmed messages), so the rules are unit-tested apart from the view.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::model::{ActivityState, LiveEvent, Message, PendingApproval, Role, TurnActivity};

/// What `merge` did to the list.
#[derive(Debug, Default, PartialEq)]
pub struct Merged {
    /// The text of the newest reply added (announced once, complete).
    pub reply: Option<String>,
    /// A message that does not follow the branch shown: the branch must be read again.
    pub elsewhere: bool,
}

/// Adds confirmed messages that continue the branch shown, in seq order, without duplicates.
pub fn merge(list: &mut Vec<Message>, mut incoming: Vec<Message>) -> Merged {
    let mut merged = Merged::default();
    incoming.sort_by_key(|m| m.seq);
    for message in incoming {
        if list.iter().any(|m| m.id == message.id) {
            continue;
        }
        let follows = match list.last() {
            Some(last) => message.parent_id == Some(last.id),
            None => true,
        };
        if !follows {
            merged.elsewhere = true;
            continue;
        }
        if message.role == Role::Assistant {
            merged.reply = Some(message.content.clone());
        }
        list.push(message);
    }
    merged
}

/// The branch as read again (`fresh`), plus what this tab got while the read was out (an
/// answer stored just after it) when it continues the branch read.
pub fn reloaded(list: &[Message], mut fresh: Vec<Message>) -> Vec<Message> {
    let mut later: Vec<Message> = list
        .iter()
        .filter(|m| fresh.last().is_none_or(|last| m.seq > last.seq))
        .cloned()
        .collect();
    later.sort_by_key(|m| m.seq);
    for message in later {
        if fresh.last().map(|last| last.id) == message.parent_id {
            fresh.push(message);
        }
    }
    fresh
}

/// The activity after a live event of conversation `id` (`None`: the event does not change
/// it). `last_seq`: the last message shown.
pub fn activity_after(
    current: &Option<TurnActivity>,
    event: &LiveEvent,
    id: Uuid,
    last_seq: i64,
    now: DateTime<Utc>,
) -> Option<Option<TurnActivity>> {
    match event {
        LiveEvent::Activity {
            conversation_id,
            user_seq,
            state: ActivityState::Approval,
            tool_name,
            call_id: Some(call_id),
            arguments,
            task,
        } if *conversation_id == id => {
            let pending = PendingApproval {
                call_id: call_id.clone(),
                tool_name: tool_name.clone().unwrap_or_default(),
                arguments: arguments.clone().unwrap_or_default(),
                task: task.clone(),
            };
            let mut next = current.clone();
            match &mut next {
                Some(a) if a.state == ActivityState::Approval && a.user_seq == *user_seq => {
                    if !a.approvals.iter().any(|p| p.call_id == pending.call_id) {
                        a.approvals.push(pending);
                    }
                }
                _ => {
                    next = Some(TurnActivity {
                        user_seq: *user_seq,
                        tool_name: tool_name.clone(),
                        since: now,
                        state: ActivityState::Approval,
                        approvals: vec![pending],
                    })
                }
            }
            Some(next)
        }
        LiveEvent::Activity {
            conversation_id,
            tool_name,
            state,
            ..
        } if *conversation_id == id => Some(Some(TurnActivity {
            user_seq: last_seq,
            tool_name: tool_name.clone(),
            since: now,
            state: *state,
            approvals: vec![],
        })),
        LiveEvent::ApprovalDecided {
            conversation_id,
            call_id,
            ..
        } if *conversation_id == id => Some(decided(current, Some(call_id))),
        _ => None,
    }
}

/// The activity once `call_id` is decided (`None`: every call, together): its card goes; with
/// the last one the assistant goes on (its own activity follows).
pub fn decided(current: &Option<TurnActivity>, call_id: Option<&str>) -> Option<TurnActivity> {
    let mut next = current.clone();
    if let Some(a) = next.as_mut().filter(|a| a.state == ActivityState::Approval) {
        a.approvals
            .retain(|p| call_id.is_some_and(|id| p.call_id != id));
        if a.approvals.is_empty() {
            a.state = ActivityState::Thinking;
            a.tool_name = None;
        }
    }
    next
}

/// The activity of a turn that ended waiting for `approvals` (a send's or decision's answer).
pub fn waiting_for(
    user_seq: i64,
    approvals: Vec<PendingApproval>,
    now: DateTime<Utc>,
) -> TurnActivity {
    TurnActivity {
        user_seq,
        tool_name: approvals.first().map(|a| a.tool_name.clone()),
        since: now,
        state: ActivityState::Approval,
        approvals,
    }
}

/// Marks call `index` of message `message` undone (another tab undid it).
pub fn mark_undone(list: &mut [Message], message: Uuid, index: usize, at: DateTime<Utc>) {
    let record = list
        .iter_mut()
        .find(|m| m.id == message)
        .and_then(|m| m.tool_calls.as_mut())
        .and_then(|t| t.tool_calls.get_mut(index));
    if let Some(record) = record {
        record.undone_at.get_or_insert(at);
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::model::{MessageStatus, ToolCallRecord, ToolCallStatus, ToolCalls};

    fn message(seq: i64, role: Role, parent: Option<Uuid>) -> Message {
        Message {
            id: Uuid::new_v4(),
            conversation_id: Uuid::nil(),
            seq,
            role,
            content: format!("m{seq}"),
            tool_calls: None,
            status: MessageStatus::Complete,
            created_at: Utc::now(),
            client_id: None,
            html: None,
            parent_id: parent,
            sibling_index: 1,
            sibling_count: 1,
            sibling_ids: vec![],
            branch_changes: vec![],
        }
    }

    fn approval(call_id: &str) -> LiveEvent {
        LiveEvent::approval(
            Uuid::nil(),
            3,
            &PendingApproval {
                call_id: call_id.into(),
                tool_name: "delete_task".into(),
                arguments: json!({"task_id": 1}),
                task: None,
            },
        )
    }

    #[test]
    fn merge_adds_what_follows_and_flags_other_branches() {
        let first = message(1, Role::User, None);
        let mut list = vec![first.clone()];
        let reply = message(2, Role::Assistant, Some(first.id));
        let stray = message(3, Role::User, Some(Uuid::new_v4()));
        let merged = merge(&mut list, vec![stray, reply.clone(), reply.clone()]);
        assert_eq!(list.len(), 2);
        assert_eq!(merged.reply.as_deref(), Some("m2"));
        assert!(merged.elsewhere);
    }

    #[test]
    fn a_reload_keeps_what_arrived_meanwhile() {
        let first = message(1, Role::User, None);
        let reply = message(2, Role::Assistant, Some(first.id));
        let other = message(3, Role::Assistant, Some(Uuid::new_v4()));
        let list = vec![first.clone(), reply.clone(), other];
        let fresh = reloaded(&list, vec![first.clone()]);
        assert_eq!(fresh.iter().map(|m| m.seq).collect::<Vec<_>>(), [1, 2]);
    }

    #[test]
    fn approval_cards_gather_and_go_when_decided() {
        let now = Utc::now();
        let id = Uuid::nil();
        let one = activity_after(&None, &approval("a"), id, 3, now).unwrap();
        let two = activity_after(&one, &approval("b"), id, 3, now).unwrap();
        let again = activity_after(&two, &approval("b"), id, 3, now).unwrap();
        assert_eq!(again.as_ref().unwrap().approvals.len(), 2);
        let left = decided(&again, Some("a")).unwrap();
        assert_eq!(left.state, ActivityState::Approval);
        assert_eq!(left.approvals[0].call_id, "b");
        let done = decided(&Some(left), Some("b")).unwrap();
        assert_eq!(done.state, ActivityState::Thinking);
        assert!(done.approvals.is_empty());
        // "Approve all" decides every card at once.
        let all = decided(&again, None).unwrap();
        assert_eq!(all.state, ActivityState::Thinking);
        assert!(all.approvals.is_empty());
        // Another conversation's events change nothing.
        assert!(activity_after(&None, &approval("a"), Uuid::new_v4(), 3, now).is_none());
    }

    #[test]
    fn undone_records_are_marked_once() {
        let mut reply = message(2, Role::Assistant, None);
        reply.tool_calls = Some(ToolCalls {
            tool_calls: vec![ToolCallRecord {
                tool_name: "add_task".into(),
                arguments: json!({}),
                result: json!({}),
                timestamp: Utc::now(),
                duration_ms: 1,
                status: ToolCallStatus::Success,
                change: None,
                undone_at: None,
            }],
        });
        let id = reply.id;
        let mut list = vec![reply];
        let first = Utc::now();
        mark_undone(&mut list, id, 0, first);
        mark_undone(&mut list, id, 0, first + chrono::Duration::seconds(5));
        mark_undone(&mut list, id, 7, first);
        let record = &list[0].tool_calls.as_ref().unwrap().tool_calls[0];
        assert_eq!(record.undone_at, Some(first));
    }
}
