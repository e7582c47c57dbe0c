//! What every handler, server function and MCP tool shares, with `FromRef` sub-states so a
//! module takes only what it needs (the agent its `AgentState`, auth the token keys).

use std::sync::Arc;

use axum::extract::FromRef;
use leptos::config::LeptosOptions;
use sqlx::PgPool;

use super::{
    agent::AgentState,
    auth::JwtKeys,
    bus::{Delivery, EventBus},
    config::Config,
    live::{FanoutLimits, StreamFanout},
    rate_limit::Limits,
    sessions::Sessions,
};

#[derive(Clone)]
pub struct AppState {
    pub pool: PgPool,
    pub config: Arc<Config>,
    pub jwt: Arc<JwtKeys>,
    /// Who a request is (token + live server-side session).
    pub sessions: Arc<Sessions>,
    pub limits: Arc<Limits>,
    pub agent: AgentState,
    /// Live events for open streams (`/api/chat/events`).
    pub live: Arc<StreamFanout>,
    /// How replicas tell each other about events and stop requests (Postgres or NATS).
    pub bus: Arc<EventBus>,
    pub leptos_options: LeptosOptions,
}

impl AppState {
    pub fn new(pool: PgPool, config: Config, jwt: JwtKeys, leptos_options: LeptosOptions) -> Self {
        let limits = Arc::new(Limits::new(&config, pool.clone()));
        let jwt = Arc::new(jwt);
        let bus = Arc::new(EventBus::new(config.event_bus_url.clone()));
        let live = Arc::new(StreamFanout::new(
            pool.clone(),
            FanoutLimits {
                streams_per_user: config.streams_per_user,
                queue: config.live_stream_queue,
            },
        ));
        bus.set_local(live.clone());
        Self {
            sessions: Arc::new(Sessions::new(jwt.clone(), pool.clone())),
            agent: AgentState::new(pool.clone(), &config, limits.clone(), bus.clone()),
            live,
            bus,
            pool,
            limits,
            config: Arc::new(config),
            jwt,
            leptos_options,
        }
    }
}

impl AppState {
    /// Starts the process's background work: turn ownership (the sweeper), the notification
    /// listener (live events, stops, revocations), reminders, and pruning. Runs for the life of the runtime.
    pub fn start(&self) {
        self.agent.start();
        self.live.start_worker();
        let reminders_owed = Arc::new(tokio::sync::Notify::new());
        tokio::spawn(super::listener::listen_forever(
            self.pool.clone(),
            super::listener::Receivers {
                live: self.live.clone(),
                sessions: self.sessions.clone(),
                agent: self.agent.clone(),
                reminders_owed: reminders_owed.clone(),
            },
        ));
        tokio::spawn(
            super::reminder_sweeper::ReminderSweeper {
                pool: self.pool.clone(),
                bus: self.bus.clone(),
                clock: self.config.clock,
                owed: reminders_owed,
            }
            .run(),
        );
        // Handling a delivery never waits (live events go to the fan-out's worker), so a stop
        // request is never held up behind event reads.
        let (deliveries, mut arrived) = tokio::sync::mpsc::channel(1024);
        tokio::spawn(self.bus.clone().run(deliveries));
        let (live, agent) = (self.live.clone(), self.agent.clone());
        tokio::spawn(async move {
            while let Some(delivery) = arrived.recv().await {
                match delivery {
                    Delivery::Live { user, payload } => live.deliver(user, &payload),
                    Delivery::Stop(turn) => agent.handle_stop(&turn),
                    Delivery::Reconnected => live.resync_all(),
                }
            }
        });
        tokio::spawn(super::live::prune_forever(self.pool.clone()));
        tokio::spawn(self.sessions.clone().prune_forever());
        tokio::spawn(super::rate_limit::forget_idle_forever(
            self.limits.clone(),
            self.pool.clone(),
        ));
    }
}

impl AppState {
    /// Task changes, each with its live event.
    pub fn tasks(&self) -> super::services::tasks::Tasks<'_> {
        super::services::tasks::Tasks {
            pool: &self.pool,
            bus: &self.bus,
            now: self.config.now(),
        }
    }
}

impl FromRef<AppState> for LeptosOptions {
    fn from_ref(state: &AppState) -> Self {
        state.leptos_options.clone()
    }
}

impl FromRef<AppState> for Arc<Sessions> {
    fn from_ref(state: &AppState) -> Self {
        state.sessions.clone()
    }
}

impl FromRef<AppState> for Arc<Config> {
    fn from_ref(state: &AppState) -> Self {
        state.config.clone()
    }
}

impl FromRef<AppState> for AgentState {
    fn from_ref(state: &AppState) -> Self {
        state.agent.clone()
    }
}
