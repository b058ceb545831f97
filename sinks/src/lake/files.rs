//! A table's Parquet files as bytes: written with the statistics the Delta log records for them,
//! read back, filtered by LSN, and uploaded whole.

use std::borrow::Cow;
use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::{BooleanArray, RecordBatch, StructArray, new_null_array};
use arrow_schema::{ArrowError, SchemaRef};
use bytes::Bytes;
use delta_kernel_default_engine::stats::FileStatsAccumulator;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use parquet::arrow::ArrowWriter;

use super::delta::StatsSpec;
use super::props::writer_properties;
use super::spec::LakeConfig;
use crate::SinkError;

/// `batch` with `schema`'s columns: those it lacks (added to the table after its file was
/// written; always nullable) are null.
fn conform<'a>(batch: &'a RecordBatch, schema: &SchemaRef) -> Result<Cow<'a, RecordBatch>, SinkError> {
    if Arc::ptr_eq(&batch.schema(), schema) || batch.schema().fields() == schema.fields() {
        return Ok(Cow::Borrowed(batch));
    }
    let columns = schema
        .fields()
        .iter()
        .map(|field| match batch.column_by_name(field.name()) {
            Some(column) => Ok(column.clone()),
            None if field.is_nullable() => Ok(new_null_array(field.data_type(), batch.num_rows())),
            None => {
                Err(SinkError::Encoding(format!("a lake file has no '{}' column, which may not be null", field.name())))
            }
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Cow::Owned(RecordBatch::try_new(schema.clone(), columns)?))
}

/// A Parquet file being written, with the statistics the log records for it: into memory
/// (`Vec<u8>`, the sink's files, uploaded whole at the commit) or straight to storage
/// ([`super::streamed::StreamedUpload`], the large files compaction writes).
pub(crate) struct FileWriter<W: std::io::Write + Send = Vec<u8>> {
    writer: ArrowWriter<W>,
    stats: FileStatsAccumulator,
    schema: SchemaRef,
}

impl FileWriter {
    pub(super) fn new(
        stats: &StatsSpec,
        schema: SchemaRef,
        config: &LakeConfig,
        buffer: Vec<u8>,
    ) -> Result<Self, SinkError> {
        FileWriter::to(stats, schema, config, buffer)
    }

    /// The finished file and its statistics; None when no row was written.
    pub(super) fn finish(self) -> Result<Option<(Bytes, StructArray)>, SinkError> {
        Ok(self.finish_into()?.map(|(bytes, stats)| (Bytes::from(bytes), stats)))
    }
}

impl<W: std::io::Write + Send> FileWriter<W> {
    /// A file written to `out`.
    pub(super) fn to(stats: &StatsSpec, schema: SchemaRef, config: &LakeConfig, out: W) -> Result<Self, SinkError> {
        let props = writer_properties(&schema, config.row_group_rows, config.zstd_level)?;
        let writer = ArrowWriter::try_new(out, schema.clone(), Some(props))?;
        Ok(FileWriter { writer, stats: stats.accumulator(), schema })
    }

    /// Writes `batch`; one read from a file written before a column existed gets it, null.
    pub(super) fn write(&mut self, batch: &RecordBatch) -> Result<(), SinkError> {
        let batch = conform(batch, &self.schema)?;
        self.stats.merge(&batch).map_err(|e| SinkError::Encoding(format!("file statistics: {e}")))?;
        self.writer.write(&batch)?;
        Ok(())
    }

    pub(super) fn encoded_bytes(&self) -> usize {
        self.writer.bytes_written() + self.writer.in_progress_size()
    }

    /// Writes the footer; returns the output and the file's statistics, None when no row was
    /// written.
    pub(super) fn finish_into(self) -> Result<Option<(W, StructArray)>, SinkError> {
        let stats = self.stats.finish().map_err(|e| SinkError::Encoding(format!("file statistics: {e}")))?;
        let out = self.writer.into_inner()?;
        Ok(stats.map(|stats| (out, stats)))
    }
}

/// The record batches of an encoded Parquet file.
pub(super) fn read_batches(bytes: Bytes) -> Result<Vec<RecordBatch>, SinkError> {
    Ok(batches_of(bytes)?.collect::<Result<Vec<_>, _>>()?)
}

/// The record batches of an encoded Parquet file, decoded one at a time as they are taken.
pub(super) fn batches_of(bytes: Bytes) -> Result<parquet::arrow::arrow_reader::ParquetRecordBatchReader, SinkError> {
    Ok(parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(bytes)?.build()?)
}

/// The rows of `batches` whose `column` (an Int64 LSN) is above `above`.
pub(super) fn keep_lsn_above(
    batches: &[RecordBatch],
    column: &str,
    above: u64,
) -> Result<Vec<RecordBatch>, ArrowError> {
    let above = i64::try_from(above).unwrap_or(i64::MAX);
    batches
        .iter()
        .map(|batch| {
            let lsns = batch
                .column_by_name(column)
                .ok_or_else(|| ArrowError::SchemaError(format!("lake file has no '{column}' column")))?
                .as_primitive::<arrow_array::types::Int64Type>();
            let keep: BooleanArray = lsns.iter().map(|lsn| Some(lsn.is_some_and(|lsn| lsn > above))).collect();
            arrow_select::filter::filter_record_batch(batch, &keep)
        })
        .collect()
}

/// Size of each part of a multipart upload: above S3's 5 MiB minimum for every part but the last.
/// Multipart because S3's single PUT tops out at 5 GiB and a failed part is retried alone.
pub const MULTIPART_PART_BYTES: usize = 16 << 20;

/// Puts one file so that it becomes visible only complete: a single put, or a multipart upload
/// that S3 assembles atomically when completed (an upload that fails before completing stays
/// invisible; the next flush uploads the file again).
pub(super) async fn upload(
    store: &dyn ObjectStore,
    path: &Path,
    bytes: Bytes,
    multipart_threshold: usize,
) -> Result<(), (&'static str, object_store::Error)> {
    if bytes.len() <= multipart_threshold {
        store.put(path, PutPayload::from(bytes)).await.map_err(|e| ("put", e))?;
        return Ok(());
    }
    let upload = store.put_multipart(path).await.map_err(|e| ("put_multipart", e))?;
    let mut writer = object_store::WriteMultipart::new_with_chunk_size(upload, MULTIPART_PART_BYTES);
    writer.put(bytes);
    match writer.finish().await {
        Ok(_) => Ok(()),
        Err(e) => Err(("complete multipart upload", e)),
    }
}
