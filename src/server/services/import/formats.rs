//! Reading an import file one conversation at a time, whatever its size: our own export (an
//! object whose `conversations` holds them) or ChatGPT's `conversations.json` (an array). Each
//! conversation is read into memory alone, converted, and handed on before the next is read.

use std::{collections::HashMap, fmt, io::Read};

use chrono::{DateTime, TimeZone, Utc};
use serde::{
    de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor},
    Deserialize, Deserializer,
};
use serde_json::Value;
use uuid::Uuid;

use crate::model::{MessageStatus, Role};

/// A conversation as it will be stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Incoming {
    /// Where it came from: the same conversation imported again has the same key.
    pub key: String,
    /// Our own export's id: importing into the account it came from finds it there.
    pub own_id: Option<Uuid>,
    pub title: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub pinned: bool,
    pub archived: bool,
    pub messages: Vec<IncomingMessage>,
    /// The message shown last (our export's `current_message_id`); the last one when unset.
    pub current: Option<Uuid>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct IncomingMessage {
    pub role: Role,
    pub content: String,
    pub status: MessageStatus,
    pub tool_calls: Option<Value>,
    pub created_at: DateTime<Utc>,
    /// The file's id of this message and of the one it follows (our export keeps branches):
    /// `parent` unset means the message before it.
    pub source_id: Option<Uuid>,
    pub parent: Option<Option<Uuid>>,
}

/// One conversation of the file, or why it cannot be imported (its title if it had one).
pub type Parsed = Result<Incoming, (Option<String>, String)>;

/// Why a file could not be read to its end.
#[derive(Debug)]
pub enum ReadError {
    /// Not JSON (or cut short): where.
    Syntax {
        line: usize,
        column: usize,
        reason: String,
    },
    /// JSON, but neither of the formats we read.
    Unknown,
    /// The receiver stopped taking conversations (the request went away, or it is too large).
    Stopped,
}

impl fmt::Display for ReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Syntax {
                line,
                column,
                reason,
            } => write!(
                f,
                "the file is not valid JSON at line {line} column {column}: {reason}"
            ),
            Self::Unknown => write!(
                f,
                "the file is neither this app's export nor ChatGPT's conversations.json"
            ),
            Self::Stopped => write!(f, "the import stopped"),
        }
    }
}

const STOPPED: &str = "\u{0}import stopped";

/// Reads `reader` to its end, calling `emit` with each conversation in file order; `emit`
/// returns false to stop.
pub fn read_all(reader: impl Read, emit: &mut dyn FnMut(Parsed) -> bool) -> Result<(), ReadError> {
    let mut de =
        serde_json::Deserializer::from_reader(std::io::BufReader::with_capacity(64 * 1024, reader));
    let mut found = false;
    let visitor = TopLevel {
        emit,
        found: &mut found,
    };
    let outcome = de.deserialize_any(visitor).and_then(|()| de.end());
    match outcome {
        Ok(()) if found => Ok(()),
        Ok(()) => Err(ReadError::Unknown),
        Err(err) if err.to_string().starts_with(STOPPED) => Err(ReadError::Stopped),
        Err(err) if err.is_io() => Err(ReadError::Stopped),
        // Valid JSON of another shape (a number, an object of something else).
        Err(err) if err.is_data() => Err(ReadError::Unknown),
        Err(err) => {
            let reason = err.to_string();
            // serde_json's text ends with its own "at line L column C".
            let reason = reason
                .split(" at line ")
                .next()
                .unwrap_or(&reason)
                .to_string();
            Err(ReadError::Syntax {
                line: err.line(),
                column: err.column(),
                reason,
            })
        }
    }
}

/// The fields of one conversation in our export.
const CONVERSATION_KEYS: [&str; 8] = [
    "id",
    "title",
    "created_at",
    "updated_at",
    "pinned",
    "archived",
    "current_message_id",
    "messages",
];

struct TopLevel<'a> {
    emit: &'a mut dyn FnMut(Parsed) -> bool,
    found: &'a mut bool,
}

