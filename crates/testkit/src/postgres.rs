//! One PostgreSQL database per test.

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
                Database::connect(&url)
                    .await
                    .with_context(|| format!("OMS_DATABASE_URL={url} is not reachable"))?;
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
            Database::connect(DEFAULT_ADMIN_URL)
                .await
                .context("PostgreSQL is still not reachable on 127.0.0.1:5432")?;
            Ok(DEFAULT_ADMIN_URL.to_owned())
        })
        .await
}

/// A database created for one test and dropped when this value is dropped.
#[derive(Debug)]
pub struct TestDatabase {
    /// Connection URL of the new database.
    pub url: String,
    name: String,
    admin_url: String,
}

impl TestDatabase {
    /// Creates an empty database with a unique name.
    ///
    /// # Panics
    /// When no PostgreSQL server can be found or started: a test that needs
    /// one cannot run without it.
    pub async fn create() -> Self {
        Self::try_create().await.expect("a test database")
    }

    /// As [`create`](Self::create), returning the error.
    ///
    /// # Errors
    /// When the server is unreachable or refuses the creation.
    pub async fn try_create() -> anyhow::Result<Self> {
        let admin_url = admin_url().await?.clone();
        let name = format!("oms_test_{}", uuid::Uuid::new_v4().simple());
        let admin = Database::connect(&admin_url).await?;
        admin
            .execute_unprepared(&format!("CREATE DATABASE \"{name}\""))
            .await?;
        admin.close().await?;
        Ok(Self {
            url: with_database(&admin_url, &name),
            name,
            admin_url,
        })
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let admin_url = self.admin_url.clone();
        let name = self.name.clone();
        // Drop runs inside the test's runtime, which cannot be blocked on;
        // a thread with its own small runtime can.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            runtime.block_on(async {
                let admin = Database::connect(&admin_url).await?;
                admin
                    .execute_unprepared(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
                    .await?;
                admin.close().await?;
                anyhow::Ok(())
            })
        })
        .join();
        if let Ok(Err(error)) = dropped {
            eprintln!("could not drop test database {}: {error:#}", self.name);
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
