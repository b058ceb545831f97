//! # trackwire-api: the HTTP surface
//!
//! **In:** HTTP requests. **Out:** JSON responses, every error in the platform's body
//! `{"error": <machine code>, "message", "code": <HTTP status>, "details"}` ([`ApiError`]).
//!
//! - `POST /v1/ingest`: a FlatBuffers batch with a device token → durable ack.
//! - `/api/v1/…` (bearer JWT, [`auth`]): the caller's workouts (list with filters and cursor
//!   pagination, details with the route polyline, index-aligned streams with resolutions, GeoJSON
//!   route, splits, live state), athlete profile, stats and records, training load and
//!   recommendations, gear, device tokens, uploads, push subscriptions ([`push`]), erasure, and
//!   admin retention runs.
//!   The OpenAPI document is at `/api/v1/openapi.json`.
//! - `GET /healthcheck`, `GET /metrics`.
//!
//! Every `/api/v1` request is rate limited per token ([`limits`]) and every response carries an
//! `X-Request-Id` (taken from the request or generated) that the request's log lines carry too.
//! [`app`] builds the router from an [`AppState`] so tests drive it with `oneshot`, no socket;
//! [`serve`] takes an already-bound listener so tests can bind port 0.

pub mod accounts;
pub mod auth;
mod conditional;
pub mod control;
mod error;
mod extract;
pub mod http_metrics;
pub mod limits;
pub mod openapi;
pub mod prometheus;
pub mod push;
mod routes;
mod state;
mod streamed;
pub mod tls;
pub mod trace_context;
pub mod views;

pub use error::ApiError;
pub use routes::admin::{retention_loop, run_retention};

/// What a process serving the API runs beside its routes: coordinate retention and push
/// deliveries, until the task is dropped.
pub async fn background(state: AppState) {
    tokio::join!(retention_loop(state.clone()), push::deliver_loop(state));
}
pub use routes::metrics::resident_memory_bytes;
pub use routes::users::pipeline_profile;
pub use state::{AppParts, AppState, DataPathView, IngestParts, IngestState, PrivacyConfig, UploadLimits};

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, Request};
use axum::routing::{get, post};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Which routes a process serves (its role in a scale-out deployment), with the state they read.
#[derive(Clone)]
pub enum Surfaces {
    /// Ingest and API (the single process).
    All(AppState),
    /// `/v1/ingest` only (a gateway).
    Ingest(IngestState),
    /// `/api/v1` only (an API replica).
    Api(AppState),
}

impl Surfaces {
    /// What every surface reads (ingest, `/healthcheck`, `/metrics`).
    pub fn ingest(&self) -> &IngestState {
        match self {
            Surfaces::All(state) | Surfaces::Api(state) => &state.ingest,
            Surfaces::Ingest(state) => state,
        }
    }
}

/// The whole HTTP application.
pub fn app(state: AppState) -> Router {
    app_for(Surfaces::All(state))
}

/// The routes of the surfaces, with `/healthcheck` and `/metrics` on every one.
pub fn app_for(surfaces: Surfaces) -> Router {
    let http = surfaces.ingest().http.clone();
    let router = match surfaces {
        Surfaces::All(state) => operations()
            .route("/v1/ingest", post(routes::ingest::ingest))
            .nest("/api/v1", api(&state))
            .method_not_allowed_fallback(routes::method_not_allowed)
            .with_state(state),
        Surfaces::Api(state) => operations()
            .nest("/api/v1", api(&state))
            .method_not_allowed_fallback(routes::method_not_allowed)
            .with_state(state),
        Surfaces::Ingest(state) => Router::new()
            .route("/healthcheck", get(routes::health::healthcheck))
            .route("/metrics", get(routes::metrics::metrics))
            .route("/v1/ingest", post(routes::ingest::ingest))
            .fallback(routes::not_found)
            .method_not_allowed_fallback(routes::method_not_allowed)
            .with_state(state),
    };
    let router = router
        .route_layer(axum::middleware::from_fn(http_metrics::label_route))
        .layer(axum::middleware::from_fn_with_state(http, http_metrics::record));
    with_request_layers(router)
}

/// `/healthcheck` and `/metrics`, for a router over the API's state.
fn operations() -> Router<AppState> {
    Router::new()
        .route("/healthcheck", get(routes::health::healthcheck))
        .route("/metrics", get(routes::metrics::metrics))
        .fallback(routes::not_found)
}

/// The `/api/v1` routes, rate limited.
fn api(state: &AppState) -> Router<AppState> {
    use routes::*;
    Router::new()
        .route("/workouts", get(workouts::list).post(manual::create))
        .route(
            "/workouts/{id}",
            get(workouts::get_one).put(workouts::update).patch(edit::edit).delete(deletion::delete),
        )
        .route("/workouts/{id}/streams", get(workouts::streams))
        .route("/workouts/{id}/route", get(workouts::route))
        .route("/workouts/{id}/splits", get(workouts::splits))
        .route("/workouts/{id}/laps", get(workouts::laps))
        .route("/workouts/{id}/export", get(export::export))
        .route("/workouts/{id}/live", get(workouts::live))
        .route("/workouts/{id}/tags", post(workouts::add_tag))
        .route("/users/{id}", axum::routing::delete(erasure::erase))
        .route("/users/{id}/erasure", get(erasure::status))
        .route("/users/{id}/profile", get(users::get_profile).put(users::put_profile))
        .route("/users/{id}/stats", get(users::stats))
        .route("/users/{id}/records", get(records::records))
        .route("/users/{id}/export", get(portability::export_user))
        .route("/users/{id}/training-load", get(users::training_load))
        .route("/users/{id}/recommendations", get(users::recommendations))
        .route("/users/{id}/gear", get(gear::list).post(gear::create))
        .route("/users/{id}/gear/{gear_id}", get(gear::get_one).patch(gear::update).delete(gear::delete))
        .route("/users/{id}/device-tokens", get(tokens::list).post(tokens::issue))
        .route("/users/{id}/device-tokens/{token_id}", axum::routing::delete(tokens::revoke))
        .route(
            "/uploads",
            post(uploads::create).layer(DefaultBodyLimit::max(state.uploads.max_bytes.saturating_add(64 << 10))),
        )
        .route("/uploads/{id}", get(uploads::get_one))
        .route("/push-subscriptions", get(routes::push::list).post(routes::push::create))
        .route("/push-subscriptions/{id}", axum::routing::delete(routes::push::delete))
        .route("/admin/retention", post(admin::retention))
        .route_layer(axum::middleware::from_fn(conditional::etag))
        .route_layer(axum::middleware::from_fn_with_state(state.clone(), limits::rate_limit))
        .route("/openapi.json", get(openapi::document))
        .fallback(routes::not_found)
}

/// Request ids, the trace context and the request span, around every route.
fn with_request_layers(router: Router) -> Router {
    router.layer(
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
    serve_surfaces(listener, Surfaces::All(state), None, shutdown).await
}

/// [`serve`] for one role's routes, over TLS when a certificate is given.
pub async fn serve_surfaces(
    listener: tokio::net::TcpListener,
    surfaces: Surfaces,
    tls: Option<std::sync::Arc<tls::ReloadingCertificate>>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    match tls {
        None => axum::serve(listener, app_for(surfaces)).with_graceful_shutdown(shutdown).await,
        Some(certificate) => {
            let listener = tls::TlsListener::new(listener, certificate)?;
            axum::serve(listener, app_for(surfaces)).with_graceful_shutdown(shutdown).await
        }
    }
}
