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
    AckedPartition, DescribedOffsets, DlqRecord, DlqSetup, Event, FetchedPartition, History,
    PartitionAcks, Recorded, Setup, TargetInfo, HISTORY_FORMAT_VERSION,
};
use crate::oracle::{offsets_text, CaseVerdict, Millis, Oracle, StepRecord, Violation};
use crate::target::{Fault, Target};
use crate::trace::{AckVia, Case, DlqTopic, Level, MemberIds, OffsetReset, Step};
use bytes::Bytes;
use held::Held;
use serde::Serialize;
use sharecheck_client::admin::{Client, ClientError};
use sharecheck_client::member::{
    Epoch, FetchLimits, FetchOutcome, FetchSpec, FetchV2, MemberConfig, MemberError, ShareMember,
};
use sharecheck_client::v2::AcquireMode;
use sharecheck_model::model::{Transition, Transitions};
use sharecheck_model::spec::{AckBatch, ErrorCode, Offset};
use sharecheck_model::vocab::AckType;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};
use uuid::Uuid;

/// The partition of a one-partition case, and where a member without sessions disconnects.
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
    /// The run's prefix: every topic and share group a case makes is named `PREFIX-SERIAL-CASE`
    /// (`conform --prefix`; [`crate::cleanup`] removes what carries it).
    pub prefix: String,
    /// MaxWaitMs of a ShareFetch that expects nothing (nothing is surely acquirable, or a raw
    /// fetch): how long the broker may hold it open. A remote broker gets 200 ms; an in-process
    /// broker answers an empty fetch at once, so the fuzzer uses a few ms.
    pub idle_fetch_wait_ms: i32,
    /// Leave the case's topics and share groups on the target (`--keep`): else each case deletes
    /// them at its end.
    pub keep: bool,
    /// Share groups a case could not delete at its end because members remained (a member that
    /// was dropped without leaving stays until its session times out): the run deletes them last
    /// ([`delete_leftover_groups`]).
    pub leftover_groups: Arc<Mutex<Vec<String>>>,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            timeout: Duration::from_secs(10),
            fetch_patience: Duration::from_secs(5),
            tolerance_ms: 500,
            margin_ms: 200,
            prefix: format!("sc-{:08x}", rand_u32()),
            idle_fetch_wait_ms: 200,
            keep: false,
            leftover_groups: Arc::default(),
        }
    }
}

pub(crate) fn rand_u32() -> u32 {
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
    /// The broker refused for want of a permission (an ACL): the run stops (exit 3) naming it,
    /// instead of failing every case the same way.
    denied: Option<String>,
}

impl From<ClientError> for Abort {
    fn from(e: ClientError) -> Self {
        Abort {
            unreachable: e.is_unreachable(),
            denied: e.denied(),
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
            denied: e.denied(),
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
            denied: None,
        }
    }
}

struct Slot {
    name: String,
    member: Option<ShareMember>,
    /// What it holds, per partition.
    held: BTreeMap<i32, Held>,
}

impl Slot {
    fn held_offsets(&self, partition: i32) -> &[Offset] {
        self.held.get(&partition).map_or(&[], |h| h.offsets())
    }

    fn forget_held(&mut self) {
        self.held.clear();
    }
}

/// Partition errors after which the runner refreshes metadata and asks again within the step's
/// patience: leadership moved, or the partition is loading after a fault.
const RETRIABLE: [ErrorCode; 5] = [
    ErrorCode::NOT_LEADER_OR_FOLLOWER,
    ErrorCode::UNKNOWN_TOPIC_OR_PARTITION,
    ErrorCode::LEADER_NOT_AVAILABLE,
    ErrorCode::FENCED_LEADER_EPOCH,
    ErrorCode::UNKNOWN_TOPIC_ID,
];

