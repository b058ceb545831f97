use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use trackwire_ingest::Ingestor;
use trackwire_pipeline::LiveWorkouts;
use trackwire_sinks::SinkProgress;
use trackwire_sinks::read_store::ReadStore;

/// Everything the handlers read. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub ingestor: Arc<Ingestor>,
    pub store: Arc<ReadStore>,
    pub live: Arc<LiveWorkouts>,
    pub sinks: Arc<[Arc<SinkProgress>]>,
    /// Highest LSN the pipeline has handed to the sinks.
    pub pipeline_through: Arc<AtomicU64>,
}
