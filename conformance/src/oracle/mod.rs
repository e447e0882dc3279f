//! The oracle: judges a case's [`history`](crate::history) with `sharecheck_model::spec`, the same
//! code the model checker explores, and is the only place a verdict is decided.
//!
//! It reads [`Event`]s — online, as the runner records them, or offline from a stored history
//! ([`judge`]) — and returns a [`Judgement`]: pass, fail (named [`Anomaly`]s, each at its step),
//! inconclusive (with the reason) or skipped. Principles:
//!
//! 1. **The observation resolves the choice.** Which records a fetch acquires and how ranges are split
//!    are the broker's choices; the oracle checks that what it saw is *one of* the outcomes the spec
//!    allows (`SharePartition::acquire` decides legality) and advances by that outcome.
//! 2. **Keep every alternative.** The oracle carries a set of candidate spec states. A timed event — a
//!    lock expiring, a dropped connection being noticed — that may or may not have happened by the time
//!    of an observation splits every candidate in two; later observations prune the set. A violation is
//!    an observation that *no* candidate allows.
//! 3. **Time is an interval.** A lock taken by a request sent at `s` and answered at `r` expires
//!    somewhere in `[s + D, r + D + tolerance]`. Inside that window either outcome is accepted.
//! 4. **Absence is weak evidence.** An empty fetch is never a violation by itself; only records that
//!    every candidate says are acquirable, still missing after the fetch step's stated patience, are.
//! 5. **MUST and SHOULD.** A case's level decides what a failure means for the run; the oracle names
//!    what happened either way.
//!
//! Members are the trace's names; each join of a name is a new incarnation (a new member id), known
//! to the spec by a new index.

mod partition;

#[cfg(test)]
mod tests;

pub use partition::{offsets_text, OracleConfig, SessionVerdict};

use crate::history::{
    DlqRecord, DlqSetup, Event, FetchedPartition, HistoryError, PartitionAcks, Setup,
};
use partition::{AckObservation, FetchObservation, PartitionOracle};
use serde::{Deserialize, Serialize};
use sharecheck_model::model::Transitions;
use sharecheck_model::session::{SessionRequest, ShareSessions};
use sharecheck_model::spec::{
    AckBatch, DlqCause, ErrorCode, MemberIdx, Offset, RecordState, Rules,
};
use sharecheck_model::{Anomaly, Profile};
use std::collections::BTreeMap;
use std::collections::BTreeSet;

/// Milliseconds since the case started.
pub type Millis = u64;

/// Most partitions a case's topic may have (traces allow 64).
const MAX_PARTITIONS: u32 = 1024;

/// A named anomaly at a step: what was observed, and what the spec allowed instead.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Violation {
    /// The anomaly.
    pub kind: Anomaly,
    /// 1-based step of the case.
    pub step: usize,
    /// What was observed and what the spec allowed instead.
    pub detail: String,
}

/// pass / fail / inconclusive / skipped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CaseVerdict {
    /// Every response was one the spec allows.
    Pass,
    /// An anomaly.
    Fail,
    /// Could not be judged (a step could not be completed, too much timing uncertainty).
    Inconclusive,
    /// The target lacks a capability the case needs.
    Skipped,
}

/// One step as run: what it was, what happened, and the spec's record table after it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepRecord {
    /// 1-based.
    pub step: usize,
    /// The step, in words.
    pub text: String,
    /// What happened, in words.
    pub outcome: String,
    /// The reference spec state after it.
    pub records: Vec<String>,
}

/// The display names of members by spec index: the trace's name, primed once per rejoin (`A`,
/// `A'`, `A''`).
#[derive(Clone, Debug, Default)]
pub struct Names(Vec<String>);

impl Names {
    /// The display name of a spec member.
    pub fn of(&self, idx: MemberIdx) -> String {
        self.0
            .get(usize::from(idx))
            .cloned()
            .unwrap_or_else(|| format!("member #{idx}"))
    }

    /// A record state in words, with the owner's name.
    pub fn state(&self, state: RecordState) -> String {
        match state {
            RecordState::Acquired(m) => format!("Acquired by {}", self.of(m)),
            other => format!("{other:?}"),
        }
    }
}

/// What the oracle concluded about a case.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Judgement {
    /// The verdict.
    pub verdict: CaseVerdict,
    /// Named anomalies, each at its step.
    pub anomalies: Vec<Violation>,
    /// Why inconclusive or skipped.
    pub reason: Option<String>,
    /// Observations the spec does not judge.
    pub notes: Vec<String>,
    /// Transition kinds the target went through.
    pub exercised: Transitions,
    /// Step by step, with the record table after each.
    pub steps: Vec<StepRecord>,
    /// The delivery limit the case ran with.
    pub delivery_limit: u8,
}

/// The fetch step under way: what every account of the spec said was acquirable in each
/// partition, and what came.
#[derive(Clone, Debug)]
struct FetchStep {
    step: usize,
    member: String,
    max_records: u32,
    want: BTreeMap<i32, Vec<Offset>>,
    got: BTreeMap<i32, BTreeSet<Offset>>,
    patience_ms: Millis,
}

