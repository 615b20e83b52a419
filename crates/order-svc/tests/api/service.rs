//! The service starts on the kit and documents its whole API.

use crate::helpers::spawn_system;
use rstest::rstest;
use testkit::Backend;

#[rstest]
#[case::postgres(Backend::Postgres)]
#[case::sqlite(Backend::Sqlite)]
#[tokio::test]
async fn starts_ready_and_documents_its_api(#[case] backend: Backend) {
    let system = spawn_system(backend).await;
    let ready: serde_json::Value = system
        .client
        .get(format!("{}/readyz", system.orders.address))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ready["database"], "ok");
    let document: serde_json::Value = system
        .client
        .get(format!("{}/openapi.json", system.orders.address))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(document["info"]["title"], "order-svc");
    for path in [
        "/orders",
        "/orders/{id}",
        "/orders/{id}/status",
        "/orders/{id}/events",
        "/orders/{id}/cancel",
        "/orders/{id}/shipping",
        "/orders/metrics",
        "/catalog/products",
    ] {
        assert!(
            document["paths"][path].is_object(),
            "{path} is not documented"
        );
    }
    assert!(document["paths"]["/orders/{id}"]["delete"].is_object());
    assert!(document["paths"]["/orders/{id}/status"]["patch"].is_object());
    assert!(document["components"]["securitySchemes"]["bearer"].is_object());
}
