//! Load: 64 members (each its own connection and member id, joined through ShareGroupHeartbeat)
//! share one partition of 3000 records. Members accept most records, release some on their first
//! delivery and reject some. Every delivery is accounted for: each record ends accepted or rejected
//! exactly once, is delivered again only after a release (with the next delivery count), never
//! after a successful ACCEPT or REJECT, and never to two members at once.

mod common;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use sharecheck_broker::BrokerConfig;
use sharecheck_client::member::{AckBatch, AckType, FetchSpec, MemberConfig, ShareMember};
use sharecheck_client::ErrorCode;

const MEMBERS: usize = 64;
const RECORDS: usize = 3000;

#[derive(Default, Debug)]
struct Ledger {
    /// Per offset: (member, delivery count) of every delivery, in order.
    deliveries: BTreeMap<i64, Vec<(usize, i16)>>,
    /// Per offset: who holds it now (delivered, not yet acknowledged).
    holder: BTreeMap<i64, usize>,
    /// Per offset: successful terminal acknowledgements (ACCEPT or REJECT).
    terminal: BTreeMap<i64, Vec<i8>>,
    /// Offsets whose ACCEPT/REJECT is on its way to the broker.
    closing: std::collections::BTreeSet<i64>,
    releases: usize,
    violations: Vec<String>,
}

fn decide(offset: i64, count: i16) -> i8 {
    if count == 1 && offset % 10 == 3 {
        AckType::Release.code()
    } else if offset % 13 == 0 {
        AckType::Reject.code()
    } else {
        AckType::Accept.code()
    }
}

