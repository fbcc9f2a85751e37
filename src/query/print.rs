//! Writes query results in the formats users ask for, to any `Write`, batch by
//! batch as the query produces them: memory holds one batch (one page of rows
//! for a table), never the whole answer.

use std::io::Write;
use std::str::FromStr;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use arrow::util::display::FormatOptions;
use futures::StreamExt;

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

/// Rows per printed table when a table is not cut at a row limit: a larger answer
/// is printed as several tables of this many rows, so memory stays flat.
pub const TABLE_PAGE_ROWS: usize = 10_000;

fn io(e: std::io::Error) -> Error {
    Error::io(std::path::Path::new("<output>"), e)
}

// The Parquet writer is boxed already; the CSV writer is the large one, and there is
// one Sink per printed result.
#[allow(clippy::large_enum_variant)]
enum Sink<W: Write> {
    Table {
        out: W,
        page: Vec<RecordBatch>,
        page_rows: usize,
        /// Stop printing after this many rows (the rest are only counted).
        max_rows: Option<usize>,
        printed: usize,
    },
    Csv(arrow::csv::Writer<W>),
    Json(arrow::json::ArrayWriter<W>),
    Ndjson(arrow::json::LineDelimitedWriter<W>),
    Parquet(Box<parquet::arrow::ArrowWriter<std::fs::File>>),
}

/// Prints one result, batch by batch.
pub struct Printer<W: Write> {
    sink: Sink<W>,
    schema: SchemaRef,
    rows: usize,
}

impl<W: Write> Printer<W> {
    /// A printer of a result with this schema. `max_rows` cuts a table (the REPL's
    /// `--maxrows`); other formats always write every row. `Parquet` wants a file.
    pub fn new(out: W, format: Format, schema: SchemaRef, max_rows: Option<usize>) -> Result<Self> {
        let sink = match format {
            Format::Table => Sink::Table {
                out,
                page: Vec::new(),
                page_rows: 0,
                max_rows,
                printed: 0,
            },
            Format::Csv => Sink::Csv(
                arrow::csv::WriterBuilder::new()
                    .with_header(true)
                    .build(out),
            ),
            Format::Json => Sink::Json(arrow::json::ArrayWriter::new(out)),
            Format::Ndjson => Sink::Ndjson(arrow::json::LineDelimitedWriter::new(out)),
            Format::Parquet => {
                return Err(Error::Usage(
                    "--format parquet writes a file: give -o FILE".into(),
                ))
            }
        };
        Ok(Printer {
            sink,
            schema,
            rows: 0,
        })
    }

    /// A printer writing a Parquet file.
    pub fn parquet(file: std::fs::File, path: &std::path::Path, schema: SchemaRef) -> Result<Self> {
        let w = parquet::arrow::ArrowWriter::try_new(file, schema.clone(), None)
            .map_err(|e| Error::parquet(path, e))?;
        Ok(Printer {
            sink: Sink::Parquet(Box::new(w)),
            schema,
            rows: 0,
        })
    }

    /// Rows seen so far.
    pub fn rows(&self) -> usize {
        self.rows
    }

    pub fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        self.rows += batch.num_rows();
        match &mut self.sink {
            Sink::Table {
                out,
                page,
                page_rows,
                max_rows,
                printed,
            } => {
                let mut batch = batch.clone();
                if let Some(max) = *max_rows {
                    let room = max.saturating_sub(*printed + *page_rows);
                    batch = batch.slice(0, batch.num_rows().min(room));
                }
                if batch.num_rows() > 0 {
                    *page_rows += batch.num_rows();
                    page.push(batch);
                }
                if max_rows.is_none() && *page_rows >= TABLE_PAGE_ROWS {
                    print_table(out, page, &self.schema)?;
                    *printed += std::mem::take(page_rows);
                }
            }
            Sink::Csv(w) => w.write(batch)?,
            Sink::Json(w) => w.write(batch)?,
            Sink::Ndjson(w) => w.write(batch)?,
            Sink::Parquet(w) => w
                .write(batch)
                .map_err(|e| Error::parquet(std::path::Path::new("<output>"), e))?,
        }
        Ok(())
    }

    /// Ends the output (flushed); returns how many rows the result had.
    pub fn finish(self) -> Result<usize> {
        let rows = self.rows;
        let mut out = match self.sink {
            Sink::Table {
                mut out,
                mut page,
                page_rows,
                printed,
                ..
            } => {
                // The last page, or the header alone for a result without rows.
                if page_rows > 0 || printed == 0 {
                    print_table(&mut out, &mut page, &self.schema)?;
                }
                out
            }
            Sink::Csv(w) => {
                let mut out = w.into_inner();
                if rows == 0 {
                    // arrow writes no header without a batch: write it from the schema.
                    let mut w = arrow::csv::WriterBuilder::new()
                        .with_header(true)
                        .build(&mut out);
                    w.write(&RecordBatch::new_empty(self.schema.clone()))?;
                }
                out
            }
            Sink::Json(mut w) => {
                w.finish()?;
                let mut out = w.into_inner();
                if rows == 0 {
                    // arrow writes nothing for no rows: an empty array is clearer.
                    out.write_all(b"[]").map_err(io)?;
                }
                out.write_all(b"\n").map_err(io)?;
                out
            }
            Sink::Ndjson(mut w) => {
                w.finish()?;
                w.into_inner()
            }
            Sink::Parquet(w) => {
                w.close()
                    .map_err(|e| Error::parquet(std::path::Path::new("<output>"), e))?;
                return Ok(rows);
            }
        };
        out.flush().map_err(io)?;
        Ok(rows)
    }
}

fn print_table<W: Write>(
    out: &mut W,
    page: &mut Vec<RecordBatch>,
    schema: &SchemaRef,
) -> Result<()> {
    let opts = FormatOptions::default()
        .with_null("NULL")
        .with_types_info(false);
    if page.is_empty() {
        page.push(RecordBatch::new_empty(schema.clone()));
    }
    let text = arrow::util::pretty::pretty_format_batches_with_options(page, &opts)?;
    page.clear();
    writeln!(out, "{text}").map_err(io)?;
    Ok(())
}

/// Whether a statement's result is worth printing: DDL returns no columns.
pub fn has_output(schema: &SchemaRef) -> bool {
    !schema.fields().is_empty()
}

/// Runs a planned statement and prints its rows as they come; returns the row count.
pub async fn stream_to<W: Write>(
    df: datafusion::prelude::DataFrame,
    out: W,
    format: Format,
    max_rows: Option<usize>,
) -> Result<usize> {
    let mut stream = df.execute_stream().await?;
    let mut printer = Printer::new(out, format, stream.schema(), max_rows)?;
    while let Some(batch) = stream.next().await {
        printer.write(&batch?)?;
    }
    printer.finish()
}

/// Runs a planned statement into a Parquet file at `path`; returns the row count.
pub async fn stream_to_parquet(
    df: datafusion::prelude::DataFrame,
    path: &std::path::Path,
) -> Result<usize> {
    let mut stream = df.execute_stream().await?;
    let file = std::fs::File::create(path).map_err(|e| Error::io(path, e))?;
    let mut printer = Printer::<std::io::Sink>::parquet(file, path, stream.schema())?;
    while let Some(batch) = stream.next().await {
        printer.write(&batch?)?;
    }
    printer.finish()
}
