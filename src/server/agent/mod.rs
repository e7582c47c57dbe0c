//! The agent (SPEC §7): one stateless turn per user message, made durable. The turn lifecycle
//! (record, lease, takeover, stop, retry) lives in `turns`; the model/tool loop in
//! `tool_loop`; the prompt is rebuilt from the database by `prompt`; the two models are in
//! `openai` and `offline`. The agent has its own sub-state, `AgentState`.

mod chat_model;
mod model;
mod offline;
mod openai;
mod progress;
mod prompt;
mod tool_loop;
mod turns;
mod undo_tool;

use std::{sync::Arc, time::Duration};

use sqlx::PgPool;
use uuid::Uuid;

pub use chat_model::ChatModel;
pub use model::{ModelError, ModelReply, PromptMessage, ToolCallRequest, ToolSpec};
pub use offline::OfflineModel;
pub use openai::OpenAiModel;
pub use tool_loop::MAX_TOOL_ROUNDS;
pub use turns::{
    decide, retry, send, start_conversation, start_decision, start_edit, start_regenerate,
    start_retry, start_send, stop, stop_turn, turn_task_failed, Decision, Phase, TurnEvent,
    TurnHandle,
};

use super::{bus::EventBus, config::Config, rate_limit::Limits};

/// The agent's settings, read once from the config.
pub struct AgentSettings {
    pub history_limit: i64,
    pub lease: Duration,
    pub sweep_every: Duration,
    pub max_attempts: i32,
    pub turns_per_user: usize,
    /// How long a send waits for the conversation's running turn before giving up.
    pub queue_timeout: Duration,
    /// The clock the task tools read (due dates, repeats).
    pub clock: super::config::Clock,
}

impl AgentSettings {
    pub fn from_config(config: &Config) -> Self {
        Self {
            history_limit: config.history_limit,
            lease: config.turn_lease.max(Duration::from_secs(1)),
            sweep_every: config.turn_sweep.max(Duration::from_millis(100)),
            max_attempts: config.turn_max_attempts.max(1),
            turns_per_user: config.turns_per_user.max(1),
            queue_timeout: Duration::from_secs(120),
            clock: config.clock,
        }
    }
}

/// What the agent needs, and nothing else (a `FromRef` sub-state of the app's state).
#[derive(Clone)]
pub struct AgentState {
    pub pool: PgPool,
    /// The language model: OpenAI-compatible, or the offline assistant.
    pub model: Arc<ChatModel>,
    pub settings: Arc<AgentSettings>,
    pub limits: Arc<Limits>,
    /// Where the turn's live events and stop requests go (Postgres or NATS).
    pub bus: Arc<EventBus>,
    /// This process as a turn owner: a new id at every start, so a restarted process never
    /// mistakes its predecessor's turns for its own.
    pub replica: Uuid,
    /// The MCP tools as offered to the model, listed on the first turn.
    tool_specs: Arc<tokio::sync::OnceCell<Vec<ToolSpec>>>,
    running: Arc<turns::RunningTurns>,
    slots: Arc<turns::Slots>,
    /// Sends in flight by `client_id` (duplicates share one turn).
    inflight: Arc<turns::Inflight>,
    /// Work that must outlive its request (agent turns); drained on graceful shutdown.
    pub background: tokio_util::task::TaskTracker,
}

impl AgentState {
    pub fn new(pool: PgPool, config: &Config, limits: Arc<Limits>, bus: Arc<EventBus>) -> Self {
        Self {
            pool,
            bus,
            model: Arc::new(ChatModel::from_config(config)),
            settings: Arc::new(AgentSettings::from_config(config)),
            limits,
            replica: Uuid::new_v4(),
            tool_specs: Arc::default(),
            running: Arc::default(),
            slots: Arc::default(),
            inflight: Arc::default(),
            background: tokio_util::task::TaskTracker::new(),
        }
    }

    /// Starts the replica's share of turn ownership: the sweeper that takes over turns whose
    /// owner died (first sweep at once, so a restart resumes what it can). Stop requests from
    /// other replicas arrive through `handle_stop` (see `server::listener`).
    pub fn start(&self) {
        tokio::spawn(turns::sweep_forever(self.clone()));
    }

    /// Turns this process runs now.
    pub fn running_turns(&self) -> usize {
        self.running.count()
    }

    /// A stop request from the bus: stops the turn if this process runs it.
    pub fn handle_stop(&self, payload: &str) {
        if let Ok(turn) = payload.parse::<Uuid>() {
            self.running.stop(turn);
        }
    }
}
