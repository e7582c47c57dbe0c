//! REST adapters over the service layer, with the OpenAPI document generated from the routes.

pub mod auth;
pub mod chat;
pub mod events;
pub mod tasks;

use axum::{
    extract::{rejection::JsonRejection, rejection::PathRejection, rejection::QueryRejection},
    routing::get,
    Json, Router,
};
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;

use super::{error::AppError, state::AppState};

#[derive(OpenApi)]
#[openapi(
    info(title = "chatkit API", description = "Chat with an assistant that manages your to-do list."),
    modifiers(&BearerAuth),
    security(("bearer" = [])),
    tags((name = "auth"), (name = "tasks"), (name = "chat"))
)]
struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{
            ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme,
        };
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
        components.add_security_scheme(
            "cookie",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::new(
                super::auth::SESSION_COOKIE,
            ))),
        );
    }
}

/// Every REST route, plus `/api/openapi.json` describing them.
pub fn router() -> Router<AppState> {
    let (router, openapi) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(auth::router())
        .merge(tasks::router())
        .merge(chat::router())
        .merge(events::router())
        .split_for_parts();
    let document = openapi.to_pretty_json().unwrap_or_else(|_| "{}".into());
    router.route(
        "/api/openapi.json",
        get(move || {
            let document = document.clone();
            async move {
                (
                    [(axum::http::header::CONTENT_TYPE, "application/json")],
                    document,
                )
            }
        }),
    )
}

/// JSON body whose rejections are `400 {"detail": ...}` like every other error.
#[derive(axum::extract::FromRequest)]
#[from_request(via(axum::Json), rejection(AppError))]
pub struct ApiJson<T>(pub T);

impl<T: serde::Serialize> axum::response::IntoResponse for ApiJson<T> {
    fn into_response(self) -> axum::response::Response {
        Json(self.0).into_response()
    }
}

/// Query string, rejected as 400 JSON.
#[derive(axum::extract::FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(AppError))]
pub struct ApiQuery<T>(pub T);

/// Path parameters (e.g. UUIDs), rejected as 400 JSON.
#[derive(axum::extract::FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(AppError))]
pub struct ApiPath<T>(pub T);

impl From<JsonRejection> for AppError {
    fn from(rejection: JsonRejection) -> Self {
        AppError::validation(format!("invalid JSON body: {}", rejection.body_text()))
    }
}

impl From<QueryRejection> for AppError {
    fn from(rejection: QueryRejection) -> Self {
        AppError::validation(format!("invalid query: {}", rejection.body_text()))
    }
}

impl From<PathRejection> for AppError {
    fn from(rejection: PathRejection) -> Self {
        AppError::validation(format!("invalid path: {}", rejection.body_text()))
    }
}

pub use super::client_ip::ClientIp;
