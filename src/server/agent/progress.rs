//! What a running turn is doing right now (SPEC §9 "Using add_task…"), for every open tab.
//! Best effort: a failure to report progress is logged and never fails the turn. The row is
//! removed in the transaction that ends the turn (`services::turns::finish`).

use sqlx::PgPool;
use uuid::Uuid;

use crate::server::services::chat;

pub struct Progress {
    pub pool: PgPool,
    pub conversation: Uuid,
    pub user_seq: i64,
}

impl Progress {
    /// `None`: the model is thinking; else the tool in use.
    pub async fn report(&self, tool_name: Option<&str>) {
        if let Err(err) =
            chat::set_activity(&self.pool, self.conversation, self.user_seq, tool_name).await
        {
            tracing::warn!(error = %err, "recording turn activity");
        }
    }
}
