//! Tests of the `oms` command, against real Kafka brokers and the real
//! services, on SQLite (as `oms up` uses by default) and on PostgreSQL.

mod bench;
mod cluster;
mod commands;
mod concurrency;
mod dlq;
mod docker;
mod kafka_security;
mod monitoring;
mod ops;
mod postgres_tls;
mod secrets;
mod starting;
mod traces;
mod up;

/// Asserts that `output`, an `oms` command's, is a dry run: it succeeded,
/// its standard output says `plan`, and its last line says how to act.
pub(crate) fn assert_dry_run(output: &std::process::Output, plan: &str) {
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains(plan), "the plan says {plan:?}: {stdout}");
    assert!(
        stdout.trim_end().ends_with(oms::output::DRY_RUN),
        "{stdout}"
    );
}
