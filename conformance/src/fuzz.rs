//! Property-based fuzzing of acknowledgement sequences (`sharecheck fuzz`), shrunk to minimal,
//! replayable conformance cases.
//!
//! **Generation.** A [`FuzzCase`] is a list of member operations ([`Op`]) drawn by proptest
//! strategies ([`case_strategy`]): fetches; acknowledgements of held records with mixed types, by
//! *relative index* into what the member holds (crates.md gotcha 5: deleting an earlier operation
//! never invalidates a later one, so shrinking works); invalid acknowledgements — records another
//! member holds, records already acknowledged or archived, offsets past the SPEO and below the SPSO,
//! overlapping, unordered and reversed batches, the same offset twice in one request, bad type codes
//! and type counts, wrong share-session epochs; waits for lock expiry; session close; disconnect;
//! silent crash; rejoin. Members are drawn uniformly among several, so interleavings are the norm.
//!
//! **Lowering.** [`lower`] turns a fuzz case into a [`Case`] of [`Step`]s, so every finding is a
//! trace `sharecheck replay` reruns. Valid acknowledgements stay relative (`Step::Ack` with a
//! [`Selection`]) and are resolved by the runner against what the member really holds. Invalid ones
//! need offsets: they are resolved against a *prediction* of the partition (the spec itself, driven
//! as a conforming broker would be) and written as `raw_ack` steps. The prediction only picks
//! offsets; the oracle judges whatever the target does.
//!
//! **Running.** [`Fuzzer::run`] draws case `k` of seed `s` from its own RNG (so the same seed gives
//! the same sequences, whatever the concurrency), runs cases concurrently with
//! [`run::run_case`], and stops at the first case the oracle fails. That case is shrunk with
//! proptest's value tree (every shrink step reruns against the target, bounded in reruns and time),
//! then step by step, and confirmed by one more rerun: only a failure that reproduces counts.
//!
//! **Timing.** Lock expiry costs real time. Against the in-process reference broker the fuzzer uses
//! a short lock (fuzz-only: real Kafka's floor is 1000 ms) and a small oracle tolerance; fixtures are
//! written with Kafka-legal timing ([`fixture_case`]) and confirmed again that way.

use crate::run::{self, CaseResult, CaseVerdict, RunOptions, Target};
use crate::trace::{
    AckVia, Case, FoundBy, Level, MemberIds, OffsetReset, Origin, RawBatch, Selection, Settings,
    Step, Suite, TypeName, FORMAT_VERSION,
};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config as ProptestConfig, RngAlgorithm, TestRng, TestRunner};
use sharecheck_model::spec::{MemberIdx, Offset, RecordState, Rules, SharePartition};
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The lowest lock duration Apache Kafka accepts (`group.share.min.record.lock.duration.ms` floor).
pub const KAFKA_MIN_LOCK_MS: u32 = 1000;

/// The lowest lock duration the fuzzer uses against the in-process reference broker.
pub const FUZZ_MIN_LOCK_MS: u32 = 10;

/// Most members a fuzz case may use.
pub const MAX_MEMBERS: u8 = 8;

/// Most operations a fuzz case may have.
pub const MAX_OPS: usize = 200;

// ------------------------------------------------------------------------------------------------
// Operations

/// How an acknowledgement travels (see [`AckVia`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Via {
    /// ShareAcknowledge.
    Acknowledge,
    /// Piggy-backed on a ShareFetch with MaxRecords 0.
    Fetch,
    /// On the session-closing ShareFetch (epoch −1).
    Close,
}

impl Via {
    fn wire(self) -> AckVia {
        match self {
            Via::Acknowledge => AckVia::ShareAcknowledge,
            Via::Fetch => AckVia::ShareFetch,
            Via::Close => AckVia::Close,
        }
    }
}

/// Which held records a valid acknowledgement selects.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Pick {
    /// Everything the member holds.
    All,
    /// Relative indices into the member's held records (wrapping).
    Indices(Vec<u8>),
}

/// What offsets one batch of a raw acknowledgement names, relative to the predicted partition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ref {
    /// From the member's held record `index` over `len` held records (the range may span records
    /// the member does not hold).
    Held { index: u8, len: u8 },
    /// A record another member holds (or held): unowned.
    OtherHeld { index: u8 },
    /// A record already acknowledged.
    Acknowledged { index: u8 },
    /// A record archived.
    Archived { index: u8 },
    /// A record that is Available (released, expired or never fetched): not acquired.
    Available { index: u8 },
    /// An offset past the share-partition end offset.
    BeyondEnd { by: u8 },
    /// An offset below the share-partition start offset.
    BelowStart { by: u8 },
    /// A batch whose FirstOffset is greater than its LastOffset, around held record `index`.
    Reversed { index: u8 },
}

/// The type codes of one raw batch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Types {
    /// One type for the whole batch.
    One(TypeName),
    /// One type per offset, cycling through these.
    PerOffset(Vec<TypeName>),
    /// One out-of-range code for the whole batch.
    BadCode(i8),
    /// One type per offset, plus one too many.
    CountMismatch,
    /// No types at all.
    Empty,
}

/// A wrong share-session epoch, on purpose.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EpochKind {
    /// ShareFetch with an epoch far ahead of the session's.
    FetchFuture,
    /// ShareAcknowledge with an epoch far ahead of the session's.
    AckFuture,
    /// Acknowledgements on a ShareFetch with epoch 0 (which opens a session: invalid).
    FetchZeroWithAcks,
    /// ShareAcknowledge with epoch 0 (it cannot open a session).
    AckZero,
    /// ShareFetch with epoch 0 while a session is open: the session is reopened.
    FetchReopen,
}

