//! The service starts on the kit: topics created, ready, documented.

use rstest::rstest;
use testkit::Backend;

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
    testkit::assert_openapi_refs_resolve(&document);

    testkit::assert_topics_created(
        &app.common.kafka_bootstrap,
        &app.common.topic_prefix,
        customer_svc::startup::TOPICS,
        2,
    )
    .await;
    app.app.stop().await.unwrap();
}

/// The committed `docs/api/customer-svc.json` is what the service serves.
/// Regenerate with `OMS_UPDATE_API_DOCS=1 cargo test -p customer-svc --test api openapi`.
#[tokio::test]
async fn the_committed_openapi_document_matches_the_code() {
    let app = spawn_app(Backend::Sqlite).await;
    testkit::assert_openapi_committed("customer-svc", &app.get_json("/openapi.json").await);
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
