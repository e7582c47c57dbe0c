//! The turn lifecycle (SPEC §7, made durable): a turn is a record in Postgres from the moment
//! its user message is stored until its reply is; it is run under a lease, taken over and
//! resumed when its owner dies, stopped on request from any replica, and retried honestly
//! (the model sees what earlier attempts already did). Every way a turn can end stores an
//! outcome and clears its progress row.

mod control;
mod lease;
mod slots;

use std::{sync::Arc, time::Duration};

use futures::FutureExt;
use uuid::Uuid;

pub use control::RunningTurns;
pub use lease::{sweep_forever, STOP_CHANNEL};
pub use slots::Slots;

use super::{
    progress::Progress,
    prompt,
    tool_loop::{self, CallSlots, Reply, TurnLog},
    AgentState,
};
use crate::{
    model::{Message, MessageStatus, Role, StopResult, ToolCalls, TurnResult},
    server::{
        error::{AppError, AppResult},
        mcp::InProcessClient,
        services::{
            chat,
            messages::{self, NewMessage},
            turns::{self, Busy, Finished, Turn},
        },
    },
};

/// Sends a message and runs its turn. The turn runs as its own task: if the client
/// disconnects, it still completes and its reply appears on the next poll. Repeating a
/// `client_id` returns the first result (waiting for it if its turn still runs).
pub async fn send(
    agent: &AgentState,
    user: Uuid,
    conversation: Uuid,
    content: &str,
    client_id: Option<Uuid>,
) -> AppResult<TurnResult> {
    start_send(agent, user, conversation, content, client_id)
        .await?
        .await
        .map_err(|err| AppError::Internal(anyhow::anyhow!("agent turn task failed: {err}")))?
}

/// `send` in two steps: everything that can refuse the message (validation, the conversation,
/// rate and turn limits) happens before this returns; the turn then runs as its own task.
pub async fn start_send(
    agent: &AgentState,
    user: Uuid,
    conversation: Uuid,
    content: &str,
    client_id: Option<Uuid>,
) -> AppResult<tokio::task::JoinHandle<AppResult<TurnResult>>> {
    let content = chat::clean_content(content)?;
    chat::get(&agent.pool, user, conversation).await?;
    if let Some(id) = client_id {
        if messages::find_by_client_id(&agent.pool, conversation, id)
            .await?
            .is_some()
        {
            let agent = agent.clone();
            return Ok(tokio::spawn(async move {
                already_sent(&agent, conversation, client_id)
                    .await
                    .unwrap_or_else(|| Err(AppError::NotFound("message".into())))
            }));
        }
    }
    let turn = admit(agent, user, conversation, move |agent| async move {
        // The same client_id may have been sent while this one queued.
        if let Some(sent) = already_sent(&agent, conversation, client_id).await {
            return sent;
        }
        let claimed = claim(&agent, || async {
            let message = NewMessage {
                role: Role::User,
                content: &content,
                tool_calls: None,
                status: MessageStatus::Complete,
                client_id,
            };
            turns::begin(
                &agent.pool,
                user,
                conversation,
                message,
                agent.replica,
                agent.settings.lease,
            )
            .await
        })
        .await;
        let (turn, user_message) = match claimed {
            // Another replica stored the same client_id first: its answer is ours.
            Err(AppError::Conflict(_)) if client_id.is_some() => {
                if let Some(sent) = already_sent(&agent, conversation, client_id).await {
                    return sent;
                }
                return Err(AppError::Conflict(
                    "this message is already being sent".into(),
                ));
            }
            other => other?,
        };
        run(&agent, turn, user_message).await
    })?;
    Ok(turn)
}

/// Admits one more turn of `user` (the send rate and the bound on running + queued turns:
/// 429 past them) and runs `work` as its own task once the conversation's earlier turns in
/// this process are done (waiting holds no database connection).
fn admit<F, Fut>(
    agent: &AgentState,
    user: Uuid,
    conversation: Uuid,
    work: F,
) -> AppResult<tokio::task::JoinHandle<AppResult<TurnResult>>>
where
    F: FnOnce(AgentState) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = AppResult<TurnResult>> + Send,
{
    agent.limits.sends_by_user.check(&user)?;
    let admitted = agent.slots.enter(user, agent.settings.turns_per_user)?;
    let agent = agent.clone();
    Ok(agent.background.clone().spawn(async move {
        let _admitted = admitted;
        let _queued = agent.slots.queue(conversation).await;
        work(agent.clone()).await
    }))
}

