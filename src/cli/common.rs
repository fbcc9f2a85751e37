//! What several subcommands share: the global flags they read, the flag groups
//! (`LakeArg`, `SessionArgs`, `ClusterArg`, `RulesArgs`), value parsers, output writers
//! and the async runtime.

use std::path::PathBuf;

use object_store::ObjectStoreExt;

use super::config;
use crate::lake::store::LakeStore;
use crate::query::SessionOptions;
use crate::report::rules::Rules;
use crate::Result;

/// The top-level flags a subcommand may read (`-v` is acted on before it runs).
#[derive(Debug, Clone, Default)]
pub struct Global {
    /// `--quiet`: no progress bar and no notes.
    pub quiet: bool,
    /// `--config FILE`.
    pub config: Option<PathBuf>,
    /// `--profile NAME`.
    pub profile: Option<String>,
}

impl Global {
    /// The config in force: `--config`, else the default file, with `--profile` laid over.
    pub fn load_config(&self) -> Result<config::Config> {
        config::Config::load(self.config.as_deref(), self.profile.as_deref())
    }
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
    pub(crate) fn resolve(&mut self, cfg: &config::Config) -> Result<()> {
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
    pub(crate) fn location(&self) -> &str {
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

/// The key that signs the lake's chain after a write.
#[derive(clap::Args, Debug, Clone)]
pub struct SigningArg {
    /// After publishing, append a checkpoint of the lake's chain signed with this
    /// Ed25519 key (a file from `auditlake keys generate`; default: the config file's
    /// signing_key). The key never enters the lake or any output.
    #[arg(long, env = "AUDITLAKE_SIGNING_KEY", value_name = "FILE")]
    pub signing_key: Option<PathBuf>,
}

impl SigningArg {
    /// Reads the key before any work, so that a bad key file stops the command first.
    pub fn signer(&self, global: &Global) -> Result<Option<crate::lake::chain::Signer25519>> {
        let path = match &self.signing_key {
            Some(p) => Some(p.clone()),
            None => global.load_config()?.settings.signing_key,
        };
        path.map(|p| crate::lake::chain::Signer25519::read(&p))
            .transpose()
    }
}

/// Appends a signed checkpoint of the lake's chain, under the lake lock.
pub fn sign_checkpoint(lake: &LakeArg, signer: &crate::lake::chain::Signer25519) -> Result<()> {
    let rt = runtime()?;
    let store = LakeStore::open(lake.location(), &lake.storage_options)?;
    let lock = crate::lake::lock::LakeLock::acquire(&store, rt.handle())?;
    let held = store.holding(lock.held());
    let signed = rt.block_on(crate::lake::chain::sign(&held, signer));
    lock.release()?;
    if let Some(h) = signed? {
        crate::notes::note(&format!(
            "signed checkpoint: head {} after {} events",
            h.head, h.length
        ));
    }
    Ok(())
}

fn parse_key_value(s: &str) -> std::result::Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.trim().to_string(), v.to_string()))
        .ok_or_else(|| format!("{s:?} is not KEY=VALUE"))
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
    /// A TOML rules file whose time zones give each tenant's clock (events_local,
    /// off_hours_activity); default: the config file's [rules], else UTC.
    #[arg(long, value_name = "FILE")]
    pub rules: Option<PathBuf>,
    #[command(flatten)]
    pub cluster: ClusterArg,
}

impl SessionArgs {
    /// The session's options over a lake that must already be there.
    pub(crate) fn options(
        &self,
        rt: &tokio::runtime::Runtime,
        cfg: &config::Config,
    ) -> Result<SessionOptions> {
        let cluster = self.cluster.checked()?;
        let (rules, origin) = RulesArgs {
            rules: self.rules.clone(),
            baseline: None,
        }
        .resolve(cfg)?;
        let zones = rules
            .zones()
            .map_err(|e| crate::Error::Usage(format!("{origin}: {e}")))?;
        Ok(SessionOptions {
            zones,
            cluster,
            store: self.lake.open_existing(rt)?,
            tenant: self.tenant.clone(),
            tenants: Vec::new(),
            period: None,
            sql_dir: self.sql_dir.clone(),
            memory_limit: self.memory_limit,
            baseline_days: None,
        })
    }
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
    pub(crate) fn checked(&self) -> Result<Option<String>> {
        if let Some(url) = &self.url {
            crate::query::check_cluster(url)?;
        }
        Ok(self.url.clone())
    }
}

