//! The one error type of the service layer, and its one mapping to HTTP statuses.

use std::time::Duration;

use axum::{
    http::{header, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
    Json,
};

use crate::model::ApiError;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("{0}")]
    Validation(String),
    #[error("authentication required")]
    Unauthorized,
    #[error("wrong email or password")]
    InvalidCredentials,
    #[error("{0}")]
    Forbidden(String),
    /// What was not found, e.g. "task 7": the message must be actionable for a model too.
    #[error("{0} not found")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("too many requests; retry in {} s", retry_after.as_secs().max(1))]
    RateLimited { retry_after: Duration },
    #[error("too many open event streams for this account ({0}); close one (another tab or client) first")]
    TooManyStreams(usize),
    #[error("{0}")]
    TooLarge(String),
    #[error("the service is shutting down; retry shortly")]
    Unavailable,
    #[error("internal error")]
    Internal(#[from] anyhow::Error),
}

pub type AppResult<T> = Result<T, AppError>;

/// A copy for each waiter on one outcome (duplicates of one send share its result). An
/// internal error keeps its text; its chain stays with the original, which is what is logged.
impl Clone for AppError {
    fn clone(&self) -> Self {
        match self {
            Self::Validation(m) => Self::Validation(m.clone()),
            Self::Unauthorized => Self::Unauthorized,
            Self::InvalidCredentials => Self::InvalidCredentials,
            Self::Forbidden(m) => Self::Forbidden(m.clone()),
            Self::NotFound(m) => Self::NotFound(m.clone()),
            Self::Conflict(m) => Self::Conflict(m.clone()),
            Self::RateLimited { retry_after } => Self::RateLimited {
                retry_after: *retry_after,
            },
            Self::TooManyStreams(n) => Self::TooManyStreams(*n),
            Self::TooLarge(m) => Self::TooLarge(m.clone()),
            Self::Unavailable => Self::Unavailable,
            Self::Internal(err) => Self::Internal(anyhow::anyhow!("{err:#}")),
        }
    }
}

impl AppError {
    pub fn validation(msg: impl Into<String>) -> Self {
        Self::Validation(msg.into())
    }

    pub fn status(&self) -> StatusCode {
        match self {
            Self::Validation(_) => StatusCode::BAD_REQUEST,
            Self::Unauthorized | Self::InvalidCredentials => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::RateLimited { .. } | Self::TooManyStreams(_) => StatusCode::TOO_MANY_REQUESTS,
            Self::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The client-facing form. Internal details are logged here, never sent.
    pub fn to_api_error(&self) -> ApiError {
        if let Self::Internal(err) = self {
            tracing::error!(error = ?err, "internal error");
        }
        ApiError::new(self.status().as_u16(), self.to_string())
    }
}

impl From<sqlx::Error> for AppError {
    fn from(err: sqlx::Error) -> Self {
        Self::Internal(err.into())
    }
}

/// The two shapes an error answer takes: `{"detail": …}` everywhere, and ChatKit's error event
/// (`{"type": "error", "code": "custom", "message": …, "allow_retry": …}`) on `/chatkit`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorShape {
    Detail,
    ChatKit,
}

impl ErrorShape {
    /// The shape a request to `path` gets.
    pub fn for_path(path: &str) -> Self {
        if path == super::CHATKIT_PATH {
            Self::ChatKit
        } else {
            Self::Detail
        }
    }

    /// An error answer: `status`, the sentence, and `Retry-After` when given.
    pub fn response(
        self,
        status: StatusCode,
        message: &str,
        retry_after: Option<Duration>,
    ) -> Response {
        let body = match self {
            Self::Detail => serde_json::json!({ "detail": message }),
            Self::ChatKit => serde_json::json!({
                "type": "error",
                "code": "custom",
                "message": message,
                // Worth trying again unchanged: limits, time-outs and the server's own trouble.
                "allow_retry": status.is_server_error()
                    || status == StatusCode::TOO_MANY_REQUESTS
                    || status == StatusCode::REQUEST_TIMEOUT,
            }),
        };
        let mut response = (status, Json(body)).into_response();
        if let Some(retry_after) = retry_after {
            let secs = retry_after.as_secs().max(1).to_string();
            if let Ok(value) = HeaderValue::from_str(&secs) {
                response.headers_mut().insert(header::RETRY_AFTER, value);
            }
        }
        response
    }
}

impl AppError {
    /// This error as an answer in `shape`.
    pub fn into_shaped_response(self, shape: ErrorShape) -> Response {
        let body = self.to_api_error();
        let retry_after = match &self {
            Self::RateLimited { retry_after } => Some(*retry_after),
            _ => None,
        };
        shape.response(self.status(), &body.detail, retry_after)
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        self.into_shaped_response(ErrorShape::Detail)
    }
}
