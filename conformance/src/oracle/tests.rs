//! The oracle must catch what the spec forbids and never cry wolf over what it allows.

use super::*;
use sharecheck_model::Profile;

const A: MemberIdx = 0;
const B: MemberIdx = 1;
const C: MemberIdx = 2;

fn oracle() -> Oracle {
    Oracle::new(OracleConfig {
        rules: Rules {
            delivery_limit: 3,
            ..Rules::kafka_defaults(Profile::KAFKA_4_2)
        },
        lock_ms: 1000,
        tolerance_ms: 300,
        max_candidates: 64,
    })
}

fn fetch<'a>(
    member: MemberIdx,
    sent: Millis,
    epoch: i32,
    acquired: &'a [(Offset, Offset, i16)],
) -> FetchObservation<'a> {
    FetchObservation {
        member,
        sent,
        received: sent + 5,
        epoch,
        fetches: true,
        acks: &[],
        top_error: ErrorCode::NONE,
        partition_error: Some(ErrorCode::NONE),
        ack_error: None,
        acquired,
        lock_timeout_ms: Some(1000),
    }
}

fn ack<'a>(
    member: MemberIdx,
    sent: Millis,
    epoch: i32,
    acks: &'a [AckBatch],
    code: ErrorCode,
) -> AckObservation<'a> {
    AckObservation {
        member,
        sent,
        received: sent + 5,
        epoch,
        acks,
        top_error: ErrorCode::NONE,
        partition_error: Some(code),
    }
}

fn kinds(o: &Oracle) -> Vec<&str> {
    o.anomalies().iter().map(|a| a.kind.as_str()).collect()
}

#[test]
fn a_correct_history_passes() {
    let mut o = oracle();
    o.produced(3);
    o.fetched(1, &fetch(A, 0, 0, &[(0, 2, 1)]));
    let b = [
        AckBatch::new(0, 0, AckType::Accept),
        AckBatch::new(1, 1, AckType::Release),
    ];
    o.acknowledged(2, &ack(A, 10, 1, &b, ErrorCode::NONE));
    o.fetched(3, &fetch(B, 20, 0, &[(1, 1, 2)]));
    assert!(o.anomalies().is_empty(), "{:?}", o.anomalies());
    assert_eq!(
        o.reference().record(0).map(|r| r.state),
        Some(RecordState::Acknowledged)
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
    o.fetched(1, &fetch(A, 0, 0, &[(0, 0, 1)]));
    o.fetched(2, &fetch(B, 100, 0, &[(0, 0, 2)]));
    assert_eq!(kinds(&o), ["double-acquire"]);
    let mut o = oracle();
    o.produced(1);
    o.fetched(1, &fetch(A, 0, 0, &[(0, 0, 1)]));
    o.fetched(2, &fetch(A, 500, 1, &[(0, 0, 2)]));
    assert_eq!(kinds(&o), ["early-redelivery"]);
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
        o.fetched(1, &fetch(A, 0, 0, &[(0, 0, 1)]));
        o.fetched(2, &fetch(B, sent, 0, &got));
        assert!(
            o.anomalies().is_empty(),
            "sent {sent} got {got:?}: {:?}",
            o.anomalies()
        );
    }
    // Well after the window the lock has surely expired: the count must say so.
    let mut o = oracle();
    o.produced(1);
    o.fetched(1, &fetch(A, 0, 0, &[(0, 0, 1)]));
    o.fetched(2, &fetch(B, 5000, 0, &[(0, 0, 1)]));
    assert_eq!(kinds(&o), ["delivery-count-mismatch"]);
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
    o.fetched(1, &fetch(A, 0, 0, &[(0, 0, 1)]));
    // After expiry A's ACCEPT must fail with 121...
    let b = [AckBatch::new(0, 0, AckType::Accept)];
    o.acknowledged(2, &ack(A, 3000, 1, &b, ErrorCode::INVALID_RECORD_STATE));
    assert!(o.anomalies().is_empty(), "{:?}", o.anomalies());
    assert!(
        o.exercised().contains(Transition::LockExpiry)
            && o.exercised().contains(Transition::AckRefused)
    );
    // ...and a broker that accepts it is caught.
    let mut o = oracle();
    o.produced(1);
    o.fetched(1, &fetch(A, 0, 0, &[(0, 0, 1)]));
    o.fetched(2, &fetch(B, 3000, 0, &[(0, 0, 2)]));
    o.acknowledged(3, &ack(A, 3010, 1, &b, ErrorCode::NONE));
    assert_eq!(kinds(&o), ["ack-accepted-for-unowned-record"]);
    // Inside the window both answers are fine.
    for code in [ErrorCode::NONE, ErrorCode::INVALID_RECORD_STATE] {
        let mut o = oracle();
        o.produced(1);
        o.fetched(1, &fetch(A, 0, 0, &[(0, 0, 1)]));
        o.acknowledged(2, &ack(A, 1100, 1, &b, code));
        assert!(o.anomalies().is_empty(), "{code}: {:?}", o.anomalies());
    }
}

