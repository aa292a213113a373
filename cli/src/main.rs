use std::io::BufRead;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use kommerce::supervisor::{UpOptions, migrate, up};
#[cfg(feature = "bench")]
use kommerce_item::domain::stock::Strategy;

/// Kommerce: run the platform locally and manage it.
#[derive(Debug, Parser)]
#[command(name = "kommerce", version)]
struct Cli {
    /// A PostgreSQL URL allowed to create databases; each service gets `kommerce_<service>`.
    #[arg(
        long,
        global = true,
        env = "KOMMERCE_PG_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/postgres"
    )]
    database_url: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Every service plus a local router that routes /api/v1/* like the Ingress. Ctrl-C stops all.
    Up {
        #[arg(long, default_value = "127.0.0.1")]
        host: String,
        /// The router's port; services listen on the following ports.
        #[arg(long, default_value_t = 8080)]
        port: u16,
        #[arg(
            long,
            env = "KOMMERCE_REDIS_URL",
            default_value = "redis://127.0.0.1:6379"
        )]
        redis_url: String,
        /// Bootstrap this admin account (its password from KOMMERCE_ADMIN_PASSWORD).
        #[arg(long, env = "KOMMERCE_ADMIN_EMAIL")]
        admin_email: Option<String>,
        /// A shop to click through: demo data on the first run (`kommerce seed`), the demo
        /// admin (admin@kommerce.test) unless --admin-email names one; prints the logins.
        #[arg(long)]
        demo: bool,
    },
    /// Demo data through the public API, as the admin: categories, products with images and
    /// stock, shoppers' orders and reviews, the demo shopper. Does nothing when the catalogue
    /// has items (unless --force).
    Seed {
        /// The platform's public URL (the router of `kommerce up`, or the Ingress).
        #[arg(long, default_value = "http://127.0.0.1:8080")]
        url: String,
        /// An admin account (its password from KOMMERCE_ADMIN_PASSWORD, else standard input).
        #[arg(long, env = "KOMMERCE_ADMIN_EMAIL")]
        admin_email: String,
        #[arg(long)]
        force: bool,
    },
    /// Serve the built storefront (the `web` component in a cluster): its files at `/`, a
    /// history-mode fallback to index.html, `/healthz` and `/readyz`. SIGTERM stops it.
    Web {
        /// The built storefront (`web/dist`).
        #[arg(long, env = "KOMMERCE_WEB_DIR")]
        dir: Option<PathBuf>,
        #[arg(long, env = "KOMMERCE_HTTP__PORT", default_value_t = 8080)]
        port: u16,
        #[arg(long, env = "KOMMERCE_HTTP__HOST", default_value = "0.0.0.0")]
        host: String,
    },
    /// Create each service's database if missing and apply its migrations.
    Migrate,
    /// Benchmarks, side by side in one run; results go to a JSON file and an SVG chart
    /// (built with `--features bench`, as `make bench` does).
    #[cfg(feature = "bench")]
    Bench {
        #[command(subcommand)]
        command: BenchCommand,
    },
    /// Checkout sagas.
    Saga {
        #[command(subcommand)]
        command: SagaCommand,
    },
    /// Manage user accounts.
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// Whether money, orders and stock add up, read-only across the services' databases and
    /// the broker: exit 0 when consistent, 1 with a report of every violation.
    Audit {
        /// Things younger than this may still be in flight (a payment waiting for its order):
        /// the saga's deadline (`saga.deadline_secs`, 300) and a margin.
        #[arg(long, default_value_t = 330)]
        grace_secs: u64,
        /// The report as JSON.
        #[arg(long)]
        json: bool,
        /// The broker, for consumer lag and dead letters (empty: not asked).
        #[arg(
            long,
            env = "KOMMERCE_KAFKA__BOOTSTRAP_SERVERS",
            default_value = "127.0.0.1:9092"
        )]
        kafka: String,
        /// The platform's namespace: databases `kommerce_<ns>_<service>`, topics `<ns>.<topic>`
        /// (`kommerce up` uses none).
        #[arg(long, default_value = "")]
        namespace: String,
        /// Keep auditing every `--every-secs` and serve the results as Prometheus metrics at
        /// `http://<ADDR>/metrics` (`kommerce_audit_violations{check}`), until SIGTERM.
        #[arg(long, value_name = "ADDR")]
        serve: Option<std::net::SocketAddr>,
        #[arg(long, default_value_t = 60)]
        every_secs: u64,
    },
    /// Dead-lettered messages: what waits and why, and replaying them.
    Dlq {
        #[command(subcommand)]
        command: DlqCommand,
        /// The broker.
        #[arg(
            long,
            global = true,
            env = "KOMMERCE_KAFKA__BOOTSTRAP_SERVERS",
            default_value = "127.0.0.1:9092"
        )]
        kafka: String,
        /// The platform's topic namespace (`kommerce up` uses none).
        #[arg(long, global = true, default_value = "")]
        namespace: String,
    },
    /// Write every service's OpenAPI document and the merged public one (`kommerce.json`).
    Openapi {
        #[arg(long, default_value = "docs/openapi")]
        out: PathBuf,
    },
}

#[cfg(feature = "bench")]
#[derive(Debug, Subcommand)]
enum BenchCommand {
    /// One hot SKU, concurrent buyers, every stock strategy through the reservation API.
    Stock {
        /// Strategies to run, comma-separated; the first is the baseline of the ratios.
        #[arg(long, value_delimiter = ',', default_value = "spinLock,conditionalUpdate,reservation", value_parser = parse_strategy)]
        strategies: Vec<Strategy>,
        #[arg(long, default_value_t = 64)]
        buyers: usize,
        #[arg(long, default_value_t = 6000)]
        attempts: usize,
        #[arg(long, default_value_t = 4000)]
        stock: i64,
        #[arg(long, default_value = "docs/bench")]
        out: PathBuf,
    },
    /// The whole shop as separate processes (the service binaries next to this one), checkouts
    /// through the public API: a closed loop, then an open loop; the machine's ceilings in the
    /// same run; the books audited at the end (exit 1 when they do not add up).
    Checkout {
        #[arg(long, default_value_t = 512)]
        shoppers: usize,
        #[arg(long, default_value_t = 32)]
        items: usize,
        /// Concurrent shoppers of the closed loop (each waits for its order, polling as the
        /// storefront does, so it takes this many to keep the saga busy).
        #[arg(long, default_value_t = 128)]
        concurrency: usize,
        /// Seconds each phase issues checkouts.
        #[arg(long, default_value_t = 60)]
        seconds: u64,
        /// At most this many checkouts per phase.
        #[arg(long, default_value_t = 1_000_000)]
        attempts: usize,
        /// Arrivals per second of the open loop (default: half the closed loop's settled rate).
        #[arg(long)]
        rate: Option<f64>,
        #[arg(
            long,
            env = "KOMMERCE_REDIS_URL",
            default_value = "redis://127.0.0.1:6379"
        )]
        redis_url: String,
        #[arg(
            long,
            env = "KOMMERCE_KAFKA__BOOTSTRAP_SERVERS",
            default_value = "127.0.0.1:9092"
        )]
        kafka: String,
        /// The stock pool's strategy during the run.
        #[arg(long, default_value = "reservation", value_parser = parse_strategy)]
        strategy: Strategy,
        /// `KEY=VALUE` for every service's environment, or `SERVICE:KEY=VALUE` for one
        /// (`order:KOMMERCE_SAGA__CONSUMERS=6`), repeatable: what a change of configuration
        /// does to the figures.
        #[arg(long = "set", value_name = "KEY=VALUE", value_parser = parse_env)]
        env: Vec<(String, String)>,
        #[arg(long, default_value = "docs/bench")]
        out: PathBuf,
    },
}

#[cfg(feature = "bench")]
fn parse_env(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .filter(|(k, _)| {
            k.rsplit(':')
                .next()
                .is_some_and(|k| k.starts_with("KOMMERCE_"))
        })
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .ok_or_else(|| format!("expected [SERVICE:]KOMMERCE_<SECTION>__<KEY>=VALUE, got {s}"))
}

#[derive(Debug, Subcommand)]
enum SagaCommand {
    /// Every step of one checkout saga across services (event, service, time, outcome).
    Trace {
        /// A payment id or an order id.
        id: uuid::Uuid,
        /// The order service's internal URL (`kommerce up`: base port + 3).
        #[arg(
            long,
            env = "KOMMERCE_PEERS__ORDER",
            default_value = "http://127.0.0.1:8083"
        )]
        order_url: String,
        /// The pay service's internal URL (`kommerce up`: base port + 4).
        #[arg(
            long,
            env = "KOMMERCE_PEERS__PAY",
            default_value = "http://127.0.0.1:8084"
        )]
        pay_url: String,
    },
}

#[derive(Debug, Subcommand)]
enum DlqCommand {
    /// The messages waiting in `<topic>.dlq`, with why each was given up.
    List {
        /// The saga topic: payments, orders or reviews.
        topic: String,
        /// Replayed ones too.
        #[arg(long)]
        all: bool,
        #[arg(long)]
        json: bool,
    },
    /// One dead letter: its headers and its payload.
    Show {
        topic: String,
        #[arg(long)]
        partition: i32,
        #[arg(long)]
        offset: i64,
    },
    /// Sends dead letters back to the topic they came from (consumers are idempotent).
    #[command(group(clap::ArgGroup::new("which").required(true).args(["all", "partition"])))]
    Replay {
        topic: String,
        /// Every message still waiting.
        #[arg(long, conflicts_with_all = ["partition", "offset"])]
        all: bool,
        #[arg(long, requires = "offset")]
        partition: Option<i32>,
        #[arg(long, requires = "partition")]
        offset: Option<i64>,
    },
}

#[derive(Debug, Subcommand)]
enum UserCommand {
    /// Create an admin account, or promote an existing one. The password is read from
    /// KOMMERCE_ADMIN_PASSWORD, else from the first line of standard input.
    CreateAdmin {
        #[arg(long)]
        email: String,
        #[arg(long, default_value = "Administrator")]
        name: String,
        #[arg(long, default_value = "+10000000000")]
        phone: String,
    },
}

#[cfg(feature = "bench")]
fn parse_strategy(s: &str) -> Result<Strategy, String> {
    serde_json::from_value(serde_json::Value::String(s.to_owned()))
        .map_err(|_| format!("{s}: expected spinLock, conditionalUpdate or reservation"))
}

fn admin_password() -> anyhow::Result<String> {
    if let Ok(p) = std::env::var("KOMMERCE_ADMIN_PASSWORD") {
        return Ok(p);
    }
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    Ok(line.trim_end_matches(['\r', '\n']).to_owned())
}

/// The state directory of `kommerce up` (keys, uploads): `KOMMERCE_STATE_DIR`, else the same
/// directory as scripts/deps.sh.
fn state_dir() -> PathBuf {
    std::env::var_os("KOMMERCE_STATE_DIR").map_or_else(
        || {
            std::env::home_dir()
                .unwrap_or_else(std::env::temp_dir)
                .join(".cache/kommerce")
        },
        PathBuf::from,
    )
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Up {
            host,
            port,
            redis_url,
            admin_email,
            demo,
        } => run_up(cli.database_url, host, port, redis_url, admin_email, demo).await,
        Command::Seed {
            url,
            admin_email,
            force,
        } => seed(&url, &admin_email, force).await,
        Command::Web { dir, port, host } => {
            kommerce::web::serve(&dir.unwrap_or_else(kommerce::web::dist_dir), &host, port).await
        }
        Command::Migrate => migrate(&cli.database_url).await,
        #[cfg(feature = "bench")]
        Command::Bench { command } => bench(command, cli.database_url).await,
        Command::Saga {
            command:
                SagaCommand::Trace {
                    id,
                    order_url,
                    pay_url,
                },
        } => saga_trace(id, order_url, pay_url).await,
        Command::Openapi { out } => kommerce::openapi::write(&out),
        Command::Dlq {
            command,
            kafka,
            namespace,
        } => dlq(
            command,
            &kommerce::dlq::Broker {
                bootstrap: kafka,
                namespace,
            },
        ),
        Command::Audit {
            grace_secs,
            json,
            kafka,
            namespace,
            serve,
            every_secs,
        } => {
            let sources = kommerce::audit::Sources::connect(
                &cli.database_url,
                (!namespace.is_empty()).then_some(namespace.as_str()),
                (!kafka.is_empty()).then_some(kafka.as_str()),
            )?;
            let grace = std::time::Duration::from_secs(grace_secs);
            match serve {
                Some(addr) => serve_audit(sources, grace, addr, every_secs).await,
                None => audit(&sources, grace, json).await,
            }
        }
        Command::User {
            command: UserCommand::CreateAdmin { email, name, phone },
        } => create_admin(&cli.database_url, &email, &name, &phone).await,
    }
}

/// `kommerce bench …`.
#[cfg(feature = "bench")]
async fn bench(command: BenchCommand, database_url: String) -> anyhow::Result<()> {
    match command {
        BenchCommand::Stock {
            strategies,
            buyers,
            attempts,
            stock,
            out,
        } => {
            let bench = kommerce::bench::stock(kommerce::bench::StockBench {
                strategies,
                buyers,
                attempts,
                stock,
                out_dir: out,
            });
            // The in-process item service listens for SIGTERM too: stop the whole run on it.
            tokio::select! {
                result = bench => result.map(drop),
                () = kommerce_kit::server::shutdown_signal() => Ok(()),
            }
        }
        BenchCommand::Checkout {
            shoppers,
            items,
            concurrency,
            seconds,
            attempts,
            rate,
            redis_url,
            kafka,
            strategy,
            env,
            out,
        } => {
            let bin_dir = std::env::current_exe()?
                .parent()
                .map(PathBuf::from)
                .context("no directory for the binaries")?;
            kommerce::bench::checkout::run(kommerce::bench::checkout::CheckoutBench {
                shoppers,
                items,
                concurrency,
                duration: std::time::Duration::from_secs(seconds),
                attempts,
                rate,
                out_dir: Some(out),
                bin_dir,
                database_url,
                redis_url,
                kafka: Some(kafka),
                progress: true,
                env,
                strategy,
            })
            .await
            .map(drop)
        }
    }
}

/// `kommerce up`: every service, the router, and with `demo` the demo data.
async fn run_up(
    database_url: String,
    host: String,
    port: u16,
    redis_url: String,
    admin_email: Option<String>,
    demo: bool,
) -> anyhow::Result<()> {
    let exe = std::env::current_exe()?;
    let bin_dir = exe
        .parent()
        .map(PathBuf::from)
        .context("no directory for the binaries")?;
    let state_dir = state_dir();
    let admin = match admin_email {
        Some(email) => Some((email, admin_password()?)),
        None if demo => {
            let (email, password) = kommerce::seed::DEMO_ADMIN;
            Some((email.to_owned(), password.to_owned()))
        }
        None => None,
    };
    up(
        UpOptions {
            host,
            port,
            database_url,
            redis_url,
            state_dir,
            bin_dir,
            admin,
            namespace: None,
            kafka: None,
            env: Vec::new(),
        },
        demo,
    )
    .await
}

/// `kommerce seed`: the demo data, as the admin named.
async fn seed(url: &str, admin_email: &str, force: bool) -> anyhow::Result<()> {
    let password = admin_password()?;
    let s = kommerce::seed::seed(url, (admin_email, &password), force).await?;
    if s.skipped {
        println!("the catalogue already has items: nothing seeded (--force seeds anyway)");
    } else {
        let (email, password) = kommerce::seed::DEMO_SHOPPER;
        println!(
            "seeded {} categories, {} products, {} orders, {} reviews; demo shopper {email} / {password}",
            s.categories, s.items, s.orders, s.reviews
        );
    }
    Ok(())
}

/// Every step of one saga, asked with the command's own credential: `KOMMERCE_SERVICE_KEY`,
/// else `kommerce up`'s.
async fn saga_trace(id: uuid::Uuid, order_url: String, pay_url: String) -> anyhow::Result<()> {
    let key = match std::env::var("KOMMERCE_SERVICE_KEY") {
        Ok(key) => key,
        Err(_) => kommerce::supervisor::service_keys(&state_dir())?
            .remove(kommerce_kit::credential::COMMAND)
            .map(|(private, _)| private)
            .context("no key for the kommerce command")?,
    };
    let services = [("order", order_url), ("pay", pay_url)];
    let steps = kommerce::saga::trace(id, &services, &key).await?;
    print!("{}", kommerce::saga::render(&steps));
    Ok(())
}

async fn create_admin(
    database_url: &str,
    email: &str,
    name: &str,
    phone: &str,
) -> anyhow::Result<()> {
    migrate(database_url).await?;
    let url = kommerce_kit::db::with_database_name(database_url, "kommerce_user");
    let db = sqlx::PgPool::connect_with(kommerce_kit::db::connect_options(&url)?).await?;
    let created = kommerce_user::create_admin(&db, email, &admin_password()?, name, phone)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    println!(
        "{email}: {}",
        if created {
            "admin created"
        } else {
            "promoted to admin"
        }
    );
    Ok(())
}

/// `kommerce audit --serve`: the audit every `every_secs`, as metrics.
async fn serve_audit(
    sources: kommerce::audit::Sources,
    grace: std::time::Duration,
    addr: std::net::SocketAddr,
    every_secs: u64,
) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    println!(
        "serving the audit at http://{}/metrics",
        listener.local_addr()?
    );
    let every = std::time::Duration::from_secs(every_secs.max(1));
    kommerce::audit::serve(sources, grace, every, listener).await
}

/// `kommerce audit`: exits 1 when anything does not add up.
async fn audit(
    sources: &kommerce::audit::Sources,
    grace: std::time::Duration,
    json: bool,
) -> anyhow::Result<()> {
    let facts = kommerce::audit::gather(sources).await?;
    let report = kommerce::audit::check(&facts, grace);
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.render());
    }
    if report.violations() > 0 {
        std::process::exit(1);
    }
    Ok(())
}

fn dlq(command: DlqCommand, broker: &kommerce::dlq::Broker) -> anyhow::Result<()> {
    use kommerce::dlq::{Which, list, render, replay};
    match command {
        DlqCommand::List { topic, all, json } => {
            let letters = list(broker, &topic, all)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&letters)?);
            } else {
                print!("{}", render(&letters));
            }
        }
        DlqCommand::Show {
            topic,
            partition,
            offset,
        } => {
            let letter = list(broker, &topic, true)?
                .into_iter()
                .find(|l| l.partition == partition && l.offset == offset)
                .context("no dead letter there")?;
            let headers: serde_json::Map<String, serde_json::Value> = letter
                .headers
                .iter()
                .map(|(k, v)| {
                    let v = v
                        .as_deref()
                        .map(String::from_utf8_lossy)
                        .unwrap_or_default();
                    (k.clone(), serde_json::Value::String(v.into_owned()))
                })
                .collect();
            let shown = serde_json::json!({
                "letter": letter, "headers": headers, "payload": letter.payload_json(),
            });
            println!("{}", serde_json::to_string_pretty(&shown)?);
        }
        DlqCommand::Replay {
            topic,
            all,
            partition,
            offset,
        } => {
            let which = match (all, partition, offset) {
                (true, _, _) => Which::Waiting,
                (false, Some(partition), Some(offset)) => Which::One { partition, offset },
                _ => anyhow::bail!("say --all, or --partition and --offset"),
            };
            let replayed = replay(broker, &topic, which)?;
            for l in &replayed {
                println!(
                    "replayed {}:{} to {}",
                    l.partition, l.offset, l.source_topic
                );
            }
            println!("{} replayed", replayed.len());
        }
    }
    Ok(())
}
