//! `spawn_app(backend)`: inventory-svc on its own database (PostgreSQL, or
//! a SQLite file) and topic prefix, on a free port, trusting a test key served as a JWKS; plus
//! typed helpers to call its API, publish order events the way order-svc
//! does, and read its replies.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use event_runtime::KafkaSettings;
use events::{Envelope, Event, Money, OrderLine, OrderPlaced, Quantity, Topic, TopicNames};
use rdkafka::producer::FutureProducer;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use service_kit::auth::jwt::{TokenSigner, jwks, jwks_router};
use service_kit::{App, Clock, CommonSettings, Role};
use testkit::{Backend, TestClient, TestDatabase};
use tokio::sync::RwLock;
use uuid::Uuid;

/// A running inventory-svc and everything a test needs around it.
pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    pub admin_token: String,
    pub customer_token: String,
    pub kafka: KafkaSettings,
    pub topic_prefix: String,
    pub kafka_bootstrap: String,
    pub jwks_url: String,
    pub app: App,
    /// The service's time, moved by tests (hold expiry).
    pub clock: Clock,
    producer: FutureProducer,
    /// Dropped with the app: the database lives as long as the test.
    pub _database: Arc<TestDatabase>,
}

/// Serves the test signing key's JWKS, as customer-svc would.
async fn serve_jwks(signer: &TokenSigner) -> String {
    let keys = Arc::new(RwLock::new(jwks(std::slice::from_ref(signer))));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, jwks_router(keys)).await.unwrap() });
    format!("http://{address}/.well-known/jwks.json")
}

pub fn signer() -> TokenSigner {
    TokenSigner::from_ed25519_pem("test-key", testkit::keys::SIGNING_KEY_PEM).unwrap()
}

pub async fn spawn_app(backend: Backend) -> TestApp {
    testkit::init_tracing();
    let kafka_bootstrap = testkit::kafka_bootstrap().await.to_owned();
    let database = Arc::new(TestDatabase::create_on(backend).await);
    let jwks_url = serve_jwks(&signer()).await;
    let mut common = CommonSettings::local(kafka_bootstrap);
    common.topic_prefix = testkit::topic_prefix();
    common.topic_partitions = 2;
    common.jwks_url = jwks_url;
    // A manual clock: holds expire only when a test moves it.
    let clock = Clock::manual(chrono::Utc::now());
    TestApp::around(common, clock, database).await
}

fn settings(database_url: &str, common: &CommonSettings, clock: &Clock) -> inventory_svc::Settings {
    inventory_svc::Settings {
        http_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        database_url: Some(database_url.to_owned()),
        common: common.clone(),
        holds: service_kit::holds::HoldSettings::default(),
        clock: clock.clone(),
    }
}

