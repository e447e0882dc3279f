//! A Stateright model of one share partition driven by share-group members (KIP-932).
//!
//! Actions are client operations and broker events, one per wire request or timer — produce, fetch by
//! a member (with a MaxRecords bound), acknowledge a selection of the records a member holds with one
//! type, lock expiry, session close, connection drop, member crash, broker restart — and every one of
//! them runs [`crate::spec`], the same code the reference broker and the conformance oracle use.
//!
//! Properties are checked by *monitors*: after each step the model compares the state before and
//! after, and what the member was told, against the promises of KIP-932 (listed in [`Prop`]). A broken
//! promise sets a sticky violation bit, and a violated state has no successors. The monitors read the
//! spec's state but never call its rules, so a planted bug in a rule ([`crate::mutant`]) shows up as a
//! violated property with a counterexample.
//!
//! Members only ever acknowledge records they were given, and keep a record in hand after its lock
//! expired (so stale acks happen, as in real clients). Ghost state records what members were told
//! (which ACCEPTs and REJECTs succeeded, deliveries since the last persisted count); in the correct spec
//! it is a function of the partition state, so it does not enlarge the state space.
//!
//! Members are interchangeable: [`State`] implements [`Representative`] so DFS can check one state per
//! member permutation.

use crate::anomaly::Anomaly;
use crate::mutant::Mutant;
use crate::profile::{Profile, SessionRelease, WindowRule};
use crate::spec::{
    AckBatch, AckType, Change, MemberIdx, Offset, RecordState, Rules, SharePartition,
};
use crate::ErrorCode;
use serde::Serialize;
use smallvec::SmallVec;
use stateright::{Expectation, Model, Property, Representative};
use std::fmt;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;

/// Most records a model configuration may have (member holdings are bit masks).
pub const MAX_RECORDS: u8 = 6;
/// Most members a model configuration may have.
pub const MAX_MEMBERS: u8 = 3;

/// A model configuration out of its bounds (the message names the parameter).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

impl From<&str> for ConfigError {
    fn from(s: &str) -> Self {
        ConfigError(s.to_string())
    }
}

/// The bounds and rules of one model-checking run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Config {
    /// Records produced over the run (1..=6).
    pub records: u8,
    /// Members of the share group (1..=3).
    pub members: u8,
    /// The delivery-count limit (2..=10, as Kafka allows).
    pub delivery_limit: u8,
    /// The in-flight window limit (`group.share.partition.max.record.locks`).
    pub max_in_flight: u32,
    /// Broker restarts allowed over the run.
    pub restarts: u8,
    /// The release whose rules apply.
    #[serde(serialize_with = "serialize_profile")]
    pub profile: Profile,
    /// A planted bug, if any.
    pub mutant: Option<Mutant>,
    /// `share.renew.acknowledge.enable` (4.3+ group config): false refuses every RENEW.
    pub renew_enabled: bool,
}

fn serialize_profile<S: serde::Serializer>(p: &Profile, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(p.name)
}

impl Config {
    /// The standard configuration: 3 records, 2 members, delivery limit 3, window 2, one restart.
    pub const STANDARD: Config = Config {
        records: 3,
        members: 2,
        delivery_limit: 3,
        max_in_flight: 2,
        restarts: 1,
        profile: Profile::DEFAULT,
        mutant: None,
        renew_enabled: true,
    };

    /// The spec's rules for this configuration.
    pub fn rules(&self) -> Rules {
        Rules {
            profile: self.profile,
            delivery_limit: self.delivery_limit,
            max_in_flight: self.max_in_flight,
            mutant: self.mutant,
            renew_enabled: self.renew_enabled,
        }
    }

    /// Checks the bounds; the message names the offending parameter.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !(1..=MAX_RECORDS).contains(&self.records) {
            return Err(ConfigError(format!(
                "--records must be 1..={MAX_RECORDS}, got {}",
                self.records
            )));
        }
        if !(1..=MAX_MEMBERS).contains(&self.members) {
            return Err(ConfigError(format!(
                "--members must be 1..={MAX_MEMBERS}, got {}",
                self.members
            )));
        }
        if !(2..=10).contains(&self.delivery_limit) {
            return Err(ConfigError(format!(
                "--delivery-limit must be 2..=10 (Kafka's range), got {}",
                self.delivery_limit
            )));
        }
        if self.max_in_flight == 0 {
            return Err("--max-in-flight must be at least 1".into());
        }
        if self.restarts > 3 {
            return Err(ConfigError(format!(
                "--restarts must be 0..=3, got {}",
                self.restarts
            )));
        }
        if !self.renew_enabled && !self.profile.has_renew_switch() {
            return Err(ConfigError(format!(
                "--renew-disabled needs kafka-4.3 or later (the first release with share.renew.acknowledge.enable), got {}",
                self.profile.name
            )));
        }
        Ok(())
    }

    /// Whether deliveries are counted exactly by the rules: every profile except those that give a
    /// count back on session release (4.1), where a crash-looping member is redelivered forever.
    fn counts_every_delivery(&self) -> bool {
        self.profile.session_release == SessionRelease::KeepCount
    }
}

