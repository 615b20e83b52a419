//! `spawn_app(backend)`: customer-svc on its own database (PostgreSQL, or a
//! SQLite file) and topic prefix, on a free port; typed helpers for its API, for publishing order
//! events the way order-svc does, and for reading its replies.

use std::sync::Arc;

use event_runtime::KafkaSettings;
use events::{Currency, Envelope, Event, Money, OrderLine, OrderPlaced, Quantity, Topic};
use rdkafka::producer::FutureProducer;
use reqwest::StatusCode;
use serde_json::{Value, json};
use service_kit::{App, CommonSettings};
use testkit::{Backend, TestClient, TestDatabase};
use uuid::Uuid;

pub const ADMIN_EMAIL: &str = "root@oms.test";
pub const ADMIN_PASSWORD: &str = "admin password for tests";

pub struct TestApp {
    pub address: String,
    pub admin_token: String,
    pub kafka: KafkaSettings,
    pub common: CommonSettings,
    pub app: App,
    producer: FutureProducer,
    pub database: Arc<TestDatabase>,
}

/// The key-encryption key of every test instance.
pub const KEY_ENCRYPTION_KEY: &str = "dGVzdCBrZXktZW5jcnlwdGlvbiBrZXkgMzIgYnl0ZXM=";

pub fn settings(
    database_url: &str,
    common: &CommonSettings,
    token_ttl_secs: u64,
) -> customer_svc::Settings {
    let mut settings = customer_svc::Settings::local(
        common.clone(),
        ADMIN_EMAIL,
        ADMIN_PASSWORD,
        KEY_ENCRYPTION_KEY,
    );
    settings.database_url = Some(database_url.to_owned());
    settings.token_ttl_secs = token_ttl_secs;
    settings.default_credit_limit_minor = 10_000;
    settings
}

pub async fn spawn_app(backend: Backend) -> TestApp {
    spawn_app_with_ttl(backend, 900).await
}

pub async fn spawn_app_with_ttl(backend: Backend, token_ttl_secs: u64) -> TestApp {
    spawn_app_with(backend, |settings| settings.token_ttl_secs = token_ttl_secs).await
}

