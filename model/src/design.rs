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
//!   (§2.3). Releases and expiries are not awaited (§2.2);
//! - writes in flight are not ordered: the persister retries, looks coordinators up and gates
//!   reads and writes independently (§6.2, `PSM:1463-1575`), so any pending write may land next —
//!   also after a later read;
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
const MEMBER: u16 = 0;

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

/// A planted bug in the design (not in the spec): the properties must catch each.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DesignMutant {
    /// An acknowledgement is answered before its write completes.
    AnswerBeforeWrite,
    /// The coordinator does not fence writes of an older leader epoch.
    NoLeaderFencing,
    /// The coordinator merges records last-writer-wins instead of by the highest (count, state).
    LastWriterRecords,
}

impl DesignMutant {
    /// Every design mutant.
    pub const ALL: [DesignMutant; 3] = [
        DesignMutant::AnswerBeforeWrite,
        DesignMutant::NoLeaderFencing,
        DesignMutant::LastWriterRecords,
    ];

    /// The stable name.
    pub fn name(self) -> &'static str {
        match self {
            DesignMutant::AnswerBeforeWrite => "answer-before-write",
            DesignMutant::NoLeaderFencing => "no-leader-fencing",
            DesignMutant::LastWriterRecords => "last-writer-records",
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
    /// Reachability: an ACCEPT answered with success.
    ReachAccepted,
    /// Reachability: a share partition read back after a fault.
    ReachReload,
    /// Reachability: a write fenced by the coordinator.
    ReachFenced,
    /// Reachability: a write of a dropped share partition landed after a later read.
    ReachLateWrite,
    /// Reachability: a write lost with its leader.
    ReachLostWrite,
}

impl DesignProp {
    /// Every property, in report order.
    pub const ALL: [DesignProp; 10] = [
        DesignProp::AcceptNeverLost,
        DesignProp::RejectNeverLost,
        DesignProp::DeliveryBound,
        DesignProp::StartOffsetNeverBack,
        DesignProp::CountNeverLowered,
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
            _ => PropKind::Always,
        }
    }

    fn bit(self) -> u16 {
        1 << DesignProp::ALL.iter().position(|p| *p == self).unwrap_or(0)
    }
}

/// One loaded share partition on a leader: an incarnation (a new one after every load).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Loaded {
    /// Which load made it (writes name it).
    pub incarnation: u8,
    /// The leader epoch it was created with (`SPM:705`), on every write.
    pub leader_epoch: u8,
    /// The in-memory share partition: the spec.
    pub part: SharePartition,
    /// Offsets whose acknowledgement write is in flight (bit per offset).
    pub in_transition: u8,
    /// The SPSO as of its last write's callback (`maybeUpdateCachedStateAndOffsets`, `SP:2522,
    /// 2915`), which the next write carries; the spec's own SPSO moves at once.
    pub confirmed_spso: Offset,
}

/// An acknowledgement waiting for its write.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PendingAck {
    /// How it acknowledged.
    pub ack: AckType,
    /// What it changed, to roll back when the write is fenced.
    pub changes: SmallVec<[Change; 2]>,
}

/// A WriteShareGroupState in flight.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Write {
    /// The share partition that sent it.
    pub incarnation: u8,
    /// Its leader epoch.
    pub leader_epoch: u8,
    /// The start offset it carries (the sender's, before this write's own change).
    pub start_offset: Offset,
    /// The records it writes.
    pub records: SmallVec<[(Offset, InFlight); 2]>,
    /// The acknowledgement that waits for it, if one does.
    pub ack: Option<PendingAck>,
    /// Sent before the read of the share partition now loaded (it can land after it).
    pub before_load: bool,
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
    /// The partition leader's epoch.
    pub leader_epoch: u8,
    /// Loads so far (incarnations).
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
    /// Broken promises and reached behaviours (bit per [`DesignProp`]).
    pub flags: u16,
}

