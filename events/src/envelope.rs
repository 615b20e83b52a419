//! The envelope every event travels in, and the closed set of event types.
//!
//! On the wire an event is one JSON object:
//!
//! ```json
//! {
//!   "event_id": "0193…",          // UUIDv7, unique per event
//!   "event_type": "OrderPlaced",
//!   "schema_version": 1,
//!   "occurred_at": "2026-11-22T10:00:00.123Z",
//!   "correlation_id": "…",        // the order id for saga traffic
//!   "causation_id": "…",          // the event that caused this one, if any
//!   "producer": "order-svc",
//!   "payload": { … }              // the type's payload, see `schemas/`
//! }
//! ```
//!
//! `(event_type, schema_version)` selects the payload type. A breaking change
//! to a payload is a new version with its own Rust type and schema file; old
//! versions stay decodable.

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::ids::EventId;
use crate::payloads::*;
use crate::topics::Topic;

/// Implemented by every payload type: its name and version on the wire, the
/// topic it is published to and the aggregate that keys it.
pub trait EventPayload: Serialize + JsonSchema + Into<Event> {
    /// The `event_type` on the wire.
    const EVENT_TYPE: &'static str;
    /// The `schema_version` on the wire.
    const SCHEMA_VERSION: u32;
    /// The topic this event is published to.
    const TOPIC: Topic;
    /// The aggregate id: the Kafka key and, for saga traffic, the correlation id.
    fn aggregate_id(&self) -> Uuid;
}

/// Names, versions and topics of every event type, for tools and schema generation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventTypeInfo {
    /// `event_type` on the wire.
    pub event_type: &'static str,
    /// `schema_version` on the wire.
    pub schema_version: u32,
    /// Where it is published.
    pub topic: Topic,
}

/// The wire name of an event type: the variant's name unless one is given
/// (older versions of a type are variants of their own with the same name).
macro_rules! wire_name {
    ($variant:ident) => {
        stringify!($variant)
    };
    ($variant:ident, $name:literal) => {
        $name
    };
}

macro_rules! event_types {
    ($( $variant:ident($payload:ty) $(as $name:literal)? version $version:literal on $topic:ident keyed by $key:ident; )*) => {
        /// Any event of the system: one variant per event type and version.
        #[derive(Debug, Clone, PartialEq, Eq)]
        #[allow(clippy::large_enum_variant)]
        pub enum Event {
            $(
                #[doc = concat!("`", wire_name!($variant $(, $name)?), "` version ", stringify!($version), ".")]
                $variant($payload),
            )*
        }

        $(
            impl EventPayload for $payload {
                const EVENT_TYPE: &'static str = wire_name!($variant $(, $name)?);
                const SCHEMA_VERSION: u32 = $version;
                const TOPIC: Topic = Topic::$topic;
                fn aggregate_id(&self) -> Uuid {
                    self.$key.into()
                }
            }

            impl From<$payload> for Event {
                fn from(payload: $payload) -> Self {
                    Event::$variant(payload)
                }
            }
        )*

        /// Every event type the contract defines.
        pub const EVENT_TYPES: &[EventTypeInfo] = &[
            $(EventTypeInfo {
                event_type: wire_name!($variant $(, $name)?),
                schema_version: $version,
                topic: Topic::$topic,
            },)*
        ];

        impl Event {
            /// The `event_type` on the wire.
            pub fn event_type(&self) -> &'static str {
                match self { $(Event::$variant(_) => <$payload as EventPayload>::EVENT_TYPE,)* }
            }

            /// The `schema_version` on the wire.
            pub fn schema_version(&self) -> u32 {
                match self { $(Event::$variant(_) => <$payload as EventPayload>::SCHEMA_VERSION,)* }
            }

            /// The topic the event is published to.
            pub fn topic(&self) -> Topic {
                match self { $(Event::$variant(_) => <$payload as EventPayload>::TOPIC,)* }
            }

            /// The aggregate id, used as the Kafka key.
            pub fn aggregate_id(&self) -> Uuid {
                match self { $(Event::$variant(p) => p.aggregate_id(),)* }
            }

            /// The payload as a JSON value.
            pub fn payload_json(&self) -> serde_json::Value {
                let value = match self { $(Event::$variant(p) => serde_json::to_value(p),)* };
                value.expect("payload types serialize to JSON infallibly")
            }

            /// Decodes a payload given its type and version.
            ///
            /// # Errors
            /// [`DecodeError::UnknownEventType`] for a type/version the contract
            /// does not define, [`DecodeError::SchemaViolation`] for a payload
            /// that does not fit its type.
            pub fn from_payload(
                event_type: &str,
                schema_version: u32,
                payload: serde_json::Value,
            ) -> Result<Self, DecodeError> {
                match (event_type, schema_version) {
                    $(
                        (wire_name!($variant $(, $name)?), $version) => serde_json::from_value::<$payload>(payload)
                            .map(Event::$variant)
                            .map_err(|e| DecodeError::SchemaViolation {
                                event_type: event_type.to_owned(),
                                schema_version,
                                detail: e.to_string(),
                            }),
                    )*
                    _ => Err(DecodeError::UnknownEventType {
                        event_type: event_type.to_owned(),
                        schema_version,
                    }),
                }
            }
        }

        /// The JSON Schema (draft 2020-12) of the whole envelope for one event
        /// type and version, without its example (see [`crate::schema`]),
        /// or `None` if the contract has no such type.
        pub(crate) fn envelope_schema_of(event_type: &str, schema_version: u32) -> Option<serde_json::Value> {
            match (event_type, schema_version) {
                $((wire_name!($variant $(, $name)?), $version) => Some(envelope_schema::<$payload>()),)*
                _ => None,
            }
        }
    };
}

