//! Logs and traces. [`subscriber`] builds the `tracing` subscriber (env
//! filter, pretty or JSON lines, OpenTelemetry layer); [`init`] installs it
//! globally and returns a guard that flushes traces on drop.
//!
//! The OpenTelemetry layer is always present, and sees every span at INFO
//! and above whatever `RUST_LOG` lets through to the log lines (per-layer
//! filters): spans always carry a trace context, so every record the outbox
//! writes has a W3C `traceparent` that subscribers can join. Spans are
//! exported over OTLP/gRPC only when `OTEL_EXPORTER_OTLP_ENDPOINT` is set;
//! without it they are not sampled (no recording, only the ids).
//!
//! Log lines carry ANSI colours only when standard output is a terminal:
//! `oms up > file` writes plain text.

use std::io::IsTerminal;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing::Subscriber;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

use crate::settings::LogFormat;

/// Flushes and shuts down the tracer provider when dropped.
pub struct TelemetryGuard {
    provider: SdkTracerProvider,
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        if let Err(error) = self.provider.shutdown() {
            eprintln!("could not flush traces: {error}");
        }
    }
}

/// The tracer provider for `service_name`, exporting over OTLP when
/// `OTEL_EXPORTER_OTLP_ENDPOINT` is set.
///
/// # Errors
/// When the OTLP exporter cannot be built.
pub fn tracer_provider(service_name: &'static str) -> anyhow::Result<SdkTracerProvider> {
    let mut builder = SdkTracerProvider::builder()
        .with_resource(Resource::builder().with_service_name(service_name).build());
    // Set but empty (as docker-compose passes an unset variable) means off.
    if std::env::var("OTEL_EXPORTER_OTLP_ENDPOINT").is_ok_and(|v| !v.trim().is_empty()) {
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_tonic()
            .build()?;
        builder = builder.with_batch_exporter(exporter);
    } else {
        // Nothing is exported: spans keep their ids (for `traceparent`)
        // and record nothing.
        builder = builder.with_sampler(opentelemetry_sdk::trace::Sampler::AlwaysOff);
    }
    Ok(builder.build())
}

/// The subscriber: `RUST_LOG` filter (else `default_filter`), log lines in
/// `format`, and an OpenTelemetry layer over `provider`.
pub fn subscriber(
    service_name: &'static str,
    format: LogFormat,
    provider: &SdkTracerProvider,
    default_filter: &str,
) -> impl Subscriber + Send + Sync {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    let colours = std::io::stdout().is_terminal();
    let lines = match format {
        LogFormat::Pretty => tracing_subscriber::fmt::layer().with_ansi(colours).boxed(),
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .boxed(),
    };
    // Spans of every level from INFO reach OpenTelemetry even when the log
    // filter is quieter (`oms up` logs warnings only): the trace context of
    // every event depends on them. Libraries' debug spans stay out. Events
    // do not: when two per-layer filters disagree about an event (an INFO
    // event the log filter drops and this one kept), tracing-subscriber
    // 0.3 could drop the log layer's next events too, and a WARN line such
    // as "waiting for Kafka" never appeared under `RUST_LOG=warn`.
    let otel = tracing_opentelemetry::layer()
        .with_tracer(provider.tracer(service_name))
        .with_filter(tracing_subscriber::filter::filter_fn(|metadata| {
            metadata.is_span() && *metadata.level() <= tracing::Level::INFO
        }));
    tracing_subscriber::registry()
        .with(lines.with_filter(filter))
        .with(otel)
}

/// Installs logging and tracing for the process.
///
/// # Errors
/// When a global subscriber is already installed or the exporter fails.
pub fn init(service_name: &'static str, format: LogFormat) -> anyhow::Result<TelemetryGuard> {
    init_with_default_filter(service_name, format, "info")
}

/// As [`init`], with `default_filter` when `RUST_LOG` is not set.
///
/// # Errors
/// As [`init`].
pub fn init_with_default_filter(
    service_name: &'static str,
    format: LogFormat,
    default_filter: &str,
) -> anyhow::Result<TelemetryGuard> {
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
    let provider = tracer_provider(service_name)?;
    opentelemetry::global::set_tracer_provider(provider.clone());
    subscriber(service_name, format, &provider, default_filter).try_init()?;
    Ok(TelemetryGuard { provider })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// With logs at WARN (as `oms up` runs), an INFO span still carries a
    /// trace context, so the events it writes carry a `traceparent`.
    #[test]
    fn spans_carry_a_trace_context_whatever_the_log_filter() {
        let provider = tracer_provider("test").unwrap();
        let subscriber = subscriber("test", LogFormat::Json, &provider, "warn");
        tracing::subscriber::with_default(subscriber, || {
            let span = tracing::info_span!("request");
            let _entered = span.enter();
            let context = event_runtime::trace::TraceContext::current();
            let traceparent = context.traceparent.expect("a traceparent");
            assert_eq!(traceparent.len(), 55, "{traceparent}");
            assert!(traceparent.starts_with("00-"), "{traceparent}");
            let child = tracing::info_span!("record");
            let child_context = {
                let _entered = child.enter();
                event_runtime::trace::TraceContext::current()
                    .traceparent
                    .unwrap()
            };
            assert_eq!(
                child_context[3..35],
                traceparent[3..35],
                "one trace id across nested spans"
            );
        });
    }
}
