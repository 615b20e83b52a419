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
    assert!(document["paths"]["/orders/{id}/status"]["put"].is_object());
    assert!(
        document["components"]["schemas"]["PlaceOrderRequest"]["properties"]["shipping"]
            .is_object()
    );
    assert!(document["components"]["securitySchemes"]["bearer"].is_object());
    testkit::assert_openapi_refs_resolve(&document);
}

/// The committed `docs/api/order-svc.json` is what the service serves.
/// Regenerate with `OMS_UPDATE_API_DOCS=1 cargo test -p system-tests --test system the_committed_openapi`.
#[tokio::test]
async fn the_committed_openapi_document_matches_the_code() {
    let system = spawn_system(Backend::Sqlite).await;
    let document: serde_json::Value = system
        .client
        .get(format!("{}/openapi.json", system.orders.address))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    testkit::assert_openapi_committed("order-svc", &document);
}

/// The catalog copy follows inventory-svc's catalog version, not the
/// senders' clocks: a later change stamped earlier (by another instance, or
/// after a clock stepped back) still replaces what is there.
#[rstest]
#[case::postgres(Backend::Postgres)]
#[case::sqlite(Backend::Sqlite)]
#[tokio::test]
async fn the_catalog_copy_keeps_the_highest_version_whatever_the_clocks(#[case] backend: Backend) {
    use events::{Currency, Envelope, Money, ProductUpserted, Topic};
    let system = spawn_system(backend).await;
    let kafka = system.common.kafka();
    let producer = kafka.producer("test").unwrap();
    let product_id = uuid::Uuid::now_v7();
    let now = chrono::Utc::now();
    let changes = [
        (1, "first", now),
        (2, "stamped an hour early", now - chrono::Duration::hours(1)),
        (
            3,
            "stamped two hours early",
            now - chrono::Duration::hours(2),
        ),
    ];
    for (version, name, occurred_at) in changes {
        let mut envelope = Envelope::new(
            ProductUpserted {
                product_id: product_id.into(),
                sku: "CLOCK-1".into(),
                name: name.into(),
                unit_price: Money::new(100 * version, Currency::parse("EUR").unwrap()).unwrap(),
                active: true,
                version: u64::try_from(version).unwrap(),
            },
            "inventory-svc",
        );
        envelope.occurred_at = occurred_at;
        testkit::publish(&producer, &kafka.topics.name(Topic::Catalog), &envelope).await;
    }
    testkit::eventually("the last version in the catalog copy", || async {
        let page: serde_json::Value = system
            .client
            .get(format!(
                "{}/catalog/products?limit=100",
                system.orders.address
            ))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        page["items"].as_array().unwrap().iter().any(|p| {
            p["product_id"] == product_id.to_string()
                && p["name"] == "stamped two hours early"
                && p["unit_price"]["amount_minor"] == 300
        })
    })
    .await;
}

/// A consumer stuck on one batch (here inventory-svc's, behind a lock an
/// outside session holds on its database) makes inventory-svc's `/readyz`
/// answer 503 naming the group once `OMS_STALL_AFTER_SECS` (1 s here)
/// has passed; once the lock goes, the batch is applied and the service
/// is ready again.
#[rstest]
#[case::postgres(Backend::Postgres)]
#[case::sqlite(Backend::Sqlite)]
#[tokio::test]
async fn a_consumer_stuck_on_a_batch_makes_its_service_unready(#[case] backend: Backend) {
    use sea_orm::sqlx::{self, Connection};
    let system = crate::helpers::spawn_system_with(backend, service_kit::Clock::system(), |c| {
        c.stall_after_secs = 1;
    })
    .await;
    let book = system.product("BOOK", 1_000, 10).await;
    let (customer, token) = system.customer(10_000).await;
    let readiness = || async {
        let response = system
            .client
            .get(format!("{}/readyz", system.inventory.address))
            .send()
            .await
            .unwrap();
        (
            response.status().as_u16(),
            response.json::<serde_json::Value>().await.unwrap(),
        )
    };
    assert_eq!(readiness().await.0, 200);

    // An outside session holds inventory-svc's reservations.
    let url = &system.inventory.database.url;
    let lock: Box<dyn std::any::Any> = match backend {
        Backend::Postgres => {
            let mut session = sqlx::PgConnection::connect(url).await.unwrap();
            sqlx::raw_sql("BEGIN; LOCK TABLE reservations IN ACCESS EXCLUSIVE MODE")
                .execute(&mut session)
                .await
                .unwrap();
            Box::new(session)
        }
        Backend::Sqlite => {
            let mut session = sqlx::SqliteConnection::connect(url).await.unwrap();
            sqlx::raw_sql("BEGIN IMMEDIATE")
                .execute(&mut session)
                .await
                .unwrap();
            Box::new(session)
        }
    };
    let order = system.place(&token, customer, &[(book, 1)]).await;
    let group = format!("{}inventory-svc.saga", system.common.topic_prefix);
    testkit::eventually("inventory-svc unready, naming its stuck group", || async {
        let (status, body) = readiness().await;
        status == 503
            && body["database"] == "ok"
            && body["consumers"]
                .as_str()
                .is_some_and(|c| c.contains(&group))
    })
    .await;

    if backend == Backend::Sqlite {
        // SQLite's writer gives up after its busy timeout and the batch is
        // retried; PostgreSQL's waits in the lock.
        testkit::eventually("the stuck batch's retries counted", || async {
            system
                .metrics_of(&system.inventory)
                .await
                .lines()
                .any(|l| l.starts_with("oms_consumer_batch_retries_total") && l.contains(&group))
        })
        .await;
    }

    drop(lock);
    system.wait_status(order, "CONFIRMED").await;
    testkit::eventually("inventory-svc ready again", || async {
        readiness().await.0 == 200
    })
    .await;
}
