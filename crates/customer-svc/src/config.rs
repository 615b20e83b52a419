//! customer-svc's settings: its own address and database, plus the shared ones
//! (see [`service_kit::settings`]).
//!
//! | variable | default |
//! |---|---|
//! | `OMS_CUSTOMER_HTTP_ADDR` | `127.0.0.1:8082` |
//! | `OMS_CUSTOMER_DATABASE_URL` | `sqlite://<OMS_DATA_DIR>/customer-svc.sqlite` |
//! | `OMS_ADMIN_EMAIL` | `admin@oms.local` |
//! | `OMS_ADMIN_PASSWORD` | `admin-change-me` (a warning is logged while it is the default) |
//! | `OMS_TOKEN_TTL_SECS` | `900` (15 minutes) |
//! | `OMS_DEFAULT_CREDIT_LIMIT_MINOR` | `100000` (1,000.00 in the credit currency) |
//! | `OMS_CREDIT_CURRENCY` | `EUR` |
//! | `OMS_DEV_MODE` | `false`; `true` prints a ready-to-use admin token at start-up |

use std::net::SocketAddr;

use service_kit::{CommonSettings, ServiceSettings};

/// Everything customer-svc can be configured with.
#[derive(Debug, Clone, clap::Parser)]
#[command(
    name = "customer-svc",
    version,
    about = "OMS customer service: customers, credit and authentication"
)]
pub struct Settings {
    /// HTTP listen address.
    #[arg(long, env = "OMS_CUSTOMER_HTTP_ADDR", default_value = "127.0.0.1:8082")]
    pub http_addr: SocketAddr,
    /// Database URL (postgres://… or sqlite://…); default: a SQLite file in the data directory.
    #[arg(long, env = "OMS_CUSTOMER_DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// Email of the admin account made (or repaired) at start-up.
    #[arg(long, env = "OMS_ADMIN_EMAIL", default_value = "admin@oms.local")]
    pub admin_email: String,
    /// Its password.
    #[arg(long, env = "OMS_ADMIN_PASSWORD", default_value = DEFAULT_ADMIN_PASSWORD, hide_default_value = true, hide_env_values = true)]
    pub admin_password: String,
    /// Lifetime of access tokens, in seconds.
    #[arg(long, env = "OMS_TOKEN_TTL_SECS", default_value_t = 900)]
    pub token_ttl_secs: u64,
    /// Credit limit of customers who register themselves, in minor units.
    #[arg(
        long,
        env = "OMS_DEFAULT_CREDIT_LIMIT_MINOR",
        default_value_t = 100_000
    )]
    pub default_credit_limit_minor: i64,
    /// Currency of credit lines (ISO 4217).
    #[arg(long, env = "OMS_CREDIT_CURRENCY", default_value = "EUR")]
    pub credit_currency: String,
    /// Print a ready-to-use admin token at start-up.
    #[arg(long, env = "OMS_DEV_MODE", default_value_t = false)]
    pub dev_mode: bool,
    /// Settings shared by every service.
    #[command(flatten)]
    pub common: CommonSettings,
}

/// The admin password used when `OMS_ADMIN_PASSWORD` is not set.
pub const DEFAULT_ADMIN_PASSWORD: &str = "admin-change-me";

impl Settings {
    /// The kit's view of these settings.
    pub fn service(&self) -> ServiceSettings {
        ServiceSettings {
            name: crate::SERVICE_NAME,
            http_addr: self.http_addr,
            database_url: self.database_url.clone(),
            common: self.common.clone(),
        }
    }
}