/// A client operation or broker event.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case", tag = "action")]
pub enum Action {
    /// A producer appends one record.
    Produce,
    /// ShareFetch by `member` with MaxRecords = `max_records`; the leader acquires what
    /// [`SharePartition::next_acquisition`] picks.
    Fetch { member: u8, max_records: u8 },
    /// ShareAcknowledge by `member` of the records in the bit mask `offsets`, all with type `ty`
    /// (one batch per contiguous run).
    Ack {
        member: u8,
        offsets: u8,
        ty: AckType,
    },
    /// ShareAcknowledge by `member` of its lowest held record in a request shaped by
    /// [`MALFORMED_ACKS`]`[shape]`: malformed (answered INVALID_REQUEST), or two batches that only
    /// touch (well-formed, but the record twice: INVALID_RECORD_STATE).
    OddAck { member: u8, shape: u8 },
    /// The acquisition lock of one record expires.
    ExpireLock { offset: u8 },
    /// `member` closes its share session (ShareFetch/ShareAcknowledge epoch −1, T9).
    CloseSession { member: u8 },
    /// `member`'s connection to the leader drops. Since 4.1 the leader then releases the member's
    /// records exactly as on close (T9, `ShareSessionCache.ClientConnectionDisconnectListener@4.2`):
    /// the same spec transition, a different request on the wire.
    Disconnect { member: u8 },
    /// `member` stops without closing anything: it forgets the records it holds, the broker does not
    /// notice, and only lock expiry returns them.
    Crash { member: u8 },
    /// The broker restarts (or the leader fails over).
    Restart,
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = |m: u8| (b'A' + m) as char;
        match *self {
            Action::Produce => write!(f, "produce 1 record"),
            Action::Fetch {
                member,
                max_records,
            } => {
                write!(f, "member {} fetches (max {max_records})", name(member))
            }
            Action::Ack {
                member,
                offsets,
                ty,
            } => {
                write!(
                    f,
                    "member {} acks {} {}",
                    name(member),
                    ty.name().to_uppercase(),
                    mask_list(offsets)
                )
            }
            Action::OddAck { member, shape } => write!(
                f,
                "member {} acknowledges with {}",
                name(member),
                MALFORMED_ACKS[shape as usize]
            ),
            Action::ExpireLock { offset } => write!(f, "lock on offset {offset} expires"),
            Action::CloseSession { member } => {
                write!(f, "member {} closes its share session", name(member))
            }
            Action::Disconnect { member } => write!(f, "member {} disconnects", name(member)),
            Action::Crash { member } => write!(f, "member {} crashes silently", name(member)),
            Action::Restart => write!(f, "broker restarts"),
        }
    }
}

fn mask_list(mask: u8) -> String {
    let offsets: Vec<String> = (0..8)
        .filter(|o| mask & (1 << o) != 0)
        .map(|o| o.to_string())
        .collect();
    format!("[{}]", offsets.join(","))
}

/// A property of the model: its stable name, kind and the KIP-932 rule it encodes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Prop {
    // ---- safety (always) -------------------------------------------------------------------
    /// A fetch never acquires a record another member holds: at most one owner per Acquired record
    /// (`RecordState.validateTransition@4.2`: only AVAILABLE→ACQUIRED; §13 I6).
    OneOwner,
    /// An acknowledgement only changes records Acquired by the acknowledging member (§5.3, 121).
    OnlyOwnerAcks,
    /// An acknowledgement naming a record (at or above SPSO) the caller does not hold fails with
    /// INVALID_RECORD_STATE (§5.3).
    UnownedAckRejected,
    /// A record whose ACCEPT was answered with success is never delivered again (§10.2, §13 I7).
    AcceptedNeverRedelivered,
    /// A record that was archived (REJECT, GAP, delivery limit) is never delivered again (§1.2).
    ArchivedNeverRedelivered,
    /// A delivery count never decreases, except on restart (acquisitions are not persisted, §10.2) and
    /// on session release under kafka-4.1 (§2.1) (§13 I3).
    CountNeverDecreases,
    /// No record is delivered more than the delivery limit allows between restarts (§2.1); under
    /// kafka-4.1 only the reported count is bounded (session release gives a delivery back).
    DeliveryLimitRespected,
    /// Acknowledged and Archived are absorbing (§1.2, §13 I4).
    TerminalAbsorbing,
    /// The SPSO never moves backward (§4.1, §13 I5).
    SpsoMonotonic,
    /// Every record below the SPSO is terminal: SPSO never passes a non-terminal record (§4.1, §13 I1).
    SpsoNeverPassesNonTerminal,
    /// New acquisitions never push `SPEO − SPSO + 1` past the in-flight limit (4.2+; 4.1: only when
    /// the window was already full before the fetch) (§4.2, §13 I9).
    WindowLimitRespected,
    /// Every acquired range reported to a member carries the delivery count the partition holds
    /// (§2.1, §13 I10).
    ReportedCountMatches,
    /// An acknowledgement request is all-or-nothing for the partition (§1.3 notes, §13 I8).
    AckAtomic,
    /// Closing a share session or dropping its connection releases every record the member holds
    /// (T9; §6.1, §6.3).
    SessionCloseReleases,
    /// A fetch hands its member at most MaxRecords records (one record per batch here), in
    /// ascending order, each in the log, at or above the SPSO and Available before the fetch — and
    /// the leader's own choice is always one it may make: a leader that picks records it then
    /// cannot acquire answers an empty fetch while records wait (§2.4, §4.2).
    AcquisitionLegal,
    /// A malformed acknowledgement request — FirstOffset > LastOffset, a batch starting before the
    /// previous one's LastOffset, no types, a type count that is not the range length, a type out
    /// of range, RENEW without IsRenewAck — is refused with INVALID_REQUEST and changes nothing;
    /// two batches that only touch (the second starts at the first's LastOffset) are well-formed,
    /// and acknowledging that record twice is INVALID_RECORD_STATE; a batch that runs from a record
    /// in flight to past the share-partition end offset is INVALID_REQUEST (§5.3,
    /// `KA.validateAcknowledgementBatches@4.2:4059-4103`).
    MalformedAckRefused,
    /// A broker restart (or leader failover) forgets every acquisition: afterwards no record is
    /// Acquired, so no member's lock outlives the leader that granted it — acquisitions are never
    /// written to the share coordinator (T14, §10.2).
    RestartForgetsAcquisitions,
    /// With `share.renew.acknowledge.enable=false` (4.3+) no RENEW of a record at or above the SPSO
    /// is answered with success (one wholly below it is skipped, as every acknowledgement): the
    /// member's lock is not extended (docs/semantics.md §16; a refusal that changes a record is
    /// `ack-atomic`'s).
    RenewRefusedWhenDisabled,
    // ---- reachability (sometimes), on states -------------------------------------------------
    /// Some record is Acquired.
    ReachAcquired,
    /// Some record is Acknowledged.
    ReachAcknowledged,
    /// Some record is Archived.
    ReachArchived,
    /// Some record is Available again after a delivery.
    ReachRedeliverable,
    // ---- liveness ----------------------------------------------------------------------------
    /// Under fair scheduling every produced record eventually becomes Acknowledged or Archived:
    /// from every reachable state, a state where all records are produced and terminal is reachable.
    EventuallyAllTerminal,
}

