//! # trackwire-api: the HTTP surface
//!
//! **In:** HTTP requests. **Out:** JSON responses, every error in the one body shape
//! `{"error","message","code","details"}` ([`ApiError`]).
//!
//! Routes: `POST /v1/ingest` (FlatBuffers batch → durable ack), `GET /api/v1/workouts` (cursor
//! pagination, newest first), `GET /api/v1/workouts/{id}`, `GET /healthcheck`, `GET /metrics`.
//! [`app`] builds the router from an [`AppState`] so tests drive it with `oneshot`, no socket;
//! [`serve`] takes an already-bound listener so tests can bind port 0.

mod error;
mod routes;
mod state;

pub use error::ApiError;
pub use state::AppState;

use axum::Router;
use axum::routing::{get, post};

/// The whole HTTP application.
pub fn app(state: AppState) -> Router {
    Router::new()
        .route("/v1/ingest", post(routes::ingest::ingest))
        .route("/api/v1/workouts", get(routes::workouts::list))
        .route("/api/v1/workouts/{id}", get(routes::workouts::get_one))
        .route("/healthcheck", get(routes::health::healthcheck))
        .route("/metrics", get(routes::metrics::metrics))
        .fallback(routes::not_found)
        .with_state(state)
}

/// Serves `app(state)` on `listener` until `shutdown` resolves, then finishes in-flight requests.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, app(state)).with_graceful_shutdown(shutdown).await
}
