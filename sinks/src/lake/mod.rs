//! The Parquet lake on an `object_store`: Hive-partitioned tables of enriched points and finished
//! workouts, for DuckDB, pyarrow, polars and Spark.
//!
//! ```text
//! points/date=YYYY-MM-DD/hour=HH/part-<label>.parquet     one row per sample
//! workouts/date=YYYY-MM-DD/part-<label>.parquet           one row per completed/cancelled workout
//! ```
//! The store is a local directory or `s3://bucket/prefix` ([`open_store`]); either way a file
//! appears whole or not at all (a single put, or a multipart upload completed in one request).
//!
//! `<label>` (20 digits) is the LSN through which that partition's rows are in committed files: it
//! is both what makes file names unique and how a restarted sink knows what it already wrote.

mod buffers;
mod paths;
mod props;
mod redact;
mod schema;
mod store;
mod table;

pub use paths::{ObjectKey, Partition};
pub use props::{DEFAULT_ZSTD_LEVEL, writer_properties};
pub use schema::{PointsTable, WorkoutsTable};
pub use store::{S3Options, open_store};
pub use table::{LakeConfig, LakeTable, MULTIPART_PART_BYTES, TableSpec};

use std::sync::Arc;

use object_store::ObjectStore;

/// A local-filesystem object store rooted at `dir` (created if missing).
pub fn local_store(dir: &std::path::Path) -> Result<Arc<dyn ObjectStore>, crate::SinkError> {
    std::fs::create_dir_all(dir)
        .map_err(|e| crate::SinkError::io(format!("creating lake directory {}", dir.display()), e))?;
    let store = object_store::local::LocalFileSystem::new_with_prefix(dir).map_err(|source| {
        crate::SinkError::ObjectStore { operation: "open", path: dir.display().to_string(), source }
    })?;
    Ok(Arc::new(store))
}
