//! `<lake>/_ledger/`: one JSON entry per converted source (name, size,
//! SHA-256, members, counts, time range, files with their size, SHA-256 and
//! rows), written after the source's rows are in the lake. It lets a rerun
//! skip what is done, `status` say what the lake holds and `verify` check
//! the files against it.

use serde::{Deserialize, Serialize};

use super::store::LakeStore;
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
    /// Zip entries that hold no export (directories, macOS metadata), skipped.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub skipped_entries: Vec<String>,
    /// The same files with their size, SHA-256 and rows. Entries written before
    /// auditlake recorded them have none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub file_details: Vec<FileRecord>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rejects_file: Option<String>,
    pub converted_at: String,
    pub auditlake_version: String,
}

/// A lake file as it was written.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct FileRecord {
    /// Path relative to the lake root, with `/` separators.
    pub path: String,
    pub bytes: u64,
    /// SHA-256 of the file's bytes, lowercase hex.
    pub sha256: String,
    /// Rows in the file, of every source it holds (the entry's own count is `written`).
    pub rows: u64,
}

impl LedgerEntry {
    /// An entry for a source about to be converted: nothing counted yet.
    pub fn new(name: String, size: u64, sha256: String) -> LedgerEntry {
        LedgerEntry {
            name,
            size,
            sha256,
            members: vec![],
            records_read: 0,
            written: 0,
            duplicates: 0,
            rejected: 0,
            time_min: None,
            time_max: None,
            files: vec![],
            file_details: vec![],
            skipped_entries: vec![],
            rejects_file: None,
            converted_at: String::new(),
            auditlake_version: env!("CARGO_PKG_VERSION").into(),
        }
    }
}

impl FileRecord {
    /// Describes a file already in the lake: its size, SHA-256 and rows (from its footer).
    pub async fn of_lake_file(store: &LakeStore, rel: &str) -> Result<FileRecord> {
        use sha2::{Digest, Sha256};
        let bytes = store
            .get(rel)
            .await?
            .ok_or_else(|| Error::Usage(format!("{}: no such file", store.show(rel))))?;
        let meta = parquet::file::metadata::ParquetMetaDataReader::new()
            .parse_and_finish(&bytes)
            .map_err(|e| Error::parquet(std::path::Path::new(&store.show(rel)), e))?;
        Ok(FileRecord {
            path: rel.to_string(),
            bytes: bytes.len() as u64,
            sha256: Sha256::digest(&bytes)
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect(),
            rows: meta.file_metadata().num_rows() as u64,
        })
    }
}

fn entry_rel(sha256: &str) -> String {
    format!("{}/{sha256}.json", super::LEDGER_DIR)
}

/// Whether a source with this SHA-256 was converted already.
pub async fn contains(store: &LakeStore, sha256: &str) -> Result<bool> {
    Ok(store.get(&entry_rel(sha256)).await?.is_some())
}

/// An entry as the record a chain event commits to (its path and bytes).
pub fn entry_record(entry: &LedgerEntry) -> Result<(String, bytes::Bytes)> {
    Ok((
        entry_rel(&entry.sha256),
        bytes::Bytes::from(serde_json::to_vec_pretty(entry)?),
    ))
}

/// Writes entries as one event of the lake's chain, then each entry (one PUT each:
/// atomic; refused once the lake lock is lost), calling the test point `point` after each.
pub async fn write(
    store: &LakeStore,
    kind: &'static str,
    entries: &[LedgerEntry],
    files_removed: Vec<String>,
    why: Option<String>,
    point: &str,
) -> Result<()> {
    let records = entries
        .iter()
        .map(entry_record)
        .collect::<Result<Vec<_>>>()?;
    super::chain::publish(
        store,
        super::chain::Change {
            kind,
            records,
            files_removed,
            why,
        },
        point,
    )
    .await
}

/// All entries, oldest conversion first.
pub async fn load(store: &LakeStore) -> Result<Vec<LedgerEntry>> {
    let mut out = Vec::new();
    for (name, _) in store.list_files(super::LEDGER_DIR).await? {
        if !name.ends_with(".json") {
            continue;
        }
        let rel = format!("{}/{name}", super::LEDGER_DIR);
        let Some(bytes) = store.get(&rel).await? else {
            continue;
        };
        let entry: LedgerEntry = serde_json::from_slice(&bytes).map_err(|err| {
            Error::Usage(format!(
                "{}: unreadable ledger entry: {err}",
                store.show(&rel)
            ))
        })?;
        out.push(entry);
    }
    out.sort_by(|a, b| (&a.converted_at, &a.name).cmp(&(&b.converted_at, &b.name)));
    Ok(out)
}

