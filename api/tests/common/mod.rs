//! Building an [`AppState`] without a network or a data path, and calling the router with `oneshot`.
#![allow(dead_code)]

use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use tower::ServiceExt;
use trackwire_api::accounts::RedbAccounts;
use trackwire_api::auth::{AuthConfig, Authenticator, Claims, mint_hs256};
use trackwire_api::limits::{RateLimitConfig, RateLimiter};
use trackwire_api::{AppParts, AppState, DataPathView, IngestParts, PrivacyConfig, app};
use trackwire_codec::{DecodeLimits, WorkoutId};
use trackwire_ingest::log::{DurableLog, LogConfig};
use trackwire_ingest::{DeviceToken, IngestConfig, Ingestor};
use trackwire_pipeline::{LiveWorkouts, ShardOutput, WorkoutSummary};
use trackwire_sinks::Sink;
use trackwire_sinks::read_store::{LOCAL_LOG, ReadStoreSink, RedbStore};

pub const SECRET: &str = "test-secret-test-secret-test-secret!";
pub const ISSUER: &str = "https://sso.example.test/realms/trackwire";

pub fn state(dir: &std::path::Path) -> AppState {
    state_with(dir, 16, Box::new(|_| true), RateLimitConfig { per_minute: 60_000, burst: 10_000 })
}

pub fn state_with(
    dir: &std::path::Path,
    queue_depth: usize,
    forward: trackwire_ingest::log::Forward,
    rate_limit: RateLimitConfig,
) -> AppState {
    let log_config = LogConfig {
        dir: dir.join("log"),
        segment_bytes: 1 << 20,
        group_commit_bytes: 1 << 20,
        queue_depth,
        max_retained_bytes: u64::MAX,
    };
    let (log, _writer) = DurableLog::open(log_config, forward).unwrap();
    let ingestor = Ingestor::new(
        IngestConfig {
            tokens: vec![DeviceToken { token: "t-watch".into(), device_id: "watch-1".into(), user_id: None }],
            max_body_bytes: 10_000,
            max_decompressed_bytes: 20_000,
            limits: DecodeLimits::default(),
            time_bounds: Default::default(),
        },
        log,
    );
    let auth = AuthConfig { issuer: Some(ISSUER.into()), hs256_secret: Some(SECRET.into()), ..AuthConfig::default() };
    // The HTTP layer alone: a live registry and profiles the tests fill, no sinks.
    let data_path = DataPathView {
        live: Arc::new(LiveWorkouts::default()),
        sinks: Arc::new([]),
        fed_through: Arc::new(AtomicU64::new(0)),
        profiles: Default::default(),
        sink_unhealthy_after_ms: 60_000,
    };
    AppParts {
        ingest: IngestParts { ingestor: Arc::new(ingestor), data_path: Some(data_path), http: Default::default() }
            .into(),
        store: Arc::new(RedbStore::open(&dir.join("store.redb")).unwrap()),
        accounts: Arc::new(RedbAccounts::open(&dir.join("accounts.redb")).unwrap()),
        auth: Arc::new(Authenticator::new(auth).unwrap()),
        limiter: Arc::new(RateLimiter::new(rate_limit)),
        control: None,
        erased: Default::default(),
        deleted: Default::default(),
        privacy: PrivacyConfig { coordinate_retention_days: 0, retention_interval_secs: 3600 },
        push: Default::default(),
        uploads: trackwire_api::UploadLimits::new(1 << 20, 2),
        originals: Some(Arc::new(
            trackwire_sinks::originals::Originals::new(
                trackwire_sinks::lake::open_store(&dir.join("lake").display().to_string(), &Default::default())
                    .unwrap(),
            )
            .unwrap(),
        )),
        exports: std::sync::Arc::new(tokio::sync::Semaphore::new(2)),
    }
    .into()
}

pub fn token(user: &str) -> String {
    token_with(user, None, ISSUER)
}

pub fn token_with(user: &str, scope: Option<&str>, issuer: &str) -> String {
    let exp = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() + 3600;
    let claims = Claims {
        sub: user.into(),
        exp,
        iss: Some(issuer.into()),
        aud: None,
        scope: scope.map(str::to_owned),
        scp: None,
        realm_access: None,
    };
    mint_hs256(SECRET, &claims)
}

pub async fn call(state: &AppState, request: Request<Body>) -> (StatusCode, serde_json::Value) {
    let (status, _, body) = call_full(state, request).await;
    (status, body)
}

