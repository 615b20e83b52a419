//! `oms up`: the whole system in one process, for a laptop or a demo.

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use customer_svc::startup::read_or_create_secret;
use local_kafka::{LocalKafka, StartOptions};
use sea_orm::{ConnectionTrait, Database, DbBackend, Statement};
use serde_json::{Value, json};
use service_kit::database::FileLock;
use service_kit::{App, CommonSettings};
use tokio_util::sync::CancellationToken;

use crate::UpArgs;

/// Writes a line to standard error, as `eprintln!` does, but a standard
/// error nobody reads any more (a pager quit, a `tee` killed) is no reason
/// to panic: the system keeps running and still stops in order.
macro_rules! say {
    ($($line:tt)*) => {{
        let _ = writeln!(std::io::stderr(), $($line)*);
    }};
}

/// The running system.
pub struct System {
    /// order-svc.
    pub order: App,
    /// inventory-svc.
    pub inventory: App,
    /// customer-svc.
    pub customer: App,
    /// Where Kafka is.
    pub kafka_bootstrap: String,
    /// The broker `oms up` started, if it started one.
    broker: Option<LocalKafka>,
    /// A fresh admin token; `None` when the admin's password is no longer
    /// the one `oms up` knows (it was changed over the API).
    pub admin_token: Option<String>,
    /// The admin password `oms up` made and keeps, when it made one.
    pub admin_password_file: Option<PathBuf>,
    /// Where the data lives.
    pub data_dir: PathBuf,
    /// Whether the databases are PostgreSQL (else SQLite files).
    pub postgres: bool,
    /// The PostgreSQL databases, when `postgres`.
    pub database_names: Vec<String>,
    /// Keeps a second `oms up` off this data directory.
    _data_dir_lock: FileLock,
}

impl System {
    /// `http://127.0.0.1:<port>` of a service.
    pub fn url(app: &App) -> String {
        format!("http://127.0.0.1:{}", app.port())
    }

    /// Stops the services (offsets committed, outboxes left for next time),
    /// then the broker.
    ///
    /// # Errors
    /// When a service stopped with an error.
    pub async fn stop(self) -> anyhow::Result<()> {
        let results = [
            self.order.stop().await,
            self.inventory.stop().await,
            self.customer.stop().await,
        ];
        if let Some(broker) = self.broker {
            tokio::task::spawn_blocking(move || broker.stop()).await?;
        }
        results.into_iter().collect::<anyhow::Result<Vec<()>>>()?;
        Ok(())
    }
}

/// The services' variables `oms up` does not take from the environment,
/// because it decides them itself, and why; it reads every other variable
/// of each service as the service's binary does.
pub const SET_BY_OMS_UP: &[(&str, &str)] = &[
    (
        "OMS_KAFKA_BOOTSTRAP",
        "the broker `oms up` starts in its data directory, or `--kafka`: a variable left over from another setup must not make it join another cluster",
    ),
    (
        "OMS_JWKS_URL",
        "its own customer-svc's `/.well-known/jwks.json`, on whatever port that got",
    ),
    (
        "OMS_ORDER_HTTP_ADDR",
        "`127.0.0.1:<--order-port>` (8080): the three services of one process listen on loopback",
    ),
    (
        "OMS_INVENTORY_HTTP_ADDR",
        "`127.0.0.1:<--inventory-port>` (8081)",
    ),
    (
        "OMS_CUSTOMER_HTTP_ADDR",
        "`127.0.0.1:<--customer-port>` (8082)",
    ),
    (
        "OMS_ORDER_DATABASE_URL",
        "`<--data-dir>/order-svc.sqlite`, or the database `<prefix>order` it creates on `--database-url`",
    ),
    (
        "OMS_INVENTORY_DATABASE_URL",
        "`<--data-dir>/inventory-svc.sqlite`, or `<prefix>inventory` on `--database-url`",
    ),
    (
        "OMS_CUSTOMER_DATABASE_URL",
        "`<--data-dir>/customer-svc.sqlite`, or `<prefix>customer` on `--database-url`",
    ),
];

