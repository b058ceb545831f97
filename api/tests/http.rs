//! The router driven with `oneshot`, no socket: error bodies, auth, pagination inputs.
mod common;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use common::{assert_error_body, call, state, state_with, token};
use futures::StreamExt as _;
use tower::ServiceExt;
use trackwire_api::app;
use trackwire_codec::{BatchData, Sample, WorkoutId, encode_batch};

fn ingest(token: Option<&str>, body: Vec<u8>) -> Request<Body> {
    let mut r = Request::post("/v1/ingest");
    if let Some(t) = token {
        r = r.header(header::AUTHORIZATION, format!("Bearer {t}"));
    }
    r.body(Body::from(body)).unwrap()
}

fn batch(device: &str) -> Vec<u8> {
    batch_seq(device, 0)
}

fn batch_seq(device: &str, seq: u64) -> Vec<u8> {
    encode_batch(&BatchData {
        device_id: device.into(),
        user_id: "u".into(),
        workout_id: WorkoutId([3; 16]),
        seq,
        base_time_ms: 1_700_000_000_000,
        samples: vec![Sample::new(0, 1, 2, 3, 4, 5, 6, 7, 0)],
        ..BatchData::default()
    })
}

#[tokio::test]
async fn ingest_acks_durably_and_refuses_with_the_error_body() {
    let dir = tempfile::tempdir().unwrap();
    let state = state(dir.path());
    let (status, body) = call(&state, ingest(Some("t-watch"), batch("watch-1"))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["workout_id"], WorkoutId([3; 16]).to_string());
    assert_eq!(body["acked_seq"], 0);

    let (status, body) = call(&state, ingest(None, batch("watch-1"))).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_error_body(&body, "missing_token");
    let (status, body) = call(&state, ingest(Some("t-watch"), batch("someone-else"))).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_error_body(&body, "device_mismatch");
    let (status, body) = call(&state, ingest(Some("t-watch"), vec![0; 20_000])).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_error_body(&body, "body_too_large");
    let (status, body) = call(&state, ingest(Some("t-watch"), b"garbage!garbage!".to_vec())).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_error_body(&body, "wrong_file_identifier");
}

