//! Inventory's model, free of I/O: the product aggregate with its stock,
//! and the reservation each order holds.
//!
//! Raw input is parsed into these types at the edge (HTTP handlers, event
//! handlers); nothing deeper sees unchecked values.

pub mod product;
pub mod reservation;

pub use product::{
    NewProduct, PricePoint, Product, ProductFilter, ProductName, ProductPatch, Sku,
    StockAdjustment, StockLevels,
};
pub use reservation::{RESERVATION_PHASES, Reservation, ReservationLine, StockMovementKind};
