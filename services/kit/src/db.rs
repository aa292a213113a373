//! PostgreSQL: one pool per service, the service's migrations at start-up.

use std::time::Duration;

use futures::future::BoxFuture;
use sqlx::PgPool;
use sqlx::error::BoxDynError;
use sqlx::migrate::{Migration, MigrationSource, Migrator};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions, PgSslMode};

use crate::DatabaseSettings;

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("cannot connect to PostgreSQL")]
    Connect(#[source] sqlx::Error),
    #[error("migrations failed")]
    Migrate(#[source] sqlx::migrate::MigrateError),
}

/// Connects eagerly, so a wrong URL fails the start-up rather than the first request.
pub async fn connect(settings: &DatabaseSettings) -> Result<PgPool, DbError> {
    PgPoolOptions::new()
        .max_connections(settings.max_connections)
        .acquire_timeout(Duration::from_millis(settings.acquire_timeout_ms))
        .connect_with(connect_options(settings.url.expose()).map_err(DbError::Connect)?)
        .await
        .map_err(DbError::Connect)
}

/// The options of a URL, with one default of ours: a server on this machine (a loopback
/// address, `localhost`, a Unix socket) is spoken to without TLS unless the URL asks for it
/// (`sslmode=...`). Encryption over loopback protects nothing — whoever can read it can read
/// the processes' memory — and cost the checkout benchmark a twentieth of its CPU (ADR 0027).
pub fn connect_options(url: &str) -> Result<PgConnectOptions, sqlx::Error> {
    let options: PgConnectOptions = url.parse()?;
    let host = options.get_host();
    let local = host.starts_with('/')
        || host == "localhost"
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    let asked = url
        .split_once('?')
        .is_some_and(|(_, query)| query.split('&').any(|p| p.starts_with("sslmode=")));
    Ok(if local && !asked {
        options.ssl_mode(PgSslMode::Disable)
    } else {
        options
    })
}

/// Connects and, when configured, runs the service's migrations.
pub async fn connect_and_migrate(
    settings: &DatabaseSettings,
    migrator: &Migrator,
) -> Result<PgPool, DbError> {
    let pool = connect(settings).await?;
    if settings.migrate {
        migrator.run(&pool).await.map_err(DbError::Migrate)?;
    }
    Ok(pool)
}

/// Connects and, when configured, runs several sets of migrations as one (the kit's
/// messaging tables and the service's own; see [`merged_migrator`]).
pub async fn connect_and_migrate_all(
    settings: &DatabaseSettings,
    parts: &[&Migrator],
) -> Result<PgPool, DbError> {
    let pool = connect(settings).await?;
    if settings.migrate {
        merged_migrator(parts)
            .await?
            .run(&pool)
            .await
            .map_err(DbError::Migrate)?;
    }
    Ok(pool)
}

/// One migrator running several sets of migrations (the kit's messaging tables and a
/// service's own) in version order, with one history table.
pub async fn merged_migrator(parts: &[&Migrator]) -> Result<Migrator, DbError> {
    #[derive(Debug)]
    struct Merged(Vec<Migration>);
    impl MigrationSource<'static> for Merged {
        fn resolve(self) -> BoxFuture<'static, Result<Vec<Migration>, BoxDynError>> {
            Box::pin(async move { Ok(self.0) })
        }
    }
    let mut all: Vec<Migration> = parts.iter().flat_map(|m| m.iter().cloned()).collect();
    all.sort_by_key(|m| m.version);
    Migrator::new(Merged(all)).await.map_err(DbError::Migrate)
}

/// A stored value (a status, a kind) the code does not know: reading such a row is an error,
/// never a guess. The error of a column's `TryFrom<String>` (`#[sqlx(try_from = "String")]`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown stored value {0:?}")]
pub struct UnknownValue(pub String);

/// Whether a database error is the violation of the named constraint (unique index, check,
/// foreign key). Handlers map such violations to 409/422 by name (launchbadge `on_constraint`).
pub fn is_constraint(err: &sqlx::Error, name: &str) -> bool {
    err.as_database_error()
        .and_then(sqlx::error::DatabaseError::constraint)
        .is_some_and(|c| c == name)
}

/// The same server URL with another database: `postgres://h/db?x` → `postgres://h/<name>?x`.
pub fn with_database_name(url: &str, name: &str) -> String {
    let (head, query) = url.split_once('?').unwrap_or((url, ""));
    let base = head.rsplit_once('/').map_or(head, |(base, _)| base);
    if query.is_empty() {
        format!("{base}/{name}")
    } else {
        format!("{base}/{name}?{query}")
    }
}

#[cfg(test)]
mod tests {
    use super::{connect_options, with_database_name};
    use sqlx::postgres::PgSslMode;

    #[test]
    fn a_server_on_this_machine_is_spoken_to_without_tls_unless_asked() {
        let mode = |url: &str| format!("{:?}", connect_options(url).unwrap().get_ssl_mode());
        let off = format!("{:?}", PgSslMode::Disable);
        let prefer = format!("{:?}", PgSslMode::Prefer);
        for local in [
            "postgres://postgres@127.0.0.1:5432/db",
            "postgres://u@localhost/db",
            "postgres://u@[::1]:5432/db",
            "postgres:///db?host=/var/run/postgresql",
        ] {
            assert_eq!(mode(local), off, "{local}");
        }
        assert_eq!(mode("postgres://u@db.shop.svc:5432/db"), prefer);
        assert_eq!(
            mode("postgres://u@127.0.0.1/db?sslmode=require"),
            format!("{:?}", PgSslMode::Require),
            "the URL's word wins"
        );
    }

    #[test]
    fn replaces_the_database_name() {
        assert_eq!(
            with_database_name("postgres://postgres@127.0.0.1:5432/postgres", "t1"),
            "postgres://postgres@127.0.0.1:5432/t1"
        );
        assert_eq!(
            with_database_name("postgres://u@h/db?sslmode=disable", "t2"),
            "postgres://u@h/t2?sslmode=disable"
        );
    }
}

/// Why a store did not do what it was asked: what the data says (no such row, a conflict with
/// what is stored, a value that names something that does not exist) or the database itself.
/// A store returns this, or `sqlx::Error` when the database is its only failure — never an
/// HTTP type; the HTTP edge converts it (`From<StoreError> for ApiError`).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{0} not found")]
    NotFound(&'static str),
    /// A uniqueness or a limit: `slug` names the problem type.
    #[error("{detail}")]
    Conflict { slug: &'static str, detail: String },
    /// A value of the request refers to something that is not there (a parent, a category).
    #[error("{field}: {message}")]
    Invalid { field: String, message: String },
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

impl StoreError {
    pub fn conflict(slug: &'static str, detail: impl Into<String>) -> Self {
        Self::Conflict {
            slug,
            detail: detail.into(),
        }
    }

    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Invalid {
            field: field.into(),
            message: message.into(),
        }
    }
}
