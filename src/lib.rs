//! auditlake: a columnar analytics engine over HSM audit archives.
//!
//! Bytes enter in [`ingest`] (sniff, scan, decode), become Parquet files in
//! [`lake`] (partitioned, deduplicated, ledgered) through [`convert`] (or [`fetch`], straight from the DPoD API), and
//! leave as answers through [`status`] and the query layer; [`verify`] checks
//! the files against the ledger; [`compact`] and [`prune`] keep a long-lived lake
//! in shape. [`generate`]
//! writes realistic exports for tests and benchmarks.

pub mod cli;
pub mod compact;
pub mod convert;
pub mod fetch;
pub mod generate;
pub mod ingest;
pub mod lake;
pub mod notes;
pub mod prune;
pub mod query;
pub mod report;
pub mod serve;
pub mod status;
pub mod stdout;
pub mod testhook;
pub mod time;
pub mod verify;

use std::path::{Path, PathBuf};

/// Everything that can go wrong, each saying where.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A source that cannot be read as an export at all.
    #[error("{}: {reason}", path.display())]
    Source { path: PathBuf, reason: String },
    #[error("{}: {source}", path.display())]
    Parquet {
        path: PathBuf,
        source: parquet::errors::ParquetError,
    },
    #[error("{0}")]
    Usage(String),
    /// The lake lock was taken over or could not be kept: nothing more is published.
    #[error("lost the lake lock on {lake} ({why}); stopped before publishing anything more, run the conversion again to finish it")]
    LockLost { lake: String, why: String },
    #[error("{0}")]
    Arrow(#[from] arrow::error::ArrowError),
    #[error("{0}")]
    DataFusion(#[from] datafusion::error::DataFusionError),
    #[error("{0}")]
    Json(#[from] serde_json::Error),
    #[error(transparent)]
    Compact(#[from] crate::compact::CompactError),
    #[error(transparent)]
    Prune(#[from] crate::prune::PruneError),
}

impl Error {
    /// Whether the error comes down to writing into a closed pipe (`... | head`):
    /// the reader has what it wanted, so it is no failure. Found in the error's chain,
    /// or, when a library kept only the text of the I/O error, by stdout itself.
    pub fn is_broken_pipe(&self) -> bool {
        if stdout::closed() {
            return true;
        }
        let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(self);
        while let Some(e) = cur {
            if let Some(io) = e.downcast_ref::<std::io::Error>() {
                if io.kind() == std::io::ErrorKind::BrokenPipe {
                    return true;
                }
            }
            cur = e.source();
        }
        false
    }

    pub fn io(path: &Path, source: std::io::Error) -> Self {
        Error::Io {
            path: path.to_path_buf(),
            source,
        }
    }
    pub fn parquet(path: &Path, source: parquet::errors::ParquetError) -> Self {
        Error::Parquet {
            path: path.to_path_buf(),
            source,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Writes `text` to stdout, as an error (never a panic) when stdout is closed.
pub fn write_stdout(text: &str) -> Result<()> {
    use std::io::Write;
    let mut out = stdout::lock();
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .map_err(|e| Error::io(Path::new("<stdout>"), e))
}
