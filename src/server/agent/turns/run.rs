//! Running a turn this process owns: one attempt under a renewed lease (the model/tool loop
//! with its prompt rebuilt from the database), its outcome stored, and the resumption of a
//! turn taken over from a replica that died.

use std::{sync::Arc, time::Duration};

use futures::FutureExt;
use serde_json::Value;

use super::{lease, wait_for_reply};

use super::super::{
    progress::Progress,
    prompt,
    tool_loop::{self, CallSlots, Reply, TurnLog, TurnScope},
    AgentState,
};
use crate::{
    model::{Message, MessageStatus, ToolCalls, TurnResult},
    server::{
        error::{AppError, AppResult},
        mcp::InProcessClient,
        services::{
            activity::Reporter,
            branches,
            messages::{self},
            turn_records::{self as records, Finished, Turn},
        },
    },
};
/// Runs a freshly started turn to its end and returns both messages.
pub(super) async fn run(
    agent: &AgentState,
    turn: Turn,
    user_message: Message,
) -> AppResult<TurnResult> {
    match attempt(agent, &turn).await? {
        Finished::Stored(reply) => Ok(TurnResult::answered(user_message, reply)),
        Finished::Parked(approvals) => Ok(TurnResult {
            user_message,
            assistant_message: None,
            approvals,
        }),
        // Another replica took the turn over (our lease lapsed): its reply is the answer.
        Finished::NotOwner => wait_for_reply(agent, user_message).await,
        Finished::ConversationGone => Err(AppError::NotFound("conversation".into())),
    }
}

/// Continues a turn taken over from a replica that died.
pub async fn resume(agent: &AgentState, turn: Turn) {
    let ended = if turn.stop_requested {
        let records = this_turns_records(agent, &turn).await;
        finish(agent, &turn, stopped_reply(String::new(), records), &[]).await
    } else if turn.attempts > agent.settings.max_attempts {
        let records = this_turns_records(agent, &turn).await;
        let done = if records.is_empty() {
            "Nothing was changed.".to_string()
        } else {
            tool_loop::summary_of(&records)
        };
        let reply = Reply::error(
            format!(
                "Sorry, I couldn't finish this answer: the server working on it stopped {} times. \
                 {done} Your message is saved; press Retry to try again.",
                turn.attempts - 1
            ),
            records,
        );
        finish(agent, &turn, reply, &[]).await
    } else {
        attempt(agent, &turn).await
    };
    if let Err(err) = ended {
        tracing::error!(error = %err, turn = %turn.id, "resuming a turn");
    }
}

/// The tool calls recorded by earlier attempts of this very turn.
async fn this_turns_records(agent: &AgentState, turn: &Turn) -> Vec<crate::model::ToolCallRecord> {
    match records::done_calls(&agent.pool, turn.conversation_id, turn.user_seq).await {
        Ok(done) => done
            .into_iter()
            .filter(|d| d.turn_id == turn.id)
            .map(|d| d.record)
            .collect(),
        Err(err) => {
            tracing::warn!(error = %err, "loading a turn's tool calls");
            vec![]
        }
    }
}

