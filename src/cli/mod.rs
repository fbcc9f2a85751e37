//! The command line: clap definitions and one function per subcommand.
//! `main` calls [`run`] and turns its result into the exit code.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};

use crate::convert::{convert, ConvertOptions, Summary};
use crate::generate::cloudhsm::{CloudHsmForm, CloudHsmOptions};
use crate::generate::{generate, ExportFormat, GenerateOptions, Vendor};
use crate::lake::store::LakeStore;
use crate::query::print::{stream_to, stream_to_parquet, Format};
use crate::query::{build_session, SessionOptions};
use crate::report::findings::Severity;
use crate::report::render::{self, ReportFormat};
use crate::report::rules::Rules;
use crate::report::ReportOptions;
use crate::status::{human_bytes, render, status};
use crate::Result;
use object_store::ObjectStoreExt;

pub mod config;
mod logging;

/// Exit code for success.
pub const EXIT_OK: u8 = 0;
/// Exit code for findings (reports with `--fail-on-findings`, `verify`).
pub const EXIT_FINDINGS: u8 = 1;
/// Exit code for errors, including inputs that could not be fully read.
pub const EXIT_ERROR: u8 = 2;

#[derive(Parser, Debug)]
#[command(
    name = "auditlake",
    version,
    about = "Columnar analytics over HSM audit archives",
    long_about = "auditlake turns Thales DPoD (Luna Cloud HSM) audit exports into a Parquet lake \
partitioned by tenant and day, and answers auditors' questions over it.\n\n\
Typical use:\n  auditlake convert exports/ --lake ./lake\n  auditlake status --lake ./lake",
    after_help = "Exit codes: 0 ok, 1 findings (report --fail-on SEVERITY, verify), 2 error."
)]
pub struct Args {
    #[command(subcommand)]
    pub command: Command,
    /// Diagnostics on stderr: -v auditlake's info events, -vv debug (RUST_LOG, when set,
    /// chooses instead, e.g. RUST_LOG=auditlake=debug,datafusion=info).
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    /// No progress bar and no notes on stderr (errors and warnings still show).
    #[arg(short, long, global = true)]
    pub quiet: bool,
    /// The config file (default: $XDG_CONFIG_HOME/auditlake/config.toml, else
    /// ~/.config/auditlake/config.toml, when there is one).
    #[arg(long, global = true, env = "AUDITLAKE_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// A [profiles.NAME] of the config file: its lake and storage options.
    #[arg(long, global = true, env = "AUDITLAKE_PROFILE", value_name = "NAME")]
    pub profile: Option<String>,
}

#[derive(Subcommand, Debug)]
pub enum ConfigAction {
    /// Print the settings in force (secrets masked) and where each came from.
    Show {
        #[command(flatten)]
        lake: LakeArg,
    },
}

#[derive(Subcommand, Debug)]
pub enum RulesAction {
    /// Print the rules in force, as TOML, and where they came from.
    Show {
        #[command(flatten)]
        rules: RulesArgs,
    },
}

/// Where the rules of findings come from.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct RulesArgs {
    /// A TOML rules file: thresholds, look-back, business hours and time zones per
    /// tenant, allowlists (default: the config file's [rules], else the defaults).
    #[arg(long, value_name = "FILE")]
    pub rules: Option<PathBuf>,
    /// Days of history before the period that baselines are learned from (default 90).
    #[arg(long, value_name = "DAYS")]
    pub baseline: Option<u32>,
}

