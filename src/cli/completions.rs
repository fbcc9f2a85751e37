//! `auditlake completions SHELL`: a shell completion script from the clap definitions.

use std::process::ExitCode;

use clap::CommandFactory;

use super::common::Global;
use super::{Args, EXIT_OK};
use crate::Result;

/// Print a shell completion script on stdout.
///
/// Examples:
///   auditlake completions bash > ~/.local/share/bash-completion/completions/auditlake
///   auditlake completions zsh > ~/.zfunc/_auditlake
///   auditlake completions fish > ~/.config/fish/completions/auditlake.fish
#[derive(clap::Args, Debug)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum, value_name = "SHELL")]
    pub shell: clap_complete::Shell,
}

/// Prints the script.
pub fn run(args: CompletionsArgs, _global: &Global) -> Result<ExitCode> {
    // Into memory first: the generator panics on a write error, stdout may be closed.
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut Args::command(), "auditlake", &mut script);
    crate::write_stdout(&String::from_utf8_lossy(&script))?;
    Ok(ExitCode::from(EXIT_OK))
}
