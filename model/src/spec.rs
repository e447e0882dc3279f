//! The executable semantics of one share partition of one share group (KIP-932).
//!
//! This module is *the* written-down meaning of KIP-932 record states in sharecheck. The model
//! checker explores it, the reference broker runs it, the conformance oracle judges real brokers with
//! it and the fuzzer compares against it: no other code re-implements these rules.
//!
//! Granularity is one transition per wire request or broker timer event, as a partition leader sees
//! them (docs/semantics.md §1.3, §13):
//!
//! | Operation | Wire / event | Rules |
//! |---|---|---|
//! | [`SharePartition::produce`] | Produce | new offsets join the log, not the cache |
//! | [`SharePartition::acquire`] | ShareFetch (acquisition part) | T1, T2, window limit §4.2 |
//! | [`SharePartition::acknowledge`] | ShareAcknowledge / piggy-backed acks | T3–T7, §5.3 validation, atomicity |
//! | [`SharePartition::expire_lock`] | acquisition-lock timer | T8, T8' |
//! | [`SharePartition::release_session`] | ShareFetch/ShareAcknowledge epoch −1, TCP close | T9 |
//! | [`SharePartition::restart`] | broker restart / leader failover | T14, §10.2 |
//!
//! Every record is Available, Acquired (by one member), Acknowledged or Archived (§1.1). The
//! delivery count is incremented on acquisition only, the first delivery being 1 (§2.1). A record
//! released, expired or session-released at the delivery limit is Archived instead of Available (§1.2
//! side rule, `IFS.tryUpdateState@4.2:150-176`). Acknowledged and Archived are terminal.
//!
//! Conventions: offsets are absolute log offsets (topics start at 0); members are small indices the
//! caller maps to member ids; citations are `path@release:line` as in docs/semantics.md §0.
//! There is no clock here: lock expiry is an explicit event, and deadlines are the caller's business.

use crate::mutant::Mutant;
use crate::profile::{Profile, SessionRelease, WindowRule};
use serde::Serialize;
use smallvec::SmallVec;

pub use crate::vocab::{AckBatch, AckType, ErrorCode, Offset};

/// A share-group member, as an index into a member table the caller keeps.
pub type MemberIdx = u16;

/// The state of one record of a share partition (docs/semantics.md §1.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case", tag = "state", content = "member")]
pub enum RecordState {
    /// May be acquired by any member.
    Available,
    /// Locked by one member until it acknowledges, its lock expires or its session ends.
    Acquired(MemberIdx),
    /// Processed (ACCEPT). Terminal.
    Acknowledged,
    /// Will never be delivered again (REJECT, GAP, delivery limit reached). Terminal.
    Archived,
}

impl RecordState {
    /// Acknowledged and Archived are terminal: nothing leaves them (`RecordState.validateTransition@4.2`).
    pub fn is_terminal(self) -> bool {
        matches!(self, RecordState::Acknowledged | RecordState::Archived)
    }

    /// The owner, when Acquired.
    pub fn owner(self) -> Option<MemberIdx> {
        match self {
            RecordState::Acquired(m) => Some(m),
            _ => None,
        }
    }
}

/// One record's share state and delivery count.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct InFlight {
    /// Its state.
    pub state: RecordState,
    /// Times delivered (acquired) since it was last persisted with a count; 0 = never delivered.
    pub delivery_count: u8,
}

impl InFlight {
    /// A record in the log that has never been delivered.
    pub const NEW: InFlight = InFlight {
        state: RecordState::Available,
        delivery_count: 0,
    };

    /// An injective packing into 32 bits (state, member, count), so hashing a record is one write:
    /// model checking hashes every generated state.
    fn packed(self) -> u32 {
        let (state, member) = match self.state {
            RecordState::Available => (0u32, 0u32),
            RecordState::Acquired(m) => (1, u32::from(m)),
            RecordState::Acknowledged => (2, 0),
            RecordState::Archived => (3, 0),
        };
        state | member << 2 | u32::from(self.delivery_count) << 24
    }
}

impl std::hash::Hash for InFlight {
    fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
        h.write_u32(self.packed());
    }
}

/// KIP-1222: a v2 ShareFetch with `IsRenewAck` only renews and acknowledges; any fetch limit but 0
/// (MaxBytes, MinBytes, MaxRecords, MaxWaitMs) fails the whole request with INVALID_REQUEST
/// (`KA@4.2:3204-3229`). `None` when the request may go on.
pub fn renewing_fetch_error(
    is_renew_ack: bool,
    (max_bytes, min_bytes, max_records, max_wait_ms): (i32, i32, i32, i32),
) -> Option<ErrorCode> {
    (is_renew_ack && (max_bytes != 0 || min_bytes != 0 || max_records != 0 || max_wait_ms != 0))
        .then_some(ErrorCode::INVALID_REQUEST)
}

/// KIP-1206: a v2 ShareFetch in record-limit acquire mode acquires at most MaxRecords records over
/// the whole response (`SP@4.2:1839-1868`); batch-optimized mode (and v1) may exceed it to keep
/// log batches whole.
pub fn record_limit_exceeded(record_limit: bool, max_records: u32, acquired: usize) -> bool {
    record_limit && acquired > max_records as usize
}

