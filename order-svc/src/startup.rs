//! Assembles order-svc: database, topics, relay, the saga and catalog
//! consumers, the deadline sweeper, HTTP.

use std::time::Duration;

use event_runtime::GroupCommitSettings;
use events::Topic;
use events::topics::subscription;
use service_kit::{App, ServiceBuilder};

use crate::app::admission::Admission;
use crate::app::deadlines::DeadlineSweeper;
use crate::app::orders::{OrderDesk, OrderPolicy};
use crate::config::{SERVICE_NAME, Settings};
use crate::consumer::{CatalogSync, SagaReplies, TimelineProjection};
use crate::http::AppState;
use crate::persistence::migrations::Migrator;

/// The topics order-svc publishes to or consumes from.
pub const TOPICS: &[Topic] = &[
    Topic::Orders,
    Topic::Inventory,
    Topic::Customers,
    Topic::Catalog,
];

/// Builds and starts order-svc; [`App::run_until_stopped`] keeps it running.
///
/// # Errors
/// Invalid settings, an unreachable database or broker, or a taken address.
pub async fn build(settings: Settings) -> anyhow::Result<App> {
    anyhow::ensure!(
        settings.saga_deadline_secs > 0,
        "OMS_SAGA_DEADLINE_SECS must be at least 1"
    );
    let policy = OrderPolicy {
        saga_deadline: Duration::from_secs(settings.saga_deadline_secs),
        idempotency_ttl: Duration::from_secs(settings.idempotency_ttl_secs),
    };
    let mut builder = ServiceBuilder::start::<Migrator>(settings.service(), TOPICS).await?;
    // The saga moves an order only forward and keeps each event id once in
    // its timeline: a reply delivered twice changes nothing, without inbox.
    builder.consume_by_state(
        "saga",
        subscription(SERVICE_NAME, "saga"),
        SagaReplies {
            clock: settings.clock.clone(),
        },
    )?;
    // The catalog copy is a projection (upserts that never go back in time):
    // no inbox, so replaying the catalog topic rebuilds it.
    builder.project(
        "catalog",
        subscription(SERVICE_NAME, "catalog"),
        CatalogSync,
    )?;
    // The saga and the commands write the timeline; this consumer only
    // rebuilds it from records an operator re-drives.
    builder.rebuild_from_replays(
        "timeline",
        subscription(SERVICE_NAME, "timeline"),
        TimelineProjection,
    )?;
    let sweeper = DeadlineSweeper {
        db: builder.db().clone(),
        outbox: builder.outbox().clone(),
        idle: Duration::from_secs(1),
        clock: settings.clock.clone(),
    };
    let token = builder.shutdown_token();
    builder.spawn("deadline sweeper", sweeper.run_until_stopped(token));
    let admission = Admission::new(settings.max_pending_orders, policy.saga_deadline);
    let token = builder.shutdown_token();
    builder.spawn(
        "admission",
        admission
            .clone()
            .run_until_stopped(builder.db().clone(), settings.clock.clone(), token),
    );
    let desk = OrderDesk::start(
        builder.db().clone(),
        builder.outbox().clone(),
        policy,
        settings.clock.clone(),
        GroupCommitSettings::for_backend(builder.db()),
        admission,
    );
    let token = builder.shutdown_token();
    builder.spawn(
        "order metrics",
        crate::app::orders::export_metrics(desk.clone(), Duration::from_secs(10), token),
    );
    let state = AppState {
        db: builder.db().clone(),
        desk,
    };
    builder
        .serve(
            crate::http::router(state),
            "order-svc",
            "Accepts orders, emits OrderPlaced, and runs the saga that confirms, rejects, cancels and compensates.",
        )
        .await
}
