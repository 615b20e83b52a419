//! `spawn_app()`: customer-svc on its own PostgreSQL database and topic prefix,
//! listening on a free port.

use std::net::SocketAddr;

use service_kit::{App, CommonSettings};
use testkit::TestDatabase;

pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    pub topic_prefix: String,
    pub kafka_bootstrap: String,
    pub app: App,
    /// Dropped with the app: the database lives as long as the test.
    pub _database: TestDatabase,
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    pub async fn get_json(&self, path: &str) -> serde_json::Value {
        let response = self.client.get(self.url(path)).send().await.unwrap();
        assert!(
            response.status().is_success(),
            "GET {path}: {}",
            response.status()
        );
        response.json().await.unwrap()
    }
}

pub async fn spawn_app() -> TestApp {
    testkit::init_tracing();
    let kafka_bootstrap = testkit::kafka_bootstrap().await.to_owned();
    let database = TestDatabase::create().await;
    let mut common = CommonSettings::local(kafka_bootstrap.clone());
    common.topic_prefix = testkit::topic_prefix();
    common.topic_partitions = 2;
    let settings = customer_svc::Settings {
        http_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        database_url: Some(database.url.clone()),
        common: common.clone(),
    };
    let app = customer_svc::build(settings)
        .await
        .expect("the service starts");
    TestApp {
        address: format!("http://127.0.0.1:{}", app.port()),
        client: reqwest::Client::new(),
        topic_prefix: common.topic_prefix,
        kafka_bootstrap,
        app,
        _database: database,
    }
}
