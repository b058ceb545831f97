//! Push subscriptions through the router, against a receiver on a loopback port: the challenge,
//! signed deliveries of created, edited and deleted workouts, retries with backoff when the
//! receiver fails, delivery state kept across a restart, and isolation between users.
mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use common::*;
use serde_json::{Value, json};
use trackwire_api::AppState;
use trackwire_api::push::signature;
use trackwire_codec::WorkoutId;

/// What the receiver saw, and how many deliveries it still refuses.
#[derive(Default)]
struct Seen {
    verify_tokens: Vec<Option<String>>,
    /// (attempt header, signature header, body) of each delivery, refused ones included.
    deliveries: Vec<(String, String, Vec<u8>)>,
    accepted: Vec<Value>,
    refuse: usize,
}

type Receiver = Arc<Mutex<Seen>>;

async fn challenge(State(seen): State<Receiver>, Query(query): Query<Vec<(String, String)>>) -> axum::Json<Value> {
    let get = |key: &str| query.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone());
    seen.lock().unwrap().verify_tokens.push(get("hub.verify_token"));
    assert_eq!(get("hub.mode").as_deref(), Some("subscribe"));
    axum::Json(json!({ "hub.challenge": get("hub.challenge") }))
}

async fn delivery(State(seen): State<Receiver>, headers: HeaderMap, body: axum::body::Bytes) -> StatusCode {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    let mut seen = seen.lock().unwrap();
    seen.deliveries.push((header("trackwire-delivery-attempt"), header("trackwire-signature"), body.to_vec()));
    if seen.refuse > 0 {
        seen.refuse -= 1;
        return StatusCode::SERVICE_UNAVAILABLE;
    }
    seen.accepted.push(serde_json::from_slice(&body).unwrap());
    StatusCode::OK
}

/// A receiver on a free loopback port that refuses its first `refuse` deliveries; its URL.
async fn receiver(refuse: usize) -> (String, Receiver) {
    let seen = Arc::new(Mutex::new(Seen { refuse, ..Seen::default() }));
    let app = axum::Router::new()
        .route("/hook", axum::routing::get(challenge).post(delivery))
        .route("/silent", axum::routing::get(|| async { "ok" }))
        .with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, seen)
}

fn fast_retries(mut state: AppState) -> AppState {
    // The receiver is on loopback, which a deployment's callbacks may not reach.
    state.push.allow_private_callbacks = true;
    state.push.retry_initial_secs = 0.05;
    state.push.retry_max_secs = 0.2;
    state.push.max_attempts = 4;
    state.push.timeout_secs = 2.0;
    state
}

