//! `auditlake keys generate`: an Ed25519 key pair for signing the lake's chain.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use super::common::Global;
use super::EXIT_OK;
use crate::lake::chain::Signer25519;
use crate::{Error, Result};

/// Make keys that sign the lake's chain.
///
/// `keys generate --out FILE` writes the private key to FILE (readable by its owner
/// only) and the public key to FILE.pub. Give the private key to the writing commands
/// (`--signing-key FILE`, $AUDITLAKE_SIGNING_KEY or the config file's signing_key);
/// give the public key to whoever checks the lake (`verify --public-key FILE.pub`).
#[derive(clap::Args, Debug)]
pub struct KeysArgs {
    #[command(subcommand)]
    pub action: KeysAction,
}

#[derive(clap::Subcommand, Debug)]
pub enum KeysAction {
    /// Write a new Ed25519 key pair: FILE (private) and FILE.pub (public).
    Generate {
        /// Where the private key goes; the public key goes beside it as FILE.pub.
        /// An existing file is never overwritten.
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
}

/// Generates a key pair.
pub fn run(args: KeysArgs, _global: &Global) -> Result<ExitCode> {
    let KeysAction::Generate { out } = args.action;
    let public = PathBuf::from(format!("{}.pub", out.display()));
    for p in [&out, &public] {
        if p.exists() {
            return Err(Error::Usage(format!(
                "{}: already there; a key is never overwritten (choose another --out)",
                p.display()
            )));
        }
    }
    let signer = Signer25519::generate()?;
    write_new(&out, &signer.secret_text(), 0o600)?;
    write_new(&public, &signer.public_text(), 0o644)?;
    crate::write_stdout(&format!(
        "private key: {} (keep it off the lake; only the writing commands need it)\npublic key: {}\n{}",
        out.display(),
        public.display(),
        signer.public_text()
    ))?;
    Ok(ExitCode::from(EXIT_OK))
}

fn write_new(path: &std::path::Path, text: &str, mode: u32) -> Result<()> {
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(mode);
    }
    #[cfg(not(unix))]
    let _ = mode;
    let mut f = o
        .open(path)
        .map_err(|e| Error::Usage(format!("{}: {e}", path.display())))?;
    f.write_all(text.as_bytes())
        .map_err(|e| Error::Usage(format!("{}: {e}", path.display())))
}
