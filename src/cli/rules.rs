//! `auditlake rules show`: the rules findings are judged by, as TOML, and their origin.

use std::process::ExitCode;

use clap::Subcommand;

use super::common::{Global, RulesArgs};
use super::EXIT_OK;
use crate::Result;

/// The rules findings are judged by: `auditlake rules show` prints those in force.
///
/// From --rules FILE, else the [rules] section of the config file, else the defaults.
/// Example rules.toml:
///   baseline_days = 90
///   [tenants."0b610cb6-a49c-43e1-a190-f6ee550bac29"]
///   timezone = "+09:00"
///   business_hours = "08:00-19:00"
///   [allow]
///   nat_addresses = ["203.0.113.0/24"]
///   batch_clients = [{ actor = "6fcc...", note = "nightly backup" }]
///   maintenance_windows = [{ from = "2025-06-01T22:00:00Z", to = "2025-06-02T02:00:00Z" }]
#[derive(clap::Args, Debug)]
pub struct RulesCmdArgs {
    #[command(subcommand)]
    pub action: RulesAction,
}

#[derive(Subcommand, Debug)]
pub enum RulesAction {
    /// Print the rules in force, as TOML, and where they came from.
    Show {
        #[command(flatten)]
        rules: RulesArgs,
    },
}

/// Prints the rules in force.
pub fn run(args: RulesCmdArgs, global: &Global) -> Result<ExitCode> {
    let RulesAction::Show { rules } = args.action;
    let cfg = global.load_config()?;
    let (rules, origin) = rules.resolve(&cfg)?;
    crate::write_stdout(&format!(
        "# rules in force, from {origin}\n{}",
        rules.to_toml()
    ))?;
    Ok(ExitCode::from(EXIT_OK))
}