async fn member_loop(
    idx: usize,
    mut m: ShareMember,
    tid: uuid::Uuid,
    ledger: Arc<Mutex<Ledger>>,
    deadline: Instant,
) -> ShareMember {
    let mut pending: Vec<(i64, i8)> = Vec::new();
    loop {
        let done = ledger
            .lock()
            .map(|l| l.terminal.len() >= RECORDS)
            .unwrap_or(true);
        if done && pending.is_empty() {
            break;
        }
        if Instant::now() > deadline {
            break;
        }
        let acks: Vec<AckBatch> = pending
            .iter()
            .map(|(o, t)| AckBatch::with_code(*o, *o, *t))
            .collect();
        // The acknowledgement takes effect at the broker before its answer reaches us: the record
        // leaves this member's hands when the request is sent.
        if let Ok(mut l) = ledger.lock() {
            for (o, t) in &pending {
                if l.holder.remove(o) != Some(idx) {
                    l.violations
                        .push(format!("offset {o}: acked by {idx} who did not hold it"));
                }
                if *t != AckType::Release.code() {
                    l.closing.insert(*o);
                }
            }
        }
        let mut spec = FetchSpec::partitions(vec![(tid, 0)]).with_limits(limits(200, 7));
        if !acks.is_empty() {
            spec = spec.with_acks(vec![sharecheck_client::member::PartitionAcks {
                topic_id: tid,
                partition: 0,
                batches: acks,
            }]);
        }
        let out = match m.fetch(&spec).await {
            Ok(out) => out,
            Err(e) => {
                if let Ok(mut l) = ledger.lock() {
                    l.violations
                        .push(format!("member {idx}: fetch failed: {e}"));
                }
                break;
            }
        };
        let mut l = match ledger.lock() {
            Ok(l) => l,
            Err(_) => break,
        };
        if !out.error_code.is_none() {
            l.violations
                .push(format!("member {idx}: top-level {:?}", out.error_code));
            break;
        }
        let p = out.partition(tid, 0);
        let ack_code = p.map(|p| p.ack_error_code).unwrap_or(ErrorCode::NONE);
        if !pending.is_empty() {
            if ack_code.is_none() {
                for (o, t) in pending.drain(..) {
                    l.closing.remove(&o);
                    if t == AckType::Release.code() {
                        l.releases += 1;
                    } else {
                        l.terminal.entry(o).or_default().push(t);
                    }
                }
            } else {
                l.violations
                    .push(format!("member {idx}: ack answered {ack_code:?}"));
                pending.clear();
            }
        }
        for (o, count) in out.acquired(tid, 0) {
            let prior = l.deliveries.entry(o).or_default();
            let expected = prior.len() as i16 + 1;
            prior.push((idx, count));
            if count != expected {
                l.violations.push(format!(
                    "offset {o}: delivery count {count}, expected {expected}"
                ));
            }
            if let Some(h) = l.holder.insert(o, idx) {
                l.violations
                    .push(format!("offset {o}: delivered to {idx} while {h} holds it"));
            }
            if l.terminal.contains_key(&o) || l.closing.contains(&o) {
                l.violations
                    .push(format!("offset {o}: redelivered after a terminal ack"));
            }
            pending.push((o, decide(o, count)));
        }
    }
    m
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixty_four_members_lose_nothing_and_deliver_nothing_twice() {
    let config = BrokerConfig {
        heartbeat_interval_ms: 1000,
        ..BrokerConfig::default()
    };
    let mut f = fixture(config, 1, &[]).await;
    let batches = vec![20usize; RECORDS / 20];
    let topic = f.topic.clone();
    f.client
        .produce(&topic, 0, &batches, |i| {
            (None, Some(bytes::Bytes::from(format!("r{i}"))))
        })
        .await
        .expect("produce");
    let mut members = Vec::new();
    for _ in 0..MEMBERS {
        let mut mc = MemberConfig::new(f.group.clone(), vec![f.topic.clone()]);
        mc.join_timeout = Duration::from_secs(20);
        members.push(ShareMember::join(&mut f.client, mc).await.expect("join"));
    }
    let ledger = Arc::new(Mutex::new(Ledger::default()));
    let started = Instant::now();
    let deadline = started + Duration::from_secs(120);
    let tasks: Vec<_> = members
        .into_iter()
        .enumerate()
        .map(|(i, m)| tokio::spawn(member_loop(i, m, f.tid, ledger.clone(), deadline)))
        .collect();
    let mut members = Vec::new();
    for t in tasks {
        members.push(t.await.expect("member task"));
    }
    let elapsed = started.elapsed();
    {
        let l = ledger.lock().expect("ledger");
        assert!(
            l.violations.is_empty(),
            "violations: {:#?}",
            &l.violations[..l.violations.len().min(20)]
        );
        assert_eq!(
            l.terminal.len(),
            RECORDS,
            "every record ends accepted or rejected"
        );
        assert!(
            l.terminal.values().all(|t| t.len() == 1),
            "exactly one terminal ack each"
        );
        let expected_releases = (0..RECORDS as i64).filter(|o| o % 10 == 3).count();
        assert_eq!(l.releases, expected_releases);
        let deliveries: usize = l.deliveries.values().map(Vec::len).sum();
        assert_eq!(
            deliveries,
            RECORDS + expected_releases,
            "every delivery accounted for"
        );
        let rejected = l
            .terminal
            .values()
            .filter(|t| t[0] == AckType::Reject.code())
            .count();
        assert_eq!(
            rejected,
            (0..RECORDS as i64).filter(|o| o % 13 == 0).count()
        );
        let busy: std::collections::BTreeSet<usize> =
            l.deliveries.values().flatten().map(|(m, _)| *m).collect();
        eprintln!(
            "load: {MEMBERS} members, {RECORDS} records, {deliveries} deliveries, {} releases, \
         {} members got records, {:.0} ms ({:.0} deliveries/s)",
            l.releases,
            busy.len(),
            elapsed.as_secs_f64() * 1000.0,
            deliveries as f64 / elapsed.as_secs_f64()
        );
    }
    for m in members {
        let _ = m.close().await;
    }
    let sp = f
        .broker
        .share_partition(&f.group, f.tid, 0)
        .expect("loaded");
    assert_eq!(sp.spso(), RECORDS as i64, "the SPSO passed every record");
    assert_eq!(f.broker.stats().panics, 0);
}
