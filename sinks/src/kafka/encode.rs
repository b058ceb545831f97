//! Message bodies. Events reuse the event log's JSON; points are an Arrow IPC stream of the points
//! message schema (`points_schema.rs`, `docs/lake-schema.md`), so every Arrow reader decodes them
//! without code of ours (`pyarrow.ipc.open_stream`).

use arrow_array::RecordBatch;
use arrow_ipc::reader::StreamReader;
use arrow_ipc::writer::StreamWriter;
use trackwire_pipeline::Points;

use super::points_schema::{points_message_batch, points_message_schema};
use crate::SinkError;

/// Header `schema-version` of points messages.
pub const POINTS_SCHEMA_VERSION: &str = "1";
/// Header `schema-version` of event messages: the records' `schema_version`
/// ([`crate::events::EVENT_SCHEMA_VERSION`]).
pub const EVENTS_SCHEMA_VERSION: &str = "3";
/// Header `content-type` of points messages.
pub const POINTS_CONTENT_TYPE: &str = "application/vnd.apache.arrow.stream";

/// Room left in a message for its key, headers and the record's framing.
const FRAMING_BYTES: usize = 4096;

/// One record's enriched points as an Arrow IPC stream (schema message + one batch).
pub fn points_message(points: &Points) -> Result<Vec<u8>, SinkError> {
    encode_batch(&points_message_batch(points)?, 64 * points.len() + 1024)
}

/// One record's enriched points as one or more Arrow IPC streams, each small enough for a
/// message of `max_message_bytes`: a long offline batch is split into consecutive runs of
/// samples (in order, every sample once) rather than refused by the broker.
pub fn points_messages(points: &Points, max_message_bytes: usize) -> Result<Vec<Vec<u8>>, SinkError> {
    let mut out = Vec::new();
    push_fitting(points_message_batch(points)?, max_message_bytes.saturating_sub(FRAMING_BYTES), &mut out)?;
    Ok(out)
}

/// Splits a points message the broker refused as too large into two halves (in order). None when
/// it holds a single sample, which cannot be split.
pub fn split_points_message(payload: &[u8]) -> Result<Option<[Vec<u8>; 2]>, SinkError> {
    let reader = StreamReader::try_new(payload, None)?;
    let batches: Vec<RecordBatch> = reader.collect::<Result<_, _>>()?;
    let batch = arrow_select::concat::concat_batches(&points_message_schema(), &batches)?;
    if batch.num_rows() < 2 {
        return Ok(None);
    }
    let half = batch.num_rows() / 2;
    let first = batch.slice(0, half);
    let second = batch.slice(half, batch.num_rows() - half);
    Ok(Some([encode_batch(&first, payload.len() / 2)?, encode_batch(&second, payload.len() / 2)?]))
}

fn push_fitting(batch: RecordBatch, budget: usize, out: &mut Vec<Vec<u8>>) -> Result<(), SinkError> {
    let encoded = encode_batch(&batch, 64 * batch.num_rows() + 1024)?;
    if encoded.len() <= budget || batch.num_rows() < 2 {
        out.push(encoded);
        return Ok(());
    }
    // Halving (rather than guessing a row count from the size) keeps every part near the budget
    // whatever the compressibility of the rows; a split costs one extra encoding per level.
    let half = batch.num_rows() / 2;
    push_fitting(batch.slice(0, half), budget, out)?;
    push_fitting(batch.slice(half, batch.num_rows() - half), budget, out)
}

fn encode_batch(batch: &RecordBatch, capacity: usize) -> Result<Vec<u8>, SinkError> {
    let mut out = Vec::with_capacity(capacity);
    let mut writer = StreamWriter::try_new(&mut out, &points_message_schema())?;
    writer.write(batch)?;
    writer.finish()?;
    drop(writer);
    Ok(out)
}
