//! The `/api/v1` surface through the router (no socket): isolation between users, training load
//! on synthetic histories with hand-computed values, each recommendation from a history built for
//! it, streams alignment, gear, rate limits, request ids, erasure.
mod common;

use common::*;
use serde_json::{Value, json};
use trackwire_codec::WorkoutId;
use trackwire_pipeline::EnrichedPoint;

const DAY_MS: i64 = 86_400_000;

fn today_noon_ms() -> i64 {
    let now = chrono::Utc::now().timestamp_millis();
    now - now.rem_euclid(DAY_MS) + DAY_MS / 2
}

fn points(id: u8, n: usize) -> Vec<EnrichedPoint> {
    (0..n)
        .map(|i| EnrichedPoint {
            workout_id: WorkoutId([id; 16]),
            time_ms: 1_700_000_000_000 + i as i64 * 1000,
            lat_deg: Some(46.0 + i as f64 * 1e-4),
            lon_deg: Some(14.0 + i as f64 * 1e-4),
            distance_m: i as f64 * 13.6,
            heart_rate_bpm: (i % 3 != 0).then_some(140),
            moving: true,
            ..Default::default()
        })
        .collect()
}

/// Every user-scoped endpoint, for one user id and one workout id.
fn endpoints(user: &str, workout: &str) -> Vec<(&'static str, String, Option<Value>)> {
    vec![
        ("GET", format!("/api/v1/workouts/{workout}"), None),
        ("PUT", format!("/api/v1/workouts/{workout}"), Some(json!({ "gear_id": null }))),
        ("GET", format!("/api/v1/workouts/{workout}/streams"), None),
        ("GET", format!("/api/v1/workouts/{workout}/route"), None),
        ("GET", format!("/api/v1/workouts/{workout}/splits"), None),
        ("GET", format!("/api/v1/workouts/{workout}/laps"), None),
        ("GET", format!("/api/v1/workouts/{workout}/export?format=gpx"), None),
        ("GET", format!("/api/v1/workouts/{workout}/live"), None),
        ("GET", format!("/api/v1/users/{user}/profile"), None),
        ("PUT", format!("/api/v1/users/{user}/profile"), Some(json!({ "weight_kg": 70.0 }))),
        ("GET", format!("/api/v1/users/{user}/stats"), None),
        ("GET", format!("/api/v1/users/{user}/records"), None),
        ("GET", format!("/api/v1/users/{user}/export"), None),
        ("GET", format!("/api/v1/users/{user}/training-load"), None),
        ("GET", format!("/api/v1/users/{user}/recommendations"), None),
        ("GET", format!("/api/v1/users/{user}/gear"), None),
        ("POST", format!("/api/v1/users/{user}/gear"), Some(json!({ "name": "x", "kind": "shoes" }))),
        ("GET", format!("/api/v1/users/{user}/gear/g1"), None),
        ("PATCH", format!("/api/v1/users/{user}/gear/g1"), Some(json!({ "retired": true }))),
        ("DELETE", format!("/api/v1/users/{user}/gear/g1"), None),
        ("GET", format!("/api/v1/users/{user}/device-tokens"), None),
        ("POST", format!("/api/v1/users/{user}/device-tokens"), Some(json!({ "device_id": "w" }))),
        ("DELETE", format!("/api/v1/users/{user}/device-tokens/dt1"), None),
        ("DELETE", format!("/api/v1/users/{user}"), None),
    ]
}

#[tokio::test]
async fn another_users_data_is_404_or_403_and_no_token_is_401() {
    let dir = tempfile::tempdir().unwrap();
    let state = state(dir.path());
    put(&state, vec![output(1, summary("alice", 1, today_noon_ms(), "running", 50.0, 5000.0, 1800.0), points(1, 20))]);
    let workout = WorkoutId([1; 16]).to_string();
    let (alice, bob) = (token("alice"), token("bob"));

    // Alice sees her workout; Bob's list is empty.
    let (status, body) = call(&state, request("GET", "/api/v1/workouts", Some(&alice), None)).await;
    assert_eq!((status.as_u16(), body["workouts"].as_array().unwrap().len()), (200, 1));
    let (status, body) = call(&state, request("GET", "/api/v1/workouts", Some(&bob), None)).await;
    assert_eq!((status.as_u16(), body["workouts"].as_array().unwrap().len()), (200, 0));

    for (method, uri, body) in endpoints("alice", &workout) {
        let (status, answer) = call(&state, request(method, &uri, Some(&bob), body.clone())).await;
        assert!(matches!(status.as_u16(), 403 | 404), "{method} {uri} with Bob's token: {status} {answer}");
        assert_error_body(&answer, if status.as_u16() == 403 { "forbidden" } else { "not_found" });
        let (status, answer) = call(&state, request(method, &uri, None, body.clone())).await;
        assert_eq!(status.as_u16(), 401, "{method} {uri} without a token: {answer}");
        assert_error_body(&answer, "unauthorized");
    }
    for uri in ["/api/v1/workouts", "/api/v1/uploads/up1"] {
        let (status, _) = call(&state, request("GET", uri, None, None)).await;
        assert_eq!(status.as_u16(), 401, "{uri}");
    }
    // Tokens that are not ours: wrong issuer, wrong signature, garbage.
    let foreign = token_with("alice", None, "https://evil.example");
    for bad in [foreign.as_str(), "not-a-jwt", &format!("{alice}x")] {
        let (status, body) = call(&state, request("GET", "/api/v1/workouts", Some(bad), None)).await;
        assert_eq!(status.as_u16(), 401, "{bad}: {body}");
    }
    // Alice's own workout, and `me`.
    let (status, body) = call(&state, request("GET", &format!("/api/v1/workouts/{workout}"), Some(&alice), None)).await;
    assert_eq!(status.as_u16(), 200, "{body}");
    let (status, _) = call(&state, request("GET", "/api/v1/users/me/stats", Some(&alice), None)).await;
    assert_eq!(status.as_u16(), 200);
    // The admin scope may act on anyone.
    let admin = token_with("ops", Some("openid trackwire:admin"), ISSUER);
    let (status, _) = call(&state, request("GET", "/api/v1/users/alice/stats", Some(&admin), None)).await;
    assert_eq!(status.as_u16(), 200);
}

