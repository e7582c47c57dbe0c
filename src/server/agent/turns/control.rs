//! The turns this process runs, so a stop request or a lost lease can interrupt them.

use std::{
    collections::HashMap,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc, Mutex,
    },
};

use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// Interrupts one running turn attempt: stopped by the user, or no longer ours.
#[derive(Default)]
pub struct TurnControl {
    pub token: CancellationToken,
    stopped: AtomicBool,
}

impl TurnControl {
    pub fn stop(&self) {
        self.stopped.store(true, Ordering::SeqCst);
        self.token.cancel();
    }

    /// The lease was lost: another replica runs the turn now.
    pub fn lose(&self) {
        self.token.cancel();
    }

    pub fn was_stopped(&self) -> bool {
        self.stopped.load(Ordering::SeqCst)
    }
}

#[derive(Default)]
pub struct RunningTurns {
    turns: Mutex<HashMap<Uuid, Arc<TurnControl>>>,
}

impl RunningTurns {
    pub fn register(&self, turn: Uuid) -> Arc<TurnControl> {
        let control = Arc::new(TurnControl::default());
        if let Ok(mut turns) = self.turns.lock() {
            turns.insert(turn, control.clone());
        }
        control
    }

    /// How many turns this process runs now.
    pub fn count(&self) -> usize {
        self.turns.lock().map(|t| t.len()).unwrap_or(0)
    }

    pub fn remove(&self, turn: Uuid) {
        if let Ok(mut turns) = self.turns.lock() {
            turns.remove(&turn);
        }
    }

    /// Stops `turn` if this process runs it; says whether it did.
    pub fn stop(&self, turn: Uuid) -> bool {
        let control = self.turns.lock().ok().and_then(|t| t.get(&turn).cloned());
        control.map(|c| c.stop()).is_some()
    }
}
