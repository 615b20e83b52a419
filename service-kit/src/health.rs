//! Operations endpoints: liveness, readiness and Prometheus metrics.
//!
//! Metrics every service exports (besides HTTP request counts and latency):
//! `oms_consumer_lag`, `oms_outbox_backlog`, `oms_outbox_published_total`,
//! `oms_batch_duration_seconds` and `oms_batch_phase_seconds` (and phase:
//! begin, inbox, load, apply, save, outbox, commit),
//! `oms_events_processed_total`, `oms_events_duplicate_total`,
//! `oms_group_commit_items`, `oms_dead_letters_total` (and `error_type`,
//! the dead letter's code), `oms_outbox_parked_total` (rows set aside after
//! repeated failures), `oms_outbox_producer_rebuilt_total`,
//! `oms_consumer_batch_retries_total` and `oms_outbox_relay_retries_total`
//! (failed rounds), and the HTTP server's `oms_http_connections_open` and
//! `oms_http_connections_refused_total` (per reason). order-svc adds
//! `oms_orders{status}`, `oms_orders_decided_last_minute` and
//! `oms_order_decision_seconds{outcome}`.
//!
//! Labels about Kafka are OpenTelemetry's messaging attribute names with
//! their dots made underscores (Prometheus allows none):
//! `messaging_consumer_group_name`, `messaging_destination_name` (the
//! topic), `messaging_destination_partition_id`.
//!
//! Every latency is a histogram in seconds, so that a
//! `histogram_quantile` over the sum of the instances' bucket rates gives
//! the quantile of the whole system; buckets span 1 ms to 10 s, and 10 ms
//! to 5 minutes for `oms_order_decision_seconds` (an order waits for its
//! saga's deadline, 30 s by default). `oms_group_commit_items` counts
//! requests, with buckets from 1 to 500.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use rdkafka::consumer::{BaseConsumer, Consumer};
use sea_orm::DatabaseConnection;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use event_runtime::{ConsumerHealth, RelayHealth};

use crate::extract::Json;
use crate::problem::Problem;

static PROMETHEUS: OnceLock<PrometheusHandle> = OnceLock::new();

/// The process-wide Prometheus recorder, installed on first use.
pub fn prometheus() -> PrometheusHandle {
    PROMETHEUS
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets(&[
                    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
                ])
                .and_then(|b| {
                    b.set_buckets_for_metric(
                        Matcher::Full("oms_order_decision_seconds".into()),
                        &[
                            0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
                            120.0, 300.0,
                        ],
                    )
                })
                .and_then(|b| {
                    b.set_buckets_for_metric(
                        Matcher::Full("oms_group_commit_items".into()),
                        &[1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0],
                    )
                })
                .expect("bucket lists are not empty");
            let recorder = builder.build_recorder();
            let handle = recorder.handle();
            if metrics::set_global_recorder(recorder).is_err() {
                tracing::warn!("another metrics recorder is installed; /metrics will be empty");
            }
            handle
        })
        .clone()
}

/// What readiness checks: the service's database and its broker.
#[derive(Clone)]
pub struct Probes {
    db: DatabaseConnection,
    kafka: Arc<BaseConsumer>,
    metrics: PrometheusHandle,
    relay: Option<RelayHealth>,
    consumers: Vec<ConsumerHealth>,
}

impl Probes {
    /// Probes of `db` and the cluster at `kafka`.
    ///
    /// # Errors
    /// When the Kafka client cannot be created.
    pub fn new(
        db: DatabaseConnection,
        kafka: &event_runtime::KafkaSettings,
        service: &str,
    ) -> anyhow::Result<Self> {
        Ok(Self {
            db,
            kafka: Arc::new(
                kafka
                    .client_config(&format!("{service}-readiness"))
                    .create()?,
            ),
            metrics: prometheus(),
            relay: None,
            consumers: Vec::new(),
        })
    }

    /// Also reports whether the service's outbox relay makes progress.
    #[must_use]
    pub fn with_relay(mut self, relay: RelayHealth) -> Self {
        self.relay = Some(relay);
        self
    }

    /// Also reports whether the service's consumers get through their
    /// batches.
    #[must_use]
    pub fn with_consumers(mut self, consumers: Vec<ConsumerHealth>) -> Self {
        self.consumers = consumers;
        self
    }
}

/// Liveness answer.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Health {
    /// Always `ok` when the process answers.
    pub status: String,
}

/// Readiness answer: each dependency's state.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Readiness {
    /// `ok` or the error.
    pub database: String,
    /// `ok` or the error.
    pub kafka: String,
    /// `ok`, or why the outbox relay publishes nothing while rows wait.
    pub outbox_relay: String,
    /// `ok`, or which consumer groups are stuck on a batch.
    pub consumers: String,
}

/// The process is alive.
#[utoipa::path(get, path = "/healthz", tag = "operations",
    responses((status = 200, description = "Alive", body = Health)))]
async fn healthz() -> Json<Health> {
    Json(Health {
        status: "ok".into(),
    })
}

/// The database and the broker are reachable, the outbox relay makes
/// progress (it published something, or had nothing to publish, within
/// `OMS_STALL_AFTER_SECS`), and no consumer has worked on one batch,
/// retries included, for longer than that.
#[utoipa::path(get, path = "/readyz", tag = "operations",
    responses(
        (status = 200, description = "Ready", body = Readiness),
        (status = 503, description = "A dependency is unreachable", body = Problem, content_type = "application/problem+json"),
    ))]
async fn readyz(State(probes): State<Probes>) -> Result<Json<Readiness>, Problem> {
    let database = match probes.db.ping().await {
        Ok(()) => "ok".to_owned(),
        Err(error) => error.to_string(),
    };
    let kafka_client = probes.kafka.clone();
    let kafka = match tokio::task::spawn_blocking(move || {
        kafka_client.fetch_metadata(None, Duration::from_secs(2))
    })
    .await
    {
        Ok(Ok(metadata)) if !metadata.brokers().is_empty() => "ok".to_owned(),
        Ok(Ok(_)) => "no brokers".to_owned(),
        Ok(Err(error)) => error.to_string(),
        Err(error) => error.to_string(),
    };
    let outbox_relay = probes
        .relay
        .as_ref()
        .and_then(RelayHealth::stalled)
        .unwrap_or_else(|| "ok".to_owned());
    let stuck: Vec<String> = probes
        .consumers
        .iter()
        .filter_map(ConsumerHealth::stalled)
        .collect();
    let consumers = if stuck.is_empty() {
        "ok".to_owned()
    } else {
        stuck.join("; ")
    };
    if database == "ok" && kafka == "ok" && outbox_relay == "ok" && consumers == "ok" {
        Ok(Json(Readiness {
            database,
            kafka,
            outbox_relay,
            consumers,
        }))
    } else {
        Err(Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "NOT_READY",
            "A dependency is unreachable, or the outbox relay or a consumer makes no progress",
        )
        .with_extension("database", database)
        .with_extension("kafka", kafka)
        .with_extension("outbox_relay", outbox_relay)
        .with_extension("consumers", consumers))
    }
}

/// Prometheus metrics in the text exposition format.
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "Prometheus text format", body = String, content_type = "text/plain")))]
async fn metrics(State(probes): State<Probes>) -> impl IntoResponse {
    probes.metrics.run_upkeep();
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        probes.metrics.render(),
    )
}

/// The operations routes.
pub fn router(probes: Probes) -> OpenApiRouter {
    OpenApiRouter::new()
        .routes(routes!(healthz))
        .routes(routes!(readyz))
        .routes(routes!(metrics))
        .with_state(probes)
}
