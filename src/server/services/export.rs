//! Taking data out: one conversation (JSON or Markdown) or the whole account (JSON), written
//! while it is read. Rows come from one database cursor inside a read-only snapshot and go out
//! in chunks through a small bounded channel, so the server's memory stays flat however large
//! the account: a slow reader slows the query down, it does not fill memory.

use axum::body::Bytes;
use chrono::{DateTime, SecondsFormat, Utc};
use futures::{Stream, StreamExt};
use serde::Serialize;
use sqlx::{PgPool, Row};
use tokio::sync::mpsc;
use uuid::Uuid;

use super::chat::conversation_not_found;
use crate::server::error::AppResult;

/// The `format` of our export document; `version` changes when its shape does.
pub const EXPORT_FORMAT: &str = "chatkit-tasks-export";
pub const EXPORT_VERSION: u32 = 1;
/// Bytes gathered before a chunk goes out.
const CHUNK: usize = 32 * 1024;
/// Chunks in flight between the writer and the connection.
const CHUNKS_IN_FLIGHT: usize = 4;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Json,
    Markdown,
}

impl Format {
    pub fn parse(text: Option<&str>) -> AppResult<Self> {
        match text.unwrap_or("json") {
            "json" => Ok(Self::Json),
            "markdown" | "md" => Ok(Self::Markdown),
            other => Err(crate::server::error::AppError::validation(format!(
                "unknown export format {other:?}: use json or markdown"
            ))),
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Self::Json => "application/json",
            Self::Markdown => "text/markdown; charset=utf-8",
        }
    }

    pub fn extension(self) -> &'static str {
        match self {
            Self::Json => "json",
            Self::Markdown => "md",
        }
    }
}

pub type ExportBody = std::pin::Pin<Box<dyn Stream<Item = Result<Bytes, std::io::Error>> + Send>>;

/// The whole account: profile, tasks, and every conversation with its messages, tool calls
/// and feedback.
pub fn account(pool: PgPool, user: Uuid) -> ExportBody {
    spawn_writer(move |out| async move { write_account(&pool, user, out).await })
}

/// One conversation, after checking it is the caller's (a 404 comes before any byte).
pub async fn conversation(
    pool: PgPool,
    user: Uuid,
    id: Uuid,
    format: Format,
) -> AppResult<(String, ExportBody)> {
    let title: String = sqlx::query_scalar(
        "SELECT title FROM conversations WHERE id = $1 AND user_id = $2 AND deleted_at IS NULL",
    )
    .bind(id)
    .bind(user)
    .fetch_optional(&pool)
    .await?
    .ok_or_else(conversation_not_found)?;
    let body = spawn_writer(move |mut out| async move {
        let mut tx = snapshot(&pool).await?;
        let mut rows = conversation_rows(&mut tx, user, Some(id));
        let mut writer = ConversationWriter::new(format);
        while let Some(row) = rows.next().await {
            writer.row(&mut out, row?).await?;
        }
        writer.finish(&mut out).await?;
        out.flush().await
    });
    Ok((file_name(&title, format), body))
}

/// A download name from the title: letters, digits and dashes.
/// How long a download may go unread before the export gives up.
const STALLED: std::time::Duration = std::time::Duration::from_secs(60);

fn file_name(title: &str, format: Format) -> String {
    let mut name: String = title
        .chars()
        .map(|c| if c.is_alphanumeric() { c } else { '-' })
        .take(60)
        .collect();
    while name.contains("--") {
        name = name.replace("--", "-");
    }
    let name = name.trim_matches('-');
    let name = if name.is_empty() {
        "conversation"
    } else {
        name
    };
    format!("{name}.{}", format.extension())
}

/// Runs `write` as its own task, its output the returned stream. A failure midway ends the
/// stream with an error, so the client sees a broken download, never a short "complete" one.
fn spawn_writer<F, Fut>(write: F) -> ExportBody
where
    F: FnOnce(Out) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = AppResult<()>> + Send + 'static,
{
    let (sender, receiver) = mpsc::channel(CHUNKS_IN_FLIGHT);
    let errors = sender.clone();
    tokio::spawn(async move {
        let out = Out {
            buffer: Vec::with_capacity(CHUNK),
            sender,
        };
        if let Err(err) = write(out).await {
            if !matches!(err, crate::server::error::AppError::Unavailable) {
                tracing::warn!(error = %err, "export stopped");
            }
            let _ = errors
                .send(Err(std::io::Error::other("the export stopped")))
                .await;
        }
    });
    // Fused: the body is polled once more after its end (by the compressor), which an
    // unfused `unfold` does not allow.
    Box::pin(
        futures::stream::unfold(receiver, |mut receiver| async move {
            receiver.recv().await.map(|chunk| (chunk, receiver))
        })
        .fuse(),
    )
}

/// Where the writer puts bytes: a buffer sent on in chunks.
struct Out {
    buffer: Vec<u8>,
    sender: mpsc::Sender<Result<Bytes, std::io::Error>>,
}

