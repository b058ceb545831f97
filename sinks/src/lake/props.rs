use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::{EnabledStatistics, WriterProperties};

/// Writer properties for every lake file, set in one place.
///
/// zstd level 3 is zstd's own default: most of the ratio of higher levels at a fraction of the CPU.
/// Row groups are capped at `row_group_rows` (DESIGN §6: 100k–1M rows) so readers can skip by
/// row-group statistics without tiny groups.
pub fn writer_properties(row_group_rows: usize) -> WriterProperties {
    WriterProperties::builder()
        .set_compression(Compression::ZSTD(
            ZstdLevel::try_new(3).expect("3 is a valid zstd level"),
        ))
        .set_max_row_group_row_count(Some(row_group_rows))
        .set_statistics_enabled(EnabledStatistics::Chunk)
        .set_created_by(format!("trackwire {}", env!("CARGO_PKG_VERSION")))
        .build()
}