/// The kind of a property, as in reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum PropKind {
    /// Must hold in every reachable state.
    Always,
    /// Must hold in some reachable state (or on some reachable transition).
    Sometimes,
    /// Must eventually hold on every fair path.
    Liveness,
}

impl Prop {
    /// The safety properties, in bit order.
    pub const SAFETY: [Prop; 18] = [
        Prop::OneOwner,
        Prop::OnlyOwnerAcks,
        Prop::UnownedAckRejected,
        Prop::AcceptedNeverRedelivered,
        Prop::ArchivedNeverRedelivered,
        Prop::CountNeverDecreases,
        Prop::DeliveryLimitRespected,
        Prop::TerminalAbsorbing,
        Prop::SpsoMonotonic,
        Prop::SpsoNeverPassesNonTerminal,
        Prop::WindowLimitRespected,
        Prop::ReportedCountMatches,
        Prop::AckAtomic,
        Prop::SessionCloseReleases,
        Prop::AcquisitionLegal,
        Prop::MalformedAckRefused,
        Prop::RestartForgetsAcquisitions,
        Prop::RenewRefusedWhenDisabled,
    ];
    /// The state reachability properties.
    pub const REACH: [Prop; 4] = [
        Prop::ReachAcquired,
        Prop::ReachAcknowledged,
        Prop::ReachArchived,
        Prop::ReachRedeliverable,
    ];

    /// The stable kebab-case name.
    pub fn name(self) -> &'static str {
        match self {
            Prop::OneOwner => "one-owner",
            Prop::OnlyOwnerAcks => "only-owner-acks",
            Prop::UnownedAckRejected => "unowned-ack-rejected",
            Prop::AcceptedNeverRedelivered => "accepted-never-redelivered",
            Prop::ArchivedNeverRedelivered => "archived-never-redelivered",
            Prop::CountNeverDecreases => "count-never-decreases",
            Prop::DeliveryLimitRespected => "delivery-limit-respected",
            Prop::TerminalAbsorbing => "terminal-absorbing",
            Prop::SpsoMonotonic => "spso-monotonic",
            Prop::SpsoNeverPassesNonTerminal => "spso-never-passes-non-terminal",
            Prop::WindowLimitRespected => "window-limit-respected",
            Prop::ReportedCountMatches => "reported-count-matches",
            Prop::AckAtomic => "ack-atomic",
            Prop::SessionCloseReleases => "session-close-releases",
            Prop::AcquisitionLegal => "acquisition-legal",
            Prop::MalformedAckRefused => "malformed-ack-refused",
            Prop::RestartForgetsAcquisitions => "restart-forgets-acquisitions",
            Prop::RenewRefusedWhenDisabled => "renew-refused-when-disabled",
            Prop::ReachAcquired => "reach-acquired",
            Prop::ReachAcknowledged => "reach-acknowledged",
            Prop::ReachArchived => "reach-archived",
            Prop::ReachRedeliverable => "reach-redeliverable",
            Prop::EventuallyAllTerminal => "eventually-all-terminal",
        }
    }

    /// Its kind.
    pub fn kind(self) -> PropKind {
        if Prop::SAFETY.contains(&self) {
            PropKind::Always
        } else if self == Prop::EventuallyAllTerminal {
            PropKind::Liveness
        } else {
            PropKind::Sometimes
        }
    }

    /// The anomaly (DESIGN.md vocabulary) a violation corresponds to.
    pub fn anomaly(self) -> Option<Anomaly> {
        Some(match self {
            Prop::OneOwner => Anomaly::DoubleAcquire,
            Prop::OnlyOwnerAcks | Prop::UnownedAckRejected => Anomaly::AckAcceptedForUnownedRecord,
            Prop::AcceptedNeverRedelivered => Anomaly::RedeliveredAfterAccept,
            Prop::ArchivedNeverRedelivered => Anomaly::RedeliveredAfterArchive,
            Prop::CountNeverDecreases | Prop::ReportedCountMatches => {
                Anomaly::DeliveryCountMismatch
            }
            Prop::DeliveryLimitRespected => Anomaly::DeliveryLimitExceeded,
            Prop::TerminalAbsorbing => Anomaly::RedeliveredAfterAccept,
            Prop::SpsoMonotonic | Prop::SpsoNeverPassesNonTerminal => Anomaly::SpsoRegressed,
            Prop::AckAtomic => Anomaly::NonAtomicAck,
            Prop::SessionCloseReleases => Anomaly::MissingRedelivery,
            Prop::WindowLimitRespected => Anomaly::WindowLimitExceeded,
            Prop::AcquisitionLegal => Anomaly::UnexpectedAcquisition,
            Prop::MalformedAckRefused => Anomaly::WrongErrorCode,
            Prop::RestartForgetsAcquisitions => Anomaly::MissingRedelivery,
            Prop::RenewRefusedWhenDisabled => Anomaly::WrongErrorCode,
            Prop::EventuallyAllTerminal => Anomaly::LostRecord,
            _ => return None,
        })
    }

    fn bit(self) -> u32 {
        let i = Prop::SAFETY.iter().position(|p| *p == self).unwrap_or(0);
        1 << i
    }
}

/// What the model tracks: the partition (spec state), what each member holds, and ghost state.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct State {
    /// The share partition, as the spec holds it.
    pub part: SharePartition,
    /// Per member, the offsets it was given and has not acknowledged or dropped (bit mask).
    pub held: [u8; MAX_MEMBERS as usize],
    /// Restarts so far.
    pub restarts: u8,
    /// Ghost: offsets whose ACCEPT was answered with success.
    pub accepted: u8,
    /// Ghost: offsets answered with success on REJECT/GAP, or seen Archived.
    pub archived: u8,
    /// Ghost: deliveries per offset since the count was last persisted (saturating at limit + 1).
    pub deliveries: [u8; MAX_RECORDS as usize],
    /// Sticky bits of the safety properties violated on the way here ([`Prop::SAFETY`] order).
    pub violations: u32,
    /// Members in the run (constant; needed by [`Representative`]).
    pub members: u8,
}