/// The oracle of one case.
#[derive(Clone, Debug)]
pub struct Oracle {
    config: OracleConfig,
    latest_reset: bool,
    /// One judge per partition of the case's topic.
    parts: BTreeMap<i32, PartitionOracle>,
    /// Share sessions, by (member, broker): every partition a request names shares them.
    sessions: ShareSessions<(MemberIdx, i32)>,
    /// The partitions each open share session holds: a subsequent ShareFetch fetches every one of
    /// them, named in it or not (`ShareSessionContext.getErroneousAndValidTopicIdPartitions`).
    session_parts: BTreeMap<(MemberIdx, i32), BTreeSet<i32>>,
    /// The broker each partition was last fetched from (its leader, as the runner found it).
    leaders: BTreeMap<i32, i32>,
    delivery_limit: u8,
    names: Names,
    current: BTreeMap<String, MemberIdx>,
    anomalies: Vec<Violation>,
    notes: Vec<String>,
    inconclusive: Option<String>,
    skipped: Option<String>,
    steps: Vec<StepRecord>,
    step_text: BTreeMap<usize, String>,
    fetch_step: Option<FetchStep>,
    /// What was produced where, per partition: runs of offsets whose record `k` has value
    /// `prefix` + `k`.
    produced: BTreeMap<i32, Vec<ProducedRun>>,
    /// Records each member name received, over all its incarnations.
    received: BTreeMap<String, u64>,
    /// The topic was deleted: nothing after that is judged by the share-partition rules.
    deleted: bool,
    /// Each member name's last reported assignment, with the step it was reported in.
    assignments: BTreeMap<String, (usize, BTreeSet<i32>)>,
    /// Member names surely in the group now (joined, not left).
    members: BTreeSet<String>,
    /// A member may be in the group without the oracle knowing for sure (it crashed, or a new
    /// incarnation replaced it without leaving: the coordinator drops it at its session timeout).
    maybe_members: bool,
    /// Connections of the group's members to brokers that sent share requests and have not been
    /// dropped: while one is open the leader may keep the share partition cached (§18.1).
    conns: BTreeSet<(MemberIdx, i32)>,
    /// The group's dead-letter topic.
    dlq: Option<DlqSetup>,
    /// The case's topic and group, as the setup named them.
    setup_topic: String,
    setup_group: String,
}

impl Oracle {
    /// The oracle of a case set up as `setup` says, judged by `profile` (default: the setup's).
    pub fn new(setup: &Setup, profile: Option<Profile>) -> Result<Oracle, HistoryError> {
        let profile = match profile {
            Some(p) => p,
            None => Profile::by_name(&setup.profile).ok_or_else(|| HistoryError::Invalid {
                index: 0,
                what: format!("unknown profile '{}'", setup.profile),
            })?,
        };
        let rules = Rules {
            delivery_limit: setup.delivery_limit,
            max_in_flight: setup.max_in_flight,
            renew_enabled: !setup.renew_disabled,
            ..Rules::kafka_defaults(profile)
        };
        let config = OracleConfig {
            rules,
            lock_ms: setup.lock_ms,
            tolerance_ms: setup.tolerance_ms,
            max_candidates: setup.max_candidates,
            allowances: crate::trace::Allowances::without(&setup.without_allowances),
        };
        let mut o = Oracle {
            config,
            latest_reset: setup.latest_reset,
            parts: BTreeMap::new(),
            sessions: ShareSessions::new(),
            session_parts: BTreeMap::new(),
            leaders: BTreeMap::new(),
            delivery_limit: setup.delivery_limit,
            names: Names::default(),
            current: BTreeMap::new(),
            anomalies: Vec::new(),
            notes: Vec::new(),
            inconclusive: None,
            skipped: None,
            steps: Vec::new(),
            step_text: BTreeMap::new(),
            fetch_step: None,
            produced: BTreeMap::new(),
            received: BTreeMap::new(),
            deleted: false,
            assignments: BTreeMap::new(),
            members: BTreeSet::new(),
            maybe_members: false,
            conns: BTreeSet::new(),
            dlq: setup.dlq.clone(),
            setup_topic: setup.topic.clone(),
            setup_group: setup.group.clone(),
        };
        o.grow_to(setup.partitions.clamp(1, MAX_PARTITIONS));
        Ok(o)
    }

    /// A judge for every partition below `total`.
    fn grow_to(&mut self, total: u32) {
        for p in 0..total.min(MAX_PARTITIONS) as i32 {
            let (config, latest) = (self.config, self.latest_reset);
            self.parts
                .entry(p)
                .or_insert_with(|| PartitionOracle::new(config).with_reset(latest));
        }
    }

    /// The oracle of a history that never reached a setup (a skipped case, a failed setup): it
    /// judges the one event such a history has.
    pub fn without_setup() -> Oracle {
        let setup = Setup {
            topic: String::new(),
            group: String::new(),
            partitions: 1,
            profile: Profile::DEFAULT.name.to_string(),
            delivery_limit: 5,
            group_delivery_limit: false,
            max_in_flight: 2000,
            lock_ms: 1000,
            tolerance_ms: 0,
            latest_reset: false,
            max_candidates: 1,
            dlq: None,
            renew_disabled: false,
            without_allowances: Vec::new(),
        };
        Oracle::new(&setup, Some(Profile::DEFAULT)).expect("a known profile")
    }

    // ------------------------------------------------------------------------------------------
    // What the runner may ask while a case runs (read-only)

    /// The offsets of `partition` every account of the spec says are acquirable at `now` (after
    /// the locks and releases surely due by then), up to `max`.
    pub fn surely_acquirable(&self, partition: i32, now: Millis, max: usize) -> Vec<Offset> {
        if self.deleted {
            return Vec::new();
        }
        self.parts
            .get(&partition)
            .map_or_else(Vec::new, |p| p.surely_acquirable(now, max))
    }

    /// When every lock and pending release known now has surely happened.
    pub fn all_timers_done_at(&self) -> Millis {
        self.parts
            .values()
            .map(|p| p.all_timers_done_at())
            .max()
            .unwrap_or(0)
    }

