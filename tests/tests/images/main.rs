//! The container images (`scripts/images.sh`), run the way a cluster runs them: read-only root,
//! uid 65532, every capability dropped, no new privileges, the config from a mounted file, the
//! real PostgreSQL, Redis and Kafka of this machine. Each service answers `/readyz` and stops
//! cleanly within its grace period on SIGTERM; the images carry the OCI labels. Built here
//! from the debug binaries `make test` builds (`make images` builds the release ones).

#![allow(clippy::unwrap_used)]

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};

use kommerce_kit::testing::auth_settings;
use kommerce_kit::topology::COMPONENTS;
use serde_json::Value;
use uuid::Uuid;

const GRACE: Duration = Duration::from_secs(30);

/// How a cluster runs every image: read-only root, nonroot, no capability, no way to gain one.
const RESTRICTED: &[&str] = &[
    "--read-only",
    "--read-only-tmpfs=false",
    "--user",
    "65532:65532",
    "--cap-drop",
    "ALL",
    "--security-opt",
    "no-new-privileges",
];

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn podman(args: &[&str]) -> Output {
    std::process::Command::new("podman")
        .env("CONTAINERS_CONF", root().join("containers/containers.conf"))
        .args(args)
        .output()
        .expect("podman runs (scripts/images.sh installs it)")
}