/// Delivery rounds until `done` holds (bounded, so a regression fails instead of hanging).
async fn rounds_until(state: &AppState, seen: &Receiver, done: impl Fn(&Seen) -> bool) {
    for _ in 0..200 {
        trackwire_api::push::deliver::round(state).await.unwrap();
        if done(&seen.lock().unwrap()) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the deliveries did not arrive: {} seen", seen.lock().unwrap().deliveries.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_reach_the_callback_signed_and_retried_until_accepted_across_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let state = fast_retries(state(dir.path()));
    let (url, seen) = receiver(2).await;
    let ada = token("ada");

    let (status, created) = call(
        &state,
        request(
            "POST",
            "/api/v1/push-subscriptions",
            Some(&ada),
            Some(json!({"callback_url": format!("{url}/hook"), "verify_token": "mine"})),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(seen.lock().unwrap().verify_tokens, [Some("mine".to_owned())], "the challenge came first");
    let secret = created["secret"].as_str().expect("the secret, once").to_owned();
    let subscription = created["id"].as_str().unwrap().to_owned();

    // A workout completes: the first two attempts are refused, the third is accepted.
    let start = chrono::Utc::now().timestamp_millis() - 3_600_000;
    put(&state, vec![output(1, summary("ada", 1, start, "running", 50.0, 5_000.0, 1_500.0), vec![])]);
    put(&state, vec![output(2, summary("bob", 2, start, "running", 50.0, 5_000.0, 1_500.0), vec![])]);
    trackwire_api::push::deliver::round(&state).await.unwrap();
    assert_eq!(seen.lock().unwrap().deliveries.len(), 1, "one attempt, refused");

    // The process restarts between attempts: what is owed is in the stores.
    drop(state);
    let state = fast_retries(common::state(dir.path()));
    rounds_until(&state, &seen, |s| s.accepted.len() == 1).await;
    {
        let seen = seen.lock().unwrap();
        let attempts: Vec<&str> = seen.deliveries.iter().map(|(a, _, _)| a.as_str()).collect();
        assert_eq!(attempts, ["1", "2", "3"], "the same delivery, attempt after attempt");
        assert!(seen.deliveries.windows(2).all(|w| w[0].2 == w[1].2), "every attempt carries the same body");
        for (_, signed, body) in &seen.deliveries {
            assert!(signature::verify(&secret, signed, body).is_some(), "signed with the secret: {signed}");
            assert!(signature::verify("not-the-secret", signed, body).is_none());
        }
        let event = &seen.accepted[0];
        assert_eq!(event["subscription_id"], subscription.as_str());
        assert_eq!(event["aspect_type"], "create");
        assert_eq!(event["object_type"], "workout");
        assert_eq!(event["object_id"], WorkoutId([1; 16]).to_string());
        assert_eq!(event["owner_id"], "ada", "bob's workout is not ada's to hear of");
    }

    // Edited, then deleted: one delivery each, the edit with the fields it set.
    let uri = format!("/api/v1/workouts/{}", WorkoutId([1; 16]));
    let (status, body) = call(&state, request("PATCH", &uri, Some(&ada), Some(json!({"name": "Lunch run"})))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = call(&state, request("DELETE", &uri, Some(&ada), None)).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    rounds_until(&state, &seen, |s| s.accepted.len() == 3).await;
    {
        let seen = seen.lock().unwrap();
        let mut aspects: Vec<(&str, &Value)> =
            seen.accepted[1..].iter().map(|e| (e["aspect_type"].as_str().unwrap(), &e["updates"])).collect();
        aspects.sort_by_key(|(aspect, _)| *aspect);
        assert_eq!(aspects, [("delete", &json!({})), ("update", &json!({"name": "Lunch run"}))]);
        let ids: std::collections::HashSet<u64> =
            seen.accepted.iter().map(|e| e["change_id"].as_u64().unwrap()).collect();
        assert_eq!(ids.len(), 3, "each change has its own id");
    }

    let (_, list) = call(&state, request("GET", "/api/v1/push-subscriptions", Some(&ada), None)).await;
    let listed = &list["subscriptions"][0];
    assert_eq!((&listed["delivered"], &listed["pending"], &listed["failed"]), (&json!(3), &json!(0), &json!(0)));
    assert_eq!(listed["last_failure"], "the callback answered HTTP 503");
    assert!(listed["secret"].is_null(), "the secret is shown once: {listed}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_callback_that_never_accepts_is_given_up_on_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let state = fast_retries(state(dir.path()));
    let (url, seen) = receiver(usize::MAX).await;
    let ada = token("ada");
    let body = json!({"callback_url": format!("{url}/hook")});
    let (status, _) = call(&state, request("POST", "/api/v1/push-subscriptions", Some(&ada), Some(body))).await;
    assert_eq!(status, StatusCode::CREATED);
    let start = chrono::Utc::now().timestamp_millis();
    put(&state, vec![output(1, summary("ada", 1, start, "running", 50.0, 5_000.0, 1_500.0), vec![])]);
    rounds_until(&state, &seen, |s| s.deliveries.len() == 4).await;
    trackwire_api::push::deliver::round(&state).await.unwrap();
    let (_, list) = call(&state, request("GET", "/api/v1/push-subscriptions", Some(&ada), None)).await;
    let listed = &list["subscriptions"][0];
    assert_eq!((&listed["delivered"], &listed["pending"], &listed["failed"]), (&json!(0), &json!(0), &json!(1)));
    assert!(listed["last_failure"].as_str().unwrap().starts_with("given up after 4 attempts"), "{listed}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    trackwire_api::push::deliver::round(&state).await.unwrap();
    assert_eq!(seen.lock().unwrap().deliveries.len(), 4, "no fifth attempt");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscriptions_are_verified_limited_and_private_to_their_owner() {
    let dir = tempfile::tempdir().unwrap();
    let mut state = fast_retries(state(dir.path()));
    state.push.max_subscriptions_per_user = 2;
    let (url, _seen) = receiver(0).await;
    let (ada, bob) = (token("ada"), token("bob"));
    let create = |token: &str, callback: String| {
        request("POST", "/api/v1/push-subscriptions", Some(token), Some(json!({ "callback_url": callback })))
    };

    for (callback, error) in [
        ("ftp://apps.example.test/hook".to_owned(), "invalid_callback_url"),
        ("not a url".to_owned(), "invalid_callback_url"),
        (format!("{url}/silent"), "callback_not_verified"),
        (format!("{url}/missing"), "callback_not_verified"),
        ("http://127.0.0.1:9/hook".to_owned(), "callback_not_verified"),
    ] {
        let (status, body) = call(&state, create(&ada, callback.clone())).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{callback}: {body}");
        assert_error_body(&body, error);
        assert_eq!(body["details"]["field"], "callback_url");
    }
    let (_, list) = call(&state, request("GET", "/api/v1/push-subscriptions", Some(&ada), None)).await;
    assert_eq!(list["subscriptions"], json!([]), "nothing unverified was kept");

    for _ in 0..2 {
        assert_eq!(call(&state, create(&ada, format!("{url}/hook"))).await.0, StatusCode::CREATED);
    }
    let (status, body) = call(&state, create(&ada, format!("{url}/hook"))).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_error_body(&body, "too_many_subscriptions");
    assert_eq!(call(&state, create(&bob, format!("{url}/hook"))).await.0, StatusCode::CREATED, "bob has his own");

    let (_, list) = call(&state, request("GET", "/api/v1/push-subscriptions", Some(&ada), None)).await;
    let ids: Vec<String> =
        list["subscriptions"].as_array().unwrap().iter().map(|s| s["id"].as_str().unwrap().to_owned()).collect();
    assert_eq!(ids.len(), 2);
    let delete =
        |token: &str, id: &str| request("DELETE", &format!("/api/v1/push-subscriptions/{id}"), Some(token), None);
    let (status, body) = call(&state, delete(&bob, &ids[0])).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "another user's subscription is not found: {body}");
    assert_eq!(call(&state, delete(&ada, &ids[0])).await.0, StatusCode::NO_CONTENT);
    assert_eq!(call(&state, delete(&ada, &ids[0])).await.0, StatusCode::NOT_FOUND);

    // Erasing the user ends their subscriptions.
    let (status, body) = call(&state, request("DELETE", "/api/v1/users/me", Some(&ada), None)).await;
    assert!(status.is_success(), "{body}");
    let (_, list) = call(&state, request("GET", "/api/v1/push-subscriptions", Some(&ada), None)).await;
    assert_eq!(list["subscriptions"], json!([]));
    let (_, list) = call(&state, request("GET", "/api/v1/push-subscriptions", Some(&bob), None)).await;
    assert_eq!(list["subscriptions"].as_array().unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_callback_inside_the_deployments_network_is_never_called() {
    let dir = tempfile::tempdir().unwrap();
    let state = state(dir.path());
    let (url, seen) = receiver(0).await;
    let port = url.rsplit(':').next().unwrap().to_owned();
    let create = |callback: String| {
        request("POST", "/api/v1/push-subscriptions", Some(&token("ada")), Some(json!({ "callback_url": callback })))
    };
    // Addresses written out are refused as they are; names are refused once they resolve to one.
    for (callback, error) in [
        (format!("{url}/hook"), "invalid_callback_url"),
        (format!("http://[::1]:{port}/hook"), "invalid_callback_url"),
        ("http://169.254.169.254/latest/meta-data/".to_owned(), "invalid_callback_url"),
        ("http://10.1.2.3/hook".to_owned(), "invalid_callback_url"),
        (format!("http://localhost:{port}/hook"), "callback_not_verified"),
    ] {
        let (status, body) = call(&state, create(callback.clone())).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{callback}: {body}");
        assert_error_body(&body, error);
        assert!(body["message"].as_str().unwrap().contains("network"), "{callback}: says why: {body}");
    }
    assert!(seen.lock().unwrap().verify_tokens.is_empty(), "the receiver was never called");
}
