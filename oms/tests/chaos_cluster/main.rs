//! The cluster form of the chaos suite (`oms chaos --brokers 3`): three
//! Kafka brokers (every topic with three replicas, two in sync), two
//! instances of every service on a private PostgreSQL, steady load, then a
//! broker killed with SIGKILL mid-load and started again, then the active
//! controller killed the same way, then a third inventory-svc joining its
//! group and leaving. Nothing may be lost, applied twice or left pending.
//! Its own test binary, so that nothing else shares the machine with it.

use oms::chaos::{ChaosArgs, Fault, run};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_and_the_controller_die_under_load_and_no_promise_breaks() {
    testkit::init_tracing();
    let args = ChaosArgs::short_form(3);
    let report = run(&args).await.expect("the cluster form runs");
    println!("{}", report.markdown());
    let ran: Vec<&str> = report
        .outcomes
        .iter()
        .map(|o| o.scenario.as_str())
        .collect();
    let expected: Vec<&str> = Fault::CLUSTER.iter().map(|f| f.name()).collect();
    assert_eq!(ran, expected, "every scenario of the cluster form ran");
    let problems = report.problems();
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
