//! Assembles order-svc: database, topics, relay, consumers, HTTP.

use events::Topic;
use service_kit::{App, ServiceBuilder};

use crate::config::Settings;
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
/// When the database or the broker is unreachable, or the address is taken.
pub async fn build(settings: Settings) -> anyhow::Result<App> {
    let builder = ServiceBuilder::start::<Migrator>(settings.service(), TOPICS).await?;
    builder.serve(crate::http::router(), "order-svc", "Accepts orders, emits OrderPlaced, and runs the saga that confirms, rejects, cancels and compensates.").await
}
