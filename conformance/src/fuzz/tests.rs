//! Generation, lowering and fixtures of the fuzzer.

use super::*;
use crate::trace::{FoundBy, Level, Step};
use sharecheck_model::vocab::AckType;
use sharecheck_model::Profile;

fn rules() -> Rules {
    Rules::kafka_defaults(Profile::DEFAULT)
}

#[test]
fn the_same_seed_gives_the_same_cases() {
    let gen = GenConfig::default();
    for index in 0..20 {
        let a = case_tree(&gen, 7, index).unwrap().current();
        let b = case_tree(&gen, 7, index).unwrap().current();
        assert_eq!(a, b);
    }
    let a: Vec<FuzzCase> = (0..20)
        .map(|i| case_tree(&gen, 7, i).unwrap().current())
        .collect();
    let b: Vec<FuzzCase> = (0..20)
        .map(|i| case_tree(&gen, 8, i).unwrap().current())
        .collect();
    assert_ne!(a, b);
}

#[test]
fn lowered_cases_are_valid_traces_and_cover_every_operation() {
    let gen = GenConfig::default();
    let mut seen = std::collections::BTreeSet::new();
    for index in 0..400 {
        let fc = case_tree(&gen, 1, index).unwrap().current();
        assert!(fc.ops.len() <= gen.max_ops);
        let case = case_of(&fc, index, &gen, &rules(), 1000);
        case.validate()
            .unwrap_or_else(|e| panic!("case {index}: {e}\n{}", case.to_json()));
        let text = case.to_json();
        let again = Case::parse(&text, "again").unwrap();
        assert_eq!(again, case);
        for s in &case.steps {
            seen.insert(
                serde_json::to_value(s).unwrap()["op"]
                    .as_str()
                    .unwrap()
                    .to_string(),
            );
        }
    }
    for op in [
        "produce",
        "fetch",
        "ack",
        "raw_ack",
        "raw_fetch",
        "wait_lock_expiry",
        "wait",
        "close_session",
        "disconnect",
        "crash",
        "rejoin",
    ] {
        assert!(seen.contains(op), "no {op} in 400 cases: {seen:?}");
    }
}

#[test]
fn without_waits_no_case_waits() {
    let gen = GenConfig {
        waits: false,
        members: 1,
        max_ops: 60,
        ..GenConfig::default()
    };
    for index in 0..200 {
        let fc = case_tree(&gen, 3, index).unwrap().current();
        assert!(fc
            .ops
            .iter()
            .all(|op| !matches!(op, Op::WaitLockExpiry | Op::WaitPart { .. })));
        assert!(fc.ops.iter().all(|op| match op {
            Op::Fetch { member, .. } | Op::Crash { member } => *member == 0,
            _ => true,
        }));
    }
}

#[test]
fn raw_acknowledgements_resolve_against_the_prediction() {
    let gen = GenConfig {
        members: 2,
        ..GenConfig::default()
    };
    let raw = |r: Ref, t: Types| Op::RawAck {
        member: 0,
        batches: vec![(r, t)],
        sorted: true,
        via: Via::Acknowledge,
    };
    let fc = FuzzCase {
        initial_records: 4,
        delivery_limit: 3,
        ops: vec![
            Op::Fetch {
                member: 0,
                max_records: 2,
            },
            Op::Fetch {
                member: 1,
                max_records: 1,
            },
            // A holds 0, 1; B holds 2.
            raw(Ref::OtherHeld { index: 0 }, Types::One(AckType::Accept)),
            raw(
                Ref::Held { index: 0, len: 2 },
                Types::PerOffset(vec![AckType::Accept, AckType::Release]),
            ),
            // 0 is acknowledged, 1 available again; SPSO is 1.
            raw(Ref::Acknowledged { index: 0 }, Types::One(AckType::Accept)),
            raw(Ref::BelowStart { by: 0 }, Types::One(AckType::Reject)),
            raw(Ref::BeyondEnd { by: 1 }, Types::BadCode(5)),
            raw(Ref::Available { index: 0 }, Types::CountMismatch),
            raw(Ref::Held { index: 0, len: 1 }, Types::Empty),
        ],
    };
    let steps = lower(&fc, &gen, &rules(), 1000);
    let batches: Vec<Vec<(i64, i64, Vec<i8>)>> = steps
        .iter()
        .filter_map(|s| match s {
            Step::RawAck { batches, .. } => Some(
                batches
                    .iter()
                    .map(|b| (b.first_offset, b.last_offset, b.types.to_vec()))
                    .collect(),
            ),
            _ => None,
        })
        .collect();
    assert_eq!(
        batches,
        vec![
            vec![(2, 2, vec![1])],
            vec![(0, 1, vec![1, 2])],
            vec![(0, 0, vec![1])],
            vec![(0, 0, vec![3])],
            vec![(4, 4, vec![5])],
            vec![(1, 1, vec![1, 1])],
        ]
    );
    // The last one resolved to nothing (A holds nothing now) and was dropped.
    assert_eq!(steps.len(), 1 + 2 + 6);
}

