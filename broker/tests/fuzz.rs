//! Bad input: random, truncated, oversized and mutated frames must never stop the broker. Each
//! case goes on a fresh connection; the broker may answer or close that connection, and must keep
//! serving the others (checked with ApiVersions and, for 10 MB of noise, a full probe).
//!
//! Every randomized run prints its seed; rerun with `PROPTEST_RNG_SEED=<seed>`.
//! `cargo run --release -p sharecheck-broker --example fuzz_rate` runs 100k+ cases and reports
//! the rate.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use common::frames;
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestRng, TestRunner};
use sharecheck_broker::{Broker, BrokerConfig, BrokerHandle};

fn seed() -> u64 {
    std::env::var("PROPTEST_RNG_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(42)
        })
}

fn runtime_and_broker() -> (tokio::runtime::Runtime, BrokerHandle) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let broker = rt
        .block_on(Broker::start(BrokerConfig::default()))
        .expect("broker starts");
    (rt, broker)
}

#[test]
fn random_and_mutated_frames_never_stop_the_broker() {
    let (rt, broker) = runtime_and_broker();
    let addr = broker.addr();
    let tid = rt.block_on(frames::prepare(&broker.bootstrap()));
    // Valid requests first, so mutated ones meet an existing topic, group and session.
    for f in frames::seeds(tid) {
        frames::send(addr, &f, Duration::from_millis(100));
    }
    let seed = seed();
    eprintln!("fuzz: seed {seed} (PROPTEST_RNG_SEED={seed} to rerun)");
    let mut bytes = [0u8; 32];
    bytes[..8].copy_from_slice(&seed.to_le_bytes());
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3000);
    let mut runner = TestRunner::new_with_rng(
        Config {
            cases,
            failure_persistence: None,
            ..Config::default()
        },
        TestRng::from_seed(RngAlgorithm::ChaCha, &bytes),
    );
    let result = runner.run(&frames::input(tid), |input| {
        frames::send(addr, &input, Duration::from_millis(2));
        if broker.stats().panics > 0 {
            return Err(TestCaseError::fail("a connection task panicked"));
        }
        Ok(())
    });
    if let Err(e) = result {
        panic!("fuzz failure (seed {seed}): {e}");
    }
    assert!(
        frames::api_versions_answered(addr),
        "the broker stopped answering"
    );
    let stats = broker.stats();
    eprintln!("fuzz: {cases} cases; broker stats {stats:?}");
    assert_eq!(stats.panics, 0);
    assert!(
        stats.rejected_frames > 0,
        "some frames must have been refused"
    );
    assert!(stats.requests > 0, "some frames must have been served");
    assert!(
        stats.share_partitions > 0,
        "share partitions must have been reached"
    );
}

#[test]
fn oversized_truncated_and_unknown_frames_close_only_their_connection() {
    let (_rt, broker) = runtime_and_broker();
    let addr = broker.addr();
    // A length prefix above the 16 MiB cap, a negative one, a truncated frame, an unknown key.
    let cases: Vec<Vec<u8>> = vec![
        [i32::MAX.to_be_bytes().to_vec(), vec![0; 64]].concat(),
        [(-5i32).to_be_bytes().to_vec(), vec![0; 64]].concat(),
        [100i32.to_be_bytes().to_vec(), vec![0, 18, 0, 3]].concat(),
        [
            8i32.to_be_bytes().to_vec(),
            vec![0x7f, 0x00, 0, 0, 0, 0, 0, 1],
        ]
        .concat(),
        [4i32.to_be_bytes().to_vec(), vec![0, 3, 0, 99]].concat(),
    ];
    // Keep one healthy connection open across all of them.
    let mut healthy = TcpStream::connect(addr).expect("connect");
    for c in &cases {
        assert_eq!(
            frames::send(addr, c, Duration::from_millis(300)),
            0,
            "{c:?} answered"
        );
    }
    let _ = healthy.set_read_timeout(Some(Duration::from_secs(5)));
    assert!(frames::api_versions_answered(addr));
    // ApiVersions at an unknown version: the v0 answer with UNSUPPORTED_VERSION (35).
    let mut s = TcpStream::connect(addr).expect("connect");
    let req = [
        10i32.to_be_bytes().to_vec(),
        vec![0, 18, 0, 99, 0, 0, 0, 5, 0xff, 0xff],
    ]
    .concat();
    s.write_all(&req).expect("write");
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    let mut head = [0u8; 10];
    s.read_exact(&mut head).expect("answer");
    assert_eq!(&head[4..8], &5i32.to_be_bytes(), "correlation id");
    assert_eq!(&head[8..10], &35i16.to_be_bytes(), "UNSUPPORTED_VERSION");
    // The healthy connection still works.
    let req = [
        (10i32).to_be_bytes().to_vec(),
        vec![0, 18, 0, 0, 0, 0, 0, 9, 0xff, 0xff],
    ]
    .concat();
    healthy.write_all(&req).expect("write");
    let mut head = [0u8; 10];
    healthy.read_exact(&mut head).expect("answer");
    assert_eq!(&head[8..10], &[0, 0]);
    assert_eq!(broker.stats().panics, 0);
}

/// xorshift64*: enough randomness for noise, with a printable seed.
fn noise(seed: u64, n: usize) -> Vec<u8> {
    let mut x = seed | 1;
    let mut out = Vec::with_capacity(n + 8);
    while out.len() < n {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        out.extend_from_slice(&x.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes());
    }
    out.truncate(n);
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_megabytes_of_random_bytes_leave_it_serving_a_probe() {
    let broker = Broker::start(BrokerConfig::default())
        .await
        .expect("broker");
    let addr = broker.addr();
    let seed = seed();
    eprintln!("noise: seed {seed}");
    let data = noise(seed, 10 * 1024 * 1024);
    let chunk_sizes = [10 * 1024 * 1024, 1024 * 1024, 4096];
    let mut sent = 0usize;
    for (i, size) in chunk_sizes.iter().enumerate() {
        for chunk in data.chunks(*size).take(64) {
            // Half the chunks get a plausible length prefix so the broker reads whole frames.
            let mut bytes = Vec::with_capacity(chunk.len() + 4);
            if i % 2 == 1 {
                bytes.extend_from_slice(&(chunk.len() as i32).to_be_bytes());
            }
            bytes.extend_from_slice(chunk);
            let written = tokio::task::spawn_blocking(move || {
                frames::send(addr, &bytes, Duration::from_millis(20));
                bytes.len()
            })
            .await
            .expect("sender");
            sent += written;
        }
    }
    assert!(sent >= 10 * 1024 * 1024);
    common::share_round_trip(broker.bootstrap()).await;
    assert_eq!(broker.stats().panics, 0);
}