/// Why an archived record goes to the group's dead-letter queue (KIP-1191; Kafka 4.4 with
/// `share.version=2` and a group `errors.deadletterqueue.topic.name`;
/// `DLQ/ShareGroupDLQManager.java@4.4:33-34`, docs/semantics.md §19).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum DlqCause {
    /// The client REJECTed it.
    ClientReject,
    /// It reached the delivery limit: released, its lock expired or its session ended there.
    DeliveryCountExceeded,
}

impl DlqCause {
    /// The `__dlq.errors.message` header Kafka writes.
    pub fn message(self) -> &'static str {
        match self {
            DlqCause::ClientReject => "Offset rejected by client.",
            DlqCause::DeliveryCountExceeded => "Offset delivery count exceeded the threshold.",
        }
    }

    /// The cause a `__dlq.errors.message` names.
    pub fn from_message(m: &str) -> Option<DlqCause> {
        [DlqCause::ClientReject, DlqCause::DeliveryCountExceeded]
            .into_iter()
            .find(|c| c.message() == m)
    }
}

/// Whether `change` sends its record to the dead-letter queue, and why: an acquired record
/// archived by REJECT (`by_ack` Reject), or by a release, lock expiry or session release at the
/// delivery limit (`by_ack` Release, or `None` for a timer or a session end). GAP, ACCEPT and every
/// archive of a record that was not acquired (log-start movement, compaction) do not
/// (`SP.recordStateWithDlq@4.4:3349-3354`, `InFlightState.tryUpdateState@4.4:163-164`).
pub fn dlq_cause(by_ack: Option<AckType>, change: &Change) -> Option<DlqCause> {
    if change.to.state != RecordState::Archived
        || !matches!(change.from.state, RecordState::Acquired(_))
    {
        return None;
    }
    match by_ack {
        Some(AckType::Reject) => Some(DlqCause::ClientReject),
        Some(AckType::Release) | None => Some(DlqCause::DeliveryCountExceeded),
        Some(AckType::Gap | AckType::Accept | AckType::Renew) => None,
    }
}

/// A group-level share limit and the values every broker must refuse or accept for it
/// (IncrementalAlterConfigs on the GROUP resource; out of range is INVALID_CONFIG, docs/semantics.md
/// §18.3). The floor is `GroupConfig`'s ConfigDef `atLeast` (`GroupConfig.java@4.3.1:187-204`); the
/// ceiling is the largest value the broker's own max config may take, and `always_valid` a value
/// inside every [min, max] the broker's min and max configs allow
/// (`ShareGroupConfig.java@4.3.1:86-94`; 4.2 has only the lock duration, with the same bounds,
/// `ShareGroupConfig.java@4.2.1:78-80`). Between them the answer depends on the broker's settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GroupLimit {
    /// The group config.
    pub config: &'static str,
    /// Below this: refused by every broker.
    pub floor: i64,
    /// Above this: refused by every broker.
    pub ceiling: i64,
    /// Accepted by every broker that has the config.
    pub always_valid: i64,
    /// Only from Kafka 4.3 (KIP-1240); before, the name itself is unknown (also INVALID_CONFIG).
    pub since_4_3: bool,
}

/// The group-level limits (KIP-932 and KIP-1240).
pub const GROUP_LIMITS: [GroupLimit; 3] = [
    GroupLimit {
        config: "share.record.lock.duration.ms",
        floor: 1000,
        ceiling: 3_600_000,
        always_valid: 30_000,
        since_4_3: false,
    },
    GroupLimit {
        config: "share.delivery.count.limit",
        floor: 2,
        ceiling: 25,
        always_valid: 5,
        since_4_3: true,
    },
    GroupLimit {
        config: "share.partition.max.record.locks",
        floor: 100,
        ceiling: 10_000,
        always_valid: 2000,
        since_4_3: true,
    },
];

/// What a broker must answer to setting a group limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LimitAnswer {
    /// INVALID_CONFIG.
    Refuse,
    /// Success.
    Accept,
    /// Either: it depends on the broker's min/max settings.
    Either,
}

/// The answer to setting group limit `config` to `value`; `None` when `config` is not a limit.
pub fn group_limit_answer(config: &str, value: i64) -> Option<LimitAnswer> {
    let l = GROUP_LIMITS.iter().find(|l| l.config == config)?;
    Some(if value < l.floor || value > l.ceiling {
        LimitAnswer::Refuse
    } else if value == l.always_valid {
        LimitAnswer::Accept
    } else {
        LimitAnswer::Either
    })
}

/// Configuration that shapes the rules for one share partition.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct Rules {
    /// The release line whose rules apply.
    pub profile: Profile,
    /// `group.share.delivery.count.limit` (broker, default 5, range [2, 10]; group-level from 4.3).
    pub delivery_limit: u8,
    /// `group.share.partition.max.record.locks`: the in-flight window limit (default 2000).
    pub max_in_flight: u32,
    /// A planted bug, or `None` for the correct rules.
    pub mutant: Option<Mutant>,
    /// `share.renew.acknowledge.enable` (group config, 4.3+, default true): false refuses RENEW with
    /// INVALID_RECORD_STATE (docs/semantics.md §16).
    pub renew_enabled: bool,
}

