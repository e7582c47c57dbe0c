//! The turn attempts this process runs, so a stop request or a lost lease can interrupt them,
//! and the sweeper never takes over a turn this process still runs.

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

    /// The lease was lost (it lapsed, or another attempt took the turn over).
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

/// One registered attempt; dropping it (the attempt ended, or its task was dropped)
/// unregisters it.
pub struct RunningTurn {
    pub control: Arc<TurnControl>,
    turns: Arc<RunningTurns>,
    turn: Uuid,
}

impl Drop for RunningTurn {
    fn drop(&mut self) {
        if let Ok(mut turns) = self.turns.turns.lock() {
            if turns
                .get(&self.turn)
                .is_some_and(|c| Arc::ptr_eq(c, &self.control))
            {
                turns.remove(&self.turn);
            }
        }
    }
}

impl RunningTurns {
    pub fn register(self: &Arc<Self>, turn: Uuid) -> RunningTurn {
        let control = Arc::new(TurnControl::default());
        if let Ok(mut turns) = self.turns.lock() {
            turns.insert(turn, control.clone());
        }
        RunningTurn {
            control,
            turns: self.clone(),
            turn,
        }
    }

    /// How many turns this process runs now.
    pub fn count(&self) -> usize {
        self.turns.lock().map(|t| t.len()).unwrap_or(0)
    }

    /// The turns this process runs now.
    pub fn ids(&self) -> Vec<Uuid> {
        self.turns
            .lock()
            .map(|t| t.keys().copied().collect())
            .unwrap_or_default()
    }

    /// Stops `turn` if this process runs it; says whether it did.
    pub fn stop(&self, turn: Uuid) -> bool {
        let control = self.turns.lock().ok().and_then(|t| t.get(&turn).cloned());
        control.map(|c| c.stop()).is_some()
    }
}
