//! How replicas tell each other what happened: live events (to the open streams of a user,
//! wherever they are) and stop requests (to the replica running a turn). Two backends behind
//! one interface:
//!
//! - **Postgres** `LISTEN/NOTIFY` (the default, nothing to install): a stored event is
//!   announced in the transaction that stores it, so it goes out exactly when it commits.
//! - **NATS** (`EVENT_BUS_URL=nats://…`): events travel on per-user subjects
//!   (`chatkit.live.<user id>`) with the whole event inside, published right after the commit;
//!   no cluster-wide lock per commit, no 8,000-byte cap, no database read per event.
//!
//! The database stays the source of truth either way (`live_events`): a stream that
//! (re)connects replays from it by `Last-Event-ID`. While NATS is unreachable everything goes
//! through Postgres again (said by `/readyz` and the log), and when it is back every open
//! stream replays what it may have missed.

use std::{
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc, OnceLock,
    },
    time::Duration,
};

use sqlx::PgPool;
use uuid::Uuid;

use crate::model::LiveEvent;

/// NATS subjects: one per user for live events, one for stop requests.
pub const LIVE_SUBJECTS: &str = "chatkit.live.>";
pub const STOP_SUBJECT: &str = "chatkit.stop";
/// The Postgres channel of live events. Payload: `{"u": user, "id": stored id}` or
/// `{"u": user, "e": event}` for an event that is not stored.
pub const LIVE_CHANNEL: &str = "chatkit_live";
/// The Postgres channel of stop requests; the payload is the turn id.
pub const STOP_CHANNEL: &str = "chatkit_turn_stop";
/// NOTIFY payloads must stay under 8,000 bytes.
pub const MAX_NOTIFY_BYTES: usize = 7_000;

/// A publish that has not reached NATS within this long goes through Postgres instead.
const PUBLISH_TIMEOUT: Duration = Duration::from_millis(250);

pub struct EventBus {
    nats_url: Option<String>,
    nats: OnceLock<async_nats::Client>,
    connected: AtomicBool,
    /// This process's own open streams, which a running turn's deltas reach directly (see
    /// `agent::progress`): they need no round trip through the bus.
    local: OnceLock<Arc<crate::server::live::StreamFanout>>,
}

/// This process, as named in the events it announces that its own streams already got.
pub fn process_id() -> Uuid {
    static ID: OnceLock<Uuid> = OnceLock::new();
    *ID.get_or_init(Uuid::new_v4)
}

/// What arrives from NATS, for the process to act on.
pub enum Delivery {
    /// A live event (`{"u", "id"?, "e"}`), for this process's open streams of that user
    /// (named by the subject, so nobody else's is parsed).
    Live { user: Option<Uuid>, payload: String },
    /// A stop request (a turn id), for the turn if this process runs it.
    Stop(String),
    /// NATS is back after an outage.
    Reconnected,
}

/// What `/readyz` says about the bus.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BusState {
    Postgres,
    NatsConnected,
    /// NATS is configured but unreachable: Postgres carries everything meanwhile.
    NatsDown,
}

impl BusState {
    pub fn describe(self) -> &'static str {
        match self {
            Self::Postgres => "event bus: postgres",
            Self::NatsConnected => "event bus: nats (connected)",
            Self::NatsDown => "event bus: nats unreachable, using postgres until it is back",
        }
    }
}

impl EventBus {
    /// `nats_url`: `EVENT_BUS_URL`; none means Postgres.
    pub fn new(nats_url: Option<String>) -> Self {
        Self {
            nats_url,
            nats: OnceLock::new(),
            connected: AtomicBool::new(false),
            local: OnceLock::new(),
        }
    }

    /// Names this process's fan-out (once, at start).
    pub fn set_local(&self, fanout: Arc<crate::server::live::StreamFanout>) {
        let _ = self.local.set(fanout);
    }

    /// This process's fan-out, once set.
    pub fn local(&self) -> Option<&Arc<crate::server::live::StreamFanout>> {
        self.local.get()
    }

    pub fn state(&self) -> BusState {
        match (&self.nats_url, self.nats_up()) {
            (None, _) => BusState::Postgres,
            (Some(_), true) => BusState::NatsConnected,
            (Some(_), false) => BusState::NatsDown,
        }
    }

    /// The NATS client while it is connected.
    fn nats_up(&self) -> bool {
        self.connected.load(Ordering::SeqCst) && self.nats.get().is_some()
    }

    /// Whether a stored event must be announced by the database in its own transaction:
    /// always with Postgres, and with NATS while it is down.
    pub fn announces_in_database(&self) -> bool {
        !self.nats_up()
    }

    /// Publishes a live event of `user` (`id`: its stored id, if stored). Over NATS when it is
    /// up, else (or if NATS does not take it in time) with a NOTIFY.
    pub async fn publish_live(
        &self,
        pool: &PgPool,
        user: Uuid,
        id: Option<i64>,
        event: &LiveEvent,
    ) {
        let whole = || match id {
            Some(id) => serde_json::json!({ "u": user, "id": id, "e": event }).to_string(),
            None => transient_payload(user, event),
        };
        if self.via_nats(format!("chatkit.live.{user}"), whole).await {
            return;
        }
        // Stored events go by id (the payload limit); others whole.
        let payload = match id {
            Some(id) => serde_json::json!({ "u": user, "id": id }).to_string(),
            None => transient_payload(user, event),
        };
        notify(pool, LIVE_CHANNEL, &payload).await;
    }

