//! Bringing conversations in (our own export, ChatGPT's `conversations.json`). The file is
//! read as it arrives, on a blocking thread, one conversation at a time; each conversation is
//! stored in a transaction of its own as soon as it is read, so a 50 MB file never sits in
//! memory and a file broken halfway keeps what came before the break. No tool runs: messages
//! are stored as they were.

mod formats;

use std::sync::{
    atomic::{AtomicBool, AtomicUsize, Ordering},
    Arc,
};

use axum::body::Bytes;
use futures::{Stream, StreamExt};
use sqlx::PgPool;
use tokio::sync::mpsc;
use uuid::Uuid;

use self::formats::{Incoming, Parsed, ReadError};
use super::{
    chat::{auto_title, preview, DEFAULT_TITLE},
    events,
    messages::{message_id, without_nul},
};
use crate::{
    model::{
        Conversation, ImportFailure, ImportReport, LiveEvent, Role, MAX_MESSAGE_CHARS,
        MAX_TITLE_CHARS,
    },
    server::{
        bus::EventBus,
        error::{AppError, AppResult},
    },
};

/// The largest file an import reads.
pub const MAX_IMPORT_BYTES: usize = 50 * 1024 * 1024;
/// Conversations read ahead of the one being stored.
const READ_AHEAD: usize = 2;

/// Imports the file `body` streams into `user`'s account.
pub async fn import<S>(
    pool: &PgPool,
    bus: &EventBus,
    user: Uuid,
    body: S,
) -> AppResult<ImportReport>
where
    S: Stream<Item = Result<Bytes, std::io::Error>> + Send + Unpin + 'static,
{
    let read = Arc::new(AtomicUsize::new(0));
    let too_large = Arc::new(AtomicBool::new(false));
    let counted = {
        let (read, too_large) = (read.clone(), too_large.clone());
        body.map(move |chunk| {
            let chunk = chunk?;
            if read.fetch_add(chunk.len(), Ordering::Relaxed) + chunk.len() > MAX_IMPORT_BYTES {
                too_large.store(true, Ordering::Relaxed);
                return Err(std::io::Error::other("the file is too large"));
            }
            Ok(chunk)
        })
    };
    let reader = tokio_util::io::SyncIoBridge::new(tokio_util::io::StreamReader::new(counted));
    let (sender, mut receiver) = mpsc::channel::<Parsed>(READ_AHEAD);
    let reading = tokio::task::spawn_blocking(move || {
        formats::read_all(reader, &mut |parsed| sender.blocking_send(parsed).is_ok())
    });
    let mut report = ImportReport::default();
    let mut index = 0u32;
    while let Some(parsed) = receiver.recv().await {
        let outcome = match parsed {
            Ok(incoming) => store(pool, bus, user, incoming.clone())
                .await
                .map_err(|reason| (incoming.title.clone(), reason)),
            Err(failure) => Err(failure),
        };
        match outcome {
            Ok(true) => report.imported += 1,
            Ok(false) => report.skipped += 1,
            Err((title, reason)) => report.errors.push(ImportFailure {
                index,
                title,
                reason,
            }),
        }
        index += 1;
    }
    let finished = reading
        .await
        .map_err(|err| AppError::Internal(anyhow::anyhow!("the import reader failed: {err}")))?;
    match finished {
        Ok(()) => Ok(report),
        Err(_) if too_large.load(Ordering::Relaxed) => Err(AppError::TooLarge(format!(
            "the file is larger than {} MB ({} conversations before that point were imported)",
            MAX_IMPORT_BYTES / (1024 * 1024),
            report.imported
        ))),
        Err(ReadError::Stopped) => Err(AppError::validation("the upload was cut short")),
        Err(err) => Err(AppError::validation(format!(
            "{err} ({} conversations before that point were imported, {} were already here)",
            report.imported, report.skipped
        ))),
    }
}

/// Stores one conversation: true when stored, false when it was already here (imported
/// before, or our own export's conversation still in this account). The reason when refused.
async fn store(
    pool: &PgPool,
    bus: &EventBus,
    user: Uuid,
    incoming: Incoming,
) -> Result<bool, String> {
    let checked = check(incoming)?;
    store_checked(pool, bus, user, checked)
        .await
        .map_err(|err| {
            tracing::warn!(error = %err, "storing an imported conversation");
            "it could not be stored".to_string()
        })
}

/// Where each message goes in the stored tree: the one it follows (by index), its depth, the
/// one shown, and whether there are branches. Our export names parents by id; other files
/// (and messages whose parent was left out) follow the message before them.
struct Tree {
    parents: Vec<Option<usize>>,
    depths: Vec<i32>,
    current: Option<usize>,
    branched: bool,
}