impl Out {
    async fn write(&mut self, bytes: &[u8]) -> AppResult<()> {
        self.buffer.extend_from_slice(bytes);
        if self.buffer.len() >= CHUNK {
            self.send().await?;
        }
        Ok(())
    }

    async fn json(&mut self, value: &impl Serialize) -> AppResult<()> {
        let text = serde_json::to_vec(value).map_err(anyhow::Error::from)?;
        self.write(&text).await
    }

    async fn send(&mut self) -> AppResult<()> {
        let chunk = Bytes::from(std::mem::replace(
            &mut self.buffer,
            Vec::with_capacity(CHUNK),
        ));
        // The client went away, or stopped reading: stop reading the database (a stalled
        // download must not hold a connection and a snapshot forever).
        match tokio::time::timeout(STALLED, self.sender.send(Ok(chunk))).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) | Err(_) => Err(crate::server::error::AppError::Unavailable),
        }
    }

    async fn flush(mut self) -> AppResult<()> {
        if !self.buffer.is_empty() {
            self.send().await?;
        }
        Ok(())
    }
}

/// A consistent, read-only view for the whole export.
async fn snapshot(pool: &PgPool) -> AppResult<sqlx::Transaction<'static, sqlx::Postgres>> {
    let mut tx = pool.begin().await?;
    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        .execute(&mut *tx)
        .await?;
    Ok(tx)
}

async fn write_account(pool: &PgPool, user: Uuid, mut out: Out) -> AppResult<()> {
    let mut tx = snapshot(pool).await?;
    let account: String = sqlx::query_scalar(
        "SELECT json_build_object('id', id, 'email', email, 'created_at', created_at)::text
         FROM users WHERE id = $1",
    )
    .bind(user)
    .fetch_one(&mut *tx)
    .await?;
    out.write(
        format!(
            "{{\"format\":\"{EXPORT_FORMAT}\",\"version\":{EXPORT_VERSION},\"exported_at\":\"{}\",\"account\":{account},\"tasks\":[",
            Utc::now().to_rfc3339_opts(SecondsFormat::Micros, true)
        )
        .as_bytes(),
    )
    .await?;
    {
        let mut tasks = sqlx::query_scalar::<_, String>(
            "SELECT json_build_object('id', id, 'title', title, 'description', description,
                 'completed', completed, 'created_at', created_at, 'updated_at', updated_at)::text
             FROM tasks WHERE user_id = $1 AND deleted_at IS NULL ORDER BY id",
        )
        .bind(user)
        .fetch(&mut *tx);
        let mut first = true;
        while let Some(task) = tasks.next().await {
            if !std::mem::take(&mut first) {
                out.write(b",").await?;
            }
            out.write(task?.as_bytes()).await?;
        }
    }
    out.write(b"],\"conversations\":[").await?;
    {
        let mut rows = conversation_rows(&mut tx, user, None);
        let mut writer = ConversationWriter::new(Format::Json);
        while let Some(row) = rows.next().await {
            writer.row(&mut out, row?).await?;
        }
        writer.finish(&mut out).await?;
    }
    out.write(b"]}").await?;
    out.flush().await
}

/// One row per message (a conversation without messages: one row without one), in
/// conversation then message order.
struct ExportRow {
    conversation: ExportedConversationHead,
    message: Option<ExportedMessage>,
}

#[derive(Serialize)]
struct ExportedConversationHead {
    id: Uuid,
    title: String,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    pinned: bool,
    archived: bool,
    current_message_id: Option<Uuid>,
}

#[derive(Serialize)]
struct ExportedMessage {
    id: Uuid,
    /// The message it follows: branches (edits, regenerated answers) are kept.
    parent_id: Option<Uuid>,
    /// On the branch shown (Markdown has that branch only).
    #[serde(skip)]
    on_branch: bool,
    seq: i64,
    role: String,
    content: String,
    status: String,
    tool_calls: Option<Box<serde_json::value::RawValue>>,
    created_at: DateTime<Utc>,
    feedback: Option<String>,
}

