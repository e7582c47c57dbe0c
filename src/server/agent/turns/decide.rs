//! The user's decision on a call a parked turn waits for (issue #24). The decision is stored
//! first; the last one takes the turn for this replica, which then runs it like any turn (a
//! new attempt under a lease, in an admitted slot): the approved calls are made, the declined
//! ones recorded, and the model goes on.

use uuid::Uuid;

use super::{admit, launch_admitted, run, TurnHandle};
use crate::{
    model::{DecisionResult, Message, PendingApproval},
    server::{
        agent::AgentState,
        error::{AppError, AppResult},
        services::{
            messages,
            turn_records::{self as records, Decided},
        },
    },
};

/// What a decision started.
pub struct Decision {
    pub approved: bool,
    /// The turn's calls still waiting.
    pub pending: Vec<PendingApproval>,
    /// Once none waits: the user message the turn answers and the continued turn.
    pub turn: Option<(Message, TurnHandle)>,
}

/// Decides on call `call_id` of the conversation's parked turn (`None`: on every call that
/// waits, together); the last decision continues the turn as its own task. 404: not the
/// user's conversation; 409: nothing waits, or the call was decided already; 429: the user's
/// turn limits (checked before anything changes).
pub async fn start_decision(
    agent: &AgentState,
    user: Uuid,
    conversation: Uuid,
    call_id: Option<&str>,
    approve: bool,
) -> AppResult<Decision> {
    let admitted = admit(agent, user).await?;
    let decided = records::decide(
        &agent.pool,
        &agent.bus,
        user,
        conversation,
        call_id,
        approve,
        (agent.replica, agent.settings.lease),
    )
    .await?;
    let turn = match decided {
        Decided::Waiting(pending) => {
            return Ok(Decision {
                approved: approve,
                pending,
                turn: None,
            })
        }
        Decided::Resumed(turn) => turn,
    };
    let user_message = messages::message_at(&agent.pool, conversation, turn.user_seq)
        .await?
        .ok_or_else(|| AppError::NotFound("message".into()))?;
    let answered = user_message.clone();
    let (joined, canceller) = launch_admitted(
        agent,
        admitted,
        user,
        conversation,
        move |agent, phase| async move {
            if phase.begin_storing() {
                phase.started(turn.id, answered.clone());
            }
            run(&agent, turn, answered).await
        },
    )?;
    Ok(Decision {
        approved: approve,
        pending: vec![],
        turn: Some((
            user_message,
            TurnHandle::new(conversation, joined, Some(canceller)),
        )),
    })
}

/// `start_decision`, waiting for the continued turn's answer (or its next approvals).
pub async fn decide(
    agent: &AgentState,
    user: Uuid,
    conversation: Uuid,
    call_id: Option<&str>,
    approve: bool,
) -> AppResult<DecisionResult> {
    let decision = start_decision(agent, user, conversation, call_id, approve).await?;
    let turn = match decision.turn {
        Some((_, handle)) => Some(handle.result().await?),
        None => None,
    };
    Ok(DecisionResult {
        approved: decision.approved,
        pending: decision.pending,
        turn,
    })
}
