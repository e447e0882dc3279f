//! One share partition's judge: the set of candidate spec states a broker may be in, pruned by
//! every observation (the principles are in [`crate::oracle`]).

use super::{Millis, Names, Violation};
use sharecheck_model::model::{Cause, Transition, Transitions};
use sharecheck_model::session::SessionEffect;
use sharecheck_model::spec::{
    dlq_cause, AckBatch, AckError, AckType, AutoOffsetReset, Change, DlqCause, ErrorCode, InFlight,
    MemberIdx, Offset, RecordState, Rules, SharePartition,
};
use sharecheck_model::vocab::type_code_at;
use sharecheck_model::Anomaly;
use std::collections::{BTreeMap, BTreeSet};

/// Most records one response may acquire before it is called malformed: far above the in-flight
/// window of any case (traces allow at most 10,000).
const MAX_ACQUIRED: i64 = 1_000_000;

/// How the oracle judges one case.
#[derive(Clone, Copy, Debug)]
pub struct OracleConfig {
    /// The rules the target is expected to follow (profile, its effective delivery limit, window).
    pub rules: Rules,
    /// The group's acquisition-lock duration.
    pub lock_ms: Millis,
    /// Lateness allowed on a lock deadline or on noticing a dropped connection.
    pub tolerance_ms: Millis,
    /// Most candidate states carried before the case is declared inconclusive.
    pub max_candidates: usize,
    /// Behaviours of Apache Kafka accepted although the spec alone would not produce them.
    pub allowances: crate::trace::Allowances,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum TimedKind {
    /// The lock of an acquisition: these offsets, acquired by `member` with these counts.
    LockExpiry {
        member: MemberIdx,
        offsets: Vec<(Offset, u8)>,
    },
    /// The broker notices `member`'s connection dropped and releases its records.
    SessionRelease { member: MemberIdx },
    /// The group's last share session on the broker ended: the broker may drop the group's
    /// in-memory share-partition state and reload it from what was persisted
    /// (`SPM.ShareGroupListenerImpl.onGroupEmpty@4.2:873`, docs/semantics.md §6.3) — before the
    /// release of the ending session's records was written, it forgets the delivery (as T14).
    GroupReload,
    /// A lock of the partition's former leader, which may still write its expiry until the new
    /// leader loads the partition (`SharePartition::fenced_expiry_written`).
    FencedExpiry { offsets: Vec<(Offset, u8)> },
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Timed {
    earliest: Millis,
    latest: Millis,
    kind: TimedKind,
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Candidate {
    part: SharePartition,
    pending: Vec<Timed>,
    /// What this account of the spec has sent to the dead-letter queue: offset → delivery count
    /// and cause ([`dlq_cause`]; empty when the group has no DLQ).
    dlq: BTreeMap<Offset, (u8, DlqCause)>,
}

/// Why a candidate rejects an observation (the first candidate's reason is reported, unless it is
/// silent: the caller has reported it already).
#[derive(Clone, Debug)]
struct Reject {
    kind: Anomaly,
    detail: String,
    silent: bool,
}

impl Reject {
    fn new(kind: Anomaly, detail: String) -> Reject {
        Reject {
            kind,
            detail,
            silent: false,
        }
    }
}

/// What the share-session rules made of a request, decided once for every partition it names
/// (sessions are per member and broker, not per partition).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SessionVerdict {
    /// Refused with the top-level code the rules give: nothing else may happen.
    Refused(ErrorCode),
    /// The top-level code is not the rules': `Some(detail)` reports it here, `None` means it was
    /// reported with another partition.
    Mismatch(Option<String>),
    /// Accepted: what it did to the session, and whether the group has no session left on the
    /// broker afterwards.
    Accepted {
        /// The effect.
        effect: SessionEffect,
        /// No session of the group is left on the broker.
        group_empty: bool,
    },
}

/// A candidate that accepted an observation (with the transitions it went through), or the reason it
/// rejected it (with the candidate, to carry on from after an anomaly).
type Judged = Result<(Candidate, Transitions), (Reject, Candidate)>;

/// One observed ShareFetch for the case's partition.
#[derive(Clone, Debug)]
pub struct FetchObservation<'a> {
    /// Who sent it.
    pub member: MemberIdx,
    /// When it was sent.
    pub sent: Millis,
    /// When the answer arrived.
    pub received: Millis,
    /// The ShareSessionEpoch sent.
    pub epoch: i32,
    /// Whether it asked for records (MaxRecords > 0).
    pub fetches: bool,
    /// Piggy-backed acknowledgement batches (empty: none).
    pub acks: &'a [AckBatch],
    /// Top-level ErrorCode.
    pub top_error: ErrorCode,
    /// The partition's ErrorCode, if the partition is in the response.
    pub partition_error: Option<ErrorCode>,
    /// The partition's AcknowledgeErrorCode, if the partition is in the response.
    pub ack_error: Option<ErrorCode>,
    /// AcquiredRecords as (first, last, delivery count) exactly as on the wire.
    pub acquired: &'a [(Offset, Offset, i16)],
    /// AcquisitionLockTimeoutMs, when the response carries one.
    pub lock_timeout_ms: Option<i32>,
    /// Sent at v2 with `IsRenewAck` true.
    pub is_renew_ack: bool,
}

/// One observed ShareAcknowledge for the case's partition.
#[derive(Clone, Debug)]
pub struct AckObservation<'a> {
    /// Who sent it.
    pub member: MemberIdx,
    /// When it was sent.
    pub sent: Millis,
    /// When the answer arrived.
    pub received: Millis,
    /// The batches.
    pub acks: &'a [AckBatch],
    /// The partition's ErrorCode, if present.
    pub partition_error: Option<ErrorCode>,
    /// Sent at v2 with `IsRenewAck` true.
    pub is_renew_ack: bool,
    /// AcquisitionLockTimeoutMs of a v2 answer.
    pub lock_timeout_ms: Option<i32>,
}

/// The oracle for one case (one share partition).
#[derive(Clone, Debug)]
pub struct PartitionOracle {
    config: OracleConfig,
    candidates: Vec<Candidate>,
    anomalies: Vec<Violation>,
    notes: Vec<String>,
    exercised: Transitions,
    inconclusive: Option<String>,
    /// Judging stopped: too many timing alternatives to carry soundly (the case is inconclusive;
    /// nothing observed after that is judged, so no anomaly can come from a dropped alternative).
    stopped: bool,
    /// Offsets of acknowledgement requests the broker refused, with the step: a later sign that one
    /// of them was applied after all is a non-atomic acknowledgement.
    refused_acks: BTreeMap<Offset, usize>,
    /// `share.auto.offset.reset=latest`: the SPSO is set at the first fetch.
    latest_reset: bool,
    /// Whether a fetch has reached the partition (it is initialised then, §4.3).
    initialized: bool,
    /// The lowest start offset the share coordinator may hold for the partition: a write carries
    /// the SPSO as it was before the write's own change (`SP.writeShareGroupState@4.2.1:2761-2768`,
    /// the SPSO moves after it, 2522), so the persisted start trails the SPSO by up to one write
    /// (§18.2). `None`: nothing written since the share partition was initialised (start −1).
    start_floor: Option<Offset>,
    /// Leadership moved and no request has reached the new leader yet: the former leader's lock
    /// expiries may still be written (`TimedKind::FencedExpiry`) until one does.
    awaiting_load: bool,
}

