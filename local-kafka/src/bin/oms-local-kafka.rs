//! Starts a single-node Apache Kafka on loopback for local runs and test
//! scripts, prints its bootstrap address, and returns while the broker keeps
//! running (until `--watch-pid`'s process exits, when given).
//!
//! ```text
//! oms-local-kafka [--data-dir DIR] [--port PORT] [--watch-pid PID] [--ephemeral]
//!                 [--sasl-ssl-user NAME --sasl-ssl-password PASSWORD]
//! ```
//!
//! With a SASL_SSL user, a second line gives the SASL_SSL listener's
//! address and the CA certificate clients trust.

use std::path::PathBuf;

use local_kafka::{ScramUser, StartOptions, start};

fn main() -> anyhow::Result<()> {
    let mut options = StartOptions {
        data_dir: PathBuf::from("data/kafka"),
        broker_port: None,
        watch_pid: None,
        remove_data_on_exit: false,
        sasl_ssl: None,
    };
    let (mut user, mut password) = (None, None);
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
            "--sasl-ssl-user" => user = Some(value()?),
            "--sasl-ssl-password" => password = Some(value()?),
            "-h" | "--help" => {
                println!(
                    "usage: oms-local-kafka [--data-dir DIR] [--port PORT] [--watch-pid PID] [--ephemeral] \
                     [--sasl-ssl-user NAME --sasl-ssl-password PASSWORD]"
                );
                return Ok(());
            }
            other => anyhow::bail!("unknown argument {other}; see --help"),
        }
    }
    options.sasl_ssl = match (user, password) {
        (Some(username), Some(password)) => Some(ScramUser { username, password }),
        (None, None) => None,
        _ => anyhow::bail!("--sasl-ssl-user and --sasl-ssl-password go together"),
    };
    let broker = start(&options)?;
    println!("{}", broker.bootstrap);
    if let Some(listener) = &broker.sasl_ssl {
        println!(
            "SASL_SSL {} (CA {})",
            listener.bootstrap,
            listener.ca_location.display()
        );
    }
    Ok(())
}
