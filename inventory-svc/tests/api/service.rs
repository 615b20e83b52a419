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

    let bootstrap = app.kafka_bootstrap.clone();
    let prefix = app.topic_prefix.clone();
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
    for topic in inventory_svc::startup::TOPICS {
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
