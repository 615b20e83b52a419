//! How long a saga participant (inventory-svc's stock, customer-svc's
//! credit) keeps a hold that no order decision ever releases.
//!
//! | variable | default | meaning |
//! |---|---|---|
//! | `OMS_HOLD_GRACE_SECS` | `300` | a hold still undecided this long after its order's deadline is released (`HOLD_EXPIRED`) |
//! | `OMS_SAGA_DEADLINE_SECS` | `30` | the deadline of an order whose `OrderPlaced` (version 1) carries none: its `occurred_at` plus this; the same variable order-svc sets its deadlines by |

use std::time::Duration;

/// The participants' hold expiry settings.
#[derive(Debug, Clone, clap::Args)]
pub struct HoldSettings {
    /// Seconds after an order's deadline when a hold nobody decided is
    /// released.
    #[arg(long, env = "OMS_HOLD_GRACE_SECS", default_value_t = 300)]
    pub hold_grace_secs: u64,
    /// Seconds after placement of an order's deadline, for OrderPlaced
    /// records (version 1) that carry none.
    #[arg(long, env = "OMS_SAGA_DEADLINE_SECS", default_value_t = 30)]
    pub saga_deadline_secs: u64,
}

impl Default for HoldSettings {
    fn default() -> Self {
        Self {
            hold_grace_secs: 300,
            saga_deadline_secs: 30,
        }
    }
}

impl HoldSettings {
    /// The grace period after an order's deadline.
    pub fn grace(&self) -> Duration {
        Duration::from_secs(self.hold_grace_secs)
    }

    /// The deadline of orders whose record names none, after placement.
    pub fn default_deadline(&self) -> Duration {
        Duration::from_secs(self.saga_deadline_secs)
    }
}
