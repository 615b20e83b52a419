//! Tests of the `oms` command, against real Kafka brokers and the real
//! services, on SQLite (as `oms up` uses by default) and on PostgreSQL.

mod bench;
mod cluster;
mod commands;
mod concurrency;
mod dlq;
mod docker;
mod kafka_security;
mod monitoring;
mod ops;
mod postgres_tls;
mod secrets;
mod starting;
mod traces;
mod up;
