//! A turn's own events (its `TurnHandle`) as ChatKit stream events: the user message,
//! `stream_options`, tool use (`progress_update` and a workflow item), the reply
//! (`thread.item.added`, `assistant_message.content_part.*` deltas, `thread.item.done`),
//! `thread.updated` when the title changes, and `error`. A client that disconnects before the
//! end cancels the send (ChatKit's cancel): a message not yet stored never is, and a running
//! turn ends as `stopped` like any other stop.

use std::collections::VecDeque;

use futures::{Stream, StreamExt};
use uuid::Uuid;

use super::{
    items,
    protocol::{Event, Item, ItemUpdate, OutputText, Page, StreamOptions, Workflow},
};
use crate::{
    model::{ActivityState, Conversation, LiveEvent, Message, MessageStatus},
    server::{
        agent::{TurnEvent, TurnHandle},
        live::Subscription,
        services::messages,
    },
};

/// Turns one turn's live events into ChatKit events, keeping what it has told the client.
pub struct TurnEvents {
    conversation: Uuid,
    title: String,
    /// The seq of the user message this stream's turn answers, once known.
    own_seq: Option<i64>,
    /// The id the reply will be stored under (see `messages::message_id`).
    reply: Option<Uuid>,
    options_sent: bool,
    /// Tools reported so far (the open workflow's tasks).
    tools: Vec<String>,
    assistant_open: bool,
    /// Characters of the reply sent so far.
    sent_chars: i64,
}

impl TurnEvents {
    /// For the turn answering a message sent in `conversation`.
    pub fn for_send(conversation: &Conversation) -> Self {
        Self::new(conversation, None, None)
    }

    /// For the retried answer to the user message at `user_seq`, to be stored at `reply_seq`.
    pub fn for_retry(conversation: &Conversation, user_seq: i64, reply_seq: i64) -> Self {
        Self::new(conversation, Some(user_seq), Some(reply_seq))
    }

    fn new(conversation: &Conversation, own_seq: Option<i64>, reply_seq: Option<i64>) -> Self {
        Self {
            conversation: conversation.id,
            title: conversation.title.clone(),
            own_seq,
            reply: reply_seq.map(|seq| messages::message_id(conversation.id, seq)),
            options_sent: false,
            tools: Vec::new(),
            assistant_open: false,
            sent_chars: 0,
        }
    }

    /// The first event of a turn's stream once the user message is stored.
    pub fn stream_options(&mut self) -> Option<Event> {
        (!std::mem::replace(&mut self.options_sent, true)).then_some(Event::StreamOptions {
            stream_options: StreamOptions { allow_cancel: true },
        })
    }

    /// What the client is told about `event`; true when this was the turn's end.
    pub fn on(&mut self, event: &TurnEvent, out: &mut VecDeque<Event>) -> bool {
        match event {
            TurnEvent::UserMessage(message) => {
                // A retry knows its user message already (and the client has it).
                if self.own_seq.is_none() {
                    self.own_seq = Some(message.seq);
                    self.reply = Some(messages::message_id(self.conversation, message.seq + 1));
                    out.extend(
                        items::items_of(message)
                            .into_iter()
                            .map(|item| Event::ItemDone { item }),
                    );
                    out.extend(self.stream_options());
                }
                false
            }
            TurnEvent::Live(envelope) => self.on_live(&envelope.event, out),
            TurnEvent::Ended(Ok(turn)) => {
                match &turn.assistant_message {
                    Some(reply) => self.finish(reply, out),
                    None => self.parked(&turn.user_message, &turn.approvals, out),
                }
                true
            }
            TurnEvent::Ended(Err(err)) => {
                let api = err.to_api_error();
                out.push_back(Event::Error {
                    code: "custom",
                    message: api.detail,
                    allow_retry: api.status >= 500 || matches!(api.status, 408 | 409 | 429),
                });
                true
            }
        }
    }

