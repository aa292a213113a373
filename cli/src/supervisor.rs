//! `kommerce up`: databases and migrations, every service as a child process with its log
//! lines tagged, the local router in front, and Ctrl-C stopping everything.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
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
    /// Where the local router listens; service `s` gets `port + s.port_offset`.
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
}

pub fn database_name(service: &ServiceSpec) -> String {
    format!("kommerce_{}", service.name)
}

/// Creates each service's database if missing and runs its migrations.
pub async fn migrate(database_url_admin: &str) -> anyhow::Result<()> {
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

/// The development key pair, generated once and kept in `state_dir` so that tokens stay
/// valid across restarts of `kommerce up`.
fn dev_keys(state_dir: &Path) -> anyhow::Result<(String, String)> {
    let path = state_dir.join("dev-auth-keys");
    if let Ok(text) = std::fs::read_to_string(&path) {
        if let Some((signing, public)) = text.trim().split_once('\n') {
            return Ok((signing.to_owned(), public.to_owned()));
        }
    }
    let (signing, public) = kommerce_kit::auth::generate_key_pair()?;
    std::fs::create_dir_all(state_dir)?;
    std::fs::write(&path, format!("{signing}\n{public}\n"))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
    }
    Ok((signing, public))
}

struct Running {
    spec: ServiceSpec,
    port: u16,
    child: Child,
}

fn spawn(
    spec: ServiceSpec,
    port: u16,
    opts: &UpOptions,
    keys: &(String, String),
) -> anyhow::Result<Running> {
    let binary = opts.bin_dir.join(spec.binary);
    if !binary.exists() {
        bail!(
            "{} not found: build it first (make up does)",
            binary.display()
        );
    }
    let mut cmd = Command::new(&binary);
    cmd.env("KOMMERCE_HTTP__HOST", "127.0.0.1")
        .env("KOMMERCE_HTTP__PORT", port.to_string())
        .env(
            "KOMMERCE_DATABASE__URL",
            database_url(&opts.database_url, &database_name(&spec)),
        )
        .env("KOMMERCE_REDIS__URL", &opts.redis_url)
        .env("KOMMERCE_AUTH__PUBLIC_KEY", &keys.1)
        .env("KOMMERCE_TELEMETRY__JSON", "false")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    if spec.signs_tokens {
        cmd.env("KOMMERCE_AUTH__SIGNING_KEY", &keys.0);
    }
    for peer in spec.calls {
        if let Some(other) = SERVICES.iter().find(|s| s.name == *peer) {
            cmd.env(
                format!("KOMMERCE_PEERS__{}", peer.to_ascii_uppercase()),
                format!("http://127.0.0.1:{}", opts.port + other.port_offset),
            );
        }
    }
    if spec.name == "image" {
        // Uploaded bytes live beside the other local state, not in /var/lib.
        cmd.env("KOMMERCE_STORAGE__PATH", opts.state_dir.join("images"));
    }
    if let (Some((email, password)), "user") = (&opts.admin, spec.name) {
        cmd.env("KOMMERCE_USER__BOOTSTRAP_ADMIN_EMAIL", email)
            .env("KOMMERCE_USER__BOOTSTRAP_ADMIN_PASSWORD", password);
    }
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
    Ok(Running { spec, port, child })
}

async fn tag_lines(tag: String, reader: impl tokio::io::AsyncBufRead + Unpin) {
    let mut lines = reader.lines();
    while let Ok(Some(line)) = lines.next_line().await {
        println!("{tag} {line}");
    }
}

/// Polls `GET /readyz` until 200 or `limit` passes.
async fn wait_ready(port: u16, limit: Duration) -> anyhow::Result<Duration> {
    let client: Client<_, http_body_util::Empty<axum::body::Bytes>> =
        Client::builder(TokioExecutor::new()).build_http();
    let started = Instant::now();
    let uri: hyper::Uri = format!("http://127.0.0.1:{port}/readyz").parse()?;
    while started.elapsed() < limit {
        if let Ok(r) = client.get(uri.clone()).await {
            if r.status().is_success() {
                return Ok(started.elapsed());
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

/// Runs the platform until Ctrl-C / SIGTERM, or until a service dies.
pub async fn up(opts: UpOptions) -> anyhow::Result<()> {
    migrate(&opts.database_url).await?;
    let keys = dev_keys(&opts.state_dir)?;
    let mut running = Vec::new();
    for spec in SERVICES {
        let port = opts.port + spec.port_offset;
        running.push(spawn(*spec, port, &opts, &keys)?);
    }
    for r in &running {
        match wait_ready(r.port, Duration::from_secs(30)).await {
            Ok(t) => println!(
                "[kommerce] {} ready on 127.0.0.1:{} in {} ms",
                r.spec.name,
                r.port,
                t.as_millis()
            ),
            Err(e) => {
                terminate(&running);
                bail!("{} did not become ready: {e}", r.spec.name);
            }
        }
    }
    let upstreams: Vec<_> = running
        .iter()
        .map(|r| (r.spec.name, format!("127.0.0.1:{}", r.port)))
        .collect();
    let listener = tokio::net::TcpListener::bind((opts.host.as_str(), opts.port))
        .await
        .with_context(|| format!("cannot listen on {}:{}", opts.host, opts.port))?;
    println!(
        "[kommerce] router on http://{}:{} — try: curl -s http://{}:{}/api/v1/auth/login ... (Ctrl-C stops all)",
        opts.host, opts.port, opts.host, opts.port
    );
    let router = crate::router::router(SERVICES, upstreams);
    let server = axum::serve(listener, router)
        .with_graceful_shutdown(kommerce_kit::server::shutdown_signal());

    let mut exits = Box::pin(async {
        let waits = running.iter_mut().map(|r| {
            let name = r.spec.name;
            async move { (name, r.child.wait().await) }
        });
        let ((name, status), _, _) = futures::future::select_all(waits.map(Box::pin)).await;
        (name, status)
    });
    let died = tokio::select! {
        result = server => { result?; None }
        (name, status) = &mut exits => Some((name, status)),
    };
    drop(exits);
    terminate(&running);
    for r in &mut running {
        let _ = tokio::time::timeout(Duration::from_secs(10), r.child.wait()).await;
    }
    if let Some((name, status)) = died {
        bail!("{name} exited ({status:?}); stopped everything");
    }
    println!("[kommerce] stopped");
    Ok(())
}
