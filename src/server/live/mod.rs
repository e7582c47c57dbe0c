//! The live layer of one process: the open event streams of each user on this replica, and
//! the fan-out of what the bus delivers (`bus::EventBus` carries events between replicas;
//! this hands them to the streams here).
//!
//! What it holds is bounded by what is open: a user's entry exists only while that user has a
//! stream open here and goes with the last one; a user may have at most
//! `MAX_STREAMS_PER_USER` streams here (the next one is refused with 429, the open ones are
//! kept: closing the oldest would make two sets of tabs take turns forever, each reconnecting
//! and closing the other); every stream's queue is bounded, and a stream that does not drain
//! it is dropped (its client reconnects with `Last-Event-ID` and gets what it missed from the
//! database).
//!
//! Deliveries are read by a worker of their own, behind a bounded queue, so the listener that
//! also carries stop requests and session revocations never waits on an event's database read.

mod stream;

use std::{
    collections::HashMap,
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        Arc, Mutex,
    },
};

use serde::Deserialize;
use sqlx::PgPool;
use tokio::sync::mpsc;
use uuid::Uuid;

pub use stream::{prune_forever, user_stream};

use super::{
    auth::AuthUser,
    error::{AppError, AppResult},
    services::events,
};
use crate::model::LiveEvent;

/// An event as it travels: one pointer (a stream's queue holds only pointers, so an idle
/// stream's queue is small), shared by every stream that sends it.
#[derive(Clone, Debug)]
pub struct Envelope(Arc<Enveloped>);

/// What an envelope holds: the stored id (for SSE `id:` and `Last-Event-ID`), if stored, the
/// event, and its SSE text, made once for every stream that sends it.
#[derive(Debug)]
pub struct Enveloped {
    pub id: Option<i64>,
    pub event: LiveEvent,
    pub data: String,
}

impl std::ops::Deref for Envelope {
    type Target = Enveloped;

    fn deref(&self) -> &Enveloped {
        &self.0
    }
}

impl Envelope {
    pub fn new(id: Option<i64>, event: LiveEvent) -> Self {
        let event = presented(event);
        let data = serde_json::to_string(&event).unwrap_or_else(|_| "{\"type\":\"resync\"}".into());
        Self(Arc::new(Enveloped { id, event, data }))
    }

    fn resync() -> Self {
        Self::new(None, LiveEvent::Resync)
    }

    pub fn is_resync(&self) -> bool {
        self.id.is_none() && self.event == LiveEvent::Resync
    }
}

/// The `html` of an assistant message is rendered here, from its markdown (once per message:
/// `rendered` keeps it); whatever `html` an incoming event carried is never used (over NATS,
/// anyone who can publish on a subject could otherwise put markup into the page).
fn presented(event: LiveEvent) -> LiveEvent {
    match event {
        LiveEvent::Message(mut message) => {
            super::rendered::present(&mut message);
            LiveEvent::Message(message)
        }
        other => other,
    }
}

/// How much the live layer may hold (README "Configuration").
#[derive(Clone, Copy, Debug)]
pub struct FanoutLimits {
    /// `MAX_STREAMS_PER_USER`: open streams of one user on one replica.
    pub streams_per_user: usize,
    /// `LIVE_STREAM_QUEUE`: events queued for a stream that is not reading before it is dropped.
    pub queue: usize,
}

/// Deliveries waiting for the worker; past it, every stream resyncs from the database.
const INBOX: usize = 4096;
/// Stored events read per query by the worker.
const READ_BATCH: usize = 100;

/// One open stream, as the fan-out sees it.
struct Listener {
    id: u64,
    session: Uuid,
    /// An event stream (counted against the per-user limit), not a turn's.
    counted: bool,
    sender: mpsc::Sender<Envelope>,
}

pub struct StreamFanout {
    pool: PgPool,
    limits: FanoutLimits,
    users: Mutex<HashMap<Uuid, Vec<Listener>>>,
    next_id: AtomicU64,
    inbox: mpsc::Sender<Delivered>,
    /// The worker's end of the inbox, until `start_worker` takes it.
    deliveries: Mutex<Option<mpsc::Receiver<Delivered>>>,
    /// A delivery found the inbox full: streams must resync once the worker catches up.
    overflowed: AtomicBool,
}

