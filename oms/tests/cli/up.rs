//! `oms up` from a clean data directory serves the README's walk-through,
//! keeps its data across restarts, and stops its broker.

use std::path::{Path, PathBuf};

use oms::UpArgs;
use oms::up::{self, DEMO_CUSTOMERS, System};
use serde_json::{Value, json};
use uuid::Uuid;

pub(crate) fn args(data_dir: &Path, kafka: Option<String>, topic_prefix: &str) -> UpArgs {
    UpArgs {
        data_dir: data_dir.to_path_buf(),
        kafka,
        kafka_port: 0,
        database_url: None,
        database_prefix: "oms_".into(),
        sqlite_synchronous: Default::default(),
        order_port: 0,
        inventory_port: 0,
        customer_port: 0,
        admin_email: "admin@oms.local".into(),
        admin_password: None,
        key_encryption_key: None,
        topic_prefix: topic_prefix.into(),
        dlq_retention_hours: 720,
        demo: true,
    }
}

fn data_dir() -> PathBuf {
    std::env::temp_dir().join(format!("oms-up-{}", Uuid::now_v7()))
}

/// Where the three services of a running system answer: an in-process
/// [`System`], or the addresses an `oms up` process printed.
pub(crate) trait Endpoints {
    fn order_url(&self) -> String;
    fn inventory_url(&self) -> String;
    fn customer_url(&self) -> String;
}

impl Endpoints for System {
    fn order_url(&self) -> String {
        System::url(&self.order)
    }
    fn inventory_url(&self) -> String {
        System::url(&self.inventory)
    }
    fn customer_url(&self) -> String {
        System::url(&self.customer)
    }
}

/// The addresses an `oms up` process printed.
pub(crate) struct PrintedUrls {
    pub order: String,
    pub inventory: String,
    pub customer: String,
}

impl Endpoints for PrintedUrls {
    fn order_url(&self) -> String {
        self.order.clone()
    }
    fn inventory_url(&self) -> String {
        self.inventory.clone()
    }
    fn customer_url(&self) -> String {
        self.customer.clone()
    }
}

