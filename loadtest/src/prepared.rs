//! Upload workouts simulated and encoded before the timed window, so a run measures the server
//! and not the generator. During the run a sender only copies a prepared workout's batches under
//! a workout id of its own (16 bytes patched in each batch: the wire format's `Uuid` is an inline
//! struct and no checksum covers it), so every uploaded workout is still new to the server.

use bytes::Bytes;
use trackwire_codec::WorkoutId;

use crate::cli::RunArgs;
use crate::workload::{EncodedBatch, Sender, Workload, Workout, now_ms};

/// The prepared upload workouts of a run, shared by the run against the gateway, the ceiling
/// runs and the compute ceiling: the same batches for each.
pub struct Prepared {
    workload: Workload,
    templates: Vec<Template>,
}

struct Template {
    workout: Workout,
    /// Where each batch carries the workout id.
    id_at: Vec<usize>,
}

impl Prepared {
    /// `args.prepared_workouts` upload workouts, simulated on `args.generator_threads` threads.
    pub fn uploads(workload: &Workload, args: &RunArgs) -> anyhow::Result<Prepared> {
        let count = u64::from(args.prepared_workouts);
        let threads = u64::from(args.generator_threads).min(count).max(1);
        let duration_s = (args.upload_workout_minutes * 60.0).round() as u32;
        // Recorded offline over the last hours, uploaded now.
        let start_ms = now_ms() - i64::from(duration_s) * 1000 - 120_000;
        let batch_size = args.upload_batch_size;
        let mut workouts: Vec<(u64, Workout)> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..threads)
                .map(|thread| {
                    scope.spawn(move || {
                        (thread..count)
                            .step_by(threads as usize)
                            .map(|n| (n, workload.workout(Sender::Upload, n, start_ms, duration_s, 1.0, batch_size)))
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            handles.into_iter().flat_map(|h| h.join().expect("a generator thread panicked")).collect()
        });
        workouts.sort_by_key(|(n, _)| *n);
        let templates = workouts
            .into_iter()
            .map(|(_, workout)| {
                let id_at = workout
                    .batches
                    .iter()
                    .map(|batch| {
                        batch.bytes.windows(16).position(|w| w == workout.id.0).ok_or_else(|| {
                            anyhow::anyhow!("a prepared batch does not carry its workout id: the wire format changed?")
                        })
                    })
                    .collect::<anyhow::Result<_>>()?;
                Ok(Template { workout, id_at })
            })
            .collect::<anyhow::Result<_>>()?;
        Ok(Prepared { workload: workload.clone(), templates })
    }

    /// Upload number `n`: prepared workout `n mod count`, under the id upload `n` has.
    pub fn upload(&self, n: u64) -> Workout {
        let template = &self.templates[(n % self.templates.len() as u64) as usize];
        let id = self.workload.id_of(Sender::Upload, n);
        if id == template.workout.id {
            return template.workout.clone();
        }
        let batches = template
            .workout
            .batches
            .iter()
            .zip(&template.id_at)
            .map(|(batch, &at)| EncodedBatch {
                seq: batch.seq,
                samples: batch.samples,
                bytes: restamp(&batch.bytes, at, id),
            })
            .collect();
        Workout { id, batches }
    }
}

fn restamp(bytes: &Bytes, at: usize, id: WorkoutId) -> Bytes {
    let mut copy = bytes.to_vec();
    copy[at..at + 16].copy_from_slice(&id.0);
    Bytes::from(copy)
}

#[cfg(test)]
mod tests {
    use trackwire_codec::{DecodeLimits, decode_batch};

    use super::*;

    #[test]
    fn reused_workouts_are_new_to_the_server_and_carry_the_same_samples() {
        let args = crate::cli::run_args(&[
            "--prepared-workouts",
            "3",
            "--upload-workout-minutes",
            "1",
            "--upload-batch-size",
            "25",
        ]);
        let workload = Workload::new(5);
        let prepared = Prepared::uploads(&workload, &args).unwrap();
        let simulated = workload.simulated();
        assert_eq!(simulated, 3);
        let limits = DecodeLimits::default();
        let (first, again) = (prepared.upload(1), prepared.upload(4));
        assert_eq!(workload.simulated(), simulated, "sending simulates nothing");
        assert_ne!(first.id, again.id);
        assert_eq!(again.id, workload.id_of(Sender::Upload, 4));
        assert_eq!(first.batches.len(), again.batches.len());
        for (a, b) in first.batches.iter().zip(&again.batches) {
            let (a_view, b_view) = (decode_batch(&a.bytes, &limits).unwrap(), decode_batch(&b.bytes, &limits).unwrap());
            assert_eq!(b_view.workout_id(), again.id, "the new id is the one the batch carries");
            assert_eq!((a_view.seq(), a_view.samples().len()), (b_view.seq(), b_view.samples().len()));
            assert_eq!(a.bytes.len(), b.bytes.len());
            let differing = a.bytes.iter().zip(b.bytes.iter()).filter(|(x, y)| x != y).count();
            assert!(differing <= 16, "only the workout id differs ({differing} bytes)");
        }
    }
}