/// Starts the broker (unless `--kafka`), the three services, the admin
/// account and, with `--demo`, the demo data. Its broker is one it starts
/// itself in its data directory, or the one `--kafka` names, never another
/// that happens to listen on `--kafka-port`. A broker that cannot be
/// reached is waited for (the services say so every few seconds).
///
/// # Errors
/// When the Kafka client configuration is refused (one line naming the
/// property), Java or Maven is missing, a port is taken, or a database is
/// unreachable.
pub async fn start(args: &UpArgs) -> anyhow::Result<System> {
    std::fs::create_dir_all(&args.data_dir).with_context(|| {
        format!(
            "cannot create the data directory {}",
            args.data_dir.display()
        )
    })?;
    let data_dir = args.data_dir.canonicalize()?;
    let data_dir_lock = FileLock::acquire(
        &data_dir.join("oms.lock"),
        &format!("the data directory {}", data_dir.display()),
    )?;
    // A configuration the Kafka client refuses is refused before anything
    // starts, in one line, as the services refuse it.
    CommonSettings::local(args.kafka.clone().unwrap_or_default()).checked_kafka()?;
    let (kafka_bootstrap, broker) = match &args.kafka {
        Some(bootstrap) => (bootstrap.clone(), None),
        None => {
            say!(
                "starting Kafka in {} (the first start fetches its jars with Maven, about 30 s)",
                data_dir.join("kafka").display()
            );
            let options = StartOptions {
                data_dir: data_dir.join("kafka"),
                broker_port: (args.kafka_port != 0).then_some(args.kafka_port),
                watch_pid: Some(std::process::id()),
                remove_data_on_exit: false,
                sasl_ssl: None,
            };
            // Only a broker it started itself, in its own data directory:
            // a port another broker holds (a second `oms up`) is refused,
            // never joined.
            let broker = tokio::task::spawn_blocking(move || local_kafka::start(&options))
                .await?
                .with_context(|| {
                    format!(
                        "oms up starts its own broker on port {} (--kafka-port; 0 picks a free \
                         one); to use a broker that is already running, name it with --kafka",
                        args.kafka_port
                    )
                })?;
            (broker.bootstrap.clone(), Some(broker))
        }
    };

    let database_urls = match &args.database_url {
        Some(server) => Some(create_databases(server, &args.database_prefix).await?),
        None => None,
    };
    let url_for = |service: &str| {
        database_urls.as_ref().map(|urls: &Vec<(String, String)>| {
            urls.iter()
                .find(|(s, _)| s == service)
                .map(|(_, u)| u.clone())
                .unwrap_or_default()
        })
    };

    // Every OMS_* variable counts, as for the services; the flags of
    // `oms up` decide the rest.
    let mut common = CommonSettings::from_env()?;
    common.kafka_bootstrap = kafka_bootstrap.clone();
    common.data_dir = data_dir.clone();
    common.topic_prefix = args.topic_prefix.clone();
    common.sqlite_synchronous = args.sqlite_synchronous;
    common.dlq_retention_hours = args.dlq_retention_hours;
    let local = |port: u16| SocketAddr::from(([127, 0, 0, 1], port));

    // The quick start needs no secret from its user: a random admin
    // password and key-encryption key are made once and kept beside the data.
    let admin_password_file = data_dir.join("admin-password");
    let (admin_password, admin_password_file) = match &args.admin_password {
        Some(password) => (password.clone(), None),
        None => (
            read_or_create_secret(&admin_password_file)?,
            Some(admin_password_file),
        ),
    };
    let key_encryption_key = match &args.key_encryption_key {
        Some(key) => key.clone(),
        None => read_or_create_secret(&data_dir.join("key-encryption-key"))?,
    };
    // Each service reads its own OMS_* variables as its binary would;
    // the flags and secrets of `oms up` decide the rest.
    let mut customer_settings: customer_svc::Settings = service_from_env("customer-svc")?;
    customer_settings.common = common.clone();
    customer_settings.admin_email = args.admin_email.clone();
    customer_settings.admin_password = Some(admin_password.clone());
    customer_settings.key_encryption_key = Some(key_encryption_key.clone());
    customer_settings.http_addr = local(args.customer_port);
    customer_settings.database_url = url_for("customer");
    let customer = customer_svc::build(customer_settings)
        .await
        .context("customer-svc did not start")?;
    common.jwks_url = format!("{}/.well-known/jwks.json", System::url(&customer));
    let inventory = inventory_svc::build(inventory_svc::Settings {
        http_addr: local(args.inventory_port),
        database_url: url_for("inventory"),
        common: common.clone(),
        ..service_from_env("inventory-svc")?
    })
    .await
    .context("inventory-svc did not start")?;
    let order = order_svc::build(order_svc::Settings {
        http_addr: local(args.order_port),
        database_url: url_for("order"),
        common,
        ..service_from_env("order-svc")?
    })
    .await
    .context("order-svc did not start")?;

    let http = reqwest::Client::new();
    let signed_in = http
        .post(format!("{}/auth/token", System::url(&customer)))
        .json(&json!({"email": args.admin_email, "password": admin_password}))
        .send()
        .await?;
    let admin_token = if signed_in.status().is_success() {
        let token: Value = signed_in.json().await?;
        Some(
            token["access_token"]
                .as_str()
                .context("no token in the answer")?
                .to_owned(),
        )
    } else {
        say!(
            "the admin account {} refused the password oms up knows ({}): it was changed \
             since; sign in with the new one (`oms admin reset-password` if it is lost)",
            args.admin_email,
            signed_in.status()
        );
        None
    };
    let system = System {
        order,
        inventory,
        customer,
        kafka_bootstrap,
        broker,
        admin_token,
        admin_password_file,
        data_dir,
        postgres: database_urls.is_some(),
        database_names: database_urls
            .iter()
            .flatten()
            .map(|(service, _)| format!("{}{service}", args.database_prefix))
            .collect(),
        _data_dir_lock: data_dir_lock,
    };
    if args.demo {
        let token = system
            .admin_token
            .clone()
            .context("--demo needs the admin's token, and the admin refused its password")?;
        demo(&http, &system, &token)
            .await
            .context("creating the demo data")?;
    }
    Ok(system)
}

