//! The config file: a default lake, storage options and named lake profiles, the
//! `[rules]` of findings, plus keys kept for later commands. Flags win over the environment, which wins over it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::{Error, Result};

/// A lake and how to reach it: the file's top level, or one `[profiles.NAME]`.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LakeSettings {
    pub lake: Option<String>,
    #[serde(default)]
    pub storage_options: BTreeMap<String, String>,
    /// Reserved: a Ballista scheduler, `df://host:port`.
    pub cluster: Option<String>,
    /// Reserved: the DPoD API for `fetch`.
    pub dpod_api_url: Option<String>,
    /// Reserved: where `fetch` gets its OAuth token.
    pub dpod_token_url: Option<String>,
    /// Reserved: a file holding the DPoD client secret (secrets never live in here).
    pub secret_file: Option<PathBuf>,
    /// The Ed25519 key file with which writing commands sign the lake's chain.
    pub signing_key: Option<PathBuf>,
    /// The acknowledgements of findings (`auditlake findings ack` writes it).
    pub acks: Option<PathBuf>,
    /// `serve`'s users file (`auditlake users` writes it).
    pub users: Option<PathBuf>,
    /// Where `serve` listens, HOST:PORT.
    pub listen: Option<String>,
    /// `serve`'s certificate chain and key (PEM).
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
}

/// `config.toml` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    #[serde(flatten)]
    pub default: LakeSettings,
    #[serde(default)]
    pub profiles: BTreeMap<String, LakeSettings>,
    /// The rules of findings (the same keys as a `--rules` file).
    pub rules: Option<crate::report::rules::Rules>,
}

/// The config in force: where it came from and the profile chosen.
#[derive(Debug, Default)]
pub struct Config {
    /// The file read, if there was one.
    pub path: Option<PathBuf>,
    pub profile: Option<String>,
    pub settings: LakeSettings,
    /// The file's `[rules]`, when it has one.
    pub rules: Option<crate::report::rules::Rules>,
    /// The same as written, for a `--rules` file to be laid over key by key.
    pub rules_table: Option<toml::Table>,
}

/// `--config FILE`, else `$XDG_CONFIG_HOME/auditlake/config.toml`, else
/// `~/.config/auditlake/config.toml`.
pub fn default_path() -> Option<PathBuf> {
    let base = match std::env::var_os("XDG_CONFIG_HOME").filter(|v| !v.is_empty()) {
        Some(x) => PathBuf::from(x),
        None => PathBuf::from(std::env::var_os("HOME")?).join(".config"),
    };
    Some(base.join("auditlake").join("config.toml"))
}

impl Config {
    /// Reads the file (`explicit` must exist; the default one may be missing) and picks
    /// `profile`, whose keys are laid over the top level's.
    pub fn load(explicit: Option<&Path>, profile: Option<&str>) -> Result<Config> {
        let path = match explicit {
            Some(p) => Some(p.to_path_buf()),
            None => default_path().filter(|p| p.is_file()),
        };
        let (file, rules_table) = match &path {
            Some(p) => {
                let text = std::fs::read_to_string(p).map_err(|e| Error::io(p, e))?;
                let file = toml::from_str::<ConfigFile>(&text)
                    .map_err(|e| Error::Usage(format!("{}: {}", p.display(), e.message())))?;
                let table = toml::from_str::<toml::Table>(&text)
                    .ok()
                    .and_then(|mut t| t.remove("rules"))
                    .and_then(|r| match r {
                        toml::Value::Table(t) => Some(t),
                        _ => None,
                    });
                (file, table)
            }
            None => (ConfigFile::default(), None),
        };
        let mut settings = file.default;
        if let Some(name) = profile {
            let p = file.profiles.get(name).ok_or_else(|| {
                Error::Usage(format!(
                    "no profile {name:?} in {} (profiles: {})",
                    path.as_ref()
                        .map_or("the config (no file)".into(), |p| p.display().to_string()),
                    file.profiles.keys().cloned().collect::<Vec<_>>().join(", ")
                ))
            })?;
            let p = p.clone();
            settings.lake = p.lake.or(settings.lake);
            settings.storage_options.extend(p.storage_options);
            settings.cluster = p.cluster.or(settings.cluster);
            settings.dpod_api_url = p.dpod_api_url.or(settings.dpod_api_url);
            settings.dpod_token_url = p.dpod_token_url.or(settings.dpod_token_url);
            settings.secret_file = p.secret_file.or(settings.secret_file);
            settings.signing_key = p.signing_key.or(settings.signing_key);
            settings.acks = p.acks.or(settings.acks);
            settings.users = p.users.or(settings.users);
            settings.listen = p.listen.or(settings.listen);
            settings.tls_cert = p.tls_cert.or(settings.tls_cert);
            settings.tls_key = p.tls_key.or(settings.tls_key);
        }
        tracing::debug!(path = ?path, profile = ?profile, "config");
        if let Some(r) = &file.rules {
            r.check().map_err(|e| {
                Error::Usage(format!(
                    "{}: [rules]: {e}",
                    path.as_ref()
                        .map_or("config".into(), |p| p.display().to_string())
                ))
            })?;
        }
        Ok(Config {
            path,
            profile: profile.map(str::to_string),
            settings,
            rules: file.rules,
            rules_table,
        })
    }
}

/// Whether a storage option holds a secret, shown masked.
pub fn is_secret(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    [
        "secret",
        "token",
        "password",
        "account_key",
        "sas",
        "service_account_key",
        "credential",
    ]
    .iter()
    .any(|w| k.contains(w))
        && !k.ends_with("_file")
        && !k.ends_with("_url")
}

/// A value as `config show` prints it: secrets masked, URLs without credentials.
pub fn shown(key: &str, value: &str) -> String {
    if is_secret(key) {
        return "****".into();
    }
    match url::Url::parse(value) {
        Ok(u) if u.password().is_some() || u.query().is_some() => crate::lake::store::redact(&u),
        _ => value.to_string(),
    }
}
