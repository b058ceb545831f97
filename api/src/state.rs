use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use dashmap::DashMap;
use trackwire_codec::WorkoutId;
use trackwire_ingest::Ingestor;
use trackwire_pipeline::{LiveWorkouts, Profiles, WorkoutSummary};
use trackwire_sinks::SinkProgress;
use trackwire_sinks::originals::Originals;
use trackwire_sinks::read_store::ReadStore;

use crate::accounts::Accounts;
use crate::auth::Authenticator;
use crate::control::Control;
use crate::limits::RateLimiter;

/// Privacy settings.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct PrivacyConfig {
    /// Positions older than this many days are dropped (totals stay); 0 keeps them forever.
    /// The seed's policy: 6 months.
    pub coordinate_retention_days: u32,
    /// How often the retention job runs, seconds.
    pub retention_interval_secs: u64,
}

impl Default for PrivacyConfig {
    fn default() -> Self {
        PrivacyConfig { coordinate_retention_days: 183, retention_interval_secs: 3600 }
    }
}

/// What a process shows of the data path it runs itself (the single process).
#[derive(Clone)]
pub struct DataPathView {
    /// Workouts in progress, as the pipeline's shards publish them.
    pub live: Arc<LiveWorkouts>,
    pub sinks: Arc<[Arc<SinkProgress>]>,
    /// Highest LSN the pipeline has handed to the sinks.
    pub fed_through: Arc<AtomicU64>,
    /// The profile registry the pipeline's shards read.
    pub profiles: Arc<Profiles>,
    /// How long a sink may fail every flush before `/healthcheck` reports the process failing,
    /// in ms; 0 never does.
    pub sink_unhealthy_after_ms: i64,
}

/// The ingest surface (`/v1/ingest`, QUIC), `/healthcheck` and `/metrics`: what every serving
/// process has. A gateway has only this. Cloned for every request, so one reference count:
/// cloning and dropping each of its parts' counts cost the live ingest path 6 % of its CPU, the
/// counts' cache lines bouncing between the cores. Fields read through it; a field written
/// (in a test) is written to a copy of its own.
#[derive(Clone)]
pub struct IngestState(Arc<IngestParts>);

/// What [`IngestState`] holds.
#[derive(Clone)]
pub struct IngestParts {
    pub ingestor: Arc<Ingestor>,
    /// The data path this process runs; None in a gateway or an API replica (workers run it).
    pub data_path: Option<DataPathView>,
    /// Requests and latencies of every HTTP surface of this process.
    pub http: Arc<crate::http_metrics::HttpMetrics>,
}

/// The API surface (`/api/v1`), on top of [`IngestState`] (uploads go through the ingestor).
/// One reference count, as [`IngestState`].
#[derive(Clone)]
pub struct AppState(Arc<AppParts>);

/// What [`AppState`] holds.
#[derive(Clone)]
pub struct AppParts {
    pub ingest: IngestState,
    pub store: Arc<dyn ReadStore>,
    pub accounts: Arc<dyn Accounts>,
    pub auth: Arc<Authenticator>,
    pub limiter: Arc<RateLimiter>,
    /// Where erasures and retention cuts go to be carried out by every copy of the data; None
    /// where there is nothing to command (tests of the HTTP layer alone): only the read store
    /// is acted on.
    pub control: Option<Control>,
    /// User → the LSN through which their data is erased.
    pub erased: Arc<DashMap<String, u64>>,
    /// Deleted workout → the LSN through which it is erased.
    pub deleted: Arc<DashMap<WorkoutId, u64>>,
    pub privacy: PrivacyConfig,
    pub push: crate::push::PushConfig,
    pub uploads: UploadLimits,
    /// Where uploaded files are kept as they arrived (None: not kept, in tests of the HTTP layer
    /// alone).
    pub originals: Option<Arc<Originals>>,
    /// Users' archives written at once (each holds a blocking thread while its client reads);
    /// later ones wait their turn.
    pub exports: Arc<tokio::sync::Semaphore>,
}

/// What uploads may take of the machine.
#[derive(Clone)]
pub struct UploadLimits {
    /// Largest upload accepted, in bytes as sent; a gzipped file may expand to as much, never
    /// more (and no further than a real file of its kind would).
    pub max_bytes: usize,
    /// Imports (expanding, parsing and storing a file) running at once; the rest wait their turn.
    pub imports: Arc<tokio::sync::Semaphore>,
}

impl UploadLimits {
    pub fn new(max_bytes: usize, max_concurrent_imports: usize) -> Self {
        UploadLimits { max_bytes, imports: Arc::new(tokio::sync::Semaphore::new(max_concurrent_imports.max(1))) }
    }
}

/// `Deref` to the parts, and `DerefMut` to a copy of them when another clone shares them.
macro_rules! shared_parts {
    ($state:ident, $parts:ident) => {
        impl From<$parts> for $state {
            fn from(parts: $parts) -> Self {
                $state(Arc::new(parts))
            }
        }

        impl std::ops::Deref for $state {
            type Target = $parts;
            fn deref(&self) -> &$parts {
                &self.0
            }
        }

        impl std::ops::DerefMut for $state {
            fn deref_mut(&mut self) -> &mut $parts {
                Arc::make_mut(&mut self.0)
            }
        }
    };
}

shared_parts!(IngestState, IngestParts);
shared_parts!(AppState, AppParts);

impl axum::extract::FromRef<AppState> for IngestState {
    fn from_ref(state: &AppState) -> IngestState {
        state.ingest.clone()
    }
}

impl AppState {
    pub fn ingestor(&self) -> &Arc<Ingestor> {
        &self.ingest.ingestor
    }

    /// The registry of workouts in progress, where this process runs the pipeline; elsewhere the
    /// store's summaries are the newest (a flush interval old at most).
    pub fn live(&self) -> Option<&Arc<LiveWorkouts>> {
        self.ingest.data_path.as_ref().map(|d| &d.live)
    }

    /// False for data of an erased user or a deleted workout that is still on its way out of the
    /// pipeline.
    pub fn visible(&self, summary: &WorkoutSummary) -> bool {
        self.erased.get(&summary.user_id).is_none_or(|through| summary.first_lsn > *through)
            && self.deleted.get(&summary.workout_id).is_none_or(|through| summary.first_lsn > *through)
    }
}