    /// Asks whichever replica runs `turn` to stop it.
    pub async fn publish_stop(&self, pool: &PgPool, turn: Uuid) {
        if !self
            .via_nats(STOP_SUBJECT.into(), || turn.to_string())
            .await
        {
            notify(pool, STOP_CHANNEL, &turn.to_string()).await;
        }
    }

    /// Publishes on NATS if it is up and takes the message in time; false otherwise (the
    /// caller then goes through Postgres).
    async fn via_nats(&self, subject: String, payload: impl FnOnce() -> String) -> bool {
        let Some(client) = self.nats.get().filter(|_| self.nats_up()) else {
            return false;
        };
        let sent = tokio::time::timeout(PUBLISH_TIMEOUT, client.publish(subject, payload().into()));
        match sent.await {
            Ok(Ok(())) => true,
            Ok(Err(err)) => {
                tracing::warn!(error = %err, "publishing on NATS; using Postgres");
                false
            }
            Err(_) => {
                tracing::warn!("NATS did not take a message in time; using Postgres");
                false
            }
        }
    }

    /// Connects to NATS (when configured) and hands what arrives there to `deliveries`.
    /// Reconnects by itself; after a reconnection it delivers `Reconnected` (streams replay
    /// what they may have missed meanwhile).
    pub async fn run(self: Arc<Self>, deliveries: tokio::sync::mpsc::Sender<Delivery>) {
        use futures::StreamExt;
        let Some(url) = self.nats_url.clone() else {
            return;
        };
        let bus = self.clone();
        // Reconnections go through `run` (below), which first makes sure the subscriptions
        // are back on the server.
        let (reconnected, mut reconnections) = tokio::sync::mpsc::unbounded_channel::<()>();
        let connected = async_nats::ConnectOptions::new()
            .name("chatkit")
            .retry_on_initial_connect()
            .max_reconnects(None)
            .reconnect_delay_callback(|attempts| {
                Duration::from_millis((attempts as u64 * 100).clamp(100, 1000))
            })
            .event_callback(move |event| {
                let bus = bus.clone();
                let reconnected = reconnected.clone();
                async move {
                    match event {
                        async_nats::Event::Connected => {
                            let was = bus.connected.swap(true, Ordering::SeqCst);
                            tracing::info!(%event, "event bus: NATS connected");
                            if !was {
                                // Whatever went out while we were away: replay from the database.
                                let _ = reconnected.send(());
                            }
                        }
                        async_nats::Event::Disconnected | async_nats::Event::Closed => {
                            bus.connected.store(false, Ordering::SeqCst);
                            tracing::warn!(
                                %event,
                                "event bus: NATS unreachable; using Postgres until it is back"
                            );
                        }
                        other => tracing::info!(event = %other, "event bus: NATS"),
                    }
                }
            })
            .connect(url.as_str())
            .await;
        let client = match connected {
            Ok(client) => client,
            Err(err) => {
                tracing::error!(error = %err, "event bus: bad EVENT_BUS_URL; using Postgres");
                return;
            }
        };
        let _ = self.nats.set(client.clone());
        if client.connection_state() == async_nats::connection::State::Connected {
            self.connected.store(true, Ordering::SeqCst);
        }
        let (live, stops) = loop {
            let subscribed = async {
                let live = client.subscribe(LIVE_SUBJECTS).await?;
                let stops = client.subscribe(STOP_SUBJECT).await?;
                Ok::<_, async_nats::SubscribeError>((live, stops))
            };
            match subscribed.await {
                Ok(subscriptions) => break subscriptions,
                Err(err) => {
                    tracing::warn!(error = %err, "event bus: subscribing on NATS; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        };
        let payload =
            |message: async_nats::Message| String::from_utf8_lossy(&message.payload).into_owned();
        let mut arrivals = futures::stream::select(
            live.map(move |m| Delivery::Live {
                user: m
                    .subject
                    .as_str()
                    .rsplit('.')
                    .next()
                    .and_then(|u| u.parse().ok()),
                payload: payload(m),
            }),
            stops.map(move |m| Delivery::Stop(payload(m))),
        );
        loop {
            let delivery = tokio::select! {
                arrived = arrivals.next() => match arrived {
                    Some(delivery) => delivery,
                    None => return,
                },
                Some(()) = reconnections.recv() => {
                    // The client re-sends its subscriptions on reconnecting: once the server
                    // has answered a flush it has them, and the replay misses nothing after.
                    let flushed = tokio::time::timeout(Duration::from_secs(2), client.flush()).await;
                    if !matches!(flushed, Ok(Ok(()))) {
                        tracing::warn!("event bus: no flush after a reconnection; replaying anyway");
                    }
                    Delivery::Reconnected
                }
            };
            if deliveries.send(delivery).await.is_err() {
                return;
            }
        }
    }
}

/// The NOTIFY payload of an event that is not stored.
/// The payload of an event that is not stored, naming this process (`o`): a delta it
/// announces has reached its own streams already.
pub fn transient_payload(user: Uuid, event: &LiveEvent) -> String {
    serde_json::json!({ "u": user, "o": process_id(), "e": event }).to_string()
}

async fn notify(pool: &PgPool, channel: &str, payload: &str) {
    let sent = sqlx::query("SELECT pg_notify($1, $2)")
        .bind(channel)
        .bind(payload)
        .execute(pool)
        .await;
    if let Err(err) = sent {
        // Streams still catch up from the database when they reconnect, and a stop request is
        // also seen by the owner's heartbeat.
        tracing::warn!(error = %err, channel, "announcing on Postgres");
    }
}
