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

pub use partition::{offsets_text, OracleConfig};

use crate::history::{Event, FetchedPartition, HistoryError, PartitionAcks, Setup};
use partition::{AckObservation, FetchObservation, PartitionOracle};
use serde::{Deserialize, Serialize};
use sharecheck_model::model::Transitions;
use sharecheck_model::spec::{AckBatch, ErrorCode, MemberIdx, Offset, RecordState, Rules};
use sharecheck_model::{Anomaly, Profile};
use std::collections::BTreeMap;

/// Milliseconds since the case started.
pub type Millis = u64;

/// The partition every single-partition case uses.
const PARTITION: i32 = 0;

/// Most offsets of one acquired range the oracle expands (a hostile range may span 2^63).
const MAX_RANGE: i64 = 1_000_000;

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

/// The fetch step under way: what every account of the spec said was acquirable, and what came.
#[derive(Clone, Debug)]
struct FetchStep {
    step: usize,
    member: String,
    want: Vec<Offset>,
    got: std::collections::BTreeSet<Offset>,
    patience_ms: Millis,
}

/// The oracle of one case.
#[derive(Clone, Debug)]
pub struct Oracle {
    part: PartitionOracle,
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
    /// What was produced where: runs of offsets whose record `k` has value `prefix` + `k`.
    produced: Vec<ProducedRun>,
    /// Records each member name received, over all its incarnations.
    received: BTreeMap<String, u64>,
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
            ..Rules::kafka_defaults(profile)
        };
        let part = PartitionOracle::new(OracleConfig {
            rules,
            lock_ms: setup.lock_ms,
            tolerance_ms: setup.tolerance_ms,
            max_candidates: setup.max_candidates,
        })
        .with_reset(setup.latest_reset);
        Ok(Oracle {
            part,
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
            produced: Vec::new(),
            received: BTreeMap::new(),
        })
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
        };
        Oracle::new(&setup, Some(Profile::DEFAULT)).expect("a known profile")
    }

    // ------------------------------------------------------------------------------------------
    // What the runner may ask while a case runs (read-only)

    /// The offsets every account of the spec says are acquirable at `now` (after the locks and
    /// releases surely due by then), up to `max`.
    pub fn surely_acquirable(&self, now: Millis, max: usize) -> Vec<Offset> {
        self.part.surely_acquirable(now, max)
    }

    /// When every lock and pending release known now has surely happened.
    pub fn all_timers_done_at(&self) -> Millis {
        self.part.all_timers_done_at()
    }

    /// Records `member` (every incarnation of the name) has received so far.
    pub fn received(&self, member: &str) -> u64 {
        self.received.get(member).copied().unwrap_or(0)
    }

    /// Where the next produced record lands, by the spec's account of the log.
    pub fn log_end(&self) -> Offset {
        self.part.reference().log_end()
    }

    /// The judgement so far.
    pub fn judgement(&self) -> Judgement {
        let mut anomalies = self.part.anomalies().to_vec();
        anomalies.extend(self.anomalies.iter().cloned());
        anomalies.sort_by_key(|a| a.step);
        let mut notes = self.part.notes().to_vec();
        notes.extend(self.notes.iter().cloned());
        let (verdict, reason) = if let Some(why) = &self.skipped {
            (CaseVerdict::Skipped, Some(why.clone()))
        } else {
            let reason = self
                .inconclusive
                .clone()
                .or_else(|| self.part.inconclusive().map(str::to_string));
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
            exercised: self.part.exercised(),
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
                let records = self.part.table(&self.names);
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
            }
            Event::Produce {
                step,
                partition,
                batches,
                base_offsets,
                value_prefix,
                ..
            } => {
                if *partition != PARTITION {
                    return;
                }
                let expected = self.log_end();
                let n: u64 = batches.iter().map(|b| u64::from(*b)).sum();
                self.produced.push(ProducedRun {
                    base: expected,
                    len: n as Offset,
                    prefix: value_prefix.clone(),
                });
                if base_offsets.first().is_some_and(|b| *b != expected) {
                    self.set_inconclusive(format!(
                        "step {step}: produce landed at offset {:?}, expected {expected}",
                        base_offsets.first()
                    ));
                }
                self.part.produced(n as usize);
            }
            Event::FetchBegin {
                step,
                member,
                max_records,
                horizon_ms,
                patience_ms,
            } => {
                let want = self
                    .part
                    .surely_acquirable(*horizon_ms, *max_records as usize);
                self.fetch_step = Some(FetchStep {
                    step: *step,
                    member: member.clone(),
                    want,
                    got: Default::default(),
                    patience_ms: *patience_ms,
                });
            }
            Event::FetchEnd { step, member } => {
                if let Some(f) = self.fetch_step.take() {
                    if f.step == *step && f.member == *member && f.got.len() < f.want.len() {
                        self.part
                            .check_missing(f.step, &f.want, &f.got, f.patience_ms);
                    }
                }
            }
            Event::ShareFetch {
                step,
                member,
                epoch,
                max_records,
                acks,
                sent_ms,
                received_ms,
                error,
                lock_timeout_ms,
                partitions,
            } => {
                let idx = self.member(member);
                let part = partitions.iter().find(|p| p.partition == PARTITION);
                if let Some(p) = part {
                    self.check_values(*step, p);
                }
                let batches = acks_for(acks);
                let obs = FetchObservation {
                    member: idx,
                    sent: *sent_ms,
                    received: *received_ms,
                    epoch: *epoch,
                    fetches: *max_records > 0 && *epoch != -1,
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
                };
                self.part.fetched(*step, &obs, &self.names);
                let got: Vec<Offset> = part
                    .map(|p| {
                        p.acquired
                            .iter()
                            .flat_map(|(f, l, _)| *f..=(*l).min(f.saturating_add(100_000)))
                            .collect()
                    })
                    .unwrap_or_default();
                match self.received.get_mut(member.as_str()) {
                    Some(n) => *n += got.len() as u64,
                    None => {
                        self.received.insert(member.clone(), got.len() as u64);
                    }
                }
                if let Some(f) = self.fetch_step.as_mut() {
                    if f.step == *step && f.member == *member {
                        f.got.extend(got);
                    }
                }
            }
            Event::ShareAcknowledge {
                step,
                member,
                epoch,
                acks,
                sent_ms,
                received_ms,
                error,
                partitions,
            } => {
                let idx = self.member(member);
                let batches = acks_for(acks);
                let obs = AckObservation {
                    member: idx,
                    sent: *sent_ms,
                    received: *received_ms,
                    epoch: *epoch,
                    acks: &batches,
                    top_error: *error,
                    partition_error: partitions
                        .iter()
                        .find(|p| p.partition == PARTITION)
                        .map(|p| p.error),
                };
                self.part.acknowledged(*step, &obs);
            }
            Event::Disconnect { member, at_ms, .. } => {
                let idx = self.member(member);
                self.part.disconnected(idx, *at_ms);
            }
            Event::Restart { .. } => self.part.restarted(),
            Event::Claim {
                step,
                member,
                at_least,
            } => {
                let got = self.received.get(member).copied().unwrap_or(0);
                if got < u64::from(*at_least) {
                    self.anomalies.push(Violation {
                        kind: Anomaly::ClaimNotMet,
                        step: *step,
                        detail: format!(
                            "{member} received {got} record(s), the claim is at least {at_least}"
                        ),
                    });
                }
            }
            Event::Crash { .. } | Event::Leave { .. } | Event::Wait { .. } => {}
        }
    }

    /// What a member receives must be what was produced at that offset: a wrong value is a broken
    /// log, not a share-group rule, but no less a failure. Acquired offsets without a data record
    /// are noted (control records and compaction holes have none).
    fn check_values(&mut self, step: usize, p: &FetchedPartition) {
        let wrong: Vec<Offset> = p
            .records
            .iter()
            .filter(|(o, v)| self.produced_value_differs(*o, v.as_deref()))
            .map(|(o, _)| *o)
            .collect();
        if !wrong.is_empty() {
            self.anomalies.push(Violation {
                kind: Anomaly::CorruptedRecord,
                step,
                detail: format!(
                    "offsets {} carried values other than those produced there",
                    offsets_text(wrong)
                ),
            });
        }
        let mut with_data: Vec<Offset> = p.records.iter().map(|(o, _)| *o).collect();
        with_data.sort_unstable();
        let without: Vec<Offset> = p
            .acquired
            .iter()
            .flat_map(|(f, l, _)| *f..=(*l).min(f.saturating_add(MAX_RANGE)))
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

/// Offsets `base..base + len` were produced with values `prefix` + 0, + 1, ….
#[derive(Clone, Debug)]
struct ProducedRun {
    base: Offset,
    len: Offset,
    prefix: String,
}

impl Oracle {
    /// Whether a record received at `offset` carries a value other than the one produced there
    /// (an offset the case did not produce is not judged).
    fn produced_value_differs(&self, offset: Offset, value: Option<&str>) -> bool {
        let i = self.produced.partition_point(|r| r.base + r.len <= offset);
        let Some(run) = self.produced.get(i).filter(|r| r.base <= offset) else {
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

/// The acknowledgement batches of the case's partition.
fn acks_for(acks: &[PartitionAcks]) -> Vec<AckBatch> {
    acks.iter()
        .filter(|a| a.partition == PARTITION)
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
