//! Integration tests of the contract: the committed JSON Schemas and
//! AsyncAPI document match the types, and every example round-trips.

mod contract;
