//! The `oms` binary: parses the command line and runs the command.

use std::process::ExitCode;

use clap::Parser;

#[tokio::main]
async fn main() -> ExitCode {
    match oms::Cli::parse().run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            // The whole cause chain, without a backtrace: this is for people.
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
