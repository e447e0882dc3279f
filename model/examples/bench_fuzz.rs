//! Benchmark (not a test): level (a) of `sharecheck fuzz` — random operation sequences through the
//! spec and the model's monitors, per second, on this machine.
//!
//! `cargo run --release -p sharecheck-model --example bench_fuzz [-- SECONDS]` generates sequences
//! with the same proptest strategies as `tests/spec_props.rs` (fixed seed) for SECONDS (default 3)
//! per workload and prints sequences/s and steps/s (generation included):
//!
//! - `model`: 0..300 operations through `ShareModel::step` (up to 6 records, 3 members, every
//!   profile), every monitor and the structural invariants checked after each step;
//! - `spec-big`: 0..400 operations on one partition of up to 64 records and 8 members, the spec's
//!   promises checked after each operation and every acknowledgement's answer checked.
//!
//! The wire levels are measured with the CLI (`sharecheck fuzz` prints cases/s); see
//! docs/fuzzing.md.

#[path = "../tests/fuzz_gen/mod.rs"]
mod fuzz_gen;

use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config as ProptestConfig, RngSeed, TestRunner};
use std::time::{Duration, Instant};

fn runner() -> TestRunner {
    TestRunner::new(ProptestConfig {
        rng_seed: RngSeed::Fixed(932),
        failure_persistence: None,
        ..ProptestConfig::default()
    })
}

fn measure(name: &str, budget: Duration, mut one: impl FnMut(&mut TestRunner) -> usize) {
    let mut runner = runner();
    let started = Instant::now();
    let (mut sequences, mut steps) = (0u64, 0u64);
    while started.elapsed() < budget {
        steps += one(&mut runner) as u64;
        sequences += 1;
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "{name:<10} {sequences:>10} sequences in {secs:.2}s: {:>10.0} sequences/s, {:>12.0} steps/s",
        sequences as f64 / secs,
        steps as f64 / secs
    );
}

fn main() {
    let secs: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(3);
    let budget = Duration::from_secs(secs);
    let model = (
        fuzz_gen::config(),
        prop::collection::vec(fuzz_gen::op(), 0..300),
    );
    measure("model", budget, |runner| {
        let (config, ops) = model.new_tree(runner).expect("generate").current();
        fuzz_gen::run_sequence(&config, &ops).expect("the correct spec fires no monitor")
    });
    let big = (
        fuzz_gen::big_rules(),
        1u16..=fuzz_gen::BIG_MEMBERS,
        prop::collection::vec(fuzz_gen::big_op(), 0..400),
    );
    measure("spec-big", budget, |runner| {
        let (rules, members, ops) = big.new_tree(runner).expect("generate").current();
        fuzz_gen::big_run(&rules, members, &ops).expect("the correct spec keeps its promises")
    });
}
