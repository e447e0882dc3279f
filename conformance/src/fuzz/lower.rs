//! Lowering: a fuzz case becomes a [`Case`] of trace [`Step`]s, so every finding is a trace
//! `sharecheck replay` reruns. Valid acknowledgements stay relative (`Step::Ack` with a
//! [`Selection`]) and are resolved by the runner against what the member really holds; invalid ones
//! are resolved against the [`Prediction`] and written as `raw_ack` steps.

use super::gen::{EpochKind, FuzzCase, GenConfig, Op, Pick, Types, MAX_MEMBERS};
use super::predict::Prediction;
use crate::trace::{
    AckVia, Case, Level, MemberIds, OffsetReset, Origin, Selection, Settings, Step, Suite,
    FORMAT_VERSION,
};
use sharecheck_model::spec::{AckBatch, Offset, Rules};
use sharecheck_model::vocab::{member_name, AckType};

fn codes(types: &Types, first: Offset, last: Offset) -> Vec<i8> {
    let len = last
        .checked_sub(first)
        .and_then(|d| d.checked_add(1))
        .unwrap_or(1)
        .clamp(1, 64) as usize;
    match types {
        Types::One(t) => vec![t.code()],
        Types::PerOffset(ts) if !ts.is_empty() && last >= first => {
            (0..len).map(|k| ts[k % ts.len()].code()).collect()
        }
        Types::PerOffset(ts) => vec![ts.first().map_or(1, |t| t.code())],
        Types::BadCode(c) => vec![*c],
        Types::CountMismatch => vec![AckType::Accept.code(); len + 1],
        Types::Empty => Vec::new(),
    }
}

/// The held offsets as batches of one type; a batch at offset 0 when nothing is held (an epoch
/// test still needs something to send).
fn held_batches(held: &[Offset], ty: AckType) -> Vec<AckBatch> {
    let mut out = AckBatch::runs(held, ty.code());
    if out.is_empty() {
        out.push(AckBatch::new(0, 0, ty));
    }
    out
}

/// An epoch no session of a fuzz case reaches.
const FUTURE_EPOCH: i32 = 100_000;