/// What the worker gets: a notice for a user someone here listens to, not parsed yet.
struct Delivered {
    user: Uuid,
    payload: String,
}

/// A notice of the bus, parsed.
#[derive(Deserialize)]
struct Notice {
    u: Uuid,
    id: Option<i64>,
    /// The process that announced it.
    o: Option<Uuid>,
    e: Option<LiveEvent>,
}

/// A stream's registration: its queue of events, and its place in the fan-out, given up
/// when the stream is dropped.
pub struct Subscription {
    receiver: mpsc::Receiver<Envelope>,
    _registration: Registration,
}

impl Subscription {
    /// The next event; `None` once the fan-out dropped this stream (it fell behind, or its
    /// session ended) and what was queued is read.
    pub async fn recv(&mut self) -> Option<Envelope> {
        self.receiver.recv().await
    }
}

struct Registration {
    fanout: Arc<StreamFanout>,
    user: Uuid,
    id: u64,
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.fanout.remove(self.user, |l| l.id == self.id);
    }
}

impl StreamFanout {
    pub fn new(pool: PgPool, limits: FanoutLimits) -> Self {
        let (inbox, deliveries) = mpsc::channel(INBOX);
        Self {
            pool,
            limits,
            users: Mutex::default(),
            next_id: AtomicU64::new(1),
            inbox,
            deliveries: Mutex::new(Some(deliveries)),
            overflowed: AtomicBool::new(false),
        }
    }

    /// Spawns the worker that turns deliveries into events (once). It holds the fan-out
    /// weakly: it ends with it.
    pub fn start_worker(self: &Arc<Self>) {
        let deliveries = self.deliveries.lock().ok().and_then(|mut d| d.take());
        if let Some(deliveries) = deliveries {
            tokio::spawn(work(Arc::downgrade(self), deliveries));
        }
    }

    fn users(&self) -> std::sync::MutexGuard<'_, HashMap<Uuid, Vec<Listener>>> {
        self.users.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Registers an event stream of `user` (`GET /api/chat/events`); refused past the
    /// per-user limit.
    pub fn open(self: &Arc<Self>, user: &AuthUser) -> AppResult<Subscription> {
        self.register(user, true)
    }

    /// Registers the events of one turn being answered in a streamed send (REST, ChatKit): not
    /// counted against the limit, which the turn slots already bound.
    pub fn open_for_turn(self: &Arc<Self>, user: &AuthUser) -> AppResult<Subscription> {
        self.register(user, false)
    }

    fn register(self: &Arc<Self>, user: &AuthUser, counted: bool) -> AppResult<Subscription> {
        let (sender, receiver) = mpsc::channel(self.limits.queue.max(1));
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let mut users = self.users();
        let listeners = users.entry(user.id).or_default();
        let open = listeners.iter().filter(|l| l.counted).count();
        if counted && open >= self.limits.streams_per_user {
            if listeners.is_empty() {
                users.remove(&user.id);
            }
            return Err(AppError::TooManyStreams(self.limits.streams_per_user));
        }
        listeners.push(Listener {
            id,
            session: user.session,
            counted,
            sender,
        });
        drop(users);
        Ok(Subscription {
            receiver,
            _registration: Registration {
                fanout: self.clone(),
                user: user.id,
                id,
            },
        })
    }

    /// Removes `user`'s streams that match (their queues close: each stream ends once it has
    /// sent what was queued), and the user's entry with the last one.
    fn remove(&self, user: Uuid, matches: impl Fn(&Listener) -> bool) {
        let mut users = self.users();
        if let Some(listeners) = users.get_mut(&user) {
            listeners.retain(|l| !matches(l));
            if listeners.is_empty() {
                users.remove(&user);
            }
        }
    }

    /// Hands an event to every open stream of `user` here. A stream whose queue is full is not
    /// reading: it is dropped rather than buffered for without bound.
    fn dispatch(&self, user: Uuid, envelope: &Envelope) {
        let mut users = self.users();
        let Some(listeners) = users.get_mut(&user) else {
            return;
        };
        listeners.retain(|l| l.sender.try_send(envelope.clone()).is_ok());
        if listeners.is_empty() {
            users.remove(&user);
        }
    }

    /// Hands an event that is not stored to `user`'s streams here at once (a running turn's
    /// delta, written by this process).
    pub fn dispatch_local(&self, user: Uuid, event: LiveEvent) {
        if self.listens_to(user) {
            self.dispatch(user, &Envelope::new(None, event));
        }
    }

