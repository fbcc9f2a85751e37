//! Writes query results in the formats users ask for, to any `Write`.

use std::io::Write;
use std::str::FromStr;

use arrow::array::RecordBatch;
use arrow::util::display::FormatOptions;

use crate::{Error, Result};

/// Output formats of `query` and the REPL.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Aligned text table.
    Table,
    Csv,
    /// One JSON array of objects.
    Json,
    /// One JSON object per line.
    Ndjson,
    /// A Parquet file (needs -o).
    Parquet,
}

impl FromStr for Format {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        <Format as clap::ValueEnum>::from_str(s, true)
            .map_err(|_| format!("unknown format {s:?} (table, csv, json, ndjson, parquet)"))
    }
}

/// Writes `batches` in `format`. `Parquet` needs a seekable file: use [`write_parquet`].
pub fn write_batches(out: &mut dyn Write, format: Format, batches: &[RecordBatch]) -> Result<()> {
    let io = |e: std::io::Error| Error::io(std::path::Path::new("<output>"), e);
    match format {
        Format::Table => {
            let opts = FormatOptions::default()
                .with_null("NULL")
                .with_types_info(false);
            let text = arrow::util::pretty::pretty_format_batches_with_options(batches, &opts)?;
            writeln!(out, "{text}").map_err(io)?;
        }
        Format::Csv => {
            let mut w = arrow::csv::WriterBuilder::new()
                .with_header(true)
                .build(out);
            for b in batches {
                w.write(b)?;
            }
        }
        Format::Json => {
            let mut w = arrow::json::ArrayWriter::new(out);
            w.write_batches(&batches.iter().collect::<Vec<_>>())?;
            w.finish()?;
            let out = w.into_inner();
            if batches.iter().all(|b| b.num_rows() == 0) {
                // arrow writes nothing for no rows: an empty array is clearer.
                out.write_all(b"[]").map_err(io)?;
            }
            out.write_all(b"\n").map_err(io)?;
        }
        Format::Ndjson => {
            let mut w = arrow::json::LineDelimitedWriter::new(out);
            w.write_batches(&batches.iter().collect::<Vec<_>>())?;
            w.finish()?;
        }
        Format::Parquet => {
            return Err(Error::Usage(
                "--format parquet writes a file: give -o FILE".into(),
            ))
        }
    }
    Ok(())
}

/// Writes `batches` as a Parquet file.
pub fn write_parquet(path: &std::path::Path, batches: &[RecordBatch]) -> Result<()> {
    let Some(first) = batches.first() else {
        return Err(Error::Usage(
            "no rows and no schema to write as Parquet".into(),
        ));
    };
    let file = std::fs::File::create(path).map_err(|e| Error::io(path, e))?;
    let mut w = parquet::arrow::ArrowWriter::try_new(file, first.schema(), None)
        .map_err(|e| Error::parquet(path, e))?;
    for b in batches {
        w.write(b).map_err(|e| Error::parquet(path, e))?;
    }
    w.close().map_err(|e| Error::parquet(path, e))?;
    Ok(())
}