struct CaseRun<'a> {
    target: &'a Target,
    opts: &'a RunOptions,
    case: &'a Case,
    client: Client,
    topic: String,
    group: String,
    topic_id: Uuid,
    /// The topic's partition count now.
    partitions: u32,
    /// The case deleted its topic: routing stays as it was (metadata no longer has the topic).
    deleted: bool,
    /// The node that led each partition before its last leader move over the wire.
    former_leader: BTreeMap<i32, i32>,
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
            held: BTreeMap::new(),
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

    fn leader(&self, i: usize, partition: i32) -> Result<i32, Abort> {
        let m = self.slots[i]
            .member
            .as_ref()
            .ok_or_else(|| Abort::new("member not joined"))?;
        Ok(m.leader_of(self.topic_id, partition)?)
    }

    fn member(&mut self, i: usize) -> Result<&mut ShareMember, Abort> {
        self.slots[i]
            .member
            .as_mut()
            .ok_or_else(|| Abort::new("member not joined"))
    }

    /// The partitions a member fetches: every partition of a one-partition topic; otherwise those
    /// its last heartbeat assigned it, or every partition while it has none.
    fn fetch_partitions(&self, i: usize) -> Vec<i32> {
        let all: Vec<i32> = (0..self.partitions as i32).collect();
        if self.partitions <= 1 {
            return all;
        }
        let assigned: BTreeSet<i32> = self.slots[i]
            .member
            .as_ref()
            .map(|m| {
                m.assignment()
                    .into_iter()
                    .filter(|(t, p)| *t == self.topic_id && (*p as u32) < self.partitions)
                    .map(|(_, p)| p)
                    .collect()
            })
            .unwrap_or_default();
        if assigned.is_empty() {
            all
        } else {
            assigned.into_iter().collect()
        }
    }

    /// `partitions` grouped by the leader the member routes them to.
    fn by_leader(&self, i: usize, partitions: &[i32]) -> Result<BTreeMap<i32, Vec<i32>>, Abort> {
        let mut out: BTreeMap<i32, Vec<i32>> = BTreeMap::new();
        for p in partitions {
            out.entry(self.leader(i, *p)?).or_default().push(*p);
        }
        Ok(out)
    }

    /// Fresh metadata for the case's topic, and every member routes by it.
    async fn refresh_routing(&mut self) -> Result<(), Abort> {
        let topic = self.topic.clone();
        self.client.refresh_metadata(&[topic.as_str()]).await?;
        for s in &mut self.slots {
            if let Some(m) = s.member.as_mut() {
                m.update_routing(&self.client);
            }
        }
        Ok(())
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

    /// Records a ShareFetch to `broker` naming `requested` and its answer, and updates what the
    /// member holds. Returns the offsets acquired per partition, and the partitions answered with
    /// an error worth a retry.
    fn absorb_fetch(
        &mut self,
        step: usize,
        i: usize,
        out: &FetchOutcome,
        requested: &[i32],
        max_records: u32,
        acks: &[(i32, Vec<AckBatch>)],
    ) -> (BTreeMap<i32, Vec<Offset>>, Vec<i32>) {
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
        let mut got: BTreeMap<i32, Vec<Offset>> = BTreeMap::new();
        let mut retry = Vec::new();
        let refused = !out.error_code.is_none();
        let slot = &mut self.slots[i];
        for p in &partitions {
            slot.held
                .entry(p.partition)
                .or_default()
                .acquired(&p.acquired);
            got.entry(p.partition).or_default().extend(
                p.acquired
                    .iter()
                    .flat_map(|(f, l, _)| *f..=(*l).min(f.saturating_add(100_000))),
            );
            if RETRIABLE.contains(&p.error) {
                retry.push(p.partition);
            }
        }
        for (partition, batches) in acks {
            let ack_code = partitions
                .iter()
                .find(|p| p.partition == *partition)
                .map_or(ErrorCode::NONE, |p| p.ack_error);
            if !refused && ack_code == ErrorCode::NONE {
                slot.held
                    .entry(*partition)
                    .or_default()
                    .acknowledged(batches);
            }
        }
        if out.epoch_sent == -1 && !refused {
            // The session on this broker ended: its partitions' records went back.
            for p in requested.iter().chain(acks.iter().map(|(p, _)| p)) {
                slot.held.remove(p);
            }
        }
        let event = Event::ShareFetch {
            step,
            member: slot.name.clone(),
            broker: out.broker,
            requested: requested.to_vec(),
            epoch: out.epoch_sent,
            max_records,
            acks: acks
                .iter()
                .filter(|(_, b)| !b.is_empty())
                .map(|(p, b)| PartitionAcks {
                    partition: *p,
                    batches: b.clone(),
                })
                .collect(),
            sent_ms: sent,
            received_ms: received,
            error: out.error_code,
            lock_timeout_ms: out.acquisition_lock_timeout_ms,
            partitions,
            is_renew_ack: out.is_renew_ack,
            record_limit: out.record_limit,
        };
        self.record(event);
        (got, retry)
    }

    async fn produce(
        &mut self,
        step: usize,
        partition: i32,
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
            .produce(&self.topic, partition, &sizes, |k| {
                (
                    Some(Bytes::from(format!("k{k}"))),
                    Some(Bytes::from(format!("{prefix}{k}"))),
                )
            })
            .await?;
        let expected_base = self.oracle.log_end(partition);
        let event = Event::Produce {
            step,
            partition,
            batches: sizes.iter().map(|s| *s as u32).collect(),
            base_offsets: bases,
            value_prefix: prefix,
            sent_ms: sent,
            received_ms: self.now(),
        };
        self.record(event);
        let at = if self.partitions > 1 {
            format!(" of partition {partition}")
        } else {
            String::new()
        };
        Ok(format!(
            "{n} record(s) at offsets {expected_base}..{}{at}",
            expected_base + n as i64 - 1
        ))
    }

    async fn fetch(
        &mut self,
        step: usize,
        name: &str,
        max_records: u32,
        acquire_mode: Option<AcquireMode>,
    ) -> Result<String, Abort> {
        let i = self.joined(step, name).await?;
        let parts = self.fetch_partitions(i);
        // What every account of the spec says is acquirable once the releases and lock expiries
        // already due (within the tolerance) have happened: the fetch keeps trying for those.
        let horizon = self.now() + self.opts.tolerance_ms + self.opts.margin_ms;
        let want: usize = parts
            .iter()
            .map(|p| {
                self.oracle
                    .surely_acquirable(*p, horizon, max_records as usize)
                    .len()
            })
            .sum::<usize>()
            .min(max_records as usize);
        self.record(Event::FetchBegin {
            step,
            member: name.to_string(),
            partitions: parts.clone(),
            max_records,
            horizon_ms: horizon,
            patience_ms: self.opts.fetch_patience.as_millis() as Millis,
        });
        let deadline = Instant::now() + self.opts.fetch_patience;
        let mut got: BTreeMap<i32, BTreeSet<Offset>> = BTreeMap::new();
        let mut requests = 0;
        loop {
            let total = got.values().map(BTreeSet::len).sum::<usize>();
            let remaining = max_records as usize - total.min(max_records as usize);
            if remaining == 0 {
                break;
            }
            let limits = FetchLimits {
                // Expecting records, the request long-polls for them, but never longer than the
                // step's patience (so a record that does not come is noticed within it).
                max_wait_ms: if want == 0 {
                    self.opts.idle_fetch_wait_ms
                } else {
                    self.opts.fetch_patience.as_millis().min(500) as i32
                },
                min_bytes: 1,
                max_bytes: 8 * 1024 * 1024,
                max_records: remaining as i32,
                batch_size: remaining as i32,
            };
            let mut refused = true;
            let mut retry = false;
            for (broker, group) in self.by_leader(i, &parts)? {
                let mut spec =
                    FetchSpec::partitions(group.iter().map(|p| (self.topic_id, *p)).collect())
                        .with_limits(limits);
                spec.v2 = acquire_mode.map(|acquire_mode| FetchV2 {
                    acquire_mode,
                    is_renew_ack: false,
                });
                let out = self.member(i)?.fetch_to(broker, &spec).await?;
                self.refused_permission(out.denied(&self.group))?;
                requests += 1;
                let (new, again) = self.absorb_fetch(step, i, &out, &group, remaining as u32, &[]);
                for (p, offsets) in new {
                    got.entry(p).or_default().extend(offsets);
                }
                // A refused request (top-level error) is judged once: asking again would only
                // repeat the refusal, as fast as the broker answers.
                refused &= !out.error_code.is_none();
                retry |= !again.is_empty();
            }
            let total = got.values().map(BTreeSet::len).sum::<usize>();
            if Instant::now() >= deadline {
                break;
            }
            if retry && !self.deleted {
                // Leadership moved, or the partition is loading: new routing, then again.
                self.refresh_routing().await?;
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
            if refused || want == 0 || total >= want {
                break;
            }
        }
        self.record(Event::FetchEnd {
            step,
            member: name.to_string(),
        });
        let received: Vec<String> = got
            .iter()
            .filter(|(_, o)| !o.is_empty() || self.partitions == 1)
            .map(|(p, o)| {
                if self.partitions > 1 {
                    format!("partition {p}: {}", offsets_text(o.iter().copied()))
                } else {
                    offsets_text(o.iter().copied())
                }
            })
            .collect();
        let received = if received.is_empty() {
            "nothing".to_string()
        } else {
            received.join("; ")
        };
        Ok(format!(
            "received {received} in {requests} request(s); the spec said {want} were surely acquirable"
        ))
    }

    /// The member's acknowledgements of `partitions`, each with its batches (empty ones dropped).
    fn acks_of(&self, batches: Vec<(i32, Vec<AckBatch>)>) -> Vec<(i32, Vec<AckBatch>)> {
        batches.into_iter().filter(|(_, b)| !b.is_empty()).collect()
    }

    async fn ack(
        &mut self,
        step: usize,
        name: &str,
        acks: Vec<(i32, Vec<AckBatch>)>,
        via: AckVia,
        epoch: Option<i32>,
        renew: Option<bool>,
    ) -> Result<String, Abort> {
        let i = self.joined(step, name).await?;
        let acks = self.acks_of(acks);
        if acks.is_empty() {
            return Ok("skipped: the member holds none of the selected records".into());
        }
        let ep = epoch.map_or(Epoch::Auto, Epoch::Raw);
        let parts: Vec<i32> = acks.iter().map(|(p, _)| *p).collect();
        let mut outcomes = Vec::new();
        for (broker, group) in self.by_leader(i, &parts)? {
            let these: Vec<(i32, Vec<AckBatch>)> = acks
                .iter()
                .filter(|(p, _)| group.contains(p))
                .cloned()
                .collect();
            let wire: Vec<sharecheck_client::member::PartitionAcks> = these
                .iter()
                .map(|(p, b)| sharecheck_client::member::PartitionAcks {
                    topic_id: self.topic_id,
                    partition: *p,
                    batches: b.clone(),
                })
                .collect();
            let text = match via {
                AckVia::ShareAcknowledge => {
                    let member = self.member(i)?;
                    let sent = match renew {
                        None => member.acknowledge_to(broker, &wire, ep).await,
                        Some(r) => member.acknowledge_v2_to(broker, &wire, ep, r).await,
                    };
                    let out = match sent {
                        Err(MemberError::NoSession(_)) => {
                            outcomes.push(format!("broker {broker}: skipped, no share session"));
                            continue;
                        }
                        other => other?,
                    };
                    self.refused_permission(out.denied(&self.group))?;
                    let (sent, received) = self.times(out.sent_at, out.elapsed);
                    for (p, b) in &these {
                        let partition_error = out.partition_error(self.topic_id, *p);
                        if out.error_code.is_none()
                            && partition_error.unwrap_or(ErrorCode::NONE) == ErrorCode::NONE
                        {
                            self.slots[i].held.entry(*p).or_default().acknowledged(b);
                        }
                    }
                    let event = Event::ShareAcknowledge {
                        step,
                        member: name.to_string(),
                        broker,
                        epoch: out.epoch_sent,
                        acks: these
                            .iter()
                            .map(|(p, b)| PartitionAcks {
                                partition: *p,
                                batches: b.clone(),
                            })
                            .collect(),
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
                        is_renew_ack: out.is_renew_ack,
                        lock_timeout_ms: out.acquisition_lock_timeout_ms,
                    };
                    self.record(event);
                    let per: Vec<String> = these
                        .iter()
                        .map(|(p, b)| {
                            let code = out
                                .partition_error(self.topic_id, *p)
                                .unwrap_or(ErrorCode::NONE);
                            self.ack_text(*p, b, &format!("partition {code}"))
                        })
                        .collect();
                    format!("top-level {}, {}", out.error_code, per.join("; "))
                }
                AckVia::ShareFetch | AckVia::Close => {
                    let close = via == AckVia::Close;
                    let out = if close && epoch.is_none() && renew.is_none() {
                        self.member(i)?.close_session(broker, wire).await?
                    } else {
                        let none = FetchLimits {
                            max_wait_ms: 0,
                            min_bytes: 0,
                            max_bytes: 0,
                            max_records: 0,
                            batch_size: 0,
                        };
                        let mut spec = FetchSpec::default().with_acks(wire).with_limits(none);
                        spec.epoch = match (close, epoch) {
                            (true, None) => Epoch::Raw(-1),
                            _ => ep,
                        };
                        spec.v2 = renew.map(|is_renew_ack| FetchV2 {
                            is_renew_ack,
                            ..FetchV2::default()
                        });
                        match self.member(i)?.fetch_to(broker, &spec).await {
                            Err(MemberError::AcksNeedSession) => {
                                outcomes
                                    .push(format!("broker {broker}: skipped, no share session"));
                                continue;
                            }
                            other => other?,
                        }
                    };
                    self.refused_permission(out.denied(&self.group))?;
                    self.absorb_fetch(step, i, &out, &[], 0, &these);
                    let per: Vec<String> = these
                        .iter()
                        .map(|(p, b)| {
                            let code = out
                                .partition(self.topic_id, *p)
                                .map_or(ErrorCode::NONE, |x| x.ack_error_code);
                            self.ack_text(*p, b, &format!("acknowledgement {code}"))
                        })
                        .collect();
                    format!("top-level {}, {}", out.error_code, per.join("; "))
                }
            };
            outcomes.push(text);
        }
        if outcomes
            .iter()
            .all(|o| o.contains("skipped, no share session"))
        {
            return Ok("skipped: the member has no share session".into());
        }
        Ok(outcomes.join(" | "))
    }

    fn ack_text(&self, partition: i32, batches: &[AckBatch], code: &str) -> String {
        let offsets = batches.iter().flat_map(|b| {
            b.first_offset..=b.last_offset.min(b.first_offset.saturating_add(10_000))
        });
        if self.partitions > 1 {
            format!("partition {partition} {}: {code}", offsets_text(offsets))
        } else {
            format!("{}: {code}", offsets_text(offsets))
        }
    }

    async fn raw_fetch(
        &mut self,
        step: usize,
        name: &str,
        partition: i32,
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
        let mut spec = FetchSpec::partitions(vec![(self.topic_id, partition)]).with_limits(limits);
        spec.epoch = Epoch::Raw(epoch);
        let out = self.member(i)?.fetch(&spec).await?;
        let (got, _) = self.absorb_fetch(step, i, &out, &[partition], max_records, &[]);
        Ok(format!(
            "epoch {epoch}: top-level {}, received {}",
            out.error_code,
            offsets_text(got.into_values().flatten())
        ))
    }

    /// Drops the member's connections to every broker it has a session with (or to the leader of
    /// partition 0 when it has none), without closing the sessions.
    async fn disconnect(&mut self, step: usize, i: usize) -> Result<(), Abort> {
        let mut brokers = self.slots[i]
            .member
            .as_ref()
            .map(|m| m.session_brokers())
            .unwrap_or_default();
        if brokers.is_empty() {
            brokers.push(self.leader(i, PARTITION)?);
        }
        for broker in brokers {
            self.member(i)?.drop_connection(broker);
            let at = self.now();
            self.record(Event::Disconnect {
                step,
                member: self.slots[i].name.clone(),
                broker,
                at_ms: at,
            });
        }
        self.slots[i].forget_held();
        self.settle_after_connection_end().await;
        Ok(())
    }

    /// After the target restarted (`node`: one node, else all): connections to it are gone, the
    /// admin client reconnects, everyone routes by fresh metadata once every partition has a
    /// leader again.
    async fn after_restart(&mut self, node: Option<i32>) -> Result<(), Abort> {
        for s in &mut self.slots {
            if let Some(m) = s.member.as_mut() {
                for b in m.session_brokers() {
                    if node.is_none_or(|n| n == b) {
                        m.drop_connection(b);
                    }
                }
            }
        }
        self.client = Client::connect(self.target.client_config(self.opts.timeout)).await?;
        let topic = self.topic.clone();
        self.client
            .wait_for_leaders(&topic, self.partitions as i32)
            .await?;
        self.refresh_routing().await
    }

    async fn inject(&mut self, fault: Fault) -> Result<(), Abort> {
        let Some(hook) = self.target.faults.clone() else {
            return Err(Abort::new("the target cannot inject faults (no --nemesis)"));
        };
        hook(fault).await.map_err(|e| Abort::new(e.to_string()))
    }

    async fn restart(
        &mut self,
        step: usize,
        node: Option<i32>,
        hard: bool,
    ) -> Result<String, Abort> {
        let sent = self.now();
        self.inject(Fault::Restart { node, hard }).await?;
        self.after_restart(node).await?;
        let received = self.now();
        self.record(Event::Restart {
            step,
            node,
            hard,
            sent_ms: sent,
            received_ms: received,
        });
        let what = match node {
            Some(n) => format!("node {n}"),
            None => "the broker".to_string(),
        };
        Ok(format!(
            "{what} {} and serving again after {} ms",
            if hard { "killed" } else { "restarted" },
            received - sent
        ))
    }

    async fn move_leader(&mut self, step: usize, partition: i32) -> Result<String, Abort> {
        let topic = self.topic.clone();
        self.client.refresh_metadata(&[topic.as_str()]).await?;
        let meta = self
            .client
            .topic(&topic)
            .and_then(|t| t.partitions.iter().find(|p| p.index == partition))
            .cloned()
            .ok_or_else(|| Abort::new(format!("no partition {partition} in the metadata")))?;
        let from = meta.leader;
        let sent = self.now();
        let to = if self.target.moves_in_process {
            self.inject(Fault::MoveLeader {
                topic: topic.clone(),
                partition,
            })
            .await?;
            from
        } else {
            let to = meta
                .replicas
                .iter()
                .copied()
                .find(|r| *r != from)
                .ok_or_else(|| {
                    Abort::new(format!(
                        "partition {partition} has no other replica to lead (replicas {:?})",
                        meta.replicas
                    ))
                })?;
            self.client.move_leader(&topic, partition, to).await?;
            to
        };
        if from != to {
            self.former_leader.insert(partition, from);
        }
        self.refresh_routing().await?;
        let received = self.now();
        self.record(Event::LeaderMove {
            step,
            partition,
            from,
            to,
            sent_ms: sent,
            received_ms: received,
        });
        Ok(if from == to {
            format!("partition {partition} reloaded by its leader {to}, as a new leader loads it")
        } else {
            format!("partition {partition} now led by node {to} (was {from})")
        })
    }

    /// One ShareFetch to the node that led `partition` before its last move, sent at once: a
    /// broker that has not yet applied the move may still serve it from its memory (F12).
    async fn fetch_former_leader(
        &mut self,
        step: usize,
        name: &str,
        max_records: u32,
        partition: i32,
    ) -> Result<String, Abort> {
        let i = self.joined(step, name).await?;
        let broker = *self.former_leader.get(&partition).ok_or_else(|| {
            Abort::new(format!(
                "partition {partition} has no former leader: no leader move over the wire before this step"
            ))
        })?;
        let limits = FetchLimits {
            max_wait_ms: 0,
            min_bytes: 1,
            max_bytes: 8 * 1024 * 1024,
            max_records: max_records as i32,
            batch_size: max_records as i32,
        };
        let spec = FetchSpec::partitions(vec![(self.topic_id, partition)]).with_limits(limits);
        // No FetchBegin/FetchEnd: a former leader owes nothing, so what it does not hand out is
        // not judged; what it does hand out is, like any acquisition.
        let out = self.member(i)?.fetch_to(broker, &spec).await?;
        self.refused_permission(out.denied(&self.group))?;
        let (got, _) = self.absorb_fetch(step, i, &out, &[partition], max_records, &[]);
        let code = out
            .partitions
            .iter()
            .find(|p| p.topic_id == self.topic_id && p.partition == partition)
            .map_or(out.error_code, |p| p.error_code);
        let offsets = got.get(&partition).cloned().unwrap_or_default();
        Ok(if offsets.is_empty() {
            format!("former leader {broker} handed out nothing ({code})")
        } else {
            format!(
                "former leader {broker} handed out {}",
                offsets_text(offsets.iter().copied())
            )
        })
    }

    async fn add_partitions(&mut self, step: usize, count: u32) -> Result<String, Abort> {
        let total = self.partitions + count;
        let sent = self.now();
        let topic = self.topic.clone();
        self.client.create_partitions(&topic, total as i32).await?;
        self.partitions = total;
        self.refresh_routing().await?;
        self.record(Event::PartitionsAdded {
            step,
            total,
            sent_ms: sent,
            received_ms: self.now(),
        });
        Ok(format!("the topic has {total} partitions"))
    }

    async fn delete_topic(&mut self, step: usize) -> Result<String, Abort> {
        let sent = self.now();
        let topic = self.topic.clone();
        let error = match self.client.delete_topic(&topic).await {
            Ok(()) => ErrorCode::NONE,
            Err(e) => match e.kafka_code() {
                Some(code) => code,
                None => return Err(e.into()),
            },
        };
        self.deleted = true;
        self.record(Event::TopicDeleted {
            step,
            error,
            sent_ms: sent,
            received_ms: self.now(),
        });
        Ok(format!("DeleteTopics: {error}"))
    }

    async fn alter_offsets(
        &mut self,
        step: usize,
        partition: u32,
        start: i64,
    ) -> Result<String, Abort> {
        let sent = self.now();
        let (group, topic) = (self.group.clone(), self.topic.clone());
        let answer = self
            .client
            .alter_share_group_offsets(&group, &topic, &[(partition as i32, start)])
            .await?;
        let partition_error = answer
            .parts
            .iter()
            .find(|(p, _)| *p == partition as i32)
            .map(|(_, c)| *c);
        self.refused_codes(
            "AlterShareGroupOffsets",
            [answer.error].into_iter().chain(partition_error),
        )?;
        self.record(Event::OffsetsAltered {
            step,
            partition: partition as i32,
            start,
            error: answer.error,
            partition_error,
            sent_ms: sent,
            received_ms: self.now(),
        });
        Ok(match partition_error {
            Some(c) => format!("AlterShareGroupOffsets: {}, partition: {c}", answer.error),
            None => format!("AlterShareGroupOffsets: {}", answer.error),
        })
    }

    async fn delete_offsets(&mut self, step: usize) -> Result<String, Abort> {
        let sent = self.now();
        let (group, topic) = (self.group.clone(), self.topic.clone());
        let answer = self
            .client
            .delete_share_group_offsets(&group, &topic)
            .await?;
        let topic_error = answer.parts.first().map(|(_, c)| *c);
        self.refused_codes(
            "DeleteShareGroupOffsets",
            [answer.error].into_iter().chain(topic_error),
        )?;
        self.record(Event::OffsetsDeleted {
            step,
            error: answer.error,
            topic_error,
            sent_ms: sent,
            received_ms: self.now(),
        });
        Ok(match topic_error {
            Some(c) => format!("DeleteShareGroupOffsets: {}, topic: {c}", answer.error),
            None => format!("DeleteShareGroupOffsets: {}", answer.error),
        })
    }

    async fn describe_offsets(&mut self, step: usize) -> Result<String, Abort> {
        let sent = self.now();
        let (group, topic) = (self.group.clone(), self.topic.clone());
        let all: Vec<i32> = (0..self.partitions as i32).collect();
        let (version, answer) = self
            .client
            .describe_share_group_offsets(&group, &topic, &all)
            .await?;
        let partitions: Vec<DescribedOffsets> = answer
            .topics
            .iter()
            .filter(|t| t.topic_name == topic)
            .flat_map(|t| t.partitions.iter())
            .map(|p| DescribedOffsets {
                partition: p.partition_index,
                start_offset: p.start_offset,
                lag: p.lag,
                error: ErrorCode(p.error_code),
            })
            .collect();
        let text: Vec<String> = partitions
            .iter()
            .map(|p| {
                format!(
                    "partition {} start {} lag {} {}",
                    p.partition, p.start_offset, p.lag, p.error
                )
            })
            .collect();
        self.refused_codes(
            "DescribeShareGroupOffsets",
            std::iter::once(ErrorCode(answer.error_code)).chain(partitions.iter().map(|p| p.error)),
        )?;
        self.record(Event::OffsetsDescribed {
            step,
            version,
            error: ErrorCode(answer.error_code),
            partitions,
            sent_ms: sent,
            received_ms: self.now(),
        });
        Ok(format!(
            "DescribeShareGroupOffsets v{version}: {}; {}",
            ErrorCode(answer.error_code),
            text.join(", ")
        ))
    }

    /// Reads the DLQ topic from the start until it holds at least the records every account of the
    /// spec has sent there (their count) and nothing more arrives for a moment, or the patience
    /// ends (the broker writes them after it answered the acknowledgement, §19).
    async fn expect_dlq(&mut self, step: usize) -> Result<String, Abort> {
        let Some(dlq) = self.oracle.dlq_setup().cloned() else {
            return Err(Abort::new(
                "the case's group has no dead-letter topic (settings.dlq)",
            ));
        };
        let sent = self.now();
        let want = self.oracle.dlq_surely_written();
        let patience = Duration::from_secs(10);
        let started = Instant::now();
        let (mut records, mut missing);
        let mut stable_since: Option<(usize, Instant)> = None;
        loop {
            self.client.refresh_metadata(&[dlq.topic.as_str()]).await?;
            missing = self.client.topic(&dlq.topic).is_none();
            records = Vec::new();
            if !missing {
                let parts = self
                    .client
                    .topic(&dlq.topic)
                    .map_or(0, |t| t.partitions.len()) as i32;
                for p in 0..parts {
                    for r in self.client.read_log(&dlq.topic, p, 0).await? {
                        records.push(DlqRecord {
                            partition: p,
                            offset: r.offset,
                            has_data: r.key.is_some() || r.value.is_some(),
                            headers: r
                                .headers
                                .into_iter()
                                .filter_map(|(k, v)| {
                                    Some((k, String::from_utf8_lossy(&v?).into_owned()))
                                })
                                .collect(),
                        });
                    }
                }
            }
            let n = records.len();
            // Stable: the same count for 1 s once the sure ones are there (a duplicate or a late
            // extra write shows up in that time too).
            match stable_since {
                Some((m, t)) if m == n && t.elapsed() >= Duration::from_secs(1) && n >= want => {
                    break
                }
                Some((m, _)) if m == n => {}
                _ => stable_since = Some((n, Instant::now())),
            }
            if started.elapsed() >= patience {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let n = records.len();
        self.record(Event::DlqRead {
            step,
            records,
            missing,
            sent_ms: sent,
            received_ms: self.now(),
        });
        Ok(if missing {
            format!("{} does not exist", dlq.topic)
        } else {
            format!(
                "{n} record(s) in {} (the spec says at least {want})",
                dlq.topic
            )
        })
    }

    async fn set_group_limit(
        &mut self,
        step: usize,
        name: &str,
        value: i64,
    ) -> Result<String, Abort> {
        let sent = self.now();
        let group = self.group.clone();
        let v = value.to_string();
        let error = match self.client.set_group_configs(&group, &[(name, &v)]).await {
            Ok(()) => ErrorCode::NONE,
            Err(e) => match e.kafka_code() {
                Some(code) => code,
                None => return Err(e.into()),
            },
        };
        self.refused_codes("IncrementalAlterConfigs", [error])?;
        self.record(Event::GroupLimitSet {
            step,
            name: name.to_string(),
            value,
            error,
            sent_ms: sent,
            received_ms: self.now(),
        });
        Ok(format!("IncrementalAlterConfigs {name}={value}: {error}"))
    }

    /// Waits (within the join patience) until the members' assignments cover every partition,
    /// then records each member's assignment and the claim.
    async fn expect_assigned(&mut self, step: usize) -> Result<String, Abort> {
        let started = Instant::now();
        let patience = Duration::from_secs(30);
        let all: BTreeSet<i32> = (0..self.partitions as i32).collect();
        loop {
            let covered: BTreeSet<i32> = self
                .slots
                .iter()
                .filter_map(|s| s.member.as_ref())
                .flat_map(|m| m.assignment())
                .filter(|(t, _)| *t == self.topic_id)
                .map(|(_, p)| p)
                .collect();
            if covered.is_superset(&all) || started.elapsed() >= patience {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let at = self.now();
        let mut text = Vec::new();
        for k in 0..self.slots.len() {
            let Some(m) = self.slots[k].member.as_ref() else {
                continue;
            };
            let mut partitions: Vec<i32> = m
                .assignment()
                .into_iter()
                .filter(|(t, _)| *t == self.topic_id)
                .map(|(_, p)| p)
                .collect();
            partitions.sort_unstable();
            let name = self.slots[k].name.clone();
            text.push(format!("{name}: {partitions:?}"));
            self.record(Event::Assignment {
                step,
                member: name,
                partitions,
                at_ms: at,
            });
        }
        let waited = started.elapsed().as_millis() as Millis;
        self.record(Event::ClaimAssigned {
            step,
            waited_ms: waited,
        });
        Ok(format!("after {waited} ms: {}", text.join(", ")))
    }

    /// Stops the case when an answer refused for want of a permission: no case asks for that,
    /// so it is the run's rights, not the broker's share-group behaviour, that are at fault.
    fn refused_permission(&self, denied: Option<String>) -> Result<(), Abort> {
        match denied {
            None => Ok(()),
            Some(d) => Err(Abort {
                why: d.clone(),
                unreachable: false,
                denied: Some(d),
            }),
        }
    }

    /// [`refused_permission`](Self::refused_permission) for an answer's error codes.
    fn refused_codes(
        &self,
        api: &str,
        codes: impl IntoIterator<Item = ErrorCode>,
    ) -> Result<(), Abort> {
        self.refused_permission(
            codes
                .into_iter()
                .find(|c| c.is_authorization())
                .map(|c| format!("{api} for group {}: {c}", self.group)),
        )
    }

    async fn run_step(&mut self, n: usize, step: &Step) -> Result<String, Abort> {
        match step {
            Step::Produce {
                records,
                batches,
                partition,
            } => self.produce(n, *partition as i32, *records, *batches).await,
            Step::Join { member } => {
                self.joined(n, member).await?;
                Ok("joined".into())
            }
            Step::Fetch {
                member,
                max_records,
                acquire_mode,
            } => self.fetch(n, member, *max_records, *acquire_mode).await,
            Step::Ack {
                member,
                select,
                ty,
                via,
                partition,
            } => {
                let i = self.joined(n, member).await?;
                let parts: Vec<i32> = match partition {
                    Some(p) => vec![*p as i32],
                    None => self.slots[i].held.keys().copied().collect(),
                };
                let acks: Vec<(i32, Vec<AckBatch>)> = parts
                    .into_iter()
                    .map(|p| {
                        let offsets = select.pick(self.slots[i].held_offsets(p));
                        (p, AckBatch::runs(&offsets, ty.code()))
                    })
                    .collect();
                let renew = (*ty == AckType::Renew).then_some(true);
                self.ack(n, member, acks, *via, None, renew).await
            }
            Step::RawAck {
                member,
                batches,
                via,
                epoch,
                partition,
                is_renew_ack,
            } => {
                self.ack(
                    n,
                    member,
                    vec![(*partition as i32, batches.clone())],
                    *via,
                    *epoch,
                    *is_renew_ack,
                )
                .await
            }
            Step::RawFetch {
                member,
                epoch,
                max_records,
                partition,
            } => {
                self.raw_fetch(n, member, *partition as i32, *epoch, *max_records)
                    .await
            }
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
                let open: Vec<i32> = self.slots[i]
                    .member
                    .as_ref()
                    .map(|m| {
                        m.session_epochs()
                            .into_iter()
                            .filter_map(|(b, e)| e.map(|_| b))
                            .collect()
                    })
                    .unwrap_or_default();
                if open.is_empty() {
                    return Ok("skipped: no share session to close".into());
                }
                let mut text = Vec::new();
                for broker in open {
                    let out = self.member(i)?.close_session(broker, Vec::new()).await?;
                    // The session held whatever partitions the member fetched from this broker.
                    let led: Vec<i32> = (0..self.partitions as i32)
                        .filter(|p| self.leader(i, *p).is_ok_and(|l| l == broker))
                        .collect();
                    self.absorb_fetch(n, i, &out, &[], 0, &[]);
                    if out.error_code.is_none() {
                        for p in led {
                            self.slots[i].held.remove(&p);
                        }
                    }
                    text.push(format!("top-level {}", out.error_code));
                }
                Ok(format!("closed: {}", text.join(", ")))
            }
            Step::Disconnect { member } => {
                let i = self.joined(n, member).await?;
                self.disconnect(n, i).await?;
                Ok("connection dropped".into())
            }
            Step::Crash { member } => {
                let i = self.slot(member);
                self.slots[i].forget_held();
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
                    let brokers = old.session_brokers();
                    drop(old);
                    let at = self.now();
                    for broker in brokers.into_iter().chain(
                        // A member that never fetched has no connection to end.
                        std::iter::empty(),
                    ) {
                        self.record(Event::Disconnect {
                            step: n,
                            member: member.clone(),
                            broker,
                            at_ms: at,
                        });
                    }
                    self.settle_after_connection_end().await;
                }
                self.slots[i].forget_held();
                self.joined(n, member).await?;
                Ok("rejoined with a new member id".into())
            }
            Step::Restart { hard } => self.restart(n, None, *hard).await,
            Step::RestartLeader { partition, hard } => {
                let p = *partition as i32;
                let topic = self.topic.clone();
                self.client.refresh_metadata(&[topic.as_str()]).await?;
                let node = self.client.leader(&topic, p).await?;
                self.restart(n, Some(node), *hard).await
            }
            Step::MoveLeader { partition } => self.move_leader(n, *partition as i32).await,
            Step::FetchFormerLeader {
                member,
                max_records,
                partition,
            } => {
                self.fetch_former_leader(n, member, *max_records, *partition as i32)
                    .await
            }
            Step::AddPartitions { count } => self.add_partitions(n, *count).await,
            Step::DeleteTopic => self.delete_topic(n).await,
            Step::AlterOffsets { start, partition } => {
                self.alter_offsets(n, *partition, *start).await
            }
            Step::DeleteOffsets => self.delete_offsets(n).await,
            Step::ExpectDlq => self.expect_dlq(n).await,
            Step::DescribeOffsets => self.describe_offsets(n).await,
            Step::SetGroupLimit { name, value } => self.set_group_limit(n, name, *value).await,
            Step::ExpectAssigned => self.expect_assigned(n).await,
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
            let reason = format!("the target lacks the {} capability", cap.name());
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
    let setup_failed = |why: String, unreachable: bool, denied: Option<String>| async move {
        let (why, gone) = classify(target, why, unreachable, denied).await;
        let event = Event::SetupFailed { reason: why };
        let mut oracle = Oracle::without_setup();
        oracle.observe(&event);
        (vec![event], oracle, gone)
    };
    let mut client = match Client::connect(target.client_config(opts.timeout)).await {
        Ok(c) => c,
        Err(e) => return setup_failed(format!("setup: {e}"), e.is_unreachable(), e.denied()).await,
    };
    let short: String = case
        .id
        .trim_start_matches("kip932.")
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .take(60)
        .collect();
    let topic = format!("{}-{serial}-{short}", opts.prefix);
    let group = format!("{topic}-g");
    let topic_id = match client
        .create_topic(&topic, case.settings.partitions as i32)
        .await
    {
        Ok(id) => id,
        Err(e) => {
            return setup_failed(
                format!("setup: create topic: {e}"),
                e.is_unreachable(),
                e.denied(),
            )
            .await
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
        return setup_failed(
            format!("setup: group configs: {e}"),
            e.is_unreachable(),
            e.denied(),
        )
        .await;
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
    if let Some(enabled) = case.settings.renew_acknowledge {
        let v = enabled.to_string();
        if let Err(e) = client
            .set_group_configs(&group, &[("share.renew.acknowledge.enable", v.as_str())])
            .await
        {
            let _ = tokio::time::timeout(Duration::from_secs(2), client.delete_topic(&topic)).await;
            return setup_failed(
                format!("setup: share.renew.acknowledge.enable={v}: {e}"),
                e.is_unreachable(),
                e.denied(),
            )
            .await;
        }
    }
    // The group's dead-letter topic (KIP-1191), made as the case says.
    let dlq = match case.settings.dlq {
        None => None,
        Some(kind) => {
            let name = kind.name(&topic);
            let flag = [("errors.deadletterqueue.group.enable", "true")];
            let made = match kind {
                DlqTopic::Enabled | DlqTopic::Misnamed => {
                    client.create_topic_with(&name, 1, &flag).await.map(|_| ())
                }
                DlqTopic::NotEnabled => client.create_topic(&name, 1).await.map(|_| ()),
                DlqTopic::Missing => Ok(()),
            };
            let named = match made {
                Ok(()) => {
                    client
                        .set_group_configs(&group, &[("errors.deadletterqueue.topic.name", &name)])
                        .await
                }
                Err(e) => Err(e),
            };
            if let Err(e) = named {
                let _ =
                    tokio::time::timeout(Duration::from_secs(2), client.delete_topic(&topic)).await;
                let _ =
                    tokio::time::timeout(Duration::from_secs(2), client.delete_topic(&name)).await;
                return setup_failed(
                    format!("setup: dead-letter topic {name}: {e}"),
                    e.is_unreachable(),
                    e.denied(),
                )
                .await;
            }
            Some(DlqSetup {
                topic: name,
                writable: kind.writable(),
            })
        }
    };
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
        dlq: dlq.clone(),
        renew_disabled: case.settings.renew_acknowledge == Some(false),
        without_allowances: case.settings.without_allowances.clone(),
    };
    let oracle = match Oracle::new(&setup, Some(target.profile)) {
        Ok(o) => o,
        Err(e) => return setup_failed(format!("setup: {e}"), false, None).await,
    };
    let mut run = CaseRun {
        target,
        opts,
        case,
        client,
        topic,
        group,
        topic_id,
        partitions: case.settings.partitions.max(1),
        deleted: false,
        former_leader: BTreeMap::new(),
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
                denied,
            }) => {
                let (why, gone) = classify(target, why, lost, denied).await;
                unreachable = gone.map(|g| format!("step {n} ({step}): {g}"));
                run.record(Event::StepFailed {
                    step: n,
                    reason: why,
                });
                break;
            }
        }
    }
    // Cleanup, unjudged and bounded: the members leave (a member dropped without leaving stays in
    // the group until its session times out), then the topics and the group go.
    let bound = opts.timeout.min(Duration::from_secs(2));
    let members: Vec<ShareMember> = run
        .slots
        .iter_mut()
        .filter_map(|s| s.member.take())
        .collect();
    if !opts.keep && unreachable.is_none() {
        futures::future::join_all(members.into_iter().map(|mut m| async move {
            let _ = tokio::time::timeout(bound, m.leave()).await;
        }))
        .await;
        if !run.deleted {
            let _ = tokio::time::timeout(bound, run.client.delete_topic(&run.topic)).await;
        }
        if let Some(d) = &dlq {
            let _ = tokio::time::timeout(bound, run.client.delete_topic(&d.topic)).await;
        }
        // Members dropped on the way (a rejoin's old incarnation, a restart) are made to leave on
        // their behalf, so the group goes now rather than after their session timeout.
        let deleted = tokio::time::timeout(
            2 * bound,
            crate::cleanup::delete_group_emptying(&mut run.client, &run.group),
        )
        .await;
        if !matches!(deleted, Ok(Ok(()))) {
            lock_leftovers(&opts.leftover_groups).push(run.group.clone());
        }
    }
    (run.history, run.oracle, unreachable)
}

fn lock_leftovers(m: &Mutex<Vec<String>>) -> std::sync::MutexGuard<'_, Vec<String>> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Deletes the share groups cases left behind ([`RunOptions::leftover_groups`]), retrying each
/// until `patience` has passed (members dropped without leaving time out after the group's session
/// timeout). Returns the groups deleted and those still there.
pub async fn delete_leftover_groups(
    target: &Target,
    opts: &RunOptions,
    patience: Duration,
) -> (usize, Vec<String>) {
    let mut left: Vec<String> = std::mem::take(&mut *lock_leftovers(&opts.leftover_groups));
    if left.is_empty() {
        return (0, left);
    }
    let total = left.len();
    let deadline = Instant::now() + patience;
    let config = target.client_config(opts.timeout);
    let mut client = None;
    loop {
        if client.is_none() {
            client = tokio::time::timeout(opts.timeout, Client::connect(config.clone()))
                .await
                .ok()
                .and_then(Result::ok);
            if client.is_none() {
                // The target is gone (the run says so): nothing to wait for.
                return (total - left.len(), left);
            }
        }
        if let Some(c) = client.as_mut() {
            let mut still = Vec::new();
            let mut denied = false;
            for g in left {
                match tokio::time::timeout(
                    Duration::from_secs(4),
                    crate::cleanup::delete_group_emptying(c, &g),
                )
                .await
                {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => {
                        // A refused permission stays refused: the run's final cleanup names it.
                        denied |= e.denied().is_some();
                        still.push(g)
                    }
                    Err(_) => still.push(g),
                }
            }
            left = still;
            if denied {
                return (total - left.len(), left);
            }
        }
        if left.is_empty() || Instant::now() >= deadline {
            return (total - left.len(), left);
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// How a stopped run names a refusal for want of a permission (the start of its reason).
pub const MISSING_PERMISSION: &str = "missing permission";

/// After a step or the setup lost its connection (`lost`): is the target gone, or did it only drop
/// the connection (a restart nobody asked for, a flapping listener)? Returns the reason to record
/// and, when the target is gone, why — the run then stops (exit 3), and the case is not judged as
/// a spec anomaly either way.
async fn classify(
    target: &Target,
    why: String,
    lost: bool,
    denied: Option<String>,
) -> (String, Option<String>) {
    if let Some(d) = denied {
        return (why, Some(format!("{MISSING_PERMISSION}: {d}")));
    }
    if !lost {
        return (why, None);
    }
    let probe = target.client_config(Duration::from_secs(2));
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

/// The transition kinds a suite can exercise on `target`: everything the model has under its
/// profile, RENEW only where it serves v2 (`Capability::Renew`), and restart only where the target
/// can restart.
pub fn transitions_total(target: &Target) -> Vec<Transition> {
    Transition::ALL
        .into_iter()
        .filter(|t| {
            (*t != Transition::Renew || target.can(crate::trace::Capability::Renew))
                && t.applies_to(&target.profile)
                && (*t != Transition::Restart || target.faults.is_some())
        })
        .collect()
}
