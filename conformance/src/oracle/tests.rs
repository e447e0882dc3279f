//! The oracle must catch what the spec forbids and never cry wolf over what it allows. Every test
//! starts from a small history: the events a run would record.

use super::*;
use crate::history::{AckedPartition, FetchedPartition, PartitionAcks, Setup};
use sharecheck_model::model::Transition;
use sharecheck_model::spec::{AckType, Offset};

const A: &str = "A";
const B: &str = "B";
const C: &str = "C";

/// A history under construction: a setup (profile kafka-4.2, delivery limit 3, 1 s locks, 300 ms
/// tolerance), then one event per call, each its own step.
struct H {
    events: Vec<Event>,
    log_end: Offset,
    values: std::collections::BTreeMap<Offset, String>,
}

fn setup(limit: u8) -> Setup {
    Setup {
        topic: "t".into(),
        group: "g".into(),
        partitions: 1,
        profile: "kafka-4.2".into(),
        delivery_limit: limit,
        group_delivery_limit: true,
        max_in_flight: 2000,
        lock_ms: 1000,
        tolerance_ms: 300,
        latest_reset: false,
        max_candidates: 64,
        dlq: None,
        renew_disabled: false,
        without_allowances: Vec::new(),
    }
}

fn oracle() -> H {
    oracle_with_limit(3)
}

fn oracle_with_limit(limit: u8) -> H {
    oracle_without(limit, &[])
}

/// The oracle with these allowances for Kafka's behaviour switched off.
fn oracle_without(limit: u8, without: &[crate::trace::Allowance]) -> H {
    let mut s = setup(limit);
    s.without_allowances = without.to_vec();
    H {
        events: vec![Event::Setup(s)],
        log_end: 0,
        values: Default::default(),
    }
}

/// A ShareFetch of member `m` sent at `sent` (answered 5 ms later) with `epoch`, acquiring these
/// `[first, last, count]` ranges on partition 0.
fn fetch(m: &str, sent: Millis, epoch: i32, acquired: &[(Offset, Offset, i16)]) -> Event {
    Event::ShareFetch {
        step: 0,
        is_renew_ack: false,
        record_limit: false,
        member: m.to_string(),
        broker: 0,
        requested: vec![0],
        epoch,
        max_records: 10,
        acks: Vec::new(),
        sent_ms: sent,
        received_ms: sent + 5,
        error: ErrorCode::NONE,
        lock_timeout_ms: 1000,
        partitions: vec![FetchedPartition {
            partition: 0,
            error: ErrorCode::NONE,
            ack_error: ErrorCode::NONE,
            acquired: acquired.to_vec(),
            records: Vec::new(),
        }],
    }
}

/// The same ShareFetch, closing the session (epoch −1, fetching nothing).
fn close(m: &str, sent: Millis) -> Event {
    let mut e = fetch(m, sent, -1, &[]);
    if let Event::ShareFetch { max_records, .. } = &mut e {
        *max_records = 0;
    }
    e
}

/// A ShareAcknowledge of member `m` answered with partition error `code`.
fn ack(m: &str, sent: Millis, epoch: i32, acks: &[AckBatch], code: ErrorCode) -> Event {
    Event::ShareAcknowledge {
        step: 0,
        is_renew_ack: false,
        lock_timeout_ms: None,
        member: m.to_string(),
        broker: 0,
        epoch,
        acks: vec![PartitionAcks {
            partition: 0,
            batches: acks.to_vec(),
        }],
        sent_ms: sent,
        received_ms: sent + 5,
        error: ErrorCode::NONE,
        partitions: vec![AckedPartition {
            partition: 0,
            error: code,
        }],
    }
}

fn set_step(e: &mut Event, n: usize) {
    match e {
        Event::ShareFetch { step, .. }
        | Event::ShareAcknowledge { step, .. }
        | Event::Produce { step, .. }
        | Event::Disconnect { step, .. }
        | Event::Restart { step, .. }
        | Event::FetchBegin { step, .. }
        | Event::FetchEnd { step, .. } => *step = n,
        _ => {}
    }
}

