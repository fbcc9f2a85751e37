//! `auditlake convert`: audit exports (files, directories, buckets, URLs) into the lake.

use std::process::ExitCode;

use super::common::{print_summary, sign_checkpoint, Global, LakeArg, SigningArg};
use super::{EXIT_ERROR, EXIT_OK};
use crate::convert::{convert, ConvertOptions, Summary};
use crate::Result;

/// Convert audit exports (zip, gzip or plain JSON/NDJSON; files or directories) into the lake.
///
/// Formats are told apart by content: Thales DPoD exports, AWS CloudHSM audit logs as
/// CloudWatch Logs hands them out, Azure Key Vault and Managed HSM AuditEvent logs (the
/// insights-logs-auditevent container's hourly PT1H.json blobs, or {"records": [...]}
/// envelopes), Google Cloud KMS audit logs (Cloud Storage sink files or gcloud logging read
/// output) and HashiCorp Vault audit device logs (give --tenant). JSON that no format
/// claims is rejected record by record as unknown_format.
///
/// Every record read ends up exactly once in the lake or in <lake>/_rejected/; a source
/// already in the ledger (same SHA-256) is skipped; rows already in the lake are not added
/// again. A source or member that cannot be read fully is reported on stderr, the rest is
/// still converted, and the exit code is 2.
#[derive(clap::Args, Debug)]
pub struct ConvertArgs {
    /// Export files or directories (searched recursively), s3://, gs://, az:// objects or
    /// prefixes (every object below), or https:// URLs such as DPoD's signed export URLs.
    #[arg(required = true, value_name = "INPUT")]
    pub inputs: Vec<String>,
    #[command(flatten)]
    pub lake: LakeArg,
    #[command(flatten)]
    pub signing: SigningArg,
    /// Print the summary as JSON on stdout.
    #[arg(long)]
    pub json: bool,
    /// Decoder threads, and as many Parquet encoder threads (0: one per core each).
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub threads: usize,
    /// Memory for buffered rows, in MiB, before partitions are written early.
    #[arg(long, default_value_t = 160, value_name = "MIB")]
    pub buffer_mb: usize,
    /// zstd level of the Parquet files: lower is faster, higher is smaller.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(i32).range(1..=22))]
    pub zstd_level: i32,
    /// Largest record kept, in MiB: a larger one is rejected as record_too_large, its
    /// bytes streamed to <lake>/_rejected/ beside the rejects file; the records after it
    /// still convert.
    #[arg(long, default_value_t = 256, value_name = "MIB", value_parser = clap::value_parser!(u64).range(1..=4095))]
    pub max_record_mb: u64,
    /// The tenant of records whose input does not name one: the AWS CloudHSM cluster
    /// id for CloudHSM logs given without their log group /aws/cloudhsm/<cluster-id>
    /// (filter-log-events output, S3 exports, plain text), the name of a HashiCorp Vault
    /// cluster, Azure or Cloud KMS records with no subscription or project. DPoD records
    /// name theirs.
    #[arg(long, value_name = "ID")]
    pub tenant: Option<String>,
}

/// Converts; exit code 2 when a source or member could not be read fully.
pub fn run(args: ConvertArgs, global: &Global) -> Result<ExitCode> {
    let ConvertArgs {
        inputs,
        lake,
        signing,
        json,
        threads,
        buffer_mb,
        zstd_level,
        max_record_mb,
        tenant,
    } = args;
    let signer = signing.signer(global)?;
    let opts = ConvertOptions {
        lake: lake.location().to_string(),
        inputs,
        storage_options: lake.storage_options.clone(),
        threads,
        buffer_bytes: buffer_mb.max(1) << 20,
        progress: !global.quiet && !json,
        zstd_level,
        max_record_bytes: (max_record_mb as usize) << 20,
        tenant,
    };
    let summary = convert(&opts)?;
    if let Some(s) = &signer {
        sign_checkpoint(&lake, s)?;
    }
    tracing::info!(
        files = summary.files,
        partitions = summary.partitions,
        written = summary.written,
        seconds = summary.seconds,
        "convert done"
    );
    print_summary(json, &summary, render_summary)?;
    Ok(ExitCode::from(if summary.has_problems() {
        EXIT_ERROR
    } else {
        EXIT_OK
    }))
}

fn render_summary(s: &Summary) -> String {
    let rate = if s.seconds > 0.0 {
        s.records_read as f64 / s.seconds
    } else {
        0.0
    };
    let mut out = format!(
        "converted {} sources ({} skipped as already converted, {} failed) in {:.2}s, {:.0} records/s\n\
         records read {} = written {} + duplicates {} + rejected {}\n\
         {} files in {} partitions\n",
        s.sources, s.skipped, s.failed, s.seconds, rate, s.records_read, s.written, s.duplicates, s.rejected, s.files, s.partitions
    );
    if s.incomplete_members > 0 {
        out.push_str(&format!(
            "{} members ended early (see stderr and _rejected/)\n",
            s.incomplete_members
        ));
    }
    out
}