impl DesignState {
    fn has(&self, p: DesignProp) -> bool {
        match p {
            // Reachability that the state itself shows needs no flag (a flag doubles the states).
            DesignProp::ReachAccepted => self.accepted != 0,
            DesignProp::ReachReload => self.loads > 1,
            _ => self.flags & p.bit() != 0,
        }
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
                    "leader (epoch {}, load {}): SPSO {}; {}",
                    l.leader_epoch,
                    l.incarnation,
                    l.part.spso(),
                    recs.join(" ")
                ));
            }
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
        "load {} epoch {} start {} [{}]{}",
        w.incarnation,
        w.leader_epoch,
        w.start_offset,
        recs.join(" "),
        match &w.ack {
            Some(a) => format!(" answers {:?}", a.ack),
            None => String::new(),
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
    fn write(l: &Loaded, start: Offset, changes: &[Change], ack: Option<PendingAck>) -> Write {
        Write {
            incarnation: l.incarnation,
            leader_epoch: l.leader_epoch,
            start_offset: start,
            records: changes.iter().map(|c| (c.offset, c.to)).collect(),
            ack,
            before_load: false,
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
    fn answered(n: &mut DesignState, ack: &PendingAck) {
        for c in &ack.changes {
            match ack.ack {
                AckType::Accept => n.accepted |= 1 << c.offset,
                AckType::Reject => n.rejected |= 1 << c.offset,
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
        for (i, w) in s.writes.iter().enumerate() {
            out.push(DesignAction::Land(i));
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
                n.loaded = Some(Loaded {
                    incarnation: n.loads,
                    leader_epoch: n.leader_epoch,
                    part,
                    in_transition: 0,
                    confirmed_spso: start,
                });
                n.loads += 1;
                for w in n.writes.iter_mut() {
                    w.before_load = true;
                }
            }
            DesignAction::Fetch(o) => {
                let l = n.loaded.as_mut()?;
                l.part.acquire(&rules, MEMBER, &[o]).ok()?;
                let d = &mut n.deliveries[o as usize];
                *d = d.saturating_add(1);
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
                let pending = PendingAck {
                    ack: t,
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
                let w = DesignModel::write(l, start, &changes, None);
                n.writes.push(w);
            }
            DesignAction::Land(i) => {
                let w = n.writes.remove(i);
                let fenced = n.durable.leader_epoch > w.leader_epoch
                    && !self.bug(DesignMutant::NoLeaderFencing);
                let current = n
                    .loaded
                    .as_ref()
                    .is_some_and(|l| l.incarnation == w.incarnation);
                if fenced {
                    n.flag(DesignProp::ReachFenced);
                    // The member is told an error; the sender, if it is still loaded, rolls back.
                    if let (Some(ack), true) = (&w.ack, current) {
                        let l = n.loaded.as_mut()?;
                        for c in &ack.changes {
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
                    if w.before_load && !current {
                        n.flag(DesignProp::ReachLateWrite);
                    }
                    if let Some(ack) = &w.ack {
                        if w.answerable && !self.bug(DesignMutant::AnswerBeforeWrite) {
                            DesignModel::answered(&mut n, ack);
                        }
                        if current {
                            if let Some(l) = n.loaded.as_mut() {
                                for c in &ack.changes {
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
                n.flag(DesignProp::ReachLostWrite);
            }
            DesignAction::GroupEmpty => {
                // The last member's disconnect emptied the group: no answer reaches it.
                let dropped = n.loaded.take()?.incarnation;
                for w in n.writes.iter_mut().filter(|w| w.incarnation == dropped) {
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
                n.loaded = None;
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

/// Model-checks the design under `profile` (breadth-first: each counterexample is a shortest one);
/// the reports and the number of unique states.
pub fn check_design(
    profile: Profile,
    mutant: Option<DesignMutant>,
) -> (Vec<PropertyReport>, usize) {
    crate::check::check_props(
        DesignModel {
            profile: DesignProfile::of(profile),
            mutant,
        },
        DesignProp::ALL.iter().map(|p| (p.name(), p.kind())),
        DesignState::table,
    )
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

    /// 4.4 keeps every promise across reloads in this configuration (7.7 million states), and
    /// every fault kind is reached.
    #[test]
    fn kafka_4_4_keeps_every_promise_across_reloads() {
        let (reports, states) = check_design(Profile::KAFKA_4_4, None);
        for r in reports.iter().filter(|r| r.kind == PropKind::Always) {
            assert_eq!(
                r.status,
                Status::Holds,
                "{}: {:?}",
                r.name,
                r.counterexample
            );
        }
        every_behaviour_reached(Profile::KAFKA_4_4, &reports);
        assert!(states > 1_000_000, "{states} states");
    }

    /// 4.2 takes a write's start offset as it is (`SCShard.merge@4.2.1:996`): the checker finds the
    /// persisted start offset moving back and an accepted record delivered again. The
    /// counterexamples (32 steps) are not yet analysed step by step (issue 15).
    #[test]
    fn kafka_4_2_breaks_the_start_offset_and_accept_promises() {
        let (reports, _) = check_design(Profile::KAFKA_4_2, None);
        assert_eq!(
            status(&reports, DesignProp::StartOffsetNeverBack),
            Status::Violated
        );
        assert_eq!(
            status(&reports, DesignProp::AcceptNeverLost),
            Status::Violated
        );
        assert_eq!(
            status(&reports, DesignProp::CountNeverLowered),
            Status::Holds
        );
        every_behaviour_reached(Profile::KAFKA_4_2, &reports);
    }

    /// Each planted design bug breaks a promise under 4.4, whose design keeps them all. 13–21
    /// million states each (about 2.5 min apiece here), so out of the default run; measured
    /// 2026-12-02: answer-before-write and no-leader-fencing break accept- and reject-never-lost,
    /// last-writer-records also count-never-lowered.
    #[test]
    #[ignore = "slow (13-21 million states per mutant): cargo test -p sharecheck-model --lib -- --ignored design"]
    fn every_design_mutant_is_caught_under_4_4() {
        for m in DesignMutant::ALL {
            let (reports, _) = check_design(Profile::KAFKA_4_4, Some(m));
            assert_eq!(
                status(&reports, DesignProp::AcceptNeverLost),
                Status::Violated,
                "{} not caught",
                m.name()
            );
        }
    }
}
