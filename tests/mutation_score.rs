//! The mutation score of the conformance suite: the standard suite, run against every planted bug of
//! the reference broker, must fail each one with a named anomaly, and pass the correct broker. Which
//! anomalies catch each mutant is pinned in `tests/snapshots/mutation-score.txt` (the ones every run
//! shows; timing can add more), so a case that stops catching a mutant shows up as a lost line
//! (`SHARECHECK_UPDATE_SNAPSHOTS=1` rewrites it).

use sharecheck_broker::BrokerMutant;
use sharecheck_conformance::oracle::CaseVerdict;
use sharecheck_conformance::run::schedule::{run_suite, Scheduler};
use sharecheck_conformance::run::{CaseResult, RunOptions};
use sharecheck_conformance::scenario;
use sharecheck_conformance::target::{start_embedded, EmbeddedOptions};
use sharecheck_conformance::trace::Suite;
use sharecheck_model::Profile;
use std::collections::BTreeSet;

async fn suite_against(mutant: Option<BrokerMutant>) -> Vec<CaseResult> {
    let embedded = start_embedded(EmbeddedOptions::new(Profile::DEFAULT, mutant))
        .await
        .expect("broker starts");
    let cases = scenario::select(
        &scenario::catalog().expect("catalog"),
        Suite::Standard,
        None,
    );
    let opts = RunOptions {
        prefix: format!("sc-ms-{}", mutant.map_or("none", |m| m.name())),
        ..RunOptions::default()
    };
    let scheduler = Scheduler::new(embedded.target.clone(), opts);
    run_suite(&scheduler, &cases, 24, &mut |_, _, _| {})
        .await
        .into_iter()
        .map(|r| r.expect("every case ran"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_broker_mutant_is_caught_and_the_correct_broker_passes() {
    let correct = suite_against(None).await;
    assert_eq!(correct.len(), 224, "the standard suite");
    let bad: Vec<String> = correct
        .iter()
        .filter(|r| r.verdict != CaseVerdict::Pass)
        .map(|r| format!("{}: {:?} {:?}", r.id, r.verdict, r.anomalies))
        .collect();
    assert!(bad.is_empty(), "the correct broker must pass: {bad:#?}");

    let mutants = BrokerMutant::all();
    assert_eq!(mutants.len(), 39);
    let mut lines = Vec::new();
    let mut missed = Vec::new();
    // A few mutants at a time: the suite's time is mostly waiting for lock deadlines.
    for chunk in mutants.chunks(8) {
        let runs = futures::future::join_all(chunk.iter().map(|m| suite_against(Some(*m)))).await;
        for (m, results) in chunk.iter().zip(runs) {
            let failing: Vec<&CaseResult> = results
                .iter()
                .filter(|r| r.verdict == CaseVerdict::Fail && !r.anomalies.is_empty())
                .collect();
            if failing.is_empty() {
                missed.push(m.name());
            }
            let kinds: BTreeSet<&str> = failing
                .iter()
                .flat_map(|r| r.anomalies.iter().map(|a| a.kind.name()))
                .collect();
            eprintln!("{}: {} failing case(s)", m.name(), failing.len());
            lines.push(format!(
                "{}: {}",
                m.name(),
                kinds.into_iter().collect::<Vec<_>>().join(", ")
            ));
        }
    }
    assert!(
        missed.is_empty(),
        "mutants not caught by the standard suite: {missed:?}"
    );
    let got = lines.join("\n") + "\n";
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/snapshots/mutation-score.txt"
    );
    if std::env::var_os("SHARECHECK_UPDATE_SNAPSHOTS").is_some() {
        std::fs::write(path, &got).expect("write the snapshot");
    }
    let want = std::fs::read_to_string(path).unwrap_or_default();
    // Which anomalies a mutant shows first can depend on timing (a lock deadline racing a fetch), so
    // the snapshot pins the anomalies every run shows; more are reported, not failed.
    let parse = |text: &str| -> std::collections::BTreeMap<String, BTreeSet<String>> {
        text.lines()
            .filter_map(|l| l.split_once(": "))
            .map(|(m, kinds)| {
                (
                    m.to_string(),
                    kinds.split(", ").map(str::to_string).collect(),
                )
            })
            .collect()
    };
    let (got_map, want_map) = (parse(&got), parse(&want));
    assert_eq!(
        got_map.keys().collect::<Vec<_>>(),
        want_map.keys().collect::<Vec<_>>(),
        "the mutants in the snapshot (rerun with SHARECHECK_UPDATE_SNAPSHOTS=1 if that is intended)"
    );
    let mut lost = Vec::new();
    for (m, want_kinds) in &want_map {
        let got_kinds = &got_map[m];
        for k in want_kinds.difference(got_kinds) {
            lost.push(format!("{m}: {k}"));
        }
        for k in got_kinds.difference(want_kinds) {
            eprintln!("{m}: also caught as {k} this run");
        }
    }
    assert!(
        lost.is_empty(),
        "mutants no longer caught with a pinned anomaly (rerun with SHARECHECK_UPDATE_SNAPSHOTS=1 if that is intended): {lost:#?}"
    );
}
