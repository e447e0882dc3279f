//! The driver: replays a conformance case against a target over the Kafka wire protocol, turning
//! each abstract step into requests and recording what happened as [`Event`]s. The runner records;
//! the [`Oracle`] judges each event as it arrives (and can judge the stored history again later).
//!
//! Each case gets its own topic and share group (unique names per run), applies its settings as group
//! configs before any member joins, and gives every member its own connection and member id. Members
//! join implicitly before they first fetch. Waits for lock expiry are computed from the oracle's own
//! timing windows plus a margin, so a case never depends on timing inside the uncertainty window.
//! [`schedule`] runs many cases at once; cases that restart the broker run afterwards, one at a time.

pub mod held;
pub mod schedule;

use crate::history::{
    AckedPartition, Event, FetchedPartition, History, PartitionAcks, Recorded, Setup, TargetInfo,
    HISTORY_FORMAT_VERSION,
};
use crate::oracle::{offsets_text, CaseVerdict, Millis, Oracle, StepRecord, Violation};
use crate::target::Target;
use crate::trace::{AckVia, Case, Level, MemberIds, OffsetReset, Step};
use bytes::Bytes;
use held::Held;
use serde::Serialize;
use sharecheck_client::admin::{Client, ClientConfig, ClientError};
use sharecheck_client::member::{
    Epoch, FetchLimits, FetchOutcome, FetchSpec, MemberConfig, MemberError, ShareMember,
};
use sharecheck_model::model::{Transition, Transitions};
use sharecheck_model::spec::{AckBatch, ErrorCode, Offset};
use std::time::{Duration, Instant, SystemTime};
use uuid::Uuid;

/// The partition every single-partition case uses.
const PARTITION: i32 = 0;

/// Knobs of a run.
#[derive(Clone, Debug)]
pub struct RunOptions {
    /// Deadline of each request and connect.
    pub timeout: Duration,
    /// How long a fetch step keeps fetching for records the spec says are surely acquirable.
    pub fetch_patience: Duration,
    /// Lateness allowed on lock deadlines and on noticing a dropped connection.
    pub tolerance_ms: Millis,
    /// Extra wait after a deadline before acting on it.
    pub margin_ms: Millis,
    /// Unique prefix for topic and group names.
    pub run_id: String,
    /// MaxWaitMs of a ShareFetch that expects nothing (nothing is surely acquirable, or a raw
    /// fetch): how long the broker may hold it open. A remote broker gets 200 ms; an in-process
    /// broker answers an empty fetch at once, so the fuzzer uses a few ms.
    pub idle_fetch_wait_ms: i32,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            timeout: Duration::from_secs(10),
            fetch_patience: Duration::from_secs(5),
            tolerance_ms: 500,
            margin_ms: 200,
            run_id: format!("{:08x}", rand_u32()),
            idle_fetch_wait_ms: 200,
        }
    }
}

fn rand_u32() -> u32 {
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    nanos ^ std::process::id().rotate_left(16)
}

/// The result of one case: the oracle's judgement and the history it was judged from.
#[derive(Clone, Debug, Serialize)]
pub struct CaseResult {
    /// Case id.
    pub id: String,
    /// Its area.
    pub area: String,
    /// must / should.
    pub level: Level,
    /// The verdict.
    pub verdict: CaseVerdict,
    /// Named anomalies, with the step where each happened.
    pub anomalies: Vec<Violation>,
    /// Why it is inconclusive or skipped.
    pub reason: Option<String>,
    /// Observations not judged.
    pub notes: Vec<String>,
    /// Wall time.
    pub duration_ms: u64,
    /// Transition kinds the target went through (as judged).
    #[serde(skip)]
    pub exercised: Transitions,
    /// The delivery limit the case ran with.
    pub delivery_limit: u8,
    /// Set when the case stopped because the target could not be reached (refused or reset
    /// connections): not a judgement of the broker, a sign that it is gone.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unreachable: Option<String>,
    /// Every event, in order.
    pub history: Vec<Event>,
    /// Step by step.
    pub steps: Vec<StepRecord>,
    /// The case itself.
    #[serde(skip)]
    pub case: Case,
}

