//! Benchmark (not a test): model-checking throughput on this machine.
//!
//! `cargo run --release -p sharecheck-model --example bench_check [-- RUNS]` times, per configuration,
//! Stateright's depth-first search with member symmetry as `sharecheck check` runs it first (the
//! safety properties as one conjunction, the reachability properties), the same search with each
//! safety property on its own (what a failing check runs next), and the graph pass for liveness and
//! coverage; it prints unique states per second (median of RUNS, default 5).

use sharecheck_model::graph;
use sharecheck_model::model::{Config, ShareModel};
use stateright::{Checker, Model};
use std::time::{Duration, Instant};

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let runs: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(5);
    let configs = [
        (
            "standard (3 records, 2 members, limit 3, window 2, 1 restart)",
            Config::STANDARD,
        ),
        (
            "window 3",
            Config {
                max_in_flight: 3,
                ..Config::STANDARD
            },
        ),
        (
            "3 members, window 3",
            Config {
                members: 3,
                max_in_flight: 3,
                ..Config::STANDARD
            },
        ),
        (
            "4 records, window 2",
            Config {
                records: 4,
                ..Config::STANDARD
            },
        ),
    ];
    println!(
        "{:<62} {:>8} {:>9} {:>9} {:>9} {:>9} {:>9} {:>10}",
        "configuration",
        "unique",
        "generated",
        "dfs+sym",
        "states/s",
        "each prop",
        "states/s",
        "graph pass"
    );
    for (name, config) in configs {
        let mut dfs = Vec::new();
        let mut dfs_each = Vec::new();
        let mut gp = Vec::new();
        let (mut unique, mut total) = (0, 0);
        for _ in 0..runs {
            let t = Instant::now();
            let c = ShareModel::new(config)
                .safety_conjunction()
                .checker()
                .threads(1)
                .symmetry()
                .spawn_dfs()
                .join();
            dfs.push(t.elapsed());
            unique = c.unique_state_count();
            total = c.state_count();
            let t = Instant::now();
            let c = ShareModel::new(config)
                .checker()
                .threads(1)
                .symmetry()
                .spawn_dfs()
                .join();
            dfs_each.push(t.elapsed());
            assert_eq!(c.unique_state_count(), unique);
            let t = Instant::now();
            let g = graph::explore(&ShareModel::new(config));
            gp.push(t.elapsed());
            assert_eq!(g.unique_states, unique);
        }
        let d = median(dfs);
        let e = median(dfs_each);
        println!(
            "{name:<62} {unique:>8} {total:>9} {:>7.3} s {:>9.0} {:>7.3} s {:>9.0} {:>8.3} s",
            d.as_secs_f64(),
            unique as f64 / d.as_secs_f64(),
            e.as_secs_f64(),
            unique as f64 / e.as_secs_f64(),
            median(gp).as_secs_f64()
        );
    }
}