impl std::hash::Hash for State {
    /// The partition, then everything else packed into two words: model checking hashes every
    /// generated state (and every representative).
    fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
        self.part.hash(h);
        let [h0, h1, h2] = self.held;
        h.write_u64(
            u64::from(h0)
                | u64::from(h1) << 8
                | u64::from(h2) << 16
                | u64::from(self.restarts) << 24
                | u64::from(self.accepted) << 32
                | u64::from(self.archived) << 40
                | u64::from(self.violations & 0xffff) << 48,
        );
        let mut d = u64::from(self.members) << 48 | u64::from(self.violations >> 16) << 56;
        for (i, c) in self.deliveries.iter().enumerate() {
            d |= u64::from(*c) << (8 * i);
        }
        h.write_u64(d);
    }
}

impl State {
    /// The initial state: nothing produced, nobody holds anything.
    pub fn initial(config: &Config) -> State {
        State {
            part: SharePartition::default(),
            held: [0; MAX_MEMBERS as usize],
            restarts: 0,
            accepted: 0,
            archived: 0,
            deliveries: [0; MAX_RECORDS as usize],
            violations: 0,
            members: config.members,
        }
    }

    /// Whether `prop`'s violation bit is set.
    pub fn violated(&self, prop: Prop) -> bool {
        self.violations & prop.bit() != 0
    }

    fn violate(&mut self, prop: Prop) {
        self.violations |= prop.bit();
    }

    /// Records whose state is `pred`, as a mask.
    fn mask_where(&self, pred: impl Fn(RecordState) -> bool) -> u8 {
        let mut mask = 0;
        for (o, r) in self.part.records() {
            if pred(r.state) {
                mask |= 1 << o;
            }
        }
        mask
    }

    /// The liveness goal: every record produced and terminal.
    pub fn all_done(&self, config: &Config) -> bool {
        self.part.log_end() == Offset::from(config.records) && self.part.all_terminal()
    }

    /// The record table, one line per offset (used in counterexamples).
    pub fn table(&self) -> Vec<String> {
        self.part
            .records()
            .map(|(o, r)| {
                let state = match r.state {
                    RecordState::Available
                        if r.delivery_count == 0 && o >= self.part.cache_end() =>
                    {
                        "Available (not fetched)".to_string()
                    }
                    RecordState::Available => "Available".to_string(),
                    RecordState::Acquired(m) => format!("Acquired by {}", (b'A' + m as u8) as char),
                    RecordState::Acknowledged => "Acknowledged".to_string(),
                    RecordState::Archived => "Archived".to_string(),
                };
                let holders: String = (0..self.members)
                    .filter(|m| self.held[*m as usize] & (1 << o) != 0)
                    .map(|m| (b'A' + m) as char)
                    .collect();
                let spso = if o == self.part.spso() {
                    "  <- SPSO"
                } else {
                    ""
                };
                let held = if holders.is_empty() {
                    String::new()
                } else {
                    format!(", held by {holders}")
                };
                format!(
                    "offset {o}: {state}, delivery count {}{held}{spso}",
                    r.delivery_count
                )
            })
            .collect()
    }
}

impl State {
    /// The renaming of members that sorts them by (records they hold the lock of, records they were
    /// given), or `None` when they are already in that order. Two members with equal keys hold no lock
    /// (a record has one owner) and were given the same records, so they are interchangeable: sorting
    /// by the key is a canonical form of the member permutations.
    fn canonical_renaming(&self) -> Option<[u8; MAX_MEMBERS as usize]> {
        let n = self.members.min(MAX_MEMBERS) as usize;
        if n < 2 {
            return None;
        }
        let mut locks = [0u8; MAX_MEMBERS as usize];
        for (o, r) in self.part.records() {
            if let RecordState::Acquired(m) = r.state {
                if let Some(l) = locks.get_mut(m as usize) {
                    *l |= 1 << o;
                }
            }
        }
        let mut order = [0u8, 1, 2];
        let key = |m: u8| (u16::from(locks[m as usize]) << 8) | u16::from(self.held[m as usize]);
        // Insertion sort of at most three members (stable, as the sort by (locks, held) was).
        for i in 1..n {
            let mut j = i;
            while j > 0 && key(order[j - 1]) > key(order[j]) {
                order.swap(j - 1, j);
                j -= 1;
            }
        }
        if order[..n].iter().enumerate().all(|(i, m)| i == *m as usize) {
            return None;
        }
        let mut renaming = [0u8, 1, 2];
        for (new, old) in order[..n].iter().enumerate() {
            renaming[*old as usize] = new as u8;
        }
        Some(renaming)
    }
}

impl Representative for State {
    /// Members are interchangeable: the representative renames them into canonical order.
    fn representative(&self) -> Self {
        let mut s = self.clone();
        if let Some(renaming) = self.canonical_renaming() {
            s.part
                .rename_members(|m| MemberIdx::from(renaming[m as usize]));
            for (m, &to) in renaming.iter().enumerate() {
                s.held[to as usize] = self.held[m];
            }
        }
        s
    }
}

/// Kinds of transition, for coverage: which spec rules a step exercised.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Transition {
    /// T1: a record acquired for the first time.
    Acquire,
    /// T2: an Available record acquired again.
    Redeliver,
    /// T3: ACCEPT.
    Accept,
    /// T4: RELEASE below the limit.
    Release,
    /// T5: REJECT.
    Reject,
    /// T6: GAP.
    Gap,
    /// T7: RENEW.
    Renew,
    /// T8: lock expiry below the limit.
    LockExpiry,
    /// T4'/T8'/T9: a release, expiry or session release at the limit archived the record.
    ArchiveAtLimit,
    /// T9: session close or disconnect released records.
    SessionRelease,
    /// T14: a restart forgot acquisitions.
    Restart,
    /// §5.3: an acknowledgement was refused with INVALID_RECORD_STATE.
    AckRefused,
}

