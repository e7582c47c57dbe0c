//! The HTML of assistant messages, rendered once per message: a message never changes once
//! stored, so its rendering is kept (bounded, per process) and every page, server function
//! and live stream that presents it reuses it.

use std::sync::{Arc, OnceLock};

use quick_cache::sync::Cache;
use uuid::Uuid;

use super::markdown;
use crate::model::{Message, Role};

/// Messages whose HTML is kept; beyond it the least recently used go.
const KEPT: usize = 20_000;

fn cache() -> &'static Cache<Uuid, Arc<str>> {
    static CACHE: OnceLock<Cache<Uuid, Arc<str>>> = OnceLock::new();
    CACHE.get_or_init(|| Cache::new(KEPT))
}

/// Sets `message.html` for an assistant message (none for a user's), rendered from its
/// markdown on this server; whatever `html` it arrived with is replaced.
pub fn present(message: &mut Message) {
    message.html = (message.role == Role::Assistant).then(|| html_of(message).to_string());
}

/// The rendered HTML of an assistant message.
fn html_of(message: &Message) -> Arc<str> {
    if let Some(html) = cache().get(&message.id) {
        return html;
    }
    let html: Arc<str> = markdown::render(&message.content).into();
    cache().insert(message.id, html.clone());
    html
}
