//! Unit tests of the spec: one per transition of docs/semantics.md §1.3 and per error of §5.3.

use super::*;
use crate::mutant::Mutant;
use crate::profile::Profile;

const A: MemberIdx = 0;
const B: MemberIdx = 1;

fn rules() -> Rules {
    Rules {
        profile: Profile::KAFKA_4_2,
        delivery_limit: 3,
        max_in_flight: 100,
        mutant: None,
        renew_enabled: true,
    }
}

fn rules_41() -> Rules {
    Rules {
        profile: Profile::KAFKA_4_1,
        ..rules()
    }
}

/// A partition with `n` produced records.
fn part(n: usize) -> SharePartition {
    let mut p = SharePartition::default();
    p.produce(n);
    p
}

fn state(p: &SharePartition, o: Offset) -> RecordState {
    p.record(o).unwrap().state
}

fn count(p: &SharePartition, o: Offset) -> u8 {
    p.record(o).unwrap().delivery_count
}

fn ack(
    p: &mut SharePartition,
    r: &Rules,
    m: MemberIdx,
    first: Offset,
    last: Offset,
    t: AckType,
) -> Result<(), ErrorCode> {
    p.acknowledge(r, m, &[AckBatch::new(first, last, t)], t == AckType::Renew)
        .map(|_| ())
        .map_err(|e| e.code)
}

fn range(first: Offset, last: Offset, delivery_count: u8) -> AcquiredRange {
    AcquiredRange {
        first_offset: first,
        last_offset: last,
        delivery_count,
    }
}

#[test]
fn t1_first_acquisition_counts_one() {
    let r = rules();
    let mut p = part(3);
    let got = p.acquire(&r, A, &[0, 1, 2]).unwrap();
    assert_eq!(got.as_slice(), &[range(0, 2, 1)]);
    assert_eq!(state(&p, 1), RecordState::Acquired(A));
    assert_eq!(p.speo(), Some(2));
}

#[test]
fn t2_reacquisition_increments() {
    let r = rules();
    let mut p = part(2);
    p.acquire(&r, A, &[0, 1]).unwrap();
    ack(&mut p, &r, A, 0, 0, AckType::Release).unwrap();
    assert_eq!((state(&p, 0), count(&p, 0)), (RecordState::Available, 1));
    let got = p.acquire(&r, B, &[0]).unwrap();
    assert_eq!(got.as_slice(), &[range(0, 0, 2)]);
}

#[test]
fn ranges_split_where_counts_differ() {
    let r = rules();
    let mut p = part(2);
    p.acquire(&r, A, &[0]).unwrap();
    ack(&mut p, &r, A, 0, 0, AckType::Release).unwrap();
    let got = p.acquire(&r, A, &[0, 1]).unwrap();
    assert_eq!(got.as_slice(), &[range(0, 0, 2), range(1, 1, 1)]);
}

#[test]
fn t3_accept_acknowledges_and_moves_spso() {
    let r = rules();
    let mut p = part(2);
    p.acquire(&r, A, &[0, 1]).unwrap();
    ack(&mut p, &r, A, 0, 0, AckType::Accept).unwrap();
    assert_eq!(state(&p, 0), RecordState::Acknowledged);
    assert_eq!(p.spso(), 1);
    ack(&mut p, &r, A, 1, 1, AckType::Accept).unwrap();
    assert_eq!(
        (p.spso(), p.speo()),
        (2, None),
        "whole cache terminal: SPSO = SPEO + 1, cache empty"
    );
}

#[test]
fn t4_release_below_limit_makes_available_keeping_count() {
    let r = rules();
    let mut p = part(1);
    p.acquire(&r, A, &[0]).unwrap();
    ack(&mut p, &r, A, 0, 0, AckType::Release).unwrap();
    assert_eq!(
        p.record(0),
        Some(InFlight {
            state: RecordState::Available,
            delivery_count: 1
        })
    );
    assert_eq!(p.spso(), 0);
}

