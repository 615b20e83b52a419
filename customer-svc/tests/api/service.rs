//! The service starts on the kit: topics created, ready, documented.

use rstest::rstest;
use std::time::Duration;
use testkit::Backend;

use rdkafka::consumer::{BaseConsumer, Consumer};

use crate::helpers::spawn_app;

#[rstest]
#[case::postgres(Backend::Postgres)]
#[case::sqlite(Backend::Sqlite)]
#[tokio::test]
async fn starts_ready_with_its_topics_and_documents_its_api(#[case] backend: Backend) {
    let app = spawn_app(backend).await;
    assert_eq!(app.get_json("/readyz").await["database"], "ok");
    let document = app.get_json("/openapi.json").await;
    assert_eq!(document["info"]["title"], "customer-svc");
    for path in [
        "/healthz",
        "/customers",
        "/customers/{id}",
        "/customers/{id}/credit",
        "/auth/token",
        "/auth/refresh",
        "/auth/logout",
        "/customers/{id}/password",
        "/auth/keys/rotate",
        "/.well-known/jwks.json",
        "/credit/audit",
    ] {
        assert!(
            document["paths"][path].is_object(),
            "{path} is not documented"
        );
    }
    assert!(document["components"]["securitySchemes"]["bearer"].is_object());

    let bootstrap = app.common.kafka_bootstrap.clone();
    let prefix = app.common.topic_prefix.clone();
    let topics = tokio::task::spawn_blocking(move || {
        let client: BaseConsumer = rdkafka::ClientConfig::new()
            .set("bootstrap.servers", &bootstrap)
            .create()
            .unwrap();
        let metadata = client
            .fetch_metadata(None, Duration::from_secs(10))
            .unwrap();
        metadata
            .topics()
            .iter()
            .filter_map(|t| {
                t.name()
                    .strip_prefix(&prefix)
                    .map(|n| (n.to_owned(), t.partitions().len()))
            })
            .collect::<Vec<_>>()
    })
    .await
    .unwrap();
    for topic in customer_svc::startup::TOPICS {
        for name in [
            topic.base_name().to_owned(),
            format!("{}.dlq", topic.base_name()),
        ] {
            let found = topics.iter().find(|(n, _)| *n == name);
            assert_eq!(
                found.map(|(_, p)| *p),
                Some(2),
                "topic {name} with 2 partitions"
            );
        }
    }
    app.app.stop().await.unwrap();
}

/// Log lines written to a file or a pipe carry no ANSI colour codes
/// (`oms up > file`, journald, docker logs).
#[test]
fn logs_to_a_pipe_carry_no_terminal_escape_codes() {
    use std::io::{BufRead, BufReader};
    let data_dir = tempfile::tempdir().unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_customer-svc"))
        .env_remove("OMS_ADMIN_PASSWORD")
        .env_remove("OMS_LOG_FORMAT")
        .env("OMS_DEV_MODE", "true")
        .env("OMS_DATA_DIR", data_dir.path())
        .env("OMS_CUSTOMER_HTTP_ADDR", "127.0.0.1:0")
        // No broker there: the service keeps logging that it retries.
        .env("OMS_KAFKA_BOOTSTRAP", "127.0.0.1:1")
        .env("RUST_LOG", "info")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut seen = Vec::new();
    while let Some(Ok(line)) = lines.next() {
        let warned = line.contains("WARN");
        seen.push(line);
        if warned {
            break;
        }
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        seen.iter().any(|l| l.contains("WARN")),
        "no warning logged: {seen:?}"
    );
    assert!(
        seen.iter().all(|l| !l.contains('\u{1b}')),
        "escape codes in piped logs: {seen:?}"
    );
}
