//! The live event bus (Postgres LISTEN/NOTIFY): one listening connection per process, however
//! many streams are open; each notification is fanned out to the open streams of its user.
//! The database stays the source of truth: stored events are read back by id, a stream that
//! (re)connects or falls behind replays from the `live_events` table, and a running turn's
//! reply so far comes from `turn_activity`.

use std::{
    collections::{HashMap, VecDeque},
    sync::{Arc, Mutex},
    time::Duration,
};

use futures::Stream;
use serde::Deserialize;
use sqlx::PgPool;
use tokio::sync::broadcast;
use uuid::Uuid;

use super::services::{activity, events};
use crate::model::{ActivityState, LiveEvent};

/// An event as it travels: its stored id (for SSE `id:` and `Last-Event-ID`), if stored.
#[derive(Clone, Debug)]
pub struct Envelope {
    pub id: Option<i64>,
    pub event: Arc<LiveEvent>,
}

/// Events a stream may fall behind by before it replays from the database.
const BUFFER: usize = 512;
/// Stored events replayed per query.
const REPLAY_PAGE: i64 = 500;

pub struct LiveBus {
    pool: PgPool,
    users: Mutex<HashMap<Uuid, broadcast::Sender<Envelope>>>,
}

#[derive(Deserialize)]
struct Notice {
    u: Uuid,
    id: Option<i64>,
    e: Option<LiveEvent>,
}

impl LiveBus {
    pub fn new(pool: PgPool) -> Self {
        Self {
            pool,
            users: Mutex::default(),
        }
    }

    pub fn subscribe(&self, user: Uuid) -> broadcast::Receiver<Envelope> {
        let mut users = self.users.lock().unwrap_or_else(|p| p.into_inner());
        users
            .entry(user)
            .or_insert_with(|| broadcast::channel(BUFFER).0)
            .subscribe()
    }

    fn dispatch(&self, user: Uuid, envelope: Envelope) {
        let mut users = self.users.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(sender) = users.get(&user) {
            if sender.send(envelope).is_err() {
                // Nobody listens any more.
                users.remove(&user);
            }
        }
    }

    /// Hands one notification of the live channel to the streams of its user (reading a
    /// stored event once, however many streams wait for it).
    pub async fn handle(&self, payload: &str) {
        let Ok(notice) = serde_json::from_str::<Notice>(payload) else {
            return;
        };
        // Nobody on this process listens to that user: skip the read.
        if !self
            .users
            .lock()
            .map(|u| u.contains_key(&notice.u))
            .unwrap_or(false)
        {
            return;
        }
        let event = match (notice.id, notice.e) {
            (_, Some(event)) => Some(event),
            (Some(id), None) => match events::by_id(&self.pool, id).await {
                Ok(found) => found.map(|(_, event)| event),
                Err(err) => {
                    tracing::warn!(error = %err, "reading a live event");
                    None
                }
            },
            (None, None) => None,
        };
        if let Some(event) = event {
            let event = presented(event);
            self.dispatch(
                notice.u,
                Envelope {
                    id: notice.id,
                    event: Arc::new(event),
                },
            );
        }
    }
}

/// The `html` of an assistant message is rendered here, from its markdown, once per event for
/// every stream; whatever `html` an incoming event carried is never used (over NATS, anyone
/// who can publish on a subject could otherwise put markup into the page).
fn presented(event: LiveEvent) -> LiveEvent {
    match event {
        LiveEvent::Message(mut message) => {
            super::rendered::present(&mut message);
            LiveEvent::Message(message)
        }
        other => other,
    }
}

impl LiveBus {
    /// After a bus connection was lost, notifications may have been missed: every open stream
    /// replays what it missed from the database (and the running turns' replies so far).
    pub fn resync_all(&self) {
        let users: Vec<Uuid> = self
            .users
            .lock()
            .map(|u| u.keys().copied().collect())
            .unwrap_or_default();
        for user in users {
            self.dispatch(user, envelope(None, LiveEvent::Resync));
        }
    }
}

