//! Conditional GET (RFC 9110 §13.1.2): every successful GET answer carries a strong `ETag`, a hash
//! of its body, and a request whose `If-None-Match` names it gets `304 Not Modified` with no body
//! (except a body written as it is sent, which has no length to know it by).
//! A hash of what is sent, not a version kept per resource: the answers are assembled from several
//! stores (summary, efforts, gear, tags), and any change to any of them must change the tag.
//!
//! `Cache-Control: private, no-cache`: a client may keep the answer but must ask again each time,
//! and no shared cache may keep it (the answers are one user's).

use axum::body::Body;
use axum::body::HttpBody;
use axum::extract::Request;
use axum::http::header::{CACHE_CONTROL, CONTENT_LENGTH, ETAG, IF_NONE_MATCH};
use axum::http::{HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http_body_util::BodyExt;
use sha2::{Digest, Sha256};

use crate::ApiError;

pub async fn etag(request: Request, next: Next) -> Response {
    if request.method() != Method::GET {
        return next.run(request).await;
    }
    let if_none_match = request.headers().get(IF_NONE_MATCH).cloned();
    let response = next.run(request).await;
    if response.status() != StatusCode::OK {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    parts.headers.insert(CACHE_CONTROL, HeaderValue::from_static("private, no-cache"));
    // A body of no known length is being written as it is sent (a user's archive): hashing it
    // would hold it whole, and the next copy differs anyway.
    if body.size_hint().exact().is_none() {
        return Response::from_parts(parts, body);
    }
    let bytes = match body.collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(e) => return ApiError::internal(e).into_response(),
    };
    let tag = tag_of(&bytes);
    if if_none_match.as_ref().and_then(|v| v.to_str().ok()).is_some_and(|names| names_tag(names, &tag)) {
        parts.status = StatusCode::NOT_MODIFIED;
        parts.headers.remove(CONTENT_LENGTH);
        parts.headers.insert(ETAG, tag);
        return Response::from_parts(parts, Body::empty());
    }
    parts.headers.insert(ETAG, tag);
    Response::from_parts(parts, Body::from(bytes))
}

/// `"` + the first 128 bits of the body's SHA-256, in hex, + `"`.
fn tag_of(body: &[u8]) -> HeaderValue {
    let digest = Sha256::digest(body);
    let mut tag = String::with_capacity(34);
    tag.push('"');
    for byte in &digest[..16] {
        tag.push_str(&format!("{byte:02x}"));
    }
    tag.push('"');
    HeaderValue::from_str(&tag).expect("quoted hex is a valid header value")
}

/// Whether an `If-None-Match` list names `tag`: `*`, or any entry equal to it by the weak
/// comparison the header calls for (a `W/` prefix is ignored).
fn names_tag(list: &str, tag: &HeaderValue) -> bool {
    let tag = tag.to_str().unwrap_or_default();
    list.split(',').map(str::trim).any(|entry| entry == "*" || entry.strip_prefix("W/").unwrap_or(entry) == tag)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_match_weakly_and_by_entry() {
        let tag = tag_of(b"{}");
        let t = tag.to_str().unwrap().to_owned();
        for yes in [t.clone(), format!("W/{t}"), format!("\"a\", {t}"), "*".to_owned()] {
            assert!(names_tag(&yes, &tag), "{yes}");
        }
        for no in ["\"a\"", "", &t[1..33]] {
            assert!(!names_tag(no, &tag), "{no}");
        }
        assert_ne!(tag_of(b"{}"), tag_of(b"{ }"));
    }
}
