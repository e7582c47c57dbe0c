//! The tab's one live event stream (`GET /api/chat/events`, an `EventSource`), shared by the
//! thread, the sidebar and the task panel. The browser reconnects by itself and sends
//! `Last-Event-ID`, so the server replays what was missed. While it is not connected the
//! thread falls back to polling.

use leptos::prelude::*;

use crate::model::LiveEvent;

#[derive(Clone, Copy)]
pub struct LiveContext {
    listeners: StoredValue<Vec<(u64, Callback<LiveEvent>)>>,
    next_id: StoredValue<u64>,
    /// True while the stream is open.
    pub connected: RwSignal<bool>,
}

impl LiveContext {
    /// Provides the context and, in the browser, opens the stream.
    pub fn provide() -> Self {
        let live = Self {
            listeners: StoredValue::new(Vec::new()),
            next_id: StoredValue::new(0),
            connected: RwSignal::new(false),
        };
        provide_context(live);
        #[cfg(any(feature = "hydrate", feature = "csr"))]
        Effect::new(move |_| live.connect());
        live
    }

    /// Calls `on_event` for every event until the calling component is cleaned up.
    pub fn subscribe(&self, on_event: impl Fn(LiveEvent) + Send + Sync + 'static) {
        let id = self.next_id.get_value();
        self.next_id.set_value(id + 1);
        self.listeners
            .update_value(|list| list.push((id, Callback::new(on_event))));
        let listeners = self.listeners;
        on_cleanup(move || {
            listeners.try_update_value(|list| list.retain(|(i, _)| *i != id));
        });
    }

    #[cfg_attr(not(any(feature = "hydrate", feature = "csr")), allow(dead_code))]
    fn dispatch(&self, event: LiveEvent) {
        let listeners = self.listeners.try_get_value().unwrap_or_default();
        for (_, listener) in listeners {
            listener.run(event.clone());
        }
    }

    #[cfg(any(feature = "hydrate", feature = "csr"))]
    fn connect(self) {
        // A page on another origin (the CSR build) signs in with a bearer token, which an
        // EventSource cannot send as a header, and which must never go into a URL: each
        // connection gets a single-use ticket instead.
        #[cfg(feature = "csr")]
        if crate::api::client::token().is_some() {
            let current = StoredValue::new(None::<Held>);
            let last_id = StoredValue::new(None::<String>);
            on_cleanup(move || {
                if let Some(Some(held)) = current.try_update_value(Option::take) {
                    held.take().0.close();
                }
            });
            return with_ticket(self, current, last_id);
        }
        let url = format!("{}/api/chat/events", crate::api::client::server_url());
        if let Some(held) = self.open(&url, None) {
            on_cleanup(move || held.take().0.close());
        }
    }

    /// Opens an `EventSource` on `url`; `on_closed`, when given, runs once it fails (instead of
    /// the browser's own reconnecting, which would reuse a spent ticket).
    #[cfg(any(feature = "hydrate", feature = "csr"))]
    fn open(self, url: &str, on_closed: Option<Callback<Option<String>>>) -> Option<Held> {
        use send_wrapper::SendWrapper;
        use wasm_bindgen::{closure::Closure, JsCast};

        let source = web_sys::EventSource::new(url).ok()?;
        let last_id = StoredValue::new(None::<String>);
        let on_message = Closure::<dyn FnMut(web_sys::MessageEvent)>::new(
            move |message: web_sys::MessageEvent| {
                let id = message.last_event_id();
                if !id.is_empty() {
                    last_id.set_value(Some(id));
                }
                let event = message.data().as_string().and_then(|text| decode(&text));
                if let Some(event) = event {
                    self.dispatch(event);
                }
            },
        );
        source.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
        let connected = self.connected;
        let on_open = Closure::<dyn FnMut()>::new(move || connected.set(true));
        source.set_onopen(Some(on_open.as_ref().unchecked_ref()));
        let failing = source.clone();
        let on_error = Closure::<dyn FnMut()>::new(move || {
            connected.set(false);
            if let Some(on_closed) = on_closed {
                failing.close();
                on_closed.run(last_id.get_value());
            }
        });
        source.set_onerror(Some(on_error.as_ref().unchecked_ref()));
        Some(SendWrapper::new((source, on_message, on_open, on_error)))
    }
}

#[cfg(any(feature = "hydrate", feature = "csr"))]
type Held = send_wrapper::SendWrapper<(
    web_sys::EventSource,
    wasm_bindgen::closure::Closure<dyn FnMut(web_sys::MessageEvent)>,
    wasm_bindgen::closure::Closure<dyn FnMut()>,
    wasm_bindgen::closure::Closure<dyn FnMut()>,
)>;