#[test]
fn t4_release_at_limit_archives() {
    let r = rules();
    let mut p = part(1);
    for round in 1..=3u8 {
        let got = p.acquire(&r, A, &[0]).unwrap();
        assert_eq!(got[0].delivery_count, round);
        ack(&mut p, &r, A, 0, 0, AckType::Release).unwrap();
    }
    assert_eq!(state(&p, 0), RecordState::Archived);
    assert_eq!(p.next_acquisition(&r, 10).as_slice(), &[] as &[Offset]);
    assert_eq!(p.spso(), 1);
}

#[test]
fn t5_t6_reject_and_gap_archive_regardless_of_count() {
    let r = rules();
    let mut p = part(2);
    p.acquire(&r, A, &[0, 1]).unwrap();
    ack(&mut p, &r, A, 0, 0, AckType::Reject).unwrap();
    ack(&mut p, &r, A, 1, 1, AckType::Gap).unwrap();
    assert_eq!(
        (state(&p, 0), state(&p, 1)),
        (RecordState::Archived, RecordState::Archived)
    );
    assert_eq!((count(&p, 0), count(&p, 1)), (1, 1));
}

#[test]
fn t7_renew_keeps_acquired_and_count() {
    let r = rules();
    let mut p = part(1);
    p.acquire(&r, A, &[0]).unwrap();
    let changes = p
        .acknowledge(&r, A, &[AckBatch::new(0, 0, AckType::Renew)], true)
        .unwrap();
    assert_eq!(changes.len(), 1);
    assert_eq!(changes[0].from, changes[0].to);
    assert_eq!(
        p.record(0),
        Some(InFlight {
            state: RecordState::Acquired(A),
            delivery_count: 1
        })
    );
}

#[test]
fn t7_renew_is_not_a_type_before_4_2() {
    let mut p = part(1);
    p.acquire(&rules_41(), A, &[0]).unwrap();
    let err = p
        .acknowledge(&rules_41(), A, &[AckBatch::new(0, 0, AckType::Renew)], true)
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::INVALID_REQUEST);
}

#[test]
fn t7_renew_after_expiry_fails() {
    let r = rules();
    let mut p = part(1);
    p.acquire(&r, A, &[0]).unwrap();
    p.expire_lock(&r, 0).unwrap();
    assert_eq!(
        ack(&mut p, &r, A, 0, 0, AckType::Renew),
        Err(ErrorCode::INVALID_RECORD_STATE)
    );
}

#[test]
fn t8_lock_expiry_makes_available_or_archives_at_limit() {
    let r = rules();
    let mut p = part(1);
    for round in 1..=3u8 {
        p.acquire(&r, A, &[0]).unwrap();
        let c = p.expire_lock(&r, 0).unwrap();
        assert_eq!(c.to.delivery_count, round, "expiry keeps the count");
    }
    assert_eq!(state(&p, 0), RecordState::Archived);
    assert_eq!(p.expire_lock(&r, 0), None, "no lock left to expire");
}

#[test]
fn t8_ack_after_expiry_fails_with_invalid_record_state() {
    let r = rules();
    let mut p = part(1);
    p.acquire(&r, A, &[0]).unwrap();
    p.expire_lock(&r, 0);
    assert_eq!(
        ack(&mut p, &r, A, 0, 0, AckType::Accept),
        Err(ErrorCode::INVALID_RECORD_STATE)
    );
    let got = p.acquire(&r, A, &[0]).unwrap();
    assert_eq!(
        got[0].delivery_count, 2,
        "the same member may re-acquire it, with a higher count"
    );
}