    /// Records `member` (every incarnation of the name) has received so far.
    pub fn received(&self, member: &str) -> u64 {
        self.received.get(member).copied().unwrap_or(0)
    }

    /// Where the next record produced to `partition` lands, by the spec's account of the log.
    pub fn log_end(&self, partition: i32) -> Offset {
        self.parts
            .get(&partition)
            .map_or(0, |p| p.reference().log_end())
    }

    /// The partitions the oracle knows of.
    pub fn partitions(&self) -> u32 {
        self.parts.len() as u32
    }

    /// The judgement so far.
    pub fn judgement(&self) -> Judgement {
        let mut anomalies: Vec<Violation> = self
            .parts
            .values()
            .flat_map(|p| p.anomalies().iter().cloned())
            .collect();
        anomalies.extend(self.anomalies.iter().cloned());
        anomalies.sort_by_key(|a| a.step);
        let mut notes: Vec<String> = self
            .parts
            .values()
            .flat_map(|p| p.notes().iter().cloned())
            .collect();
        notes.extend(self.notes.iter().cloned());
        let mut exercised = Transitions::default();
        for p in self.parts.values() {
            exercised.extend(p.exercised());
        }
        let (verdict, reason) = if let Some(why) = &self.skipped {
            (CaseVerdict::Skipped, Some(why.clone()))
        } else {
            let reason = self.inconclusive.clone().or_else(|| {
                self.parts
                    .values()
                    .find_map(|p| p.inconclusive().map(str::to_string))
            });
            let verdict = if !anomalies.is_empty() {
                CaseVerdict::Fail
            } else if reason.is_some() {
                CaseVerdict::Inconclusive
            } else {
                CaseVerdict::Pass
            };
            (verdict, reason)
        };
        Judgement {
            verdict,
            anomalies,
            reason,
            notes,
            exercised,
            steps: self.steps.clone(),
            delivery_limit: self.delivery_limit,
        }
    }

    // ------------------------------------------------------------------------------------------
    // Events

    /// The spec index of `member`'s current incarnation (registered on first sight).
    fn member(&mut self, name: &str) -> MemberIdx {
        if let Some(i) = self.current.get(name) {
            return *i;
        }
        self.incarnate(name)
    }

    fn incarnate(&mut self, name: &str) -> MemberIdx {
        let primes = self
            .names
            .0
            .iter()
            .filter(|n| n.trim_end_matches('\'') == name)
            .count();
        let idx = MemberIdx::try_from(self.names.0.len()).unwrap_or(MemberIdx::MAX);
        self.names.0.push(format!("{name}{}", "'".repeat(primes)));
        self.current.insert(name.to_string(), idx);
        idx
    }

    fn set_inconclusive(&mut self, why: String) {
        if self.inconclusive.is_none() {
            self.inconclusive = Some(why);
        }
    }

    fn report(&mut self, kind: Anomaly, step: usize, detail: String) {
        self.anomalies.push(Violation { kind, step, detail });
    }

    /// The group's dead-letter topic, if the case has one.
    pub fn dlq_setup(&self) -> Option<&DlqSetup> {
        self.dlq.as_ref()
    }

    /// How many records every account of the spec has sent to a writable dead-letter topic.
    pub fn dlq_surely_written(&self) -> usize {
        if !self.dlq.as_ref().is_some_and(|d| d.writable) {
            return 0;
        }
        self.parts.values().map(PartitionOracle::dlq_surely).sum()
    }

    /// Judges what the dead-letter topic held: each record's headers must name this case's topic
    /// and group, a partition of the topic, an offset, a delivery count and a cause; then each
    /// partition's judge compares its records with the spec.
    fn judge_dlq(
        &mut self,
        step: usize,
        records: &[DlqRecord],
        missing: bool,
        when: (Millis, Millis),
    ) {
        let Some(setup) = self.dlq.clone() else {
            self.set_inconclusive(format!(
                "step {step}: a DLQ read without a DLQ topic in the setup"
            ));
            return;
        };
        if missing && setup.writable {
            self.set_inconclusive(format!(
                "step {step}: the DLQ topic {} the case created does not exist",
                setup.topic
            ));
            return;
        }
        let (topic, group) = (self.setup_topic.clone(), self.setup_group.clone());
        let mut per: BTreeMap<i32, Vec<(Offset, u8, DlqCause)>> = BTreeMap::new();
        for r in records {
            let h = |k: &str| r.headers.get(k).map(String::as_str);
            let parsed = (|| {
                let t = h("__dlq.errors.topic")?;
                let g = h("__dlq.errors.group")?;
                let p: i32 = h("__dlq.errors.partition")?.parse().ok()?;
                let o: Offset = h("__dlq.errors.offset")?.parse().ok()?;
                let n: u8 = h("__dlq.errors.delivery.count")?.parse().ok()?;
                let c = DlqCause::from_message(h("__dlq.errors.message")?)?;
                Some((t, g, p, o, n, c))
            })();
            match parsed {
                Some((t, g, p, o, n, c)) if t == topic && g == group && self.parts.contains_key(&p) => {
                    per.entry(p).or_default().push((o, n, c));
                }
                _ => self.report(
                    Anomaly::DlqHeaderWrong,
                    step,
                    format!(
                        "DLQ record at {}-{} has headers {:?}; the case's topic is {topic} and its group {group}",
                        r.partition, r.offset, r.headers
                    ),
                ),
            }
            if r.has_data {
                self.notes.push(format!(
                    "step {step}: DLQ record at {}-{} carries a key or value (errors.deadletterqueue.copy.record.enable is off by default)",
                    r.partition, r.offset
                ));
            }
        }
        let keys: Vec<i32> = self.parts.keys().copied().collect();
        for k in keys {
            let observed = per.remove(&k).unwrap_or_default();
            if let Some(p) = self.parts.get_mut(&k) {
                p.dlq_read(step, when, &observed, setup.writable);
            }
        }
    }

