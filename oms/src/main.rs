//! The `oms` binary: parses the command line and runs the command.

use std::process::ExitCode;

use clap::Parser;

/// mimalloc: glibc's malloc spent a fifth of the process's CPU under load
/// (`perf`), and its per-thread arenas keep what short-lived threads freed.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
