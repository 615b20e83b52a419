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

use std::path::{Path, PathBuf};
use std::process::Command;

use local_kafka::certificates::{Authority, write_private};

use crate::starting::{
    data_dir, exit_of, lines_of, oms_up, output_text, served_urls, stop_with_ctrl_c,
};
use crate::up::confirmed_order;

const PASSWORD: &str = "tls-test-password";

/// A PostgreSQL server of one test: its own data directory and port,
/// TLS with a certificate for `localhost` only, and no connection without
/// TLS. Stopped, and its directory removed, when dropped.
struct PrivatePostgres {
    dir: PathBuf,
    port: u16,
    ca_file: PathBuf,
    bin: PathBuf,
}

impl PrivatePostgres {
    fn start() -> Self {
        let bin = postgres_bin_dir();
        let dir = std::env::temp_dir().join(format!("oms-pg-tls-{}", uuid::Uuid::now_v7()));
        std::fs::create_dir_all(&dir).unwrap();
        let authority = Authority::new("oms test PostgreSQL CA").unwrap();
        let server = authority.issue(&["localhost"]).unwrap();
        let ca_file = dir.join("ca.pem");
        std::fs::write(&ca_file, authority.certificate_pem()).unwrap();
        std::fs::write(dir.join("server.crt"), &server.certificate_pem).unwrap();
        write_private(&dir.join("server.key"), &server.key_pem).unwrap();
        std::fs::write(dir.join("password"), PASSWORD).unwrap();
        let port = free_port();
        let data = dir.join("data");
        give_to_server_user(&dir);
        run(as_server_user(
            Command::new(bin.join("initdb"))
                .arg("-D")
                .arg(&data)
                .args(["-U", "postgres", "--auth=scram-sha-256", "--pwfile"])
                .arg(dir.join("password")),
        ));
        let settings = format!(
            "port = {port}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{dir}'\n\
             ssl = on\nssl_cert_file = '{dir}/server.crt'\nssl_key_file = '{dir}/server.key'\n\
             max_connections = 100\nfsync = off\n",
            dir = dir.display()
        );
        append(&data.join("postgresql.conf"), &settings);
        // TLS or nothing: a connection without it finds no rule that lets it in.
        std::fs::write(
            data.join("pg_hba.conf"),
            "hostssl all all 127.0.0.1/32 scram-sha-256\n",
        )
        .unwrap();
        give_to_server_user(&dir);
        run(as_server_user(
            Command::new(bin.join("pg_ctl"))
                .arg("-D")
                .arg(&data)
                .arg("-l")
                .arg(dir.join("server.log"))
                .args(["-w", "-t", "30", "start"]),
        ));
        Self {
            dir,
            port,
            ca_file,
            bin,
        }
    }

    /// The admin URL for `host`, verifying the server's certificate
    /// against the test's CA and its name against `host`.
    fn verified_url(&self, host: &str) -> String {
        format!(
            "postgres://postgres:{PASSWORD}@{host}:{}/postgres?sslmode=verify-full&sslrootcert={}",
            self.port,
            self.ca_file.display()
        )
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        let _ = as_server_user(
            Command::new(self.bin.join("pg_ctl"))
                .arg("-D")
                .arg(self.dir.join("data"))
                .args(["-m", "immediate", "stop"]),
        )
        .output();
        std::fs::remove_dir_all(&self.dir).ok();
    }
}

/// The newest installed PostgreSQL's programs (Debian keeps them out of
/// `PATH`, under `/usr/lib/postgresql/<version>/bin`); the suite's shared
/// server is installed by `scripts/postgres.sh`, so they are there.
fn postgres_bin_dir() -> PathBuf {
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL from Debian's packages (scripts/postgres.sh installs it)")
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let version = entry.file_name().to_string_lossy().parse().ok()?;
            let bin = entry.path().join("bin");
            bin.join("initdb").exists().then_some((version, bin))
        })
        .collect();
    found.sort();
    found.pop().expect("an initdb under /usr/lib/postgresql").1
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// PostgreSQL refuses to run as root: as root, the server runs as the
/// `postgres` user Debian's package made.
fn as_server_user(command: &mut Command) -> Command {
    let mut wrapped = if is_root() {
        let mut runuser = Command::new("runuser");
        runuser
            .args(["-u", "postgres", "--"])
            .arg(command.get_program());
        runuser
    } else {
        Command::new(command.get_program())
    };
    wrapped.args(command.get_args());
    wrapped
}

fn give_to_server_user(dir: &Path) {
    if is_root() {
        let mut chown = Command::new("chown");
        chown.args(["-R", "postgres:postgres"]).arg(dir);
        run(chown);
    }
}

fn run(mut command: Command) {
    let output = command.output().unwrap();
    assert!(
        output.status.success(),
        "{command:?} failed: {}",
        output_text(&output)
    );
}

fn append(path: &Path, text: &str) {
    use std::io::Write;
    let mut file = std::fs::OpenOptions::new().append(true).open(path).unwrap();
    file.write_all(text.as_bytes()).unwrap();
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `oms up --database-url <url>` with fresh databases named by a prefix of
/// its own on the test's server.
async fn oms_up_on(url: &str, dir: &Path) -> Command {
    let mut command = oms_up(testkit::kafka_bootstrap().await, dir, None);
    let prefix = format!(
        "oms_tls_{}_",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    );
    command
        .args(["--database-url", url])
        .args(["--database-prefix", &prefix]);
    command
}

/// The three services migrate, place and confirm an order over verified
/// TLS; `oms outbox list` reads order-svc's database the same way, and the
/// server turns away a connection without TLS.
#[tokio::test]
async fn the_saga_and_oms_run_over_postgres_tls_with_verify_full() {
    let server = tokio::task::spawn_blocking(PrivatePostgres::start)
        .await
        .unwrap();
    let url = server.verified_url("localhost");
    let dir = data_dir();
    let mut child = oms_up_on(&url, &dir).await.arg("--demo").spawn().unwrap();
    let urls = served_urls(&mut child, "serve over PostgreSQL with verify-full");
    // Returns once the order is CONFIRMED (it fails the test otherwise).
    confirmed_order(&urls).await;
    stop_with_ctrl_c(&mut child);
    std::fs::remove_dir_all(&dir).ok();

    let order_database = database_of(&server, "order");
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
    let server = tokio::task::spawn_blocking(PrivatePostgres::start)
        .await
        .unwrap();
    let dir = data_dir();
    let mut child = oms_up_on(&server.verified_url("127.0.0.1"), &dir)
        .await
        .spawn()
        .unwrap();
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

/// The URL of the database `oms up` made for `service`, found by its name.
fn database_of(server: &PrivatePostgres, service: &str) -> String {
    let url = server.verified_url("localhost");
    let listed = Command::new(server.bin.join("psql"))
        .args([
            "-h",
            "localhost",
            "-p",
            &server.port.to_string(),
            "-U",
            "postgres",
        ])
        .args(["-At", "-c", "SELECT datname FROM pg_database", "postgres"])
        .env("PGPASSWORD", PASSWORD)
        .env("PGSSLMODE", "verify-full")
        .env("PGSSLROOTCERT", &server.ca_file)
        .output()
        .unwrap();
    let names = String::from_utf8_lossy(&listed.stdout);
    let name = names
        .lines()
        .find(|name| name.starts_with("oms_tls_") && name.ends_with(service))
        .unwrap_or_else(|| panic!("no database for {service}: {}", output_text(&listed)));
    url.replacen("/postgres?", &format!("/{name}?"), 1)
}

fn oms(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_oms"))
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap()
}