/// `e` refused with a top-level error.
fn refused(mut e: Event, code: ErrorCode) -> Event {
    if let Event::ShareFetch {
        error, partitions, ..
    } = &mut e
    {
        *error = code;
        partitions.clear();
    }
    e
}

fn fetch_begin(m: &str, at: Millis, patience_ms: Millis) -> Event {
    Event::FetchBegin {
        step: 0,
        member: m.to_string(),
        partitions: vec![0],
        max_records: 10,
        horizon_ms: at,
        patience_ms,
    }
}

fn fetch_end(m: &str) -> Event {
    Event::FetchEnd {
        step: 0,
        member: m.to_string(),
    }
}

impl H {
    /// Records `e` as step `n`.
    fn at(&mut self, n: usize, mut e: Event) -> &mut H {
        set_step(&mut e, n);
        self.events.push(e);
        self
    }

    /// `n` records produced (step 0, before the first request).
    fn produced(&mut self, n: u32) -> &mut H {
        let base = self.log_end;
        self.log_end += i64::from(n);
        self.events.push(Event::Produce {
            step: 0,
            partition: 0,
            batches: vec![n],
            base_offsets: vec![base],
            value_prefix: format!("p{base}-"),
            sent_ms: 0,
            received_ms: 0,
        });
        for k in 0..i64::from(n) {
            self.values.insert(base + k, format!("p{base}-{k}"));
        }
        self
    }

    /// A ShareFetch; acquired offsets without records get the produced values (as a correct
    /// broker sends them).
    fn fetched(&mut self, n: usize, mut e: Event) -> &mut H {
        if let Event::ShareFetch { partitions, .. } = &mut e {
            for p in partitions.iter_mut().filter(|p| p.records.is_empty()) {
                p.records = p
                    .acquired
                    .iter()
                    .flat_map(|(f, l, _)| *f..=*l)
                    .filter_map(|o| self.values.get(&o).map(|v| (o, Some(v.clone()))))
                    .collect();
            }
        }
        self.at(n, e)
    }

    fn acknowledged(&mut self, n: usize, e: Event) -> &mut H {
        self.at(n, e)
    }

    fn disconnected(&mut self, n: usize, m: &str, at: Millis) -> &mut H {
        self.at(
            n,
            Event::Disconnect {
                step: n,
                member: m.to_string(),
                broker: 0,
                at_ms: at,
            },
        )
    }

    /// The oracle after every event so far.
    fn oracle(&self) -> Oracle {
        let Event::Setup(s) = &self.events[0] else {
            unreachable!()
        };
        let mut o = Oracle::new(s, None).expect("kafka-4.2");
        for e in &self.events {
            o.observe(e);
        }
        o
    }

    fn judged(&self) -> Judgement {
        judge(&self.events, None).expect("a valid history")
    }

    fn anomalies(&self) -> Vec<Violation> {
        self.judged().anomalies
    }

    fn kinds(&self) -> Vec<&'static str> {
        self.anomalies().iter().map(|a| a.kind.name()).collect()
    }

    fn surely_acquirable(&self, now: Millis, max: usize) -> Vec<Offset> {
        self.oracle().surely_acquirable(0, now, max)
    }

    fn exercised(&self) -> Transitions {
        self.judged().exercised
    }
}

#[test]
fn a_correct_history_passes() {
    let mut o = oracle();
    o.produced(3);
    o.fetched(1, fetch(A, 0, 0, &[(0, 2, 1)]));
    let b = [
        AckBatch::new(0, 0, AckType::Accept),
        AckBatch::new(1, 1, AckType::Release),
    ];
    o.acknowledged(2, ack(A, 10, 1, &b, ErrorCode::NONE));
    o.fetched(3, fetch(B, 20, 0, &[(1, 1, 2)]));
    assert!(o.anomalies().is_empty(), "{:?}", o.anomalies());
    assert!(o.judged().steps.is_empty());
    assert_eq!(
        o.surely_acquirable(30, 10),
        Vec::<Offset>::new(),
        "1 is B's, 0 accepted, 2 A's"
    );
    let ex = o.exercised();
    for t in [
        Transition::Acquire,
        Transition::Accept,
        Transition::Release,
        Transition::Redeliver,
    ] {
        assert!(ex.contains(t), "{t:?} not exercised");
    }
}

