//! A session's cache of small byte ranges read from lake files (bloom filters, footers).
//!
//! A point lookup checks the bloom filter of every file that statistics cannot rule
//! out: about 650 small reads for a year of three tenants, each one a separate
//! request (on local disk: a blocking-pool task that opens, reads and closes the
//! file). Lake files are never rewritten (every convert writes new, uniquely named
//! files), so a range once read stays valid; later queries of the session take it
//! from memory. Large reads (column data) go straight to the store. On local disk
//! every read is made in the scan's own task (see [`RangeCache::read_inline`]).

use std::collections::HashMap;
use std::fmt;
use std::ops::Range;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::{self, BoxStream};
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{
    Attributes, CopyOptions, GetOptions, GetRange, GetResult, GetResultPayload, ListResult,
    MultipartUpload, ObjectMeta, ObjectStore, PutMultipartOptions, PutOptions, PutPayload,
    PutResult, RenameOptions, Result,
};

/// Reads up to this size are kept.
const MAX_ENTRY: u64 = 256 * 1024;

struct Entry {
    bytes: Bytes,
    meta: ObjectMeta,
    attributes: Attributes,
}

#[derive(Default)]
struct Ranges {
    map: HashMap<(Path, u64, u64), Arc<Entry>>,
    bytes: usize,
}

/// An object store that remembers small bounded range reads, up to `budget` bytes in all
/// (once full it keeps what it has and passes further reads through).
pub struct RangeCache {
    inner: Arc<dyn ObjectStore>,
    budget: usize,
    ranges: Mutex<Ranges>,
    /// For a lake on local disk: every read is made in the calling task (see
    /// [`RangeCache::read_inline`]).
    local: Option<LocalFileSystem>,
}

impl RangeCache {
    pub fn new(inner: Arc<dyn ObjectStore>, budget: usize) -> Self {
        RangeCache {
            inner,
            budget,
            ranges: Mutex::default(),
            local: None,
        }
    }

    /// Reads of column data (`get_ranges`) from a lake on local disk, whose object
    /// paths are absolute file paths, are made in the calling task with `pread`, not
    /// handed to a blocking-pool thread and back: a scan reads each of a year's
    /// 1,095 files once, and the two thread switches per file cost more than reading
    /// its columns from the page cache. One session over the 10M-event year, medians
    /// of 3, two interleaved rounds: failed_logins 175-188 ms against 205-211,
    /// login_bursts 167-169 against 199-207, privileged_actions 836-894 against
    /// 919-1,016; a streamed `SELECT *` to CSV 198 MiB peak RSS against 216. Footers
    /// and bloom filters too, which is what a fresh process reads first: fresh
    /// failed_logins 0.24-0.30 s against 0.32-0.35, key_lifecycle 1.05-1.30 against
    /// 1.36-1.51, zones key_first_use 2.52-2.67 against 2.69-2.82 (3 interleaved runs).
    pub fn read_inline(mut self) -> Self {
        self.local = Some(LocalFileSystem::new());
        self
    }

    /// The key of a read this cache takes: a plain bounded range, small enough.
    fn key(location: &Path, options: &GetOptions) -> Option<(Path, u64, u64)> {
        let plain = options.if_match.is_none()
            && options.if_none_match.is_none()
            && options.if_modified_since.is_none()
            && options.if_unmodified_since.is_none()
            && options.version.is_none()
            && !options.head;
        match &options.range {
            Some(GetRange::Bounded(r))
                if plain && r.end > r.start && r.end - r.start <= MAX_ENTRY =>
            {
                Some((location.clone(), r.start, r.end))
            }
            _ => None,
        }
    }

    fn result(e: &Entry, range: Range<u64>) -> GetResult {
        GetResult {
            payload: GetResultPayload::Stream(Box::pin(stream::once(futures::future::ready(Ok(
                e.bytes.clone(),
            ))))),
            meta: e.meta.clone(),
            range,
            attributes: e.attributes.clone(),
        }
    }
}

/// An error of reading the local file `path`, as the store reports it.
fn io_error(path: &std::path::Path, e: std::io::Error) -> object_store::Error {
    if e.kind() == std::io::ErrorKind::NotFound {
        object_store::Error::NotFound {
            path: path.display().to_string(),
            source: Box::new(e),
        }
    } else {
        object_store::Error::Generic {
            store: "LocalFileSystem",
            source: format!("{}: {e}", path.display()).into(),
        }
    }
}