#[test]
fn session_epochs_are_judged() {
    let mut o = oracle();
    o.produced(1);
    let mut f = fetch(A, 0, 5, &[]);
    f.top_error = ErrorCode::SHARE_SESSION_NOT_FOUND;
    o.fetched(1, &f);
    assert!(o.anomalies().is_empty());
    let f = fetch(A, 10, 5, &[]);
    o.fetched(2, &f);
    assert_eq!(kinds(&o), ["wrong-error-code"]);
}

#[test]
fn a_partial_ack_shows_up_as_non_atomic() {
    let mut o = oracle();
    o.produced(2);
    o.fetched(1, &fetch(A, 0, 0, &[(0, 0, 1)]));
    o.fetched(2, &fetch(B, 10, 0, &[(1, 1, 1)]));
    let both = [
        AckBatch::new(0, 0, AckType::Accept),
        AckBatch::new(1, 1, AckType::Accept),
    ];
    o.acknowledged(3, &ack(A, 20, 1, &both, ErrorCode::INVALID_RECORD_STATE));
    assert!(o.anomalies().is_empty());
    // A broker that applied batch 0 anyway now refuses the retry.
    let first = [AckBatch::new(0, 0, AckType::Accept)];
    o.acknowledged(4, &ack(A, 30, 2, &first, ErrorCode::INVALID_RECORD_STATE));
    assert_eq!(kinds(&o), ["non-atomic-ack"]);
}

#[test]
fn closing_and_disconnecting_release() {
    let mut o = oracle();
    o.produced(2);
    o.fetched(1, &fetch(A, 0, 0, &[(0, 1, 1)]));
    let mut close = fetch(A, 10, -1, &[]);
    close.fetches = false;
    o.fetched(2, &close);
    // Kafka answers the close before the release takes effect: released within the tolerance.
    assert_eq!(o.surely_acquirable(20, 10), Vec::<Offset>::new());
    assert_eq!(o.surely_acquirable(400, 10), vec![0, 1]);
    o.fetched(3, &fetch(B, 20, 0, &[(0, 1, 2)]));
    assert!(o.anomalies().is_empty(), "{:?}", o.anomalies());
    assert!(o.exercised().contains(Transition::SessionRelease));
    // Disconnect: released some time within the tolerance.
    o.disconnected(B, 30);
    assert_eq!(o.surely_acquirable(31, 10), Vec::<Offset>::new());
    assert_eq!(o.surely_acquirable(400, 10), vec![0, 1]);
    o.fetched(4, &fetch(A, 40, 0, &[(0, 0, 3)]));
    assert!(o.anomalies().is_empty(), "{:?}", o.anomalies());
}

#[test]
fn missing_redelivery_needs_every_candidate_to_agree() {
    let mut o = oracle();
    o.produced(1);
    o.fetched(1, &fetch(A, 0, 0, &[(0, 0, 1)]));
    let b = [AckBatch::new(0, 0, AckType::Release)];
    o.acknowledged(2, &ack(A, 10, 1, &b, ErrorCode::NONE));
    let want = o.surely_acquirable(20, 10);
    assert_eq!(want, vec![0]);
    o.check_missing(3, &want, &[], 3000);
    assert_eq!(kinds(&o), ["missing-redelivery"]);
}

