//! Configuration shared by every service, from `OMS_*` environment variables
//! or the equivalent flags (`--help` lists both with their defaults):
//! [`CommonSettings`] (Kafka, topics, databases, the HTTP server's limits,
//! retention, logs), and [`service_settings!`](crate::service_settings),
//! which declares a service's `Settings` around them with the service's
//! own address and database URL (`OMS_ORDER_HTTP_ADDR`,
//! `OMS_ORDER_DATABASE_URL`, …).
//!
//! Every variable, its default, the binaries that read it and its help are
//! in `docs/configuration.md`, generated from these definitions by
//! `oms config-reference` (a test keeps it current). Besides them, any
//! librdkafka property is `OMS_KAFKA_<PROPERTY>` (a property librdkafka
//! refuses stops the start at once, in one line naming it), and secrets
//! may come from files ([`crate::secrets`]).

use std::net::SocketAddr;
use std::path::PathBuf;

use event_runtime::kafka::{ConfigurationError, DEFAULT_DEAD_LETTER_RETENTION_HOURS};
use event_runtime::{KafkaSettings, RetentionSettings};
use events::TopicNames;

use crate::database::{DatabaseSettings, SqliteDurability};

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable, for terminals.
    #[default]
    Pretty,
    /// One JSON object per line, for log collectors.
    Json,
}