/// `POST /auth/token`'s answer for a customer of `system`.
pub(crate) async fn log_in(system: &impl Endpoints, email: &str, password: &str) -> Value {
    reqwest::Client::new()
        .post(format!("{}/auth/token", system.customer_url()))
        .json(&json!({"email": email, "password": password}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// Waits until order-svc's catalog copy has `product`.
pub(crate) async fn wait_for_catalog(system: &impl Endpoints, product: &str) {
    let url = format!("{}/catalog/products?limit=100", system.order_url());
    testkit::eventually("the product in order-svc's catalog", || async {
        let catalog: Value = reqwest::get(&url).await.unwrap().json().await.unwrap();
        catalog["items"]
            .as_array()
            .is_some_and(|items| items.iter().any(|p| p["product_id"] == product))
    })
    .await;
}

/// Places `quantity` of the demo book with `token`, once order-svc's
/// catalog has it; returns order-svc's answer.
pub(crate) async fn place_demo_order(system: &impl Endpoints, token: &str, quantity: u32) -> Value {
    let http = reqwest::Client::new();
    let products: Value = http
        .get(format!("{}/products?sku=BOOK-1", system.inventory_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let product = products["items"][0]["id"].as_str().unwrap().to_owned();
    wait_for_catalog(system, &product).await;
    http.post(format!("{}/orders", system.order_url()))
        .bearer_auth(token)
        .json(&json!({"lines": [{"product_id": product, "quantity": quantity}]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// Places the README's order as the demo customer and waits for CONFIRMED.
pub(crate) async fn confirmed_order(system: &impl Endpoints) -> (Uuid, String) {
    let (email, _, password) = DEMO_CUSTOMERS[0];
    let token = log_in(system, email, password).await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let placed = place_demo_order(system, &token, 2).await;
    let order: Uuid = placed["id"].as_str().unwrap().parse().unwrap();
    testkit::eventually("the order confirmed", || async {
        status(system, order, &token).await == "CONFIRMED"
    })
    .await;
    (order, token)
}

pub(crate) async fn status(system: &impl Endpoints, order: Uuid, token: &str) -> String {
    let response: Value = reqwest::Client::new()
        .get(format!("{}/orders/{order}/status", system.order_url()))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    response["status"].as_str().unwrap_or_default().to_owned()
}

#[tokio::test]
async fn oms_up_serves_a_confirmed_order_from_a_clean_data_directory_and_keeps_it_across_restarts()
{
    testkit::init_tracing();
    let bootstrap = testkit::kafka_bootstrap().await.to_owned();
    let dir = data_dir();
    let prefix = testkit::topic_prefix();

    let system = up::start(&args(&dir, Some(bootstrap.clone()), &prefix))
        .await
        .unwrap();
    assert!(system.admin_token.as_deref().is_some_and(|t| !t.is_empty()));
    for file in [
        "order-svc.sqlite",
        "inventory-svc.sqlite",
        "customer-svc.sqlite",
    ] {
        assert!(dir.join(file).exists(), "{file} in the data directory");
    }
    let (order, token) = confirmed_order(&system).await;
    system.stop().await.unwrap();

    // Restarted on the same data directory, with --demo again.
    let system = up::start(&args(&dir, Some(bootstrap), &prefix))
        .await
        .unwrap();
    assert_eq!(
        status(&system, order, &token).await,
        "CONFIRMED",
        "the order survived the restart"
    );
    let products: Value = reqwest::get(format!("{}/products", System::url(&system.inventory)))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        products["items"].as_array().unwrap().len(),
        3,
        "the demo data is not created twice"
    );
    confirmed_order(&system).await;
    system.stop().await.unwrap();
    std::fs::remove_dir_all(dir).ok();
}

/// The quick start makes its own secrets; a password changed over the API
/// is kept across restarts; a lost one comes back with `oms admin
/// reset-password`.
#[tokio::test]
async fn oms_up_makes_its_secrets_and_a_lost_admin_password_is_reset() {
    use std::os::unix::fs::PermissionsExt;
    testkit::init_tracing();
    let bootstrap = testkit::kafka_bootstrap().await.to_owned();
    let dir = data_dir();
    let prefix = testkit::topic_prefix();
    let mut quiet = args(&dir, Some(bootstrap.clone()), &prefix);
    quiet.demo = false;

    let system = up::start(&quiet).await.unwrap();
    let file = system
        .admin_password_file
        .clone()
        .expect("a generated password");
    for secret in [file.clone(), dir.join("key-encryption-key")] {
        let mode = std::fs::metadata(&secret).unwrap().permissions().mode();
        assert_eq!(
            mode & 0o077,
            0,
            "{} is readable by others",
            secret.display()
        );
    }
    let generated = std::fs::read_to_string(&file).unwrap().trim().to_owned();
    assert!(generated.len() >= 32);
    assert!(log_in(&system, "admin@oms.local", &generated).await["access_token"].is_string());
    let admin_token = system.admin_token.clone().unwrap();
    let admin: Value = reqwest::Client::new()
        .get(format!("{}/customers", System::url(&system.customer)))
        .bearer_auth(&admin_token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let admin_id = admin["items"][0]["id"].as_str().unwrap().to_owned();
    let changed = reqwest::Client::new()
        .post(format!(
            "{}/customers/{admin_id}/password",
            System::url(&system.customer)
        ))
        .bearer_auth(&admin_token)
        .json(&json!({"current_password": generated, "new_password": "forgotten at once"}))
        .send()
        .await
        .unwrap();
    assert_eq!(changed.status(), 204);
    system.stop().await.unwrap();

    // The restart keeps the changed password: oms up cannot sign in, and says so.
    let system = up::start(&quiet).await.unwrap();
    assert!(system.admin_token.is_none());
    system.stop().await.unwrap();

    let reset = std::process::Command::new(env!("CARGO_BIN_EXE_oms"))
        .args(["admin", "reset-password", "--database-url"])
        .arg(format!("sqlite://{}/customer-svc.sqlite", dir.display()))
        .env("OMS_NEW_ADMIN_PASSWORD", "the recovered password")
        .env_remove("OMS_ADMIN_EMAIL")
        .output()
        .unwrap();
    assert!(
        reset.status.success(),
        "{}",
        String::from_utf8_lossy(&reset.stderr)
    );
    let mut recovered = quiet.clone();
    recovered.admin_password = Some("the recovered password".into());
    let system = up::start(&recovered).await.unwrap();
    assert!(system.admin_token.is_some(), "the admin signs in again");
    system.stop().await.unwrap();

    // The same with the database URL and the password in files, as a
    // container's secrets are.
    let secrets = tempfile::tempdir().unwrap();
    let url_file = secrets.path().join("customer-database-url");
    let password_file = secrets.path().join("new-admin-password");
    std::fs::write(
        &url_file,
        format!("sqlite://{}/customer-svc.sqlite\n", dir.display()),
    )
    .unwrap();
    std::fs::write(&password_file, "recovered from a file\n").unwrap();
    let reset = std::process::Command::new(env!("CARGO_BIN_EXE_oms"))
        .args(["admin", "reset-password"])
        .env("OMS_CUSTOMER_DATABASE_URL_FILE", &url_file)
        .env("OMS_NEW_ADMIN_PASSWORD_FILE", &password_file)
        .env_remove("OMS_CUSTOMER_DATABASE_URL")
        .env_remove("OMS_NEW_ADMIN_PASSWORD")
        .env_remove("OMS_ADMIN_EMAIL")
        .output()
        .unwrap();
    assert!(
        reset.status.success(),
        "{}",
        String::from_utf8_lossy(&reset.stderr)
    );
    recovered.admin_password = Some("recovered from a file".into());
    let system = up::start(&recovered).await.unwrap();
    assert!(
        system.admin_token.is_some(),
        "the admin signs in with the password from the file"
    );
    system.stop().await.unwrap();
    std::fs::remove_dir_all(dir).ok();
}

#[tokio::test]
async fn oms_up_runs_its_own_broker_whose_data_survives_a_restart() {
    testkit::init_tracing();
    let dir = data_dir();
    let system = up::start(&args(&dir, None, "")).await.unwrap();
    assert!(
        dir.join("kafka/logs/meta.properties").exists(),
        "the broker's log lives in the data directory"
    );
    let (order, token) = confirmed_order(&system).await;
    let bootstrap = system.kafka_bootstrap.clone();
    system.stop().await.unwrap();
    assert!(
        std::net::TcpStream::connect(&bootstrap).is_err(),
        "the broker stopped with oms up"
    );

    let system = up::start(&args(&dir, None, "")).await.unwrap();
    assert_eq!(status(&system, order, &token).await, "CONFIRMED");
    confirmed_order(&system).await;
    system.stop().await.unwrap();
    std::fs::remove_dir_all(dir).ok();
}

/// Two `oms up` on one data directory would run two relays over each
/// SQLite outbox and publish every event twice: the second is refused at
/// start with a clear error, and the first keeps serving.
#[tokio::test]
async fn a_second_oms_up_on_the_same_data_directory_is_refused() {
    testkit::init_tracing();
    let bootstrap = testkit::kafka_bootstrap().await.to_owned();
    let dir = data_dir();
    let system = up::start(&args(
        &dir,
        Some(bootstrap.clone()),
        &testkit::topic_prefix(),
    ))
    .await
    .unwrap();
    let error = match up::start(&args(&dir, Some(bootstrap), &testkit::topic_prefix())).await {
        Ok(_) => panic!("a second oms up started on the same data directory"),
        Err(error) => format!("{error:#}"),
    };
    assert!(
        error.contains("already in use by another process") && error.contains("oms.lock"),
        "{error}"
    );
    confirmed_order(&system).await;
    system.stop().await.unwrap();
    std::fs::remove_dir_all(dir).ok();
}

#[tokio::test]
async fn oms_up_runs_on_postgresql_with_a_database_per_service() {
    testkit::init_tracing();
    let bootstrap = testkit::kafka_bootstrap().await.to_owned();
    // A prefix of its own, so that the test never meets a user's oms_*
    // databases on the same server; its databases are dropped with it.
    let databases = testkit::TestDatabasePrefix::create().await;
    let dir = data_dir();
    let mut options = args(&dir, Some(bootstrap), &testkit::topic_prefix());
    options.database_url = Some(databases.admin_url.clone());
    options.database_prefix = databases.prefix.clone();
    let system = up::start(&options).await.unwrap();
    assert!(system.postgres);
    assert_eq!(
        system.database_names,
        ["order", "inventory", "customer"].map(|s| format!("{}{s}", databases.prefix))
    );
    assert!(
        !dir.join("order-svc.sqlite").exists(),
        "no SQLite file when PostgreSQL is given"
    );
    confirmed_order(&system).await;
    system.stop().await.unwrap();
    std::fs::remove_dir_all(dir).ok();
}

/// `oms up --help` names the secret variables but never prints their values.
#[test]
fn help_never_prints_a_secret_from_the_environment() {
    let help = std::process::Command::new(env!("CARGO_BIN_EXE_oms"))
        .args(["up", "--help"])
        .env("OMS_ADMIN_PASSWORD", "pa55-from-the-environment")
        .env(
            "OMS_DATABASE_URL",
            "postgres://oms:db-pa55@db.internal/postgres",
        )
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&help.stdout);
    assert!(text.contains("OMS_ADMIN_PASSWORD"), "{text}");
    assert!(!text.contains("pa55"), "{text}");
}

/// `oms up` reads every `OMS_*` variable the way the services' binaries
/// do (it used to build their settings from the defaults): a shared one
/// (the body limit), order-svc's saga deadline (an order's `deadline_at`
/// is its `created_at` plus `OMS_SAGA_DEADLINE_SECS`) and customer-svc's
/// sign-in throttle. One configuration works the same with either way of
/// starting the system.
#[tokio::test]
async fn oms_up_honours_the_services_variables() {
    use tokio::io::AsyncBufReadExt;
    let bootstrap = testkit::kafka_bootstrap().await.to_owned();
    let data_dir = tempfile::tempdir().unwrap();
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_oms"));
    oms::chaos::cluster::without_oms_environment(&mut command);
    let mut child = command
        .args([
            "up",
            "--demo",
            "--kafka",
            &bootstrap,
            "--topic-prefix",
            &testkit::topic_prefix(),
        ])
        .arg("--data-dir")
        .arg(data_dir.path())
        .args([
            "--order-port",
            "0",
            "--inventory-port",
            "0",
            "--customer-port",
            "0",
        ])
        .env("OMS_HTTP_BODY_LIMIT_BYTES", "256")
        .env("OMS_SAGA_DEADLINE_SECS", "20")
        .env("OMS_LOGIN_ATTEMPTS_PER_MINUTE", "3")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let urls = tokio::time::timeout(std::time::Duration::from_secs(120), async {
        let (mut order, mut inventory) = (None, None);
        while let Some(line) = lines.next_line().await.unwrap() {
            match line.split_whitespace().collect::<Vec<_>>()[..] {
                ["order-svc", url, ..] => order = Some(url.to_owned()),
                ["inventory-svc", url, ..] => inventory = Some(url.to_owned()),
                ["customer-svc", url, ..] => {
                    return PrintedUrls {
                        order: order.expect("order-svc's line comes first"),
                        inventory: inventory.expect("inventory-svc's line comes first"),
                        customer: url.to_owned(),
                    };
                }
                _ => {}
            }
        }
        panic!("oms up exited before it printed customer-svc's address");
    })
    .await
    .expect("oms up printed its addresses");
    let http = reqwest::Client::new();

    // The body limit, shared by every service.
    let answer = http
        .post(format!("{}/customers", urls.customer))
        .header("content-type", "application/json")
        .body(format!(
            r#"{{"email": "a@example.com", "name": "{}", "password": "a good password"}}"#,
            "x".repeat(512)
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(
        answer.status(),
        reqwest::StatusCode::PAYLOAD_TOO_LARGE,
        "a 580-byte body with OMS_HTTP_BODY_LIMIT_BYTES=256: {}",
        answer.text().await.unwrap()
    );

    // order-svc's saga deadline: 20 s, not the default 30.
    let (email, _, password) = DEMO_CUSTOMERS[0];
    let token = log_in(&urls, email, password).await["access_token"]
        .as_str()
        .expect("the demo customer signs in")
        .to_owned();
    let placed = place_demo_order(&urls, &token, 1).await;
    let at = |field: &str| {
        chrono::DateTime::parse_from_rfc3339(placed[field].as_str().unwrap_or_default())
            .unwrap_or_else(|e| panic!("{field} in {placed}: {e}"))
    };
    assert_eq!(
        (at("deadline_at") - at("created_at")).num_seconds(),
        20,
        "OMS_SAGA_DEADLINE_SECS=20: {placed}"
    );

    // customer-svc's sign-in throttle: 3 a minute from one address.
    let mut answers = Vec::new();
    for _ in 0..5 {
        let answer = http
            .post(format!("{}/auth/token", urls.customer))
            .json(&json!({"email": email, "password": password}))
            .send()
            .await
            .unwrap();
        answers.push(answer.status().as_u16());
    }
    // The bucket holds 3 at most (it refills while the test waits), so
    // five in a row meet a 429; at the default 60 none would.
    assert!(
        answers.contains(&429) && answers.iter().filter(|&&s| s == 200).count() <= 3,
        "with OMS_LOGIN_ATTEMPTS_PER_MINUTE=3, five sign-ins in a row: {answers:?}"
    );
    child.kill().await.unwrap();
}
