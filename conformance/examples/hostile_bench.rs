//! Benchmark (not a test) of failing closed: sessions of every command (probe, conform, fuzz,
//! replay) against reference brokers behind mutating proxies, until N hostile responses have been
//! sent (default 1,000,000). Reports sessions, responses, how they ended, panics, and the rate. An
//! abort would end the process before the report: a report means none happened.
//!
//! `cargo run --release -p sharecheck-conformance --example hostile_bench -- [N] [SEED]`

#[path = "../tests/hostile/mod.rs"]
mod hostile;

use futures::StreamExt;
use hostile::*;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let mut args = std::env::args().skip(1);
    let goal: u64 = args
        .next()
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let seed: u64 = args
        .next()
        .and_then(|a| a.parse().ok())
        .unwrap_or(20_261_201);
    let panics = count_panics();
    let started = Instant::now();
    let mut outcomes: std::collections::BTreeMap<(String, &str), u64> = Default::default();
    let (mut responses, mut mutated, mut next, mut hangs) = (0u64, 0u64, 0u64, 0u64);
    let mut last_report = Instant::now();
    let mut runs = futures::stream::iter(0u64..)
        .map(|k| async move {
            let p = [1.0, 0.5, 0.25, 0.1][(k % 4) as usize];
            let kind = SESSIONS[(k / 4 % 4) as usize];
            let (proxy, _broker) = proxied_reference_broker(seed + k).await;
            proxy.set_p(p);
            let outcome = tokio::time::timeout(
                Duration::from_secs(60),
                run_session(kind, &proxy.addr.to_string(), seed + k),
            )
            .await
            .unwrap_or("hung");
            (
                kind,
                outcome,
                proxy.counts.responses.load(Ordering::Relaxed),
                proxy.counts.mutated.load(Ordering::Relaxed),
            )
        })
        .buffer_unordered(128);
    while mutated < goal {
        let Some((kind, outcome, r, m)) = runs.next().await else {
            break;
        };
        next += 1;
        hangs += u64::from(outcome == "hung");
        *outcomes.entry((format!("{kind:?}"), outcome)).or_default() += 1;
        responses += r;
        mutated += m;
        if last_report.elapsed() >= Duration::from_secs(30) {
            last_report = Instant::now();
            eprintln!(
                "{mutated} hostile responses, {next} sessions, {:.0}s",
                started.elapsed().as_secs_f64()
            );
        }
    }
    drop(runs);
    let secs = started.elapsed().as_secs_f64();
    println!(
        "{next} sessions, {responses} responses of which {mutated} hostile, in {secs:.0} s ({:.0} hostile responses/s): {} panics, 0 aborts, {hangs} hangs",
        mutated as f64 / secs,
        panics.load(Ordering::Relaxed)
    );
    println!("outcomes: {outcomes:?}");
}
