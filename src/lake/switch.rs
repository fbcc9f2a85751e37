//! The file switch of compaction: `<lake>/_ledger/compaction/switches.json`, one
//! small manifest saying which files of a partition are on their way out and which
//! merged file is on its way in, and the rule every reader applies to a listing with it.
//!
//! A directory listing cannot change from the old files to the new one in one step on
//! any store, so the manifest does it instead: one PUT switches every partition of a
//! compaction from its old files to its merged file. The rule, for a listing taken
//! *before* the manifest is read:
//! - a `pending` switch hides its merged file (being written, or written and not live yet);
//! - a `switched` or `done` switch hides the files it replaces and adds its merged file
//!   (written before the switch, so it exists) when the listing missed it.
//!
//! Since the old files are deleted only after the switch, a listing taken before it
//! holds them all; and a merged file written before it is hidden. So a reader plans
//! with all of a partition's old files or with its merged file, never both, never
//! neither. See [`crate::compact`] for the order of the steps.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::ledger::FileRecord;
use super::store::LakeStore;
use crate::{Error, Result};

/// Where the manifest lives (below the ledger, in a directory that `ledger::load` skips).
pub const SWITCHES: &str = "_ledger/compaction/switches.json";

/// How far a partition's compaction got.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// Planned; its merged file may be written, and is not live.
    Pending,
    /// The merged file is live, the replaced files are not (they may still be there).
    Switched,
    /// The replaced files are deleted; kept a while for readers that listed before.
    Done,
}

/// One partition's compaction.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Switch {
    /// The partition directory, relative to the lake root.
    pub partition: String,
    /// The merged file, relative to the lake root.
    pub merged: String,
    /// The files it replaces, relative to the lake root.
    pub replaced: Vec<String>,
    pub state: State,
    /// The merged file as written (size, SHA-256, rows), once it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merged_record: Option<FileRecord>,
    /// RFC 3339, when the switch was made.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub switched_at: Option<String>,
    /// RFC 3339, when the replaced files were deleted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub done_at: Option<String>,
}

/// The manifest: every compaction in flight (and recently done).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Switches {
    pub switches: Vec<Switch>,
}

impl Switches {
    /// Reads the manifest (empty when there is none).
    pub async fn load(store: &LakeStore) -> Result<Switches> {
        match store.get(SWITCHES).await? {
            None => Ok(Switches::default()),
            Some(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
                Error::Usage(format!(
                    "{}: unreadable compaction manifest: {e}",
                    store.show(SWITCHES)
                ))
            }),
        }
    }

    /// Writes the manifest in one PUT (refused once the lake lock is lost).
    pub async fn save(&self, store: &LakeStore) -> Result<()> {
        store
            .put(
                SWITCHES,
                bytes::Bytes::from(serde_json::to_vec_pretty(self)?),
            )
            .await
    }

    /// Files a reader must leave out of a listing, relative to the lake root.
    pub fn hidden(&self) -> BTreeSet<&str> {
        let mut out = BTreeSet::new();
        for s in &self.switches {
            match s.state {
                State::Pending => {
                    out.insert(s.merged.as_str());
                }
                State::Switched | State::Done => out.extend(s.replaced.iter().map(String::as_str)),
            }
        }
        out
    }

    /// Merged files that are live (a reader adds them when its listing missed them).
    pub fn live_merged(&self) -> Vec<&str> {
        let hidden = self.hidden();
        self.switches
            .iter()
            .filter(|s| s.state != State::Pending && !hidden.contains(s.merged.as_str()))
            .map(|s| s.merged.as_str())
            .collect()
    }

    /// Applies the rule to a listing of one partition directory `rel` (names relative to
    /// the lake root, with sizes): hidden files out, live merged files in.
    /// `size_of` gives the size of a merged file the listing missed (`None`: gone).
    pub async fn apply<F, Fut>(
        &self,
        rel: &str,
        listed: Vec<(String, u64)>,
        size_of: F,
    ) -> Result<Vec<(String, u64)>>
    where
        F: Fn(String) -> Fut,
        Fut: std::future::Future<Output = Result<Option<u64>>>,
    {
        if self.switches.is_empty() {
            return Ok(listed);
        }
        let hidden = self.hidden();
        let mut out: BTreeMap<String, u64> = listed
            .into_iter()
            .filter(|(p, _)| !hidden.contains(p.as_str()))
            .collect();
        let prefix = format!("{}/", rel.trim_end_matches('/'));
        for m in self.live_merged() {
            if m.starts_with(&prefix) && !out.contains_key(m) {
                if let Some(size) = size_of(m.to_string()).await? {
                    out.insert(m.to_string(), size);
                }
            }
        }
        Ok(out.into_iter().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sw(state: State) -> Switches {
        Switches {
            switches: vec![Switch {
                partition: "events/t/d".into(),
                merged: "events/t/d/compact-1.parquet".into(),
                replaced: vec!["events/t/d/a.parquet".into(), "events/t/d/b.parquet".into()],
                state,
                merged_record: None,
                switched_at: None,
                done_at: None,
            }],
        }
    }

    fn run(s: &Switches, listed: &[&str]) -> Vec<String> {
        let listed = listed
            .iter()
            .map(|p| (format!("events/t/d/{p}"), 1))
            .collect();
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(s.apply("events/t/d", listed, |_| async { Ok(Some(1)) }))
            .unwrap()
            .into_iter()
            .map(|(p, _)| p.rsplit('/').next().unwrap().to_string())
            .collect()
    }

    #[test]
    fn a_reader_sees_the_old_files_or_the_merged_one_never_both() {
        let all = ["a.parquet", "b.parquet", "compact-1.parquet"];
        // Pending: the merged file, written or not, stays out.
        assert_eq!(run(&sw(State::Pending), &all), ["a.parquet", "b.parquet"]);
        assert_eq!(
            run(&sw(State::Pending), &all[..2]),
            ["a.parquet", "b.parquet"]
        );
        // Switched: the old files are out, the merged file in, listed or not.
        for state in [State::Switched, State::Done] {
            assert_eq!(run(&sw(state), &all), ["compact-1.parquet"]);
            assert_eq!(run(&sw(state), &all[..2]), ["compact-1.parquet"]);
            assert_eq!(
                run(&sw(state), &["compact-1.parquet"]),
                ["compact-1.parquet"]
            );
        }
        // Files the switch does not know stay as they are.
        assert_eq!(
            run(&sw(State::Switched), &["c.parquet", "a.parquet"]),
            ["c.parquet", "compact-1.parquet"]
        );
    }
}
