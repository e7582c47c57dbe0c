//! Ownership by lease. The replica running a turn renews its lease while it works; every
//! replica sweeps for turns whose lease expired (their owner died) and takes them over; stop
//! requests reach the owner through the event bus (its heartbeat also sees the flag).

use std::sync::Arc;

use uuid::Uuid;

use super::{control::TurnControl, AgentState};
use crate::server::services::turn_records as records;

/// Renews the lease of one attempt at `turn` until the attempt ends (it holds this task in an
/// abort-on-drop handle, so the heartbeat lives and dies with it); stops the attempt when a
/// stop was requested, and ends it when its lease lapsed or another attempt took the turn over.
pub async fn heartbeat(agent: AgentState, turn: Uuid, attempt: Uuid, control: Arc<TurnControl>) {
    let every = agent.settings.lease / 3;
    loop {
        tokio::time::sleep(every).await;
        match records::renew(&agent.pool, turn, attempt, agent.settings.lease).await {
            Ok(Some(true)) => control.stop(),
            Ok(Some(false)) => {}
            Ok(None) => {
                tracing::warn!(%turn, %attempt, "lost the lease of a running turn attempt; it ends here");
                control.lose();
                return;
            }
            // The database is away: keep trying; if the lease lapses meanwhile another
            // replica resumes the turn and our next renewal finds it gone.
            Err(err) => tracing::warn!(error = %err, %turn, "renewing a turn lease"),
        }
    }
}

/// Takes over turns whose owner stopped renewing, at start-up and then periodically.
pub async fn sweep_forever(agent: AgentState) {
    loop {
        if agent.pool.is_closed() {
            return;
        }
        let running_here = agent.running.ids();
        let claimed = records::claim_expired(
            &agent.pool,
            agent.replica,
            agent.settings.lease,
            16,
            &running_here,
        )
        .await;
        match claimed {
            Ok(claimed) => {
                for turn in claimed {
                    tracing::warn!(turn = %turn.id, attempt = turn.attempts, "taking over an interrupted turn");
                    let agent = agent.clone();
                    agent
                        .background
                        .clone()
                        .spawn(async move { super::resume(&agent, turn).await });
                }
            }
            Err(err) => tracing::warn!(error = %err, "sweeping for interrupted turns"),
        }
        tokio::time::sleep(agent.settings.sweep_every).await;
    }
}

/// Announces a stop request to whichever replica runs `turn`.
pub async fn announce_stop(agent: &AgentState, turn: Uuid) {
    agent.bus.publish_stop(&agent.pool, turn).await;
}