    /// The top-level answer to Alter/DeleteShareGroupOffsets: the group must have no members
    /// (NON_EMPTY_GROUP otherwise, `GroupMetadataManager.throwIfShareGroupIsNotEmpty` and
    /// `ShareGroup.validateEmptyGroup`, docs/semantics.md §18.1); when the oracle cannot know,
    /// either answer.
    fn judge_offsets_answer(
        &mut self,
        step: usize,
        api: &str,
        error: ErrorCode,
        partition_error: Option<ErrorCode>,
    ) {
        let sure_members = !self.members.is_empty();
        let wrong = if sure_members {
            error != ErrorCode::NON_EMPTY_GROUP
        } else if self.maybe_members {
            error != ErrorCode::NONE && error != ErrorCode::NON_EMPTY_GROUP
        } else {
            error != ErrorCode::NONE || partition_error.is_some_and(|c| c != ErrorCode::NONE)
        };
        if wrong {
            let why = if sure_members {
                format!(
                    "the group has member(s) {}, so NON_EMPTY_GROUP",
                    self.members.iter().cloned().collect::<Vec<_>>().join(", ")
                )
            } else {
                "the group has no members, so success".to_string()
            };
            let partition = partition_error
                .map(|c| format!(" (partition: {c})"))
                .unwrap_or_default();
            self.report(
                Anomaly::OffsetsAnswerWrong,
                step,
                format!("{api} answered {error}{partition}; {why}"),
            );
        }
    }

    /// Whether a connection of the group to the partition's leader may keep its share partition
    /// cached.
    fn maybe_cached(&self, partition: i32) -> bool {
        let leader = self.leaders.get(&partition).copied();
        self.conns
            .iter()
            .any(|(_, b)| leader.is_none_or(|l| l == *b))
    }

    /// A group limit was set while the case runs: the oracle's rules follow it.
    fn limit_set(&mut self, name: &str, value: i64) {
        let set: Box<dyn Fn(&mut OracleConfig)> = match name {
            "share.delivery.count.limit" => {
                let v = u8::try_from(value).unwrap_or(u8::MAX);
                self.delivery_limit = v;
                Box::new(move |c: &mut OracleConfig| c.rules.delivery_limit = v)
            }
            "share.partition.max.record.locks" => {
                let v = u32::try_from(value).unwrap_or(u32::MAX);
                Box::new(move |c: &mut OracleConfig| c.rules.max_in_flight = v)
            }
            "share.record.lock.duration.ms" => {
                let v = Millis::try_from(value).unwrap_or(Millis::MAX);
                Box::new(move |c: &mut OracleConfig| c.lock_ms = v)
            }
            _ => return,
        };
        set(&mut self.config);
        for p in self.parts.values_mut() {
            p.reconfigured(&set);
        }
    }

    /// Whether the group has no share session left on `broker`.
    fn group_empty_on(&self, broker: i32) -> bool {
        !self.sessions.keys().any(|(_, b)| *b == broker)
    }

    /// The session rules' verdict on one request; a wrong top-level code is returned as
    /// `Mismatch(Some(detail))` for the caller to hand to the first partition it judges.
    fn session_verdict(
        &mut self,
        key: (MemberIdx, i32),
        epoch: i32,
        request: SessionRequest,
        top_error: ErrorCode,
    ) -> SessionVerdict {
        let api = match request {
            SessionRequest::ShareFetch { .. } => "ShareFetch",
            SessionRequest::ShareAcknowledge => "ShareAcknowledge",
        };
        match self.sessions.on_request(&key, epoch, request) {
            Err(code) if code == top_error => SessionVerdict::Refused(code),
            Err(code) => SessionVerdict::Mismatch(Some(format!(
                "{api} with epoch {epoch} answered {top_error}, the session rules say {code}"
            ))),
            Ok(_) if top_error != ErrorCode::NONE => SessionVerdict::Mismatch(Some(format!(
                "{api} with epoch {epoch} answered {top_error}, the session rules accept it"
            ))),
            Ok(effect) => SessionVerdict::Accepted {
                effect,
                group_empty: self.group_empty_on(key.1),
            },
        }
    }

    /// The partitions a ShareFetch with `epoch`, naming `named`, fetches from the session `key`
    /// after the session rules gave `verdict` (for a close: the partitions it releases); the
    /// session's partition set is updated.
    fn session_partitions_after(
        &mut self,
        key: (MemberIdx, i32),
        epoch: i32,
        verdict: &SessionVerdict,
        named: &BTreeSet<i32>,
    ) -> BTreeSet<i32> {
        // A refused request changes nothing: the session (if any) keeps what it held.
        if !matches!(verdict, SessionVerdict::Accepted { .. }) {
            self.prune_session_parts();
            return BTreeSet::new();
        }
        let parts = match epoch {
            0 => named.clone(),
            // A close releases the member's records of every partition the session held.
            -1 => self.session_parts.get(&key).cloned().unwrap_or_default(),
            _ => {
                let mut p = self.session_parts.get(&key).cloned().unwrap_or_default();
                p.extend(named.iter().copied());
                p
            }
        };
        self.prune_session_parts();
        if self.sessions.expected(&key).is_some() {
            self.session_parts.insert(key, parts.clone());
        }
        parts
    }