#[test]
fn double_acquire_and_early_redelivery_are_caught() {
    let mut o = oracle();
    o.produced(1);
    o.fetched(1, fetch(A, 0, 0, &[(0, 0, 1)]));
    o.fetched(2, fetch(B, 100, 0, &[(0, 0, 2)]));
    assert_eq!(o.kinds(), ["double-acquire"]);
    let mut o = oracle();
    o.produced(1);
    o.fetched(1, fetch(A, 0, 0, &[(0, 0, 1)]));
    o.fetched(2, fetch(A, 500, 1, &[(0, 0, 2)]));
    assert_eq!(o.kinds(), ["early-redelivery"]);
}

#[test]
fn redelivery_inside_the_lock_window_is_accepted_either_way() {
    for (sent, got) in [
        (998u64, vec![(0, 0, 2)]),
        (998, vec![]),
        (1290, vec![(0, 0, 2)]),
    ] {
        let mut o = oracle();
        o.produced(1);
        o.fetched(1, fetch(A, 0, 0, &[(0, 0, 1)]));
        o.fetched(2, fetch(B, sent, 0, &got));
        assert!(
            o.anomalies().is_empty(),
            "sent {sent} got {got:?}: {:?}",
            o.anomalies()
        );
    }
    // Well after the window the lock has surely expired: the count must say so.
    let mut o = oracle();
    o.produced(1);
    o.fetched(1, fetch(A, 0, 0, &[(0, 0, 1)]));
    o.fetched(2, fetch(B, 5000, 0, &[(0, 0, 1)]));
    assert_eq!(o.kinds(), ["delivery-count-mismatch"]);
    assert_eq!(
        o.surely_acquirable(6000, 10),
        Vec::<Offset>::new(),
        "B holds it now"
    );
}

#[test]
fn stale_acks_and_unowned_acks() {
    let mut o = oracle();
    o.produced(1);
    o.fetched(1, fetch(A, 0, 0, &[(0, 0, 1)]));
    // After expiry A's ACCEPT must fail with 121...
    let b = [AckBatch::new(0, 0, AckType::Accept)];
    o.acknowledged(2, ack(A, 3000, 1, &b, ErrorCode::INVALID_RECORD_STATE));
    assert!(o.anomalies().is_empty(), "{:?}", o.anomalies());
    assert!(
        o.exercised().contains(Transition::LockExpiry)
            && o.exercised().contains(Transition::AckRefused)
    );
    // ...and a broker that accepts it is caught.
    let mut o = oracle();
    o.produced(1);
    o.fetched(1, fetch(A, 0, 0, &[(0, 0, 1)]));
    o.fetched(2, fetch(B, 3000, 0, &[(0, 0, 2)]));
    o.acknowledged(3, ack(A, 3010, 1, &b, ErrorCode::NONE));
    assert_eq!(o.kinds(), ["ack-accepted-for-unowned-record"]);
    // Inside the window both answers are fine.
    for code in [ErrorCode::NONE, ErrorCode::INVALID_RECORD_STATE] {
        let mut o = oracle();
        o.produced(1);
        o.fetched(1, fetch(A, 0, 0, &[(0, 0, 1)]));
        o.acknowledged(2, ack(A, 1100, 1, &b, code));
        assert!(o.anomalies().is_empty(), "{code}: {:?}", o.anomalies());
    }
}

#[test]
fn session_epochs_are_judged() {
    let mut o = oracle();
    o.produced(1);
    o.fetched(
        1,
        refused(fetch(A, 0, 5, &[]), ErrorCode::SHARE_SESSION_NOT_FOUND),
    );
    assert!(o.anomalies().is_empty());
    o.fetched(2, fetch(A, 10, 5, &[]));
    assert_eq!(o.kinds(), ["wrong-error-code"]);
}