impl Transition {
    /// Every kind.
    pub const ALL: [Transition; 12] = [
        Transition::Acquire,
        Transition::Redeliver,
        Transition::Accept,
        Transition::Release,
        Transition::Reject,
        Transition::Gap,
        Transition::Renew,
        Transition::LockExpiry,
        Transition::ArchiveAtLimit,
        Transition::SessionRelease,
        Transition::Restart,
        Transition::AckRefused,
    ];

    /// Stable kebab-case name.
    pub fn name(self) -> &'static str {
        match self {
            Transition::Acquire => "acquire",
            Transition::Redeliver => "redeliver",
            Transition::Accept => "accept",
            Transition::Release => "release",
            Transition::Reject => "reject",
            Transition::Gap => "gap",
            Transition::Renew => "renew",
            Transition::LockExpiry => "lock-expiry",
            Transition::ArchiveAtLimit => "archive-at-limit",
            Transition::SessionRelease => "session-release",
            Transition::Restart => "restart",
            Transition::AckRefused => "ack-refused",
        }
    }

    /// Whether this kind exists under `profile`.
    pub fn applies_to(self, profile: &Profile) -> bool {
        self != Transition::Renew || profile.renew
    }

    /// Whether this kind can happen in a model run of `config` (RENEW only where it is enabled).
    pub fn happens_in(self, config: &Config) -> bool {
        self.applies_to(&config.profile) && (self != Transition::Renew || config.renew_enabled)
    }

    fn bit(self) -> u16 {
        1 << (self as u16)
    }
}

/// What made a record change, for classifying the change as a [`Transition`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cause {
    /// A fetch acquired it.
    Acquire,
    /// An acknowledgement of this type was applied.
    Ack(AckType),
    /// Its acquisition lock expired.
    LockExpiry,
    /// Its holder's share session ended.
    SessionRelease,
    /// The broker restarted.
    Restart,
}

impl Transitions {
    /// The transition kinds a change made for `cause` exercises (one change can be, say, a session
    /// release that archived at the limit).
    pub fn of_change(cause: Cause, change: &Change) -> Transitions {
        let mut t = Transitions::default();
        let archived = change.to.state == RecordState::Archived;
        match cause {
            Cause::Acquire if change.from.delivery_count == 0 => t.add(Transition::Acquire),
            Cause::Acquire => t.add(Transition::Redeliver),
            Cause::Ack(AckType::Accept) => t.add(Transition::Accept),
            Cause::Ack(AckType::Reject) => t.add(Transition::Reject),
            Cause::Ack(AckType::Gap) => t.add(Transition::Gap),
            Cause::Ack(AckType::Renew) => t.add(Transition::Renew),
            Cause::Ack(AckType::Release) if archived => t.add(Transition::ArchiveAtLimit),
            Cause::Ack(AckType::Release) => t.add(Transition::Release),
            Cause::LockExpiry if archived => t.add(Transition::ArchiveAtLimit),
            Cause::LockExpiry => t.add(Transition::LockExpiry),
            Cause::SessionRelease => {
                t.add(Transition::SessionRelease);
                if archived {
                    t.add(Transition::ArchiveAtLimit);
                }
            }
            Cause::Restart => t.add(Transition::Restart),
        }
        t
    }

    /// Adds every kind of `other`.
    pub fn extend(&mut self, other: Transitions) {
        self.0 |= other.0;
    }

    /// The kinds in the set.
    pub fn iter(self) -> impl Iterator<Item = Transition> {
        Transition::ALL
            .into_iter()
            .filter(move |t| self.contains(*t))
    }
}

/// A set of [`Transition`] kinds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Transitions(pub u16);

impl Transitions {
    /// Adds one kind.
    pub fn add(&mut self, t: Transition) {
        self.0 |= t.bit();
    }
    /// Whether `t` is in the set.
    pub fn contains(self, t: Transition) -> bool {
        self.0 & t.bit() != 0
    }
}

/// The Stateright model: a configuration, and optionally a single property to check (Stateright's
/// checkers report *a* path to a violation, not the shortest; checking one property alone
/// breadth-first gives the shortest).
#[derive(Clone, Debug)]
pub struct ShareModel {
    /// Bounds and rules.
    pub config: Config,
    /// When set, `properties()` returns only this one.
    pub only: Option<Prop>,
    /// When set, `properties()` checks the safety properties as one conjunction, [`SAFETY`]
    /// (no violation bit set), instead of one by one: the checker looks every property up per state,
    /// so the fast first pass of [`crate::check::check`] asks once, and only a failing run is
    /// checked again property by property.
    pub safety_conjunction: bool,
    /// In the fast pass, the reachability properties already reached (bits in [`Prop::REACH`]
    /// order): a reached property answers "no" afterwards, so the checker keeps the first example
    /// instead of storing a fresh one (a path copy and a map insert) on every state where it holds.
    reached: Option<Arc<AtomicU8>>,
}

/// The name of the conjunction of the safety properties (see [`ShareModel::safety_conjunction`]).
pub const SAFETY: &str = "safety";

impl ShareModel {
    /// A model over `config`, all properties.
    pub fn new(config: Config) -> ShareModel {
        ShareModel {
            config,
            only: None,
            safety_conjunction: false,
            reached: None,
        }
    }

    /// The same model with the safety properties checked as one conjunction.
    pub fn safety_conjunction(&self) -> ShareModel {
        ShareModel {
            config: self.config,
            only: None,
            safety_conjunction: true,
            reached: Some(Arc::new(AtomicU8::new(0))),
        }
    }

    /// The same model restricted to one property.
    pub fn only(&self, prop: Prop) -> ShareModel {
        ShareModel {
            config: self.config,
            only: Some(prop),
            safety_conjunction: false,
            reached: None,
        }
    }

    /// Whether reachability property `prop` holds (as `holds` says), counting it only the first time
    /// in the fast pass (see [`ShareModel::safety_conjunction`]), where a reached property is not
    /// even evaluated again.
    fn reach(&self, prop: Prop, holds: impl FnOnce() -> bool) -> bool {
        let Some(reached) = &self.reached else {
            return holds();
        };
        let bit = 1u8 << Prop::REACH.iter().position(|p| *p == prop).unwrap_or(7);
        reached.load(Ordering::Relaxed) & bit == 0
            && holds()
            && reached.fetch_or(bit, Ordering::Relaxed) & bit == 0
    }

