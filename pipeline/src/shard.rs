//! One shard's state: the workouts it owns. Sans-IO: records in, outputs out.

use std::collections::HashMap;
use std::sync::Arc;

use trackwire_codec::{DecodeLimits, WorkoutId, decode_batch};

use crate::{AthleteProfile, Profiles, ShardOutput, Workout};

#[derive(Debug, Default)]
pub struct ShardCore {
    workouts: HashMap<WorkoutId, Workout>,
    limits: DecodeLimits,
    /// Athlete profiles by user id, for calories and heart-rate zones.
    profiles: HashMap<String, AthleteProfile>,
    /// The server's profile registry, consulted after `profiles`.
    shared: Option<Arc<Profiles>>,
}

impl ShardCore {
    pub fn new(limits: DecodeLimits) -> Self {
        ShardCore { workouts: HashMap::new(), limits, profiles: HashMap::new(), shared: None }
    }

    /// A core that also reads profiles from the server's registry.
    pub fn with_profiles(limits: DecodeLimits, profiles: Arc<Profiles>) -> Self {
        ShardCore { shared: Some(profiles), ..ShardCore::new(limits) }
    }

    /// Tells the core about an athlete; workouts that start afterwards use it.
    pub fn set_profile(&mut self, user_id: &str, profile: AthleteProfile) {
        self.profiles.insert(user_id.to_owned(), profile);
    }

    /// Applies one durable record. Always returns an output for `lsn` (possibly empty), so the
    /// sinks' view of the log stays gap-free.
    pub fn process(&mut self, lsn: u64, payload: &[u8]) -> ShardOutput {
        let batch = match decode_batch(payload, &self.limits) {
            Ok(batch) => batch,
            Err(err) => {
                // Verified before it was appended; reaching this means the log was written by an
                // incompatible build. Skipping is the only option; say so loudly.
                tracing::error!(lsn, %err, "durable record does not decode; skipped");
                return ShardOutput { lsn, ..ShardOutput::default() };
            }
        };
        match self.workouts.get_mut(&batch.workout_id()) {
            Some(workout) => workout.apply(&batch, lsn, false),
            None => {
                let shared = self.shared.as_ref().and_then(|p| p.get(batch.user_id()));
                let profile = self.profiles.get(batch.user_id()).or(shared.as_ref());
                let mut workout = Workout::new(&batch, lsn, profile);
                let out = workout.apply(&batch, lsn, true);
                self.workouts.insert(batch.workout_id(), workout);
                out
            }
        }
    }
}