fn ok(what: &str, out: &Output) -> String {
    assert!(
        out.status.success(),
        "{what}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

fn version() -> String {
    let text = std::fs::read_to_string(root().join("Cargo.toml")).unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix("version = \""))
        .and_then(|v| v.strip_suffix('"'))
        .unwrap()
        .to_owned()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn server_url() -> String {
    std::env::var("KOMMERCE_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// One service's container, started.
struct Running {
    name: String,
    container: String,
    port: u16,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[allow(clippy::too_many_lines)] // the whole life of every image
async fn every_image_runs_read_only_as_nonroot_answers_ready_and_stops_on_sigterm() {
    // The images of the binaries this test was built with.
    let bin_dir = std::env::current_exe()
        .unwrap()
        .parent()
        .and_then(Path::parent)
        .map(Path::to_path_buf)
        .unwrap();
    let built = std::process::Command::new("bash")
        .arg(root().join("scripts/images.sh"))
        .args(["--profile", "debug"])
        .env("KOMMERCE_IMAGES_SKIP_BUILD", "1")
        .env("KOMMERCE_BIN_DIR", &bin_dir)
        .output()
        .unwrap();
    ok("scripts/images.sh", &built);
    let version = version();
    let ns = format!("i{}", &Uuid::new_v4().simple().to_string()[..10]);
    let auth = auth_settings();
    let work = std::env::temp_dir().join(format!("kommerce-images-{ns}"));
    std::fs::create_dir_all(&work).unwrap();
    let admin = sqlx::PgPool::connect(&server_url()).await.unwrap();
    let http = reqwest::Client::new();

    let mut running = Vec::new();
    for c in COMPONENTS {
        let db = format!("kommerce_{ns}_{}", c.name);
        sqlx::query(&format!("CREATE DATABASE {db}"))
            .execute(&admin)
            .await
            .unwrap();
        let port = free_port();
        let mut config = format!(
            "[http]\nhost = \"127.0.0.1\"\nport = {port}\n\n\
             [database]\nurl = \"{}\"\nmax_connections = 4\n\n\
             [redis]\nurl = \"redis://127.0.0.1:6379\"\nkey_prefix = \"{ns}:\"\n\n\
             [telemetry]\njson = true\n\n\
             [auth]\npublic_key = \"{}\"\nsigning_key = \"{}\"\n",
            kommerce_kit::db::with_database_name(&server_url(), &db),
            auth.public_key,
            auth.signing_key.expose(),
        );
        if c.uses_kafka {
            let _ = write!(
                config,
                "\n[kafka]\nbootstrap_servers = \"127.0.0.1:9092\"\nnamespace = \"{ns}\"\n"
            );
        }
        let mut mounts = vec![format!(
            "{}:/etc/kommerce/config.toml:ro",
            work.join(format!("{}.toml", c.name)).display()
        )];
        if c.name == "image" {
            // Uploads go to a volume, as to a PersistentVolume in a cluster.
            let store = work.join("store");
            std::fs::create_dir_all(&store).unwrap();
            std::os::unix::fs::chown(&store, Some(65532), Some(65532)).unwrap();
            mounts.push(format!("{}:/var/lib/kommerce/images", store.display()));
            config.push_str("\n[storage]\npath = \"/var/lib/kommerce/images\"\n");
        }
        std::fs::write(work.join(format!("{}.toml", c.name)), config).unwrap();
        let container = format!("kommerce-{ns}-{}", c.name);
        let image = format!("kommerce/{}:{version}", c.name);
        let mut args = vec!["run", "-d", "--name", &container, "--network", "host"];
        args.extend(RESTRICTED);
        args.extend(["-e", "KOMMERCE_CONFIG=/etc/kommerce/config.toml"]);
        for m in &mounts {
            args.extend(["-v", m.as_str()]);
        }
        args.push(&image);
        ok(&format!("podman run {image}"), &podman(&args));
        running.push(Running {
            name: c.name.to_owned(),
            container,
            port,
        });
    }

    for r in &running {
        // Ready: migrated, connected to its engines, its workers running.
        let started = Instant::now();
        loop {
            let ready = http
                .get(format!("http://127.0.0.1:{}/readyz", r.port))
                .send()
                .await
                .is_ok_and(|res| res.status() == 200);
            if ready {
                break;
            }
            if started.elapsed() > Duration::from_secs(90) {
                let logs = podman(&["logs", "--tail", "30", &r.container]);
                panic!(
                    "{} not ready: {}{}",
                    r.name,
                    String::from_utf8_lossy(&logs.stdout),
                    String::from_utf8_lossy(&logs.stderr)
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let inspect: Value =
            serde_json::from_str(&ok("podman inspect", &podman(&["inspect", &r.container])))
                .unwrap();
        let it = &inspect[0];
        assert_eq!(it["Config"]["User"], "65532:65532", "{}", r.name);
        assert_eq!(it["HostConfig"]["ReadonlyRootfs"], true, "{}", r.name);
        let labels = &it["Config"]["Labels"];
        for label in ["title", "version", "revision", "created", "source"] {
            assert!(
                labels[format!("org.opencontainers.image.{label}")].is_string(),
                "{}: label {label} in {labels}",
                r.name
            );
        }
        assert_eq!(labels["org.opencontainers.image.version"], version.as_str());
        // The process itself runs as 65532, as the kernel sees it.
        let pid = it["State"]["Pid"].as_i64().unwrap();
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
        let uid = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
        assert!(
            uid.split_whitespace().skip(1).all(|u| u == "65532"),
            "{}: {uid}",
            r.name
        );
        // No capability at all, and no way to gain one.
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .map(str::trim)
                .unwrap()
                .to_owned()
        };
        assert_eq!(field("CapEff:"), "0000000000000000", "{}", r.name);
        assert_eq!(field("NoNewPrivs:"), "1", "{}", r.name);
    }

    // SIGTERM: each drains and exits 0 well within its grace period.
    for r in &running {
        let stopping = Instant::now();
        ok(
            "podman stop",
            &podman(&["stop", "-t", &GRACE.as_secs().to_string(), &r.container]),
        );
        let took = stopping.elapsed();
        let code = ok(
            "podman inspect",
            &podman(&["inspect", "-f", "{{.State.ExitCode}}", &r.container]),
        );
        assert_eq!(code, "0", "{} did not exit cleanly on SIGTERM", r.name);
        assert!(took < GRACE, "{} took {took:?} to stop", r.name);
        println!("{}: stopped in {:.1} s", r.name, took.as_secs_f64());
        let _ = podman(&["rm", "-f", &r.container]);
    }

    // The operator's and the command's images run too.
    let once = |image: &str, args: &[&str]| {
        let image = format!("kommerce/{image}:{version}");
        let mut all = vec!["run", "--rm", "--read-only", "--cap-drop", "ALL", &image];
        all.extend(args);
        ok(&image, &podman(&all))
    };
    let crds = once("operator", &["crdgen", "--stdout"]);
    assert!(crds.contains("kind: CustomResourceDefinition"));
    let cli = once("cli", &["--version"]);
    assert_eq!(cli, format!("kommerce {version}"));
    storefront_image(&version, &http).await;

    for c in COMPONENTS {
        let _ = sqlx::query(&format!(
            "DROP DATABASE IF EXISTS kommerce_{ns}_{} WITH (FORCE)",
            c.name
        ))
        .execute(&admin)
        .await;
    }
    let _ = std::fs::remove_dir_all(&work);
}

/// The storefront's image: the built files and `kommerce web`, no Node.js; read-only, as
/// 65532. Its pages fall back to the app, its assets are cached for good, SIGTERM stops it.
async fn storefront_image(version: &str, http: &reqwest::Client) {
    let port = free_port();
    let container = format!(
        "kommerce-web-{}",
        &Uuid::new_v4().simple().to_string()[..10]
    );
    let image = format!("kommerce/web:{version}");
    let (port_env, host_env) = (
        format!("KOMMERCE_HTTP__PORT={port}"),
        "KOMMERCE_HTTP__HOST=127.0.0.1".to_owned(),
    );
    ok(
        "podman run web",
        &podman(
            &[
                &["run", "-d", "--name", &container, "--network", "host"],
                RESTRICTED,
                &["-e", &port_env, "-e", &host_env, &image],
            ]
            .concat(),
        ),
    );
    let base = format!("http://127.0.0.1:{port}");
    let started = Instant::now();
    while !http
        .get(format!("{base}/readyz"))
        .send()
        .await
        .is_ok_and(|r| r.status() == 200)
    {
        assert!(started.elapsed() < Duration::from_secs(30), "web not ready");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let page = http.get(format!("{base}/orders/42")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(
        page.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("default-src 'self'")
    );
    let html = page.text().await.unwrap();
    let script = html
        .split('"')
        .find(|s| s.starts_with("/assets/index-"))
        .unwrap_or_else(|| panic!("no script in {html}"))
        .to_owned();
    let asset = http.get(format!("{base}{script}")).send().await.unwrap();
    assert_eq!(asset.status(), 200, "{script}");
    assert_eq!(
        asset.headers()["cache-control"],
        "public, max-age=31536000, immutable"
    );
    let stopping = Instant::now();
    ok(
        "podman stop web",
        &podman(&["stop", "-t", "30", &container]),
    );
    let code = ok(
        "podman inspect",
        &podman(&["inspect", "-f", "{{.State.ExitCode}}", &container]),
    );
    assert_eq!(code, "0", "web did not exit cleanly on SIGTERM");
    println!("web: stopped in {:.1} s", stopping.elapsed().as_secs_f64());
    let _ = podman(&["rm", "-f", &container]);
}
