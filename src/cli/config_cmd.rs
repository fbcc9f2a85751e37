//! `auditlake config show`: the settings in force and where each came from, secrets
//! masked (the config file itself is read in `config.rs`).

use std::process::ExitCode;

use clap::Subcommand;

use super::common::{Global, LakeArg};
use super::{config, EXIT_OK};
use crate::Result;

/// The config file: `auditlake config show` prints the settings in force.
///
/// Precedence: flags, then the environment (AUDITLAKE_LAKE), then the file (a
/// profile's keys over the top level's). Example config.toml:
///   lake = "/data/lake"
///   [profiles.prod]
///   lake = "s3://acme-audit-lake/dpod"
///   storage_options = { aws_region = "eu-west-1" }
#[derive(clap::Args, Debug)]
pub struct ConfigCmdArgs {
    #[command(subcommand)]
    pub action: ConfigAction,
}

#[derive(Subcommand, Debug)]
pub enum ConfigAction {
    /// Print the settings in force (secrets masked) and where each came from.
    Show {
        #[command(flatten)]
        lake: LakeArg,
    },
}

/// Prints the settings in force.
pub fn run(args: ConfigCmdArgs, global: &Global) -> Result<ExitCode> {
    let ConfigAction::Show { lake } = args.action;
    let cfg = global.load_config()?;
    crate::write_stdout(&show_config(&cfg, lake))?;
    Ok(ExitCode::from(EXIT_OK))
}

/// `config show`: each setting in force, where it came from, secrets masked.
fn show_config(cfg: &config::Config, mut lake: LakeArg) -> String {
    let from_file = match &cfg.profile {
        Some(p) => format!("config file, profile {p}"),
        None => "config file".into(),
    };
    let lake_from = match &lake.lake {
        Some(_) if std::env::args().any(|a| a == "--lake" || a.starts_with("--lake=")) => "flag",
        Some(_) => "environment: AUDITLAKE_LAKE",
        None => from_file.as_str(),
    };
    let flag_keys: Vec<String> = lake
        .storage_options
        .iter()
        .map(|(k, _)| k.clone())
        .collect();
    let resolved = lake.resolve(cfg).is_ok();
    let mut out = format!(
        "config file: {}\nprofile: {}\n",
        cfg.path
            .as_ref()
            .map_or("(none)".into(), |p| p.display().to_string()),
        cfg.profile.as_deref().unwrap_or("(none)")
    );
    if resolved {
        out.push_str(&format!(
            "lake: {} ({lake_from})\n",
            config::shown("lake", lake.location())
        ));
    } else {
        out.push_str("lake: (none)\n");
    }
    for (k, v) in &lake.storage_options {
        let from = if flag_keys.contains(k) {
            "flag"
        } else {
            from_file.as_str()
        };
        out.push_str(&format!(
            "storage option {k}: {} ({from})\n",
            config::shown(k, v)
        ));
    }
    let s = &cfg.settings;
    for (k, v) in [
        ("cluster", s.cluster.clone()),
        ("dpod_api_url", s.dpod_api_url.clone()),
        ("dpod_token_url", s.dpod_token_url.clone()),
        (
            "secret_file",
            s.secret_file.as_ref().map(|p| p.display().to_string()),
        ),
        (
            "signing_key",
            s.signing_key.as_ref().map(|p| p.display().to_string()),
        ),
        ("acks", s.acks.as_ref().map(|p| p.display().to_string())),
    ] {
        if let Some(v) = v {
            out.push_str(&format!(
                "{k}: {} ({from_file}{})\n",
                config::shown(k, &v),
                if k == "cluster" {
                    "; reserved, not used yet"
                } else {
                    ""
                }
            ));
        }
    }
    out
}
