//! Assembles inventory-svc: database, topics, relay, consumers, the hold
//! sweeper, HTTP.

use events::Topic;
use events::topics::subscription;
use service_kit::holds::HoldSweeper;
use service_kit::{App, ServiceBuilder};

use crate::app::stock::Stock;
use crate::config::Settings;
use crate::consumer::OrderEvents;
use crate::http::AppState;
use crate::persistence::migrations::Migrator;

/// The topics inventory-svc publishes to or consumes from.
pub const TOPICS: &[Topic] = &[Topic::Orders, Topic::Inventory, Topic::Catalog];

/// How often the hold sweeper looks for expired reservations: far below
/// the default grace of five minutes.
const HOLD_SWEEP_IDLE: std::time::Duration = std::time::Duration::from_secs(5);

/// Builds and starts inventory-svc; [`App::run_until_stopped`] keeps it running.
///
/// # Errors
/// When the database or the broker is unreachable, or the address is taken.
pub async fn build(settings: Settings) -> anyhow::Result<App> {
    let mut builder = ServiceBuilder::start::<Migrator>(settings.service(), TOPICS).await?;
    builder.consume(
        "saga",
        subscription(crate::SERVICE_NAME, "saga"),
        OrderEvents::new(
            Stock::new(settings.clock.clone()),
            settings.holds.default_deadline(),
        ),
    )?;
    let sweeper = HoldSweeper {
        participant: Stock::new(settings.clock.clone()),
        db: builder.db().clone(),
        outbox: builder.outbox().clone(),
        clock: settings.clock.clone(),
        grace: settings.holds.grace(),
        idle: HOLD_SWEEP_IDLE,
        kafka: builder.kafka().clone(),
        group: builder.consumer_group("saga"),
    };
    let token = builder.shutdown_token();
    builder.spawn("hold sweeper", sweeper.run_until_stopped(token));
    let state = AppState {
        db: builder.db().clone(),
        outbox: builder.outbox().clone(),
        clock: settings.clock.clone(),
    };
    builder.serve(crate::http::router(state), "inventory-svc", "Owns the catalog, stock levels and per-order reservations; never oversells. Takes part in the order saga.").await
}
