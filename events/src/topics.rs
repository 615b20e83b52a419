//! Topic names and the Kafka header names that are part of the contract.

use std::fmt;

/// The logical topics of the system. Real names carry a configurable prefix
/// (see [`TopicNames`]) so that several environments, or tests, share a cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Topic {
    /// Order lifecycle, published by order-svc, keyed by order id.
    Orders,
    /// Stock replies, published by inventory-svc, keyed by order id.
    Inventory,
    /// Customer and credit replies, published by customer-svc, keyed by order id.
    Customers,
    /// Product state, published by inventory-svc, keyed by product id, compacted.
    Catalog,
}

impl Topic {
    /// Every topic, in a stable order.
    pub const ALL: [Topic; 4] = [
        Topic::Orders,
        Topic::Inventory,
        Topic::Customers,
        Topic::Catalog,
    ];

    /// The name without prefix, e.g. `orders`.
    pub fn base_name(self) -> &'static str {
        match self {
            Topic::Orders => "orders",
            Topic::Inventory => "inventory",
            Topic::Customers => "customers",
            Topic::Catalog => "catalog",
        }
    }

    /// Whether the topic is log-compacted (keeps the latest record per key).
    pub fn is_compacted(self) -> bool {
        matches!(self, Topic::Catalog)
    }

    /// The one service that publishes to it.
    pub fn publisher(self) -> &'static str {
        match self {
            Topic::Orders => "order-svc",
            Topic::Inventory | Topic::Catalog => "inventory-svc",
            Topic::Customers => "customer-svc",
        }
    }

    /// What its records are keyed by.
    pub fn key(self) -> &'static str {
        match self {
            Topic::Catalog => "product_id",
            _ => "order_id",
        }
    }
}

/// A consumer of our topics inside the system: a service's consumer group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Subscription {
    /// The service.
    pub service: &'static str,
    /// Its name within the service; the group is `<prefix><service>.<name>`.
    pub name: &'static str,
    /// The topics it reads.
    pub topics: &'static [Topic],
    /// What it does with them.
    pub purpose: &'static str,
}

impl Subscription {
    /// The consumer group, without the topic prefix.
    pub fn group(&self) -> String {
        format!("{}.{}", self.service, self.name)
    }
}

/// Every consumer group of the system. The services subscribe from this
/// table ([`subscription`]), and the AsyncAPI document lists it.
pub const SUBSCRIPTIONS: &[Subscription] = &[
    Subscription {
        service: "order-svc",
        name: "saga",
        topics: &[Topic::Inventory, Topic::Customers],
        purpose: "The saga: confirms, rejects or cancels orders from the participants' replies.",
    },
    Subscription {
        service: "order-svc",
        name: "catalog",
        topics: &[Topic::Catalog],
        purpose: "order-svc's copy of the catalog (prices and active flags), a projection.",
    },
    Subscription {
        service: "order-svc",
        name: "timeline",
        topics: &[Topic::Orders, Topic::Inventory, Topic::Customers],
        purpose: "Rebuilds order timelines from records an operator re-drives (live records are skipped).",
    },
    Subscription {
        service: "inventory-svc",
        name: "saga",
        topics: &[Topic::Orders],
        purpose: "Reserves, releases and commits stock.",
    },
    Subscription {
        service: "customer-svc",
        name: "saga",
        topics: &[Topic::Orders],
        purpose: "Checks the customer, reserves, releases and settles credit.",
    },
];

/// The topics `service`'s subscription `name` reads.
///
/// # Panics
/// When [`SUBSCRIPTIONS`] has no such entry: a programming error that the
/// first start shows.
pub fn subscription(service: &str, name: &str) -> &'static [Topic] {
    SUBSCRIPTIONS
        .iter()
        .find(|s| s.service == service && s.name == name)
        .map(|s| s.topics)
        .unwrap_or_else(|| panic!("events::topics::SUBSCRIPTIONS has no {service}.{name}"))
}

impl fmt::Display for Topic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.base_name())
    }
}

/// Maps logical topics to the names used on the broker: `{prefix}{base}` and
/// `{prefix}{base}.dlq` for its dead letters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TopicNames {
    prefix: String,
}

impl TopicNames {
    /// Names with `prefix` in front, e.g. `"staging."` gives `staging.orders`.
    pub fn new(prefix: impl Into<String>) -> Self {
        Self {
            prefix: prefix.into(),
        }
    }

