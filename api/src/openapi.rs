//! The OpenAPI 3.1 document, generated from the handlers' annotations and the response types, so
//! it cannot drift from what the server answers. Served at `/api/v1/openapi.json`.

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::routes;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).bearer_format("JWT").build()),
        );
        components.add_security_scheme(
            "device_token",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Trackwire API",
        description = "Workouts, streams, routes, stats, training load, recommendations, uploads and privacy. \
            Every error has the body {\"error\": machine code, \"message\", \"code\": HTTP status, \"details\"}; instants are ISO 8601 UTC; every /api/v1 response carries \
            X-RateLimit-* headers and an X-Request-Id.",
    ),
    paths(
        routes::workouts::list, routes::manual::create, routes::workouts::get_one, routes::workouts::update,
        routes::edit::edit, routes::deletion::delete, routes::workouts::streams,
        routes::workouts::route, routes::workouts::splits, routes::workouts::laps,
        routes::export::export, routes::workouts::live, routes::workouts::add_tag,
        routes::users::get_profile, routes::users::put_profile, routes::users::stats, routes::records::records,
        routes::users::training_load,
        routes::users::recommendations, routes::erasure::erase, routes::erasure::status,
        routes::portability::export_user,
        routes::gear::list, routes::gear::create, routes::gear::get_one, routes::gear::update, routes::gear::delete,
        routes::tokens::issue, routes::tokens::list, routes::tokens::revoke,
        routes::uploads::create, routes::uploads::get_one,
        routes::push::create, routes::push::list, routes::push::delete,
        routes::admin::retention,
        routes::ingest::ingest, routes::health::healthcheck, routes::metrics::metrics,
    ),
    components(schemas(routes::streams::Resolution, routes::export::ExportFormat, routes::users::Period, crate::views::SportFilter, crate::views::Visibility,
        // What a push subscription's callback is sent (not an operation of this API).
        crate::push::event::PushEvent)),
    modifiers(&BearerAuth),
)]
pub struct ApiDoc;

pub async fn document() -> axum::Json<utoipa::openapi::OpenApi> {
    axum::Json(ApiDoc::openapi())
}
