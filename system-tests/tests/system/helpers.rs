//! `spawn_system(backend)`: the three services on one topic prefix, each
//! with its own database on `backend` (PostgreSQL, or a SQLite file), order-svc trusting customer-svc's keys; typed
//! helpers for the walk through an order's life, and the system-wide
//! invariants every test ends with.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use service_kit::{App, Clock, CommonSettings};
use testkit::{Backend, TestClient, TestDatabase};
use uuid::Uuid;

pub const WAIT: Duration = testkit::assertions::WAIT;
const ADMIN_EMAIL: &str = "root@oms.test";
const ADMIN_PASSWORD: &str = "admin password for tests";

/// One running service and how to start it again.
pub struct Service {
    pub address: String,
    pub app: Option<App>,
    pub database: Arc<TestDatabase>,
}

impl Service {
    /// A client of the service where it runs now.
    pub fn api(&self) -> TestClient {
        TestClient::new(self.address.clone())
    }
}

pub struct System {
    pub client: reqwest::Client,
    pub common: CommonSettings,
    pub admin_token: String,
    pub orders: Service,
    pub inventory: Service,
    pub customers: Service,
    /// order-svc's clock: a test that drives deadlines holds a manual one.
    pub clock: Clock,
}

fn address(port: u16) -> String {
    format!("http://127.0.0.1:{port}")
}

fn local() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

/// Seconds from placement to an order's saga deadline, in every test.
pub const SAGA_DEADLINE_SECS: u64 = 30;

pub async fn spawn_system(backend: Backend) -> System {
    spawn_system_with(backend, Clock::system(), |_| {}).await
}

/// The system with order-svc reading the time from `clock`, and its
/// shared settings changed by `adjust`.
pub async fn spawn_system_with(
    backend: Backend,
    clock: Clock,
    adjust: impl FnOnce(&mut CommonSettings),
) -> System {
    spawn_system_with_clocks(backend, clock, Clock::system(), adjust).await
}