    /// The prefix.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The broker name of `topic`.
    pub fn name(&self, topic: Topic) -> String {
        format!("{}{}", self.prefix, topic.base_name())
    }

    /// The broker name of `topic`'s dead-letter topic.
    pub fn dead_letter(&self, topic: Topic) -> String {
        format!("{}{}{}", self.prefix, topic.base_name(), DEAD_LETTER_SUFFIX)
    }

    /// The logical topic a broker name stands for, if it is one of ours
    /// (dead-letter topics excluded).
    pub fn parse(&self, name: &str) -> Option<Topic> {
        let base = name.strip_prefix(&self.prefix)?;
        Topic::ALL.into_iter().find(|t| t.base_name() == base)
    }
}

/// Appended to a topic's name to form its dead-letter topic.
pub const DEAD_LETTER_SUFFIX: &str = ".dlq";

/// Kafka header names. Every event record carries [`EVENT_TYPE`](headers::EVENT_TYPE),
/// [`SCHEMA_VERSION`](headers::SCHEMA_VERSION), the CloudEvents binary-mode
/// headers (`ce_*` and `content-type`, see [`crate::cloudevents`]) and, when
/// traced, [`TRACEPARENT`](headers::TRACEPARENT)/[`TRACESTATE`](headers::TRACESTATE).
/// A dead letter keeps its original headers and adds the `dlq.*` ones.
pub mod headers {
    /// The event type, e.g. `OrderPlaced`.
    pub const EVENT_TYPE: &str = "event_type";
    /// The payload's schema version, e.g. `1`.
    pub const SCHEMA_VERSION: &str = "schema_version";
    /// W3C trace context of the operation that caused the event.
    pub const TRACEPARENT: &str = "traceparent";
    /// W3C vendor trace state.
    pub const TRACESTATE: &str = "tracestate";
    /// CloudEvents: the specification version, `1.0`.
    pub const CE_SPECVERSION: &str = "ce_specversion";
    /// CloudEvents: the event's id (our `event_id`).
    pub const CE_ID: &str = "ce_id";
    /// CloudEvents: the event's type, e.g. `example.oms.OrderPlaced`.
    pub const CE_TYPE: &str = "ce_type";
    /// CloudEvents: who produced it, e.g. `/order-svc`.
    pub const CE_SOURCE: &str = "ce_source";
    /// CloudEvents: when it happened (our `occurred_at`, RFC 3339 UTC).
    pub const CE_TIME: &str = "ce_time";
    /// CloudEvents: what it is about: the record's key.
    pub const CE_SUBJECT: &str = "ce_subject";
    /// CloudEvents: the URL (`$id`) of the JSON Schema of the record's value.
    pub const CE_DATASCHEMA: &str = "ce_dataschema";
    /// CloudEvents: the value's media type, `application/json`.
    pub const CONTENT_TYPE: &str = "content-type";
    /// Dead letter: the topic the record was read from.
    pub const DLQ_ORIGINAL_TOPIC: &str = "dlq.original_topic";
    /// Dead letter: its partition.
    pub const DLQ_ORIGINAL_PARTITION: &str = "dlq.original_partition";
    /// Dead letter: its offset.
    pub const DLQ_ORIGINAL_OFFSET: &str = "dlq.original_offset";
    /// Dead letter: the consumer group that gave up on it.
    pub const DLQ_CONSUMER_GROUP: &str = "dlq.consumer_group";
    /// Dead letter: a stable, upper-case error code, e.g. `INVALID_JSON`.
    pub const DLQ_ERROR_CODE: &str = "dlq.error_code";
    /// Dead letter: the error, in words.
    pub const DLQ_ERROR: &str = "dlq.error";
    /// Dead letter: when it was dead-lettered (RFC 3339 UTC).
    pub const DLQ_FAILED_AT: &str = "dlq.failed_at";
    /// Dead letter: set when the original was too large to copy; its size in
    /// bytes. The dead letter then carries no value (and none of the
    /// original headers): the original stays readable at its coordinates.
    pub const DLQ_ORIGINAL_BYTES: &str = "dlq.original_bytes";
    /// Set on a record re-published from a dead-letter topic: when (RFC 3339 UTC).
    pub const REPLAYED_AT: &str = "oms.replayed_at";
}
