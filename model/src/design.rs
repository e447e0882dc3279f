//! The third Stateright model: Kafka's durability *design* for one share partition — the leader's
//! in-memory share partition, the writes in flight to the share coordinator, and the
//! coordinator's durable state — checked exhaustively against the promises a reload must keep.
//!
//! The spec ([`crate::spec`]) stays the judge of the wire and of the in-memory rules: every
//! acquisition, acknowledgement, lock expiry and session release here *is* a
//! [`SharePartition`] transition, and what it changed ([`crate::spec::Change`]) is what is
//! written. This model adds the mechanism the KIP leaves to the implementation, as
//! docs/research/durability-design.md reads it in Kafka's source (4.2.1 `18d5ecd939`,
//! 4.4 `87943b2ff8`; section numbers below are that document's):
//!
//! - only acknowledgements, session releases and lock expiries are written; acquisitions are not
//!   (§1: `SP.writeShareGroupState@4.2.1:2761-2807`, called from `rollbackOrProcessStateUpdates` and
//!   the lock-timeout handler). A write carries the leader epoch, the SPSO *before* its own
//!   change (`startOffset()` at `SP:2768`; the SPSO moves in the write's callback) and the changed
//!   records;
//! - an acknowledgement is answered only when its write completes (§2.1, `SP:2484-2531`,
//!   `KA:3591-3607`); while it is in flight its records are in transition and cannot be acquired
//!   again (`SP:898, 924, 1942`); a fenced write rolls them back and the member is told an error
//!   (§2.3). A session release also leaves its records in transition until its write completes
//!   (`SP:1117`), but the close is answered at once (F4); a lock expiry moves the record at once
//!   (`SP:2864-2920`). Neither is awaited (§2.2);
//! - writes in flight: a READ is never held back behind a WRITE (`PSM:1540`), so a read can
//!   overtake any pending write; with [`WriteOrder::Any`] any pending write may land next (a write
//!   retried after a coordinator error is overtaken, `PSM:810-823`), with
//!   [`WriteOrder::PerLeader`] a leader's writes land in the order sent (`PSM:1528-1564`);
//! - the coordinator applies a write unless its leader epoch is below the one it stored
//!   (FENCED_LEADER_EPOCH, `SCShard:765-767`); only a read raises the stored epoch (`SCShard:352-411`);
//!   records merge per offset by the highest (delivery count, state) (`PersisterStateBatchCombiner:148-161`),
//!   records below the start offset are pruned, and the start offset is the write's own in 4.1–4.3
//!   (`SCShard:689, 996`) but the higher of the two in 4.4 (`SCShard@4.4:662`, commit b77567478f);
//! - a share partition is read lazily, on the first fetch after a load is needed (§3.1); what was
//!   Acquired comes back as it was last written, its acquisition's increment lost (§3.3, §5);
//! - faults: the group goes empty (`SPM.onGroupEmpty`, §4: the share partition is dropped without
//!   waiting for its writes, which still land), and the leader changes (crash or move: a new epoch;
//!   the old leader's writes may still land, or — after a crash — never).
//!
//! One member, [`RECORDS`] records, delivery limit [`LIMIT`], at most [`FAULTS`] faults and
//! [`IN_FLIGHT`] writes in flight.

use crate::check::PropertyReport;
use crate::model::PropKind;
use crate::spec::{
    AckBatch, AckType, Change, InFlight, Offset, RecordState, Rules, SharePartition,
};
use crate::Profile;
use smallvec::SmallVec;
use stateright::{Model, Property};
use std::fmt;

/// Records in the log.
pub const RECORDS: u8 = 2;
/// The delivery limit.
pub const LIMIT: u8 = 2;
/// Faults (group empty, leader change) in one behaviour.
pub const FAULTS: u8 = 2;
/// Writes in flight at once.
pub const IN_FLIGHT: usize = 2;

/// The one member.
pub const MEMBER: u16 = 0;

/// How the coordinator takes a write's start offset.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum StartOffsetMerge {
    /// The write's own (4.1–4.3: `SCShard.merge@4.2.1:996`).
    LastWriter,
    /// The higher of the stored and the written (4.4: `SCShard@4.4:662`, b77567478f).
    Highest,
}

/// The design under one release line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct DesignProfile {
    /// The spec's rules (4.1 lowers the count on session release, §5).
    pub spec: Profile,
    /// How the start offset is merged.
    pub start_offset: StartOffsetMerge,
}

impl DesignProfile {
    /// The design of `profile`'s release line.
    pub fn of(profile: Profile) -> DesignProfile {
        DesignProfile {
            spec: profile,
            start_offset: if profile.name == Profile::KAFKA_4_4.name {
                StartOffsetMerge::Highest
            } else {
                StartOffsetMerge::LastWriter
            },
        }
    }
}

/// Which writes in flight may reach the coordinator next.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum WriteOrder {
    /// Any of them: a write that meets a retriable coordinator error (NOT_COORDINATOR,
    /// COORDINATOR_LOAD_IN_PROGRESS, `PSM@4.2.1:810-823`) is sent again after a backoff, and the
    /// leader's later writes can overtake it — the share coordinator moving or loading.
    #[default]
    Any,
    /// A leader's writes land in the order it sent them: the persister holds a WRITE back while
    /// another WRITE to the same coordinator is in flight (`PSM@4.2.1:1528-1564`) — a calm
    /// coordinator. Reads still overtake writes (they are not held back).
    PerLeader,
}

impl WriteOrder {
    /// The stable name.
    pub fn name(self) -> &'static str {
        match self {
            WriteOrder::Any => "any",
            WriteOrder::PerLeader => "per-leader",
        }
    }
}

/// A planted bug in the design (not in the spec): the properties must catch each.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DesignMutant {
    /// An acknowledgement is answered before its write completes.
    AnswerBeforeWrite,
    /// The coordinator does not fence writes of an older leader epoch.
    NoLeaderFencing,
    /// The coordinator merges records last-writer-wins instead of by the highest (count, state).
    LastWriterRecords,
    /// What a session release gave back stays in transition after its write completes.
    ReleaseNeverCompletes,
    /// A moved former leader keeps its share partition and serves from it: it never drops it
    /// on the metadata change (no `onBecomingFollower`).
    FormerLeaderKeepsServing,
}

