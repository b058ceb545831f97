pub mod health;
pub mod ingest;
pub mod metrics;
pub mod workouts;

use axum::http::Uri;

use crate::ApiError;

pub async fn not_found(uri: Uri) -> ApiError {
    ApiError::not_found(format!("no route for {}: see the README for the API's routes", uri.path()))
}
