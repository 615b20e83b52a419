//! The monitoring kit works: a real Prometheus (Debian's package) scrapes
//! the three services with the repository's scrape configuration and loads
//! its alerting rules, and every query of the Grafana dashboard returns
//! data; the dashboard names no data source of ours; `promtool` finds the
//! rules valid and each one firing on the series its unit tests give it.

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

/// Where Debian's `prometheus` package, or a hand install, put `tool`.
///
/// # Panics
/// When it is not installed: these tests must not pass without it.
fn prometheus_tool(tool: &str) -> PathBuf {
    ["/usr/bin", "/usr/local/bin"]
        .into_iter()
        .map(|dir| std::path::Path::new(dir).join(tool))
        .find(|path| path.exists())
        .unwrap_or_else(|| {
            panic!("{tool} is not installed (apt-get install prometheus; scripts/test.sh does)")
        })
}

/// Runs `promtool` with `args` in `infra/prometheus`; its output, after
/// asserting that it succeeded.
fn promtool(args: &[&str]) -> String {
    let output = Command::new(prometheus_tool("promtool"))
        .args(args)
        .current_dir(repo_file("infra/prometheus"))
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "promtool {args:?} failed:\n{text}");
    text
}

/// The alert names of `infra/prometheus/alerts.yml`.
fn alert_names() -> Vec<String> {
    std::fs::read_to_string(repo_file("infra/prometheus/alerts.yml"))
        .unwrap()
        .lines()
        .filter_map(|line| line.trim().strip_prefix("- alert: "))
        .map(str::to_owned)
        .collect()
}

/// Starts Prometheus on the repository's scrape configuration and alerting
/// rules, its targets pointed at `system`, scraped and evaluated every
/// second.
async fn start_prometheus(system: &System, dir: &std::path::Path) -> Prometheus {
    let binary = prometheus_tool("prometheus");
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
    std::fs::copy(
        repo_file("infra/prometheus/alerts.yml"),
        dir.join("alerts.yml"),
    )
    .unwrap();
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

fn dashboard() -> Value {
    serde_json::from_str(
        &std::fs::read_to_string(repo_file("infra/grafana/dashboards/oms.json")).unwrap(),
    )
    .unwrap()
}

/// Every query of every panel of the dashboard, as Grafana sends it to
/// Prometheus: `$__rate_interval` becomes a window (Grafana makes it at
/// least four scrape intervals; a minute is that for our 15 s).
fn dashboard_queries() -> Vec<(String, String)> {
    dashboard()["panels"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|panel| {
            let title = panel["title"].as_str().unwrap().to_owned();
            panel["targets"].as_array().unwrap().iter().map(move |t| {
                let expr = t["expr"].as_str().unwrap();
                (title.clone(), expr.replace("$__rate_interval", "1m"))
            })
        })
        .collect()
}

/// The dashboard can be imported into any Grafana: every panel and query
/// takes its data source from a variable, not from our provisioning's uid,
/// and every rate is over Grafana's `$__rate_interval`, which follows the
/// scrape interval of the Prometheus it meets.
#[test]
fn the_dashboard_names_no_data_source_and_rates_over_the_rate_interval() {
    let dashboard = dashboard();
    let variables = dashboard["templating"]["list"].as_array().unwrap();
    assert!(
        variables.iter().any(|v| v["name"] == "datasource"
            && v["type"] == "datasource"
            && v["query"] == "prometheus"),
        "a data source variable of type prometheus: {variables:?}"
    );
    let panels = dashboard["panels"].as_array().unwrap();
    assert!(panels.len() >= 10, "{panels:?}");
    for panel in panels {
        let title = panel["title"].as_str().unwrap();
        assert_eq!(panel["datasource"]["uid"], "${datasource}", "{title}");
        for target in panel["targets"].as_array().unwrap() {
            assert_eq!(target["datasource"]["uid"], "${datasource}", "{title}");
            let expr = target["expr"].as_str().unwrap();
            assert_eq!(
                expr.matches("rate(").count(),
                expr.matches("[$__rate_interval]").count(),
                "{title}: every rate is over $__rate_interval: {expr}"
            );
        }
    }
    // Latencies are histograms in seconds, which sum across instances; no
    // gauge of one instance's quantiles in milliseconds.
    let text = serde_json::to_string(&dashboard).unwrap();
    for old in ["_ms", "by (quantile)"] {
        assert!(!text.contains(old), "the dashboard still has {old}");
    }
}

/// `promtool check rules` finds every rule valid, and `promtool test rules`
/// sees each one fire on the series its unit tests give it (and stay quiet
/// on healthy ones): a rule that can never fire fails here.
#[test]
fn the_alerting_rules_are_valid_and_each_fires_when_it_should() {
    let alerts = alert_names();
    for expected in [
        "OmsConsumerLagGrowing",
        "OmsOutboxRelayStalled",
        "OmsOutboxRowsSetAside",
        "OmsDeadLettersArriving",
        "OmsDeadlineCancellationsHigh",
        "OmsHttp5xxRate",
    ] {
        assert!(
            alerts.iter().any(|a| a == expected),
            "{expected} in {alerts:?}"
        );
    }
    let checked = promtool(&["check", "rules", "alerts.yml"]);
    assert!(
        checked.contains(&format!("SUCCESS: {} rules found", alerts.len())),
        "{checked}"
    );
    let unit_tests =
        std::fs::read_to_string(repo_file("infra/prometheus/alerts.test.yml")).unwrap();
    for alert in &alerts {
        assert!(
            unit_tests.contains(&format!("alertname: {alert}")),
            "alerts.test.yml tests {alert}"
        );
    }
    let tested = promtool(&["test", "rules", "alerts.test.yml"]);
    assert!(tested.contains("SUCCESS"), "{tested}");
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
    assert!(queries.len() >= 12, "{queries:?}");
    for (title, expr) in &queries {
        let url = format!("{}/api/v1/query", prometheus.url);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
        loop {
            let answer = prometheus_api(&http, &url, &[("query", expr.as_str())]).await;
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
    let query = format!("{}/api/v1/query", prometheus.url);
    let targets = prometheus_api(&http, &query, &[("query", "up")]).await;
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
    // The alerting rules are loaded, and each evaluates without error.
    let alerts = alert_names();
    testkit::eventually("every alerting rule evaluated", || async {
        let rules = prometheus_api(&http, &format!("{}/api/v1/rules", prometheus.url), &[]).await;
        let evaluated: Vec<(String, String)> = rules["data"]["groups"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|group| group["rules"].as_array().unwrap().iter())
            .map(|rule| {
                assert!(
                    rule["lastError"].as_str().unwrap_or_default().is_empty(),
                    "{rule}"
                );
                (
                    rule["name"].as_str().unwrap().to_owned(),
                    rule["health"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        alerts
            .iter()
            .all(|alert| evaluated.contains(&(alert.clone(), "ok".to_owned())))
    })
    .await;
    drop(prometheus);
    system.stop().await.unwrap();
}

/// The JSON answer of Prometheus's HTTP API at `url` for `query`.
async fn prometheus_api(http: &reqwest::Client, url: &str, query: &[(&str, &str)]) -> Value {
    http.get(url)
        .query(query)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}