#[test]
fn t9_session_release_42_keeps_count_and_archives_at_limit() {
    let r = rules();
    let mut p = part(2);
    p.acquire(&r, A, &[0]).unwrap();
    p.acquire(&r, B, &[1]).unwrap();
    let changes = p.release_session(&r, A);
    assert_eq!(changes.len(), 1, "only the closing member's records");
    assert_eq!(
        p.record(0),
        Some(InFlight {
            state: RecordState::Available,
            delivery_count: 1
        })
    );
    assert_eq!(state(&p, 1), RecordState::Acquired(B));
    for _ in 0..2 {
        p.acquire(&r, A, &[0]).unwrap();
        p.release_session(&r, A);
    }
    assert_eq!(
        state(&p, 0),
        RecordState::Archived,
        "3rd session release at limit 3 archives"
    );
}

#[test]
fn t9_session_release_41_decrements_and_never_archives() {
    let r = rules_41();
    let mut p = part(1);
    for _ in 0..10 {
        let got = p.acquire(&r, A, &[0]).unwrap();
        assert_eq!(
            got[0].delivery_count, 1,
            "4.1: the count never grows across session releases"
        );
        p.release_session(&r, A);
        assert_eq!(p.record(0), Some(InFlight::NEW));
    }
}

#[test]
fn t9_session_release_leaves_acknowledged_alone() {
    let r = rules();
    let mut p = part(2);
    p.acquire(&r, A, &[0, 1]).unwrap();
    ack(&mut p, &r, A, 0, 0, AckType::Accept).unwrap();
    p.release_session(&r, A);
    assert_eq!(
        (state(&p, 0), state(&p, 1)),
        (RecordState::Acknowledged, RecordState::Available)
    );
}

#[test]
fn t14_restart_forgets_acquisitions_keeps_outcomes() {
    let r = rules();
    let mut p = part(4);
    p.acquire(&r, A, &[0, 1, 2, 3]).unwrap();
    ack(&mut p, &r, A, 1, 1, AckType::Accept).unwrap();
    ack(&mut p, &r, A, 2, 2, AckType::Release).unwrap();
    p.acquire(&r, B, &[2]).unwrap();
    p.restart(&rules());
    assert_eq!(
        p.record(0),
        Some(InFlight::NEW),
        "never written: a new record again"
    );
    assert_eq!(state(&p, 1), RecordState::Acknowledged);
    assert_eq!(
        p.record(2),
        Some(InFlight {
            state: RecordState::Available,
            delivery_count: 1
        })
    );
    assert_eq!(p.record(3), Some(InFlight::NEW));
    assert_eq!(
        p.speo(),
        Some(2),
        "the cache ends after the last written record"
    );
    let got = p.acquire(&r, A, &[0, 2, 3]).unwrap();
    assert_eq!(
        got.as_slice(),
        &[range(0, 0, 1), range(2, 2, 2), range(3, 3, 1)]
    );
}

#[test]
fn t15_spso_stops_at_first_non_terminal() {
    let r = rules();
    let mut p = part(3);
    p.acquire(&r, A, &[0, 1, 2]).unwrap();
    ack(&mut p, &r, A, 1, 2, AckType::Accept).unwrap();
    assert_eq!(p.spso(), 0);
    ack(&mut p, &r, A, 0, 0, AckType::Reject).unwrap();
    assert_eq!(p.spso(), 3);
}

#[test]
fn only_available_records_are_acquirable() {
    let r = rules();
    let mut p = part(2);
    p.acquire(&r, A, &[0]).unwrap();
    assert_eq!(
        p.acquire(&r, B, &[0]).unwrap_err().reason,
        "already acquired"
    );
    assert_eq!(
        p.acquire(&r, B, &[5]).unwrap_err().reason,
        "beyond the log end"
    );
    ack(&mut p, &r, A, 0, 0, AckType::Accept).unwrap();
    assert_eq!(p.acquire(&r, B, &[0]).unwrap_err().reason, "below the SPSO");
}

#[test]
fn new_offsets_are_read_contiguously() {
    let r = rules();
    let mut p = part(3);
    assert_eq!(
        p.acquire(&r, A, &[1]).unwrap_err().reason,
        "skips unfetched offsets"
    );
    assert!(p.acquire(&r, A, &[0, 1]).is_ok());
}

