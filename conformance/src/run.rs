//! Replays conformance cases against a target over the Kafka wire protocol, judging every response
//! with the [`Oracle`] as it arrives, and records the history.
//!
//! Each case gets its own topic and share group (unique names per run), applies its settings as group
//! configs before any member joins, and gives every member its own connection and member id. Members
//! join implicitly before they first fetch. Waits for lock expiry are computed from the oracle's own
//! timing windows plus a margin, so a case never depends on timing inside the uncertainty window.
//! Cases run concurrently (`jobs`); cases that restart the broker run afterwards, one at a time.

use crate::oracle::{
    offsets_text, AckObservation, Anomaly, FetchObservation, Millis, Oracle, OracleConfig,
};
use crate::trace::{AckVia, Capability, Case, Level, MemberIds, OffsetReset, Step, TypeName};
use bytes::Bytes;
use serde::Serialize;
use serde_json::{json, Value};
use sharecheck_client::admin::{Client, ClientConfig, ClientError};
use sharecheck_client::member::{
    Epoch, FetchLimits, FetchOutcome, FetchSpec, MemberConfig, MemberError, PartitionAcks,
    ShareMember,
};
use sharecheck_model::model::{Transition, Transitions};
use sharecheck_model::spec::{AckBatch, AckType, ErrorCode, MemberIdx, Offset, Rules};
use sharecheck_model::Profile;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};
use uuid::Uuid;

/// Restarts the target broker (the embedded reference broker can; a remote one cannot).
pub type Restarter =
    Arc<dyn Fn() -> Pin<Box<dyn Future<Output = Result<(), String>> + Send>> + Send + Sync>;

/// What the suite runs against.
#[derive(Clone)]
pub struct Target {
    /// `host:port`.
    pub bootstrap: String,
    /// What it is ("Apache Kafka 4.2 (guessed from API versions)", "sharecheck reference broker").
    pub implementation: String,
    /// The rules it is judged by.
    pub profile: Profile,
    /// Its own delivery limit (broker-level `group.share.delivery.count.limit`).
    pub delivery_limit: u8,
    /// Its in-flight window limit (`group.share.partition.max.record.locks`).
    pub max_in_flight: u32,
    /// How to restart it, when possible.
    pub restarter: Option<Restarter>,
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Target")
            .field("bootstrap", &self.bootstrap)
            .field("implementation", &self.implementation)
            .field("profile", &self.profile.name)
            .field("delivery_limit", &self.delivery_limit)
            .field("restart", &self.restarter.is_some())
            .finish()
    }
}

impl Target {
    /// Whether the target can do what `cap` asks.
    pub fn can(&self, cap: Capability) -> bool {
        match cap {
            Capability::Restart => self.restarter.is_some(),
            Capability::GroupDeliveryLimit => true,
        }
    }
}

/// Why a target cannot be used at all (exit code 3).
#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    /// Connecting or talking to it failed.
    #[error("{0}")]
    Client(#[from] ClientError),
}

/// Connects to `bootstrap`, checks that share groups work there, and learns its profile and limits.
pub async fn prepare_target(
    bootstrap: &str,
    profile: Option<Profile>,
    timeout: Duration,
) -> Result<Target, TargetError> {
    let mut client = Client::connect(ClientConfig::new(bootstrap).with_timeout(timeout)).await?;
    client.check_share_support().map_err(ClientError::from)?;
    let info = client.broker_info();
    let guess = sharecheck_client::Release::guess(client.versions());
    let profile = profile.unwrap_or_else(|| sharecheck_client::release::profile_for(guess));
    let node = client.cluster().brokers.keys().next().copied().unwrap_or(0);
    let mut delivery_limit = 5u8;
    let mut max_in_flight = 2000u32;
    if let Ok(entries) = client.describe_configs(4, &node.to_string()).await {
        for e in entries {
            let v = e.value.as_deref().and_then(|v| v.parse::<u64>().ok());
            match (e.name.as_str(), v) {
                ("group.share.delivery.count.limit", Some(v)) => {
                    delivery_limit = v.clamp(2, 255) as u8
                }
                ("group.share.partition.max.record.locks", Some(v)) => {
                    max_in_flight = v.clamp(1, u64::from(u32::MAX)) as u32
                }
                _ => {}
            }
        }
    }
    let implementation = match guess {
        Some(release) => format!("Apache Kafka {release} (guessed from API versions and features)"),
        None => format!(
            "unknown Kafka-protocol broker ({} API keys)",
            info.versions.apis.len()
        ),
    };
    Ok(Target {
        bootstrap: bootstrap.to_string(),
        implementation,
        profile,
        delivery_limit,
        max_in_flight,
        restarter: None,
    })
}

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
    /// Concurrent cases.
    pub jobs: usize,
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
            jobs: 8,
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