    /// Forgets the partition sets of sessions that no longer exist.
    fn prune_session_parts(&mut self) {
        let sessions = &self.sessions;
        self.session_parts
            .retain(|k, _| sessions.expected(k).is_some());
    }

    /// Judges one event.
    pub fn observe(&mut self, event: &Event) {
        match event {
            Event::Setup(_) => {}
            Event::Skipped { reason } => self.skipped = Some(reason.clone()),
            Event::SetupFailed { reason } => self.set_inconclusive(reason.clone()),
            Event::Step { step, text } => {
                self.step_text.insert(*step, text.clone());
            }
            Event::StepEnd { step, outcome } => {
                let records = self.table();
                self.steps.push(StepRecord {
                    step: *step,
                    text: self.step_text.get(step).cloned().unwrap_or_default(),
                    outcome: outcome.clone(),
                    records,
                });
            }
            Event::StepFailed { step, reason } => {
                let text = self.step_text.get(step).cloned().unwrap_or_default();
                self.steps.push(StepRecord {
                    step: *step,
                    text: text.clone(),
                    outcome: format!("could not complete: {reason}"),
                    records: Vec::new(),
                });
                self.set_inconclusive(format!("step {step} ({text}): {reason}"));
            }
            Event::Join { member, .. } => {
                self.incarnate(member);
                if !self.members.insert(member.clone()) {
                    // The former incarnation did not leave: it stays until its session timeout.
                    self.maybe_members = true;
                }
            }
            Event::Leave { member, error, .. } => {
                if *error == ErrorCode::NONE {
                    self.members.remove(member);
                } else {
                    self.maybe_members = true;
                }
            }
            Event::Crash { member, .. } => {
                if self.members.remove(member) {
                    self.maybe_members = true;
                }
            }
            Event::OffsetsAltered {
                step,
                partition,
                start,
                error,
                partition_error,
                ..
            } => {
                self.judge_offsets_answer(
                    *step,
                    "AlterShareGroupOffsets",
                    *error,
                    *partition_error,
                );
                if *error == ErrorCode::NONE && partition_error.is_none_or(|c| c == ErrorCode::NONE)
                {
                    let cached = self.maybe_cached(*partition);
                    if let Some(p) = self.parts.get_mut(partition) {
                        p.offsets_replaced(*step, Some(*start), cached);
                    }
                }
            }
            Event::OffsetsDeleted {
                step,
                error,
                topic_error,
                ..
            } => {
                self.judge_offsets_answer(*step, "DeleteShareGroupOffsets", *error, None);
                let initialized = self.parts.values().any(PartitionOracle::is_initialized);
                if *error == ErrorCode::NONE {
                    let t = topic_error.unwrap_or(ErrorCode::NONE);
                    if initialized && t != ErrorCode::NONE {
                        self.report(
                            Anomaly::OffsetsAnswerWrong,
                            *step,
                            format!("DeleteShareGroupOffsets refused the topic with {t}, but the group has share-group state for it"),
                        );
                    }
                    if t == ErrorCode::NONE {
                        let keys: Vec<i32> = self.parts.keys().copied().collect();
                        for k in keys {
                            let cached = self.maybe_cached(k);
                            if let Some(p) = self.parts.get_mut(&k) {
                                p.offsets_replaced(*step, None, cached);
                            }
                        }
                    }
                }
            }
            Event::OffsetsDescribed {
                step,
                version,
                error,
                partitions,
                sent_ms,
                received_ms,
            } => {
                if *error != ErrorCode::NONE {
                    self.report(
                        Anomaly::WrongErrorCode,
                        *step,
                        format!("DescribeShareGroupOffsets answered the group with {error}"),
                    );
                    return;
                }
                for d in partitions {
                    if d.error != ErrorCode::NONE {
                        self.report(
                            Anomaly::WrongErrorCode,
                            *step,
                            format!(
                                "DescribeShareGroupOffsets answered partition {} with {}",
                                d.partition, d.error
                            ),
                        );
                        continue;
                    }
                    let lag =
                        (*version >= sharecheck_client::offsets::LAG_VERSION).then_some(d.lag);
                    if let Some(p) = self.parts.get_mut(&d.partition) {
                        p.described(*step, (*sent_ms, *received_ms), d.start_offset, lag);
                    }
                }
            }
            Event::GroupLimitSet {
                step,
                name,
                value,
                error,
                ..
            } => {
                use sharecheck_model::spec::{group_limit_answer, LimitAnswer};
                let want = group_limit_answer(name, *value);
                let wrong = match want {
                    Some(LimitAnswer::Refuse) => *error != ErrorCode::INVALID_CONFIG,
                    Some(LimitAnswer::Accept) => *error != ErrorCode::NONE,
                    Some(LimitAnswer::Either) | None => {
                        *error != ErrorCode::NONE && *error != ErrorCode::INVALID_CONFIG
                    }
                };
                if wrong {
                    let rule = match want {
                        Some(LimitAnswer::Refuse) => "outside every broker's range: INVALID_CONFIG",
                        Some(LimitAnswer::Accept) => "inside every broker's range: success",
                        _ => "success or INVALID_CONFIG",
                    };
                    self.report(
                        Anomaly::GroupLimitAnswerWrong,
                        *step,
                        format!("{name}={value} was answered with {error}; the rule: {rule}"),
                    );
                }
                if *error == ErrorCode::NONE {
                    self.limit_set(name, *value);
                }
            }
            Event::Produce {
                step,
                partition,
                batches,
                base_offsets,
                value_prefix,
                ..
            } => {
                if self.deleted || !self.parts.contains_key(partition) {
                    return;
                }
                let expected = self.log_end(*partition);
                let n: u64 = batches.iter().map(|b| u64::from(*b)).sum();
                self.produced
                    .entry(*partition)
                    .or_default()
                    .push(ProducedRun {
                        base: expected,
                        len: n as Offset,
                        prefix: value_prefix.clone(),
                    });
                if base_offsets.first().is_some_and(|b| *b != expected) {
                    self.set_inconclusive(format!(
                        "step {step}: produce to partition {partition} landed at offset {:?}, expected {expected}",
                        base_offsets.first()
                    ));
                }
                if let Some(p) = self.parts.get_mut(partition) {
                    p.produced(n as usize);
                }
            }
            Event::FetchBegin {
                step,
                member,
                partitions,
                max_records,
                horizon_ms,
                patience_ms,
            } => {
                let want = partitions
                    .iter()
                    .map(|p| {
                        (
                            *p,
                            self.surely_acquirable(*p, *horizon_ms, *max_records as usize),
                        )
                    })
                    .collect();
                self.fetch_step = Some(FetchStep {
                    step: *step,
                    member: member.clone(),
                    max_records: *max_records,
                    want,
                    got: BTreeMap::new(),
                    patience_ms: *patience_ms,
                });
            }
            Event::FetchEnd { step, member } => {
                let Some(f) = self.fetch_step.take() else {
                    return;
                };
                if f.step != *step || f.member != *member {
                    return;
                }
                // Records were surely missed only while the request had budget for them.
                let want_total: usize = f.want.values().map(Vec::len).sum();
                let got_total: usize = f.got.values().map(BTreeSet::len).sum();
                if got_total >= want_total.min(f.max_records as usize) {
                    return;
                }
                for (p, want) in &f.want {
                    let got = f.got.get(p).cloned().unwrap_or_default();
                    if let Some(part) = self.parts.get_mut(p) {
                        part.check_missing(f.step, want, &got, f.patience_ms);
                    }
                }
            }
            Event::ShareFetch {
                step,
                member,
                broker,
                requested,
                epoch,
                max_records,
                acks,
                sent_ms,
                received_ms,
                error,
                lock_timeout_ms,
                partitions,
                is_renew_ack,
                record_limit,
            } => {
                let idx = self.member(member);
                self.conns.insert((idx, *broker));
                if self.deleted {
                    return;
                }
                // KIP-1206: in record-limit mode MaxRecords bounds the whole response.
                let acquired: usize = partitions
                    .iter()
                    .map(|p| capped_offsets(&p.acquired).len())
                    .sum();
                if sharecheck_model::spec::record_limit_exceeded(
                    *record_limit,
                    *max_records,
                    acquired,
                ) {
                    self.report(
                        Anomaly::RecordLimitExceeded,
                        *step,
                        format!(
                            "{acquired} records acquired in record-limit mode with MaxRecords {max_records}"
                        ),
                    );
                }
                let verdict = self.session_verdict(
                    (idx, *broker),
                    *epoch,
                    SessionRequest::ShareFetch {
                        has_acks: !acks.is_empty(),
                    },
                    *error,
                );
                // Every partition the request names joins the session (acknowledgements too: they
                // ride in the same topic list); a subsequent fetch fetches all the session holds.
                let mut named: BTreeSet<i32> = requested.iter().copied().collect();
                named.extend(acks.iter().map(|a| a.partition));
                let fetched_parts =
                    self.session_partitions_after((idx, *broker), *epoch, &verdict, &named);
                let mut allowed = fetched_parts.clone();
                let fetched_parts = if *epoch == -1 {
                    BTreeSet::new()
                } else {
                    fetched_parts
                };
                allowed.extend(named.iter().copied());
                self.check_response_shape(*step, &allowed, partitions);
                for p in partitions {
                    self.check_values(*step, p);
                }
                let mut verdict = verdict;
                // Every partition the request names is judged; the first gets a session anomaly.
                let mut involved = allowed;
                involved.extend(partitions.iter().map(|p| p.partition));
                for p in involved {
                    let Some(part_oracle) = self.parts.get_mut(&p) else {
                        continue;
                    };
                    self.leaders.insert(p, *broker);
                    let part = partitions.iter().find(|x| x.partition == p);
                    let batches = acks_for(acks, p);
                    let obs = FetchObservation {
                        member: idx,
                        sent: *sent_ms,
                        received: *received_ms,
                        epoch: *epoch,
                        fetches: *max_records > 0 && *epoch != -1 && fetched_parts.contains(&p),
                        acks: &batches,
                        top_error: *error,
                        partition_error: part.map(|p| p.error),
                        ack_error: if batches.is_empty() {
                            None
                        } else {
                            Some(part.map_or(ErrorCode::NONE, |p| p.ack_error))
                        },
                        acquired: part.map_or(&[], |p| p.acquired.as_slice()),
                        lock_timeout_ms: Some(*lock_timeout_ms),
                        is_renew_ack: *is_renew_ack,
                    };
                    part_oracle.fetched(*step, &obs, &self.names, &verdict);
                    if let SessionVerdict::Mismatch(detail) = &mut verdict {
                        *detail = None;
                    }
                }
                if let SessionVerdict::Mismatch(Some(detail)) = verdict {
                    self.report(Anomaly::WrongErrorCode, *step, detail);
                }
                for p in partitions {
                    let got = capped_offsets(&p.acquired);
                    match self.received.get_mut(member.as_str()) {
                        Some(n) => *n += got.len() as u64,
                        None => {
                            self.received.insert(member.clone(), got.len() as u64);
                        }
                    }
                    if let Some(f) = self.fetch_step.as_mut() {
                        if f.step == *step && f.member == *member {
                            f.got.entry(p.partition).or_default().extend(got);
                        }
                    }
                }
            }
            Event::ShareAcknowledge {
                step,
                member,
                broker,
                epoch,
                acks,
                sent_ms,
                received_ms,
                error,
                partitions,
                is_renew_ack,
                lock_timeout_ms,
            } => {
                let idx = self.member(member);
                self.conns.insert((idx, *broker));
                if self.deleted {
                    return;
                }
                let mut verdict = self.session_verdict(
                    (idx, *broker),
                    *epoch,
                    SessionRequest::ShareAcknowledge,
                    *error,
                );
                let mut involved: BTreeSet<i32> = acks.iter().map(|a| a.partition).collect();
                involved.extend(partitions.iter().map(|p| p.partition));
                for p in involved {
                    let Some(part_oracle) = self.parts.get_mut(&p) else {
                        continue;
                    };
                    let batches = acks_for(acks, p);
                    let obs = AckObservation {
                        member: idx,
                        sent: *sent_ms,
                        received: *received_ms,
                        acks: &batches,
                        partition_error: partitions
                            .iter()
                            .find(|x| x.partition == p)
                            .map(|x| x.error),
                        is_renew_ack: *is_renew_ack,
                        lock_timeout_ms: *lock_timeout_ms,
                    };
                    part_oracle.acknowledged(*step, &obs, &verdict);
                    if let SessionVerdict::Mismatch(detail) = &mut verdict {
                        *detail = None;
                    }
                }
                if let SessionVerdict::Mismatch(Some(detail)) = verdict {
                    self.report(Anomaly::WrongErrorCode, *step, detail);
                }
            }
            Event::Disconnect {
                member,
                broker,
                at_ms,
                ..
            } => {
                let idx = self.member(member);
                self.sessions.drop_session(&(idx, *broker));
                self.conns.remove(&(idx, *broker));
                let empty = self.group_empty_on(*broker);
                // The broker releases the member's records of the partitions it leads.
                let led: Vec<i32> = self
                    .parts
                    .keys()
                    .copied()
                    .filter(|p| self.leaders.get(p).is_none_or(|l| l == broker))
                    .collect();
                for p in led {
                    if let Some(part) = self.parts.get_mut(&p) {
                        part.disconnected(idx, *at_ms, empty);
                    }
                }
            }
            Event::Restart { node, hard, .. } => {
                // A whole-target restart loses every session and every acquisition; a node's
                // restart those of the partitions it led, whose new leaders load what was written.
                let affected: Vec<i32> = match node {
                    None => {
                        self.sessions.clear();
                        self.conns.clear();
                        self.parts.keys().copied().collect()
                    }
                    Some(n) => {
                        let gone: Vec<(MemberIdx, i32)> = self
                            .sessions
                            .keys()
                            .filter(|(_, b)| b == n)
                            .cloned()
                            .collect();
                        for k in gone {
                            self.sessions.drop_session(&k);
                        }
                        self.conns.retain(|(_, b)| b != n);
                        self.parts
                            .keys()
                            .copied()
                            .filter(|p| self.leaders.get(p).is_none_or(|l| l == n))
                            .collect()
                    }
                };
                // One node stopped (not killed) may write lock expiries as it goes, as a former
                // leader does; the whole target or a killed node writes nothing more.
                let fenced = node.is_some() && !*hard;
                for p in affected {
                    if let Some(part) = self.parts.get_mut(&p) {
                        if fenced {
                            part.leader_moved();
                        } else {
                            part.restarted();
                        }
                    }
                }
            }
            Event::LeaderMove { partition, to, .. } => {
                // The new leader loads the partition from what was written (T14 for one partition);
                // the old one's lock expiries may be written until it does (§10.3).
                if let Some(part) = self.parts.get_mut(partition) {
                    part.leader_moved();
                }
                self.leaders.insert(*partition, *to);
            }
            Event::PartitionsAdded { total, .. } => self.grow_to(*total),
            Event::TopicDeleted { .. } => self.deleted = true,
            Event::Claim {
                step,
                member,
                at_least,
            } => {
                let got = self.received.get(member).copied().unwrap_or(0);
                if got < u64::from(*at_least) {
                    self.report(
                        Anomaly::ClaimNotMet,
                        *step,
                        format!(
                            "{member} received {got} record(s), the claim is at least {at_least}"
                        ),
                    );
                }
            }
            Event::Assignment {
                step,
                member,
                partitions,
                ..
            } => {
                self.assignments.insert(
                    member.clone(),
                    (*step, partitions.iter().copied().collect()),
                );
            }
            Event::ClaimAssigned { step, waited_ms } => {
                let covered: BTreeSet<i32> = self
                    .assignments
                    .values()
                    .filter(|(s, _)| s == step)
                    .flat_map(|(_, p)| p.iter().copied())
                    .collect();
                let total = self.parts.len() as i32;
                let missing: Vec<Offset> = (0..total)
                    .filter(|p| !covered.contains(p))
                    .map(Offset::from)
                    .collect();
                if !self.deleted && !missing.is_empty() {
                    self.report(
                        Anomaly::PartitionUnassigned,
                        *step,
                        format!(
                            "partition(s) {} of the topic assigned to no member after {waited_ms} ms",
                            offsets_text(missing)
                        ),
                    );
                }
            }
            Event::DlqRead {
                step,
                records,
                missing,
                sent_ms,
                received_ms,
            } => self.judge_dlq(*step, records, *missing, (*sent_ms, *received_ms)),
            Event::Wait { .. } => {}
        }
    }

