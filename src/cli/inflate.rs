//! `auditlake inflate` (hidden): inflate the inputs and nothing else, the benchmarks'
//! floor for `convert`.

use std::path::PathBuf;
use std::process::ExitCode;

use super::common::Global;
use super::EXIT_OK;
use crate::Result;

/// Inflate every member of the inputs and nothing else, on all cores (the benchmarks' floor).
#[derive(clap::Args, Debug)]
pub struct InflateArgs {
    #[arg(required = true, value_name = "INPUT")]
    pub inputs: Vec<PathBuf>,
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
}

/// Inflates, then prints bytes in, bytes out and seconds as one JSON line.
pub fn run(args: InflateArgs, _global: &Global) -> Result<ExitCode> {
    let (bytes_in, bytes_out, seconds) = crate::ingest::inflate_only(&args.inputs, args.threads)?;
    crate::write_stdout(&format!(
        "{}\n",
        serde_json::json!({ "bytes_in": bytes_in, "bytes_out": bytes_out, "seconds": seconds })
    ))?;
    Ok(ExitCode::from(EXIT_OK))
}