#[test]
fn next_acquisition_prefers_redelivery_then_new() {
    let r = rules();
    let mut p = part(4);
    p.acquire(&r, A, &[0, 1]).unwrap();
    ack(&mut p, &r, A, 1, 1, AckType::Release).unwrap();
    assert_eq!(p.next_acquisition(&r, 2).as_slice(), &[1, 2]);
    assert_eq!(p.next_acquisition(&r, 10).as_slice(), &[1, 2, 3]);
}

#[test]
fn window_42_caps_new_acquisitions() {
    let r = Rules {
        max_in_flight: 2,
        ..rules()
    };
    let mut p = part(4);
    assert_eq!(p.next_acquisition(&r, 10).as_slice(), &[0, 1]);
    assert_eq!(
        p.acquire(&r, A, &[0, 1, 2]).unwrap_err().reason,
        "exceeds the in-flight window limit"
    );
    p.acquire(&r, A, &[0, 1]).unwrap();
    ack(&mut p, &r, A, 1, 1, AckType::Accept).unwrap();
    assert_eq!(
        p.window(),
        2,
        "acknowledged offsets inside the window still count"
    );
    assert_eq!(p.next_acquisition(&r, 10).as_slice(), &[] as &[Offset]);
    ack(&mut p, &r, A, 0, 0, AckType::Release).unwrap();
    assert_eq!(
        p.next_acquisition(&r, 10).as_slice(),
        &[0],
        "redelivery proceeds at the limit"
    );
}

#[test]
fn window_41_checks_only_before_fetch() {
    let r = Rules {
        max_in_flight: 2,
        ..rules_41()
    };
    let mut p = part(4);
    assert_eq!(
        p.next_acquisition(&r, 10).as_slice(),
        &[0, 1, 2, 3],
        "4.1 may overshoot in one fetch"
    );
    p.acquire(&r, A, &[0, 1, 2]).unwrap();
    assert_eq!(p.next_acquisition(&r, 10).as_slice(), &[] as &[Offset]);
}

// ---- §5.3 errors -------------------------------------------------------------------------------

fn acked(p: &mut SharePartition, m: MemberIdx, batches: &[AckBatch]) -> Result<(), AckError> {
    p.acknowledge(&rules(), m, batches, false).map(|_| ())
}

fn batch(first: Offset, last: Offset, types: &[i8]) -> AckBatch {
    AckBatch {
        first_offset: first,
        last_offset: last,
        types: types.iter().copied().collect(),
    }
}

fn three_acquired_by_a() -> SharePartition {
    let mut p = part(3);
    p.acquire(&rules(), A, &[0, 1, 2]).unwrap();
    p
}

#[test]
fn e42_first_after_last() {
    let mut p = three_acquired_by_a();
    assert_eq!(
        acked(&mut p, A, &[batch(2, 1, &[1])]).unwrap_err().code,
        ErrorCode::INVALID_REQUEST
    );
}

#[test]
fn e42_batches_out_of_order_but_touching_is_allowed() {
    let mut p = three_acquired_by_a();
    let err = acked(&mut p, A, &[batch(1, 2, &[1]), batch(0, 0, &[1])]).unwrap_err();
    assert_eq!((err.code, err.batch), (ErrorCode::INVALID_REQUEST, 1));
    // first == previous last passes request validation, then fails the state check (§12.4 #1).
    let err = acked(&mut p, A, &[batch(0, 1, &[1]), batch(1, 2, &[1])]).unwrap_err();
    assert_eq!(
        (err.code, err.offset),
        (ErrorCode::INVALID_RECORD_STATE, Some(1))
    );
    assert_eq!(state(&p, 0), RecordState::Acquired(A), "rolled back");
}

