//! inventory-svc's application layer: the commands and queries that
//! `http/` and `consumer/` call, over `domain/` (the rules) and
//! `persistence/` (the tables).

pub mod catalog;
pub mod stock;