    /// The record table after a step: one partition's lines as they were, or every partition's
    /// under a header line.
    fn table(&self) -> Vec<String> {
        if self.parts.len() == 1 {
            return self
                .parts
                .values()
                .next()
                .map(|p| p.table(&self.names))
                .unwrap_or_default();
        }
        let mut out = Vec::new();
        for (i, p) in &self.parts {
            out.push(format!("partition {i}:"));
            out.extend(p.table(&self.names).into_iter().map(|l| format!("  {l}")));
        }
        out
    }

    /// What a careful client would trip on in a ShareFetch response, whatever the spec says: the
    /// same partition twice, a partition neither the request nor its session holds (overlapping
    /// ranges are the partition judge's: it expands them first). Records outside the acquired
    /// ranges are not one: Kafka returns whole record batches and the client keeps the acquired
    /// offsets (`client/src/member.rs`, `decode_acquired`), so the history holds only those.
    fn check_response_shape(
        &mut self,
        step: usize,
        allowed: &BTreeSet<i32>,
        partitions: &[FetchedPartition],
    ) {
        let mut seen = BTreeSet::new();
        for p in partitions {
            if !seen.insert(p.partition) {
                self.report(
                    Anomaly::DuplicatePartition,
                    step,
                    format!(
                        "partition {} appears twice in one ShareFetch response",
                        p.partition
                    ),
                );
            }
            if !allowed.contains(&p.partition) {
                self.report(
                    Anomaly::UnrequestedPartition,
                    step,
                    format!(
                        "partition {} is in the ShareFetch response, but neither the request nor its share session holds it",
                        p.partition
                    ),
                );
            }
        }
    }