impl PartitionOracle {
    /// A fresh share partition with an empty log.
    pub fn new(config: OracleConfig) -> PartitionOracle {
        PartitionOracle {
            config,
            candidates: vec![Candidate {
                part: SharePartition::new(0),
                pending: Vec::new(),
                dlq: BTreeMap::new(),
            }],
            anomalies: Vec::new(),
            notes: Vec::new(),
            exercised: Transitions::default(),
            inconclusive: None,
            stopped: false,
            refused_acks: BTreeMap::new(),
            latest_reset: false,
            initialized: false,
            awaiting_load: false,
            start_floor: None,
        }
    }

    /// With `latest`, the share partition starts at the high watermark of its first fetch
    /// (`share.auto.offset.reset=latest`, docs/semantics.md §4.3); otherwise at the log start.
    pub fn with_reset(mut self, latest: bool) -> PartitionOracle {
        self.latest_reset = latest;
        self
    }

    fn initialize(&mut self) {
        if self.initialized {
            return;
        }
        self.initialized = true;
        if self.latest_reset {
            for c in &mut self.candidates {
                c.part = SharePartition::initialized(AutoOffsetReset::Latest, c.part.log_end());
            }
        }
    }

    /// Whether a fetch or an alter has initialised the share partition.
    pub fn is_initialized(&self) -> bool {
        self.initialized
    }

    /// The anomalies found so far.
    pub fn anomalies(&self) -> &[Violation] {
        &self.anomalies
    }

    /// Why the case cannot be judged, if it cannot.
    pub fn inconclusive(&self) -> Option<&str> {
        self.inconclusive.as_deref()
    }

    /// Observations the oracle could not judge (noted, not failed).
    pub fn notes(&self) -> &[String] {
        &self.notes
    }

    /// The transition kinds exercised so far.
    pub fn exercised(&self) -> Transitions {
        self.exercised
    }

    /// The first candidate's partition (the one where no uncertain event has fired, if it survives).
    pub fn reference(&self) -> &SharePartition {
        &self.candidates[0].part
    }

    /// Marks the case inconclusive (the runner could not complete a step).
    pub fn set_inconclusive(&mut self, why: impl Into<String>) {
        if self.inconclusive.is_none() {
            self.inconclusive = Some(why.into());
        }
    }

    /// Records an anomaly found outside the spec (e.g. a claim step).
    pub fn report(&mut self, kind: Anomaly, step: usize, detail: impl Into<String>) {
        self.anomalies.push(Violation {
            kind,
            step,
            detail: detail.into(),
        });
    }

    fn note(&mut self, step: usize, text: impl Into<String>) {
        self.notes.push(format!("step {step}: {}", text.into()));
    }

    // ------------------------------------------------------------------------------------------
    // Timed events

    /// Candidates for an observation spanning `[sent, received]`: events surely due are applied, and
    /// each event that may or may not have happened splits the candidates.
    /// [`Self::expand`] for the request of `step`; `None` (and judging stops, inconclusive) when
    /// there are more timing alternatives than the oracle tracks.
    fn expand_at(
        &mut self,
        step: usize,
        sent: Millis,
        received: Millis,
    ) -> Option<Vec<(Candidate, Transitions)>> {
        let expanded = self.expand(sent, received);
        if self.stopped {
            self.stop(format!(
                "step {step}: more than {} timing alternatives to track",
                self.config.max_candidates
            ));
            return None;
        }
        Some(expanded)
    }

    fn expand(&mut self, sent: Millis, received: Millis) -> Vec<(Candidate, Transitions)> {
        let rules = self.config.rules;
        let mut out: Vec<(Candidate, Transitions)> = Vec::new();
        // Candidates are moved, not copied: a copy is made only where a timed event may or may not
        // have happened.
        for mut base in std::mem::take(&mut self.candidates) {
            let mut kinds = Transitions::default();
            let mut maybe: Vec<Timed> = Vec::new();
            if base.pending.iter().any(|t| t.earliest <= received) {
                base.pending.sort_by_key(|t| (t.earliest, t.latest));
                // A fenced former leader's write is best effort (a failed one is only logged): it
                // may not have happened even after its deadline.
                let (due, rest): (Vec<Timed>, Vec<Timed>) = base.pending.drain(..).partition(|t| {
                    t.latest < sent && !matches!(t.kind, TimedKind::FencedExpiry { .. })
                });
                for t in &due {
                    kinds.extend(fire(&rules, &mut base, &t.kind));
                }
                let (m, later): (Vec<Timed>, Vec<Timed>) =
                    rest.into_iter().partition(|t| t.earliest <= received);
                maybe = m;
                base.pending = later;
            }
            // Every subset of the maybe-events, applied in deadline order; "none fired" first.
            let mut branches: Vec<(Candidate, Transitions, Vec<Timed>)> =
                vec![(base, kinds, Vec::new())];
            for t in maybe {
                if branches.len() > self.config.max_candidates {
                    // Carrying every subset would take time and memory exponential in the events
                    // that may have happened: stop judging instead (the caller sees `stopped`).
                    self.stopped = true;
                    break;
                }
                let mut next = Vec::with_capacity(branches.len() * 2);
                for (c, k, unfired) in branches {
                    let mut fired = c.clone();
                    let mut fk = k;
                    fk.extend(fire(&rules, &mut fired, &t.kind));
                    let mut still = unfired.clone();
                    still.push(t.clone());
                    next.push((c, k, still));
                    next.push((fired, fk, unfired));
                }
                branches = next;
            }
            for (mut c, k, unfired) in branches {
                c.pending.extend(unfired);
                if !out.iter().any(|(o, _)| *o == c) {
                    out.push((c, k));
                }
            }
        }
        out
    }

    /// Keeps the candidates that accepted the observation, or reports the first rejection.
    fn settle(&mut self, step: usize, results: Vec<Judged>, force: impl FnOnce(&mut Candidate)) {
        let mut first_reject: Option<(Reject, Candidate)> = None;
        let mut alive: Vec<Candidate> = Vec::new();
        let mut kinds: Option<Transitions> = None;
        for r in results {
            match r {
                Ok((c, k)) => {
                    if kinds.is_none() {
                        kinds = Some(k);
                    }
                    if !alive.contains(&c) {
                        alive.push(c);
                    }
                }
                Err(e) => {
                    // The last alternative is the one where every timed event that may have
                    // fired did: the likeliest account of what the broker did, so its reason names
                    // the anomaly.
                    first_reject = Some(e);
                }
            }
        }
        if alive.is_empty() {
            let Some((reject, mut c)) = first_reject else {
                self.set_inconclusive(format!("step {step}: no candidate state left"));
                return;
            };
            if !reject.silent {
                self.anomalies.push(Violation {
                    kind: reject.kind,
                    step,
                    detail: reject.detail,
                });
            }
            // Carry on from what the broker evidently did, so later steps are still judged.
            force(&mut c);
            self.candidates = vec![c];
            return;
        }
        if let Some(k) = kinds {
            self.exercised.extend(k);
        }
        if alive.len() > self.config.max_candidates {
            self.stop(format!(
                "step {step}: more than {} timing alternatives to track",
                self.config.max_candidates
            ));
            return;
        }
        // Forget lock timers whose records have moved on: they can no longer change anything.
        for c in &mut alive {
            let part = &c.part;
            c.pending.retain(|t| match &t.kind {
                TimedKind::LockExpiry { member, offsets } => offsets
                    .iter()
                    .any(|(o, count)| part.still_acquired(*member, *o, *count)),
                TimedKind::SessionRelease { .. }
                | TimedKind::GroupReload
                | TimedKind::FencedExpiry { .. } => true,
            });
        }
        self.candidates = alive;
    }

