//! Connecting to the service's database and migrating it.
//!
//! PostgreSQL (`postgres://…`) in production and tests; SQLite
//! (`sqlite://path?mode=rwc`) as the embedded default. Migrations run at
//! start-up on both.
//!
//! ## Instances that start together migrate once
//! On PostgreSQL, [`connect_and_migrate`] applies the migrations under an
//! advisory lock of the database, so that instances starting at once (a
//! release rolling out, an autoscaler adding several) take turns: the
//! first applies each pending migration, the others wait and find none.
//! Without it two of them ran the same `CREATE TABLE` and one failed to
//! start. The lock is held on a connection of its own, not one of the
//! pool, and ends with it, so an instance killed while migrating leaves
//! none behind.
//!
//! ## SQLite, and what it guarantees
//! - **WAL journal**, so that readers never block the writer or each other.
//! - **`synchronous`** (`OMS_SQLITE_SYNCHRONOUS`): `full` by default, so a
//!   committed order survives a power cut (every commit waits for the WAL
//!   to reach the disk). `normal` skips that wait: a power cut (not a
//!   crash of the process) can then lose the last commits, but never
//!   corrupts the database.
//! - **`busy_timeout`** (`OMS_SQLITE_BUSY_TIMEOUT_MS`, default 5000): how
//!   long a writer waits for the write lock. Every write transaction takes
//!   the lock when it begins ([`event_runtime::database::begin_write`]),
//!   so concurrent requests queue instead of failing.
//! - **One process per database file.** [`connect_and_migrate`] holds an
//!   exclusive lock on `<file>.lock` for as long as the service runs; a
//!   second process (or a second service in the same process) on the same
//!   file is refused at start, because two outbox relays on one outbox
//!   would publish its events twice.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::time::Duration;

use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
use sea_orm::sqlx::{self, ConnectOptions as _, Connection as _};
use sea_orm::{ConnectOptions, Database, DatabaseConnection, DbBackend};
use sea_orm_migration::MigratorTrait;

/// How durable SQLite commits are (`OMS_SQLITE_SYNCHRONOUS`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum SqliteDurability {
    /// Every commit reaches the disk before it is acknowledged (`synchronous=FULL`).
    #[default]
    Full,
    /// Commits reach the disk at checkpoints; a power cut may lose the
    /// latest ones, never corrupt the file (`synchronous=NORMAL`).
    Normal,
}

/// How a service connects to its database.
#[derive(Debug, Clone)]
pub struct DatabaseSettings {
    /// Connection pool size.
    pub max_connections: u32,
    /// How long a SQLite writer waits for the write lock.
    pub sqlite_busy_timeout: Duration,
    /// SQLite's `synchronous` level.
    pub sqlite_durability: SqliteDurability,
}

/// A connected, migrated database, and (for SQLite) the lock that keeps
/// other processes off its file. Dropping it releases the lock.
#[derive(Debug)]
pub struct ServiceDatabase {
    /// The pool.
    pub connection: DatabaseConnection,
    /// Held while the service runs; `None` on PostgreSQL.
    pub lock: Option<FileLock>,
}

/// An exclusive advisory lock on a file, released when dropped (or when
/// the process dies, so a crash never leaves a stale lock behind).
#[derive(Debug)]
pub struct FileLock {
    _file: File,
}

impl FileLock {
    /// Takes the lock on `path`, creating the file if needed.
    ///
    /// # Errors
    /// When another process (or another handle in this one) holds it, with
    /// a message that says what to do.
    pub fn acquire(path: &Path, what: &str) -> anyhow::Result<Self> {
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)
            .map_err(|e| anyhow::anyhow!("cannot open the lock file {}: {e}", path.display()))?;
        match file.try_lock() {
            Ok(()) => Ok(Self { _file: file }),
            Err(std::fs::TryLockError::WouldBlock) => Err(anyhow::anyhow!(
                "{what} is already in use by another process (it holds {}); stop that process \
                 first, or give this one another data directory or database",
                path.display()
            )),
            Err(std::fs::TryLockError::Error(e)) => {
                Err(anyhow::anyhow!("cannot lock {}: {e}", path.display()))
            }
        }
    }
}

/// Connects, creating a SQLite file and its folder when needed, and applies
/// every pending migration of `M`.
///
/// # Errors
/// When the database is unreachable, a migration fails, or (SQLite) another
/// process uses the same file.
pub async fn connect_and_migrate<M: MigratorTrait>(
    url: &str,
    settings: &DatabaseSettings,
) -> anyhow::Result<ServiceDatabase> {
    let mut lock = None;
    let mut options = ConnectOptions::new(without_tls_on_loopback(url));
    if let Some(path) = sqlite_path(url) {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)?;
        }
        let mut lock_path = path.as_os_str().to_owned();
        lock_path.push(".lock");
        lock = Some(FileLock::acquire(
            Path::new(&lock_path),
            &format!("the SQLite database {}", path.display()),
        )?);
        let busy_timeout = settings.sqlite_busy_timeout;
        let synchronous = match settings.sqlite_durability {
            SqliteDurability::Full => SqliteSynchronous::Full,
            SqliteDurability::Normal => SqliteSynchronous::Normal,
        };
        options.map_sqlx_sqlite_opts(move |opts| {
            opts.journal_mode(SqliteJournalMode::Wal)
                .synchronous(synchronous)
                .busy_timeout(busy_timeout)
        });
    }
    options
        .max_connections(settings.max_connections)
        .min_connections(settings.max_connections)
        .connect_timeout(Duration::from_secs(10))
        .acquire_timeout(Duration::from_secs(10))
        .sqlx_logging(false);
    let connection = Database::connect(options)
        .await
        .map_err(|e| anyhow::anyhow!("cannot connect to the database at {}: {e}", redact(url)))?;
    migrate::<M>(&connection).await?;
    Ok(ServiceDatabase { connection, lock })
}