    /// What a member receives must be what was produced at that offset: a wrong value is a broken
    /// log, not a share-group rule, but no less a failure. Acquired offsets without a data record
    /// are noted (control records and compaction holes have none).
    fn check_values(&mut self, step: usize, p: &FetchedPartition) {
        let wrong: Vec<Offset> = p
            .records
            .iter()
            .filter(|(o, v)| self.produced_value_differs(p.partition, *o, v.as_deref()))
            .map(|(o, _)| *o)
            .collect();
        if !wrong.is_empty() {
            let at = if self.parts.len() > 1 {
                format!("partition {}: offsets", p.partition)
            } else {
                "offsets".to_string()
            };
            self.report(
                Anomaly::CorruptedRecord,
                step,
                format!(
                    "{at} {} carried values other than those produced there",
                    offsets_text(wrong)
                ),
            );
        }
        let mut with_data: Vec<Offset> = p.records.iter().map(|(o, _)| *o).collect();
        with_data.sort_unstable();
        let without: Vec<Offset> = capped_offsets(&p.acquired)
            .into_iter()
            .filter(|o| with_data.binary_search(o).is_err())
            .take(10_000)
            .collect();
        if !without.is_empty() {
            self.notes.push(format!(
                "step {step}: acquired offsets {} came without a data record",
                offsets_text(without)
            ));
        }
    }
}

