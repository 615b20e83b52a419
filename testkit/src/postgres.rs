//! One database per test, on PostgreSQL or SQLite ([`Backend`]).

use std::process::Command;

use anyhow::Context;
use sea_orm::{ConnectionTrait, Database};
use tokio::sync::OnceCell;

const DEFAULT_ADMIN_URL: &str = "postgres://postgres:postgres@127.0.0.1:5432/postgres";

static SERVER: OnceCell<String> = OnceCell::const_new();

/// The admin URL of a reachable server, starting the local one if needed.
async fn admin_url() -> anyhow::Result<&'static String> {
    SERVER
        .get_or_try_init(|| async {
            if let Ok(url) = std::env::var("OMS_DATABASE_URL") {
                let admin = Database::connect(&url)
                    .await
                    .with_context(|| format!("OMS_DATABASE_URL={url} is not reachable"))?;
                drop_stale_databases(&admin).await;
                return Ok(url);
            }
            if Database::connect(DEFAULT_ADMIN_URL).await.is_err() {
                let script = crate::repo_root().join("scripts/postgres.sh");
                let status =
                    tokio::task::spawn_blocking(move || Command::new("bash").arg(script).status())
                        .await?
                        .context("could not run scripts/postgres.sh")?;
                anyhow::ensure!(
                    status.success(),
                    "scripts/postgres.sh failed; is this machine's PostgreSQL installable?"
                );
            }
            let admin = Database::connect(DEFAULT_ADMIN_URL)
                .await
                .context("PostgreSQL is still not reachable on 127.0.0.1:5432")?;
            drop_stale_databases(&admin).await;
            Ok(DEFAULT_ADMIN_URL.to_owned())
        })
        .await
}

/// The two database backends every service supports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// A PostgreSQL server (production, docker-compose).
    Postgres,
    /// A SQLite file (the embedded default of `oms up`).
    Sqlite,
}

/// A database created for one test and removed when this value is dropped:
/// a fresh PostgreSQL database, or a SQLite file in a temporary folder.
#[derive(Debug)]
pub struct TestDatabase {
    /// Connection URL of the new database.
    pub url: String,
    /// Which backend it is on.
    pub backend: Backend,
    place: Place,
}

#[derive(Debug)]
enum Place {
    Postgres {
        name: String,
        admin_url: String,
    },
    /// Removed with the folder when dropped.
    Sqlite {
        _dir: tempfile::TempDir,
    },
}

impl TestDatabase {
    /// Creates an empty PostgreSQL database with a unique name.
    ///
    /// # Panics
    /// When no PostgreSQL server can be found or started: a test that needs
    /// one cannot run without it.
    pub async fn create() -> Self {
        Self::try_create().await.expect("a test database")
    }

    /// Creates an empty database on `backend`.
    ///
    /// # Panics
    /// As [`create`](Self::create), or when no temporary folder can be made.
    pub async fn create_on(backend: Backend) -> Self {
        match backend {
            Backend::Postgres => Self::create().await,
            Backend::Sqlite => Self::sqlite(),
        }
    }

    /// A SQLite database file of its own, in a new temporary folder.
    ///
    /// # Panics
    /// When no temporary folder can be made.
    pub fn sqlite() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("oms-test-sqlite-")
            .tempdir()
            .expect("a temporary folder");
        Self {
            url: format!("sqlite://{}/test.sqlite?mode=rwc", dir.path().display()),
            backend: Backend::Sqlite,
            place: Place::Sqlite { _dir: dir },
        }
    }

    /// As [`create`](Self::create), returning the error.
    ///
    /// # Errors
    /// When the server is unreachable or refuses the creation.
    pub async fn try_create() -> anyhow::Result<Self> {
        let admin_url = admin_url().await?.clone();
        let created = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let name = format!("{PREFIX}{created}_{}", uuid::Uuid::new_v4().simple());
        let admin = Database::connect(&admin_url).await?;
        admin
            .execute_unprepared(&format!("CREATE DATABASE \"{name}\""))
            .await?;
        admin.close().await?;
        Ok(Self {
            url: with_database(&admin_url, &name),
            backend: Backend::Postgres,
            place: Place::Postgres { name, admin_url },
        })
    }
}

impl Drop for TestDatabase {
    /// Drops a PostgreSQL database on a thread of its own, without waiting:
    /// the test's runtime must keep running meanwhile, or the pools of the
    /// services under test, reconnecting after `FORCE` cut them off, would
    /// stall `DROP DATABASE` until PostgreSQL's authentication timeout.
    /// Databases a finished process left behind are dropped by the next
    /// run (`drop_stale_databases`). A SQLite folder is removed with its
    /// `TempDir`.
    fn drop(&mut self) {
        let Place::Postgres { name, admin_url } = &self.place else {
            return;
        };
        let admin_url = admin_url.clone();
        let name = name.clone();
        std::thread::spawn(move || {
            let dropped = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(anyhow::Error::from)
                .and_then(|runtime| runtime.block_on(drop_database(&admin_url, &name)));
            if let Err(error) = dropped {
                eprintln!("could not drop test database {name}: {error:#}");
            }
        });
    }
}

