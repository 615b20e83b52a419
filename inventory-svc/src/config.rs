//! inventory-svc's settings: its own address and database, plus the shared ones
//! (see [`service_kit::settings`]).
//!
//! | variable | default |
//! |---|---|
//! | `OMS_INVENTORY_HTTP_ADDR` | `127.0.0.1:8081` |
//! | `OMS_INVENTORY_DATABASE_URL` | `sqlite://<OMS_DATA_DIR>/inventory-svc.sqlite` |
//! | `OMS_HOLD_GRACE_SECS` | `300`: a reservation still undecided this long after its order's deadline is released |
//! | `OMS_SAGA_DEADLINE_SECS` | `30`: the deadline of an order whose OrderPlaced (version 1) names none, after its `occurred_at` |
//! | `OMS_INVENTORY_DATABASE_URL_FILE` | (unset): a file holding the secret of the same name without `_FILE` (Docker or Kubernetes secrets), instead of that variable |

use std::net::SocketAddr;

use service_kit::holds::HoldSettings;
use service_kit::{Clock, CommonSettings, ServiceSettings};

/// Everything inventory-svc can be configured with.
#[derive(Debug, Clone, clap::Parser)]
#[command(
    name = "inventory-svc",
    version,
    about = "OMS inventory service: catalog, stock and per-order reservations"
)]
pub struct Settings {
    /// HTTP listen address.
    #[arg(
        long,
        env = "OMS_INVENTORY_HTTP_ADDR",
        default_value = "127.0.0.1:8081"
    )]
    pub http_addr: SocketAddr,
    /// Database URL (postgres://… or sqlite://…); default: a SQLite file in the data directory.
    #[arg(long, env = "OMS_INVENTORY_DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// When a reservation nobody decides expires.
    #[command(flatten)]
    pub holds: HoldSettings,
    /// Settings shared by every service.
    #[command(flatten)]
    pub common: CommonSettings,
    /// Where hold expiry reads the time: the system clock, unless a test
    /// injects a manual one.
    #[arg(skip)]
    pub clock: Clock,
}

impl Settings {
    /// Reads the secrets given as files (`OMS_INVENTORY_DATABASE_URL_FILE`) into
    /// their settings: see [`service_kit::secrets`].
    ///
    /// # Errors
    /// A secret given both directly and as a file, or a file that cannot
    /// be read or is empty.
    pub fn read_secret_files(&mut self) -> Result<(), service_kit::secrets::SecretError> {
        service_kit::secrets::read_file(&mut self.database_url, "OMS_INVENTORY_DATABASE_URL")?;
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