impl<'de> Visitor<'de> for TopLevel<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an export object or a ChatGPT conversations array")
    }

    /// ChatGPT's `conversations.json`.
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        *self.found = true;
        while let Some(value) = seq.next_element::<Value>()? {
            if !(self.emit)(from_chatgpt(value)) {
                return Err(de::Error::custom(STOPPED));
            }
        }
        Ok(())
    }

    /// Our export: everything but `conversations` is passed over (tasks are not imported).
    /// A one-conversation export (the conversation's own object) is that one conversation.
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut alone = serde_json::Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if key == "conversations" {
                *self.found = true;
                map.next_value_seed(OurConversations { emit: self.emit })?;
            } else if CONVERSATION_KEYS.contains(&key.as_str()) {
                alone.insert(key, map.next_value::<Value>()?);
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        if !*self.found && alone.contains_key("id") && alone.contains_key("messages") {
            *self.found = true;
            (self.emit)(from_ours(Value::Object(alone)));
        }
        Ok(())
    }
}

struct OurConversations<'a> {
    emit: &'a mut dyn FnMut(Parsed) -> bool,
}

impl<'de> DeserializeSeed<'de> for OurConversations<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for OurConversations<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an array of conversations")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while let Some(value) = seq.next_element::<Value>()? {
            if !(self.emit)(from_ours(value)) {
                return Err(de::Error::custom(STOPPED));
            }
        }
        Ok(())
    }
}

fn title_of(value: &Value) -> Option<String> {
    value
        .get("title")
        .and_then(Value::as_str)
        .map(str::to_string)
}

#[derive(Deserialize)]
struct OurConversation {
    id: Uuid,
    title: String,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    #[serde(default)]
    pinned: bool,
    #[serde(default)]
    archived: bool,
    messages: Vec<OurMessage>,
    #[serde(default)]
    current_message_id: Option<Uuid>,
}

#[derive(Deserialize)]
struct OurMessage {
    #[serde(default)]
    id: Option<Uuid>,
    /// Absent in exports from before branches: the message before it.
    #[serde(default, deserialize_with = "present")]
    parent_id: Option<Option<Uuid>>,
    seq: i64,
    role: Role,
    content: String,
    #[serde(default = "complete")]
    status: String,
    /// Typed here: a record the app could not read back is this conversation's error.
    #[serde(default)]
    tool_calls: Option<crate::model::ToolCalls>,
    created_at: DateTime<Utc>,
}

/// A field that is there (even as null) is `Some`.
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<Uuid>>, D::Error> {
    Option::<Uuid>::deserialize(d).map(Some)
}

fn complete() -> String {
    "complete".into()
}

fn from_ours(value: Value) -> Parsed {
    let title = title_of(&value);
    let mut c: OurConversation =
        serde_json::from_value(value).map_err(|e| (title.clone(), e.to_string()))?;
    c.messages.sort_by_key(|m| m.seq);
    Ok(Incoming {
        key: format!("chatkit:{}", c.id),
        own_id: Some(c.id),
        title: Some(c.title),
        created_at: c.created_at,
        updated_at: c.updated_at,
        pinned: c.pinned,
        archived: c.archived,
        messages: c
            .messages
            .into_iter()
            .map(|m| IncomingMessage {
                role: m.role,
                content: m.content,
                status: MessageStatus::parse(&m.status),
                tool_calls: m.tool_calls.and_then(|t| serde_json::to_value(t).ok()),
                created_at: m.created_at,
                source_id: m.id,
                parent: m.parent_id,
            })
            .collect(),
        current: c.current_message_id,
    })
}

#[derive(Deserialize)]
struct GptConversation {
    #[serde(default)]
    create_time: Option<f64>,
    #[serde(default)]
    update_time: Option<f64>,
    mapping: HashMap<String, GptNode>,
    #[serde(default)]
    current_node: Option<String>,
    #[serde(default)]
    conversation_id: Option<String>,
    #[serde(default)]
    id: Option<String>,
}

#[derive(Deserialize)]
struct GptNode {
    #[serde(default)]
    message: Option<GptMessage>,
    #[serde(default)]
    parent: Option<String>,
    #[serde(default)]
    children: Vec<String>,
}

#[derive(Deserialize)]
struct GptMessage {
    author: GptAuthor,
    #[serde(default)]
    content: Option<GptContent>,
    #[serde(default)]
    create_time: Option<f64>,
    #[serde(default)]
    metadata: Option<Value>,
}