/// Settings every service shares.
#[derive(Debug, Clone, clap::Args)]
pub struct CommonSettings {
    /// Kafka bootstrap servers (host:port, comma-separated).
    #[arg(long, env = "OMS_KAFKA_BOOTSTRAP", default_value = "127.0.0.1:9092")]
    pub kafka_bootstrap: String,
    /// Prefix of every topic and consumer group name.
    #[arg(long, env = "OMS_TOPIC_PREFIX", default_value = "")]
    pub topic_prefix: String,
    /// Partitions of the topics a service creates.
    #[arg(long, env = "OMS_TOPIC_PARTITIONS", default_value_t = 6)]
    pub topic_partitions: i32,
    /// Replication factor of the topics a service creates (default: the
    /// cluster's brokers, at most 3).
    #[arg(long, env = "OMS_TOPIC_REPLICATION_FACTOR")]
    pub topic_replication_factor: Option<i32>,
    /// `min.insync.replicas` of the topics a service creates (default: 2
    /// from 3 replicas on, else 1).
    ///
    /// Producers write with `acks=all`, so a record counts as written once
    /// this many replicas hold it, and one broker of three may be down
    /// without stopping writes.
    #[arg(long, env = "OMS_TOPIC_MIN_INSYNC_REPLICAS")]
    pub topic_min_insync_replicas: Option<i32>,
    /// Folder of the SQLite databases used when no database URL is given.
    #[arg(long, env = "OMS_DATA_DIR", default_value = "data")]
    pub data_dir: PathBuf,
    /// Connection pool size per service.
    ///
    /// The connections are opened at start, so a burst of requests never
    /// waits for new logins.
    #[arg(long, env = "OMS_DATABASE_MAX_CONNECTIONS", default_value_t = 10)]
    pub database_max_connections: u32,
    /// SQLite durability: `full` (every commit reaches the disk before it is
    /// acknowledged) or `normal` (faster; a power cut may lose the last commits).
    #[arg(long, env = "OMS_SQLITE_SYNCHRONOUS", value_enum, default_value_t = SqliteDurability::Full)]
    pub sqlite_synchronous: SqliteDurability,
    /// How long a SQLite writer waits for the write lock, in milliseconds.
    #[arg(long, env = "OMS_SQLITE_BUSY_TIMEOUT_MS", default_value_t = 5000)]
    pub sqlite_busy_timeout_ms: u64,
    /// Largest accepted HTTP request body, in bytes.
    #[arg(long, env = "OMS_HTTP_BODY_LIMIT_BYTES", default_value_t = 64 * 1024)]
    pub http_body_limit_bytes: usize,
    /// Log line format.
    #[arg(long, env = "OMS_LOG_FORMAT", value_enum, default_value_t = LogFormat::Pretty)]
    pub log_format: LogFormat,
    /// Where the keys that sign access tokens are published (customer-svc).
    #[arg(long, env = "OMS_JWKS_URL", default_value = DEFAULT_JWKS_URL)]
    pub jwks_url: String,
    /// Seconds between two loads of the published keys by a verifier: a
    /// retired key is refused at most this long after it is unpublished.
    #[arg(long, env = "OMS_JWKS_REFRESH_SECS", default_value_t = 60)]
    pub jwks_refresh_secs: u64,
    /// Seconds a client has to send a request's headers; a slower one
    /// (slowloris) is disconnected.
    #[arg(long, env = "OMS_HTTP_HEADER_TIMEOUT_SECS", default_value_t = 10)]
    pub http_header_timeout_secs: u64,
    /// Seconds a request may take before it is answered 408.
    #[arg(long, env = "OMS_HTTP_REQUEST_TIMEOUT_SECS", default_value_t = 30)]
    pub http_request_timeout_secs: u64,
    /// Open HTTP connections at most, per service; further clients wait in
    /// the listen backlog.
    #[arg(long, env = "OMS_HTTP_MAX_CONNECTIONS", default_value_t = 1024)]
    pub http_max_connections: usize,
    /// Open HTTP connections from one client address at most (ignored
    /// behind a proxy, `OMS_CLIENT_IP_HEADER`: every connection is the
    /// proxy's).
    ///
    /// See "Running it safely" in docs/production.md.
    #[arg(
        long,
        env = "OMS_HTTP_MAX_CONNECTIONS_PER_ADDRESS",
        default_value_t = 64
    )]
    pub http_max_connections_per_address: usize,
    /// Seconds a connection stays open with no request in flight.
    #[arg(long, env = "OMS_HTTP_IDLE_TIMEOUT_SECS", default_value_t = 60)]
    pub http_idle_timeout_secs: u64,
    /// Concurrent requests on one HTTP/2 connection at most.
    #[arg(long, env = "OMS_HTTP2_MAX_CONCURRENT_STREAMS", default_value_t = 64)]
    pub http2_max_concurrent_streams: u32,
    /// The header a trusted reverse proxy puts the client's address in
    /// (`x-forwarded-for`: its last entry; `x-real-ip`) (default: none, the
    /// peer address counts). Set it only behind a proxy that overwrites the
    /// header.
    #[arg(long, env = "OMS_CLIENT_IP_HEADER")]
    pub client_ip_header: Option<String>,
    /// Hours an applied event's inbox row is kept (its de-duplication
    /// record), for a consumer that keeps an inbox; the saga and its
    /// participants decide by their own records instead and write none.
    /// Keep it longer than the topics' retention (7 days).
    #[arg(long, env = "OMS_INBOX_RETENTION_HOURS", default_value_t = 192)]
    pub inbox_retention_hours: u64,
    /// Hours a published outbox row is kept, for operators; 0 deletes each
    /// row as soon as the broker acknowledged it (the record itself is on
    /// its topic: `oms events`, `oms tail`), which spares the database a
    /// second write of every row.
    #[arg(long, env = "OMS_OUTBOX_RETENTION_HOURS", default_value_t = 0)]
    pub outbox_retention_hours: u64,
    /// Seconds a consumer may spend on one batch (retries included), or
    /// the outbox relay publish nothing while rows wait, before readiness
    /// reports it stuck.
    ///
    /// `/readyz` then answers 503 naming it.
    #[arg(long, env = "OMS_STALL_AFTER_SECS", default_value_t = 60)]
    pub stall_after_secs: u64,
    /// Hours the broker keeps dead letters (720: 30 days): the
    /// `retention.ms` of every dead-letter topic, set when a service starts.
    ///
    /// `oms dlq list` shows it.
    #[arg(long, env = "OMS_DLQ_RETENTION_HOURS", default_value_t = DEFAULT_DEAD_LETTER_RETENTION_HOURS)]
    pub dlq_retention_hours: u64,
}

/// Default of `OMS_JWKS_URL`: customer-svc on its default port.
pub const DEFAULT_JWKS_URL: &str = "http://127.0.0.1:8082/.well-known/jwks.json";

impl CommonSettings {
    /// Defaults for a local broker at `kafka_bootstrap`, as tests and
    /// embedding programs want them.
    pub fn local(kafka_bootstrap: impl Into<String>) -> Self {
        Self {
            kafka_bootstrap: kafka_bootstrap.into(),
            topic_prefix: String::new(),
            topic_partitions: 6,
            topic_replication_factor: None,
            topic_min_insync_replicas: None,
            data_dir: PathBuf::from("data"),
            database_max_connections: 10,
            sqlite_synchronous: SqliteDurability::Full,
            sqlite_busy_timeout_ms: 5000,
            http_body_limit_bytes: 64 * 1024,
            log_format: LogFormat::Pretty,
            jwks_url: DEFAULT_JWKS_URL.to_owned(),
            jwks_refresh_secs: 60,
            inbox_retention_hours: 192,
            outbox_retention_hours: 0,
            stall_after_secs: 60,
            dlq_retention_hours: DEFAULT_DEAD_LETTER_RETENTION_HOURS,
            http_header_timeout_secs: 10,
            http_request_timeout_secs: 30,
            http_max_connections: 1024,
            http_max_connections_per_address: 64,
            http_idle_timeout_secs: 60,
            http2_max_concurrent_streams: 64,
            client_ip_header: None,
        }
    }