fn conversation_rows<'c>(
    tx: &'c mut sqlx::Transaction<'static, sqlx::Postgres>,
    user: Uuid,
    only: Option<Uuid>,
) -> impl Stream<Item = AppResult<ExportRow>> + Send + 'c {
    sqlx::query(
        "WITH RECURSIVE shown AS (
             SELECT id, parent_id FROM messages
             WHERE id IN (SELECT current_message_id FROM conversations
                          WHERE user_id = $1 AND deleted_at IS NULL AND branched
                            AND ($2::uuid IS NULL OR id = $2))
             UNION ALL
             SELECT m.id, m.parent_id FROM shown JOIN messages m ON m.id = shown.parent_id
         )
         SELECT c.id, c.title, c.created_at, c.updated_at, c.pinned,
                c.archived_at IS NOT NULL AS archived, c.current_message_id,
                m.id AS message_id, m.parent_id, m.seq, m.role, m.content, m.status,
                m.tool_calls::text AS tool_calls, m.created_at AS message_created_at,
                f.kind AS feedback,
                (NOT c.branched OR m.id IN (SELECT id FROM shown)) AS on_branch
         FROM conversations c
         LEFT JOIN messages m ON m.conversation_id = c.id
         LEFT JOIN message_feedback f ON f.message_id = m.id AND f.user_id = c.user_id
         WHERE c.user_id = $1 AND c.deleted_at IS NULL AND ($2::uuid IS NULL OR c.id = $2)
         ORDER BY c.created_at, c.id, m.seq",
    )
    .bind(user)
    .bind(only)
    .fetch(&mut **tx)
    .map(|row| {
        let row = row?;
        let conversation = ExportedConversationHead {
            id: row.try_get("id")?,
            title: row.try_get("title")?,
            created_at: row.try_get("created_at")?,
            updated_at: row.try_get("updated_at")?,
            pinned: row.try_get("pinned")?,
            archived: row.try_get("archived")?,
            current_message_id: row.try_get("current_message_id")?,
        };
        let message = match row.try_get::<Option<Uuid>, _>("message_id")? {
            None => None,
            Some(id) => Some(ExportedMessage {
                id,
                parent_id: row.try_get("parent_id")?,
                on_branch: row.try_get::<Option<bool>, _>("on_branch")?.unwrap_or(true),
                seq: row.try_get("seq")?,
                role: row.try_get("role")?,
                content: row.try_get("content")?,
                status: row.try_get("status")?,
                tool_calls: row
                    .try_get::<Option<String>, _>("tool_calls")?
                    .and_then(|raw| serde_json::value::RawValue::from_string(raw).ok()),
                created_at: row.try_get("message_created_at")?,
                feedback: row.try_get("feedback")?,
            }),
        };
        Ok(ExportRow {
            conversation,
            message,
        })
    })
}

/// Turns the rows into conversations, one format or the other, as they come.
struct ConversationWriter {
    format: Format,
    current: Option<Uuid>,
    written: usize,
}

impl ConversationWriter {
    fn new(format: Format) -> Self {
        Self {
            format,
            current: None,
            written: 0,
        }
    }

    async fn row(&mut self, out: &mut Out, row: ExportRow) -> AppResult<()> {
        if self.current != Some(row.conversation.id) {
            self.close(out).await?;
            self.open(out, &row.conversation).await?;
            self.current = Some(row.conversation.id);
            self.written = 0;
        }
        if let Some(message) = row.message {
            match self.format {
                Format::Json => {
                    if self.written > 0 {
                        out.write(b",").await?;
                    }
                    out.json(&message).await?;
                }
                Format::Markdown if message.on_branch => {
                    out.write(markdown_message(&message).as_bytes()).await?
                }
                Format::Markdown => {}
            }
            self.written += 1;
        }
        Ok(())
    }

    async fn open(&mut self, out: &mut Out, head: &ExportedConversationHead) -> AppResult<()> {
        match self.format {
            Format::Json => {
                if self.current.is_some() {
                    out.write(b",").await?;
                }
                // The head's JSON object, reopened to take the messages.
                let mut head = serde_json::to_vec(head).map_err(anyhow::Error::from)?;
                head.pop();
                out.write(&head).await?;
                out.write(b",\"messages\":[").await
            }
            Format::Markdown => {
                let text = format!(
                    "# {}\n\n*Started {} · last active {}*\n",
                    head.title.trim(),
                    when(head.created_at),
                    when(head.updated_at)
                );
                out.write(text.as_bytes()).await
            }
        }
    }

    async fn close(&mut self, out: &mut Out) -> AppResult<()> {
        if self.current.is_some() && self.format == Format::Json {
            out.write(b"]}").await?;
        }
        Ok(())
    }

    async fn finish(&mut self, out: &mut Out) -> AppResult<()> {
        self.close(out).await
    }
}

fn when(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%d %H:%M UTC").to_string()
}

/// One message in Markdown: who and when, the text, then each tool call on a short line.
fn markdown_message(message: &ExportedMessage) -> String {
    let who = if message.role == "user" {
        "You"
    } else {
        "Assistant"
    };
    let mut text = format!("\n**{who}** · {}", when(message.created_at));
    if message.status != "complete" {
        text.push_str(&format!(" · *{}*", message.status));
    }
    text.push_str("\n\n");
    text.push_str(message.content.trim_end());
    text.push('\n');
    let calls = message
        .tool_calls
        .as_ref()
        .and_then(|raw| serde_json::from_str::<crate::model::ToolCalls>(raw.get()).ok());
    if let Some(calls) = calls {
        text.push('\n');
        for call in calls.tool_calls {
            let status = call.status.as_str();
            text.push_str(&format!("> `{}` → {status}\n", call.tool_name));
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_are_plain() {
        assert_eq!(
            file_name("Buy milk / eggs?", Format::Markdown),
            "Buy-milk-eggs.md"
        );
        assert_eq!(file_name("!!!", Format::Json), "conversation.json");
    }

    #[test]
    fn formats_parse() {
        assert_eq!(Format::parse(None).unwrap(), Format::Json);
        assert_eq!(Format::parse(Some("markdown")).unwrap(), Format::Markdown);
        assert!(Format::parse(Some("xml")).is_err());
    }
}