#[tokio::test]
async fn streams_stay_index_aligned_at_every_resolution() {
    let dir = tempfile::tempdir().unwrap();
    let state = state(dir.path());
    put(
        &state,
        vec![output(1, summary("alice", 1, 1_700_000_000_000, "running", 50.0, 5000.0, 1800.0), points(1, 2500))],
    );
    let alice = token("alice");
    let id = WorkoutId([1; 16]);
    for (resolution, expected) in [("low", 100), ("medium", 1000), ("high", 2500), ("", 2500)] {
        let uri = format!("/api/v1/workouts/{id}/streams?resolution={resolution}");
        let uri = if resolution.is_empty() { format!("/api/v1/workouts/{id}/streams") } else { uri };
        let (status, body) = call(&state, request("GET", &uri, Some(&alice), None)).await;
        assert_eq!(status.as_u16(), 200, "{body}");
        let streams = body.as_object().unwrap();
        assert_eq!(streams.len(), 10, "every stream type");
        for (key, stream) in streams {
            assert_eq!(stream["data"].as_array().unwrap().len(), expected, "{key} at {resolution}");
            assert_eq!(stream["original_size"], 2500);
        }
        // Aligned: entry i of every stream is the same sample (distance is 13.6 m × index).
        let distance = streams["distance"]["data"].as_array().unwrap();
        let latlng = streams["latlng"]["data"].as_array().unwrap();
        for (d, p) in distance.iter().zip(latlng) {
            let index = (d.as_f64().unwrap() / 13.6).round();
            assert!((p[0].as_f64().unwrap() - (46.0 + index * 1e-4)).abs() < 1e-6);
        }
        let hr = streams["heartrate"]["data"].as_array().unwrap();
        for (d, h) in distance.iter().zip(hr) {
            let index = (d.as_f64().unwrap() / 13.6).round() as usize;
            assert_eq!(h.is_null(), index.is_multiple_of(3));
        }
    }
    let (status, body) =
        call(&state, request("GET", &format!("/api/v1/workouts/{id}/streams?keys=time,bogus"), Some(&alice), None))
            .await;
    assert_eq!(status.as_u16(), 400);
    assert_error_body(&body, "unknown_stream");
    // The route and the summary polyline agree.
    let (_, details) = call(&state, request("GET", &format!("/api/v1/workouts/{id}"), Some(&alice), None)).await;
    let decoded =
        trackwire_pipeline::route::decode_polyline(details["map"]["summary_polyline"].as_str().unwrap()).unwrap();
    let (_, route) =
        call(&state, request("GET", &format!("/api/v1/workouts/{id}/route?resolution=low"), Some(&alice), None)).await;
    let coordinates = route["geometry"]["coordinates"].as_array().unwrap();
    assert_eq!(decoded.len(), coordinates.len());
    assert_eq!(decoded.len(), 100);
    for ((lat, lon), c) in decoded.iter().zip(coordinates) {
        assert!((lat - c[1].as_f64().unwrap()).abs() < 1e-5 && (lon - c[0].as_f64().unwrap()).abs() < 1e-5);
    }
}

/// One workout of TRIMP 100 five days ago; nothing else. By hand: on its day CTL = 100(1 − e^(−1/42))
/// and ATL = 100(1 − e^(−1/7)); each rest day multiplies them by e^(−1/42) and e^(−1/7); TSB going
/// into a day is the previous day's CTL − ATL; ACWR needs 28 days of history.
#[tokio::test]
async fn training_load_matches_hand_computed_values() {
    let dir = tempfile::tempdir().unwrap();
    let state = state(dir.path());
    put(
        &state,
        vec![output(1, summary("alice", 1, today_noon_ms() - 5 * DAY_MS, "running", 100.0, 10_000.0, 3600.0), vec![])],
    );
    let (status, body) =
        call(&state, request("GET", "/api/v1/users/me/training-load?days=6", Some(&token("alice")), None)).await;
    assert_eq!(status.as_u16(), 200, "{body}");
    let days = body["days"].as_array().unwrap();
    assert_eq!(days.len(), 6);
    let (ctl0, atl0) = (100.0 * (1.0 - (-1.0f64 / 42.0).exp()), 100.0 * (1.0 - (-1.0f64 / 7.0).exp()));
    assert_eq!(days[0]["trimp"], 100.0);
    let close = |v: &Value, want: f64| (v.as_f64().unwrap() - want).abs() < 1e-9;
    assert!(close(&days[0]["ctl"], ctl0) && close(&days[0]["atl"], atl0), "{}", days[0]);
    for (k, day) in days.iter().enumerate().skip(1) {
        let (ctl, atl) = (ctl0 * (-(k as f64) / 42.0).exp(), atl0 * (-(k as f64) / 7.0).exp());
        assert!(close(&day["ctl"], ctl) && close(&day["atl"], atl), "day {k}: {day}");
        let (prev_ctl, prev_atl) = (ctl0 * (-(k as f64 - 1.0) / 42.0).exp(), atl0 * (-(k as f64 - 1.0) / 7.0).exp());
        assert!(close(&day["tsb"], prev_ctl - prev_atl), "day {k}: {day}");
        assert!(day["acwr"].is_null());
    }

    // 28 days of TRIMP 50, the last 7 of them 100: ACWR = mean(7 d) / mean(28 d) = 100 / (21·50 + 7·100)/28.
    let dir = tempfile::tempdir().unwrap();
    let state = common::state(dir.path());
    let today = today_noon_ms();
    let history = (0..28u8)
        .map(|k| {
            let trimp = if k < 7 { 100.0 } else { 50.0 };
            output(
                u64::from(k) + 1,
                summary("bob", k + 1, today - i64::from(k) * DAY_MS, "cycling", trimp, 1.0, 60.0),
                vec![],
            )
        })
        .collect();
    put(&state, history);
    let (_, body) =
        call(&state, request("GET", "/api/v1/users/me/training-load?days=1", Some(&token("bob")), None)).await;
    let acwr = body["days"][0]["acwr"].as_f64().unwrap();
    assert!((acwr - 100.0 / ((21.0 * 50.0 + 7.0 * 100.0) / 28.0)).abs() < 1e-9, "{acwr}");
}

