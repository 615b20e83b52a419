//! The AsyncAPI 3.0 document of our topics, for teams that subscribe to
//! them: generated from the same definitions as the JSON Schemas
//! ([`EVENT_TYPES`], [`Topic`], [`SUBSCRIPTIONS`], [`headers`]).
//!
//! - One channel per topic and per dead-letter topic, addressed
//!   `{prefix}<topic>` (the deployment's `OMS_TOPIC_PREFIX`), with its key
//!   and its Kafka binding (partitions, compaction).
//! - One message per event type and version: its headers (ours, and the
//!   CloudEvents binding's binary-mode `ce_*` and `content-type`), its key,
//!   its payload (the whole envelope: the record's value) by reference to
//!   the schema file beside the document, and an example record.
//! - One `send` operation per topic (its one publisher) and one `receive`
//!   operation per consumer group of the system.
//!
//! `schemas/asyncapi.json` is this document; a test fails when they drift,
//! and another validates it against the AsyncAPI specification's schema.

use serde_json::{Map, Value, json};

use crate::cloudevents::{self, Attributes};
use crate::envelope::{EVENT_TYPES, EventTypeInfo};
use crate::topics::{SUBSCRIPTIONS, Topic, headers};

/// The AsyncAPI version of [`document`].
pub const ASYNCAPI_VERSION: &str = "3.0.0";

/// Kafka bindings version used throughout.
const KAFKA_BINDING: &str = "0.5.0";

/// How the schema files are written.
const SCHEMA_FORMAT: &str = "application/schema+json;version=2020-12";

/// The message id of an event type and version, e.g. `OrderPlaced.v1`.
pub fn message_id(info: &EventTypeInfo) -> String {
    format!("{}.v{}", info.event_type, info.schema_version)
}

fn channel_id(topic: Topic) -> String {
    topic.base_name().to_owned()
}

fn dead_letter_channel_id(topic: Topic) -> String {
    format!("{}DeadLetters", topic.base_name())
}

/// The whole document.
pub fn document() -> Value {
    let mut channels = Map::new();
    let mut operations = Map::new();
    let mut messages = Map::new();
    for topic in Topic::ALL {
        let events: Vec<&EventTypeInfo> = EVENT_TYPES.iter().filter(|i| i.topic == topic).collect();
        for info in &events {
            messages.insert(message_id(info), message(info));
        }
        channels.insert(channel_id(topic), channel(topic, &events));
        channels.insert(dead_letter_channel_id(topic), dead_letter_channel(topic));
        operations.insert(
            format!("{}.publish.{}", topic.publisher(), topic.base_name()),
            json!({
                "action": "send",
                "channel": { "$ref": format!("#/channels/{}", channel_id(topic)) },
                "summary": format!("{} publishes every event of `{}`, through its transactional outbox.", topic.publisher(), topic.base_name()),
                "messages": events.iter().map(|i| json!({
                    "$ref": format!("#/channels/{}/messages/{}", channel_id(topic), message_id(i))
                })).collect::<Vec<_>>(),
            }),
        );
    }
    for subscription in SUBSCRIPTIONS {
        for &topic in subscription.topics {
            let events = EVENT_TYPES.iter().filter(|i| i.topic == topic);
            operations.insert(
                format!("{}.receive.{}", subscription.group(), topic.base_name()),
                json!({
                    "action": "receive",
                    "channel": { "$ref": format!("#/channels/{}", channel_id(topic)) },
                    "summary": subscription.purpose,
                    "description": format!(
                        "Consumer group `{{prefix}}{}`; records it cannot use go to `{{prefix}}{}.dlq`.",
                        subscription.group(),
                        topic.base_name()
                    ),
                    "messages": events.map(|i| json!({
                        "$ref": format!("#/channels/{}/messages/{}", channel_id(topic), message_id(i))
                    })).collect::<Vec<_>>(),
                    "bindings": { "kafka": {
                        "groupId": { "type": "string", "description": "The topic prefix, then this.", "examples": [subscription.group()] },
                        "bindingVersion": KAFKA_BINDING,
                    }},
                }),
            );
        }
    }
    messages.insert("DeadLetter".into(), dead_letter_message());
    json!({
        "asyncapi": ASYNCAPI_VERSION,
        "id": "urn:oms:events",
        "info": {
            "title": "OMS events",
            "version": "1",
            "description": "The events of the order management system on Kafka: the saga between order-svc, inventory-svc and customer-svc, and the catalog. Every record's value is an event envelope (JSON); its key is the aggregate id; its headers name the type and version, carry a W3C trace context, and make it a CloudEvent in the Kafka binding's binary content mode (`ce_*`, `content-type`; the CloudEvent's `data` is the whole envelope). Delivery is at least once: deduplicate by `event_id`. Within a key, records are in order.",
            "license": { "name": "Apache-2.0" },
        },
        "defaultContentType": "application/json",
        "servers": {
            "local": {
                "host": "127.0.0.1:9092",
                "protocol": "kafka",
                "description": "The broker `oms up` starts. Production clusters are configured with OMS_KAFKA_BOOTSTRAP and OMS_KAFKA_* (SASL, TLS).",
            },
        },
        "channels": channels,
        "operations": operations,
        "components": {
            "messages": messages,
            "parameters": {
                "prefix": {
                    "description": "The deployment's topic prefix (OMS_TOPIC_PREFIX), empty by default.",
                    "default": "",
                },
            },
        },
    })
}

