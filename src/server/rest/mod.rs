//! REST adapters over the service layer, with the OpenAPI document generated from the routes.

pub mod approvals;
pub mod auth;
pub mod branches;
pub mod chat;
pub mod events;
pub mod tasks;
pub mod transfer;

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
    components(schemas(crate::model::ErrorBody, crate::model::TaskFilter)),
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
        // The live event stream also takes a single-use stream ticket in its query (an
        // `EventSource` on another origin cannot send headers; the session token never goes
        // into a URL).
        components.add_security_scheme(
            "ticket",
            SecurityScheme::ApiKey(ApiKey::Query(ApiKeyValue::new("ticket"))),
        );
    }
}

/// Declares, on every operation, the errors the server's guards and services can answer
/// with, each with the `{"detail": …}` body: 400 (validation), 401 and 403 (authenticated
/// operations; 403 is the cross-origin cookie check on writes), 404 where a path names
/// something, 408 (request time limit), 413 (body limit), 429 with `Retry-After` (rate
/// limits), and 503 while shutting down.
struct ErrorResponses;

impl utoipa::Modify for ErrorResponses {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::{
            header::HeaderBuilder, schema::Type, ContentBuilder, ObjectBuilder, Ref, RefOr,
            ResponseBuilder,
        };
        let error = |description: &str, retry_after: bool| {
            let mut response = ResponseBuilder::new().description(description).content(
                "application/json",
                ContentBuilder::new()
                    .schema(Some(Ref::from_schema_name("ErrorBody")))
                    .build(),
            );
            if retry_after {
                response = response.header(
                    "Retry-After",
                    HeaderBuilder::new()
                        .schema(ObjectBuilder::new().schema_type(Type::Integer))
                        .description(Some("seconds to wait before trying again"))
                        .build(),
                );
            }
            RefOr::T(response.build())
        };
        for (path, item) in openapi.paths.paths.iter_mut() {
            let operations = [
                (&mut item.get, false),
                (&mut item.put, true),
                (&mut item.post, true),
                (&mut item.delete, true),
                (&mut item.patch, true),
            ];
            for (operation, writes) in operations {
                let Some(operation) = operation.as_mut() else {
                    continue;
                };
                let public = operation
                    .security
                    .as_ref()
                    .is_some_and(|s| s.iter().all(|r| r == &Default::default()));
                let responses = &mut operation.responses.responses;
                let mut add = |code: &str, response: RefOr<utoipa::openapi::Response>| {
                    // A declared status keeps its own description, and gains the error body.
                    match responses.get_mut(code) {
                        Some(RefOr::T(existing)) if existing.content.is_empty() => {
                            if let RefOr::T(new) = response {
                                existing.content = new.content;
                                existing.headers.extend(new.headers);
                            }
                        }
                        Some(_) => {}
                        None => {
                            responses.insert(code.to_string(), response);
                        }
                    }
                };
                add("400", error("invalid input", false));
                add("408", error("the request took too long", false));
                add("413", error("the request body is too large", false));
                add("429", error("too many requests", true));
                add("503", error("the service is shutting down", false));
                if !public {
                    add("401", error("not signed in, or the session ended", false));
                }
                // Every browser write from a foreign origin, sign-in included (CSRF).
                if writes {
                    add("403", error("cross-origin request refused", false));
                }
                if path.contains('{') {
                    add("404", error("not found", false));
                }
            }
        }
        // The body of a new conversation (its title) is optional.
        if let Some(post) = openapi
            .paths
            .paths
            .get_mut("/api/chat/conversations")
            .and_then(|item| item.post.as_mut())
        {
            if let Some(body) = post.request_body.as_mut() {
                body.required = Some(utoipa::openapi::Required::False);
            }
        }
    }
}

/// The REST routes with `/api/openapi.json` describing them, and, apart, the live event
/// stream (`/api/chat/events`, in the same document): long-lived streams are served outside
/// the per-request layers (tracing span, compression, time limit), each of which would stay
/// allocated for the life of every open stream.
pub fn router() -> (Router<AppState>, Router<AppState>) {
    let (events, events_doc) = OpenApiRouter::new()
        .merge(events::router())
        .split_for_parts();
    let (router, mut openapi) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(auth::router())
        .merge(tasks::router())
        .merge(chat::router())
        .merge(branches::router())
        .merge(approvals::router())
        .merge(transfer::router())
        .split_for_parts();
    openapi.merge(events_doc);
    // After the routes are in: the errors are declared on every operation.
    utoipa::Modify::modify(&ErrorResponses, &mut openapi);
    let document = openapi.to_pretty_json().unwrap_or_else(|_| "{}".into());
    let router = router.route(
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
    );
    (router, events)
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
        let detail = match &rejection {
            JsonRejection::MissingJsonContentType(_) => {
                "send the body as JSON, with Content-Type: application/json".to_string()
            }
            JsonRejection::JsonSyntaxError(_) => "the body is not valid JSON".to_string(),
            JsonRejection::JsonDataError(err) => {
                // serde says which field is wrong; its position in the text helps nobody.
                let text = std::error::Error::source(err)
                    .map(|e| e.to_string())
                    .unwrap_or_else(|| err.body_text());
                let text = text
                    .split(" at line ")
                    .next()
                    .unwrap_or_default()
                    .to_string();
                format!("the JSON body does not have the expected fields: {text}")
            }
            _ => "the body could not be read".to_string(),
        };
        AppError::validation(detail)
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