async fn kinds_for(history: Vec<(i64, f64, f64)>, gear_km: Option<f64>) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let state = state(dir.path());
    let today = today_noon_ms();
    let outputs = history
        .iter()
        .enumerate()
        .map(|(i, (days_ago, trimp, moving_s))| {
            let id = i as u8 + 1;
            output(
                u64::from(id),
                summary("carol", id, today - days_ago * DAY_MS, "running", *trimp, 10_000.0, *moving_s),
                vec![],
            )
        })
        .collect();
    put(&state, outputs);
    let carol = token("carol");
    if let Some(km) = gear_km {
        let (status, gear) = call(
            &state,
            request(
                "POST",
                "/api/v1/users/me/gear",
                Some(&carol),
                Some(json!({ "name": "Pegasus", "kind": "shoes", "replace_after_km": km })),
            ),
        )
        .await;
        assert_eq!(status.as_u16(), 201, "{gear}");
        for i in 0..history.len() {
            let uri = format!("/api/v1/workouts/{}", WorkoutId([i as u8 + 1; 16]));
            let (status, body) =
                call(&state, request("PUT", &uri, Some(&carol), Some(json!({ "gear_id": gear["id"] })))).await;
            assert_eq!(status.as_u16(), 200, "{body}");
        }
    }
    let (status, body) = call(&state, request("GET", "/api/v1/users/me/recommendations", Some(&carol), None)).await;
    assert_eq!(status.as_u16(), 200, "{body}");
    body["recommendations"]
        .as_array()
        .unwrap()
        .iter()
        .inspect(|r| assert!(!r["reason"].as_str().unwrap().is_empty() && r["numbers"].is_object(), "{r}"))
        .map(|r| r["kind"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn each_recommendation_type_is_triggered_by_a_history_built_for_it() {
    // Rested, steady, a long run three days ago: a quality session, nothing else.
    let steady: Vec<_> = (1..60).map(|d| (d, 40.0, if d == 3 { 6000.0 } else { 2400.0 })).collect();
    assert_eq!(kinds_for(steady.clone(), None).await, ["quality_session"]);
    // The same without any long run: a long session is due too.
    let no_long: Vec<_> = (1..60).map(|d| (d, 40.0, 2400.0)).collect();
    assert_eq!(kinds_for(no_long, None).await, ["quality_session", "long_session"]);
    // A crushing last week after a quiet month: recover, and the ramp is too steep.
    let crushing: Vec<_> = (1..40).map(|d| (d, if d <= 7 { 250.0 } else { 20.0 }, 2400.0)).collect();
    let kinds = kinds_for(crushing, None).await;
    assert!(kinds.contains(&"recover".to_owned()) && kinds.contains(&"ramp_rate_warning".to_owned()), "{kinds:?}");
    // A moderately hard week: train easy.
    let tired: Vec<_> = (1..60).map(|d| (d, if d <= 5 { 110.0 } else { 60.0 }, 2400.0)).collect();
    let kinds = kinds_for(tired, None).await;
    assert!(kinds.contains(&"easy_aerobic".to_owned()), "{kinds:?}");
    // Shoes past their distance: replace them (59 workouts × 10 km against 500 km).
    let kinds = kinds_for(steady, Some(500.0)).await;
    assert!(kinds.contains(&"replace_gear".to_owned()), "{kinds:?}");
}

#[tokio::test]
async fn rate_limits_answer_429_with_the_limit_headers_and_every_response_has_a_request_id() {
    let dir = tempfile::tempdir().unwrap();
    let state = state_with(
        dir.path(),
        16,
        Box::new(|_| true),
        trackwire_api::limits::RateLimitConfig { per_minute: 60, burst: 2 },
    );
    let alice = token("alice");
    for remaining in [1, 0] {
        let (status, headers, _) = call_full(&state, request("GET", "/api/v1/workouts", Some(&alice), None)).await;
        assert_eq!(status.as_u16(), 200);
        assert_eq!(headers["x-ratelimit-limit"], "60");
        assert_eq!(headers["x-ratelimit-remaining"], remaining.to_string().as_str());
        assert!(headers.contains_key("x-request-id"));
    }
    let (status, headers, body) = call_full(&state, request("GET", "/api/v1/workouts", Some(&alice), None)).await;
    assert_eq!(status.as_u16(), 429);
    assert_error_body(&body, "rate_limited");
    assert_eq!(headers["retry-after"], "1");
    // Another token has its own bucket; a request id sent is echoed.
    let mut r = request("GET", "/api/v1/workouts", Some(&token("bob")), None);
    r.headers_mut().insert("x-request-id", "trace-123".parse().unwrap());
    let (status, headers, _) = call_full(&state, r).await;
    assert_eq!(
        (status.as_u16(), &headers["x-request-id"]),
        (200, &"trace-123".parse::<axum::http::HeaderValue>().unwrap())
    );
}

#[tokio::test]
async fn profiles_are_validated_and_reach_the_pipeline_registry() {
    let dir = tempfile::tempdir().unwrap();
    let state = state(dir.path());
    let alice = token("alice");
    let (status, body) = call(
        &state,
        request(
            "PUT",
            "/api/v1/users/me/profile",
            Some(&alice),
            Some(json!({ "weight_kg": 70.0, "hr_rest_bpm": 190.0, "hr_max_bpm": 180.0 })),
        ),
    )
    .await;
    assert_eq!(status.as_u16(), 400);
    assert_error_body(&body, "validation_failed");
    assert_eq!(body["details"]["field"], "hr_rest_bpm", "{body}");
    let (status, body) =
        call(&state, request("PUT", "/api/v1/users/me/profile", Some(&alice), Some(json!({ "wieght_kg": 70.0 }))))
            .await;
    assert_eq!(status.as_u16(), 400, "unknown fields are refused: {body}");
    assert_error_body(&body, "validation_failed");
    let profile =
        json!({ "weight_kg": 61.5, "birth_year": 1990, "sex": "female", "hr_max_bpm": 188.0, "hr_rest_bpm": 48.0 });
    let (status, _) =
        call(&state, request("PUT", "/api/v1/users/me/profile", Some(&alice), Some(profile.clone()))).await;
    assert_eq!(status.as_u16(), 200);
    let (_, body) = call(&state, request("GET", "/api/v1/users/alice/profile", Some(&alice), None)).await;
    assert_eq!(body, profile);
    let registered = state.ingest.data_path.as_ref().unwrap().profiles.get("alice").unwrap();
    assert_eq!((registered.weight_kg, registered.male, registered.hr_rest_bpm), (Some(61.5), Some(false), Some(48.0)));
}

#[tokio::test]
async fn device_tokens_bind_ingest_to_their_user_and_erasure_removes_everything() {
    let dir = tempfile::tempdir().unwrap();
    let state = state(dir.path());
    put(&state, vec![output(1, summary("alice", 1, today_noon_ms(), "running", 50.0, 5000.0, 1800.0), points(1, 20))]);
    let alice = token("alice");
    let (status, issued) = call(
        &state,
        request("POST", "/api/v1/users/me/device-tokens", Some(&alice), Some(json!({ "device_id": "watch-9" }))),
    )
    .await;
    assert_eq!(status.as_u16(), 201, "{issued}");
    let secret = issued["token"].as_str().unwrap().to_owned();
    let binding = state.ingestor().token_binding(&secret).unwrap();
    assert_eq!((binding.device_id.as_str(), binding.user_id.as_deref()), ("watch-9", Some("alice")));
    let (_, list) = call(&state, request("GET", "/api/v1/users/me/device-tokens", Some(&alice), None)).await;
    assert!(list["tokens"][0]["token"].is_null(), "secrets are shown once: {list}");

    let (status, erased) = call(&state, request("DELETE", "/api/v1/users/me", Some(&alice), None)).await;
    assert_eq!(status.as_u16(), 200, "{erased}");
    assert_eq!(erased["workouts_erased"], 1);
    assert!(state.ingestor().token_binding(&secret).is_none(), "device tokens are revoked");
    let (_, list) = call(&state, request("GET", "/api/v1/workouts", Some(&alice), None)).await;
    assert_eq!(list["workouts"], json!([]));
    assert!(state.store.get(&WorkoutId([1; 16])).unwrap().is_none());
    assert!(state.store.streams(&WorkoutId([1; 16])).unwrap().is_empty());
    let (status, _) =
        call(&state, request("GET", &format!("/api/v1/workouts/{}", WorkoutId([1; 16])), Some(&alice), None)).await;
    assert_eq!(status.as_u16(), 404);
}

/// Every key of `value` at any depth.
fn keys_of(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                out.push(k.clone());
                keys_of(v, out);
            }
        }
        Value::Array(items) => items.iter().for_each(|v| keys_of(v, out)),
        _ => {}
    }
}