impl DesignMutant {
    /// Every design mutant.
    pub const ALL: [DesignMutant; 5] = [
        DesignMutant::AnswerBeforeWrite,
        DesignMutant::NoLeaderFencing,
        DesignMutant::LastWriterRecords,
        DesignMutant::ReleaseNeverCompletes,
        DesignMutant::FormerLeaderKeepsServing,
    ];

    /// The stable name.
    pub fn name(self) -> &'static str {
        match self {
            DesignMutant::AnswerBeforeWrite => "answer-before-write",
            DesignMutant::NoLeaderFencing => "no-leader-fencing",
            DesignMutant::LastWriterRecords => "last-writer-records",
            DesignMutant::ReleaseNeverCompletes => "release-never-completes",
            DesignMutant::FormerLeaderKeepsServing => "former-leader-keeps-serving",
        }
    }

    /// What it changes.
    pub fn description(self) -> &'static str {
        match self {
            DesignMutant::AnswerBeforeWrite => {
                "an acknowledgement is answered with success before its write reaches the share coordinator"
            }
            DesignMutant::NoLeaderFencing => {
                "the share coordinator applies writes of a former leader (no FENCED_LEADER_EPOCH)"
            }
            DesignMutant::LastWriterRecords => {
                "the share coordinator overwrites a record's state with the latest write instead of keeping the highest (count, state)"
            }
            DesignMutant::ReleaseNeverCompletes => {
                "records a session release gave back stay in transition after its write completes (no member can acquire them until a reload)"
            }
            DesignMutant::FormerLeaderKeepsServing => {
                "a broker that lost the leadership by a move keeps its share partition and goes on handing out records from it"
            }
        }
    }

    /// The mutant named `name`.
    pub fn by_name(name: &str) -> Option<DesignMutant> {
        DesignMutant::ALL.into_iter().find(|m| m.name() == name)
    }
}

/// A named promise across reloads (always) or a behaviour the model must reach (sometimes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DesignProp {
    /// KIP-932: an acknowledgement answered with success is durable — an ACCEPTed record is never
    /// delivered again.
    AcceptNeverLost,
    /// A REJECTed record (answered with success) is never delivered again.
    RejectNeverLost,
    /// A record is delivered at most the delivery limit times per leader incarnation: a fault can
    /// lose every increment not yet written — acquisitions are never written (§5), and a crashed or
    /// fenced leader's writes may never land — so the bound is the limit × (1 + faults). (The
    /// tighter "limit + faults" fails in 32 steps under every profile: two expiries of a crashed
    /// leader that never land.)
    DeliveryBound,
    /// The persisted share-partition start offset never moves back.
    StartOffsetNeverBack,
    /// A persisted delivery count never goes down.
    CountNeverLowered,
    /// The group going empty (no leader change) never makes the leader forget a delivery: a
    /// record's next delivery is counted above every earlier one. KIP-932 lets a leader *failure*
    /// lose the count of records acquired at the time; a group going empty is no failure, and
    /// what its last member held was released, and that release sent for persistence, before the
    /// share partition was dropped (F5).
    UnloadKeepsCounts,
    /// No two leaders hand out the same record at once: a record is never Acquired in the memory
    /// of the new leader and of the former one together. Only the leader window
    /// ([`DesignModel::leader_window`]) has a former leader that still serves.
    OneLeaderAtATime,
    /// Liveness: once faults stop, every record becomes Acknowledged or Archived at the share
    /// coordinator, with no write in flight — the KIP's "records are delivered until
    /// acknowledged or the delivery limit is reached", kept across reloads. Checked as
    /// `AG EF` over the steps that go on after faults stop (every step but the group going
    /// empty and a leader change; a crashed leader's write may still be lost).
    EventuallyAllTerminal,
    /// Reachability: an ACCEPT answered with success.
    ReachAccepted,
    /// Reachability: a share partition read back after a fault.
    ReachReload,
    /// Reachability: a write the coordinator will fence (its leader epoch below the one it stored).
    ReachFenced,
    /// Reachability: a write of a dropped share partition still in flight after a later read (it
    /// can land after it).
    ReachLateWrite,
    /// Reachability: a write in flight whose leader crashed (it can be lost).
    ReachLostWrite,
}

impl DesignProp {
    /// Every property, in report order.
    pub const ALL: [DesignProp; 13] = [
        DesignProp::AcceptNeverLost,
        DesignProp::RejectNeverLost,
        DesignProp::DeliveryBound,
        DesignProp::StartOffsetNeverBack,
        DesignProp::CountNeverLowered,
        DesignProp::UnloadKeepsCounts,
        DesignProp::OneLeaderAtATime,
        DesignProp::EventuallyAllTerminal,
        DesignProp::ReachAccepted,
        DesignProp::ReachReload,
        DesignProp::ReachFenced,
        DesignProp::ReachLateWrite,
        DesignProp::ReachLostWrite,
    ];

    /// The stable kebab-case name.
    pub fn name(self) -> &'static str {
        match self {
            DesignProp::AcceptNeverLost => "design-accept-never-lost",
            DesignProp::RejectNeverLost => "design-reject-never-lost",
            DesignProp::DeliveryBound => "design-delivery-bound",
            DesignProp::StartOffsetNeverBack => "design-start-offset-never-back",
            DesignProp::CountNeverLowered => "design-count-never-lowered",
            DesignProp::UnloadKeepsCounts => "design-unload-keeps-counts",
            DesignProp::OneLeaderAtATime => "design-one-leader-at-a-time",
            DesignProp::EventuallyAllTerminal => "design-eventually-all-terminal",
            DesignProp::ReachAccepted => "design-reach-accepted",
            DesignProp::ReachReload => "design-reach-reload",
            DesignProp::ReachFenced => "design-reach-fenced",
            DesignProp::ReachLateWrite => "design-reach-late-write",
            DesignProp::ReachLostWrite => "design-reach-lost-write",
        }
    }

    /// Always or sometimes.
    pub fn kind(self) -> PropKind {
        match self {
            DesignProp::ReachAccepted
            | DesignProp::ReachReload
            | DesignProp::ReachFenced
            | DesignProp::ReachLateWrite
            | DesignProp::ReachLostWrite => PropKind::Sometimes,
            DesignProp::EventuallyAllTerminal => PropKind::Liveness,
            _ => PropKind::Always,
        }
    }

    fn bit(self) -> u16 {
        1 << DesignProp::ALL.iter().position(|p| *p == self).unwrap_or(0)
    }
}

