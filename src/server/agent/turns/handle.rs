//! The handle of one started send or retry: the turn's phase (waiting, storing its user message,
//! running), its result, and a stream of exactly that turn's live events. REST's streamed send,
//! ChatKit and the server functions consume it; nobody has to recognise "my" message by its
//! text. Dropping the handle that started a send while it is armed cancels it: a message not
//! yet stored is never stored, a turn already running is stopped like the Stop button.

use std::collections::VecDeque;

use futures::{future::Shared, Stream};
use tokio::sync::watch;
use uuid::Uuid;

use super::super::AgentState;
use crate::{
    model::{LiveEvent, Message, TurnResult},
    server::{
        error::{AppError, AppResult},
        live::{Envelope, Subscription},
    },
};

/// Where a send stands.
// One per turn, in its watch channel: its size is not worth a box.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug)]
pub enum Phase {
    /// Admitted, waiting for the conversation's earlier turn (nothing stored yet).
    Waiting,
    /// Its user message and turn record are being stored: a cancel waits for the outcome.
    Storing,
    /// Its turn runs (or ran): the turn's id and its stored user message.
    Started { turn: Uuid, user_message: Message },
    /// Cancelled before anything was stored: it never will be.
    Cancelled,
}

pub(super) type SharedResult = Shared<futures::future::BoxFuture<'static, AppResult<TurnResult>>>;

/// What duplicates of one send share (see `Inflight`).
#[derive(Clone)]
pub(super) struct Joinable {
    pub phase: watch::Receiver<Phase>,
    pub result: SharedResult,
}

/// One event of a turn's own stream.
// A few per turn, moved once each: their size is not worth a box.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum TurnEvent {
    /// The user message this turn answers, once stored (first, and once).
    UserMessage(Message),
    /// A live event of this turn (activity, deltas) or of its conversation (title, deletion).
    Live(Envelope),
    /// The end: the stored reply, or why there is none.
    Ended(AppResult<TurnResult>),
}

/// A started send or retry.
pub struct TurnHandle {
    conversation: Uuid,
    joined: Joinable,
    /// Only the request that started the send can cancel it (a duplicate resend cannot).
    canceller: Option<Canceller>,
}

impl TurnHandle {
    pub(super) fn new(conversation: Uuid, joined: Joinable, canceller: Option<Canceller>) -> Self {
        Self {
            conversation,
            joined,
            canceller,
        }
    }

    pub fn conversation(&self) -> Uuid {
        self.conversation
    }

    /// The stored user message, once the turn started.
    pub fn user_message(&self) -> Option<Message> {
        match &*self.joined.phase.borrow() {
            Phase::Started { user_message, .. } => Some(user_message.clone()),
            _ => None,
        }
    }

    /// Waits for the turn's end. The turn goes on if the caller goes away meanwhile.
    pub async fn result(mut self) -> AppResult<TurnResult> {
        if let Some(canceller) = self.canceller.as_mut() {
            canceller.armed = false;
        }
        self.joined.result.clone().await
    }

    /// This turn's events, seen through `live` (subscribed before the turn started, so none is
    /// missed), ending with its result. `cancel_on_drop`: a consumer that stops reading before
    /// the end cancels the send (ChatKit's cancel); otherwise the turn goes on without it.
    pub fn events(
        mut self,
        live: Subscription,
        cancel_on_drop: bool,
    ) -> impl Stream<Item = TurnEvent> + Send {
        if let Some(canceller) = self.canceller.as_mut() {
            canceller.armed = cancel_on_drop;
        }
        let state = EventsState {
            live: Some(live),
            early: VecDeque::new(),
            own_seq: None,
            phase_closed: false,
            ended: None,
            handle: self,
            done: false,
        };
        futures::stream::unfold(state, |mut state| async move {
            if state.done {
                return None;
            }
            let event = state.next().await;
            if matches!(event, TurnEvent::Ended(_)) {
                state.done = true;
                // Over: a consumer leaving now must not stop anything.
                if let Some(canceller) = state.handle.canceller.as_mut() {
                    canceller.armed = false;
                }
            }
            Some((event, state))
        })
    }
}

