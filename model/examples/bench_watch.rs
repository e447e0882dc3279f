//! How fast the soak's judge (`sharecheck_model::watch`) takes observations, and how much it keeps:
//! `cargo run --release -p sharecheck-model --example bench_watch [EVENTS]` (docs/benchmarks.md).
//!
//! A synthetic history as a soak of 8 members over 4 partitions produces it: each record delivered,
//! and 2,000 deliveries later its RELEASE (one in ten) or ACCEPT reported before it is sent and
//! answered, released records delivered again with the next count, a member crash every 50,000
//! records. Printed: events per
//! second of wall time and the most records the judge tracked at once.

use sharecheck_model::vocab::AckType;
use sharecheck_model::watch::Watch;
use sharecheck_model::Profile;
use std::time::Instant;

fn main() {
    let target: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(10_000_000);
    let (members, partitions) = (8u32, 4u32);
    let mut w = Watch::new(Profile::KAFKA_4_2, 5, 30_000, 1_000, partitions);
    let started = Instant::now();
    let (mut t, mut next, mut peak) = (0u64, [0i64; 4], 0usize);
    let mut records = 0u64;
    // Records in flight: delivered, not yet acknowledged (a member processes for a while).
    let mut in_flight = std::collections::VecDeque::new();
    while w.events < target {
        let p = (records % u64::from(partitions)) as u32;
        let o = next[p as usize];
        next[p as usize] += 1;
        let m = (records % u64::from(members)) as u32 + 1;
        t += 1;
        w.produced(p, o + 1);
        w.delivered(m, p, o, 1, t, t + 1);
        in_flight.push_back((p, o, m));
        if in_flight.len() > 2_000 {
            let (p, o, m) = in_flight.pop_front().expect("in flight");
            let mut holder = m;
            let mut count = 1;
            if o % 10 == 0 {
                w.ack_sent(m, p, o, AckType::Release, t + 2);
                w.acked(m, p, o, 1, AckType::Release, t + 3);
                holder = m % members + 1;
                count = 2;
                w.delivered(holder, p, o, 2, t + 4, t + 5);
            }
            w.ack_sent(holder, p, o, AckType::Accept, t + 6);
            w.acked(holder, p, o, count, AckType::Accept, t + 7);
        }
        if records.is_multiple_of(50_000) {
            w.member_gone(m, t + 8);
        }
        records += 1;
        if records.is_multiple_of(4096) {
            peak = peak.max(w.tracked());
        }
    }
    let secs = started.elapsed().as_secs_f64();
    assert_eq!(w.found(), 0, "{:?}", &w.findings()[..1]);
    println!(
        "{} events ({} records) in {:.2} s: {:.2} M events/s; at most {} records tracked",
        w.events,
        records,
        secs,
        w.events as f64 / secs / 1e6,
        peak
    );
}