#[test]
fn a_partial_ack_shows_up_as_non_atomic() {
    let mut o = oracle();
    o.produced(2);
    o.fetched(1, fetch(A, 0, 0, &[(0, 0, 1)]));
    o.fetched(2, fetch(B, 10, 0, &[(1, 1, 1)]));
    let both = [
        AckBatch::new(0, 0, AckType::Accept),
        AckBatch::new(1, 1, AckType::Accept),
    ];
    o.acknowledged(3, ack(A, 20, 1, &both, ErrorCode::INVALID_RECORD_STATE));
    assert!(o.anomalies().is_empty());
    // A broker that applied batch 0 anyway now refuses the retry.
    let first = [AckBatch::new(0, 0, AckType::Accept)];
    o.acknowledged(4, ack(A, 30, 2, &first, ErrorCode::INVALID_RECORD_STATE));
    assert_eq!(o.kinds(), ["non-atomic-ack"]);
}

#[test]
fn closing_and_disconnecting_release() {
    let mut o = oracle();
    o.produced(2);
    o.fetched(1, fetch(A, 0, 0, &[(0, 1, 1)]));
    o.fetched(2, close(A, 10));
    // Kafka answers the close before the release takes effect: released within the tolerance.
    assert_eq!(o.surely_acquirable(20, 10), Vec::<Offset>::new());
    assert_eq!(o.surely_acquirable(400, 10), vec![0, 1]);
    o.fetched(3, fetch(B, 20, 0, &[(0, 1, 2)]));
    assert!(o.anomalies().is_empty(), "{:?}", o.anomalies());
    assert!(o.exercised().contains(Transition::SessionRelease));
    // Disconnect: released some time within the tolerance.
    o.disconnected(3, B, 30);
    assert_eq!(o.surely_acquirable(31, 10), Vec::<Offset>::new());
    assert_eq!(o.surely_acquirable(400, 10), vec![0, 1]);
    o.fetched(4, fetch(A, 40, 0, &[(0, 0, 3)]));
    assert!(o.anomalies().is_empty(), "{:?}", o.anomalies());
}

#[test]
fn missing_redelivery_needs_every_candidate_to_agree() {
    let mut o = oracle();
    o.produced(1);
    o.fetched(1, fetch(A, 0, 0, &[(0, 0, 1)]));
    let b = [AckBatch::new(0, 0, AckType::Release)];
    o.acknowledged(2, ack(A, 10, 1, &b, ErrorCode::NONE));
    assert_eq!(o.surely_acquirable(20, 10), vec![0]);
    // A fetch step that ran its whole patience and got nothing.
    o.at(3, fetch_begin(B, 20, 3000));
    o.fetched(3, fetch(B, 20, 0, &[]));
    o.at(3, fetch_end(B));
    assert_eq!(o.kinds(), ["missing-redelivery"]);
}

#[test]
fn restart_forgets_acquisitions() {
    let mut o = oracle();
    o.produced(2);
    o.fetched(1, fetch(A, 0, 0, &[(0, 1, 1)]));
    let b = [AckBatch::new(1, 1, AckType::Accept)];
    o.acknowledged(2, ack(A, 10, 1, &b, ErrorCode::NONE));
    o.at(
        3,
        Event::Restart {
            step: 3,
            node: None,
            hard: false,
            sent_ms: 15,
            received_ms: 16,
        },
    );
    o.fetched(
        3,
        refused(fetch(A, 20, 2, &[]), ErrorCode::SHARE_SESSION_NOT_FOUND),
    );
    o.fetched(4, fetch(A, 30, 0, &[(0, 0, 1)]));
    assert!(o.anomalies().is_empty(), "{:?}", o.anomalies());
    assert!(o.exercised().contains(Transition::Restart));
}

fn leader_move(n: usize, at: Millis) -> Event {
    Event::LeaderMove {
        step: n,
        partition: 0,
        from: 1,
        to: 2,
        sent_ms: at,
        received_ms: at + 1,
    }
}

/// A fetch from the new leader (broker 2) with a new session.
fn fetch_new_leader(m: &str, sent: Millis, acquired: &[(Offset, Offset, i16)]) -> Event {
    let mut e = fetch(m, sent, 0, acquired);
    if let Event::ShareFetch { broker, .. } = &mut e {
        *broker = 2;
    }
    e
}

