//! # trackwire-api: the HTTP surface
//!
//! **In:** HTTP requests. **Out:** JSON responses, every error in the one body shape
//! `{"error","message","code","details"}` ([`ApiError`]).
//!
//! - `POST /v1/ingest`: a FlatBuffers batch with a device token → durable ack.
//! - `/api/v1/…` (bearer JWT, [`auth`]): the caller's workouts (list with filters and cursor
//!   pagination, details with the route polyline, index-aligned streams with resolutions, GeoJSON
//!   route, splits, live state), athlete profile, stats and records, training load and
//!   recommendations, gear, device tokens, uploads, erasure, and admin retention runs.
//!   The OpenAPI document is at `/api/v1/openapi.json`.
//! - `GET /healthcheck`, `GET /metrics`.
//!
//! Every `/api/v1` request is rate limited per token ([`limits`]) and every response carries an
//! `X-Request-Id` (taken from the request or generated) that the request's log lines carry too.
//! [`app`] builds the router from an [`AppState`] so tests drive it with `oneshot`, no socket;
//! [`serve`] takes an already-bound listener so tests can bind port 0.

pub mod accounts;
pub mod auth;
pub mod control;
mod error;
mod extract;
pub mod limits;
pub mod openapi;
pub mod prometheus;
mod routes;
mod state;
pub mod trace_context;
pub mod views;

pub use error::ApiError;
pub use routes::admin::{retention_loop, run_retention};
pub use routes::metrics::resident_memory_bytes;
pub use routes::users::pipeline_profile;
pub use state::{AppState, PrivacyConfig};

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, Request};
use axum::routing::{get, post};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Which routes a process serves (its role in a scale-out deployment).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Surface {
    /// Ingest and API (the single process).
    All,
    /// `/v1/ingest` only (a gateway).
    Ingest,
    /// `/api/v1` only (an API replica).
    Api,
}

/// The whole HTTP application.
pub fn app(state: AppState) -> Router {
    app_for(state, Surface::All)
}

/// The routes of `surface`, with `/healthcheck` and `/metrics` on every one.
pub fn app_for(state: AppState, surface: Surface) -> Router {
    use routes::*;
    let api = Router::new()
        .route("/workouts", get(workouts::list))
        .route("/workouts/{id}", get(workouts::get_one).put(workouts::update))
        .route("/workouts/{id}/streams", get(workouts::streams))
        .route("/workouts/{id}/route", get(workouts::route))
        .route("/workouts/{id}/splits", get(workouts::splits))
        .route("/workouts/{id}/live", get(workouts::live))
        .route("/users/{id}", axum::routing::delete(erasure::erase))
        .route("/users/{id}/erasure", get(erasure::status))
        .route("/users/{id}/profile", get(users::get_profile).put(users::put_profile))
        .route("/users/{id}/stats", get(users::stats))
        .route("/users/{id}/training-load", get(users::training_load))
        .route("/users/{id}/recommendations", get(users::recommendations))
        .route("/users/{id}/gear", get(gear::list).post(gear::create))
        .route("/users/{id}/gear/{gear_id}", get(gear::get_one).patch(gear::update).delete(gear::delete))
        .route("/users/{id}/device-tokens", get(tokens::list).post(tokens::issue))
        .route("/users/{id}/device-tokens/{token_id}", axum::routing::delete(tokens::revoke))
        .route(
            "/uploads",
            post(uploads::create).layer(DefaultBodyLimit::max(state.max_upload_bytes.saturating_add(64 << 10))),
        )
        .route("/uploads/{id}", get(uploads::get_one))
        .route("/admin/retention", post(admin::retention))
        .route_layer(axum::middleware::from_fn_with_state(state.clone(), limits::rate_limit))
        .route("/openapi.json", get(openapi::document))
        .fallback(not_found);
    let mut router =
        Router::new().route("/healthcheck", get(health::healthcheck)).route("/metrics", get(metrics::metrics));
    if surface != Surface::Api {
        router = router.route("/v1/ingest", post(ingest::ingest));
    }
    if surface != Surface::Ingest {
        router = router.nest("/api/v1", api);
    }
    router.fallback(not_found).with_state(state).layer(
        tower::ServiceBuilder::new()
            .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
            .layer(axum::middleware::map_request(|mut request: Request<axum::body::Body>| async move {
                request.extensions_mut().insert(trace_context::RequestTrace::default());
                request
            }))
            .layer(TraceLayer::new_for_http().make_span_with(|request: &Request<_>| {
                let header = |name: &str| request.headers().get(name).and_then(|v| v.to_str().ok());
                let id = header(REQUEST_ID.as_str()).unwrap_or("-");
                let span = tracing::info_span!(
                    "http",
                    method = %request.method(),
                    path = %request.uri().path(),
                    correlation_id = %id,
                    trace_id = tracing::field::Empty,
                    span_id = tracing::field::Empty,
                );
                let trace = trace_context::TraceContext::for_span(&span, header("traceparent"));
                span.record("trace_id", trace.trace_id.as_str());
                span.record("span_id", trace.span_id.as_str());
                if let Some(slot) = request.extensions().get::<trace_context::RequestTrace>() {
                    let _ = slot.0.set(trace);
                }
                span
            }))
            .layer(PropagateRequestIdLayer::new(REQUEST_ID)),
    )
}

/// Serves `app(state)` on `listener` until `shutdown` resolves, then finishes in-flight requests.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_surface(listener, state, Surface::All, shutdown).await
}

/// [`serve`] for one role's routes.
pub async fn serve_surface(
    listener: tokio::net::TcpListener,
    state: AppState,
    surface: Surface,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, app_for(state, surface)).with_graceful_shutdown(shutdown).await
}
