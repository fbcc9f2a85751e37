//! Writes one partition's rows as a Parquet file: sorted by time, zstd where it pays,
//! dictionary, statistics and a page index on time, bloom filters on the lookup
//! columns, published atomically in a single PUT (on local disk: a temporary file
//! renamed into place). The SHA-256 of each file is taken from its bytes on their way
//! out, for the ledger.

use arrow::array::RecordBatch;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::schema::types::ColumnPath;
use sha2::{Digest, Sha256};

use super::store::LakeStore;
use super::{file_schema, Col, PartKey, BLOOM_COLUMNS, COLUMN_NAMES};
use crate::{Error, Result};

/// A file now in the lake.
#[derive(Debug, Clone)]
pub struct WrittenFile {
    /// Path relative to the lake root, with `/` separators.
    pub rel_path: String,
    pub rows: usize,
    pub bytes: u64,
    /// SHA-256 of the file's bytes, lowercase hex.
    pub sha256: String,
    /// Its time range and bloom filters, for the manifest.
    pub stats: super::manifest::FileStats,
}

impl WrittenFile {
    /// Its entry in the manifest.
    pub fn manifest_entry(&self) -> super::manifest::FileEntry {
        self.stats
            .clone()
            .entry(self.rel_path.clone(), self.bytes, self.rows as u64)
    }
}