/// One loaded share partition on a leader (a new one after every load).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Loaded {
    /// The leader epoch it was created with (`SPM:705`), on every write.
    pub leader_epoch: u8,
    /// The in-memory share partition: the spec.
    pub part: SharePartition,
    /// Offsets whose acknowledgement or release write is in flight (bit per offset).
    pub in_transition: u8,
    /// The SPSO as of its last write's callback (`maybeUpdateCachedStateAndOffsets`, `SP:2522,
    /// 2915`), which the next write carries; the spec's own SPSO moves at once.
    pub confirmed_spso: Offset,
}

/// A transition in flight: an acknowledgement or a session release, whose records stay in
/// transition until its write completes (`startStateTransition`, `SP@4.2.1:1117, 2316`; completed
/// or rolled back in `rollbackOrProcessStateUpdates`, `SP:2448-2531`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Pending {
    /// The acknowledgement answered when the write completes; `None` for a session release,
    /// whose close was answered at once (F4: `KA@4.2.1:3372-3392`).
    pub ack: Option<AckType>,
    /// What it changed, to roll back when the write is fenced.
    pub changes: SmallVec<[Change; 2]>,
}

/// A WriteShareGroupState in flight.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Write {
    /// Its leader epoch.
    pub leader_epoch: u8,
    /// The start offset it carries (the sender's, before this write's own change).
    pub start_offset: Offset,
    /// The records it writes.
    pub records: SmallVec<[(Offset, InFlight); 2]>,
    /// The transition that waits for it (none for a lock expiry).
    pub pending: Option<Pending>,
    /// Not sent by the share partition now loaded: sent before its read, or by one since
    /// dropped (a write can land after a later read).
    pub stale: bool,
    /// Whether its answer can still reach the member (not after a crash of its leader, nor after
    /// the disconnect that emptied the group).
    pub answerable: bool,
}

/// The share coordinator's durable state of the share partition.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Durable {
    /// The highest leader epoch a read brought (writes below it are fenced).
    pub leader_epoch: u8,
    /// The persisted start offset.
    pub start_offset: Offset,
    /// Per offset, its persisted state and count (None: never written, or pruned).
    pub records: [Option<InFlight>; RECORDS as usize],
}

/// A state of the design.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct DesignState {
    /// The share partition loaded on the leader, if one is.
    pub loaded: Option<Loaded>,
    /// With the leader window: the former leader's share partition after a leader move, still
    /// handing out records until that broker applies the metadata change.
    pub old: Option<Loaded>,
    /// The partition leader's epoch.
    pub leader_epoch: u8,
    /// Loads so far, counted up to 2 (a reload is all the properties ask about).
    pub loads: u8,
    /// Writes in flight, unordered.
    pub writes: SmallVec<[Write; IN_FLIGHT]>,
    /// The coordinator's state.
    pub durable: Durable,
    /// Faults so far.
    pub faults: u8,
    /// Leader epochs whose leader crashed (their writes may be lost): bit per epoch.
    pub crashed: u8,
    /// Times each record was handed to the member.
    pub deliveries: [u8; RECORDS as usize],
    /// Records whose ACCEPT was answered with success (bit per offset).
    pub accepted: u8,
    /// Records whose REJECT was answered with success.
    pub rejected: u8,
    /// The delivery counts of the share partition the group going empty dropped, until the next
    /// load (none after a leader change: a leader failure may lose counts).
    pub dropped: Option<[u8; RECORDS as usize]>,
    /// Broken promises and reached behaviours (bit per [`DesignProp`]).
    pub flags: u16,
}

impl DesignState {
    fn has(&self, p: DesignProp) -> bool {
        match p {
            // Reachability that the state itself shows needs no flag (a flag doubles the states):
            // from each of these states the step it names is enabled.
            DesignProp::ReachAccepted => self.accepted != 0,
            DesignProp::ReachReload => self.loads > 1,
            DesignProp::ReachFenced => self
                .writes
                .iter()
                .any(|w| w.leader_epoch < self.durable.leader_epoch),
            DesignProp::ReachLateWrite => {
                self.loaded.is_some() && self.writes.iter().any(|w| w.stale)
            }
            DesignProp::ReachLostWrite => self
                .writes
                .iter()
                .any(|w| self.crashed & (1 << w.leader_epoch) != 0),
            _ => self.flags & p.bit() != 0,
        }
    }

    /// The liveness goal: every record terminal at the coordinator (or below its start offset),
    /// nothing in flight.
    fn all_terminal(&self) -> bool {
        self.writes.is_empty()
            && (0..RECORDS as Offset).all(|o| {
                o < self.durable.start_offset
                    || self.durable.records[o as usize].is_some_and(|r| r.state.is_terminal())
            })
    }

    fn flag(&mut self, p: DesignProp) {
        self.flags |= p.bit();
    }