/// Key of the PostgreSQL advisory lock held while migrating ("oms_migr");
/// advisory locks belong to one database, so services sharing a server
/// never wait for each other.
const MIGRATION_LOCK_KEY: i64 = 0x6f6d_735f_6d69_6772;

/// Applies `M`'s pending migrations; on PostgreSQL under the migration lock
/// (see the [module docs](self)). SQLite needs no lock: the file lock keeps
/// every other process out.
async fn migrate<M: MigratorTrait>(db: &DatabaseConnection) -> anyhow::Result<()> {
    if db.get_database_backend() != DbBackend::Postgres {
        M::up(db, None).await?;
        return Ok(());
    }
    // Outside the pool: with `OMS_DATABASE_MAX_CONNECTIONS=1` the
    // migrations would otherwise wait for the connection holding the lock.
    let mut holder = db
        .get_postgres_connection_pool()
        .connect_options()
        .connect()
        .await
        .map_err(|e| anyhow::anyhow!("cannot open a connection for the migration lock: {e}"))?;
    let taken: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
        .bind(MIGRATION_LOCK_KEY)
        .fetch_one(&mut holder)
        .await?;
    if !taken {
        tracing::info!("another instance is migrating the database; waiting for it to finish");
        sqlx::query("SELECT pg_advisory_lock($1)")
            .bind(MIGRATION_LOCK_KEY)
            .execute(&mut holder)
            .await?;
    }
    let migrated = M::up(db, None).await;
    // Ending the session releases the lock, also when the migration failed.
    if let Err(error) = holder.close().await {
        tracing::warn!(error = %error, "closing the migration lock's connection failed");
    }
    Ok(migrated?)
}

/// A PostgreSQL URL whose host is this machine and that does not choose an
/// `sslmode`, with `sslmode=disable`: traffic on loopback never leaves the
/// machine, and TLS there only costs CPU on both ends (`perf`: rustls and
/// OpenSSL on every round trip). Any other URL is returned as it is, so a
/// remote server keeps the driver's default (`prefer`) or what the URL says.
pub fn without_tls_on_loopback(url: &str) -> String {
    let Ok(mut parsed) = url::Url::parse(url) else {
        return url.to_owned();
    };
    let loopback = match parsed.host() {
        // Hosts of `postgres:` URLs are opaque to the `url` crate: parse them.
        Some(url::Host::Domain(domain)) => {
            domain == "localhost"
                || domain
                    .trim_matches(['[', ']'])
                    .parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback())
        }
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    };
    let postgres = matches!(parsed.scheme(), "postgres" | "postgresql");
    if !postgres || !loopback || parsed.query_pairs().any(|(key, _)| key == "sslmode") {
        return url.to_owned();
    }
    parsed.query_pairs_mut().append_pair("sslmode", "disable");
    parsed.into()
}

/// The file of a `sqlite://` URL, `None` for other URLs and in-memory ones.
fn sqlite_path(url: &str) -> Option<PathBuf> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or_default();
    (!path.is_empty() && path != ":memory:").then(|| PathBuf::from(path))
}

/// `url` without its password, for messages.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let credentials = &url[scheme_end + 3..at];
            let user = credentials.split(':').next().unwrap_or_default();
            format!("{}{user}:***{}", &url[..scheme_end + 3], &url[at..])
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_postgres_urls_skip_tls_unless_they_choose() {
        assert_eq!(
            without_tls_on_loopback("postgres://u:p@127.0.0.1:5432/db"),
            "postgres://u:p@127.0.0.1:5432/db?sslmode=disable"
        );
        assert_eq!(
            without_tls_on_loopback("postgresql://u@localhost/db?application_name=x"),
            "postgresql://u@localhost/db?application_name=x&sslmode=disable"
        );
        for kept in [
            "postgres://u:p@127.0.0.1/db?sslmode=require",
            "postgres://u:p@db.example.com/db",
            "sqlite://data/oms.db?mode=rwc",
        ] {
            assert_eq!(without_tls_on_loopback(kept), kept);
        }
    }

    #[test]
    fn sqlite_urls_name_their_file() {
        assert_eq!(
            sqlite_path("sqlite://data/x.sqlite?mode=rwc"),
            Some(PathBuf::from("data/x.sqlite"))
        );
        assert_eq!(
            sqlite_path("sqlite:///tmp/x.sqlite"),
            Some(PathBuf::from("/tmp/x.sqlite"))
        );
        assert_eq!(sqlite_path("sqlite::memory:"), None);
        assert_eq!(sqlite_path("postgres://h/db"), None);
    }

    #[test]
    fn a_second_lock_on_one_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db.lock");
        let first = FileLock::acquire(&path, "the test database").unwrap();
        let error = FileLock::acquire(&path, "the test database").unwrap_err();
        assert!(
            error
                .to_string()
                .contains("already in use by another process"),
            "{error}"
        );
        drop(first);
        FileLock::acquire(&path, "the test database").unwrap();
    }
}