    // ------------------------------------------------------------------------------------------
    // Observations

    /// `n` records were appended to the partition's log.
    /// Ends judging: the case is inconclusive for `why`.
    fn stop(&mut self, why: String) {
        self.set_inconclusive(why);
        self.stopped = true;
        self.candidates.truncate(1);
    }

    pub fn produced(&mut self, n: usize) {
        if self.stopped {
            return;
        }
        for c in &mut self.candidates {
            c.part.produce(n);
        }
    }

    /// How many records every candidate says are acquirable at `now` (after the locks surely expired
    /// by then), up to `max`; and the offsets.
    pub fn surely_acquirable(&self, now: Millis, max: usize) -> Vec<Offset> {
        if self.stopped {
            return Vec::new();
        }
        if self.latest_reset && !self.initialized {
            // The first fetch places the SPSO at the high watermark: nothing before it is acquirable.
            return Vec::new();
        }
        let rules = self.config.rules;
        let mut common: Option<BTreeSet<Offset>> = None;
        for cand in &self.candidates {
            let mut c = cand.clone();
            c.pending.sort_by_key(|t| (t.earliest, t.latest));
            let due: Vec<TimedKind> = c
                .pending
                .iter()
                .filter(|t| t.latest < now)
                .map(|t| t.kind.clone())
                .collect();
            for k in &due {
                fire(&rules, &mut c, k);
            }
            let set: BTreeSet<Offset> = c
                .part
                .next_acquisition(&rules, u32::MAX)
                .iter()
                .copied()
                .filter(|o| *o < c.part.log_end())
                .collect();
            common = Some(match common {
                None => set,
                Some(prev) => prev.intersection(&set).copied().collect(),
            });
        }
        common.unwrap_or_default().into_iter().take(max).collect()
    }

    /// When every lock and pending release known now has surely happened.
    pub fn all_timers_done_at(&self) -> Millis {
        self.candidates
            .iter()
            .flat_map(|c| c.pending.iter().map(|t| t.latest + 1))
            .max()
            .unwrap_or(0)
    }

    /// A ShareFetch and its answer.
    pub fn fetched(
        &mut self,
        step: usize,
        obs: &FetchObservation<'_>,
        names: &Names,
        verdict: &SessionVerdict,
    ) {
        if self.stopped {
            return;
        }
        let rules = self.config.rules;
        let (lock_ms, tol) = (self.config.lock_ms, self.config.tolerance_ms);
        // Shape checks that need no state. No response can acquire more records than the
        // in-flight window allows (at most 10,000 in any configuration the suite runs): a
        // response claiming more than MAX_ACQUIRED is not expanded.
        let mut offsets: Vec<(Offset, i16)> = Vec::new();
        for &(first, last, count) in obs.acquired {
            let span = last.checked_sub(first).and_then(|d| d.checked_add(1));
            let too_many = span.is_none_or(|n| offsets.len() as i64 + n > MAX_ACQUIRED);
            if first > last || too_many {
                self.report(
                    Anomaly::MalformedResponse,
                    step,
                    format!(
                        "AcquiredRecords range {first}..{last} (more than {MAX_ACQUIRED} records acquired by one response, or an inverted range)"
                    ),
                );
                return;
            }
            offsets.extend((first..=last).map(|o| (o, count)));
        }
        offsets.sort_unstable();
        if let Some(w) = offsets.windows(2).find(|w| w[0].0 == w[1].0) {
            self.report(
                Anomaly::OverlappingRanges,
                step,
                format!(
                    "offset {} appears in two AcquiredRecords ranges of one response",
                    w[0].0
                ),
            );
            return;
        }
        // A partition-level fetch error is not a KIP-932 rule the spec judges; it is noted, and the
        // rest of the response (session epoch, piggy-backed acknowledgements, any acquired records)
        // is judged as usual.
        if let Some(code) = obs.partition_error.filter(|c| *c != ErrorCode::NONE) {
            if obs.top_error == ErrorCode::NONE {
                let what = if obs.fetches {
                    "ShareFetch"
                } else {
                    "acknowledgement-only ShareFetch (MaxRecords 0)"
                };
                self.note(
                    step,
                    format!(
                        "{what} answered partition ErrorCode {code}; not a spec rule, not judged"
                    ),
                );
            }
        }
        if obs.top_error == ErrorCode::NONE && obs.epoch != -1 {
            self.initialize();
            self.check_lock_timeout(step, obs.lock_timeout_ms);
        }
        let has_acks = !obs.acks.is_empty();
        let spso_before = self.lowest_spso();
        let Some(mut expanded) = self.expand_at(step, obs.sent, obs.received) else {
            return;
        };
        let answered = obs.top_error == ErrorCode::NONE
            && obs.partition_error.is_none_or(|c| c == ErrorCode::NONE);
        if has_acks
            && obs.top_error == ErrorCode::NONE
            && obs.ack_error.is_none_or(|c| c == ErrorCode::NONE)
        {
            self.written(spso_before);
        }
        self.loaded(&mut expanded, answered);
        let mut results = Vec::new();
        for (cand, kinds) in expanded {
            results.extend(judge_fetch(
                &rules,
                names,
                verdict,
                cand,
                kinds,
                obs,
                &offsets,
                has_acks,
                (lock_ms, tol, self.config.allowances),
                &self.refused_acks,
            ));
        }
        let forced_offsets = offsets.clone();
        let member = obs.member;
        let limit = rules.delivery_limit;
        self.settle(step, results, |c| {
            force_acquired(&mut c.part, member, &forced_offsets, limit)
        });
        if has_acks {
            self.remember_refusal(step, obs.acks, obs.ack_error);
        }
    }

    /// The broker reports the group's configured lock duration, not the time left
    /// (docs/semantics.md §3, `KA@4.2 createResponse` uses recordLockDurationMsOrDefault; the v2
    /// ShareAcknowledge response the same, `KA@4.2:4054`).
    fn check_lock_timeout(&mut self, step: usize, reported: Option<i32>) {
        if let Some(reported) = reported.filter(|t| i64::from(*t) != self.config.lock_ms as i64) {
            self.report(
                Anomaly::WrongLockTimeout,
                step,
                format!(
                    "AcquisitionLockTimeoutMs {reported}, the group's share.record.lock.duration.ms is {}",
                    self.config.lock_ms
                ),
            );
        }
    }

