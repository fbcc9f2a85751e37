//! `auditlake serve`: the lake over the PostgreSQL wire protocol, read-only.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use super::common::{runtime, Global, LakeArg, RulesArgs};
use super::users::UsersFileArg;
use super::EXIT_OK;
use crate::serve::users::Users;
use crate::serve::{ServeOptions, DEFAULT_LISTEN};
use crate::{Error, Result};

/// Serve the lake to PostgreSQL clients: Grafana, psql, DBeaver, Metabase, pandas.
///
/// Read-only: queries, EXPLAIN, SHOW and session SETs; anything that would write is
/// refused. Each connection gets its own session, the same tables and views as `query`,
/// scoped to the user's tenants. Users log in with SCRAM-SHA-256 (`auditlake users add`);
/// without a users file anyone on this machine may connect, and serve listens on
/// loopback only. Off loopback it needs TLS (--tls-cert, --tls-key). SIGTERM or Ctrl-C
/// lets running statements finish, then exits 0.
///
/// Examples:
///   auditlake serve --lake ./lake                       # 127.0.0.1:5433, no users
///   psql "host=127.0.0.1 port=5433 dbname=auditlake" -c "SELECT * FROM failed_logins"
///   auditlake users add grafana --tenant acme
///   auditlake serve --lake ./lake --listen 0.0.0.0:5433 --tls-cert cert.pem --tls-key key.pem
#[derive(clap::Args, Debug)]
#[command(verbatim_doc_comment)]
pub struct ServeArgs {
    #[command(flatten)]
    pub lake: LakeArg,
    /// Address to listen on, HOST:PORT (port 0: any free port, printed at start)
    /// [default: the config's `listen`, else 127.0.0.1:5433].
    #[arg(long, env = "AUDITLAKE_LISTEN", value_name = "HOST:PORT")]
    pub listen: Option<String>,
    #[command(flatten)]
    pub users: UsersFileArg,
    /// The server's certificate chain (PEM); with --tls-key. Every connection must then
    /// use TLS; a certificate that does not load stops serve at start.
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The certificate's private key (PEM).
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Listen off loopback without TLS (passwords are still never sent, but rows are).
    #[arg(long)]
    pub insecure_plaintext: bool,
    /// Connections at once; more are refused with "too many connections".
    #[arg(long, value_name = "N", default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..=10000))]
    pub max_connections: u32,
    /// Memory of sorts, joins and aggregates for all connections together (e.g. 4G);
    /// each connection gets its share, and spills to temporary files past it
    /// (default: half the machine's memory).
    #[arg(long, value_name = "SIZE", value_parser = crate::query::parse_size)]
    pub memory_limit: Option<usize>,
    /// A directory of your own .sql view files, added to the built-in ones.
    #[arg(long, value_name = "DIR")]
    pub sql_dir: Option<PathBuf>,
    /// A TOML rules file whose time zones give each tenant's clock (events_local,
    /// off_hours_activity); default: the config file's [rules], else UTC.
    #[arg(long, value_name = "FILE")]
    pub rules: Option<PathBuf>,
}

pub fn run(args: ServeArgs, global: &Global) -> Result<ExitCode> {
    let cfg = global.load_config()?;
    let rt = runtime()?;
    let store = args.lake.open_existing(&rt)?;
    let users = match args.users.path(&cfg) {
        Some((path, named)) if named || path.is_file() => {
            let users = Users::load(&path, false)?;
            if users.users.is_empty() {
                return Err(Error::Usage(format!(
                    "{}: no users (add one with `auditlake users add NAME`)",
                    path.display()
                )));
            }
            Some((path, Arc::new(users)))
        }
        _ => None,
    };
    let tls = match (
        args.tls_cert.or_else(|| cfg.settings.tls_cert.clone()),
        args.tls_key.or_else(|| cfg.settings.tls_key.clone()),
    ) {
        (Some(c), Some(k)) => Some((c, k)),
        (None, None) => None,
        _ => {
            return Err(Error::Usage(
                "TLS needs both a certificate and a key (--tls-cert and --tls-key)".into(),
            ))
        }
    };
    let (rules, origin) = RulesArgs {
        rules: args.rules,
        baseline: None,
    }
    .resolve(&cfg)?;
    let zones = rules
        .zones()
        .map_err(|e| Error::Usage(format!("{origin}: {e}")))?;
    let opts = ServeOptions {
        store,
        listen: args
            .listen
            .or_else(|| cfg.settings.listen.clone())
            .unwrap_or_else(|| DEFAULT_LISTEN.to_string()),
        users,
        tls,
        insecure_plaintext: args.insecure_plaintext,
        max_connections: args.max_connections as usize,
        memory_limit: args
            .memory_limit
            .unwrap_or_else(crate::query::default_memory_limit),
        sql_dir: args.sql_dir,
        zones,
    };
    let quiet = global.quiet;
    let scope = match &opts.users {
        Some((p, u)) => format!("{} users from {}", u.users.len(), p.display()),
        None => "no users file: anyone on this machine may connect".to_string(),
    };
    let tls_on = opts.tls.is_some();
    rt.block_on(crate::serve::serve(
        opts,
        |addr| {
            // The one line a script waits for (port 0 binds a free port).
            if !quiet {
                eprintln!(
                    "auditlake serve: listening on {addr} ({}; {scope}); stop with Ctrl-C or SIGTERM",
                    if tls_on { "TLS" } else { "no TLS" }
                );
            } else {
                eprintln!("auditlake serve: listening on {addr}");
            }
        },
        shutdown_signal(),
    ))?;
    Ok(ExitCode::from(EXIT_OK))
}

/// SIGTERM or Ctrl-C.
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {},
                    _ = tokio::signal::ctrl_c() => {},
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
    tracing::info!("shutdown asked for");
}
