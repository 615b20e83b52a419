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
    assert_eq!(document["info"]["title"], "inventory-svc");
    for path in [
        "/healthz",
        "/products",
        "/products/{id}",
        "/products/{id}/stock",
        "/products/{id}/availability",
        "/products/{id}/validate",
        "/products/{id}/prices",
        "/reservations/{order_id}",
        "/stock/audit",
    ] {
        assert!(
            document["paths"][path].is_object(),
            "{path} is not documented"
        );
    }
    assert!(document["components"]["securitySchemes"]["bearer"].is_object());
    testkit::assert_openapi_refs_resolve(&document);

    testkit::assert_topics_created(
        &app.kafka_bootstrap,
        &app.topic_prefix,
        inventory_svc::startup::TOPICS,
        2,
    )
    .await;
    app.app.stop().await.unwrap();
}

/// The committed `docs/api/inventory-svc.json` is what the service serves.
/// Regenerate with `OMS_UPDATE_API_DOCS=1 cargo test -p inventory-svc --test api openapi`.
#[tokio::test]
async fn the_committed_openapi_document_matches_the_code() {
    let app = spawn_app(Backend::Sqlite).await;
    testkit::assert_openapi_committed("inventory-svc", &app.get_json("/openapi.json").await);
    app.app.stop().await.unwrap();
}
