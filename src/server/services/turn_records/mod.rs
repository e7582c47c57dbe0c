//! The durable record of agent turns: which user message a turn answers, which attempt runs it
//! (a lease the attempt renews), how it ended, and (in `calls`) every tool call it made. Each
//! write that matters is fenced by the attempt and its lease: an attempt whose lease lapsed or
//! was taken over can no longer renew, record a call or store an answer, whichever process it
//! runs in.

mod approvals;
mod calls;

pub use approvals::{
    at_start, decide, decline_parked, park, pending, record_declined, Decided, DecidedCall,
    ParkedCall,
};
pub use calls::{
    begin_call, done_calls, done_calls_of_turn, CallSlot, CallStart, DoneCall, RecordedCall,
};

use std::time::Duration;

use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use super::messages::{self, NewMessage, Parent};
use crate::{
    model::{Message, MessageStatus, Role},
    server::{
        bus::EventBus,
        error::{AppError, AppResult},
    },
};

const TURN_COLUMNS: &str = "id, conversation_id, user_id, user_seq, state, attempts, \
     stop_requested, reply_seq, attempt_id";

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct Turn {
    pub id: Uuid,
    pub conversation_id: Uuid,
    pub user_id: Uuid,
    pub user_seq: i64,
    pub state: String,
    pub attempts: i32,
    pub stop_requested: bool,
    pub reply_seq: Option<i64>,
    /// This start of the turn (a new id at every takeover): the fence of every write.
    pub attempt_id: Uuid,
}

impl Turn {
    pub fn is_running(&self) -> bool {
        self.state == "running"
    }

    /// Parked on the user's decision (see `approvals`).
    pub fn is_parked(&self) -> bool {
        self.state == "awaiting_approval"
    }
}

/// A new turn could not start because another one runs in the conversation.
pub struct Busy;

fn lease_secs(lease: Duration) -> f64 {
    lease.as_secs_f64()
}

fn is_unique_violation(err: &sqlx::Error, constraint: &str) -> bool {
    matches!(err, sqlx::Error::Database(db) if db.constraint() == Some(constraint))
}

async fn insert_turn(
    tx: &mut PgConnection,
    user: Uuid,
    conversation: Uuid,
    user_seq: i64,
    owner: Uuid,
    lease: Duration,
    client_id: Option<Uuid>,
) -> Result<Turn, sqlx::Error> {
    sqlx::query_as::<_, Turn>(&format!(
        "INSERT INTO turns (id, conversation_id, user_id, user_seq, state, owner, lease_until, attempt_id,
                            client_id)
         VALUES ($1, $2, $3, $4, 'running', $5, clock_timestamp() + make_interval(secs => $6), $7, $8)
         RETURNING {TURN_COLUMNS}"
    ))
    .bind(Uuid::new_v4())
    .bind(conversation)
    .bind(user)
    .bind(user_seq)
    .bind(owner)
    .bind(lease_secs(lease))
    .bind(Uuid::new_v4())
    .bind(client_id)
    .fetch_one(tx)
    .await
}

/// Stores the user message and starts the turn that answers it, in one transaction: there is
/// never a user message without a turn. `Busy` when a turn already runs in the conversation.
pub async fn begin(
    pool: &PgPool,
    bus: &EventBus,
    user: Uuid,
    conversation: Uuid,
    message: NewMessage<'_>,
    owner: Uuid,
    lease: Duration,
) -> AppResult<Result<(Turn, Message), Busy>> {
    let mut tx = pool.begin().await?;
    let (stored, outbox) =
        match messages::append_in(&mut tx, bus, user, conversation, message).await {
            Ok(appended) => appended,
            Err(AppError::Internal(err))
                if err
                    .downcast_ref::<sqlx::Error>()
                    .is_some_and(|e| is_unique_violation(e, "messages_client_id")) =>
            {
                // The same client_id raced in from another request: that one wins.
                return Err(AppError::Conflict(
                    "this message is already being sent".into(),
                ));
            }
            Err(err) => return Err(err),
        };
    match insert_turn(&mut tx, user, conversation, stored.seq, owner, lease, None).await {
        Ok(turn) => {
            tx.commit().await?;
            outbox.publish(bus, pool).await;
            Ok(Ok((turn, stored)))
        }
        Err(err) if is_unique_violation(&err, "turns_one_running") => Ok(Err(Busy)),
        Err(err) => Err(err.into()),
    }
}

/// How starting a retry went.
pub enum Retried {
    Started(Turn),
    /// Another turn runs in the conversation: try again shortly.
    Busy,
    /// Someone else (another request, another replica) retried the message first: its turn is
    /// the answer.
    AlreadyRetried,
    /// The message is no longer the one waiting for an answer on the branch shown (a newer
    /// message was sent, or another branch chosen, meanwhile).
    NothingToRetry,
}

