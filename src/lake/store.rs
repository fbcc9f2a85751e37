//! Where the lake lives: a local directory or an object store (S3, GCS, Azure),
//! behind one small interface that the rest of the lake code uses.
//!
//! Files are published with a single PUT (atomic on every store; on local disk
//! object_store writes a temporary file and renames it), the ledger with a
//! conditional create where the store supports it. Credentials, region,
//! endpoint and allow-http come from the standard environment variables
//! (`AWS_*`, `GOOGLE_*`, `AZURE_*`), plus `--storage-option key=value`.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::TryStreamExt;
use object_store::path::Path as ObjPath;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload, RetryConfig};
use url::Url;

use super::lock::LockHeld;
use crate::{Error, Result};

/// A lake location: the store, the prefix inside it, and how to name it.
#[derive(Clone)]
pub struct LakeStore {
    pub store: Arc<dyn ObjectStore>,
    /// The lake's root inside the store.
    pub root: ObjPath,
    /// `scheme://authority/` of the store, for registering it with DataFusion.
    pub base_url: Url,
    /// What the user gave, for messages.
    pub display: String,
    local: Option<std::path::PathBuf>,
    /// The lake lock this store publishes under, if any: every write checks it first.
    held: Option<LockHeld>,
}

impl std::fmt::Debug for LakeStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "LakeStore({})", self.display)
    }
}

/// Retries with backoff and bounded time for every remote store.
pub fn retry_config() -> RetryConfig {
    RetryConfig {
        max_retries: 5,
        retry_timeout: Duration::from_secs(120),
        backoff: object_store::BackoffConfig {
            init_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(5),
            base: 2.0,
        },
    }
}

/// Whether `s` names an object-store URL rather than a local path.
pub fn is_url(s: &str) -> bool {
    [
        "s3://", "s3a://", "gs://", "az://", "abfs://", "abfss://", "file://", "http://",
        "https://",
    ]
    .iter()
    .any(|p| s.starts_with(p))
}

/// Builds a store for a URL: the scheme's builder from the environment, then the options.
pub fn store_for_url(url: &Url, options: &[(String, String)]) -> Result<Arc<dyn ObjectStore>> {
    let bad = |e: object_store::Error| Error::Usage(format!("{}: {e}", redact(url)));
    // Timeouts of our own; allow-http as the environment says (the builders' from_env reads
    // it, but setting client options replaces theirs).
    let env_true = |k: &str| {
        std::env::var(k)
            .is_ok_and(|v| matches!(v.to_ascii_lowercase().as_str(), "1" | "true" | "yes"))
    };
    let allow_http = [
        "AWS_ALLOW_HTTP",
        "ALLOW_HTTP",
        "AZURE_ALLOW_HTTP",
        "GOOGLE_ALLOW_HTTP",
    ]
    .iter()
    .any(|k| env_true(k));
    let client = object_store::ClientOptions::new()
        .with_timeout(Duration::from_secs(60))
        .with_connect_timeout(Duration::from_secs(10))
        .with_allow_http(allow_http);
    match url.scheme() {
        "s3" | "s3a" => {
            let mut b = object_store::aws::AmazonS3Builder::from_env()
                .with_url(url.as_str())
                .with_retry(retry_config())
                .with_client_options(client);
            if let Ok(e) = std::env::var("AWS_ENDPOINT_URL") {
                b = b.with_endpoint(e);
            }
            for (k, v) in parse_options(options)? {
                b = b.with_config(k, v);
            }
            Ok(Arc::new(b.build().map_err(bad)?))
        }
        "gs" => {
            let mut b = object_store::gcp::GoogleCloudStorageBuilder::from_env()
                .with_url(url.as_str())
                .with_retry(retry_config())
                .with_client_options(client);
            for (k, v) in parse_options(options)? {
                b = b.with_config(k, v);
            }
            // Unsigned requests (google_skip_signature, e.g. for an emulator): object_store
            // 0.13 still asks its credential provider for a token on every upload, which
            // without a service account is the instance metadata server. An empty static
            // token instead: uploads go out unsigned like every other request.
            let skip = object_store::gcp::GoogleConfigKey::SkipSignature;
            let truthy = |v: String| {
                matches!(
                    v.to_ascii_lowercase().as_str(),
                    "1" | "true" | "on" | "yes" | "y"
                )
            };
            if b.get_config_value(&skip).is_some_and(truthy) {
                let empty = object_store::gcp::GcpCredential {
                    bearer: String::new(),
                };
                b = b
                    .with_credentials(Arc::new(object_store::StaticCredentialProvider::new(empty)));
            }
            Ok(Arc::new(b.build().map_err(bad)?))
        }
        "az" | "abfs" | "abfss" => {
            let mut b = object_store::azure::MicrosoftAzureBuilder::from_env()
                .with_url(url.as_str())
                .with_retry(retry_config())
                .with_client_options(client);
            for (k, v) in parse_options(options)? {
                b = b.with_config(k, v);
            }
            Ok(Arc::new(b.build().map_err(bad)?))
        }
        "file" => Ok(Arc::new(object_store::local::LocalFileSystem::new())),
        other => Err(Error::Usage(format!(
            "{}: unsupported scheme {other}:// (s3, gs, az, file)",
            redact(url)
        ))),
    }
}