event_types! {
    OrderPlacedV1(OrderPlacedV1) as "OrderPlaced" version 1 on Orders keyed by order_id;
    OrderPlaced(OrderPlaced) version 2 on Orders keyed by order_id;
    OrderConfirmed(OrderConfirmed) version 1 on Orders keyed by order_id;
    OrderRejected(OrderRejected) version 1 on Orders keyed by order_id;
    OrderCancelled(OrderCancelled) version 1 on Orders keyed by order_id;
    OrderShipped(OrderShipped) version 1 on Orders keyed by order_id;
    OrderDelivered(OrderDelivered) version 1 on Orders keyed by order_id;
    ShippingUpdated(ShippingUpdated) version 1 on Orders keyed by order_id;
    StockReserved(StockReserved) version 1 on Inventory keyed by order_id;
    StockRejected(StockRejected) version 1 on Inventory keyed by order_id;
    StockReleased(StockReleased) version 1 on Inventory keyed by order_id;
    StockCommitted(StockCommitted) version 1 on Inventory keyed by order_id;
    CreditReserved(CreditReserved) version 1 on Customers keyed by order_id;
    CustomerRejected(CustomerRejected) version 1 on Customers keyed by order_id;
    CreditReleased(CreditReleased) version 1 on Customers keyed by order_id;
    CreditSettled(CreditSettled) version 1 on Customers keyed by order_id;
    ProductUpsertedV1(ProductUpsertedV1) as "ProductUpserted" version 1 on Catalog keyed by product_id;
    ProductUpserted(ProductUpserted) version 2 on Catalog keyed by product_id;
}

/// The longest `producer` name the contract carries (consumers store it).
pub const MAX_PRODUCER_LEN: usize = 64;

/// An event with its metadata. Serializes to the wire form above.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    /// Unique id of this event (UUIDv7: sortable by creation time).
    pub event_id: EventId,
    /// When the change it records happened.
    pub occurred_at: DateTime<Utc>,
    /// Groups the events of one business flow: the order id for saga traffic.
    pub correlation_id: Uuid,
    /// The event that caused this one; `None` for events caused by a request.
    pub causation_id: Option<EventId>,
    /// The service that produced it, e.g. `order-svc`.
    pub producer: String,
    /// The typed event.
    pub event: Event,
}