    /// The record table a counterexample shows after each step.
    pub fn table(&self) -> Vec<String> {
        let mut out = Vec::new();
        match &self.loaded {
            None => out.push(format!(
                "leader epoch {}: no share partition loaded",
                self.leader_epoch
            )),
            Some(l) => {
                let recs: Vec<String> = (0..RECORDS as Offset)
                    .map(|o| match l.part.record(o) {
                        Some(r) => format!(
                            "{o}:{}{}",
                            short(r),
                            if l.in_transition & (1 << o) != 0 {
                                "*"
                            } else {
                                ""
                            }
                        ),
                        None => format!("{o}:-"),
                    })
                    .collect();
                out.push(format!(
                    "leader (epoch {}): SPSO {}; {}",
                    l.leader_epoch,
                    l.part.spso(),
                    recs.join(" ")
                ));
            }
        }
        if let Some(old) = &self.old {
            let recs: Vec<String> = (0..RECORDS as Offset)
                .map(|o| match old.part.record(o) {
                    Some(r) => format!("{o}:{}", short(r)),
                    None => format!("{o}:-"),
                })
                .collect();
            out.push(format!(
                "former leader (epoch {}), not yet aware: {}",
                old.leader_epoch,
                recs.join(" ")
            ));
        }
        let recs: Vec<String> = self
            .durable
            .records
            .iter()
            .enumerate()
            .map(|(o, r)| match r {
                Some(r) => format!("{o}:{}", short(*r)),
                None => format!("{o}:-"),
            })
            .collect();
        out.push(format!(
            "coordinator (epoch {}): start offset {}; {}",
            self.durable.leader_epoch,
            self.durable.start_offset,
            recs.join(" ")
        ));
        for w in &self.writes {
            out.push(format!("in flight: {}", describe_write(w)));
        }
        out.push(format!(
            "delivered {:?}; accepted {:?}; faults {}",
            self.deliveries,
            bits(self.accepted),
            self.faults
        ));
        out
    }
}

fn short(r: InFlight) -> String {
    let s = match r.state {
        RecordState::Available => "avail",
        RecordState::Acquired(_) => "acq",
        RecordState::Acknowledged => "acked",
        RecordState::Archived => "arch",
    };
    format!("{s}({})", r.delivery_count)
}

fn bits(b: u8) -> Vec<u8> {
    (0..8).filter(|i| b & (1 << i) != 0).collect()
}

fn describe_write(w: &Write) -> String {
    let recs: Vec<String> = w
        .records
        .iter()
        .map(|(o, r)| format!("{o}:{}", short(*r)))
        .collect();
    format!(
        "{}epoch {} start {} [{}]{}",
        if w.stale { "stale, " } else { "" },
        w.leader_epoch,
        w.start_offset,
        recs.join(" "),
        match &w.pending {
            Some(Pending { ack: Some(a), .. }) => format!(" answers {a:?}"),
            Some(Pending { ack: None, .. }) => " (session release)".to_string(),
            None => " (lock expiry)".to_string(),
        }
    )
}

/// A step of the design.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum DesignAction {
    /// The first fetch after a load is needed reads the share partition (ReadShareGroupState).
    Load,
    /// The member is handed a record.
    Fetch(Offset),
    /// The former leader, not yet aware of the move, hands the member a record.
    OldFetch(Offset),
    /// The former leader applies the metadata change and drops its share partition.
    OldLearns,
    /// The member acknowledges a record it holds.
    Ack(Offset, AckType),
    /// The record's acquisition lock expires.
    Expire(Offset),
    /// The member's share session ends: what it holds is released.
    CloseSession,
    /// The write in flight at this index reaches the coordinator.
    Land(usize),
    /// The write at this index is lost with its crashed leader.
    Lose(usize),
    /// The group goes empty: the share partition is dropped, its writes still in flight.
    GroupEmpty,
    /// The leader changes (`crash`: its writes in flight may be lost).
    LeaderChange {
        /// Whether the old leader crashed.
        crash: bool,
    },
}

impl fmt::Display for DesignAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DesignAction::Load => write!(f, "the next fetch loads the share partition (read)"),
            DesignAction::Fetch(o) => write!(f, "the member is handed record {o}"),
            DesignAction::OldFetch(o) => {
                write!(f, "the former leader hands the member record {o}")
            }
            DesignAction::OldLearns => {
                write!(
                    f,
                    "the former leader learns of the move and drops its share partition"
                )
            }
            DesignAction::Ack(o, t) => write!(f, "the member acknowledges {o} {t:?}"),
            DesignAction::Expire(o) => write!(f, "the lock of {o} expires"),
            DesignAction::CloseSession => write!(f, "the member's session ends"),
            DesignAction::Land(i) => write!(f, "write #{i} in flight lands"),
            DesignAction::Lose(i) => write!(f, "write #{i} is lost with its crashed leader"),
            DesignAction::GroupEmpty => {
                write!(f, "the group goes empty: the share partition is dropped")
            }
            DesignAction::LeaderChange { crash: true } => {
                write!(f, "the leader crashes; a new leader")
            }
            DesignAction::LeaderChange { crash: false } => write!(f, "leadership moves"),
        }
    }
}

/// The durability design under a profile, optionally with a planted bug.
#[derive(Clone, Copy, Debug)]
pub struct DesignModel {
    /// The release line's design.
    pub profile: DesignProfile,
    /// A planted bug.
    pub mutant: Option<DesignMutant>,
    /// Which writes in flight may land next.
    pub order: WriteOrder,
    /// A leader move is not one step: each broker applies the metadata change on its own
    /// (`ReplicaManager.applyDelta@4.2.1:2368`), the former leader drops its share partition only
    /// when it does (`applyLocalFollowersDelta:2457`, `Partition.invokeOnBecomingFollowerListeners`
    /// `:2490`, `SPM.SharePartitionListener.onBecomingFollower:845`), and until then its fetch path
    /// still finds itself the leader (`ShareFetchUtils.partition:194`, `DelayedShareFetch:778`).
    /// With this, the former leader keeps handing out records from its memory until it learns
    /// (it is not modelled acknowledging them: its answers would come after it learned).
    pub leader_window: bool,
}

impl DesignModel {
    fn rules(&self) -> Rules {
        Rules {
            delivery_limit: LIMIT,
            ..Rules::kafka_defaults(self.profile.spec)
        }
    }

    fn bug(&self, m: DesignMutant) -> bool {
        self.mutant == Some(m)
    }

    /// A write of `changes` by the loaded share partition, whose SPSO before them was `start`.
    fn write(l: &Loaded, start: Offset, changes: &[Change], pending: Option<Pending>) -> Write {
        Write {
            leader_epoch: l.leader_epoch,
            start_offset: start,
            records: changes.iter().map(|c| (c.offset, c.to)).collect(),
            pending,
            stale: false,
            answerable: true,
        }
    }

