//! `auditlake manpage`: the man page (roff) from the clap definitions, on stdout or one
//! page per subcommand in a directory.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::CommandFactory;

use super::common::Global;
use super::{Args, EXIT_OK};
use crate::Result;

/// Print the man page (roff) on stdout, or write one page per subcommand into --dir.
///
/// Examples:
///   auditlake manpage | man -l -
///   auditlake manpage --dir ~/.local/share/man/man1
#[derive(clap::Args, Debug)]
pub struct ManpageArgs {
    /// Write auditlake.1 and auditlake-COMMAND.1 into this directory (created if missing).
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

/// Prints the page, or writes the pages.
pub fn run(args: ManpageArgs, _global: &Global) -> Result<ExitCode> {
    match args.dir {
        Some(dir) => {
            std::fs::create_dir_all(&dir).map_err(|e| crate::Error::io(&dir, e))?;
            clap_mangen::generate_to(Args::command(), &dir)
                .map_err(|e| crate::Error::io(&dir, e))?;
        }
        None => {
            let mut page = Vec::new();
            clap_mangen::Man::new(Args::command())
                .render(&mut page)
                .map_err(|e| crate::Error::io(std::path::Path::new("<man page>"), e))?;
            crate::write_stdout(&String::from_utf8_lossy(&page))?;
        }
    }
    Ok(ExitCode::from(EXIT_OK))
}