/// pass / fail / inconclusive / skipped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
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

/// One step as run: what it was, what happened, and the record table after it.
#[derive(Clone, Debug, Serialize)]
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

/// The result of one case.
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
    pub anomalies: Vec<Anomaly>,
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
    /// Every request and response, with times in ms since the case started.
    pub history: Vec<Value>,
    /// Step by step.
    pub steps: Vec<StepRecord>,
    /// The case itself.
    #[serde(skip)]
    pub case: Case,
}

struct Slot {
    name: String,
    idx: MemberIdx,
    member: Option<ShareMember>,
    held: Vec<Offset>,
    received: u32,
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
    slots: Vec<Slot>,
    next_idx: MemberIdx,
    start: Instant,
    start_sys: SystemTime,
    history: Vec<Value>,
    steps: Vec<StepRecord>,
    delivery_limit: u8,
    /// The value produced at each offset, to check what members receive.
    payloads: std::collections::BTreeMap<Offset, Bytes>,
}

/// Why a case stopped early: it becomes inconclusive with this reason.
struct Abort(String);

impl From<ClientError> for Abort {
    fn from(e: ClientError) -> Self {
        Abort(e.to_string())
    }
}

impl From<MemberError> for Abort {
    fn from(e: MemberError) -> Self {
        Abort(e.to_string())
    }
}

