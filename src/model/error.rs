//! The one error shape of every interface.

use serde::{Deserialize, Serialize};

/// The body of every error answer: `{"detail": "…"}` in plain words.
#[cfg(feature = "ssr")]
#[derive(utoipa::ToSchema)]
pub struct ErrorBody {
    pub detail: String,
}

/// The error every interface returns: an HTTP status and a sentence for the user.
/// REST sends it as `{"detail": "..."}`; server functions carry it as their error type.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{detail}")]
pub struct ApiError {
    pub status: u16,
    pub detail: String,
}

impl ApiError {
    pub fn new(status: u16, detail: impl Into<String>) -> Self {
        Self {
            status,
            detail: detail.into(),
        }
    }

    pub fn is_not_found(&self) -> bool {
        self.status == 404
    }

    pub fn is_unauthorized(&self) -> bool {
        self.status == 401
    }
}

impl leptos::server_fn::error::FromServerFnError for ApiError {
    type Encoder = leptos::server_fn::codec::JsonEncoding;

    fn from_server_fn_error(value: leptos::server_fn::error::ServerFnErrorErr) -> Self {
        use leptos::server_fn::error::ServerFnErrorErr as E;
        // Transport and decoding failures are the client's or the network's, not a server bug.
        let status = match &value {
            E::Request(_) | E::Response(_) => 0,
            E::Args(_) | E::Deserialization(_) | E::MissingArg(_) => 400,
            _ => 500,
        };
        Self::new(status, value.to_string())
    }
}
