//! The operator's tools against a running system: topics and lag, replay
//! into a live system, rebuilding the catalog copy, re-driving a dead
//! letter, one order's events.

use std::path::PathBuf;
use std::time::Duration;

use events::{Envelope, Event, OrderDelivered, OrderPlaced, Topic, headers};
use oms::UpArgs;
use oms::ops::Connection;
use oms::ops::dlq::Selection;
use oms::ops::replay::ReplayArgs;
use oms::up::{self, DEMO_CUSTOMERS, System};
use rstest::rstest;
use serde_json::{Value, json};
use testkit::{Backend, TestDatabasePrefix};
use uuid::Uuid;

pub(crate) struct World {
    pub(crate) system: System,
    connection: Connection,
    data_dir: PathBuf,
    prefix: String,
    bootstrap: String,
    pub(crate) http: reqwest::Client,
    /// On PostgreSQL: the databases `oms up` creates, dropped with the world.
    pub(crate) databases: Option<TestDatabasePrefix>,
}

fn up_args(
    data_dir: &std::path::Path,
    bootstrap: &str,
    prefix: &str,
    databases: Option<&TestDatabasePrefix>,
) -> UpArgs {
    UpArgs {
        data_dir: data_dir.to_path_buf(),
        kafka: Some(bootstrap.to_owned()),
        kafka_port: 0,
        database_url: databases.map(|d| d.admin_url.clone()),
        database_prefix: databases.map_or_else(|| "oms_".to_owned(), |d| d.prefix.clone()),
        sqlite_synchronous: Default::default(),
        order_port: 0,
        inventory_port: 0,
        customer_port: 0,
        admin_email: "admin@oms.local".into(),
        admin_password: None,
        key_encryption_key: None,
        topic_prefix: prefix.into(),
        dlq_retention_hours: 720,
        demo: true,
    }
}

/// The URL of order-svc's database in a world's system.
fn order_database_url(
    data_dir: &std::path::Path,
    databases: Option<&TestDatabasePrefix>,
) -> String {
    databases.map_or_else(
        || format!("sqlite://{}/order-svc.sqlite", data_dir.display()),
        |d| d.url_of("order"),
    )
}

/// `oms up` with the demo data on `backend`, on the shared test broker.
pub(crate) async fn world(backend: Backend) -> World {
    testkit::init_tracing();
    let bootstrap = testkit::kafka_bootstrap().await.to_owned();
    let prefix = testkit::topic_prefix();
    let data_dir = std::env::temp_dir().join(format!("oms-ops-{}", Uuid::now_v7()));
    let databases = match backend {
        Backend::Postgres => Some(TestDatabasePrefix::create().await),
        Backend::Sqlite => None,
    };
    let system = up::start(&up_args(&data_dir, &bootstrap, &prefix, databases.as_ref()))
        .await
        .unwrap();
    World {
        system,
        connection: Connection {
            kafka: bootstrap.clone(),
            topic_prefix: prefix.clone(),
        },
        data_dir,
        prefix,
        bootstrap,
        http: reqwest::Client::new(),
        databases,
    }
}

impl World {
    /// The database URL of each service (`order`, `inventory`, `customer`).
    pub(crate) fn database_urls(&self) -> Vec<(&'static str, String)> {
        ["order", "inventory", "customer"]
            .into_iter()
            .map(|service| {
                let url = self.databases.as_ref().map_or_else(
                    || format!("sqlite://{}/{service}-svc.sqlite", self.data_dir.display()),
                    |d| d.url_of(service),
                );
                (service, url)
            })
            .collect()
    }

    /// Stops the system and removes its data directory.
    pub(crate) async fn stop(self) {
        self.system.stop().await.unwrap();
        std::fs::remove_dir_all(&self.data_dir).ok();
    }