/// A database-name prefix on the PostgreSQL server that no other test
/// uses, for a test whose program creates databases itself (`oms up
/// --database-prefix`). Every database named with it is dropped when this
/// value is dropped; no other database is touched.
#[derive(Debug)]
pub struct TestDatabasePrefix {
    /// The server's admin URL, for the program to connect with.
    pub admin_url: String,
    /// `oms_test_<time>_<random>_`.
    pub prefix: String,
}

impl TestDatabasePrefix {
    /// A fresh prefix on the test server.
    ///
    /// # Panics
    /// When no PostgreSQL server can be found or started.
    pub async fn create() -> Self {
        let admin_url = admin_url().await.expect("a PostgreSQL server").clone();
        let created = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let random = uuid::Uuid::new_v4().simple().to_string();
        Self {
            admin_url,
            prefix: format!("{PREFIX}{created}_{}_", &random[..12]),
        }
    }

    /// The URL of the database `<prefix><suffix>`.
    pub fn url_of(&self, suffix: &str) -> String {
        with_database(&self.admin_url, &format!("{}{suffix}", self.prefix))
    }
}

impl Drop for TestDatabasePrefix {
    /// Drops the databases named with the prefix, on a thread of its own
    /// (see [`TestDatabase`]'s `Drop`).
    fn drop(&mut self) {
        let admin_url = self.admin_url.clone();
        let prefix = self.prefix.clone();
        std::thread::spawn(move || {
            let dropped = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(anyhow::Error::from)
                .and_then(|runtime| {
                    runtime.block_on(async {
                        let admin = Database::connect(&admin_url).await?;
                        for name in database_names(&admin).await? {
                            if name.starts_with(&prefix) {
                                admin
                                    .execute_unprepared(&format!(
                                        "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
                                    ))
                                    .await?;
                            }
                        }
                        admin.close().await?;
                        anyhow::Ok(())
                    })
                });
            if let Err(error) = dropped {
                eprintln!("could not drop the test databases {prefix}*: {error:#}");
            }
        });
    }
}

/// The names of the databases this suite creates (`oms_test_…`).
async fn database_names(admin: &sea_orm::DatabaseConnection) -> anyhow::Result<Vec<String>> {
    let rows = admin
        .query_all_raw(sea_orm::Statement::from_string(
            sea_orm::DbBackend::Postgres,
            format!("SELECT datname FROM pg_database WHERE datname LIKE '{PREFIX}%'"),
        ))
        .await?;
    Ok(rows
        .into_iter()
        .filter_map(|row| row.try_get::<String>("", "datname").ok())
        .collect())
}

const PREFIX: &str = "oms_test_";

async fn drop_database(admin_url: &str, name: &str) -> anyhow::Result<()> {
    let admin = Database::connect(admin_url).await?;
    admin
        .execute_unprepared(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
        .await?;
    admin.close().await?;
    Ok(())
}

/// Drops test databases created more than two hours ago (by runs that
/// ended before their cleanup finished).
async fn drop_stale_databases(admin: &sea_orm::DatabaseConnection) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let Ok(names) = database_names(admin).await else {
        return;
    };
    for name in names {
        let created = name
            .strip_prefix(PREFIX)
            .and_then(|rest| rest.split('_').next())
            .and_then(|secs| secs.parse::<u64>().ok());
        // Names without a time come from older versions of this code.
        if created.is_none_or(|t| now.saturating_sub(t) > 2 * 3600) {
            let _ = admin
                .execute_unprepared(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
                .await;
        }
    }
}

/// `url` with its database name replaced by `name`.
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = url
        .split_once('?')
        .map_or((url, None), |(b, q)| (b, Some(q)));
    let authority_end = base.find("://").map_or(0, |i| i + 3);
    let path_start = base[authority_end..]
        .find('/')
        .map_or(base.len(), |i| authority_end + i);
    let mut result = format!("{}/{}", &base[..path_start], name);
    if let Some(query) = query {
        result.push('?');
        result.push_str(query);
    }
    result
}

/// How many deadlocks PostgreSQL has broken in the database at `url` since
/// it was created. A backend reports its counters when it goes idle, so
/// ask once the work has settled.
///
/// # Panics
/// When the database cannot be reached.
pub async fn deadlocks(url: &str) -> i64 {
    let db = Database::connect(url).await.expect("the test database");
    db.query_one_raw(sea_orm::Statement::from_string(
        sea_orm::DbBackend::Postgres,
        "SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()",
    ))
    .await
    .expect("pg_stat_database answers")
    .expect("a row for the database")
    .try_get_by_index(0)
    .expect("a count")
}

#[cfg(test)]
mod tests {
    use super::with_database;

    #[test]
    fn replaces_the_database_name() {
        assert_eq!(
            with_database("postgres://u:p@h:5432/postgres?sslmode=disable", "x"),
            "postgres://u:p@h:5432/x?sslmode=disable"
        );
        assert_eq!(with_database("postgres://h", "x"), "postgres://h/x");
    }
}
