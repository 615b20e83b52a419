//! order-svc's settings: its own address and database, the saga deadline and idempotency window
//! (`OMS_ORDER_HTTP_ADDR`, `OMS_ORDER_DATABASE_URL`, …), plus the shared ones
//! (see [`service_kit::settings`]). Every variable with its default and
//! help is in `docs/configuration.md`, generated from these definitions
//! by `oms config-reference`.

use service_kit::service_settings;

/// The service's name: the `producer` of its events and its consumer groups' stem.
pub const SERVICE_NAME: &str = "order-svc";

service_settings! {
    /// Everything order-svc can be configured with.
    #[command(name = "order-svc", version, about = "OMS order service: the HTTP edge for orders and the saga")]
    pub struct Settings for SERVICE_NAME, "OMS_ORDER" on "127.0.0.1:8080" {
        /// Seconds after placement when a still-PENDING order is cancelled.
        ///
        /// Its `OrderPlaced` carries the deadline; the participants use
        /// their own `OMS_SAGA_DEADLINE_SECS` only for a version-1 record,
        /// which has none.
        #[arg(long, env = "OMS_SAGA_DEADLINE_SECS", default_value_t = 30)]
        pub saga_deadline_secs: u64,
        /// Seconds an `Idempotency-Key` is remembered.
        #[arg(long, env = "OMS_IDEMPOTENCY_TTL_SECS", default_value_t = 86_400)]
        pub idempotency_ttl_secs: u64,
        /// Most orders in the saga (PENDING) before placing answers 503
        /// `OVERLOADED`; 0 sets the bound from what the saga decides: the
        /// orders decided per second over the last 3 s times a quarter of
        /// the saga deadline, at least 2,000.
        #[arg(long, env = "OMS_MAX_PENDING_ORDERS", default_value_t = 0)]
        pub max_pending_orders: u64,
    }
}