/// One member operation of a fuzz case. Members are indices (`A` = 0).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Op {
    /// ShareFetch with MaxRecords.
    Fetch { member: u8, max_records: u8 },
    /// Acknowledge a relative selection of held records with one type.
    Ack {
        member: u8,
        pick: Pick,
        ty: TypeName,
        via: Via,
    },
    /// Acknowledge explicit batches, resolved against the predicted partition; `sorted` puts them
    /// in offset order, otherwise they go as drawn (unordered, overlapping, duplicated).
    RawAck {
        member: u8,
        batches: Vec<(Ref, Types)>,
        sorted: bool,
        via: Via,
    },
    /// A request with a wrong share-session epoch.
    BadEpoch { member: u8, kind: EpochKind },
    /// A producer appends records.
    Produce { records: u8 },
    /// Wait until every lock taken so far has surely expired.
    WaitLockExpiry,
    /// Wait `percent` % of the lock duration (25, 40, 70 or 90).
    WaitPart { percent: u8 },
    /// Close the member's share session (ShareFetch epoch −1).
    CloseSession { member: u8 },
    /// Drop the member's connection; with `settle`, then wait [`SETTLE_PERCENT`] % of the lock, so
    /// the broker has surely noticed before anything else happens (and the locks still hold).
    Disconnect { member: u8, settle: bool },
    /// The member forgets what it holds, silently.
    Crash { member: u8 },
    /// The member comes back as a new member (its old connection drops); `settle` as for
    /// [`Op::Disconnect`].
    Rejoin { member: u8, settle: bool },
}

/// A generated case: records produced first, the delivery limit asked for, and the operations.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FuzzCase {
    /// Records produced before the first operation.
    pub initial_records: u8,
    /// `share.delivery.count.limit` asked for (group-level where the target allows it).
    pub delivery_limit: u8,
    /// The operations.
    pub ops: Vec<Op>,
}

/// What the generator draws.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GenConfig {
    /// Members `A`.. (1..=[`MAX_MEMBERS`]).
    pub members: u8,
    /// Most operations per case (1..=[`MAX_OPS`]).
    pub max_ops: usize,
    /// Whether cases wait for lock expiry (each wait costs a lock duration of real time).
    pub waits: bool,
}

impl Default for GenConfig {
    fn default() -> Self {
        GenConfig {
            members: 3,
            max_ops: 24,
            waits: true,
        }
    }
}

impl GenConfig {
    /// Checks the bounds; the message names the flag.
    pub fn validate(&self) -> Result<(), String> {
        if !(1..=MAX_MEMBERS).contains(&self.members) {
            return Err(format!(
                "--members must be 1..={MAX_MEMBERS}, got {}",
                self.members
            ));
        }
        if !(1..=MAX_OPS).contains(&self.max_ops) {
            return Err(format!(
                "--max-ops must be 1..={MAX_OPS}, got {}",
                self.max_ops
            ));
        }
        Ok(())
    }
}

// ------------------------------------------------------------------------------------------------
// Strategies

fn type_name() -> impl Strategy<Value = TypeName> {
    prop_oneof![
        4 => Just(TypeName::Accept),
        3 => Just(TypeName::Release),
        2 => Just(TypeName::Reject),
        1 => Just(TypeName::Gap),
    ]
}

fn via() -> impl Strategy<Value = Via> {
    prop_oneof![
        6 => Just(Via::Acknowledge),
        2 => Just(Via::Fetch),
        1 => Just(Via::Close),
    ]
}

fn pick() -> impl Strategy<Value = Pick> {
    prop_oneof![
        1 => Just(Pick::All),
        3 => prop::collection::vec(0u8..8, 1..=3).prop_map(Pick::Indices),
    ]
}

fn reference() -> impl Strategy<Value = Ref> {
    prop_oneof![
        6 => (0u8..8, 1u8..=3).prop_map(|(index, len)| Ref::Held { index, len }),
        3 => (0u8..8).prop_map(|index| Ref::OtherHeld { index }),
        1 => (0u8..8).prop_map(|index| Ref::Acknowledged { index }),
        1 => (0u8..8).prop_map(|index| Ref::Archived { index }),
        2 => (0u8..8).prop_map(|index| Ref::Available { index }),
        1 => (0u8..3).prop_map(|by| Ref::BeyondEnd { by }),
        1 => (0u8..3).prop_map(|by| Ref::BelowStart { by }),
        1 => (0u8..8).prop_map(|index| Ref::Reversed { index }),
    ]
}

fn types() -> impl Strategy<Value = Types> {
    prop_oneof![
        8 => type_name().prop_map(Types::One),
        3 => prop::collection::vec(type_name(), 1..=4).prop_map(Types::PerOffset),
        1 => prop_oneof![Just(4i8), Just(5), Just(-1), Just(127)].prop_map(Types::BadCode),
        1 => Just(Types::CountMismatch),
        1 => Just(Types::Empty),
    ]
}

fn epoch_kind() -> impl Strategy<Value = EpochKind> {
    prop_oneof![
        Just(EpochKind::FetchFuture),
        Just(EpochKind::AckFuture),
        Just(EpochKind::FetchZeroWithAcks),
        Just(EpochKind::AckZero),
        Just(EpochKind::FetchReopen),
    ]
}

