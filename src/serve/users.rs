//! The users file of `auditlake serve`: who may connect, the SCRAM-SHA-256 verifier of
//! each one's password (never the password), and the tenants each one sees (none: an
//! administrator of the whole lake). TOML, written by `auditlake users`.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::scram::Verifier;
use crate::{Error, Result};

/// One user as the file keeps them.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct User {
    /// `SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>`.
    pub verifier: String,
    /// The tenants whose rows the user sees; empty: every tenant.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tenants: Vec<String>,
}

/// The whole file.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Users {
    #[serde(default)]
    pub users: BTreeMap<String, User>,
}

/// A user name clients can send: letters, digits and `_.-@`, at most 63 bytes (as
/// PostgreSQL's identifiers).
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.-@".contains(c))
}

impl Users {
    /// Reads the file; a missing file is an empty one when `missing_ok`.
    pub fn load(path: &Path, missing_ok: bool) -> Result<Users> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if missing_ok && e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(Users::default())
            }
            Err(e) => return Err(Error::io(path, e)),
        };
        let users: Users = toml::from_str(&text)
            .map_err(|e| Error::Usage(format!("{}: {}", path.display(), e.message())))?;
        for (name, u) in &users.users {
            Verifier::decode(&u.verifier)
                .map_err(|e| Error::Usage(format!("{}: user {name}: {e}", path.display())))?;
        }
        Ok(users)
    }

    /// Writes the file whole (a temporary file renamed over it), readable by its owner only.
    pub fn save(&self, path: &Path) -> Result<()> {
        let mut text = String::from(
            "# auditlake serve's users (written by `auditlake users`): SCRAM-SHA-256\n\
             # verifiers, never passwords. A user with tenants sees only their rows.\n\n",
        );
        text.push_str(
            &toml::to_string_pretty(self).map_err(|e| Error::Usage(format!("users file: {e}")))?,
        );
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        }
        let tmp = path.with_extension("toml.tmp");
        {
            use std::io::Write;
            let mut opts = std::fs::OpenOptions::new();
            opts.write(true).create(true).truncate(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
            let mut f = opts.open(&tmp).map_err(|e| Error::io(&tmp, e))?;
            f.write_all(text.as_bytes())
                .and_then(|_| f.sync_all())
                .map_err(|e| Error::io(&tmp, e))?;
        }
        std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e))
    }

    /// The user's verifier and tenants, if there is such a user.
    pub fn get(&self, name: &str) -> Option<(Verifier, &[String])> {
        let u = self.users.get(name)?;
        Some((Verifier::decode(&u.verifier).ok()?, &u.tenants))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_round_trips_without_the_password() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("users.toml");
        let mut users = Users::load(&path, true).unwrap();
        users.users.insert(
            "alice".into(),
            User {
                verifier: Verifier::new("s3cret-pw").unwrap().encode(),
                tenants: vec!["acme".into()],
            },
        );
        users.save(&path).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(!text.contains("s3cret-pw"));
        let back = Users::load(&path, false).unwrap();
        let (_, tenants) = back.get("alice").unwrap();
        assert_eq!(tenants, ["acme".to_string()]);
        assert!(back.get("bob").is_none());
        assert!(Users::load(&dir.path().join("none.toml"), false).is_err());
        assert!(valid_name("grafana_ro") && !valid_name("a b") && !valid_name(""));
    }
}
