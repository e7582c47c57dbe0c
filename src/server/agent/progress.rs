//! What a running turn is doing right now, for every open tab and API stream: the activity
//! (thinking, or "Using add_task…", SPEC §9) and the reply as the model writes it. Best effort:
//! a failure to report progress is logged and never fails the turn. The row is removed in the
//! transaction that ends the turn (`services::turn_records::finish`).

use std::{
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc, Mutex,
    },
    time::{Duration, Instant},
};

use sqlx::PgPool;

use crate::{
    model::LiveEvent,
    server::{
        bus::EventBus,
        services::activity::{self, Reporter},
    },
};

/// Streamed text is written out at most this often (one statement with its NOTIFY per flush),
/// so a fast model costs a bounded number of queries. A token after a quiet spell goes out at
/// once (the leading edge); only a burst waits, to be written together.
const FLUSH_EVERY: Duration = Duration::from_millis(15);

#[derive(Clone)]
pub struct Progress {
    pub pool: PgPool,
    pub bus: Arc<EventBus>,
    /// The attempt reporting (its writes are fenced by its lease).
    pub reporter: Reporter,
    /// Everything the model has written in this attempt.
    spoken: Arc<Mutex<String>>,
    /// Written but not yet flushed.
    pending: Arc<Mutex<String>>,
    flushing: Arc<AtomicBool>,
    /// When the last flush began.
    last_flush: Arc<Mutex<Option<Instant>>>,
    /// Where this attempt's text starts in the reply so far (known once its first activity
    /// is recorded), and the characters it has written: the offset of each delta that goes
    /// straight to this process's own streams.
    local: Arc<Mutex<LocalOffsets>>,
}

#[derive(Default)]
struct LocalOffsets {
    base: Option<i64>,
    written: i64,
}

impl Progress {
    pub fn new(pool: PgPool, bus: Arc<EventBus>, reporter: Reporter) -> Self {
        Self {
            pool,
            bus,
            reporter,
            spoken: Arc::default(),
            pending: Arc::default(),
            flushing: Arc::default(),
            last_flush: Arc::default(),
            local: Arc::default(),
        }
    }

    /// `None`: the model is thinking; else the tool in use.
    pub async fn report(&self, tool_name: Option<&str>) {
        match activity::set_activity(&self.pool, &self.bus, &self.reporter, tool_name).await {
            Ok(Some(so_far)) => {
                if let Ok(mut local) = self.local.lock() {
                    let written = local.written;
                    local.base.get_or_insert(so_far - written);
                }
            }
            // This attempt no longer holds the turn: nothing more of it goes out.
            Ok(None) => {
                if let Ok(mut local) = self.local.lock() {
                    local.base = None;
                }
            }
            Err(err) => tracing::warn!(error = %err, "recording turn activity"),
        }
    }

    /// Text the model just wrote: kept, and sent to the live streams shortly.
    pub fn text(&self, chunk: &str) {
        if chunk.is_empty() {
            return;
        }
        if let Ok(mut spoken) = self.spoken.lock() {
            spoken.push_str(chunk);
        }
        if let Ok(mut pending) = self.pending.lock() {
            pending.push_str(chunk);
        }
        self.send_locally(chunk);
        self.start_flushing();
    }

    /// The chunk as a delta to this process's own streams, at once (other replicas get it
    /// with the flush, over the bus; ours skip that copy).
    fn send_locally(&self, chunk: &str) {
        let offset = match self.local.lock() {
            Ok(mut local) => {
                let at = local.base.map(|base| base + local.written);
                local.written += chunk.chars().count() as i64;
                at
            }
            Err(_) => None,
        };
        let (Some(offset), Some(fanout)) = (offset, self.bus.local()) else {
            return;
        };
        let Reporter {
            user,
            conversation,
            user_seq,
            ..
        } = self.reporter;
        fanout.dispatch_local(
            user,
            LiveEvent::Delta {
                conversation_id: conversation,
                seq: user_seq + 1,
                text: chunk.to_string(),
                offset,
            },
        );
    }

    /// The reply written so far.
    pub fn spoken(&self) -> String {
        self.spoken.lock().map(|s| s.clone()).unwrap_or_default()
    }

    fn start_flushing(&self) {
        if self.flushing.swap(true, Ordering::SeqCst) {
            return;
        }
        let progress = self.clone();
        tokio::spawn(async move {
            loop {
                let wait = progress
                    .last_flush
                    .lock()
                    .ok()
                    .and_then(|last| *last)
                    .map_or(Duration::ZERO, |at| {
                        FLUSH_EVERY.saturating_sub(at.elapsed())
                    });
                if !wait.is_zero() {
                    tokio::time::sleep(wait).await;
                }
                if let Ok(mut last) = progress.last_flush.lock() {
                    *last = Some(Instant::now());
                }
                let text = progress
                    .pending
                    .lock()
                    .map(|mut p| std::mem::take(&mut *p))
                    .unwrap_or_default();
                if !text.is_empty() {
                    let flushed = activity::append_partial(
                        &progress.pool,
                        &progress.bus,
                        &progress.reporter,
                        &text,
                    )
                    .await;
                    if let Err(err) = flushed {
                        tracing::warn!(error = %err, "streaming a reply");
                    }
                }
                progress.flushing.store(false, Ordering::SeqCst);
                // Text that arrived after the take: flush again unless another flusher started.
                let more = progress.pending.lock().is_ok_and(|p| !p.is_empty());
                if !more || progress.flushing.swap(true, Ordering::SeqCst) {
                    return;
                }
            }
        });
    }
}