/// `range` of an open file, read with `pread`.
fn read_at(file: &std::fs::File, path: &std::path::Path, range: &Range<u64>) -> Result<Bytes> {
    use std::os::unix::fs::FileExt;
    let mut buf = vec![0u8; range.end.saturating_sub(range.start) as usize];
    file.read_exact_at(&mut buf, range.start)
        .map_err(|e| io_error(path, e))?;
    Ok(Bytes::from(buf))
}

/// `ranges` of the file at `path`.
fn read_ranges(path: &std::path::Path, ranges: &[Range<u64>]) -> Result<Vec<Bytes>> {
    let file = std::fs::File::open(path).map_err(|e| io_error(path, e))?;
    ranges.iter().map(|r| read_at(&file, path, r)).collect()
}

/// `range` of the file at `path` (the object `location`) with the file's metadata, as
/// `LocalFileSystem` gives them (its e-tag: inode, mtime in microseconds, size).
fn read_range(
    path: &std::path::Path,
    location: &Path,
    range: Range<u64>,
) -> Result<(Bytes, ObjectMeta)> {
    use std::os::unix::fs::MetadataExt;
    let file = std::fs::File::open(path).map_err(|e| io_error(path, e))?;
    let md = file.metadata().map_err(|e| io_error(path, e))?;
    let modified = md.modified().unwrap_or(std::time::UNIX_EPOCH);
    let micros = modified
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_micros();
    let meta = ObjectMeta {
        location: location.clone(),
        last_modified: chrono::DateTime::<chrono::Utc>::from(modified),
        size: md.len(),
        e_tag: Some(format!("{:x}-{micros:x}-{:x}", md.ino(), md.len())),
        version: None,
    };
    // As the store does: a range that runs past the end is cut at it.
    if range.start >= md.len() && range.end > range.start {
        return Err(object_store::Error::Generic {
            store: "LocalFileSystem",
            source: format!(
                "{}: range {range:?} starts past the end ({} bytes)",
                path.display(),
                md.len()
            )
            .into(),
        });
    }
    let range = range.start..range.end.min(md.len());
    Ok((read_at(&file, path, &range)?, meta))
}

impl fmt::Display for RangeCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RangeCache({})", self.inner)
    }
}

impl fmt::Debug for RangeCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RangeCache({:?})", self.inner)
    }
}

#[async_trait]
impl ObjectStore for RangeCache {
    async fn get_opts(&self, location: &Path, options: GetOptions) -> Result<GetResult> {
        let Some(key) = Self::key(location, &options) else {
            return self.inner.get_opts(location, options).await;
        };
        let hit = self
            .ranges
            .lock()
            .expect("cache lock")
            .map
            .get(&key)
            .cloned();
        if let Some(e) = hit {
            let range = key.1..key.1 + e.bytes.len() as u64;
            return Ok(Self::result(&e, range));
        }
        let (bytes, meta, attributes, range) = match &self.local {
            // A footer or bloom filter of a local lake: read here, as column data is.
            Some(fs) => {
                let path = fs.path_to_filesystem(location)?;
                let (bytes, meta) = read_range(&path, location, key.1..key.2)?;
                let range = key.1..key.1 + bytes.len() as u64;
                (bytes, meta, Attributes::default(), range)
            }
            None => {
                let r = self.inner.get_opts(location, options).await?;
                let (meta, attributes, range) =
                    (r.meta.clone(), r.attributes.clone(), r.range.clone());
                (r.bytes().await?, meta, attributes, range)
            }
        };
        let entry = Entry {
            bytes,
            meta,
            attributes,
        };
        let out = Self::result(&entry, range);
        let mut ranges = self.ranges.lock().expect("cache lock");
        if ranges.bytes + entry.bytes.len() <= self.budget {
            ranges.bytes += entry.bytes.len();
            ranges.map.insert(key, Arc::new(entry));
        }
        Ok(out)
    }

