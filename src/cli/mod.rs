//! The command line: the top-level parser and its global flags, the subcommands (one
//! module each, with its flags and its `run`), and the dispatch. `main` calls [`run`]
//! and turns its result into the exit code.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::Result;

mod common;
pub mod compact;
pub mod completions;
pub mod config;
pub mod config_cmd;
pub mod convert;
pub mod fetch;
pub mod findings;
pub mod generate;
pub mod inflate;
pub mod keys;
mod logging;
pub mod manpage;
pub mod prune;
pub mod query;
pub mod repl;
pub mod report;
pub mod rules;
pub mod serve;
pub mod status;
pub mod users;
pub mod verify;

pub use common::{ClusterArg, Global, LakeArg, RulesArgs, SessionArgs};
pub use config_cmd::ConfigAction;
pub use report::FailOn;
pub use rules::RulesAction;

/// Exit code for success.
pub const EXIT_OK: u8 = 0;
/// Exit code for findings (reports with `--fail-on-findings`, `verify`).
pub const EXIT_FINDINGS: u8 = 1;
/// Exit code for errors, including inputs that could not be fully read.
pub const EXIT_ERROR: u8 = 2;

#[derive(Parser, Debug)]
#[command(
    name = "auditlake",
    version,
    about = "Columnar analytics over HSM audit archives",
    long_about = "auditlake turns Thales DPoD (Luna Cloud HSM) audit exports, and the audit logs of \
AWS CloudHSM, Azure Key Vault and Managed HSM, Google Cloud KMS and HashiCorp Vault, into one \
Parquet lake partitioned by tenant and day, and answers auditors' questions over it.\n\n\
Typical use:\n  auditlake convert exports/ --lake ./lake\n  auditlake status --lake ./lake",
    after_help = "Exit codes: 0 ok, 1 findings (report --fail-on SEVERITY, verify), 2 error."
)]
pub struct Args {
    #[command(subcommand)]
    pub command: Command,
    /// Diagnostics on stderr: -v auditlake's info events, -vv debug (RUST_LOG, when set,
    /// chooses instead, e.g. RUST_LOG=auditlake=debug,datafusion=info).
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    /// No progress bar and no notes on stderr (errors and warnings still show).
    #[arg(short, long, global = true)]
    pub quiet: bool,
    /// The config file (default: $XDG_CONFIG_HOME/auditlake/config.toml, else
    /// ~/.config/auditlake/config.toml, when there is one).
    #[arg(long, global = true, env = "AUDITLAKE_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// A [profiles.NAME] of the config file: its lake and storage options.
    #[arg(long, global = true, env = "AUDITLAKE_PROFILE", value_name = "NAME")]
    pub profile: Option<String>,
}

/// The subcommands, in the order `--help` lists them. Each one's help text and flags
/// are those of its module's Args struct.
#[derive(Subcommand, Debug)]
pub enum Command {
    Convert(convert::ConvertArgs),
    Fetch(fetch::FetchArgs),
    Status(status::StatusArgs),
    Verify(verify::VerifyArgs),
    Compact(compact::CompactArgs),
    Prune(prune::PruneArgs),
    Query(query::QueryArgs),
    Repl(repl::ReplArgs),
    Report(report::ReportArgs),
    Findings(findings::FindingsArgs),
    Serve(serve::ServeArgs),
    Users(users::UsersArgs),
    Rules(rules::RulesCmdArgs),
    Completions(completions::CompletionsArgs),
    Manpage(manpage::ManpageArgs),
    Config(config_cmd::ConfigCmdArgs),
    Keys(keys::KeysArgs),
    #[command(hide = true)]
    Inflate(inflate::InflateArgs),
    Generate(generate::GenerateArgs),
}

impl Command {
    /// Whether the command runs SQL over the lake (and streams its files through a session).
    pub fn runs_sql(&self) -> bool {
        matches!(
            self,
            Command::Query(_)
                | Command::Repl(_)
                | Command::Report(_)
                | Command::Findings(_)
                | Command::Serve(_)
        )
    }

    /// The lake argument of a command that has one (`config show` resolves its own).
    fn lake_arg(&mut self) -> Option<&mut LakeArg> {
        match self {
            Command::Convert(a) => Some(&mut a.lake),
            Command::Fetch(a) => Some(&mut a.lake),
            Command::Status(a) => Some(&mut a.lake),
            Command::Verify(a) => Some(&mut a.lake),
            Command::Compact(a) => Some(&mut a.lake),
            Command::Prune(a) => Some(&mut a.lake),
            Command::Report(a) => Some(&mut a.period.lake),
            Command::Findings(a) if a.action.is_none() => Some(&mut a.period.lake),
            Command::Query(a) => Some(&mut a.session.lake),
            Command::Repl(a) => Some(&mut a.session.lake),
            Command::Serve(a) => Some(&mut a.lake),
            Command::Config(_)
            | Command::Findings(_)
            | Command::Rules(_)
            | Command::Users(_)
            | Command::Keys(_)
            | Command::Completions(_)
            | Command::Manpage(_)
            | Command::Inflate(_)
            | Command::Generate(_) => None,
        }
    }
}

/// Runs a parsed command line.
pub fn run(args: Args) -> Result<ExitCode> {
    logging::init(args.verbose);
    crate::notes::set_quiet(args.quiet);
    let Args {
        mut command,
        verbose: _,
        quiet,
        config,
        profile,
    } = args;
    let global = Global {
        quiet,
        config,
        profile,
    };
    if let Some(lake) = command.lake_arg() {
        lake.resolve(&global.load_config()?)?;
    }
    match command {
        Command::Convert(a) => convert::run(a, &global),
        Command::Fetch(a) => fetch::run(a, &global),
        Command::Status(a) => status::run(a, &global),
        Command::Verify(a) => verify::run(a, &global),
        Command::Compact(a) => compact::run(a, &global),
        Command::Prune(a) => prune::run(a, &global),
        Command::Query(a) => query::run(a, &global),
        Command::Repl(a) => repl::run(a, &global),
        Command::Report(a) => report::run(a, &global),
        Command::Findings(a) => findings::run(a, &global),
        Command::Serve(a) => serve::run(a, &global),
        Command::Users(a) => users::run(a, &global),
        Command::Rules(a) => rules::run(a, &global),
        Command::Completions(a) => completions::run(a, &global),
        Command::Manpage(a) => manpage::run(a, &global),
        Command::Config(a) => config_cmd::run(a, &global),
        Command::Keys(a) => keys::run(a, &global),
        Command::Inflate(a) => inflate::run(a, &global),
        Command::Generate(a) => generate::run(a, &global),
    }
}
