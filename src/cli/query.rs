//! `auditlake query`: SQL over the lake, streamed to stdout or a file.

use std::path::PathBuf;
use std::process::ExitCode;

use super::common::{runtime, Global, SessionArgs};
use super::EXIT_OK;
use crate::query::build_session;
use crate::query::print::{stream_to, stream_to_parquet, Format};
use crate::Result;

/// Run SQL over the lake: the table `events`, `action_catalog` and the standard views.
///
/// SQL comes as an argument, from -f FILE, or from stdin; several statements may be
/// separated by ';'. Example:
///   auditlake query --lake ./lake "SELECT * FROM failed_logins ORDER BY failures DESC LIMIT 10"
#[derive(clap::Args, Debug)]
pub struct QueryArgs {
    /// The SQL to run (omit to read -f FILE or stdin).
    pub sql: Option<String>,
    /// Read the SQL from this file.
    #[arg(
        short = 'f',
        long = "file",
        value_name = "FILE",
        conflicts_with = "sql"
    )]
    pub file: Option<PathBuf>,
    #[command(flatten)]
    pub session: SessionArgs,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// Write the output to this file instead of stdout.
    #[arg(short = 'o', long = "output", value_name = "PATH")]
    pub output: Option<PathBuf>,
}

/// Runs the statements, printing each result that has columns.
pub fn run(args: QueryArgs, global: &Global) -> Result<ExitCode> {
    let QueryArgs {
        sql,
        file,
        session,
        format,
        output,
    } = args;
    let sql = match (sql, file) {
        (Some(s), _) => s,
        (None, Some(f)) => std::fs::read_to_string(&f).map_err(|e| crate::Error::io(&f, e))?,
        (None, None) => {
            use std::io::{IsTerminal, Read};
            if std::io::stdin().is_terminal() {
                return Err(crate::Error::Usage(
                    "no SQL: give it as an argument, with -f FILE, or on stdin".into(),
                ));
            }
            let mut s = String::new();
            std::io::stdin()
                .read_to_string(&mut s)
                .map_err(|e| crate::Error::io(std::path::Path::new("<stdin>"), e))?;
            s
        }
    };
    let rt = runtime()?;
    let options = session.options(&rt, &global.load_config()?)?;
    rt.block_on(async {
        let session = build_session(&options).await?;
        // Statements that return nothing (DDL) print nothing; each result is
        // printed on its own, streamed as the query runs.
        let results: Vec<_> = session
            .statements(&sql)
            .await?
            .into_iter()
            .filter(|df| !df.schema().fields().is_empty())
            .collect();
        match (format, &output) {
            (Format::Parquet, Some(path)) => {
                if results.len() > 1 {
                    return Err(crate::Error::Usage(
                        "--format parquet writes one result: give one query".into(),
                    ));
                }
                for df in results {
                    stream_to_parquet(df, path).await?;
                }
            }
            (_, Some(path)) => {
                let file = std::fs::File::create(path).map_err(|e| crate::Error::io(path, e))?;
                let mut w = std::io::BufWriter::new(file);
                for df in results {
                    stream_to(df, &mut w, format, None).await?;
                }
            }
            (_, None) => {
                let mut out = crate::stdout::lock();
                for df in results {
                    stream_to(df, &mut out, format, None).await?;
                }
            }
        }
        Ok::<_, crate::Error>(())
    })?;
    Ok(ExitCode::from(EXIT_OK))
}