    /// Whether anyone on this replica listens to `user`.
    pub fn listens_to(&self, user: Uuid) -> bool {
        self.users().contains_key(&user)
    }

    /// After the bus may have missed events: every open stream replays what it missed from
    /// the database.
    pub fn resync_all(&self) {
        let resync = Envelope::resync();
        let users: Vec<Uuid> = self.users().keys().copied().collect();
        for user in users {
            self.dispatch(user, &resync);
        }
    }

    /// A revocation (a session id, or `user:<id>` for all of a user's): its streams end now.
    pub fn close_revoked(&self, what: &str) {
        match what.strip_prefix("user:").map(str::parse::<Uuid>) {
            Some(Ok(user)) => self.remove(user, |_| true),
            Some(Err(_)) => {}
            None => {
                let Ok(session) = what.parse::<Uuid>() else {
                    return;
                };
                let users: Vec<Uuid> = self
                    .users()
                    .iter()
                    .filter(|(_, ls)| ls.iter().any(|l| l.session == session))
                    .map(|(u, _)| *u)
                    .collect();
                for user in users {
                    self.remove(user, |l| l.session == session);
                }
            }
        }
    }

    /// A notice from the bus (`{"u": user, "id"?: stored id, "e"?: event}`; `user` when the
    /// bus already knows whose it is, from the NATS subject). Parsed no further than its user
    /// unless someone here listens; never waits.
    pub fn deliver(&self, user: Option<Uuid>, payload: &str) {
        if user.is_some_and(|u| !self.listens_to(u)) {
            return;
        }
        let user = match user {
            Some(user) => user,
            None => {
                // Only the user is read here (the rest is skipped, not built).
                #[derive(Deserialize)]
                struct Whose {
                    u: Uuid,
                }
                let Ok(whose) = serde_json::from_str::<Whose>(payload) else {
                    return;
                };
                if !self.listens_to(whose.u) {
                    return;
                }
                whose.u
            }
        };
        let delivered = Delivered {
            user,
            payload: payload.to_owned(),
        };
        if self.inbox.try_send(delivered).is_err() {
            self.overflowed.store(true, Ordering::SeqCst);
        }
    }
}

/// The worker: turns deliveries into envelopes (reading stored events in batches) and hands
/// them out, in the order they arrived. Ends when the fan-out is gone.
async fn work(fanout: std::sync::Weak<StreamFanout>, mut deliveries: mpsc::Receiver<Delivered>) {
    let mut batch = Vec::with_capacity(READ_BATCH);
    while deliveries.recv_many(&mut batch, READ_BATCH).await > 0 {
        let Some(fanout) = fanout.upgrade() else {
            return;
        };
        let notices: Vec<(Uuid, Notice)> = batch
            .drain(..)
            .filter_map(|d| {
                let notice = serde_json::from_str::<Notice>(&d.payload).ok()?;
                // The subject (NATS) and the payload must name the same user.
                (notice.u == d.user).then_some((d.user, notice))
            })
            .collect();
        let wanted: Vec<i64> = notices
            .iter()
            .filter(|(_, n)| n.e.is_none())
            .filter_map(|(_, n)| n.id)
            .collect();
        let mut stored = HashMap::new();
        if !wanted.is_empty() {
            match events::by_ids(&fanout.pool, &wanted).await {
                Ok(found) => stored.extend(found),
                Err(err) => {
                    tracing::warn!(error = %err, "reading live events; streams resync");
                    fanout.overflowed.store(true, Ordering::SeqCst);
                }
            }
        }
        for (user, notice) in notices {
            let event = match notice.e {
                // Our own turn's delta: our streams had it straight from the turn.
                Some(LiveEvent::Delta { .. }) if notice.o == Some(super::bus::process_id()) => None,
                Some(event) => Some(event),
                None => notice
                    .id
                    .and_then(|id| stored.remove(&id))
                    .filter(|(owner, _)| *owner == user)
                    .map(|(_, event)| event),
            };
            if let Some(event) = event {
                fanout.dispatch(user, &Envelope::new(notice.id, event));
            }
        }
        if fanout.overflowed.swap(false, Ordering::SeqCst) {
            fanout.resync_all();
        }
    }
}