#[test]
fn after_a_leader_move_the_old_lock_may_be_counted_only_if_its_deadline_passed_first() {
    // A's lock (1000 ms, 300 ms tolerance) runs out about 1000-1305 ms. B's first fetch from the new
    // leader at 100 ms: the old leader's expiry cannot have been written, the count reverts.
    for (at, count, ok) in [
        (100, 1, true),
        (100, 2, false),
        (2000, 1, true),
        (2000, 2, true),
    ] {
        let mut o = oracle();
        o.produced(1);
        o.fetched(1, fetch(A, 0, 0, &[(0, 0, 1)]));
        o.at(2, leader_move(2, 10));
        o.fetched(3, fetch_new_leader(B, at, &[(0, 0, count)]));
        assert_eq!(
            o.anomalies().is_empty(),
            ok,
            "fetch at {at} ms with count {count}: {:?}",
            o.kinds()
        );
    }
}

#[test]
fn once_the_new_leader_answered_the_old_lock_is_fenced() {
    let mut o = oracle();
    o.produced(2);
    o.fetched(1, fetch(A, 0, 0, &[(0, 1, 1)]));
    o.at(2, leader_move(2, 10));
    // The new leader loaded the partition at 100 ms: B takes offset 0, count 1.
    o.fetched(3, fetch_new_leader(B, 100, &[(0, 0, 1)]));
    // Offset 1 was Available at count 0 since the load; the old deadline passing changes nothing.
    o.fetched(4, fetch_new_leader(C, 2000, &[(1, 1, 2)]));
    assert_eq!(o.kinds(), ["delivery-count-mismatch"]);
}

#[test]
fn the_lock_duration_is_echoed() {
    let mut o = oracle();
    o.produced(1);
    let mut f = fetch(A, 0, 0, &[(0, 0, 1)]);
    if let Event::ShareFetch {
        lock_timeout_ms, ..
    } = &mut f
    {
        *lock_timeout_ms = 30_000;
    }
    o.fetched(1, f);
    assert_eq!(o.kinds(), ["wrong-lock-timeout"]);
}

#[test]
fn a_partition_error_does_not_hide_piggy_backed_acks() {
    // Kafka 4.1.2 answers an ack-only ShareFetch with partition ErrorCode -1 but applies the acks.
    let mut o = oracle();
    o.produced(1);
    o.fetched(1, fetch(A, 0, 0, &[(0, 0, 1)]));
    let mut f = fetch(A, 10, 1, &[]);
    if let Event::ShareFetch {
        max_records,
        acks,
        partitions,
        ..
    } = &mut f
    {
        *max_records = 0;
        *acks = vec![PartitionAcks {
            partition: 0,
            batches: vec![AckBatch::new(0, 0, AckType::Release)],
        }];
        partitions[0].error = ErrorCode::UNKNOWN_SERVER_ERROR;
    }
    o.fetched(2, f);
    o.fetched(3, fetch(B, 20, 0, &[(0, 0, 2)]));
    o.fetched(4, fetch(A, 30, 2, &[]));
    assert!(o.anomalies().is_empty(), "{:?}", o.anomalies());
    assert_eq!(o.judged().notes.len(), 1);
}

#[test]
fn a_stale_ack_racing_a_close_may_see_the_record_still_locked() {
    // docs/findings.md F4: B's close archives offset 0 at the limit, but Kafka answers the close
    // before the release takes effect; A's stale ACCEPT right after may get 121, later NONE.
    // Without the allowance (the SHOULD case kip932.session.close-releases-before-its-answer) the
    // release has happened by the close's answer.
    use crate::trace::Allowance::AsyncCloseRelease;
    for (at, code, ok, without) in [
        (35, ErrorCode::INVALID_RECORD_STATE, true, &[][..]),
        (35, ErrorCode::NONE, true, &[]),
        (2000, ErrorCode::INVALID_RECORD_STATE, false, &[]),
        (
            40,
            ErrorCode::INVALID_RECORD_STATE,
            false,
            &[AsyncCloseRelease],
        ),
        (40, ErrorCode::NONE, true, &[AsyncCloseRelease]),
    ] {
        let mut o = oracle_without(2, without);
        o.produced(1);
        o.fetched(1, fetch(A, 0, 0, &[(0, 0, 1)]));
        o.acknowledged(
            2,
            ack(
                A,
                10,
                1,
                &[AckBatch::new(0, 0, AckType::Release)],
                ErrorCode::NONE,
            ),
        );
        o.fetched(3, fetch(B, 20, 0, &[(0, 0, 2)]));
        o.fetched(4, close(B, 30));
        o.acknowledged(
            5,
            ack(A, at, 2, &[AckBatch::new(0, 0, AckType::Accept)], code),
        );
        assert_eq!(
            o.anomalies().is_empty(),
            ok,
            "ack at {at} answered {code}: {:?}",
            o.anomalies()
        );
    }
}

