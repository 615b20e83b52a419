//! sea-orm entities of inventory-svc's tables.

pub mod product;
pub mod product_price;
pub mod reservation;
pub mod reservation_line;
pub mod stock_movement;
