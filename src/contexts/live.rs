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
        #[cfg(feature = "hydrate")]
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

    #[cfg_attr(not(feature = "hydrate"), allow(dead_code))]
    fn dispatch(&self, event: LiveEvent) {
        let listeners = self.listeners.try_get_value().unwrap_or_default();
        for (_, listener) in listeners {
            listener.run(event.clone());
        }
    }

    #[cfg(feature = "hydrate")]
    fn connect(self) {
        use send_wrapper::SendWrapper;
        use wasm_bindgen::{closure::Closure, JsCast};

        let Ok(source) = web_sys::EventSource::new("/api/chat/events") else {
            return;
        };
        let on_message = Closure::<dyn FnMut(web_sys::MessageEvent)>::new(
            move |message: web_sys::MessageEvent| {
                let event = message
                    .data()
                    .as_string()
                    .and_then(|text| serde_json::from_str::<LiveEvent>(&text).ok());
                if let Some(event) = event {
                    self.dispatch(event);
                }
            },
        );
        source.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
        let connected = self.connected;
        let on_open = Closure::<dyn FnMut()>::new(move || connected.set(true));
        source.set_onopen(Some(on_open.as_ref().unchecked_ref()));
        let on_error = Closure::<dyn FnMut()>::new(move || connected.set(false));
        source.set_onerror(Some(on_error.as_ref().unchecked_ref()));
        let held = SendWrapper::new((source, on_message, on_open, on_error));
        on_cleanup(move || held.take().0.close());
    }
}