impl CaseRun<'_> {
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
            idx: self.next_idx,
            member: None,
            held: Vec::new(),
            received: 0,
        });
        self.next_idx += 1;
        self.slots.len() - 1
    }

    fn name_of(&self, idx: MemberIdx) -> String {
        self.slots
            .iter()
            .find(|s| s.idx == idx)
            .map(|s| s.name.clone())
            .unwrap_or_else(|| format!("{}'", idx))
    }

    async fn joined(&mut self, name: &str) -> Result<usize, Abort> {
        let i = self.slot(name);
        if self.slots[i].member.is_none() {
            let mut config = MemberConfig::new(self.group.clone(), vec![self.topic.clone()]);
            config.join_timeout = Duration::from_secs(30);
            if self.case.settings.member_ids == MemberIds::StandardBase64 {
                config.member_id = sharecheck_client::member::standard_base64_member_id();
            }
            let sent = self.now();
            let member = ShareMember::join(&mut self.client, config).await?;
            self.history.push(json!({"op": "join", "member": name, "member_id": member.member_id(), "sent_ms": sent, "received_ms": self.now()}));
            self.slots[i].member = Some(member);
        }
        Ok(i)
    }

    fn leader(&self, i: usize) -> Result<i32, Abort> {
        let m = self.slots[i]
            .member
            .as_ref()
            .ok_or_else(|| Abort("member not joined".into()))?;
        Ok(m.leader_of(self.topic_id, 0)?)
    }

    fn member(&mut self, i: usize) -> Result<&mut ShareMember, Abort> {
        self.slots[i]
            .member
            .as_mut()
            .ok_or_else(|| Abort("member not joined".into()))
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

    /// Judges a ShareFetch outcome and updates what the member holds.
    fn absorb_fetch(
        &mut self,
        step: usize,
        i: usize,
        out: &FetchOutcome,
        fetches: bool,
        acks: &[AckBatch],
    ) -> (Vec<Offset>, ErrorCode) {
        let (sent, received) = self.times(out.sent_at, out.elapsed);
        let part = out.partition(self.topic_id, 0);
        // What a member receives must be what was produced at that offset: a wrong value is a
        // broken log, not a share-group rule, but no less a failure.
        if let Some(p) = part {
            let wrong: Vec<Offset> = p
                .records
                .iter()
                .filter(|r| {
                    self.payloads
                        .get(&r.offset)
                        .is_some_and(|v| r.value.as_ref() != Some(v))
                })
                .map(|r| r.offset)
                .collect();
            if !wrong.is_empty() {
                self.oracle.report(
                    "corrupted-record",
                    step,
                    format!(
                        "offsets {} carried values other than those produced there",
                        offsets_text(wrong)
                    ),
                );
            }
            if !p.acquired_without_data.is_empty() {
                self.oracle.note_step(
                    step,
                    format!(
                        "acquired offsets {} came without a data record",
                        offsets_text(p.acquired_without_data.iter().copied())
                    ),
                );
            }
        }
        let acquired: Vec<(Offset, Offset, i16)> = part
            .map(|p| {
                p.acquired
                    .iter()
                    .map(|r| (r.first_offset, r.last_offset, r.delivery_count))
                    .collect()
            })
            .unwrap_or_default();
        let ack_error = part.map(|p| p.ack_error_code);
        let obs = FetchObservation {
            member: self.slots[i].idx,
            sent,
            received,
            epoch: out.epoch_sent,
            fetches,
            acks,
            top_error: out.error_code,
            partition_error: part.map(|p| p.error_code),
            ack_error: if acks.is_empty() {
                None
            } else {
                Some(ack_error.unwrap_or(ErrorCode::NONE))
            },
            acquired: &acquired,
            lock_timeout_ms: Some(out.acquisition_lock_timeout_ms),
        };
        self.oracle.fetched(step, &obs);
        let got: Vec<Offset> = acquired
            .iter()
            .flat_map(|(f, l, _)| *f..=(*l).min(f.saturating_add(100_000)))
            .collect();
        let slot = &mut self.slots[i];
        slot.received += got.len() as u32;
        for o in &got {
            if !slot.held.contains(o) {
                slot.held.push(*o);
            }
        }
        slot.held.sort_unstable();
        let ack_code = ack_error.unwrap_or(ErrorCode::NONE);
        if !acks.is_empty() && out.error_code.is_none() && ack_code == ErrorCode::NONE {
            forget_acked(&mut slot.held, acks);
        }
        if out.epoch_sent == -1 && out.error_code.is_none() {
            slot.held.clear();
        }
        self.history.push(json!({
            "step": step, "op": "share_fetch", "member": slot.name, "epoch": out.epoch_sent,
            "sent_ms": sent, "received_ms": received, "error": out.error_code.0,
            "partition_error": part.map(|p| p.error_code.0), "ack_error": ack_error.map(|c| c.0),
            "acks": batches_json(acks), "acquired": acquired, "records": part.map(|p| p.records.len()).unwrap_or(0),
            "lock_timeout_ms": out.acquisition_lock_timeout_ms,
        }));
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
        let label = format!("{}-{step}", self.case.id);
        let bases = self
            .client
            .produce(&self.topic, 0, &sizes, |k| {
                (
                    Some(Bytes::from(format!("k{k}"))),
                    Some(Bytes::from(format!("{label}-{k}"))),
                )
            })
            .await?;
        let expected_base = self.oracle.reference().log_end();
        for k in 0..n {
            self.payloads.insert(
                expected_base + k as Offset,
                Bytes::from(format!("{label}-{k}")),
            );
        }
        if bases.first().is_some_and(|b| *b != expected_base) {
            self.oracle.set_inconclusive(format!(
                "step {step}: produce landed at offset {:?}, expected {expected_base}",
                bases.first()
            ));
        }
        self.oracle.produced(n);
        self.history.push(json!({"step": step, "op": "produce", "sent_ms": sent, "received_ms": self.now(), "batches": sizes, "base_offsets": bases}));
        Ok(format!(
            "{n} record(s) at offsets {expected_base}..{}",
            expected_base + n as i64 - 1
        ))
    }

    async fn fetch(&mut self, step: usize, name: &str, max_records: u32) -> Result<String, Abort> {
        let i = self.joined(name).await?;
        // What every account of the spec says is acquirable once the releases and lock expiries
        // already due (within the tolerance) have happened: the fetch keeps trying for those.
        let horizon = self.now() + self.opts.tolerance_ms + self.opts.margin_ms;
        let want = self.oracle.surely_acquirable(horizon, max_records as usize);
        let deadline = Instant::now() + self.opts.fetch_patience;
        let mut got: Vec<Offset> = Vec::new();
        let mut requests = 0;
        loop {
            let remaining = max_records as usize - got.len().min(max_records as usize);
            if remaining == 0 {
                break;
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
            let spec = FetchSpec::partitions(vec![(self.topic_id, 0)]).with_limits(limits);
            let out = self.member(i)?.fetch(&spec).await?;
            requests += 1;
            let (new, _) = self.absorb_fetch(step, i, &out, true, &[]);
            for o in new {
                if !got.contains(&o) {
                    got.push(o);
                }
            }
            // A refused request (top-level error) is judged once: asking again would only repeat
            // the refusal, as fast as the broker answers.
            let refused = !out.error_code.is_none();
            if refused || want.is_empty() || got.len() >= want.len() || Instant::now() >= deadline {
                break;
            }
        }
        if got.len() < want.len() {
            self.oracle.check_missing(
                step,
                &want,
                &got,
                self.opts.fetch_patience.as_millis() as u64,
            );
        }
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
        let i = self.joined(name).await?;
        if batches.is_empty() {
            return Ok("skipped: the member holds none of the selected records".into());
        }
        let acks = vec![PartitionAcks {
            topic_id: self.topic_id,
            partition: 0,
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
                let partition_error = out.partition_error(self.topic_id, 0);
                let obs = AckObservation {
                    member: self.slots[i].idx,
                    sent,
                    received,
                    epoch: out.epoch_sent,
                    acks: &batches,
                    top_error: out.error_code,
                    partition_error,
                };
                self.oracle.acknowledged(step, &obs);
                let ok = out.error_code.is_none()
                    && partition_error.unwrap_or(ErrorCode::NONE) == ErrorCode::NONE;
                if ok {
                    forget_acked(&mut self.slots[i].held, &batches);
                }
                self.history.push(json!({
                    "step": step, "op": "share_acknowledge", "member": name, "epoch": out.epoch_sent,
                    "sent_ms": sent, "received_ms": received, "error": out.error_code.0,
                    "partition_error": partition_error.map(|c| c.0), "acks": batches_json(&batches),
                }));
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
                let (_, ack_code) = self.absorb_fetch(step, i, &out, false, &batches);
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
        let i = self.joined(name).await?;
        let limits = FetchLimits {
            max_wait_ms: self.opts.idle_fetch_wait_ms,
            min_bytes: 1,
            max_bytes: 8 * 1024 * 1024,
            max_records: max_records as i32,
            batch_size: max_records.max(1) as i32,
        };
        let mut spec = FetchSpec::partitions(vec![(self.topic_id, 0)]).with_limits(limits);
        spec.epoch = Epoch::Raw(epoch);
        let out = self.member(i)?.fetch(&spec).await?;
        let (got, _) = self.absorb_fetch(step, i, &out, max_records > 0 && epoch != -1, &[]);
        Ok(format!(
            "epoch {epoch}: top-level {}, received {}",
            out.error_code,
            offsets_text(got)
        ))
    }

    async fn run_step(&mut self, n: usize, step: &Step) -> Result<String, Abort> {
        match step {
            Step::Produce { records, batches } => self.produce(n, *records, *batches).await,
            Step::Join { member } => {
                self.joined(member).await?;
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
                let i = self.joined(member).await?;
                let offsets = select.pick(&self.slots[i].held);
                let batches = AckBatch::runs(&offsets, ty.ack_type().code());
                self.ack(n, member, offsets, batches, *via, None).await
            }
            Step::RawAck {
                member,
                batches,
                via,
                epoch,
            } => {
                let b: Vec<AckBatch> = batches
                    .iter()
                    .map(|b| AckBatch {
                        first_offset: b.first_offset,
                        last_offset: b.last_offset,
                        types: b.types.iter().copied().collect(),
                    })
                    .collect();
                let offsets: Vec<Offset> = batches.iter().map(|b| b.first_offset).collect();
                self.ack(n, member, offsets, b, *via, *epoch).await
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
                Ok(format!("waited until {until} ms"))
            }
            Step::Wait { ms } => {
                tokio::time::sleep(Duration::from_millis(*ms)).await;
                Ok(format!("waited {ms} ms"))
            }
            Step::CloseSession { member } => {
                let i = self.joined(member).await?;
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
                self.absorb_fetch(n, i, &out, false, &[]);
                Ok(format!("closed: top-level {}", out.error_code))
            }
            Step::Disconnect { member } => {
                let i = self.joined(member).await?;
                let broker = self.leader(i)?;
                self.member(i)?.drop_connection(broker);
                let at = self.now();
                self.oracle.disconnected(self.slots[i].idx, at);
                self.slots[i].held.clear();
                self.history
                    .push(json!({"step": n, "op": "disconnect", "member": member, "at_ms": at}));
                self.settle_after_connection_end().await;
                Ok("connection dropped".into())
            }
            Step::Crash { member } => {
                let i = self.slot(member);
                self.slots[i].held.clear();
                self.history
                    .push(json!({"step": n, "op": "crash", "member": member, "at_ms": self.now()}));
                Ok("the member forgot what it held".into())
            }
            Step::Leave { member } => {
                let i = self.joined(member).await?;
                let out = self.member(i)?.leave().await?;
                self.history.push(json!({"step": n, "op": "leave", "member": member, "error": out.error_code.0, "at_ms": self.now()}));
                Ok(format!("left: {}", out.error_code))
            }
            Step::Rejoin { member } => {
                let i = self.slot(member);
                let old = self.slots[i].idx;
                if let Some(m) = self.slots[i].member.take() {
                    drop(m);
                    let at = self.now();
                    self.oracle.disconnected(old, at);
                    self.settle_after_connection_end().await;
                }
                self.slots[i].idx = self.next_idx;
                self.next_idx += 1;
                self.slots[i].held.clear();
                self.joined(member).await?;
                Ok("rejoined with a new member id".into())
            }
            Step::Restart => {
                let Some(restart) = self.target.restarter.clone() else {
                    return Err(Abort("the target cannot restart".into()));
                };
                restart().await.map_err(Abort)?;
                for s in &mut self.slots {
                    if let Some(m) = s.member.as_mut() {
                        for b in m.session_epochs().keys().copied().collect::<Vec<_>>() {
                            m.drop_connection(b);
                        }
                    }
                }
                self.oracle.restarted();
                self.client = Client::connect(
                    ClientConfig::new(self.target.bootstrap.clone())
                        .with_timeout(self.opts.timeout),
                )
                .await?;
                self.history
                    .push(json!({"step": n, "op": "restart", "at_ms": self.now()}));
                Ok("broker restarted".into())
            }
            Step::ExpectReceived { member, at_least } => {
                let i = self.slot(member);
                let got = self.slots[i].received;
                if got < *at_least {
                    self.oracle.report(
                        "claim-not-met",
                        n,
                        format!(
                            "{member} received {got} record(s), the claim is at least {at_least}"
                        ),
                    );
                }
                Ok(format!("{member} received {got}"))
            }
        }
    }
}

fn forget_acked(held: &mut Vec<Offset>, acks: &[AckBatch]) {
    held.retain(|o| {
        !acks.iter().any(|b| {
            (b.first_offset..=b.last_offset).contains(o) && {
                let code = if b.types.len() == 1 {
                    b.types[0]
                } else {
                    b.types
                        .get((o - b.first_offset) as usize)
                        .copied()
                        .unwrap_or(1)
                };
                code != AckType::Renew.code()
            }
        })
    });
}

fn batches_json(batches: &[AckBatch]) -> Value {
    Value::Array(
        batches
            .iter()
            .map(|b| json!([b.first_offset, b.last_offset, b.types.to_vec()]))
            .collect(),
    )
}

/// Runs one case against `target` (`serial` numbers topics and groups within the run).
pub async fn run_case(
    target: &Target,
    opts: &RunOptions,
    case: &Case,
    serial: usize,
) -> CaseResult {
    let started = Instant::now();
    let mut result = CaseResult {
        id: case.id.clone(),
        area: case.area().to_string(),
        level: case.level,
        verdict: CaseVerdict::Skipped,
        anomalies: Vec::new(),
        reason: None,
        notes: Vec::new(),
        duration_ms: 0,
        exercised: Transitions::default(),
        delivery_limit: target.delivery_limit,
        history: Vec::new(),
        steps: Vec::new(),
        case: case.clone(),
    };
    if let Some(cap) = case.requires.iter().find(|c| !target.can(**c)) {
        result.reason = Some(format!("the target lacks the {cap:?} capability"));
        return result;
    }
    match run_case_inner(target, opts, case, serial).await {
        Ok(run) => {
            // The oracle knows members by index; name them as the trace does.
            result.anomalies = run
                .oracle
                .anomalies()
                .iter()
                .map(|a| {
                    let mut a = a.clone();
                    for slot in &run.slots {
                        a.detail = a.detail.replace(
                            &format!("Acquired({})", slot.idx),
                            &format!("Acquired by {}", slot.name),
                        );
                    }
                    a
                })
                .collect();
            result.notes = run.oracle.notes().to_vec();
            result.exercised = run.oracle.exercised();
            result.delivery_limit = run.delivery_limit;
            result.reason = run.oracle.inconclusive().map(str::to_string);
            result.verdict = if !result.anomalies.is_empty() {
                CaseVerdict::Fail
            } else if result.reason.is_some() {
                CaseVerdict::Inconclusive
            } else {
                CaseVerdict::Pass
            };
            result.history = run.history;
            result.steps = run.steps;
        }
        Err((reason, history, steps)) => {
            result.verdict = CaseVerdict::Inconclusive;
            result.reason = Some(reason);
            result.history = history;
            result.steps = steps;
        }
    }
    result.duration_ms = started.elapsed().as_millis() as u64;
    result
}

type Partial = (String, Vec<Value>, Vec<StepRecord>);

async fn run_case_inner<'a>(
    target: &'a Target,
    opts: &'a RunOptions,
    case: &'a Case,
    serial: usize,
) -> Result<CaseRun<'a>, Partial> {
    let fail = |why: String| (why, Vec::new(), Vec::new());
    let mut client =
        Client::connect(ClientConfig::new(target.bootstrap.clone()).with_timeout(opts.timeout))
            .await
            .map_err(|e| fail(format!("setup: {e}")))?;
    let short: String = case
        .id
        .trim_start_matches("kip932.")
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .take(60)
        .collect();
    let topic = format!("sc-{}-{serial}-{short}", opts.run_id);
    let group = format!("{topic}-g");
    let topic_id = client
        .create_topic(&topic, case.settings.partitions as i32)
        .await
        .map_err(|e| fail(format!("setup: create topic: {e}")))?;
    let reset = match case.settings.auto_offset_reset {
        OffsetReset::Earliest => "earliest",
        OffsetReset::Latest => "latest",
    };
    let lock = case.settings.lock_duration_ms.to_string();
    client
        .set_group_configs(
            &group,
            &[
                ("share.auto.offset.reset", reset),
                ("share.record.lock.duration.ms", lock.as_str()),
            ],
        )
        .await
        .map_err(|e| fail(format!("setup: group configs: {e}")))?;
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
    let rules = Rules {
        delivery_limit,
        max_in_flight,
        ..Rules::kafka_defaults(target.profile)
    };
    let oracle = Oracle::new(OracleConfig {
        rules,
        lock_ms: u64::from(case.settings.lock_duration_ms),
        tolerance_ms: opts.tolerance_ms,
        max_candidates: 256,
    })
    .with_reset(case.settings.auto_offset_reset == OffsetReset::Latest);
    let mut run = CaseRun {
        target,
        opts,
        case,
        client,
        topic,
        group,
        topic_id,
        oracle,
        slots: Vec::new(),
        next_idx: 0,
        start: Instant::now(),
        start_sys: SystemTime::now(),
        history: Vec::new(),
        steps: Vec::new(),
        delivery_limit,
        payloads: std::collections::BTreeMap::new(),
    };
    run.history.push(json!({"op": "setup", "topic": run.topic, "group": run.group, "delivery_limit": delivery_limit, "group_delivery_limit": limited, "max_in_flight": max_in_flight}));
    for (k, step) in case.steps.iter().enumerate() {
        let n = k + 1;
        let outcome = match run.run_step(n, step).await {
            Ok(text) => text,
            Err(Abort(why)) => {
                let reason = format!("step {n} ({step}): {why}");
                run.steps.push(StepRecord {
                    step: n,
                    text: step.to_string(),
                    outcome: format!("could not complete: {why}"),
                    records: Vec::new(),
                });
                run.oracle.set_inconclusive(reason);
                break;
            }
        };
        let names = |m: MemberIdx| run.name_of(m);
        let records = run.oracle.table(&names);
        run.steps.push(StepRecord {
            step: n,
            text: step.to_string(),
            outcome,
            records,
        });
    }
    // Cleanup, unjudged and bounded: members stop heartbeating when dropped.
    for s in run.slots.iter_mut() {
        s.member.take();
    }
    let _ = tokio::time::timeout(Duration::from_secs(2), run.client.delete_topic(&run.topic)).await;
    Ok(run)
}

type Indexed<'a> = Vec<(usize, &'a Case)>;

