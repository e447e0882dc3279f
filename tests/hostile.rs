//! Fail closed against hostile brokers: a fixed-seed 10,000+ mutated responses across every
//! command's session (probe, conform, fuzz, replay) with no panic, no abort and no hang; and the
//! random-bytes broker that once aborted `sharecheck probe` (an ApiVersions array length sized an
//! 83 GB allocation) now gets exit 3 with one line, every time.

#[path = "../conformance/tests/hostile/mod.rs"]
mod hostile;

use hostile::*;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

const SEED: u64 = 20_261_201;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_hostile_responses_crash_nothing() {
    use futures::StreamExt;
    let panics = count_panics();
    let goal: u64 = std::env::var("SHARECHECK_HOSTILE_RESPONSES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let started = Instant::now();
    let mut outcomes: std::collections::BTreeMap<(String, &str), u32> = Default::default();
    let (mut responses, mut mutated, mut next) = (0u64, 0u64, 0u64);
    // Session k runs against its own reference broker behind its own proxy, seeded SEED + k, so
    // what it meets does not depend on what runs beside it; 16 run at a time.
    let only: Option<u64> = std::env::var("SHARECHECK_HOSTILE_ONLY")
        .ok()
        .and_then(|v| v.parse().ok());
    while mutated < goal {
        let batch: Vec<u64> = match only {
            Some(k) => vec![k],
            None => (next..next + 64).collect(),
        };
        next += 64;
        let runs = futures::stream::iter(batch)
            .map(|k| async move {
                let p = [1.0, 0.5, 0.25, 0.1][(k % 4) as usize];
                let kind = SESSIONS[(k / 4 % 4) as usize];
                let (proxy, _broker) = proxied_reference_broker(SEED + k).await;
                proxy.set_p(p);
                let outcome = tokio::time::timeout(
                    Duration::from_secs(60),
                    run_session(kind, &proxy.addr.to_string(), SEED + k),
                )
                .await
                .unwrap_or_else(|_| panic!("session {k} ({kind:?}, p {p}) hung for 60 s"));
                (
                    kind,
                    outcome,
                    proxy.counts.responses.load(Ordering::Relaxed),
                    proxy.counts.mutated.load(Ordering::Relaxed),
                )
            })
            .buffer_unordered(16)
            .collect::<Vec<_>>()
            .await;
        for (kind, outcome, r, m) in runs {
            *outcomes.entry((format!("{kind:?}"), outcome)).or_default() += 1;
            responses += r;
            mutated += m;
        }
        assert!(
            started.elapsed() < Duration::from_secs(600),
            "too slow: {next} sessions"
        );
    }
    eprintln!(
        "{next} sessions, {responses} responses ({mutated} mutated) in {:.1}s: {outcomes:?}",
        started.elapsed().as_secs_f64()
    );
    assert_eq!(panics.load(Ordering::Relaxed), 0, "panics");
}

/// `sharecheck probe` against a broker answering random bytes: exit 3 with one line, 1,000 times.
#[test]
fn a_random_bytes_broker_gets_exit_3_with_one_line() {
    let (addr, counts) = random_bytes_broker(SEED);
    let bin = assert_cmd::cargo::cargo_bin!("sharecheck");
    let started = Instant::now();
    for k in 0..1000 {
        let out = std::process::Command::new(bin)
            .args(["probe", "--bootstrap", &addr.to_string(), "--timeout", "2"])
            .output()
            .expect("run sharecheck");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(3), "run {k}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "run {k}: {stderr}");
    }
    eprintln!(
        "1000 probes, {} random responses, {:.1}s",
        counts.responses.load(Ordering::Relaxed),
        started.elapsed().as_secs_f64()
    );
}