/// `--storage-option` pairs as a builder's config keys.
fn parse_options<K: std::str::FromStr<Err = object_store::Error>>(
    options: &[(String, String)],
) -> Result<Vec<(K, String)>> {
    options
        .iter()
        .map(|(k, v)| {
            k.parse()
                .map(|key| (key, v.clone()))
                .map_err(|e: object_store::Error| {
                    Error::Usage(format!("--storage-option {k}: {e}"))
                })
        })
        .collect()
}

/// A URL fit for messages: no user info, no query string (signatures live there).
pub fn redact(url: &Url) -> String {
    let mut u = url.clone();
    let _ = u.set_username("");
    let _ = u.set_password(None);
    if u.query().is_some() {
        u.set_query(Some("…"));
    }
    u.to_string()
}

impl LakeStore {
    /// Opens a lake given as a local path or a URL.
    pub fn open(location: &str, options: &[(String, String)]) -> Result<LakeStore> {
        if is_url(location) && !location.starts_with("file://") {
            let url = Url::parse(location)
                .map_err(|e| Error::Usage(format!("{location}: not a URL: {e}")))?;
            let store = store_for_url(&url, options)?;
            let root = ObjPath::from_url_path(url.path())
                .map_err(|e| Error::Usage(format!("{location}: {e}")))?;
            let base_url = Url::parse(&format!("{}://{}/", url.scheme(), url.authority()))
                .map_err(|e| Error::Usage(format!("{location}: {e}")))?;
            return Ok(LakeStore {
                store,
                root,
                base_url,
                display: redact(&url),
                local: None,
                held: None,
            });
        }
        let path = match location.strip_prefix("file://") {
            Some(p) => std::path::PathBuf::from(p),
            None => std::path::PathBuf::from(location),
        };
        LakeStore::local(&path)
    }

    /// Opens a lake that is already there: as [`LakeStore::open`], except that a local
    /// directory is never created (for commands that only read, like `verify`).
    pub fn open_existing(location: &str, options: &[(String, String)]) -> Result<LakeStore> {
        if is_url(location) && !location.starts_with("file://") {
            return LakeStore::open(location, options);
        }
        let path = Path::new(location.strip_prefix("file://").unwrap_or(location));
        if !path.is_dir() {
            return Err(Error::Usage(format!("no lake at {location}")));
        }
        LakeStore::local(path)
    }

    /// A lake in a local directory (created if missing).
    pub fn local(path: &Path) -> Result<LakeStore> {
        std::fs::create_dir_all(path).map_err(|e| Error::io(path, e))?;
        let abs = std::fs::canonicalize(path).map_err(|e| Error::io(path, e))?;
        let root = ObjPath::from_filesystem_path(&abs)
            .map_err(|e| Error::Usage(format!("{}: {e}", path.display())))?;
        Ok(LakeStore {
            store: Arc::new(object_store::local::LocalFileSystem::new()),
            root,
            base_url: Url::parse("file:///").expect("valid URL"),
            display: path.display().to_string(),
            local: Some(abs),
            held: None,
        })
    }