    /// The coordinator applies `w` (not fenced): records by the highest (count, state) and
    /// pruned below the start offset, the start offset as the profile merges it.
    fn apply(&self, d: &mut Durable, w: &Write) {
        for &(o, r) in &w.records {
            let slot = &mut d.records[o as usize];
            let keep_old = match slot {
                Some(old) if !self.bug(DesignMutant::LastWriterRecords) => {
                    (old.delivery_count, priority(old.state))
                        > (r.delivery_count, priority(r.state))
                }
                _ => false,
            };
            if !keep_old {
                *slot = Some(r);
            }
        }
        d.start_offset = match self.profile.start_offset {
            StartOffsetMerge::LastWriter => w.start_offset,
            StartOffsetMerge::Highest => d.start_offset.max(w.start_offset),
        };
        for o in 0..d.start_offset.min(RECORDS as Offset) {
            d.records[o as usize] = None;
        }
    }

    /// Answers an acknowledgement: success records what the member was told.
    fn answered(n: &mut DesignState, pending: &Pending) {
        for c in &pending.changes {
            match pending.ack {
                Some(AckType::Accept) => n.accepted |= 1 << c.offset,
                Some(AckType::Reject) => n.rejected |= 1 << c.offset,
                _ => {}
            }
        }
    }
}

/// The combiner's order of states at equal counts: AVAILABLE 0 < ACKNOWLEDGED 2 < ARCHIVED 4.
fn priority(s: RecordState) -> u8 {
    match s {
        RecordState::Available | RecordState::Acquired(_) => 0,
        RecordState::Acknowledged => 2,
        RecordState::Archived => 4,
    }
}

impl Model for DesignModel {
    type State = DesignState;
    type Action = DesignAction;

    fn init_states(&self) -> Vec<DesignState> {
        vec![DesignState {
            loaded: None,
            old: None,
            leader_epoch: 0,
            loads: 0,
            writes: SmallVec::new(),
            durable: Durable {
                leader_epoch: 0,
                start_offset: 0,
                records: [None; RECORDS as usize],
            },
            faults: 0,
            crashed: 0,
            deliveries: [0; RECORDS as usize],
            accepted: 0,
            rejected: 0,
            dropped: None,
            flags: 0,
        }]
    }

    fn actions(&self, s: &DesignState, out: &mut Vec<DesignAction>) {
        let rules = self.rules();
        let room = s.writes.len() < IN_FLIGHT;
        match &s.loaded {
            None => out.push(DesignAction::Load),
            Some(l) => {
                for o in 0..RECORDS as Offset {
                    let busy = l.in_transition & (1 << o) != 0;
                    if !busy && l.part.acquirable(&rules, o) {
                        out.push(DesignAction::Fetch(o));
                    }
                    let held =
                        l.part.record(o).map(|r| r.state) == Some(RecordState::Acquired(MEMBER));
                    if held && !busy && room {
                        for t in [AckType::Accept, AckType::Release, AckType::Reject] {
                            out.push(DesignAction::Ack(o, t));
                        }
                        out.push(DesignAction::Expire(o));
                    }
                }
                let holds = (0..RECORDS as Offset).any(|o| {
                    l.part.record(o).map(|r| r.state) == Some(RecordState::Acquired(MEMBER))
                        && l.in_transition & (1 << o) == 0
                });
                if holds && room {
                    out.push(DesignAction::CloseSession);
                }
                // The group goes empty only when no member holds a session: after it ended.
                if s.faults < FAULTS && !holds {
                    out.push(DesignAction::GroupEmpty);
                }
            }
        }
        if let Some(old) = &s.old {
            for o in 0..RECORDS as Offset {
                if old.in_transition & (1 << o) == 0 && old.part.acquirable(&rules, o) {
                    out.push(DesignAction::OldFetch(o));
                }
            }
            if self.mutant != Some(DesignMutant::FormerLeaderKeepsServing) {
                out.push(DesignAction::OldLearns);
            }
        }
        for (i, w) in s.writes.iter().enumerate() {
            let overtakes = s.writes[..i]
                .iter()
                .any(|e| e.leader_epoch == w.leader_epoch);
            if self.order == WriteOrder::Any || !overtakes {
                out.push(DesignAction::Land(i));
            }
            if s.crashed & (1 << w.leader_epoch) != 0 {
                out.push(DesignAction::Lose(i));
            }
        }
        if s.faults < FAULTS {
            out.push(DesignAction::LeaderChange { crash: true });
            out.push(DesignAction::LeaderChange { crash: false });
        }
    }