#[derive(Deserialize)]
struct GptAuthor {
    role: String,
}

#[derive(Deserialize)]
struct GptContent {
    #[serde(default)]
    parts: Option<Vec<Value>>,
    #[serde(default)]
    text: Option<String>,
}

fn unix_time(seconds: f64) -> Option<DateTime<Utc>> {
    if !seconds.is_finite() {
        return None;
    }
    let micros = (seconds * 1_000_000.0).round() as i64;
    Utc.timestamp_micros(micros).single()
}

fn from_chatgpt(value: Value) -> Parsed {
    let title = title_of(&value);
    let c: GptConversation =
        serde_json::from_value(value).map_err(|e| (title.clone(), e.to_string()))?;
    let created_at = c
        .create_time
        .and_then(unix_time)
        .ok_or_else(|| (title.clone(), "it has no create_time".to_string()))?;
    // The branch shown last: from `current_node` up to the root (or, without one, the
    // newest leaf).
    let leaf = c.current_node.clone().or_else(|| {
        c.mapping
            .iter()
            .filter(|(_, node)| node.children.is_empty())
            .max_by(|a, b| {
                let time = |n: &GptNode| n.message.as_ref().and_then(|m| m.create_time);
                time(a.1)
                    .partial_cmp(&time(b.1))
                    .unwrap_or(std::cmp::Ordering::Equal)
            })
            .map(|(id, _)| id.clone())
    });
    let mut path = Vec::new();
    let mut at = leaf;
    while let Some(id) = at {
        let node = c.mapping.get(&id).ok_or_else(|| {
            (
                title.clone(),
                format!("its mapping has no node {id:?} on the current path"),
            )
        })?;
        path.push(node);
        if path.len() > c.mapping.len() {
            return Err((title, "its mapping has a cycle".into()));
        }
        at = node.parent.clone();
    }
    path.reverse();
    let mut last = created_at;
    let mut messages = Vec::new();
    for message in path.into_iter().filter_map(|node| node.message.as_ref()) {
        let role = match message.author.role.as_str() {
            "user" => Role::User,
            "assistant" => Role::Assistant,
            _ => continue,
        };
        let hidden = message
            .metadata
            .as_ref()
            .and_then(|m| m.get("is_visually_hidden_from_conversation"))
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let text = message.content.as_ref().map(gpt_text).unwrap_or_default();
        if hidden || text.trim().is_empty() {
            continue;
        }
        let at = message.create_time.and_then(unix_time).unwrap_or(last);
        last = last.max(at);
        messages.push(IncomingMessage {
            role,
            content: text,
            status: MessageStatus::Complete,
            tool_calls: None,
            created_at: at,
            source_id: None,
            parent: None,
        });
    }
    let updated_at = c.update_time.and_then(unix_time).unwrap_or(last).max(last);
    let source = c.conversation_id.or(c.id).unwrap_or_else(|| {
        format!(
            "{}:{}",
            c.create_time.unwrap_or_default(),
            title.as_deref().unwrap_or("")
        )
    });
    Ok(Incoming {
        key: format!("chatgpt:{source}"),
        own_id: None,
        title,
        created_at,
        updated_at,
        pinned: false,
        archived: false,
        messages,
        current: None,
    })
}