    /// A ShareAcknowledge and its answer.
    pub fn acknowledged(
        &mut self,
        step: usize,
        obs: &AckObservation<'_>,
        verdict: &SessionVerdict,
    ) {
        if self.stopped {
            return;
        }
        let rules = self.config.rules;
        if matches!(verdict, SessionVerdict::Accepted { .. }) {
            self.check_lock_timeout(step, obs.lock_timeout_ms);
        }
        let renew_window = (
            obs.sent + self.config.lock_ms,
            obs.received + self.config.lock_ms + self.config.tolerance_ms,
        );
        let spso_before = self.lowest_spso();
        let Some(mut expanded) = self.expand_at(step, obs.sent, obs.received) else {
            return;
        };
        let answered = matches!(verdict, SessionVerdict::Accepted { .. })
            && obs.partition_error.is_none_or(|c| c == ErrorCode::NONE);
        if answered && !obs.acks.is_empty() {
            self.written(spso_before);
        }
        self.loaded(&mut expanded, answered);
        let mut results: Vec<Judged> = Vec::new();
        for (mut cand, mut kinds) in expanded {
            let r = match verdict {
                SessionVerdict::Refused(_) => Ok((cand, kinds)),
                SessionVerdict::Mismatch(detail) => Err((
                    Reject {
                        kind: Anomaly::WrongErrorCode,
                        detail: detail.clone().unwrap_or_default(),
                        silent: detail.is_none(),
                    },
                    cand,
                )),
                SessionVerdict::Accepted {
                    effect,
                    group_empty,
                } => {
                    let observed = obs.partition_error.unwrap_or(ErrorCode::NONE);
                    match apply_ack(
                        &rules,
                        &mut cand,
                        obs.member,
                        (obs.acks, obs.is_renew_ack),
                        observed,
                        &self.refused_acks,
                        renew_window,
                    ) {
                        Err(rej) => Err((rej, cand)),
                        Ok(k) => {
                            kinds.extend(k);
                            if *effect == SessionEffect::Closed {
                                let allow = self.config.allowances;
                                let late = if allow.async_close_release {
                                    self.config.tolerance_ms
                                } else {
                                    0
                                };
                                let reload = *group_empty && allow.group_reload;
                                for c in session_ended(
                                    cand,
                                    obs.member,
                                    obs.sent,
                                    obs.received + late,
                                    reload,
                                ) {
                                    results.push(Ok((c, kinds)));
                                }
                                continue;
                            }
                            Ok((cand, kinds))
                        }
                    }
                }
            };
            results.push(r);
        }
        let acks = obs.acks.to_vec();
        let member = obs.member;
        let observed = obs.partition_error.unwrap_or(ErrorCode::NONE);
        self.settle(step, results, |c| {
            if observed == ErrorCode::NONE {
                force_acks(&rules, &mut c.part, member, &acks);
                // A forced RENEW holds the record under a fresh lock, as an accepted one would.
                renew_locks(c, member, &acks, renew_window);
            }
        });
        self.remember_refusal(step, obs.acks, obs.partition_error);
    }

    fn remember_refusal(&mut self, step: usize, acks: &[AckBatch], code: Option<ErrorCode>) {
        let offsets = acks.iter().flat_map(|b| b.offsets(10_001));
        if code.is_some_and(|c| c != ErrorCode::NONE) && acks.len() > 1 {
            for o in offsets {
                self.refused_acks.insert(o, step);
            }
        } else if code == Some(ErrorCode::NONE) {
            for o in offsets {
                self.refused_acks.remove(&o);
            }
        }
    }

    /// The member's connection dropped at `at`; the broker releases its records soon after.
    /// `group_empty`: the group has no session left on the broker.
    pub fn disconnected(&mut self, member: MemberIdx, at: Millis, group_empty: bool) {
        if self.stopped {
            return;
        }
        let latest = at + self.config.tolerance_ms;
        let reload = group_empty && self.config.allowances.group_reload;
        let mut next = Vec::new();
        for c in std::mem::take(&mut self.candidates) {
            next.extend(session_ended(c, member, at, latest, reload));
        }
        next.dedup();
        self.candidates = next;
    }

    /// The broker restarted at `at`: acquisitions, locks and sessions are gone (T14).
    /// Leadership moved to another broker (or the leader was stopped, not killed): as a restart
    /// (T14), except that the former leader's pending lock expiries may still be written before the
    /// new leader loads the partition at its first request.
    pub fn leader_moved(&mut self) {
        let fenced_writes = self.config.allowances.fenced_leader_expiry;
        self.reload_every_candidate(|pending| {
            if !fenced_writes {
                return Vec::new();
            }
            pending
                .iter()
                .filter_map(|t| match &t.kind {
                    TimedKind::LockExpiry { offsets, .. } => Some(Timed {
                        earliest: t.earliest,
                        latest: t.latest,
                        kind: TimedKind::FencedExpiry {
                            offsets: offsets.clone(),
                        },
                    }),
                    _ => None,
                })
                .collect()
        });
        if !self.stopped {
            self.awaiting_load = true;
        }
    }

    /// Every candidate reloads from what was written ([`SharePartition::restart`]); its pending
    /// timed events become what `keep` makes of them.
    fn reload_every_candidate(&mut self, keep: impl Fn(&[Timed]) -> Vec<Timed>) {
        if self.stopped {
            return;
        }
        for c in &mut self.candidates {
            let kept = keep(&c.pending);
            let changes = c.part.restart(&self.config.rules);
            for ch in &changes {
                self.exercised
                    .extend(Transitions::of_change(Cause::Restart, ch));
            }
            if changes.is_empty() {
                self.exercised.add(Transition::Restart);
            }
            c.pending = kept;
        }
        self.candidates.dedup();
    }

    /// A request reached the partition's leader and was answered without a partition error: if
    /// leadership had moved, the new leader has loaded the partition now, and the former leader's
    /// writes are fenced.
    fn loaded(&mut self, expanded: &mut [(Candidate, Transitions)], answered: bool) {
        if self.awaiting_load && answered {
            for (c, _) in expanded.iter_mut() {
                c.pending
                    .retain(|t| !matches!(t.kind, TimedKind::FencedExpiry { .. }));
            }
            self.awaiting_load = false;
        }
    }

    pub fn restarted(&mut self) {
        self.reload_every_candidate(|_| Vec::new());
    }

    /// The lowest SPSO of any candidate now.
    fn lowest_spso(&self) -> Offset {
        self.candidates
            .iter()
            .map(|c| c.part.spso())
            .min()
            .unwrap_or(0)
    }

    /// An acknowledgement was answered with success: its state write carried the SPSO from before.
    fn written(&mut self, spso_before: Offset) {
        self.start_floor = Some(spso_before);
    }

