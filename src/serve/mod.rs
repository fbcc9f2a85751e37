//! `auditlake serve`: the lake's SQL session over the PostgreSQL wire protocol, for the
//! tools security teams already use (Grafana, psql, DBeaver, Metabase, pandas).
//!
//! A connection enters in [`serve`]'s accept loop (TLS when configured, refused when
//! over `--max-connections`), authenticates with SCRAM-SHA-256 against the users file
//! ([`auth`]), and gets its own session over the lake, built as `query` builds one and
//! scoped to the user's tenants ([`session`]). Every statement passes the read-only
//! guard ([`guard`]) before DataFusion plans it; rows leave through datafusion-postgres's
//! encoder, streamed batch by batch.

pub mod auth;
pub mod guard;
pub mod scram;
pub mod session;
pub mod users;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use datafusion_postgres::pgwire::tokio::tokio_rustls::rustls;
use datafusion_postgres::pgwire::tokio::{process_socket, TlsAcceptor};
use tokio::net::TcpListener;
use tokio::sync::Notify;

use crate::lake::store::LakeStore;
use crate::query::TenantZones;
use crate::{Error, Result};
use users::Users;

/// Where `serve` listens when nothing says otherwise (5433: beside a PostgreSQL on 5432).
pub const DEFAULT_LISTEN: &str = "127.0.0.1:5433";

/// Everything a server needs.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    pub store: LakeStore,
    pub listen: String,
    /// The users file and its users; `None`: anyone may connect (loopback only).
    pub users: Option<(PathBuf, Arc<Users>)>,
    /// Certificate chain and private key (PEM).
    pub tls: Option<(PathBuf, PathBuf)>,
    /// Off loopback without TLS, listen all the same.
    pub insecure_plaintext: bool,
    pub max_connections: usize,
    /// Memory of sorts, joins and aggregates for all connections together; each one
    /// gets its share (the total over `max_connections`).
    pub memory_limit: usize,
    pub sql_dir: Option<PathBuf>,
    pub zones: TenantZones,
}

/// What every connection shares: the options and the count of running statements
/// (which a shutdown waits for).
pub struct Shared {
    pub opts: ServeOptions,
    running: AtomicUsize,
    idle: Notify,
}

impl Shared {
    /// A statement starts: the returned guard ends it when dropped.
    pub fn statement(self: &Arc<Self>) -> Running {
        self.running.fetch_add(1, Ordering::SeqCst);
        Running(self.clone())
    }

    /// Memory each connection's session may hold.
    pub fn memory_per_connection(&self) -> usize {
        (self.opts.memory_limit / self.opts.max_connections.max(1)).max(64 << 20)
    }
}

/// A running statement (see [`Shared::statement`]).
pub struct Running(Arc<Shared>);

impl Drop for Running {
    fn drop(&mut self) {
        if self.0.running.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}

/// Refuses what must not be: a users-less or plaintext server off loopback.
pub fn check_exposure(addr: &SocketAddr, opts: &ServeOptions) -> Result<()> {
    if addr.ip().is_loopback() {
        return Ok(());
    }
    if opts.users.is_none() {
        return Err(Error::Usage(format!(
            "refusing to listen on {addr} without a users file: anyone who reaches it could read the lake (add users with `auditlake users add`, or listen on 127.0.0.1)"
        )));
    }
    if opts.tls.is_none() && !opts.insecure_plaintext {
        return Err(Error::Usage(format!(
            "refusing to listen on {addr} without TLS: give --tls-cert and --tls-key (or --insecure-plaintext to send passwords' proofs and rows in the clear)"
        )));
    }
    Ok(())
}

/// Loads the certificate chain and key; any fault stops the server before it listens.
pub fn tls_acceptor(cert: &Path, key: &Path) -> Result<TlsAcceptor> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    let bad = |p: &Path, what: String| Error::Usage(format!("{}: {what}", p.display()));
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(|e| bad(cert, format!("cannot read a certificate: {e}")))?
        .collect::<std::result::Result<_, _>>()
        .map_err(|e| bad(cert, format!("not a PEM certificate: {e}")))?;
    if certs.is_empty() {
        return Err(bad(cert, "no certificate in the file".into()));
    }
    let key_der = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| bad(key, format!("not a PEM private key: {e}")))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| bad(cert, e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key_der)
        .map_err(|e| bad(cert, format!("certificate and key do not go together: {e}")))?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// Binds, then serves until `shutdown` resolves; then stops accepting, waits for the
/// running statements to finish and returns. `ready` is told the address bound
/// (port 0 binds a free port).
pub async fn serve(
    opts: ServeOptions,
    ready: impl FnOnce(SocketAddr),
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<()> {
    let tls = match &opts.tls {
        Some((cert, key)) => Some(tls_acceptor(cert, key)?),
        None => None,
    };
    let listen = opts.listen.clone();
    let mut addrs = tokio::net::lookup_host(&listen)
        .await
        .map_err(|e| Error::Usage(format!("--listen {listen}: {e}")))?;
    let addr = addrs
        .next()
        .ok_or_else(|| Error::Usage(format!("--listen {listen}: no address")))?;
    check_exposure(&addr, &opts)?;
    // The lake is opened once before listening, so a wrong --lake stops here.
    session::check_lake(&opts).await?;
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|e| Error::Usage(format!("cannot listen on {addr}: {e}")))?;
    let bound = listener
        .local_addr()
        .map_err(|e| Error::Usage(format!("cannot listen on {addr}: {e}")))?;
    tracing::info!(
        %bound,
        tls = tls.is_some(),
        users = opts.users.as_ref().map(|(p, u)| format!("{} ({} users)", p.display(), u.users.len())),
        max_connections = opts.max_connections,
        "listening"
    );
    ready(bound);
    let max = opts.max_connections.max(1);
    let shared = Arc::new(Shared {
        opts,
        running: AtomicUsize::new(0),
        idle: Notify::new(),
    });
    let connections = Arc::new(tokio::sync::Semaphore::new(max));
    tokio::pin!(shutdown);
    loop {
        let (socket, peer) = tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of descriptors and the like: wait a moment, keep serving.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let _ = socket.set_nodelay(true);
        let permit = connections.clone().try_acquire_owned().ok();
        let handlers = auth::Connection::new(shared.clone(), peer, permit.is_none());
        let tls = tls.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let started = std::time::Instant::now();
            let outcome = process_socket(socket, tls, handlers.clone()).await;
            let ms = started.elapsed().as_secs_f64() * 1e3;
            match outcome {
                Ok(()) => {
                    tracing::info!(%peer, user = handlers.user().as_deref().unwrap_or("-"), ms, "connection closed")
                }
                Err(e) => tracing::info!(%peer, error = %e, ms, "connection ended"),
            }
        });
    }
    drop(listener);
    // Drain: the statements running now finish and their rows are sent.
    loop {
        let idle = shared.idle.notified();
        let running = shared.running.load(Ordering::SeqCst);
        if running == 0 {
            break;
        }
        tracing::info!(running, "shutting down: waiting for running statements");
        idle.await;
    }
    tracing::info!("shut down");
    Ok(())
}