#[tokio::test]
async fn workouts_api_validates_its_inputs() {
    let dir = tempfile::tempdir().unwrap();
    let state = state(dir.path());
    let alice = token("alice");
    let get = |uri: &str| {
        Request::get(uri).header(header::AUTHORIZATION, format!("Bearer {alice}")).body(Body::empty()).unwrap()
    };
    let (status, body) = call(&state, get("/api/v1/workouts")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, serde_json::json!({ "workouts": [], "next_cursor": null }));
    let (status, body) = call(&state, get("/api/v1/workouts?limit=0")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_error_body(&body, "invalid_limit");
    let (status, body) = call(&state, get("/api/v1/workouts?cursor=zz")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_error_body(&body, "invalid_cursor");
    let (status, body) = call(&state, get("/api/v1/workouts/not-a-uuid")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_error_body(&body, "invalid_workout_id");
    let (status, body) = call(&state, get(&format!("/api/v1/workouts/{}", WorkoutId([1; 16])))).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_error_body(&body, "not_found");
    let (status, body) = call(&state, get("/nope")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_error_body(&body, "not_found");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_saturated_log_answers_503_with_retry_after() {
    let dir = tempfile::tempdir().unwrap();
    // The pipeline never takes a record: the writer stalls after its first commit and the
    // one-slot queue fills, exactly what a saturated pipeline does.
    let (stall_tx, stall_rx) = std::sync::mpsc::channel::<()>();
    let stall = std::sync::Mutex::new(stall_rx);
    let state = state_with(dir.path(), 1, Box::new(move |_| stall.lock().unwrap().recv().is_ok()), Default::default());
    let mut pending = Vec::new();
    let mut saw_503 = false;
    for seq in 0..20 {
        let response = app(state.clone()).oneshot(ingest(Some("t-watch"), batch_seq("watch-1", seq)));
        let handle = tokio::spawn(response);
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        if handle.is_finished() {
            let response = handle.await.unwrap().unwrap();
            if response.status() == StatusCode::SERVICE_UNAVAILABLE {
                assert_eq!(response.headers()[header::RETRY_AFTER], "1");
                let bytes = axum::body::to_bytes(response.into_body(), 1 << 16).await.unwrap();
                assert_error_body(&serde_json::from_slice(&bytes).unwrap(), "overloaded");
                saw_503 = true;
                break;
            }
        } else {
            pending.push(handle);
        }
    }
    assert!(saw_503, "a full log queue must be answered with 503, not queued without bound");
    drop(stall_tx);
}

/// The `/metrics` lines of `family` (its samples, without the HELP/TYPE lines).
fn samples<'a>(text: &'a str, family: &str) -> Vec<&'a str> {
    text.lines().filter(|l| l.starts_with(family) && !l.starts_with('#')).collect()
}

fn value(text: &str, series: &str) -> f64 {
    let line = text.lines().find(|l| l.starts_with(series)).unwrap_or_else(|| panic!("no {series} in:\n{text}"));
    line.rsplit(' ').next().unwrap().parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_have_request_counters_and_latency_histograms_by_route_and_transport() {
    let dir = tempfile::tempdir().unwrap();
    let state = state(dir.path());
    let alice = token("alice");
    let get = |uri: &str| {
        Request::get(uri).header(header::AUTHORIZATION, format!("Bearer {alice}")).body(Body::empty()).unwrap()
    };
    for uri in ["/api/v1/workouts", "/api/v1/workouts", "/api/v1/workouts?limit=0", "/nope"] {
        call(&state, get(uri)).await;
    }
    let (status, _) = call(&state, ingest(Some("t-watch"), batch("watch-1"))).await;
    assert_eq!(status, StatusCode::OK);

    let response = app(state.clone()).oneshot(Request::get("/metrics").body(Body::empty()).unwrap()).await.unwrap();
    let text = String::from_utf8(axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap().to_vec()).unwrap();
    let requests = r#"trackwire_http_requests_total{route="/api/v1/workouts",method="GET",status="#;
    assert_eq!(value(&text, &format!("{requests}\"200\"}}")), 2.0, "{text}");
    assert_eq!(value(&text, &format!("{requests}\"400\"}}")), 1.0);
    assert_eq!(value(&text, r#"trackwire_http_requests_total{route="unmatched",method="GET",status="404"}"#), 1.0);
    assert_eq!(value(&text, r#"trackwire_http_requests_total{route="/v1/ingest",method="POST",status="200"}"#), 1.0);

    assert!(text.contains("# TYPE trackwire_http_request_duration_seconds histogram"), "{text}");
    let ok = r#"trackwire_http_request_duration_seconds_bucket{route="/api/v1/workouts",method="GET",status_class="2xx",le="#;
    let buckets: Vec<f64> = samples(&text, ok).iter().map(|l| l.rsplit(' ').next().unwrap().parse().unwrap()).collect();
    assert!(buckets.len() >= 10 && buckets.windows(2).all(|w| w[0] <= w[1]), "cumulative buckets: {buckets:?}");
    assert_eq!(value(&text, &format!("{ok}\"+Inf\"}}")), 2.0);
    let count =
        r#"trackwire_http_request_duration_seconds_count{route="/api/v1/workouts",method="GET",status_class="4xx"}"#;
    assert_eq!(value(&text, count), 1.0);
    assert!(
        value(
            &text,
            r#"trackwire_http_request_duration_seconds_sum{route="/api/v1/workouts",method="GET",status_class="2xx"}"#
        ) > 0.0
    );

    assert!(text.contains("# TYPE trackwire_ingest_ack_duration_seconds histogram"), "{text}");
    assert_eq!(value(&text, r#"trackwire_ingest_ack_duration_seconds_count{transport="http"}"#), 1.0);
    assert_eq!(value(&text, r#"trackwire_ingest_ack_duration_seconds_count{transport="quic"}"#), 0.0);
    assert!(text.contains("# TYPE trackwire_upload_processing_seconds histogram"), "{text}");
}

/// A chunked body of `chunks` × 1 KiB that counts the chunks the server pulls from it.
fn counted_body(chunks: usize) -> (Body, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    let pulled = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = pulled.clone();
    let stream = futures::stream::iter(0..chunks).map(move |_| {
        counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Ok::<_, std::io::Error>(bytes::Bytes::from(vec![0u8; 1024]))
    });
    (Body::from_stream(stream), pulled)
}

#[tokio::test]
async fn the_token_is_checked_before_a_byte_of_the_body_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let state = state(dir.path());
    for (token, chunks, error) in [
        (None, 8 * 1024, "missing_token"),
        (Some("who-knows"), 8 * 1024, "unknown_token"),
        (None, 20 * 1024, "missing_token"),
    ] {
        let (body, pulled) = counted_body(chunks);
        let mut request = Request::post("/v1/ingest");
        if let Some(t) = token {
            request = request.header(header::AUTHORIZATION, format!("Bearer {t}"));
        }
        let (status, body) = call(&state, request.body(body).unwrap()).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{chunks} KiB: {body}");
        assert_error_body(&body, error);
        assert_eq!(pulled.load(std::sync::atomic::Ordering::Relaxed), 0, "{error}: the body was read");
    }
    // A declared length over the limit, without a token: the missing token is what is wrong.
    let request = Request::post("/v1/ingest").header(header::CONTENT_LENGTH, "50000000").body(Body::empty()).unwrap();
    let (status, body) = call(&state, request).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_error_body(&body, "missing_token");
    // Refused at the door, and still counted under their reasons.
    let rejects: std::collections::HashMap<_, _> = state.ingestor().metrics().rejects().collect();
    assert_eq!((rejects["missing_token"], rejects["unknown_token"]), (3, 1));
}

#[tokio::test]
async fn batches_from_a_reset_or_runaway_clock_are_refused_with_the_bounds() {
    let dir = tempfile::tempdir().unwrap();
    let state = state(dir.path());
    let now_ms = chrono::Utc::now().timestamp_millis();
    for base_time_ms in [0, i64::MIN, i64::MAX, 946_684_799_999, now_ms + 2 * 86_400_000] {
        let bytes = encode_batch(&BatchData {
            device_id: "watch-1".into(),
            user_id: "u".into(),
            workout_id: WorkoutId([4; 16]),
            base_time_ms,
            samples: vec![Sample::new(0, 1, 2, 3, 4, 5, 6, 7, 0)],
            ..BatchData::default()
        });
        let (status, body) = call(&state, ingest(Some("t-watch"), bytes)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{base_time_ms}: {body}");
        assert_error_body(&body, "invalid_time");
        assert_eq!(body["details"]["field"], "time");
        assert_eq!(body["details"]["value"], base_time_ms, "{body}");
        assert_eq!(body["details"]["min"], 946_684_800_000_i64);
    }
    // Inside the bounds: acked.
    let (status, body) = call(&state, ingest(Some("t-watch"), batch("watch-1"))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

/// `/healthcheck` tells the truth: a latched log writer or a sink failing past
/// `sinks.unhealthy_after_secs` is 503 `failing` with the reason, for readiness and liveness
/// alike, while a replay in progress is not ready but alive.
#[tokio::test]
async fn the_healthcheck_fails_when_the_log_is_latched_or_a_sink_keeps_failing() {
    use std::sync::Arc;
    use std::sync::atomic::Ordering;
    let get = |probe: &str| Request::get(format!("/healthcheck{probe}")).body(Body::empty()).unwrap();
    let now_ms = chrono::Utc::now().timestamp_millis();

    let dir = tempfile::tempdir().unwrap();
    let mut state = state(dir.path());
    for _ in 0..200 {
        if state.ingest.ingestor.log().metrics().replay_done.load(Ordering::Acquire) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let (status, body) = call(&state, get("")).await;
    assert_eq!((status, body["status"].as_str()), (StatusCode::OK, Some("ok")), "{body}");

    // A sink that has failed every flush for a while, but less than the limit (60 s here): still ok.
    let sink = Arc::new(trackwire_sinks::SinkProgress {
        name: "lake",
        checkpoint: Default::default(),
        errors: 5.into(),
        last_error: Some("Previous I/O error occurred".to_owned()).into(),
        failing_since_ms: (now_ms - 30_000).into(),
    });
    let data_path = state.ingest.data_path.as_mut().unwrap();
    data_path.sinks = Arc::new([sink.clone()]);
    let (status, body) = call(&state, get("")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["sinks"][0]["failing_secs"], 30, "{body}");
    // Past the limit: failing, with the sink and its error.
    sink.failing_since_ms.store(now_ms - 120_000, Ordering::Release);
    for probe in ["", "?probe=liveness"] {
        let (status, body) = call(&state, get(probe)).await;
        assert_eq!((status, body["status"].as_str()), (StatusCode::SERVICE_UNAVAILABLE, Some("failing")), "{body}");
        assert_eq!(body["failing"][0]["reason"], "sink_failing", "{body}");
        assert_eq!(body["failing"][0]["sink"], "lake");
        assert_eq!(body["failing"][0]["detail"], "Previous I/O error occurred");
    }
    sink.failing_since_ms.store(0, Ordering::Release);

    // Still replaying: not ready, but alive.
    let replay_done = &state.ingest.ingestor.log().metrics().replay_done;
    replay_done.store(false, Ordering::Release);
    assert_eq!(call(&state, get("")).await.0, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(call(&state, get("?probe=liveness")).await.0, StatusCode::OK);
    replay_done.store(true, Ordering::Release);

    // The log writer stopped after a failed fsync: nothing will be acked until a restart.
    *state.ingest.ingestor.log().metrics().failure.lock().unwrap() = Some("fsync of 00001.log: EIO".into());
    let (status, body) = call(&state, get("?probe=liveness")).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["failing"][0]["reason"], "log_failed");
    assert!(body["failing"][0]["detail"].as_str().unwrap().contains("fsync"), "{body}");
}
