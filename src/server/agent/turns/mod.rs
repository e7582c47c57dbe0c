//! The turn lifecycle (SPEC §7, made durable): a turn is a record in Postgres from the moment
//! its user message is stored until its reply is; it is run under a lease, taken over and
//! resumed when its owner dies, stopped on request from any replica, and retried honestly
//! (the model sees what earlier attempts already did). Every way a turn can end stores an
//! outcome and clears its progress row. Starting a send or a retry returns a `TurnHandle`.

mod control;
mod decide;
mod handle;
mod inflight;
mod lease;
mod run;
mod slots;

use std::time::Duration;

use futures::FutureExt;
use tokio::sync::watch;
use uuid::Uuid;

pub use control::RunningTurns;
pub use decide::{decide, start_decision, Decision};
pub use handle::{Phase, TurnEvent, TurnHandle};
pub use inflight::Inflight;
pub use lease::sweep_forever;
pub use run::resume;
use run::run;
pub use slots::Slots;

use handle::{cancelled, Canceller, Joinable, PhaseTx};

use super::AgentState;
use crate::{
    model::{Conversation, Message, MessageStatus, Role, StopResult, TurnResult},
    server::{
        error::{AppError, AppResult},
        services::{
            chat,
            messages::{self, NewMessage, Parent},
            turn_records::{self as records, Again, Busy, Retried, StopTarget},
        },
    },
};

/// The one mapping of a turn task that did not return (aborted by a cancel, or panicked
/// outside the attempt's own panic guard) to an error.
pub fn turn_task_failed(err: tokio::task::JoinError) -> AppError {
    if err.is_cancelled() {
        cancelled()
    } else {
        AppError::Internal(anyhow::anyhow!("agent turn task failed: {err}"))
    }
}

/// Sends a message and waits for its reply (see `start_send`).
pub async fn send(
    agent: &AgentState,
    user: Uuid,
    conversation: Uuid,
    content: &str,
    client_id: Option<Uuid>,
) -> AppResult<TurnResult> {
    start_send(agent, user, conversation, content, client_id)
        .await?
        .result()
        .await
}

/// Starts a send: everything that can refuse the message (validation, the conversation,
/// rate and turn limits) happens before this returns; the turn then runs as its own task.
/// Repeating a `client_id` shares the first send: while it runs, every duplicate gets the
/// same handle (one slot, one answer); once it is stored, its stored result at once.
pub async fn start_send(
    agent: &AgentState,
    user: Uuid,
    conversation: Uuid,
    content: &str,
    client_id: Option<Uuid>,
) -> AppResult<TurnHandle> {
    let content = chat::clean_content(content)?;
    chat::get(&agent.pool, user, conversation).await?;
    start_message(
        agent,
        user,
        conversation,
        content,
        client_id,
        Parent::Current,
    )
    .await
}

/// Edits a sent user message: a new message beside it (the same parent), which becomes the
/// current leaf and is answered by a turn whose prompt is the path to it. Like a send in
/// everything else (limits, `client_id`, one turn at a time).
pub async fn start_edit(
    agent: &AgentState,
    user: Uuid,
    conversation: Uuid,
    message: Uuid,
    content: &str,
    client_id: Option<Uuid>,
) -> AppResult<TurnHandle> {
    let content = chat::clean_content(content)?;
    let edited = messages::by_id(&agent.pool, user, conversation, message).await?;
    if edited.role != Role::User {
        return Err(AppError::validation(
            "only a user message can be edited; to get another answer, regenerate it",
        ));
    }
    let parent = Parent::Message(edited.parent_id);
    start_message(agent, user, conversation, content, client_id, parent).await
}