impl RulesArgs {
    /// The rules in force and where they came from: the file, else the config's
    /// `[rules]`, else the defaults; `--baseline` over any of them.
    pub fn resolve(&self, cfg: &config::Config) -> Result<(Rules, String)> {
        let (mut rules, origin) = match (&self.rules, &cfg.rules) {
            (Some(p), _) => (
                Rules::load(p).map_err(|e| crate::Error::Usage(e.to_string()))?,
                p.display().to_string(),
            ),
            (None, Some(r)) => (
                r.clone(),
                format!(
                    "[rules] of {}",
                    cfg.path
                        .as_ref()
                        .map_or("the config".into(), |p| p.display().to_string())
                ),
            ),
            (None, None) => (Rules::default(), "defaults".to_string()),
        };
        if let Some(d) = self.baseline {
            rules.baseline_days = d;
        }
        rules
            .check()
            .map_err(|e| crate::Error::Usage(format!("{origin}: {e}")))?;
        Ok((rules, origin))
    }
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Convert audit exports (zip, gzip or plain JSON/NDJSON; files or directories) into the lake.
    ///
    /// Every record read ends up exactly once in the lake or in <lake>/_rejected/; a source
    /// already in the ledger (same SHA-256) is skipped; rows already in the lake are not added
    /// again. A source or member that cannot be read fully is reported on stderr, the rest is
    /// still converted, and the exit code is 2.
    Convert {
        /// Export files or directories (searched recursively), s3://, gs://, az:// objects or
        /// prefixes (every object below), or https:// URLs such as DPoD's signed export URLs.
        #[arg(required = true, value_name = "INPUT")]
        inputs: Vec<String>,
        #[command(flatten)]
        lake: LakeArg,
        /// Print the summary as JSON on stdout.
        #[arg(long)]
        json: bool,
        /// Decoder threads, and as many Parquet encoder threads (0: one per core each).
        #[arg(long, default_value_t = 0, value_name = "N")]
        threads: usize,
        /// Memory for buffered rows, in MiB, before partitions are written early.
        #[arg(long, default_value_t = 160, value_name = "MIB")]
        buffer_mb: usize,
        /// zstd level of the Parquet files: lower is faster, higher is smaller.
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(i32).range(1..=22))]
        zstd_level: i32,
        /// Largest record kept, in MiB: a larger one is rejected as record_too_large, its
        /// bytes streamed to <lake>/_rejected/ beside the rejects file; the records after it
        /// still convert.
        #[arg(long, default_value_t = 256, value_name = "MIB", value_parser = clap::value_parser!(u64).range(1..=4095))]
        max_record_mb: u64,
        /// The tenant of records whose input does not name one: the AWS CloudHSM cluster
        /// id for CloudHSM logs given without their log group /aws/cloudhsm/<cluster-id>
        /// (filter-log-events output, S3 exports, plain text). DPoD records name theirs.
        #[arg(long, value_name = "ID")]
        tenant: Option<String>,
    },
    /// Fetch audit exports straight from the DPoD Audit Query API into the lake.
    ///
    /// The period (default: from where the fetched windows in the ledger end, less
    /// --overlap, to now; on a lake with none, the last 12 months) is cut into windows of
    /// at most 31 days, leaving out what the ledger covers already. Each window becomes an
    /// export job; its file is downloaded from the signed URL and converted as `convert`
    /// would, exactly once. A rerun, or a run after one that was killed, fetches only what
    /// is missing. The client secret comes from $AUDITLAKE_DPOD_CLIENT_SECRET or a file,
    /// never from the command line. Example (cron, every night):
    ///   auditlake fetch --lake /data/lake --client-id "$ID" --secret-file /run/secrets/dpod
    Fetch {
        #[command(flatten)]
        lake: LakeArg,
        /// The tenant's DPoD API base URL (default: the config file's dpod_api_url).
        #[arg(long, env = "AUDITLAKE_DPOD_API", value_name = "URL")]
        api: Option<String>,
        /// The tenant's OAuth2 token URL (default: the config file's dpod_token_url).
        #[arg(long, env = "AUDITLAKE_DPOD_TOKEN_URL", value_name = "URL")]
        token_url: Option<String>,
        /// The platform credentials' client id.
        #[arg(long, env = "AUDITLAKE_DPOD_CLIENT_ID", value_name = "ID")]
        client_id: Option<String>,
        /// A file holding the client secret (default: $AUDITLAKE_DPOD_CLIENT_SECRET, else
        /// the config file's secret_file). There is no flag for the secret itself.
        #[arg(long, env = "AUDITLAKE_DPOD_SECRET_FILE", value_name = "FILE")]
        secret_file: Option<PathBuf>,
        /// Only records of this source (e.g. thales/cloudhsm/<partition id>).
        #[arg(long, value_name = "SOURCE")]
        source: Option<String>,
        /// Only records of this resource (service id).
        #[arg(long, value_name = "ID")]
        resource_id: Option<String>,
        /// Only records of this actor (client id).
        #[arg(long, value_name = "ID")]
        actor_id: Option<String>,
        /// Only records of this action (e.g. LUNA_LOGIN).
        #[arg(long, value_name = "ACTION")]
        action: Option<String>,
        /// Only records with this status (e.g. LUNA_RET_OK).
        #[arg(long, value_name = "STATUS")]
        status: Option<String>,
        /// Start of the period, UTC: YYYY-MM-DD or RFC 3339 (default: where the fetched
        /// coverage ends, less --overlap; on a lake with none, 12 months ago).
        #[arg(long, value_name = "TIME", value_parser = parse_instant_arg)]
        from: Option<i64>,
        /// End of the period, exclusive (default: now).
        #[arg(long, value_name = "TIME", value_parser = parse_instant_arg)]
        to: Option<i64>,
        /// How far back before the end of the fetched coverage a default --from starts,
        /// for records that arrive late (s, m, h or d).
        #[arg(long, default_value = "1h", value_name = "DURATION", value_parser = parse_duration_arg)]
        overlap: i64,
        /// How long to wait for one export job before giving up on its window.
        #[arg(long, default_value = "1h", value_name = "DURATION", value_parser = parse_duration_arg)]
        job_timeout: i64,
        /// A PEM file of CA certificates to trust besides the system's (also: SSL_CERT_FILE).
        #[arg(long, value_name = "FILE")]
        ca_cert: Option<PathBuf>,
        /// Print the windows that would be asked for, and nothing else.
        #[arg(long)]
        dry_run: bool,
        /// Print the summary as JSON on stdout.
        #[arg(long)]
        json: bool,
        /// Decoder threads, and as many Parquet encoder threads (0: one per core each).
        #[arg(long, default_value_t = 0, value_name = "N")]
        threads: usize,
        /// The longest window asked for, in seconds (the service's limit is 31 days).
        #[arg(long, hide = true, default_value_t = crate::fetch::windows::MAX_WINDOW_SECS)]
        max_window_secs: i64,
    },
    /// Show what the lake holds: tenants, days covered and missing, events, files, bytes, sources.
    Status {
        #[command(flatten)]
        lake: LakeArg,
        /// Print as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Check the lake's files against the ledger: missing, altered (size, SHA-256) and
    /// unexpected files, row counts (footers against the ledger, per file and per
    /// partition), and temporary files left by killed runs.
    ///
    /// One line per finding, then a summary. Exit code 1 when there are findings, 0 when
    /// the lake is as the ledger says; nothing is changed except with --fix.
    Verify {
        #[command(flatten)]
        lake: LakeArg,
        /// Print as JSON.
        #[arg(long)]
        json: bool,
        /// Remove the leftover temporary files (and nothing else); they then no longer
        /// count toward the exit code.
        #[arg(long)]
        fix: bool,
    },
    /// Rewrite partitions that gathered several files as one file each, exactly once.
    ///
    /// Daily conversions that touch the same day leave it several files; compaction merges
    /// them into one, rows in time order, with the converter's statistics and bloom filters.
    /// Queries running meanwhile see every row exactly once: the merged file is written
    /// first, one manifest write switches readers over, and the old files are removed after
    /// --grace. Killed at any point, run it again to finish. Example (weekly, after the
    /// nightly fetches):
    ///   auditlake compact --lake /data/lake --from 2025-06-01 --to 2025-06-30
    Compact {
        #[command(flatten)]
        lake: LakeArg,
        /// Only this tenant's partitions.
        #[arg(long, value_name = "TENANT")]
        tenant: Option<String>,
        /// Only days from this one (YYYY-MM-DD, inclusive).
        #[arg(long, value_name = "DAY", value_parser = parse_day_arg)]
        from: Option<i32>,
        /// Only days up to this one (YYYY-MM-DD, inclusive).
        #[arg(long, value_name = "DAY", value_parser = parse_day_arg)]
        to: Option<i32>,
        /// Print the partitions that would be compacted, and change nothing.
        #[arg(long)]
        dry_run: bool,
        /// How long the old files stay after the switch, for queries planned before it
        /// (s, m, h or d); longer than your longest query.
        #[arg(long, default_value = "30s", value_name = "DURATION", value_parser = parse_duration_arg)]
        grace: i64,
        /// zstd level of the merged files: lower is faster, higher is smaller.
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(i32).range(1..=22))]
        zstd_level: i32,
        /// Print the summary as JSON on stdout.
        #[arg(long)]
        json: bool,
    },
    /// Remove the partitions older than a retention period, and their files from the ledger.
    ///
    /// There is no default age: DPoD keeps logs 12 months, compliance regimes often keep
    /// them longer, so say what yours is. Days before today (UTC) less AGE go; the ledger
    /// entries of their sources stay (without those files), so the same exports are not
    /// converted back in. Try --dry-run first. Example:
    ///   auditlake prune --lake /data/lake --older-than 12mo --dry-run
    Prune {
        #[command(flatten)]
        lake: LakeArg,
        /// The retention period: 400d, 8w, 12mo, 2y. Partitions whose day is before
        /// today less this are removed.
        #[arg(long, value_name = "AGE", required = true)]
        older_than: crate::prune::Age,
        /// Print what would be removed, and change nothing.
        #[arg(long)]
        dry_run: bool,
        /// Print the summary as JSON on stdout.
        #[arg(long)]
        json: bool,
        /// Count the age back from this day instead of today (for tests and replays).
        #[arg(long, hide = true, value_name = "DAY", value_parser = parse_day_arg)]
        today: Option<i32>,
    },
    /// Run SQL over the lake: the table `events`, `action_catalog` and the standard views.
    ///
    /// SQL comes as an argument, from -f FILE, or from stdin; several statements may be
    /// separated by ';'. Example:
    ///   auditlake query --lake ./lake "SELECT * FROM failed_logins ORDER BY failures DESC LIMIT 10"
    Query {
        /// The SQL to run (omit to read -f FILE or stdin).
        sql: Option<String>,
        /// Read the SQL from this file.
        #[arg(
            short = 'f',
            long = "file",
            value_name = "FILE",
            conflicts_with = "sql"
        )]
        file: Option<PathBuf>,
        #[command(flatten)]
        session: SessionArgs,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
        /// Write the output to this file instead of stdout.
        #[arg(short = 'o', long = "output", value_name = "PATH")]
        output: Option<PathBuf>,
    },
    /// Interactive SQL prompt over the lake (history, completion, \? for commands).
    Repl {
        #[command(flatten)]
        session: SessionArgs,
        /// Output format at start (\format changes it).
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
        /// Rows shown of a table result (0: all); the rest are counted, not printed.
        #[arg(long, default_value_t = 40, value_name = "N")]
        maxrows: usize,
    },
    /// Run the compliance report pack (all reports when none is named) over a period.
    ///
    /// Every report opens with the coverage of the period: which days have data and which
    /// have none. Reports: failed_auth, brute_force, key_first_use, key_lifecycle,
    /// privileged, new_client_ips, off_hours, daily_summary. Example (last month, for cron):
    ///   auditlake report --lake ./lake --from 2025-06-01 --to 2025-06-30 --format html -o june.html --fail-on-findings
    Report {
        /// Reports to run (default: all).
        #[arg(value_name = "NAME")]
        names: Vec<String>,
        #[command(flatten)]
        lake: LakeArg,
        /// Only this tenant (other tenants' files are not read).
        #[arg(long, value_name = "TENANT")]
        tenant: Option<String>,
        /// First day of the period, UTC, inclusive (default: the lake's first day).
        #[arg(long, value_name = "YYYY-MM-DD", value_parser = parse_day_arg)]
        from: Option<i32>,
        /// Last day of the period, UTC, inclusive (default: the lake's last day).
        #[arg(long, value_name = "YYYY-MM-DD", value_parser = parse_day_arg)]
        to: Option<i32>,
        #[arg(long, value_enum, default_value_t = ReportFormat::Md)]
        format: ReportFormat,
        /// Write to this file (csv: this directory) instead of stdout; a path or a URL
        /// (s3://bucket/reports/june.html).
        #[arg(short = 'o', long = "output", alias = "out", value_name = "PATH|URL")]
        output: Option<String>,
        /// Exit with 1 when a finding of this severity or higher is not suppressed.
        #[arg(long, value_enum, value_name = "SEVERITY")]
        fail_on: Option<FailOn>,
        /// The same as --fail-on low.
        #[arg(long, conflicts_with = "fail_on")]
        fail_on_findings: bool,
        #[command(flatten)]
        rules: RulesArgs,
        #[command(flatten)]
        cluster: ClusterArg,
    },
    /// The rules findings are judged by: `auditlake rules show` prints those in force.
    ///
    /// From --rules FILE, else the [rules] section of the config file, else the defaults.
    /// Example rules.toml:
    ///   baseline_days = 90
    ///   [tenants."0b610cb6-a49c-43e1-a190-f6ee550bac29"]
    ///   timezone = "+09:00"
    ///   business_hours = "08:00-19:00"
    ///   [allow]
    ///   nat_addresses = ["203.0.113.0/24"]
    ///   batch_clients = [{ actor = "6fcc...", note = "nightly backup" }]
    ///   maintenance_windows = [{ from = "2025-06-01T22:00:00Z", to = "2025-06-02T02:00:00Z" }]
    Rules {
        #[command(subcommand)]
        action: RulesAction,
    },
    /// Print a shell completion script on stdout.
    ///
    /// Examples:
    ///   auditlake completions bash > ~/.local/share/bash-completion/completions/auditlake
    ///   auditlake completions zsh > ~/.zfunc/_auditlake
    ///   auditlake completions fish > ~/.config/fish/completions/auditlake.fish
    Completions {
        /// The shell to complete for.
        #[arg(value_enum, value_name = "SHELL")]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff) on stdout, or write one page per subcommand into --dir.
    ///
    /// Examples:
    ///   auditlake manpage | man -l -
    ///   auditlake manpage --dir ~/.local/share/man/man1
    Manpage {
        /// Write auditlake.1 and auditlake-COMMAND.1 into this directory (created if missing).
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
    /// The config file: `auditlake config show` prints the settings in force.
    ///
    /// Precedence: flags, then the environment (AUDITLAKE_LAKE), then the file (a
    /// profile's keys over the top level's). Example config.toml:
    ///   lake = "/data/lake"
    ///   [profiles.prod]
    ///   lake = "s3://acme-audit-lake/dpod"
    ///   storage_options = { aws_region = "eu-west-1" }
    Config {
        #[command(subcommand)]
        action: ConfigAction,
    },
    /// Inflate every member of the inputs and nothing else, on all cores (the benchmarks' floor).
    #[command(hide = true)]
    Inflate {
        #[arg(required = true, value_name = "INPUT")]
        inputs: Vec<PathBuf>,
        #[arg(long, default_value_t = 0)]
        threads: usize,
    },
    /// Write realistic synthetic exports (for trying auditlake out, tests and benchmarks).
    Generate {
        /// Directory to write the exports into.
        #[arg(short = 'o', long = "output", alias = "out", value_name = "DIR")]
        output: PathBuf,
        /// Events in total, across tenants and months.
        #[arg(long, default_value_t = 100_000)]
        events: u64,
        #[arg(long, default_value_t = 3)]
        tenants: u32,
        /// First month (YYYY-MM).
        #[arg(long, default_value = "2025-01")]
        start: String,
        #[arg(long, default_value_t = 12)]
        months: u32,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        #[arg(long, value_enum, default_value_t = ExportFormat::Zip)]
        format: ExportFormat,
        /// Hours each export reaches into the next month (exports overlap at their edges).
        #[arg(long, default_value_t = 6)]
        overlap_hours: u32,
        /// Plant incidents (bursts, zeroize, a new IP at night, a dormant key, ...) and
        /// write what was planted to the --manifest file.
        #[arg(long)]
        incidents: bool,
        /// Where --incidents writes its manifest (JSON; default: DIR.incidents.json
        /// beside the output directory, so that converting DIR does not read it).
        #[arg(long, value_name = "FILE", requires = "incidents")]
        manifest: Option<PathBuf>,
        /// Each tenant keeps office hours in its own time zone (UTC, UTC+9, UTC-5,
        /// UTC+5:30, in turn) instead of all in UTC.
        #[arg(long)]
        zones: bool,
        /// Write every Nth export of each tenant (its 1st, N+1th, ...) as one single line:
        /// the whole JSON array without a line break (zip and json formats).
        #[arg(long, value_name = "N", default_value_t = 0)]
        one_line_every: u32,
        /// Whose logs: DPoD exports, or AWS CloudHSM audit logs (--tenants clusters of two
        /// HSMs each, in the --cloudhsm-form; --format and --incidents are DPoD's).
        #[arg(long, value_enum, default_value_t = Vendor::Dpod)]
        vendor: Vendor,
        /// The form of AWS CloudHSM logs: subscription deliveries name their cluster;
        /// convert the others with --tenant <cluster-id>.
        #[arg(long, value_enum, default_value_t = CloudHsmForm::Subscription)]
        cloudhsm_form: CloudHsmForm,
    },
}

impl Command {
    /// Whether the command runs SQL over the lake (and streams its files through a session).
    pub fn runs_sql(&self) -> bool {
        matches!(
            self,
            Command::Query { .. } | Command::Repl { .. } | Command::Report { .. }
        )
    }
}

/// The lowest severity that fails a report run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum FailOn {
    High,
    Medium,
    Low,
}