/// The offsets of acquired ranges, at most [`MAX_RANGE`] of each (a hostile range may span 2^63).
fn capped_offsets(acquired: &[(Offset, Offset, i16)]) -> Vec<Offset> {
    acquired
        .iter()
        .flat_map(|(f, l, _)| *f..=(*l).min(f.saturating_add(100_000)))
        .collect()
}

/// Offsets `base..base + len` were produced with values `prefix` + 0, + 1, ….
#[derive(Clone, Debug)]
struct ProducedRun {
    base: Offset,
    len: Offset,
    prefix: String,
}

impl Oracle {
    /// Whether a record received at `offset` of `partition` carries a value other than the one
    /// produced there (an offset the case did not produce is not judged).
    fn produced_value_differs(&self, partition: i32, offset: Offset, value: Option<&str>) -> bool {
        let Some(runs) = self.produced.get(&partition) else {
            return false;
        };
        let i = runs.partition_point(|r| r.base + r.len <= offset);
        let Some(run) = runs.get(i).filter(|r| r.base <= offset) else {
            return false;
        };
        let k = offset - run.base;
        let Some(suffix) = value.and_then(|v| v.strip_prefix(run.prefix.as_str())) else {
            return true;
        };
        // `k` in decimal, exactly (no sign, no leading zeros).
        let canonical = !suffix.starts_with('+') && (suffix == "0" || !suffix.starts_with('0'));
        !(canonical && suffix.parse::<Offset>() == Ok(k))
    }
}

/// The acknowledgement batches for `partition`.
fn acks_for(acks: &[PartitionAcks], partition: i32) -> Vec<AckBatch> {
    acks.iter()
        .filter(|a| a.partition == partition)
        .flat_map(|a| a.batches.iter().cloned())
        .collect()
}

/// Judges a recorded history: the same events give the same judgement as the run that recorded
/// them. `profile` overrides the profile the history was recorded under.
pub fn judge(events: &[Event], profile: Option<Profile>) -> Result<Judgement, HistoryError> {
    crate::history::validate_events(events)?;
    let mut oracle = match events.first() {
        Some(Event::Setup(setup)) => Oracle::new(setup, profile)?,
        _ => Oracle::without_setup(),
    };
    for e in events {
        oracle.observe(e);
    }
    Ok(oracle.judgement())
}
