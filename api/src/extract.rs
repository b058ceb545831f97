//! Request extractors whose rejections are [`ApiError`]s, so a malformed body, query or path gets
//! the one error body (axum's own rejections are plain text). Every body that is not what the
//! operation takes is one status, `400`: `invalid_json` when it does not parse, `validation_failed`
//! when it parses but a field is missing, mistyped, unknown or out of its enum; `details` names the
//! field (a path such as `zones[2].max`) and, for an enum, the values allowed.

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts};
use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::ApiError;

#[derive(FromRequest)]
#[from_request(via(axum::Json), rejection(ApiError))]
pub struct Json<T>(pub T);

#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub struct Query<T>(pub T);

#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
pub struct Path<T>(pub T);

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        match &rejection {
            JsonRejection::JsonSyntaxError(_) => {
                let reason = innermost(&rejection);
                ApiError::bad_request("invalid_json", format!("the body is not valid JSON: {reason}"))
                    .with_details(json!({ "field": "body", "reason": reason }))
            }
            JsonRejection::JsonDataError(_) => {
                let (path, reason) = match source_of::<serde_path_to_error::Error<serde_json::Error>>(&rejection) {
                    Some(err) => (err.path().to_string(), err.inner().to_string()),
                    None => (".".to_owned(), innermost(&rejection)),
                };
                let field = if path == "." { "body".to_owned() } else { path };
                validation_failed("validation_failed", &field, &reason)
            }
            JsonRejection::MissingJsonContentType(_) => ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "the body must be JSON: send `Content-Type: application/json`",
            )
            .with_details(json!({ "field": "Content-Type", "allowed": ["application/json"] })),
            _ => ApiError::new(
                rejection.status(),
                "invalid_body",
                format!("the body could not be read: {}", rejection.body_text()),
            )
            .with_details(json!({ "field": "body" })),
        }
    }
}

impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> Self {
        match source_of::<serde_path_to_error::Error<serde_urlencoded::de::Error>>(&rejection) {
            Some(err) if err.path().to_string() != "." => {
                validation_failed("invalid_query", &err.path().to_string(), &err.inner().to_string())
            }
            _ => {
                let reason = innermost(&rejection);
                ApiError::bad_request("invalid_query", format!("the query string was refused: {reason}"))
                    .with_details(json!({ "field": "query", "reason": reason }))
            }
        }
    }
}

impl From<PathRejection> for ApiError {
    fn from(rejection: PathRejection) -> Self {
        ApiError::bad_request("invalid_path", format!("the path was refused: {}", rejection.body_text()))
            .with_details(json!({ "field": "path" }))
    }
}

/// A `400` for `field`, with the value and the allowed values when serde names them (an unknown
/// enum variant or field: "unknown variant `x`, expected one of `a`, `b`").
fn validation_failed(error: &'static str, field: &str, reason: &str) -> ApiError {
    let mut details = json!({ "field": field, "reason": reason });
    if let Some((found, allowed)) = unknown_value(reason) {
        details["value"] = Value::String(found);
        details["allowed"] = json!(allowed);
    }
    let message = format!("`{field}` is not valid: {reason}; see the OpenAPI document at /api/v1/openapi.json");
    ApiError::bad_request(error, message).with_details(details)
}

/// Parses serde's "unknown variant `x`, expected one of `a`, `b`" (or "expected `a` or `b`").
fn unknown_value(reason: &str) -> Option<(String, Vec<String>)> {
    let rest = reason.strip_prefix("unknown variant ").or_else(|| reason.strip_prefix("unknown field "))?;
    let mut quoted = rest.split('`').skip(1).step_by(2).map(str::to_owned);
    let found = quoted.next()?;
    Some((found, quoted.collect()))
}

/// The first error in `err`'s source chain of type `E`.
fn source_of<'a, E: std::error::Error + 'static>(err: &'a (dyn std::error::Error + 'static)) -> Option<&'a E> {
    let mut current = Some(err);
    while let Some(e) = current {
        if let Some(found) = e.downcast_ref::<E>() {
            return Some(found);
        }
        current = e.source();
    }
    None
}

/// The innermost message of `err`'s source chain (axum's outer messages are generic).
fn innermost(err: &(dyn std::error::Error + 'static)) -> String {
    let mut current = err;
    while let Some(next) = current.source() {
        current = next;
    }
    current.to_string()
}

#[cfg(test)]
mod tests {
    use super::unknown_value;

    #[test]
    fn an_unknown_variant_names_the_value_and_the_allowed_ones() {
        let (found, allowed) = unknown_value("unknown variant `Run`, expected one of `running`, `cycling`").unwrap();
        assert_eq!(found, "Run");
        assert_eq!(allowed, ["running", "cycling"]);
        let (found, allowed) = unknown_value("unknown variant `x`, expected `low` or `high`").unwrap();
        assert_eq!((found.as_str(), allowed), ("x", vec!["low".to_owned(), "high".to_owned()]));
        assert!(unknown_value("invalid type: string \"a\", expected f64").is_none());
    }
}
