//! `<lake>/_rejected/`: one NDJSON file per source holding every record that
//! could not be placed, and every member that broke off, with where it was
//! and why. Spooled to a local temporary file and published when the source
//! is done (one PUT, or a multipart upload for a large one), so a rerun
//! replaces it instead of repeating it. A record over the size limit is kept
//! beside it, as `<sha256>.m<member>.r<index>.raw`, and named in its line.

use std::io::{BufWriter, Read, Write};

use serde::Serialize;
use tokio::io::AsyncWriteExt;

use super::store::LakeStore;
use crate::{Error, Result};

/// One line of a rejects file.
#[derive(Serialize, Default)]
pub struct Rejected<'a> {
    pub source: &'a str,
    pub member: &'a str,
    /// Record index within the member (absent for member-level entries).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub index: Option<u64>,
    /// Byte offset within the (decompressed) member.
    pub offset: u64,
    pub reason: &'a str,
    pub detail: &'a str,
    /// The record's text (invalid UTF-8 replaced by U+FFFD; see `raw_base64`).
    pub raw: &'a str,
    /// The record's exact bytes, base64, when they are not valid UTF-8.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub raw_base64: Option<String>,
    /// For a record too large to keep here: the lake file holding its bytes, their
    /// SHA-256, their length and the member offset just past them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub raw_file: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub raw_sha256: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub raw_bytes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end_offset: Option<u64>,
}

/// A record's bytes as reject fields: its text, and base64 of the bytes when they
/// are not valid UTF-8 (the text then shows U+FFFD in their place).
pub fn raw_fields(bytes: &[u8]) -> (std::borrow::Cow<'_, str>, Option<String>) {
    use base64::Engine;
    match std::str::from_utf8(bytes) {
        Ok(t) => (std::borrow::Cow::Borrowed(t), None),
        Err(_) => (
            String::from_utf8_lossy(bytes),
            Some(base64::engine::general_purpose::STANDARD.encode(bytes)),
        ),
    }
}

/// The rejects of one source, written as they come.
pub struct RejectLog {
    rel: String,
    out: Option<BufWriter<tempfile::NamedTempFile>>,
    pub count: u64,
}

impl RejectLog {
    /// A log for the source with this SHA-256; nothing is created until the first line.
    pub fn new(sha256: &str) -> Self {
        RejectLog {
            rel: format!("{}/{sha256}.ndjson", super::REJECTED_DIR),
            out: None,
            count: 0,
        }
    }

    pub fn write(&mut self, r: &Rejected) -> Result<()> {
        let tmp_dir = std::env::temp_dir();
        if self.out.is_none() {
            let f = tempfile::NamedTempFile::new().map_err(|e| Error::io(&tmp_dir, e))?;
            self.out = Some(BufWriter::new(f));
        }
        let out = self.out.as_mut().expect("opened above");
        serde_json::to_writer(&mut *out, r)?;
        out.write_all(b"\n").map_err(|e| Error::io(&tmp_dir, e))?;
        self.count += 1;
        Ok(())
    }

    /// Publishes the file (if anything was written). Returns its path relative to the lake.
    pub async fn finish(mut self, store: &LakeStore) -> Result<Option<String>> {
        let Some(out) = self.out.take() else {
            // A rerun that rejects nothing replaces an older file.
            store.delete(&self.rel).await?;
            return Ok(None);
        };
        let tmp_dir = std::env::temp_dir();
        let file = out
            .into_inner()
            .map_err(|e| Error::io(&tmp_dir, e.into_error()))?;
        upload_file(store, &self.rel, file.path()).await?;
        Ok(Some(self.rel.clone()))
    }
}

/// Publishes a local file at `rel` in the lake, streamed (one PUT, or a multipart
/// upload for a large file), so its size never matters.
pub async fn upload_file(store: &LakeStore, rel: &str, path: &std::path::Path) -> Result<()> {
    store.check_held()?;
    let mut reader = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let mut upload = object_store::buffered::BufWriter::new(store.store.clone(), store.path(rel));
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = reader.read(&mut buf).map_err(|e| Error::io(path, e))?;
        if n == 0 {
            break;
        }
        upload
            .write_all(&buf[..n])
            .await
            .map_err(|e| Error::Usage(format!("{}: {e}", store.show(rel))))?;
    }
    // Completing the upload publishes the file.
    store.check_held()?;
    upload
        .shutdown()
        .await
        .map_err(|e| Error::Usage(format!("{}: {e}", store.show(rel))))?;
    Ok(())
}