    /// The group's share-group state of this partition was replaced (AlterShareGroupOffsets with
    /// `Some(start)`, DeleteShareGroupOffsets with `None`: the next fetch initialises it by
    /// `share.auto.offset.reset`). Acquisitions, locks and pending releases are gone with it.
    /// `maybe_cached`: a connection of the group to the leader may still hold the share partition
    /// in its cache, which the coordinator's new state does not reach until the cache drops it
    /// (`SharePartitionManager.ShareGroupListenerImpl.onGroupEmpty@4.2.1:873`, on a disconnect):
    /// the old state stays a candidate.
    pub fn offsets_replaced(&mut self, step: usize, start: Option<Offset>, maybe_cached: bool) {
        if self.stopped {
            return;
        }
        if maybe_cached && start.is_none() {
            self.stop(format!(
                "step {step}: offsets deleted while a connection of the group may keep the share partition cached"
            ));
            return;
        }
        let mut next: Vec<Candidate> = Vec::new();
        for c in std::mem::take(&mut self.candidates) {
            let part = match start {
                Some(s) => c.part.altered(s),
                None => SharePartition::initialized(AutoOffsetReset::Earliest, c.part.log_end()),
            };
            let fresh = Candidate {
                part,
                pending: Vec::new(),
                dlq: c.dlq.clone(),
            };
            if !next.contains(&fresh) {
                next.push(fresh);
            }
            if maybe_cached && !next.contains(&c) {
                next.push(c);
            }
        }
        self.candidates = next;
        self.refused_acks.clear();
        self.initialized = start.is_some();
        self.start_floor = start;
    }

    /// A DescribeShareGroupOffsets answer for this partition. `start` is what the share coordinator
    /// holds: −1 while nothing was written since the share partition was initialised (then lag is
    /// −1 too), else at most the SPSO of some candidate and at least the SPSO before the latest
    /// write (§18.2). `lag` (v1), once the start is known, is [`SharePartition::lag`]: the count of
    /// records from the SPSO on that are not yet terminal, which does not depend on how far the
    /// persisted start trails.
    // A rejected candidate travels by value, as in every `Judged`.
    #[allow(clippy::result_large_err)]
    pub fn described(
        &mut self,
        step: usize,
        (sent, received): (Millis, Millis),
        start: i64,
        lag: Option<i64>,
    ) {
        if self.stopped {
            return;
        }
        if start == -1 {
            if self.start_floor.is_some() {
                self.report(
                    Anomaly::StartOffsetMismatch,
                    step,
                    "start offset -1 (nothing written), but an alter or an acknowledgement answered with success wrote it",
                );
            } else if let Some(l) = lag.filter(|l| *l != -1) {
                self.report(
                    Anomaly::LagMismatch,
                    step,
                    format!("lag {l} with start offset -1: a lag needs a start offset"),
                );
            }
            return;
        }
        let Some(expanded) = self.expand_at(step, sent, received) else {
            return;
        };
        let floor = self.start_floor.unwrap_or(0);
        let results: Vec<Judged> = expanded
            .into_iter()
            .map(|(c, k)| {
                let (spso, want_lag) = (c.part.spso(), c.part.lag());
                let trails = self.config.allowances.start_offset_trails;
                if start > spso || start < floor || (!trails && start != spso) {
                    Err((
                        Reject::new(
                            Anomaly::StartOffsetMismatch,
                            format!(
                                "start offset {start}, but the share-partition start offset is {spso} and the last one written at least {floor}"
                            ),
                        ),
                        c,
                    ))
                } else if let Some(l) = lag.filter(|l| *l != want_lag) {
                    Err((
                        Reject::new(
                            Anomaly::LagMismatch,
                            format!(
                                "lag {l}, but {want_lag} record(s) from the start offset {spso} to the end offset {} are not yet acknowledged or archived",
                                c.part.log_end()
                            ),
                        ),
                        c,
                    ))
                } else {
                    Ok((c, k))
                }
            })
            .collect();
        self.settle(step, results, |_| {});
    }

    /// How many records every account of the spec has sent to the dead-letter queue so far.
    pub fn dlq_surely(&self) -> usize {
        if self.stopped {
            return 0;
        }
        self.candidates
            .iter()
            .map(|c| c.dlq.len())
            .min()
            .unwrap_or(0)
    }

    /// What the dead-letter topic holds for this partition: (source offset, delivery count, cause)
    /// per record, in the topic's order. With `writable`, it must be exactly what the spec sent
    /// there, each once; otherwise nothing (docs/semantics.md §19).
    #[allow(clippy::result_large_err)]
    pub fn dlq_read(
        &mut self,
        step: usize,
        (sent, received): (Millis, Millis),
        observed: &[(Offset, u8, DlqCause)],
        writable: bool,
    ) {
        if self.stopped {
            return;
        }
        let mut seen: BTreeMap<Offset, usize> = BTreeMap::new();
        for (o, _, _) in observed {
            *seen.entry(*o).or_default() += 1;
        }
        let twice: Vec<Offset> = seen
            .iter()
            .filter(|(_, n)| **n > 1)
            .map(|(o, _)| *o)
            .collect();
        if !twice.is_empty() {
            self.report(
                Anomaly::DlqDuplicate,
                step,
                format!(
                    "offsets {} are in the DLQ topic more than once",
                    offsets_text(twice)
                ),
            );
        }
        let Some(expanded) = self.expand_at(step, sent, received) else {
            return;
        };
        let results: Vec<Judged> = expanded
            .into_iter()
            .map(|(c, k)| {
                let empty = BTreeMap::new();
                let want = if writable { &c.dlq } else { &empty };
                if let Some((o, _, _)) = observed.iter().find(|(o, _, _)| !want.contains_key(o)) {
                    let why = if writable {
                        format!("offset {o} is in the DLQ topic, but the spec never archived it for a dead-letter reason")
                    } else {
                        format!("offset {o} is in a DLQ topic no broker may write to")
                    };
                    return Err((Reject::new(Anomaly::DlqUnexpected, why), c));
                }
                if let Some((o, n, cause)) = observed
                    .iter()
                    .find(|(o, n, cause)| want.get(o) != Some(&(*n, *cause)))
                {
                    let (wn, wc) = want[o];
                    return Err((
                        Reject::new(
                            Anomaly::DlqHeaderWrong,
                            format!(
                                "offset {o} in the DLQ topic with delivery count {n} and cause \"{}\"; the spec archived it with count {wn} and cause \"{}\"",
                                cause.message(),
                                wc.message()
                            ),
                        ),
                        c,
                    ));
                }
                let missing: Vec<Offset> =
                    want.keys().copied().filter(|o| !seen.contains_key(o)).collect();
                if !missing.is_empty() {
                    return Err((
                        Reject::new(
                            Anomaly::DlqMissing,
                            format!(
                                "offsets {} were archived for a dead-letter reason but are not in the DLQ topic",
                                offsets_text(missing)
                            ),
                        ),
                        c,
                    ));
                }
                Ok((c, k))
            })
            .collect();
        self.settle(step, results, |_| {});
    }

    /// The group's delivery limit, in-flight window or lock duration changed while the case runs.
    pub fn reconfigured(&mut self, f: impl Fn(&mut OracleConfig)) {
        f(&mut self.config);
    }