    /// How often a verifier reloads the published keys (at least a second).
    pub fn jwks_refresh(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.jwks_refresh_secs.max(1))
    }

    /// The settings of the `OMS_*` environment variables alone, each
    /// unset one at its documented default: what a program with flags of
    /// its own (`oms up`) starts from, so that it honours every variable
    /// the way the services do.
    ///
    /// # Errors
    /// A variable whose value does not parse, in one line naming it.
    pub fn from_env() -> anyhow::Result<Self> {
        #[derive(clap::Parser)]
        struct FromEnv {
            #[command(flatten)]
            common: CommonSettings,
        }
        <FromEnv as clap::Parser>::try_parse_from(["oms"])
            .map(|parsed| parsed.common)
            .map_err(|error| anyhow::anyhow!("{}", error.to_string().trim()))
    }

    /// The HTTP server's limits.
    pub fn server_limits(&self) -> crate::server::ServerLimits {
        crate::server::ServerLimits {
            header_read_timeout: std::time::Duration::from_secs(self.http_header_timeout_secs),
            request_timeout: std::time::Duration::from_secs(self.http_request_timeout_secs),
            max_connections: self.http_max_connections,
            // Behind a proxy every connection comes from the proxy.
            max_connections_per_address: if self.client_ip_header.is_some() {
                self.http_max_connections
            } else {
                self.http_max_connections_per_address
            },
            idle_timeout: std::time::Duration::from_secs(self.http_idle_timeout_secs),
            http2_max_concurrent_streams: self.http2_max_concurrent_streams,
        }
    }

    /// How long a consumer or the relay may make no progress before
    /// readiness reports it.
    pub fn stall_after(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.stall_after_secs)
    }

    /// The retention part.
    pub fn retention(&self) -> RetentionSettings {
        let hours = |h: u64| std::time::Duration::from_secs(h.saturating_mul(3600));
        RetentionSettings {
            inbox: hours(self.inbox_retention_hours),
            outbox: hours(self.outbox_retention_hours),
            ..RetentionSettings::default()
        }
    }

    /// The database part.
    pub fn database(&self) -> DatabaseSettings {
        DatabaseSettings {
            max_connections: self.database_max_connections,
            sqlite_busy_timeout: std::time::Duration::from_millis(self.sqlite_busy_timeout_ms),
            sqlite_durability: self.sqlite_synchronous,
        }
    }

    /// How long the broker keeps dead letters.
    pub fn dead_letter_retention(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.dlq_retention_hours.saturating_mul(3600))
    }

    /// [`kafka`](Self::kafka), checked as a service checks it at start: every
    /// `OMS_KAFKA_*_FILE` readable, no property set twice, and a client
    /// configuration librdkafka accepts.
    ///
    /// # Errors
    /// A [`ConfigurationError`] naming the property and its variable.
    pub fn checked_kafka(&self) -> Result<KafkaSettings, ConfigurationError> {
        let mut kafka = self.kafka();
        kafka.client_properties = KafkaSettings::checked_properties_from_env(std::env::vars())?;
        kafka.validate()?;
        Ok(kafka)
    }

    /// The Kafka part.
    pub fn kafka(&self) -> KafkaSettings {
        KafkaSettings {
            bootstrap_servers: self.kafka_bootstrap.clone(),
            topics: TopicNames::new(self.topic_prefix.clone()),
            partitions: self.topic_partitions,
            replication_factor: self.topic_replication_factor,
            min_insync_replicas: self.topic_min_insync_replicas,
            client_properties: KafkaSettings::properties_from_env(std::env::vars()),
        }
    }
}

/// Where one service listens and keeps its state.
#[derive(Debug, Clone)]
pub struct ServiceSettings {
    /// Service name, e.g. `order-svc`: the events' `producer`, the consumer
    /// group, the SQLite file name.
    pub name: &'static str,
    /// HTTP listen address; port 0 picks a free port.
    pub http_addr: SocketAddr,
    /// Database URL (`postgres://…` or `sqlite://…`); `None` means
    /// `sqlite://<data_dir>/<name>.sqlite`.
    pub database_url: Option<String>,
    /// The shared settings.
    pub common: CommonSettings,
}