    fn fetch_sizes(&self) -> impl Iterator<Item = u8> {
        let all = self.config.records;
        [1u8, all]
            .into_iter()
            .enumerate()
            .filter(move |(i, k)| *i == 0 || *k != 1)
            .map(|(_, k)| k)
    }

    /// Applies `action` to `s`: runs the spec, then the monitors. Returns the next state and the
    /// transition kinds exercised, or `None` when the action does nothing.
    pub fn step(&self, s: &State, action: &Action) -> Option<(State, Transitions)> {
        let rules = self.config.rules();
        let mut n = s.clone();
        let mut kinds = Transitions::default();
        match *action {
            Action::Produce => {
                if s.part.log_end() >= Offset::from(self.config.records) {
                    return None;
                }
                n.part.produce(1);
            }
            Action::Fetch {
                member,
                max_records,
            } => {
                let offsets = s.part.next_acquisition(&rules, u32::from(max_records));
                if offsets.is_empty() {
                    return None;
                }
                let legal = offsets.len() <= usize::from(max_records)
                    && offsets.windows(2).all(|w| w[0] < w[1])
                    && offsets.iter().all(|&o| {
                        o >= s.part.spso()
                            && o < s.part.log_end()
                            && s.part.record(o).map(|r| r.state) == Some(RecordState::Available)
                    });
                let ranges = match n.part.acquire(&rules, MemberIdx::from(member), &offsets) {
                    Ok(ranges) => ranges,
                    Err(_) => {
                        // The leader chose records it may not acquire: the member is told nothing.
                        n = s.clone();
                        n.violate(Prop::AcquisitionLegal);
                        self.monitor_common(s, &mut n, action);
                        return Some((n, kinds));
                    }
                };
                if !legal {
                    n.violate(Prop::AcquisitionLegal);
                }
                let mut new_acquired = false;
                for &o in &offsets {
                    let before = s.part.record(o)?;
                    let bit = 1u8 << o;
                    if matches!(before.state, RecordState::Acquired(_)) {
                        n.violate(Prop::OneOwner);
                    }
                    if s.accepted & bit != 0 {
                        n.violate(Prop::AcceptedNeverRedelivered);
                    }
                    if s.archived & bit != 0 {
                        n.violate(Prop::ArchivedNeverRedelivered);
                    }
                    let reported = ranges
                        .iter()
                        .find(|r| (r.first_offset..=r.last_offset).contains(&o))
                        .map(|r| r.delivery_count);
                    if reported != n.part.record(o).map(|r| r.delivery_count) {
                        n.violate(Prop::ReportedCountMatches);
                    }
                    let d = &mut n.deliveries[o as usize];
                    *d = (*d + 1).min(self.config.delivery_limit + 1);
                    let over = if self.config.counts_every_delivery() {
                        *d > self.config.delivery_limit
                    } else {
                        reported.unwrap_or(0) > self.config.delivery_limit
                    };
                    if over {
                        n.violate(Prop::DeliveryLimitRespected);
                    }
                    if o >= s.part.cache_end() {
                        new_acquired = true;
                    }
                    kinds.add(if before.delivery_count == 0 {
                        Transition::Acquire
                    } else {
                        Transition::Redeliver
                    });
                    n.held[member as usize] |= bit;
                }
                let window_ok = match self.config.profile.window {
                    WindowRule::CapNewAcquisitions => {
                        n.part.window() <= u64::from(self.config.max_in_flight)
                    }
                    WindowRule::CheckBeforeFetch => {
                        s.part.window() < u64::from(self.config.max_in_flight)
                    }
                };
                if new_acquired && !window_ok {
                    n.violate(Prop::WindowLimitRespected);
                }
            }
            Action::Ack {
                member,
                offsets,
                ty,
            } => {
                let batches = batches_of(offsets, ty);
                let m = MemberIdx::from(member);
                match n
                    .part
                    .acknowledge(&rules, m, &batches, ty == AckType::Renew)
                {
                    Ok(_) => {
                        // A batch wholly below the SPSO is skipped with success, RENEW too
                        // (`SP@4.2:1004-1008, 2258`): only a renewal of a record in the share
                        // partition must be refused.
                        if ty == AckType::Renew
                            && !self.config.renew_enabled
                            && bits(offsets).any(|o| o >= s.part.spso())
                        {
                            n.violate(Prop::RenewRefusedWhenDisabled);
                        }
                        for o in bits(offsets) {
                            let before = s.part.record(o)?;
                            if o >= s.part.spso() && before.state != RecordState::Acquired(m) {
                                n.violate(Prop::UnownedAckRejected);
                            }
                        }
                        for (o, before) in s.part.records() {
                            let after = n.part.record(o)?;
                            if after != before && before.state != RecordState::Acquired(m) {
                                n.violate(Prop::OnlyOwnerAcks);
                            }
                            let in_request = offsets & (1 << o) != 0;
                            if in_request
                                && o >= s.part.spso()
                                && before.state == RecordState::Acquired(m)
                            {
                                kinds.add(match (ty, after.state) {
                                    (AckType::Accept, _) => Transition::Accept,
                                    (AckType::Reject, _) => Transition::Reject,
                                    (AckType::Gap, _) => Transition::Gap,
                                    (AckType::Renew, _) => Transition::Renew,
                                    (AckType::Release, RecordState::Archived) => {
                                        Transition::ArchiveAtLimit
                                    }
                                    (AckType::Release, _) => Transition::Release,
                                });
                            }
                        }
                        let answered = offsets & !low_mask(s.part.spso());
                        match ty {
                            AckType::Accept => n.accepted |= answered,
                            AckType::Reject | AckType::Gap => n.archived |= answered,
                            _ => {}
                        }
                        if ty != AckType::Renew {
                            n.held[member as usize] &= !offsets;
                        }
                    }
                    Err(_) => {
                        if n.part != s.part {
                            n.violate(Prop::AckAtomic);
                        }
                        kinds.add(Transition::AckRefused);
                    }
                }
            }
            Action::OddAck { member, shape } => {
                let held = s.held[member as usize];
                if held == 0 {
                    return None;
                }
                let o = Offset::from(held.trailing_zeros() as u8);
                let (batches, want, in_flight) = odd_ack(o, shape);
                let m = MemberIdx::from(member);
                if in_flight && s.part.record(o).map(|r| r.state) != Some(RecordState::Acquired(m))
                {
                    // A record the member no longer holds (after a restart, say): another check
                    // answers first.
                    return None;
                }
                let answer = n
                    .part
                    .acknowledge(&rules, MemberIdx::from(member), &batches, false);
                if answer.map_err(|e| e.code) == Err(want) && n.part == s.part {
                    // Refused as it must be, and nothing changed: no new state.
                    return None;
                }
                n = s.clone();
                n.violate(Prop::MalformedAckRefused);
            }
            Action::ExpireLock { offset } => {
                let change = n.part.expire_lock(&rules, Offset::from(offset))?;
                kinds.extend(Transitions::of_change(Cause::LockExpiry, &change));
            }
            Action::CloseSession { member } | Action::Disconnect { member } => {
                let m = MemberIdx::from(member);
                let changes = n.part.release_session(&rules, m);
                n.held[member as usize] = 0;
                if n.part
                    .records()
                    .any(|(_, r)| r.state == RecordState::Acquired(m))
                {
                    n.violate(Prop::SessionCloseReleases);
                }
                for c in &changes {
                    kinds.extend(Transitions::of_change(Cause::SessionRelease, c));
                }
                if !self.config.counts_every_delivery() {
                    for c in &changes {
                        n.deliveries[c.offset as usize] = c.to.delivery_count;
                    }
                }
            }
            Action::Crash { member } => {
                n.held[member as usize] = 0;
            }
            Action::Restart => {
                n.part.restart(&rules);
                n.restarts += 1;
                if n.part
                    .records()
                    .any(|(_, r)| matches!(r.state, RecordState::Acquired(_)))
                {
                    n.violate(Prop::RestartForgetsAcquisitions);
                }
                for (o, r) in n.part.records() {
                    n.deliveries[o as usize] = r.delivery_count;
                }
                kinds.add(Transition::Restart);
            }
        }
        self.monitor_common(s, &mut n, action);
        Some((n, kinds))
    }

