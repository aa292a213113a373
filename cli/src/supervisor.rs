//! `kommerce up`: databases and migrations, every service as a child process with its log
//! lines tagged, the local router in front, and Ctrl-C stopping everything.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use command_fds::{CommandFdExt as _, FdMapping};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use sqlx::{Connection, PgConnection};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use kommerce_kit::db::with_database_name as database_url;

use crate::topology::{SERVICES, ServiceSpec};

/// How `kommerce up` runs.
#[derive(Debug, Clone)]
pub struct UpOptions {
    /// Where the local router listens; service `s` gets `port + s.port_offset`. Port 0: every
    /// port is picked by the system (tests).
    pub host: String,
    pub port: u16,
    /// A database URL with rights to create databases; each service gets `kommerce_<name>`.
    pub database_url: String,
    pub redis_url: String,
    /// Where the development key pair is kept between runs.
    pub state_dir: PathBuf,
    /// Where the service binaries are (by default next to `kommerce`).
    pub bin_dir: PathBuf,
    pub admin: Option<(String, String)>,
    /// A platform of its own beside others on the same PostgreSQL, Redis and broker: databases
    /// `kommerce_<namespace>_<name>`, Kafka namespace and Redis key prefix `<namespace>`.
    pub namespace: Option<String>,
    /// The Kafka bootstrap servers for the services that use Kafka (their default otherwise).
    pub kafka: Option<String>,
    /// More environment for every service (`KOMMERCE_TELEMETRY__LOG_FILTER=…`), or for one
    /// service when the key names it (`order:KOMMERCE_SAGA__CONSUMERS=…`).
    pub env: Vec<(String, String)>,
}

impl UpOptions {
    pub fn database_name(&self, service: &ServiceSpec) -> String {
        database_name_in(self.namespace.as_deref(), service.name)
    }
}

pub fn database_name(service: &ServiceSpec) -> String {
    database_name_in(None, service.name)
}

/// `service`'s database: `kommerce_<service>`, or `kommerce_<namespace>_<service>`.
pub fn database_name_in(namespace: Option<&str>, service: &str) -> String {
    match namespace {
        Some(ns) => format!("kommerce_{ns}_{service}"),
        None => format!("kommerce_{service}"),
    }
}

/// Creates each service's database if missing and runs its migrations.
pub async fn migrate(database_url_admin: &str) -> anyhow::Result<()> {
    migrate_named(database_url_admin, database_name).await
}

async fn migrate_named(
    database_url_admin: &str,
    database_name: impl Fn(&ServiceSpec) -> String,
) -> anyhow::Result<()> {
    let mut admin = PgConnection::connect(database_url_admin)
        .await
        .context("cannot connect to PostgreSQL (run scripts/deps.sh)")?;
    for service in SERVICES {
        let name = database_name(service);
        let exists: bool =
            sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
                .bind(&name)
                .fetch_one(&mut admin)
                .await?;
        if !exists {
            sqlx::query(&format!(r#"CREATE DATABASE "{name}""#))
                .execute(&mut admin)
                .await?;
            println!("created database {name}");
        }
        let url = database_url(database_url_admin, &name);
        let mut conn = PgConnection::connect(&url).await?;
        kommerce_kit::db::merged_migrator(service.migrations)
            .await?
            .run(&mut conn)
            .await
            .with_context(|| format!("migrating {name}"))?;
        println!("{name}: migrations applied");
    }
    Ok(())
}

/// The user service's access-token key file (ADR 0015), with one generated key the first time
/// (so that tokens stay valid across restarts of `kommerce up`); editing it rotates the keys
/// of a running platform (runbook).
pub fn signing_keys_file(state_dir: &Path) -> anyhow::Result<PathBuf> {
    let path = state_dir.join("signing-keys");
    if !path.exists() {
        let (signing, _) = kommerce_kit::auth::generate_key_pair()?;
        std::fs::create_dir_all(state_dir)?;
        std::fs::write(
            &path,
            format!(
                "# The access-token keys: the first signs, all are published (JWKS).\n{signing}\n"
            ),
        )?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
        }
    }
    Ok(path)
}

/// Every service's own credential key pair `(private, public)`, and the command's
/// ([`kommerce_kit::credential::COMMAND`]), by name: generated once into
/// `state_dir/service-keys` (mode 0600), one `name private public` line each.
pub fn service_keys(state_dir: &Path) -> anyhow::Result<BTreeMap<String, (String, String)>> {
    let path = state_dir.join("service-keys");
    let mut keys: BTreeMap<String, (String, String)> = std::fs::read_to_string(&path)
        .unwrap_or_default()
        .lines()
        .filter_map(|line| {
            let mut parts = line.split_whitespace();
            let (name, private, public) = (parts.next()?, parts.next()?, parts.next()?);
            Some((name.to_owned(), (private.to_owned(), public.to_owned())))
        })
        .collect();
    let names = SERVICES
        .iter()
        .map(|s| s.name)
        .chain([kommerce_kit::credential::COMMAND]);
    let mut added = false;
    for name in names {
        if !keys.contains_key(name) {
            keys.insert(name.to_owned(), kommerce_kit::auth::generate_key_pair()?);
            added = true;
        }
    }
    if added {
        std::fs::create_dir_all(state_dir)?;
        let text: String = keys
            .iter()
            .map(|(name, (private, public))| [name.as_str(), private, public].join(" ") + "\n")
            .collect();
        std::fs::write(&path, text)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
        }
    }
    Ok(keys)
}

