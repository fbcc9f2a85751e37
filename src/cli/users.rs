//! `auditlake users`: who may connect to `auditlake serve`, and which tenants each sees.

use std::path::PathBuf;
use std::process::ExitCode;

use super::common::Global;
use super::config;
use super::EXIT_OK;
use crate::serve::scram::Verifier;
use crate::serve::users::{valid_name, User, Users};
use crate::{Error, Result};

/// Manage the users of `auditlake serve`: SCRAM-SHA-256 verifiers, never passwords.
///
/// A user with --tenant sees only those tenants' rows (the scoping of `query --tenant`);
/// a user without is an administrator of the whole lake.
///
/// Examples:
///   auditlake users add grafana --tenant acme        # asks for the password
///   printf '%s\n' "$PW" | auditlake users add soc    # password from stdin
///   auditlake users list
///   auditlake users remove grafana
#[derive(clap::Args, Debug)]
#[command(verbatim_doc_comment)]
pub struct UsersArgs {
    #[command(subcommand)]
    pub action: UsersAction,
    #[command(flatten)]
    pub file: UsersFileArg,
}

#[derive(clap::Subcommand, Debug)]
pub enum UsersAction {
    /// Add a user, or set a user's password and tenants again. The password is read
    /// from the terminal (twice, not echoed), or as the first line of stdin.
    Add {
        /// The name clients log in with (letters, digits, _ . - @).
        name: String,
        /// A tenant whose rows the user sees (repeatable); none: every tenant.
        #[arg(long = "tenant", value_name = "TENANT")]
        tenants: Vec<String>,
    },
    /// List the users and their tenants.
    List,
    /// Remove a user (connections already open stay open).
    Remove { name: String },
}

/// Where the users are kept.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct UsersFileArg {
    /// The users file (default: the config file's `users`, else users.toml beside the
    /// config file).
    #[arg(long, env = "AUDITLAKE_USERS", value_name = "FILE", global = true)]
    pub users: Option<PathBuf>,
}

impl UsersFileArg {
    /// The file in force, and whether it was named (flag, environment or config) rather
    /// than the default beside the config file.
    pub fn path(&self, cfg: &config::Config) -> Option<(PathBuf, bool)> {
        if let Some(p) = self.users.clone().or_else(|| cfg.settings.users.clone()) {
            return Some((p, true));
        }
        cfg.path
            .clone()
            .or_else(config::default_path)
            .and_then(|p| p.parent().map(|d| (d.join("users.toml"), false)))
    }
}

/// Reads a password from the terminal (asked twice) or stdin's first line.
fn read_password(name: &str) -> Result<String> {
    use std::io::IsTerminal;
    let password = if std::io::stdin().is_terminal() {
        let first = rpassword::prompt_password(format!("password for {name}: "))
            .map_err(|e| Error::Usage(format!("cannot read the password: {e}")))?;
        let again = rpassword::prompt_password("again: ")
            .map_err(|e| Error::Usage(format!("cannot read the password: {e}")))?;
        if first != again {
            return Err(Error::Usage(
                "the passwords do not match; nothing changed".into(),
            ));
        }
        first
    } else {
        let mut line = String::new();
        std::io::stdin()
            .read_line(&mut line)
            .map_err(|e| Error::Usage(format!("cannot read the password from stdin: {e}")))?;
        line.trim_end_matches(['\r', '\n']).to_string()
    };
    if password.len() < 8 {
        return Err(Error::Usage(
            "the password is shorter than 8 characters; nothing changed".into(),
        ));
    }
    Ok(password)
}

pub fn run(args: UsersArgs, global: &Global) -> Result<ExitCode> {
    let cfg = global.load_config()?;
    let (path, _) = args.file.path(&cfg).ok_or_else(|| {
        Error::Usage("no users file: give --users FILE (no config directory to put it in)".into())
    })?;
    match args.action {
        UsersAction::Add { name, tenants } => {
            if !valid_name(&name) {
                return Err(Error::Usage(format!(
                    "{name:?} is not a user name (letters, digits, _ . - @; at most 63)"
                )));
            }
            let mut users = Users::load(&path, true)?;
            let password = read_password(&name)?;
            let verifier = Verifier::new(&password).map_err(Error::Usage)?.encode();
            let again = users.users.contains_key(&name);
            users.users.insert(
                name.clone(),
                User {
                    verifier,
                    tenants: tenants.clone(),
                },
            );
            users.save(&path)?;
            let scope = if tenants.is_empty() {
                "every tenant".to_string()
            } else {
                format!("tenants {}", tenants.join(", "))
            };
            crate::notes::note(&format!(
                "{} user {name} ({scope}) in {}",
                if again { "updated" } else { "added" },
                path.display()
            ));
        }
        UsersAction::List => {
            let users = Users::load(&path, true)?;
            let mut out = crate::stdout::lock();
            use std::io::Write;
            for (name, u) in &users.users {
                let scope = if u.tenants.is_empty() {
                    "(every tenant)".to_string()
                } else {
                    u.tenants.join(",")
                };
                writeln!(out, "{name}\t{scope}")
                    .map_err(|e| Error::io(std::path::Path::new("<stdout>"), e))?;
            }
        }
        UsersAction::Remove { name } => {
            let mut users = Users::load(&path, false)?;
            if users.users.remove(&name).is_none() {
                return Err(Error::Usage(format!(
                    "no user {name:?} in {}; nothing changed",
                    path.display()
                )));
            }
            users.save(&path)?;
            crate::notes::note(&format!("removed user {name} from {}", path.display()));
        }
    }
    Ok(ExitCode::from(EXIT_OK))
}
