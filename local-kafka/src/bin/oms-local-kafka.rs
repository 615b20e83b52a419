//! Starts a single-node Apache Kafka on loopback for local runs and test
//! scripts, prints its bootstrap address, and returns while the broker keeps
//! running (until `--watch-pid`'s process exits, when given).
//!
//! ```text
//! oms-local-kafka [--data-dir DIR] [--port PORT] [--watch-pid PID] [--ephemeral]
//! ```

use std::path::PathBuf;

use local_kafka::{StartOptions, start};

fn main() -> anyhow::Result<()> {
    let mut options = StartOptions {
        data_dir: PathBuf::from("data/kafka"),
        broker_port: None,
        watch_pid: None,
        remove_data_on_exit: false,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || {
            args.next()
                .ok_or_else(|| anyhow::anyhow!("{arg} needs a value"))
        };
        match arg.as_str() {
            "--data-dir" => options.data_dir = PathBuf::from(value()?),
            "--port" => options.broker_port = Some(value()?.parse()?),
            "--watch-pid" => options.watch_pid = Some(value()?.parse()?),
            "--ephemeral" => options.remove_data_on_exit = true,
            "-h" | "--help" => {
                println!(
                    "usage: oms-local-kafka [--data-dir DIR] [--port PORT] [--watch-pid PID] [--ephemeral]"
                );
                return Ok(());
            }
            other => anyhow::bail!("unknown argument {other}; see --help"),
        }
    }
    let broker = start(&options)?;
    println!("{}", broker.bootstrap);
    Ok(())
}
