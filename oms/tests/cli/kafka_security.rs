//! The system over a Kafka that requires TLS and SASL, as every managed
//! Kafka does, configured with the production guide's own recipe (docs/production.md): a broker with a
//! SASL_SSL listener only clients use (SCRAM-SHA-512, a certificate signed
//! by a CA made at its start), `oms up`'s three services placing and
//! confirming an order through it, and the operator's tools reading it.
//! A wrong password ends a start, and a tool, with one line.

use std::process::{Command, Output};
use std::sync::OnceLock;

use local_kafka::{LocalKafka, SaslSslListener, ScramUser, StartOptions};
use rstest::rstest;
use testkit::{Backend, TestDatabasePrefix};

use crate::starting::{
    data_dir, exit_of, lines_of, oms_up, oms_up_with_prefix, output_text, served_urls,
    stop_with_ctrl_c,
};
use crate::up::confirmed_order;

const USER: &str = "oms-test";
const PASSWORD: &str = "scram-password-1";

/// One secured broker for the tests of this module, stopped with the
/// test process.
fn secured_broker() -> &'static SaslSslListener {
    static BROKER: OnceLock<LocalKafka> = OnceLock::new();
    BROKER
        .get_or_init(|| {
            let options = StartOptions {
                data_dir: std::env::temp_dir()
                    .join(format!("oms-sasl-kafka-{}", uuid::Uuid::now_v7())),
                broker_port: None,
                watch_pid: Some(std::process::id()),
                remove_data_on_exit: true,
                sasl_ssl: Some(ScramUser {
                    username: USER.into(),
                    password: PASSWORD.into(),
                }),
            };
            local_kafka::start(&options).expect("a broker with a SASL_SSL listener starts")
        })
        .sasl_ssl
        .as_ref()
        .expect("the SASL_SSL listener")
}

/// The variables of the production guide's "Kafka with SASL and TLS"
/// recipe (`docs/production.md`, linked from the README), as it prints
/// them (values included).
fn readme_recipe() -> Vec<(String, String)> {
    let readme = std::fs::read_to_string(testkit::repo_root().join("docs/production.md")).unwrap();
    let section = readme
        .split("**Kafka with SASL and TLS.**")
        .nth(1)
        .expect("the production guide's Kafka with SASL and TLS recipe");
    let block = section
        .split("```sh")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("the recipe's shell block");
    block
        .lines()
        .filter_map(|line| line.trim().split_once('='))
        .map(|(name, value)| {
            let value = value.split_whitespace().next().unwrap_or_default();
            (name.to_owned(), value.to_owned())
        })
        .collect()
}

/// The recipe with this broker's address, CA and user in place of the
/// guide's examples; the protocol and mechanism as the guide says.
fn recipe_for(listener: &SaslSslListener, password: &str) -> Vec<(String, String)> {
    let recipe = readme_recipe();
    let names: Vec<&str> = recipe.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "OMS_KAFKA_BOOTSTRAP",
            "OMS_KAFKA_SECURITY_PROTOCOL",
            "OMS_KAFKA_SASL_MECHANISM",
            "OMS_KAFKA_SASL_USERNAME",
            "OMS_KAFKA_SASL_PASSWORD",
            "OMS_KAFKA_SSL_CA_LOCATION",
        ],
        "the production guide's recipe changed: {recipe:?}"
    );
    recipe
        .into_iter()
        .map(|(name, value)| {
            let value = match name.as_str() {
                "OMS_KAFKA_BOOTSTRAP" => listener.bootstrap.clone(),
                "OMS_KAFKA_SASL_USERNAME" => USER.to_owned(),
                "OMS_KAFKA_SASL_PASSWORD" => password.to_owned(),
                "OMS_KAFKA_SSL_CA_LOCATION" => listener.ca_location.display().to_string(),
                _ => value,
            };
            (name, value)
        })
        .collect()
}

/// `oms` with the recipe's variables and the test's topic prefix, and no
/// other `OMS_*` variable of the environment.
fn oms_tool(recipe: &[(String, String)], prefix: &str, args: &[&str]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_oms"));
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("OMS_") {
            command.env_remove(name);
        }
    }
    command
        .args(args)
        .envs(recipe.iter().map(|(n, v)| (n, v)))
        .env("OMS_TOPIC_PREFIX", prefix)
        .output()
        .unwrap()
}

