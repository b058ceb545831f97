pub mod admin;
pub mod deletion;
pub mod edit;
pub mod erasure;
pub mod export;
pub mod gear;
pub mod health;
pub mod ingest;
pub mod manual;
pub mod metrics;
pub mod portability;
pub mod push;
pub mod records;
pub mod streams;
pub mod tokens;
pub mod uploads;
pub mod users;
pub mod workouts;

use axum::http::{Method, StatusCode, Uri};
use serde_json::json;

use crate::ApiError;

pub async fn not_found(uri: Uri) -> ApiError {
    ApiError::not_found(format!("no route for {}: see /api/v1/openapi.json for the API's routes", uri.path()))
        .with_details(json!({ "field": "path", "value": uri.path() }))
}

/// A route that exists, with a method it does not take (axum adds the `Allow` header).
pub async fn method_not_allowed(method: Method, uri: Uri) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!("{} does not take {method}: see the Allow header and /api/v1/openapi.json", uri.path()),
    )
    .with_details(json!({ "field": "method", "value": method.as_str() }))
}

/// Runs store work (redb, file IO) off the async workers.
pub async fn blocking<T: Send + 'static, E: Into<ApiError> + Send + 'static>(
    work: impl FnOnce() -> Result<T, E> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(work).await.map_err(ApiError::internal)?.map_err(Into::into)
}
