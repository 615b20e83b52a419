//! W3C trace context (`traceparent`, `tracestate`) into and out of Kafka
//! headers, so that one trace covers an HTTP request, the outbox, the broker
//! and every consumer the event reaches.
//!
//! The context is captured from the current `tracing` span when an event is
//! written to the outbox, stored beside it, sent as headers by the relay, and
//! restored as the parent of the consumer's span for that record. Without an
//! OpenTelemetry layer installed (see service-kit's telemetry) spans carry no
//! context and the headers are simply absent.

use std::collections::HashMap;

use opentelemetry::propagation::TextMapPropagator;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use events::topics::headers;

/// A captured trace context, as it travels in headers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TraceContext {
    /// The W3C `traceparent` header value.
    pub traceparent: Option<String>,
    /// The W3C `tracestate` header value.
    pub tracestate: Option<String>,
}

impl TraceContext {
    /// The context of the current `tracing` span, if it has one.
    pub fn current() -> Self {
        let context = tracing::Span::current().context();
        let mut carrier: HashMap<String, String> = HashMap::new();
        TraceContextPropagator::new().inject_context(&context, &mut carrier);
        Self {
            traceparent: carrier.remove(headers::TRACEPARENT),
            tracestate: carrier
                .remove(headers::TRACESTATE)
                .filter(|s| !s.is_empty()),
        }
    }

    /// The span this context names, to link to; `None` without a valid
    /// `traceparent`.
    pub fn span_context(&self) -> Option<opentelemetry::trace::SpanContext> {
        use opentelemetry::trace::TraceContextExt;
        let traceparent = self.traceparent.as_ref()?;
        let mut carrier: HashMap<String, String> = HashMap::new();
        carrier.insert(headers::TRACEPARENT.into(), traceparent.clone());
        if let Some(tracestate) = &self.tracestate {
            carrier.insert(headers::TRACESTATE.into(), tracestate.clone());
        }
        let context = TraceContextPropagator::new().extract(&carrier);
        let span_context = context.span().span_context().clone();
        span_context.is_valid().then_some(span_context)
    }

    /// Makes this context the parent of `span`. Does nothing when there is no
    /// `traceparent` or it is malformed: a bad header never fails a record.
    pub fn set_as_parent_of(&self, span: &tracing::Span) {
        let Some(traceparent) = &self.traceparent else {
            return;
        };
        let mut carrier: HashMap<String, String> = HashMap::new();
        carrier.insert(headers::TRACEPARENT.into(), traceparent.clone());
        if let Some(tracestate) = &self.tracestate {
            carrier.insert(headers::TRACESTATE.into(), tracestate.clone());
        }
        let parent = TraceContextPropagator::new().extract(&carrier);
        // Fails only when the span is disabled or has no OpenTelemetry layer,
        // in which case there is nothing to link.
        let _ = span.set_parent(parent);
    }
}
