//! Our records as CloudEvents: every record the outbox relay publishes
//! carries, besides our own headers, the binary-mode headers of the
//! CloudEvents 1.0 Kafka protocol binding, mapped from its envelope, so
//! that a CloudEvents consumer reads our topics with no code of ours.
//!
//! | attribute | Kafka header | value |
//! |---|---|---|
//! | `specversion` | `ce_specversion` | `1.0` |
//! | `id` | `ce_id` | the envelope's `event_id` |
//! | `type` | `ce_type` | [`TYPE_PREFIX`] + `event_type`, e.g. `example.oms.OrderPlaced` |
//! | `source` | `ce_source` | `/` + `producer`, e.g. `/order-svc` |
//! | `time` | `ce_time` | `occurred_at`, RFC 3339 in UTC |
//! | `subject` | `ce_subject` | the record's key: the order id (the product id on `catalog`) |
//! | `dataschema` | `ce_dataschema` | the `$id` of the event's schema file, e.g. `https://oms.example/schemas/OrderPlaced.v2.schema.json` |
//! | `datacontenttype` | `content-type` | `application/json` |
//!
//! The record's value is not changed: in binary mode it is the event's
//! `data`, and for us that is the whole envelope (its `payload` is the
//! event's own fields), which `dataschema` describes. `type` carries no
//! version, as `event_type` carries none: a breaking change to an event is a
//! new `schema_version`, and so a new `dataschema`. These values are part of
//! the contract: a subscriber may filter on them, so they do not change.
//! A replayed or re-driven record keeps them (it is the same event); a dead
//! letter keeps them beside its `dlq.*` headers.

use std::borrow::Cow;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Deserialize;
use uuid::Uuid;

use crate::envelope::{Envelope, schema_id};
use crate::topics::headers;

/// The CloudEvents version our headers follow.
pub const SPEC_VERSION: &str = "1.0";

/// Put in front of an `event_type` to make a CloudEvents `type`: the
/// reverse-DNS form of the domain our schema ids name (`oms.example`).
pub const TYPE_PREFIX: &str = "example.oms.";

/// The `datacontenttype` of every record: the envelope is JSON.
pub const DATA_CONTENT_TYPE: &str = "application/json";

/// The CloudEvents `type` of `event_type`, e.g. `example.oms.OrderPlaced`.
pub fn event_type(event_type: &str) -> String {
    format!("{TYPE_PREFIX}{event_type}")
}

/// The CloudEvents `source` of events from the service `producer`, a
/// URI-reference: `/order-svc`.
pub fn source(producer: &str) -> String {
    format!("/{producer}")
}

/// The CloudEvents attributes of one event, as they travel in its record's
/// headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attributes {
    /// `ce_id`.
    pub id: String,
    /// `ce_type`.
    pub ty: String,
    /// `ce_source`.
    pub source: String,
    /// `ce_time`.
    pub time: String,
    /// `ce_subject`.
    pub subject: String,
    /// `ce_dataschema`.
    pub dataschema: String,
}

/// The envelope's metadata, read from its wire form without decoding the
/// payload.
#[derive(Deserialize)]
struct Metadata<'a> {
    event_id: Uuid,
    #[serde(borrow)]
    event_type: Cow<'a, str>,
    schema_version: u32,
    occurred_at: DateTime<Utc>,
    #[serde(borrow)]
    producer: Cow<'a, str>,
}

impl Attributes {
    /// The attributes of `envelope`.
    pub fn of(envelope: &Envelope) -> Self {
        Self::from_parts(
            envelope.event_id.into(),
            envelope.event.event_type(),
            envelope.event.schema_version(),
            envelope.occurred_at,
            &envelope.producer,
            &envelope.key().to_string(),
        )
    }

    /// The attributes of a record whose value is `value` and whose key is
    /// `key`, read from the envelope's metadata (the payload is not decoded);
    /// `None` when the value is not an envelope.
    pub fn of_record(value: &[u8], key: &str) -> Option<Self> {
        let metadata: Metadata<'_> = serde_json::from_slice(value).ok()?;
        Some(Self::from_parts(
            metadata.event_id,
            &metadata.event_type,
            metadata.schema_version,
            metadata.occurred_at,
            &metadata.producer,
            key,
        ))
    }

    fn from_parts(
        event_id: Uuid,
        event_type: &str,
        schema_version: u32,
        occurred_at: DateTime<Utc>,
        producer: &str,
        key: &str,
    ) -> Self {
        Self {
            id: event_id.to_string(),
            ty: self::event_type(event_type),
            source: source(producer),
            time: occurred_at.to_rfc3339_opts(SecondsFormat::AutoSi, true),
            subject: key.to_owned(),
            dataschema: schema_id(event_type, schema_version),
        }
    }

    /// The Kafka headers, name and value, in the binding's binary mode.
    pub fn headers(&self) -> [(&'static str, &str); 8] {
        [
            (headers::CE_SPECVERSION, SPEC_VERSION),
            (headers::CE_ID, &self.id),
            (headers::CE_TYPE, &self.ty),
            (headers::CE_SOURCE, &self.source),
            (headers::CE_TIME, &self.time),
            (headers::CE_SUBJECT, &self.subject),
            (headers::CE_DATASCHEMA, &self.dataschema),
            (headers::CONTENT_TYPE, DATA_CONTENT_TYPE),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_and_its_envelope_have_the_same_attributes() {
        for envelope in crate::examples::all()
            .into_iter()
            .map(|event| Envelope::new(event, "order-svc"))
        {
            let from_record =
                Attributes::of_record(&envelope.to_bytes(), &envelope.key().to_string());
            assert_eq!(from_record, Some(Attributes::of(&envelope)));
        }
    }

    #[test]
    fn attributes_name_the_event_its_producer_and_its_schema() {
        let envelope = Envelope::new(crate::examples::all().remove(0), "order-svc");
        let attributes = Attributes::of(&envelope);
        assert_eq!(attributes.id, envelope.event_id.to_string());
        assert_eq!(
            attributes.ty,
            format!("example.oms.{}", envelope.event.event_type())
        );
        assert_eq!(attributes.source, "/order-svc");
        assert_eq!(
            DateTime::parse_from_rfc3339(&attributes.time).unwrap(),
            envelope.occurred_at
        );
        assert!(attributes.time.ends_with('Z'), "{}", attributes.time);
        assert_eq!(attributes.subject, envelope.key().to_string());
        assert_eq!(
            attributes.dataschema,
            format!(
                "https://oms.example/schemas/{}.v{}.schema.json",
                envelope.event.event_type(),
                envelope.event.schema_version()
            )
        );
    }

    #[test]
    fn a_value_that_is_not_an_envelope_has_no_attributes() {
        assert_eq!(Attributes::of_record(b"{ not an event", "k"), None);
        assert_eq!(Attributes::of_record(b"{\"event_id\": 1}", "k"), None);
    }
}
