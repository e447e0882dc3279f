//! Fuzz the reference broker with random and mutated request frames (the generator of
//! `tests/fuzz.rs`) at volume and report the rate.
//!
//!     cargo run --release -p sharecheck-broker --example fuzz_rate [-- CASES [SEED]]
//!
//! Defaults: 100000 cases, a time-based seed (printed). Exits non-zero if a connection task
//! panicked or the broker stopped answering ApiVersions.

#[path = "../tests/common/frames.rs"]
mod frames;

use std::time::{Duration, Instant};

use proptest::strategy::{Strategy, ValueTree};
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
use sharecheck_broker::{Broker, BrokerConfig};

fn main() -> std::process::ExitCode {
    let mut args = std::env::args().skip(1);
    let cases: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(100_000);
    let seed: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(42)
    });
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("fuzz_rate: runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let broker = match rt.block_on(Broker::start(BrokerConfig::default())) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("fuzz_rate: broker: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let addr = broker.addr();
    let tid = rt.block_on(frames::prepare(&broker.bootstrap()));
    for f in frames::seeds(tid) {
        frames::send(addr, &f, Duration::from_millis(50));
    }
    println!("fuzz_rate: {cases} cases, seed {seed}, broker {addr}");
    let mut key = [0u8; 32];
    key[..8].copy_from_slice(&seed.to_le_bytes());
    let mut runner = TestRunner::new_with_rng(
        Config::default(),
        TestRng::from_seed(RngAlgorithm::ChaCha, &key),
    );
    let strategy = frames::input(tid);
    let started = Instant::now();
    let mut bytes_sent = 0u64;
    for i in 0..cases {
        let Ok(tree) = strategy.new_tree(&mut runner) else {
            continue;
        };
        let input = tree.current();
        bytes_sent += input.len() as u64;
        frames::send(addr, &input, Duration::from_millis(1));
        if i % 10_000 == 9_999 {
            let s = broker.stats();
            println!(
                "  {:>7} cases, {:>6.0} cases/s, panics {}",
                i + 1,
                (i + 1) as f64 / started.elapsed().as_secs_f64(),
                s.panics
            );
        }
    }
    let elapsed = started.elapsed();
    let alive = frames::api_versions_answered(addr);
    let s = broker.stats();
    println!(
        "fuzz_rate: {cases} cases ({:.1} MB) in {:.1} s = {:.0} cases/s; served {} requests, \
         closed {} connections on bad frames, panics {}, answers ApiVersions after: {alive}",
        bytes_sent as f64 / 1e6,
        elapsed.as_secs_f64(),
        cases as f64 / elapsed.as_secs_f64(),
        s.requests,
        s.rejected_frames,
        s.panics
    );
    if s.panics == 0 && alive {
        std::process::ExitCode::SUCCESS
    } else {
        std::process::ExitCode::FAILURE
    }
}