    /// A live event of this turn (the handle passes only those) or of its conversation.
    fn on_live(&mut self, event: &LiveEvent, out: &mut VecDeque<Event>) -> bool {
        match event {
            LiveEvent::Activity {
                state: ActivityState::Tool,
                tool_name: Some(tool),
                ..
            } => {
                self.tool(tool, out);
                false
            }
            LiveEvent::Delta { text, offset, .. } => {
                self.delta(text, *offset, out);
                false
            }
            LiveEvent::Conversation(conversation) if conversation.title != self.title => {
                self.title = conversation.title.clone();
                out.push_back(Event::ThreadUpdated {
                    thread: items::thread(conversation, Page::empty()),
                });
                false
            }
            LiveEvent::ConversationDeleted { .. } => {
                out.push_back(Event::Error {
                    code: "custom",
                    message: "This conversation was deleted.".into(),
                    allow_retry: false,
                });
                true
            }
            _ => false,
        }
    }

    fn reply_id(&mut self) -> Uuid {
        *self.reply.get_or_insert_with(Uuid::new_v4)
    }

    fn tool(&mut self, tool: &str, out: &mut VecDeque<Event>) {
        out.push_back(Event::ProgressUpdate {
            icon: "bolt",
            text: format!("Using {tool}…"),
        });
        // Once the reply is being written, the workflow would show after it: the progress line
        // is enough, and the workflow comes with the reply.
        if self.assistant_open {
            return;
        }
        let workflow_id = items::workflow_id(self.reply_id());
        if self.tools.is_empty() {
            out.push_back(Event::ItemAdded {
                item: Item::Workflow {
                    id: workflow_id.clone(),
                    thread_id: self.conversation.to_string(),
                    created_at: chrono::Utc::now(),
                    workflow: Workflow {
                        kind: "custom",
                        tasks: Vec::new(),
                        summary: None,
                        expanded: true,
                    },
                },
            });
        } else {
            let index = self.tools.len() - 1;
            let task = items::used_task(&self.tools[index]);
            out.push_back(Event::ItemUpdated {
                item_id: workflow_id.clone(),
                update: ItemUpdate::TaskUpdated {
                    task_index: index,
                    task,
                },
            });
        }
        out.push_back(Event::ItemUpdated {
            item_id: workflow_id,
            update: ItemUpdate::TaskAdded {
                task_index: self.tools.len(),
                task: items::running_task(tool),
            },
        });
        self.tools.push(tool.to_string());
    }

    fn open_assistant(&mut self, out: &mut VecDeque<Event>) {
        if std::mem::replace(&mut self.assistant_open, true) {
            return;
        }
        let id = self.reply_id();
        // The model writes again: the last tool is done (the workflow itself is done, with
        // each call's outcome, once the reply is stored).
        if let Some(last) = self.tools.last() {
            out.push_back(Event::ItemUpdated {
                item_id: items::workflow_id(id),
                update: ItemUpdate::TaskUpdated {
                    task_index: self.tools.len() - 1,
                    task: items::used_task(last),
                },
            });
        }
        out.push_back(Event::ItemAdded {
            item: Item::AssistantMessage {
                id: id.to_string(),
                thread_id: self.conversation.to_string(),
                created_at: chrono::Utc::now(),
                content: Vec::new(),
            },
        });
        out.push_back(Event::ItemUpdated {
            item_id: id.to_string(),
            update: ItemUpdate::ContentPartAdded {
                content_index: 0,
                content: OutputText::new(String::new()),
            },
        });
    }

    fn delta(&mut self, text: &str, offset: i64, out: &mut VecDeque<Event>) {
        self.open_assistant(out);
        // A delta may repeat text already sent (it starts before the end of what we have).
        let skip = (self.sent_chars - offset).max(0) as usize;
        let fresh: String = text.chars().skip(skip).collect();
        if fresh.is_empty() {
            return;
        }
        self.sent_chars = offset.max(self.sent_chars) + fresh.chars().count() as i64;
        out.push_back(Event::ItemUpdated {
            item_id: self.reply_id().to_string(),
            update: ItemUpdate::TextDelta {
                content_index: 0,
                delta: fresh,
            },
        });
    }

