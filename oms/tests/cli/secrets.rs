//! Secrets as files: `oms up` (like every service) reads `OMS_X_FILE` for
//! each secret `OMS_X`, and refuses a secret given both ways.

use rstest::rstest;
use serde_json::json;
use testkit::{Backend, TestDatabasePrefix};

use crate::starting::{data_dir, exit_of, lines_of, oms_up, read_until, stop_with_ctrl_c};

/// The admin password, the key-encryption key and (on PostgreSQL) the
/// database URL come from files: the admin signs in with the file's
/// password.
#[rstest]
#[case::postgres(Backend::Postgres)]
#[case::sqlite(Backend::Sqlite)]
#[tokio::test]
async fn oms_up_reads_its_secrets_from_files(#[case] backend: Backend) {
    let bootstrap = testkit::kafka_bootstrap().await.to_owned();
    let databases = match backend {
        Backend::Postgres => Some(TestDatabasePrefix::create().await),
        Backend::Sqlite => None,
    };
    let dir = data_dir();
    let secrets = tempfile::tempdir().unwrap();
    let password_file = secrets.path().join("admin-password");
    std::fs::write(&password_file, "from a file, not the environment\n").unwrap();
    let key_file = secrets.path().join("key-encryption-key");
    std::fs::write(&key_file, "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=\n").unwrap();
    let mut command = oms_up(&bootstrap, &dir, None);
    command
        .env_remove("OMS_ADMIN_PASSWORD")
        .env_remove("OMS_KEY_ENCRYPTION_KEY")
        .env("OMS_ADMIN_PASSWORD_FILE", &password_file)
        .env("OMS_KEY_ENCRYPTION_KEY_FILE", &key_file);
    if let Some(databases) = &databases {
        let url_file = secrets.path().join("database-url");
        std::fs::write(&url_file, format!("{}\n", databases.admin_url)).unwrap();
        command
            .env("OMS_DATABASE_URL_FILE", &url_file)
            .args(["--database-prefix", &databases.prefix]);
    }
    let mut child = command.spawn().unwrap();
    let lines = lines_of(&mut child);
    let mut customer = String::new();
    read_until(&mut child, &lines, "come up", |line| {
        let found = line
            .trim()
            .strip_prefix("customer-svc")
            .and_then(|rest| rest.split_whitespace().next());
        if let Some(url) = found {
            customer = url.to_owned();
        }
        !customer.is_empty()
    });
    let signed_in = reqwest::Client::new()
        .post(format!("{customer}/auth/token"))
        .json(&json!({"email": "admin@oms.local", "password": "from a file, not the environment"}))
        .send()
        .await
        .unwrap();
    let status = signed_in.status();
    stop_with_ctrl_c(&mut child);
    assert_eq!(status, 200, "the admin password of the file");
    assert!(
        !dir.join("admin-password").exists(),
        "oms up made a password of its own"
    );
    if databases.is_some() {
        assert!(
            !dir.join("customer-svc.sqlite").exists(),
            "the database URL of the file was not used"
        );
    }
    std::fs::remove_dir_all(&dir).ok();
}

/// A secret given directly and as a file is refused, in one line naming it.
#[test]
fn a_secret_given_both_ways_is_refused_in_one_line() {
    let secrets = tempfile::tempdir().unwrap();
    let file = secrets.path().join("admin-password");
    std::fs::write(&file, "one\n").unwrap();
    let dir = data_dir();
    let mut child = oms_up("127.0.0.1:1", &dir, None)
        .env("OMS_ADMIN_PASSWORD", "two")
        .env("OMS_ADMIN_PASSWORD_FILE", &file)
        .spawn()
        .unwrap();
    let lines = lines_of(&mut child);
    let status = exit_of(&mut child, "with a secret given both ways");
    let printed: Vec<String> = lines.try_iter().collect();
    assert!(!status.success(), "{printed:?}");
    assert!(
        printed
            .iter()
            .any(|l| l
                .contains("set either OMS_ADMIN_PASSWORD or OMS_ADMIN_PASSWORD_FILE, not both")),
        "{printed:?}"
    );
    std::fs::remove_dir_all(&dir).ok();
}