/// customer-svc with `change` applied to the test settings.
pub async fn spawn_app_with(
    backend: Backend,
    change: impl FnOnce(&mut customer_svc::Settings),
) -> TestApp {
    testkit::init_tracing();
    let bootstrap = testkit::kafka_bootstrap().await.to_owned();
    let database = Arc::new(TestDatabase::create_on(backend).await);
    let mut common = CommonSettings::local(bootstrap);
    common.topic_prefix = testkit::topic_prefix();
    common.topic_partitions = 2;
    let mut settings = settings(&database.url, &common, 900);
    change(&mut settings);
    let app = customer_svc::build(settings)
        .await
        .expect("customer-svc starts");
    let kafka = common.kafka();
    let mut test_app = TestApp {
        address: format!("http://127.0.0.1:{}", app.port()),
        admin_token: String::new(),
        producer: kafka.producer("test-order-svc").unwrap(),
        kafka,
        common,
        app,
        database,
    };
    test_app.admin_token = test_app.token(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    test_app
}

impl TestApp {
    /// Stops the service and starts it again on the same database.
    pub async fn restart(self) -> Self {
        self.restart_with(|_| {}).await
    }

    /// Stops the service and starts it again on the same database, with
    /// `change` applied to its settings.
    pub async fn restart_with(self, change: impl FnOnce(&mut customer_svc::Settings)) -> Self {
        let TestApp {
            admin_token,
            kafka,
            common,
            app,
            producer,
            database,
            ..
        } = self;
        app.stop().await.unwrap();
        let mut settings = settings(&database.url, &common, 900);
        change(&mut settings);
        let app = customer_svc::build(settings)
            .await
            .expect("customer-svc starts again");
        TestApp {
            address: format!("http://127.0.0.1:{}", app.port()),
            admin_token,
            kafka,
            common,
            app,
            producer,
            database,
        }
    }

    /// A second instance on the same database, topics and consumer group.
    pub async fn spawn_second_instance(&self) -> App {
        customer_svc::build(settings(&self.database.url, &self.common, 900))
            .await
            .unwrap()
    }

    /// A client of the service.
    pub fn api(&self) -> TestClient {
        TestClient::new(self.address.clone())
    }

    pub async fn request(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> reqwest::Response {
        self.api().send(method, path, token, body).await
    }

    pub async fn get_json(&self, path: &str) -> Value {
        self.api().get_ok(path, None).await
    }

    /// A token for these credentials; fails the test if refused.
    pub async fn token(&self, email: &str, password: &str) -> String {
        self.sign_in(email, password).await["access_token"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// The whole token answer for these credentials; fails the test if refused.
    pub async fn sign_in(&self, email: &str, password: &str) -> Value {
        let response = self
            .request(
                reqwest::Method::POST,
                "/auth/token",
                None,
                Some(&json!({"email": email, "password": password})),
            )
            .await;
        assert_eq!(response.status(), StatusCode::OK, "token for {email}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["token_type"], "Bearer");
        body
    }

    /// Registers a customer with `limit` (as admin); returns id and token.
    pub async fn customer_with_limit(&self, limit_minor: i64) -> (Uuid, String) {
        let email = format!("c{}@example.com", Uuid::now_v7().simple());
        let body = json!({
            "email": email, "name": "Test Customer", "password": "a good password",
            "credit_limit": {"amount_minor": limit_minor, "currency": "EUR"},
        });
        let response = self
            .request(
                reqwest::Method::POST,
                "/customers",
                Some(&self.admin_token),
                Some(&body),
            )
            .await;
        assert_eq!(
            response.status(),
            StatusCode::CREATED,
            "{}",
            response.text().await.unwrap()
        );
        let customer: Value = response.json().await.unwrap();
        let id = customer["id"].as_str().unwrap().parse().unwrap();
        (id, self.token(&email, "a good password").await)
    }

    /// A customer's email, read as the admin.
    pub async fn email_of(&self, customer: Uuid) -> String {
        let response = self
            .request(
                reqwest::Method::GET,
                &format!("/customers/{customer}"),
                Some(&self.admin_token),
                None,
            )
            .await;
        assert_eq!(response.status(), StatusCode::OK);
        let record: Value = response.json().await.unwrap();
        record["email"].as_str().unwrap().to_owned()
    }

    pub async fn credit(&self, customer: Uuid) -> Value {
        let response = self
            .request(
                reqwest::Method::GET,
                &format!("/customers/{customer}/credit"),
                Some(&self.admin_token),
                None,
            )
            .await;
        assert_eq!(response.status(), StatusCode::OK);
        response.json().await.unwrap()
    }

    pub async fn set_status(&self, customer: Uuid, status: &str) {
        let response = self
            .request(
                reqwest::Method::PATCH,
                &format!("/customers/{customer}"),
                Some(&self.admin_token),
                Some(&json!({"status": status})),
            )
            .await;
        assert_eq!(response.status(), StatusCode::OK);
    }

    /// Asserts the credit invariant for every customer.
    pub async fn assert_credit_balanced(&self) {
        let response = self
            .request(
                reqwest::Method::GET,
                "/credit/audit",
                Some(&self.admin_token),
                None,
            )
            .await;
        assert_eq!(response.status(), StatusCode::OK);
        let audit: Value = response.json().await.unwrap();
        assert_eq!(
            audit["balanced"], true,
            "credit books do not balance: {audit:#}"
        );
    }

    /// Publishes an order event the way order-svc's relay does.
    pub async fn publish(&self, event: impl Into<Event>) -> Envelope {
        let envelope = Envelope::new(event, "order-svc");
        self.publish_envelope(&envelope).await;
        envelope
    }

    pub async fn publish_envelope(&self, envelope: &Envelope) {
        let topic = self.kafka.topics.name(Topic::Orders);
        testkit::publish(&self.producer, &topic, envelope).await;
    }

    /// Publishes `json` as it is (poison, for instance), keyed by `key`.
    pub async fn publish_json(&self, key: Uuid, json: &Value) {
        let topic = self.kafka.topics.name(Topic::Orders);
        let event_type = json["event_type"].as_str().unwrap_or_default();
        let payload = serde_json::to_vec(json).unwrap();
        testkit::produce(
            &self.producer,
            &topic,
            &key.to_string(),
            event_type,
            &payload,
        )
        .await;
    }

    /// A reader of a topic, from its beginning.
    pub fn reader(&self, topic: Topic) -> testkit::TopicReader {
        testkit::TopicReader::new(&self.kafka, &self.kafka.topics.name(topic))
    }
}

/// An OrderPlaced by `customer` with a total of `total_minor` EUR cents.
pub fn order_placed(order_id: Uuid, customer: Uuid, total_minor: i64) -> OrderPlaced {
    let eur = |minor| Money::new(minor, Currency::parse("EUR").unwrap()).unwrap();
    OrderPlaced {
        order_id: order_id.into(),
        customer_id: customer.into(),
        lines: vec![OrderLine {
            product_id: Uuid::now_v7().into(),
            quantity: Quantity::new(1).unwrap(),
            unit_price: eur(total_minor),
        }],
        total: eur(total_minor),
        shipping_address: None,
        deadline_at: chrono::Utc::now() + chrono::Duration::seconds(30),
    }
}
