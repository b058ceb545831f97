//! Every error code the API documents (`docs/api.md`, "Error codes") is provoked by a request, and
//! its answer has the documented status and the platform's error body: `error` the code, `code`
//! the numeric status, `details` naming the field where the table says so. The few that need the
//! server itself to fail are rendered from the error they come from.
mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;

use axum::body::{Body, Bytes};
use axum::http::{Request, StatusCode, header};
use axum::response::IntoResponse;
use common::*;
use serde_json::{Value, json};
use trackwire_api::ApiError;
use trackwire_codec::{BatchData, DecodeError, Sample, WorkoutId, encode_batch};
use trackwire_ingest::IngestError;

/// `error` → (status, whether `details.field` is documented), from the table in `docs/api.md`.
fn documented() -> BTreeMap<String, (u16, bool)> {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/api.md")).unwrap();
    let table = doc.split("### Error codes").nth(1).expect("docs/api.md has an \"Error codes\" table");
    table
        .lines()
        .skip_while(|line| !line.starts_with("| ---"))
        .skip(1)
        .take_while(|line| line.starts_with('|'))
        .map(|line| {
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            let status = cells[2].parse().unwrap_or_else(|_| panic!("a status in: {line}"));
            (cells[1].trim_matches('`').to_owned(), (status, cells[4].contains("`field`")))
        })
        .collect()
}

fn batch(device: &str, user: &str) -> BatchData {
    BatchData {
        device_id: device.into(),
        user_id: user.into(),
        workout_id: WorkoutId([3; 16]),
        base_time_ms: 1_700_000_000_000,
        samples: vec![Sample::new(0, 1, 2, 3, 4, 5, 6, 7, 0)],
        ..BatchData::default()
    }
}