/// One attempt at a turn this process owns: the model/tool loop under a renewed lease, ended
/// by its reply, a stop, a panic, or the loss of the lease; then the outcome is stored.
async fn attempt(agent: &AgentState, turn: &Turn) -> AppResult<Finished> {
    let running = agent.running.register(turn.id);
    let control = running.control.clone();
    let _heartbeat = tokio_util::task::AbortOnDropHandle::new(tokio::spawn(lease::heartbeat(
        agent.clone(),
        turn.id,
        turn.attempt_id,
        control.clone(),
    )));
    let log = Arc::new(TurnLog::default());
    let progress = Progress::new(
        agent.pool.clone(),
        agent.bus.clone(),
        Reporter {
            user: turn.user_id,
            conversation: turn.conversation_id,
            user_seq: turn.user_seq,
            turn: turn.id,
            attempt: turn.attempt_id,
        },
    );
    let work =
        std::panic::AssertUnwindSafe(answer(agent, turn, &progress, log.clone())).catch_unwind();
    let reply = tokio::select! {
        reply = work => match reply {
            Ok(reply) => Some(reply),
            Err(_) => {
                tracing::error!(turn = %turn.id, "agent turn panicked");
                Some(Reply::error(
                    "Sorry, something went wrong on our side while answering. Your message is saved; press Retry to try again.".into(),
                    log.records(),
                ))
            }
        },
        // Dropping the loop drops the model request with it (its connection is closed).
        _ = control.token.cancelled() => control
            .was_stopped()
            .then(|| stopped_reply(progress.spoken(), log.records())),
    };
    let ended = match reply {
        Some(reply) if !reply.parked.is_empty() => park(agent, turn, &reply.parked).await,
        Some(reply) => finish(agent, turn, reply, &log.branch_changes()).await,
        None => Ok(Finished::NotOwner),
    };
    // Unregistered (with the heartbeat) only now: until the outcome is stored, this
    // process's sweeper must not take the turn over.
    drop(running);
    ended
}

fn stopped_reply(partial: String, records: Vec<crate::model::ToolCallRecord>) -> Reply {
    let content = if partial.trim().is_empty() {
        if records.is_empty() {
            "*Stopped before answering.*".to_string()
        } else {
            format!("*Stopped.* {}", tool_loop::summary_of(&records))
        }
    } else {
        partial
    };
    Reply::new(content, MessageStatus::Stopped, records)
}

/// Parks the turn on the calls that wait for approval: it gives up its lease, and its slot
/// once this attempt returns.
async fn park(
    agent: &AgentState,
    turn: &Turn,
    calls: &[records::ParkedCall],
) -> AppResult<Finished> {
    if records::park(&agent.pool, &agent.bus, turn, calls).await? {
        Ok(Finished::Parked(
            calls.iter().map(|c| c.approval.clone()).collect(),
        ))
    } else {
        Ok(Finished::NotOwner)
    }
}

/// Makes the calls the user decided on while the turn was parked (approved ones run, declined
/// ones are recorded as declined), each once at its slot, before the model goes on.
async fn make_decided_calls(
    agent: &AgentState,
    turn: &Turn,
    decided: &[records::DecidedCall],
    mcp: &InProcessClient,
    scope: TurnScope,
    progress: &Progress,
) -> AppResult<()> {
    for call in decided {
        if !call.approved {
            records::record_declined(&agent.pool, turn.user_id, call).await?;
            continue;
        }
        let Value::Object(arguments) = call.arguments.clone() else {
            continue;
        };
        // An attempt that lost the turn meanwhile records nothing (the call's fence); its
        // successor makes the call.
        tokio::join!(
            progress.report(Some(&call.tool_name)),
            tool_loop::call_tool(agent, mcp, scope, &call.tool_name, arguments, &call.slot),
        );
    }
    Ok(())
}