/// Which new answer to an existing user message is being started.
#[derive(Clone, Copy, Debug)]
pub enum Again {
    /// The answer failed or was stopped (or never came): the branch shown must still end at
    /// the message or that answer, and its newest turn must still be `seen_turn` (what the
    /// caller decided on), so two retries racing on two replicas start one turn.
    Retry { seen_turn: Option<Uuid> },
    /// Another answer beside the existing ones, whatever they were.
    Regenerate { client_id: Option<Uuid> },
}

/// Starts a new turn answering an existing user message, under the conversation row's lock.
/// The message becomes the current leaf (its new answer will be, once stored), and the
/// conversation is marked branched when the new answer will have a sibling. The last
/// argument is the replica taking the turn and its lease.
pub async fn begin_again(
    pool: &PgPool,
    bus: &EventBus,
    user: Uuid,
    conversation: Uuid,
    user_seq: i64,
    again: Again,
    (owner, lease): (Uuid, Duration),
) -> AppResult<Retried> {
    let mut tx = pool.begin().await?;
    let locked: Option<Option<Uuid>> = sqlx::query_scalar(
        "SELECT current_message_id FROM conversations
         WHERE id = $1 AND user_id = $2 AND deleted_at IS NULL
         FOR UPDATE",
    )
    .bind(conversation)
    .bind(user)
    .fetch_optional(&mut *tx)
    .await?;
    let Some(current) = locked else {
        return Err(AppError::NotFound("conversation".into()));
    };
    let mut forks = true;
    if let Again::Retry { seen_turn } = again {
        match leaf(&mut tx, conversation, current).await? {
            Some(leaf) if leaf.seq == user_seq && leaf.role == "user" => forks = false,
            Some(leaf)
                if leaf.parent_seq == Some(user_seq)
                    && leaf.role == "assistant"
                    && leaf.status != "complete" => {}
            _ => return Ok(Retried::NothingToRetry),
        }
        let newest: Option<Uuid> = sqlx::query_scalar(
            "SELECT id FROM turns WHERE conversation_id = $1 AND user_seq = $2
             ORDER BY created_at DESC LIMIT 1",
        )
        .bind(conversation)
        .bind(user_seq)
        .fetch_optional(&mut *tx)
        .await?;
        if newest != seen_turn {
            return Ok(Retried::AlreadyRetried);
        }
    }
    let client_id = match again {
        Again::Regenerate { client_id } => client_id,
        Again::Retry { .. } => None,
    };
    let turn = match insert_turn(
        &mut tx,
        user,
        conversation,
        user_seq,
        owner,
        lease,
        client_id,
    )
    .await
    {
        Ok(turn) => turn,
        Err(err) if is_unique_violation(&err, "turns_one_running") => return Ok(Retried::Busy),
        Err(err) if is_unique_violation(&err, "turns_client_id") => {
            return Ok(Retried::AlreadyRetried)
        }
        Err(err) => return Err(err.into()),
    };
    let changed = sqlx::query_as::<_, super::chat::ConversationRow>(&format!(
        "UPDATE conversations
         SET current_message_id = (SELECT id FROM messages WHERE conversation_id = $1 AND seq = $2),
             branched = branched OR $3
         WHERE id = $1
         RETURNING {}",
        super::chat::CONVERSATION_COLUMNS
    ))
    .bind(conversation)
    .bind(user_seq)
    .bind(forks)
    .fetch_one(&mut *tx)
    .await?;
    let outbox = super::events::record(
        &mut tx,
        bus,
        user,
        &crate::model::LiveEvent::Conversation(changed.into()),
    )
    .await?;
    tx.commit().await?;
    outbox.publish(bus, pool).await;
    Ok(Retried::Started(turn))
}

/// The last message of the branch shown (`current`, or the newest message when unset), with
/// the seq of the message it follows.
#[derive(sqlx::FromRow)]
struct Leaf {
    seq: i64,
    role: String,
    status: String,
    parent_seq: Option<i64>,
}

async fn leaf(
    db: &mut PgConnection,
    conversation: Uuid,
    current: Option<Uuid>,
) -> AppResult<Option<Leaf>> {
    Ok(sqlx::query_as::<_, Leaf>(
        "SELECT m.seq, m.role, m.status, p.seq AS parent_seq
         FROM messages m LEFT JOIN messages p ON p.id = m.parent_id
         WHERE m.id = COALESCE($2, (SELECT id FROM messages WHERE conversation_id = $1
                                    ORDER BY seq DESC LIMIT 1))",
    )
    .bind(conversation)
    .bind(current)
    .fetch_optional(db)
    .await?)
}