    /// The runner fetched for `patience_ms` and the member received `got` of the `wanted` records
    /// every candidate said were acquirable: if some never came, that is a lost record or a missing
    /// redelivery.
    pub fn check_missing(
        &mut self,
        step: usize,
        wanted: &[Offset],
        got: &BTreeSet<Offset>,
        patience_ms: u64,
    ) {
        if self.stopped {
            return;
        }
        let missing: Vec<Offset> = wanted
            .iter()
            .copied()
            .filter(|o| !got.contains(o))
            .collect();
        if missing.is_empty() || got.len() >= wanted.len() {
            return;
        }
        let redelivery = missing.iter().any(|o| {
            self.reference()
                .record(*o)
                .is_some_and(|r| r.delivery_count > 0)
        });
        let kind = if redelivery {
            Anomaly::MissingRedelivery
        } else {
            Anomaly::LostRecord
        };
        let detail = format!(
            "offsets {} were acquirable by every account of the spec but were not delivered within {patience_ms} ms of fetching",
            offsets_text(missing.iter().copied())
        );
        self.report(kind, step, detail);
    }

    /// The record table of the reference candidate, one line per offset from the SPSO.
    pub fn table(&self, names: &Names) -> Vec<String> {
        let p = self.reference();
        let mut lines: Vec<String> = p
            .records()
            .filter(|(o, _)| *o >= p.spso().saturating_sub(0))
            .map(|(o, r)| {
                let state = match r.state {
                    RecordState::Available if r.delivery_count == 0 && o >= p.cache_end() => {
                        "Available (not fetched)".to_string()
                    }
                    RecordState::Available => "Available".to_string(),
                    RecordState::Acquired(_) => names.state(r.state),
                    RecordState::Acknowledged => "Acknowledged".to_string(),
                    RecordState::Archived => "Archived".to_string(),
                };
                let spso = if o == p.spso() { "  <- SPSO" } else { "" };
                format!(
                    "offset {o}: {state}, delivery count {}{spso}",
                    r.delivery_count
                )
            })
            .collect();
        if self.candidates.len() > 1 {
            lines.push(format!(
                "({} timing alternatives still possible)",
                self.candidates.len()
            ));
        }
        lines
    }
}

/// Offsets as compact ranges: `[0-99, 101]`.
pub fn offsets_text(offsets: impl IntoIterator<Item = Offset>) -> String {
    let mut v: Vec<Offset> = offsets.into_iter().collect();
    v.sort_unstable();
    v.dedup();
    let mut parts: Vec<String> = Vec::new();
    let mut i = 0;
    while i < v.len() {
        let mut j = i;
        while j + 1 < v.len() && v[j + 1] == v[j] + 1 {
            j += 1;
        }
        parts.push(if i == j {
            v[i].to_string()
        } else {
            format!("{}-{}", v[i], v[j])
        });
        i = j + 1;
    }
    format!("[{}]", parts.join(", "))
}

/// A share session ended (closed, or its connection dropped) between `from` and `until`: Kafka
/// releases the member's records asynchronously — a close is answered before the release takes
/// effect (docs/findings.md F4) — so the release is a timed event in that window. When it was the
/// group's last session on the broker, the broker may instead drop and reload the group's share
/// partitions, forgetting deliveries whose release was not yet written (F5): a second alternative.
fn session_ended(
    mut c: Candidate,
    member: MemberIdx,
    from: Millis,
    until: Millis,
    group_empty: bool,
) -> Vec<Candidate> {
    let mut reload = group_empty.then(|| c.clone());
    c.pending.push(Timed {
        earliest: from,
        latest: until,
        kind: TimedKind::SessionRelease { member },
    });
    let mut out = vec![c];
    if let Some(mut r) = reload.take() {
        r.pending.push(Timed {
            earliest: from,
            latest: until,
            kind: TimedKind::GroupReload,
        });
        out.push(r);
    }
    out
}

/// Applies one timed event.
fn fire(rules: &Rules, cand: &mut Candidate, kind: &TimedKind) -> Transitions {
    let mut kinds = Transitions::default();
    match kind {
        TimedKind::LockExpiry { member, offsets } => {
            for ch in cand.part.expire_acquisition(rules, *member, offsets) {
                kinds.extend(Transitions::of_change(Cause::LockExpiry, &ch));
                note_dlq(&mut cand.dlq, None, &ch);
            }
        }
        TimedKind::SessionRelease { member } => {
            kinds.extend(release(rules, cand, *member));
        }
        TimedKind::GroupReload => {
            // A reload is not a transition a client asked for: no coverage kind.
            cand.part.restart(rules);
        }
        TimedKind::FencedExpiry { offsets } => {
            for ch in cand.part.fenced_expiry_written(rules, offsets) {
                kinds.extend(Transitions::of_change(Cause::LockExpiry, &ch));
                note_dlq(&mut cand.dlq, None, &ch);
            }
        }
    }
    kinds
}

fn release(rules: &Rules, cand: &mut Candidate, member: MemberIdx) -> Transitions {
    let mut kinds = Transitions::default();
    for ch in cand.part.release_session(rules, member) {
        kinds.extend(Transitions::of_change(Cause::SessionRelease, &ch));
        note_dlq(&mut cand.dlq, None, &ch);
    }
    kinds
}

/// Notes a change the spec sends to the dead-letter queue ([`dlq_cause`]).
fn note_dlq(dlq: &mut BTreeMap<Offset, (u8, DlqCause)>, by_ack: Option<AckType>, ch: &Change) {
    if let Some(cause) = dlq_cause(by_ack, ch) {
        dlq.insert(ch.offset, (ch.to.delivery_count, cause));
    }
}

fn ack_kinds(changes: &[Change], acks: &[AckBatch]) -> Transitions {
    let mut kinds = Transitions::default();
    for ch in changes {
        let ty = type_code_at(acks, ch.offset).and_then(AckType::from_code);
        if let Some(ty) = ty {
            kinds.extend(Transitions::of_change(Cause::Ack(ty), ch));
        }
    }
    kinds
}

/// Applies acknowledgements in a candidate and compares the code with the observed one.
/// The records `acks` RENEW that `member` holds, with their counts.
fn renewed_offsets(cand: &Candidate, member: MemberIdx, acks: &[AckBatch]) -> Vec<(Offset, u8)> {
    let renew = AckType::Renew.code();
    acks.iter()
        .flat_map(|b| {
            b.offsets(10_001)
                .filter(move |o| b.type_at(*o) == Some(renew))
        })
        .filter_map(|o| match cand.part.record(o) {
            Some(r) if r.state == RecordState::Acquired(member) => Some((o, r.delivery_count)),
            _ => None,
        })
        .collect()
}

/// Takes `offsets` out of `member`'s pending lock expiries; returns the earliest window they had.
fn take_locks(cand: &mut Candidate, member: MemberIdx, offsets: &[(Offset, u8)]) -> Option<Millis> {
    let mut earliest: Option<Millis> = None;
    for t in &mut cand.pending {
        if let TimedKind::LockExpiry {
            member: m,
            offsets: o,
        } = &mut t.kind
        {
            if *m == member && o.iter().any(|(x, _)| offsets.iter().any(|(r, _)| r == x)) {
                o.retain(|(x, _)| !offsets.iter().any(|(r, _)| r == x));
                earliest = Some(earliest.map_or(t.earliest, |e| e.min(t.earliest)));
            }
        }
    }
    cand.pending.retain(
        |t| !matches!(&t.kind, TimedKind::LockExpiry { offsets, .. } if offsets.is_empty()),
    );
    earliest
}