impl Tree {
    fn of(incoming: &Incoming) -> Self {
        let messages = &incoming.messages;
        let index: std::collections::HashMap<Uuid, usize> = messages
            .iter()
            .enumerate()
            .filter_map(|(i, m)| Some((m.source_id?, i)))
            .collect();
        let at = |id: Option<Uuid>| id.and_then(|id| index.get(&id).copied());
        let mut parents = Vec::with_capacity(messages.len());
        let mut depths: Vec<i32> = Vec::with_capacity(messages.len());
        for (i, m) in messages.iter().enumerate() {
            let before = i.checked_sub(1);
            let parent = match m.parent {
                None => before,
                Some(None) => None,
                Some(Some(id)) => at(Some(id)).filter(|&p| p < i).or(before),
            };
            depths.push(parent.map_or(1, |p| depths[p] + 1));
            parents.push(parent);
        }
        let branched = parents
            .iter()
            .enumerate()
            .any(|(i, p)| *p != i.checked_sub(1));
        let current = at(incoming.current).or(messages.len().checked_sub(1));
        Self {
            parents,
            depths,
            current,
            branched,
        }
    }
}

/// A conversation that fits the rules of a stored one.
struct Checked {
    incoming: Incoming,
    title: String,
}

fn check(mut incoming: Incoming) -> Result<Checked, String> {
    incoming.messages.retain(|m| !m.content.trim().is_empty());
    for m in &mut incoming.messages {
        m.content = m.content.replace('\0', "\u{FFFD}");
        if m.role == Role::User {
            m.content = m.content.trim().to_string();
            let chars = m.content.chars().count();
            if chars > MAX_MESSAGE_CHARS {
                return Err(format!(
                    "a message is {chars} characters long; the limit is {MAX_MESSAGE_CHARS}"
                ));
            }
        }
        m.tool_calls = m.tool_calls.take().map(without_nul);
    }
    let title = incoming
        .title
        .as_deref()
        .map(|t| t.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|t| !t.is_empty())
        .or_else(|| {
            incoming
                .messages
                .iter()
                .find(|m| m.role == Role::User)
                .map(|m| auto_title(&m.content))
        })
        .unwrap_or_else(|| DEFAULT_TITLE.to_string())
        .replace('\0', "\u{FFFD}")
        .chars()
        .take(MAX_TITLE_CHARS)
        .collect();
    Ok(Checked { incoming, title })
}

