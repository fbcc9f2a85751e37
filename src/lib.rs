//! auditlake: a columnar analytics engine over HSM audit archives.
//!
//! Bytes enter in [`ingest`] (sniff, scan, decode), become Parquet files in
//! [`lake`] (partitioned, deduplicated, ledgered) through [`convert`], and
//! leave as answers through [`status`] and the query layer. [`generate`]
//! writes realistic exports for tests and benchmarks.

pub mod cli;
pub mod convert;
pub mod generate;
pub mod ingest;
pub mod lake;
pub mod query;
pub mod report;
pub mod status;
pub mod testhook;

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
    #[error(transparent)]
    Arrow(#[from] arrow::error::ArrowError),
    #[error(transparent)]
    DataFusion(#[from] datafusion::error::DataFusionError),
    #[error(transparent)]
    Json(#[from] serde_json::Error),
}

impl Error {
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
