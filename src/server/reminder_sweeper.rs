//! This process's part in sending reminders (`services::reminders`): it sleeps until the
//! earliest one owed, sends what is due, and looks again. Every replica does the same; the
//! database decides which one sends each reminder, so a replica that dies leaves its
//! reminders to the others. A task write that makes a reminder owed wakes every replica (the
//! trigger's `NOTIFY`, through `listener`); idle, it reads the database once an hour.

use std::{sync::Arc, time::Duration};

use sqlx::PgPool;
use tokio::sync::Notify;

use super::{bus::EventBus, config::Clock, services::reminders};

/// The longest sleep: a wake-up that was missed (the listener reconnecting) costs at most this.
const LONGEST_SLEEP: Duration = Duration::from_secs(3600);
/// After a failed read or send.
const RETRY: Duration = Duration::from_secs(1);

pub struct ReminderSweeper {
    pub pool: PgPool,
    pub bus: Arc<EventBus>,
    pub clock: Clock,
    /// Notified when a reminder becomes owed (on any replica).
    pub owed: Arc<Notify>,
}

impl ReminderSweeper {
    pub async fn run(self) {
        if self.clock.0.is_some() {
            // CLOCK_AT stops the clock (a test hook): nothing ever comes due.
            tracing::info!("CLOCK_AT is set: no reminders are sent");
            return;
        }
        loop {
            let sleep = match self.sweep().await {
                Ok(sleep) => sleep,
                Err(err) => {
                    tracing::warn!(error = %err, "sending reminders; retrying");
                    RETRY
                }
            };
            tokio::select! {
                _ = tokio::time::sleep(sleep) => {}
                _ = self.owed.notified() => {}
            }
            if self.pool.is_closed() {
                return;
            }
        }
    }

    /// Sends what is due; returns how long to sleep before the next one.
    async fn sweep(&self) -> super::error::AppResult<Duration> {
        loop {
            let now = self.clock.now();
            let sent = reminders::send_due(&self.pool, &self.bus, now).await?;
            if sent > 0 {
                tracing::debug!(sent, "reminders due");
                continue;
            }
            let Some(next) = reminders::next_owed(&self.pool).await? else {
                return Ok(LONGEST_SLEEP);
            };
            // Zero when one came due since the send looked: then it goes in the next round.
            let wait = (next - self.clock.now()).to_std().unwrap_or(Duration::ZERO);
            return Ok(wait.clamp(Duration::from_millis(10), LONGEST_SLEEP));
        }
    }
}