    async fn get_ranges(&self, location: &Path, ranges: &[Range<u64>]) -> Result<Vec<Bytes>> {
        match &self.local {
            Some(fs) => read_ranges(&fs.path_to_filesystem(location)?, ranges),
            None => self.inner.get_ranges(location, ranges).await,
        }
    }

    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> Result<PutResult> {
        self.inner.put_opts(location, payload, opts).await
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> Result<Box<dyn MultipartUpload>> {
        self.inner.put_multipart_opts(location, opts).await
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, Result<Path>>,
    ) -> BoxStream<'static, Result<Path>> {
        self.inner.delete_stream(locations)
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, Result<ObjectMeta>> {
        self.inner.list(prefix)
    }

    fn list_with_offset(
        &self,
        prefix: Option<&Path>,
        offset: &Path,
    ) -> BoxStream<'static, Result<ObjectMeta>> {
        self.inner.list_with_offset(prefix, offset)
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> Result<ListResult> {
        self.inner.list_with_delimiter(prefix).await
    }

    async fn copy_opts(&self, from: &Path, to: &Path, options: CopyOptions) -> Result<()> {
        self.inner.copy_opts(from, to, options).await
    }

    async fn rename_opts(&self, from: &Path, to: &Path, options: RenameOptions) -> Result<()> {
        self.inner.rename_opts(from, to, options).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use object_store::ObjectStoreExt;

    fn store_with_file(dir: &std::path::Path) -> Arc<dyn ObjectStore> {
        let data: Vec<u8> = (0..=255u8).cycle().take(600 * 1024).collect();
        std::fs::write(dir.join("f.parquet"), data).unwrap();
        Arc::new(LocalFileSystem::new_with_prefix(dir).unwrap())
    }

    #[tokio::test]
    async fn small_ranges_are_served_from_memory_large_ones_from_the_store() {
        let dir = tempfile::tempdir().unwrap();
        let cache = RangeCache::new(store_with_file(dir.path()), 1 << 20);
        let p = Path::from("f.parquet");
        let small = cache.get_range(&p, 1000..1010).await.unwrap();
        assert_eq!(
            &small[..],
            &[232, 233, 234, 235, 236, 237, 238, 239, 240, 241]
        );
        let large = cache.get_range(&p, 0..300 * 1024).await.unwrap();
        assert_eq!(large.len(), 300 * 1024);

        // With the file gone, only the small range is still there.
        std::fs::remove_file(dir.path().join("f.parquet")).unwrap();
        assert_eq!(cache.get_range(&p, 1000..1010).await.unwrap(), small);
        assert!(cache.get_range(&p, 0..300 * 1024).await.is_err());
        assert!(cache.get_range(&p, 2000..2010).await.is_err());
    }

    #[tokio::test]
    async fn inline_reads_of_a_local_lake_return_what_the_store_returns() {
        let dir = tempfile::tempdir().unwrap();
        store_with_file(dir.path());
        let abs = Path::from_filesystem_path(dir.path().join("f.parquet")).unwrap();
        let store: Arc<dyn ObjectStore> = Arc::new(LocalFileSystem::new());
        let inline = RangeCache::new(store.clone(), 1 << 20).read_inline();
        let ranges = [
            0..10,
            1000..1010,
            100..300 * 1024,
            600 * 1024 - 5..600 * 1024,
        ];
        assert_eq!(
            inline.get_ranges(&abs, &ranges).await.unwrap(),
            store.get_ranges(&abs, &ranges).await.unwrap()
        );
        // Small reads (footers) too, with the store's metadata, cut at the end as it cuts them.
        for r in [
            0..10,
            600 * 1024 - 8..600 * 1024,
            600 * 1024 - 8..600 * 1024 + 8,
        ] {
            let a = inline.get_range(&abs, r.clone()).await.unwrap();
            let b = store.get_range(&abs, r.clone()).await.unwrap();
            assert_eq!(a, b, "{r:?}");
            let opts = || GetOptions {
                range: Some(GetRange::Bounded(r.clone())),
                ..GetOptions::default()
            };
            let (a, b) = (
                inline.get_opts(&abs, opts()).await.unwrap(),
                store.get_opts(&abs, opts()).await.unwrap(),
            );
            assert_eq!((a.meta, a.range), (b.meta, b.range));
        }
        // Past the end, and a file that is gone: errors, as from the store.
        let (past_end, head) = (600 * 1024 - 5..600 * 1024 + 5, 0..10);
        assert!(inline
            .get_ranges(&abs, std::slice::from_ref(&past_end))
            .await
            .is_err());
        std::fs::remove_file(dir.path().join("f.parquet")).unwrap();
        assert!(matches!(
            inline.get_ranges(&abs, std::slice::from_ref(&head)).await,
            Err(object_store::Error::NotFound { .. })
        ));
    }

    #[tokio::test]
    async fn a_full_cache_passes_reads_through() {
        let dir = tempfile::tempdir().unwrap();
        let cache = RangeCache::new(store_with_file(dir.path()), 100);
        let p = Path::from("f.parquet");
        assert_eq!(cache.get_range(&p, 0..80).await.unwrap().len(), 80);
        assert_eq!(cache.get_range(&p, 80..160).await.unwrap().len(), 80);
        std::fs::remove_file(dir.path().join("f.parquet")).unwrap();
        assert_eq!(cache.get_range(&p, 0..80).await.unwrap().len(), 80);
        assert!(cache.get_range(&p, 80..160).await.is_err());
    }
}
