//! Level (a) of `sharecheck fuzz` (docs/fuzzing.md): the spec against the model, with proptest.
//!
//! - Long random operation sequences (up to 300 operations; up to 6 records, 3 members, 3 restarts,
//!   delivery limits 2..=10, every profile — beyond the model checker's standard bounds) run through
//!   [`ShareModel::step`]; no monitor may fire and the partition keeps its structural invariants.
//! - Every acquisition the leader makes has the shape a ShareFetch response needs.
//! - Raw acknowledgement requests, invalid on purpose as often as not, get the answers the wire rules
//!   allow (42 or 121 and nothing changed, or only the caller's records changed as their types say).
//! - The same sequences catch the planted bugs: the monitors have teeth.
//!
//! Deterministic: a fixed seed in code (`PROPTEST_RNG_SEED` has no effect; change `SEED` to explore).
//! Failures shrink to a minimal sequence and are printed with the actions taken.

mod fuzz_gen;

use fuzz_gen::{action, check_ack, config, op, raw_batch, reach, run_sequence, MOp};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config as ProptestConfig, RngSeed, TestRunner};
use sharecheck_model::model::{Config, ShareModel, State};
use sharecheck_model::spec::MemberIdx;
use sharecheck_model::Mutant;

const SEED: u64 = 932;

fn proptest_config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        rng_seed: RngSeed::Fixed(SEED),
        max_shrink_iters: 20_000,
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(proptest_config(10_000))]

    #[test]
    fn long_sequences_fire_no_monitor(
        config in config(),
        ops in prop::collection::vec(op(), 0..300),
    ) {
        let r = run_sequence(&config, &ops);
        prop_assert!(r.is_ok(), "{:?}: {}", config, r.unwrap_err());
    }

    #[test]
    fn raw_acknowledgements_get_wire_answers(
        config in config(),
        ops in prop::collection::vec(op(), 0..80),
        requests in prop::collection::vec(
            (0u16..4, prop::collection::vec(raw_batch(), 0..5), any::<bool>()),
            1..8,
        ),
    ) {
        let s = reach(&config, &ops);
        let rules = config.rules();
        for (member, batches, renew) in &requests {
            let r = check_ack(&rules, &s.part, *member as MemberIdx, batches, *renew);
            prop_assert!(r.is_ok(), "{:?}\n{:?}\nrequest {:?}: {}", config, s.part, batches, r.unwrap_err());
        }
    }
}

/// Steps the sequences of one deterministic runner take: the generator is not degenerate (most
/// operations are enabled when they run, so sequences are long).
#[test]
fn sequences_are_long_and_exercise_every_action() {
    let mut runner = TestRunner::new(proptest_config(1));
    let strategy = (config(), prop::collection::vec(op(), 200..=300));
    let mut taken = 0usize;
    let mut kinds = std::collections::HashSet::new();
    for _ in 0..200 {
        let (config, ops) = strategy.new_tree(&mut runner).expect("generate").current();
        let model = ShareModel::new(config);
        let mut s = State::initial(&config);
        for o in &ops {
            let Some(a) = action(&config, &s, o) else {
                continue;
            };
            if let Some((n, _)) = model.step(&s, &a) {
                kinds.insert(std::mem::discriminant(&a));
                s = n;
                taken += 1;
            }
        }
    }
    // 200 sequences of 200..=300 operations: once every record is terminal nothing is enabled, but
    // on average a sequence still takes more than 60 steps (the standard model's depth is ~21).
    assert!(taken > 200 * 50, "only {taken} steps taken");
    assert_eq!(kinds.len(), 8, "every kind of action is taken");
}

/// The monitors have teeth: for each spec mutant that breaks a safety promise, random sequences
/// find a violation within a few hundred cases. (Liveness-only mutants — the fetch offset that never
/// rewinds, the lock that never expires — break no safety promise and are left out.)
#[test]
fn random_sequences_catch_every_safety_mutant() {
    let liveness_only = [Mutant::StaleFetchOffset, Mutant::ExpiryNeverFires];
    for mutant in Mutant::ALL {
        if liveness_only.contains(&mutant) {
            continue;
        }
        let mut runner = TestRunner::new(proptest_config(1));
        let strategy = (config(), prop::collection::vec(op(), 0..300));
        let mut caught = None;
        for case in 0..2000 {
            let (config, ops) = strategy.new_tree(&mut runner).expect("generate").current();
            let config = Config {
                mutant: Some(mutant),
                ..config
            };
            if let Err(why) = run_sequence(&config, &ops) {
                caught = Some((case, why));
                break;
            }
        }
        assert!(
            caught.is_some(),
            "{} escaped 2000 random sequences",
            mutant.name()
        );
    }
}