#[test]
fn fixtures_get_kafka_legal_timing_and_a_kebab_id() {
    let gen = GenConfig::default();
    let fc = FuzzCase {
        initial_records: 1,
        delivery_limit: 2,
        ops: vec![
            Op::Fetch {
                member: 0,
                max_records: 1,
            },
            Op::WaitPart { percent: 50 },
        ],
    };
    let case = case_of(&fc, 3, &gen, &rules(), 100);
    assert_eq!(case.steps[2], Step::Wait { ms: 50 });
    let result = CaseResult {
        id: case.id.clone(),
        area: "claims".into(),
        level: Level::Must,
        verdict: CaseVerdict::Fail,
        anomalies: vec![crate::oracle::Violation {
            kind: sharecheck_model::Anomaly::DeliveryCountMismatch,
            step: 2,
            detail: "offset 0: delivery count 0, spec 1".into(),
        }],
        reason: None,
        notes: Vec::new(),
        duration_ms: 1,
        exercised: Default::default(),
        delivery_limit: 2,
        unreachable: None,
        history: Vec::new(),
        steps: Vec::new(),
        case: case.clone(),
    };
    let found = FoundBy {
        command: "sharecheck fuzz --seed 7".into(),
        seed: 7,
        case: 3,
        target: "sharecheck reference broker".into(),
        mutant: Some("reported-count-off-by-one".into()),
        steps_before_shrinking: 9,
        shrink_runs: 4,
    };
    let fixture = fixture_case(&case, &result, found, 1000);
    assert_eq!(
        fixture.id,
        "kip932.delivery-limit.fuzz-reported-count-off-by-one-delivery-count-mismatch-seed-7"
    );
    assert_eq!(fixture.settings.lock_duration_ms, 1000);
    assert_eq!(fixture.steps[2], Step::Wait { ms: 500 });
    let back = Case::parse(&fixture.to_json(), "fixture").unwrap();
    assert_eq!(back, fixture);
    assert_eq!(
        fixture_file_name(&fixture),
        "delivery-limit.fuzz-reported-count-off-by-one-delivery-count-mismatch-seed-7.json"
    );
}

#[test]
fn shrinking_the_value_tree_keeps_cases_lowerable() {
    let gen = GenConfig::default();
    let mut tree = case_tree(&gen, 11, 0).unwrap();
    let mut n = 0;
    while tree.simplify() && n < 2000 {
        n += 1;
        let case = case_of(&tree.current(), 0, &gen, &rules(), 1000);
        assert!(case.validate().is_ok());
    }
    assert!(n > 0);
    assert!(tree.current().ops.len() <= 1, "{:?}", tree.current().ops);
}

#[test]
fn a_fixed_delivery_limit_and_no_fetch_acks_hold_in_every_case() {
    let gen = GenConfig {
        delivery_limit: Some(5),
        no_fetch_acks: true,
        ..GenConfig::default()
    };
    for index in 0..200 {
        let fc = case_tree(&gen, 7, index).unwrap().current();
        assert_eq!(fc.delivery_limit, 5);
        assert!(fc.ops.iter().all(|op| !matches!(
            op,
            Op::Ack {
                via: Via::Fetch,
                ..
            } | Op::RawAck {
                via: Via::Fetch,
                ..
            }
        )));
    }
    // The defaults still draw both.
    let any_fetch_ack = (0..200).any(|i| {
        case_tree(&GenConfig::default(), 7, i)
            .unwrap()
            .current()
            .ops
            .iter()
            .any(|op| {
                matches!(
                    op,
                    Op::Ack {
                        via: Via::Fetch,
                        ..
                    }
                )
            })
    });
    assert!(any_fetch_ack);
    assert!(GenConfig {
        delivery_limit: Some(1),
        ..GenConfig::default()
    }
    .validate()
    .is_err());
}
