//! A short `oms bench` run keeps the benchmark working: it starts `oms up`
//! as a child, offers a little open-loop load and reports every figure.
//! Nothing here asserts a timing.

use std::path::PathBuf;

use clap::Parser;
use oms::{Cli, Command};
use rstest::rstest;
use testkit::{Backend, TestDatabasePrefix};

#[rstest]
#[case::postgres(Backend::Postgres)]
#[case::sqlite(Backend::Sqlite)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_bench_run_reports_every_figure_and_the_invariants_hold(#[case] backend: Backend) {
    testkit::init_tracing();
    let bootstrap = testkit::kafka_bootstrap().await.to_owned();
    let out = tempfile::tempdir().unwrap();
    let prefix = testkit::topic_prefix();
    // On PostgreSQL the bench makes its databases under a prefix of the
    // test's own, and drops them; the prefix drops whatever is left.
    let databases = match backend {
        Backend::Postgres => Some(TestDatabasePrefix::create().await),
        Backend::Sqlite => None,
    };
    let mut command_line = [
        "oms",
        "bench",
        "--rate",
        "40",
        "--duration",
        "3",
        "--reject-percent",
        "10",
        "--kafka",
        &bootstrap,
        "--topic-prefix",
        &prefix,
        "--limit-secs",
        "2",
        "--out",
        out.path().to_str().unwrap(),
    ]
    .into_iter()
    .map(str::to_owned)
    .collect::<Vec<_>>();
    if let Some(databases) = &databases {
        command_line.extend([
            "--database-url".to_owned(),
            databases.admin_url.clone(),
            "--database-prefix".to_owned(),
            databases.prefix.clone(),
        ]);
    }
    let cli = Cli::try_parse_from(command_line).unwrap();
    let Command::Bench { args, .. } = cli.command else {
        panic!("not the bench command");
    };
    let report = oms::bench::run(&args, PathBuf::from(env!("CARGO_BIN_EXE_oms")))
        .await
        .unwrap();

    assert_eq!(report.offered, 120);
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    assert_eq!(report.accepted, 120);
    assert_eq!(report.undecided, 0);
    assert_eq!(
        report.unexpected_decisions, 0,
        "every order decided as meant"
    );
    assert_eq!(report.rejected, 12, "one in ten meant to be rejected");
    assert_eq!(report.confirmed, 108);
    assert_eq!(report.place_to_confirmed_ms.count, 108);
    assert!(report.invariants.hold(), "{:?}", report.invariants);
    assert_eq!(report.invariants.outbox_backlog, Some(0));
    let expected_backend = match backend {
        Backend::Postgres => "PostgreSQL",
        Backend::Sqlite => "SQLite",
    };
    assert_eq!(report.backend, expected_backend);
    for group in ["services", "generator"] {
        assert!(
            report
                .resources
                .get(group)
                .is_some_and(|u| u.peak_rss_mib > 0.0),
            "{group} measured: {:?}",
            report.resources
        );
    }
    assert!(
        report.system_cpu_ms_per_confirmed > 0.0
            && report.cpu_ms_per_confirmed.get("services") > Some(&0.0),
        "CPU per confirmed order: {} ms in all, {:?}",
        report.system_cpu_ms_per_confirmed,
        report.cpu_ms_per_confirmed
    );
    let limits = report.limits.as_ref().expect("the limits were measured");
    assert!(limits.notes.is_empty(), "{:?}", limits.notes);
    assert!(limits.database_tps > 0.0 && limits.kafka_produced_per_sec > 0.0);
    assert!(limits.kafka_consumed_per_sec > 0.0);
    assert!(report.share_of_limit.is_some_and(|share| share > 0.0));
    let png = std::fs::read(out.path().join("bench.png")).unwrap();
    assert!(png.starts_with(b"\x89PNG"), "bench.png is a PNG");
    let markdown = std::fs::read_to_string(out.path().join("bench.md")).unwrap();
    assert!(markdown.contains("place → confirmed"), "{markdown}");
    assert!(markdown.contains("CPU per confirmed order"), "{markdown}");
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.path().join("bench.json")).unwrap())
            .unwrap();
    assert_eq!(json["accepted"], 120);
    assert!(json["timeline"].as_array().is_some_and(|t| t.len() >= 3));
}

/// `oms bench --progress -o json` from a script: the report is one JSON
/// document on standard output, and the progress, plain lines on standard
/// error (not a terminal here), names each step, the load's included.
#[tokio::test]
async fn bench_progress_goes_to_stderr_and_json_stays_one_document() {
    let bootstrap = testkit::kafka_bootstrap().await.to_owned();
    let out = tempfile::tempdir().unwrap();
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_oms"));
    oms::chaos::cluster::without_oms_environment(&mut command);
    let ran = command
        .args([
            "bench",
            "--rate",
            "10",
            "--duration",
            "2",
            "--limit-secs",
            "0",
        ])
        .args([
            "--kafka",
            &bootstrap,
            "--topic-prefix",
            &testkit::topic_prefix(),
        ])
        .arg("--out")
        .arg(out.path())
        .args(["--progress", "-o", "json"])
        .output()
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&ran.stderr);
    assert!(ran.status.success(), "{stderr}");
    let report: serde_json::Value =
        serde_json::from_slice(&ran.stdout).expect("standard output is one JSON document");
    assert_eq!(report["offered"], 20, "{report}");
    for step in [
        "] starting the system",
        "] offering 10 orders/s for 2 s",
        "] waiting for ",
        "] writing the report",
    ] {
        assert!(stderr.contains(step), "progress names {step:?}: {stderr}");
    }
}
