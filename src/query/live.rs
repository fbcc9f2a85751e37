//! The session's view of which lake files are live: an object store whose listings
//! apply the compaction manifest (see [`crate::lake::switch`]), so a query plans with
//! all of a partition's old files or with its merged file, never both.
//!
//! Each listing is taken first and the manifest read after it, which is the order the
//! rule needs. Everything else passes straight through to the store below.

use std::fmt;
use std::ops::Range;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::{self, BoxStream};
use futures::{StreamExt, TryStreamExt};
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    ObjectStoreExt, PutMultipartOptions, PutOptions, PutPayload, PutResult, RenameOptions, Result,
};

use crate::lake::store::LakeStore;
use crate::lake::switch::Switches;

/// Listings with the compaction rule applied; reads and writes as they are.
pub struct LiveListing {
    inner: Arc<dyn ObjectStore>,
    lake: LakeStore,
}

impl LiveListing {
    /// `inner` serves the session's reads; `lake` is where the manifest is read from.
    pub fn new(inner: Arc<dyn ObjectStore>, lake: LakeStore) -> Self {
        LiveListing { inner, lake }
    }
}

fn generic(e: crate::Error) -> object_store::Error {
    object_store::Error::Generic {
        store: "auditlake",
        source: Box::new(e),
    }
}

/// The path relative to the lake root, as the manifest names it.
fn rel_of<'a>(lake: &LakeStore, p: &'a Path) -> &'a str {
    let root = lake.root.as_ref();
    p.as_ref()
        .strip_prefix(root)
        .unwrap_or(p.as_ref())
        .trim_start_matches('/')
}

/// Applies the manifest to objects listed below `prefix` (recursively, or with
/// `direct_only` only those directly in it).
async fn apply(
    inner: &dyn ObjectStore,
    lake: &LakeStore,
    prefix: Option<&Path>,
    direct_only: bool,
    listed: Vec<ObjectMeta>,
) -> Result<Vec<ObjectMeta>> {
    let switches = Switches::load(lake).await.map_err(generic)?;
    if switches.switches.is_empty() {
        return Ok(listed);
    }
    let hidden = switches.hidden();
    let mut out: Vec<ObjectMeta> = listed
        .into_iter()
        .filter(|m| !hidden.contains(rel_of(lake, &m.location)))
        .collect();
    for merged in switches.live_merged() {
        let p = lake.path(merged);
        let under = match prefix {
            None => true,
            Some(pre) if direct_only => p
                .prefix_match(pre)
                .is_some_and(|mut r| r.next().is_some() && r.next().is_none()),
            Some(pre) => p.prefix_matches(pre),
        };
        if under && !out.iter().any(|m| m.location == p) {
            match inner.head(&p).await {
                Ok(meta) => out.push(meta),
                Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(e),
            }
        }
    }
    Ok(out)
}

impl fmt::Display for LiveListing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "LiveListing({})", self.inner)
    }
}

impl fmt::Debug for LiveListing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "LiveListing({:?})", self.inner)
    }
}

#[async_trait]
impl ObjectStore for LiveListing {
    async fn get_opts(&self, location: &Path, options: GetOptions) -> Result<GetResult> {
        self.inner.get_opts(location, options).await
    }

    async fn get_ranges(&self, location: &Path, ranges: &[Range<u64>]) -> Result<Vec<Bytes>> {
        self.inner.get_ranges(location, ranges).await
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
        let (inner, lake, prefix) = (self.inner.clone(), self.lake.clone(), prefix.cloned());
        stream::once(async move {
            // The listing first, the manifest after it.
            let listed: Vec<ObjectMeta> = inner.list(prefix.as_ref()).try_collect().await?;
            apply(inner.as_ref(), &lake, prefix.as_ref(), false, listed).await
        })
        .map_ok(|v| stream::iter(v.into_iter().map(Ok)))
        .try_flatten()
        .boxed()
    }

    fn list_with_offset(
        &self,
        prefix: Option<&Path>,
        offset: &Path,
    ) -> BoxStream<'static, Result<ObjectMeta>> {
        let offset = offset.clone();
        self.list(prefix)
            .try_filter(move |m| futures::future::ready(m.location > offset))
            .boxed()
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> Result<ListResult> {
        let mut r = self.inner.list_with_delimiter(prefix).await?;
        r.objects = apply(self.inner.as_ref(), &self.lake, prefix, true, r.objects).await?;
        Ok(r)
    }

    async fn copy_opts(&self, from: &Path, to: &Path, options: CopyOptions) -> Result<()> {
        self.inner.copy_opts(from, to, options).await
    }

    async fn rename_opts(&self, from: &Path, to: &Path, options: RenameOptions) -> Result<()> {
        self.inner.rename_opts(from, to, options).await
    }
}