impl Envelope {
    /// A new event caused by a request (no causation), correlated by its own
    /// aggregate id.
    pub fn new(event: impl Into<Event>, producer: impl Into<String>) -> Self {
        let event = event.into();
        Self {
            event_id: EventId::generate(),
            occurred_at: Utc::now(),
            correlation_id: event.aggregate_id(),
            causation_id: None,
            producer: producer.into(),
            event,
        }
    }

    /// A new event caused by `cause`: same correlation, `causation_id` = its id.
    pub fn caused_by(
        event: impl Into<Event>,
        producer: impl Into<String>,
        cause: &Envelope,
    ) -> Self {
        Self {
            correlation_id: cause.correlation_id,
            causation_id: Some(cause.event_id),
            ..Self::new(event, producer)
        }
    }

    /// The Kafka key: the aggregate id.
    pub fn key(&self) -> Uuid {
        self.event.aggregate_id()
    }

    /// The key as an order id: what it is on every topic but `catalog`
    /// (keyed by product).
    pub fn order_id(&self) -> crate::ids::OrderId {
        crate::ids::OrderId::from_uuid(self.key())
    }

    /// The wire form as a JSON value.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self.to_raw()).expect("an envelope serializes to JSON infallibly")
    }

    /// The wire form as bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(&self.to_raw()).expect("an envelope serializes to JSON infallibly")
    }

    /// The untyped wire form.
    pub fn to_raw(&self) -> RawEnvelope {
        RawEnvelope {
            event_id: self.event_id,
            event_type: self.event.event_type().to_owned(),
            schema_version: self.event.schema_version(),
            occurred_at: self.occurred_at,
            correlation_id: self.correlation_id,
            causation_id: self.causation_id,
            producer: self.producer.clone(),
            payload: self.event.payload_json(),
        }
    }

    /// Decodes the wire form.
    ///
    /// # Errors
    /// A [`DecodeError`] naming what is wrong: not JSON, not an envelope, an
    /// unknown type or version, or a payload that does not fit its type.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, DecodeError> {
        let value: serde_json::Value =
            serde_json::from_slice(bytes).map_err(|e| DecodeError::InvalidJson(e.to_string()))?;
        Self::from_json(value)
    }

    /// Decodes the wire form from a JSON value.
    ///
    /// # Errors
    /// As [`Envelope::from_bytes`].
    pub fn from_json(value: serde_json::Value) -> Result<Self, DecodeError> {
        let raw: RawEnvelope = serde_json::from_value(value)
            .map_err(|e| DecodeError::InvalidEnvelope(e.to_string()))?;
        raw.into_typed()
    }
}

impl Serialize for Envelope {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.to_raw().serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Envelope {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        RawEnvelope::deserialize(deserializer)?
            .into_typed()
            .map_err(serde::de::Error::custom)
    }
}

/// The envelope with its payload left as JSON: what a tool that must show
/// any record (including unknown types) decodes to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct RawEnvelope {
    /// See [`Envelope::event_id`].
    pub event_id: EventId,
    /// The event type, e.g. `OrderPlaced`.
    pub event_type: String,
    /// The payload's schema version.
    pub schema_version: u32,
    /// See [`Envelope::occurred_at`].
    pub occurred_at: DateTime<Utc>,
    /// See [`Envelope::correlation_id`].
    pub correlation_id: Uuid,
    /// See [`Envelope::causation_id`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub causation_id: Option<EventId>,
    /// See [`Envelope::producer`].
    pub producer: String,
    /// The payload.
    pub payload: serde_json::Value,
}

impl RawEnvelope {
    /// Decodes the payload into its type.
    ///
    /// # Errors
    /// As [`Event::from_payload`].
    pub fn into_typed(self) -> Result<Envelope, DecodeError> {
        let event = Event::from_payload(&self.event_type, self.schema_version, self.payload)?;
        Ok(Envelope {
            event_id: self.event_id,
            occurred_at: self.occurred_at,
            correlation_id: self.correlation_id,
            causation_id: self.causation_id,
            producer: self.producer,
            event,
        })
    }
}

