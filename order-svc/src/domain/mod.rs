//! order-svc's types and rules, free of I/O: what a valid order is, and the
//! saga's state machine.

pub mod order;
pub mod saga;

pub use order::{IdempotencyKey, NewOrder, OrderFilter, OrderLineRequest};
pub use saga::{SagaInput, SagaState, Transition};