/// One operation. The simplest operations come first, because proptest shrinks a choice towards
/// earlier alternatives.
pub fn op_strategy(gen: &GenConfig) -> BoxedStrategy<Op> {
    let m = gen.members.clamp(1, MAX_MEMBERS);
    let mut choices: Vec<(u32, BoxedStrategy<Op>)> = vec![
        (
            30,
            (0..m, 1u8..=6)
                .prop_map(|(member, max_records)| Op::Fetch {
                    member,
                    max_records,
                })
                .boxed(),
        ),
        (
            26,
            (0..m, pick(), type_name(), via())
                .prop_map(|(member, pick, ty, via)| Op::Ack {
                    member,
                    pick,
                    ty,
                    via,
                })
                .boxed(),
        ),
        (
            12,
            (
                0..m,
                prop::collection::vec((reference(), types()), 1..=3),
                any::<bool>(),
                via(),
            )
                .prop_map(|(member, batches, sorted, via)| Op::RawAck {
                    member,
                    batches,
                    sorted,
                    via,
                })
                .boxed(),
        ),
        (
            4,
            (1u8..=3)
                .prop_map(|records| Op::Produce { records })
                .boxed(),
        ),
    ];
    if gen.waits {
        choices.push((5, Just(Op::WaitLockExpiry).boxed()));
        // A few fixed fractions, none near the half-lock edges that planted timing bugs and the
        // oracle's tolerance live on: shrinking a wait lands on one of them, not on a boundary
        // where the failure would only sometimes reproduce.
        choices.push((
            4,
            prop_oneof![Just(25u8), Just(40), Just(70), Just(90)]
                .prop_map(|percent| Op::WaitPart { percent })
                .boxed(),
        ));
    }
    choices.extend([
        (
            4,
            (0..m)
                .prop_map(|member| Op::CloseSession { member })
                .boxed(),
        ),
        (
            3,
            (0..m, any::<bool>())
                .prop_map(|(member, settle)| Op::Disconnect { member, settle })
                .boxed(),
        ),
        (3, (0..m).prop_map(|member| Op::Crash { member }).boxed()),
        (
            2,
            (0..m, any::<bool>())
                .prop_map(|(member, settle)| Op::Rejoin { member, settle })
                .boxed(),
        ),
        (
            3,
            (0..m, epoch_kind())
                .prop_map(|(member, kind)| Op::BadEpoch { member, kind })
                .boxed(),
        ),
    ]);
    proptest::strategy::Union::new_weighted(choices).boxed()
}

/// A whole case: 1..=8 records produced first, a delivery limit of 2..=5, and 1..=`max_ops`
/// operations.
pub fn case_strategy(gen: &GenConfig) -> BoxedStrategy<FuzzCase> {
    let max_ops = gen.max_ops.clamp(1, MAX_OPS);
    (
        1u8..=8,
        2u8..=5,
        prop::collection::vec(op_strategy(gen), 1..=max_ops),
    )
        .prop_map(|(initial_records, delivery_limit, ops)| FuzzCase {
            initial_records,
            delivery_limit,
            ops,
        })
        .boxed()
}

/// The RNG of case `index` of a run with `seed`: every case has its own, so a case is the same
/// whatever ran before it or beside it.
pub fn rng_for(seed: u64, index: u64) -> TestRng {
    let mut x = seed ^ index.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    let mut bytes = [0u8; 32];
    for chunk in bytes.chunks_mut(8) {
        // splitmix64
        x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = x;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        chunk.copy_from_slice(&z.to_le_bytes());
    }
    TestRng::from_seed(RngAlgorithm::ChaCha, &bytes)
}

/// The value tree of case `index` of a run with `seed` (its `current()` is the case; simplify and
/// complicate shrink it).
pub fn case_tree(
    gen: &GenConfig,
    seed: u64,
    index: u64,
) -> Result<Box<dyn ValueTree<Value = FuzzCase>>, String> {
    let config = ProptestConfig {
        failure_persistence: None,
        ..ProptestConfig::default()
    };
    let mut runner = TestRunner::new_with_rng(config, rng_for(seed, index));
    case_strategy(gen)
        .new_tree(&mut runner)
        .map(|t| Box::new(t) as Box<dyn ValueTree<Value = FuzzCase>>)
        .map_err(|e| format!("cannot generate case {index}: {e}"))
}

// ------------------------------------------------------------------------------------------------
// Lowering to trace steps, with a prediction of the partition

/// Member name of index `m`: `A`, `B`, …
pub fn member_name(m: u8) -> String {
    ((b'A' + m.min(25)) as char).to_string()
}

#[derive(Clone, Debug, Default)]
struct SimMember {
    idx: MemberIdx,
    held: Vec<Offset>,
    session: bool,
    joined: bool,
}

/// What a conforming broker would do with the steps so far: only used to pick offsets.
struct Prediction {
    rules: Rules,
    part: SharePartition,
    members: Vec<SimMember>,
    next_idx: MemberIdx,
    lock_ms: u64,
    now: u64,
    locks: Vec<Lock>,
}

/// A lock the prediction holds: its deadline, the member, and the offsets with their counts.
type Lock = (u64, MemberIdx, Vec<(Offset, u8)>);

impl Prediction {
    fn new(rules: Rules, members: u8, lock_ms: u64) -> Prediction {
        let members = (0..members)
            .map(|m| SimMember {
                idx: MemberIdx::from(m),
                ..SimMember::default()
            })
            .collect();
        Prediction {
            rules,
            part: SharePartition::new(0),
            members,
            next_idx: MemberIdx::from(MAX_MEMBERS),
            lock_ms,
            now: 0,
            locks: Vec::new(),
        }
    }

    fn member(&mut self, m: u8) -> &mut SimMember {
        let i = usize::from(m).min(self.members.len().saturating_sub(1));
        &mut self.members[i]
    }

