//! Building Strava-style streams and routes from the stored columns.

use serde::Deserialize;
use serde_json::{Value, json};
use trackwire_pipeline::route::downsample_indices;
use trackwire_sinks::read_store::Streams;
use utoipa::ToSchema;

use crate::ApiError;
use crate::views::{Stream, StreamSet};

/// Every stream type, in Strava's names.
pub const STREAM_KEYS: [&str; 10] = [
    "time",
    "latlng",
    "distance",
    "altitude",
    "velocity_smooth",
    "heartrate",
    "cadence",
    "watts",
    "moving",
    "grade_smooth",
];

/// `velocity_smooth` is distance over the trailing window of this many seconds: long enough to
/// average GPS jitter, short enough to show an interval starting.
const VELOCITY_WINDOW_MS: i64 = 10_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Resolution {
    Low,
    Medium,
    High,
}

impl Resolution {
    pub fn points(self) -> usize {
        let name = self.name();
        trackwire_pipeline::route::RESOLUTION_POINTS.iter().find(|(n, _)| *n == name).map_or(usize::MAX, |(_, p)| *p)
    }

    pub fn name(self) -> &'static str {
        match self {
            Resolution::Low => "low",
            Resolution::Medium => "medium",
            Resolution::High => "high",
        }
    }
}

/// The requested streams, all downsampled with the same indices so they stay aligned.
pub fn select_streams(
    streams: &Streams,
    keys: Option<&str>,
    resolution: Option<Resolution>,
) -> Result<StreamSet, ApiError> {
    let wanted: Vec<&str> = match keys {
        Some(keys) => {
            let keys: Vec<&str> = keys.split(',').map(str::trim).filter(|k| !k.is_empty()).collect();
            if let Some(unknown) = keys.iter().find(|k| !STREAM_KEYS.contains(k)) {
                return Err(ApiError::bad_request(
                    "unknown_stream",
                    format!("unknown stream type '{unknown}': use any of {}", STREAM_KEYS.join(", ")),
                )
                .with_details(json!({ "field": "keys", "value": *unknown, "allowed": STREAM_KEYS })));
            }
            keys
        }
        None => STREAM_KEYS.to_vec(),
    };
    let len = streams.len();
    let indices = downsample_indices(len, resolution.map_or(usize::MAX, Resolution::points));
    let start = streams.time_ms.first().copied().unwrap_or(0);
    let velocity = if wanted.contains(&"velocity_smooth") { velocity_smooth(streams) } else { Vec::new() };
    let mut out = StreamSet::default();
    for key in wanted {
        let value = |i: usize| -> Value {
            match key {
                "time" => json!((streams.time_ms[i] - start) as f64 / 1000.0),
                "latlng" => streams.latlng(i).map_or(Value::Null, |p| json!(p)),
                "distance" => json!(streams.distance_m[i]),
                "altitude" => streams.altitude_m[i].map_or(Value::Null, |a| json!(a)),
                "velocity_smooth" => json!(velocity[i]),
                "heartrate" => streams.heart_rate_bpm[i].map_or(Value::Null, |v| json!(v)),
                "cadence" => streams.cadence_rpm[i].map_or(Value::Null, |v| json!(v)),
                "watts" => streams.power_w[i].map_or(Value::Null, |v| json!(v)),
                "moving" => json!(streams.moving[i]),
                _ => streams.grade_pct[i].map_or(Value::Null, |v| json!(v)),
            }
        };
        out.0.insert(
            key.to_owned(),
            Stream {
                data: indices.iter().map(|i| value(*i)).collect(),
                series_type: "time".into(),
                original_size: len,
                resolution: resolution.map_or("full", Resolution::name).to_owned(),
            },
        );
    }
    Ok(out)
}

/// Speed over the trailing [`VELOCITY_WINDOW_MS`], m/s (0 at the start and while not moving).
fn velocity_smooth(streams: &Streams) -> Vec<f64> {
    let (t, d) = (&streams.time_ms, &streams.distance_m);
    let mut out = Vec::with_capacity(t.len());
    let mut j = 0;
    for i in 0..t.len() {
        while j < i && t[i] - t[j] > VELOCITY_WINDOW_MS {
            j += 1;
        }
        let dt = (t[i] - t[j]) as f64 / 1000.0;
        let v = if dt > 0.0 && streams.moving[i] { ((d[i] - d[j]) / dt).max(0.0) } else { 0.0 };
        out.push(if v.is_finite() { v } else { 0.0 });
    }
    out
}

/// `(lat, lon)` of the positioned samples, downsampled to at most `target` points.
pub fn route_points(streams: &Streams, target: usize) -> Vec<(f64, f64)> {
    let positions: Vec<(f64, f64)> =
        (0..streams.len()).filter_map(|i| streams.latlng(i)).map(|[a, b]| (a, b)).collect();
    downsample_indices(positions.len(), target).into_iter().map(|i| positions[i]).collect()
}
