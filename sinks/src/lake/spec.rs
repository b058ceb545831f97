//! What a lake table is (its rows, name, partitioning, columns with a role) and the knobs every
//! table shares.

use std::ops::Range;
use std::time::Duration;

use arrow_array::RecordBatch;
use arrow_schema::{ArrowError, SchemaRef};
use trackwire_pipeline::ShardOutput;

/// What a table's rows are and how they are laid out.
pub trait TableSpec: Send + 'static {
    /// Rows waiting to be encoded (the points' columns, or finished workouts' summaries).
    type Rows: Default + Send;
    /// Folder of the table under the lake's root.
    const NAME: &'static str;
    /// Partition by hour as well as date.
    const HOURLY: bool;
    fn schema() -> SchemaRef;
    /// The partitioning time (Unix ms) of each of this table's rows in `output`, in row order.
    fn row_times(output: &ShardOutput) -> &[i64];
    /// Appends rows `range` of `output` (indexes into [`TableSpec::row_times`]) to `rows`.
    fn append(rows: &mut Self::Rows, output: &ShardOutput, range: Range<usize>);
    fn row_count(rows: &Self::Rows) -> usize;
    /// Empties `rows`, keeping their memory for the next ones.
    fn clear(rows: &mut Self::Rows);
    fn to_batch(rows: &Self::Rows) -> Result<RecordBatch, ArrowError>;
    /// The timestamp column rows are partitioned by.
    const TIME_COLUMN: &'static str;
    /// The column holding the LSN each row came from (Int64).
    const LSN_COLUMN: &'static str;
    /// Columns that hold positions (nulled by coordinate retention).
    const POSITION_COLUMNS: &'static [&'static str];
    /// The timestamp column saying when the log stored each row: coordinate retention counts
    /// from it (tables without positions have none: "").
    const STORED_COLUMN: &'static str;
}

/// File rolling, encoding and maintenance knobs.
#[derive(Debug, Clone)]
pub struct LakeConfig {
    /// A commit is due once an open file's encoded size reaches this; compaction merges files
    /// smaller than this.
    pub target_file_bytes: usize,
    /// A commit is due once the oldest uncommitted row is this old, however small the files.
    pub max_file_age: Duration,
    /// Rows per Parquet row group.
    pub row_group_rows: usize,
    /// Most partitions with an open file at once. Each open file holds encoder buffers, so a
    /// backfill spanning hundreds of hours would otherwise hold hundreds of them; past the cap the
    /// oldest open file is finished early (a smaller file, bounded memory).
    pub max_open_partitions: usize,
    /// Files larger than this are uploaded in parts of 16 MiB (`MULTIPART_PART_BYTES`, a multipart
    /// upload), smaller ones with a single put.
    pub multipart_threshold_bytes: usize,
    /// zstd level of the Parquet pages (1–22; see [`super::props::DEFAULT_ZSTD_LEVEL`]).
    pub zstd_level: i32,
    /// A partition is compacted once it holds more than this many files smaller than the target.
    pub compact_above_files: usize,
    /// How long a file replaced by compaction stays readable (for queries that started before
    /// the compaction) before it is deleted. Files replaced by an erasure or by coordinate
    /// retention are deleted at once.
    pub vacuum_retention: Duration,
    /// A partition none of whose files was committed for this long is settled (its hour is over:
    /// live workouts write elsewhere) and is merged into files of `settled_target_file_bytes`.
    pub settled_after: Duration,
    /// Size of the files settled partitions are merged into: few files per hour however high the
    /// rate, for readers that open every file of a partition.
    pub settled_target_file_bytes: usize,
    /// How often the table's background settler looks for a settled partition to merge (and for
    /// small files to compact, at least as often as `max_file_age`, within 1–60 s); zero: no
    /// settler, so no merges unless callers run [`super::LakeTable::compact_one`] and
    /// [`super::LakeTable::settle_one`] themselves.
    pub settle_every: Duration,
}

impl Default for LakeConfig {
    fn default() -> Self {
        LakeConfig {
            target_file_bytes: 64 << 20,
            max_file_age: Duration::from_secs(60),
            row_group_rows: 1 << 20,
            max_open_partitions: 16,
            multipart_threshold_bytes: 64 << 20,
            zstd_level: super::props::DEFAULT_ZSTD_LEVEL,
            compact_above_files: 3,
            vacuum_retention: Duration::from_secs(3600),
            settled_after: Duration::from_secs(600),
            settled_target_file_bytes: 1 << 30,
            settle_every: Duration::from_secs(60),
        }
    }
}
