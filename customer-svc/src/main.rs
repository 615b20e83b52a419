//! The customer-svc binary: settings from the environment, telemetry, then [`customer_svc::build`].

use clap::Parser;

/// mimalloc: glibc's malloc spent a fifth of the process's CPU under load
/// (`perf`), and its per-thread arenas keep what short-lived threads freed.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut settings = customer_svc::Settings::parse();
    settings.read_secret_files()?;
    let _telemetry = service_kit::telemetry::init("customer-svc", settings.common.log_format)?;
    let app = customer_svc::build(settings).await?;
    service_kit::shutdown::cancel_on_signal(app.shutdown_token());
    app.run_until_stopped().await
}