    pub(crate) async fn get(&self, url: String) -> Value {
        self.http
            .get(url)
            .bearer_auth(self.system.admin_token.as_deref().unwrap())
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    async fn demo_product(&self) -> Uuid {
        let page = self
            .get(format!(
                "{}/products?sku=BOOK-1",
                System::url(&self.system.inventory)
            ))
            .await;
        page["items"][0]["id"].as_str().unwrap().parse().unwrap()
    }

    async fn ada(&self) -> (Uuid, String) {
        let (email, _, password) = DEMO_CUSTOMERS[0];
        let token = crate::up::log_in(&self.system, email, password).await;
        (
            token["customer_id"].as_str().unwrap().parse().unwrap(),
            token["access_token"].as_str().unwrap().to_owned(),
        )
    }

    async fn confirmed_order(&self) -> Uuid {
        crate::up::confirmed_order(&self.system).await.0
    }

    async fn order(&self, id: Uuid) -> Value {
        self.get(format!("{}/orders/{id}", System::url(&self.system.order)))
            .await
    }

    /// Everything a replay must leave as it is.
    async fn snapshot(&self, order: Uuid) -> Value {
        let product = self.demo_product().await;
        json!({
            "order": self.order(order).await["status"],
            "timeline": self.get(format!("{}/orders/{order}/events", System::url(&self.system.order))).await["events"]
                .as_array().unwrap().iter().map(|e| e["event_id"].clone()).collect::<Vec<_>>(),
            "stock": self.get(format!("{}/products/{product}", System::url(&self.system.inventory))).await["stock"],
            "reservation": self.get(format!("{}/reservations/{order}", System::url(&self.system.inventory))).await["state"],
            "credit": self.get(format!("{}/credit/reservations/{order}", System::url(&self.system.customer))).await["state"],
            "stock_audit": self.get(format!("{}/stock/audit", System::url(&self.system.inventory))).await["balanced"],
            "credit_audit": self.get(format!("{}/credit/audit", System::url(&self.system.customer))).await["balanced"],
        })
    }

    async fn lag(&self) -> oms::ops::topics::Report {
        let connection = self.connection.clone();
        tokio::task::spawn_blocking(move || oms::ops::topics::report(&connection))
            .await
            .unwrap()
            .unwrap()
    }

    async fn caught_up(&self) -> bool {
        let report = self.lag().await;
        !report.lag.is_empty() && report.lag.iter().all(|l| l.lag == 0)
    }

    /// Publishes `event` to `orders` as order-svc's relay would.
    async fn publish(&self, event: impl Into<Event>) -> Envelope {
        let kafka = self.connection.kafka();
        let envelope = Envelope::new(event, "order-svc");
        testkit::publish(
            &kafka.producer("test").unwrap(),
            &kafka.topics.name(Topic::Orders),
            &envelope,
        )
        .await;
        envelope
    }

    fn replay_args(&self, topic: &str) -> ReplayArgs {
        ReplayArgs {
            topic: topic.into(),
            partition: None,
            from_beginning: true,
            from_offset: None,
            from_time: None,
            to_offset: None,
            to_time: None,
            reset_group: None,
            copy_to: None,
            force: false,
            dry_run: false,
            execute: false,
            connection: self.connection.clone(),
        }
    }
}

#[rstest]
#[case::postgres(Backend::Postgres)]
#[case::sqlite(Backend::Sqlite)]
#[tokio::test]
async fn topics_list_every_topic_and_group_lag_that_drops_to_zero(#[case] backend: Backend) {
    let world = world(backend).await;
    let order = world.confirmed_order().await;

    let connection = world.connection.clone();
    let tail_types = move || {
        let tail = oms::ops::tail::TailArgs {
            topic: "orders".into(),
            order: Some(order),
            from: oms::ops::tail::From::Beginning,
            no_follow: true,
            connection: connection.clone(),
        };
        async move {
            tokio::task::spawn_blocking(move || {
                let mut types = Vec::new();
                oms::ops::tail::tail(&tail, |record| {
                    types.push(
                        record["value"]["event_type"]
                            .as_str()
                            .unwrap_or_default()
                            .to_owned(),
                    )
                })
                .map(|_| types)
            })
            .await
            .unwrap()
            .unwrap()
        }
    };
    // CONFIRMED is committed before the relay publishes OrderConfirmed.
    testkit::eventually("OrderConfirmed on the orders topic", || async {
        tail_types().await.last().map(String::as_str) == Some("OrderConfirmed")
    })
    .await;
    let types = tail_types().await;
    assert_eq!(
        types,
        ["OrderPlaced", "OrderConfirmed"],
        "tail shows the order's records on the orders topic"
    );
    testkit::eventually("every group caught up", || world.caught_up()).await;
    let report = world.lag().await;
    for topic in Topic::ALL {
        for name in [
            format!("{}{}", world.prefix, topic.base_name()),
            format!("{}{}.dlq", world.prefix, topic.base_name()),
        ] {
            assert!(
                report.partitions.iter().any(|p| p.topic == name),
                "{name} listed"
            );
        }
    }
    let orders = format!("{}orders", world.prefix);
    assert!(
        report
            .partitions
            .iter()
            .filter(|p| p.topic == orders)
            .map(|p| p.high)
            .sum::<i64>()
            > 0
    );
    for group in [
        "inventory-svc.saga",
        "customer-svc.saga",
        "order-svc.saga",
        "order-svc.catalog",
    ] {
        assert!(
            report
                .lag
                .iter()
                .any(|l| l.group == format!("{}{group}", world.prefix)),
            "{group} has positions"
        );
    }
    world.system.stop().await.unwrap();
    std::fs::remove_dir_all(&world.data_dir).ok();
}

#[rstest]
#[case::postgres(Backend::Postgres)]
#[case::sqlite(Backend::Sqlite)]
#[tokio::test]
async fn replaying_the_orders_topic_into_the_live_system_changes_nothing(#[case] backend: Backend) {
    let world = world(backend).await;
    let order = world.confirmed_order().await;
    testkit::eventually("every group caught up", || world.caught_up()).await;
    let before = world.snapshot(order).await;

    let mut args = world.replay_args("orders");
    args.copy_to = Some("orders".into());
    let summary = oms::ops::replay::replay(&args).await.unwrap();
    assert_eq!(summary.mode, "copy");
    assert!(summary.records >= 1);
    tokio::time::sleep(Duration::from_secs(1)).await;
    testkit::eventually("the replayed records consumed", || world.caught_up()).await;
    assert_eq!(
        world.snapshot(order).await,
        before,
        "a replay changes no order, stock or credit"
    );
    world.system.stop().await.unwrap();
    std::fs::remove_dir_all(&world.data_dir).ok();
}

#[rstest]
#[case::postgres(Backend::Postgres)]
#[case::sqlite(Backend::Sqlite)]
#[tokio::test]
async fn a_wiped_timeline_is_rebuilt_live_by_copying_the_saga_topics_into_themselves(
    #[case] backend: Backend,
) {
    let world = world(backend).await;
    let order = world.confirmed_order().await;
    testkit::eventually("every group caught up", || world.caught_up()).await;
    let timeline = || async {
        let mut ids: Vec<String> = world.snapshot(order).await["timeline"]
            .as_array()
            .unwrap()
            .iter()
            .map(|id| id.as_str().unwrap().to_owned())
            .collect();
        ids.sort();
        ids
    };
    let before = timeline().await;
    assert_eq!(
        before.len(),
        4,
        "placed, both replies, confirmed: {before:?}"
    );
    {
        use sea_orm::ConnectionTrait;
        let db = sea_orm::Database::connect(order_database_url(
            &world.data_dir,
            world.databases.as_ref(),
        ))
        .await
        .unwrap();
        db.execute_unprepared("DELETE FROM order_events")
            .await
            .unwrap();
        db.close().await.unwrap();
    }
    assert!(timeline().await.is_empty(), "the timeline is wiped");

    for topic in ["orders", "inventory", "customers"] {
        let mut args = world.replay_args(topic);
        args.copy_to = Some(topic.into());
        oms::ops::replay::replay(&args).await.unwrap();
    }
    testkit::eventually("the timeline rebuilt", || async {
        timeline().await == before
    })
    .await;
    testkit::eventually("the replayed records consumed", || world.caught_up()).await;
    assert_eq!(timeline().await, before, "each entry once");
    world.system.stop().await.unwrap();
    std::fs::remove_dir_all(&world.data_dir).ok();
}

#[rstest]
#[case::postgres(Backend::Postgres)]
#[case::sqlite(Backend::Sqlite)]
#[tokio::test]
async fn a_wiped_catalog_copy_is_rebuilt_by_resetting_its_group(#[case] backend: Backend) {
    let world = world(backend).await;
    world.confirmed_order().await;
    testkit::eventually("every group caught up", || world.caught_up()).await;
    let World {
        system,
        connection,
        data_dir,
        prefix,
        bootstrap,
        databases,
        ..
    } = world;

    let mut args = ReplayArgs {
        topic: "catalog".into(),
        partition: None,
        from_beginning: true,
        from_offset: None,
        from_time: None,
        to_offset: None,
        to_time: None,
        reset_group: Some(format!("{prefix}order-svc.catalog")),
        copy_to: None,
        force: false,
        dry_run: false,
        execute: true,
        connection: connection.clone(),
    };
    let refused = oms::ops::replay::replay(&args).await.unwrap_err();
    assert!(refused.to_string().contains("live member"), "{refused}");
    let group = format!("{prefix}order-svc.catalog");
    let oms_replay = |output: &str| {
        std::process::Command::new(env!("CARGO_BIN_EXE_oms"))
            .args(["replay", "--topic", "catalog", "--from-beginning"])
            .args(["--reset-group", &group, "-o", output])
            .args(["--kafka", &connection.kafka, "--topic-prefix", &prefix])
            .output()
            .unwrap()
    };
    // A plan is shown while the service runs, and says to stop it first.
    crate::assert_dry_run(
        &oms_replay("text"),
        &format!("group {group} has 1 live member(s): stop its service before --execute"),
    );

    system.stop().await.unwrap();
    {
        use sea_orm::ConnectionTrait;
        let db = sea_orm::Database::connect(order_database_url(&data_dir, databases.as_ref()))
            .await
            .unwrap();
        db.execute_unprepared("DELETE FROM catalog_products")
            .await
            .unwrap();
        db.close().await.unwrap();
    }
    args.dry_run = true;
    let dry = oms::ops::replay::replay(&args).await.unwrap();
    assert!(
        dry.dry_run && dry.records >= 3,
        "the three demo products would be re-consumed: {dry:?}"
    );
    args.dry_run = false;

    // On the command line, a reset without --execute shows its plan, says
    // so, exits 0 and leaves the group where it was.
    let committed = || {
        let connection = connection.clone();
        let group = group.clone();
        async move {
            let report = tokio::task::spawn_blocking(move || oms::ops::topics::report(&connection))
                .await
                .unwrap()
                .unwrap();
            report
                .lag
                .into_iter()
                .filter(|l| l.group == group)
                .map(|l| (l.partition, l.committed))
                .collect::<Vec<_>>()
        }
    };
    let before = committed().await;
    crate::assert_dry_run(&oms_replay("text"), &format!("would reset group {group}"));
    let planned = oms_replay("json");
    let plan: Value = serde_json::from_slice(&planned.stdout).expect("-o json prints one document");
    assert_eq!(plan["dry_run"], true, "{plan}");
    assert_eq!(plan["mode"], "reset", "{plan}");
    assert!(plan["records"].as_i64().is_some_and(|r| r >= 3), "{plan}");
    assert!(
        String::from_utf8_lossy(&planned.stderr).contains("dry run: add --execute to do it"),
        "the hint goes to standard error beside JSON"
    );
    assert!(!before.is_empty(), "the group has committed offsets");
    assert_eq!(committed().await, before, "a plan moves no offset");

    assert!(args.execute, "the library resets with execute");
    oms::ops::replay::replay(&args).await.unwrap();

    let system = up::start(&up_args(&data_dir, &bootstrap, &prefix, databases.as_ref()))
        .await
        .unwrap();
    let http = reqwest::Client::new();
    testkit::eventually("the catalog copy rebuilt", || async {
        let catalog: Value = http
            .get(format!("{}/catalog/products", System::url(&system.order)))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        catalog["items"]
            .as_array()
            .is_some_and(|items| items.len() == 3)
    })
    .await;
    system.stop().await.unwrap();
    std::fs::remove_dir_all(&data_dir).ok();
}

#[rstest]
#[case::postgres(Backend::Postgres)]
#[case::sqlite(Backend::Sqlite)]
#[tokio::test]
async fn a_dead_letter_redriven_after_its_cause_is_fixed_is_processed_once(
    #[case] backend: Backend,
) {
    let world = world(backend).await;
    let (ada, _) = world.ada().await;
    let order = Uuid::now_v7();
    // Delivered before it was ever placed: customer-svc cannot settle it.
    let delivered = world
        .publish(OrderDelivered {
            order_id: order.into(),
        })
        .await;
    let selection = Selection {
        topic: Some("orders".into()),
        key: Some(order.to_string()),
        ..Selection::default()
    };
    let connection = world.connection.clone();
    let list_selection = selection.clone();
    testkit::eventually("the dead letter", || {
        let connection = connection.clone();
        let selection = list_selection.clone();
        async move {
            tokio::task::spawn_blocking(move || oms::ops::dlq::select(&connection, &selection))
                .await
                .unwrap()
                .unwrap()
                .len()
                == 1
        }
    })
    .await;
    let select_connection = world.connection.clone();
    let select_selection = selection.clone();
    let letters = tokio::task::spawn_blocking(move || {
        oms::ops::dlq::select(&select_connection, &select_selection)
    })
    .await
    .unwrap()
    .unwrap();
    assert_eq!(letters[0].0.code.as_deref(), Some("HANDLER_REJECTED"));
    assert!(
        letters[0]
            .0
            .error
            .as_deref()
            .unwrap()
            .contains("nothing to settle")
    );

    // The cause is fixed: the order is placed and its credit reserved.
    let money = events::Money::new(1999, events::Currency::parse("EUR").unwrap()).unwrap();
    world
        .publish(OrderPlaced {
            order_id: order.into(),
            customer_id: ada.into(),
            lines: vec![events::OrderLine {
                product_id: Uuid::now_v7().into(),
                quantity: events::Quantity::new(1).unwrap(),
                unit_price: money.clone(),
            }],
            total: money,
            shipping_address: None,
            deadline_at: chrono::Utc::now() + chrono::Duration::seconds(30),
        })
        .await;
    let credit_url = format!(
        "{}/credit/reservations/{order}",
        System::url(&world.system.customer)
    );
    testkit::eventually("credit reserved", || async {
        world.get(credit_url.clone()).await["state"] == "RESERVED"
    })
    .await;

    let dry = oms::ops::dlq::replay(&world.connection, &selection, true)
        .await
        .unwrap();
    assert_eq!(dry.replayed, 1);
    assert_eq!(
        world.get(credit_url.clone()).await["state"],
        "RESERVED",
        "a dry run changes nothing"
    );
    oms::ops::dlq::replay(&world.connection, &selection, false)
        .await
        .unwrap();
    testkit::eventually("credit settled", || async {
        world.get(credit_url.clone()).await["state"] == "SETTLED"
    })
    .await;
    // Re-driving it again is absorbed by the inbox.
    oms::ops::dlq::replay(&world.connection, &selection, false)
        .await
        .unwrap();
    let mut replies = testkit::TopicReader::new(
        &world.connection.kafka(),
        &format!("{}customers", world.prefix),
    );
    replies
        .until("the settlement", |all| {
            testkit::count(all, "CreditSettled") == 1
        })
        .await;
    let all = replies.settle(Duration::from_secs(2)).await;
    assert_eq!(
        all.iter()
            .filter(|e| e.key() == order && e.event.event_type() == "CreditSettled")
            .count(),
        1,
        "processed once"
    );

    let events_args = oms::ops::tail::EventsArgs {
        order,
        connection: world.connection.clone(),
    };
    let records = tokio::task::spawn_blocking(move || oms::ops::tail::order_events(&events_args))
        .await
        .unwrap()
        .unwrap();
    let types: Vec<&str> = records
        .iter()
        .filter_map(|r| r["value"]["event_type"].as_str())
        .collect();
    assert!(
        types.contains(&"OrderPlaced") && types.contains(&"CreditSettled"),
        "{types:?}"
    );
    // Every copy (the original, its dead letter and the two re-driven
    // ones) is the same CloudEvent: a CloudEvents consumer deduplicates
    // them by id.
    let copies: Vec<&Value> = records
        .iter()
        .filter(|r| r["value"]["event_type"] == "OrderDelivered")
        .collect();
    assert_eq!(copies.len(), 4, "{copies:?}");
    for copy in copies {
        assert_eq!(
            copy["headers"][headers::CE_ID],
            delivered.event_id.to_string(),
            "{copy}"
        );
        assert_eq!(
            copy["headers"][headers::CE_TYPE],
            "example.oms.OrderDelivered"
        );
    }
    world.system.stop().await.unwrap();
    std::fs::remove_dir_all(&world.data_dir).ok();
}

/// `oms outbox list` shows the rows a relay set aside, with their error;
/// `oms outbox retry` puts them back in line and the relay publishes them.
#[rstest]
#[case::postgres(Backend::Postgres)]
#[case::sqlite(Backend::Sqlite)]
#[tokio::test]
async fn outbox_rows_set_aside_are_listed_and_retried(#[case] backend: Backend) {
    use event_runtime::{Outbox, begin_write};
    use sea_orm::ConnectionTrait;
    let world = world(backend).await;
    let (_, order_url) = world.database_urls().swap_remove(0);
    let db = sea_orm::Database::connect(service_kit::database::without_tls_on_loopback(&order_url))
        .await
        .unwrap();
    let order = Uuid::now_v7();
    let envelope = Envelope::new(
        events::OrderRejected {
            order_id: order.into(),
            rejected_by: events::Participant::Inventory,
            reason: "set aside by the test".into(),
        },
        "order-svc",
    );
    // Written and set aside in one transaction, before the relay sees it.
    let txn = begin_write(&db).await.unwrap();
    Outbox::new("order-svc")
        .enqueue(&*txn, &envelope)
        .await
        .unwrap();
    txn.execute_unprepared(
        "UPDATE outbox_messages SET parked_at = CURRENT_TIMESTAMP, attempts = 10, \
         last_error = 'the broker refused it' WHERE published_at IS NULL",
    )
    .await
    .unwrap();
    txn.commit().await.unwrap();

    let args = oms::ops::outbox::OutboxArgs {
        database_url: order_url.clone(),
    };
    let parked = oms::ops::outbox::list(&args).await.unwrap();
    assert_eq!(parked.len(), 1);
    let shown = oms::ops::outbox::describe(&parked[0]);
    assert_eq!(shown["event_id"], json!(envelope.event_id));
    assert_eq!(shown["last_error"], "the broker refused it");
    assert_eq!(shown["attempts"], 10);

    // `oms outbox retry` without --execute shows the row and changes nothing.
    let oms_retry = |extra: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_oms"))
            .args(["outbox", "retry", "--database-url", &order_url])
            .args(extra)
            .output()
            .unwrap()
    };
    let planned = oms_retry(&["-o", "json"]);
    assert!(
        planned.status.success(),
        "{}",
        String::from_utf8_lossy(&planned.stderr)
    );
    let plan: Value = serde_json::from_slice(&planned.stdout).expect("-o json prints one document");
    assert_eq!(plan["dry_run"], true, "{plan}");
    assert_eq!(plan["would_retry"], 1, "{plan}");
    assert_eq!(
        plan["rows"][0]["event_id"],
        json!(envelope.event_id),
        "{plan}"
    );
    crate::assert_dry_run(&oms_retry(&[]), "would put 1 row(s) back in line");
    assert_eq!(
        oms::ops::outbox::list(&args).await.unwrap().len(),
        1,
        "still set aside"
    );
    let retried = oms_retry(&["--execute"]);
    let stdout = String::from_utf8_lossy(&retried.stdout);
    assert!(retried.status.success(), "{stdout}");
    assert!(stdout.contains("put 1 row(s) back in line"), "{stdout}");
    // Published: deleted by the relay (the default), or marked where
    // OMS_OUTBOX_RETENTION_HOURS keeps published rows.
    testkit::eventually("the retried row published", || async {
        use event_runtime::storage::outbox_message;
        use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
        outbox_message::Entity::find()
            .filter(outbox_message::Column::EventId.eq(envelope.event_id))
            .one(&db)
            .await
            .unwrap()
            .is_none_or(|row| row.published_at.is_some())
    })
    .await;
    assert!(oms::ops::outbox::list(&args).await.unwrap().is_empty());
    world.stop().await;
}