fn channel(topic: Topic, events: &[&EventTypeInfo]) -> Value {
    let mut messages = Map::new();
    for info in events {
        messages.insert(
            message_id(info),
            json!({ "$ref": format!("#/components/messages/{}", message_id(info)) }),
        );
    }
    let cleanup = if topic.is_compacted() {
        "compact"
    } else {
        "delete"
    };
    json!({
        "address": format!("{{prefix}}{}", topic.base_name()),
        "title": topic.base_name(),
        "description": format!(
            "Published by {}, keyed by {}{}.",
            topic.publisher(),
            topic.key(),
            if topic.is_compacted() { "; compacted: the latest record per product is kept" } else { "" }
        ),
        "parameters": { "prefix": { "$ref": "#/components/parameters/prefix" } },
        "messages": messages,
        "bindings": { "kafka": {
            "topic": topic.base_name(),
            "partitions": 6,
            "topicConfiguration": { "cleanup.policy": [cleanup] },
            "bindingVersion": KAFKA_BINDING,
        }},
    })
}

fn dead_letter_channel(topic: Topic) -> Value {
    json!({
        "address": format!("{{prefix}}{}.dlq", topic.base_name()),
        "title": format!("{}.dlq", topic.base_name()),
        "description": format!(
            "Records of `{}` that a consumer could not use (poison, permanent errors), with the reason in `dlq.*` headers; `oms dlq` lists and re-publishes them.",
            topic.base_name()
        ),
        "parameters": { "prefix": { "$ref": "#/components/parameters/prefix" } },
        "messages": { "DeadLetter": { "$ref": "#/components/messages/DeadLetter" } },
        "bindings": { "kafka": {
            "topic": format!("{}.dlq", topic.base_name()),
            "bindingVersion": KAFKA_BINDING,
        }},
    })
}

fn trace_headers() -> Map<String, Value> {
    let mut properties = Map::new();
    properties.insert(
        headers::TRACEPARENT.into(),
        json!({
            "type": "string",
            "pattern": "^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$",
            "description": "W3C trace context of the operation that caused the event; on every record.",
        }),
    );
    properties.insert(
        headers::TRACESTATE.into(),
        json!({ "type": "string", "description": "W3C vendor trace state, when there is one." }),
    );
    properties.insert(
        headers::REPLAYED_AT.into(),
        json!({ "type": "string", "format": "date-time", "description": "On records an operator re-published (RFC 3339 UTC)." }),
    );
    properties
}

/// The CloudEvents binding's binary-mode headers of `info`'s records
/// ([`crate::cloudevents`]).
fn cloud_event_headers(info: &EventTypeInfo) -> Map<String, Value> {
    let mut properties = Map::new();
    for (name, schema) in [
        (
            headers::CE_SPECVERSION,
            json!({ "type": "string", "const": cloudevents::SPEC_VERSION, "description": "CloudEvents (Kafka protocol binding, binary content mode): the specification version." }),
        ),
        (
            headers::CE_ID,
            json!({ "type": "string", "format": "uuid", "description": "CloudEvents `id`: the envelope's `event_id`." }),
        ),
        (
            headers::CE_TYPE,
            json!({ "type": "string", "const": cloudevents::event_type(info.event_type), "description": "CloudEvents `type`: the `event_type` with a reverse-DNS prefix; it carries no version (see `ce_dataschema`)." }),
        ),
        (
            headers::CE_SOURCE,
            json!({ "type": "string", "const": cloudevents::source(info.topic.publisher()), "description": "CloudEvents `source`: `/` and the envelope's `producer`." }),
        ),
        (
            headers::CE_TIME,
            json!({ "type": "string", "format": "date-time", "description": "CloudEvents `time`: the envelope's `occurred_at`, RFC 3339 in UTC." }),
        ),
        (
            headers::CE_SUBJECT,
            json!({ "type": "string", "format": "uuid", "description": format!("CloudEvents `subject`: the record's key, the {}.", info.topic.key()) }),
        ),
        (
            headers::CE_DATASCHEMA,
            json!({ "type": "string", "const": crate::envelope::schema_id(info.event_type, info.schema_version), "description": "CloudEvents `dataschema`: the `$id` of the schema of the value (the whole envelope, which is the CloudEvent's `data`)." }),
        ),
        (
            headers::CONTENT_TYPE,
            json!({ "type": "string", "const": cloudevents::DATA_CONTENT_TYPE, "description": "CloudEvents `datacontenttype`." }),
        ),
    ] {
        properties.insert(name.into(), schema);
    }
    properties
}