/// The first events of a stream: what was missed since `last_id` (from the database), then
/// each running turn's activity and reply so far. `from_client`: `last_id` is a client's
/// `Last-Event-ID`, which may predate the events still kept (then the client must reload).
async fn opening(
    pool: &PgPool,
    user: Uuid,
    last_id: Option<i64>,
    from_client: bool,
) -> (VecDeque<Envelope>, i64) {
    let mut queue = VecDeque::new();
    let mut newest = last_id.unwrap_or(0);
    match last_id {
        Some(last) => {
            if from_client {
                if let Ok(Some(oldest)) = events::oldest_kept(pool, user).await {
                    if oldest > last + 1 {
                        queue.push_back(envelope(None, LiveEvent::Resync));
                    }
                }
            }
            newest = replay_into(pool, user, last, &mut queue).await;
        }
        None => {
            if let Ok(Some(max)) = sqlx::query_scalar::<_, Option<i64>>(
                "SELECT max(id) FROM live_events WHERE user_id = $1",
            )
            .bind(user)
            .fetch_one(pool)
            .await
            {
                newest = max;
            }
        }
    }
    match activity::running_turns(pool, user).await {
        Ok(turns) => {
            for (conversation_id, user_seq, tool_name, partial) in turns {
                queue.push_back(envelope(
                    None,
                    LiveEvent::Activity {
                        conversation_id,
                        user_seq,
                        state: if tool_name.is_some() {
                            ActivityState::Tool
                        } else {
                            ActivityState::Thinking
                        },
                        tool_name,
                    },
                ));
                queue.push_back(envelope(
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
    (queue, newest)
}

/// Appends the stored events after `after` to `queue`; returns the newest id seen.
async fn replay_into(pool: &PgPool, user: Uuid, after: i64, queue: &mut VecDeque<Envelope>) -> i64 {
    let mut newest = after;
    loop {
        match events::since(pool, user, newest, REPLAY_PAGE).await {
            Ok(page) => {
                let full = page.len() as i64 == REPLAY_PAGE;
                for (id, event) in page {
                    newest = id;
                    queue.push_back(envelope(Some(id), event));
                }
                if !full {
                    return newest;
                }
            }
            Err(err) => {
                tracing::warn!(error = %err, "replaying live events");
                queue.push_back(envelope(None, LiveEvent::Resync));
                return newest;
            }
        }
    }
}

fn envelope(id: Option<i64>, event: LiveEvent) -> Envelope {
    Envelope {
        id,
        event: Arc::new(event),
    }
}

struct StreamState {
    bus: Arc<LiveBus>,
    pool: PgPool,
    user: Uuid,
    receiver: Option<broadcast::Receiver<Envelope>>,
    queue: VecDeque<Envelope>,
    /// Newest stored event sent (replays start after it).
    newest: i64,
    /// The ids of the last stored events sent. Ids are handed out at insert and events arrive
    /// in commit order, so an older id can arrive after a newer one: it is sent unless it is
    /// one of these, or older than all of them (then it was replayed already).
    recent: VecDeque<i64>,
    last_id: Option<i64>,
    opened: bool,
}

/// Stored ids a stream remembers having sent.
const RECENT_IDS: usize = 64;

impl StreamState {
    fn is_new(&self, id: i64) -> bool {
        if id > self.newest {
            return true;
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
}

/// A user's live events: missed ones first (after `last_id`), then the running turns' state,
/// then live. Subscribes before reading the database, so nothing falls in between; stored
/// events are never sent twice. Driven by whoever polls it: it ends when it is dropped.
pub fn user_stream(
    bus: Arc<LiveBus>,
    pool: PgPool,
    user: Uuid,
    last_id: Option<i64>,
) -> impl Stream<Item = Envelope> + Send {
    let receiver = Some(bus.subscribe(user));
    let state = StreamState {
        bus,
        pool,
        user,
        receiver,
        queue: VecDeque::new(),
        newest: 0,
        recent: VecDeque::new(),
        last_id,
        opened: false,
    };
    futures::stream::unfold(state, |mut state| async move {
        if !state.opened {
            state.opened = true;
            // Boxed: an idle stream then keeps only its small steady state, not the space of
            // the database queries it ran once.
            let (queue, newest) =
                Box::pin(opening(&state.pool, state.user, state.last_id, true)).await;
            state.queue = queue;
            state.newest = newest;
        }
        loop {
            if let Some(next) = state.queue.pop_front() {
                if let Some(id) = next.id {
                    state.remember(id);
                }
                return Some((next, state));
            }
            let receiver = state.receiver.as_mut()?;
            match receiver.recv().await {
                // The bus may have missed events (its connection dropped): catch up from the
                // database, as a reconnecting client would.
                Ok(envelope) if envelope.id.is_none() && *envelope.event == LiveEvent::Resync => {
                    let (queue, newest) =
                        Box::pin(opening(&state.pool, state.user, Some(state.newest), false)).await;
                    state.queue = queue;
                    state.newest = newest;
                }
                Ok(envelope) => match envelope.id {
                    Some(id) if !state.is_new(id) => continue,
                    Some(id) => {
                        state.remember(id);
                        return Some((envelope, state));
                    }
                    None => return Some((envelope, state)),
                },
                // Fell behind: the stored events come back from the database. (Boxed, like
                // the opening: only a stream doing it holds the space of its queries.)
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    let mut queue = VecDeque::new();
                    state.newest = Box::pin(replay_into(
                        &state.pool,
                        state.user,
                        state.newest,
                        &mut queue,
                    ))
                    .await;
                    state.queue = queue;
                }
                Err(broadcast::error::RecvError::Closed) => {
                    state.receiver = Some(state.bus.subscribe(state.user));
                }
            }
        }
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