impl From<FailOn> for Severity {
    fn from(f: FailOn) -> Severity {
        match f {
            FailOn::High => Severity::High,
            FailOn::Medium => Severity::Medium,
            FailOn::Low => Severity::Low,
        }
    }
}

/// What a SQL session sees.
#[derive(clap::Args, Debug, Clone)]
pub struct SessionArgs {
    #[command(flatten)]
    pub lake: LakeArg,
    /// Scope the session to one tenant: other tenants' files are not even registered,
    /// and only queries are allowed (no DDL, DML or COPY).
    #[arg(long, value_name = "TENANT")]
    pub tenant: Option<String>,
    /// A directory of your own .sql view files (CREATE VIEW ...), added to the built-in ones.
    #[arg(long, value_name = "DIR")]
    pub sql_dir: Option<PathBuf>,
    /// Memory for sorts, joins and aggregates (e.g. 2G) before they spill to temporary
    /// files (default: half the machine's memory).
    #[arg(long, value_name = "SIZE", value_parser = crate::query::parse_size)]
    pub memory_limit: Option<usize>,
    #[command(flatten)]
    pub cluster: ClusterArg,
}

/// Where the session's queries run.
#[derive(clap::Args, Debug, Clone)]
pub struct ClusterArg {
    /// Run the queries on an Apache Ballista cluster: its scheduler, df://HOST:PORT
    /// (port 50050 when left out). The executors read the lake themselves.
    #[arg(
        long = "cluster",
        env = "AUDITLAKE_CLUSTER",
        value_name = "df://HOST:PORT"
    )]
    pub url: Option<String>,
}