/// The turn a regeneration with `client_id` started, if one did.
pub async fn by_client_id(
    pool: &PgPool,
    conversation: Uuid,
    client_id: Uuid,
) -> AppResult<Option<Turn>> {
    Ok(sqlx::query_as::<_, Turn>(&format!(
        "SELECT {TURN_COLUMNS} FROM turns WHERE conversation_id = $1 AND client_id = $2"
    ))
    .bind(conversation)
    .bind(client_id)
    .fetch_optional(pool)
    .await?)
}

pub async fn get(pool: &PgPool, id: Uuid) -> AppResult<Option<Turn>> {
    Ok(
        sqlx::query_as::<_, Turn>(&format!("SELECT {TURN_COLUMNS} FROM turns WHERE id = $1"))
            .bind(id)
            .fetch_optional(pool)
            .await?,
    )
}

/// Whether a turn runs in the conversation now.
pub async fn running_in(pool: &PgPool, conversation: Uuid) -> AppResult<bool> {
    Ok(sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM turns WHERE conversation_id = $1 AND state = 'running')",
    )
    .bind(conversation)
    .fetch_one(pool)
    .await?)
}

/// The newest turn answering the user message at `user_seq`.
pub async fn latest_for_message(
    pool: &PgPool,
    conversation: Uuid,
    user_seq: i64,
) -> AppResult<Option<Turn>> {
    Ok(sqlx::query_as::<_, Turn>(&format!(
        "SELECT {TURN_COLUMNS} FROM turns WHERE conversation_id = $1 AND user_seq = $2
         ORDER BY created_at DESC LIMIT 1"
    ))
    .bind(conversation)
    .bind(user_seq)
    .fetch_optional(pool)
    .await?)
}

/// Renews the lease of `attempt`. `None`: the attempt may no longer act (its lease lapsed,
/// another attempt took the turn over, or the turn ended); otherwise whether a stop was
/// requested.
pub async fn renew(
    pool: &PgPool,
    turn: Uuid,
    attempt: Uuid,
    lease: Duration,
) -> AppResult<Option<bool>> {
    Ok(sqlx::query_scalar(
        "UPDATE turns SET lease_until = clock_timestamp() + make_interval(secs => $3)
         WHERE id = $1 AND attempt_id = $2 AND state = 'running' AND lease_until > clock_timestamp()
         RETURNING stop_requested",
    )
    .bind(turn)
    .bind(attempt)
    .bind(lease_secs(lease))
    .fetch_optional(pool)
    .await?)
}

/// Takes over running turns whose attempt let the lease expire (its process died or hung),
/// each with a new attempt id. `running_here`: turns this process still runs an attempt of,
/// which are never taken over by it (that attempt notices the lapse itself and ends first).
pub async fn claim_expired(
    pool: &PgPool,
    owner: Uuid,
    lease: Duration,
    limit: i64,
    running_here: &[Uuid],
) -> AppResult<Vec<Turn>> {
    Ok(sqlx::query_as::<_, Turn>(&format!(
        "UPDATE turns SET owner = $1, lease_until = clock_timestamp() + make_interval(secs => $2),
                attempts = attempts + 1, attempt_id = gen_random_uuid(), updated_at = now()
         WHERE id IN (
             SELECT id FROM turns WHERE state = 'running' AND lease_until < clock_timestamp()
               AND NOT (id = ANY($4))
             ORDER BY lease_until LIMIT $3 FOR UPDATE SKIP LOCKED
         )
         RETURNING {TURN_COLUMNS}"
    ))
    .bind(owner)
    .bind(lease_secs(lease))
    .bind(limit)
    .bind(running_here)
    .fetch_all(pool)
    .await?)
}

/// A running turn that was asked to stop, and whether its lease has expired (its owner died).
pub struct StopRequest {
    pub turn: Uuid,
    pub lease_expired: bool,
}

/// Which running turn a stop is for.
pub enum StopTarget {
    /// Whichever runs in this conversation (the Stop button).
    InConversation(Uuid),
    /// This very turn, if it still runs (a consumer that left its own turn).
    Turn(Uuid),
}

/// Marks the target turn as asked to stop. `None` when it does not run (any more).
pub async fn request_stop(
    pool: &PgPool,
    user: Uuid,
    target: StopTarget,
) -> AppResult<Option<StopRequest>> {
    let (column, id) = match target {
        StopTarget::InConversation(id) => ("conversation_id", id),
        StopTarget::Turn(id) => ("id", id),
    };
    let row: Option<(Uuid, bool)> = sqlx::query_as(&format!(
        "UPDATE turns SET stop_requested = true
         WHERE {column} = $1 AND user_id = $2 AND state = 'running'
         RETURNING id, lease_until < clock_timestamp()"
    ))
    .bind(id)
    .bind(user)
    .fetch_optional(pool)
    .await?;
    Ok(row.map(|(turn, lease_expired)| StopRequest {
        turn,
        lease_expired,
    }))
}