    /// Monitors that apply to every step.
    fn monitor_common(&self, s: &State, n: &mut State, action: &Action) {
        let restart = matches!(action, Action::Restart);
        let session_release = matches!(
            action,
            Action::CloseSession { .. } | Action::Disconnect { .. }
        );
        let count_may_drop = restart || (session_release && !self.config.counts_every_delivery());
        for (o, before) in s.part.records() {
            let Some(after) = n.part.record(o) else {
                continue;
            };
            if before.state.is_terminal() && after != before {
                n.violate(Prop::TerminalAbsorbing);
            }
            if after.delivery_count < before.delivery_count && !count_may_drop {
                n.violate(Prop::CountNeverDecreases);
            }
            if after.state == RecordState::Archived {
                n.archived |= 1 << o;
            }
        }
        if n.part.spso() < s.part.spso() {
            n.violate(Prop::SpsoMonotonic);
        }
        if n.part
            .records()
            .any(|(o, r)| o < n.part.spso() && !r.state.is_terminal())
        {
            n.violate(Prop::SpsoNeverPassesNonTerminal);
        }
    }
}

/// The request shapes of [`Action::OddAck`], by name.
pub const MALFORMED_ACKS: [&str; 9] = [
    "FirstOffset > LastOffset",
    "a batch starting before the previous LastOffset",
    "no acknowledge types",
    "three types for a range of two",
    "type code 9",
    "type code -1",
    "RENEW without IsRenewAck",
    "two batches that touch at the record",
    "one batch from the record to past the share-partition end offset",
];

/// The batches of odd-ack `shape` around held offset `o`, the error they must get, and whether
/// that answer needs `o` to be in flight (the malformed shapes are refused before any record is
/// looked at).
fn odd_ack(o: Offset, shape: u8) -> (SmallVec<[AckBatch; 3]>, ErrorCode, bool) {
    let accept = AckType::Accept.code();
    let mut out: SmallVec<[AckBatch; 3]> = SmallVec::new();
    let with = |first: Offset, last: Offset, types: &[i8]| AckBatch {
        first_offset: first,
        last_offset: last,
        types: types.iter().copied().collect(),
    };
    match shape {
        0 => out.push(with(o + 1, o, &[accept])),
        1 => {
            out.push(with(o, o + 1, &[accept]));
            out.push(with(o, o, &[accept]));
        }
        2 => out.push(with(o, o, &[])),
        3 => out.push(with(o, o + 1, &[accept, accept, accept])),
        4 => out.push(with(o, o, &[9])),
        5 => out.push(with(o, o, &[-1])),
        6 => out.push(with(o, o, &[AckType::Renew.code()])),
        7 => {
            out.push(with(o, o, &[accept]));
            out.push(with(o, o, &[accept]));
            return (out, ErrorCode::INVALID_RECORD_STATE, true);
        }
        _ => {
            out.push(with(o, Offset::from(MAX_RECORDS) + 1, &[accept]));
            return (out, ErrorCode::INVALID_REQUEST, true);
        }
    }
    (out, ErrorCode::INVALID_REQUEST, false)
}

/// The set bits of a mask, as offsets.
fn bits(mask: u8) -> impl Iterator<Item = Offset> {
    (0..8).filter(move |o| mask & (1 << o) != 0)
}

fn low_mask(below: Offset) -> u8 {
    if below >= 8 {
        0xff
    } else {
        ((1u16 << below) - 1) as u8
    }
}

/// One acknowledgement batch per contiguous run of `mask`, all with type `ty`.
pub fn batches_of(mask: u8, ty: AckType) -> SmallVec<[AckBatch; 3]> {
    let mut out: SmallVec<[AckBatch; 3]> = SmallVec::new();
    let mut rest = mask;
    while rest != 0 {
        let first = rest.trailing_zeros();
        let len = (!(rest >> first)).trailing_zeros();
        let last = first + len - 1;
        out.push(AckBatch::new(Offset::from(first), Offset::from(last), ty));
        rest &= !(((1u16 << (last + 1)) - 1) as u8);
    }
    out
}

