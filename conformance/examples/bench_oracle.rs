//! Benchmark (not a test): the oracle's cost per observed event.
//!
//! `cargo run --release -p sharecheck-conformance --example bench_oracle [-- EVENTS]` feeds a
//! synthetic but realistic history — members fetching batches of records, acknowledging them with
//! mixed types, locks expiring, sessions closing — through [`Oracle`] and prints events per second.
//! Every observation is one the spec allows, so the oracle does its full work (session rules, timing
//! windows, legality of every acquisition, the code of every acknowledgement) and reports nothing.

use sharecheck_conformance::oracle::{AckObservation, FetchObservation, Oracle, OracleConfig};
use sharecheck_model::spec::{AckBatch, AckType, ErrorCode, MemberIdx, Offset, Rules};
use sharecheck_model::Profile;
use std::time::Instant;

fn main() {
    let target: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let rules = Rules {
        delivery_limit: 5,
        ..Rules::kafka_defaults(Profile::KAFKA_4_2)
    };
    let mut oracle = Oracle::new(OracleConfig {
        rules,
        lock_ms: 30_000,
        tolerance_ms: 500,
        max_candidates: 64,
    });
    let members: MemberIdx = 4;
    let mut epochs = vec![0i32; members as usize];
    let mut now: u64 = 0;
    let mut next_offset: Offset = 0;
    let mut events: u64 = 0;
    let started = Instant::now();
    let mut round = 0u64;
    while events < target {
        // Produce 10 records; each member in turn fetches up to 10 and acknowledges them.
        oracle.produced(10);
        events += 1;
        let m = (round % u64::from(members)) as MemberIdx;
        let first = next_offset;
        let last = first + 9;
        next_offset += 10;
        let acquired = [(first, last, 1i16)];
        let e = &mut epochs[m as usize];
        let obs = FetchObservation {
            member: m,
            sent: now,
            received: now + 1,
            epoch: *e,
            fetches: true,
            acks: &[],
            top_error: ErrorCode::NONE,
            partition_error: Some(ErrorCode::NONE),
            ack_error: None,
            acquired: &acquired,
            lock_timeout_ms: Some(30_000),
        };
        oracle.fetched(events as usize, &obs);
        *e = if *e == 0 { 1 } else { *e + 1 };
        events += 1;
        now += 1;
        let acks = [
            AckBatch::new(first, last - 2, AckType::Accept),
            AckBatch::new(last - 1, last, AckType::Reject),
        ];
        let obs = AckObservation {
            member: m,
            sent: now,
            received: now + 1,
            epoch: *e,
            acks: &acks,
            top_error: ErrorCode::NONE,
            partition_error: Some(ErrorCode::NONE),
        };
        oracle.acknowledged(events as usize, &obs);
        *e += 1;
        events += 1;
        now += 1;
        round += 1;
    }
    let secs = started.elapsed().as_secs_f64();
    assert!(
        oracle.anomalies().is_empty(),
        "{:?}",
        &oracle.anomalies()[..1]
    );
    println!(
        "{events} events ({next_offset} records, {members} members) in {secs:.3} s: {:.0} events/s",
        events as f64 / secs
    );
}
