//! Assembles inventory-svc: database, topics, relay, consumers, the hold
//! sweeper, HTTP.

use events::Topic;
use service_kit::{App, ServiceBuilder};

use crate::app::stock::Stock;
use crate::config::Settings;
use crate::http::AppState;
use crate::persistence::migrations::Migrator;

/// The topics inventory-svc publishes to or consumes from.
pub const TOPICS: &[Topic] = &[Topic::Orders, Topic::Inventory, Topic::Catalog];

/// Builds and starts inventory-svc; [`App::run_until_stopped`] keeps it running.
///
/// # Errors
/// When the database or the broker is unreachable, or the address is taken.
pub async fn build(settings: Settings) -> anyhow::Result<App> {
    let mut builder = ServiceBuilder::start::<Migrator>(settings.service(), TOPICS).await?;
    let participant = Stock::new(settings.clock.clone());
    builder.take_part_in_saga(participant, &settings.holds, &settings.clock)?;
    let state = AppState {
        db: builder.db().clone(),
        outbox: builder.outbox().clone(),
        clock: settings.clock.clone(),
    };
    builder.serve(crate::http::router(state), "inventory-svc", "Owns the catalog, stock levels and per-order reservations; never oversells. Takes part in the order saga.").await
}