    fn fetch(&mut self, m: u8, max_records: u32) {
        let idx = self.member(m).idx;
        let offsets = self.part.next_acquisition(&self.rules, max_records);
        if let Ok(ranges) = self.part.acquire(&self.rules, idx, &offsets) {
            let counts: Vec<(Offset, u8)> = ranges
                .iter()
                .flat_map(|r| (r.first_offset..=r.last_offset).map(move |o| (o, r.delivery_count)))
                .collect();
            self.locks.push((self.now + self.lock_ms, idx, counts));
            let mm = self.member(m);
            for o in offsets {
                if !mm.held.contains(&o) {
                    mm.held.push(o);
                }
            }
            mm.held.sort_unstable();
        }
        let mm = self.member(m);
        mm.session = true;
        mm.joined = true;
        self.now += 1;
    }

    fn ack(&mut self, m: u8, batches: &[RawBatch], via: Via) {
        let mm = self.member(m);
        mm.joined = true;
        if via != Via::Close && !mm.session {
            return;
        }
        let idx = mm.idx;
        let spec: Vec<sharecheck_model::spec::AckBatch> = batches
            .iter()
            .map(|b| sharecheck_model::spec::AckBatch {
                first_offset: b.first_offset,
                last_offset: b.last_offset,
                types: b.types.iter().copied().collect(),
            })
            .collect();
        let ok = self
            .part
            .acknowledge(&self.rules, idx, &spec, false)
            .is_ok();
        if ok {
            let mm = self.member(m);
            mm.held.retain(|o| {
                !batches
                    .iter()
                    .any(|b| (b.first_offset..=b.last_offset).contains(o))
            });
        }
        if via == Via::Close && self.member(m).session {
            self.end_session(m);
        }
        self.now += 1;
    }

    fn end_session(&mut self, m: u8) {
        let idx = self.member(m).idx;
        self.part.release_session(&self.rules, idx);
        let mm = self.member(m);
        mm.held.clear();
        mm.session = false;
    }

    fn fire_locks(&mut self, until: u64) {
        let rules = self.rules;
        let mut pending = Vec::new();
        for (deadline, member, offsets) in std::mem::take(&mut self.locks) {
            if deadline > until {
                pending.push((deadline, member, offsets));
                continue;
            }
            for (o, count) in offsets {
                let same = self.part.record(o).is_some_and(|r| {
                    r.state == RecordState::Acquired(member) && r.delivery_count == count
                });
                if same {
                    self.part.expire_lock(&rules, o);
                }
            }
        }
        self.locks = pending;
    }

    /// Offsets of records in `state`-matching states, in offset order.
    fn offsets_where(&self, pred: impl Fn(RecordState) -> bool) -> Vec<Offset> {
        self.part
            .records()
            .filter(|(_, r)| pred(r.state))
            .map(|(o, _)| o)
            .collect()
    }

    fn resolve(&self, m: u8, r: &Ref) -> Option<(Offset, Offset)> {
        let i = usize::from(m).min(self.members.len().saturating_sub(1));
        let me = &self.members[i];
        let at = |list: &[Offset], index: u8| -> Option<Offset> {
            (!list.is_empty()).then(|| list[usize::from(index) % list.len()])
        };
        match *r {
            Ref::Held { index, len } => {
                let h = &me.held;
                if h.is_empty() {
                    return None;
                }
                let a = usize::from(index) % h.len();
                let b = (a + usize::from(len.max(1)) - 1).min(h.len() - 1);
                Some((h[a], h[b]))
            }
            Ref::OtherHeld { index } => {
                let mut list: Vec<Offset> =
                    self.offsets_where(|s| matches!(s, RecordState::Acquired(x) if x != me.idx));
                for (j, other) in self.members.iter().enumerate() {
                    if j != i {
                        list.extend(other.held.iter().copied());
                    }
                }
                list.retain(|o| !me.held.contains(o));
                list.sort_unstable();
                list.dedup();
                at(&list, index).map(|o| (o, o))
            }
            Ref::Acknowledged { index } => at(
                &self.offsets_where(|s| s == RecordState::Acknowledged),
                index,
            )
            .map(|o| (o, o)),
            Ref::Archived { index } => {
                let list: Vec<Offset> = self
                    .offsets_where(|s| s == RecordState::Archived)
                    .into_iter()
                    .filter(|o| *o >= 0)
                    .collect();
                at(&list, index).map(|o| (o, o))
            }
            Ref::Available { index } => {
                at(&self.offsets_where(|s| s == RecordState::Available), index).map(|o| (o, o))
            }
            Ref::BeyondEnd { by } => {
                let o = self.part.cache_end().max(self.part.spso()) + Offset::from(by);
                Some((o, o))
            }
            Ref::BelowStart { by } => {
                let spso = self.part.spso();
                (spso > 0).then(|| {
                    let o = (spso - 1 - Offset::from(by)).max(0);
                    (o, o)
                })
            }
            Ref::Reversed { index } => {
                let o = at(&me.held, index).unwrap_or(0);
                Some((o + 1, o))
            }
        }
    }
}

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
        Types::CountMismatch => vec![TypeName::Accept.code(); len + 1],
        Types::Empty => Vec::new(),
    }
}