/// Why a record is not a valid event. Each variant has a stable [`code`](Self::code),
/// which dead letters carry in their `dlq.error_code` header.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The record has no value (a tombstone where an event was expected).
    #[error("the record has no value")]
    EmptyValue,
    /// The value is not JSON.
    #[error("the value is not valid JSON: {0}")]
    InvalidJson(String),
    /// JSON, but not an envelope (a metadata field missing or mistyped).
    #[error("the value is not an event envelope: {0}")]
    InvalidEnvelope(String),
    /// A type/version pair the contract does not define.
    #[error("unknown event type {event_type} version {schema_version}")]
    UnknownEventType {
        /// The type named by the record.
        event_type: String,
        /// The version named by the record.
        schema_version: u32,
    },
    /// The envelope or payload breaks its JSON Schema.
    #[error("{event_type} v{schema_version} violates its schema: {detail}")]
    SchemaViolation {
        /// The type named by the record.
        event_type: String,
        /// The version named by the record.
        schema_version: u32,
        /// What is wrong, and where.
        detail: String,
    },
}

impl DecodeError {
    /// A stable upper-case code for this kind of error.
    pub fn code(&self) -> &'static str {
        match self {
            DecodeError::EmptyValue => "EMPTY_VALUE",
            DecodeError::InvalidJson(_) => "INVALID_JSON",
            DecodeError::InvalidEnvelope(_) => "INVALID_ENVELOPE",
            DecodeError::UnknownEventType { .. } => "UNKNOWN_EVENT_TYPE",
            DecodeError::SchemaViolation { .. } => "SCHEMA_VIOLATION",
        }
    }
}

/// The envelope with a concrete payload type, used only to generate schemas.
#[derive(JsonSchema)]
#[allow(dead_code)]
struct TypedEnvelope<P> {
    event_id: Uuid,
    event_type: String,
    schema_version: u32,
    occurred_at: DateTime<Utc>,
    correlation_id: Uuid,
    #[serde(default)]
    causation_id: Option<Uuid>,
    producer: String,
    payload: P,
}

/// The `$id` of the JSON Schema of `event_type` version `schema_version`,
/// which is also its CloudEvents `dataschema` (see [`crate::cloudevents`]).
pub fn schema_id(event_type: &str, schema_version: u32) -> String {
    format!("https://oms.example/schemas/{event_type}.v{schema_version}.schema.json")
}

fn envelope_schema<P: EventPayload>() -> serde_json::Value {
    let mut schema = serde_json::to_value(schemars::schema_for!(TypedEnvelope<P>))
        .expect("a schema serializes to JSON");
    let object = schema
        .as_object_mut()
        .expect("a struct's schema is an object");
    object.insert(
        "$id".into(),
        schema_id(P::EVENT_TYPE, P::SCHEMA_VERSION).into(),
    );
    object.insert("title".into(), P::EVENT_TYPE.into());
    object.insert(
        "description".into(),
        format!(
            "{} (schema version {}), published to the `{}` topic keyed by its aggregate id, in the OMS event envelope.",
            P::EVENT_TYPE,
            P::SCHEMA_VERSION,
            P::TOPIC
        )
        .into(),
    );
    let properties = object
        .get_mut("properties")
        .and_then(|p| p.as_object_mut())
        .expect("the envelope has properties");
    properties.insert(
        "event_type".into(),
        serde_json::json!({ "const": P::EVENT_TYPE }),
    );
    properties.insert(
        "schema_version".into(),
        serde_json::json!({ "const": P::SCHEMA_VERSION }),
    );
    properties.insert(
        "event_id".into(),
        serde_json::json!({ "type": "string", "format": "uuid", "description": "UUIDv7, unique per event." }),
    );
    properties.insert(
        "producer".into(),
        serde_json::json!({ "type": "string", "minLength": 1, "maxLength": MAX_PRODUCER_LEN, "description": "The service that produced the event." }),
    );
    schema
}