/// The result of an earlier send with the same `client_id` (waiting for its reply if its turn
/// still runs), if there was one.
async fn already_sent(
    agent: &AgentState,
    conversation: Uuid,
    client_id: Option<Uuid>,
) -> Option<AppResult<TurnResult>> {
    let found = match messages::find_by_client_id(&agent.pool, conversation, client_id?).await {
        Ok(found) => found?,
        Err(err) => return Some(Err(err)),
    };
    Some(match found {
        (user_message, Some(reply)) => Ok(TurnResult {
            user_message,
            assistant_message: reply,
        }),
        (user_message, None) => wait_for_reply(agent, user_message).await,
    })
}

/// Answers the conversation's last user message again after its turn ended `error` or
/// `stopped` (or never got a reply). No second user message is stored; the model is shown
/// the tool calls the earlier attempts made, so none is repeated.
pub async fn retry(agent: &AgentState, user: Uuid, conversation: Uuid) -> AppResult<TurnResult> {
    chat::get(&agent.pool, user, conversation).await?;
    let turn = admit(agent, user, conversation, move |agent| async move {
        let Some(user_message) = turns::retryable_message(&agent.pool, user, conversation).await?
        else {
            return Err(AppError::Conflict(
                "there is nothing to retry: the last message has its answer".into(),
            ));
        };
        let seq = user_message.seq;
        let (turn, user_message) = claim(&agent, || async {
            let started = turns::begin_again(
                &agent.pool,
                user,
                conversation,
                seq,
                agent.replica,
                agent.settings.lease,
            )
            .await?;
            Ok(started.map(|turn| (turn, user_message.clone())))
        })
        .await?;
        run(&agent, turn, user_message).await
    })?;
    turn.await
        .map_err(|err| AppError::Internal(anyhow::anyhow!("agent turn task failed: {err}")))?
}

/// Starts a turn once no other turn runs in the conversation (on any replica). Waits by
/// sleeping, never on a database connection; gives up after `queue_timeout`.
async fn claim<F, Fut, T>(agent: &AgentState, mut start: F) -> AppResult<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = AppResult<Result<T, Busy>>>,
{
    let deadline = tokio::time::Instant::now() + agent.settings.queue_timeout;
    let mut pause = Duration::from_millis(50);
    loop {
        if let Ok(started) = start().await? {
            return Ok(started);
        }
        if tokio::time::Instant::now() + pause > deadline {
            return Err(AppError::Conflict(
                "another answer is still being written in this conversation; try again when it is done"
                    .into(),
            ));
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_millis(500));
    }
}