/// A user message to store and answer, at `parent` in the tree.
async fn start_message(
    agent: &AgentState,
    user: Uuid,
    conversation: Uuid,
    content: String,
    client_id: Option<Uuid>,
    parent: Parent,
) -> AppResult<TurnHandle> {
    let Some(client_id) = client_id else {
        let (joined, canceller) =
            launch_send(agent, user, conversation, content, None, parent, None).await?;
        return Ok(TurnHandle::new(conversation, joined, Some(canceller)));
    };
    if let Some(found) = messages::find_by_client_id(&agent.pool, conversation, client_id).await? {
        return Ok(TurnHandle::new(
            conversation,
            stored_send(agent, found).await?,
            None,
        ));
    }
    let key = (user, conversation, client_id);
    let cell = agent.inflight.cell(key);
    let mut canceller = None;
    let joined = cell
        .get_or_try_init(|| async {
            let entry = agent.inflight.remove_when_dropped(key, cell.clone());
            let (joined, started) = launch_send(
                agent,
                user,
                conversation,
                content,
                Some(client_id),
                parent,
                Some(entry),
            )
            .await?;
            canceller = Some(started);
            Ok::<_, AppError>(joined)
        })
        .await
        .cloned();
    match joined {
        Ok(joined) => Ok(TurnHandle::new(conversation, joined, canceller)),
        Err(err) => {
            agent.inflight.forget_unstarted(key, &cell);
            Err(err)
        }
    }
}

/// A send found stored (by its `client_id`): its result, at once if it has its reply, else
/// once the turn answering it (run by another replica, or resumed) ends.
async fn stored_send(agent: &AgentState, found: (Message, Option<Message>)) -> AppResult<Joinable> {
    let (user_message, reply) = found;
    // No canceller reads the turn id of a stored send (a resend cannot cancel it): none is
    // looked up.
    let phase = watch::channel(Phase::Started {
        turn: Uuid::nil(),
        user_message: user_message.clone(),
    })
    .1;
    let result = match reply {
        Some(reply) => {
            futures::future::ready(Ok(TurnResult::answered(user_message, reply))).boxed()
        }
        None => {
            let agent = agent.clone();
            async move { wait_for_reply(&agent, user_message).await }.boxed()
        }
    };
    Ok(Joinable {
        phase,
        result: result.shared(),
    })
}

/// Admits a send and starts its task. `entry`, a send's place among those in flight, is held
/// by the task (dropped with it even if it never runs): its end frees the place.
async fn launch_send(
    agent: &AgentState,
    user: Uuid,
    conversation: Uuid,
    content: String,
    client_id: Option<Uuid>,
    parent: Parent,
    entry: Option<inflight::InflightEntry>,
) -> AppResult<(Joinable, Canceller)> {
    launch(agent, user, conversation, move |agent, phase| async move {
        let _entry = entry;
        // The same client_id may have been stored (by another replica) while this one queued.
        if let Some(sent) = already_sent(&agent, conversation, client_id).await {
            return sent;
        }
        let claimed = claim(&agent, (user, conversation), || async {
            if !phase.begin_storing() {
                return Err(cancelled());
            }
            let message = NewMessage {
                role: Role::User,
                content: &content,
                tool_calls: None,
                status: MessageStatus::Complete,
                client_id,
                parent,
                branch_changes: &[],
            };
            let begun = records::begin(
                &agent.pool,
                &agent.bus,
                user,
                conversation,
                message,
                agent.replica,
                agent.settings.lease,
            )
            .await;
            match &begun {
                Ok(Ok((turn, user_message))) => phase.started(turn.id, user_message.clone()),
                _ => phase.not_stored(),
            }
            begun
        })
        .await;
        let (turn, user_message) = match claimed {
            // Another replica stored the same client_id first: its answer is ours.
            Err(err @ AppError::Conflict(_)) if client_id.is_some() && !phase.was_cancelled() => {
                if let Some(sent) = already_sent(&agent, conversation, client_id).await {
                    return sent;
                }
                return Err(err);
            }
            other => other?,
        };
        run(&agent, turn, user_message).await
    })
    .await
}