#[test]
fn the_last_session_ending_may_reload_the_partition() {
    // docs/findings.md F5: when the group's last session on the broker ends, Kafka may drop and
    // reload the share partition before the release is written: the delivery is forgotten.
    let run_without = |other_session: bool, without: &[crate::trace::Allowance]| {
        let mut o = oracle_without(3, without);
        o.produced(2);
        o.fetched(1, fetch(A, 0, 0, &[(0, 0, 1)]));
        if other_session {
            o.fetched(2, fetch(B, 0, 0, &[(1, 1, 1)]));
        }
        o.disconnected(2, A, 10);
        o.fetched(3, fetch(C, 1000, 0, &[(0, 0, 1)]));
        o.kinds()
    };
    let run = |other_session: bool| run_without(other_session, &[]);
    assert!(run(false).is_empty(), "{:?}", run(false));
    assert_eq!(
        run_without(false, &[crate::trace::Allowance::GroupReload]),
        ["delivery-count-mismatch"],
        "without the allowance (kip932.session.rejoin-keeps-the-delivery-count)"
    );
    assert_eq!(
        run(true),
        ["delivery-count-mismatch"],
        "another session keeps the partition loaded"
    );
}

#[test]
fn a_value_other_than_the_one_produced_is_a_corrupted_record() {
    let mut o = oracle();
    o.produced(2);
    let mut f = fetch(A, 0, 0, &[(0, 1, 1)]);
    if let Event::ShareFetch { partitions, .. } = &mut f {
        partitions[0].records = vec![(0, Some("p0-0".into())), (1, Some("garbage".into()))];
    }
    o.fetched(1, f);
    assert_eq!(o.kinds(), ["corrupted-record"]);
    assert!(o.anomalies()[0].detail.contains("offsets [1]"));
}

#[test]
fn claims_count_what_each_member_received() {
    let mut o = oracle();
    o.produced(3);
    o.fetched(1, fetch(A, 0, 0, &[(0, 1, 1)]));
    o.at(
        2,
        Event::Claim {
            step: 2,
            member: A.into(),
            at_least: 2,
        },
    );
    assert!(o.anomalies().is_empty());
    o.at(
        3,
        Event::Claim {
            step: 3,
            member: B.into(),
            at_least: 1,
        },
    );
    assert_eq!(o.kinds(), ["claim-not-met"]);
}

#[test]
fn broken_histories_are_refused_with_the_event() {
    let mut o = oracle();
    o.produced(1);
    o.fetched(2, fetch(A, 0, 0, &[(0, 0, 1)]));
    o.fetched(1, fetch(A, 10, 1, &[]));
    let err = judge(&o.events, None).unwrap_err().to_string();
    assert!(err.contains("event 3: step 1 after step 2"), "{err}");
    let err = judge(&o.events[1..], None).unwrap_err().to_string();
    assert!(err.contains("starts with a setup"), "{err}");
    let mut bad = oracle();
    if let Event::Setup(s) = &mut bad.events[0] {
        s.profile = "kafka-9.9".into();
    }
    let err = judge(&bad.events, None).unwrap_err().to_string();
    assert!(err.contains("unknown profile 'kafka-9.9'"), "{err}");
    let mut late = oracle();
    let mut f = fetch(A, 100, 0, &[]);
    if let Event::ShareFetch { received_ms, .. } = &mut f {
        *received_ms = 50;
    }
    late.fetched(1, f);
    assert!(judge(&late.events, None).is_err());
}