fn message(info: &EventTypeInfo) -> Value {
    let mut properties = trace_headers();
    properties.insert(
        headers::EVENT_TYPE.into(),
        json!({ "type": "string", "const": info.event_type }),
    );
    properties.insert(
        headers::SCHEMA_VERSION.into(),
        json!({ "type": "string", "const": info.schema_version.to_string() }),
    );
    properties.extend(cloud_event_headers(info));
    let mut message = json!({
        "name": info.event_type,
        "title": format!("{} v{}", info.event_type, info.schema_version),
        "summary": format!(
            "{} (schema version {}) on `{}`, published by {}.",
            info.event_type, info.schema_version, info.topic.base_name(), info.topic.publisher()
        ),
        "contentType": "application/json",
        "headers": {
            "type": "object",
            "required": [
                headers::EVENT_TYPE,
                headers::SCHEMA_VERSION,
                headers::TRACEPARENT,
                headers::CE_SPECVERSION,
                headers::CE_ID,
                headers::CE_TYPE,
                headers::CE_SOURCE,
                headers::CE_TIME,
                headers::CE_SUBJECT,
                headers::CE_DATASCHEMA,
                headers::CONTENT_TYPE,
            ],
            "properties": properties,
        },
        "payload": {
            "schemaFormat": SCHEMA_FORMAT,
            "schema": { "$ref": format!("./{}.v{}.schema.json", info.event_type, info.schema_version) },
        },
        "bindings": { "kafka": {
            "key": { "type": "string", "format": "uuid", "description": format!("The {}.", info.topic.key()) },
            "bindingVersion": KAFKA_BINDING,
        }},
    });
    if let Some(example) =
        crate::examples::envelope_of_version(info.event_type, info.schema_version)
    {
        let mut example_headers = Map::new();
        example_headers.insert(headers::EVENT_TYPE.into(), info.event_type.into());
        example_headers.insert(
            headers::SCHEMA_VERSION.into(),
            info.schema_version.to_string().into(),
        );
        for (name, value) in Attributes::of(&example).headers() {
            example_headers.insert(name.into(), value.into());
        }
        example_headers.insert(
            headers::TRACEPARENT.into(),
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".into(),
        );
        message["examples"] = json!([{
            "name": info.event_type,
            "headers": example_headers,
            "payload": example.to_json(),
        }]);
    }
    message
}

fn dead_letter_message() -> Value {
    let mut properties = trace_headers();
    for (name, description) in [
        (
            headers::DLQ_ORIGINAL_TOPIC,
            "The topic the record was read from.",
        ),
        (headers::DLQ_ORIGINAL_PARTITION, "Its partition."),
        (headers::DLQ_ORIGINAL_OFFSET, "Its offset."),
        (
            headers::DLQ_CONSUMER_GROUP,
            "The consumer group that gave up on it.",
        ),
        (
            headers::DLQ_ERROR_CODE,
            "A stable upper-case code: INVALID_JSON, SCHEMA_VIOLATION, UNKNOWN_EVENT_TYPE, DATABASE_REJECTED, RECORD_TOO_LARGE, WRONG_TOPIC, …",
        ),
        (headers::DLQ_ERROR, "The error, in words."),
        (headers::DLQ_FAILED_AT, "When (RFC 3339 UTC)."),
        (
            headers::DLQ_ORIGINAL_BYTES,
            "Set when the original was too large to copy: its size; the dead letter then has no value.",
        ),
    ] {
        properties.insert(
            name.into(),
            json!({ "type": "string", "description": description }),
        );
    }
    json!({
        "name": "DeadLetter",
        "title": "Dead letter",
        "summary": "A record a consumer could not use: the original key, value and headers (the CloudEvents ones too, when it had them), and why.",
        "headers": {
            "type": "object",
            "required": [headers::DLQ_ORIGINAL_TOPIC, headers::DLQ_ERROR_CODE, headers::DLQ_ERROR],
            "properties": properties,
        },
        "payload": { "description": "The original record's value, as it was (any bytes)." },
    })
}
