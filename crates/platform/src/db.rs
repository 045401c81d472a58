//! The database handle. A service owns one database, PostgreSQL in production or
//! SQLite embedded, chosen by URL. Queries are written once in portable SQL
//! (`$1` placeholders work on both); migrations exist per backend because DDL differs.

use sqlx::any::{AnyPoolOptions, AnyQueryResult};
use sqlx::migrate::Migrator;
use sqlx::AnyPool;
use std::time::Duration;

pub use sqlx::Any;
pub type Transaction<'a> = sqlx::Transaction<'a, Any>;

static PLATFORM_POSTGRES: Migrator = sqlx::migrate!("./migrations/postgres");
static PLATFORM_SQLITE: Migrator = sqlx::migrate!("./migrations/sqlite");

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Postgres,
    Sqlite,
}

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("unsupported database url {url:?}: expected postgres:// or sqlite:")]
    UnsupportedUrl { url: String },
    #[error("cannot prepare sqlite directory {path}: {source}")]
    SqliteDirectory {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot connect to database {url}: {source}")]
    Connect { url: String, source: sqlx::Error },
    #[error("migrating database {url}: {source}")]
    Migrate {
        url: String,
        source: sqlx::migrate::MigrateError,
    },
}

/// Declares a service's `MIGRATIONS` from its `migrations/postgres` and
/// `migrations/sqlite` directories (embedded at compile time by `sqlx::migrate!`,
/// relative to the service crate).
#[macro_export]
macro_rules! service_migrations {
    () => {
        /// This service's migrations for PostgreSQL and SQLite.
        pub const MIGRATIONS: $crate::db::Migrations = {
            static POSTGRES: ::sqlx::migrate::Migrator = ::sqlx::migrate!("./migrations/postgres");
            static SQLITE: ::sqlx::migrate::Migrator = ::sqlx::migrate!("./migrations/sqlite");
            $crate::db::Migrations {
                postgres: &POSTGRES,
                sqlite: &SQLITE,
            }
        };
    };
}

/// Per-service migrations for both backends, from `sqlx::migrate!`.
pub struct Migrations {
    pub postgres: &'static Migrator,
    pub sqlite: &'static Migrator,
}

#[derive(Clone, Debug)]
pub struct Database {
    pool: AnyPool,
    backend: Backend,
}

impl Database {
    /// Connects (creating a missing SQLite file and its directory) and applies the
    /// platform's and the service's migrations.
    pub async fn connect(url: &str, migrations: &Migrations) -> Result<Self, DbError> {
        sqlx::any::install_default_drivers();
        let backend = backend_of(url)?;
        if backend == Backend::Sqlite {
            prepare_sqlite_directory(url)?;
        }
        let redacted = redact(url);
        // One direct attempt first: a pool would only report "timed out", while the
        // operator needs the real reason (refused, unknown database, bad password).
        probe(url, backend, &redacted).await?;
        let pool = pool_options(backend)
            .connect(&sqlite_with_create(url, backend))
            .await
            .map_err(|source| DbError::Connect {
                url: redacted.clone(),
                source,
            })?;
        let database = Self { pool, backend };
        database.migrate(migrations, &redacted).await?;
        Ok(database)
    }