/// The model/tool loop with its prompt rebuilt from the database: the history up to the user
/// message and every call already made answering it.
async fn answer(agent: &AgentState, turn: &Turn, progress: &Progress, log: Arc<TurnLog>) -> Reply {
    // Independent reads, the progress report and the MCP handshake go at once: a turn's
    // start costs one round trip's wait, not five.
    let loaded = async {
        tokio::try_join!(
            messages::history(
                &agent.pool,
                turn.conversation_id,
                turn.user_seq,
                agent.settings.history_limit,
            ),
            records::done_calls(&agent.pool, turn.conversation_id, turn.user_seq),
            branches::changes_elsewhere(
                &agent.pool,
                turn.user_id,
                turn.conversation_id,
                turn.id,
                turn.user_seq,
            ),
            records::at_start(&agent.pool, turn),
        )
    };
    let connect = InProcessClient::connect(
        agent.pool.clone(),
        agent.bus.clone(),
        turn.user_id,
        agent.settings.clock,
    );
    let ((), loaded, connected) = tokio::join!(progress.report(None), loaded, connect);
    let (history, mut done, elsewhere, (policy, decided, zone)) = match loaded {
        Ok(loaded) => loaded,
        Err(err) => {
            tracing::error!(error = %err, "loading a turn's history");
            return Reply::error(
                "I couldn't load this conversation's history. Your message is saved; press Retry to try again.".into(),
                vec![],
            );
        }
    };
    let mcp = match connected {
        Ok(client) => client,
        Err(err) => {
            tracing::error!(error = %err, "connecting the MCP client");
            return Reply::error(
                "My task tools are unavailable right now. Your message is saved; press Retry to try again.".into(),
                log.records(),
            );
        }
    };
    let scope = TurnScope {
        user: turn.user_id,
        conversation: turn.conversation_id,
        policy,
    };
    // A turn continued after the user's decision first makes (or declines) what was decided.
    match make_decided_calls(agent, turn, &decided, &mcp, scope, progress).await {
        Ok(()) if decided.is_empty() => {}
        Ok(()) => match records::done_calls(&agent.pool, turn.conversation_id, turn.user_seq).await
        {
            Ok(reloaded) => done = reloaded,
            Err(err) => tracing::warn!(error = %err, "reloading a turn's calls"),
        },
        Err(err) => {
            tracing::warn!(error = %err, turn = %turn.id, "making the decided calls");
            mcp.close().await;
            return Reply::error(
                "I couldn't make the change you decided on. Your message is saved; press Retry to try again.".into(),
                log.records(),
            );
        }
    }
    let mine: Vec<_> = done.iter().filter(|d| d.turn_id == turn.id).collect();
    let slots = CallSlots {
        turn: turn.id,
        attempt: turn.attempt_id,
        next: mine.iter().map(|d| d.idx + 1).max().unwrap_or(0),
    };
    if let Ok(mut records) = log.records.lock() {
        records.extend(mine.iter().map(|d| d.record.clone()));
    }
    // Earlier answers to this very message are replayed as calls (`done`); changes from
    // other branches are told in words.
    let told: Vec<_> = elsewhere
        .iter()
        .filter(|c| !c.same_message)
        .map(|c| c.change.clone())
        .collect();
    // The answer shows what no earlier answer on its branch showed.
    if let Ok(mut shown) = log.branch_changes.lock() {
        shown.extend(elsewhere.into_iter().filter(|c| !c.shown).map(|c| c.change));
    }
    let now = prompt::LocalNow::of(zone.as_deref(), agent.settings.clock.now());
    let prompt = prompt::build(&history, &done, &told, &now);
    let reply = tool_loop::run(agent, &mcp, progress, scope, prompt, slots, log).await;
    mcp.close().await;
    reply
}

/// Stores the outcome. A database that is briefly away gets a few tries; if it stays away the
/// turn keeps its (lapsing) lease and a sweeper resumes it later: it is never left behind.
async fn finish(
    agent: &AgentState,
    turn: &Turn,
    reply: Reply,
    branch_changes: &[crate::model::BranchChange],
) -> AppResult<Finished> {
    let tool_calls = (!reply.records.is_empty()).then(|| ToolCalls {
        tool_calls: reply.records.clone(),
    });
    let mut pause = Duration::from_millis(200);
    for try_number in 1.. {
        let stored = records::finish(
            &agent.pool,
            &agent.bus,
            turn,
            &reply.content,
            reply.status,
            tool_calls.as_ref(),
            branch_changes,
        )
        .await;
        match stored {
            Err(AppError::Internal(err)) if try_number < 5 => {
                tracing::warn!(error = %err, turn = %turn.id, "storing a turn's reply; retrying");
                tokio::time::sleep(pause).await;
                pause *= 2;
            }
            other => return other,
        }
    }
    unreachable!("the loop returns")
}
