//! Admission of turns. Waiting never holds a database connection: sends to one conversation
//! queue on an in-process lock (across replicas the turn record's one-running-turn index
//! decides), and each user has a small bound of running + queued turns, so one user's flood
//! cannot take every slot.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use uuid::Uuid;

use crate::server::error::{AppError, AppResult};

#[derive(Default)]
pub struct Slots {
    per_user: Mutex<HashMap<Uuid, usize>>,
    conversations: Mutex<HashMap<Uuid, Arc<tokio::sync::Mutex<()>>>>,
}

/// One admitted turn of a user; dropping it frees the slot.
pub struct UserSlot {
    slots: Arc<Slots>,
    user: Uuid,
}

impl Drop for UserSlot {
    fn drop(&mut self) {
        if let Ok(mut map) = self.slots.per_user.lock() {
            if let Some(n) = map.get_mut(&self.user) {
                *n -= 1;
                if *n == 0 {
                    map.remove(&self.user);
                }
            }
        }
    }
}

/// The in-process queue position of a turn in its conversation.
pub struct ConversationTurn {
    _guard: tokio::sync::OwnedMutexGuard<()>,
    slots: Arc<Slots>,
    conversation: Uuid,
}

impl Drop for ConversationTurn {
    fn drop(&mut self) {
        if let Ok(mut map) = self.slots.conversations.lock() {
            // Only the map and this guard's lock hold it: nobody queues behind us.
            if map
                .get(&self.conversation)
                .is_some_and(|lock| Arc::strong_count(lock) <= 2)
            {
                map.remove(&self.conversation);
            }
        }
    }
}

impl Slots {
    /// Admits one more turn of `user`, or 429 when `limit` are already running or queued.
    pub fn enter(self: &Arc<Self>, user: Uuid, limit: usize) -> AppResult<UserSlot> {
        let mut map = self
            .per_user
            .lock()
            .map_err(|_| AppError::Internal(anyhow::anyhow!("turn slots poisoned")))?;
        let n = map.entry(user).or_default();
        if *n >= limit {
            return Err(AppError::RateLimited {
                retry_after: Duration::from_secs(2),
            });
        }
        *n += 1;
        Ok(UserSlot {
            slots: self.clone(),
            user,
        })
    }

    /// Waits (without a database connection) for the earlier turns of this process in the
    /// conversation to end.
    pub async fn queue(self: &Arc<Self>, conversation: Uuid) -> ConversationTurn {
        let lock = {
            let mut map = self.conversations.lock().unwrap_or_else(|p| p.into_inner());
            map.entry(conversation).or_default().clone()
        };
        ConversationTurn {
            _guard: lock.lock_owned().await,
            slots: self.clone(),
            conversation,
        }
    }
}