    async fn migrate(&self, migrations: &Migrations, url: &str) -> Result<(), DbError> {
        let (platform, service) = match self.backend {
            Backend::Postgres => (&PLATFORM_POSTGRES, migrations.postgres),
            Backend::Sqlite => (&PLATFORM_SQLITE, migrations.sqlite),
        };
        for migrator in [platform, service] {
            // Platform and service migrations share one history table; each set ignores
            // the other's versions.
            let mut migrator = clone_migrator(migrator);
            migrator.set_ignore_missing(true);
            migrator
                .run(&self.pool)
                .await
                .map_err(|source| DbError::Migrate {
                    url: url.to_string(),
                    source,
                })?;
        }
        Ok(())
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// A transaction. On SQLite it takes the write lock at once (`BEGIN IMMEDIATE`): a
    /// deferred transaction that reads and then writes fails with "database is locked"
    /// (no wait) when another connection wrote in between, which `busy_timeout` cannot
    /// help; taking the lock first makes concurrent writers wait their turn instead.
    pub async fn begin(&self) -> Result<Transaction<'static>, sqlx::Error> {
        match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await,
            Backend::Postgres => self.pool.begin().await,
        }
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

async fn probe(url: &str, backend: Backend, redacted: &str) -> Result<(), DbError> {
    use sqlx::Connection;
    let attempt = sqlx::AnyConnection::connect(&sqlite_with_create(url, backend));
    let connection = tokio::time::timeout(Duration::from_secs(10), attempt)
        .await
        .map_err(|_| DbError::Connect {
            url: redacted.to_string(),
            source: sqlx::Error::PoolTimedOut,
        })?
        .map_err(|source| DbError::Connect {
            url: redacted.to_string(),
            source,
        })?;
    let _ = connection.close().await;
    Ok(())
}

fn clone_migrator(source: &Migrator) -> Migrator {
    Migrator {
        migrations: source.migrations.clone(),
        ignore_missing: source.ignore_missing,
        locking: source.locking,
        no_tx: source.no_tx,
    }
}

fn pool_options(backend: Backend) -> AnyPoolOptions {
    let options = AnyPoolOptions::new().acquire_timeout(Duration::from_secs(10));
    match backend {
        Backend::Postgres => options.max_connections(10),
        // One writer at a time is SQLite's model; a small pool avoids busy errors.
        Backend::Sqlite => options
            .max_connections(4)
            .after_connect(|conn, _meta| {
                Box::pin(async move {
                    use sqlx::Executor;
                    conn.execute("PRAGMA journal_mode = WAL; PRAGMA busy_timeout = 10000; PRAGMA foreign_keys = ON;")
                        .await
                        .map(|_: AnyQueryResult| ())
                })
            }),
    }
}

/// Which backend a URL names.
pub fn backend_of(url: &str) -> Result<Backend, DbError> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Backend::Postgres)
    } else if url.starts_with("sqlite:") {
        Ok(Backend::Sqlite)
    } else {
        Err(DbError::UnsupportedUrl { url: redact(url) })
    }
}

fn sqlite_with_create(url: &str, backend: Backend) -> String {
    if backend != Backend::Sqlite || url.contains("mode=") || url.contains(":memory:") {
        return url.to_string();
    }
    let separator = if url.contains('?') { '&' } else { '?' };
    format!("{url}{separator}mode=rwc")
}

fn sqlite_path(url: &str) -> Option<&str> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or(rest);
    if path.is_empty() || path.contains(":memory:") {
        None
    } else {
        Some(path)
    }
}

fn prepare_sqlite_directory(url: &str) -> Result<(), DbError> {
    let Some(path) = sqlite_path(url) else {
        return Ok(());
    };
    match std::path::Path::new(path).parent() {
        Some(parent) if !parent.as_os_str().is_empty() => {
            std::fs::create_dir_all(parent).map_err(|source| DbError::SqliteDirectory {
                path: parent.display().to_string(),
                source,
            })
        }
        _ => Ok(()),
    }
}

/// The URL with any password replaced, safe for logs and errors.
pub fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let Some((userinfo, host)) = rest.split_once('@') else {
        return url.to_string();
    };
    match userinfo.split_once(':') {
        Some((user, _password)) => format!("{scheme}://{user}:***@{host}"),
        None => url.to_string(),
    }
}

/// Whether an error is a unique-constraint violation (portable across backends).
pub fn is_unique_violation(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Database(db) => {
            matches!(db.kind(), sqlx::error::ErrorKind::UniqueViolation)
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_password() {
        assert_eq!(
            redact("postgres://bob:secret@db:5432/x"),
            "postgres://bob:***@db:5432/x"
        );
        assert_eq!(redact("sqlite://data/a.db"), "sqlite://data/a.db");
    }

    #[test]
    fn picks_backend_by_url() {
        assert_eq!(backend_of("postgres://h/db").ok(), Some(Backend::Postgres));
        assert_eq!(backend_of("sqlite://data/x.db").ok(), Some(Backend::Sqlite));
        assert!(backend_of("mysql://h/db").is_err());
    }

    #[test]
    fn sqlite_urls_get_create_mode() {
        assert_eq!(
            sqlite_with_create("sqlite://data/x.db", Backend::Sqlite),
            "sqlite://data/x.db?mode=rwc"
        );
        assert_eq!(
            sqlite_path("sqlite://data/x.db?mode=rwc"),
            Some("data/x.db")
        );
    }
}