async fn store_checked(
    pool: &PgPool,
    bus: &EventBus,
    user: Uuid,
    checked: Checked,
) -> AppResult<bool> {
    let Checked { incoming, title } = checked;
    let id = Uuid::new_v4();
    let count = incoming.messages.len() as i64;
    let shape = Tree::of(&incoming);
    let seqs: Vec<i64> = (1..=count).collect();
    let ids: Vec<Uuid> = seqs.iter().map(|&seq| message_id(id, seq)).collect();
    let last = incoming.messages.last();
    let updated_at = last
        .map(|m| m.created_at.max(incoming.updated_at))
        .unwrap_or(incoming.updated_at)
        .max(incoming.created_at);
    let mut tx = pool.begin().await?;
    let created = sqlx::query_as::<_, super::chat::ConversationRow>(&format!(
        "INSERT INTO conversations (id, user_id, title, title_is_custom, created_at, updated_at,
             pinned, archived_at, import_key, last_seq, message_count, last_message_preview,
             current_message_id, branched)
         SELECT $1, $2, $3, true, $4, $5, $6, CASE WHEN $7 THEN now() END, $8, $9, $9, $10, $12, $13
         WHERE NOT EXISTS (SELECT 1 FROM conversations
                           WHERE id = $11 AND user_id = $2 AND deleted_at IS NULL)
         ON CONFLICT (user_id, import_key) WHERE import_key IS NOT NULL AND deleted_at IS NULL
         DO NOTHING
         RETURNING {}",
        super::chat::CONVERSATION_COLUMNS
    ))
    .bind(id)
    .bind(user)
    .bind(&title)
    .bind(incoming.created_at)
    .bind(updated_at)
    .bind(incoming.pinned)
    .bind(incoming.archived)
    .bind(&incoming.key)
    .bind(count)
    .bind(last.map(|m| preview(&m.content, m.role)))
    .bind(incoming.own_id)
    .bind(shape.current.map(|at| ids[at]))
    .bind(shape.branched)
    .fetch_optional(&mut *tx)
    .await?;
    let Some(created) = created else {
        return Ok(false);
    };
    let parents: Vec<Option<Uuid>> = shape.parents.iter().map(|p| p.map(|at| ids[at])).collect();
    let roles: Vec<&str> = incoming
        .messages
        .iter()
        .map(|m| match m.role {
            Role::User => "user",
            Role::Assistant => "assistant",
        })
        .collect();
    let contents: Vec<&str> = incoming
        .messages
        .iter()
        .map(|m| m.content.as_str())
        .collect();
    let statuses: Vec<&str> = incoming
        .messages
        .iter()
        .map(|m| m.status.as_str())
        .collect();
    let tool_calls: Vec<Option<sqlx::types::Json<&serde_json::Value>>> = incoming
        .messages
        .iter()
        .map(|m| {
            m.tool_calls
                .as_ref()
                .filter(|_| m.role == Role::Assistant)
                .map(sqlx::types::Json)
        })
        .collect();
    let times: Vec<_> = incoming.messages.iter().map(|m| m.created_at).collect();
    sqlx::query(
        "INSERT INTO messages (id, conversation_id, seq, role, content, status, tool_calls, created_at,
                               parent_id, depth)
         SELECT m.id, $1, m.seq, m.role, m.content, m.status, m.tool_calls, m.created_at,
                m.parent_id, m.depth
         FROM UNNEST($2::uuid[], $3::bigint[], $4::text[], $5::text[], $6::text[], $7::jsonb[],
                     $8::timestamptz[], $9::uuid[], $10::int[])
              AS m(id, seq, role, content, status, tool_calls, created_at, parent_id, depth)",
    )
    .bind(id)
    .bind(&ids)
    .bind(&seqs)
    .bind(&roles)
    .bind(&contents)
    .bind(&statuses)
    .bind(&tool_calls)
    .bind(&times)
    .bind(&parents)
    .bind(&shape.depths)
    .execute(&mut *tx)
    .await?;
    let conversation = Conversation::from(created);
    let outbox = events::record(&mut tx, bus, user, &LiveEvent::Conversation(conversation)).await?;
    tx.commit().await?;
    outbox.publish(bus, pool).await;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::MessageStatus;
    use formats::IncomingMessage;

    fn message(id: u128, parent: Option<Option<u128>>) -> IncomingMessage {
        IncomingMessage {
            role: Role::User,
            content: "hi".into(),
            status: MessageStatus::Complete,
            tool_calls: None,
            created_at: chrono::Utc::now(),
            source_id: Some(Uuid::from_u128(id)),
            parent: parent.map(|p| p.map(Uuid::from_u128)),
        }
    }

    fn conversation(messages: Vec<IncomingMessage>, current: Option<u128>) -> Incoming {
        Incoming {
            key: "k".into(),
            own_id: None,
            title: None,
            created_at: chrono::Utc::now(),
            updated_at: chrono::Utc::now(),
            pinned: false,
            archived: false,
            messages,
            current: current.map(Uuid::from_u128),
        }
    }

    #[test]
    fn a_file_without_parents_is_a_straight_line() {
        let tree = Tree::of(&conversation(
            vec![message(1, None), message(2, None), message(3, None)],
            None,
        ));
        assert_eq!(tree.parents, vec![None, Some(0), Some(1)]);
        assert_eq!(tree.depths, vec![1, 2, 3]);
        assert_eq!(tree.current, Some(2));
        assert!(!tree.branched);
    }

    #[test]
    fn branches_and_the_branch_shown_are_kept() {
        // 1 → 2, and 3 an edit of 1 (a second first message), 4 its answer; 2 is shown.
        let tree = Tree::of(&conversation(
            vec![
                message(1, Some(None)),
                message(2, Some(Some(1))),
                message(3, Some(None)),
                message(4, Some(Some(3))),
            ],
            Some(2),
        ));
        assert_eq!(tree.parents, vec![None, Some(0), None, Some(2)]);
        assert_eq!(tree.depths, vec![1, 2, 1, 2]);
        assert_eq!(tree.current, Some(1));
        assert!(tree.branched);
    }

    #[test]
    fn a_parent_left_out_or_later_falls_back_to_the_message_before() {
        let tree = Tree::of(&conversation(
            vec![
                message(1, Some(None)),
                message(2, Some(Some(9))),
                message(3, Some(Some(4))),
                message(4, None),
            ],
            Some(77),
        ));
        assert_eq!(tree.parents, vec![None, Some(0), Some(1), Some(2)]);
        assert_eq!(tree.current, Some(3));
        assert!(!tree.branched);
    }
}
