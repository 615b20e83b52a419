//! order-svc's settings: its own address and database, plus the shared ones
//! (see [`service_kit::settings`]).
//!
//! | variable | default |
//! |---|---|
//! | `OMS_ORDER_HTTP_ADDR` | `127.0.0.1:8080` |
//! | `OMS_ORDER_DATABASE_URL` | `sqlite://<OMS_DATA_DIR>/order-svc.sqlite` |
//! | `OMS_SAGA_DEADLINE_SECS` | `30`: a PENDING order is cancelled this long after placement |
//! | `OMS_IDEMPOTENCY_TTL_SECS` | `86400`: how long an `Idempotency-Key` is remembered |
//! | `OMS_ORDER_DATABASE_URL_FILE` | (unset): a file holding the secret of the same name without `_FILE` (Docker or Kubernetes secrets), instead of that variable |

use std::net::SocketAddr;

use service_kit::{Clock, CommonSettings, ServiceSettings};

/// Everything order-svc can be configured with.
#[derive(Debug, Clone, clap::Parser)]
#[command(
    name = "order-svc",
    version,
    about = "OMS order service: the HTTP edge for orders and the saga"
)]
pub struct Settings {
    /// HTTP listen address.
    #[arg(long, env = "OMS_ORDER_HTTP_ADDR", default_value = "127.0.0.1:8080")]
    pub http_addr: SocketAddr,
    /// Database URL (postgres://… or sqlite://…); default: a SQLite file in the data directory.
    #[arg(long, env = "OMS_ORDER_DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// Seconds after placement when a still-PENDING order is cancelled.
    #[arg(long, env = "OMS_SAGA_DEADLINE_SECS", default_value_t = 30)]
    pub saga_deadline_secs: u64,
    /// Seconds an `Idempotency-Key` is remembered.
    #[arg(long, env = "OMS_IDEMPOTENCY_TTL_SECS", default_value_t = 86_400)]
    pub idempotency_ttl_secs: u64,
    /// Settings shared by every service.
    #[command(flatten)]
    pub common: CommonSettings,
    /// Where the service reads the time: the system clock, unless a test
    /// injects a manual one to drive saga deadlines.
    #[arg(skip)]
    pub clock: Clock,
}

impl Settings {
    /// Reads the secrets given as files (`OMS_ORDER_DATABASE_URL_FILE`) into
    /// their settings: see [`service_kit::secrets`].
    ///
    /// # Errors
    /// A secret given both directly and as a file, or a file that cannot
    /// be read or is empty.
    pub fn read_secret_files(&mut self) -> Result<(), service_kit::secrets::SecretError> {
        service_kit::secrets::read_file(&mut self.database_url, "OMS_ORDER_DATABASE_URL")?;
        Ok(())
    }

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