/// Stops the conversation's running turn, wherever it runs, and returns its stopped reply.
pub async fn stop(agent: &AgentState, user: Uuid, conversation: Uuid) -> AppResult<StopResult> {
    chat::get(&agent.pool, user, conversation).await?;
    let Some(request) = turns::request_stop(&agent.pool, user, conversation).await? else {
        return Ok(StopResult {
            stopped: false,
            detail: "Nothing is running in this conversation; nothing was stopped.".into(),
            assistant_message: None,
        });
    };
    if !agent.running.stop(request.turn) {
        lease::announce_stop(agent, request.turn).await;
    }
    // The owner ends the turn within moments; an owner that died leaves it to the sweeper.
    let deadline = tokio::time::Instant::now()
        + if request.lease_expired {
            agent.settings.sweep_every + Duration::from_secs(2)
        } else {
            Duration::from_secs(3)
        };
    loop {
        let turn = turns::get(&agent.pool, request.turn).await?;
        if let Some(turn) = turn.filter(|t| !t.is_running()) {
            let message = match turn.reply_seq {
                Some(seq) => messages::message_at(&agent.pool, conversation, seq).await?,
                None => None,
            };
            return Ok(StopResult {
                stopped: true,
                detail: "Stopped. What was written and done so far is kept.".into(),
                assistant_message: message,
            });
        }
        if tokio::time::Instant::now() > deadline {
            return Ok(StopResult {
                stopped: true,
                detail: "Stop requested; the answer ends as soon as the server running it sees the request."
                    .into(),
                assistant_message: None,
            });
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Runs a freshly started turn to its end and returns both messages.
async fn run(agent: &AgentState, turn: Turn, user_message: Message) -> AppResult<TurnResult> {
    match attempt(agent, &turn).await? {
        Finished::Stored(reply) => Ok(TurnResult {
            user_message,
            assistant_message: reply,
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
        finish(agent, &turn, stopped_reply(String::new(), records)).await
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
        finish(agent, &turn, reply).await
    } else {
        attempt(agent, &turn).await
    };
    if let Err(err) = ended {
        tracing::error!(error = %err, turn = %turn.id, "resuming a turn");
    }
}

/// The tool calls recorded by earlier attempts of this very turn.
async fn this_turns_records(agent: &AgentState, turn: &Turn) -> Vec<crate::model::ToolCallRecord> {
    match turns::done_calls(&agent.pool, turn.conversation_id, turn.user_seq).await {
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
    let control = agent.running.register(turn.id);
    let heartbeat = tokio::spawn(lease::heartbeat(agent.clone(), turn.id, control.clone()));
    let log = Arc::new(TurnLog::default());
    let progress = Progress::new(
        agent.pool.clone(),
        turn.user_id,
        turn.conversation_id,
        turn.user_seq,
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
    heartbeat.abort();
    let ended = match reply {
        Some(reply) => finish(agent, turn, reply).await,
        None => Ok(Finished::NotOwner),
    };
    agent.running.remove(turn.id);
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
    Reply {
        content,
        status: MessageStatus::Stopped,
        records,
    }
}

/// The model/tool loop with its prompt rebuilt from the database: the history up to the user
/// message and every call already made answering it.
async fn answer(agent: &AgentState, turn: &Turn, progress: &Progress, log: Arc<TurnLog>) -> Reply {
    progress.report(None).await;
    let loaded = async {
        let history = messages::history(
            &agent.pool,
            turn.conversation_id,
            turn.user_seq,
            agent.settings.history_limit,
        )
        .await?;
        let done = turns::done_calls(&agent.pool, turn.conversation_id, turn.user_seq).await?;
        Ok::<_, AppError>((history, done))
    }
    .await;
    let (history, done) = match loaded {
        Ok(loaded) => loaded,
        Err(err) => {
            tracing::error!(error = %err, "loading a turn's history");
            return Reply::error(
                "I couldn't load this conversation's history. Your message is saved; press Retry to try again.".into(),
                vec![],
            );
        }
    };
    let mine: Vec<_> = done.iter().filter(|d| d.turn_id == turn.id).collect();
    let slots = CallSlots {
        turn: turn.id,
        owner: agent.replica,
        next: mine.iter().map(|d| d.idx + 1).max().unwrap_or(0),
    };
    if let Ok(mut records) = log.records.lock() {
        records.extend(mine.iter().map(|d| d.record.clone()));
    }
    let mcp = match InProcessClient::connect(agent.pool.clone(), turn.user_id).await {
        Ok(client) => client,
        Err(err) => {
            tracing::error!(error = %err, "connecting the MCP client");
            return Reply::error(
                "My task tools are unavailable right now. Your message is saved; press Retry to try again.".into(),
                log.records(),
            );
        }
    };
    let prompt = prompt::build(&history, &done);
    let reply = tool_loop::run(agent, &mcp, progress, prompt, slots, log).await;
    mcp.close().await;
    reply
}

/// Stores the outcome. A database that is briefly away gets a few tries; if it stays away the
/// turn keeps its (lapsing) lease and a sweeper resumes it later: it is never left behind.
async fn finish(agent: &AgentState, turn: &Turn, reply: Reply) -> AppResult<Finished> {
    let tool_calls = (!reply.records.is_empty()).then(|| ToolCalls {
        tool_calls: reply.records.clone(),
    });
    let mut pause = Duration::from_millis(200);
    for try_number in 1.. {
        let stored = turns::finish(
            &agent.pool,
            turn,
            agent.replica,
            &reply.content,
            reply.status,
            tool_calls.as_ref(),
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

/// Waits for the turn answering `user_message` (run by another request or replica) to end.
async fn wait_for_reply(agent: &AgentState, user_message: Message) -> AppResult<TurnResult> {
    let conversation = user_message.conversation_id;
    let deadline =
        tokio::time::Instant::now() + agent.settings.queue_timeout + agent.settings.lease * 2;
    loop {
        let turn = turns::latest_for_message(&agent.pool, conversation, user_message.seq).await?;
        match turn {
            Some(turn) if !turn.is_running() => {
                let reply = match turn.reply_seq {
                    Some(seq) => messages::message_at(&agent.pool, conversation, seq).await?,
                    None => None,
                };
                return match reply {
                    Some(reply) => Ok(TurnResult {
                        user_message,
                        assistant_message: reply,
                    }),
                    None => Err(AppError::NotFound("conversation".into())),
                };
            }
            Some(_) if tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            _ => {
                return Err(AppError::Conflict(
                    "this message's answer is still being written; reload to see it".into(),
                ))
            }
        }
    }
}