#[test]
fn e42_a_first_batch_below_minus_one() {
    // Kafka's ordering check starts at -1: a first batch from -2 is out of order; from -1 it is
    // merely below the SPSO and ignored.
    let mut p = three_acquired_by_a();
    let err = acked(&mut p, A, &[batch(-2, -1, &[1])]).unwrap_err();
    assert_eq!((err.code, err.batch), (ErrorCode::INVALID_REQUEST, 0));
    assert!(acked(&mut p, A, &[batch(-1, -1, &[1])]).is_ok());
    assert_eq!(state(&p, 0), RecordState::Acquired(A));
}

#[test]
fn e42_type_list_shape_and_codes() {
    let mut p = three_acquired_by_a();
    let code = |p: &mut SharePartition, b| acked(p, A, &[b]).unwrap_err().code;
    assert_eq!(code(&mut p, batch(0, 2, &[])), ErrorCode::INVALID_REQUEST);
    assert_eq!(
        code(&mut p, batch(0, 2, &[1, 1])),
        ErrorCode::INVALID_REQUEST
    );
    assert_eq!(code(&mut p, batch(0, 0, &[-1])), ErrorCode::INVALID_REQUEST);
    assert_eq!(code(&mut p, batch(0, 0, &[5])), ErrorCode::INVALID_REQUEST);
    assert_eq!(
        code(&mut p, batch(0, 0, &[4])),
        ErrorCode::INVALID_REQUEST,
        "RENEW without IsRenewAck"
    );
}

#[test]
fn per_offset_types_apply_per_offset() {
    let mut p = three_acquired_by_a();
    acked(&mut p, A, &[batch(0, 2, &[1, 2, 3])]).unwrap();
    assert_eq!(
        (state(&p, 0), state(&p, 1), state(&p, 2)),
        (
            RecordState::Acknowledged,
            RecordState::Available,
            RecordState::Archived
        )
    );
}

#[test]
fn e121_not_acquired_by_caller_and_rollback() {
    let mut p = three_acquired_by_a();
    let before = p.clone();
    let err = acked(&mut p, B, &[batch(0, 0, &[1])]).unwrap_err();
    assert_eq!(
        (err.code, err.reason),
        (
            ErrorCode::INVALID_RECORD_STATE,
            "acquired by another member"
        )
    );
    let err = acked(&mut p, A, &[batch(0, 0, &[1]), batch(2, 2, &[1])]).map(|_| ());
    assert!(err.is_ok());
    let err = acked(&mut p, A, &[batch(1, 1, &[1]), batch(2, 2, &[1])]).unwrap_err();
    assert_eq!(
        (err.code, err.offset, err.reason),
        (
            ErrorCode::INVALID_RECORD_STATE,
            Some(2),
            "already acknowledged"
        )
    );
    assert_eq!(
        state(&p, 1),
        RecordState::Acquired(A),
        "batch 0 rolled back with batch 1"
    );
    assert_ne!(before, p);
}

#[test]
fn e121_empty_cache_and_e42_beyond_speo() {
    let mut p = part(3);
    assert_eq!(
        acked(&mut p, A, &[batch(0, 0, &[1])]).unwrap_err().code,
        ErrorCode::INVALID_RECORD_STATE
    );
    p.acquire(&rules(), A, &[0]).unwrap();
    assert_eq!(
        acked(&mut p, A, &[batch(0, 1, &[1])]).unwrap_err().code,
        ErrorCode::INVALID_REQUEST
    );
    assert_eq!(
        acked(&mut p, A, &[batch(2, 2, &[1])]).unwrap_err().code,
        ErrorCode::INVALID_REQUEST
    );
}

#[test]
fn acks_below_spso_are_ignored() {
    let mut p = three_acquired_by_a();
    acked(&mut p, A, &[batch(0, 0, &[1])]).unwrap();
    assert_eq!(p.spso(), 1);
    let changes = p
        .acknowledge(&rules(), A, &[batch(0, 0, &[3])], false)
        .unwrap();
    assert!(changes.is_empty());
    assert_eq!(state(&p, 0), RecordState::Acknowledged);
    // A batch straddling the SPSO only touches the part at or above it.
    acked(&mut p, A, &[batch(0, 1, &[2])]).unwrap();
    assert_eq!(state(&p, 1), RecordState::Available);
}

