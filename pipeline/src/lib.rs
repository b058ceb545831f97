//! # trackwire-pipeline: durable batches in, enriched points and workout events out
//!
//! **In:** durable records `(lsn, workout id, verified FlatBuffers batch)` in LSN order.
//! **Out:** one [`ShardOutput`] per record: the enriched points of the batch (as [`Points`] columns), the workout events it
//! caused (`WorkoutStarted` … `WorkoutCancelled`) and the workout's updated summary.
//!
//! The core is sans-IO: [`Workout::apply`] takes a batch and returns outputs; it never reads a
//! clock or touches a socket, so it is deterministic, which is what makes log replay exact.
//! [`Pipeline`] is the thin threaded driver: workouts are sharded by id over one worker thread per
//! core, so a workout's state lives in exactly one thread and needs no lock; bounded crossbeam
//! queues connect the stages; the [`LiveWorkouts`] registry (a `DashMap`) is what the API reads.
//!
//! Adding an enrichment stage: write `stages/<name>.rs` with a struct implementing [`Stage`], add
//! it as a field of [`stages::Stages`], and call it in `Stages::on_sample` / `Stages::summarize`.

pub mod geodesy;
pub mod laps;
mod model;
mod points;
pub mod recommend;
mod registry;
pub mod route;
mod runtime;
mod shard;
pub mod stages;
pub mod training_load;
mod workout;

pub use model::{
    AthleteProfile, EndReason, EnrichedPoint, EventData, EventKind, LatLon, NotApplied, ShardOutput, Transition,
    WorkoutEvent, WorkoutProgress, WorkoutStatus, WorkoutSummary, sport_name,
};
pub use points::Points;
pub use registry::{Deletions, LiveWorkouts, Profiles, Removal};
pub use runtime::{Pipeline, PipelineConfig, PipelineStopped, PipelineSubmitter, Stored};
pub use shard::{EndedWorkouts, ShardCore};
pub use stages::Stage;
pub use workout::{DEFAULT_UPDATE_INTERVAL_MS, Workout};