async fn start(database_url: &str, common: &CommonSettings, clock: &Clock) -> App {
    inventory_svc::build(settings(database_url, common, clock))
        .await
        .expect("inventory-svc starts")
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    /// Starts inventory-svc with `common` on `database`, and the test's
    /// tokens, producer and readers around it.
    async fn around(common: CommonSettings, clock: Clock, database: Arc<TestDatabase>) -> Self {
        let app = start(&database.url, &common, &clock).await;
        let kafka = common.kafka();
        let signer = signer();
        let token = |role| {
            signer
                .sign(
                    events::CustomerId::generate(),
                    role,
                    Duration::from_secs(600),
                )
                .unwrap()
        };
        TestApp {
            address: format!("http://127.0.0.1:{}", app.port()),
            client: reqwest::Client::new(),
            admin_token: token(Role::Admin),
            customer_token: token(Role::Customer),
            producer: kafka.producer("test-order-svc").unwrap(),
            kafka,
            topic_prefix: common.topic_prefix,
            kafka_bootstrap: common.kafka_bootstrap,
            jwks_url: common.jwks_url,
            app,
            clock,
            _database: database,
        }
    }

    /// Stops the service, runs `while_down` (publishes, moves the clock),
    /// and starts it again on the same database, topics, consumer group
    /// and clock, as after an outage.
    pub async fn restarted_after(self, while_down: impl std::future::Future<Output = ()>) -> Self {
        let TestApp {
            app,
            kafka_bootstrap,
            topic_prefix,
            jwks_url,
            clock,
            _database,
            ..
        } = self;
        app.stop().await.expect("inventory-svc stops cleanly");
        while_down.await;
        let mut common = CommonSettings::local(kafka_bootstrap);
        common.topic_prefix = topic_prefix;
        common.topic_partitions = 2;
        common.jwks_url = jwks_url;
        Self::around(common, clock, _database).await
    }

    /// A second instance on the same database, topics and consumer group.
    pub async fn spawn_second_instance(&self) -> App {
        self.try_spawn_second_instance()
            .await
            .expect("inventory-svc starts")
    }

    /// As [`spawn_second_instance`](Self::spawn_second_instance), returning
    /// the start-up error.
    pub async fn try_spawn_second_instance(&self) -> anyhow::Result<App> {
        let mut common = CommonSettings::local(self.kafka_bootstrap.clone());
        common.topic_prefix = self.topic_prefix.clone();
        common.topic_partitions = 2;
        common.jwks_url = self.jwks_url.clone();
        inventory_svc::build(settings(&self._database.url, &common, &self.clock)).await
    }

    /// A client of the service.
    pub fn api(&self) -> TestClient {
        TestClient::new(self.address.clone())
    }

    pub async fn get_json(&self, path: &str) -> Value {
        self.api().get_ok(path, None).await
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: &Value) -> reqwest::Response {
        self.api().send(Method::POST, path, token, Some(body)).await
    }

    pub async fn patch(&self, path: &str, token: Option<&str>, body: &Value) -> reqwest::Response {
        self.api()
            .send(Method::PATCH, path, token, Some(body))
            .await
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> reqwest::Response {
        self.api().send(Method::GET, path, token, None).await
    }

    /// Creates a product as admin; returns its id.
    pub async fn create_product(&self, sku: &str, price_minor: i64, stock: i64) -> Uuid {
        let body = json!({
            "sku": sku, "name": format!("Product {sku}"),
            "unit_price": {"amount_minor": price_minor, "currency": "EUR"},
            "initial_stock": stock,
        });
        let response = self.post("/products", Some(&self.admin_token), &body).await;
        assert_eq!(
            response.status(),
            StatusCode::CREATED,
            "{}",
            response.text().await.unwrap()
        );
        let product: Value = response.json().await.unwrap();
        product["id"].as_str().unwrap().parse().unwrap()
    }

    pub async fn product(&self, id: Uuid) -> Value {
        let response = self.get(&format!("/products/{id}"), None).await;
        assert_eq!(response.status(), StatusCode::OK);
        response.json().await.unwrap()
    }

    /// The reservation of an order, or `None` if inventory never heard of it.
    pub async fn reservation(&self, order_id: Uuid) -> Option<Value> {
        let response = self
            .get(
                &format!("/reservations/{order_id}"),
                Some(&self.admin_token),
            )
            .await;
        match response.status() {
            StatusCode::OK => Some(response.json().await.unwrap()),
            StatusCode::NOT_FOUND => None,
            other => panic!("GET reservation: {other}"),
        }
    }

    /// Asserts the conservation check passes; returns the audit.
    pub async fn assert_stock_conserved(&self) -> Value {
        let response = self.get("/stock/audit", Some(&self.admin_token)).await;
        assert_eq!(response.status(), StatusCode::OK);
        let audit: Value = response.json().await.unwrap();
        assert_eq!(audit["balanced"], true, "stock is not conserved: {audit:#}");
        for product in audit["products"].as_array().unwrap() {
            assert!(
                product["available"].as_i64().unwrap() >= 0,
                "negative stock: {product}"
            );
        }
        audit
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

    /// A reader of one of the service's topics, from the beginning.
    pub fn reader(&self, topic: &str) -> testkit::TopicReader {
        testkit::TopicReader::new(&self.kafka, topic)
    }

    pub fn topics(&self) -> &TopicNames {
        &self.kafka.topics
    }
}

/// An OrderPlaced for `lines` of (product, quantity) at 1.00 EUR each.
pub fn order_placed(order_id: Uuid, lines: &[(Uuid, u32)]) -> OrderPlaced {
    let eur = |minor| Money::new(minor, events::Currency::parse("EUR").unwrap()).unwrap();
    OrderPlaced {
        order_id: order_id.into(),
        customer_id: Uuid::now_v7().into(),
        lines: lines
            .iter()
            .map(|&(product_id, quantity)| OrderLine {
                product_id: product_id.into(),
                quantity: Quantity::new(quantity).unwrap(),
                unit_price: eur(100),
            })
            .collect(),
        total: eur(lines.iter().map(|&(_, q)| i64::from(q) * 100).sum()),
        shipping_address: None,
        deadline_at: chrono::Utc::now() + chrono::Duration::seconds(30),
    }
}

/// The replies that concern `order_id`.
pub fn for_order(envelopes: &[Envelope], order_id: Uuid) -> Vec<&Envelope> {
    envelopes.iter().filter(|e| e.key() == order_id).collect()
}
