//! Benchmark (not a test): the oracle's cost per observed event.
//!
//! `cargo run --release -p sharecheck-conformance --example bench_oracle [-- EVENTS]` feeds a
//! synthetic but realistic history — members fetching batches of records (with their values),
//! acknowledging them with mixed types — through [`Oracle::observe`] and prints events per second.
//! Every event is one the spec allows, so the oracle does its full work (session rules, timing
//! windows, legality of every acquisition, the code of every acknowledgement, every value) and
//! reports nothing. Events are built in chunks outside the timed part.

use sharecheck_conformance::history::{
    AckedPartition, Event, FetchedPartition, PartitionAcks, Setup,
};
use sharecheck_conformance::oracle::Oracle;
use sharecheck_model::spec::{AckBatch, AckType, ErrorCode, Offset};
use std::time::{Duration, Instant};

fn main() {
    let target: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let setup = Setup {
        topic: "t".into(),
        group: "g".into(),
        partitions: 1,
        profile: "kafka-4.2".into(),
        delivery_limit: 5,
        group_delivery_limit: true,
        max_in_flight: 2000,
        lock_ms: 30_000,
        tolerance_ms: 500,
        latest_reset: false,
        max_candidates: 64,
        dlq: None,
        renew_disabled: false,
        without_allowances: Vec::new(),
    };
    let mut oracle = Oracle::new(&setup, None).expect("a known profile");
    let members = ["A", "B", "C", "D"];
    let mut epochs = [0i32; 4];
    let mut now: u64 = 0;
    let mut next_offset: Offset = 0;
    let mut events: u64 = 0;
    let mut round = 0usize;
    let mut timed = Duration::ZERO;
    while events < target {
        let mut chunk: Vec<Event> = Vec::with_capacity(30_000);
        while chunk.len() < 30_000 && events + (chunk.len() as u64) < target {
            // Produce 10 records; each member in turn fetches them and acknowledges them.
            let first = next_offset;
            let last = first + 9;
            next_offset += 10;
            chunk.push(Event::Produce {
                step: round,
                partition: 0,
                batches: vec![10],
                base_offsets: vec![first],
                value_prefix: format!("r{round}-"),
                sent_ms: now,
                received_ms: now,
            });
            let m = round % members.len();
            let e = &mut epochs[m];
            chunk.push(Event::ShareFetch {
                step: round,
                is_renew_ack: false,
                record_limit: false,
                member: members[m].into(),
                broker: 0,
                requested: vec![0],
                epoch: *e,
                max_records: 10,
                acks: Vec::new(),
                sent_ms: now,
                received_ms: now + 1,
                error: ErrorCode::NONE,
                lock_timeout_ms: 30_000,
                partitions: vec![FetchedPartition {
                    partition: 0,
                    error: ErrorCode::NONE,
                    ack_error: ErrorCode::NONE,
                    acquired: vec![(first, last, 1)],
                    records: (0..10)
                        .map(|k| (first + k, Some(format!("r{round}-{k}"))))
                        .collect(),
                }],
            });
            *e = if *e == 0 { 1 } else { *e + 1 };
            now += 1;
            chunk.push(Event::ShareAcknowledge {
                step: round,
                is_renew_ack: false,
                lock_timeout_ms: None,
                member: members[m].into(),
                broker: 0,
                epoch: *e,
                acks: vec![PartitionAcks {
                    partition: 0,
                    batches: vec![
                        AckBatch::new(first, last - 2, AckType::Accept),
                        AckBatch::new(last - 1, last, AckType::Reject),
                    ],
                }],
                sent_ms: now,
                received_ms: now + 1,
                error: ErrorCode::NONE,
                partitions: vec![AckedPartition {
                    partition: 0,
                    error: ErrorCode::NONE,
                }],
            });
            *e += 1;
            now += 1;
            round += 1;
        }
        let started = Instant::now();
        for e in &chunk {
            oracle.observe(e);
        }
        timed += started.elapsed();
        events += chunk.len() as u64;
    }
    let j = oracle.judgement();
    assert!(j.anomalies.is_empty(), "{:?}", &j.anomalies[..1]);
    let secs = timed.as_secs_f64();
    println!(
        "{events} events ({next_offset} records, {} members) in {secs:.3} s: {:.0} events/s",
        members.len(),
        events as f64 / secs
    );
}
