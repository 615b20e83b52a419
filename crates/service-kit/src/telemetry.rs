//! Logs and traces. [`subscriber`] builds the `tracing` subscriber (env
//! filter, pretty or JSON lines, OpenTelemetry layer); [`init`] installs it
//! globally and returns a guard that flushes traces on drop.
//!
//! The OpenTelemetry layer is always present, so spans always carry a trace
//! context that the outbox can propagate through Kafka. Spans are exported
//! over OTLP/gRPC only when `OTEL_EXPORTER_OTLP_ENDPOINT` is set.

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
    let lines = match format {
        LogFormat::Pretty => tracing_subscriber::fmt::layer().boxed(),
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .boxed(),
    };
    let otel = tracing_opentelemetry::layer().with_tracer(provider.tracer(service_name));
    tracing_subscriber::registry()
        .with(filter)
        .with(lines)
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
