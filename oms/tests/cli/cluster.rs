//! The topics the services create on a replicated cluster: three replicas
//! with two in sync by default, so that one broker of three may die while
//! every write (`acks=all`) still reaches two; and records written while a
//! broker is down are there when it is back. Against a real three-broker
//! cluster from `local-kafka`.

use std::time::Duration;

use event_runtime::KafkaSettings;
use event_runtime::kafka::ensure_topics;
use events::{Topic, TopicNames};
use local_kafka::{ClusterOptions, LocalCluster, start_cluster};
use rdkafka::admin::{AdminClient, AdminOptions, ResourceSpecifier};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::FutureRecord;
use rdkafka::{ClientConfig, Message};

fn settings(cluster: &LocalCluster, prefix: &str) -> KafkaSettings {
    KafkaSettings {
        bootstrap_servers: cluster.bootstrap.clone(),
        topics: TopicNames::new(prefix.to_owned()),
        partitions: 3,
        replication_factor: None,
        min_insync_replicas: None,
        client_properties: Vec::new(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topics_on_three_brokers_keep_three_replicas_two_in_sync_and_survive_a_dead_broker() {
    let dir = std::env::temp_dir().join(format!("oms-cluster-{}", uuid::Uuid::now_v7()));
    let mut cluster = tokio::task::block_in_place(|| {
        start_cluster(&ClusterOptions {
            data_dir: dir.clone(),
            brokers: 3,
            watch_pid: Some(std::process::id()),
        })
    })
    .expect("a three-broker cluster starts");
    let prefix = testkit::topic_prefix();
    let kafka = settings(&cluster, &prefix);
    ensure_topics(&kafka, &[Topic::Orders]).await.unwrap();
    let orders = kafka.topics.name(Topic::Orders);

    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &cluster.bootstrap)
        .set("group.id", format!("{prefix}check"))
        .set("auto.offset.reset", "earliest")
        .create()
        .unwrap();
    let metadata = consumer
        .fetch_metadata(Some(&orders), Duration::from_secs(10))
        .unwrap();
    let replicas: Vec<usize> = metadata.topics()[0]
        .partitions()
        .iter()
        .map(|p| p.replicas().len())
        .collect();
    assert_eq!(
        replicas,
        [3, 3, 3],
        "replicas of each partition of {orders}"
    );
    let admin: AdminClient<DefaultClientContext> = kafka.client_config("check").create().unwrap();
    let described = admin
        .describe_configs(
            &[ResourceSpecifier::Topic(&orders)],
            &AdminOptions::new().request_timeout(Some(Duration::from_secs(10))),
        )
        .await
        .unwrap();
    let config = described.into_iter().next().unwrap().unwrap();
    assert_eq!(
        config
            .get("min.insync.replicas")
            .and_then(|e| e.value.as_deref()),
        Some("2")
    );

    // One broker down: writes with acks=all still succeed on the other two.
    let victim = cluster.node_ids()[2];
    tokio::task::block_in_place(|| cluster.kill(victim));
    let producer = kafka.producer("check").unwrap();
    for key in 0..30 {
        let key = key.to_string();
        producer
            .send(
                FutureRecord::to(&orders).key(&key).payload("written"),
                Duration::from_secs(30),
            )
            .await
            .unwrap_or_else(|(e, _)| panic!("a write with one broker of three down: {e}"));
    }
    tokio::task::block_in_place(|| cluster.start_node(victim)).unwrap();

    consumer.subscribe(&[&orders]).unwrap();
    let mut read = 0;
    let started = std::time::Instant::now();
    while read < 30 && started.elapsed() < Duration::from_secs(60) {
        if let Some(Ok(message)) = consumer.poll(Duration::from_millis(500)) {
            assert_eq!(message.payload(), Some(&b"written"[..]));
            read += 1;
        }
    }
    assert_eq!(read, 30, "records written while a broker was down");
    // Before the cluster stops: a client closing against no broker waits.
    drop((consumer, producer, admin));
    tokio::task::block_in_place(|| cluster.stop());
    std::fs::remove_dir_all(&dir).ok();
}
