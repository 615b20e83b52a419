//! Inventory's types and rules, free of I/O.
//!
//! Raw input is parsed into these types at the edge (HTTP handlers, event
//! handlers); nothing deeper sees unchecked values.

pub mod product;
pub mod reservation;

pub use product::{NewProduct, ProductFilter, ProductName, ProductPatch, Sku, StockAdjustment};
pub use reservation::{ReservationState, StockMovementKind};