/// One database per service on the PostgreSQL server at `server`, created
/// when missing: `<prefix>order`, `<prefix>inventory`, `<prefix>customer`
/// (`oms_order`, … by default).
async fn create_databases(server: &str, prefix: &str) -> anyhow::Result<Vec<(String, String)>> {
    anyhow::ensure!(
        !prefix.is_empty()
            && prefix
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'),
        "--database-prefix must be lower-case letters, digits and underscores, not {prefix:?}"
    );
    // The driver's error already names its cause (unreachable, refused
    // password, a certificate that does not verify): one line, no chain.
    let admin = Database::connect(server).await.map_err(|e| {
        anyhow::anyhow!(
            "cannot connect to the PostgreSQL server at {}: {e}",
            service_kit::database::redact(server)
        )
    })?;
    let mut urls = Vec::new();
    for service in ["order", "inventory", "customer"] {
        let name = format!("{prefix}{service}");
        let exists = admin
            .query_one_raw(Statement::from_sql_and_values(
                DbBackend::Postgres,
                "SELECT 1 AS present FROM pg_database WHERE datname = $1",
                [name.clone().into()],
            ))
            .await?
            .is_some();
        if !exists {
            admin
                .execute_unprepared(&format!("CREATE DATABASE \"{name}\""))
                .await?;
        }
        urls.push((service.to_owned(), with_database(server, &name)));
    }
    admin.close().await?;
    Ok(urls)
}

/// `url` with its database name replaced by `name`.
pub fn with_database(url: &str, name: &str) -> String {
    let (base, query) = url
        .split_once('?')
        .map_or((url, None), |(b, q)| (b, Some(q)));
    let authority_end = base.find("://").map_or(0, |i| i + 3);
    let path_start = base[authority_end..]
        .find('/')
        .map_or(base.len(), |i| authority_end + i);
    let mut result = format!("{}/{}", &base[..path_start], name);
    if let Some(query) = query {
        result.push('?');
        result.push_str(query);
    }
    result
}

/// The demo customers: email, name, password.
pub const DEMO_CUSTOMERS: [(&str, &str, &str); 2] = [
    ("ada@example.com", "Ada Lovelace", "correct horse battery"),
    ("grace@example.com", "Grace Hopper", "correct horse battery"),
];

/// The demo products: sku, name, unit price in cents, stock.
pub const DEMO_PRODUCTS: [(&str, &str, i64, i64); 3] = [
    ("BOOK-1", "Notes on the Analytical Engine", 1999, 100),
    ("PEN-1", "Fountain pen", 250, 500),
    ("MUG-1", "Difference engine mug", 990, 50),
];

