//! Taking data out and bringing it in: `/api/export`, `/api/chat/conversations/{id}/export`,
//! `/api/import`. Exports stream from the database; an import streams into it.

use axum::{
    body::Body,
    extract::{Request, State},
    http::{header, HeaderMap, HeaderValue, StatusCode},
    response::{IntoResponse, Redirect, Response},
};
use futures::{StreamExt, TryStreamExt};
use serde::Deserialize;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use super::{ApiJson, ApiPath, ApiQuery};
use crate::server::query_value;
use crate::{
    model::ImportReport,
    server::{
        auth::AuthUser,
        error::{AppError, AppResult},
        services::{export, import},
        state::AppState,
    },
};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(export_account))
        .routes(routes!(export_conversation))
        .routes(routes!(import_file))
}

/// `attachment` with the name twice (RFC 6266): plain ASCII for old clients, and UTF-8
/// (RFC 5987) so "Café" stays "Café".
fn content_disposition(file_name: &str) -> String {
    let ascii: String = file_name
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() && c != '"' && c != '\\' {
                c
            } else {
                '-'
            }
        })
        .collect();
    let mut encoded = String::new();
    for byte in file_name.bytes() {
        if byte.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&byte) {
            encoded.push(char::from(byte));
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    format!("attachment; filename=\"{ascii}\"; filename*=UTF-8''{encoded}")
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ExportQuery {
    /// `json` (default) or `markdown`.
    #[serde(default)]
    format: Option<String>,
}

fn download(content_type: &str, file_name: &str, body: export::ExportBody) -> Response {
    let disposition = content_disposition(file_name);
    let mut response = Body::from_stream(body).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_str(content_type).expect("static"),
    );
    if let Ok(value) = HeaderValue::from_str(&disposition) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// Everything of the account as one JSON document (profile, tasks, every conversation with
/// every message, tool call and feedback), streamed.
#[utoipa::path(get, path = "/api/export", tag = "chat",
    responses((status = 200, description = "the export document", content_type = "application/json"), (status = 401)))]
async fn export_account(State(state): State<AppState>, user: AuthUser) -> Response {
    let name = format!(
        "chatkit-export-{}.json",
        chrono::Utc::now().format("%Y-%m-%d")
    );
    download(
        "application/json",
        &name,
        export::account(state.pool.clone(), user.id),
    )
}

/// One conversation as a download: JSON (every message and tool call) or Markdown.
#[utoipa::path(get, path = "/api/chat/conversations/{id}/export", tag = "chat",
    params(("id" = Uuid, Path), ExportQuery),
    responses((status = 200, description = "the conversation", content_type = "application/json"),
        (status = 400), (status = 401), (status = 404)))]
async fn export_conversation(
    State(state): State<AppState>,
    user: AuthUser,
    ApiPath(id): ApiPath<Uuid>,
    ApiQuery(query): ApiQuery<ExportQuery>,
) -> AppResult<Response> {
    let format = export::Format::parse(query.format.as_deref())?;
    let (name, body) = export::conversation(state.pool.clone(), user.id, id, format).await?;
    Ok(download(format.content_type(), &name, body))
}

/// Import conversations: this app's export or ChatGPT's `conversations.json`, as the body
/// (`application/json`) or as the multipart field `file`; up to 50 MB. Each conversation is
/// stored on its own; one already imported is skipped. A browser's form post is sent back
/// to the settings page with the outcome.
#[utoipa::path(post, path = "/api/import", tag = "chat",
    request_body(content = String, content_type = "application/json", description = "the file"),
    responses((status = 200, body = ImportReport), (status = 400), (status = 401), (status = 413)))]
async fn import_file(
    State(state): State<AppState>,
    user: AuthUser,
    headers: HeaderMap,
    request: Request,
) -> AppResult<Response> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let form = content_type.starts_with("multipart/form-data");
    let browser = form
        && headers
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.contains("text/html"));
    let body = request.into_body().into_data_stream();
    let outcome = if form {
        let boundary = multer::parse_boundary(content_type)
            .map_err(|_| AppError::validation("the multipart body has no boundary"))?;
        let mut multipart = multer::Multipart::new(body, boundary);
        let field = loop {
            match multipart.next_field().await {
                Ok(Some(field)) if field.name() == Some("file") => break Some(field),
                Ok(Some(_)) => continue,
                Ok(None) => break None,
                Err(err) => {
                    return Err(AppError::validation(format!(
                        "the multipart body could not be read: {err}"
                    )))
                }
            }
        };
        match field {
            Some(field) => {
                let file = field.map_err(std::io::Error::other).boxed();
                import::import(&state.pool, &state.bus, user.id, file).await
            }
            None => Err(AppError::validation("the form has no field named file")),
        }
    } else if content_type.starts_with("application/json") || content_type.is_empty() {
        let file = body.map_err(std::io::Error::other).boxed();
        import::import(&state.pool, &state.bus, user.id, file).await
    } else {
        Err(AppError::validation(
            "send the file as application/json, or as the multipart field file",
        ))
    };
    if browser {
        return Ok(back_to_settings(outcome));
    }
    outcome.map(|report| (StatusCode::OK, ApiJson(report)).into_response())
}

/// The settings page, with what the import did in its query.
fn back_to_settings(outcome: AppResult<ImportReport>) -> Response {
    let query = match outcome {
        Ok(report) => {
            let mut query = format!(
                "imported={}&skipped={}&failed={}",
                report.imported,
                report.skipped,
                report.errors.len()
            );
            if let Some(first) = report.errors.first() {
                query.push_str(&format!("&error={}", query_value(&short(&first.reason))));
            }
            query
        }
        Err(err) => format!("error={}", query_value(&short(&err.to_string()))),
    };
    Redirect::to(&format!("/settings?{query}")).into_response()
}

/// A reason short enough for a URL.
fn short(text: &str) -> String {
    text.chars().take(300).collect()
}

#[cfg(test)]
mod tests {
    use super::content_disposition;

    #[test]
    fn a_file_name_keeps_its_letters_in_both_forms() {
        assert_eq!(
            content_disposition("Café-menu.md"),
            "attachment; filename=\"Caf--menu.md\"; filename*=UTF-8''Caf%C3%A9-menu.md"
        );
        assert_eq!(
            content_disposition("plain.json"),
            "attachment; filename=\"plain.json\"; filename*=UTF-8''plain.json"
        );
    }
}