/// The steps of a fuzz case, with the settings it runs with.
///
/// `rules` are the rules of the target (the prediction needs its window limit and profile; the
/// delivery limit comes from the case); `lock_ms` is the lock duration the case runs with.
pub fn lower(fc: &FuzzCase, gen: &GenConfig, rules: &Rules, lock_ms: u32) -> Vec<Step> {
    let rules = Rules {
        delivery_limit: fc.delivery_limit,
        ..*rules
    };
    let mut p = Prediction::new(rules, gen.members.clamp(1, MAX_MEMBERS), u64::from(lock_ms));
    let mut steps = Vec::with_capacity(fc.ops.len() + 1);
    let initial = u32::from(fc.initial_records.max(1));
    steps.push(Step::Produce {
        records: initial,
        batches: None,
        partition: 0,
    });
    p.part.produce(initial as usize);
    for op in &fc.ops {
        match op {
            Op::Fetch {
                member,
                max_records,
            } => {
                let max = u32::from((*max_records).max(1));
                steps.push(Step::Fetch {
                    member: member_name(usize::from(*member)),
                    max_records: max,
                    acquire_mode: None,
                });
                p.fetch(*member, max);
            }
            Op::Ack {
                member,
                pick,
                ty,
                via,
            } => {
                let select = match pick {
                    Pick::All => Selection::ALL,
                    Pick::Indices(ix) => {
                        Selection::Indices(ix.iter().map(|i| *i as usize).collect())
                    }
                };
                let held = p.member(*member).held.clone();
                let offsets = select.pick(&held);
                let batches: Vec<AckBatch> = if offsets.is_empty() {
                    Vec::new()
                } else {
                    held_batches(&offsets, *ty)
                };
                steps.push(Step::Ack {
                    member: member_name(usize::from(*member)),
                    select,
                    ty: *ty,
                    via: via.wire(),
                    partition: None,
                });
                if !batches.is_empty() {
                    p.ack(*member, &batches, *via);
                }
            }
            Op::RawAck {
                member,
                batches,
                sorted,
                via,
            } => {
                let mut raw: Vec<AckBatch> = batches
                    .iter()
                    .filter_map(|(r, t)| {
                        p.resolve(*member, r).map(|(first, last)| AckBatch {
                            first_offset: first,
                            last_offset: last,
                            types: codes(t, first, last).into(),
                        })
                    })
                    .collect();
                if raw.is_empty() {
                    continue;
                }
                if *sorted {
                    raw.sort_by_key(|b| (b.first_offset, b.last_offset));
                }
                steps.push(Step::RawAck {
                    member: member_name(usize::from(*member)),
                    batches: raw.clone(),
                    via: via.wire(),
                    epoch: None,
                    partition: 0,
                    is_renew_ack: None,
                });
                p.ack(*member, &raw, *via);
            }
            Op::BadEpoch { member, kind } => {
                let name = member_name(usize::from(*member));
                let held = p.member(*member).held.clone();
                let step = match kind {
                    EpochKind::FetchFuture => Step::RawFetch {
                        member: name,
                        epoch: FUTURE_EPOCH,
                        max_records: 1,
                        partition: 0,
                    },
                    EpochKind::AckFuture => Step::RawAck {
                        member: name,
                        batches: held_batches(&held, AckType::Accept),
                        via: AckVia::ShareAcknowledge,
                        epoch: Some(FUTURE_EPOCH),
                        partition: 0,
                        is_renew_ack: None,
                    },
                    EpochKind::FetchZeroWithAcks => Step::RawAck {
                        member: name,
                        batches: held_batches(&held, AckType::Accept),
                        via: AckVia::ShareFetch,
                        epoch: Some(0),
                        partition: 0,
                        is_renew_ack: None,
                    },
                    EpochKind::AckZero => Step::RawAck {
                        member: name,
                        batches: held_batches(&held, AckType::Accept),
                        via: AckVia::ShareAcknowledge,
                        epoch: Some(0),
                        partition: 0,
                        is_renew_ack: None,
                    },
                    EpochKind::FetchReopen => Step::RawFetch {
                        member: name,
                        epoch: 0,
                        max_records: 2,
                        partition: 0,
                    },
                };
                if *kind == EpochKind::FetchReopen {
                    p.fetch(*member, 2);
                }
                p.member(*member).joined = true;
                steps.push(step);
            }
            Op::Produce { records } => {
                let n = u32::from((*records).max(1));
                steps.push(Step::Produce {
                    records: n,
                    batches: None,
                    partition: 0,
                });
                p.part.produce(n as usize);
            }
            Op::WaitLockExpiry => {
                if matches!(steps.last(), Some(Step::WaitLockExpiry)) {
                    continue;
                }
                steps.push(Step::WaitLockExpiry);
                p.now += p.lock_ms + 1;
                p.fire_locks(u64::MAX);
            }
            Op::WaitPart { percent } => {
                let ms = u64::from(lock_ms) * u64::from((*percent).min(100)) / 100;
                steps.push(Step::Wait { ms });
                p.now += ms;
                let now = p.now;
                p.fire_locks(now);
            }
            Op::CloseSession { member } => {
                steps.push(Step::CloseSession {
                    member: member_name(usize::from(*member)),
                });
                p.member(*member).joined = true;
                if p.member(*member).session {
                    p.end_session(*member);
                }
            }
            Op::Disconnect { member, settle } => {
                steps.push(Step::Disconnect {
                    member: member_name(usize::from(*member)),
                });
                p.member(*member).joined = true;
                p.end_session(*member);
                if *settle {
                    settle_wait(&mut steps, &mut p, lock_ms);
                }
            }
            Op::Crash { member } => {
                steps.push(Step::Crash {
                    member: member_name(usize::from(*member)),
                });
                p.member(*member).held.clear();
            }
            Op::Rejoin { member, settle } => {
                steps.push(Step::Rejoin {
                    member: member_name(usize::from(*member)),
                });
                if *settle {
                    settle_wait(&mut steps, &mut p, lock_ms);
                }
                if p.member(*member).joined {
                    p.end_session(*member);
                }
                let idx = p.next_idx;
                p.next_idx = p.next_idx.saturating_add(1);
                let mm = p.member(*member);
                mm.idx = idx;
                mm.held.clear();
                mm.session = false;
                mm.joined = true;
            }
        }
    }
    steps
}

/// How long a settling wait after a dropped connection lasts, in % of the lock: long past the
/// in-process oracle tolerance, well before the locks taken just before expire.
pub const SETTLE_PERCENT: u64 = 40;

fn settle_wait(steps: &mut Vec<Step>, p: &mut Prediction, lock_ms: u32) {
    let ms = u64::from(lock_ms) * SETTLE_PERCENT / 100;
    steps.push(Step::Wait { ms });
    p.now += ms;
    let now = p.now;
    p.fire_locks(now);
}

/// The conformance case a fuzz case runs as: `kip932.claims.fuzz-<index>`, MUST, with the case's
/// delivery limit and the given lock duration.
pub fn case_of(fc: &FuzzCase, index: u64, gen: &GenConfig, rules: &Rules, lock_ms: u32) -> Case {
    Case {
        format_version: FORMAT_VERSION,
        id: format!("kip932.claims.fuzz-{index}"),
        level: Level::Must,
        rule: "every response to a fuzzed sequence of member operations is one the spec allows"
            .to_string(),
        source: "sharecheck fuzz (conformance/src/fuzz/)".to_string(),
        suite: Suite::Full,
        origin: Origin::Fuzz,
        settings: Settings {
            partitions: 1,
            lock_duration_ms: lock_ms,
            auto_offset_reset: OffsetReset::Earliest,
            delivery_limit: Some(fc.delivery_limit),
            max_in_flight: None,
            member_ids: MemberIds::Kafka,
            dlq: None,
            renew_acknowledge: None,
            without_allowances: Vec::new(),
        },
        requires: Vec::new(),
        steps: lower(fc, gen, rules, lock_ms),
        notes: None,
        history: None,
        found_by: None,
    }
}
