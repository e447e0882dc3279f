//! The mutation score of the conformance suite: the standard suite, run against every planted bug of
//! the reference broker, must fail each one with a named anomaly, and pass the correct broker.

use sharecheck_broker::{Broker, BrokerConfig, BrokerMutant};
use sharecheck_conformance::run::{run_suite, CaseResult, CaseVerdict, RunOptions, Target};
use sharecheck_conformance::scenario;
use sharecheck_conformance::trace::Suite;
use sharecheck_model::Profile;
use std::sync::Arc;

async fn suite_against(mutant: Option<BrokerMutant>) -> Vec<CaseResult> {
    let mut config = BrokerConfig::new(([127, 0, 0, 1], 0).into());
    config.mutant = mutant;
    let handle = Arc::new(Broker::start(config).await.expect("broker starts"));
    let h = handle.clone();
    let restarter: sharecheck_conformance::run::Restarter = Arc::new(move || {
        let h = h.clone();
        Box::pin(async move {
            h.restart();
            Ok(())
        })
    });
    let target = Target {
        bootstrap: handle.bootstrap(),
        implementation: "reference broker".into(),
        profile: Profile::DEFAULT,
        delivery_limit: handle.config().delivery_limit,
        max_in_flight: handle.config().max_record_locks,
        restarter: Some(restarter),
    };
    let cases = scenario::select(
        &scenario::catalog().expect("catalog"),
        Suite::Standard,
        None,
    );
    let opts = RunOptions {
        jobs: 24,
        run_id: format!("ms-{}", mutant.map_or("none", |m| m.name())),
        ..RunOptions::default()
    };
    run_suite(&target, &opts, &cases, &|_, _, _| {}).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_broker_mutant_is_caught_and_the_correct_broker_passes() {
    let correct = suite_against(None).await;
    let bad: Vec<String> = correct
        .iter()
        .filter(|r| r.verdict != CaseVerdict::Pass)
        .map(|r| format!("{}: {:?} {:?}", r.id, r.verdict, r.anomalies))
        .collect();
    assert!(bad.is_empty(), "the correct broker must pass: {bad:#?}");

    let mutants = BrokerMutant::all();
    let mut score = Vec::new();
    // A few mutants at a time: the suite's time is mostly waiting for lock deadlines.
    for chunk in mutants.chunks(8) {
        let runs = futures::future::join_all(chunk.iter().map(|m| suite_against(Some(*m)))).await;
        for (m, results) in chunk.iter().zip(runs) {
            let caught = results
                .iter()
                .filter(|r| r.verdict == CaseVerdict::Fail && !r.anomalies.is_empty())
                .count();
            score.push((m.name(), caught));
        }
    }
    let missed: Vec<&str> = score
        .iter()
        .filter(|(_, n)| *n == 0)
        .map(|(m, _)| *m)
        .collect();
    assert!(
        missed.is_empty(),
        "mutants not caught by the standard suite: {missed:?} (score {score:?})"
    );
    eprintln!(
        "mutation score: {}/{} mutants caught; failing cases per mutant: {score:?}",
        score.len(),
        score.len()
    );
}