/// RENEW (T7): the renewed records stay `member`'s with their count, and their lock restarts when
/// the broker handles the request (between `window.0` and `window.1`): the old lock's expiry no
/// longer applies to them, a new one is pending.
fn renew_locks(
    cand: &mut Candidate,
    member: MemberIdx,
    acks: &[AckBatch],
    window: (Millis, Millis),
) {
    restart_locks(cand, member, acks, window, false);
}

/// A refused request that also RENEWed: Kafka restarts a lock as it meets the RENEW, before a later
/// batch fails, and the refusal does not undo it (`SP.acknowledge@4.2:2295-2305`; the rollback,
/// `SP.rollbackOrProcessStateUpdates@4.2:2451-2467`, only reverts state changes, and RENEW makes
/// none). So each such record's lock ends at its old deadline or at the renewed one: its expiry
/// window stretches from the old earliest to the renewed latest.
fn maybe_renewed(
    cand: &mut Candidate,
    member: MemberIdx,
    acks: &[AckBatch],
    window: (Millis, Millis),
) {
    restart_locks(cand, member, acks, window, true);
}

/// The lock window of each record `acks` RENEW that `member` holds becomes `window`, or, with
/// `or_old`, stretches from its old earliest to `window.1`.
fn restart_locks(
    cand: &mut Candidate,
    member: MemberIdx,
    acks: &[AckBatch],
    window: (Millis, Millis),
    or_old: bool,
) {
    let renewed = renewed_offsets(cand, member, acks);
    if renewed.is_empty() {
        return;
    }
    let old = take_locks(cand, member, &renewed);
    let earliest = match old {
        Some(e) if or_old => e.min(window.0),
        _ => window.0,
    };
    cand.pending.push(Timed {
        earliest,
        latest: window.1,
        kind: TimedKind::LockExpiry {
            member,
            offsets: renewed,
        },
    });
}

