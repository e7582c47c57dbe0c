//! Event-stream server functions (`/sfn/events/*`).

use super::declare::server_fns;

use crate::model::{ApiError, StreamTicket};

server_fns! {
    prefix = "/sfn/events";

    /// A single-use ticket for one event stream, for an `EventSource` that cannot send the
    /// bearer token as a header (the CSR build, other apps): `/api/chat/events?ticket=…`.
    #[endpoint = "ticket", name = CreateStreamTicket]
    pub async fn stream_ticket() -> Result<StreamTicket, ApiError> {
        let (state, user) = super::ssr::authenticated().await?;
        crate::server::services::stream_tickets::issue(&state.pool, &user)
            .await
            .map_err(super::ssr::fail)
    }
}
