//! Message bodies. Events reuse the event log's JSON; points are an Arrow IPC stream with the
//! schema of the lake's `points` table (`docs/lake-schema.md`), so every Arrow reader decodes
//! them without code of ours (`pyarrow.ipc.open_stream`).

use arrow_ipc::writer::StreamWriter;
use trackwire_pipeline::EnrichedPoint;

use crate::SinkError;
use crate::lake::{PointsTable, TableSpec};

/// Header `schema-version` of every message.
pub const SCHEMA_VERSION: &str = "1";
/// Header `content-type` of points messages.
pub const POINTS_CONTENT_TYPE: &str = "application/vnd.apache.arrow.stream";

/// One record's enriched points as an Arrow IPC stream (schema message + one batch).
pub fn points_message(points: &[EnrichedPoint]) -> Result<Vec<u8>, SinkError> {
    let batch = PointsTable::to_batch(points)?;
    let mut out = Vec::with_capacity(64 * points.len() + 1024);
    let mut writer = StreamWriter::try_new(&mut out, &PointsTable::schema())?;
    writer.write(&batch)?;
    writer.finish()?;
    drop(writer);
    Ok(out)
}
