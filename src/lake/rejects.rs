//! `<lake>/_rejected/`: one NDJSON file per source holding every record that
//! could not be placed, and every member that broke off, with where it was
//! and why. Written under a temporary name and renamed when the source is
//! done, so a rerun replaces it instead of repeating it.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::{Error, Result};

/// One line of a rejects file.
#[derive(Serialize)]
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
    pub raw: &'a str,
}

/// The rejects of one source, written as they come.
pub struct RejectLog {
    tmp: PathBuf,
    path: PathBuf,
    out: Option<BufWriter<File>>,
    pub count: u64,
}

impl RejectLog {
    /// A log for the source with this SHA-256; nothing is created until the first line.
    pub fn new(lake: &Path, sha256: &str) -> Self {
        let dir = lake.join(super::REJECTED_DIR);
        RejectLog {
            tmp: dir.join(format!(".{sha256}.ndjson.tmp")),
            path: dir.join(format!("{sha256}.ndjson")),
            out: None,
            count: 0,
        }
    }

    pub fn write(&mut self, r: &Rejected) -> Result<()> {
        if self.out.is_none() {
            let dir = self.path.parent().expect("rejects file has a directory");
            std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
            let f = File::create(&self.tmp).map_err(|e| Error::io(&self.tmp, e))?;
            self.out = Some(BufWriter::new(f));
        }
        let out = self.out.as_mut().expect("opened above");
        serde_json::to_writer(&mut *out, r)?;
        out.write_all(b"\n").map_err(|e| Error::io(&self.tmp, e))?;
        self.count += 1;
        Ok(())
    }

    /// Publishes the file (if anything was written). Returns its path relative to the lake.
    pub fn finish(mut self) -> Result<Option<String>> {
        let Some(out) = self.out.take() else {
            // A rerun that rejects nothing replaces an older file.
            let _ = std::fs::remove_file(&self.path);
            return Ok(None);
        };
        out.into_inner()
            .map_err(|e| Error::io(&self.tmp, e.into_error()))?;
        std::fs::rename(&self.tmp, &self.path).map_err(|e| Error::io(&self.path, e))?;
        Ok(Some(format!(
            "{}/{}",
            super::REJECTED_DIR,
            self.path.file_name().unwrap_or_default().to_string_lossy()
        )))
    }
}
