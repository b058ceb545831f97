//! What the simulated devices send: workouts from the trace simulator, encoded as wire batches.
//!
//! Every workout is distinct (its own simulated trace, its own workout id); the seed makes the
//! samples reproducible, and the run id (random per run) keeps workout ids new on every run, so a
//! second run against the same gateway is not taken for client retries.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use trackwire_codec::{WorkoutId, encode_batch};
use trackwire_traces::{Activity, Rng, SimConfig, simulate, to_batches};

/// One encoded batch and what it carries.
#[derive(Debug, Clone)]
pub struct EncodedBatch {
    pub seq: u64,
    pub samples: u32,
    pub bytes: Bytes,
}

/// A simulated workout, ready to send.
#[derive(Debug, Clone)]
pub struct Workout {
    pub id: WorkoutId,
    pub batches: Vec<EncodedBatch>,
}

/// Which workout of which simulated sender: devices and upload streams are numbered apart.
#[derive(Debug, Clone, Copy)]
pub enum Sender {
    Device(u32),
    Upload,
}

/// Makes the workouts of one run.
#[derive(Debug, Clone)]
pub struct Workload {
    pub seed: u64,
    pub run_id: u64,
    /// Workouts simulated so far, by this workload and its clones (what the generator spent its
    /// cores on; a run reports how many fell inside its timed window).
    simulated: Arc<AtomicU64>,
}

impl Workload {
    pub fn new(seed: u64) -> Workload {
        Workload { seed, run_id: uuid::Uuid::new_v4().as_u64_pair().0, simulated: Arc::default() }
    }

    /// Workouts simulated so far.
    pub fn simulated(&self) -> u64 {
        self.simulated.load(Ordering::Relaxed)
    }

    /// The id workout number `n` of `sender` has in this run.
    pub fn id_of(&self, sender: Sender, n: u64) -> WorkoutId {
        self.workout_id(self.key(sender, n))
    }

    fn key(&self, sender: Sender, n: u64) -> u64 {
        let (lane, device) = match sender {
            Sender::Device(d) => (1u64, u64::from(d)),
            Sender::Upload => (2u64, 0),
        };
        mix(self.seed ^ mix(lane << 32 | device) ^ mix(n.wrapping_add(0x9E37)))
    }

    /// Workout number `n` of `sender`, recorded at `hz` from `start_ms` for `duration_s`, in
    /// batches of `batch_size` samples.
    pub fn workout(&self, sender: Sender, n: u64, start_ms: i64, duration_s: u32, hz: f64, batch_size: u32) -> Workout {
        self.simulated.fetch_add(1, Ordering::Relaxed);
        let key = self.key(sender, n);
        let mut rng = Rng::new(key);
        let activity = Activity::ALL[(rng.next_u64() % Activity::ALL.len() as u64) as usize];
        let mut config = SimConfig::new(activity, key, duration_s.max(1));
        config.start_time_ms = start_ms;
        config.interval_ms = (1000.0 / hz).round().max(1.0) as u32;
        let trace = simulate(&config);
        let id = self.workout_id(key);
        let (device_id, user_id) = match sender {
            Sender::Device(d) => (format!("loadtest-device-{d}"), format!("loadtest-athlete-{}", d % 1000)),
            Sender::Upload => (format!("loadtest-phone-{}", n % 1000), format!("loadtest-athlete-{}", n % 1000)),
        };
        let batches = to_batches(&trace, id, &device_id, &user_id, batch_size as usize)
            .iter()
            .map(|batch| EncodedBatch {
                seq: batch.seq,
                samples: batch.samples.len() as u32,
                bytes: Bytes::from(encode_batch(batch)),
            })
            .collect();
        Workout { id, batches }
    }

    /// A random-looking (version 4 layout) id unique to this run and workout.
    fn workout_id(&self, key: u64) -> WorkoutId {
        let hi = mix(self.run_id ^ key);
        let lo = mix(hi ^ key.rotate_left(17));
        let mut bytes = [0u8; 16];
        bytes[..8].copy_from_slice(&hi.to_be_bytes());
        bytes[8..].copy_from_slice(&lo.to_be_bytes());
        bytes[6] = (bytes[6] & 0x0f) | 0x40;
        bytes[8] = (bytes[8] & 0x3f) | 0x80;
        WorkoutId(bytes)
    }
}

/// SplitMix64's finaliser: a cheap bijective hash of a counter.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

pub fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_samples_new_ids_per_run() {
        let (a, b) = (Workload::new(7), Workload::new(7));
        let wa = a.workout(Sender::Device(3), 0, 1_700_000_000_000, 60, 1.0, 10);
        let wb = b.workout(Sender::Device(3), 0, 1_700_000_000_000, 60, 1.0, 10);
        assert_ne!(wa.id, wb.id, "each run has its own workout ids");
        let samples = |w: &Workout| w.batches.iter().map(|b| b.samples).sum::<u32>();
        assert!((60..=62).contains(&samples(&wa)), "{} samples in a 60 s workout at 1 Hz", samples(&wa));
        assert_eq!(wa.batches.len() as u32, samples(&wa).div_ceil(10));
        assert!(wa.batches.iter().enumerate().all(|(i, b)| b.seq == i as u64));
        assert_eq!(samples(&wa), samples(&wb));
        let other = a.workout(Sender::Device(4), 0, 1_700_000_000_000, 60, 1.0, 10);
        assert_ne!(other.id, wa.id);
        assert_ne!(other.batches[0].bytes, wa.batches[0].bytes, "devices record different workouts");
    }
}