#[test]
fn latest_reset_starts_at_high_watermark() {
    let r = rules();
    let mut p = SharePartition::initialized(AutoOffsetReset::Latest, 5);
    assert_eq!(p.spso(), 5);
    assert!(p.next_acquisition(&r, 10).is_empty());
    p.produce(1);
    assert_eq!(p.next_acquisition(&r, 10).as_slice(), &[5]);
    let e = SharePartition::initialized(AutoOffsetReset::Earliest, 5);
    assert_eq!(e.next_acquisition(&r, 10).len(), 5);
}

// ---- mutants change exactly their rule --------------------------------------------------------

fn with(m: Mutant) -> Rules {
    Rules {
        mutant: Some(m),
        ..rules()
    }
}

#[test]
fn mutants_change_their_rule() {
    // no-count-increment
    let r = with(Mutant::NoCountIncrement);
    let mut p = part(1);
    p.acquire(&r, A, &[0]).unwrap();
    ack(&mut p, &r, A, 0, 0, AckType::Release).unwrap();
    assert_eq!(p.acquire(&r, A, &[0]).unwrap()[0].delivery_count, 1);
    // double-acquire
    let r = with(Mutant::DoubleAcquire);
    let mut p = part(1);
    p.acquire(&r, A, &[0]).unwrap();
    assert!(p.acquire(&r, B, &[0]).is_ok());
    // non-atomic-ack
    let r = with(Mutant::NonAtomicAck);
    let mut p = part(3);
    p.acquire(&r, A, &[0, 1]).unwrap();
    assert!(p
        .acknowledge(
            &r,
            A,
            &[
                AckBatch::new(0, 0, AckType::Accept),
                AckBatch::new(2, 2, AckType::Accept)
            ],
            false
        )
        .is_err());
    assert_eq!(state(&p, 0), RecordState::Acknowledged);
    // session-close-keeps-locks
    let r = with(Mutant::SessionCloseKeepsLocks);
    let mut p = part(1);
    p.acquire(&r, A, &[0]).unwrap();
    assert!(p.release_session(&r, A).is_empty());
    // spso-skips-acquired
    let r = with(Mutant::SpsoSkipsAcquired);
    let mut p = part(2);
    p.acquire(&r, A, &[0, 1]).unwrap();
    ack(&mut p, &r, A, 1, 1, AckType::Accept).unwrap();
    assert_eq!(p.spso(), 2);
    // stale-fetch-offset
    let r = with(Mutant::StaleFetchOffset);
    let mut p = part(1);
    p.acquire(&r, A, &[0]).unwrap();
    ack(&mut p, &r, A, 0, 0, AckType::Release).unwrap();
    assert!(p.next_acquisition(&r, 10).is_empty());
    // silent-invalid-ack
    let r = with(Mutant::SilentInvalidAck);
    let mut p = part(1);
    p.acquire(&r, A, &[0]).unwrap();
    assert!(ack(&mut p, &r, B, 0, 0, AckType::Accept).is_ok());
    assert_eq!(state(&p, 0), RecordState::Acquired(A));
}

#[test]
fn a_renewing_fetch_must_fetch_nothing_and_record_limit_is_a_hard_cap() {
    assert_eq!(renewing_fetch_error(true, (0, 0, 0, 0)), None);
    for limits in [(1, 0, 0, 0), (0, 1, 0, 0), (0, 0, 1, 0), (0, 0, 0, 1)] {
        assert_eq!(
            renewing_fetch_error(true, limits),
            Some(ErrorCode::INVALID_REQUEST),
            "{limits:?}"
        );
        assert_eq!(renewing_fetch_error(false, limits), None);
    }
    assert!(record_limit_exceeded(true, 2, 3));
    assert!(!record_limit_exceeded(true, 2, 2));
    assert!(
        !record_limit_exceeded(false, 2, 5),
        "batch-optimized may take the whole batch"
    );
}