/// The system with order-svc reading the time from `clock`, customer-svc
/// (the token issuer: key rotation, lock-outs) from `issuer_clock`, and
/// the shared settings changed by `adjust`.
pub async fn spawn_system_with_clocks(
    backend: Backend,
    clock: Clock,
    issuer_clock: Clock,
    adjust: impl FnOnce(&mut CommonSettings),
) -> System {
    testkit::init_tracing();
    let bootstrap = testkit::kafka_bootstrap().await.to_owned();
    let mut common = CommonSettings::local(bootstrap);
    common.topic_prefix = testkit::topic_prefix();
    common.topic_partitions = 2;
    adjust(&mut common);

    let customer_db = Arc::new(TestDatabase::create_on(backend).await);
    let customers = customer_svc::build(customer_settings(&customer_db.url, &common, issuer_clock))
        .await
        .unwrap();
    common.jwks_url = format!("{}/.well-known/jwks.json", address(customers.port()));
    let customers = Service {
        address: address(customers.port()),
        app: Some(customers),
        database: customer_db,
    };

    let inventory_db = Arc::new(TestDatabase::create_on(backend).await);
    let inventory = start_inventory(&inventory_db.url, &common).await;
    let inventory = Service {
        address: address(inventory.port()),
        app: Some(inventory),
        database: inventory_db,
    };

    let order_db = Arc::new(TestDatabase::create_on(backend).await);
    let orders = start_orders(&order_db.url, &common, &clock, 0).await;
    let orders = Service {
        address: address(orders.port()),
        app: Some(orders),
        database: order_db,
    };

    let client = reqwest::Client::new();
    let token: Value = client
        .post(format!("{}/auth/token", customers.address))
        .json(&json!({"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    System {
        client,
        common,
        admin_token: token["access_token"].as_str().unwrap().to_owned(),
        orders,
        inventory,
        customers,
        clock,
    }
}

fn customer_settings(url: &str, common: &CommonSettings, clock: Clock) -> customer_svc::Settings {
    let mut settings = customer_svc::Settings::local(
        common.clone(),
        ADMIN_EMAIL,
        ADMIN_PASSWORD,
        "b3JkZXItc3ZjIHRlc3RzOiBrZXktZW5jcnlwdGlvbiE=",
    );
    settings.database_url = Some(url.to_owned());
    settings.clock = clock;
    settings
}

async fn start_inventory(url: &str, common: &CommonSettings) -> App {
    inventory_svc::build(inventory_svc::Settings {
        http_addr: local(),
        database_url: Some(url.to_owned()),
        common: common.clone(),
        holds: service_kit::holds::HoldSettings::default(),
        clock: service_kit::Clock::system(),
    })
    .await
    .unwrap()
}

/// order-svc with at most `max_pending_orders` in the saga (0: automatic).
async fn start_orders(
    url: &str,
    common: &CommonSettings,
    clock: &Clock,
    max_pending_orders: u64,
) -> App {
    order_svc::build(order_svc::Settings {
        http_addr: local(),
        database_url: Some(url.to_owned()),
        saga_deadline_secs: SAGA_DEADLINE_SECS,
        idempotency_ttl_secs: 3600,
        max_pending_orders,
        common: common.clone(),
        clock: clock.clone(),
    })
    .await
    .unwrap()
}

impl System {
    pub async fn order_api(
        &self,
        method: Method,
        path: &str,
        token: &str,
        body: Option<&Value>,
    ) -> reqwest::Response {
        self.orders
            .api()
            .send(method, path, Some(token), body)
            .await
    }

    /// GET as admin from one of the services: the body, or `None` on 404.
    async fn admin_json(&self, service: &Service, path: &str) -> Option<Value> {
        service.api().find(path, Some(&self.admin_token)).await
    }

    /// Creates a product in inventory-svc and waits until order-svc's
    /// catalog copy has it.
    pub async fn product(&self, sku: &str, price_minor: i64, stock: i64) -> Uuid {
        let created = self
            .inventory
            .api()
            .expect(
                Method::POST,
                "/products",
                Some(&self.admin_token),
                Some(&json!({"sku": sku, "name": sku, "unit_price": {"amount_minor": price_minor, "currency": "EUR"}, "initial_stock": stock})),
                StatusCode::CREATED,
            )
            .await;
        let id: Uuid = created["id"].as_str().unwrap().parse().unwrap();
        self.wait_for_catalog(id, true).await;
        id
    }

    /// Creates `count` products (`<prefix>-0`, …) with `stock` each at
    /// 1.00 EUR, concurrently, and waits until order-svc's catalog copy
    /// has them all.
    pub async fn products(&self, prefix: &str, count: usize, stock: i64) -> Vec<Uuid> {
        use futures::StreamExt;
        let inventory = self.inventory.api();
        let products: Vec<Uuid> = futures::stream::iter(0..count)
            .map(|n| {
                let inventory = &inventory;
                async move {
                    let created = inventory
                        .expect(
                            Method::POST,
                            "/products",
                            Some(&self.admin_token),
                            Some(&json!({"sku": format!("{prefix}-{n}"), "name": "Line", "unit_price": {"amount_minor": 100, "currency": "EUR"}, "initial_stock": stock})),
                            StatusCode::CREATED,
                        )
                        .await;
                    created["id"].as_str().unwrap().parse::<Uuid>().unwrap()
                }
            })
            .buffered(8)
            .collect()
            .await;
        for &product in &products {
            self.wait_for_catalog_entry(product, |_| true).await;
        }
        products
    }

    /// Waits until order-svc's catalog copy has `product` with `active`.
    pub async fn wait_for_catalog(&self, product: Uuid, active: bool) {
        self.wait_for_catalog_entry(product, |p| p["active"] == active)
            .await;
    }

    /// Waits until order-svc's catalog copy has an entry for `product`
    /// that `matches`.
    pub async fn wait_for_catalog_entry(&self, product: Uuid, matches: impl Fn(&Value) -> bool) {
        testkit::eventually("the product in order-svc's catalog", || async {
            let page = self
                .orders
                .api()
                .get_ok("/catalog/products?limit=100", None)
                .await;
            page["items"]
                .as_array()
                .unwrap()
                .iter()
                .any(|p| p["product_id"] == product.to_string() && matches(p))
        })
        .await;
    }

    /// Registers a customer with a credit limit; returns id and token.
    pub async fn customer(&self, limit_minor: i64) -> (Uuid, String) {
        let email = format!("c{}@example.com", Uuid::now_v7().simple());
        let customers = self.customers.api();
        let created = customers
            .expect(
                Method::POST,
                "/customers",
                Some(&self.admin_token),
                Some(
                    &json!({"email": email, "name": "Customer", "password": "a good password",
                    "credit_limit": {"amount_minor": limit_minor, "currency": "EUR"}}),
                ),
                StatusCode::CREATED,
            )
            .await;
        let id: Uuid = created["id"].as_str().unwrap().parse().unwrap();
        let token = customers
            .expect(
                Method::POST,
                "/auth/token",
                None,
                Some(&json!({"email": email, "password": "a good password"})),
                StatusCode::OK,
            )
            .await;
        (id, token["access_token"].as_str().unwrap().to_owned())
    }

    /// Places an order; asserts 202 and returns its id.
    pub async fn place(&self, token: &str, customer: Uuid, lines: &[(Uuid, u32)]) -> Uuid {
        let response = self.place_raw(token, customer, lines, None).await;
        assert_eq!(
            response.status(),
            StatusCode::ACCEPTED,
            "{}",
            response.text().await.unwrap()
        );
        let location = response.headers()["location"].to_str().unwrap().to_owned();
        let order: Value = response.json().await.unwrap();
        assert_eq!(order["status"], "PENDING");
        assert_eq!(
            location,
            format!("/orders/{}", order["id"].as_str().unwrap())
        );
        order["id"].as_str().unwrap().parse().unwrap()
    }

    pub async fn place_raw(
        &self,
        token: &str,
        customer: Uuid,
        lines: &[(Uuid, u32)],
        key: Option<&str>,
    ) -> reqwest::Response {
        let body = json!({
            "customer_id": customer,
            "lines": lines.iter().map(|(p, q)| json!({"product_id": p, "quantity": q})).collect::<Vec<_>>(),
        });
        let mut request = self
            .client
            .post(format!("{}/orders", self.orders.address))
            .bearer_auth(token)
            .json(&body);
        if let Some(key) = key {
            request = request.header("idempotency-key", key);
        }
        request.send().await.unwrap()
    }

    pub async fn order(&self, id: Uuid) -> Value {
        self.admin_json(&self.orders, &format!("/orders/{id}"))
            .await
            .expect("the order exists")
    }

    /// The `/metrics` text of `service`.
    pub async fn metrics_of(&self, service: &Service) -> String {
        self.client
            .get(format!("{}/metrics", service.address))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// The value of one series of order-svc's `/metrics`, e.g.
    /// `oms_orders{status="PENDING"}`; 0 while it is not there.
    pub async fn metric(&self, series: &str) -> f64 {
        self.metrics_of(&self.orders)
            .await
            .lines()
            .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
            .map_or(0.0, |value| value.trim().parse().unwrap())
    }

    /// Waits until the order has `status`.
    pub async fn wait_status(&self, id: Uuid, status: &str) -> Value {
        self.wait_order(id, status, |order| order["status"] == status)
            .await
    }

    /// Waits until `done` holds for the order; `what` names it in the failure.
    async fn wait_order(&self, id: Uuid, what: &str, done: impl Fn(&Value) -> bool) -> Value {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let order = self.order(id).await;
            if done(&order) {
                return order;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "order {id} is {} after {WAIT:?}, not {what}",
                order["status"]
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until the saga has decided the order (CONFIRMED or REJECTED).
    pub async fn wait_decided(&self, id: Uuid) -> Value {
        self.wait_order(id, "decided", |order| {
            order["status"] == "CONFIRMED" || order["status"] == "REJECTED"
        })
        .await
    }

    pub async fn timeline(&self, id: Uuid) -> Vec<String> {
        let timeline = self
            .admin_json(&self.orders, &format!("/orders/{id}/events"))
            .await
            .unwrap();
        timeline["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["event_type"].as_str().unwrap().to_owned())
            .collect()
    }

    /// inventory-svc's reservation state of an order (`None`: never heard of it).
    pub async fn stock_state(&self, order: Uuid) -> Option<String> {
        self.admin_json(&self.inventory, &format!("/reservations/{order}"))
            .await
            .map(|r| r["state"].as_str().unwrap().to_owned())
    }

    /// customer-svc's credit reservation state of an order.
    pub async fn credit_state(&self, order: Uuid) -> Option<String> {
        self.admin_json(&self.customers, &format!("/credit/reservations/{order}"))
            .await
            .map(|r| r["state"].as_str().unwrap().to_owned())
    }

    pub async fn stock_of(&self, product: Uuid) -> Value {
        self.admin_json(&self.inventory, &format!("/products/{product}"))
            .await
            .unwrap()["stock"]
            .clone()
    }

    pub async fn reserved_credit(&self, customer: Uuid) -> i64 {
        self.admin_json(&self.customers, &format!("/customers/{customer}/credit"))
            .await
            .unwrap()["reserved"]["amount_minor"]
            .as_i64()
            .unwrap()
    }

    /// Stops inventory-svc (its consumer commits and leaves the group).
    pub async fn stop_inventory(&mut self) {
        self.inventory.app.take().unwrap().stop().await.unwrap();
    }

    pub async fn start_inventory(&mut self) {
        let app = start_inventory(&self.inventory.database.url, &self.common).await;
        self.inventory.address = address(app.port());
        self.inventory.app = Some(app);
    }

    /// Stops order-svc and starts it again on the same database.
    pub async fn restart_orders(&mut self) {
        self.restart_orders_admitting(0).await;
    }

    /// Stops order-svc and starts it again on the same database, with at
    /// most `max_pending_orders` in the saga (0: the automatic bound).
    pub async fn restart_orders_admitting(&mut self, max_pending_orders: u64) {
        self.orders.app.take().unwrap().stop().await.unwrap();
        let app = start_orders(
            &self.orders.database.url,
            &self.common,
            &self.clock,
            max_pending_orders,
        )
        .await;
        self.orders.address = address(app.port());
        self.orders.app = Some(app);
    }

    /// The system-wide invariants, once the system has settled:
    /// stock is held for an order only while it is PENDING or CONFIRMED,
    /// credit only while PENDING, CONFIRMED or SHIPPED, and both services'
    /// books balance.
    pub async fn assert_invariants(&self) {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            match self.invariant_violations().await {
                violations if violations.is_empty() => return,
                violations => {
                    assert!(
                        tokio::time::Instant::now() < deadline,
                        "invariants still broken after {WAIT:?}: {violations:#?}"
                    );
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        }
    }

    async fn invariant_violations(&self) -> Vec<String> {
        let mut violations = Vec::new();
        let stock = self
            .admin_json(&self.inventory, "/stock/audit")
            .await
            .unwrap();
        if stock["balanced"] != true {
            violations.push(format!("stock books: {stock}"));
        }
        let credit = self
            .admin_json(&self.customers, "/credit/audit")
            .await
            .unwrap();
        if credit["balanced"] != true {
            violations.push(format!("credit books: {credit}"));
        }
        let orders = self
            .admin_json(&self.orders, "/orders?limit=100")
            .await
            .unwrap();
        for order in orders["items"].as_array().unwrap() {
            let id: Uuid = order["id"].as_str().unwrap().parse().unwrap();
            let status = order["status"].as_str().unwrap();
            if self.stock_state(id).await.as_deref() == Some("RESERVED")
                && !matches!(status, "PENDING" | "CONFIRMED")
            {
                violations.push(format!("stock held for {status} order {id}"));
            }
            if self.credit_state(id).await.as_deref() == Some("RESERVED")
                && !matches!(status, "PENDING" | "CONFIRMED" | "SHIPPED")
            {
                violations.push(format!("credit held for {status} order {id}"));
            }
        }
        violations
    }
}