/// Starts a conversation with its first message: `start_send` into a new conversation. With a
/// `client_id` the conversation's id derives from it, so resends (concurrent ones, on any
/// replica) find the one conversation the first created. A new conversation whose message is
/// refused (limits) is removed again, so a refusal leaves nothing behind.
pub async fn start_conversation(
    agent: &AgentState,
    user: Uuid,
    content: &str,
    client_id: Option<Uuid>,
) -> AppResult<(Conversation, TurnHandle)> {
    chat::clean_content(content)?;
    let (conversation, created) = match client_id {
        Some(id) => chat::create_for_first_message(&agent.pool, &agent.bus, user, id).await?,
        None => (
            chat::create(&agent.pool, &agent.bus, user, None).await?,
            true,
        ),
    };
    match start_send(agent, user, conversation.id, content, client_id).await {
        Ok(turn) => Ok((conversation, turn)),
        Err(err) => {
            // A resend sharing this conversation may still be starting: it is not empty then.
            let resent =
                client_id.is_some_and(|id| agent.inflight.contains((user, conversation.id, id)));
            if created && !resent {
                if let Err(cleanup) =
                    chat::discard_if_empty(&agent.pool, &agent.bus, user, conversation.id).await
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
async fn launch<F, Fut>(
    agent: &AgentState,
    user: Uuid,
    conversation: Uuid,
    work: F,
) -> AppResult<(Joinable, Canceller)>
where
    F: FnOnce(AgentState, PhaseTx) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = AppResult<TurnResult>> + Send,
{
    let admitted = admit(agent, user).await?;
    launch_admitted(agent, admitted, user, conversation, work)
}

/// Admits one more turn of `user`: the send rate and the bound on running + queued turns.
async fn admit(agent: &AgentState, user: Uuid) -> AppResult<slots::UserSlot> {
    agent.limits.sends_by_user.check(&user).await?;
    agent.slots.enter(user, agent.settings.turns_per_user)
}

/// `launch` of a turn already admitted.
fn launch_admitted<F, Fut>(
    agent: &AgentState,
    admitted: slots::UserSlot,
    user: Uuid,
    conversation: Uuid,
    work: F,
) -> AppResult<(Joinable, Canceller)>
where
    F: FnOnce(AgentState, PhaseTx) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = AppResult<TurnResult>> + Send,
{
    let (phase_tx, phase_rx) = watch::channel(Phase::Waiting);
    let phase = PhaseTx(phase_tx.clone());
    let task = {
        let agent = agent.clone();
        agent.background.clone().spawn(async move {
            let _admitted = admitted;
            let _queued = agent.slots.queue(conversation).await;
            work(agent.clone(), phase).await
        })
    };
    let canceller = Canceller {
        agent: agent.clone(),
        user,
        conversation,
        phase: phase_tx,
        task: task.abort_handle(),
        armed: true,
    };
    let result = async move { task.await.map_err(turn_task_failed)? }
        .boxed()
        .shared();
    Ok((
        Joinable {
            phase: phase_rx,
            result,
        },
        canceller,
    ))
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
        (user_message, Some(reply)) => Ok(TurnResult::answered(user_message, reply)),
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
        .result()
        .await
}

/// `retry` in two steps, like `start_send`: the refusals (not found, nothing to retry, limits)
/// come before this returns, with the user message being answered; the turn then runs as its
/// own task. `expected`, when given, is the user message the caller means to retry: only
/// the last one can be. Retries racing each other (on any replica) start one turn: the others
/// get its answer.
pub async fn start_retry(
    agent: &AgentState,
    user: Uuid,
    conversation: Uuid,
    expected: Option<Uuid>,
) -> AppResult<(Message, TurnHandle)> {
    chat::get(&agent.pool, user, conversation).await?;
    let Some((retried, seen_turn)) =
        records::retryable_message(&agent.pool, user, conversation).await?
    else {
        return Err(nothing_to_retry());
    };
    if records::running_in(&agent.pool, conversation).await? {
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
    let user_message = retried.clone();
    let (joined, canceller) = launch(agent, user, conversation, move |agent, phase| async move {
        let seq = user_message.seq;
        let started = claim(&agent, (user, conversation), || async {
            if !phase.begin_storing() {
                return Err(cancelled());
            }
            let begun = records::begin_again(
                &agent.pool,
                &agent.bus,
                user,
                conversation,
                seq,
                Again::Retry { seen_turn },
                (agent.replica, agent.settings.lease),
            )
            .await;
            match &begun {
                Ok(Retried::Started(turn)) => phase.started(turn.id, user_message.clone()),
                _ => phase.not_stored(),
            }
            match begun? {
                Retried::Started(turn) => Ok(Ok(Some(turn))),
                Retried::Busy => Ok(Err(Busy)),
                Retried::AlreadyRetried => Ok(Ok(None)),
                Retried::NothingToRetry => Err(nothing_to_retry()),
            }
        })
        .await?;
        match started {
            Some(turn) => run(&agent, turn, user_message).await,
            // Another retry of this message runs (or ran): its answer is this one's.
            None => wait_for_reply(&agent, user_message).await,
        }
    })
    .await?;
    Ok((
        retried,
        TurnHandle::new(conversation, joined, Some(canceller)),
    ))
}

/// Another answer to the user message `message` (an assistant message) answered: a new
/// sibling of it, current from then on, written by a normal durable turn. The model is shown
/// what the earlier answers did (their calls, and other branches' changes), so nothing is
/// done twice. A `client_id` makes resends share the first request's turn.
pub async fn start_regenerate(
    agent: &AgentState,
    user: Uuid,
    conversation: Uuid,
    message: Uuid,
    client_id: Option<Uuid>,
) -> AppResult<(Message, TurnHandle)> {
    let answer = messages::by_id(&agent.pool, user, conversation, message).await?;
    if answer.role != Role::Assistant {
        return Err(AppError::validation(
            "only an answer can be regenerated; to change a message you sent, edit it",
        ));
    }
    let Some(parent) = answer.parent_id else {
        return Err(AppError::validation("this answer follows no message"));
    };
    let user_message = messages::by_id(&agent.pool, user, conversation, parent).await?;
    let Some(client_id) = client_id else {
        let (joined, canceller) =
            launch_regenerate(agent, user, conversation, user_message.clone(), None, None).await?;
        return Ok((
            user_message,
            TurnHandle::new(conversation, joined, Some(canceller)),
        ));
    };
    if records::by_client_id(&agent.pool, conversation, client_id)
        .await?
        .is_some()
    {
        let found = regenerated(agent, user_message.clone(), conversation, client_id).await?;
        return Ok((user_message, TurnHandle::new(conversation, found, None)));
    }
    // Duplicates in this process share the first request's turn (one slot, one answer).
    let key = (user, conversation, client_id);
    let cell = agent.inflight.cell(key);
    let mut canceller = None;
    let joined = cell
        .get_or_try_init(|| async {
            let entry = agent.inflight.remove_when_dropped(key, cell.clone());
            let (joined, started) = launch_regenerate(
                agent,
                user,
                conversation,
                user_message.clone(),
                Some(client_id),
                Some(entry),
            )
            .await?;
            canceller = Some(started);
            Ok::<_, AppError>(joined)
        })
        .await
        .cloned();
    match joined {
        Ok(joined) => Ok((
            user_message,
            TurnHandle::new(conversation, joined, canceller),
        )),
        Err(err) => {
            agent.inflight.forget_unstarted(key, &cell);
            Err(err)
        }
    }
}

/// Admits a regeneration and starts its task (see `launch_send` for `entry`).
async fn launch_regenerate(
    agent: &AgentState,
    user: Uuid,
    conversation: Uuid,
    answered: Message,
    client_id: Option<Uuid>,
    entry: Option<inflight::InflightEntry>,
) -> AppResult<(Joinable, Canceller)> {
    launch(agent, user, conversation, move |agent, phase| async move {
        let _entry = entry;
        let seq = answered.seq;
        let started = claim(&agent, (user, conversation), || async {
            if !phase.begin_storing() {
                return Err(cancelled());
            }
            let begun = records::begin_again(
                &agent.pool,
                &agent.bus,
                user,
                conversation,
                seq,
                Again::Regenerate { client_id },
                (agent.replica, agent.settings.lease),
            )
            .await;
            match &begun {
                Ok(Retried::Started(turn)) => phase.started(turn.id, answered.clone()),
                _ => phase.not_stored(),
            }
            match begun? {
                Retried::Started(turn) => Ok(Ok(Some(turn))),
                Retried::Busy => Ok(Err(Busy)),
                // The same client_id started a turn first (another replica).
                Retried::AlreadyRetried | Retried::NothingToRetry => Ok(Ok(None)),
            }
        })
        .await?;
        match started {
            Some(turn) => run(&agent, turn, answered).await,
            None => wait_for_reply(&agent, answered).await,
        }
    })
    .await
}

/// The result of the regeneration `client_id` started: its stored answer, or the answer once
/// its turn ends.
async fn regenerated(
    agent: &AgentState,
    user_message: Message,
    conversation: Uuid,
    client_id: Uuid,
) -> AppResult<Joinable> {
    let turn = records::by_client_id(&agent.pool, conversation, client_id).await?;
    if turn
        .as_ref()
        .is_some_and(|t| t.user_seq != user_message.seq)
    {
        return Err(AppError::Conflict(
            "this client_id was already used to answer another message".into(),
        ));
    }
    let reply = match turn.as_ref().and_then(|t| t.reply_seq) {
        Some(seq) => messages::message_at(&agent.pool, conversation, seq).await?,
        None => None,
    };
    stored_send(agent, (user_message, reply)).await
}

fn nothing_to_retry() -> AppError {
    AppError::Conflict("there is nothing to retry: the last message has its answer".into())
}

/// Starts a turn once no other turn runs in the conversation (on any replica). Waits by
/// sleeping, never on a database connection; gives up after `queue_timeout`. A turn parked on
/// the user's decision does not make it wait: moving on declines what it waits for.
async fn claim<F, Fut, T>(
    agent: &AgentState,
    (user, conversation): (Uuid, Uuid),
    mut start: F,
) -> AppResult<T>
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
        let why = "because a new message was sent before it was approved";
        let declined = records::decline_parked(&agent.pool, &agent.bus, user, conversation, why);
        if declined.await?.is_some() {
            continue;
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
    let Some(request) =
        records::request_stop(&agent.pool, user, StopTarget::InConversation(conversation)).await?
    else {
        let why = "because the answer was stopped before it was approved";
        let declined = records::decline_parked(&agent.pool, &agent.bus, user, conversation, why);
        if let Some(reply) = declined.await? {
            return Ok(StopResult {
                stopped: true,
                detail: "Stopped. Nothing that waited for your approval was done.".into(),
                assistant_message: Some(reply),
            });
        }
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
        let turn = records::get(&agent.pool, request.turn).await?;
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

/// Asks one named turn to stop, wherever it runs (a consumer that left its own turn's stream
/// must not stop a later one). Does not wait for the stopped reply.
pub async fn stop_turn(agent: &AgentState, user: Uuid, turn: Uuid) -> AppResult<()> {
    if let Some(request) = records::request_stop(&agent.pool, user, StopTarget::Turn(turn)).await? {
        if !agent.running.stop(request.turn) {
            lease::announce_stop(agent, request.turn).await;
        }
    }
    Ok(())
}

/// Waits for the turn answering `user_message` (run by another request or replica) to end.
async fn wait_for_reply(agent: &AgentState, user_message: Message) -> AppResult<TurnResult> {
    let conversation = user_message.conversation_id;
    let deadline =
        tokio::time::Instant::now() + agent.settings.queue_timeout + agent.settings.lease * 2;
    loop {
        let turn = records::latest_for_message(&agent.pool, conversation, user_message.seq).await?;
        match turn {
            Some(turn) if !turn.is_running() => {
                let reply = match turn.reply_seq {
                    Some(seq) => messages::message_at(&agent.pool, conversation, seq).await?,
                    None => None,
                };
                if turn.is_parked() {
                    let (_, approvals) = records::pending(&agent.pool, conversation).await?;
                    return Ok(TurnResult {
                        user_message,
                        assistant_message: None,
                        approvals,
                    });
                }
                return match reply {
                    Some(reply) => Ok(TurnResult::answered(user_message, reply)),
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