#[test]
fn restart_forgets_acquisitions() {
    let mut o = oracle();
    o.produced(2);
    o.fetched(1, &fetch(A, 0, 0, &[(0, 1, 1)]));
    let b = [AckBatch::new(1, 1, AckType::Accept)];
    o.acknowledged(2, &ack(A, 10, 1, &b, ErrorCode::NONE));
    o.restarted();
    let mut f = fetch(A, 20, 2, &[]);
    f.top_error = ErrorCode::SHARE_SESSION_NOT_FOUND;
    o.fetched(3, &f);
    o.fetched(4, &fetch(A, 30, 0, &[(0, 0, 1)]));
    assert!(o.anomalies().is_empty(), "{:?}", o.anomalies());
    assert!(o.exercised().contains(Transition::Restart));
}

#[test]
fn the_lock_duration_is_echoed() {
    let mut o = oracle();
    o.produced(1);
    let mut f = fetch(A, 0, 0, &[(0, 0, 1)]);
    f.lock_timeout_ms = Some(30_000);
    o.fetched(1, &f);
    assert_eq!(kinds(&o), ["wrong-lock-timeout"]);
}

#[test]
fn a_partition_error_does_not_hide_piggy_backed_acks() {
    // Kafka 4.1.2 answers an ack-only ShareFetch with partition ErrorCode -1 but applies the acks.
    let mut o = oracle();
    o.produced(1);
    o.fetched(1, &fetch(A, 0, 0, &[(0, 0, 1)]));
    let rel = [AckBatch::new(0, 0, AckType::Release)];
    let mut f = fetch(A, 10, 1, &[]);
    f.fetches = false;
    f.acks = &rel;
    f.partition_error = Some(ErrorCode::UNKNOWN_SERVER_ERROR);
    f.ack_error = Some(ErrorCode::NONE);
    o.fetched(2, &f);
    o.fetched(3, &fetch(B, 20, 0, &[(0, 0, 2)]));
    o.fetched(4, &fetch(A, 30, 2, &[]));
    assert!(o.anomalies().is_empty(), "{:?}", o.anomalies());
    assert_eq!(o.notes().len(), 1);
}

fn oracle_with_limit(limit: u8) -> Oracle {
    Oracle::new(OracleConfig {
        rules: Rules {
            delivery_limit: limit,
            ..Rules::kafka_defaults(Profile::KAFKA_4_2)
        },
        lock_ms: 1000,
        tolerance_ms: 300,
        max_candidates: 64,
    })
}

#[test]
fn a_stale_ack_racing_a_close_may_see_the_record_still_locked() {
    // docs/findings.md F4: B's close archives offset 0 at the limit, but Kafka answers the close
    // before the release takes effect; A's stale ACCEPT right after may get 121, later NONE.
    for (at, code, ok) in [
        (35, ErrorCode::INVALID_RECORD_STATE, true),
        (35, ErrorCode::NONE, true),
        (2000, ErrorCode::INVALID_RECORD_STATE, false),
    ] {
        let mut o = oracle_with_limit(2);
        o.produced(1);
        o.fetched(1, &fetch(A, 0, 0, &[(0, 0, 1)]));
        o.acknowledged(
            2,
            &ack(
                A,
                10,
                1,
                &[AckBatch::new(0, 0, AckType::Release)],
                ErrorCode::NONE,
            ),
        );
        o.fetched(3, &fetch(B, 20, 0, &[(0, 0, 2)]));
        let mut close = fetch(B, 30, -1, &[]);
        close.fetches = false;
        o.fetched(4, &close);
        o.acknowledged(
            5,
            &ack(A, at, 2, &[AckBatch::new(0, 0, AckType::Accept)], code),
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
    let run = |other_session: bool| {
        let mut o = oracle();
        o.produced(2);
        o.fetched(1, &fetch(A, 0, 0, &[(0, 0, 1)]));
        if other_session {
            o.fetched(2, &fetch(B, 0, 0, &[(1, 1, 1)]));
        }
        o.disconnected(A, 10);
        o.fetched(3, &fetch(C, 1000, 0, &[(0, 0, 1)]));
        o.anomalies()
            .iter()
            .map(|a| a.kind.clone())
            .collect::<Vec<_>>()
    };
    assert!(run(false).is_empty(), "{:?}", run(false));
    assert_eq!(
        run(true),
        ["delivery-count-mismatch"],
        "another session keeps the partition loaded"
    );
}
