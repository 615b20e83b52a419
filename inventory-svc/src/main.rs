//! The inventory-svc binary: settings from the environment, telemetry, then [`inventory_svc::build`].

use clap::Parser;

/// mimalloc: glibc's malloc spent a fifth of the process's CPU under load
/// (`perf`), and its per-thread arenas keep what short-lived threads freed.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut settings = inventory_svc::Settings::parse();
    settings.read_secret_files()?;
    let _telemetry = service_kit::telemetry::init("inventory-svc", settings.common.log_format)?;
    let app = inventory_svc::build(settings).await?;
    service_kit::shutdown::cancel_on_signal(app.shutdown_token());
    app.run_until_stopped().await
}
