//! The short form of the chaos suite (`oms chaos`): every fault once, under
//! load, against the services as separate processes on a private
//! PostgreSQL and broker, then `oms up` on SQLite killed mid-load. It runs
//! in its own test binary, so that no other test shares the machine with
//! it. The long form is `oms chaos --random-secs 600` (see the README).

use oms::chaos::{ChaosArgs, run};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_fault_under_load_breaks_no_promise() {
    testkit::init_tracing();
    let args = ChaosArgs {
        scenario_secs: 10,
        ..ChaosArgs::short_form(1)
    };
    let report = run(&args).await.expect("the chaos suite runs");
    println!("{}", report.markdown());
    assert_eq!(report.outcomes.len(), 12, "every scenario ran");
    let problems = report.problems();
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