    /// A lake in an in-memory object store (conditional writes included), for tests.
    pub fn in_memory(name: &str) -> LakeStore {
        LakeStore {
            store: Arc::new(object_store::memory::InMemory::new()),
            root: ObjPath::from(name),
            base_url: Url::parse("memory:///").expect("valid URL"),
            display: format!("memory:///{name}"),
            local: None,
            held: None,
        }
    }

    /// The same lake, its writes guarded by `held`: once the lock is lost they fail.
    pub fn holding(&self, held: LockHeld) -> LakeStore {
        LakeStore {
            held: Some(held),
            ..self.clone()
        }
    }

    /// `Err` once the lake lock this store writes under is lost; `Ok` without a lock.
    /// Called before everything that publishes (one atomic load).
    pub fn check_held(&self) -> Result<()> {
        self.held.as_ref().map_or(Ok(()), LockHeld::check)
    }

    /// The local directory, for a lake on local disk.
    pub fn local_dir(&self) -> Option<&Path> {
        self.local.as_deref()
    }

    /// The object path of `rel` (a `/`-separated path below the root).
    /// Segments are taken as they are: partition values arrive percent-encoded once
    /// (see [`super::encode_part_value`]), and `Path::join` would encode their `%` again.
    pub fn path(&self, rel: &str) -> ObjPath {
        rel.split('/')
            .filter(|p| !p.is_empty())
            .fold(self.root.clone(), |p, part| {
                match object_store::path::PathPart::parse(part) {
                    Ok(part) => p.join(part),
                    // "." / ".." or control characters: escaped rather than refused.
                    Err(_) => p.join(part),
                }
            })
    }

    /// URL of a directory below the root, for a DataFusion listing table.
    /// Each segment is URL-encoded (`%` as `%25`), since readers of the URL decode it once
    /// back into the object path.
    pub fn dir_url(&self, rel: &str) -> String {
        let mut url = self.base_url.clone();
        if let Ok(mut segments) = url.path_segments_mut() {
            segments.pop_if_empty().extend(self.path(rel).parts());
            segments.push("");
        }
        url.to_string()
    }

    /// How a path below the root is shown to people.
    pub fn show(&self, rel: &str) -> String {
        format!("{}/{}", self.display.trim_end_matches('/'), rel)
    }

    pub(crate) fn err(&self, rel: &str, e: object_store::Error) -> Error {
        Error::Usage(format!("{}: {}", self.show(rel), one_line(&e.to_string())))
    }

    /// Writes an object in one PUT (atomic: readers see all of it or nothing); refused
    /// once the lake lock is lost.
    pub async fn put(&self, rel: &str, bytes: Bytes) -> Result<()> {
        self.check_held()?;
        self.store
            .put(&self.path(rel), PutPayload::from_bytes(bytes))
            .await
            .map_err(|e| self.err(rel, e))?;
        Ok(())
    }

    /// Creates an object only if absent; `Ok(false)` when it exists. Stores without
    /// conditional writes fall back to check-then-put.
    pub async fn put_new(&self, rel: &str, bytes: Bytes) -> Result<bool> {
        self.check_held()?;
        let opts = PutOptions {
            mode: PutMode::Create,
            ..Default::default()
        };
        match self
            .store
            .put_opts(&self.path(rel), PutPayload::from_bytes(bytes.clone()), opts)
            .await
        {
            Ok(_) => Ok(true),
            Err(object_store::Error::AlreadyExists { .. }) => Ok(false),
            Err(object_store::Error::NotImplemented { .. }) => {
                if self.get(rel).await?.is_some() {
                    return Ok(false);
                }
                self.put(rel, bytes).await?;
                Ok(true)
            }
            Err(e) => Err(self.err(rel, e)),
        }
    }

