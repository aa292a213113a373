//! Binding, serving and graceful shutdown, the same for every service (zero2prod's
//! `Application::build` → `port()` → `run_until_stopped()`).

use std::future::Future;
use std::net::SocketAddr;

use axum::Router;
use tokio::net::TcpListener;

use crate::HttpSettings;

/// Why a service could not start. Every service's `App::build` returns it.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Db(#[from] crate::db::DbError),
    #[error("cannot connect to Redis")]
    Redis(#[source] redis::RedisError),
    #[error(transparent)]
    Keys(#[from] crate::auth::KeyError),
    #[error("cannot bind the HTTP port")]
    Bind(#[source] std::io::Error),
    #[error("cannot provision the service's topics")]
    Topics(#[from] crate::messaging::TopicError),
    #[error("cannot start the outbox relay")]
    Relay(#[from] crate::messaging::RelayError),
    #[error("cannot start a consumer")]
    Consumer(#[from] crate::messaging::ConsumerError),
    /// A service-specific start-up step failed (the message names it).
    #[error("{0}")]
    Setup(String),
}

/// What every service connects to first: its database (migrated when configured), Redis, the
/// verifier of access tokens (reading Redis's deny-list) and service credentials, and the
/// signer of its own credentials for its peers.
#[derive(Debug)]
pub struct Foundation {
    pub db: sqlx::PgPool,
    pub redis: crate::cache::Redis,
    pub verifier: std::sync::Arc<crate::auth::TokenVerifier>,
    pub signer: std::sync::Arc<crate::credential::ServiceSigner>,
}

impl Foundation {
    /// `service`'s foundation: `service` is the name its credentials carry.
    pub async fn connect(
        service: &str,
        database: &crate::DatabaseSettings,
        redis: &crate::RedisSettings,
        auth: &crate::AuthSettings,
        migrations: &[&sqlx::migrate::Migrator],
    ) -> Result<Self, StartError> {
        let db = crate::db::connect_and_migrate_all(database, migrations).await?;
        let redis = crate::cache::Redis::connect(redis)
            .await
            .map_err(StartError::Redis)?;
        let verifier = std::sync::Arc::new(crate::auth::TokenVerifier::new(auth, redis.clone())?);
        let signer = std::sync::Arc::new(crate::credential::ServiceSigner::new(service, auth)?);
        Ok(Self {
            db,
            redis,
            verifier,
            signer,
        })
    }
}

/// A bound, not yet serving HTTP server. Binding port 0 picks a free port (tests). Only
/// [`Service`] makes one: no service binds a server of its own.
#[derive(Debug)]
struct Server {
    listener: TcpListener,
    router: Router,
}

/// A listening socket handed over by whoever started the process (systemd's socket activation
/// protocol, `LISTEN_FDS=1`, the socket as fd 3; `kommerce up` does this), so that its port is
/// known before the process starts and nobody has to guess a free one. Taken once per process.
fn inherited_listener() -> std::io::Result<Option<TcpListener>> {
    static TAKEN: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    if std::env::var_os("LISTEN_FDS").is_none()
        || TAKEN.swap(true, std::sync::atomic::Ordering::SeqCst)
    {
        return Ok(None);
    }
    match listenfd::ListenFd::from_env().take_tcp_listener(0)? {
        Some(std_listener) => {
            std_listener.set_nonblocking(true)?;
            TcpListener::from_std(std_listener).map(Some)
        }
        None => Ok(None),
    }
}

impl Server {
    /// Serves on the socket handed over at start (see [`inherited_listener`]) or binds
    /// `host:port`.
    async fn bind(settings: &HttpSettings, router: Router) -> std::io::Result<Self> {
        let listener = match inherited_listener()? {
            Some(l) => l,
            None => TcpListener::bind((settings.host.as_str(), settings.port)).await?,
        };
        Ok(Self { listener, router })
    }

    fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until `stop` resolves, then lets in-flight requests finish.
    async fn run_until(
        self,
        stop: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        crate::http::serve(self.listener, self.router, stop).await
    }
}

/// Resolves on SIGTERM (Kubernetes stopping the pod) or Ctrl-C.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutdown signal received, draining");
}

/// A service ready to serve: its bound HTTP server (API, health, metrics, layers) and the
/// workers that run beside it and stop with it. Every service's `App::build` returns one.
#[derive(Debug)]
pub struct Service {
    server: Server,
    port: u16,
    workers: crate::workers::Workers,
}

impl Service {
    /// Wraps `api` in the kit's layers and health routes and binds it.
    pub async fn bind(
        http: &HttpSettings,
        api: Router,
        readiness: crate::http::Readiness,
        workers: crate::workers::Workers,
    ) -> Result<Self, StartError> {
        let readiness = readiness.with_workers(workers.health());
        let app = crate::http::service_router(api, readiness, http);
        let server = Server::bind(http, app).await.map_err(StartError::Bind)?;
        let port = server.local_addr().map_err(StartError::Bind)?.port();
        Ok(Self {
            server,
            port,
            workers,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Serves until SIGTERM or Ctrl-C.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.run_until(shutdown_signal()).await
    }

    /// Serves until `stop`, then stops the workers (each finishes the message in hand).
    pub async fn run_until(
        self,
        stop: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let served = self.server.run_until(stop).await;
        self.workers.stop().await;
        served
    }
}
