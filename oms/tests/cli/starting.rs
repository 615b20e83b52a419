//! Starting `oms up` against a Kafka it cannot use: a client configuration
//! librdkafka refuses ends the start at once with one line naming the
//! property; a broker that cannot be reached is waited for, saying so, until
//! Ctrl-C; a broker on the port `oms up` would start its own on is never
//! joined.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use rstest::rstest;
use testkit::{Backend, TestDatabasePrefix};
use uuid::Uuid;

use crate::up::PrintedUrls;

/// How long a test waits for `oms up` to do what it must before failing.
pub(crate) const BOUND: Duration = Duration::from_secs(45);

pub(crate) fn data_dir() -> PathBuf {
    std::env::temp_dir().join(format!("oms-starting-{}", Uuid::now_v7()))
}

/// `oms up` on `kafka`, on free ports, with its own data directory and
/// (on PostgreSQL) its own databases; never the environment's database.
pub(crate) fn oms_up(kafka: &str, dir: &Path, databases: Option<&TestDatabasePrefix>) -> Command {
    oms_up_with_prefix(kafka, dir, databases, &testkit::topic_prefix())
}

/// [`oms_up`] with the topic prefix `prefix`.
pub(crate) fn oms_up_with_prefix(
    kafka: &str,
    dir: &Path,
    databases: Option<&TestDatabasePrefix>,
    prefix: &str,
) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_oms"));
    command
        .args(["up", "--kafka", kafka, "--data-dir"])
        .arg(dir)
        .args(["--order-port", "0", "--inventory-port", "0"])
        .args(["--customer-port", "0", "--topic-prefix", prefix])
        .env_remove("OMS_DATABASE_URL")
        .env_remove("OMS_DATABASE_PREFIX")
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(databases) = databases {
        command
            .args(["--database-url", &databases.admin_url])
            .args(["--database-prefix", &databases.prefix]);
    }
    command
}

/// Every line the child prints, on stdout or stderr, as it prints it.
/// Its output is read to the end even once nobody takes the lines any
/// more, so the child never writes to a closed pipe.
pub(crate) fn lines_of(child: &mut Child) -> mpsc::Receiver<String> {
    let (sender, receiver) = mpsc::channel();
    let stdout = child.stdout.take().unwrap();
    let stderr = child.stderr.take().unwrap();
    for stream in [
        Box::new(stdout) as Box<dyn std::io::Read + Send>,
        Box::new(stderr),
    ] {
        let sender = sender.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stream).lines().map_while(Result::ok) {
                let _ = sender.send(line);
            }
        });
    }
    receiver
}

/// Reads the child's lines until `done` has seen enough (it is given each
/// line and answers whether that was the last one needed); kills the child
/// and fails the test, naming `what` and everything printed, when that
/// takes longer than [`BOUND`] or the child exits first.
pub(crate) fn read_until(
    child: &mut Child,
    lines: &mpsc::Receiver<String>,
    what: &str,
    mut done: impl FnMut(&str) -> bool,
) {
    let started = Instant::now();
    let mut printed = Vec::new();
    loop {
        match lines.recv_timeout(Duration::from_millis(200)) {
            Ok(line) => {
                let enough = done(&line);
                printed.push(line);
                if enough {
                    return;
                }
            }
            Err(_) if started.elapsed() > BOUND || child.try_wait().unwrap().is_some() => {
                child.kill().ok();
                child.wait().ok();
                panic!(
                    "oms up did not {what} within {BOUND:?}:\n{}",
                    printed.join("\n")
                );
            }
            Err(_) => {}
        }
    }
}

/// Reads the addresses `oms up` prints once it serves; fails the test,
/// naming `what`, when they do not come (see [`read_until`]).
pub(crate) fn served_urls(child: &mut Child, what: &str) -> PrintedUrls {
    let lines = lines_of(child);
    let (mut order, mut inventory, mut customer) = (None, None, None);
    read_until(child, &lines, what, |line| {
        match line.split_whitespace().collect::<Vec<_>>()[..] {
            ["order-svc", url, ..] => order = Some(url.to_owned()),
            ["inventory-svc", url, ..] => inventory = Some(url.to_owned()),
            ["customer-svc", url, ..] => customer = Some(url.to_owned()),
            _ => {}
        }
        order.is_some() && inventory.is_some() && customer.is_some()
    });
    PrintedUrls {
        order: order.unwrap(),
        inventory: inventory.unwrap(),
        customer: customer.unwrap(),
    }
}

/// What a finished command printed, standard output then standard error.
pub(crate) fn output_text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Sends the child SIGINT, as Ctrl-C does, and waits for it to exit.
pub(crate) fn stop_with_ctrl_c(child: &mut Child) {
    Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    exit_of(child, "after Ctrl-C");
}