/// `acks`: the batches and whether the request said `IsRenewAck`.
fn apply_ack(
    rules: &Rules,
    cand: &mut Candidate,
    member: MemberIdx,
    (acks, is_renew_ack): (&[AckBatch], bool),
    observed: ErrorCode,
    refused: &BTreeMap<Offset, usize>,
    renew_window: (Millis, Millis),
) -> Result<Transitions, Reject> {
    // The spec applies a request all or nothing, so it can run on the candidate itself: on an error
    // nothing changed, and a candidate whose answer differs from the observed one is dropped.
    let expected: Result<Vec<Change>, AckError> = cand
        .part
        .acknowledge(rules, member, acks, is_renew_ack)
        .map(|c| c.to_vec());
    if expected.is_ok() && observed == ErrorCode::NONE {
        renew_locks(cand, member, acks, renew_window);
    }
    match expected {
        Ok(changes) if observed == ErrorCode::NONE => {
            for ch in &changes {
                let ty = type_code_at(acks, ch.offset).and_then(AckType::from_code);
                note_dlq(&mut cand.dlq, ty, ch);
            }
            let part = &cand.part;
            let mut kinds = ack_kinds(&changes, acks);
            if changes.is_empty() && acks.iter().all(|b| b.last_offset < part.spso()) {
                // Acknowledgements wholly below the SPSO are ignored (§5.3).
                kinds = Transitions::default();
            }
            Ok(kinds)
        }
        Ok(_) => {
            let prior = acks
                .iter()
                .flat_map(|b| b.offsets(10_001))
                .find_map(|o| refused.get(&o).map(|s| (o, *s)));
            let kind = if prior.is_some() {
                Anomaly::NonAtomicAck
            } else {
                Anomaly::WrongErrorCode
            };
            let mut detail =
                format!("acknowledgement answered {observed}; the spec accepts it (NONE)");
            if let Some((o, s)) = prior {
                detail.push_str(&format!(
                    "; offset {o} was in an acknowledgement refused at step {s}, which must have changed nothing"
                ));
            }
            Err(Reject::new(kind, detail))
        }
        Err(e) if e.code == observed => {
            let mut kinds = Transitions::default();
            if e.code == ErrorCode::INVALID_RECORD_STATE {
                kinds.add(Transition::AckRefused);
            }
            if is_renew_ack {
                maybe_renewed(cand, member, acks, renew_window);
            }
            Ok(kinds)
        }
        Err(e) => {
            let kind = if observed == ErrorCode::NONE && e.code == ErrorCode::INVALID_RECORD_STATE {
                Anomaly::AckAcceptedForUnownedRecord
            } else {
                Anomaly::WrongErrorCode
            };
            let at = e
                .offset
                .map(|o| format!(" (offset {o}: {})", e.reason))
                .unwrap_or_else(|| format!(" ({})", e.reason));
            Err(Reject::new(
                kind,
                format!(
                    "acknowledgement answered {observed}; the spec says {}{at}",
                    e.code
                ),
            ))
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn judge_fetch(
    rules: &Rules,
    names: &Names,
    verdict: &SessionVerdict,
    mut cand: Candidate,
    mut kinds: Transitions,
    obs: &FetchObservation<'_>,
    offsets: &[(Offset, i16)],
    has_acks: bool,
    (lock_ms, tol, allow): (Millis, Millis, crate::trace::Allowances),
    refused: &BTreeMap<Offset, usize>,
) -> Vec<Judged> {
    let reject = |kind: Anomaly, detail: String, cand: Candidate| {
        vec![Err((Reject::new(kind, detail), cand))]
    };
    let (effect, group_empty) = match verdict {
        SessionVerdict::Refused(code) => {
            if offsets.is_empty() {
                return vec![Ok((cand, kinds))];
            }
            return reject(
                Anomaly::UnexpectedAcquisition,
                format!("records were acquired by a ShareFetch refused with {code}"),
                cand,
            );
        }
        SessionVerdict::Mismatch(detail) => {
            let r = Reject {
                kind: Anomaly::WrongErrorCode,
                detail: detail.clone().unwrap_or_default(),
                silent: detail.is_none(),
            };
            return vec![Err((r, cand))];
        }
        SessionVerdict::Accepted {
            effect,
            group_empty,
        } => (*effect, *group_empty),
    };
    let observed_ack = obs.ack_error.unwrap_or(ErrorCode::NONE);
    if effect == SessionEffect::Closed {
        if !offsets.is_empty() {
            return reject(
                Anomaly::UnexpectedAcquisition,
                "records were acquired by a session-closing ShareFetch".into(),
                cand,
            );
        }
        let window = (obs.sent + lock_ms, obs.received + lock_ms + tol);
        return match apply_ack(
            rules,
            &mut cand,
            obs.member,
            (obs.acks, obs.is_renew_ack),
            observed_ack,
            refused,
            window,
        ) {
            Ok(k) => {
                kinds.extend(k);
                let mut out = Vec::new();
                let late = if allow.async_close_release { tol } else { 0 };
                let reload = group_empty && allow.group_reload;
                for c in session_ended(cand, obs.member, obs.sent, obs.received + late, reload) {
                    out.push(Ok((c, kinds)));
                }
                out
            }
            Err(e) => vec![Err((e, cand))],
        };
    }
    if !has_acks {
        return match acquire(rules, names, &mut cand, obs, offsets, lock_ms, tol) {
            Ok(fk) => {
                kinds.extend(fk);
                vec![Ok((cand, kinds))]
            }
            Err(e) => vec![Err((e, cand))],
        };
    }
    // Acknowledgements and the fetch are processed concurrently by Kafka (§6.2): either order.
    let mut out = Vec::new();
    for ack_first in [true, false] {
        let mut c = cand.clone();
        let mut k = kinds;
        let order: [bool; 2] = if ack_first {
            [true, false]
        } else {
            [false, true]
        };
        let mut failed: Option<Reject> = None;
        for is_ack in order {
            let r = if is_ack {
                apply_ack(
                    rules,
                    &mut c,
                    obs.member,
                    (obs.acks, obs.is_renew_ack),
                    observed_ack,
                    refused,
                    (obs.sent + lock_ms, obs.received + lock_ms + tol),
                )
            } else {
                acquire(rules, names, &mut c, obs, offsets, lock_ms, tol)
            };
            match r {
                Ok(more) => k.extend(more),
                Err(e) => {
                    failed = Some(e);
                    break;
                }
            }
        }
        out.push(match failed {
            None => Ok((c, k)),
            Some(e) => Err((e, c)),
        });
    }
    out
}

/// Judges the acquisition part of a fetch in one candidate.
fn acquire(
    rules: &Rules,
    names: &Names,
    c: &mut Candidate,
    obs: &FetchObservation<'_>,
    offsets: &[(Offset, i16)],
    lock_ms: Millis,
    tol: Millis,
) -> Result<Transitions, Reject> {
    if offsets.is_empty() {
        return Ok(Transitions::default());
    }
    if !obs.fetches {
        return Err(Reject {
            kind: Anomaly::UnexpectedAcquisition,
            detail: "records were acquired by a ShareFetch with MaxRecords 0".into(),
            silent: false,
        });
    }
    let list: Vec<Offset> = offsets.iter().map(|(o, _)| *o).collect();
    let before: Vec<Option<InFlight>> = list.iter().map(|o| c.part.record(*o)).collect();
    let ranges = match c.part.acquire(rules, obs.member, &list) {
        Ok(r) => r,
        Err(e) => {
            // `acquire` checks before it changes anything: the partition is as it was.
            let rec = c.part.record(e.offset);
            let kind = match rec.map(|r| r.state) {
                None => Anomaly::PhantomRecord,
                Some(RecordState::Acquired(m)) if m == obs.member => Anomaly::EarlyRedelivery,
                Some(RecordState::Acquired(_)) => Anomaly::DoubleAcquire,
                Some(RecordState::Acknowledged) => Anomaly::RedeliveredAfterAccept,
                Some(RecordState::Archived)
                    if rec.is_some_and(|r| r.delivery_count >= rules.delivery_limit) =>
                {
                    Anomaly::DeliveryLimitExceeded
                }
                Some(RecordState::Archived) => Anomaly::RedeliveredAfterArchive,
                Some(RecordState::Available) if e.reason.contains("window") => {
                    Anomaly::WindowLimitExceeded
                }
                Some(RecordState::Available) => Anomaly::OutOfOrderAcquisition,
            };
            let state = rec.map_or("not in the log".to_string(), |r| {
                format!(
                    "{} with delivery count {}",
                    names.state(r.state),
                    r.delivery_count
                )
            });
            let allowed = offsets_text(c.part.next_acquisition(rules, u32::MAX));
            return Err(Reject::new(
                kind,
                format!(
                    "offset {} was acquired, but the spec has it {state} ({}); acquirable were {allowed}",
                    e.offset, e.reason
                ),
            ));
        }
    };
    let mut wrong = Vec::new();
    let mut over_limit = false;
    for &(o, observed) in offsets {
        // The spec's ranges are in offset order.
        let i = ranges.partition_point(|r| r.last_offset < o);
        let expected = ranges
            .get(i)
            .filter(|r| r.first_offset <= o)
            .map(|r| i16::from(r.delivery_count));
        if expected != Some(observed) {
            over_limit |= observed > i16::from(rules.delivery_limit);
            wrong.push(format!(
                "offset {o}: delivery count {observed}, spec {}",
                expected.map_or("-".into(), |e| e.to_string())
            ));
        }
    }
    if !wrong.is_empty() {
        let kind = if over_limit {
            Anomaly::DeliveryLimitExceeded
        } else {
            Anomaly::DeliveryCountMismatch
        };
        return Err(Reject::new(kind, wrong.join("; ")));
    }
    let mut kinds = Transitions::default();
    for (&o, from) in list.iter().zip(before) {
        if let (Some(from), Some(to)) = (from, c.part.record(o)) {
            kinds.extend(Transitions::of_change(
                Cause::Acquire,
                &Change {
                    offset: o,
                    from,
                    to,
                },
            ));
        }
    }
    let counts: Vec<(Offset, u8)> = list
        .iter()
        .filter_map(|o| c.part.record(*o).map(|r| (*o, r.delivery_count)))
        .collect();
    c.pending.push(Timed {
        earliest: obs.sent + lock_ms,
        latest: obs.received + lock_ms + tol,
        kind: TimedKind::LockExpiry {
            member: obs.member,
            offsets: counts,
        },
    });
    Ok(kinds)
}

/// After an anomaly: make the reference state agree with what the broker evidently did.
fn force_acquired(
    part: &mut SharePartition,
    member: MemberIdx,
    offsets: &[(Offset, i16)],
    limit: u8,
) {
    let _ = limit;
    // A record the log does not have (a phantom) is not forced into it: the anomaly is reported,
    // and a hostile offset of 2^62 must not grow the log.
    let end = part.log_end();
    for &(o, count) in offsets.iter().filter(|(o, _)| *o < end) {
        part.force_record(o, RecordState::Acquired(member), count.clamp(0, 255) as u8);
    }
}

fn force_acks(rules: &Rules, part: &mut SharePartition, member: MemberIdx, acks: &[AckBatch]) {
    for b in acks {
        for o in b.offsets(10_001) {
            let Some(rec) = part.record(o) else { continue };
            // A per-offset list without an entry for `o` was refused by validation: nothing to force.
            let Some(code) = b.type_at(o) else { continue };
            let state = match AckType::from_code(code) {
                Some(AckType::Accept) => RecordState::Acknowledged,
                Some(AckType::Release) if rec.delivery_count < rules.delivery_limit => {
                    RecordState::Available
                }
                Some(AckType::Renew) => RecordState::Acquired(member),
                _ => RecordState::Archived,
            };
            part.force_record(o, state, rec.delivery_count);
        }
    }
}