/// The lake, tenant and period a report or the findings cover.
#[derive(clap::Args, Debug)]
pub struct PeriodArgs {
    #[command(flatten)]
    pub lake: LakeArg,
    /// Only this tenant (other tenants' files are not read).
    #[arg(long, value_name = "TENANT")]
    pub tenant: Option<String>,
    /// First day of the period, UTC, inclusive (default: the lake's first day).
    #[arg(long, value_name = "YYYY-MM-DD", value_parser = parse_day_arg)]
    pub from: Option<i32>,
    /// Last day of the period, UTC, inclusive (default: the lake's last day).
    #[arg(long, value_name = "YYYY-MM-DD", value_parser = parse_day_arg)]
    pub to: Option<i32>,
}

/// How a report's findings are judged, besides its period: what `report` and `findings`
/// share.
pub struct Judging<'a> {
    pub names: Vec<String>,
    pub memory_limit: Option<usize>,
    pub rules: &'a RulesArgs,
    pub acks: &'a AcksArg,
    pub cluster: &'a ClusterArg,
}

impl PeriodArgs {
    /// The options of a report (or of the findings alone) over this period.
    pub(crate) fn report_options(
        &self,
        rt: &tokio::runtime::Runtime,
        global: &Global,
        judging: Judging,
    ) -> Result<crate::report::ReportOptions> {
        let cluster = judging.cluster.checked()?;
        let cfg = global.load_config()?;
        let (rules, _) = judging.rules.resolve(&cfg)?;
        Ok(crate::report::ReportOptions {
            store: self.lake.open_existing(rt)?,
            tenant: self.tenant.clone(),
            from: self.from,
            to: self.to,
            names: judging.names,
            rules,
            acks: judging.acks.load(&cfg)?,
            memory_limit: judging.memory_limit,
            cluster,
        })
    }
}

/// Where acknowledgements of findings are kept.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct AcksArg {
    /// The acknowledgements file, written by `auditlake findings ack` (default: the config
    /// file's `acks`, else acks.toml beside the config file).
    #[arg(long, env = "AUDITLAKE_ACKS", value_name = "FILE")]
    pub acks: Option<PathBuf>,
}

impl AcksArg {
    /// The file in force: the flag or `$AUDITLAKE_ACKS`, else the config's `acks`, else
    /// `acks.toml` beside the config file.
    pub fn path(&self, cfg: &config::Config) -> Option<PathBuf> {
        self.acks
            .clone()
            .or_else(|| cfg.settings.acks.clone())
            .or_else(|| {
                cfg.path
                    .clone()
                    .or_else(config::default_path)
                    .and_then(|p| p.parent().map(|d| d.join("acks.toml")))
            })
    }

    /// The acknowledgements in force (none when there is no file yet).
    pub fn load(&self, cfg: &config::Config) -> Result<crate::report::acks::Acks> {
        match self.path(cfg) {
            Some(p) => crate::report::acks::Acks::load(&p),
            None => Ok(Default::default()),
        }
    }
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
        let (mut rules, origin) = match (&self.rules, &cfg.rules_table) {
            // A rules file over the config's [rules], key by key.
            (Some(p), Some(base)) => (
                Rules::load_over(p, base).map_err(|e| crate::Error::Usage(e.to_string()))?,
                format!(
                    "{} over the [rules] of {}",
                    p.display(),
                    cfg.path
                        .as_ref()
                        .map_or("the config".into(), |c| c.display().to_string())
                ),
            ),
            (Some(p), None) => (
                Rules::load(p).map_err(|e| crate::Error::Usage(e.to_string()))?,
                p.display().to_string(),
            ),
            (None, Some(_)) => (
                cfg.rules.clone().unwrap_or_default(),
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

pub(crate) fn parse_duration_arg(s: &str) -> std::result::Result<i64, String> {
    crate::fetch::windows::parse_duration(s)
}

pub(crate) fn parse_day_arg(s: &str) -> std::result::Result<i32, String> {
    crate::time::parse_day(s).ok_or_else(|| format!("{s:?} is not a date (YYYY-MM-DD)"))
}

/// Prints a command's summary on stdout: pretty JSON with `--json`, else `render`'s text.
pub(crate) fn print_summary<T: serde::Serialize>(
    json: bool,
    summary: &T,
    render: impl FnOnce(&T) -> String,
) -> Result<()> {
    if json {
        crate::write_stdout(&format!("{}\n", serde_json::to_string_pretty(summary)?))
    } else {
        crate::write_stdout(&render(summary))
    }
}

/// Writes an output to a local path (atomically) or to an object-store URL (one PUT);
/// `name` is a file inside `location` taken as a directory.
pub(crate) fn write_output(
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

pub(crate) fn runtime() -> Result<tokio::runtime::Runtime> {
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
