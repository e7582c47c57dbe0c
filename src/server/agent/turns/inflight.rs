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

/// (user, client_id).
pub type SendKey = (Uuid, Uuid);

#[derive(Default)]
pub struct Inflight {
    sends: Mutex<HashMap<SendKey, Arc<OnceCell<Joinable>>>>,
}

impl Inflight {
    /// The send's cell: the first caller starts it, the others wait for and share it.
    pub(super) fn cell(&self, key: SendKey) -> Arc<OnceCell<Joinable>> {
        let mut sends = self.sends.lock().unwrap_or_else(|p| p.into_inner());
        sends.entry(key).or_default().clone()
    }

    /// After a refused start: forgets the cell unless someone started it meanwhile.
    pub(super) fn forget_unstarted(&self, key: SendKey, cell: &Arc<OnceCell<Joinable>>) {
        let mut sends = self.sends.lock().unwrap_or_else(|p| p.into_inner());
        if sends
            .get(&key)
            .is_some_and(|c| Arc::ptr_eq(c, cell) && c.get().is_none())
        {
            sends.remove(&key);
        }
    }

    /// A guard the send's task holds: once it ends, its stored result answers resends.
    pub(super) fn remove_when_dropped(self: &Arc<Self>, key: SendKey) -> InflightEntry {
        InflightEntry {
            inflight: self.clone(),
            key,
        }
    }
}

pub(super) struct InflightEntry {
    inflight: Arc<Inflight>,
    key: SendKey,
}

impl Drop for InflightEntry {
    fn drop(&mut self) {
        if let Ok(mut sends) = self.inflight.sends.lock() {
            sends.remove(&self.key);
        }
    }
}
