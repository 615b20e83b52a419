//! order-svc's model, free of I/O: the order aggregate and its rules (what
//! a valid order is, how it is priced, how the saga moves it), the catalog
//! copy it is priced from, and its timeline.

pub mod catalog;
pub mod order;
pub mod saga;
pub mod timeline;
pub mod values;

pub use catalog::{CatalogProduct, CatalogVersion};
pub use order::{NewOrder, Order, OrderFilter, OrderLine, OrderWithLines, ShippingChange};
pub use saga::{Applied, Decision, NotAllowed, SagaInput};
pub use timeline::TimelineEntry;
pub use values::{Carrier, IdempotencyKey, Reason, TrackingNumber};