pub async fn call_full(
    state: &AppState,
    request: Request<Body>,
) -> (StatusCode, axum::http::HeaderMap, serde_json::Value) {
    let response = app(state.clone()).oneshot(request).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = axum::body::to_bytes(response.into_body(), 16 << 20).await.unwrap();
    (status, headers, serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null))
}

pub fn request(method: &str, uri: &str, token: Option<&str>, body: Option<serde_json::Value>) -> Request<Body> {
    let mut r = Request::builder().method(method).uri(uri);
    if let Some(t) = token {
        r = r.header(header::AUTHORIZATION, format!("Bearer {t}"));
    }
    match body {
        Some(json) => r.header(header::CONTENT_TYPE, "application/json").body(Body::from(json.to_string())).unwrap(),
        None => r.body(Body::empty()).unwrap(),
    }
}

/// The platform's error body: `error` the machine code, `code` the numeric status, a message, and
/// `details` an object.
pub fn assert_error_body(body: &serde_json::Value, error: &str) {
    let keys: Vec<&str> =
        body.as_object().unwrap_or_else(|| panic!("not an object: {body}")).keys().map(String::as_str).collect();
    assert_eq!(keys, ["code", "details", "error", "message"], "{body}");
    assert_eq!(body["error"], error, "{body}");
    assert!(body["code"].as_u64().is_some_and(|c| (400..600).contains(&c)), "code is the numeric status: {body}");
    assert!(!body["message"].as_str().unwrap().is_empty());
    assert!(body["details"].is_object(), "{body}");
}

/// A completed workout summary with the given figures.
pub fn summary(
    user: &str,
    id: u8,
    start_ms: i64,
    sport: &str,
    trimp: f64,
    distance_m: f64,
    moving_s: f64,
) -> WorkoutSummary {
    serde_json::from_value(serde_json::json!({
        "workout_id": WorkoutId([id; 16]), "user_id": user, "device_id": "watch-1", "device_model": null,
        "sport": sport, "status": "completed", "start_time_ms": start_ms, "end_time_ms": start_ms + (moving_s * 1000.0) as i64,
        "elapsed_s": moving_s, "timer_s": moving_s, "samples": 10, "batches": 1, "last_seq": 0,
        "distance_m": distance_m, "moving_time_s": moving_s, "elevation_gain_m": 10.0, "elevation_loss_m": 10.0,
        "max_speed_mps": 4.0, "rejected_fixes": 0, "hr_zone_seconds": null, "trimp_edwards": null,
        "trimp_banister": trimp, "calories_kcal": 100.0, "calories_method": "acsm", "splits": [],
        "device_totals": null, "heart_rate_avg_bpm": null, "heart_rate_max_bpm": null,
        "first_lsn": u64::from(id), "last_lsn": u64::from(id)
    }))
    .unwrap()
}

/// Puts summaries (and optional points) into the read store the way the pipeline's sink does.
pub fn put(state: &AppState, outputs: Vec<ShardOutput>) {
    let mut sink = ReadStoreSink::new(state.store.clone(), LOCAL_LOG).unwrap();
    for output in outputs {
        sink.accept(&output);
    }
    sink.flush(std::time::Instant::now(), true).unwrap();
}

pub fn output(lsn: u64, summary: WorkoutSummary, points: Vec<trackwire_pipeline::EnrichedPoint>) -> ShardOutput {
    ShardOutput {
        lsn,
        stored_ms: None,
        points: points.into_iter().collect(),
        events: Vec::new(),
        summary: Some(summary),
        ended: true,
        trace_id: None,
        not_applied: None,
    }
}

pub fn raw(method: &str, uri: &str, token: &str, content_type: Option<&str>, body: impl Into<Body>) -> Request<Body> {
    let mut r = Request::builder().method(method).uri(uri).header(header::AUTHORIZATION, format!("Bearer {token}"));
    if let Some(t) = content_type {
        r = r.header(header::CONTENT_TYPE, t);
    }
    r.body(body.into()).unwrap()
}

/// A multipart upload form of named parts (each with a file name), boundary `XyZ`.
pub fn multipart(token: &str, parts: &[(&str, &[u8])]) -> Request<Body> {
    let mut body = Vec::new();
    for (name, content) in parts {
        let head = format!("--XyZ\r\nContent-Disposition: form-data; name=\"{name}\"; filename=\"f\"\r\n\r\n");
        body.extend_from_slice(head.as_bytes());
        body.extend_from_slice(content);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(b"--XyZ--\r\n");
    raw("POST", "/api/v1/uploads", token, Some("multipart/form-data; boundary=XyZ"), body)
}