impl CaseResult {
    /// The history as stored in an artifact, with this result as the recorded one.
    pub fn stored_history(&self, target: &Target) -> History {
        History {
            format_version: HISTORY_FORMAT_VERSION,
            target: TargetInfo {
                address: target.bootstrap.clone(),
                implementation: target.implementation.clone(),
            },
            recorded: Some(Recorded {
                verdict: self.verdict,
                anomalies: self.anomalies.clone(),
                reason: self.reason.clone(),
            }),
            events: self.history.clone(),
        }
    }
}

/// Why a step stopped early: the case becomes inconclusive with this reason.
struct Abort {
    why: String,
    unreachable: bool,
}

impl From<ClientError> for Abort {
    fn from(e: ClientError) -> Self {
        Abort {
            unreachable: e.is_unreachable(),
            why: e.to_string(),
        }
    }
}

impl From<MemberError> for Abort {
    fn from(e: MemberError) -> Self {
        let unreachable = match &e {
            MemberError::Client(c) => c.is_unreachable(),
            MemberError::Wire(w) => w.is_unreachable(),
            _ => false,
        };
        Abort {
            why: e.to_string(),
            unreachable,
        }
    }
}

impl Abort {
    fn new(why: impl Into<String>) -> Abort {
        Abort {
            why: why.into(),
            unreachable: false,
        }
    }
}

struct Slot {
    name: String,
    member: Option<ShareMember>,
    held: Held,
}

struct CaseRun<'a> {
    target: &'a Target,
    opts: &'a RunOptions,
    case: &'a Case,
    client: Client,
    topic: String,
    group: String,
    topic_id: Uuid,
    oracle: Oracle,
    history: Vec<Event>,
    slots: Vec<Slot>,
    start: Instant,
    start_sys: SystemTime,
}

