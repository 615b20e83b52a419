//! `oms outbox list|retry`: the outbox rows a service's relay set aside
//! after repeated failures (see `event_runtime::outbox`), and putting
//! them back in line once their cause is fixed. The relay then publishes
//! them, and the rows of their keys that waited behind them, in order.

use event_runtime::OutboxRelay;
use event_runtime::storage::outbox_message;
use sea_orm::{Database, DatabaseConnection};
use serde_json::{Value, json};

/// Which service database.
#[derive(Debug, Clone, clap::Args)]
pub struct OutboxArgs {
    /// The service's database: `postgres://…/oms_order` or
    /// `sqlite://data/order.db` (the file `oms up` keeps).
    #[arg(long)]
    pub database_url: String,
}

async fn connect(args: &OutboxArgs) -> anyhow::Result<DatabaseConnection> {
    let url = service_kit::database::without_tls_on_loopback(&args.database_url);
    Database::connect(url.as_str())
        .await
        .map_err(|e| anyhow::anyhow!("cannot open {}: {e}", args.database_url))
}

/// A set-aside row as operators see it.
pub fn describe(row: &outbox_message::Model) -> Value {
    json!({
        "id": row.id,
        "event_id": row.event_id,
        "topic": row.topic,
        "key": row.message_key,
        "event_type": row.event_type,
        "attempts": row.attempts,
        "last_error": row.last_error,
        "created_at": row.created_at,
        "parked_at": row.parked_at,
    })
}

/// The set-aside rows, oldest first.
///
/// # Errors
/// When the database cannot be opened or read.
pub async fn list(args: &OutboxArgs) -> anyhow::Result<Vec<outbox_message::Model>> {
    let db = connect(args).await?;
    Ok(OutboxRelay::parked(&db).await?)
}

/// Prints `rows` as text, one per line.
pub fn print(rows: &[outbox_message::Model]) {
    for row in rows {
        println!(
            "{:>8}  {}  {:<10} {:<38} {:<16} attempts {}  {}",
            row.id,
            row.parked_at.map(|t| t.to_rfc3339()).unwrap_or_default(),
            row.topic,
            row.message_key,
            row.event_type,
            row.attempts,
            super::escape_control(row.last_error.as_deref().unwrap_or("")),
        );
    }
    eprintln!("{} row(s) set aside", rows.len());
}

/// The set-aside rows [`retry`] would put back in line: those with `ids`,
/// or all.
///
/// # Errors
/// When the database cannot be opened or read.
pub async fn planned_retry(
    args: &OutboxArgs,
    ids: &[i64],
) -> anyhow::Result<Vec<outbox_message::Model>> {
    let mut rows = list(args).await?;
    rows.retain(|row| ids.is_empty() || ids.contains(&row.id));
    Ok(rows)
}

/// Puts set-aside rows back in line: those with `ids`, or all.
///
/// # Errors
/// When the database cannot be opened or written.
pub async fn retry(args: &OutboxArgs, ids: &[i64]) -> anyhow::Result<u64> {
    let db = connect(args).await?;
    let ids = (!ids.is_empty()).then_some(ids);
    Ok(OutboxRelay::retry_parked(&db, ids).await?)
}
