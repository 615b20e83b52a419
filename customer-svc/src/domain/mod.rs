//! customer-svc's model, free of I/O: the customer aggregate with its
//! credit line, the credit reservation each order holds, and the
//! credentials a sign-in leaves.

pub mod credentials;
pub mod credit;
pub mod customer;

pub use credentials::{RefreshToken, SigningKey};
pub use credit::{CREDIT_PHASES, CreditReservation, HeldCredit};
pub use customer::{CreditLine, Customer, CustomerName, CustomerStatus, Email, Password};