/// Live events that arrive before the user message is known, kept until it is (bounded: the
/// ones of the conversation's earlier turn are of no use anyway).
const EARLY_EVENTS: usize = 64;

struct EventsState {
    live: Option<Subscription>,
    early: VecDeque<Envelope>,
    /// The seq of this turn's user message, once known.
    own_seq: Option<i64>,
    /// The phase will not change again (its task ended): only the result is left.
    phase_closed: bool,
    /// The result, once it came (a completed `Shared` must never be polled again).
    ended: Option<AppResult<TurnResult>>,
    handle: TurnHandle,
    done: bool,
}

impl EventsState {
    async fn next(&mut self) -> TurnEvent {
        loop {
            if let Some(ended) = self.ended.take() {
                return TurnEvent::Ended(ended);
            }
            if self.own_seq.is_none() {
                if let Some(message) = self.handle.user_message() {
                    self.own_seq = Some(message.seq);
                    return TurnEvent::UserMessage(message);
                }
            } else if let Some(envelope) = self.early.pop_front() {
                if self.is_own(&envelope.event) {
                    return TurnEvent::Live(envelope);
                }
                continue;
            }
            let watch_phase = self.own_seq.is_none() && !self.phase_closed;
            let live_open = self.live.is_some();
            let phase = &mut self.handle.joined.phase;
            let result = &mut self.handle.joined.result;
            let live = self.live.as_mut();
            tokio::select! {
                biased;
                changed = phase.changed(), if watch_phase => {
                    // The phase's sender is gone: it will not change again (the result says
                    // the rest, the user message included).
                    self.phase_closed = changed.is_err();
                }
                received = async { live.expect("checked").recv().await }, if live_open => match received {
                    Some(envelope) => {
                        if !concerns(&envelope.event, self.handle.conversation) {
                            continue;
                        }
                        if self.own_seq.is_some() {
                            if self.is_own(&envelope.event) {
                                return TurnEvent::Live(envelope);
                            }
                        } else {
                            if self.early.len() == EARLY_EVENTS {
                                self.early.pop_front();
                            }
                            self.early.push_back(envelope);
                        }
                    }
                    // Fell behind (dropped by the fan-out): deltas are lost, the final reply
                    // (from the result) is not.
                    None => self.live = None,
                },
                ended = result => {
                    // The user message may have been stored just now (or by another replica,
                    // whose answer this is): say it before the end.
                    if self.own_seq.is_none() {
                        let message = self.handle.user_message().or_else(|| {
                            ended.as_ref().ok().map(|turn| turn.user_message.clone())
                        });
                        if let Some(message) = message {
                            self.own_seq = Some(message.seq);
                            self.ended = Some(ended);
                            return TurnEvent::UserMessage(message);
                        }
                    }
                    return TurnEvent::Ended(ended);
                }
            }
        }
    }

    /// Whether a live event of the conversation belongs to this turn: its activity and its
    /// reply's deltas (named by the user message's seq), and the conversation's own changes.
    /// Stored messages are not: the user message and the reply come from the handle.
    fn is_own(&self, event: &LiveEvent) -> bool {
        let Some(own) = self.own_seq else {
            return false;
        };
        match event {
            LiveEvent::Delta { seq, .. } | LiveEvent::Partial { seq, .. } => *seq == own + 1,
            LiveEvent::Activity { user_seq, .. } | LiveEvent::ApprovalDecided { user_seq, .. } => {
                *user_seq == own
            }
            LiveEvent::Conversation(_) | LiveEvent::ConversationDeleted { .. } => true,
            LiveEvent::ToolCallUndone { .. }
            | LiveEvent::Message(_)
            | LiveEvent::Task(_)
            | LiveEvent::TaskDeleted { .. }
            | LiveEvent::Reminder { .. }
            | LiveEvent::ReminderSnoozed { .. }
            | LiveEvent::Resync
            | LiveEvent::Error { .. } => false,
        }
    }
}