/// The three services place and confirm an order through the SASL_SSL
/// listener with the production guide's recipe; `oms tail`, `oms replay --dry-run`
/// and `oms dlq list` read the same topics through it.
#[rstest]
#[case::postgres(Backend::Postgres)]
#[case::sqlite(Backend::Sqlite)]
#[tokio::test]
async fn the_saga_and_the_operators_tools_run_over_sasl_ssl_with_the_readmes_recipe(
    #[case] backend: Backend,
) {
    let listener = tokio::task::spawn_blocking(secured_broker).await.unwrap();
    let recipe = recipe_for(listener, PASSWORD);
    let databases = match backend {
        Backend::Postgres => Some(TestDatabasePrefix::create().await),
        Backend::Sqlite => None,
    };
    let dir = data_dir();
    let prefix = testkit::topic_prefix();
    let mut child = oms_up_with_prefix(&listener.bootstrap, &dir, databases.as_ref(), &prefix)
        .arg("--demo")
        .envs(recipe.iter().map(|(n, v)| (n, v)))
        .spawn()
        .unwrap();
    let urls = served_urls(&mut child, "serve over SASL_SSL");
    let (order, _) = confirmed_order(&urls).await;

    let tail = oms_tool(
        &recipe,
        &prefix,
        &[
            "tail",
            "--topic",
            "orders",
            "--from",
            "beginning",
            "--no-follow",
        ],
    );
    let tailed = output_text(&tail);
    assert!(tail.status.success(), "oms tail: {tailed}");
    assert!(
        tailed.contains(&order.to_string()) && tailed.contains("OrderConfirmed"),
        "oms tail over SASL_SSL does not show the order's OrderConfirmed:\n{tailed}"
    );

    let replay = oms_tool(
        &recipe,
        &prefix,
        &[
            "replay",
            "--topic",
            "orders",
            "--from-beginning",
            "--copy-to",
            "orders",
            "--dry-run",
        ],
    );
    let planned = output_text(&replay);
    assert!(replay.status.success(), "oms replay --dry-run: {planned}");
    assert!(
        planned.contains(&format!("{prefix}orders")),
        "oms replay --dry-run over SASL_SSL names no plan for orders:\n{planned}"
    );

    let dlq = oms_tool(&recipe, &prefix, &["dlq", "list"]);
    let listed = output_text(&dlq);
    assert!(dlq.status.success(), "oms dlq list: {listed}");
    assert!(
        listed.contains(&format!("{prefix}orders.dlq keeps dead letters")),
        "oms dlq list over SASL_SSL:\n{listed}"
    );

    stop_with_ctrl_c(&mut child);
    std::fs::remove_dir_all(&dir).ok();
}

/// A wrong password ends `oms up`'s start, and `oms dlq list`, with one
/// line that says the broker refused the credentials; nothing retries it.
#[tokio::test]
async fn a_wrong_kafka_password_ends_the_start_with_one_line() {
    let listener = tokio::task::spawn_blocking(secured_broker).await.unwrap();
    let recipe = recipe_for(listener, "not-the-password");
    let dir = data_dir();
    let mut child = oms_up(&listener.bootstrap, &dir, None)
        .envs(recipe.iter().map(|(n, v)| (n, v)))
        .spawn()
        .unwrap();
    let lines = lines_of(&mut child);
    let status = exit_of(&mut child, "with a wrong Kafka password");
    let printed: Vec<String> = lines.try_iter().collect();
    let all = printed.join("\n");
    assert!(!status.success(), "{all}");
    let refusals: Vec<&String> = printed
        .iter()
        .filter(|line| line.contains("SASL authentication error"))
        .collect();
    assert!(
        refusals.len() == 1 && refusals[0].contains("OMS_KAFKA_SASL_PASSWORD"),
        "not one line saying the password was refused:\n{all}"
    );
    assert!(
        !all.contains("waiting for Kafka") && !all.contains("retrying"),
        "a wrong password was retried:\n{all}"
    );
    std::fs::remove_dir_all(&dir).ok();

    let dlq = oms_tool(&recipe, &testkit::topic_prefix(), &["dlq", "list"]);
    let listed = output_text(&dlq);
    assert!(!dlq.status.success(), "{listed}");
    assert!(
        listed.lines().count() == 1 && listed.contains("SASL authentication error"),
        "oms dlq list with a wrong password:\n{listed}"
    );
}
