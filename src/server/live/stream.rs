//! One open event stream: what was missed since `Last-Event-ID` (read from the database page
//! by page, as fast as the client drains it), then each running turn's activity and reply so
//! far, then live events as the fan-out hands them over. Registered before reading the
//! database, so nothing falls in between; stored events are never sent twice.

use std::{collections::VecDeque, time::Duration};

use futures::Stream;
use sqlx::PgPool;
use uuid::Uuid;

use super::{Envelope, Subscription};
use crate::{
    model::LiveEvent,
    server::services::{activity, events},
};

/// Stored events replayed per query: a replay of any length holds at most one page.
const REPLAY_PAGE: i64 = 500;
/// Stored ids a stream remembers having sent.
const RECENT_IDS: usize = 64;

struct StreamState {
    pool: PgPool,
    user: Uuid,
    subscription: Subscription,
    /// What to send before waiting on the subscription (at most a page).
    queue: VecDeque<Envelope>,
    /// Newest stored event sent (replays start after it).
    newest: i64,
    /// The ids of the last stored events sent. Ids are handed out at insert and events arrive
    /// in commit order, so an older id can arrive after a newer one: it is sent unless it is
    /// one of these, or older than all of them (then it was replayed already).
    recent: VecDeque<i64>,
    /// Replaying stored events after `newest`, a page at a time; then the running turns.
    replaying: bool,
    /// Whether anything was replayed yet: until then every stored event that arrives is new
    /// (a stream "from now" sends what commits after it registered, even if that committed
    /// before it read where "now" is).
    replayed: bool,
    /// Not opened yet: `Some(last_id)` from the client, or `None` for "from now".
    opening: Option<Option<i64>>,
}

impl StreamState {
    fn is_new(&self, id: i64) -> bool {
        if id > self.newest || !self.replayed {
            return !self.recent.contains(&id);
        }
        let oldest_recent = self.recent.iter().copied().min();
        oldest_recent.is_some_and(|oldest| id > oldest) && !self.recent.contains(&id)
    }

    fn remember(&mut self, id: i64) {
        self.newest = self.newest.max(id);
        if self.recent.len() == RECENT_IDS {
            self.recent.pop_front();
        }
        self.recent.push_back(id);
    }

    /// The stream's start: a client's `Last-Event-ID` older than the events still kept missed
    /// some for good (it must reload: `resync`); otherwise the replay starts after it.
    async fn open(&mut self, last_id: Option<i64>) {
        match last_id {
            Some(last) => {
                if let Ok(Some(oldest)) = events::oldest_kept(&self.pool, self.user).await {
                    if oldest > last + 1 {
                        self.queue.push_back(Envelope::resync());
                    }
                }
                self.newest = last;
                self.replaying = true;
            }
            None => {
                if let Ok(Some(max)) = events::newest(&self.pool, self.user).await {
                    self.newest = max;
                }
                self.running_turns().await;
            }
        }
    }

    /// The next page of the replay; at its end, the running turns' state.
    async fn replay_page(&mut self) {
        self.replayed = true;
        match events::since(&self.pool, self.user, self.newest, REPLAY_PAGE).await {
            Ok(page) => {
                let full = page.len() as i64 == REPLAY_PAGE;
                for (id, event) in page {
                    // Remembered as sent when popped; `newest` moves now so the next page
                    // starts after this one.
                    self.newest = self.newest.max(id);
                    self.queue.push_back(Envelope::new(Some(id), event));
                }
                if !full {
                    self.replaying = false;
                    self.running_turns().await;
                }
            }
            Err(err) => {
                tracing::warn!(error = %err, "replaying live events");
                self.replaying = false;
                self.queue.push_back(Envelope::resync());
            }
        }
    }

    /// Each running turn's activity and reply so far.
    async fn running_turns(&mut self) {
        match activity::running_turns(&self.pool, self.user).await {
            Ok(turns) => {
                for (conversation_id, user_seq, tool_name, partial) in turns {
                    self.queue.push_back(Envelope::new(
                        None,
                        LiveEvent::working(conversation_id, user_seq, tool_name),
                    ));
                    self.queue.push_back(Envelope::new(
                        None,
                        LiveEvent::Partial {
                            conversation_id,
                            seq: user_seq + 1,
                            text: partial,
                        },
                    ));
                }
            }
            Err(err) => tracing::warn!(error = %err, "reading running turns"),
        }
    }

    /// The next envelope to send; `None` ends the stream (the fan-out dropped it: it fell
    /// behind, or its session ended).
    async fn next(&mut self) -> Option<Envelope> {
        if let Some(last_id) = self.opening.take() {
            // Boxed: an idle stream then keeps only its small steady state, not the space of
            // the database queries it ran once.
            Box::pin(self.open(last_id)).await;
        }
        loop {
            // (A queued `resync` goes to the client: what it missed cannot be replayed.)
            if let Some(next) = self.queue.pop_front() {
                if let Some(id) = next.id {
                    self.remember(id);
                }
                return Some(next);
            }
            if self.replaying {
                Box::pin(self.replay_page()).await;
                continue;
            }
            let envelope = self.subscription.receiver.recv().await?;
            match envelope.id {
                Some(id) if !self.is_new(id) => continue,
                Some(id) => {
                    self.remember(id);
                    return Some(envelope);
                }
                // The bus may have missed events (its connection dropped): catch up from the
                // database, as a reconnecting client would.
                None if envelope.is_resync() => self.replaying = true,
                None => return Some(envelope),
            }
        }
    }
}

/// A user's live events after `last_id` (see the module's comment). Driven by whoever polls
/// it: it ends when it is dropped, and its registration goes with it.
pub fn user_stream(
    pool: PgPool,
    user: Uuid,
    subscription: Subscription,
    last_id: Option<i64>,
) -> impl Stream<Item = Envelope> + Send {
    let state = StreamState {
        pool,
        user,
        subscription,
        queue: VecDeque::new(),
        newest: 0,
        recent: VecDeque::new(),
        replaying: false,
        replayed: false,
        opening: Some(last_id),
    };
    futures::stream::unfold(state, |mut state| async move {
        let next = state.next().await?;
        Some((next, state))
    })
}

/// Deletes old stored events every hour.
pub async fn prune_forever(pool: PgPool) {
    loop {
        if let Err(err) = events::prune(&pool).await {
            tracing::warn!(error = %err, "pruning live events");
        }
        tokio::time::sleep(Duration::from_secs(3600)).await;
    }
}
