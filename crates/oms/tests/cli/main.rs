//! Tests of the `oms` command, against real Kafka brokers and the real
//! services (SQLite databases, as `oms up` uses by default).

mod ops;
mod up;
