//! Generation: fuzz cases as lists of member operations, drawn by proptest strategies from a
//! per-case RNG, so that case `k` of seed `s` is the same whatever ran before or beside it.

use crate::trace::AckVia;
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config as ProptestConfig, RngAlgorithm, TestRng, TestRunner};
use sharecheck_model::vocab::AckType;

/// The lowest lock duration Apache Kafka accepts (`group.share.min.record.lock.duration.ms` floor).
pub const KAFKA_MIN_LOCK_MS: u32 = 1000;

/// The lowest lock duration the fuzzer uses against the in-process reference broker.
pub const FUZZ_MIN_LOCK_MS: u32 = 10;

/// Most members a fuzz case may use.
pub const MAX_MEMBERS: u8 = 8;

/// Most operations a fuzz case may have.
pub const MAX_OPS: usize = 200;

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
    pub(crate) fn wire(self) -> AckVia {
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
    One(AckType),
    /// One type per offset, cycling through these.
    PerOffset(Vec<AckType>),
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
        ty: AckType,
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
    /// The delivery limit of every case (default: 2..=5 at random). For a target that accepts the
    /// group's limit and ignores it (kfake, docs/findings.md K1), its own limit.
    pub delivery_limit: Option<u8>,
    /// No acknowledgements piggy-backed on a ShareFetch with MaxRecords 0 (for a target that
    /// acquires records for such a fetch, K3), so that a run gets past it.
    pub no_fetch_acks: bool,
}

impl Default for GenConfig {
    fn default() -> Self {
        GenConfig {
            members: 3,
            max_ops: 24,
            waits: true,
            delivery_limit: None,
            no_fetch_acks: false,
        }
    }
}

impl GenConfig {
    /// Checks the bounds; the message names the flag.
    pub fn validate(&self) -> Result<(), GenError> {
        if let Some(l) = self.delivery_limit.filter(|l| !(2..=10).contains(l)) {
            return Err(GenError(format!(
                "--delivery-limit must be 2..=10, got {l}"
            )));
        }
        if !(1..=MAX_MEMBERS).contains(&self.members) {
            return Err(GenError(format!(
                "--members must be 1..={MAX_MEMBERS}, got {}",
                self.members
            )));
        }
        if !(1..=MAX_OPS).contains(&self.max_ops) {
            return Err(GenError(format!(
                "--max-ops must be 1..={MAX_OPS}, got {}",
                self.max_ops
            )));
        }
        Ok(())
    }
}

/// Why cases cannot be generated: bounds out of range, or a strategy that gave up.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct GenError(pub String);

impl GenConfig {}

// ------------------------------------------------------------------------------------------------
// Strategies

fn ack_type() -> impl Strategy<Value = AckType> {
    prop_oneof![
        4 => Just(AckType::Accept),
        3 => Just(AckType::Release),
        2 => Just(AckType::Reject),
        1 => Just(AckType::Gap),
    ]
}

fn via(gen: &GenConfig) -> BoxedStrategy<Via> {
    if gen.no_fetch_acks {
        prop_oneof![6 => Just(Via::Acknowledge), 1 => Just(Via::Close)].boxed()
    } else {
        prop_oneof![
            6 => Just(Via::Acknowledge),
            2 => Just(Via::Fetch),
            1 => Just(Via::Close),
        ]
        .boxed()
    }
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
        8 => ack_type().prop_map(Types::One),
        3 => prop::collection::vec(ack_type(), 1..=4).prop_map(Types::PerOffset),
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
            (0..m, pick(), ack_type(), via(gen))
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
                via(gen),
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

/// A whole case: 1..=8 records produced first, a delivery limit of 2..=5 (or the one given), and
/// 1..=`max_ops` operations.
pub fn case_strategy(gen: &GenConfig) -> BoxedStrategy<FuzzCase> {
    let max_ops = gen.max_ops.clamp(1, MAX_OPS);
    let limit = match gen.delivery_limit {
        Some(l) => Just(l).boxed(),
        None => (2u8..=5).boxed(),
    };
    (
        1u8..=8,
        limit,
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
) -> Result<Box<dyn ValueTree<Value = FuzzCase>>, GenError> {
    let config = ProptestConfig {
        failure_persistence: None,
        ..ProptestConfig::default()
    };
    let mut runner = TestRunner::new_with_rng(config, rng_for(seed, index));
    case_strategy(gen)
        .new_tree(&mut runner)
        .map(|t| Box::new(t) as Box<dyn ValueTree<Value = FuzzCase>>)
        .map_err(|e| GenError(format!("cannot generate case {index}: {e}")))
}
