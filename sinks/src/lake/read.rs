//! Reading a lake table's current rows through its Delta log (what any Delta reader sees): for
//! tests, checks and tools, not the data path.

use arrow_array::RecordBatch;
use object_store::ObjectStoreExt;

use super::delta::DeltaTable;
use super::store::LakeLocation;
use crate::SinkError;

/// Every row of table `name` at its newest version, file by file; empty when there is no table.
pub fn read_table(location: &LakeLocation, name: &str) -> Result<Vec<RecordBatch>, SinkError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| SinkError::io("starting the object store runtime", e))?;
    let url = location.table_url(name);
    if !runtime.block_on(location.has_delta_log(&url))? {
        return Ok(Vec::new());
    }
    let table = DeltaTable::open_existing(location.store.clone(), url.clone())?;
    let mut out = Vec::new();
    for file in table.active_files()? {
        let path = location.object(&url.join(&file.path).map_err(|e| SinkError::Config(e.to_string()))?)?;
        let bytes = runtime
            .block_on(async { location.store.get(&path).await?.bytes().await })
            .map_err(|source| SinkError::ObjectStore { operation: "get", path: path.to_string(), source })?;
        let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(bytes)?.build()?;
        for batch in reader {
            out.push(batch?);
        }
    }
    Ok(out)
}
