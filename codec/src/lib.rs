//! # trackwire-codec: the wire format
//!
//! **In:** untrusted bytes from the network (an HTTP body, a QUIC frame, a log record).
//! **Out:** a verified, zero-copy [`BatchView`] over those bytes, or a [`DecodeError`] that says what
//! is wrong with them; and the reverse, [`encode_batch`] / [`encode_ack`] for clients and tests.
//!
//! The contract is `codec/schema/telemetry.fbs`; the Rust in `src/generated/` is produced from it by
//! `codec/regen.sh` (flatc 25.12.19) and committed. Nothing here does IO or reads a clock.
//!
//! ```
//! use trackwire_codec::{decode_batch, encode_batch, BatchData, DecodeLimits, Sample, WorkoutId};
//!
//! let batch = BatchData {
//!     device_id: "watch-1".into(),
//!     user_id: "athlete-7".into(),
//!     workout_id: WorkoutId([7; 16]),
//!     seq: 0,
//!     base_time_ms: 1_700_000_000_000,
//!     samples: vec![Sample::new(0, 473_977_000, 85_410_000, 40_000, 120, 80, u16::MAX, 35, 0)],
//!     ..BatchData::default()
//! };
//! let bytes = encode_batch(&batch);
//! let view = decode_batch(&bytes, &DecodeLimits::default()).unwrap();
//! assert_eq!(view.samples()[0].heart_rate_bpm(), 120);
//! assert!(decode_batch(&bytes[..bytes.len() / 2], &DecodeLimits::default()).is_err());
//! ```

mod ack;
mod batch;
mod device_totals;
mod encode;
mod error;
#[allow(clippy::all, unused_imports, dead_code, non_snake_case, mismatched_lifetime_syntaxes)]
#[rustfmt::skip]
mod generated;
pub mod export;
mod idle;
pub mod import;
mod workout_id;

pub use ack::{AckView, decode_ack, encode_ack};
pub use batch::{BatchView, DecodeLimits, decode_batch};
pub use device_totals::DeviceTotals;
pub use encode::{BatchData, encode_batch};
pub use error::DecodeError;
pub use generated::telemetry_generated::trackwire::wire::{
    AckStatus, BATCH_IDENTIFIER, ControlEvent, ControlKind, Sample, SampleFlags, Sport,
};
pub use idle::{SERVER_SEQ_FLOOR, idle_timeout_batch, idle_timeout_seq};
pub use workout_id::{ParseWorkoutIdError, WorkoutId};

/// A sport's name in summaries, the lake and the API (`running`, …, `unknown`).
pub fn sport_name(sport: Sport) -> &'static str {
    match sport {
        Sport::Running => "running",
        Sport::Cycling => "cycling",
        Sport::Walking => "walking",
        Sport::Hiking => "hiking",
        Sport::Swimming => "swimming",
        Sport::Other => "other",
        _ => "unknown",
    }
}

/// The sport a [`sport_name`] names (`unknown` for any other text).
pub fn sport_named(name: &str) -> Sport {
    Sport::ENUM_VALUES.iter().copied().find(|s| sport_name(*s) == name).unwrap_or(Sport::Unknown)
}

/// The schema version this build reads and writes (`Batch.schema_version`).
pub const SCHEMA_VERSION: u16 = 1;

/// File identifier of an encoded [`encode_ack`] buffer.
pub const ACK_IDENTIFIER: &str = "TWA1";

/// The explicit "missing" value of each optional channel of a [`Sample`], as the schema defines it.
pub mod missing {
    /// `lat_e7`, `lon_e7` and `altitude_cm` when the device has no value.
    pub const COORDINATE: i32 = i32::MIN;
    /// `altitude_cm` when the device has no value.
    pub const ALTITUDE: i32 = i32::MIN;
    /// `heart_rate_bpm` when there is no heart-rate sensor reading.
    pub const HEART_RATE: u8 = 0;
    /// `cadence_rpm` when there is no cadence reading (0 is a real value: coasting).
    pub const CADENCE: u8 = u8::MAX;
    /// `power_w` when there is no power meter reading.
    pub const POWER: u16 = u16::MAX;
    /// `h_accuracy_dm` when the device did not report accuracy.
    pub const ACCURACY: u16 = u16::MAX;
}