impl ClusterArg {
    /// The scheduler's URL, checked before anything else is opened.
    fn checked(&self) -> Result<Option<String>> {
        if let Some(url) = &self.url {
            crate::query::check_cluster(url)?;
        }
        Ok(self.url.clone())
    }
}

impl SessionArgs {
    /// The session's options over a lake that must already be there.
    fn options(&self, rt: &tokio::runtime::Runtime) -> Result<SessionOptions> {
        let cluster = self.cluster.checked()?;
        Ok(SessionOptions {
            cluster,
            store: self.lake.open_existing(rt)?,
            tenant: self.tenant.clone(),
            period: None,
            sql_dir: self.sql_dir.clone(),
            memory_limit: self.memory_limit,
            baseline_days: None,
        })
    }
}

fn parse_instant_arg(s: &str) -> std::result::Result<i64, String> {
    crate::fetch::windows::parse_instant(s)
}

fn parse_duration_arg(s: &str) -> std::result::Result<i64, String> {
    crate::fetch::windows::parse_duration(s)
}

fn parse_day_arg(s: &str) -> std::result::Result<i32, String> {
    crate::time::parse_day(s).ok_or_else(|| format!("{s:?} is not a date (YYYY-MM-DD)"))
}

/// Writes an output to a local path (atomically) or to an object-store URL (one PUT);
/// `name` is a file inside `location` taken as a directory.
fn write_output(
    location: &str,
    name: Option<&str>,
    bytes: Vec<u8>,
    options: &[(String, String)],
) -> Result<()> {
    if crate::lake::store::is_url(location) && !location.starts_with("file://") {
        let full = match name {
            Some(n) => format!("{}/{n}", location.trim_end_matches('/')),
            None => location.to_string(),
        };
        let url = url::Url::parse(&full)
            .map_err(|e| crate::Error::Usage(format!("{full}: not a URL: {e}")))?;
        let store = crate::lake::store::store_for_url(&url, options)?;
        let path = object_store::path::Path::from_url_path(url.path())
            .map_err(|e| crate::Error::Usage(format!("{full}: {e}")))?;
        return runtime()?.block_on(async {
            store
                .put(&path, object_store::PutPayload::from(bytes))
                .await
                .map(|_| ())
                .map_err(|e| {
                    crate::Error::Usage(format!("{}: {}", crate::lake::store::redact(&url), e))
                })
        });
    }
    let base = std::path::PathBuf::from(location.strip_prefix("file://").unwrap_or(location));
    let path = match name {
        Some(n) => {
            std::fs::create_dir_all(&base).map_err(|e| crate::Error::io(&base, e))?;
            base.join(n)
        }
        None => base,
    };
    write_atomic(&path, &bytes)
}

