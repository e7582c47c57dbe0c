//! The one `LISTEN` connection of this process, on its own connection (not taken from the
//! request pool), for every channel replicas talk on: live events (to this process's open
//! streams), stop requests (to the turns it runs) and session revocations (to its cache).
//! When the connection is lost it reconnects, and whatever might have been missed is
//! recovered from the database (streams resync, the session cache starts over).

use std::time::Duration;

use sqlx::postgres::{PgListener, PgPoolOptions};

use std::sync::Arc;

use sqlx::PgPool;

use super::{
    agent::AgentState,
    bus::{LIVE_CHANNEL, STOP_CHANNEL},
    live::StreamFanout,
    services::{reminders, sessions},
    sessions::Sessions,
};

/// Who gets each channel's notifications.
pub struct Receivers {
    pub live: Arc<StreamFanout>,
    pub sessions: Arc<Sessions>,
    pub agent: AgentState,
    /// Woken when a task write makes a reminder owed (`reminder_sweeper`).
    pub reminders_owed: Arc<tokio::sync::Notify>,
}

pub async fn listen_forever(app_pool: PgPool, state: Receivers) {
    // A pool of one, so the listener never takes a connection requests need.
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .min_connections(0)
        .connect_lazy_with((*app_pool.connect_options()).clone());
    // The live and stop channels carry everything on the Postgres bus, and stand in for NATS
    // while it is unreachable.
    let channels = [
        LIVE_CHANNEL,
        STOP_CHANNEL,
        sessions::REVOKED_CHANNEL,
        reminders::OWED_CHANNEL,
    ];
    let mut first = true;
    loop {
        if app_pool.is_closed() {
            return;
        }
        let connected = async {
            let mut listener = PgListener::connect_with(&pool).await?;
            listener.listen_all(channels).await?;
            Ok::<_, sqlx::Error>(listener)
        }
        .await;
        let mut listener = match connected {
            Ok(listener) => listener,
            Err(err) => {
                tracing::warn!(error = %err, "connecting the notification listener; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        if !first {
            state.live.resync_all();
            state.sessions.forget_all();
            state.reminders_owed.notify_one();
        }
        first = false;
        // `try_recv` reports a lost connection (instead of reconnecting silently), so what
        // was missed meanwhile is recovered above.
        let closed = app_pool.close_event();
        tokio::pin!(closed);
        loop {
            let received = tokio::select! {
                // The app's pool closed (shutdown): let go of the listening connection too.
                _ = &mut closed => {
                    drop(listener);
                    pool.close().await;
                    return;
                }
                received = listener.try_recv() => received,
            };
            match received {
                Ok(Some(notification)) => {
                    let payload = notification.payload();
                    match notification.channel() {
                        // Never waits: the fan-out's worker reads stored events.
                        LIVE_CHANNEL => state.live.deliver(None, payload),
                        sessions::REVOKED_CHANNEL => {
                            state.sessions.handle(payload);
                            state.live.close_revoked(payload);
                        }
                        reminders::OWED_CHANNEL => state.reminders_owed.notify_one(),
                        _ => state.agent.handle_stop(payload),
                    }
                }
                Ok(None) => {
                    tracing::warn!("notification listener lost its connection; reconnecting");
                    break;
                }
                Err(err) => {
                    tracing::warn!(error = %err, "notification listener failed; reconnecting");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    break;
                }
            }
        }
    }
}