#[test]
fn a_profile_override_judges_the_same_events_by_other_rules() {
    // A session release that gives the delivery back is 4.1's rule, a mismatch under 4.2.
    let mut o = oracle();
    o.produced(2);
    o.fetched(1, fetch(A, 0, 0, &[(0, 0, 1)]));
    o.fetched(2, fetch(B, 0, 0, &[(1, 1, 1)]));
    o.fetched(3, close(A, 10));
    o.fetched(4, fetch(C, 1000, 0, &[(0, 0, 1)]));
    assert_eq!(o.kinds(), ["delivery-count-mismatch"]);
    let under_41 = judge(&o.events, Some(sharecheck_model::Profile::KAFKA_4_1)).unwrap();
    assert!(under_41.anomalies.is_empty(), "{:?}", under_41.anomalies);
}

/// A ShareAcknowledge v2 (`IsRenewAck`) of member `m`, answered with partition error `code`.
fn renew_ack(m: &str, sent: Millis, epoch: i32, acks: &[AckBatch], code: ErrorCode) -> Event {
    let mut e = ack(m, sent, epoch, acks, code);
    if let Event::ShareAcknowledge {
        is_renew_ack,
        lock_timeout_ms,
        ..
    } = &mut e
    {
        *is_renew_ack = true;
        *lock_timeout_ms = Some(1000);
    }
    e
}

/// RENEW restarts the lock at the request: after the first deadline the renewed record is still
/// the member's (another member getting it is a double acquisition), after the renewed one it
/// comes back with the next count.
#[test]
fn a_renewed_record_is_held_until_the_renewed_deadline() {
    let renewed = |b_at: Millis, b_gets: &[(Offset, Offset, i16)]| {
        let mut h = oracle();
        h.produced(1)
            .fetched(1, fetch(A, 0, 0, &[(0, 0, 1)]))
            .acknowledged(
                2,
                renew_ack(
                    A,
                    600,
                    1,
                    &[AckBatch::new(0, 0, AckType::Renew)],
                    ErrorCode::NONE,
                ),
            )
            .fetched(3, fetch(B, b_at, 0, b_gets));
        h.kinds()
    };
    assert!(
        renewed(1300, &[]).is_empty(),
        "held after the first deadline"
    );
    assert_eq!(renewed(1300, &[(0, 0, 2)]), ["double-acquire"]);
    assert!(
        renewed(2000, &[(0, 0, 2)]).is_empty(),
        "back after the renewed one"
    );
    assert!(
        !renewed(2000, &[(0, 0, 3)]).is_empty(),
        "the count is not raised by RENEW"
    );
}

/// A fetches offset 0 and B offset 1 at 0 and 10 ms; at 600 ms A's ShareAcknowledge v2 renews 0 and
/// accepts 1, which B holds: refused with INVALID_RECORD_STATE.
fn refused_renew() -> H {
    let mut h = oracle();
    h.produced(2)
        .fetched(1, fetch(A, 0, 0, &[(0, 0, 1)]))
        .fetched(2, fetch(B, 10, 0, &[(1, 1, 1)]))
        .acknowledged(
            3,
            renew_ack(
                A,
                600,
                1,
                &[
                    AckBatch::new(0, 0, AckType::Renew),
                    AckBatch::new(1, 1, AckType::Accept),
                ],
                ErrorCode::INVALID_RECORD_STATE,
            ),
        );
    h
}

/// Kafka restarts a lock when it meets the RENEW and does not undo it when a later batch of the
/// same request fails (`SP@4.2:2295-2305`, 2451-2467): after such a refusal the record may come
/// back at either deadline, and not before the first.
#[test]
fn a_refused_request_may_still_have_renewed() {
    let then = |c_at: Millis, c_gets: &[(Offset, Offset, i16)]| {
        let mut h = refused_renew();
        h.fetched(4, fetch(C, c_at, 0, c_gets));
        h.kinds()
    };
    let k = then(1400, &[(0, 0, 2)]);
    assert!(k.is_empty(), "expired at the first deadline: {k:?}");
    assert!(then(1400, &[]).is_empty(), "or renewed");
    assert_eq!(
        then(500, &[(0, 0, 2)]),
        ["double-acquire"],
        "not before the first"
    );
    // So no fetch may count on it between the deadlines, and every fetch may after the second.
    let h = refused_renew();
    assert!(!h.surely_acquirable(1400, 10).contains(&0));
    assert!(h.surely_acquirable(2000, 10).contains(&0));
}
