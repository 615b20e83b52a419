//! The command line's contract, checked without a system: every command
//! that prints data takes `-o text|json|jsonl` and nothing else, and
//! `oms chaos` names its scenarios from a closed list.

use clap::Parser;
use oms::Cli;

/// `oms replay` resetting a group: a command line that parses.
const RESET_GROUP: [&str; 6] = [
    "replay",
    "--topic",
    "orders",
    "--from-beginning",
    "--reset-group",
    "g",
];

fn oms(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_oms"))
        .args(args)
        .output()
        .unwrap()
}

/// A misspelt scenario used to run nothing and exit 0; clap refuses it
/// now, naming the scenarios there are.
#[test]
fn a_misspelt_chaos_scenario_is_refused_before_anything_runs() {
    let refused = oms(&["chaos", "--scenario", "kill-inventroy"]);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("invalid value 'kill-inventroy'"),
        "{stderr}"
    );
    assert!(
        stderr.contains("kill-inventory"),
        "the valid names: {stderr}"
    );
    assert!(refused.stdout.is_empty());
}

/// A scenario of the other form (poison is not one of the cluster's) is
/// refused in one line before a broker or PostgreSQL starts.
#[test]
fn a_scenario_of_the_other_form_is_refused_in_one_line() {
    let refused = oms(&["chaos", "--brokers", "3", "--scenario", "poison"]);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(1), "{stderr}");
    assert_eq!(
        stderr.trim(),
        "error: scenario poison is not one of the cluster form's: kill-broker, \
         kill-controller, rebalance"
    );
}

/// One output option for every command that prints data; the old
/// `--json` is gone, so scripts learn of it at once.
#[test]
fn every_command_that_prints_data_takes_one_output_option() {
    let commands: [&[&str]; 13] = [
        &["topics"],
        &["tail", "--topic", "orders"],
        &["events", "--order", "0190a1b2-0000-7000-8000-000000000000"],
        &["dlq", "list"],
        &["dlq", "show", "--topic", "orders", "--at", "0:1"],
        &["dlq", "replay"],
        &RESET_GROUP,
        &["outbox", "list", "--database-url", "sqlite://x"],
        &["outbox", "retry", "--database-url", "sqlite://x"],
        &["admin", "reset-password", "--database-url", "sqlite://x"],
        &["bench"],
        &["chaos"],
        &["config-reference"],
    ];
    for command in commands {
        for format in ["text", "json", "jsonl"] {
            let line = [&["oms"], command, &["-o", format]].concat();
            assert!(Cli::try_parse_from(&line).is_ok(), "{line:?}");
        }
        let line = [&["oms"], command, &["--json"]].concat();
        assert!(
            Cli::try_parse_from(&line).is_err(),
            "{line:?} still takes --json"
        );
        let line = [&["oms"], command, &["-o", "yaml"]].concat();
        assert!(Cli::try_parse_from(&line).is_err(), "{line:?}");
    }
}

/// `--dry-run` and `--execute` together are a contradiction clap refuses.
#[test]
fn dry_run_and_execute_exclude_each_other() {
    for command in [&["dlq", "replay"][..], &RESET_GROUP] {
        let line = [&["oms"], command, &["--dry-run", "--execute"]].concat();
        assert!(Cli::try_parse_from(&line).is_err(), "{line:?}");
    }
}

/// `oms config-reference -o json` is the variables as a JSON array, and
/// its text form is docs/configuration.md (the unit test in
/// `oms::config_reference` keeps that file current).
#[test]
fn the_configuration_reference_prints_every_variable() {
    let printed = oms(&["config-reference", "-o", "json"]);
    assert!(printed.status.success());
    let variables: Vec<serde_json::Value> = serde_json::from_slice(&printed.stdout).unwrap();
    let saga = variables
        .iter()
        .find(|v| v["name"] == "OMS_SAGA_DEADLINE_SECS")
        .expect("OMS_SAGA_DEADLINE_SECS is in the reference");
    assert_eq!(saga["default"], "30");
    let text = oms(&["config-reference"]);
    assert_eq!(
        String::from_utf8_lossy(&text.stdout),
        std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../docs/configuration.md"
        ))
        .unwrap(),
        "docs/configuration.md is stale: cargo run -p oms -- config-reference > docs/configuration.md"
    );
}

/// A followed topic never ends, so it cannot be one JSON document: `tail
/// -o json` asks for `--no-follow` (or `-o jsonl`) before it connects.
#[test]
fn tail_as_one_json_document_needs_no_follow() {
    let refused = oms(&["tail", "--topic", "orders", "-o", "json"]);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("add --no-follow, or use -o jsonl"),
        "{stderr}"
    );
    assert!(refused.stdout.is_empty());
}