/// Creates the demo products and customers; those that exist are kept.
async fn demo(http: &reqwest::Client, system: &System, admin_token: &str) -> anyhow::Result<()> {
    for (sku, name, price, stock) in DEMO_PRODUCTS {
        let response = http
            .post(format!("{}/products", System::url(&system.inventory)))
            .bearer_auth(admin_token)
            .json(&json!({"sku": sku, "name": name, "unit_price": {"amount_minor": price, "currency": "EUR"}, "initial_stock": stock}))
            .send()
            .await?;
        anyhow::ensure!(
            response.status().is_success() || response.status() == 409,
            "product {sku}: {}",
            response.status()
        );
    }
    for (email, name, password) in DEMO_CUSTOMERS {
        let response = http
            .post(format!("{}/customers", System::url(&system.customer)))
            .json(&json!({"email": email, "name": name, "password": password}))
            .send()
            .await?;
        anyhow::ensure!(
            response.status().is_success() || response.status() == 409,
            "customer {email}: {}",
            response.status()
        );
    }
    Ok(())
}

/// `oms up`: start, print where everything is, run until Ctrl-C or SIGTERM, stop.
///
/// # Errors
/// When the system cannot start or stops with an error.
pub async fn run(args: UpArgs) -> anyhow::Result<()> {
    let _telemetry = service_kit::telemetry::init_with_default_filter(
        "oms",
        service_kit::settings::LogFormat::Pretty,
        // librdkafka warns while a fresh broker loads its coordinators.
        "warn,librdkafka=error",
    )?;
    // Ctrl-C stops a start that waits (for a broker that cannot be
    // reached, say) as it stops the running system.
    let stop = CancellationToken::new();
    service_kit::shutdown::cancel_on_signal(stop.clone());
    let system = tokio::select! {
        started = start(&args) => started?,
        _ = stop.cancelled() => {
            say!("stopped before the system was up");
            return Ok(());
        }
    };
    let databases = if system.postgres {
        format!("PostgreSQL databases {}", system.database_names.join(", "))
    } else {
        format!("SQLite files in {}", system.data_dir.display())
    };
    let password = match &system.admin_password_file {
        Some(file) => format!(
            "  admin password {} (kept in {})\n",
            std::fs::read_to_string(file)?.trim(),
            file.display()
        ),
        None => String::new(),
    };
    let token = match &system.admin_token {
        Some(token) => format!(
            "  export OMS_ADMIN_TOKEN={token}\n\n  (valid for 15 minutes; POST {customer}/auth/token gives a new one)\n",
            customer = System::url(&system.customer)
        ),
        None => format!(
            "  (no admin token: the admin's password changed; POST {}/auth/token with it)\n",
            System::url(&system.customer)
        ),
    };
    // Standard output, for the addresses; closed, it is ignored like `say!`.
    let _ = writeln!(
        std::io::stdout(),
        "\nOMS is up.\n\n  order-svc      {order}   docs {order}/docs\n  inventory-svc  {inventory}   docs {inventory}/docs\n  customer-svc   {customer}   docs {customer}/docs\n  Kafka          {kafka}\n  databases      {databases}\n  admin          {email}\n{password}\n{token}  Try: curl -s {order}/orders -H \"authorization: Bearer $OMS_ADMIN_TOKEN\"\n\n  Ctrl-C stops everything.\n",
        order = System::url(&system.order),
        inventory = System::url(&system.inventory),
        customer = System::url(&system.customer),
        kafka = system.kafka_bootstrap,
        email = args.admin_email,
    );
    let (order, inventory, customer) = (
        system.order.shutdown_token(),
        system.inventory.shutdown_token(),
        system.customer.shutdown_token(),
    );
    tokio::select! {
        _ = stop.cancelled() => {}
        _ = order.cancelled() => say!("order-svc stopped; stopping everything"),
        _ = inventory.cancelled() => say!("inventory-svc stopped; stopping everything"),
        _ = customer.cancelled() => say!("customer-svc stopped; stopping everything"),
    }
    say!("stopping: services first (offsets committed), then Kafka");
    system.stop().await?;
    say!("stopped");
    Ok(())
}

/// A service's settings from the `OMS_*` environment alone, each unset
/// variable at its documented default, as the service's binary reads them.
///
/// # Errors
/// A variable whose value does not parse, in one line naming it.
fn service_from_env<S: clap::Parser>(service: &str) -> anyhow::Result<S> {
    S::try_parse_from([service]).map_err(|error| anyhow::anyhow!("{}", error.to_string().trim()))
}

#[cfg(test)]
mod tests {
    use super::with_database;

    #[test]
    fn database_names_are_replaced() {
        assert_eq!(
            with_database("postgres://u:p@h:5432/postgres", "oms_order"),
            "postgres://u:p@h:5432/oms_order"
        );
        assert_eq!(
            with_database("postgres://h/x?sslmode=disable", "y"),
            "postgres://h/y?sslmode=disable"
        );
    }
}
