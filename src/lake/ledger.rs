//! `<lake>/_ledger/`: one JSON entry per converted source (name, size,
//! SHA-256, members, counts, time range, files), written after the source's
//! rows are in the lake. It lets a rerun skip what is done and `status` say
//! what the lake holds.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Incomplete {
    pub offset: u64,
    pub reason: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct MemberEntry {
    pub name: String,
    pub records_read: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incomplete: Option<Incomplete>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct LedgerEntry {
    pub name: String,
    pub size: u64,
    pub sha256: String,
    pub members: Vec<MemberEntry>,
    pub records_read: u64,
    pub written: u64,
    pub duplicates: u64,
    pub rejected: u64,
    pub time_min: Option<String>,
    pub time_max: Option<String>,
    /// Lake files holding this source's new rows (a file may hold several sources' rows).
    pub files: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rejects_file: Option<String>,
    pub converted_at: String,
    pub auditlake_version: String,
}

fn entry_path(lake: &Path, sha256: &str) -> std::path::PathBuf {
    lake.join(super::LEDGER_DIR).join(format!("{sha256}.json"))
}

/// Whether a source with this SHA-256 was converted already.
pub fn contains(lake: &Path, sha256: &str) -> bool {
    entry_path(lake, sha256).is_file()
}

/// Writes an entry atomically.
pub fn write(lake: &Path, entry: &LedgerEntry) -> Result<()> {
    let path = entry_path(lake, &entry.sha256);
    let dir = path.parent().expect("ledger entry has a directory");
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let tmp = dir.join(format!(".{}.json.tmp", entry.sha256));
    std::fs::write(&tmp, serde_json::to_vec_pretty(entry)?).map_err(|e| Error::io(&tmp, e))?;
    std::fs::rename(&tmp, &path).map_err(|e| Error::io(&path, e))?;
    crate::testhook::point("ledger");
    Ok(())
}

/// All entries, oldest conversion first.
pub fn load(lake: &Path) -> Result<Vec<LedgerEntry>> {
    let dir = lake.join(super::LEDGER_DIR);
    let mut out = Vec::new();
    let rd = match std::fs::read_dir(&dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(Error::io(&dir, e)),
    };
    for e in rd {
        let e = e.map_err(|e| Error::io(&dir, e))?;
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') || !name.ends_with(".json") {
            continue;
        }
        let bytes = std::fs::read(e.path()).map_err(|err| Error::io(&e.path(), err))?;
        let entry: LedgerEntry = serde_json::from_slice(&bytes).map_err(|err| Error::Source {
            path: e.path(),
            reason: format!("unreadable ledger entry: {err}"),
        })?;
        out.push(entry);
    }
    out.sort_by(|a, b| (&a.converted_at, &a.name).cmp(&(&b.converted_at, &b.name)));
    Ok(out)
}