#[test]
fn lag_counts_the_records_from_the_spso_that_are_not_terminal() {
    let rules = Rules::kafka_defaults(Profile::KAFKA_4_2);
    let mut p = SharePartition::new(0);
    p.produce(5);
    assert_eq!(p.lag(), 5);
    p.acquire(&rules, 0, &[0, 1, 2, 3, 4]).unwrap();
    // Accept 0-1 (the SPSO moves to 2), reject 3 (terminal above the SPSO): 2 and 4 remain.
    let acks = [
        AckBatch::new(0, 1, AckType::Accept),
        AckBatch::new(3, 3, AckType::Reject),
    ];
    p.acknowledge(&rules, 0, &acks, false).unwrap();
    assert_eq!(p.spso(), 2);
    assert_eq!(p.lag(), 2);
}

#[test]
fn an_alter_restarts_the_share_partition_at_its_start() {
    let rules = Rules::kafka_defaults(Profile::KAFKA_4_2);
    let mut p = SharePartition::new(0);
    p.produce(5);
    p.acquire(&rules, 0, &[0, 1, 2, 3, 4]).unwrap();
    p.acknowledge(&rules, 0, &[AckBatch::new(0, 4, AckType::Accept)], false)
        .unwrap();
    let a = p.altered(1);
    assert_eq!((a.spso(), a.log_end(), a.lag()), (1, 5, 4));
    assert_eq!(a.record(0).map(|r| r.state), Some(RecordState::Archived));
    assert_eq!(a.record(1), Some(InFlight::NEW));
    assert_eq!(p.altered(99).spso(), 5);
}

#[test]
fn group_limits_are_refused_outside_every_broker_range() {
    assert_eq!(
        group_limit_answer("share.delivery.count.limit", 1),
        Some(LimitAnswer::Refuse)
    );
    assert_eq!(
        group_limit_answer("share.delivery.count.limit", 26),
        Some(LimitAnswer::Refuse)
    );
    assert_eq!(
        group_limit_answer("share.delivery.count.limit", 5),
        Some(LimitAnswer::Accept)
    );
    assert_eq!(
        group_limit_answer("share.delivery.count.limit", 10),
        Some(LimitAnswer::Either)
    );
    assert_eq!(
        group_limit_answer("share.record.lock.duration.ms", 999),
        Some(LimitAnswer::Refuse)
    );
    assert_eq!(
        group_limit_answer("share.partition.max.record.locks", 10_001),
        Some(LimitAnswer::Refuse)
    );
    assert_eq!(group_limit_answer("share.auto.offset.reset", 0), None);
}

#[test]
fn only_rejected_and_limit_archived_records_go_to_the_dlq() {
    let acquired = InFlight {
        state: RecordState::Acquired(0),
        delivery_count: 2,
    };
    let archived = InFlight {
        state: RecordState::Archived,
        delivery_count: 2,
    };
    let ch = |from, to| Change {
        offset: 0,
        from,
        to,
    };
    let a = ch(acquired, archived);
    assert_eq!(
        dlq_cause(Some(AckType::Reject), &a),
        Some(DlqCause::ClientReject)
    );
    assert_eq!(
        dlq_cause(Some(AckType::Release), &a),
        Some(DlqCause::DeliveryCountExceeded)
    );
    assert_eq!(dlq_cause(None, &a), Some(DlqCause::DeliveryCountExceeded));
    assert_eq!(dlq_cause(Some(AckType::Gap), &a), None);
    let available = InFlight {
        state: RecordState::Available,
        ..archived
    };
    assert_eq!(dlq_cause(None, &ch(available, archived)), None);
    assert_eq!(
        dlq_cause(Some(AckType::Release), &ch(acquired, available)),
        None
    );
    assert_eq!(
        DlqCause::from_message("Offset rejected by client."),
        Some(DlqCause::ClientReject)
    );
}