macro_rules! safety {
    ($prop:expr) => {
        Property::<ShareModel>::always($prop.name(), |_, s: &State| !s.violated($prop))
    };
}

impl Model for ShareModel {
    type State = State;
    type Action = Action;

    fn init_states(&self) -> Vec<State> {
        vec![State::initial(&self.config)]
    }

    fn actions(&self, s: &State, out: &mut Vec<Action>) {
        if s.violations != 0 {
            return;
        }
        let rules = self.config.rules();
        if s.part.log_end() < Offset::from(self.config.records) {
            out.push(Action::Produce);
        }
        // What a fetch acquires does not depend on who fetches; MaxRecords values that pick the
        // same records are one action.
        let mut sizes: [(u8, usize); 2] = [(0, 0); 2];
        let mut seen = 0usize;
        for max_records in self.fetch_sizes() {
            let picked = s
                .part
                .next_acquisition(&rules, u32::from(max_records))
                .len();
            if picked > 0 && (seen == 0 || sizes[seen - 1].1 != picked) {
                sizes[seen] = (max_records, picked);
                seen += 1;
            }
        }
        for member in 0..self.config.members {
            for &(max_records, _) in &sizes[..seen] {
                out.push(Action::Fetch {
                    member,
                    max_records,
                });
            }
            let held = s.held[member as usize];
            if held != 0 {
                // Every type on each single record; GAP and RENEW (a duplicate transition and a
                // no-op on state) only on the lowest; ACCEPT and RELEASE of everything held, which
                // is where several batches, stale records and atomicity meet.
                let lowest = held & held.wrapping_neg();
                for offsets in bits(held).map(|o| 1u8 << o) {
                    for ty in [AckType::Accept, AckType::Release, AckType::Reject] {
                        out.push(Action::Ack {
                            member,
                            offsets,
                            ty,
                        });
                    }
                }
                out.push(Action::Ack {
                    member,
                    offsets: lowest,
                    ty: AckType::Gap,
                });
                if self.config.profile.renew {
                    out.push(Action::Ack {
                        member,
                        offsets: lowest,
                        ty: AckType::Renew,
                    });
                }
                for shape in 0..MALFORMED_ACKS.len() as u8 {
                    out.push(Action::OddAck { member, shape });
                }
                if held.count_ones() > 1 {
                    for ty in [AckType::Accept, AckType::Release] {
                        out.push(Action::Ack {
                            member,
                            offsets: held,
                            ty,
                        });
                    }
                }
            }
            // A member ends a session it knows about; after a silent crash it holds nothing and
            // its orphaned records wait for lock expiry (or a later session of the same member id).
            if held != 0 {
                out.push(Action::CloseSession { member });
                out.push(Action::Disconnect { member });
                out.push(Action::Crash { member });
            }
        }
        for (o, _) in s.part.records() {
            if s.part.lock_can_expire(&rules, o) {
                out.push(Action::ExpireLock { offset: o as u8 });
            }
        }
        if s.restarts < self.config.restarts {
            out.push(Action::Restart);
        }
    }

    fn next_state(&self, s: &State, action: Action) -> Option<State> {
        self.step(s, &action).map(|(n, _)| n)
    }

    fn properties(&self) -> Vec<Property<Self>> {
        let mut all = vec![
            safety!(Prop::OneOwner),
            safety!(Prop::OnlyOwnerAcks),
            safety!(Prop::UnownedAckRejected),
            safety!(Prop::AcceptedNeverRedelivered),
            safety!(Prop::ArchivedNeverRedelivered),
            safety!(Prop::CountNeverDecreases),
            safety!(Prop::DeliveryLimitRespected),
            safety!(Prop::TerminalAbsorbing),
            safety!(Prop::SpsoMonotonic),
            safety!(Prop::SpsoNeverPassesNonTerminal),
            safety!(Prop::WindowLimitRespected),
            safety!(Prop::ReportedCountMatches),
            safety!(Prop::AckAtomic),
            safety!(Prop::SessionCloseReleases),
            safety!(Prop::AcquisitionLegal),
            safety!(Prop::MalformedAckRefused),
            safety!(Prop::RestartForgetsAcquisitions),
            safety!(Prop::RenewRefusedWhenDisabled),
            Property::<ShareModel>::sometimes(Prop::ReachAcquired.name(), |m, s: &State| {
                m.reach(Prop::ReachAcquired, || {
                    s.mask_where(|r| matches!(r, RecordState::Acquired(_))) != 0
                })
            }),
            Property::<ShareModel>::sometimes(Prop::ReachAcknowledged.name(), |m, s: &State| {
                m.reach(Prop::ReachAcknowledged, || {
                    s.mask_where(|r| r == RecordState::Acknowledged) != 0
                })
            }),
            Property::<ShareModel>::sometimes(Prop::ReachArchived.name(), |m, s: &State| {
                m.reach(Prop::ReachArchived, || {
                    s.mask_where(|r| r == RecordState::Archived) != 0
                })
            }),
            Property::<ShareModel>::sometimes(Prop::ReachRedeliverable.name(), |m, s: &State| {
                m.reach(Prop::ReachRedeliverable, || {
                    s.part
                        .records()
                        .any(|(_, r)| r.state == RecordState::Available && r.delivery_count > 0)
                })
            }),
        ];
        if self.safety_conjunction {
            all.retain(|p| p.expectation != Expectation::Always);
            all.insert(
                0,
                Property::<ShareModel>::always(SAFETY, |_, s: &State| s.violations == 0),
            );
        }
        match self.only {
            None => all,
            Some(p) => all.into_iter().filter(|q| q.name == p.name()).collect(),
        }
    }

    fn format_action(&self, action: &Action) -> String {
        action.to_string()
    }

    fn format_step(&self, last_state: &State, action: Action) -> Option<String> {
        self.next_state(last_state, action)
            .map(|s| s.table().join("\n"))
    }
}

#[cfg(test)]
mod tests;