impl ServiceSettings {
    /// The database URL to connect to.
    pub fn database_url(&self) -> String {
        self.database_url.clone().unwrap_or_else(|| {
            format!(
                "sqlite://{}/{}.sqlite?mode=rwc",
                self.common.data_dir.display(),
                self.name
            )
        })
    }
}

/// Declares a service's `Settings`: what every service has (its HTTP
/// address `<PREFIX>_HTTP_ADDR`, its database URL `<PREFIX>_DATABASE_URL`,
/// [`CommonSettings`] and a [`Clock`](crate::Clock)), then the service's
/// own fields as written, with `read_secret_files` and `service()`.
///
/// The prefix is written once, so a service cannot name its address one way
/// and its database another; the variables stay `OMS_ORDER_HTTP_ADDR`,
/// `OMS_ORDER_DATABASE_URL` and so on. Secrets besides the database URL
/// that may come from a file (`<VARIABLE>_FILE`, see [`crate::secrets`])
/// are listed after the struct as `secret_files: field = "VARIABLE", …;`.
///
/// ```
/// service_kit::service_settings! {
///     /// Everything the example service can be configured with.
///     #[command(name = "example-svc", version)]
///     pub struct Settings for "example-svc", "OMS_EXAMPLE" on "127.0.0.1:8099" {
///         /// A token.
///         #[arg(long, env = "OMS_EXAMPLE_TOKEN", hide_env_values = true)]
///         pub token: Option<String>,
///     }
///     secret_files: token = "OMS_EXAMPLE_TOKEN";
/// }
/// let settings = <Settings as clap::Parser>::parse_from(["example-svc"]);
/// assert_eq!(settings.service().http_addr.port(), 8099);
/// ```
#[macro_export]
macro_rules! service_settings {
    (
        $(#[$meta:meta])*
        pub struct $settings:ident for $service:expr, $prefix:literal on $default_addr:literal {
            $(
                $(#[$field_meta:meta])*
                pub $field:ident: $field_type:ty,
            )*
        }
        $(secret_files: $($secret:ident = $secret_variable:literal),+ ;)?
    ) => {
        #[derive(Debug, Clone, clap::Parser)]
        $(#[$meta])*
        pub struct $settings {
            /// HTTP listen address.
            #[arg(long, env = concat!($prefix, "_HTTP_ADDR"), default_value = $default_addr)]
            pub http_addr: ::std::net::SocketAddr,
            /// Database URL, postgres://… or sqlite://… (default: a SQLite file in the data directory).
            ///
            /// That file is `<OMS_DATA_DIR>/<service>.sqlite` (`data/order-svc.sqlite`);
            /// in production, `postgres://…`.
            #[arg(long, env = concat!($prefix, "_DATABASE_URL"), hide_env_values = true)]
            pub database_url: Option<String>,
            $(
                $(#[$field_meta])*
                pub $field: $field_type,
            )*
            /// Settings shared by every service.
            #[command(flatten)]
            pub common: $crate::CommonSettings,
            /// Where the service reads the time (deadlines, holds,
            /// lock-outs): the system clock, unless a test injects a
            /// manual one.
            #[arg(skip)]
            pub clock: $crate::Clock,
        }

        impl $settings {
            /// The variables whose value may instead come from a file named
            /// by `<VARIABLE>_FILE` ([`read_secret_files`](Self::read_secret_files)).
            pub const SECRET_VARIABLES: &'static [&'static str] = &[
                concat!($prefix, "_DATABASE_URL"),
                $($($secret_variable,)+)?
            ];

            #[doc = concat!(
                "Reads the secrets given as files (`", $prefix, "_DATABASE_URL_FILE`",
                $($(", `", $secret_variable, "_FILE`",)+)?
                ") into their settings: see [`service_kit::secrets`].\n\n",
                "# Errors\n",
                "A secret given both directly and as a file, or a file that cannot ",
                "be read or is empty."
            )]
            pub fn read_secret_files(
                &mut self,
            ) -> ::std::result::Result<(), $crate::secrets::SecretError> {
                $crate::secrets::read_file(&mut self.database_url, concat!($prefix, "_DATABASE_URL"))?;
                $($(
                    $crate::secrets::read_file(&mut self.$secret, $secret_variable)?;
                )+)?
                Ok(())
            }

            /// The kit's view of these settings.
            pub fn service(&self) -> $crate::ServiceSettings {
                $crate::ServiceSettings {
                    name: $service,
                    http_addr: self.http_addr,
                    database_url: self.database_url.clone(),
                    common: self.common.clone(),
                }
            }
        }
    };
}