/// Waits up to [`BOUND`] for the child to exit; kills it and fails the
/// test when it does not.
pub(crate) fn exit_of(child: &mut Child, what: &str) -> std::process::ExitStatus {
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if started.elapsed() > BOUND {
            child.kill().ok();
            child.wait().ok();
            panic!("oms up did not exit within {BOUND:?} {what}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

async fn databases(backend: Backend) -> Option<TestDatabasePrefix> {
    match backend {
        Backend::Postgres => Some(TestDatabasePrefix::create().await),
        Backend::Sqlite => None,
    }
}

/// A `security.protocol` that does not exist and an unknown property: `oms up`
/// exits non-zero at once, with one line naming the property and its
/// variable, and never says it is waiting for the broker.
#[rstest]
#[case::postgres(Backend::Postgres)]
#[case::sqlite(Backend::Sqlite)]
#[tokio::test]
async fn a_kafka_configuration_error_ends_the_start_with_one_line_naming_the_property(
    #[case] backend: Backend,
) {
    let bootstrap = testkit::kafka_bootstrap().await.to_owned();
    let databases = databases(backend).await;
    for (variable, value, property) in [
        ("OMS_KAFKA_SECURITY_PROTOCOL", "tls", "security.protocol"),
        ("OMS_KAFKA_FOO_BAR", "1", "foo.bar"),
    ] {
        let dir = data_dir();
        let mut child = oms_up(&bootstrap, &dir, databases.as_ref())
            .env(variable, value)
            .spawn()
            .unwrap();
        let lines = lines_of(&mut child);
        let status = exit_of(&mut child, &format!("with {variable}={value}"));
        let printed: Vec<String> = lines.try_iter().collect();
        let all = printed.join("\n");
        assert!(!status.success(), "{all}");
        assert!(
            printed
                .iter()
                .any(|line| line.contains(property) && line.contains(variable)),
            "no line names {property} and {variable}:\n{all}"
        );
        assert!(
            !all.contains("waiting for Kafka") && !all.contains("retrying"),
            "a configuration error was retried:\n{all}"
        );
        assert!(
            !dir.join("customer-svc.sqlite").exists(),
            "the start went as far as a database:\n{all}"
        );
        std::fs::remove_dir_all(&dir).ok();
    }
}

/// `--kafka` names a port nobody listens on: `oms up` says it is waiting for
/// the broker, again and again, and stops at Ctrl-C.
#[rstest]
#[case::postgres(Backend::Postgres)]
#[case::sqlite(Backend::Sqlite)]
#[tokio::test]
async fn waiting_for_an_unreachable_broker_is_said_and_ends_at_ctrl_c(#[case] backend: Backend) {
    let databases = databases(backend).await;
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let dir = data_dir();
    let mut child = oms_up(&format!("127.0.0.1:{closed}"), &dir, databases.as_ref())
        .spawn()
        .unwrap();
    let lines = lines_of(&mut child);
    let mut waiting = 0;
    read_until(
        &mut child,
        &lines,
        "say twice that it waits for Kafka",
        |line| {
            if line.contains("waiting for Kafka") && line.contains(&closed.to_string()) {
                waiting += 1;
            }
            waiting == 2
        },
    );
    stop_with_ctrl_c(&mut child);
    std::fs::remove_dir_all(&dir).ok();
}

/// A broker already listens on the port `oms up` would start its own on
/// (another `oms up`, another data directory): the start is refused with a
/// line naming the port; it never joins that broker and its groups.
#[rstest]
#[case::postgres(Backend::Postgres)]
#[case::sqlite(Backend::Sqlite)]
#[tokio::test]
async fn a_second_oms_up_never_joins_a_broker_it_did_not_start(#[case] backend: Backend) {
    testkit::init_tracing();
    let bootstrap = testkit::kafka_bootstrap().await.to_owned();
    let port: u16 = bootstrap.rsplit_once(':').unwrap().1.parse().unwrap();
    let databases = databases(backend).await;
    let dir = data_dir();
    let mut args = crate::up::args(&dir, None, &testkit::topic_prefix());
    args.kafka_port = port;
    args.demo = false;
    if let Some(databases) = &databases {
        args.database_url = Some(databases.admin_url.clone());
        args.database_prefix = databases.prefix.clone();
    }
    match oms::up::start(&args).await {
        Ok(system) => {
            let joined = system.kafka_bootstrap.clone();
            system.stop().await.unwrap();
            std::fs::remove_dir_all(&dir).ok();
            panic!("a second oms up joined the broker at {joined} that it did not start");
        }
        Err(error) => {
            let error = format!("{error:#}");
            assert!(error.contains(&format!("port {port}")), "{error}");
            assert!(error.contains("--kafka"), "{error}");
        }
    }
    std::fs::remove_dir_all(&dir).ok();
}

/// Whoever read `oms up`'s output has gone (a pager quit, a `tee` killed):
/// the system keeps serving, and Ctrl-C still stops it in order, exit 0,
/// rather than a panic on the first line it can no longer print.
#[tokio::test]
async fn oms_up_stops_in_order_when_nobody_reads_its_output_any_more() {
    let bootstrap = testkit::kafka_bootstrap().await.to_owned();
    let dir = data_dir();
    let mut child = oms_up(&bootstrap, &dir, None).spawn().unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let stderr = child.stderr.take().unwrap();
    let mut customer = None;
    let started = Instant::now();
    while customer.is_none() && started.elapsed() < BOUND {
        let mut line = String::new();
        if stdout.read_line(&mut line).unwrap() == 0 {
            break;
        }
        if let ["customer-svc", url, ..] = line.split_whitespace().collect::<Vec<_>>()[..] {
            customer = Some(url.to_owned());
        }
    }
    let customer = customer.expect("oms up printed no customer-svc address");
    drop((stdout, stderr));
    let health = reqwest::get(format!("{customer}/healthz")).await.unwrap();
    assert!(health.status().is_success(), "{}", health.status());
    Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    let status = exit_of(&mut child, "after Ctrl-C with its output closed");
    assert!(status.success(), "oms up ended {status}");
    std::fs::remove_dir_all(&dir).ok();
}