#[tokio::test]
async fn instants_are_iso_8601_days_are_dates_and_unknown_filter_values_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let state = state(dir.path());
    let noon = today_noon_ms();
    put(&state, vec![output(1, summary("alice", 1, noon, "running", 50.0, 5000.0, 1800.0), points(1, 20))]);
    let alice = token("alice");
    let get = |uri: String| call(&state, request("GET", &uri, Some(&alice), None));
    let workout = WorkoutId([1; 16]);
    let today = chrono::DateTime::from_timestamp_millis(noon).unwrap();

    // Instants are ISO 8601 UTC; nothing anywhere is epoch milliseconds or days since 1970.
    let mut answers = Vec::new();
    for uri in [
        "/api/v1/workouts".to_owned(),
        format!("/api/v1/workouts/{workout}"),
        format!("/api/v1/workouts/{workout}/live"),
        "/api/v1/users/me/stats".to_owned(),
        "/api/v1/users/me/training-load?days=3".to_owned(),
        "/api/v1/users/me/recommendations".to_owned(),
    ] {
        let (status, body) = get(uri.clone()).await;
        assert_eq!(status.as_u16(), 200, "{uri}: {body}");
        let mut keys = Vec::new();
        keys_of(&body, &mut keys);
        assert!(!keys.iter().any(|k| k.ends_with("_ms")), "{uri} has epoch-ms fields: {keys:?}");
        answers.push(body);
    }
    let listed = &answers[0]["workouts"][0];
    assert_eq!(listed["start_time"], today.to_rfc3339_opts(chrono::SecondsFormat::Millis, true), "{listed}");
    assert!(listed["end_time"].as_str().is_some_and(|t| t.ends_with('Z')), "{listed}");
    assert_eq!(answers[1]["start_time"], listed["start_time"]);
    assert!(answers[2]["last_sample"]["time"].as_str().is_some_and(|t| t.ends_with('Z')), "{}", answers[2]);
    let days = answers[4]["days"].as_array().unwrap();
    assert_eq!(days.last().unwrap()["day"], today.format("%Y-%m-%d").to_string(), "{}", answers[4]);

    // `after`/`before` take ISO 8601 or Unix seconds, and mean the same instant either way.
    let hour_before = today - chrono::Duration::hours(1);
    for after in [hour_before.to_rfc3339(), hour_before.timestamp().to_string(), "2020-01-01T00:00:00Z".to_owned()] {
        let (status, body) = get(format!("/api/v1/workouts?after={}", after.replace('+', "%2B"))).await;
        assert_eq!(
            (status.as_u16(), body["workouts"].as_array().map(Vec::len)),
            (200, Some(1)),
            "after={after}: {body}"
        );
    }
    let (_, body) = get(format!("/api/v1/workouts?before={}", hour_before.to_rfc3339().replace('+', "%2B"))).await;
    assert_eq!(body["workouts"].as_array().map(Vec::len), Some(0), "{body}");
    let (status, body) = get("/api/v1/workouts?after=yesterday".to_owned()).await;
    assert_eq!(status.as_u16(), 400);
    assert_error_body(&body, "invalid_time");

    // An unknown filter value is refused with the allowed ones, not answered with an empty list.
    for uri in [
        "/api/v1/workouts?sport=Run",
        "/api/v1/workouts?sport=foo",
        "/api/v1/users/me/stats?sport=foo",
        "/api/v1/users/me/training-load?sport=foo",
        "/api/v1/users/me/stats?period=decade",
        "/api/v1/workouts/00000000-0000-0000-0000-000000000000/streams?resolution=max",
    ] {
        let (status, body) = get(uri.to_owned()).await;
        assert_eq!(status.as_u16(), 400, "{uri}: {body}");
        assert_error_body(&body, "invalid_query");
        let allowed = body["details"]["allowed"].as_array().unwrap_or_else(|| panic!("{uri}: {body}"));
        assert!(allowed.len() >= 3, "{uri}: {body}");
    }
    let (_, body) = get("/api/v1/workouts?sport=running".to_owned()).await;
    assert_eq!(body["workouts"].as_array().map(Vec::len), Some(1), "{body}");
}

/// `n` samples one second apart at a steady `mps`, from `start_ms`.
fn steady(id: u8, start_ms: i64, mps: f64, n: usize) -> Vec<EnrichedPoint> {
    (0..n)
        .map(|i| EnrichedPoint {
            workout_id: WorkoutId([id; 16]),
            time_ms: start_ms + i as i64 * 1000,
            distance_m: i as f64 * mps,
            moving: true,
            ..Default::default()
        })
        .collect()
}

#[tokio::test]
async fn records_per_sport_and_the_personal_records_of_each_workout() {
    let dir = tempfile::tempdir().unwrap();
    let state = state(dir.path());
    let t0 = today_noon_ms() - 10 * DAY_MS;
    // Two runs (3 km at 5 m/s, then 6 km at 4 m/s) and a 20 km ride at 10 m/s.
    put(
        &state,
        vec![
            output(1, summary("ada", 1, t0, "running", 10.0, 2_995.0, 600.0), steady(1, t0, 5.0, 600)),
            output(
                2,
                summary("ada", 2, t0 + DAY_MS, "running", 10.0, 5_996.0, 1500.0),
                steady(2, t0 + DAY_MS, 4.0, 1500),
            ),
            output(
                3,
                summary("ada", 3, t0 + 2 * DAY_MS, "cycling", 10.0, 19_990.0, 2000.0),
                steady(3, t0 + 2 * DAY_MS, 10.0, 2000),
            ),
        ],
    );
    let ada = token("ada");
    let (status, body) = call(&state, request("GET", "/api/v1/users/me/records", Some(&ada), None)).await;
    assert_eq!(status.as_u16(), 200, "{body}");
    let sports: Vec<&str> = body["sports"].as_array().unwrap().iter().map(|s| s["sport"].as_str().unwrap()).collect();
    assert_eq!(sports, ["cycling", "running"]);
    let running = &body["sports"][1];
    assert_eq!(running["longest"]["workout_id"], WorkoutId([2; 16]).to_string());
    let efforts: Vec<(String, f64, String)> = running["best_efforts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (e["effort"].as_str().unwrap().to_owned(), e["seconds"].as_f64().unwrap(), e["workout_id"].to_string())
        })
        .collect();
    let (one, two) = (format!("\"{}\"", WorkoutId([1; 16])), format!("\"{}\"", WorkoutId([2; 16])));
    // Sample pairs only: the mile needs 1,610 m at 5 m/s (322 s); 5 km is run once, in 1,250 s.
    assert_eq!(
        efforts,
        [
            ("400m".to_owned(), 80.0, one.clone()),
            ("1k".to_owned(), 200.0, one.clone()),
            ("1mile".to_owned(), 322.0, one),
            ("5k".to_owned(), 1250.0, two),
        ]
    );
    assert_eq!(running["best_efforts"][1]["distance_m"], 1000.0);
    let ride = &body["sports"][0]["best_efforts"];
    assert_eq!(ride.as_array().unwrap().len(), 5, "400 m to 10 km in 20 km: {ride}");
    let (_, only_rides) =
        call(&state, request("GET", "/api/v1/users/me/records?sport=cycling", Some(&ada), None)).await;
    assert_eq!(only_rides["sports"].as_array().unwrap().len(), 1);

    let prs = |body: &Value| -> Vec<String> {
        body["personal_records"].as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_owned()).collect()
    };
    for (id, expected) in
        [(1, vec!["400m", "1k", "1mile"]), (2, vec!["5k"]), (3, vec!["400m", "1k", "1mile", "5k", "10k"])]
    {
        let (status, details) =
            call(&state, request("GET", &format!("/api/v1/workouts/{}", WorkoutId([id; 16])), Some(&ada), None)).await;
        assert_eq!(status.as_u16(), 200, "{details}");
        assert_eq!(prs(&details), expected, "workout {id}: {details}");
    }
    let (_, stats) = call(&state, request("GET", "/api/v1/users/me/stats?sport=running", Some(&ada), None)).await;
    assert_eq!(stats["records"]["fastest_5k"]["seconds"], 1250.0, "{stats}");
}