impl CaseRun<'_> {
    /// Records an event: the oracle judges it as it arrives.
    fn record(&mut self, event: Event) {
        self.oracle.observe(&event);
        self.history.push(event);
    }

    fn now(&self) -> Millis {
        self.start.elapsed().as_millis() as Millis
    }

    fn times(&self, sent_at: SystemTime, elapsed: Duration) -> (Millis, Millis) {
        let sent = sent_at
            .duration_since(self.start_sys)
            .map(|d| d.as_millis() as Millis)
            .unwrap_or(0);
        (sent, sent + elapsed.as_millis() as Millis + 1)
    }

    fn slot(&mut self, name: &str) -> usize {
        if let Some(i) = self.slots.iter().position(|s| s.name == name) {
            return i;
        }
        self.slots.push(Slot {
            name: name.to_string(),
            member: None,
            held: Held::default(),
        });
        self.slots.len() - 1
    }

    async fn joined(&mut self, step: usize, name: &str) -> Result<usize, Abort> {
        let i = self.slot(name);
        if self.slots[i].member.is_none() {
            let mut config = MemberConfig::new(self.group.clone(), vec![self.topic.clone()]);
            config.join_timeout = Duration::from_secs(30);
            if self.case.settings.member_ids == MemberIds::StandardBase64 {
                config.member_id = sharecheck_client::member::standard_base64_member_id();
            }
            let sent = self.now();
            let member = ShareMember::join(&mut self.client, config).await?;
            let event = Event::Join {
                step,
                member: name.to_string(),
                member_id: member.member_id().to_string(),
                sent_ms: sent,
                received_ms: self.now(),
            };
            self.record(event);
            self.slots[i].member = Some(member);
        }
        Ok(i)
    }

    fn leader(&self, i: usize) -> Result<i32, Abort> {
        let m = self.slots[i]
            .member
            .as_ref()
            .ok_or_else(|| Abort::new("member not joined"))?;
        Ok(m.leader_of(self.topic_id, PARTITION)?)
    }

    fn member(&mut self, i: usize) -> Result<&mut ShareMember, Abort> {
        self.slots[i]
            .member
            .as_mut()
            .ok_or_else(|| Abort::new("member not joined"))
    }

    /// After dropping a connection, give the broker the tolerance to notice it before the next
    /// request: requests on a new connection are then judged against a broker that has ended the
    /// old session, as every account of the spec says it eventually does.
    async fn settle_after_connection_end(&self) {
        tokio::time::sleep(Duration::from_millis(
            self.opts.tolerance_ms + self.opts.margin_ms,
        ))
        .await;
    }

    /// Records a ShareFetch and its answer, and updates what the member holds. Returns the offsets
    /// acquired on the case's partition and its acknowledgement error code.
    fn absorb_fetch(
        &mut self,
        step: usize,
        i: usize,
        out: &FetchOutcome,
        max_records: u32,
        acks: &[AckBatch],
    ) -> (Vec<Offset>, ErrorCode) {
        let (sent, received) = self.times(out.sent_at, out.elapsed);
        let partitions: Vec<FetchedPartition> = out
            .partitions
            .iter()
            .filter(|p| p.topic_id == self.topic_id)
            .map(|p| FetchedPartition {
                partition: p.partition,
                error: p.error_code,
                ack_error: p.ack_error_code,
                acquired: p
                    .acquired
                    .iter()
                    .map(|r| (r.first_offset, r.last_offset, r.delivery_count))
                    .collect(),
                records: p
                    .records
                    .iter()
                    .map(|r| {
                        (
                            r.offset,
                            r.value
                                .as_ref()
                                .map(|v| String::from_utf8_lossy(v).into_owned()),
                        )
                    })
                    .collect(),
            })
            .collect();
        let ours = partitions.iter().find(|p| p.partition == PARTITION);
        let acquired = ours.map(|p| p.acquired.clone()).unwrap_or_default();
        let ack_code = ours.map_or(ErrorCode::NONE, |p| p.ack_error);
        let held = &mut self.slots[i].held;
        held.acquired(&acquired);
        if !acks.is_empty() && out.error_code.is_none() && ack_code == ErrorCode::NONE {
            held.acknowledged(acks);
        }
        if out.epoch_sent == -1 && out.error_code.is_none() {
            held.clear();
        }
        let got: Vec<Offset> = acquired
            .iter()
            .flat_map(|(f, l, _)| *f..=(*l).min(f.saturating_add(100_000)))
            .collect();
        let event = Event::ShareFetch {
            step,
            member: self.slots[i].name.clone(),
            epoch: out.epoch_sent,
            max_records,
            acks: partition_acks(acks),
            sent_ms: sent,
            received_ms: received,
            error: out.error_code,
            lock_timeout_ms: out.acquisition_lock_timeout_ms,
            partitions,
        };
        self.record(event);
        (got, ack_code)
    }

    async fn produce(
        &mut self,
        step: usize,
        records: u32,
        batches: Option<u32>,
    ) -> Result<String, Abort> {
        let b = batches.unwrap_or(records).max(1) as usize;
        let n = records as usize;
        let sizes: Vec<usize> = (0..b)
            .map(|k| n / b + usize::from(k < n % b))
            .filter(|s| *s > 0)
            .collect();
        let sent = self.now();
        let prefix = format!("{}-{step}-", self.case.id);
        let bases = self
            .client
            .produce(&self.topic, PARTITION, &sizes, |k| {
                (
                    Some(Bytes::from(format!("k{k}"))),
                    Some(Bytes::from(format!("{prefix}{k}"))),
                )
            })
            .await?;
        let expected_base = self.oracle.log_end();
        let event = Event::Produce {
            step,
            partition: PARTITION,
            batches: sizes.iter().map(|s| *s as u32).collect(),
            base_offsets: bases,
            value_prefix: prefix,
            sent_ms: sent,
            received_ms: self.now(),
        };
        self.record(event);
        Ok(format!(
            "{n} record(s) at offsets {expected_base}..{}",
            expected_base + n as i64 - 1
        ))
    }

    async fn fetch(&mut self, step: usize, name: &str, max_records: u32) -> Result<String, Abort> {
        let i = self.joined(step, name).await?;
        // What every account of the spec says is acquirable once the releases and lock expiries
        // already due (within the tolerance) have happened: the fetch keeps trying for those.
        let horizon = self.now() + self.opts.tolerance_ms + self.opts.margin_ms;
        let want = self.oracle.surely_acquirable(horizon, max_records as usize);
        self.record(Event::FetchBegin {
            step,
            member: name.to_string(),
            max_records,
            horizon_ms: horizon,
            patience_ms: self.opts.fetch_patience.as_millis() as Millis,
        });
        let deadline = Instant::now() + self.opts.fetch_patience;
        let mut got: std::collections::BTreeSet<Offset> = Default::default();
        let mut requests = 0;
        let result = loop {
            let remaining = max_records as usize - got.len().min(max_records as usize);
            if remaining == 0 {
                break Ok(());
            }
            let limits = FetchLimits {
                // Expecting records, the request long-polls for them, but never longer than the
                // step's patience (so a record that does not come is noticed within it).
                max_wait_ms: if want.is_empty() {
                    self.opts.idle_fetch_wait_ms
                } else {
                    self.opts.fetch_patience.as_millis().min(500) as i32
                },
                min_bytes: 1,
                max_bytes: 8 * 1024 * 1024,
                max_records: remaining as i32,
                batch_size: remaining as i32,
            };
            let spec = FetchSpec::partitions(vec![(self.topic_id, PARTITION)]).with_limits(limits);
            let out = match self.member(i)?.fetch(&spec).await {
                Ok(out) => out,
                Err(e) => break Err(Abort::from(e)),
            };
            requests += 1;
            let (new, _) = self.absorb_fetch(step, i, &out, remaining as u32, &[]);
            got.extend(new);
            // A refused request (top-level error) is judged once: asking again would only repeat
            // the refusal, as fast as the broker answers.
            let refused = !out.error_code.is_none();
            if refused || want.is_empty() || got.len() >= want.len() || Instant::now() >= deadline {
                break Ok(());
            }
        };
        result?;
        self.record(Event::FetchEnd {
            step,
            member: name.to_string(),
        });
        Ok(format!(
            "received {} in {requests} request(s); the spec said {} were surely acquirable",
            offsets_text(got.iter().copied()),
            offsets_text(want.iter().copied())
        ))
    }

    async fn ack(
        &mut self,
        step: usize,
        name: &str,
        offsets: Vec<Offset>,
        batches: Vec<AckBatch>,
        via: AckVia,
        epoch: Option<i32>,
    ) -> Result<String, Abort> {
        let i = self.joined(step, name).await?;
        if batches.is_empty() {
            return Ok("skipped: the member holds none of the selected records".into());
        }
        let acks = vec![sharecheck_client::member::PartitionAcks {
            topic_id: self.topic_id,
            partition: PARTITION,
            batches: batches.clone(),
        }];
        let ep = epoch.map_or(Epoch::Auto, Epoch::Raw);
        match via {
            AckVia::ShareAcknowledge => {
                let out = match self.member(i)?.acknowledge(&acks, ep).await {
                    Err(MemberError::NoSession(_)) => {
                        return Ok("skipped: the member has no share session".into())
                    }
                    other => other?,
                };
                let (sent, received) = self.times(out.sent_at, out.elapsed);
                let partition_error = out.partition_error(self.topic_id, PARTITION);
                let ok = out.error_code.is_none()
                    && partition_error.unwrap_or(ErrorCode::NONE) == ErrorCode::NONE;
                if ok {
                    self.slots[i].held.acknowledged(&batches);
                }
                let event = Event::ShareAcknowledge {
                    step,
                    member: name.to_string(),
                    epoch: out.epoch_sent,
                    acks: partition_acks(&batches),
                    sent_ms: sent,
                    received_ms: received,
                    error: out.error_code,
                    partitions: out
                        .partitions
                        .iter()
                        .filter(|p| p.topic_id == self.topic_id)
                        .map(|p| AckedPartition {
                            partition: p.partition,
                            error: p.error_code,
                        })
                        .collect(),
                };
                self.record(event);
                Ok(format!(
                    "{}: top-level {}, partition {}",
                    offsets_text(offsets.iter().copied()),
                    out.error_code,
                    partition_error.unwrap_or(ErrorCode::NONE)
                ))
            }
            AckVia::ShareFetch | AckVia::Close => {
                let close = via == AckVia::Close;
                let out = if close && epoch.is_none() {
                    let broker = self.leader(i)?;
                    self.member(i)?.close_session(broker, acks).await?
                } else {
                    let none = FetchLimits {
                        max_wait_ms: 0,
                        min_bytes: 0,
                        max_bytes: 0,
                        max_records: 0,
                        batch_size: 0,
                    };
                    let mut spec = FetchSpec::default().with_acks(acks).with_limits(none);
                    spec.epoch = if close { Epoch::Raw(-1) } else { ep };
                    match self.member(i)?.fetch(&spec).await {
                        Err(MemberError::AcksNeedSession) => {
                            return Ok("skipped: the member has no share session".into())
                        }
                        other => other?,
                    }
                };
                let (_, ack_code) = self.absorb_fetch(step, i, &out, 0, &batches);
                Ok(format!(
                    "{}: top-level {}, acknowledgement {ack_code}",
                    offsets_text(offsets),
                    out.error_code
                ))
            }
        }
    }

    async fn raw_fetch(
        &mut self,
        step: usize,
        name: &str,
        epoch: i32,
        max_records: u32,
    ) -> Result<String, Abort> {
        let i = self.joined(step, name).await?;
        let limits = FetchLimits {
            max_wait_ms: self.opts.idle_fetch_wait_ms,
            min_bytes: 1,
            max_bytes: 8 * 1024 * 1024,
            max_records: max_records as i32,
            batch_size: max_records.max(1) as i32,
        };
        let mut spec = FetchSpec::partitions(vec![(self.topic_id, PARTITION)]).with_limits(limits);
        spec.epoch = Epoch::Raw(epoch);
        let out = self.member(i)?.fetch(&spec).await?;
        let (got, _) = self.absorb_fetch(step, i, &out, max_records, &[]);
        Ok(format!(
            "epoch {epoch}: top-level {}, received {}",
            out.error_code,
            offsets_text(got)
        ))
    }

    async fn disconnect(&mut self, step: usize, i: usize) -> Result<(), Abort> {
        let broker = self.leader(i)?;
        self.member(i)?.drop_connection(broker);
        let at = self.now();
        self.slots[i].held.clear();
        self.record(Event::Disconnect {
            step,
            member: self.slots[i].name.clone(),
            at_ms: at,
        });
        self.settle_after_connection_end().await;
        Ok(())
    }

    async fn run_step(&mut self, n: usize, step: &Step) -> Result<String, Abort> {
        match step {
            Step::Produce { records, batches } => self.produce(n, *records, *batches).await,
            Step::Join { member } => {
                self.joined(n, member).await?;
                Ok("joined".into())
            }
            Step::Fetch {
                member,
                max_records,
            } => self.fetch(n, member, *max_records).await,
            Step::Ack {
                member,
                select,
                ty,
                via,
            } => {
                let i = self.joined(n, member).await?;
                let offsets = select.pick(self.slots[i].held.offsets());
                let batches = AckBatch::runs(&offsets, ty.code());
                self.ack(n, member, offsets, batches, *via, None).await
            }
            Step::RawAck {
                member,
                batches,
                via,
                epoch,
            } => {
                let offsets: Vec<Offset> = batches.iter().map(|b| b.first_offset).collect();
                self.ack(n, member, offsets, batches.clone(), *via, *epoch)
                    .await
            }
            Step::RawFetch {
                member,
                epoch,
                max_records,
            } => self.raw_fetch(n, member, *epoch, *max_records).await,
            Step::WaitLockExpiry => {
                let until = self.oracle.all_timers_done_at() + self.opts.margin_ms;
                let now = self.now();
                if until > now {
                    tokio::time::sleep(Duration::from_millis(until - now)).await;
                }
                self.record(Event::Wait {
                    step: n,
                    from_ms: now,
                    until_ms: self.now(),
                });
                Ok(format!("waited until {until} ms"))
            }
            Step::Wait { ms } => {
                let from = self.now();
                tokio::time::sleep(Duration::from_millis(*ms)).await;
                self.record(Event::Wait {
                    step: n,
                    from_ms: from,
                    until_ms: self.now(),
                });
                Ok(format!("waited {ms} ms"))
            }
            Step::CloseSession { member } => {
                let i = self.joined(n, member).await?;
                if self.slots[i]
                    .member
                    .as_ref()
                    .and_then(|m| m.session_epochs().values().find_map(|e| *e))
                    .is_none()
                {
                    return Ok("skipped: no share session to close".into());
                }
                let broker = self.leader(i)?;
                let out = self.member(i)?.close_session(broker, Vec::new()).await?;
                self.absorb_fetch(n, i, &out, 0, &[]);
                Ok(format!("closed: top-level {}", out.error_code))
            }
            Step::Disconnect { member } => {
                let i = self.joined(n, member).await?;
                self.disconnect(n, i).await?;
                Ok("connection dropped".into())
            }
            Step::Crash { member } => {
                let i = self.slot(member);
                self.slots[i].held.clear();
                let at = self.now();
                self.record(Event::Crash {
                    step: n,
                    member: member.clone(),
                    at_ms: at,
                });
                Ok("the member forgot what it held".into())
            }
            Step::Leave { member } => {
                let i = self.joined(n, member).await?;
                let sent = self.now();
                let out = self.member(i)?.leave().await?;
                let event = Event::Leave {
                    step: n,
                    member: member.clone(),
                    error: out.error_code,
                    sent_ms: sent,
                    received_ms: self.now(),
                };
                self.record(event);
                Ok(format!("left: {}", out.error_code))
            }
            Step::Rejoin { member } => {
                let i = self.slot(member);
                if let Some(old) = self.slots[i].member.take() {
                    // The old incarnation goes, and its connections with it.
                    drop(old);
                    let at = self.now();
                    self.record(Event::Disconnect {
                        step: n,
                        member: member.clone(),
                        at_ms: at,
                    });
                    self.settle_after_connection_end().await;
                }
                self.slots[i].held.clear();
                self.joined(n, member).await?;
                Ok("rejoined with a new member id".into())
            }
            Step::Restart => {
                let Some(restart) = self.target.restarter.clone() else {
                    return Err(Abort::new("the target cannot restart"));
                };
                let sent = self.now();
                restart().await.map_err(|e| Abort::new(e.to_string()))?;
                for s in &mut self.slots {
                    if let Some(m) = s.member.as_mut() {
                        for b in m.session_epochs().keys().copied().collect::<Vec<_>>() {
                            m.drop_connection(b);
                        }
                    }
                }
                self.client = Client::connect(
                    ClientConfig::new(self.target.bootstrap.clone())
                        .with_timeout(self.opts.timeout),
                )
                .await?;
                let received = self.now();
                self.record(Event::Restart {
                    step: n,
                    sent_ms: sent,
                    received_ms: received,
                });
                Ok("broker restarted".into())
            }
            Step::ExpectReceived { member, at_least } => {
                self.record(Event::Claim {
                    step: n,
                    member: member.clone(),
                    at_least: *at_least,
                });
                Ok(format!(
                    "{member} received {}",
                    self.oracle.received(member)
                ))
            }
        }
    }
}

