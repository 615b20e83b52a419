//! customer-svc's types and rules, free of I/O.

pub mod credit;
pub mod customer;

pub use credit::CreditState;
pub use customer::{CustomerName, CustomerStatus, Email, Password};