#[tokio::test]
async fn workout_reads_carry_an_etag_and_answer_304_while_it_holds() {
    use axum::http::header::{CACHE_CONTROL, ETAG, IF_NONE_MATCH};
    use tower::ServiceExt;
    let dir = tempfile::tempdir().unwrap();
    let state = state(dir.path());
    put(&state, vec![output(1, summary("ada", 1, today_noon_ms(), "running", 50.0, 5000.0, 1800.0), points(1, 20))]);
    let ada = token("ada");
    let uri = format!("/api/v1/workouts/{}", WorkoutId([1; 16]));
    let conditional = |tag: &str| {
        let mut r = request("GET", &uri, Some(&ada), None);
        r.headers_mut().insert(IF_NONE_MATCH, tag.parse().unwrap());
        r
    };
    let (status, headers, body) = call_full(&state, request("GET", &uri, Some(&ada), None)).await;
    assert_eq!(status.as_u16(), 200, "{body}");
    let etag = headers[ETAG].to_str().unwrap().to_owned();
    assert!(etag.starts_with('"') && etag.ends_with('"') && etag.len() == 34, "a strong tag: {etag}");
    assert_eq!(headers[CACHE_CONTROL], "private, no-cache", "revalidated every time, never shared");
    let (_, again, _) = call_full(&state, request("GET", &uri, Some(&ada), None)).await;
    assert_eq!(again[ETAG], etag.as_str(), "the same body, the same tag");

    for matching in [etag.clone(), format!("W/{etag}"), format!("\"other\", {etag}"), "*".to_owned()] {
        let response = trackwire_api::app(state.clone()).oneshot(conditional(&matching)).await.unwrap();
        assert_eq!(response.status().as_u16(), 304, "If-None-Match: {matching}");
        assert_eq!(response.headers()[ETAG], etag.as_str());
        assert!(response.headers().contains_key("x-ratelimit-limit"), "still rate limited");
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap();
        assert!(bytes.is_empty(), "a 304 has no body");
    }
    let (status, _, _) = call_full(&state, conditional("\"stale\"")).await;
    assert_eq!(status.as_u16(), 200);

    // A change makes the old tag stale.
    let (status, _) =
        call(&state, request("POST", &format!("{uri}/tags"), Some(&ada), Some(json!({ "tag": "race" })))).await;
    assert_eq!(status.as_u16(), 200);
    let (status, headers, body) = call_full(&state, conditional(&etag)).await;
    assert_eq!((status.as_u16(), body["tags"][0].as_str()), (200, Some("race")));
    assert_ne!(headers[ETAG], etag.as_str());
    // Errors carry no tag; neither does a write.
    let (status, headers, _) =
        call_full(&state, request("GET", &format!("/api/v1/workouts/{}", WorkoutId([9; 16])), Some(&ada), None)).await;
    assert_eq!((status.as_u16(), headers.contains_key(ETAG)), (404, false));
    let (_, headers, _) = call_full(&state, request("PUT", &uri, Some(&ada), Some(json!({ "gear_id": null })))).await;
    assert!(!headers.contains_key(ETAG));
}