/// Runs `cases` against `target`: up to `opts.jobs` at a time, then the cases that restart the broker
/// one by one. `progress` is called after each case with (done, total, the result).
pub async fn run_suite(
    target: &Target,
    opts: &RunOptions,
    cases: &[Case],
    progress: &(dyn Fn(usize, usize, &CaseResult) + Sync),
) -> Vec<CaseResult> {
    let total = cases.len();
    let (parallel, serial): (Indexed<'_>, Indexed<'_>) = cases
        .iter()
        .enumerate()
        .partition(|(_, c)| !c.requires.contains(&Capability::Restart));
    let mut results: Vec<Option<CaseResult>> = vec![None; total];
    let sem = Arc::new(tokio::sync::Semaphore::new(opts.jobs.max(1)));
    let mut set = tokio::task::JoinSet::new();
    for (i, case) in parallel {
        let (t, o, c, s) = (target.clone(), opts.clone(), case.clone(), sem.clone());
        set.spawn(async move {
            let _permit = s.acquire_owned().await;
            (i, run_case(&t, &o, &c, i).await)
        });
    }
    let mut done = 0;
    while let Some(joined) = set.join_next().await {
        if let Ok((i, r)) = joined {
            done += 1;
            progress(done, total, &r);
            results[i] = Some(r);
        }
    }
    for (i, case) in serial {
        let r = run_case(target, opts, case, i).await;
        done += 1;
        progress(done, total, &r);
        results[i] = Some(r);
    }
    results
        .into_iter()
        .zip(cases)
        .map(|(r, c)| {
            r.unwrap_or_else(|| CaseResult {
                id: c.id.clone(),
                area: c.area().to_string(),
                level: c.level,
                verdict: CaseVerdict::Inconclusive,
                anomalies: Vec::new(),
                reason: Some("the case's task failed".into()),
                notes: Vec::new(),
                duration_ms: 0,
                exercised: Transitions::default(),
                delivery_limit: target.delivery_limit,
                history: Vec::new(),
                steps: Vec::new(),
                case: c.clone(),
            })
        })
        .collect()
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

impl TypeName {
    /// The wire code.
    pub fn code(self) -> i8 {
        self.ack_type().code()
    }
}
