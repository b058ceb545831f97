use flatbuffers::FlatBufferBuilder;

use crate::generated::telemetry_generated::trackwire::wire as fb;
use crate::{ControlEvent, SCHEMA_VERSION, Sample, Sport, WorkoutId};

/// An owned batch, for clients, importers and tests that build batches rather than receive them.
#[derive(Debug, Clone, PartialEq)]
pub struct BatchData {
    pub device_id: String,
    pub user_id: String,
    pub workout_id: WorkoutId,
    pub sport: Sport,
    pub seq: u64,
    pub base_time_ms: i64,
    pub device_model: Option<String>,
    pub samples: Vec<Sample>,
    pub events: Vec<ControlEvent>,
    pub device_totals: Option<crate::DeviceTotals>,
}

impl Default for BatchData {
    fn default() -> Self {
        BatchData {
            device_id: String::new(),
            user_id: String::new(),
            workout_id: WorkoutId::default(),
            sport: Sport::Unknown,
            seq: 0,
            base_time_ms: 0,
            device_model: None,
            samples: Vec::new(),
            events: Vec::new(),
            device_totals: None,
        }
    }
}

impl BatchData {
    /// Copies a verified batch into owned form.
    pub fn from_view(view: &crate::BatchView<'_>) -> Self {
        BatchData {
            device_id: view.device_id().to_owned(),
            user_id: view.user_id().to_owned(),
            workout_id: view.workout_id(),
            sport: view.sport(),
            seq: view.seq(),
            base_time_ms: view.base_time_ms(),
            device_model: view.device_model().map(str::to_owned),
            samples: view.samples().to_vec(),
            events: view.events().to_vec(),
            device_totals: view.device_totals(),
        }
    }
}

/// Encodes a batch as a finished FlatBuffer with the `TWB1` file identifier.
pub fn encode_batch(batch: &BatchData) -> Vec<u8> {
    let mut fbb = FlatBufferBuilder::with_capacity(128 + batch.samples.len() * 24 + batch.events.len() * 8);
    let device_id = fbb.create_string(&batch.device_id);
    let user_id = fbb.create_string(&batch.user_id);
    let device_model = batch.device_model.as_deref().map(|m| fbb.create_string(m));
    let samples = fbb.create_vector(&batch.samples);
    let events = fbb.create_vector(&batch.events);
    let device_totals = batch.device_totals.as_ref().map(|t| {
        fb::DeviceTotals::create(
            &mut fbb,
            &fb::DeviceTotalsArgs {
                distance_m: t.distance_m,
                timer_s: t.timer_s,
                elapsed_s: t.elapsed_s,
                ascent_m: t.ascent_m,
                descent_m: t.descent_m,
                calories_kcal: t.calories_kcal,
                heart_rate_avg_bpm: t.heart_rate_avg,
                heart_rate_max_bpm: t.heart_rate_max,
                max_speed_mps: t.max_speed_mps,
            },
        )
    });
    let workout_id = fb::Uuid(batch.workout_id.0);
    let root = fb::Batch::create(
        &mut fbb,
        &fb::BatchArgs {
            schema_version: SCHEMA_VERSION,
            device_id: Some(device_id),
            user_id: Some(user_id),
            workout_id: Some(&workout_id),
            sport: batch.sport,
            seq: batch.seq,
            base_time_ms: batch.base_time_ms,
            device_model,
            samples: Some(samples),
            events: Some(events),
            device_totals,
        },
    );
    fb::finish_batch_buffer(&mut fbb, root);
    fbb.finished_data().to_vec()
}