fn partition_acks(batches: &[AckBatch]) -> Vec<PartitionAcks> {
    if batches.is_empty() {
        return Vec::new();
    }
    vec![PartitionAcks {
        partition: PARTITION,
        batches: batches.to_vec(),
    }]
}

/// Runs one case against `target` (`serial` numbers topics and groups within the run).
pub async fn run_case(
    target: &Target,
    opts: &RunOptions,
    case: &Case,
    serial: usize,
) -> CaseResult {
    let started = Instant::now();
    let (history, oracle, unreachable) = match case.requires.iter().find(|c| !target.can(**c)) {
        Some(cap) => {
            let reason = format!("the target lacks the {cap:?} capability");
            let mut oracle = Oracle::without_setup();
            let event = Event::Skipped { reason };
            oracle.observe(&event);
            (vec![event], oracle, None)
        }
        None => run_steps(target, opts, case, serial).await,
    };
    result_of(case, history, &oracle, unreachable, started.elapsed())
}

fn result_of(
    case: &Case,
    history: Vec<Event>,
    oracle: &Oracle,
    unreachable: Option<String>,
    took: Duration,
) -> CaseResult {
    let j = oracle.judgement();
    CaseResult {
        id: case.id.clone(),
        area: case.area().to_string(),
        level: case.level,
        verdict: j.verdict,
        anomalies: j.anomalies,
        reason: j.reason,
        notes: j.notes,
        duration_ms: took.as_millis() as u64,
        exercised: j.exercised,
        delivery_limit: j.delivery_limit,
        unreachable,
        history,
        steps: j.steps,
        case: case.clone(),
    }
}