/// The text parts of a ChatGPT message (images and other attachments are left out).
fn gpt_text(content: &GptContent) -> String {
    match (&content.parts, &content.text) {
        (Some(parts), _) => parts
            .iter()
            .filter_map(Value::as_str)
            .filter(|p| !p.trim().is_empty())
            .collect::<Vec<_>>()
            .join("\n\n"),
        (None, Some(text)) => text.clone(),
        (None, None) => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str) -> (Vec<Parsed>, Result<(), ReadError>) {
        let mut out = Vec::new();
        let result = read_all(text.as_bytes(), &mut |p| {
            out.push(p);
            true
        });
        (out, result)
    }

    #[test]
    fn chatgpt_takes_the_current_branch_only() {
        let file = r#"[{"title": "Trip", "create_time": 1700000000.5, "update_time": 1700000100,
          "id": "abc", "current_node": "a2",
          "mapping": {
            "root": {"id": "root", "message": null, "parent": null, "children": ["sys"]},
            "sys": {"id": "sys", "parent": "root", "children": ["u"], "message":
               {"author": {"role": "system"}, "content": {"content_type": "text", "parts": ["be nice"]}}},
            "u": {"id": "u", "parent": "sys", "children": ["a1", "a2"], "message":
               {"author": {"role": "user"}, "create_time": 1700000010,
                "content": {"content_type": "text", "parts": ["plan a trip"]}}},
            "a1": {"id": "a1", "parent": "u", "children": [], "message":
               {"author": {"role": "assistant"}, "create_time": 1700000020,
                "content": {"content_type": "text", "parts": ["first answer"]}}},
            "a2": {"id": "a2", "parent": "u", "children": [], "message":
               {"author": {"role": "assistant"}, "create_time": 1700000030,
                "content": {"content_type": "text", "parts": ["second answer", {"image": 1}]}}}
          }}]"#;
        let (parsed, result) = read(file);
        result.unwrap();
        let c = parsed.into_iter().next().unwrap().unwrap();
        assert_eq!(c.key, "chatgpt:abc");
        assert_eq!(c.title.as_deref(), Some("Trip"));
        let texts: Vec<_> = c.messages.iter().map(|m| m.content.as_str()).collect();
        assert_eq!(texts, ["plan a trip", "second answer"]);
        assert_eq!(c.messages[1].created_at.timestamp(), 1_700_000_030);
        assert_eq!(c.created_at.timestamp_micros(), 1_700_000_000_500_000);
    }

    #[test]
    fn our_export_passes_over_the_rest() {
        let id = Uuid::new_v4();
        let file = format!(
            r#"{{"format": "chatkit-tasks-export", "tasks": [{{"id": 1}}], "conversations": [
              {{"id": "{id}", "title": "T", "created_at": "2026-01-01T00:00:00Z",
                "updated_at": "2026-01-02T00:00:00Z", "pinned": true, "archived": false,
                "messages": [
                  {{"seq": 2, "role": "assistant", "content": "b", "status": "complete",
                    "tool_calls": null, "created_at": "2026-01-01T00:00:02Z"}},
                  {{"seq": 1, "role": "user", "content": "a", "created_at": "2026-01-01T00:00:01Z"}}
                ]}},
              {{"title": "broken"}}
            ], "account": {{}}}}"#
        );
        let (parsed, result) = read(&file);
        result.unwrap();
        let first = parsed[0].as_ref().unwrap();
        assert_eq!(first.own_id, Some(id));
        assert!(first.pinned);
        assert_eq!(first.messages[0].content, "a");
        assert_eq!(parsed[1].as_ref().unwrap_err().0.as_deref(), Some("broken"));
    }

    #[test]
    fn a_one_conversation_export_is_that_conversation_with_its_branches() {
        let (id, first, edit) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        let file = format!(
            r#"{{"id": "{id}", "title": "One", "created_at": "2026-01-01T00:00:00Z",
                "updated_at": "2026-01-02T00:00:00Z", "current_message_id": "{edit}",
                "messages": [
                  {{"id": "{first}", "parent_id": null, "seq": 1, "role": "user", "content": "a",
                    "created_at": "2026-01-01T00:00:01Z"}},
                  {{"id": "{edit}", "parent_id": null, "seq": 2, "role": "user", "content": "b",
                    "created_at": "2026-01-01T00:00:02Z"}}
                ]}}"#
        );
        let (parsed, result) = read(&file);
        result.unwrap();
        assert_eq!(parsed.len(), 1);
        let c = parsed[0].as_ref().unwrap();
        assert_eq!(c.own_id, Some(id));
        assert_eq!(c.current, Some(edit));
        assert_eq!(
            c.messages[1].parent,
            Some(None),
            "an edit of the first message"
        );
    }

    #[test]
    fn a_cut_file_says_where() {
        let (parsed, result) =
            read(r#"[{"title": "a", "create_time": 1, "mapping": {}}, {"title": "#);
        assert_eq!(parsed.len(), 1);
        match result {
            Err(ReadError::Syntax { line, .. }) => assert_eq!(line, 1),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            read(r#"{"tasks": []}"#).1,
            Err(ReadError::Unknown)
        ));
        assert!(matches!(read("42").1, Err(ReadError::Unknown)));
    }
}
