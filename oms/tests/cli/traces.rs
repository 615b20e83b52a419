//! Every record carries a W3C `traceparent`, also with trace export off
//! and logs at WARN (as `oms up` runs by default), and the records of one
//! order's saga share its trace id, so a subscriber can join the trace.

use std::path::PathBuf;

use clap::Parser;
use events::Topic;
use oms::bench::system::{System, login};
use oms::{Cli, Command};
use serde_json::{Value, json};
use uuid::Uuid;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_records_of_an_order_carry_one_trace_with_export_off() {
    testkit::init_tracing();
    let bootstrap = testkit::kafka_bootstrap().await.to_owned();
    let prefix = testkit::topic_prefix();
    let cli = Cli::try_parse_from([
        "oms",
        "bench",
        "--kafka",
        &bootstrap,
        "--topic-prefix",
        &prefix,
    ])
    .unwrap();
    let Command::Bench { args, .. } = cli.command else {
        unreachable!("parsed as bench")
    };
    // A real `oms up` process: its own telemetry, OTEL_EXPORTER_OTLP_ENDPOINT unset.
    let system = System::start_or_attach(&args, PathBuf::from(env!("CARGO_BIN_EXE_oms")))
        .await
        .unwrap();
    let http = &system.http;
    let product: Value = http
        .post(format!("{}/products", system.inventory_url))
        .bearer_auth(&system.admin_token)
        .json(&json!({"sku": "TRACED-1", "name": "Traced", "unit_price": {"amount_minor": 100, "currency": "EUR"}, "initial_stock": 5}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let product = product["id"].as_str().unwrap().to_owned();
    http.post(format!("{}/customers", system.customer_url))
        .bearer_auth(&system.admin_token)
        .json(
            &json!({"email": "traced@example.com", "name": "Traced", "password": "a good password",
            "credit_limit": {"amount_minor": 10_000, "currency": "EUR"}}),
        )
        .send()
        .await
        .unwrap()
        .error_for_status()
        .unwrap();
    let token = login(
        http,
        &system.customer_url,
        "traced@example.com",
        "a good password",
    )
    .await
    .unwrap();
    // 422 until order-svc's catalog copy has the product.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(60);
    let order: Uuid = loop {
        let placed = http
            .post(format!("{}/orders", system.order_url))
            .bearer_auth(&token)
            .json(&json!({"lines": [{"product_id": product, "quantity": 1}]}))
            .send()
            .await
            .unwrap();
        if placed.status() == 202 {
            let placed: Value = placed.json().await.unwrap();
            break placed["id"].as_str().unwrap().parse().unwrap();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the order was never accepted"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    };

    let mut common = service_kit::CommonSettings::local(bootstrap.clone());
    common.topic_prefix = prefix.clone();
    let kafka = common.kafka();
    let mut trace_ids = Vec::new();
    for (topic, event_type) in [
        (Topic::Orders, "OrderPlaced"),
        (Topic::Inventory, "StockReserved"),
        (Topic::Customers, "CreditReserved"),
        (Topic::Orders, "OrderConfirmed"),
    ] {
        let mut reader = testkit::TopicReader::new(&kafka, &kafka.topics.name(topic));
        reader
            .until(&format!("{event_type} of the order"), |seen| {
                seen.iter()
                    .any(|e| e.key() == order && e.event.event_type() == event_type)
            })
            .await;
        let (_, record) = reader
            .seen
            .iter()
            .find(|(e, _)| e.key() == order && e.event.event_type() == event_type)
            .unwrap();
        let traceparent = testkit::header(record, "traceparent")
            .unwrap_or_else(|| panic!("{event_type} carries no traceparent"));
        assert_eq!(traceparent.len(), 55, "{event_type}: {traceparent}");
        trace_ids.push((event_type, traceparent[3..35].to_owned()));
    }
    assert!(
        trace_ids.windows(2).all(|w| w[0].1 == w[1].1),
        "the saga's records are not one trace: {trace_ids:?}"
    );
    system.stop().await;
}