    /// The turn parked on the user's decision: what was shown of it goes (it comes back with
    /// the reply), and each call that waits is a card to decide on (`threads.custom_action`).
    fn parked(
        &mut self,
        asked: &Message,
        approvals: &[crate::model::PendingApproval],
        out: &mut VecDeque<Event>,
    ) {
        let id = self.reply_id();
        if !self.tools.is_empty() {
            out.push_back(Event::ItemRemoved {
                item_id: items::workflow_id(id),
            });
        }
        if self.assistant_open {
            out.push_back(Event::ItemRemoved {
                item_id: id.to_string(),
            });
        }
        self.tools.clear();
        self.assistant_open = false;
        self.sent_chars = 0;
        out.extend(approvals.iter().map(|approval| Event::ItemDone {
            item: items::approval_item(self.conversation, asked, approval, None),
        }));
    }

    /// The stored reply: the workflow of its tool calls, then the reply itself, final.
    fn finish(&mut self, reply: &Message, out: &mut VecDeque<Event>) {
        let predicted = self.reply_id();
        if predicted != reply.id {
            // Stored under another seq than foreseen (a retry raced another turn): take back
            // what was shown under the foreseen id.
            if !self.tools.is_empty() {
                out.push_back(Event::ItemRemoved {
                    item_id: items::workflow_id(predicted),
                });
            }
            if self.assistant_open {
                out.push_back(Event::ItemRemoved {
                    item_id: predicted.to_string(),
                });
            }
            self.tools.clear();
            self.assistant_open = false;
            self.reply = Some(reply.id);
        }
        let mut stored = items::items_of(reply);
        let message = stored.pop();
        if stored.is_empty() && !self.tools.is_empty() {
            out.push_back(Event::ItemRemoved {
                item_id: items::workflow_id(reply.id),
            });
        }
        out.extend(stored.into_iter().map(|item| Event::ItemDone { item }));
        self.open_assistant(out);
        out.push_back(Event::ItemUpdated {
            item_id: reply.id.to_string(),
            update: ItemUpdate::ContentPartDone {
                content_index: 0,
                content: OutputText::new(reply.content.clone()),
            },
        });
        out.extend(message.map(|item| Event::ItemDone { item }));
        if reply.status == MessageStatus::Error {
            out.push_back(Event::Error {
                code: "custom",
                message: "The assistant could not finish this answer; retry to try again.".into(),
                allow_retry: true,
            });
        }
    }
}

/// The ChatKit events of a turn (`turn`, seen through `live`): `opening` first, then the
/// turn's, to its end. Dropping the stream before the end (the client went away) cancels the
/// turn through its handle.
pub fn turn_events(
    turn: TurnHandle,
    live: Subscription,
    mut events: TurnEvents,
    opening: Vec<Event>,
) -> impl Stream<Item = Event> + Send {
    // A retry has no user message to wait for: its stream options come first (then what it
    // removes); a send's opening (`thread.created`) comes before everything.
    let mut queue = VecDeque::new();
    if events.own_seq.is_some() {
        queue.extend(events.stream_options());
    }
    queue.extend(opening);
    let turn_events = Box::pin(turn.events(live, true));
    futures::stream::unfold(
        (turn_events, events, queue, false),
        |(mut turn_events, mut events, mut queue, mut ended)| async move {
            loop {
                if let Some(event) = queue.pop_front() {
                    return Some((event, (turn_events, events, queue, ended)));
                }
                if ended {
                    return None;
                }
                ended = match turn_events.next().await {
                    Some(event) => events.on(&event, &mut queue),
                    None => true,
                };
            }
        },
    )
}
