//! `<lake>/_ledger/`: one JSON entry per converted source (name, size,
//! SHA-256, members, counts, time range, files), written after the source's
//! rows are in the lake. It lets a rerun skip what is done and `status` say
//! what the lake holds.

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
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rejects_file: Option<String>,
    pub converted_at: String,
    pub auditlake_version: String,
}

fn entry_rel(sha256: &str) -> String {
    format!("{}/{sha256}.json", super::LEDGER_DIR)
}

/// Whether a source with this SHA-256 was converted already.
pub async fn contains(store: &LakeStore, sha256: &str) -> Result<bool> {
    Ok(store.get(&entry_rel(sha256)).await?.is_some())
}

/// Writes an entry (one PUT: atomic; refused once the lake lock is lost).
pub async fn write(store: &LakeStore, entry: &LedgerEntry) -> Result<()> {
    store
        .put(
            &entry_rel(&entry.sha256),
            bytes::Bytes::from(serde_json::to_vec_pretty(entry)?),
        )
        .await?;
    crate::testhook::point("ledger");
    Ok(())
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