fn held_batches(held: &[Offset], ty: TypeName) -> Vec<RawBatch> {
    let mut out: Vec<RawBatch> = Vec::new();
    for &o in held {
        match out.last_mut() {
            Some(b) if b.last_offset + 1 == o => b.last_offset = o,
            _ => out.push(RawBatch {
                first_offset: o,
                last_offset: o,
                types: vec![ty.code()],
            }),
        }
    }
    if out.is_empty() {
        out.push(RawBatch {
            first_offset: 0,
            last_offset: 0,
            types: vec![ty.code()],
        });
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
                    member: member_name(*member),
                    max_records: max,
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
                let batches: Vec<RawBatch> = if offsets.is_empty() {
                    Vec::new()
                } else {
                    held_batches(&offsets, *ty)
                };
                steps.push(Step::Ack {
                    member: member_name(*member),
                    select,
                    ty: *ty,
                    via: via.wire(),
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
                let mut raw: Vec<RawBatch> = batches
                    .iter()
                    .filter_map(|(r, t)| {
                        p.resolve(*member, r).map(|(first, last)| RawBatch {
                            first_offset: first,
                            last_offset: last,
                            types: codes(t, first, last),
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
                    member: member_name(*member),
                    batches: raw.clone(),
                    via: via.wire(),
                    epoch: None,
                });
                p.ack(*member, &raw, *via);
            }
            Op::BadEpoch { member, kind } => {
                let name = member_name(*member);
                let held = p.member(*member).held.clone();
                let step = match kind {
                    EpochKind::FetchFuture => Step::RawFetch {
                        member: name,
                        epoch: FUTURE_EPOCH,
                        max_records: 1,
                    },
                    EpochKind::AckFuture => Step::RawAck {
                        member: name,
                        batches: held_batches(&held, TypeName::Accept),
                        via: AckVia::ShareAcknowledge,
                        epoch: Some(FUTURE_EPOCH),
                    },
                    EpochKind::FetchZeroWithAcks => Step::RawAck {
                        member: name,
                        batches: held_batches(&held, TypeName::Accept),
                        via: AckVia::ShareFetch,
                        epoch: Some(0),
                    },
                    EpochKind::AckZero => Step::RawAck {
                        member: name,
                        batches: held_batches(&held, TypeName::Accept),
                        via: AckVia::ShareAcknowledge,
                        epoch: Some(0),
                    },
                    EpochKind::FetchReopen => Step::RawFetch {
                        member: name,
                        epoch: 0,
                        max_records: 2,
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
                    member: member_name(*member),
                });
                p.member(*member).joined = true;
                if p.member(*member).session {
                    p.end_session(*member);
                }
            }
            Op::Disconnect { member, settle } => {
                steps.push(Step::Disconnect {
                    member: member_name(*member),
                });
                p.member(*member).joined = true;
                p.end_session(*member);
                if *settle {
                    settle_wait(&mut steps, &mut p, lock_ms);
                }
            }
            Op::Crash { member } => {
                steps.push(Step::Crash {
                    member: member_name(*member),
                });
                p.member(*member).held.clear();
            }
            Op::Rejoin { member, settle } => {
                steps.push(Step::Rejoin {
                    member: member_name(*member),
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
        source: "sharecheck fuzz (conformance/src/fuzz.rs)".to_string(),
        suite: Suite::Full,
        origin: Origin::Fuzz,
        settings: Settings {
            partitions: 1,
            lock_duration_ms: lock_ms,
            auto_offset_reset: OffsetReset::Earliest,
            delivery_limit: Some(fc.delivery_limit),
            max_in_flight: None,
            member_ids: MemberIds::Kafka,
        },
        requires: Vec::new(),
        steps: lower(fc, gen, rules, lock_ms),
        notes: None,
        history: None,
        found_by: None,
    }
}

// ------------------------------------------------------------------------------------------------
// Fixtures

/// The area a fixture is filed under, from the first anomaly's name.
pub fn area_of_anomaly(kind: &str) -> &'static str {
    match kind {
        "double-acquire"
        | "out-of-order-acquisition"
        | "phantom-record"
        | "unexpected-acquisition"
        | "window-limit-exceeded" => "acquire",
        "wrong-error-code" | "malformed-response" => "errors",
        "early-redelivery" | "wrong-lock-timeout" => "lock",
        "delivery-count-mismatch" | "delivery-limit-exceeded" => "delivery-limit",
        "spso-regressed" => "spso",
        "missing-redelivery" | "lost-record" => "claims",
        _ => "ack",
    }
}

/// Kebab-case: lower-case letters, digits and single dashes.
fn kebab(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        let c = c.to_ascii_lowercase();
        if c.is_ascii_lowercase() || c.is_ascii_digit() {
            out.push(c);
        } else if !out.ends_with('-') && !out.is_empty() {
            out.push('-');
        }
    }
    out.trim_end_matches('-').to_string()
}

/// The fixture for a shrunk failing case: Kafka-legal timing (the lock raised to `lock_ms`, at
/// least [`KAFKA_MIN_LOCK_MS`], fixed waits scaled with it), an id naming what it was found on, the
/// first anomaly as its rule, and how it was found.
///
/// Which lock reproduces a timing-dependent failure under `sharecheck replay`'s default tolerances
/// (500 ms oracle tolerance, 5 s fetch patience) is for the caller to find out: see
/// [`FIXTURE_LOCKS_MS`].
pub fn fixture_case(shrunk: &Case, result: &CaseResult, found: FoundBy, lock_ms: u32) -> Case {
    let from = shrunk.settings.lock_duration_ms.max(1);
    let to = lock_ms.max(from).max(KAFKA_MIN_LOCK_MS);
    let steps: Vec<Step> = shrunk
        .steps
        .iter()
        .map(|s| match s {
            Step::Wait { ms } => Step::Wait {
                ms: ms * u64::from(to) / u64::from(from),
            },
            other => other.clone(),
        })
        .collect();
    let first = result.anomalies.first();
    let kind = first.map_or("failure", |a| a.kind.as_str());
    let on = found.mutant.clone().unwrap_or_else(|| "target".to_string());
    let name = kebab(&format!("fuzz-{on}-{kind}-seed-{}", found.seed));
    let detail = first.map_or(String::new(), |a| {
        format!(" (step {}: {})", a.step, a.detail)
    });
    Case {
        format_version: FORMAT_VERSION,
        id: format!("kip932.{}.{name}", area_of_anomaly(kind)),
        level: Level::Must,
        rule: format!(
            "every response is one the spec allows; found by sharecheck fuzz as {kind} on {}",
            found.target
        ),
        source: "sharecheck fuzz (conformance/src/fuzz.rs), kip932-semantics.md".to_string(),
        suite: Suite::Full,
        origin: Origin::Fuzz,
        settings: Settings {
            lock_duration_ms: to,
            ..shrunk.settings.clone()
        },
        requires: shrunk.requires.clone(),
        steps,
        notes: Some(format!("first anomaly when found: {kind}{detail}")),
        history: None,
        found_by: Some(found),
    }
}

/// Lock durations to try, in order, when a fixture is written with Kafka-legal timing: the first
/// one under which the replayed fixture still fails is kept. A failure that needs a record to stay
/// locked longer than the replay's fetch patience (5 s) needs the long ones.
pub const FIXTURE_LOCKS_MS: [u32; 3] = [KAFKA_MIN_LOCK_MS, 3_000, 12_000];

/// The file name of a fixture: its id without the `kip932.` prefix, plus `.json`.
pub fn fixture_file_name(case: &Case) -> String {
    format!("{}.json", case.id.trim_start_matches("kip932."))
}

// ------------------------------------------------------------------------------------------------
// The fuzz loop

/// How a fuzz run goes.
#[derive(Clone, Debug)]
pub struct FuzzOptions {
    /// The seed: case `k` is drawn from `rng_for(seed, k)`.
    pub seed: u64,
    /// Cases to run (at most).
    pub cases: u64,
    /// Stop starting new cases after this long.
    pub time_budget: Option<Duration>,
    /// Cases run at the same time.
    pub jobs: usize,
    /// What to generate.
    pub gen: GenConfig,
    /// Lock duration of every case (the group's `share.record.lock.duration.ms`).
    pub lock_ms: u32,
    /// Runner knobs (oracle tolerance, margin, fetch patience, names).
    pub run: RunOptions,
    /// Most reruns while shrinking.
    pub max_shrink_runs: u32,
    /// Most time spent shrinking.
    pub max_shrink_time: Duration,
}

impl FuzzOptions {
    /// Defaults for `seed` against the in-process reference broker: 256 cases, 64 at a time, a
    /// 200 ms lock, 25 ms of oracle tolerance, 50 ms of fetch patience (a record that should come
    /// back must be missed before its next lock expiry returns it anyway) and 5 ms long polls when
    /// nothing is expected.
    pub fn in_process(seed: u64) -> FuzzOptions {
        FuzzOptions {
            seed,
            cases: 256,
            time_budget: None,
            jobs: 64,
            gen: GenConfig::default(),
            lock_ms: 200,
            run: RunOptions {
                timeout: Duration::from_secs(10),
                fetch_patience: Duration::from_millis(50),
                tolerance_ms: 25,
                margin_ms: 10,
                run_id: format!("fz{seed}"),
                jobs: 1,
                idle_fetch_wait_ms: 5,
            },
            max_shrink_runs: 400,
            max_shrink_time: Duration::from_secs(120),
        }
    }

    /// Defaults for `seed` against a remote broker: Kafka-legal lock (1000 ms), the runner's
    /// default tolerance, 4 cases at a time.
    pub fn remote(seed: u64) -> FuzzOptions {
        FuzzOptions {
            jobs: 4,
            lock_ms: KAFKA_MIN_LOCK_MS,
            run: RunOptions {
                jobs: 1,
                run_id: format!("fz{seed}-{:04x}", std::process::id() & 0xffff),
                ..RunOptions::default()
            },
            ..FuzzOptions::in_process(seed)
        }
    }
}

/// Counts of a fuzz run.
#[derive(Clone, Debug, Default)]
pub struct Tally {
    /// Cases run (not counting shrink reruns).
    pub cases: u64,
    /// Passed.
    pub passed: u64,
    /// Failed.
    pub failed: u64,
    /// Inconclusive.
    pub inconclusive: u64,
    /// Steps run in those cases.
    pub steps: u64,
    /// Wall time of the generation phase (without shrinking).
    pub elapsed: Duration,
    /// The first inconclusive case and why.
    pub first_inconclusive: Option<(u64, String)>,
    /// Whether the time budget stopped the run before `cases`.
    pub budget_hit: bool,
}

impl Tally {
    /// Cases per second of the generation phase.
    pub fn rate(&self) -> f64 {
        let s = self.elapsed.as_secs_f64();
        if s > 0.0 {
            self.cases as f64 / s
        } else {
            0.0
        }
    }
}

/// A failing case, shrunk and confirmed (or not).
#[derive(Clone, Debug)]
pub struct Finding {
    /// The case number in the run.
    pub index: u64,
    /// The generated case as it first failed.
    pub original: Case,
    /// Its result.
    pub original_result: CaseResult,
    /// The shrunk case.
    pub shrunk: Case,
    /// The shrunk case's failing result.
    pub shrunk_result: CaseResult,
    /// Reruns spent shrinking (cache hits not counted).
    pub shrink_runs: u32,
    /// Time spent shrinking.
    pub shrink_time: Duration,
    /// Whether the shrink budget ran out before shrinking was done.
    pub shrink_budget_hit: bool,
    /// The confirming rerun of the shrunk case, when it failed again.
    pub confirmed: Option<CaseResult>,
}

/// What a fuzz run found.
#[derive(Clone, Debug)]
pub struct FuzzReport {
    /// Counts.
    pub tally: Tally,
    /// The first failure that reproduced, shrunk.
    pub finding: Option<Finding>,
    /// Failures that did not reproduce when rerun.
    pub flaky: Vec<Flaky>,
}

/// A failure that did not reproduce: the case (shrunk, if shrinking got that far), its failing
/// result, and what the rerun gave.
#[derive(Clone, Debug)]
pub struct Flaky {
    /// The case number in the run.
    pub index: u64,
    /// The case that failed once.
    pub case: Case,
    /// Its failing result.
    pub result: CaseResult,
    /// The verdict of the rerun.
    pub rerun: CaseVerdict,
}

/// Most flaky failures a run collects before it stops.
pub const MAX_FLAKY: usize = 3;

/// Runs fuzz cases against one target.
pub struct Fuzzer {
    target: Target,
    opts: FuzzOptions,
    rules: Rules,
    serial: Arc<AtomicUsize>,
}

impl Fuzzer {
    /// A fuzzer for `target` (the prediction uses the target's profile and window limit).
    pub fn new(target: Target, opts: FuzzOptions) -> Fuzzer {
        let rules = Rules {
            delivery_limit: target.delivery_limit,
            max_in_flight: target.max_in_flight,
            ..Rules::kafka_defaults(target.profile)
        };
        Fuzzer {
            target,
            opts,
            rules,
            serial: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// The options.
    pub fn options(&self) -> &FuzzOptions {
        &self.opts
    }

    /// Case `index` as it runs.
    pub fn case(&self, index: u64) -> Result<Case, String> {
        let tree = case_tree(&self.opts.gen, self.opts.seed, index)?;
        Ok(self.lowered(&tree.current(), index))
    }

    fn lowered(&self, fc: &FuzzCase, index: u64) -> Case {
        case_of(fc, index, &self.opts.gen, &self.rules, self.opts.lock_ms)
    }

    /// Runs one case on the target (a fresh topic and group each time).
    pub async fn run_one(&self, case: &Case) -> CaseResult {
        let serial = self.serial.fetch_add(1, Ordering::Relaxed);
        run::run_case(&self.target, &self.opts.run, case, serial).await
    }

    /// Runs up to `opts.cases` cases, `opts.jobs` at a time, until the first failure that
    /// reproduces: it is rerun once before shrinking, shrunk, and rerun once more to confirm. A
    /// failure that does not reproduce is kept as flaky and the run goes on (at most
    /// [`MAX_FLAKY`] of them). `progress(done, total)` is called after each case.
    pub async fn run(&self, progress: &dyn Fn(u64, u64)) -> FuzzReport {
        let started = Instant::now();
        let total = self.opts.cases;
        let mut tally = Tally::default();
        let mut flaky: Vec<Flaky> = Vec::new();
        let mut trees: HashMap<u64, Box<dyn ValueTree<Value = FuzzCase>>> = HashMap::new();
        let mut failures: BTreeMap<u64, (Case, CaseResult)> = BTreeMap::new();
        let mut set = tokio::task::JoinSet::new();
        let mut next: u64 = 0;
        let mut generation = Duration::ZERO;
        let jobs = self.opts.jobs.max(1);
        loop {
            let phase = Instant::now();
            loop {
                let budget_over = self
                    .opts
                    .time_budget
                    .is_some_and(|b| started.elapsed() >= b);
                if budget_over && next < total && failures.is_empty() {
                    tally.budget_hit = true;
                }
                let stop_starting = !failures.is_empty() || next >= total || budget_over;
                while !stop_starting && set.len() < jobs && next < total {
                    let index = next;
                    next += 1;
                    let tree = match case_tree(&self.opts.gen, self.opts.seed, index) {
                        Ok(t) => t,
                        Err(why) => {
                            tally.cases += 1;
                            tally.inconclusive += 1;
                            tally.first_inconclusive.get_or_insert((index, why));
                            continue;
                        }
                    };
                    let case = self.lowered(&tree.current(), index);
                    trees.insert(index, tree);
                    let (target, run_opts) = (self.target.clone(), self.opts.run.clone());
                    let serial = self.serial.fetch_add(1, Ordering::Relaxed);
                    set.spawn(async move {
                        let r = run::run_case(&target, &run_opts, &case, serial).await;
                        (index, case, r)
                    });
                }
                let Some(joined) = set.join_next().await else {
                    break;
                };
                let Ok((index, case, result)) = joined else {
                    tally.cases += 1;
                    tally.inconclusive += 1;
                    continue;
                };
                tally.cases += 1;
                tally.steps += result.steps.len() as u64;
                match result.verdict {
                    CaseVerdict::Pass | CaseVerdict::Skipped => {
                        tally.passed += 1;
                        trees.remove(&index);
                    }
                    CaseVerdict::Inconclusive => {
                        tally.inconclusive += 1;
                        if tally
                            .first_inconclusive
                            .as_ref()
                            .is_none_or(|(i, _)| index < *i)
                        {
                            tally.first_inconclusive =
                                Some((index, result.reason.clone().unwrap_or_default()));
                        }
                        trees.remove(&index);
                    }
                    CaseVerdict::Fail => {
                        tally.failed += 1;
                        failures.insert(index, (case, result));
                    }
                }
                progress(tally.cases, total);
            }
            generation += phase.elapsed();
            // Lowest-numbered failure first: every case before it was started, so the choice does
            // not depend on which cases happened to run beside each other.
            for (index, (case, result)) in std::mem::take(&mut failures) {
                let Some(tree) = trees.remove(&index) else {
                    continue;
                };
                if flaky.len() >= MAX_FLAKY {
                    continue;
                }
                let again = self.run_one(&case).await;
                if again.verdict != CaseVerdict::Fail {
                    flaky.push(Flaky {
                        index,
                        case,
                        result,
                        rerun: again.verdict,
                    });
                    continue;
                }
                let finding = self.shrink(index, tree, case.clone(), result.clone()).await;
                if finding.confirmed.is_some() {
                    tally.elapsed = generation;
                    return FuzzReport {
                        tally,
                        finding: Some(finding),
                        flaky,
                    };
                }
                flaky.push(Flaky {
                    index,
                    case: finding.shrunk,
                    result: finding.shrunk_result,
                    rerun: CaseVerdict::Pass,
                });
            }
            trees.clear();
            let budget_over = self
                .opts
                .time_budget
                .is_some_and(|b| started.elapsed() >= b);
            if next >= total || flaky.len() >= MAX_FLAKY || budget_over {
                if budget_over && next < total {
                    tally.budget_hit = true;
                }
                break;
            }
        }
        tally.elapsed = generation;
        FuzzReport {
            tally,
            finding: None,
            flaky,
        }
    }

    /// Shrinks a failing case with its value tree, then step by step; then reruns the result once
    /// to confirm it.
    pub async fn shrink(
        &self,
        index: u64,
        mut tree: Box<dyn ValueTree<Value = FuzzCase>>,
        original: Case,
        original_result: CaseResult,
    ) -> Finding {
        let started = Instant::now();
        let mut runs: u32 = 0;
        let mut cache: HashMap<String, bool> = HashMap::new();
        cache.insert(steps_key(&original), true);
        let mut best = (original.clone(), original_result.clone());
        let over = |runs: u32| {
            runs >= self.opts.max_shrink_runs || started.elapsed() >= self.opts.max_shrink_time
        };
        // Phase 1: proptest's shrinking over the operations (relative references survive it).
        if tree.simplify() {
            while !over(runs) {
                let candidate = self.lowered(&tree.current(), index);
                let key = steps_key(&candidate);
                let failed = match cache.get(&key) {
                    Some(f) => *f,
                    None => {
                        runs += 1;
                        let r = self.run_one(&candidate).await;
                        let failed = r.verdict == CaseVerdict::Fail;
                        cache.insert(key, failed);
                        if failed && candidate.steps.len() <= best.0.steps.len() {
                            best = (candidate.clone(), r);
                        }
                        failed
                    }
                };
                let more = if failed {
                    tree.simplify()
                } else {
                    tree.complicate()
                };
                if !more {
                    break;
                }
            }
        }
        // Phase 2: the steps themselves — cut everything after the first anomaly, then try
        // deleting each remaining step (last first).
        let mut budget_hit = over(runs);
        if !budget_hit {
            if let Some(first) = best.1.anomalies.iter().map(|a| a.step).min() {
                if first < best.0.steps.len() {
                    let mut c = best.0.clone();
                    c.steps.truncate(first.max(1));
                    runs += 1;
                    let r = self.run_one(&c).await;
                    if r.verdict == CaseVerdict::Fail {
                        best = (c, r);
                    }
                }
            }
            let mut i = best.0.steps.len();
            while i > 0 && best.0.steps.len() > 1 {
                if over(runs) {
                    budget_hit = true;
                    break;
                }
                i -= 1;
                if i >= best.0.steps.len() {
                    continue;
                }
                let mut c = best.0.clone();
                c.steps.remove(i);
                if let std::collections::hash_map::Entry::Vacant(slot) = cache.entry(steps_key(&c))
                {
                    runs += 1;
                    let r = self.run_one(&c).await;
                    let failed = r.verdict == CaseVerdict::Fail;
                    slot.insert(failed);
                    if failed {
                        best = (c, r);
                    }
                }
            }
        }
        let shrink_time = started.elapsed();
        let rerun = self.run_one(&best.0).await;
        let confirmed = (rerun.verdict == CaseVerdict::Fail).then_some(rerun);
        Finding {
            index,
            original,
            original_result,
            shrunk: best.0,
            shrunk_result: best.1,
            shrink_runs: runs,
            shrink_time,
            shrink_budget_hit: budget_hit,
            confirmed,
        }
    }
}

fn steps_key(case: &Case) -> String {
    serde_json::to_string(&(&case.settings, &case.steps)).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
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
                raw(Ref::OtherHeld { index: 0 }, Types::One(TypeName::Accept)),
                raw(
                    Ref::Held { index: 0, len: 2 },
                    Types::PerOffset(vec![TypeName::Accept, TypeName::Release]),
                ),
                // 0 is acknowledged, 1 available again; SPSO is 1.
                raw(Ref::Acknowledged { index: 0 }, Types::One(TypeName::Accept)),
                raw(Ref::BelowStart { by: 0 }, Types::One(TypeName::Reject)),
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
                        .map(|b| (b.first_offset, b.last_offset, b.types.clone()))
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
            anomalies: vec![crate::oracle::Anomaly {
                kind: "delivery-count-mismatch".into(),
                step: 2,
                detail: "offset 0: delivery count 0, spec 1".into(),
            }],
            reason: None,
            notes: Vec::new(),
            duration_ms: 1,
            exercised: Default::default(),
            delivery_limit: 2,
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
}
