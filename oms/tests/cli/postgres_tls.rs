//! The system over a PostgreSQL that requires TLS, verified as production
//! should verify it (`sslmode=verify-full` with a CA file, as the
//! production guide's URL says): a PostgreSQL server of the test's own,
//! whose certificate is made at its start and signed by a CA made then,
//! and which accepts TLS connections only; `oms up`'s three services
//! placing and confirming an order through it, and `oms outbox list`
//! reading a service's database through it. A server whose certificate
//! does not name the host the URL names is refused with one line.
//!
//! PostgreSQL only: SQLite is a file, with nothing to encrypt in transit.

use std::path::Path;
use std::process::Command;

use local_kafka::certificates::Authority;
use oms::chaos::cluster::{Postgres, ServerTls};

use crate::starting::{
    data_dir, exit_of, lines_of, oms_up, output_text, served_urls, stop_with_ctrl_c,
};
use crate::up::confirmed_order;

/// A PostgreSQL of the test's own (the one the chaos suite runs on),
/// serving TLS only, with a certificate for `localhost` signed by a CA
/// made now. Stopped, and its directory removed, when dropped.
struct TlsPostgres(Postgres);

impl TlsPostgres {
    fn start() -> Self {
        let dir = std::env::temp_dir().join(format!("oms-pg-tls-{}", uuid::Uuid::now_v7()));
        std::fs::create_dir_all(&dir).unwrap();
        let authority = Authority::new("oms test PostgreSQL CA").unwrap();
        let server = authority.issue(&["localhost"]).unwrap();
        let ca_file = dir.join("ca.pem");
        std::fs::write(&ca_file, authority.certificate_pem()).unwrap();
        let tls = ServerTls {
            certificate_pem: server.certificate_pem,
            key_pem: server.key_pem,
            ca_file,
        };
        Self(Postgres::start_with(&dir.join("server"), Some(&tls)).unwrap())
    }
}

impl Drop for TlsPostgres {
    fn drop(&mut self) {
        self.0.destroy();
    }
}

/// `oms up --database-url <url>` with fresh databases named by a prefix of
/// its own on the test's server; the prefix too.
async fn oms_up_on(url: &str, dir: &Path) -> (Command, String) {
    let mut command = oms_up(testkit::kafka_bootstrap().await, dir, None);
    let prefix = format!(
        "oms_tls_{}_",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    );
    command
        .args(["--database-url", url])
        .args(["--database-prefix", &prefix]);
    (command, prefix)
}

/// The three services migrate, place and confirm an order over verified
/// TLS; `oms outbox list` reads order-svc's database the same way, and the
/// server turns away a connection without TLS.
#[tokio::test]
async fn the_saga_and_oms_run_over_postgres_tls_with_verify_full() {
    let server = tokio::task::spawn_blocking(TlsPostgres::start)
        .await
        .unwrap();
    let url = server.0.verified_url("localhost", "postgres");
    let dir = data_dir();
    let (mut command, prefix) = oms_up_on(&url, &dir).await;
    let mut child = command.arg("--demo").spawn().unwrap();
    let urls = served_urls(&mut child, "serve over PostgreSQL with verify-full");
    // Returns once the order is CONFIRMED (it fails the test otherwise).
    confirmed_order(&urls).await;
    stop_with_ctrl_c(&mut child);
    std::fs::remove_dir_all(&dir).ok();

    let order_database = server
        .0
        .verified_url("localhost", &format!("{prefix}order"));
    let verified = oms(&["outbox", "list", "--database-url", &order_database]);
    assert!(
        verified.status.success(),
        "oms outbox list over verify-full: {}",
        output_text(&verified)
    );
    let plain = order_database.replace("sslmode=verify-full", "sslmode=disable");
    let refused = oms(&["outbox", "list", "--database-url", &plain]);
    assert!(
        !refused.status.success() && output_text(&refused).contains("no encryption"),
        "the server let in a connection without TLS: {}",
        output_text(&refused)
    );
}

/// A URL whose host the server's certificate does not name (`127.0.0.1`,
/// where the certificate names `localhost`) ends `oms up`'s start with one
/// line that says why; nothing connects without verification.
#[tokio::test]
async fn a_server_whose_certificate_does_not_match_is_refused_with_one_line() {
    let server = tokio::task::spawn_blocking(TlsPostgres::start)
        .await
        .unwrap();
    let dir = data_dir();
    let (mut command, _) = oms_up_on(&server.0.verified_url("127.0.0.1", "postgres"), &dir).await;
    let mut child = command.spawn().unwrap();
    let lines = lines_of(&mut child);
    let status = exit_of(&mut child, "with a certificate for another name");
    let printed: Vec<String> = lines.try_iter().collect();
    let all = printed.join("\n");
    assert!(!status.success(), "{all}");
    let errors: Vec<&String> = printed
        .iter()
        .filter(|line| line.to_lowercase().contains("certificate"))
        .collect();
    assert!(
        errors.len() == 1 && errors[0].contains("127.0.0.1"),
        "not one line saying the certificate does not match:\n{all}"
    );
    std::fs::remove_dir_all(&dir).ok();
}

fn oms(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_oms"))
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap()
}
