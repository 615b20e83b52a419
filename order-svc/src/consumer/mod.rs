//! order-svc's event handlers.
//!
//! | consumer | consumes | does |
//! |---|---|---|
//! | `saga` | StockReserved, StockRejected (`inventory`); CreditReserved, CustomerRejected (`customers`) | records the reply in the order's timeline and applies it to the saga, emitting OrderConfirmed or OrderRejected when it decides |
//! | `saga` | StockReleased, StockCommitted, CreditReleased, CreditSettled | records them in the timeline |
//! | `catalog` (projection) | ProductUpserted (`catalog`) | keeps the local catalog copy that prices new orders |
//! | `timeline` (rebuild only) | events of `orders`, `inventory`, `customers` that an operator re-drove (`oms replay --copy-to`) | records them in their orders' timelines if missing |
//!
//! Each handler is set-based (see [`event_runtime::EventHandler`]) and
//! lives in the application layer: [`crate::app::replies`] (the saga's
//! replies and the timeline rebuild) and [`crate::app::catalog_copy`].
//!
//! The timeline is written once, on the hot path, by the code that handles
//! each event (the saga here, the HTTP commands for order-svc's own
//! events). The `timeline` consumer only rebuilds: it skips live records
//! before decoding them. The projections keep no inbox: their writes are
//! idempotent by themselves (a catalog row never goes back in time, a
//! timeline entry is unique by event id), so an operator's replay of their
//! topics rebuilds them.
//!
//! A reply for an order order-svc does not know is dead-lettered: it
//! cannot be applied, and an operator should see it. Duplicates and late
//! replies change nothing (see [`crate::domain::saga`]).

pub use crate::app::catalog_copy::CatalogSync;
pub use crate::app::replies::{SagaReplies, TimelineProjection};