    /// Reads a whole object; `None` when absent.
    pub async fn get(&self, rel: &str) -> Result<Option<Bytes>> {
        match self.store.get(&self.path(rel)).await {
            Ok(r) => Ok(Some(r.bytes().await.map_err(|e| self.err(rel, e))?)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(self.err(rel, e)),
        }
    }

    /// Reads bytes `range` of an object; `None` when absent.
    pub async fn get_range(&self, rel: &str, range: std::ops::Range<u64>) -> Result<Option<Bytes>> {
        match self.store.get_range(&self.path(rel), range).await {
            Ok(b) => Ok(Some(b)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(self.err(rel, e)),
        }
    }

    /// The size of an object; `None` when absent.
    pub async fn size(&self, rel: &str) -> Result<Option<u64>> {
        match self.store.head(&self.path(rel)).await {
            Ok(meta) => Ok(Some(meta.size)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(self.err(rel, e)),
        }
    }

    /// Removes an object (a write like any other: checks the lock first).
    ///
    /// Azure deletes through a batch POST, which object_store does not resend when a
    /// pooled connection drops under it (a POST is not idempotent to it); a delete here
    /// is (a missing object is success), so a failed one is tried again, twice at most.
    pub async fn delete(&self, rel: &str) -> Result<()> {
        let (mut attempt, mut backoff) = (1, Duration::from_millis(100));
        loop {
            self.check_held()?;
            match self.store.delete(&self.path(rel)).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => return Ok(()),
                Err(object_store::Error::Generic { .. }) if attempt < 3 => {
                    tokio::time::sleep(backoff).await;
                    (attempt, backoff) = (attempt + 1, backoff * 4);
                }
                Err(e) => return Err(self.err(rel, e)),
            }
        }
    }

    /// Names of the sub-directories of `rel`.
    pub async fn list_dirs(&self, rel: &str) -> Result<Vec<String>> {
        let prefix = self.path(rel);
        let listing = match self.store.list_with_delimiter(Some(&prefix)).await {
            Ok(l) => l,
            Err(object_store::Error::NotFound { .. }) => return Ok(vec![]),
            Err(e) => return Err(self.err(rel, e)),
        };
        let mut out: Vec<String> = listing
            .common_prefixes
            .iter()
            .filter_map(|p| p.filename().map(str::to_string))
            .collect();
        out.sort();
        Ok(out)
    }

    /// Files directly in `rel` (name, size), hidden and temporary ones excluded, sorted.
    pub async fn list_files(&self, rel: &str) -> Result<Vec<(String, u64)>> {
        let prefix = self.path(rel);
        let listing = match self.store.list_with_delimiter(Some(&prefix)).await {
            Ok(l) => l,
            Err(object_store::Error::NotFound { .. }) => return Ok(vec![]),
            Err(e) => return Err(self.err(rel, e)),
        };
        let mut out: Vec<(String, u64)> = listing
            .objects
            .iter()
            .filter_map(|o| o.location.filename().map(|n| (n.to_string(), o.size)))
            .filter(|(n, _)| !n.starts_with('.') && !n.starts_with('_'))
            .collect();
        out.sort();
        Ok(out)
    }

    /// Every object below `rel` (recursive): relative path and size.
    pub async fn list_all(&self, rel: &str) -> Result<Vec<(String, u64)>> {
        let prefix = self.path(rel);
        let root = self.root.as_ref().to_string();
        let objects: Vec<object_store::ObjectMeta> =
            match self.store.list(Some(&prefix)).try_collect().await {
                Ok(v) => v,
                Err(object_store::Error::NotFound { .. }) => vec![],
                Err(e) => return Err(self.err(rel, e)),
            };
        let mut out: Vec<(String, u64)> = objects
            .into_iter()
            .map(|o| {
                let p = o.location.as_ref();
                let rel = p
                    .strip_prefix(root.as_str())
                    .unwrap_or(p)
                    .trim_start_matches('/')
                    .to_string();
                (rel, o.size)
            })
            .collect();
        out.sort();
        Ok(out)
    }
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::stream::BoxStream;
    use futures::StreamExt;
    use object_store::path::Path as P;
    use object_store::{
        CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta,
        PutMultipartOptions, PutResult, RenameOptions,
    };
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// The in-memory store, its first `fail` deletes answered with a transport error (as
    /// Azure's batch delete answers when a pooled connection drops).
    #[derive(Debug)]
    struct DropsDeletes {
        inner: object_store::memory::InMemory,
        fail: AtomicUsize,
    }

    impl std::fmt::Display for DropsDeletes {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "DropsDeletes")
        }
    }

