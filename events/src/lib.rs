//! # events: the OMS event contract
//!
//! This crate is the one place where the system's events are defined. It
//! holds **types only** (serde, schemars, uuid, chrono): a program outside
//! this workspace that subscribes to our topics depends on it and gets no
//! database or broker client. How the events move (outbox, relay, consumer,
//! inbox, dead letters, the saga's participant protocol) is the
//! `event-runtime` crate's business.
//!
//! ## Layout
//! - [`envelope`]: the [`Envelope`] every event travels in, the closed
//!   [`Event`] enum (16 event types), decoding and [`DecodeError`]s.
//! - [`payloads`]: one struct per event type.
//! - [`primitives`]: money, currency, quantity, address; validated on decode.
//! - [`ids`]: typed ids ([`OrderId`], [`ProductId`], [`CustomerId`],
//!   [`EventId`]): UUIDs on the wire, typed database columns with the
//!   `sea-orm` feature.
//! - [`examples`]: one example of every event type (also in the schemas).
//! - [`schema`]: the published JSON Schema of each type: the envelope's
//!   schema with the type's example.
//! - [`topics`]: topic names (with a configurable prefix), header names,
//!   who publishes each topic and every consumer group that reads it.
//! - [`asyncapi`]: the AsyncAPI 3 document of all of it (`schemas/asyncapi.json`).
//! - [`cloudevents`]: the CloudEvents attributes every record also carries
//!   in its headers (the Kafka binding's binary mode), mapped from its
//!   envelope.
//!
//! The JSON Schemas in the repository's `schemas/` folder are generated from
//! these types ([`event_schema`]); a test fails when the two drift apart.

#![forbid(unsafe_code)]

pub mod asyncapi;
pub mod cloudevents;
pub mod envelope;
pub mod examples;
pub mod ids;
pub mod payloads;
pub mod primitives;
pub mod schema;
pub mod topics;

pub use envelope::{
    DecodeError, EVENT_TYPES, Envelope, Event, EventPayload, EventTypeInfo, RawEnvelope,
};
pub use ids::{CustomerId, EventId, OrderId, ProductId};
pub use payloads::*;
pub use primitives::{Currency, InvalidValue, Money, Quantity, ShippingAddress};
pub use schema::event_schema;
pub use topics::{Topic, TopicNames, headers};
