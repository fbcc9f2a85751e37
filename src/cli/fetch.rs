//! `auditlake fetch`: exports straight from the DPoD Audit Query API into the lake,
//! exactly once, and the client secret it needs (never from a flag).

use std::path::PathBuf;
use std::process::ExitCode;

use super::common::{
    parse_duration_arg, print_summary, sign_checkpoint, Global, LakeArg, SigningArg,
};
use super::{config, EXIT_ERROR, EXIT_OK};
use crate::convert::ConvertOptions;
use crate::Result;

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
#[derive(clap::Args, Debug)]
pub struct FetchArgs {
    #[command(flatten)]
    pub lake: LakeArg,
    #[command(flatten)]
    pub signing: SigningArg,
    /// The tenant's DPoD API base URL (default: the config file's dpod_api_url).
    #[arg(long, env = "AUDITLAKE_DPOD_API", value_name = "URL")]
    pub api: Option<String>,
    /// The tenant's OAuth2 token URL (default: the config file's dpod_token_url).
    #[arg(long, env = "AUDITLAKE_DPOD_TOKEN_URL", value_name = "URL")]
    pub token_url: Option<String>,
    /// The platform credentials' client id.
    #[arg(long, env = "AUDITLAKE_DPOD_CLIENT_ID", value_name = "ID")]
    pub client_id: Option<String>,
    /// A file holding the client secret (default: $AUDITLAKE_DPOD_CLIENT_SECRET, else
    /// the config file's secret_file). There is no flag for the secret itself.
    #[arg(long, env = "AUDITLAKE_DPOD_SECRET_FILE", value_name = "FILE")]
    pub secret_file: Option<PathBuf>,
    /// Only records of this source (e.g. thales/cloudhsm/<partition id>).
    #[arg(long, value_name = "SOURCE")]
    pub source: Option<String>,
    /// Only records of this resource (service id).
    #[arg(long, value_name = "ID")]
    pub resource_id: Option<String>,
    /// Only records of this actor (client id).
    #[arg(long, value_name = "ID")]
    pub actor_id: Option<String>,
    /// Only records of this action (e.g. LUNA_LOGIN).
    #[arg(long, value_name = "ACTION")]
    pub action: Option<String>,
    /// Only records with this status (e.g. LUNA_RET_OK).
    #[arg(long, value_name = "STATUS")]
    pub status: Option<String>,
    /// Start of the period, UTC: YYYY-MM-DD or RFC 3339 (default: where the fetched
    /// coverage ends, less --overlap; on a lake with none, 12 months ago).
    #[arg(long, value_name = "TIME", value_parser = parse_instant_arg)]
    pub from: Option<i64>,
    /// End of the period, exclusive (default: now).
    #[arg(long, value_name = "TIME", value_parser = parse_instant_arg)]
    pub to: Option<i64>,
    /// How far back before the end of the fetched coverage a default --from starts,
    /// for records that arrive late (s, m, h or d).
    #[arg(long, default_value = "1h", value_name = "DURATION", value_parser = parse_duration_arg)]
    pub overlap: i64,
    /// How long to wait for one export job before giving up on its window.
    #[arg(long, default_value = "1h", value_name = "DURATION", value_parser = parse_duration_arg)]
    pub job_timeout: i64,
    /// A PEM file of CA certificates to trust besides the system's (also: SSL_CERT_FILE).
    #[arg(long, value_name = "FILE")]
    pub ca_cert: Option<PathBuf>,
    /// Print the windows that would be asked for, and nothing else.
    #[arg(long)]
    pub dry_run: bool,
    /// Print the summary as JSON on stdout.
    #[arg(long)]
    pub json: bool,
    /// Decoder threads, and as many Parquet encoder threads (0: one per core each).
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub threads: usize,
    /// The longest window asked for, in seconds (the service's limit is 31 days).
    #[arg(long, hide = true, default_value_t = crate::fetch::windows::MAX_WINDOW_SECS)]
    pub max_window_secs: i64,
}

fn parse_instant_arg(s: &str) -> std::result::Result<i64, String> {
    crate::fetch::windows::parse_instant(s)
}

/// Fetches; exit code 2 when a window could not be fetched or converted fully.
pub fn run(args: FetchArgs, global: &Global) -> Result<ExitCode> {
    let FetchArgs {
        lake,
        signing,
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
    } = args;
    let cfg = global.load_config()?;
    let signer = signing.signer(global)?;
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
        progress: !global.quiet && !json,
        convert: ConvertOptions {
            lake: lake.location().to_string(),
            inputs: vec![],
            storage_options: lake.storage_options.clone(),
            threads,
            buffer_bytes: 160 << 20,
            progress: false,
            zstd_level: 1,
            max_record_bytes: 256 << 20,
            tenant: None,
        },
    };
    let summary = crate::fetch::fetch(&opts)?;
    if let Some(s) = signer.as_ref().filter(|_| !dry_run) {
        sign_checkpoint(&lake, s)?;
    }
    print_summary(json, &summary, crate::fetch::render)?;
    Ok(ExitCode::from(if summary.has_problems() {
        EXIT_ERROR
    } else {
        EXIT_OK
    }))
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