fn ingest(token: Option<&str>, encoding: Option<&str>, body: impl Into<Body>) -> Request<Body> {
    let mut r = Request::post("/v1/ingest");
    if let Some(t) = token {
        r = r.header(header::AUTHORIZATION, format!("Bearer {t}"));
    }
    if let Some(e) = encoding {
        r = r.header(header::CONTENT_ENCODING, e);
    }
    r.body(body.into()).unwrap()
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

/// A body whose stream breaks after its first chunk, as a dropped connection does.
fn broken() -> Body {
    Body::from_stream(futures::stream::iter([
        Ok(Bytes::from_static(b"TWB1")),
        Err(std::io::Error::new(std::io::ErrorKind::ConnectionReset, "peer went away")),
    ]))
}

async fn rendered(error: ApiError) -> (StatusCode, Value) {
    let response = error.into_response();
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap();
    (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_documented_error_has_its_status_and_the_platform_error_body() {
    let dir = tempfile::tempdir().unwrap();
    let state = state(dir.path());
    let alice = token("alice");
    let admin = token_with("root", Some("trackwire:admin"), ISSUER);
    let summary = summary("alice", 1, 1_780_000_000_000, "running", 50.0, 5000.0, 1800.0);
    put(&state, vec![output(1, summary, Vec::new())]);
    let workout = WorkoutId([1; 16]);
    let (_, issued) = call(
        &state,
        request("POST", "/api/v1/users/me/device-tokens", Some(&alice), Some(json!({ "device_id": "w1" }))),
    )
    .await;
    let device_secret = issued["token"].as_str().expect("a device token").to_owned();
    // Alice's watch starts the workout the batches below aim at.
    let (status, body) = call(&state, ingest(Some(&device_secret), None, encode_batch(&batch("w1", "alice")))).await;
    assert_eq!(status, StatusCode::OK, "{body}");

    let mut answers: Vec<(&str, StatusCode, axum::http::HeaderMap, Value)> = Vec::new();
    let provoked: Vec<(&str, Request<Body>)> = vec![
        ("invalid_json", raw("PUT", "/api/v1/users/me/profile", &alice, Some("application/json"), "{\"weight_kg\":")),
        (
            "validation_failed",
            request("POST", "/api/v1/users/me/gear", Some(&alice), Some(json!({ "name": "x", "kind": "skis" }))),
        ),
        ("invalid_query", request("GET", "/api/v1/workouts?limit=many", Some(&alice), None)),
        ("invalid_path", request("GET", "/api/v1/workouts/%FF%FE", Some(&alice), None)),
        ("invalid_limit", request("GET", "/api/v1/workouts?limit=0", Some(&alice), None)),
        ("invalid_cursor", request("GET", "/api/v1/workouts?cursor=zz", Some(&alice), None)),
        ("invalid_time", request("GET", &format!("/api/v1/workouts?after={}", i64::MAX), Some(&alice), None)),
        ("invalid_workout_id", request("GET", "/api/v1/workouts/not-a-uuid", Some(&alice), None)),
        ("invalid_days", request("GET", "/api/v1/users/me/training-load?days=0", Some(&alice), None)),
        ("invalid_before", request("POST", "/api/v1/admin/retention?before=someday", Some(&admin), None)),
        (
            "unknown_stream",
            request("GET", &format!("/api/v1/workouts/{workout}/streams?keys=time,aura"), Some(&alice), None),
        ),
        (
            "unknown_gear",
            request("PUT", &format!("/api/v1/workouts/{workout}"), Some(&alice), Some(json!({ "gear_id": "g-none" }))),
        ),
        (
            "invalid_callback_url",
            request(
                "POST",
                "/api/v1/push-subscriptions",
                Some(&alice),
                Some(json!({ "callback_url": "ftp://x.test/" })),
            ),
        ),
        (
            // A name that resolves to loopback: the challenge is never sent.
            "callback_not_verified",
            request(
                "POST",
                "/api/v1/push-subscriptions",
                Some(&alice),
                Some(json!({ "callback_url": "http://localhost:9/hook" })),
            ),
        ),
        ("missing_file", multipart(&alice, &[("data_type", b"gpx")])),
        (
            "bad_multipart",
            raw("POST", "/api/v1/uploads", &alice, Some("multipart/form-data; boundary=XyZ"), "--XyZ\r\nnonsense"),
        ),
        ("body_read_failed", ingest(Some("t-watch"), None, broken())),
        ("bad_compression", ingest(Some("t-watch"), Some("gzip"), b"not gzip at all".to_vec())),
        ("truncated", ingest(Some("t-watch"), None, b"TWB".to_vec())),
        ("wrong_file_identifier", ingest(Some("t-watch"), None, b"garbage!garbage!".to_vec())),
        ("invalid_flatbuffer", ingest(Some("t-watch"), None, b"\xf0\xff\0\0TWB1\0\0\0\0".to_vec())),
        ("empty_field", ingest(Some("t-watch"), None, encode_batch(&batch("watch-1", "")))),
        (
            "reserved_seq",
            ingest(Some("t-watch"), None, encode_batch(&BatchData { seq: u64::MAX - 1, ..batch("watch-1", "u") })),
        ),
        ("unauthorized", request("GET", "/api/v1/workouts", None, None)),
        ("missing_token", ingest(None, None, encode_batch(&batch("watch-1", "u")))),
        ("unknown_token", ingest(Some("who-knows"), None, encode_batch(&batch("watch-1", "u")))),
        ("forbidden", request("GET", "/api/v1/users/bob/profile", Some(&alice), None)),
        ("device_mismatch", ingest(Some("t-watch"), None, encode_batch(&batch("watch-2", "u")))),
        ("user_mismatch", ingest(Some(&device_secret), None, encode_batch(&batch("w1", "mallory")))),
        ("workout_owner_mismatch", ingest(Some("t-watch"), None, encode_batch(&batch("watch-1", "u")))),
        ("not_found", request("GET", "/api/v1/nothing-here", Some(&alice), None)),
        ("method_not_allowed", request("DELETE", "/api/v1/workouts", Some(&alice), None)),
        ("retention_disabled", request("POST", "/api/v1/admin/retention", Some(&admin), None)),
        ("body_too_large", ingest(Some("t-watch"), None, vec![0; 20_000])),
        ("decompressed_too_large", ingest(Some("t-watch"), Some("gzip"), gzip(&[0; 50_000]))),
        ("upload_too_large", multipart(&alice, &[("file", &vec![b'x'; 1 << 21])])),
        ("unsupported_encoding", ingest(Some("t-watch"), Some("br"), encode_batch(&batch("watch-1", "u")))),
        ("unsupported_media_type", raw("PUT", "/api/v1/users/me/profile", &alice, None, "{}")),
        ("not_multipart", request("POST", "/api/v1/uploads", Some(&alice), Some(json!({ "file": "x" })))),
    ];
    for (error, req) in provoked {
        let (status, headers, body) = call_full(&state, req).await;
        answers.push((error, status, headers, body));
    }
    // Its own bucket: one request a minute.
    let limited = state_with(dir.path().join("limited").as_path(), 16, Box::new(|_| true), limits(1));
    for _ in 0..2 {
        let (status, headers, body) = call_full(&limited, request("GET", "/api/v1/workouts", Some(&alice), None)).await;
        if status != StatusCode::OK {
            answers.push(("rate_limited", status, headers, body));
        }
    }
    // The server's own failures, rendered from the errors the handlers return.
    let failures = [
        ("internal", ApiError::internal("disk on fire")),
        ("storage_failure", IngestError::Storage("fsync failed".into()).into()),
        ("overloaded", IngestError::Overloaded.into()),
        ("shutting_down", IngestError::ShuttingDown.into()),
        (
            "unsupported_schema_version",
            IngestError::Malformed(DecodeError::UnsupportedSchemaVersion { found: 9, supported: 1 }).into(),
        ),
        (
            "too_many_items",
            IngestError::Malformed(DecodeError::TooMany { what: "samples", count: 70_000, limit: 65_536 }).into(),
        ),
        ("log_unavailable", ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "log_unavailable", "the log is down")),
        ("erasure_incomplete", ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "erasure_incomplete", "retry")),
        ("deletion_incomplete", ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "deletion_incomplete", "retry")),
        ("retention_incomplete", ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "retention_incomplete", "retried")),
        ("event_unpublished", ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "event_unpublished", "repeat")),
        ("too_many_subscriptions", ApiError::new(StatusCode::CONFLICT, "too_many_subscriptions", "delete one")),
    ];
    for (error, failure) in failures {
        let (status, body) = rendered(failure).await;
        answers.push((error, status, Default::default(), body));
    }

    let documented = documented();
    for (error, status, headers, body) in &answers {
        let (want_status, has_field) =
            documented.get(*error).unwrap_or_else(|| panic!("`{error}` is answered but not in docs/api.md"));
        assert_eq!(status.as_u16(), *want_status, "{error}: {body}");
        assert_error_body(body, error);
        assert_eq!(body["code"], *want_status, "{error}: {body}");
        if *has_field {
            assert!(body["details"]["field"].is_string(), "{error} names the field in details: {body}");
        }
        if *error == "method_not_allowed" {
            assert!(headers.contains_key(header::ALLOW), "405 says what is allowed: {headers:?}");
        }
        if matches!(*error, "rate_limited" | "overloaded" | "shutting_down") && !headers.is_empty() {
            assert!(headers.contains_key(header::RETRY_AFTER), "{error}: {headers:?}");
        }
    }
    let walked: BTreeSet<&str> = answers.iter().map(|(error, ..)| *error).collect();
    let missing: Vec<&String> = documented.keys().filter(|error| !walked.contains(error.as_str())).collect();
    assert!(missing.is_empty(), "documented but never provoked: {missing:?}");

    // An unknown enum value names the value and lists the allowed ones.
    let (_, _, _, gear) = &answers[1];
    assert_eq!(gear["details"]["field"], "kind", "{gear}");
    assert_eq!(gear["details"]["value"], "skis", "{gear}");
    assert_eq!(gear["details"]["allowed"], json!(["shoes", "bike", "other"]), "{gear}");
}

fn limits(burst: u32) -> trackwire_api::limits::RateLimitConfig {
    trackwire_api::limits::RateLimitConfig { per_minute: 1, burst }
}
