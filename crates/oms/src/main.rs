//! The `oms` binary: parses the command line and runs the command.

use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    oms::Cli::parse().run().await
}