/// Writes a file atomically: a hidden temporary next to it, then a rename.
fn write_atomic(path: &std::path::Path, bytes: &[u8]) -> Result<()> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.tmp"));
    std::fs::write(&tmp, bytes).map_err(|e| crate::Error::io(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| crate::Error::io(path, e))
}

/// Threads the blocking pool may grow to. On a local lake every file read is a
/// blocking-pool task; left at tokio's 512, a streamed scan of a thousand files ran on
/// 60-100 threads, each holding its allocator's freed pages (RSS twice the heap).
/// Reads are bounded by the session's partitions anyway. AUDITLAKE_BLOCKING_THREADS
/// overrides it (for measuring).
const BLOCKING_THREADS: usize = 8;

fn runtime() -> Result<tokio::runtime::Runtime> {
    let blocking = std::env::var("AUDITLAKE_BLOCKING_THREADS")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .filter(|&n| n > 0)
        .unwrap_or(BLOCKING_THREADS);
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .max_blocking_threads(blocking)
        .build()
        .map_err(|e| crate::Error::Usage(format!("cannot start the async runtime: {e}")))
}

#[derive(clap::Args, Debug, Clone)]
pub struct LakeArg {
    /// The lake: a directory, or a URL (s3://bucket/prefix, gs://, az://, file://).
    /// Object-store credentials, region and endpoint come from the usual environment
    /// variables (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION, AWS_ENDPOINT_URL,
    /// AWS_ALLOW_HTTP, GOOGLE_SERVICE_ACCOUNT, GOOGLE_BASE_URL, GOOGLE_SKIP_SIGNATURE,
    /// AZURE_STORAGE_ACCOUNT_NAME, AZURE_STORAGE_ACCOUNT_KEY; for Azurite,
    /// AZURE_STORAGE_USE_EMULATOR=true and AZURITE_BLOB_STORAGE_URL, ...).
    /// (Default: the config file's `lake`.)
    #[arg(long, env = "AUDITLAKE_LAKE", value_name = "LAKE")]
    pub lake: Option<String>,
    /// An object-store setting not in the environment, e.g. aws_endpoint=http://127.0.0.1:9000,
    /// aws_allow_http=true, azure_endpoint=http://127.0.0.1:10000/devstoreaccount1 or
    /// google_base_url=http://127.0.0.1:4443 (object_store's keys; repeatable).
    #[arg(long = "storage-option", value_name = "KEY=VALUE", value_parser = parse_key_value)]
    pub storage_options: Vec<(String, String)>,
}

impl LakeArg {
    /// Fills in what the command line and environment left open from the config: its
    /// lake, and its storage options under those given with --storage-option.
    fn resolve(&mut self, cfg: &config::Config) -> Result<()> {
        if self.lake.is_none() {
            self.lake = cfg.settings.lake.clone();
        }
        if self.lake.is_none() {
            return Err(crate::Error::Usage(
                "no lake: give --lake LAKE, set AUDITLAKE_LAKE, or set lake in the config file"
                    .into(),
            ));
        }
        let given: std::collections::HashSet<String> = self
            .storage_options
            .iter()
            .map(|(k, _)| k.clone())
            .collect();
        let mut options: Vec<(String, String)> = cfg
            .settings
            .storage_options
            .iter()
            .filter(|(k, _)| !given.contains(*k))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        options.append(&mut self.storage_options);
        self.storage_options = options;
        Ok(())
    }

    /// The lake's location (after [`LakeArg::resolve`]).
    fn location(&self) -> &str {
        self.lake.as_deref().unwrap_or_default()
    }

    /// Opens a lake that must already be there, for the commands that only read it:
    /// nothing is created, and a missing lake is `no lake at LAKE`.
    pub fn open_existing(&self, rt: &tokio::runtime::Runtime) -> Result<LakeStore> {
        let store = LakeStore::open_existing(self.location(), &self.storage_options)?;
        rt.block_on(crate::verify::ensure_lake(&store))?;
        tracing::debug!(lake = %store.display, "lake opened");
        Ok(store)
    }
}

fn parse_key_value(s: &str) -> std::result::Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.trim().to_string(), v.to_string()))
        .ok_or_else(|| format!("{s:?} is not KEY=VALUE"))
}

