//! The `auditlake` binary: parse the command line, run it, turn the outcome into an exit code.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let args = auditlake::cli::Args::parse();
    match auditlake::cli::run(args) {
        Ok(code) => code,
        Err(err) => {
            if let auditlake::Error::Io { source, .. } = &err {
                if source.kind() == std::io::ErrorKind::BrokenPipe {
                    return ExitCode::SUCCESS;
                }
            }
            // One line, whatever the error's own formatting.
            let text = err.to_string();
            eprintln!(
                "auditlake: {}",
                text.split_whitespace().collect::<Vec<_>>().join(" ")
            );
            ExitCode::from(auditlake::cli::EXIT_ERROR)
        }
    }
}
