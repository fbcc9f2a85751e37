//! Acknowledgements: findings a person has looked at, with who, when, why and until when.
//!
//! They live in a TOML file (`--acks FILE`, `$AUDITLAKE_ACKS`, the config key `acks`, else
//! `acks.toml` beside the config file) written by `auditlake findings ack`. A finding whose
//! id has an ack in force is listed under "acknowledged" and does not count for
//! `--fail-on`; once its `until` day has passed, the finding is back.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::findings::Finding;
use crate::{Error, Result};

/// One acknowledgement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ack {
    /// The finding's id, as reports print it.
    pub id: String,
    /// Why it needs no more attention.
    pub reason: String,
    /// Who acknowledged it.
    pub by: String,
    /// When (UTC, RFC 3339).
    pub at: String,
    /// Last day (UTC, inclusive) the ack holds; none: for good.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<String>,
    /// The finding's kind and tenant when it was acknowledged, for whoever reads the file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant_id: Option<String>,
}

/// The file's contents.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Acks {
    #[serde(default, rename = "ack")]
    pub acks: Vec<Ack>,
}

const HEADER: &str = "# auditlake acknowledgements: findings triaged by a person (written by \
`auditlake findings ack`).\n# An ack keeps its finding out of --fail-on until the day after `until`.\n\n";

/// Whether `id` looks like a finding id (16 hex digits).
pub fn valid_id(id: &str) -> bool {
    id.len() == 16 && id.bytes().all(|b| b.is_ascii_hexdigit())
}

impl Acks {
    /// Reads the file; a file that does not exist yet holds no acks.
    pub fn load(path: &Path) -> Result<Acks> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Acks::default()),
            Err(e) => return Err(Error::io(path, e)),
        };
        toml::from_str(&text)
            .map_err(|e| Error::Usage(format!("{}: {}", path.display(), e.message())))
    }

    /// Writes the file whole (a temporary file renamed over it: a reader never sees half).
    pub fn save(&self, path: &Path) -> Result<()> {
        let body = toml::to_string(self).map_err(|e| Error::Usage(format!("acks: {e}")))?;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        }
        let tmp = path.with_extension("toml.tmp");
        std::fs::write(&tmp, format!("{HEADER}{body}")).map_err(|e| Error::io(&tmp, e))?;
        std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e))
    }

    /// Adds `ack`, replacing an earlier one of the same finding.
    pub fn add(&mut self, ack: Ack) {
        self.acks.retain(|a| a.id != ack.id);
        self.acks.push(ack);
    }

    /// Marks each finding with the ack in force on `today` (`YYYY-MM-DD`); a finding whose
    /// ack has expired stays active, and its reason says so.
    pub fn apply(&self, findings: &mut [Finding], today: &str) {
        for f in findings.iter_mut() {
            let Some(a) = self.acks.iter().rev().find(|a| a.id == f.id) else {
                continue;
            };
            match &a.until {
                Some(until) if until.as_str() < today => f.reason.push_str(&format!(
                    " (acknowledged by {} on {}, until {until}: expired)",
                    a.by,
                    a.at.get(..10).unwrap_or(&a.at)
                )),
                _ => f.acknowledged = Some(a.clone()),
            }
        }
    }
}