/// The result of a case that was not started (`reason` says why, e.g. the target went away
/// before its turn): skipped.
pub fn not_started(case: &Case, reason: &str) -> CaseResult {
    let event = Event::Skipped {
        reason: reason.to_string(),
    };
    let mut oracle = Oracle::without_setup();
    oracle.observe(&event);
    result_of(case, vec![event], &oracle, None, Duration::ZERO)
}

/// The result of a case that could not run at all (`reason` says why): judged inconclusive.
pub fn not_run(case: &Case, reason: &str) -> CaseResult {
    let event = Event::SetupFailed {
        reason: reason.to_string(),
    };
    let mut oracle = Oracle::without_setup();
    oracle.observe(&event);
    result_of(case, vec![event], &oracle, None, Duration::ZERO)
}

/// Sets the case up (topic, group configs), runs its steps, cleans up. Returns the history, the
/// oracle that judged it, and why the target could not be reached, if it could not.
async fn run_steps(
    target: &Target,
    opts: &RunOptions,
    case: &Case,
    serial: usize,
) -> (Vec<Event>, Oracle, Option<String>) {
    let setup_failed = |why: String, unreachable: bool| async move {
        let (why, gone) = classify(target, why, unreachable).await;
        let event = Event::SetupFailed { reason: why };
        let mut oracle = Oracle::without_setup();
        oracle.observe(&event);
        (vec![event], oracle, gone)
    };
    let mut client = match Client::connect(
        ClientConfig::new(target.bootstrap.clone()).with_timeout(opts.timeout),
    )
    .await
    {
        Ok(c) => c,
        Err(e) => return setup_failed(format!("setup: {e}"), e.is_unreachable()).await,
    };
    let short: String = case
        .id
        .trim_start_matches("kip932.")
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .take(60)
        .collect();
    let topic = format!("sc-{}-{serial}-{short}", opts.run_id);
    let group = format!("{topic}-g");
    let topic_id = match client
        .create_topic(&topic, case.settings.partitions as i32)
        .await
    {
        Ok(id) => id,
        Err(e) => {
            return setup_failed(format!("setup: create topic: {e}"), e.is_unreachable()).await
        }
    };
    let reset = match case.settings.auto_offset_reset {
        OffsetReset::Earliest => "earliest",
        OffsetReset::Latest => "latest",
    };
    let lock = case.settings.lock_duration_ms.to_string();
    if let Err(e) = client
        .set_group_configs(
            &group,
            &[
                ("share.auto.offset.reset", reset),
                ("share.record.lock.duration.ms", lock.as_str()),
            ],
        )
        .await
    {
        let _ = tokio::time::timeout(Duration::from_secs(2), client.delete_topic(&topic)).await;
        return setup_failed(format!("setup: group configs: {e}"), e.is_unreachable()).await;
    }
    // Group-level limits exist only on some targets (Kafka 4.3+, the reference broker): each is tried
    // on its own, and where refused the target's own value applies.
    let mut delivery_limit = target.delivery_limit;
    let mut limited = false;
    if let Some(l) = case.settings.delivery_limit {
        limited = client
            .set_group_configs(
                &group,
                &[("share.delivery.count.limit", l.to_string().as_str())],
            )
            .await
            .is_ok();
        if limited {
            delivery_limit = l;
        }
    }
    let mut max_in_flight = target.max_in_flight;
    if let Some(w) = case.settings.max_in_flight {
        if client
            .set_group_configs(
                &group,
                &[("share.partition.max.record.locks", w.to_string().as_str())],
            )
            .await
            .is_ok()
        {
            max_in_flight = w;
        }
    }
    let setup = Setup {
        topic: topic.clone(),
        group: group.clone(),
        partitions: case.settings.partitions,
        profile: target.profile.name.to_string(),
        delivery_limit,
        group_delivery_limit: limited,
        max_in_flight,
        lock_ms: u64::from(case.settings.lock_duration_ms),
        tolerance_ms: opts.tolerance_ms,
        latest_reset: case.settings.auto_offset_reset == OffsetReset::Latest,
        max_candidates: 256,
    };
    let oracle = match Oracle::new(&setup, Some(target.profile)) {
        Ok(o) => o,
        Err(e) => return setup_failed(format!("setup: {e}"), false).await,
    };
    let mut run = CaseRun {
        target,
        opts,
        case,
        client,
        topic,
        group,
        topic_id,
        oracle,
        history: Vec::new(),
        slots: Vec::new(),
        start: Instant::now(),
        start_sys: SystemTime::now(),
    };
    run.record(Event::Setup(setup));
    let mut unreachable = None;
    for (k, step) in case.steps.iter().enumerate() {
        let n = k + 1;
        run.record(Event::Step {
            step: n,
            text: step.to_string(),
        });
        match run.run_step(n, step).await {
            Ok(outcome) => run.record(Event::StepEnd { step: n, outcome }),
            Err(Abort {
                why,
                unreachable: lost,
            }) => {
                let (why, gone) = classify(target, why, lost).await;
                unreachable = gone.map(|g| format!("step {n} ({step}): {g}"));
                run.record(Event::StepFailed {
                    step: n,
                    reason: why,
                });
                break;
            }
        }
    }
    // Cleanup, unjudged and bounded: members stop heartbeating when dropped.
    for s in run.slots.iter_mut() {
        s.member.take();
    }
    let _ = tokio::time::timeout(Duration::from_secs(2), run.client.delete_topic(&run.topic)).await;
    (run.history, run.oracle, unreachable)
}

