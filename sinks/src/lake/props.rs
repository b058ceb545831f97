use arrow_schema::{DataType, Schema};
use parquet::basic::{Compression, Encoding, ZstdLevel};
use parquet::errors::ParquetError;
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::schema::types::ColumnPath;

/// The zstd level lake files are written with unless configured: measured on the `points` table
/// (`cargo bench -p trackwire-benches --bench lake`), level 1 with the column encodings below
/// encodes 3.2–3.9 M rows/s per core at 23.0 bytes/row, level 3 2.4–2.8 M rows/s at 22.6: 2 %
/// smaller files for a third more CPU.
pub const DEFAULT_ZSTD_LEVEL: i32 = 1;

/// Columns whose type is wider than their few distinct values (Delta has no unsigned 16-bit
/// type, so the sample flags and power are 32-bit): dictionary-encoded like the small integers.
const FEW_VALUES: &[&str] = &["flags", "power_w"];

/// Writer properties for every lake file, set in one place. Each column is encoded for the
/// values it holds, chosen by its Arrow type, before zstd at `zstd_level` (1–22):
///
/// - **Strings** (ids, sport, status) and **small integers** (heart rate, cadence, power, flags,
///   zones): dictionary, as few distinct values repeat.
/// - **Wider integers and timestamps** (times, sequence numbers, sample indexes, LSNs): delta
///   encoding, as they mostly climb by small steps.
/// - **Floats** (coordinates, distances, speeds): byte-stream split, which puts the bytes of
///   equal significance together so zstd finds the runs in slowly changing values.
///
/// Measured on the `points` table against plain encoding at zstd 3 (the lake's earlier
/// properties): 23.0 against 42.8 bytes/row, 3.2–3.9 M against 1.5–1.9 M rows/s per core. A
/// dictionary is never built for the other columns: nearly every value is distinct, and building
/// one per column chunk was the sink thread's largest cost when profiled. Row groups are capped
/// at `row_group_rows` (100k–1M rows) so readers can skip by row-group statistics.
///
/// Fails only for a zstd level outside 1–22.
pub fn writer_properties(
    schema: &Schema,
    row_group_rows: usize,
    zstd_level: i32,
) -> Result<WriterProperties, ParquetError> {
    let level = ZstdLevel::try_new(zstd_level)?;
    let mut builder = WriterProperties::builder()
        .set_compression(Compression::ZSTD(level))
        .set_max_row_group_row_count(Some(row_group_rows))
        .set_statistics_enabled(EnabledStatistics::Chunk)
        .set_dictionary_enabled(false)
        .set_created_by(format!("trackwire {}", env!("CARGO_PKG_VERSION")));
    for field in schema.fields() {
        let column = ColumnPath::from(field.name().as_str());
        if FEW_VALUES.contains(&field.name().as_str()) {
            builder = builder.set_column_dictionary_enabled(column, true);
            continue;
        }
        builder = match field.data_type() {
            DataType::Utf8 | DataType::UInt8 | DataType::UInt16 | DataType::Int8 | DataType::Int16 => {
                builder.set_column_dictionary_enabled(column, true)
            }
            DataType::UInt32
            | DataType::UInt64
            | DataType::Int32
            | DataType::Int64
            | DataType::Timestamp(..)
            | DataType::Date32 => builder.set_column_encoding(column, Encoding::DELTA_BINARY_PACKED),
            DataType::Float32 | DataType::Float64 => builder.set_column_encoding(column, Encoding::BYTE_STREAM_SPLIT),
            _ => builder,
        };
    }
    Ok(builder.build())
}

#[cfg(test)]
mod tests {
    use parquet::arrow::ArrowWriter;
    use parquet::basic::Encoding;
    use parquet::file::reader::{FileReader, SerializedFileReader};
    use trackwire_pipeline::{EnrichedPoint, Points};

    use super::*;
    use crate::lake::{PointsTable, TableSpec};

    /// The encoding each column's values were written with (dictionary pages aside).
    fn encodings(level: i32) -> (Vec<(String, Vec<Encoding>)>, Compression) {
        let rows: Points = (0..1000u32)
            .map(|i| EnrichedPoint {
                seq: u64::from(i / 100),
                index: i % 100,
                lsn: u64::from(i / 100) + 1,
                time_ms: 1_700_000_000_000 + i64::from(i) * 1000,
                lat_deg: Some(47.0 + f64::from(i) * 1e-5),
                lon_deg: Some(8.0 + f64::from(i) * 1e-5),
                heart_rate_bpm: Some(120 + (i % 7) as u8),
                distance_m: f64::from(i) * 2.8,
                ..EnrichedPoint::default()
            })
            .collect();
        let schema = PointsTable::schema();
        let mut writer = ArrowWriter::try_new(
            Vec::new(),
            schema.clone(),
            Some(writer_properties(&schema, 128 * 1024, level).unwrap()),
        )
        .unwrap();
        let rows = crate::lake::PointRows::of_one_workout(rows, "u", "running");
        writer.write(&PointsTable::to_batch(&rows).unwrap()).unwrap();
        let file = bytes::Bytes::from(writer.into_inner().unwrap());
        let reader = SerializedFileReader::new(file).unwrap();
        let group = reader.metadata().row_group(0).clone();
        let columns =
            group.columns().iter().map(|c| (c.column_path().string(), c.encodings().collect::<Vec<_>>())).collect();
        (columns, group.column(0).compression())
    }

    #[test]
    fn each_column_is_encoded_for_its_values_and_compressed_at_the_configured_level() {
        let (columns, compression) = encodings(1);
        let of = |name: &str| &columns.iter().find(|(n, _)| n == name).unwrap().1;
        for counter in ["time", "seq", "sample_index", "lsn"] {
            assert!(of(counter).contains(&Encoding::DELTA_BINARY_PACKED), "{counter}: {:?}", of(counter));
        }
        for measure in ["lat", "lon", "distance_m", "altitude_m", "speed_mps"] {
            assert!(of(measure).contains(&Encoding::BYTE_STREAM_SPLIT), "{measure}: {:?}", of(measure));
        }
        for few_values in ["workout_id", "user_id", "sport", "heart_rate_bpm", "flags"] {
            assert!(of(few_values).contains(&Encoding::RLE_DICTIONARY), "{few_values}: {:?}", of(few_values));
        }
        assert_eq!(compression, Compression::ZSTD(ZstdLevel::try_new(1).unwrap()));
    }
}