/// The ticketed stream: a ticket, then the stream (after the last event it received); when
/// it fails, a new ticket a second later.
#[cfg(feature = "csr")]
fn with_ticket(
    live: LiveContext,
    current: StoredValue<Option<Held>>,
    last_id: StoredValue<Option<String>>,
) {
    leptos::task::spawn_local(async move {
        let Ok(ticket) = crate::api::events::stream_ticket().await else {
            retry_later(live, current, last_id);
            return;
        };
        let mut url = format!(
            "{}/api/chat/events?ticket={}",
            crate::api::client::server_url(),
            ticket.ticket
        );
        if let Some(id) = last_id.get_value() {
            url.push_str(&format!("&last_event_id={id}"));
        }
        let on_closed = Callback::new(move |seen: Option<String>| {
            if seen.is_some() {
                last_id.set_value(seen);
            }
            retry_later(live, current, last_id);
        });
        let held = live.open(&url, Some(on_closed));
        // Cleaned up meanwhile: nothing may stay open.
        if let Some(Some(held)) = current.try_set_value(held) {
            held.take().0.close();
        }
    });
}

#[cfg(feature = "csr")]
fn retry_later(
    live: LiveContext,
    current: StoredValue<Option<Held>>,
    last_id: StoredValue<Option<String>>,
) {
    set_timeout(
        move || {
            if !current.is_disposed() {
                with_ticket(live, current, last_id);
            }
        },
        std::time::Duration::from_secs(1),
    );
}