struct Running {
    spec: ServiceSpec,
    port: u16,
    child: Child,
    /// When the process was started (exec).
    started: Instant,
}

/// What of `env` (`KEY`, or `SERVICE:KEY` for one service) `service` gets.
fn extra_env<'a>(
    service: &'a str,
    env: &'a [(String, String)],
) -> impl Iterator<Item = (&'a str, &'a str)> {
    env.iter()
        .filter_map(move |(k, v)| match k.split_once(':') {
            Some((only, key)) => (only == service).then_some((key, v.as_str())),
            None => Some((k.as_str(), v.as_str())),
        })
}

/// The URL of every service, for the peers each one calls.
fn spawn(
    spec: ServiceSpec,
    listener: std::net::TcpListener,
    ports: &[(&'static str, u16)],
    opts: &UpOptions,
    service_keys: &BTreeMap<String, (String, String)>,
) -> anyhow::Result<Running> {
    let binary = opts.bin_dir.join(spec.binary);
    if !binary.exists() {
        bail!(
            "{} not found: build it first (make up does)",
            binary.display()
        );
    }
    let port = listener.local_addr()?.port();
    let mut cmd = Command::new(&binary);
    // The socket is bound here and handed over as fd 3 (systemd's socket activation protocol):
    // every port is known before any service starts, even with port 0.
    cmd.fd_mappings(vec![FdMapping {
        parent_fd: std::os::fd::OwnedFd::from(listener),
        child_fd: 3,
    }])?;
    cmd.env("LISTEN_FDS", "1")
        .env("KOMMERCE_HTTP__HOST", "127.0.0.1")
        .env("KOMMERCE_HTTP__PORT", port.to_string())
        .env(
            "KOMMERCE_DATABASE__URL",
            database_url(&opts.database_url, &opts.database_name(&spec)),
        )
        .env("KOMMERCE_REDIS__URL", &opts.redis_url)
        .env("KOMMERCE_TELEMETRY__JSON", "false")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    if let Some(ns) = &opts.namespace {
        cmd.env("KOMMERCE_REDIS__KEY_PREFIX", format!("{ns}:"));
        if spec.uses_kafka {
            cmd.env("KOMMERCE_KAFKA__NAMESPACE", ns);
        }
    }
    if let (Some(bootstrap), true) = (&opts.kafka, spec.uses_kafka) {
        cmd.env("KOMMERCE_KAFKA__BOOTSTRAP_SERVERS", bootstrap);
    }
    if spec.uses_kafka {
        // One process per service here: its consumers are static members of their groups, so
        // a restart (or a broker restart) gets their partitions back without waiting out the
        // session timeout.
        cmd.env("KOMMERCE_KAFKA__INSTANCE_ID", spec.name);
    }
    // Access tokens are verified by the key they name, from the user service's published
    // keys; the user service signs with the first key of its key file.
    if let Some((_, user)) = ports.iter().find(|(name, _)| *name == "user") {
        cmd.env(
            "KOMMERCE_AUTH__JWKS_URL",
            format!("http://127.0.0.1:{user}/api/v1/auth/jwks.json"),
        );
    }
    if spec.signs_tokens {
        cmd.env(
            "KOMMERCE_AUTH__SIGNING_KEYS_FILE",
            signing_keys_file(&opts.state_dir)?,
        );
    }
    // Its own credential key, and every caller's public key (each route names its callers).
    if let Some((private, _)) = service_keys.get(spec.name) {
        cmd.env("KOMMERCE_AUTH__SERVICE_KEY", private);
    }
    for (name, (_, public)) in service_keys {
        cmd.env(
            format!("KOMMERCE_AUTH__SERVICE_KEYS__{}", name.to_ascii_uppercase()),
            public,
        );
    }
    for peer in spec.calls {
        if let Some((_, port)) = ports.iter().find(|(name, _)| name == peer) {
            cmd.env(
                format!("KOMMERCE_PEERS__{}", peer.to_ascii_uppercase()),
                format!("http://127.0.0.1:{port}"),
            );
        }
    }
    if spec.name == "image" {
        // Uploaded bytes live beside the other local state, not in /var/lib.
        let dir = match &opts.namespace {
            Some(ns) => opts.state_dir.join("images").join(ns),
            None => opts.state_dir.join("images"),
        };
        cmd.env("KOMMERCE_STORAGE__PATH", dir);
    }
    if let (Some((email, password)), "user") = (&opts.admin, spec.name) {
        cmd.env("KOMMERCE_USER__BOOTSTRAP_ADMIN_EMAIL", email)
            .env("KOMMERCE_USER__BOOTSTRAP_ADMIN_PASSWORD", password);
    }
    cmd.envs(extra_env(spec.name, &opts.env));
    let started = Instant::now();
    let mut child = cmd
        .spawn()
        .with_context(|| format!("starting {}", binary.display()))?;
    let tag = format!("[{:>6}]", spec.name);
    if let Some(out) = child.stdout.take() {
        tokio::spawn(tag_lines(tag.clone(), BufReader::new(out)));
    }
    if let Some(err) = child.stderr.take() {
        tokio::spawn(tag_lines(tag, BufReader::new(err)));
    }
    Ok(Running {
        spec,
        port,
        child,
        started,
    })
}

async fn tag_lines(tag: String, reader: impl tokio::io::AsyncBufRead + Unpin) {
    let mut lines = reader.lines();
    while let Ok(Some(line)) = lines.next_line().await {
        println!("{tag} {line}");
    }
}

/// Polls `GET /readyz` until 200 or `limit` passes; fails at once if the process exits.
/// Answers how long after its exec the service was ready.
async fn wait_ready(r: &mut Running, limit: Duration) -> anyhow::Result<Duration> {
    let client: Client<_, http_body_util::Empty<axum::body::Bytes>> =
        Client::builder(TokioExecutor::new()).build_http();
    let started = Instant::now();
    let uri: hyper::Uri = format!("http://127.0.0.1:{}/readyz", r.port).parse()?;
    while started.elapsed() < limit {
        if let Some(status) = r.child.try_wait()? {
            bail!("exited ({status}) before it was ready");
        }
        if let Ok(resp) = client.get(uri.clone()).await {
            if resp.status().is_success() {
                return Ok(r.started.elapsed());
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    bail!("not ready after {limit:?}")
}

fn terminate(running: &[Running]) {
    for r in running {
        if let Some(pid) = r.child.id().and_then(|p| i32::try_from(p).ok()) {
            let _ = kill(Pid::from_raw(pid), Signal::SIGTERM);
        }
    }
}

/// Every service running as its own process, each ready, behind the local router.
pub struct Platform {
    opts: UpOptions,
    service_keys: BTreeMap<String, (String, String)>,
    ports: Vec<(&'static str, u16)>,
    running: Vec<Running>,
    /// How long each service took from its start to its first ready answer.
    ready: Vec<(&'static str, Duration)>,
    router: SocketAddr,
    router_stop: Option<tokio::sync::oneshot::Sender<()>>,
    router_task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl std::fmt::Debug for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Platform")
            .field("router", &self.router)
            .field("services", &self.ports())
            .finish_non_exhaustive()
    }
}

impl Platform {
    /// Migrates every database, starts every service and waits until each is ready, then
    /// serves the router.
    pub async fn start(opts: &UpOptions) -> anyhow::Result<Self> {
        migrate_named(&opts.database_url, |s| opts.database_name(s)).await?;
        signing_keys_file(&opts.state_dir)?;
        let service_keys = service_keys(&opts.state_dir)?;
        let bind = |port: u16| {
            std::net::TcpListener::bind((opts.host.as_str(), port))
                .with_context(|| format!("cannot listen on {}:{port}", opts.host))
        };
        let router_listener = bind(opts.port)?;
        let mut listeners = Vec::new();
        for spec in SERVICES {
            let port = if opts.port == 0 {
                0
            } else {
                opts.port + spec.port_offset
            };
            listeners.push(bind(port)?);
        }
        let ports = SERVICES
            .iter()
            .zip(&listeners)
            .map(|(s, l)| Ok((s.name, l.local_addr()?.port())))
            .collect::<std::io::Result<Vec<_>>>()?;
        let mut running = Vec::new();
        for (spec, listener) in SERVICES.iter().zip(listeners) {
            match spawn(*spec, listener, &ports, opts, &service_keys) {
                Ok(r) => running.push(r),
                Err(e) => {
                    terminate(&running);
                    return Err(e);
                }
            }
        }
        let mut ready = Vec::new();
        for i in 0..running.len() {
            let r = &mut running[i];
            match wait_ready(r, Duration::from_secs(60)).await {
                Ok(t) => {
                    println!(
                        "[kommerce] {} ready on 127.0.0.1:{} in {} ms",
                        r.spec.name,
                        r.port,
                        t.as_millis()
                    );
                    ready.push((r.spec.name, t));
                }
                Err(e) => {
                    let name = r.spec.name;
                    terminate(&running);
                    bail!("{name} did not become ready: {e}");
                }
            }
        }
        let upstreams: Vec<_> = running
            .iter()
            .map(|r| (r.spec.name, format!("127.0.0.1:{}", r.port)))
            .collect();
        router_listener.set_nonblocking(true)?;
        let listener = tokio::net::TcpListener::from_std(router_listener)?;
        let router = listener.local_addr()?;
        let (router_stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let app = crate::router::router(SERVICES, upstreams);
        let router_task = tokio::spawn(async move {
            kommerce_kit::http::serve(listener, app, async {
                let _ = stopped.await;
            })
            .await
        });
        Ok(Self {
            opts: opts.clone(),
            service_keys,
            ports,
            running,
            ready,
            router,
            router_stop: Some(router_stop),
            router_task,
        })
    }

    /// How long each service took from its start to its first ready answer.
    pub fn ready_times(&self) -> &[(&'static str, Duration)] {
        &self.ready
    }

    /// Each running service's process id.
    pub fn pids(&self) -> Vec<(&'static str, u32)> {
        self.running
            .iter()
            .filter_map(|r| Some((r.spec.name, r.child.id()?)))
            .collect()
    }

    /// Where the router listens.
    pub fn router(&self) -> SocketAddr {
        self.router
    }

    /// Each service's name and port (its internal URL is `http://127.0.0.1:<port>`).
    pub fn ports(&self) -> Vec<(&'static str, u16)> {
        self.running.iter().map(|r| (r.spec.name, r.port)).collect()
    }

    /// Resolves when a service exits, with its name and exit status.
    pub async fn exited(&mut self) -> (&'static str, std::io::Result<std::process::ExitStatus>) {
        let waits = self.running.iter_mut().map(|r| {
            let name = r.spec.name;
            Box::pin(async move { (name, r.child.wait().await) })
        });
        futures::future::select_all(waits).await.0
    }

    /// Kills one service at once (SIGKILL: no graceful stop), for crash tests.
    pub async fn kill(&mut self, name: &str) -> anyhow::Result<()> {
        let r = self
            .running
            .iter_mut()
            .find(|r| r.spec.name == name)
            .with_context(|| format!("no service {name}"))?;
        r.child.kill().await?;
        r.child.wait().await?;
        Ok(())
    }

    /// Starts a service that was killed or exited again, on its port, and waits until it is
    /// ready.
    pub async fn restart(&mut self, name: &str) -> anyhow::Result<()> {
        let i = self
            .running
            .iter()
            .position(|r| r.spec.name == name)
            .with_context(|| format!("no service {name}"))?;
        let r = &mut self.running[i];
        if r.child.try_wait()?.is_none() {
            bail!("{name} is still running");
        }
        let listener = std::net::TcpListener::bind((self.opts.host.as_str(), r.port))
            .with_context(|| format!("cannot listen on {}:{}", self.opts.host, r.port))?;
        *r = spawn(
            r.spec,
            listener,
            &self.ports,
            &self.opts,
            &self.service_keys,
        )?;
        wait_ready(r, Duration::from_secs(60))
            .await
            .with_context(|| format!("{name} did not become ready"))?;
        Ok(())
    }

    /// SIGTERM to every service (each drains), then waits for them and the router.
    pub async fn stop(mut self) {
        terminate(&self.running);
        for r in &mut self.running {
            if tokio::time::timeout(Duration::from_secs(20), r.child.wait())
                .await
                .is_err()
            {
                let _ = r.child.kill().await;
            }
        }
        if let Some(stop) = self.router_stop.take() {
            let _ = stop.send(());
        }
        let _ = (&mut self.router_task).await;
    }
}

/// Runs the platform until Ctrl-C / SIGTERM, or until a service dies. With `demo`, the shop is
/// seeded with demo data first (`crate::seed`, only while its catalogue is empty) as the
/// bootstrapped admin.
pub async fn up(opts: UpOptions, demo: bool) -> anyhow::Result<()> {
    let mut platform = Platform::start(&opts).await?;
    let url = format!("http://{}", platform.router());
    if let (true, Some((email, password))) = (demo, &opts.admin) {
        match crate::seed::seed(&url, (email, password), false).await {
            Ok(s) if s.skipped => println!("[kommerce] demo data: already there"),
            Ok(s) => println!(
                "[kommerce] demo data: {} categories, {} products, {} orders, {} reviews",
                s.categories, s.items, s.orders, s.reviews
            ),
            Err(e) => {
                platform.stop().await;
                return Err(e.context("seeding the demo data"));
            }
        }
        let (shopper, shopper_password) = crate::seed::DEMO_SHOPPER;
        println!(
            "[kommerce] the shop: {url}/\n\
             [kommerce]   shopper: {shopper} / {shopper_password}\n\
             [kommerce]   admin:   {email} / {password}\n\
             [kommerce] the API reference: {url}/api/docs (Ctrl-C stops all)"
        );
    } else {
        println!(
            "[kommerce] router on {url} — the shop at {url}/, the API at {url}/api/v1/*, \
             its reference at {url}/api/docs (Ctrl-C stops all)"
        );
    }
    let died = tokio::select! {
        () = kommerce_kit::server::shutdown_signal() => None,
        (name, status) = platform.exited() => Some((name, status)),
    };
    platform.stop().await;
    if let Some((name, status)) = died {
        bail!("{name} exited ({status:?}); stopped everything");
    }
    println!("[kommerce] stopped");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extra_environment_goes_to_every_service_or_to_the_one_named() {
        let env = [
            ("KOMMERCE_TELEMETRY__JSON", "true"),
            ("order:KOMMERCE_SAGA__CONSUMERS", "6"),
            ("pay:KOMMERCE_SAGA__CONSUMERS", "4"),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned()));
        let order: Vec<_> = extra_env("order", &env).collect();
        assert_eq!(
            order,
            [
                ("KOMMERCE_TELEMETRY__JSON", "true"),
                ("KOMMERCE_SAGA__CONSUMERS", "6")
            ]
        );
        let user: Vec<_> = extra_env("user", &env).collect();
        assert_eq!(user, [("KOMMERCE_TELEMETRY__JSON", "true")]);
    }
}
