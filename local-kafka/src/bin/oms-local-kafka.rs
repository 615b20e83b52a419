//! Starts a single-node Apache Kafka on loopback for local runs and test
//! scripts, prints its bootstrap address, and returns while the broker keeps
//! running (until `--watch-pid`'s process exits, when given).
//!
//! ```text
//! oms-local-kafka [--data-dir DIR] [--port PORT] [--watch-pid PID] [--ephemeral]
//!                 [--sasl-ssl-user NAME --sasl-ssl-password PASSWORD]
//! oms-local-kafka --brokers 3 [--data-dir DIR] [--watch-pid PID]
//! ```
//!
//! With a SASL_SSL user, a second line gives the SASL_SSL listener's
//! address and the CA certificate clients trust. With `--brokers N` (more
//! than one), a replicated cluster starts instead (see
//! [`local_kafka::start_cluster`]) and the line names every broker.

use std::path::PathBuf;

use local_kafka::{ClusterOptions, ScramUser, StartOptions, start, start_cluster};

fn main() -> anyhow::Result<()> {
    let mut options = StartOptions {
        data_dir: PathBuf::from("data/kafka"),
        broker_port: None,
        watch_pid: None,
        remove_data_on_exit: false,
        sasl_ssl: None,
    };
    let (mut user, mut password) = (None, None);
    let mut brokers = 1;
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
            "--brokers" => brokers = value()?.parse()?,
            "--sasl-ssl-user" => user = Some(value()?),
            "--sasl-ssl-password" => password = Some(value()?),
            "-h" | "--help" => {
                println!(
                    "usage: oms-local-kafka [--data-dir DIR] [--port PORT] [--watch-pid PID] [--ephemeral] \
                     [--sasl-ssl-user NAME --sasl-ssl-password PASSWORD] | --brokers N [--data-dir DIR] \
                     [--watch-pid PID]"
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
    if brokers > 1 {
        anyhow::ensure!(
            options.broker_port.is_none()
                && options.sasl_ssl.is_none()
                && !options.remove_data_on_exit,
            "--brokers takes only --data-dir and --watch-pid"
        );
        let cluster = start_cluster(&ClusterOptions {
            data_dir: options.data_dir,
            brokers,
            watch_pid: options.watch_pid,
        })?;
        println!("{}", cluster.bootstrap);
        return Ok(());
    }
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