    fn next_state(&self, s: &DesignState, action: DesignAction) -> Option<DesignState> {
        let rules = self.rules();
        let mut n = s.clone();
        match action {
            DesignAction::Load => {
                // ReadShareGroupState: raises the stored leader epoch (SCShard:388-410) and loads
                // every persisted record; offsets never written (or pruned) are new.
                n.durable.leader_epoch = n.durable.leader_epoch.max(n.leader_epoch);
                // The SPSO moves past the persisted terminal records at once (`SP:529`).
                let mut start = n.durable.start_offset.min(RECORDS as Offset);
                while start < RECORDS as Offset
                    && n.durable.records[start as usize].is_some_and(|r| r.state.is_terminal())
                {
                    start += 1;
                }
                let mut part = SharePartition::new(start);
                part.produce((RECORDS as Offset - start).max(0) as usize);
                for o in start..RECORDS as Offset {
                    if let Some(r) = n.durable.records[o as usize] {
                        part.force_record(o, r.state, r.delivery_count);
                    }
                }
                if let Some(before) = n.dropped.take() {
                    let lower = (start..RECORDS as Offset).any(|o| {
                        part.record(o).map_or(0, |r| r.delivery_count) < before[o as usize]
                    });
                    if lower {
                        n.flag(DesignProp::UnloadKeepsCounts);
                    }
                }
                n.loaded = Some(Loaded {
                    leader_epoch: n.leader_epoch,
                    part,
                    in_transition: 0,
                    confirmed_spso: start,
                });
                n.loads = (n.loads + 1).min(2);
                for w in n.writes.iter_mut() {
                    w.stale = true;
                }
            }
            DesignAction::Fetch(o) | DesignAction::OldFetch(o) => {
                let l = if matches!(action, DesignAction::Fetch(_)) {
                    n.loaded.as_mut()?
                } else {
                    n.old.as_mut()?
                };
                l.part.acquire(&rules, MEMBER, &[o]).ok()?;
                let held = |l: &Option<Loaded>| {
                    l.as_ref().and_then(|l| l.part.record(o)).map(|r| r.state)
                        == Some(RecordState::Acquired(MEMBER))
                };
                if held(&n.loaded) && held(&n.old) {
                    n.flag(DesignProp::OneLeaderAtATime);
                }
                let d = &mut n.deliveries[o as usize];
                // Counted up to one past the bound: more tells nothing new (and 4.1, which gives
                // a delivery back on every session release, would count without end).
                *d = (*d + 1).min(LIMIT * (1 + FAULTS) + 1);
                let delivered = *d;
                if n.accepted & (1 << o) != 0 {
                    n.flag(DesignProp::AcceptNeverLost);
                }
                if n.rejected & (1 << o) != 0 {
                    n.flag(DesignProp::RejectNeverLost);
                }
                if delivered > LIMIT * (1 + n.faults) {
                    n.flag(DesignProp::DeliveryBound);
                }
            }
            DesignAction::Ack(o, t) => {
                let l = n.loaded.as_mut()?;
                let start = l.confirmed_spso;
                let changes = l
                    .part
                    .acknowledge(&rules, MEMBER, &[AckBatch::new(o, o, t)], false)
                    .ok()?;
                let pending = Pending {
                    ack: Some(t),
                    changes: changes.iter().copied().collect(),
                };
                let early = self
                    .bug(DesignMutant::AnswerBeforeWrite)
                    .then(|| pending.clone());
                l.in_transition |= 1 << o;
                let w = DesignModel::write(l, start, &changes, Some(pending));
                n.writes.push(w);
                if let Some(p) = early {
                    DesignModel::answered(&mut n, &p);
                }
            }
            DesignAction::Expire(o) => {
                let l = n.loaded.as_mut()?;
                let start = l.confirmed_spso;
                let change = l.part.expire_lock(&rules, o)?;
                let w = DesignModel::write(l, start, &[change], None);
                n.writes.push(w);
            }
            DesignAction::CloseSession => {
                let l = n.loaded.as_mut()?;
                let start = l.confirmed_spso;
                // Records whose acknowledgement is in flight are not Acquired any more (the spec
                // moved them): the release takes what is still held.
                let changes = l.part.release_session(&rules, MEMBER);
                if changes.is_empty() {
                    return None;
                }
                for c in &changes {
                    l.in_transition |= 1 << c.offset;
                }
                let pending = Pending {
                    ack: None,
                    changes: changes.iter().copied().collect(),
                };
                let w = DesignModel::write(l, start, &changes, Some(pending));
                n.writes.push(w);
            }
            DesignAction::Land(i) => {
                let w = n.writes.remove(i);
                let fenced = n.durable.leader_epoch > w.leader_epoch
                    && !self.bug(DesignMutant::NoLeaderFencing);
                let current = n.loaded.is_some() && !w.stale;
                if fenced {
                    // The member is told an error; the sender, if it is still loaded, rolls back
                    // (a rolled-back release is Acquired again, until its lock expires).
                    if let (Some(pending), true) = (&w.pending, current) {
                        let l = n.loaded.as_mut()?;
                        for c in &pending.changes {
                            l.part
                                .force_record(c.offset, c.from.state, c.from.delivery_count);
                            l.in_transition &= !(1 << c.offset);
                        }
                    }
                } else {
                    let before = n.durable.clone();
                    self.apply(&mut n.durable, &w);
                    if n.durable.start_offset < before.start_offset {
                        n.flag(DesignProp::StartOffsetNeverBack);
                    }
                    for o in 0..RECORDS as usize {
                        if let (Some(b), Some(a)) = (before.records[o], n.durable.records[o]) {
                            if a.delivery_count < b.delivery_count {
                                n.flag(DesignProp::CountNeverLowered);
                            }
                        }
                    }
                    if let Some(pending) = &w.pending {
                        if w.answerable && !self.bug(DesignMutant::AnswerBeforeWrite) {
                            DesignModel::answered(&mut n, pending);
                        }
                        let stays =
                            pending.ack.is_none() && self.bug(DesignMutant::ReleaseNeverCompletes);
                        if current && !stays {
                            if let Some(l) = n.loaded.as_mut() {
                                for c in &pending.changes {
                                    l.in_transition &= !(1 << c.offset);
                                }
                            }
                        }
                    }
                    if current {
                        if let Some(l) = n.loaded.as_mut() {
                            l.confirmed_spso = l.part.spso();
                        }
                    }
                }
            }
            DesignAction::Lose(i) => {
                n.writes.remove(i);
            }
            DesignAction::OldLearns => {
                n.old.take()?;
            }
            DesignAction::GroupEmpty => {
                // The last member's disconnect emptied the group: no answer reaches it.
                let l = n.loaded.take()?;
                let mut counts = [0; RECORDS as usize];
                for (o, c) in counts.iter_mut().enumerate() {
                    *c = l.part.record(o as Offset).map_or(0, |r| r.delivery_count);
                }
                // Only the first drop since the last load counts (no load, no new counts).
                n.dropped = Some(counts);
                // The former leader's share partition goes with the group (`SPM.onGroupEmpty`).
                n.old = None;
                for w in n.writes.iter_mut().filter(|w| !w.stale) {
                    w.stale = true;
                    w.answerable = false;
                }
                n.faults += 1;
            }
            DesignAction::LeaderChange { crash } => {
                if crash {
                    n.crashed |= 1 << n.leader_epoch;
                    let epoch = n.leader_epoch;
                    for w in n.writes.iter_mut().filter(|w| w.leader_epoch == epoch) {
                        w.answerable = false;
                    }
                }
                // A crashed leader serves nothing; a moved one, with the window, until it learns.
                let keeps = self.mutant == Some(DesignMutant::FormerLeaderKeepsServing);
                n.old = if (self.leader_window || keeps) && !crash {
                    n.loaded.take()
                } else {
                    None
                };
                n.loaded = None;
                n.dropped = None;
                for w in n.writes.iter_mut() {
                    w.stale = true;
                }
                n.leader_epoch += 1;
                n.faults += 1;
            }
        }
        Some(n)
    }

