//! The turn lifecycle (SPEC §7, made durable): a turn is a record in Postgres from the moment
//! its user message is stored until its reply is; it is run under a lease, taken over and
//! resumed when its owner dies, stopped on request from any replica, and retried honestly
//! (the model sees what earlier attempts already did). Every way a turn can end stores an
//! outcome and clears its progress row.

mod control;
mod lease;
mod run;
mod slots;

use std::time::Duration;

use uuid::Uuid;

pub use control::RunningTurns;
pub use lease::sweep_forever;
pub use run::resume;
use run::run;
pub use slots::Slots;

use super::AgentState;
use crate::{
    model::{Message, MessageStatus, Role, StopResult, TurnResult},
    server::{
        error::{AppError, AppResult},
        services::{
            chat,
            messages::{self, NewMessage},
            turns::{self, Busy},
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
                &agent.bus,
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
    })
    .await?;
    Ok(turn)
}

/// Starts a conversation with its first message: `start_send` into a new conversation (or,
/// for a resent `client_id`, the one it first created). A new conversation whose message is
/// refused (limits) is deleted again, so a refusal leaves nothing behind.
pub async fn start_conversation(
    agent: &AgentState,
    user: Uuid,
    content: &str,
    client_id: Option<Uuid>,
) -> AppResult<(
    crate::model::Conversation,
    tokio::task::JoinHandle<AppResult<TurnResult>>,
)> {
    chat::clean_content(content)?;
    let existing = match client_id {
        Some(id) => chat::conversation_of_client_id(&agent.pool, user, id).await?,
        None => None,
    };
    let created = existing.is_none();
    let conversation = match existing {
        Some(conversation) => conversation,
        None => chat::create(&agent.pool, &agent.bus, user, None).await?,
    };
    match start_send(agent, user, conversation.id, content, client_id).await {
        Ok(turn) => Ok((conversation, turn)),
        Err(err) => {
            if created {
                if let Err(cleanup) =
                    chat::delete(&agent.pool, &agent.bus, user, conversation.id).await
                {
                    tracing::warn!(error = %cleanup, "removing a refused new conversation");
                }
            }
            Err(err)
        }
    }
}

/// Admits one more turn of `user` (the send rate and the bound on running + queued turns:
/// 429 past them) and runs `work` as its own task once the conversation's earlier turns in
/// this process are done (waiting holds no database connection).
async fn admit<F, Fut>(
    agent: &AgentState,
    user: Uuid,
    conversation: Uuid,
    work: F,
) -> AppResult<tokio::task::JoinHandle<AppResult<TurnResult>>>
where
    F: FnOnce(AgentState) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = AppResult<TurnResult>> + Send,
{
    agent.limits.sends_by_user.check(&user).await?;
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
    start_retry(agent, user, conversation, None)
        .await?
        .1
        .await
        .map_err(|err| AppError::Internal(anyhow::anyhow!("agent turn task failed: {err}")))?
}

/// `retry` in two steps, like `start_send`: the refusals (not found, nothing to retry, limits)
/// come before this returns, with the user message being answered; the turn then runs as its
/// own task. `expected`, when given, is the user message the caller means to retry: only
/// the last one can be.
pub async fn start_retry(
    agent: &AgentState,
    user: Uuid,
    conversation: Uuid,
    expected: Option<Uuid>,
) -> AppResult<(Message, tokio::task::JoinHandle<AppResult<TurnResult>>)> {
    chat::get(&agent.pool, user, conversation).await?;
    let Some(retried) = turns::retryable_message(&agent.pool, user, conversation).await? else {
        return Err(nothing_to_retry());
    };
    if turns::running_in(&agent.pool, conversation).await? {
        return Err(AppError::Conflict(
            "an answer is still being written in this conversation; stop it or wait for it before retrying"
                .into(),
        ));
    }
    if expected.is_some_and(|id| id != retried.id) {
        return Err(AppError::Conflict(
            "only the last message can be answered again, and only when its answer failed or was stopped"
                .into(),
        ));
    }
    let turn = admit(agent, user, conversation, move |agent| async move {
        // Checked again: another request may have retried it while this one queued.
        let Some(user_message) = turns::retryable_message(&agent.pool, user, conversation).await?
        else {
            return Err(nothing_to_retry());
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
    })
    .await?;
    Ok((retried, turn))
}

fn nothing_to_retry() -> AppError {
    AppError::Conflict("there is nothing to retry: the last message has its answer".into())
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

/// Stops the turn answering the user message at `user_seq`, if that is the one running (a
/// client that gave up on its own answer must not stop a later one).
pub async fn stop_answer(
    agent: &AgentState,
    user: Uuid,
    conversation: Uuid,
    user_seq: i64,
) -> AppResult<()> {
    let running = turns::latest_for_message(&agent.pool, conversation, user_seq)
        .await?
        .is_some_and(|turn| turn.is_running());
    if running {
        stop(agent, user, conversation).await?;
    }
    Ok(())
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
