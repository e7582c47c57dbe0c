//! A running turn's live events (`live::turn_stream`) as ChatKit stream events: the user
//! message, `stream_options`, tool use (`progress_update` and a workflow item), the reply
//! (`thread.item.added`, `assistant_message.content_part.*` deltas, `thread.item.done`),
//! `thread.updated` when the title changes, and `error`. A client that disconnects before the
//! end stops the turn (ChatKit's cancel), which then ends as `stopped` like any other stop.

use std::collections::VecDeque;

use futures::{Stream, StreamExt};
use uuid::Uuid;

use super::{
    items,
    protocol::{Event, Item, ItemUpdate, OutputText, Page, StreamOptions, Workflow},
};
use crate::{
    model::{ActivityState, Conversation, LiveEvent, Message, MessageStatus, Role},
    server::{agent::AgentState, live::Envelope, services::messages},
};

/// Turns one turn's live events into ChatKit events, keeping what it has told the client.
pub struct TurnEvents {
    conversation: Uuid,
    title: String,
    /// The text of the message this stream sent (its own user message is the first user
    /// message with it), or none for a retry.
    sent: Option<String>,
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
    /// For the turn answering the message `sent` (as stored) in `conversation`.
    pub fn for_send(conversation: &Conversation, sent: String) -> Self {
        Self::new(conversation, Some(sent), None, None)
    }

    /// For the retried answer to the user message at `user_seq`, to be stored at `reply_seq`.
    pub fn for_retry(conversation: &Conversation, user_seq: i64, reply_seq: i64) -> Self {
        Self::new(conversation, None, Some(user_seq), Some(reply_seq))
    }

    fn new(
        conversation: &Conversation,
        sent: Option<String>,
        own_seq: Option<i64>,
        reply_seq: Option<i64>,
    ) -> Self {
        Self {
            conversation: conversation.id,
            title: conversation.title.clone(),
            sent,
            own_seq,
            reply: reply_seq.map(|seq| messages::message_id(conversation.id, seq)),
            options_sent: false,
            tools: Vec::new(),
            assistant_open: false,
            sent_chars: 0,
        }
    }

    pub fn conversation(&self) -> Uuid {
        self.conversation
    }

    /// The first event of a turn's stream once the user message is stored.
    pub fn stream_options(&mut self) -> Option<Event> {
        (!std::mem::replace(&mut self.options_sent, true)).then_some(Event::StreamOptions {
            stream_options: StreamOptions { allow_cancel: true },
        })
    }

    /// What the client is told about `event`; `done` is set when this was the turn's end.
    /// Until its own user message is stored, the conversation's other turn (this one waits
    /// for it) is none of this stream's business.
    pub fn on(&mut self, event: &LiveEvent, out: &mut VecDeque<Event>) -> bool {
        match event {
            LiveEvent::Message(message) if message.role == Role::User => {
                let own = self.own_seq.is_none()
                    && self.sent.as_deref() == Some(message.content.as_str());
                if own {
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
            LiveEvent::Message(reply) => {
                self.finish(reply, out);
                true
            }
            LiveEvent::Activity {
                state: ActivityState::Tool,
                tool_name: Some(tool),
                ..
            } if self.own_seq.is_some() => {
                self.tool(tool, out);
                false
            }
            // A delta names the reply by its user message's seq + 1.
            LiveEvent::Delta {
                seq, text, offset, ..
            } if self.own_seq.is_some_and(|own| *seq == own + 1) => {
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
            LiveEvent::Error { status, detail } => {
                out.push_back(Event::Error {
                    code: "custom",
                    message: detail.clone(),
                    allow_retry: *status >= 500 || matches!(status, 408 | 409 | 429),
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

/// Ends this stream's turn when the client goes away before its end (ChatKit's cancel): a
/// turn still waiting to start never runs; a running one is stopped (only if it is the one
/// answering this stream's message).
struct StopOnDisconnect {
    agent: AgentState,
    user: Uuid,
    conversation: Uuid,
    /// The turn's task, to cancel while it has stored nothing yet.
    task: tokio::task::AbortHandle,
    own_seq: Option<i64>,
    armed: bool,
}

impl Drop for StopOnDisconnect {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let (agent, user, conversation) = (self.agent.clone(), self.user, self.conversation);
        let Some(user_seq) = self.own_seq else {
            tracing::info!(%conversation, "chatkit stream closed before its turn began: cancelling it");
            self.task.abort();
            return;
        };
        tracing::info!(%conversation, "chatkit stream closed by the client: stopping its turn");
        tokio::spawn(async move {
            let stopped =
                crate::server::agent::stop_answer(&agent, user, conversation, user_seq).await;
            if let Err(err) = stopped {
                tracing::warn!(error = %err, "stopping a cancelled chatkit turn");
            }
        });
    }
}

struct State<S> {
    live: S,
    events: TurnEvents,
    queue: VecDeque<Event>,
    guard: StopOnDisconnect,
    ended: bool,
}

/// The ChatKit events of a turn (`task`, seen through `live`): `opening` first, then the
/// turn's, to its end.
pub fn turn_events(
    agent: AgentState,
    user: Uuid,
    task: tokio::task::AbortHandle,
    live: impl Stream<Item = Envelope> + Send + Unpin + 'static,
    mut events: TurnEvents,
    opening: Vec<Event>,
) -> impl Stream<Item = Event> + Send {
    let mut queue: VecDeque<Event> = opening.into();
    // A retry has no user message to wait for: its stream options come first.
    if events.own_seq.is_some() {
        queue.extend(events.stream_options());
    }
    let state = State {
        guard: StopOnDisconnect {
            agent,
            user,
            conversation: events.conversation,
            task,
            own_seq: events.own_seq,
            armed: true,
        },
        live,
        events,
        queue,
        ended: false,
    };
    futures::stream::unfold(state, |mut state| async move {
        loop {
            if let Some(event) = state.queue.pop_front() {
                return Some((event, state));
            }
            if state.ended {
                return None;
            }
            state.ended = match state.live.next().await {
                Some(envelope) => state.events.on(&envelope.event, &mut state.queue),
                None => true,
            };
            state.guard.own_seq = state.events.own_seq;
            // The turn is over: a client leaving now must not stop the next one.
            state.guard.armed &= !state.ended;
        }
    })
}
