//! Assembles customer-svc: database, topics, relay, consumers, HTTP.

use events::Topic;
use service_kit::{App, ServiceBuilder};

use crate::config::Settings;
use crate::persistence::migrations::Migrator;

/// The topics customer-svc publishes to or consumes from.
pub const TOPICS: &[Topic] = &[Topic::Orders, Topic::Customers];

/// Builds and starts customer-svc; [`App::run_until_stopped`] keeps it running.
///
/// # Errors
/// When the database or the broker is unreachable, or the address is taken.
pub async fn build(settings: Settings) -> anyhow::Result<App> {
    let builder = ServiceBuilder::start::<Migrator>(settings.service(), TOPICS).await?;
    builder.serve(crate::http::router(), "customer-svc", "Owns customer profiles and credit; validates the customer of every order, reserves credit in the saga, and issues the tokens every service checks.").await
}
