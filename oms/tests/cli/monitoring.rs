//! The monitoring kit works: a real Prometheus (Debian's package) scrapes
//! the three services with the repository's scrape configuration, and
//! every query of the Grafana dashboard returns data.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use oms::up::{self, System};
use serde_json::Value;

use crate::up::{args, confirmed_order};

fn repo_file(path: &str) -> PathBuf {
    testkit::repo_root().join(path)
}

/// A Prometheus process that is killed when dropped.
struct Prometheus {
    child: Child,
    url: String,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts Prometheus on the repository's scrape configuration, its targets
/// pointed at `system` and scraped every second.
async fn start_prometheus(system: &System, dir: &std::path::Path) -> Prometheus {
    let binary = ["/usr/bin/prometheus", "/usr/local/bin/prometheus"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
        .expect("Prometheus is installed (apt-get install prometheus; scripts/test.sh does)");
    let config = std::fs::read_to_string(repo_file("infra/prometheus/prometheus.yml"))
        .unwrap()
        .replace("15s", "1s")
        .replace(
            "order-svc:8080",
            &format!("127.0.0.1:{}", system.order.port()),
        )
        .replace(
            "inventory-svc:8081",
            &format!("127.0.0.1:{}", system.inventory.port()),
        )
        .replace(
            "customer-svc:8082",
            &format!("127.0.0.1:{}", system.customer.port()),
        );
    let config_path = dir.join("prometheus.yml");
    std::fs::write(&config_path, config).unwrap();
    let port = free_port();
    let child = Command::new(binary)
        .arg(format!("--config.file={}", config_path.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.join("tsdb").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::from(
            std::fs::File::create(dir.join("prometheus.log")).unwrap(),
        ))
        .spawn()
        .unwrap();
    let prometheus = Prometheus {
        child,
        url: format!("http://127.0.0.1:{port}"),
    };
    let ready = format!("{}/-/ready", prometheus.url);
    testkit::eventually("Prometheus ready", || async {
        reqwest::get(&ready)
            .await
            .is_ok_and(|r| r.status().is_success())
    })
    .await;
    prometheus
}

/// Every query of every panel of the dashboard.
fn dashboard_queries() -> Vec<(String, String)> {
    let dashboard: Value = serde_json::from_str(
        &std::fs::read_to_string(repo_file("infra/grafana/dashboards/oms.json")).unwrap(),
    )
    .unwrap();
    dashboard["panels"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|panel| {
            let title = panel["title"].as_str().unwrap().to_owned();
            panel["targets"]
                .as_array()
                .unwrap()
                .iter()
                .map(move |t| (title.clone(), t["expr"].as_str().unwrap().to_owned()))
        })
        .collect()
}

#[tokio::test]
async fn prometheus_scrapes_every_service_and_every_dashboard_query_returns_data() {
    testkit::init_tracing();
    let bootstrap = testkit::kafka_bootstrap().await.to_owned();
    let dir = tempfile::tempdir().unwrap();
    let prefix = testkit::topic_prefix();
    let system = up::start(&args(&dir.path().join("data"), Some(bootstrap), &prefix))
        .await
        .unwrap();
    let prometheus = start_prometheus(&system, dir.path()).await;

    // Traffic for every panel: a confirmed order, refused requests, and a
    // poison record that the participants dead-letter.
    confirmed_order(&system).await;
    let http = reqwest::Client::new();
    for _ in 0..3 {
        http.get(format!("{}/orders", System::url(&system.order)))
            .send()
            .await
            .unwrap();
    }
    let mut common = service_kit::CommonSettings::local(system.kafka_bootstrap.clone());
    common.topic_prefix = prefix.clone();
    let kafka = common.kafka();
    testkit::produce(
        &kafka.producer("monitoring-test").unwrap(),
        &kafka.topics.name(events::Topic::Orders),
        &uuid::Uuid::now_v7().to_string(),
        "OrderPlaced",
        b"{ this is not an event",
    )
    .await;

    let queries = dashboard_queries();
    assert!(queries.len() >= 9, "{queries:?}");
    for (title, expr) in &queries {
        let url = format!("{}/api/v1/query", prometheus.url);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
        loop {
            let answer: Value = http
                .get(&url)
                .query(&[("query", expr.as_str())])
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            assert_eq!(answer["status"], "success", "{title}: {expr}: {answer}");
            if answer["data"]["result"]
                .as_array()
                .is_some_and(|r| !r.is_empty())
            {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the panel {title:?} ({expr}) has no data: {answer}"
            );
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }
    // Every service is a target that is up.
    let targets: Value = http
        .get(format!("{}/api/v1/query", prometheus.url))
        .query(&[("query", "up")])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let jobs: Vec<(String, String)> = targets["data"]["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["metric"]["job"].as_str().unwrap().to_owned(),
                r["value"][1].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    for job in ["order-svc", "inventory-svc", "customer-svc"] {
        assert!(
            jobs.contains(&(job.to_owned(), "1".to_owned())),
            "{job} is not scraped: {jobs:?}"
        );
    }
    drop(prometheus);
    system.stop().await.unwrap();
}