    #[async_trait::async_trait]
    impl ObjectStore for DropsDeletes {
        async fn get_opts(&self, l: &P, o: GetOptions) -> object_store::Result<GetResult> {
            self.inner.get_opts(l, o).await
        }
        async fn put_opts(
            &self,
            l: &P,
            p: PutPayload,
            o: PutOptions,
        ) -> object_store::Result<PutResult> {
            self.inner.put_opts(l, p, o).await
        }
        async fn put_multipart_opts(
            &self,
            l: &P,
            o: PutMultipartOptions,
        ) -> object_store::Result<Box<dyn MultipartUpload>> {
            self.inner.put_multipart_opts(l, o).await
        }
        fn delete_stream(
            &self,
            locations: BoxStream<'static, object_store::Result<P>>,
        ) -> BoxStream<'static, object_store::Result<P>> {
            let dropped = self
                .fail
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
                .is_ok();
            if dropped {
                return futures::stream::once(async {
                    Err(object_store::Error::Generic {
                        store: "DropsDeletes",
                        source: "Error performing bulk delete request: error sending request"
                            .into(),
                    })
                })
                .boxed();
            }
            self.inner.delete_stream(locations)
        }
        fn list(&self, p: Option<&P>) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
            self.inner.list(p)
        }
        async fn list_with_delimiter(&self, p: Option<&P>) -> object_store::Result<ListResult> {
            self.inner.list_with_delimiter(p).await
        }
        async fn copy_opts(&self, f: &P, t: &P, o: CopyOptions) -> object_store::Result<()> {
            self.inner.copy_opts(f, t, o).await
        }
        async fn rename_opts(&self, f: &P, t: &P, o: RenameOptions) -> object_store::Result<()> {
            self.inner.rename_opts(f, t, o).await
        }
    }

    fn dropping(fail: usize) -> LakeStore {
        LakeStore {
            store: Arc::new(DropsDeletes {
                inner: object_store::memory::InMemory::new(),
                fail: AtomicUsize::new(fail),
            }),
            ..LakeStore::in_memory("lake")
        }
    }

    #[tokio::test]
    async fn a_delete_dropped_in_transit_is_sent_again_and_a_third_failure_is_reported() {
        let store = dropping(2);
        store.put("a", Bytes::from_static(b"x")).await.unwrap();
        store.delete("a").await.unwrap();
        assert_eq!(store.get("a").await.unwrap(), None);

        let store = dropping(3);
        store.put("a", Bytes::from_static(b"x")).await.unwrap();
        let err = store.delete("a").await.unwrap_err().to_string();
        assert!(
            err.contains("memory:///lake/a") && err.contains("bulk delete"),
            "{err}"
        );
        assert!(store.get("a").await.unwrap().is_some());
    }

    #[tokio::test]
    async fn escaped_partition_values_are_stored_once_escaped_everywhere() {
        let tmp = tempfile::tempdir().unwrap();
        let local = LakeStore::local(tmp.path()).unwrap();
        let rel = "events/tenant_id=a%2Fb%25c%3D%20%C3%A9/day=2025-01-01/f.parquet";
        for store in [local, LakeStore::in_memory("lake")] {
            store.put(rel, Bytes::from_static(b"x")).await.unwrap();
            assert_eq!(
                store.list_dirs("events").await.unwrap(),
                ["tenant_id=a%2Fb%25c%3D%20%C3%A9"],
                "{store:?}"
            );
            let files = store
                .list_files("events/tenant_id=a%2Fb%25c%3D%20%C3%A9/day=2025-01-01")
                .await
                .unwrap();
            assert_eq!(files, [("f.parquet".to_string(), 1)], "{store:?}");
            assert!(store.get(rel).await.unwrap().is_some());
            // A listing URL decodes back to the same directory.
            let url = store.dir_url("events/tenant_id=a%2Fb%25c%3D%20%C3%A9");
            let parsed = Url::parse(&url).unwrap();
            assert_eq!(
                ObjPath::from_url_path(parsed.path()).unwrap(),
                store.path("events/tenant_id=a%2Fb%25c%3D%20%C3%A9"),
                "{url}"
            );
            assert!(url.ends_with('/'), "{url}");
            // The object key (and the directory on disk) holds the value escaped once.
            let all = store.list_all("events").await.unwrap();
            assert_eq!(all, [(rel.to_string(), 1)], "{store:?}");
        }
        assert!(tmp
            .path()
            .join("events/tenant_id=a%2Fb%25c%3D%20%C3%A9/day=2025-01-01/f.parquet")
            .is_file());
    }
}
