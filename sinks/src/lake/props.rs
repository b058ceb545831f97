use arrow_schema::{DataType, Schema};
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::schema::types::ColumnPath;

/// Writer properties for every lake file, set in one place.
///
/// - zstd level 3 is zstd's own default: most of the ratio of higher levels at a fraction of the CPU.
/// - Row groups are capped at `row_group_rows` (100k–1M rows) so readers can skip by
///   row-group statistics without tiny groups.
/// - Dictionary encoding only for string columns (ids, sport, status), where values repeat. On
///   coordinates, times and distances it never pays (nearly every value is distinct) and building
///   a dictionary per column chunk was the sink thread's largest cost when profiled.
pub fn writer_properties(schema: &Schema, row_group_rows: usize) -> WriterProperties {
    let mut builder = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::try_new(3).expect("3 is a valid zstd level")))
        .set_max_row_group_row_count(Some(row_group_rows))
        .set_statistics_enabled(EnabledStatistics::Chunk)
        .set_dictionary_enabled(false)
        .set_created_by(format!("trackwire {}", env!("CARGO_PKG_VERSION")));
    for field in schema.fields() {
        if matches!(field.data_type(), DataType::Utf8) {
            builder = builder.set_column_dictionary_enabled(ColumnPath::from(field.name().as_str()), true);
        }
    }
    builder.build()
}