/// After a step or the setup lost its connection (`lost`): is the target gone, or did it only drop
/// the connection (a restart nobody asked for, a flapping listener)? Returns the reason to record
/// and, when the target is gone, why — the run then stops (exit 3), and the case is not judged as
/// a spec anomaly either way.
async fn classify(target: &Target, why: String, lost: bool) -> (String, Option<String>) {
    if !lost {
        return (why, None);
    }
    let probe = ClientConfig::new(target.bootstrap.clone()).with_timeout(Duration::from_secs(2));
    match tokio::time::timeout(Duration::from_secs(3), Client::connect(probe)).await {
        Ok(Ok(_)) => (
            format!(
                "{why} (the target answers again: it dropped the connection, or restarted unasked)"
            ),
            None,
        ),
        Ok(Err(e)) => {
            let gone = format!("{why}; reconnecting: {e}");
            (gone.clone(), Some(gone))
        }
        Err(_) => {
            let gone = format!("{why}; reconnecting: no answer within 3 s");
            (gone.clone(), Some(gone))
        }
    }
}

/// The transition kinds a suite can exercise on `target` over the v1 wire protocol: everything the
/// model has except RENEW (ShareAcknowledge v2), and restart only where the target can restart.
pub fn transitions_total(target: &Target) -> Vec<Transition> {
    Transition::ALL
        .into_iter()
        .filter(|t| {
            *t != Transition::Renew
                && t.applies_to(&target.profile)
                && (*t != Transition::Restart || target.restarter.is_some())
        })
        .collect()
}
