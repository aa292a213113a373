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
        #[arg(long, default_value_t = 3000)]
        attempts: usize,
        #[arg(long, default_value_t = 2000)]
        stock: i64,
        #[arg(long, default_value = "docs/bench")]
        out: PathBuf,
    },
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
        } => {
            let exe = std::env::current_exe()?;
            let bin_dir = exe
                .parent()
                .map(PathBuf::from)
                .context("no directory for the binaries")?;
            let state_dir = state_dir();
            let admin = match admin_email {
                Some(email) => Some((email, admin_password()?)),
                None => None,
            };
            up(UpOptions {
                host,
                port,
                database_url: cli.database_url,
                redis_url,
                state_dir,
                bin_dir,
                admin,
                namespace: None,
                kafka: None,
                env: Vec::new(),
            })
            .await
        }
        Command::Migrate => migrate(&cli.database_url).await,
        #[cfg(feature = "bench")]
        Command::Bench {
            command:
                BenchCommand::Stock {
                    strategies,
                    buyers,
                    attempts,
                    stock,
                    out,
                },
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
        Command::Saga {
            command:
                SagaCommand::Trace {
                    id,
                    order_url,
                    pay_url,
                },
        } => {
            // The command's own credential: `KOMMERCE_SERVICE_KEY`, else `kommerce up`'s.
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
        Command::Openapi { out } => kommerce::openapi::write(&out),
        Command::User {
            command: UserCommand::CreateAdmin { email, name, phone },
        } => {
            migrate(&cli.database_url).await?;
            let url = kommerce_kit::db::with_database_name(&cli.database_url, "kommerce_user");
            let db = sqlx::PgPool::connect(&url).await?;
            let created =
                kommerce_user::create_admin(&db, &email, &admin_password()?, &name, &phone)
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
    }
}