/// Where `fetch` records the windows it got from the DPoD API: one file per window,
/// below the ledger (old readers, which list `_ledger/` alone, never see them).
pub const WINDOWS_DIR: &str = "_ledger/windows";

/// One window fetched from the DPoD export API, written after its source's entry:
/// what was asked (API, filters, time range), the job that answered, and the source
/// its rows came from (by SHA-256; two windows may bring the same bytes).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct WindowRecord {
    /// The API base URL, as shown (no credentials, no query string).
    pub api: String,
    /// The query's filters by their API names (`source`, `resourceId`, ...).
    #[serde(default)]
    pub filters: std::collections::BTreeMap<String, String>,
    /// RFC 3339, whole seconds, UTC; the window is `[from, to)`.
    pub from: String,
    pub to: String,
    pub job_id: String,
    /// The ledger name of the source the window's export became.
    pub source: String,
    pub source_sha256: String,
    pub size: u64,
    pub records_read: u64,
    pub written: u64,
    pub duplicates: u64,
    pub rejected: u64,
    pub fetched_at: String,
    pub auditlake_version: String,
}

impl WindowRecord {
    /// The file name of a window: the SHA-256 of what was asked, so asking again overwrites.
    fn rel(&self) -> String {
        use sha2::{Digest, Sha256};
        let key = serde_json::json!([self.api, self.filters, self.from, self.to]).to_string();
        let h: String = Sha256::digest(key.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        format!("{WINDOWS_DIR}/{h}.json")
    }
}

/// Records a fetched window (an event of the lake's chain, then one PUT; refused once
/// the lake lock is lost).
pub async fn write_window(store: &LakeStore, w: &WindowRecord) -> Result<()> {
    let record = (w.rel(), bytes::Bytes::from(serde_json::to_vec_pretty(w)?));
    let why = Some(format!(
        "{} from {} to {} (job {})",
        w.api, w.from, w.to, w.job_id
    ));
    super::chain::publish(
        store,
        super::chain::Change {
            kind: "fetch",
            records: vec![record],
            files_removed: vec![],
            why,
        },
        "fetch-window",
    )
    .await
}

/// Every fetched window, in time order.
pub async fn load_windows(store: &LakeStore) -> Result<Vec<WindowRecord>> {
    let mut out = Vec::new();
    for (name, _) in store.list_files(WINDOWS_DIR).await? {
        if !name.ends_with(".json") {
            continue;
        }
        let rel = format!("{WINDOWS_DIR}/{name}");
        let Some(bytes) = store.get(&rel).await? else {
            continue;
        };
        let w: WindowRecord = serde_json::from_slice(&bytes).map_err(|err| {
            Error::Usage(format!(
                "{}: unreadable window record: {err}",
                store.show(&rel)
            ))
        })?;
        out.push(w);
    }
    out.sort_by(|a, b| (&a.api, &a.from, &a.to).cmp(&(&b.api, &b.from, &b.to)));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_from_before_file_details_still_read() {
        let old = r#"{
          "name": "a.zip", "size": 10, "sha256": "ab", "members": [],
          "records_read": 3, "written": 3, "duplicates": 0, "rejected": 0,
          "time_min": null, "time_max": null,
          "files": ["events/tenant_id=t/day=2025-01-01/part-1-00001.parquet"],
          "converted_at": "2025-01-02T00:00:00Z", "auditlake_version": "0.1.0"
        }"#;
        let e: LedgerEntry = serde_json::from_str(old).unwrap();
        assert_eq!(e.files.len(), 1);
        assert!(e.file_details.is_empty());

        let mut new = e.clone();
        new.file_details.push(FileRecord {
            path: e.files[0].clone(),
            bytes: 1234,
            sha256: "00".repeat(32),
            rows: 3,
        });
        let text = serde_json::to_string(&new).unwrap();
        assert_eq!(serde_json::from_str::<LedgerEntry>(&text).unwrap(), new);
    }
}