/// Runs a parsed command line.
pub fn run(args: Args) -> Result<ExitCode> {
    logging::init(args.verbose);
    crate::notes::set_quiet(args.quiet);
    let mut args = args;
    if let Some(lake) = lake_arg(&mut args.command) {
        lake.resolve(&config::Config::load(
            args.config.as_deref(),
            args.profile.as_deref(),
        )?)?;
    }
    match args.command {
        Command::Config {
            action: ConfigAction::Show { lake },
        } => {
            let cfg = config::Config::load(args.config.as_deref(), args.profile.as_deref())?;
            crate::write_stdout(&show_config(&cfg, lake))?;
            Ok(ExitCode::from(EXIT_OK))
        }
        Command::Convert {
            inputs,
            lake,
            json,
            threads,
            buffer_mb,
            zstd_level,
            max_record_mb,
            tenant,
        } => {
            let opts = ConvertOptions {
                lake: lake.location().to_string(),
                inputs,
                storage_options: lake.storage_options,
                threads,
                buffer_bytes: buffer_mb.max(1) << 20,
                progress: !args.quiet && !json,
                zstd_level,
                max_record_bytes: (max_record_mb as usize) << 20,
                tenant,
            };
            let summary = convert(&opts)?;
            tracing::info!(
                files = summary.files,
                partitions = summary.partitions,
                written = summary.written,
                seconds = summary.seconds,
                "convert done"
            );
            if json {
                crate::write_stdout(&format!("{}\n", serde_json::to_string_pretty(&summary)?))?;
            } else {
                crate::write_stdout(&render_summary(&summary))?;
            }
            Ok(ExitCode::from(if summary.has_problems() {
                EXIT_ERROR
            } else {
                EXIT_OK
            }))
        }
        Command::Fetch {
            lake,
            api,
            token_url,
            client_id,
            secret_file,
            source,
            resource_id,
            actor_id,
            action,
            status,
            from,
            to,
            overlap,
            job_timeout,
            ca_cert,
            dry_run,
            json,
            threads,
            max_window_secs,
        } => {
            let cfg = config::Config::load(args.config.as_deref(), args.profile.as_deref())?;
            let need = |v: Option<String>, what: &str| {
                v.ok_or_else(|| crate::Error::Usage(format!("fetch needs {what}")))
            };
            let parse_url = |s: String, what: &str| {
                url::Url::parse(&s).map_err(|e| {
                    crate::Error::Usage(format!(
                        "{what} {}: not a URL: {e}",
                        s.split('?').next().unwrap_or(&s)
                    ))
                })
            };
            let api = parse_url(
                need(
                    api.or(cfg.settings.dpod_api_url.clone()),
                    "the API URL: give --api URL, set AUDITLAKE_DPOD_API, or dpod_api_url in the config file",
                )?,
                "--api",
            )?;
            if from.zip(to).is_some_and(|(f, t)| f >= t) {
                return Err(crate::Error::Usage("--from must be before --to".into()));
            }
            let mut filters = std::collections::BTreeMap::new();
            for (k, v) in [
                ("source", source),
                ("resourceId", resource_id),
                ("actorId", actor_id),
                ("action", action),
                ("status", status),
            ] {
                if let Some(v) = v {
                    filters.insert(k.to_string(), v);
                }
            }
            let (token_url, client_id, secret) = if dry_run {
                (api.clone(), String::new(), String::new())
            } else {
                let token_url = parse_url(
                    need(
                        token_url.or(cfg.settings.dpod_token_url.clone()),
                        "the token URL: give --token-url URL, set AUDITLAKE_DPOD_TOKEN_URL, or dpod_token_url in the config file",
                    )?,
                    "--token-url",
                )?;
                let client_id = need(
                    client_id,
                    "the client id: give --client-id ID or set AUDITLAKE_DPOD_CLIENT_ID",
                )?;
                (token_url, client_id, read_secret(secret_file, &cfg)?)
            };
            let opts = crate::fetch::FetchOptions {
                api,
                token_url,
                client_id,
                secret: crate::fetch::Secret(secret),
                filters,
                from,
                to,
                overlap_secs: overlap,
                max_window_secs: max_window_secs.max(60),
                job_timeout: std::time::Duration::from_secs(job_timeout.max(1) as u64),
                ca_cert,
                dry_run,
                progress: !args.quiet && !json,
                convert: ConvertOptions {
                    lake: lake.location().to_string(),
                    inputs: vec![],
                    storage_options: lake.storage_options,
                    threads,
                    buffer_bytes: 160 << 20,
                    progress: false,
                    zstd_level: 1,
                    max_record_bytes: 256 << 20,
                    tenant: None,
                },
            };
            let summary = crate::fetch::fetch(&opts)?;
            if json {
                crate::write_stdout(&format!("{}\n", serde_json::to_string_pretty(&summary)?))?;
            } else {
                crate::write_stdout(&crate::fetch::render(&summary))?;
            }
            Ok(ExitCode::from(if summary.has_problems() {
                EXIT_ERROR
            } else {
                EXIT_OK
            }))
        }
        Command::Status { lake, json } => {
            let rt = runtime()?;
            let s = rt.block_on(status(&lake.open_existing(&rt)?))?;
            if json {
                crate::write_stdout(&format!("{}\n", serde_json::to_string_pretty(&s)?))?;
            } else {
                crate::write_stdout(&render(&s))?;
            }
            Ok(ExitCode::from(EXIT_OK))
        }
        Command::Verify { lake, json, fix } => {
            let rt = runtime()?;
            let store = lake.open_existing(&rt)?;
            // Removing temporary files is a write: not while a convert may be making them.
            let lock = if fix {
                Some(crate::lake::lock::LakeLock::acquire(&store, rt.handle())?)
            } else {
                None
            };
            let v = rt.block_on(crate::verify::verify(&store, fix));
            if let Some(lock) = lock {
                lock.release()?;
            }
            let v = v?;
            if json {
                crate::write_stdout(&format!("{}\n", serde_json::to_string_pretty(&v)?))?;
            } else {
                crate::write_stdout(&crate::verify::render(&v))?;
            }
            Ok(ExitCode::from(if v.open_findings() > 0 {
                EXIT_FINDINGS
            } else {
                EXIT_OK
            }))
        }
        Command::Compact {
            lake,
            tenant,
            from,
            to,
            dry_run,
            grace,
            zstd_level,
            json,
        } => {
            let rt = runtime()?;
            let store = lake.open_existing(&rt)?;
            let opts = crate::compact::CompactOptions {
                tenant,
                from,
                to,
                dry_run,
                zstd_level,
                grace: std::time::Duration::from_secs(grace.max(0) as u64),
            };
            let summary = crate::compact::compact(&store, &rt, &opts)?;
            if json {
                crate::write_stdout(&format!("{}\n", serde_json::to_string_pretty(&summary)?))?;
            } else {
                crate::write_stdout(&crate::compact::render(&summary))?;
            }
            Ok(ExitCode::from(EXIT_OK))
        }
        Command::Prune {
            lake,
            older_than,
            dry_run,
            json,
            today,
        } => {
            let rt = runtime()?;
            let store = lake.open_existing(&rt)?;
            let today =
                today.unwrap_or_else(|| chrono::Utc::now().timestamp().div_euclid(86_400) as i32);
            let cutoff = older_than.cutoff(today)?;
            let summary = crate::prune::prune(&store, &rt, cutoff, dry_run)?;
            if json {
                crate::write_stdout(&format!("{}\n", serde_json::to_string_pretty(&summary)?))?;
            } else {
                crate::write_stdout(&crate::prune::render(&summary))?;
            }
            Ok(ExitCode::from(EXIT_OK))
        }
        Command::Query {
            sql,
            file,
            session,
            format,
            output,
        } => {
            let sql = match (sql, file) {
                (Some(s), _) => s,
                (None, Some(f)) => {
                    std::fs::read_to_string(&f).map_err(|e| crate::Error::io(&f, e))?
                }
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
            let options = session.options(&rt)?;
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
                        let file =
                            std::fs::File::create(path).map_err(|e| crate::Error::io(path, e))?;
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
        Command::Report {
            names,
            lake,
            tenant,
            from,
            to,
            format,
            output,
            fail_on,
            fail_on_findings,
            rules,
            cluster,
        } => {
            let cluster = cluster.checked()?;
            let cfg = config::Config::load(args.config.as_deref(), args.profile.as_deref())?;
            let (rules, _) = rules.resolve(&cfg)?;
            let rt = runtime()?;
            let opts = ReportOptions {
                store: lake.open_existing(&rt)?,
                tenant,
                from,
                to,
                names,
                rules,
                cluster,
            };
            let pack = rt.block_on(crate::report::run(&opts))?;
            match (format, &output) {
                (ReportFormat::Csv, None) => {
                    return Err(crate::Error::Usage(
                        "--format csv writes one file per report: give --output DIR".into(),
                    ))
                }
                (ReportFormat::Csv, Some(dir)) => {
                    for (name, text) in render::csv_files(&pack)? {
                        write_output(dir, Some(&name), text.into_bytes(), &lake.storage_options)?;
                    }
                }
                (f, output) => {
                    let text = match f {
                        ReportFormat::Md => render::markdown(&pack)?,
                        ReportFormat::Html => render::html(&pack)?,
                        _ => render::json(&pack)?,
                    };
                    match output {
                        Some(path) => {
                            write_output(path, None, text.into_bytes(), &lake.storage_options)?
                        }
                        None => crate::write_stdout(&text)?,
                    }
                }
            }
            let findings = pack.active().count();
            if output.is_some() {
                crate::notes::note(&format!(
                    "{} reports, {findings} findings",
                    pack.reports.len()
                ));
            }
            let threshold = fail_on
                .map(Severity::from)
                .or(fail_on_findings.then_some(Severity::Low));
            let fail = match (threshold, pack.max_severity()) {
                (Some(t), Some(max)) => max >= t,
                _ => false,
            };
            Ok(ExitCode::from(if fail { EXIT_FINDINGS } else { EXIT_OK }))
        }
        Command::Rules {
            action: RulesAction::Show { rules },
        } => {
            let cfg = config::Config::load(args.config.as_deref(), args.profile.as_deref())?;
            let (rules, origin) = rules.resolve(&cfg)?;
            crate::write_stdout(&format!(
                "# rules in force, from {origin}\n{}",
                rules.to_toml()
            ))?;
            Ok(ExitCode::from(EXIT_OK))
        }
        Command::Completions { shell } => {
            // Into memory first: the generator panics on a write error, stdout may be closed.
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut Args::command(), "auditlake", &mut script);
            crate::write_stdout(&String::from_utf8_lossy(&script))?;
            Ok(ExitCode::from(EXIT_OK))
        }
        Command::Manpage { dir } => {
            match dir {
                Some(dir) => {
                    std::fs::create_dir_all(&dir).map_err(|e| crate::Error::io(&dir, e))?;
                    clap_mangen::generate_to(Args::command(), &dir)
                        .map_err(|e| crate::Error::io(&dir, e))?;
                }
                None => {
                    let mut page = Vec::new();
                    clap_mangen::Man::new(Args::command())
                        .render(&mut page)
                        .map_err(|e| crate::Error::io(std::path::Path::new("<man page>"), e))?;
                    crate::write_stdout(&String::from_utf8_lossy(&page))?;
                }
            }
            Ok(ExitCode::from(EXIT_OK))
        }
        Command::Inflate { inputs, threads } => {
            let (bytes_in, bytes_out, seconds) = crate::ingest::inflate_only(&inputs, threads)?;
            crate::write_stdout(&format!(
                "{}\n",
                serde_json::json!({ "bytes_in": bytes_in, "bytes_out": bytes_out, "seconds": seconds })
            ))?;
            Ok(ExitCode::from(EXIT_OK))
        }
        Command::Repl {
            session,
            format,
            maxrows,
        } => {
            let rt = runtime()?;
            let session = rt.block_on(build_session(&session.options(&rt)?))?;
            crate::query::repl::run(&rt, &session, format, (maxrows > 0).then_some(maxrows))?;
            Ok(ExitCode::from(EXIT_OK))
        }
        Command::Generate {
            output,
            events,
            tenants,
            start,
            months,
            seed,
            format,
            overlap_hours,
            incidents,
            manifest,
            zones,
            one_line_every,
            vendor,
            cloudhsm_form,
        } => {
            if vendor == Vendor::AwsCloudhsm && incidents {
                return Err(crate::Error::Usage(
                    "--incidents plants DPoD incidents: not with --vendor aws-cloudhsm".into(),
                ));
            }
            if vendor == Vendor::AwsCloudhsm && (zones || one_line_every > 0) {
                return Err(crate::Error::Usage(
                    "--zones and --one-line-every shape DPoD exports: not with --vendor aws-cloudhsm"
                        .into(),
                ));
            }
            if one_line_every > 0 && format == ExportFormat::Gzip {
                return Err(crate::Error::Usage(
                    "--one-line-every writes JSON arrays: not with --format gzip (NDJSON)".into(),
                ));
            }
            let manifest = incidents.then(|| {
                manifest.unwrap_or_else(|| {
                    let mut name = output.file_name().unwrap_or_default().to_os_string();
                    name.push(".incidents.json");
                    output.with_file_name(name)
                })
            });
            let paths = match vendor {
                Vendor::Dpod => generate(&GenerateOptions {
                    out: output,
                    events,
                    tenants,
                    start,
                    months,
                    seed,
                    format,
                    overlap_hours,
                    manifest,
                    zones,
                    one_line_every,
                })?,
                Vendor::AwsCloudhsm => crate::generate::cloudhsm::generate(&CloudHsmOptions {
                    out: output,
                    events,
                    clusters: tenants,
                    start,
                    months,
                    seed,
                    form: cloudhsm_form,
                    overlap_hours,
                })?,
            };
            let bytes: u64 = paths
                .iter()
                .filter_map(|p| std::fs::metadata(p).ok())
                .map(|m| m.len())
                .sum();
            crate::notes::note(&format!(
                "wrote {} exports ({})",
                paths.len(),
                human_bytes(bytes)
            ));
            Ok(ExitCode::from(EXIT_OK))
        }
    }
}

/// The lake argument of a command that has one (`config show` resolves its own).
fn lake_arg(command: &mut Command) -> Option<&mut LakeArg> {
    match command {
        Command::Convert { lake, .. }
        | Command::Fetch { lake, .. }
        | Command::Status { lake, .. }
        | Command::Verify { lake, .. }
        | Command::Compact { lake, .. }
        | Command::Prune { lake, .. }
        | Command::Report { lake, .. } => Some(lake),
        Command::Query { session, .. } | Command::Repl { session, .. } => Some(&mut session.lake),
        Command::Config { .. }
        | Command::Rules { .. }
        | Command::Completions { .. }
        | Command::Manpage { .. }
        | Command::Inflate { .. }
        | Command::Generate { .. } => None,
    }
}

/// The DPoD client secret: the file given (flag or $AUDITLAKE_DPOD_SECRET_FILE), else
/// $AUDITLAKE_DPOD_CLIENT_SECRET, else the config file's secret_file. Never a flag value.
fn read_secret(file: Option<PathBuf>, cfg: &config::Config) -> Result<String> {
    let env = std::env::var("AUDITLAKE_DPOD_CLIENT_SECRET")
        .ok()
        .filter(|s| !s.is_empty());
    let file = match (file, env) {
        (Some(f), _) => f,
        (None, Some(secret)) => return Ok(secret),
        (None, None) => cfg.settings.secret_file.clone().ok_or_else(|| {
            crate::Error::Usage(
                "fetch needs the client secret: set AUDITLAKE_DPOD_CLIENT_SECRET, give --secret-file FILE, or secret_file in the config file".into(),
            )
        })?,
    };
    let text = std::fs::read_to_string(&file)
        .map_err(|e| crate::Error::Usage(format!("the secret file {}: {e}", file.display())))?;
    let secret = text.trim_end_matches(['\r', '\n']).to_string();
    if secret.is_empty() {
        return Err(crate::Error::Usage(format!(
            "{}: the secret file is empty",
            file.display()
        )));
    }
    Ok(secret)
}

/// `config show`: each setting in force, where it came from, secrets masked.
fn show_config(cfg: &config::Config, mut lake: LakeArg) -> String {
    let from_file = match &cfg.profile {
        Some(p) => format!("config file, profile {p}"),
        None => "config file".into(),
    };
    let lake_from = match &lake.lake {
        Some(_) if std::env::args().any(|a| a == "--lake" || a.starts_with("--lake=")) => "flag",
        Some(_) => "environment: AUDITLAKE_LAKE",
        None => from_file.as_str(),
    };
    let flag_keys: Vec<String> = lake
        .storage_options
        .iter()
        .map(|(k, _)| k.clone())
        .collect();
    let resolved = lake.resolve(cfg).is_ok();
    let mut out = format!(
        "config file: {}\nprofile: {}\n",
        cfg.path
            .as_ref()
            .map_or("(none)".into(), |p| p.display().to_string()),
        cfg.profile.as_deref().unwrap_or("(none)")
    );
    if resolved {
        out.push_str(&format!(
            "lake: {} ({lake_from})\n",
            config::shown("lake", lake.location())
        ));
    } else {
        out.push_str("lake: (none)\n");
    }
    for (k, v) in &lake.storage_options {
        let from = if flag_keys.contains(k) {
            "flag"
        } else {
            from_file.as_str()
        };
        out.push_str(&format!(
            "storage option {k}: {} ({from})\n",
            config::shown(k, v)
        ));
    }
    let s = &cfg.settings;
    for (k, v) in [
        ("cluster", s.cluster.clone()),
        ("dpod_api_url", s.dpod_api_url.clone()),
        ("dpod_token_url", s.dpod_token_url.clone()),
        (
            "secret_file",
            s.secret_file.as_ref().map(|p| p.display().to_string()),
        ),
    ] {
        if let Some(v) = v {
            out.push_str(&format!(
                "{k}: {} ({from_file}{})\n",
                config::shown(k, &v),
                if k == "cluster" {
                    "; reserved, not used yet"
                } else {
                    ""
                }
            ));
        }
    }
    out
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