/// The upload's status once it is no longer `processing` (10 s at most).
async fn processed(state: &trackwire_api::AppState, token: &str, upload: &Value) -> Value {
    let uri = format!("/api/v1/uploads/{}", upload["id"].as_str().unwrap());
    for _ in 0..200 {
        let (_, body) = call(state, request("GET", &uri, Some(token), None)).await;
        if body["status"] != "processing" {
            return body;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("upload {upload} still processing after 10 s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_multisport_upload_becomes_one_workout_per_session() {
    use trackwire_traces::fit::{TRIATHLON_LEGS, triathlon};
    let dir = tempfile::tempdir().unwrap();
    let state = state(dir.path());
    let ada = token("ada");
    let (status, upload) = call(&state, multipart(&ada, &[("file", &triathlon(1_780_000_000_000))])).await;
    assert_eq!(status.as_u16(), 202, "{upload}");
    let done = processed(&state, &ada, &upload).await;
    assert_eq!(done["status"], "ready", "{done}");
    let ids = done["workout_ids"].as_array().unwrap();
    assert_eq!(ids.len(), TRIATHLON_LEGS.len(), "{done}");
    assert_eq!(done["workout_id"], ids[0]);
    let records: u64 = TRIATHLON_LEGS.iter().map(|leg| leg.2 as u64).sum();
    assert_eq!(done["samples"], records, "every record stored once");
    // The same file again: every session is a duplicate, so the whole upload is.
    let (_, again) = call(&state, multipart(&ada, &[("file", &triathlon(1_780_000_000_000))])).await;
    let second = processed(&state, &ada, &again).await;
    assert_eq!((second["status"].as_str(), &second["workout_ids"]), (Some("duplicate"), &done["workout_ids"]));
}

#[tokio::test]
async fn laps_are_the_presses_or_the_whole_workout_as_one() {
    let dir = tempfile::tempdir().unwrap();
    let state = state(dir.path());
    let start = today_noon_ms();
    let plain = summary("ada", 1, start, "running", 50.0, 5000.0, 1800.0);
    let mut pressed = summary("ada", 2, start + DAY_MS / 4, "running", 50.0, 2000.0, 600.0);
    pressed.laps = serde_json::from_value(json!([
        { "lap": 1, "start_time_ms": pressed.start_time_ms, "end_time_ms": pressed.start_time_ms + 300_000,
          "elapsed_s": 300.0, "moving_s": 290.0, "distance_m": 1000.0, "pace_s_per_km": 290.0,
          "heart_rate_avg_bpm": 150.0, "heart_rate_max_bpm": 160, "elevation_gain_m": 4.0 },
        { "lap": 2, "start_time_ms": pressed.start_time_ms + 300_000, "end_time_ms": pressed.start_time_ms + 600_000,
          "elapsed_s": 300.0, "moving_s": 300.0, "distance_m": 1000.0, "pace_s_per_km": 300.0,
          "heart_rate_avg_bpm": null, "heart_rate_max_bpm": null, "elevation_gain_m": null }
    ]))
    .unwrap();
    put(&state, vec![output(1, plain, vec![]), output(2, pressed, vec![])]);
    let ada = token("ada");
    let (status, laps) =
        call(&state, request("GET", &format!("/api/v1/workouts/{}/laps", WorkoutId([2; 16])), Some(&ada), None)).await;
    assert_eq!(status.as_u16(), 200, "{laps}");
    assert_eq!(laps.as_array().unwrap().len(), 2);
    assert_eq!(laps[1]["start_time"], iso(start + DAY_MS / 4 + 300_000));
    assert_eq!((laps[0]["pace_s_per_km"].as_f64(), laps[0]["heart_rate_max_bpm"].as_u64()), (Some(290.0), Some(160)));
    let (_, whole) =
        call(&state, request("GET", &format!("/api/v1/workouts/{}/laps", WorkoutId([1; 16])), Some(&ada), None)).await;
    assert_eq!(whole.as_array().unwrap().len(), 1, "{whole}");
    assert_eq!((whole[0]["lap"].as_u64(), whole[0]["distance_m"].as_f64()), (Some(1), Some(5000.0)));
    assert_eq!(whole[0]["start_time"], iso(start));
    assert_eq!(whole[0]["pace_s_per_km"], 360.0);
}

fn iso(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms).unwrap().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

#[tokio::test]
async fn a_workout_exports_as_gpx_and_tcx_that_import_again() {
    use tower::ServiceExt;
    use trackwire_codec::import::{Format, import_bytes};
    let dir = tempfile::tempdir().unwrap();
    let state = state(dir.path());
    let start = 1_700_000_000_000;
    let mut workout = summary("ada", 1, start, "cycling", 50.0, 258.4, 19.0);
    workout.laps = serde_json::from_value(json!([
        { "lap": 1, "start_time_ms": start, "end_time_ms": start + 9_000, "elapsed_s": 9.0, "moving_s": 9.0,
          "distance_m": 122.4, "pace_s_per_km": null, "heart_rate_avg_bpm": null, "heart_rate_max_bpm": null,
          "elevation_gain_m": null },
        { "lap": 2, "start_time_ms": start + 9_000, "end_time_ms": start + 19_000, "elapsed_s": 10.0, "moving_s": 10.0,
          "distance_m": 136.0, "pace_s_per_km": null, "heart_rate_avg_bpm": null, "heart_rate_max_bpm": null,
          "elevation_gain_m": null }
    ]))
    .unwrap();
    put(&state, vec![output(1, workout, points(1, 20))]);
    let ada = token("ada");
    let id = WorkoutId([1; 16]);
    let fetch = |format: &str| {
        let request = request("GET", &format!("/api/v1/workouts/{id}/export?format={format}"), Some(&ada), None);
        let app = trackwire_api::app(state.clone());
        async move {
            let response = app.oneshot(request).await.unwrap();
            let (status, headers) = (response.status(), response.headers().clone());
            (status, headers, axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap())
        }
    };
    let (status, headers, body) = fetch("gpx").await;
    assert_eq!(status.as_u16(), 200, "{}", String::from_utf8_lossy(&body));
    assert_eq!(headers["content-type"], "application/gpx+xml");
    assert_eq!(headers["content-disposition"], format!("attachment; filename=\"{id}.gpx\"").as_str());
    let gpx = import_bytes(&body).unwrap();
    assert_eq!((gpx.format, gpx.sport, gpx.fixes.len()), (Format::Gpx, trackwire_codec::Sport::Cycling, 20));
    assert_eq!(
        (gpx.fixes[3].heart_rate, gpx.fixes[4].heart_rate),
        (None, Some(140)),
        "heart rate in the TrackPointExtension"
    );
    assert!((gpx.fixes[19].lat.unwrap() - (46.0 + 19.0 * 1e-4)).abs() < 1e-7);

    let (status, headers, body) = fetch("tcx").await;
    assert_eq!((status.as_u16(), &headers["content-type"]), (200, &"application/vnd.garmin.tcx+xml".parse().unwrap()));
    let tcx = import_bytes(&body).unwrap();
    assert_eq!((tcx.format, tcx.fixes.len()), (Format::Tcx, 20));
    let lap_ends: Vec<i64> =
        tcx.events.iter().filter(|(_, k)| *k == trackwire_codec::ControlKind::Lap).map(|(t, _)| *t).collect();
    assert_eq!(lap_ends, [start + 9_000, start + 19_000], "one Lap per lap, each ending at its last point");
    assert_eq!(tcx.device.distance_m, Some(258.4));

    let (status, _, body) = fetch("kml").await;
    assert_eq!(status.as_u16(), 400, "{}", String::from_utf8_lossy(&body));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_uploaded_file_is_kept_downloadable_in_the_users_archive_and_erased_with_them() {
    use std::io::Read;
    use tower::ServiceExt;
    use trackwire_codec::export::{Recording, gpx};
    use trackwire_codec::import::Fix;
    let dir = tempfile::tempdir().unwrap();
    let state = state(dir.path());
    let ada = token("ada");
    let start = 1_780_000_000_000;
    let fixes: Vec<Fix> = (0..60)
        .map(|i| Fix {
            time_ms: Some(start + i * 1000),
            lat: Some(46.0 + i as f64 * 3e-5),
            lon: Some(14.5),
            heart_rate: Some(130),
            ..Fix::default()
        })
        .collect();
    let file = gpx(&Recording {
        sport: trackwire_codec::Sport::Running,
        name: "morning",
        fixes: &fixes,
        laps: &[],
        pauses: &[],
    });
    let (status, upload) = call(&state, multipart(&ada, &[("file", &file)])).await;
    assert_eq!(status.as_u16(), 202, "{upload}");
    let done = processed(&state, &ada, &upload).await;
    assert_eq!(done["status"], "ready", "{done}");
    let workout: WorkoutId = done["workout_id"].as_str().unwrap().parse().unwrap();
    // What the pipeline would store for it.
    let mut stored = summary("ada", 1, start, "running", 10.0, 200.0, 59.0);
    stored.workout_id = workout;
    let mut samples = points(1, 60);
    samples.iter_mut().for_each(|p| p.workout_id = workout);
    put(&state, vec![output(1, stored, samples)]);

    let get = |uri: String| {
        let app = trackwire_api::app(state.clone());
        let request = request("GET", &uri, Some(&ada), None);
        async move {
            let response = app.oneshot(request).await.unwrap();
            let (status, headers) = (response.status(), response.headers().clone());
            (status, headers, axum::body::to_bytes(response.into_body(), 16 << 20).await.unwrap())
        }
    };
    let (status, headers, body) = get(format!("/api/v1/workouts/{workout}/export?format=original")).await;
    assert_eq!(status.as_u16(), 200, "{}", String::from_utf8_lossy(&body));
    assert_eq!(&body[..], &file[..], "byte for byte what was uploaded");
    assert_eq!(headers["content-disposition"], format!("attachment; filename=\"{workout}.gpx\"").as_str());

    let (status, headers, body) = get("/api/v1/users/me/export".into()).await;
    assert_eq!((status.as_u16(), &headers["content-type"]), (200, &"application/gzip".parse().unwrap()));
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(&body[..]));
    let mut entries = std::collections::BTreeMap::new();
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let name = entry.path().unwrap().display().to_string();
        let mut bytes = Vec::new();
        entry.read_to_end(&mut bytes).unwrap();
        entries.insert(name, bytes);
    }
    let names: Vec<&str> = entries.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        [
            "trackwire-ada/gear.json".to_owned(),
            format!("trackwire-ada/originals/{workout}.gpx"),
            "trackwire-ada/profile.json".to_owned(),
            "trackwire-ada/workouts.json".to_owned(),
            format!("trackwire-ada/workouts/{workout}.gpx"),
        ]
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
    );
    let listed: Value = serde_json::from_slice(&entries["trackwire-ada/workouts.json"]).unwrap();
    assert_eq!(listed[0]["workout_id"], workout.to_string());
    assert_eq!(listed[0]["original"], format!("originals/{workout}.gpx"));
    assert_eq!(entries[&format!("trackwire-ada/originals/{workout}.gpx")], file);
    let again =
        trackwire_codec::import::import_bytes(&entries[&format!("trackwire-ada/workouts/{workout}.gpx")]).unwrap();
    assert_eq!(again.fixes.len(), 60);

    // Bob sees none of it; erasure takes the file too.
    let (status, _) = call(
        &state,
        request("GET", &format!("/api/v1/workouts/{workout}/export?format=original"), Some(&token("bob")), None),
    )
    .await;
    assert_eq!(status.as_u16(), 404);
    let (status, body) = call(&state, request("DELETE", "/api/v1/users/me", Some(&ada), None)).await;
    assert_eq!(status.as_u16(), 200, "{body}");
    let originals = state.originals.as_ref().unwrap();
    assert!(originals.names_of_user("ada").await.unwrap().is_empty(), "the uploaded file is erased with the user");
}

/// A user with years of workouts gets an archive as large as their history: it leaves in chunks
/// written as it is read, so a server holds a few chunks per export, not the whole archive, and
/// a few exports at a time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_users_archive_leaves_in_bounded_chunks_and_holds_every_workout() {
    use futures::StreamExt;
    use std::io::Read;
    use tower::ServiceExt;
    let dir = tempfile::tempdir().unwrap();
    let mut state = state(dir.path());
    state.exports = std::sync::Arc::new(tokio::sync::Semaphore::new(1));
    let (workouts, samples) = (24u8, 4_000);
    let outputs = (1..=workouts)
        .map(|id| {
            let summary = summary("ada", id, today_noon_ms() - i64::from(id) * DAY_MS, "running", 10.0, 5e4, 4e3);
            output(u64::from(id), summary, points(id, samples))
        })
        .collect();
    put(&state, outputs);

    let export = || request("GET", "/api/v1/users/me/export", Some(&token("ada")), None);
    let response = trackwire_api::app(state.clone()).oneshot(export()).await.unwrap();
    assert_eq!(response.status().as_u16(), 200);
    // Exports run one at a time here: the next waits while this one is being written.
    let next = tokio::spawn(trackwire_api::app(state.clone()).oneshot(export()));
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(!next.is_finished(), "a second export started while the first held the only place");
    let mut chunks = response.into_body().into_data_stream();
    let (mut archive, mut largest, mut count) = (Vec::new(), 0, 0);
    while let Some(chunk) = chunks.next().await {
        let chunk = chunk.unwrap();
        (largest, count) = (largest.max(chunk.len()), count + 1);
        archive.extend_from_slice(&chunk);
    }
    assert!(archive.len() > 512 << 10, "an archive of {} bytes is too small to show chunking", archive.len());
    assert!(largest <= 128 << 10, "a chunk of {largest} bytes of a {}-byte archive ({count} chunks)", archive.len());

    let mut gpx_files = 0;
    let mut listed = Value::Null;
    for entry in tar::Archive::new(flate2::read::GzDecoder::new(&archive[..])).entries().unwrap() {
        let mut entry = entry.unwrap();
        let name = entry.path().unwrap().display().to_string();
        let mut bytes = Vec::new();
        entry.read_to_end(&mut bytes).unwrap();
        if name.ends_with(".gpx") {
            assert_eq!(trackwire_codec::import::import_bytes(&bytes).unwrap().fixes.len(), samples, "{name}");
            gpx_files += 1;
        } else if name == "trackwire-ada/workouts.json" {
            listed = serde_json::from_slice(&bytes).unwrap();
        }
    }
    assert_eq!(gpx_files, usize::from(workouts));
    assert_eq!(listed.as_array().map(Vec::len), Some(usize::from(workouts)), "{listed}");
    let next = tokio::time::timeout(std::time::Duration::from_secs(60), next).await;
    let next = next.expect("the second export started once the first was read").unwrap().unwrap();
    assert_eq!(next.status().as_u16(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_workout_entered_by_hand_goes_through_the_log_and_reads_back() {
    use std::sync::{Arc, Mutex};
    let dir = tempfile::tempdir().unwrap();
    let logged: Arc<Mutex<Vec<trackwire_ingest::log::LogRecord>>> = Arc::default();
    let sink = logged.clone();
    let forward: trackwire_ingest::log::Forward = Box::new(move |entry| {
        if let trackwire_ingest::log::LogEntry::Record(record) = entry {
            sink.lock().unwrap().push(record);
        }
        true
    });
    let state =
        state_with(dir.path(), 16, forward, trackwire_api::limits::RateLimitConfig { per_minute: 6000, burst: 100 });
    let ada = token("ada");
    let entry = json!({
        "sport": "running", "start_time": "2026-11-30T07:00:00Z", "elapsed_s": 3000.0, "moving_time_s": 2950.0,
        "distance_m": 10000.0, "heart_rate_avg_bpm": 151.0, "calories_kcal": 640.0
    });
    let (status, headers, created) =
        call_full(&state, request("POST", "/api/v1/workouts", Some(&ada), Some(entry.clone()))).await;
    assert_eq!(status.as_u16(), 201, "{created}");
    let id: WorkoutId = created["workout_id"].as_str().unwrap().parse().unwrap();
    assert_eq!(headers["location"], format!("/api/v1/workouts/{id}").as_str());
    // The same entry again is the same workout, stored once.
    let (status, again) = call(&state, request("POST", "/api/v1/workouts", Some(&ada), Some(entry))).await;
    assert_eq!((status.as_u16(), &again["workout_id"]), (201, &created["workout_id"]));
    let records = logged.lock().unwrap().clone();
    assert_eq!(records.len(), 1, "one durable batch");
    // Through the pipeline as the data path would run it, then read back.
    let mut core = trackwire_pipeline::ShardCore::default();
    let output = core.process(records[0].lsn, &records[0].payload);
    let summary = output.summary.clone().expect("a summary");
    assert_eq!((summary.user_id.as_str(), summary.distance_m, summary.moving_time_s), ("ada", 10_000.0, 2950.0));
    put(&state, vec![output]);
    let (status, details) = call(&state, request("GET", &format!("/api/v1/workouts/{id}"), Some(&ada), None)).await;
    assert_eq!(status.as_u16(), 200, "{details}");
    assert_eq!(
        (details["distance_m"].as_f64(), details["start_time"].as_str()),
        (Some(10_000.0), Some("2026-11-30T07:00:00.000Z"))
    );

    for (field, bad) in [
        ("start_time", json!("yesterday")),
        ("elapsed_s", json!(0.0)),
        ("moving_time_s", json!(4000.0)),
        ("distance_m", json!(-1.0)),
        ("heart_rate_avg_bpm", json!(400.0)),
    ] {
        let mut body = json!({ "sport": "cycling", "start_time": "2026-11-30T07:00:00Z", "elapsed_s": 3000.0 });
        body[field] = bad;
        let (status, answer) = call(&state, request("POST", "/api/v1/workouts", Some(&ada), Some(body))).await;
        assert_eq!(status.as_u16(), 400, "{field}: {answer}");
        assert_eq!(answer["details"]["field"], field, "{answer}");
    }
    let (status, _) = call(&state, request("POST", "/api/v1/workouts", None, Some(json!({})))).await;
    assert_eq!(status.as_u16(), 401);
}

#[tokio::test]
async fn the_owner_edits_a_workout_and_the_edits_show_everywhere_it_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let state = state(dir.path());
    let start = today_noon_ms() - DAY_MS;
    put(
        &state,
        vec![output(1, summary("ada", 1, start, "running", 50.0, 10_000.0, 3000.0), steady(1, start, 3.3, 20))],
    );
    let (ada, bob) = (token("ada"), token("bob"));
    let id = WorkoutId([1; 16]).to_string();
    let uri = format!("/api/v1/workouts/{id}");
    let patch = |token: &str, body: Value| request("PATCH", &uri, Some(token), Some(body));

    let (status, body) = call(&state, patch(&bob, json!({"name": "mine now"}))).await;
    assert_eq!(status.as_u16(), 404, "another user's workout is not found: {body}");
    let (status, body) = call(
        &state,
        patch(
            &ada,
            json!({"name": " Lunch ride ", "description": "with the club\nfast", "sport": "cycling",
                   "visibility": "public", "tags": ["race", "race", " club "]}),
        ),
    )
    .await;
    assert_eq!(status.as_u16(), 200, "{body}");
    assert_eq!(
        (&body["name"], &body["description"], &body["sport"], &body["visibility"], &body["tags"]),
        (
            &json!("Lunch ride"),
            &json!("with the club\nfast"),
            &json!("cycling"),
            &json!("public"),
            &json!(["race", "club"])
        )
    );
    let (_, list) = call(&state, request("GET", "/api/v1/workouts", Some(&ada), None)).await;
    let listed = &list["workouts"][0];
    assert_eq!(
        (&listed["name"], &listed["sport"], &listed["visibility"]),
        (&json!("Lunch ride"), &json!("cycling"), &json!("public"))
    );
    let (_, laps) = call(&state, request("GET", &format!("{uri}/laps"), Some(&ada), None)).await;
    assert!(laps.is_array(), "reads of the workout still work: {laps}");

    // Absent fields stay; null clears.
    let (status, body) = call(&state, patch(&ada, json!({"name": null}))).await;
    assert_eq!(status.as_u16(), 200, "{body}");
    assert_eq!(
        (&body["name"], &body["sport"], &body["visibility"]),
        (&Value::Null, &json!("cycling"), &json!("public"))
    );

    for (bad, error) in [
        (json!({"name": "   "}), "validation_failed"),
        (json!({"name": "x".repeat(101)}), "validation_failed"),
        (json!({"description": "bell\u{7}"}), "validation_failed"),
        (json!({"visibility": "everyone"}), "validation_failed"),
        (json!({"sport": "curling"}), "validation_failed"),
        (json!({"tags": ["ok", ""]}), "validation_failed"),
        (json!({"gear_id": "no-such-shoe"}), "unknown_gear"),
        (json!({"colour": "red"}), "validation_failed"),
    ] {
        let (status, body) = call(&state, patch(&ada, bad.clone())).await;
        assert_eq!(status.as_u16(), 400, "{bad}: {body}");
        assert_error_body(&body, error);
    }
    let (_, body) = call(&state, request("GET", &uri, Some(&ada), None)).await;
    assert_eq!(body["tags"], json!(["race", "club"]), "a refused edit changed nothing");
}

#[tokio::test]
async fn the_owner_deletes_a_workout_and_nothing_of_it_is_served() {
    let dir = tempfile::tempdir().unwrap();
    let state = state(dir.path());
    let start = today_noon_ms() - DAY_MS;
    put(
        &state,
        vec![
            output(1, summary("ada", 1, start, "running", 50.0, 10_000.0, 3000.0), steady(1, start, 3.3, 20)),
            output(
                2,
                summary("ada", 2, start + DAY_MS / 2, "running", 50.0, 5_000.0, 1500.0),
                steady(2, start, 3.3, 20),
            ),
        ],
    );
    let (ada, bob) = (token("ada"), token("bob"));
    let (deleted, kept) = (WorkoutId([1; 16]), WorkoutId([2; 16]));
    let uri = format!("/api/v1/workouts/{deleted}");
    let originals = state.originals.clone().unwrap();
    originals.put("ada", &deleted, "gpx", bytes::Bytes::from_static(b"<gpx/>")).await.unwrap();
    originals.put("ada", &kept, "gpx", bytes::Bytes::from_static(b"<gpx/>")).await.unwrap();
    let (status, _) =
        call(&state, request("POST", &format!("{uri}/tags"), Some(&ada), Some(json!({"tag": "race"})))).await;
    assert_eq!(status.as_u16(), 200);

    let (status, body) = call(&state, request("DELETE", &uri, Some(&bob), None)).await;
    assert_eq!(status.as_u16(), 404, "another user cannot delete it: {body}");
    let (status, body) = call(&state, request("DELETE", &uri, Some(&ada), None)).await;
    assert_eq!(status.as_u16(), 204, "{body}");
    for path in ["", "/streams", "/laps", "/export?format=original"] {
        let (status, body) = call(&state, request("GET", &format!("{uri}{path}"), Some(&ada), None)).await;
        assert_eq!(status.as_u16(), 404, "{path}: {body}");
    }
    let (_, list) = call(&state, request("GET", "/api/v1/workouts", Some(&ada), None)).await;
    let ids: Vec<_> = list["workouts"].as_array().unwrap().iter().map(|w| w["workout_id"].clone()).collect();
    assert_eq!(ids, [json!(kept.to_string())], "only the other workout is listed");
    assert_eq!(state.accounts.workout_tags(&deleted).unwrap(), Vec::<String>::new(), "its tags went with it");
    assert!(originals.get("ada", &deleted).await.unwrap().is_none(), "its uploaded file went with it");
    assert!(originals.get("ada", &kept).await.unwrap().is_some(), "the other workout's file stays");
    let (status, _) = call(&state, request("DELETE", &uri, Some(&ada), None)).await;
    assert_eq!(status.as_u16(), 404, "deleted once");
}

/// After a restart the pipeline replays the log and rebuilds each workout's live state from its
/// first batch on; until the replay catches up, that state is older than what the read store
/// already holds, and a read must not go back in time.
#[tokio::test]
async fn a_live_state_still_being_replayed_never_hides_a_newer_stored_one() {
    let dir = tempfile::tempdir().unwrap();
    let state = state(dir.path());
    let token = token("alice");
    let stored = summary("alice", 7, today_noon_ms(), "running", 50.0, 5_000.0, 1_500.0);
    put(&state, vec![output(9, stored.clone(), points(7, 5))]);
    let mut replaying = stored.clone();
    replaying.status = trackwire_pipeline::WorkoutStatus::Active;
    replaying.samples = 3;
    replaying.last_lsn = 5;
    state.live().unwrap().update(&replaying);

    let id = WorkoutId([7; 16]).to_string();
    let (status, body) = call(&state, request("GET", &format!("/api/v1/workouts/{id}"), Some(&token), None)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!((body["status"].as_str(), body["samples"].as_u64()), (Some("completed"), Some(10)), "{body}");
    let (_, body) = call(&state, request("GET", &format!("/api/v1/workouts/{id}/live"), Some(&token), None)).await;
    assert_eq!((body["status"].as_str(), body["in_progress"].as_bool()), (Some("completed"), Some(false)), "{body}");
    let (_, body) = call(&state, request("GET", "/api/v1/workouts", Some(&token), None)).await;
    assert_eq!(body["workouts"][0]["status"], "completed", "{body}");

    // Once the live state is the newer one, it is what a read shows.
    let mut ahead = stored.clone();
    ahead.status = trackwire_pipeline::WorkoutStatus::Active;
    ahead.samples = 12;
    ahead.last_lsn = 11;
    state.live().unwrap().update(&ahead);
    let (_, body) = call(&state, request("GET", &format!("/api/v1/workouts/{id}"), Some(&token), None)).await;
    assert_eq!((body["status"].as_str(), body["samples"].as_u64()), (Some("active"), Some(12)), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_with_placeholder_times_is_an_upload_error_that_names_the_time() {
    let dir = tempfile::tempdir().unwrap();
    let state = state(dir.path());
    let ada = token("ada");
    let gpx = |year: u32| {
        let points: String = (0..5)
            .map(|i| format!(r#"<trkpt lat="46.0{i}" lon="14.0{i}"><time>{year}-01-01T00:00:0{i}Z</time></trkpt>"#))
            .collect();
        format!(
            r#"<?xml version="1.0"?><gpx version="1.1" creator="t" xmlns="http://www.topografix.com/GPX/1/1"><trk><trkseg>{points}</trkseg></trk></gpx>"#
        )
    };
    let (status, upload) = call(&state, multipart(&ada, &[("file", gpx(1970).as_bytes())])).await;
    assert_eq!(status.as_u16(), 202, "{upload}");
    let done = processed(&state, &ada, &upload).await;
    assert_eq!(done["status"], "error", "{done}");
    let error = done["error"].as_str().unwrap();
    assert!(error.contains("outside 946684800000..") && error.contains("clock"), "{error}");
    // The same file recorded in 2024 is taken.
    let (_, upload) = call(&state, multipart(&ada, &[("file", gpx(2024).as_bytes())])).await;
    assert_eq!(processed(&state, &ada, &upload).await["status"], "ready");
}