/// The liveness-only mutants indeed break no monitor (so the previous test's exclusions are right).
#[test]
fn liveness_only_mutants_break_no_safety_monitor() {
    for mutant in [Mutant::StaleFetchOffset, Mutant::ExpiryNeverFires] {
        let mut runner = TestRunner::new(proptest_config(1));
        let strategy = (config(), prop::collection::vec(op(), 0..300));
        for _ in 0..300 {
            let (config, ops) = strategy.new_tree(&mut runner).expect("generate").current();
            let config = Config {
                mutant: Some(mutant),
                ..config
            };
            let r = run_sequence(&config, &ops);
            assert!(r.is_ok(), "{}: {}", mutant.name(), r.unwrap_err());
        }
    }
}

/// A known bad sequence, written as relative operations, shrinks to its essence: proptest deletes
/// operations freely because later ones do not name absolute records.
#[test]
fn a_failure_shrinks_to_the_minimal_sequence() {
    let config = Config {
        mutant: Some(Mutant::RejectRedelivers),
        records: 3,
        members: 2,
        ..Config::STANDARD
    };
    let mut runner = TestRunner::new(ProptestConfig {
        failure_persistence: None,
        ..proptest_config(500)
    });
    let result = runner.run(&prop::collection::vec(op(), 0..60), |ops| {
        prop_assert!(run_sequence(&config, &ops).is_ok());
        Ok(())
    });
    let Err(proptest::test_runner::TestError::Fail(_, minimal)) = result else {
        panic!("the mutant was not caught: {result:?}");
    };
    // Produce, fetch, REJECT, fetch again: the record comes back after it was archived. (An
    // operation that was not enabled when it ran may survive shrinking; it is not taken.)
    let model = ShareModel::new(config);
    let mut s = State::initial(&config);
    let mut kinds: Vec<&str> = Vec::new();
    for o in &minimal {
        let Some(a) = action(&config, &s, o) else {
            continue;
        };
        let Some((n, _)) = model.step(&s, &a) else {
            continue;
        };
        kinds.push(match o {
            MOp::Produce => "produce",
            MOp::Fetch { .. } => "fetch",
            MOp::Ack { .. } | MOp::AckAny { .. } => "ack",
            _ => "other",
        });
        s = n;
    }
    assert_eq!(kinds, ["produce", "fetch", "ack", "fetch"], "{minimal:?}");
}

proptest! {
    #![proptest_config(proptest_config(2_000))]

    /// The spec alone at a scale the model cannot hold: up to 64 records and 8 members, 400
    /// operations, raw requests around the SPSO.
    #[test]
    fn big_partitions_keep_every_promise(
        rules in fuzz_gen::big_rules(),
        members in 1u16..=fuzz_gen::BIG_MEMBERS,
        ops in prop::collection::vec(fuzz_gen::big_op(), 0..400),
    ) {
        let r = fuzz_gen::big_run(&rules, members, &ops);
        prop_assert!(r.is_ok(), "{:?}, {} members: {}", rules, members, r.unwrap_err());
    }
}

/// Big runs stay busy: records keep flowing for hundreds of operations.
#[test]
fn big_runs_are_long() {
    let mut runner = TestRunner::new(proptest_config(1));
    let strategy = (
        fuzz_gen::big_rules(),
        prop::collection::vec(fuzz_gen::big_op(), 400),
    );
    let mut effective = 0;
    for _ in 0..50 {
        let (rules, ops) = strategy.new_tree(&mut runner).expect("generate").current();
        effective +=
            fuzz_gen::big_run(&rules, 4, &ops).expect("the correct spec keeps its promises");
    }
    assert!(
        effective > 50 * 100,
        "only {effective} operations changed something"
    );
}

/// The big-run monitors have teeth too: each safety mutant is caught within a few hundred runs.
#[test]
fn big_runs_catch_every_safety_mutant() {
    for mutant in Mutant::ALL {
        if [Mutant::StaleFetchOffset, Mutant::ExpiryNeverFires].contains(&mutant) {
            continue;
        }
        let mut runner = TestRunner::new(proptest_config(1));
        let strategy = (
            fuzz_gen::big_rules(),
            1u16..=fuzz_gen::BIG_MEMBERS,
            prop::collection::vec(fuzz_gen::big_op(), 0..400),
        );
        let caught = (0..1000).any(|_| {
            let (rules, members, ops) = strategy.new_tree(&mut runner).expect("generate").current();
            let rules = sharecheck_model::spec::Rules {
                mutant: Some(mutant),
                ..rules
            };
            fuzz_gen::big_run(&rules, members, &ops).is_err()
        });
        assert!(caught, "{} escaped 1000 big runs", mutant.name());
    }
}