/// How ending a turn went.
// One per turn's end: its size is not worth a box.
#[allow(clippy::large_enum_variant)]
pub enum Finished {
    /// The reply is stored and the turn ended with its status.
    Stored(Message),
    /// Another replica owns the turn now: nothing was written.
    NotOwner,
    /// The conversation was deleted: the turn ended as `error` without a reply.
    ConversationGone,
    /// The turn waits for the user to decide on these calls.
    Parked(Vec<crate::model::PendingApproval>),
}

/// Ends a turn: its reply, its outcome and the removal of its progress row commit together,
/// and only while `turn.attempt_id` still holds an unexpired lease.
pub async fn finish(
    pool: &PgPool,
    bus: &EventBus,
    turn: &Turn,
    content: &str,
    status: MessageStatus,
    tool_calls: Option<&crate::model::ToolCalls>,
    branch_changes: &[crate::model::BranchChange],
) -> AppResult<Finished> {
    let mut tx = pool.begin().await?;
    let reply = NewMessage {
        role: Role::Assistant,
        content,
        tool_calls,
        status,
        client_id: None,
        parent: Parent::AtSeq(turn.user_seq),
        branch_changes,
    };
    let appended =
        messages::append_in(&mut tx, bus, turn.user_id, turn.conversation_id, reply).await;
    let (stored, outbox) = match appended {
        Ok(appended) => appended,
        Err(AppError::NotFound(_)) => {
            drop(tx);
            end_without_reply(pool, turn, "the conversation was deleted").await?;
            return Ok(Finished::ConversationGone);
        }
        Err(err) => return Err(err),
    };
    // Fenced: only the attempt holding the lease ends the turn; otherwise the reply above
    // rolls back.
    let owned: Option<i32> = sqlx::query_scalar(
        "WITH t AS (
             UPDATE turns SET state = $3, reply_seq = $4, updated_at = now(), lease_until = NULL
             WHERE id = $1 AND attempt_id = $2 AND state = 'running'
               AND lease_until > clock_timestamp()
             RETURNING conversation_id
         ), a AS (
             DELETE FROM turn_activity WHERE conversation_id IN (SELECT conversation_id FROM t)
         ), p AS (
             DELETE FROM turn_reply_pieces WHERE conversation_id IN (SELECT conversation_id FROM t)
         )
         SELECT 1 FROM t",
    )
    .bind(turn.id)
    .bind(turn.attempt_id)
    .bind(status.as_str())
    .bind(stored.seq)
    .fetch_optional(&mut *tx)
    .await?;
    if owned.is_none() {
        return Ok(Finished::NotOwner);
    }
    tx.commit().await?;
    outbox.publish(bus, pool).await;
    Ok(Finished::Stored(stored))
}

/// Ends a turn as `error` with no reply (there is nowhere to store one).
async fn end_without_reply(pool: &PgPool, turn: &Turn, why: &str) -> AppResult<()> {
    let mut tx = pool.begin().await?;
    sqlx::query(
        "UPDATE turns SET state = 'error', error_detail = $3, updated_at = now(), lease_until = NULL
         WHERE id = $1 AND attempt_id = $2 AND state = 'running'",
    )
    .bind(turn.id)
    .bind(turn.attempt_id)
    .bind(why)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "WITH p AS (DELETE FROM turn_reply_pieces WHERE conversation_id = $1)
         DELETE FROM turn_activity WHERE conversation_id = $1",
    )
    .bind(turn.conversation_id)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(())
}

/// The user message at the end of the branch shown if it still waits for an answer that no
/// turn is giving (its last turn ended `error` or `stopped`, or it has no answer at all), with
/// the newest turn that answered it (what a retry must still find there to start).
pub async fn retryable_message(
    pool: &PgPool,
    user: Uuid,
    conversation: Uuid,
) -> AppResult<Option<(Message, Option<Uuid>)>> {
    let mut db = pool.acquire().await?;
    let current: Option<Option<Uuid>> = sqlx::query_scalar(
        "SELECT current_message_id FROM conversations
         WHERE id = $1 AND user_id = $2 AND deleted_at IS NULL",
    )
    .bind(conversation)
    .bind(user)
    .fetch_optional(&mut *db)
    .await?;
    let Some(current) = current else {
        return Ok(None);
    };
    let seq = match leaf(&mut db, conversation, current).await? {
        Some(leaf) if leaf.role == "user" => leaf.seq,
        Some(leaf) if leaf.status != "complete" => match leaf.parent_seq {
            Some(seq) => seq,
            None => return Ok(None),
        },
        _ => return Ok(None),
    };
    drop(db);
    let Some(message) = messages::message_at(pool, conversation, seq).await? else {
        return Ok(None);
    };
    let newest_turn = latest_for_message(pool, conversation, seq)
        .await?
        .map(|t| t.id);
    Ok(Some((message, newest_turn)))
}
