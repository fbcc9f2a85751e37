//! Writes one partition's rows as a Parquet file: sorted by time, zstd,
//! dictionary, page statistics and bloom filters, published atomically
//! (written under a hidden temporary name, then renamed).

use std::fs::File;
use std::path::{Path, PathBuf};

use arrow::array::RecordBatch;
use arrow::compute::{lexsort_to_indices, take_record_batch, SortColumn};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::schema::types::ColumnPath;

use super::{file_schema, Col, PartKey, BLOOM_COLUMNS, COLUMN_NAMES};
use crate::{Error, Result};

/// A file now in the lake.
#[derive(Debug, Clone)]
pub struct WrittenFile {
    /// Path relative to the lake root, with `/` separators.
    pub rel_path: String,
    pub rows: usize,
    pub bytes: u64,
}

/// Writer settings for a file of `rows` rows.
pub fn writer_properties(rows: usize) -> WriterProperties {
    let mut b = WriterProperties::builder()
        .set_compression(Compression::ZSTD(
            ZstdLevel::try_new(3).expect("valid zstd level"),
        ))
        .set_dictionary_enabled(true)
        .set_statistics_enabled(EnabledStatistics::Page)
        .set_max_row_group_row_count(Some(1 << 20))
        .set_created_by(format!("auditlake {}", env!("CARGO_PKG_VERSION")));
    // trace_id is unique per row: a dictionary only costs time.
    b = b.set_column_dictionary_enabled(
        ColumnPath::from(COLUMN_NAMES[Col::TraceId as usize]),
        false,
    );
    for c in BLOOM_COLUMNS {
        let path = ColumnPath::from(COLUMN_NAMES[c as usize]);
        b = b
            .set_column_bloom_filter_enabled(path.clone(), true)
            .set_column_bloom_filter_fpp(path.clone(), 0.01)
            .set_column_bloom_filter_max_ndv(path, rows.max(1) as u64);
    }
    b.build()
}

/// Sorts rows by (time, trace_id).
pub fn sort_by_time(batch: &RecordBatch) -> Result<RecordBatch> {
    let cols = [Col::Time, Col::TraceId].map(|c| SortColumn {
        values: batch.column(c as usize).clone(),
        options: None,
    });
    let idx = lexsort_to_indices(&cols, None)?;
    Ok(take_record_batch(batch, &idx)?)
}

/// Writes `batch` (already sorted) as `<root>/events/<partition>/<file_name>`, atomically.
pub fn write_file(
    root: &Path,
    key: &PartKey,
    file_name: &str,
    batch: &RecordBatch,
) -> Result<WrittenFile> {
    let rel_dir = Path::new(super::EVENTS_DIR).join(key.rel_dir());
    let dir = root.join(&rel_dir);
    std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
    let final_path = dir.join(file_name);
    let tmp_path = dir.join(format!(".{file_name}.tmp"));
    let result = (|| -> Result<u64> {
        let file = File::create(&tmp_path).map_err(|e| Error::io(&tmp_path, e))?;
        let props = writer_properties(batch.num_rows());
        let mut w = ArrowWriter::try_new(file, file_schema(), Some(props))
            .map_err(|e| Error::parquet(&tmp_path, e))?;
        w.write(batch).map_err(|e| Error::parquet(&tmp_path, e))?;
        let file = w.into_inner().map_err(|e| Error::parquet(&tmp_path, e))?;
        let bytes = file.metadata().map_err(|e| Error::io(&tmp_path, e))?.len();
        drop(file);
        crate::testhook::point("tmpfile");
        std::fs::rename(&tmp_path, &final_path).map_err(|e| Error::io(&final_path, e))?;
        Ok(bytes)
    })();
    match result {
        Ok(bytes) => {
            crate::testhook::point("file");
            Ok(WrittenFile {
                rel_path: rel_path_string(&rel_dir.join(file_name)),
                rows: batch.num_rows(),
                bytes,
            })
        }
        Err(e) => {
            let _ = std::fs::remove_file(&tmp_path);
            Err(e)
        }
    }
}

fn rel_path_string(p: &Path) -> String {
    p.components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}

/// Reads a whole lake file (all columns, or the given ones) into batches.
pub fn read_file(path: &Path, columns: Option<&[Col]>) -> Result<Vec<RecordBatch>> {
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    use parquet::arrow::ProjectionMask;
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    let mut b =
        ParquetRecordBatchReaderBuilder::try_new(file).map_err(|e| Error::parquet(path, e))?;
    if let Some(cols) = columns {
        let schema = b.parquet_schema();
        let idx: Vec<usize> = cols
            .iter()
            .filter_map(|c| {
                (0..schema.num_columns())
                    .find(|&i| schema.column(i).name() == COLUMN_NAMES[*c as usize])
            })
            .collect();
        let mask = ProjectionMask::leaves(schema, idx);
        b = b.with_projection(mask);
    }
    let reader = b
        .with_batch_size(64 * 1024)
        .build()
        .map_err(|e| Error::parquet(path, e))?;
    reader
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| Error::Arrow(e))
}

/// Paths of a partition's files, for tests and tools.
pub fn partition_dir(root: &Path, key: &PartKey) -> PathBuf {
    root.join(super::EVENTS_DIR).join(key.rel_dir())
}