impl Rules {
    /// Kafka's defaults under a profile: delivery limit 5, window 2000.
    pub fn kafka_defaults(profile: Profile) -> Rules {
        Rules {
            profile,
            delivery_limit: 5,
            max_in_flight: 2000,
            mutant: None,
            renew_enabled: true,
        }
    }

    fn bug(&self, m: Mutant) -> bool {
        self.mutant == Some(m)
    }
}

/// A contiguous run of offsets acquired with one delivery count, as reported in a ShareFetch
/// response's `AcquiredRecords`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct AcquiredRange {
    /// First offset, inclusive.
    pub first_offset: Offset,
    /// Last offset, inclusive.
    pub last_offset: Offset,
    /// The delivery count the client is told (post-increment, first delivery = 1).
    pub delivery_count: u8,
}

/// Why an acknowledgement request failed, and with which code (docs/semantics.md §5.3).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AckError {
    /// The per-partition error code the broker must answer.
    pub code: ErrorCode,
    /// Index of the batch that failed.
    pub batch: usize,
    /// The offset that failed the state check, when there is one.
    pub offset: Option<Offset>,
    /// Human-readable reason.
    pub reason: &'static str,
}

/// Why a proposed acquisition is not allowed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AcquireError {
    /// The offending offset.
    pub offset: Offset,
    /// Human-readable reason.
    pub reason: &'static str,
}

/// What a transition did to one record: the client-visible effect the oracle, the broker and the
/// model all reason about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct Change {
    /// The record.
    pub offset: Offset,
    /// Before.
    pub from: InFlight,
    /// After.
    pub to: InFlight,
}

/// How `share.auto.offset.reset` places the initial SPSO (docs/semantics.md §4.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum AutoOffsetReset {
    /// Start at the log start offset.
    Earliest,
    /// Start at the high watermark at the partition's first fetch on its leader (the default).
    Latest,
}

impl AutoOffsetReset {
    /// The SPSO of a share partition initialised with this policy: applied when the share partition
    /// is first loaded with no persisted start offset, i.e. at the first ShareFetch, not at join
    /// (`SP.startOffsetDuringInitialization@4.2:3012-3032`).
    pub fn initial_spso(self, log_start: Offset, high_watermark: Offset) -> Offset {
        match self {
            AutoOffsetReset::Earliest => log_start,
            AutoOffsetReset::Latest => high_watermark,
        }
    }
}

/// The in-memory state of one share partition on its leader, with what is persisted implied:
/// Acknowledged/Archived and Available counts are written when they change; acquisitions never are
/// (docs/semantics.md §10.1).
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct SharePartition {
    /// Share-partition start offset: every offset below it is terminal.
    spso: Offset,
    /// One past the last offset in the cache (SPEO + 1); equals `spso` when the cache is empty.
    cache_end: Offset,
    /// Every record of the log, indexed by offset.
    records: SmallVec<[InFlight; 6]>,
}

impl Clone for SharePartition {
    /// A copy of the records' slice (the derived clone extends item by item; model checking clones
    /// every generated state).
    fn clone(&self) -> Self {
        SharePartition {
            spso: self.spso,
            cache_end: self.cache_end,
            records: SmallVec::from_slice(&self.records),
        }
    }
}

impl std::hash::Hash for SharePartition {
    /// Two records per word: model checking hashes every generated state.
    fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
        // SPSO, cache end and length in one word: injective while each is below 2^21, as in every
        // model configuration (a hash needs no more).
        h.write_u64(
            (self.spso as u64)
                ^ ((self.cache_end as u64) << 21)
                ^ ((self.records.len() as u64) << 42),
        );
        let mut pairs = self.records.chunks_exact(2);
        for pair in &mut pairs {
            h.write_u64(u64::from(pair[0].packed()) | u64::from(pair[1].packed()) << 32);
        }
        if let [last] = pairs.remainder() {
            h.write_u32(last.packed());
        }
    }
}

impl Default for SharePartition {
    fn default() -> Self {
        SharePartition::new(0)
    }
}

impl SharePartition {
    /// An empty share partition whose SPSO is `start` (see [`AutoOffsetReset::initial_spso`]).
    pub fn new(start: Offset) -> SharePartition {
        let mut p = SharePartition {
            spso: start,
            cache_end: start,
            records: SmallVec::new(),
        };
        p.extend_log_to(start);
        p
    }

    /// A share partition initialised over an existing log of `log_end` records.
    pub fn initialized(reset: AutoOffsetReset, log_end: Offset) -> SharePartition {
        let mut p = SharePartition::new(reset.initial_spso(0, log_end));
        p.extend_log_to(log_end);
        p
    }

    fn extend_log_to(&mut self, end: Offset) {
        while (self.records.len() as Offset) < end {
            let o = self.records.len() as Offset;
            // Offsets below the SPSO are outside the share partition: terminal for every purpose.
            let rec = if o < self.spso {
                InFlight {
                    state: RecordState::Archived,
                    delivery_count: 0,
                }
            } else {
                InFlight::NEW
            };
            self.records.push(rec);
        }
    }

    // ----------------------------------------------------------------------------------------
    // Observation

