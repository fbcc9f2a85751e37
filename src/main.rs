//! The `auditlake` binary: parse the command line, run it, turn the outcome into an exit code.

use std::process::ExitCode;

use clap::Parser;

/// See Cargo.toml for why.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let args = match auditlake::cli::Args::try_parse() {
        Ok(a) => a,
        Err(e) if !e.use_stderr() => {
            // --help and --version.
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            // Usage errors as one line, like every other error.
            let text = e.to_string();
            let first: Vec<&str> = text
                .lines()
                .take_while(|l| !l.trim().is_empty())
                .map(str::trim)
                .collect();
            eprintln!(
                "auditlake: {} (see --help)",
                first.join(" ").trim_start_matches("error: ")
            );
            return ExitCode::from(auditlake::cli::EXIT_ERROR);
        }
    };
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