/// Lowercase hex of a digest.
pub fn hex(digest: &[u8]) -> String {
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// Passes writes through to `inner`, hashing and counting the bytes.
struct HashingWriter<W> {
    inner: W,
    hasher: Sha256,
    len: u64,
}

impl<W: std::io::Write> std::io::Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.len += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// Columns whose pages zstd does not make smaller (or by a few bytes only): a
/// dictionary of a handful of values with RLE indices, or sorted timestamps as
/// deltas. Leaving them uncompressed saves a zstd context per column chunk on
/// both the write and the read side (parquet 59 builds a compressor and a
/// decompressor for each), and these columns are read by every view.
/// On the 10M-event benchmark year, zstd saved 0.26% of the lake on `client_ip`,
/// 0.22% on `action`, 0.17% on `role`, 0.10% on `source`, 0.09% on `hsm_id` and on
/// `part_id`, 0.02% on `actor_id`: less than it costs to run it on every file. Only
/// `trace_id`, `ouid` and `meta` are compressed: zstd takes 117 MB, 98 MB and 547 MB
/// off them, on a lake of 478 MB.
const UNCOMPRESSED: [Col; 13] = [
    Col::Time,
    Col::Vendor,
    Col::Source,
    Col::ResourceId,
    Col::ActorId,
    Col::Action,
    Col::Status,
    Col::Outcome,
    Col::ClientIp,
    Col::HsmId,
    Col::PartId,
    Col::Role,
    Col::Extra,
];

/// Writer settings for a file of `rows` rows.
///
/// Sizes measured on the 10M-event benchmark year (per 110 files): trace_id is
/// over half of the lake and unique per row, so it skips the dictionary and uses
/// DELTA_LENGTH_BYTE_ARRAY (lengths apart from the bytes: 8% smaller than PLAIN
/// under zstd); ouid likewise (10% smaller than a dictionary, which holds
/// nearly every value once).
pub fn writer_properties(batches: &[RecordBatch], zstd_level: i32) -> WriterProperties {
    use parquet::basic::Encoding;
    let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
    let mut b = WriterProperties::builder()
        .set_compression(Compression::ZSTD(
            ZstdLevel::try_new(zstd_level).unwrap_or_default(),
        ))
        .set_dictionary_enabled(true)
        // No min/max for the string columns: the lake's pruning reads the manifest's own
        // statistics and bloom filters, and computing them cost two comparisons per value
        // (5.7% of convert's CPU). time keeps page statistics (the page index prunes a
        // time range within a file); vendor keeps its chunk's (`status` reads it).
        .set_statistics_enabled(EnabledStatistics::None)
        .set_max_row_group_row_count(Some(1 << 20))
        .set_created_by(format!("auditlake {}", env!("CARGO_PKG_VERSION")));
    let path = |c: Col| ColumnPath::from(COLUMN_NAMES[c as usize]);
    b = b
        .set_column_statistics_enabled(path(Col::Time), EnabledStatistics::Page)
        .set_column_statistics_enabled(path(Col::Vendor), EnabledStatistics::Chunk);
    for c in UNCOMPRESSED {
        b = b.set_column_compression(path(c), Compression::UNCOMPRESSED);
    }
    // time, trace_id and ouid are (nearly) unique per row: a dictionary only costs time.
    for c in [Col::Time, Col::TraceId, Col::Ouid] {
        b = b.set_column_dictionary_enabled(path(c), false);
    }
    // So is any other column whose first values are nearly all different (CloudHSM's
    // meta holds each event's time and sequence number): interning them into a
    // dictionary that overflows its page and falls back to plain pages is wasted work.
    for c in unique_columns(batches) {
        b = b.set_column_dictionary_enabled(path(c), false);
    }
    // Sorted timestamps are small as deltas.
    b = b.set_column_encoding(path(Col::Time), Encoding::DELTA_BINARY_PACKED);
    for c in [Col::TraceId, Col::Ouid] {
        b = b.set_column_encoding(path(c), Encoding::DELTA_LENGTH_BYTE_ARRAY);
    }
    for c in BLOOM_COLUMNS {
        // Filters are folded down to the distinct values a file holds, as long as
        // the false-positive rate stays under this. trace_id is unique per row, so
        // its filter is the largest; it serves rare lookups and gets a looser rate.
        let fpp = if c == Col::TraceId { 0.05 } else { 0.01 };
        b = b
            .set_column_bloom_filter_enabled(path(c), true)
            .set_column_bloom_filter_fpp(path(c), fpp)
            .set_column_bloom_filter_max_ndv(path(c), rows.max(1) as u64);
    }
    b.build()
}

/// The string columns, among those that get a dictionary, whose first values (a sample
/// of up to [`SAMPLE`] non-null ones of the first batch) are over 90% distinct.
fn unique_columns(batches: &[RecordBatch]) -> Vec<Col> {
    use arrow::array::{Array, AsArray};
    const SAMPLE: usize = 256;
    let Some(first) = batches.first() else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for c in super::ALL_COLS {
        if matches!(c, Col::Time | Col::TraceId | Col::Ouid) {
            continue;
        }
        let Some(col) = first.column(c as usize).as_string_opt::<i32>() else {
            continue;
        };
        let mut seen = std::collections::HashSet::with_capacity(SAMPLE);
        let mut sampled = 0usize;
        for i in 0..col.len() {
            if sampled == SAMPLE {
                break;
            }
            if col.is_valid(i) {
                sampled += 1;
                seen.insert(col.value(i));
            }
        }
        if sampled >= SAMPLE / 4 && seen.len() * 10 > sampled * 9 {
            out.push(c);
        }
    }
    out
}

/// A batch's sort key: time, as microseconds.
fn times(b: &RecordBatch) -> &[i64] {
    use arrow::array::AsArray;
    use arrow::datatypes::TimestampMicrosecondType;
    b.column(Col::Time as usize)
        .as_primitive::<TimestampMicrosecondType>()
        .values()
}

/// Whether rows run in time order, within and across the batches.
pub fn in_order(batches: &[RecordBatch]) -> bool {
    let mut last = i64::MIN;
    for b in batches {
        for &t in times(b) {
            if t < last {
                return false;
            }
            last = t;
        }
    }
    true
}

/// The rows in time order, rows of the same time in the order they came (batch, then
/// row): as they are when already in order (the usual case, exports are written in time
/// order), else gathered in sorted order into one batch (each value copied once, straight
/// from the batch it came in). The key is integers only: no string is compared.
pub fn sorted_batches(batches: Vec<RecordBatch>) -> Result<Vec<RecordBatch>> {
    if in_order(&batches) {
        return Ok(batches);
    }
    let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
    let mut keys: Vec<(i64, u32, u32)> = Vec::with_capacity(rows);
    for (bi, b) in batches.iter().enumerate() {
        for (ri, &t) in times(b).iter().enumerate() {
            keys.push((t, bi as u32, ri as u32));
        }
    }
    keys.sort_unstable();
    let idx: Vec<(usize, usize)> = keys.iter().map(|k| (k.1 as usize, k.2 as usize)).collect();
    drop(keys);
    let refs: Vec<&RecordBatch> = batches.iter().collect();
    Ok(vec![arrow::compute::interleave_record_batch(&refs, &idx)?])
}

/// Encodes `batch` (already sorted) as a Parquet file in memory.
pub fn encode(batches: &[RecordBatch], zstd_level: i32) -> Result<Vec<u8>> {
    let props = writer_properties(batches, zstd_level);
    let here = std::path::Path::new("<parquet>");
    let mut w = ArrowWriter::try_new(Vec::with_capacity(1 << 20), file_schema(), Some(props))
        .map_err(|e| Error::parquet(here, e))?;
    for batch in batches {
        w.write(batch).map_err(|e| Error::parquet(here, e))?;
    }
    w.into_inner().map_err(|e| Error::parquet(here, e))
}

/// Writes `batch` (already sorted) as `<lake>/events/<partition>/<file_name>` in one PUT:
/// readers see the whole file or nothing.
pub async fn write_file(
    store: &LakeStore,
    key: &PartKey,
    file_name: &str,
    batches: &[RecordBatch],
    zstd_level: i32,
) -> Result<WrittenFile> {
    let rel_path = format!("{}/{file_name}", key.rel_dir());
    let (len, sha256) = match store.local_dir() {
        // Local disk: stream into a hidden temporary file next to the target, then rename.
        Some(root) => {
            store.check_held()?;
            write_local(&root.join(&rel_path), batches, zstd_level)?
        }
        // Object stores: one PUT of the encoded file (the PUT checks the lake lock).
        None => {
            let bytes = encode(batches, zstd_level)?;
            let len = bytes.len() as u64;
            let sha256 = hex(&Sha256::digest(&bytes));
            crate::testhook::point("tmpfile");
            store.put(&rel_path, bytes::Bytes::from(bytes)).await?;
            (len, sha256)
        }
    };
    crate::testhook::point("file");
    Ok(WrittenFile {
        rel_path,
        rows: batches.iter().map(|b| b.num_rows()).sum(),
        bytes: len,
        sha256,
        stats: super::manifest::FileStats::of(batches),
    })
}

/// Writes the file through a temporary name; returns its length and SHA-256.
fn write_local(
    path: &std::path::Path,
    batches: &[RecordBatch],
    zstd_level: i32,
) -> Result<(u64, String)> {
    let dir = path.parent().expect("a partition file has a directory");
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let tmp = dir.join(format!(
        ".{}.tmp",
        path.file_name().unwrap_or_default().to_string_lossy()
    ));
    let result = (|| {
        let file = std::fs::File::create(&tmp).map_err(|e| Error::io(&tmp, e))?;
        let props = writer_properties(batches, zstd_level);
        let out = HashingWriter {
            inner: file,
            hasher: Sha256::new(),
            len: 0,
        };
        let mut w = ArrowWriter::try_new(
            std::io::BufWriter::with_capacity(1 << 20, out),
            file_schema(),
            Some(props),
        )
        .map_err(|e| Error::parquet(&tmp, e))?;
        for batch in batches {
            w.write(batch).map_err(|e| Error::parquet(&tmp, e))?;
        }
        let out = w
            .into_inner()
            .map_err(|e| Error::parquet(&tmp, e))?
            .into_inner()
            .map_err(|e| Error::io(&tmp, e.into_error()))?;
        let (len, sha256) = (out.len, hex(&out.hasher.finalize()));
        drop(out.inner);
        crate::testhook::point("tmpfile");
        std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e))?;
        Ok((len, sha256))
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Reads a whole lake file (all columns, or the given ones) into batches.
pub async fn read_file(
    store: &LakeStore,
    rel: &str,
    columns: Option<&[Col]>,
) -> Result<Vec<RecordBatch>> {
    let Some(bytes) = store.get(rel).await? else {
        return Ok(vec![]);
    };
    read_bytes(bytes, columns).map_err(|e| match e {
        Error::Parquet { source, .. } => Error::Usage(format!("{}: {source}", store.show(rel))),
        other => other,
    })
}

/// Decodes Parquet bytes (all columns, or the given ones).
pub fn read_bytes(bytes: bytes::Bytes, columns: Option<&[Col]>) -> Result<Vec<RecordBatch>> {
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    use parquet::arrow::ProjectionMask;
    let here = std::path::Path::new("<parquet>");
    let mut b =
        ParquetRecordBatchReaderBuilder::try_new(bytes).map_err(|e| Error::parquet(here, e))?;
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
        .map_err(|e| Error::parquet(here, e))?;
    reader
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(Error::Arrow)
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{ArrayRef, AsArray, StringArray, TimestampMicrosecondArray};
    use std::sync::Arc;

    /// A batch of the file schema with these (time, text) rows; every text column holds
    /// the text, so a row's columns can be checked to travel together.
    fn batch(rows: &[(i64, &str)]) -> RecordBatch {
        let schema = file_schema();
        let cols: Vec<ArrayRef> = schema
            .fields()
            .iter()
            .enumerate()
            .map(|(i, _)| -> ArrayRef {
                if i == Col::Time as usize {
                    Arc::new(
                        TimestampMicrosecondArray::from(
                            rows.iter().map(|r| r.0).collect::<Vec<_>>(),
                        )
                        .with_timezone("UTC"),
                    )
                } else {
                    Arc::new(StringArray::from(
                        rows.iter().map(|r| r.1).collect::<Vec<_>>(),
                    ))
                }
            })
            .collect();
        RecordBatch::try_new(schema, cols).unwrap()
    }

    fn rows(batches: &[RecordBatch]) -> Vec<(i64, String)> {
        batches
            .iter()
            .flat_map(|b| {
                let actor = b.column(Col::ActorId as usize).as_string::<i32>();
                (0..b.num_rows())
                    .map(|i| (times(b)[i], actor.value(i).to_string()))
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    #[test]
    fn partitions_come_out_in_time_order_ties_as_they_came() {
        let ordered = vec![batch(&[(1, "a"), (2, "z")]), batch(&[(2, "b"), (3, "a")])];
        assert!(in_order(&ordered));
        assert_eq!(sorted_batches(ordered.clone()).unwrap().len(), 2); // left as they are

        let mixed = vec![
            batch(&[(5, "x"), (2, "b")]),
            batch(&[(2, "a"), (9, "c"), (1, "z")]),
        ];
        assert!(!in_order(&mixed));
        let sorted = sorted_batches(mixed).unwrap();
        assert!(in_order(&sorted));
        let want: Vec<(i64, String)> = [(1, "z"), (2, "b"), (2, "a"), (5, "x"), (9, "c")]
            .iter()
            .map(|(t, s)| (*t, s.to_string()))
            .collect();
        assert_eq!(rows(&sorted), want);
    }

    #[test]
    fn a_written_file_comes_with_its_own_size_and_sha256() {
        let dir = tempfile::tempdir().unwrap();
        let store = LakeStore::local(dir.path()).unwrap();
        let key = PartKey {
            tenant: "t".into(),
            day: 20_000,
        };
        let batches = vec![batch(&[(1, "a"), (2, "b")])];
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let w = rt
            .block_on(write_file(&store, &key, "f.parquet", &batches, 1))
            .unwrap();
        let bytes = std::fs::read(dir.path().join(&w.rel_path)).unwrap();
        assert_eq!((w.rows, w.bytes), (2, bytes.len() as u64));
        assert_eq!(w.sha256, hex(&Sha256::digest(&bytes)));
        // The object-store path encodes the same bytes.
        assert_eq!(encode(&batches, 1).unwrap(), bytes);
    }
}