    /// The share-partition start offset (SPSO).
    pub fn spso(&self) -> Offset {
        self.spso
    }

    /// The share-partition end offset (SPEO): the last offset in the cache, if the cache is non-empty.
    pub fn speo(&self) -> Option<Offset> {
        (self.cache_end > self.spso).then_some(self.cache_end - 1)
    }

    /// One past the last offset in the cache.
    pub fn cache_end(&self) -> Offset {
        self.cache_end
    }

    /// The log end offset (high watermark): the next offset Produce assigns.
    pub fn log_end(&self) -> Offset {
        self.records.len() as Offset
    }

    /// The record at `offset`, if the log has it.
    pub fn record(&self, offset: Offset) -> Option<InFlight> {
        usize::try_from(offset)
            .ok()
            .and_then(|i| self.records.get(i).copied())
    }

    /// Every record of the log with its offset.
    pub fn records(&self) -> impl Iterator<Item = (Offset, InFlight)> + '_ {
        self.records
            .iter()
            .enumerate()
            .map(|(i, r)| (i as Offset, *r))
    }

    /// The in-flight window `SPEO − SPSO + 1` (0 when the cache is empty). Acknowledged and archived
    /// offsets inside the window count (`SP.numInFlightRecords@4.2:1599`).
    pub fn window(&self) -> u64 {
        (self.cache_end - self.spso) as u64
    }

    /// Share-group lag as Kafka defines it (KIP-1226): the partition end offset − SPSO − the records
    /// at or above the SPSO that are already terminal (the persisted "delivery complete count",
    /// `GroupCoordinatorService.describeShareGroupOffsets@4.2.1:1943-1947`), i.e. the records from
    /// the SPSO on that are not yet Acknowledged or Archived.
    pub fn lag(&self) -> i64 {
        let terminal = (self.spso..self.cache_end)
            .filter(|o| self.at(*o).state.is_terminal())
            .count() as i64;
        self.log_end() - self.spso - terminal
    }

    /// AlterShareGroupOffsets answered with success (the group had no members): the share
    /// coordinator writes a fresh snapshot with SPSO `start` and no state batches, and the leader
    /// loads it (`GroupMetadataManager.alterShareGroupOffsets` → `persister.initializeState`,
    /// docs/semantics.md §18.1). Records from `start` are Available with count 0 — accepted ones too
    /// — and records below it are outside the share partition for good. `start` must not be beyond
    /// the log end (Kafka's behaviour there is not established).
    pub fn altered(&self, start: Offset) -> SharePartition {
        let end = self.log_end();
        let start = start.clamp(0, end);
        let mut p = SharePartition::new(start);
        p.extend_log_to(end);
        p
    }

    /// Whether every record of the log is terminal.
    pub fn all_terminal(&self) -> bool {
        self.records.iter().all(|r| r.state.is_terminal())
    }

    /// Maps every member index through `rename` (for symmetry reduction; not a transition).
    pub fn rename_members(&mut self, rename: impl Fn(MemberIdx) -> MemberIdx) {
        for r in self.records.iter_mut() {
            if let RecordState::Acquired(m) = r.state {
                r.state = RecordState::Acquired(rename(m));
            }
        }
    }

    /// Overwrites one record, bypassing every rule. Not a transition: an observer (the conformance
    /// oracle) uses it to resynchronise with a broker that has just broken a rule, so that later
    /// steps are still judged. The cache grows to include `offset` if needed; an offset outside
    /// the log is ignored (the log is what was produced, whatever a broker claims).
    pub fn force_record(&mut self, offset: Offset, state: RecordState, delivery_count: u8) {
        if offset < 0 || offset >= self.log_end() {
            return;
        }
        self.extend_log_to(offset + 1);
        self.set(
            offset,
            InFlight {
                state,
                delivery_count,
            },
        );
        if offset >= self.cache_end && !(state == RecordState::Available && delivery_count == 0) {
            self.cache_end = offset + 1;
        }
        if offset >= self.spso {
            return;
        }
        // A non-terminal record below the SPSO: the broker evidently kept it in the window.
        if !state.is_terminal() {
            self.spso = offset;
        }
    }

    fn at(&self, offset: Offset) -> InFlight {
        self.records[offset as usize]
    }

    /// Sets `offset` from `from` to `to` and notes the change.
    fn apply(
        &mut self,
        offset: Offset,
        from: InFlight,
        to: InFlight,
        changes: &mut SmallVec<[Change; 4]>,
    ) {
        self.set(offset, to);
        changes.push(Change { offset, from, to });
    }

    fn set(&mut self, offset: Offset, rec: InFlight) {
        self.records[offset as usize] = rec;
    }

    // ----------------------------------------------------------------------------------------
    // Produce

    /// Appends `n` records to the log. They are not in the cache until first acquired.
    pub fn produce(&mut self, n: usize) {
        let end = self.log_end() + n as Offset;
        self.extend_log_to(end);
    }

    // ----------------------------------------------------------------------------------------
    // Acquisition (ShareFetch)

    /// Whether `offset` may be acquired now, ignoring the window limit: it is in the log, at or
    /// above SPSO, and Available (`RecordState.validateTransition@4.2`: only AVAILABLE→ACQUIRED).
    pub fn acquirable(&self, rules: &Rules, offset: Offset) -> bool {
        match self.record(offset) {
            Some(r) if offset >= self.spso => match r.state {
                RecordState::Available => true,
                RecordState::Acquired(_) => rules.bug(Mutant::DoubleAcquire),
                _ => false,
            },
            _ => false,
        }
    }

    /// How many offsets past the cache a fetch may acquire now (docs/semantics.md §4.2).
    ///
    /// 4.2+: new acquisitions are capped at `limit − window` (`SP.lastOffsetAndMaxRecordsToAcquire@4.2:1676`).
    /// 4.1: if the window is below the limit before the fetch, any number (`SP.canAcquireRecords@4.1`).
    pub fn new_acquisition_allowance(&self, rules: &Rules) -> u64 {
        let unfetched = (self.log_end() - self.cache_end) as u64;
        if rules.bug(Mutant::WindowOvershoot) {
            return unfetched;
        }
        let limit = u64::from(rules.max_in_flight);
        let window = self.window();
        let allowance = match rules.profile.window {
            WindowRule::CapNewAcquisitions => limit.saturating_sub(window),
            WindowRule::CheckBeforeFetch => {
                if window < limit {
                    unfetched
                } else {
                    0
                }
            }
        };
        allowance.min(unfetched)
    }

    /// The offsets a Kafka leader acquires for a fetch of at most `max_records` records: the
    /// Available records of the cache in offset order from `nextFetchOffset` (the first Available
    /// offset, `SP.nextFetchOffset@4.2:570-700`), then new offsets from the cache end within the
    /// window allowance. MaxRecords is treated as exact here (one record per log batch).
    ///
    /// Other choices are legal too (a broker may split or throttle, §2.4); [`SharePartition::acquire`]
    /// is what decides legality.
    pub fn next_acquisition(&self, rules: &Rules, max_records: u32) -> SmallVec<[Offset; 6]> {
        let mut out = SmallVec::new();
        let max = max_records as usize;
        let cache_from = if rules.bug(Mutant::StaleFetchOffset) {
            self.cache_end
        } else {
            self.spso
        };
        let mut o = cache_from;
        while o < self.cache_end && out.len() < max {
            if self.acquirable(rules, o) {
                out.push(o);
            }
            o += 1;
        }
        let allowance = self.new_acquisition_allowance(rules);
        let mut o = self.cache_end;
        while out.len() < max && ((o - self.cache_end) as u64) < allowance {
            out.push(o);
            o += 1;
        }
        out
    }

    /// Acquires `offsets` (ascending, no duplicates) for `member` and returns the AcquiredRecords
    /// ranges the member must be told.
    ///
    /// Legal when every offset is acquirable and the offsets past the cache are a prefix of the
    /// unfetched log within the window allowance (the leader reads the log contiguously). Each record
    /// becomes Acquired by `member` and its delivery count goes up by one: new records start at 1
    /// (T1, `SP.createBatches@4.2:1794-1880`), re-acquired ones get `count + 1` (T2, `SP@4.2:930,1977`).
    pub fn acquire(
        &mut self,
        rules: &Rules,
        member: MemberIdx,
        offsets: &[Offset],
    ) -> Result<SmallVec<[AcquiredRange; 2]>, AcquireError> {
        let mut prev: Option<Offset> = None;
        let mut next_new = self.cache_end;
        for &o in offsets {
            if prev.is_some_and(|p| o <= p) {
                return Err(AcquireError {
                    offset: o,
                    reason: "offsets not ascending",
                });
            }
            prev = Some(o);
            if !self.acquirable(rules, o) {
                let reason = match self.record(o) {
                    None => "beyond the log end",
                    Some(_) if o < self.spso => "below the SPSO",
                    Some(r) => match r.state {
                        RecordState::Acquired(_) => "already acquired",
                        RecordState::Acknowledged => "already acknowledged",
                        RecordState::Archived => "archived",
                        RecordState::Available => "not acquirable",
                    },
                };
                return Err(AcquireError { offset: o, reason });
            }
            if o >= self.cache_end {
                if o != next_new {
                    return Err(AcquireError {
                        offset: o,
                        reason: "skips unfetched offsets",
                    });
                }
                next_new += 1;
            }
        }
        if (next_new - self.cache_end) as u64 > self.new_acquisition_allowance(rules) {
            return Err(AcquireError {
                offset: next_new - 1,
                reason: "exceeds the in-flight window limit",
            });
        }
        let mut ranges: SmallVec<[AcquiredRange; 2]> = SmallVec::new();
        for &o in offsets {
            let mut rec = self.at(o);
            let increment = rec.delivery_count == 0 || !rules.bug(Mutant::NoCountIncrement);
            if increment {
                rec.delivery_count = rec.delivery_count.saturating_add(1);
            }
            rec.state = RecordState::Acquired(member);
            self.set(o, rec);
            let reported = if rules.bug(Mutant::ReportedCountOffByOne) {
                rec.delivery_count.saturating_sub(1)
            } else {
                rec.delivery_count
            };
            match ranges.last_mut() {
                Some(r) if r.last_offset + 1 == o && r.delivery_count == reported => {
                    r.last_offset = o
                }
                _ => ranges.push(AcquiredRange {
                    first_offset: o,
                    last_offset: o,
                    delivery_count: reported,
                }),
            }
        }
        self.cache_end = self.cache_end.max(next_new);
        Ok(ranges)
    }

    // ----------------------------------------------------------------------------------------
    // Release rules shared by RELEASE, lock expiry and session release

    /// Where a released record goes: Available, or Archived when its count has reached the limit
    /// (`IFS.tryUpdateState@4.2:150-176`, rules T4', T8', T9).
    fn released(rules: &Rules, rec: InFlight) -> InFlight {
        let state = if rec.delivery_count >= rules.delivery_limit {
            RecordState::Archived
        } else {
            RecordState::Available
        };
        InFlight { state, ..rec }
    }

    /// Moves the SPSO past the longest terminal prefix of the cache (T15,
    /// `SP.maybeUpdateCachedStateAndOffsets@4.2:2539-2622`); when the whole cache is terminal it is
    /// emptied and SPSO = SPEO + 1. SPSO never passes a record that is not terminal.
    fn advance_spso(&mut self, rules: &Rules) {
        while self.spso < self.cache_end {
            let here = self.at(self.spso).state;
            // The planted bug passes an Acquired record when a terminal one follows it in the cache.
            let skipped = rules.bug(Mutant::SpsoSkipsAcquired)
                && matches!(here, RecordState::Acquired(_))
                && self.spso + 1 < self.cache_end
                && self.at(self.spso + 1).state.is_terminal();
            if !(here.is_terminal() || skipped) {
                break;
            }
            self.spso += 1;
        }
    }

    // ----------------------------------------------------------------------------------------
    // Acknowledgement (ShareAcknowledge, or acks piggy-backed on ShareFetch)

    /// Request-level validation of acknowledgement batches (`KA.validateAcknowledgementBatches@4.2:4059-4103`),
    /// all INVALID_REQUEST (42) for the whole partition: `FirstOffset > LastOffset`; a batch starting
    /// before the previous batch's `LastOffset` (starting exactly at it passes); no types; several types
    /// whose count is not the range length; a type code out of range for the version; RENEW (4) in a
    /// request without `IsRenewAck`.
    pub fn validate_ack_batches(
        rules: &Rules,
        batches: &[AckBatch],
        is_renew_ack: bool,
    ) -> Result<(), AckError> {
        let invalid = |batch, reason| {
            Err(AckError {
                code: ErrorCode::INVALID_REQUEST,
                batch,
                offset: None,
                reason,
            })
        };
        // Kafka starts the ordering check at −1, so a first batch starting below −1 fails it too
        // (`KA.validateAcknowledgementBatches@4.2:4067`, `prevEndOffset = -1L`).
        let mut prev_last: Offset = -1;
        for (i, b) in batches.iter().enumerate() {
            if b.first_offset > b.last_offset {
                return invalid(i, "FirstOffset is greater than LastOffset");
            }
            if b.first_offset < prev_last {
                return invalid(i, "batch starts before the previous batch's LastOffset");
            }
            if b.types.is_empty() {
                return invalid(i, "no acknowledge types");
            }
            if b.types.len() > 1
                && Some(b.types.len() as i64)
                    != b.last_offset
                        .checked_sub(b.first_offset)
                        .and_then(|d| d.checked_add(1))
            {
                return invalid(
                    i,
                    "number of acknowledge types does not match the offset range",
                );
            }
            for &t in &b.types {
                if t < 0 || t > rules.profile.max_ack_type() {
                    return invalid(i, "acknowledge type out of range");
                }
                if t == AckType::Renew.code() && !is_renew_ack {
                    return invalid(i, "RENEW in a request without IsRenewAck");
                }
            }
            prev_last = b.last_offset;
        }
        Ok(())
    }

    /// Applies an acknowledgement request of `member` for this partition: all batches or none.
    ///
    /// After request-level validation ([`SharePartition::validate_ack_batches`]), each batch in order
    /// (`SP.acknowledge@4.2:978-1040`): offsets below the SPSO are ignored (`SP@4.2:1004-1008, 2258`);
    /// an empty cache gives INVALID_RECORD_STATE 121, an offset past the SPEO gives INVALID_REQUEST 42
    /// (`SP.fetchSubMapForAcknowledgementBatch@4.2:2100-2133`); every other offset must be Acquired by
    /// `member`, else 121 — including an offset acknowledged twice in one request, which the first
    /// batch already moved out of Acquired. Then ACCEPT → Acknowledged (T3); RELEASE → Available, or
    /// Archived at the delivery limit (T4, T4'); REJECT and GAP → Archived (T5, T6); RENEW keeps it
    /// Acquired with a fresh lock (T7). If any batch fails, nothing is applied
    /// (`SP.rollbackOrProcessStateUpdates@4.2:2444-2530`). Success means the outcome was persisted.
    pub fn acknowledge(
        &mut self,
        rules: &Rules,
        member: MemberIdx,
        batches: &[AckBatch],
        is_renew_ack: bool,
    ) -> Result<SmallVec<[Change; 4]>, AckError> {
        SharePartition::validate_ack_batches(rules, batches, is_renew_ack)?;
        let mut tentative: SmallVec<[Change; 4]> = SmallVec::new();
        let mut failure: Option<AckError> = None;
        'batches: for (i, b) in batches.iter().enumerate() {
            if b.last_offset < self.spso {
                continue;
            }
            let fail = |code, offset, reason| AckError {
                code,
                batch: i,
                offset,
                reason,
            };
            if self.cache_end == self.spso {
                failure = Some(fail(
                    ErrorCode::INVALID_RECORD_STATE,
                    None,
                    "no records are in flight",
                ));
                break;
            }
            if b.first_offset >= self.cache_end || b.last_offset >= self.cache_end {
                failure = Some(fail(
                    ErrorCode::INVALID_REQUEST,
                    None,
                    "offsets beyond the share-partition end offset",
                ));
                break;
            }
            for o in b.first_offset.max(self.spso)..=b.last_offset {
                // The same offset can appear again only at a batch boundary (first == previous last).
                let current = match tentative.last() {
                    Some(c) if c.offset == o => c.to,
                    _ => self.at(o),
                };
                let owned = match current.state {
                    RecordState::Acquired(m) => m == member || rules.bug(Mutant::NonOwnerAck),
                    _ => false,
                };
                if !owned {
                    if rules.bug(Mutant::SilentInvalidAck) {
                        continue;
                    }
                    let reason = match current.state {
                        RecordState::Acquired(_) => "acquired by another member",
                        RecordState::Available => "not acquired (lock expired or released)",
                        RecordState::Acknowledged => "already acknowledged",
                        RecordState::Archived => "archived",
                    };
                    failure = Some(fail(ErrorCode::INVALID_RECORD_STATE, Some(o), reason));
                    break 'batches;
                }
                // Validation above guarantees the code maps to a type allowed by the profile.
                let Some(ty) = b.ack_type_at(o) else {
                    failure = Some(fail(
                        ErrorCode::INVALID_REQUEST,
                        Some(o),
                        "unknown acknowledge type",
                    ));
                    break 'batches;
                };
                // 4.3+: `share.renew.acknowledge.enable=false` refuses RENEW in SharePartition,
                // after the ownership check (`SP@4.3.1:2307-2311, 2385-2389`).
                if ty == AckType::Renew && !rules.renew_enabled {
                    failure = Some(fail(
                        ErrorCode::INVALID_RECORD_STATE,
                        Some(o),
                        "renewing acquisition locks is not enabled for the group",
                    ));
                    break 'batches;
                }
                let to = match ty {
                    AckType::Accept => InFlight {
                        state: RecordState::Acknowledged,
                        ..current
                    },
                    AckType::Release if rules.bug(Mutant::ReleaseAtLimitAvailable) => InFlight {
                        state: RecordState::Available,
                        ..current
                    },
                    AckType::Release => SharePartition::released(rules, current),
                    AckType::Reject if rules.bug(Mutant::RejectRedelivers) => InFlight {
                        state: RecordState::Available,
                        ..current
                    },
                    AckType::Reject | AckType::Gap => InFlight {
                        state: RecordState::Archived,
                        ..current
                    },
                    AckType::Renew => current,
                };
                match tentative.last_mut() {
                    Some(c) if c.offset == o => c.to = to,
                    _ => tentative.push(Change {
                        offset: o,
                        from: current,
                        to,
                    }),
                }
            }
        }
        if let Some(err) = failure {
            if rules.bug(Mutant::NonAtomicAck) {
                // The planted bug: no rollback; what was validated before the failure stays applied.
                for c in &tentative {
                    self.set(c.offset, c.to);
                }
                self.advance_spso(rules);
            }
            return Err(err);
        }
        for c in &tentative {
            self.set(c.offset, c.to);
        }
        self.advance_spso(rules);
        Ok(tentative)
    }

    // ----------------------------------------------------------------------------------------
    // Broker events

    /// Whether the acquisition lock of `offset` can fire: the record is Acquired (a lock is cancelled
    /// when its record leaves Acquired).
    pub fn lock_can_expire(&self, rules: &Rules, offset: Offset) -> bool {
        if rules.bug(Mutant::ExpiryNeverFires) {
            return false;
        }
        match self.record(offset).map(|r| r.state) {
            Some(RecordState::Acquired(_)) => true,
            Some(RecordState::Acknowledged) => rules.bug(Mutant::ExpiryReopensAcknowledged),
            _ => false,
        }
    }

    /// The acquisition lock of `offset` expires: Acquired → Available, or Archived when the count
    /// has reached the limit; the count is unchanged (T8, T8', `SP.releaseAcquisitionLockOnTimeout@4.2:2857-2917`).
    /// Returns the change, or `None` when no lock was held.
    pub fn expire_lock(&mut self, rules: &Rules, offset: Offset) -> Option<Change> {
        if !self.lock_can_expire(rules, offset) {
            return None;
        }
        let from = self.at(offset);
        let to = if from.state == RecordState::Acknowledged {
            InFlight {
                state: RecordState::Available,
                ..from
            }
        } else {
            SharePartition::released(rules, from)
        };
        self.set(offset, to);
        self.advance_spso(rules);
        Some(Change { offset, from, to })
    }

    /// Whether `offset` is still Acquired by `member` under the acquisition that gave it delivery
    /// count `count` (a later acquisition of the same record has a higher count).
    pub fn still_acquired(&self, member: MemberIdx, offset: Offset, count: u8) -> bool {
        self.record(offset)
            .is_some_and(|r| r.state == RecordState::Acquired(member) && r.delivery_count == count)
    }

    /// The acquisition lock of one acquisition fires: each of `offsets` (with the delivery count it
    /// was acquired with) that is still Acquired by `member` under that same acquisition is released
    /// as by [`SharePartition::expire_lock`]; a record that was acknowledged, released or acquired
    /// again since has another lock (or none) and is left alone (`SP.acquisitionLockTimerTask@4.2`:
    /// each acquisition has its own timer, cancelled when its records leave Acquired).
    pub fn expire_acquisition(
        &mut self,
        rules: &Rules,
        member: MemberIdx,
        offsets: &[(Offset, u8)],
    ) -> SmallVec<[Change; 4]> {
        let mut changes = SmallVec::new();
        for &(o, count) in offsets {
            if self.still_acquired(member, o, count) {
                if let Some(ch) = self.expire_lock(rules, o) {
                    changes.push(ch);
                }
            }
        }
        changes
    }

    /// The share session of `member` ends (ShareFetch/ShareAcknowledge with epoch −1, or its
    /// connection drops): each record it holds is released (T9, `SP.releaseAcquiredRecords@4.2:1050`).
    /// 4.2+: count unchanged, Archived at the limit. 4.1: count − 1 and always Available.
    pub fn release_session(&mut self, rules: &Rules, member: MemberIdx) -> SmallVec<[Change; 4]> {
        let mut changes = SmallVec::new();
        if rules.bug(Mutant::SessionCloseKeepsLocks) {
            return changes;
        }
        let decrement = rules.profile.session_release == SessionRelease::DecrementCount
            || rules.bug(Mutant::SessionReleaseDecrements);
        for o in self.spso..self.cache_end {
            let from = self.at(o);
            if from.state != RecordState::Acquired(member) {
                continue;
            }
            let to = if decrement {
                InFlight {
                    state: RecordState::Available,
                    delivery_count: from.delivery_count.saturating_sub(1),
                }
            } else {
                SharePartition::released(rules, from)
            };
            self.apply(o, from, to, &mut changes);
        }
        self.advance_spso(rules);
        changes
    }

    /// A lock expiry of the fenced former leader, written before the new leader loaded the
    /// partition (docs/semantics.md §10.3): the old leader's acquisition-lock timer still runs after
    /// leadership moved (`SPM.removeSharePartitionFromCache` only marks it fenced) and writes the
    /// expiry — the delivery counted, Archived at the limit — and the share coordinator accepts it
    /// until the new leader's first read raises the leader epoch. Each record it covers that is still
    /// as the reload left it (Available with the count before that delivery) takes that state.
    pub fn fenced_expiry_written(
        &mut self,
        rules: &Rules,
        offsets: &[(Offset, u8)],
    ) -> SmallVec<[Change; 4]> {
        let mut changes = SmallVec::new();
        for &(o, count) in offsets {
            if o < self.spso || o >= self.log_end() || count == 0 {
                continue;
            }
            let from = self.at(o);
            if from.state != RecordState::Available || from.delivery_count != count - 1 {
                continue;
            }
            let to = SharePartition::released(
                rules,
                InFlight {
                    state: RecordState::Available,
                    delivery_count: count,
                },
            );
            self.apply(o, from, to, &mut changes);
            self.cache_end = self.cache_end.max(o + 1);
        }
        self.advance_spso(rules);
        changes
    }

    /// The leader restarts or fails over: in-memory acquisitions are forgotten and the partition is
    /// rebuilt from persisted state (T14, docs/semantics.md §10.2). Acknowledged and Archived
    /// records and the SPSO survive (every change to them was written before it was answered).
    /// An Acquired record reverts to its last written state: Available with the count it was written
    /// with (`count − 1`, acquisition never being written), or a never-written record again.
    /// The cache ends after the last record with written state.
    pub fn restart(&mut self, rules: &Rules) -> SmallVec<[Change; 4]> {
        let mut changes = SmallVec::new();
        for o in self.spso..self.cache_end {
            let from = self.at(o);
            // The planted bug reloads acknowledged records as never acknowledged.
            if from.state == RecordState::Acknowledged
                && rules.bug(Mutant::RestartForgetsAcknowledged)
            {
                let to = InFlight {
                    state: RecordState::Available,
                    ..from
                };
                self.apply(o, from, to, &mut changes);
            }
            if let RecordState::Acquired(_) = from.state {
                let to = InFlight {
                    state: RecordState::Available,
                    delivery_count: from.delivery_count.saturating_sub(1),
                };
                self.apply(o, from, to, &mut changes);
            }
        }
        let mut end = self.cache_end;
        while end > self.spso && self.at(end - 1) == InFlight::NEW {
            end -= 1;
        }
        self.cache_end = end;
        changes
    }
}

#[cfg(test)]
mod tests;
