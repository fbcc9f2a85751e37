//! `auditlake repl`: the interactive SQL prompt over the lake.

use std::process::ExitCode;

use super::common::{runtime, Global, SessionArgs};
use super::EXIT_OK;
use crate::query::build_session;
use crate::query::print::Format;
use crate::Result;

/// Interactive SQL prompt over the lake (history, completion, \? for commands).
#[derive(clap::Args, Debug)]
pub struct ReplArgs {
    #[command(flatten)]
    pub session: SessionArgs,
    /// Output format at start (\format changes it).
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// Rows shown of a table result (0: all); the rest are counted, not printed.
    #[arg(long, default_value_t = 40, value_name = "N")]
    pub maxrows: usize,
}

/// Runs the prompt until the user leaves it.
pub fn run(args: ReplArgs, global: &Global) -> Result<ExitCode> {
    let ReplArgs {
        session,
        format,
        maxrows,
    } = args;
    let rt = runtime()?;
    let session = rt.block_on(build_session(
        &session.options(&rt, &global.load_config()?)?,
    ))?;
    crate::query::repl::run(&rt, &session, format, (maxrows > 0).then_some(maxrows))?;
    Ok(ExitCode::from(EXIT_OK))
}