    fn properties(&self) -> Vec<Property<Self>> {
        macro_rules! prop {
            ($p:expr) => {
                match $p.kind() {
                    PropKind::Sometimes => {
                        Property::<DesignModel>::sometimes($p.name(), |_, s: &DesignState| {
                            s.has($p)
                        })
                    }
                    _ => {
                        Property::<DesignModel>::always($p.name(), |_, s: &DesignState| !s.has($p))
                    }
                }
            };
        }
        vec![
            prop!(DesignProp::AcceptNeverLost),
            prop!(DesignProp::RejectNeverLost),
            prop!(DesignProp::DeliveryBound),
            prop!(DesignProp::StartOffsetNeverBack),
            prop!(DesignProp::CountNeverLowered),
            prop!(DesignProp::UnloadKeepsCounts),
            prop!(DesignProp::OneLeaderAtATime),
            prop!(DesignProp::ReachAccepted),
            prop!(DesignProp::ReachReload),
            prop!(DesignProp::ReachFenced),
            prop!(DesignProp::ReachLateWrite),
            prop!(DesignProp::ReachLostWrite),
        ]
    }

    fn format_action(&self, action: &DesignAction) -> String {
        action.to_string()
    }
}

/// What [`check_design`] found.
#[derive(Clone, Debug)]
pub struct DesignReport {
    /// Every property, in [`DesignProp::ALL`] order.
    pub properties: Vec<PropertyReport>,
    /// Unique states.
    pub states: usize,
    /// Each violated property's shortest counterexample, as the steps taken.
    pub counterexamples: Vec<(DesignProp, Vec<DesignAction>)>,
}

