//! The lake: two Delta Lake tables of Parquet files on an `object_store`, for Spark, Trino,
//! DuckDB, polars and pyarrow. In: shard outputs. Out: committed table versions.
//!
//! ```text
//! points/_delta_log/…                                      the table's commits and checkpoints
//! points/date=YYYY-MM-DD/hour=HH/part-<label>-<id>.parquet one row per sample
//! workouts/date=YYYY-MM-DD/part-<label>-<id>.parquet       one row per completed/cancelled workout
//! ```
//! The store is a local directory or `s3://bucket/prefix` ([`open_store`]). A file is uploaded
//! whole, then becomes part of the table only when a commit names it; each commit also records
//! the sink's position in the log (a Delta application transaction), which is how a restarted
//! sink knows what the table already holds.

mod access;
mod buffers;
mod delta;
mod files;
mod maintenance;
mod paths;
mod props;
mod read;
mod redact;
pub(crate) mod schema;
mod settler;
mod spec;
mod store;
mod streamed;
mod table;

pub use delta::{ActiveFile, CHECKPOINT_INTERVAL};
pub use files::MULTIPART_PART_BYTES;
pub use paths::{ObjectKey, Partition};
pub use props::{DEFAULT_ZSTD_LEVEL, writer_properties};
pub use read::read_table;
pub use schema::{PointRows, PointsTable, WorkoutsTable};
pub use spec::{LakeConfig, TableSpec};
pub use store::{LakeLocation, S3Options, open_store};
pub use table::LakeTable;

use std::sync::Arc;

use object_store::ObjectStore;

/// A lake in the local directory `dir` (created if missing).
pub fn local_store(dir: &std::path::Path) -> Result<LakeLocation, crate::SinkError> {
    std::fs::create_dir_all(dir)
        .map_err(|e| crate::SinkError::io(format!("creating lake directory {}", dir.display()), e))?;
    let absolute = dir
        .canonicalize()
        .map_err(|e| crate::SinkError::io(format!("resolving lake directory {}", dir.display()), e))?;
    let root = url::Url::from_directory_path(&absolute)
        .map_err(|()| crate::SinkError::Config(format!("lake directory {} is not a valid URL", absolute.display())))?;
    let store: Arc<dyn ObjectStore> = Arc::new(object_store::local::LocalFileSystem::new());
    Ok(LakeLocation { store, root })
}