/// Decodes one event. Reads the `type` first, then the fields of that kind directly: serde's
/// derive for an internally tagged enum buffers every event in a generic `Content` tree, and
/// that machinery alone would push the WASM bundle over its size budget.
#[cfg_attr(not(any(feature = "hydrate", feature = "csr")), allow(dead_code))]
fn decode(text: &str) -> Option<LiveEvent> {
    use crate::model::{ActivityState, Conversation, Message};
    use serde::Deserialize;
    use uuid::Uuid;

    #[derive(Deserialize)]
    struct Kind {
        #[serde(rename = "type")]
        kind: String,
    }
    #[derive(Deserialize)]
    struct Text {
        conversation_id: Uuid,
        seq: i64,
        text: String,
        #[serde(default)]
        offset: i64,
    }
    #[derive(Deserialize)]
    struct Activity {
        conversation_id: Uuid,
        #[serde(default)]
        user_seq: i64,
        state: ActivityState,
        tool_name: Option<String>,
        #[serde(default)]
        call_id: Option<String>,
        #[serde(default)]
        arguments: Option<serde_json::Value>,
        #[serde(default)]
        task: Option<crate::model::TaskRef>,
    }
    #[derive(Deserialize)]
    struct Decided {
        conversation_id: Uuid,
        user_seq: i64,
        call_id: String,
        approved: bool,
    }
    #[derive(Deserialize)]
    struct Undone {
        conversation_id: Uuid,
        message_id: Uuid,
        index: usize,
        undone_at: chrono::DateTime<chrono::Utc>,
    }
    #[derive(Deserialize)]
    struct Deleted {
        id: Uuid,
    }
    #[derive(Deserialize)]
    struct TaskDeleted {
        id: i32,
    }
    #[derive(Deserialize)]
    struct Reminder {
        task_id: i32,
        title: String,
        due: Option<String>,
        at: chrono::DateTime<chrono::Utc>,
    }
    #[derive(Deserialize)]
    struct Snoozed {
        task_id: i32,
        until: chrono::DateTime<chrono::Utc>,
    }
    let kind = serde_json::from_str::<Kind>(text).ok()?.kind;
    Some(match kind.as_str() {
        "message" => LiveEvent::Message(serde_json::from_str::<Message>(text).ok()?),
        "conversation" => LiveEvent::Conversation(serde_json::from_str::<Conversation>(text).ok()?),
        "delta" | "partial" => {
            let t = serde_json::from_str::<Text>(text).ok()?;
            if kind == "delta" {
                LiveEvent::Delta {
                    conversation_id: t.conversation_id,
                    seq: t.seq,
                    text: t.text,
                    offset: t.offset,
                }
            } else {
                LiveEvent::Partial {
                    conversation_id: t.conversation_id,
                    seq: t.seq,
                    text: t.text,
                }
            }
        }
        "activity" => {
            let a = serde_json::from_str::<Activity>(text).ok()?;
            LiveEvent::Activity {
                conversation_id: a.conversation_id,
                user_seq: a.user_seq,
                state: a.state,
                tool_name: a.tool_name,
                call_id: a.call_id,
                arguments: a.arguments,
                task: a.task,
            }
        }
        "approval_decided" => {
            let d = serde_json::from_str::<Decided>(text).ok()?;
            LiveEvent::ApprovalDecided {
                conversation_id: d.conversation_id,
                user_seq: d.user_seq,
                call_id: d.call_id,
                approved: d.approved,
            }
        }
        "tool_call_undone" => {
            let u = serde_json::from_str::<Undone>(text).ok()?;
            LiveEvent::ToolCallUndone {
                conversation_id: u.conversation_id,
                message_id: u.message_id,
                index: u.index,
                undone_at: u.undone_at,
            }
        }
        "conversation_deleted" => LiveEvent::ConversationDeleted {
            id: serde_json::from_str::<Deleted>(text).ok()?.id,
        },
        "task" => LiveEvent::Task(serde_json::from_str::<crate::model::Task>(text).ok()?),
        "task_deleted" => LiveEvent::TaskDeleted {
            id: serde_json::from_str::<TaskDeleted>(text).ok()?.id,
        },
        "reminder" => {
            let r = serde_json::from_str::<Reminder>(text).ok()?;
            LiveEvent::Reminder {
                task_id: r.task_id,
                title: r.title,
                due: r.due,
                at: r.at,
            }
        }
        "reminder_snoozed" => {
            let s = serde_json::from_str::<Snoozed>(text).ok()?;
            LiveEvent::ReminderSnoozed {
                task_id: s.task_id,
                until: s.until,
            }
        }
        "resync" => LiveEvent::Resync,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Conversation, Message, MessageStatus, Role};

    #[test]
    fn decodes_what_the_server_encodes() {
        let id = uuid::Uuid::new_v4();
        let at = chrono::Utc::now();
        let events = vec![
            LiveEvent::Message(Message {
                id,
                conversation_id: id,
                seq: 2,
                role: Role::Assistant,
                content: "**hi**".into(),
                tool_calls: None,
                status: MessageStatus::Stopped,
                created_at: at,
                client_id: None,
                html: Some("<strong>hi</strong>".into()),
                parent_id: Some(id),
                sibling_index: 2,
                sibling_count: 2,
                sibling_ids: vec![id, id],
                branch_changes: vec![],
            }),
            LiveEvent::Delta {
                conversation_id: id,
                seq: 2,
                text: "wo".into(),
                offset: 3,
            },
            LiveEvent::Partial {
                conversation_id: id,
                seq: 2,
                text: "two".into(),
            },
            LiveEvent::working(id, 1, Some("add_task".into())),
            LiveEvent::approval(
                id,
                1,
                &crate::model::PendingApproval {
                    call_id: "c1".into(),
                    tool_name: "delete_task".into(),
                    arguments: serde_json::json!({"task_id": 2}),
                    task: Some(crate::model::TaskRef {
                        id: 2,
                        title: "Milk".into(),
                    }),
                },
            ),
            LiveEvent::ApprovalDecided {
                conversation_id: id,
                user_seq: 1,
                call_id: "c1".into(),
                approved: true,
            },
            LiveEvent::Conversation(Conversation {
                id,
                user_id: id,
                title: "T".into(),
                created_at: at,
                updated_at: at,
                message_count: 2,
                last_message_preview: Some("hi".into()),
                pinned: true,
                archived: false,
                current_message_id: None,
            }),
            LiveEvent::ConversationDeleted { id },
            LiveEvent::Task(crate::model::Task {
                id: 3,
                title: "Milk".into(),
                description: None,
                completed: true,
                created_at: at,
                updated_at: at,
                due: Some("2026-03-13T17:00".into()),
                priority: 1,
                tags: vec!["home".into()],
                recurrence: Some("FREQ=WEEKLY;BYDAY=FR".into()),
            }),
            LiveEvent::TaskDeleted { id: 3 },
            LiveEvent::Reminder {
                task_id: 3,
                title: "Milk".into(),
                due: Some("2026-03-13T17:00".into()),
                at,
            },
            LiveEvent::ReminderSnoozed {
                task_id: 3,
                until: at,
            },
            LiveEvent::Resync,
        ];
        for event in events {
            let text = serde_json::to_string(&event).unwrap();
            assert_eq!(decode(&text), Some(event), "{text}");
        }
        assert_eq!(decode(r#"{"type":"nonsense"}"#), None);
    }
}