/// Model-checks the design under `profile` with a strict breadth-first search (each
/// counterexample a shortest one).
pub fn check_design(
    profile: Profile,
    mutant: Option<DesignMutant>,
    order: WriteOrder,
    leader_window: bool,
) -> DesignReport {
    let quiet = crate::check::Quiet::<DesignModel> {
        goal: &DesignState::all_terminal,
        quiet: &|a| {
            !matches!(
                a,
                DesignAction::GroupEmpty | DesignAction::LeaderChange { .. }
            )
        },
    };
    let (properties, states, paths) = crate::check::check_props(
        DesignModel {
            profile: DesignProfile::of(profile),
            mutant,
            order,
            leader_window,
        },
        DesignProp::ALL.iter().map(|p| (p.name(), p.kind())),
        Some(&quiet),
        DesignState::table,
    );
    let counterexamples = paths
        .into_iter()
        .filter_map(|(name, actions)| {
            DesignProp::ALL
                .into_iter()
                .find(|p| p.name() == name)
                .map(|p| (p, actions))
        })
        .collect();
    DesignReport {
        properties,
        states,
        counterexamples,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::Status;

    fn status(reports: &[PropertyReport], p: DesignProp) -> Status {
        reports
            .iter()
            .find(|r| r.name == p.name())
            .map(|r| r.status)
            .expect("reported")
    }

    fn every_behaviour_reached(profile: Profile, reports: &[PropertyReport]) {
        for p in DesignProp::ALL
            .iter()
            .filter(|p| p.kind() == PropKind::Sometimes)
        {
            assert_eq!(
                status(reports, *p),
                Status::Reached,
                "{} {}",
                profile.name,
                p.name()
            );
        }
    }

    fn always_violated(reports: &[PropertyReport]) -> Vec<&str> {
        reports
            .iter()
            .filter(|r| r.kind == PropKind::Always && r.status == Status::Violated)
            .map(|r| r.name.as_str())
            .collect()
    }

    /// 4.4 keeps every promise across reloads but one — the group going empty forgets a delivery
    /// whose write is still in flight (F5), under either write order — and reaches every fault
    /// kind. Pinned state counts: 3 890 161 (any order), 3 103 370 (per leader).
    #[test]
    fn kafka_4_4_keeps_every_promise_but_the_count_across_an_unload() {
        for (order, pinned) in [
            (WriteOrder::Any, 3_890_161),
            (WriteOrder::PerLeader, 3_103_370),
        ] {
            let r = check_design(Profile::KAFKA_4_4, None, order, false);
            assert_eq!(
                always_violated(&r.properties),
                vec![DesignProp::UnloadKeepsCounts.name()],
                "{order:?}"
            );
            every_behaviour_reached(Profile::KAFKA_4_4, &r.properties);
            assert_eq!(
                status(&r.properties, DesignProp::EventuallyAllTerminal),
                Status::Holds,
                "{order:?}"
            );
            assert_eq!(r.states, pinned, "{order:?}");
            // The shortest: the member acknowledges, its connection drops before the answer (the
            // group goes empty), the next fetch reads before the write lands: offset 0 is new.
            let (_, steps) = &r.counterexamples[0];
            assert_eq!(
                steps,
                &vec![
                    DesignAction::Load,
                    DesignAction::Fetch(0),
                    DesignAction::Ack(0, AckType::Accept),
                    DesignAction::GroupEmpty,
                    DesignAction::Load,
                ]
            );
        }
    }

    /// 4.2 takes a write's start offset as it is (`SCShard.merge@4.2.1:996`): when a leader's
    /// writes land out of order the persisted start offset moves back, and an ACCEPT answered
    /// with success is lost (13 steps: an expiry's write, sent before an ACCEPT moved the SPSO,
    /// lands after a later write pruned the accepted record). With writes in order the start
    /// offset still moves back (a write of the share partition read before a stale write landed),
    /// but no acknowledgement is lost in this configuration.
    #[test]
    fn kafka_4_2_loses_an_accept_only_when_writes_land_out_of_order() {
        let any = check_design(Profile::KAFKA_4_2, None, WriteOrder::Any, false);
        assert_eq!(
            always_violated(&any.properties),
            vec![
                DesignProp::AcceptNeverLost.name(),
                DesignProp::RejectNeverLost.name(),
                DesignProp::StartOffsetNeverBack.name(),
                DesignProp::UnloadKeepsCounts.name(),
            ]
        );
        every_behaviour_reached(Profile::KAFKA_4_2, &any.properties);
        let accept = &any
            .counterexamples
            .iter()
            .find(|(p, _)| *p == DesignProp::AcceptNeverLost)
            .expect("a counterexample")
            .1;
        assert_eq!(accept.len(), 13);
        // Without any fault the coordinator already holds the accepted record as never written
        // (the late expiry's start offset moved back over it): no quiet run repairs that.
        let stuck = &any
            .counterexamples
            .iter()
            .find(|(p, _)| *p == DesignProp::EventuallyAllTerminal)
            .expect("a liveness counterexample")
            .1;
        assert_eq!(stuck.len(), 9);
        assert!(!stuck.iter().any(|a| matches!(
            a,
            DesignAction::GroupEmpty | DesignAction::LeaderChange { .. }
        )));
        let ordered = check_design(Profile::KAFKA_4_2, None, WriteOrder::PerLeader, false);
        assert_eq!(
            always_violated(&ordered.properties),
            vec![
                DesignProp::StartOffsetNeverBack.name(),
                DesignProp::UnloadKeepsCounts.name(),
            ]
        );
        assert_eq!(
            status(&ordered.properties, DesignProp::EventuallyAllTerminal),
            Status::Violated
        );
    }

    /// The design with only `props` checked: a breadth-first search of it stops at once when
    /// each is found (the whole leader-window graph is 18 M states, 80 s).
    struct Only(DesignModel, &'static [DesignProp]);

    impl Model for Only {
        type State = DesignState;
        type Action = DesignAction;
        fn init_states(&self) -> Vec<DesignState> {
            self.0.init_states()
        }
        fn actions(&self, s: &DesignState, out: &mut Vec<DesignAction>) {
            self.0.actions(s, out)
        }
        fn next_state(&self, s: &DesignState, a: DesignAction) -> Option<DesignState> {
            self.0.next_state(s, a)
        }
        fn properties(&self) -> Vec<Property<Self>> {
            macro_rules! always {
                ($p:expr) => {
                    Property::<Only>::always($p.name(), |_, s: &DesignState| !s.has($p))
                };
            }
            let all = [
                always!(DesignProp::AcceptNeverLost),
                always!(DesignProp::OneLeaderAtATime),
            ];
            all.into_iter()
                .filter(|p| self.1.iter().any(|q| q.name() == p.name))
                .collect()
        }
    }

    /// With the leader window, two leaders hold the same record at once (5 steps: the new leader
    /// reads before any write, so the record acquired from the former one is Available to it),
    /// and even 4.4 hands out an answered ACCEPT again (7 steps: accepted at the new leader, then
    /// handed out by the former one from its memory). Without the window neither happens in 4.4
    /// (`kafka_4_4_keeps_every_promise_but_the_count_across_an_unload`).
    #[test]
    fn a_former_leader_that_has_not_learned_hands_out_an_accepted_record() {
        let [one_leader, accept] = two_leader_paths(None, true);
        assert_eq!(
            one_leader,
            vec![
                DesignAction::Load,
                DesignAction::Fetch(0),
                DesignAction::LeaderChange { crash: false },
                DesignAction::Load,
                DesignAction::Fetch(0),
            ]
        );
        assert_eq!(
            accept,
            vec![
                DesignAction::Load,
                DesignAction::LeaderChange { crash: false },
                DesignAction::Load,
                DesignAction::Fetch(0),
                DesignAction::Ack(0, AckType::Accept),
                DesignAction::Land(0),
                DesignAction::OldFetch(0),
            ]
        );
    }

    /// Without the leader window a move is atomic and 4.4 has one leader at a time
    /// (`kafka_4_4_keeps_every_promise_but_the_count_across_an_unload`); a former leader that
    /// never drops its share partition breaks it in the same 5 steps as the window does, and
    /// hands out an answered ACCEPT again.
    #[test]
    fn a_former_leader_that_keeps_serving_is_caught() {
        let [one_leader, accept] =
            two_leader_paths(Some(DesignMutant::FormerLeaderKeepsServing), false);
        assert_eq!(one_leader.len(), 5);
        assert!(accept
            .iter()
            .any(|a| matches!(a, DesignAction::OldFetch(_))));
    }

    /// 4.4's shortest paths to `design-one-leader-at-a-time` and `design-accept-never-lost`
    /// (a search that stops once both are found).
    fn two_leader_paths(
        mutant: Option<DesignMutant>,
        leader_window: bool,
    ) -> [Vec<DesignAction>; 2] {
        let model = DesignModel {
            profile: DesignProfile::of(Profile::KAFKA_4_4),
            mutant,
            order: WriteOrder::Any,
            leader_window,
        };
        let props: &'static [DesignProp; 2] =
            &[DesignProp::OneLeaderAtATime, DesignProp::AcceptNeverLost];
        let search = crate::check::breadth_first(&Only(model, props), true, None, &mut |_| {});
        props.map(|p| search.found[p.name()].clone().into_actions())
    }

    /// Each planted design bug breaks a promise 4.4's design keeps: the first three lose an
    /// ACCEPT, the fourth leaves a record that no quiet run makes terminal; the fifth, two leaders
    /// handing out one record, is `a_former_leader_that_keeps_serving_is_caught`.
    #[test]
    fn every_design_mutant_is_caught_under_4_4() {
        for m in DesignMutant::ALL {
            if m == DesignMutant::FormerLeaderKeepsServing {
                continue;
            }
            let r = check_design(Profile::KAFKA_4_4, Some(m), WriteOrder::Any, false);
            let broken = match m {
                DesignMutant::ReleaseNeverCompletes => DesignProp::EventuallyAllTerminal,
                _ => DesignProp::AcceptNeverLost,
            };
            assert_eq!(
                status(&r.properties, broken),
                Status::Violated,
                "{} not caught",
                m.name()
            );
        }
    }
}