/// Whether `event` is about `conversation`.
fn concerns(event: &LiveEvent, conversation: Uuid) -> bool {
    match event {
        LiveEvent::Message(m) => m.conversation_id == conversation,
        LiveEvent::Delta {
            conversation_id, ..
        }
        | LiveEvent::Partial {
            conversation_id, ..
        }
        | LiveEvent::Activity {
            conversation_id, ..
        }
        | LiveEvent::ApprovalDecided {
            conversation_id, ..
        }
        | LiveEvent::ToolCallUndone {
            conversation_id, ..
        } => *conversation_id == conversation,
        LiveEvent::Conversation(c) => c.id == conversation,
        LiveEvent::ConversationDeleted { id } => *id == conversation,
        LiveEvent::Task(_)
        | LiveEvent::TaskDeleted { .. }
        | LiveEvent::Reminder { .. }
        | LiveEvent::ReminderSnoozed { .. }
        | LiveEvent::Resync
        | LiveEvent::Error { .. } => false,
    }
}

/// The phase as the turn's task moves it. Every move that decides whether the message gets
/// stored is one atomic step on the watch, so a cancel and a store can never both happen.
pub(super) struct PhaseTx(pub watch::Sender<Phase>);

impl PhaseTx {
    /// Waiting → Storing; false when the send was cancelled.
    pub fn begin_storing(&self) -> bool {
        self.0.send_if_modified(|phase| {
            let waiting = matches!(phase, Phase::Waiting);
            if waiting {
                *phase = Phase::Storing;
            }
            waiting
        })
    }

    pub fn was_cancelled(&self) -> bool {
        matches!(*self.0.borrow(), Phase::Cancelled)
    }

    /// Storing → Started.
    pub fn started(&self, turn: Uuid, user_message: Message) {
        self.0.send_replace(Phase::Started { turn, user_message });
    }

    /// Storing → Waiting (another turn runs; or storing failed and the task ends).
    pub fn not_stored(&self) {
        self.0.send_if_modified(|phase| {
            let storing = matches!(phase, Phase::Storing);
            if storing {
                *phase = Phase::Waiting;
            }
            storing
        });
    }
}

/// A task that ends (or dies) while storing leaves `Storing`, so a waiting cancel goes on.
impl Drop for PhaseTx {
    fn drop(&mut self) {
        self.not_stored();
    }
}

/// Cancels the send it belongs to when dropped while armed.
pub(super) struct Canceller {
    pub agent: AgentState,
    pub user: Uuid,
    pub conversation: Uuid,
    pub phase: watch::Sender<Phase>,
    pub task: tokio::task::AbortHandle,
    pub armed: bool,
}

impl Canceller {
    /// Waiting → Cancelled; whether it happened.
    fn cancel_waiting(phase: &watch::Sender<Phase>) -> bool {
        phase.send_if_modified(|phase| {
            let waiting = matches!(phase, Phase::Waiting);
            if waiting {
                *phase = Phase::Cancelled;
            }
            waiting
        })
    }
}

impl Drop for Canceller {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let conversation = self.conversation;
        if Self::cancel_waiting(&self.phase) {
            tracing::info!(%conversation, "a send was cancelled before its message was stored");
            // Safe: the task can no longer store anything; this frees its slot at once.
            self.task.abort();
            return;
        }
        let (agent, user, phase, task) = (
            self.agent.clone(),
            self.user,
            self.phase.clone(),
            self.task.clone(),
        );
        tokio::spawn(async move {
            let mut seen = phase.subscribe();
            loop {
                let now = match seen.wait_for(|p| !matches!(p, Phase::Storing)).await {
                    Ok(now) => now.clone(),
                    Err(_) => return,
                };
                match now {
                    Phase::Started { turn, .. } => {
                        tracing::info!(%conversation, %turn, "a send's consumer left: stopping its turn");
                        if let Err(err) = super::stop_turn(&agent, user, turn).await {
                            tracing::warn!(error = %err, "stopping a cancelled turn");
                        }
                        return;
                    }
                    Phase::Waiting => {
                        if Self::cancel_waiting(&phase) {
                            task.abort();
                            return;
                        }
                    }
                    Phase::Cancelled | Phase::Storing => return,
                }
            }
        });
    }
}

/// The error of a send whose handle was cancelled before its message was stored.
pub(super) fn cancelled() -> AppError {
    AppError::Conflict("the message was cancelled before it was sent".into())
}
