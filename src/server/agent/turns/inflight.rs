//! Sends in flight in this process by `client_id`, so duplicates of one send (a client
//! resending while the first request is still open) share its turn instead of each taking a
//! slot. Across replicas the database's unique `client_id` decides (see `launch_send`).

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use tokio::sync::OnceCell;
use uuid::Uuid;

use super::handle::Joinable;

/// (user, conversation, client_id): a `client_id` is unique per conversation.
pub type SendKey = (Uuid, Uuid, Uuid);

type Cell = Arc<OnceCell<Joinable>>;

#[derive(Default)]
pub struct Inflight {
    sends: Mutex<HashMap<SendKey, Cell>>,
}

impl Inflight {
    /// The send's cell: the first caller starts it, the others wait for and share it.
    pub(super) fn cell(&self, key: SendKey) -> Cell {
        let mut sends = self.sends.lock().unwrap_or_else(|p| p.into_inner());
        sends.entry(key).or_default().clone()
    }

    /// Whether a send with this key is in flight (or being started) here.
    pub(super) fn contains(&self, key: SendKey) -> bool {
        let sends = self.sends.lock().unwrap_or_else(|p| p.into_inner());
        sends.contains_key(&key)
    }

    /// After a refused start: forgets the cell unless another caller holds it (and may be
    /// starting it now) or it was started.
    pub(super) fn forget_unstarted(&self, key: SendKey, cell: &Cell) {
        let mut sends = self.sends.lock().unwrap_or_else(|p| p.into_inner());
        let ours_alone = sends.get(&key).is_some_and(|c| {
            // The map's reference and the caller's.
            Arc::ptr_eq(c, cell) && c.get().is_none() && Arc::strong_count(c) <= 2
        });
        if ours_alone {
            sends.remove(&key);
        }
    }

    /// A guard the send's task holds: once it ends, its stored result answers resends. It
    /// removes only its own cell (a later send of the key may have its own by then).
    pub(super) fn remove_when_dropped(self: &Arc<Self>, key: SendKey, cell: Cell) -> InflightEntry {
        InflightEntry {
            inflight: self.clone(),
            key,
            cell,
        }
    }
}

pub(super) struct InflightEntry {
    inflight: Arc<Inflight>,
    key: SendKey,
    cell: Cell,
}

impl Drop for InflightEntry {
    fn drop(&mut self) {
        let mut sends = self
            .inflight
            .sends
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if sends
            .get(&self.key)
            .is_some_and(|c| Arc::ptr_eq(c, &self.cell))
        {
            sends.remove(&self.key);
        }
    }
}
