//! inventory-svc's settings: its own address and database and hold expiry
//! (`OMS_INVENTORY_HTTP_ADDR`, `OMS_INVENTORY_DATABASE_URL`, …), plus the shared ones
//! (see [`service_kit::settings`]). Every variable with its default and
//! help is in `docs/configuration.md`, generated from these definitions
//! by `oms config-reference`.

use service_kit::holds::HoldSettings;
use service_kit::service_settings;

/// The service's name: the `producer` of its events and its consumer groups' stem.
pub const SERVICE_NAME: &str = "inventory-svc";

service_settings! {
    /// Everything inventory-svc can be configured with.
    #[command(name = "inventory-svc", version, about = "OMS inventory service: catalog, stock and per-order reservations")]
    pub struct Settings for SERVICE_NAME, "OMS_INVENTORY" on "127.0.0.1:8081" {
        /// When a reservation nobody decides expires.
        #[command(flatten)]
        pub holds: HoldSettings,
    }
}
