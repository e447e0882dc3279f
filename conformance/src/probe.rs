//! `sharecheck probe`: what is this broker, can it do share groups, and does a smoke round of
//! acquire / release / accept / lock expiry behave as KIP-932 says?
//!
//! The smoke round (fresh topic and group per run, names unique):
//!
//! 1. the group gets `share.auto.offset.reset=earliest` and `share.record.lock.duration.ms=1000`
//!    *before* its first heartbeat (kafka-from-maven.md §3);
//! 2. 10 records are produced in two batches of 5;
//! 3. member A joins and fetches them, releases 3 (across the batch boundary) piggy-backed on a
//!    fetch, fetches those 3 again and accepts all 10 with ShareAcknowledge, closes its session and
//!    leaves;
//! 4. member B joins and must find nothing left;
//! 5. 5 more records; B fetches them, lets the 1 s lock expire (waiting past it with a margin) and
//!    fetches them again; then accepts them.
//!
//! Expectations are not hard-coded: every observation (each acquired range, each acknowledgement
//! result) is fed to the executable spec [`sharecheck_model::spec`], which says which delivery
//! counts and error codes are allowed ([`SpecTracker`]). Timing follows oracle-notes.md
//! principle 3: a lock taken by a request sent at `s` and answered at `r` expires somewhere in
//! `[s + D, r + D + tolerance]`; inside that window both outcomes are allowed and the
//! observation decides.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde::Serialize;
use sharecheck_model::spec::{AckBatch as SpecAckBatch, RecordState, Rules, SharePartition};
use sharecheck_model::{MemberIdx, Profile};
use uuid::Uuid;

use crate::client::{uuid_to_kafka, BrokerInfo, Client, ClientConfig, ClientError};
use crate::member::{
    ack, AckBatch, Epoch, FetchOutcome, FetchSpec, MemberConfig, MemberError, PartitionAcks,
    ShareMember,
};
use crate::wire::KafkaCode;

/// How to probe.
#[derive(Clone, Debug)]
pub struct ProbeConfig {
    pub bootstrap: String,
    /// Deadline for connecting and for each request.
    pub timeout: Duration,
    /// `share.record.lock.duration.ms` for the probe's group.
    pub lock_duration_ms: i32,
    /// How long past the lock duration to wait before expecting redelivery.
    pub expiry_margin: Duration,
    /// Patience for fetch loops (empty responses are normal while a share partition initialises
    /// or another fetch holds its lock).
    pub fetch_patience: Duration,
    /// How long a member may wait for its assignment.
    pub join_timeout: Duration,
    /// Stop after describing the broker.
    pub info_only: bool,
}

impl ProbeConfig {
    pub fn new(bootstrap: impl Into<String>) -> Self {
        ProbeConfig {
            bootstrap: bootstrap.into(),
            timeout: Duration::from_secs(5),
            lock_duration_ms: 1000,
            expiry_margin: Duration::from_millis(1500),
            fetch_patience: Duration::from_secs(15),
            join_timeout: Duration::from_secs(30),
            info_only: false,
        }
    }
}

/// The status of one step.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum StepStatus {
    /// An expectation held.
    Pass,
    /// An expectation did not hold.
    Fail,
    /// Could not be decided (timing window, configuration refused).
    Inconclusive,
    /// Setup or information, nothing judged.
    Info,
}

/// One printed step.
#[derive(Clone, Debug, Serialize)]
pub struct ProbeStep {
    pub name: String,
    pub status: StepStatus,
    pub detail: String,
    /// Time spent in the step.
    pub elapsed_ms: u64,
    /// Anomaly name (DESIGN.md vocabulary) when the step failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub anomaly: Option<String>,
}

/// The probe's overall verdict, mapped onto exit codes 0 / 1 / 2 / 3 by the CLI.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "verdict", rename_all = "kebab-case")]
pub enum Verdict {
    Pass,
    Violation { failed: Vec<String> },
    Inconclusive { reason: String },
    Unusable { reason: String },
}

/// Everything the probe found.
#[derive(Clone, Debug, Serialize)]
pub struct ProbeReport {
    pub bootstrap: String,
    pub broker: Option<BrokerInfo>,
    /// The spec profile the expectations were derived under.
    pub profile: Option<String>,
    pub topic: Option<String>,
    pub group: Option<String>,
    pub steps: Vec<ProbeStep>,
    pub verdict: Verdict,
    pub elapsed_ms: u64,
}

/// The spec profile matching a release guess (default: 4.2).
pub fn profile_for(release_guess: Option<&str>) -> Profile {
    let g = release_guess.unwrap_or("");
    if g.starts_with("4.1") {
        Profile::KAFKA_4_1
    } else if g.starts_with("4.3") {
        Profile::KAFKA_4_3
    } else if g.starts_with("4.4") {
        Profile::KAFKA_4_4
    } else {
        Profile::KAFKA_4_2
    }
}

// ---------------------------------------------------------------------------------------------
// The spec, fed with observations

/// Timing slack added to the lock window's late end (broker timer granularity, scheduling).
const EXPIRY_TOLERANCE: Duration = Duration::from_millis(250);

/// One share partition as the spec sees it, advanced by observations of the real broker.
pub struct SpecTracker {
    sp: SharePartition,
    rules: Rules,
    lock: Duration,
    /// Offset → (send, receive) instants of the request that acquired it.
    acquired_at: BTreeMap<i64, (Instant, Instant)>,
}

/// How an observation compared with the spec.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mismatch {
    pub anomaly: &'static str,
    pub detail: String,
}

impl SpecTracker {
    pub fn new(profile: Profile, lock: Duration) -> SpecTracker {
        SpecTracker {
            sp: SharePartition::new(0),
            rules: Rules::kafka_defaults(profile),
            lock,
            acquired_at: BTreeMap::new(),
        }
    }

    pub fn produce(&mut self, n: usize) {
        self.sp.produce(n);
    }

    /// Offsets the spec says a fetch may acquire now (before any lock expiry).
    pub fn acquirable(&self) -> Vec<i64> {
        self.sp.next_acquisition(&self.rules, 10_000).to_vec()
    }

    /// The records `member` holds in the spec.
    pub fn held_by(&self, member: MemberIdx) -> Vec<i64> {
        self.sp
            .records()
            .filter(|(_, r)| r.state == RecordState::Acquired(member))
            .map(|(o, _)| o)
            .collect()
    }

    /// Locks that surely expired before `sent`: apply them.
    fn expire_surely(&mut self, sent: Instant) {
        let due: Vec<i64> = self
            .acquired_at
            .iter()
            .filter(|(_, (_, r))| sent > *r + self.lock + EXPIRY_TOLERANCE)
            .map(|(o, _)| *o)
            .collect();
        for o in due {
            self.sp.expire_lock(&self.rules, o);
            self.acquired_at.remove(&o);
        }
    }

    /// Whether `o`'s lock may have expired by `received`.
    fn may_have_expired(&self, o: i64, received: Instant) -> bool {
        self.acquired_at
            .get(&o)
            .is_some_and(|(s, _)| received >= *s + self.lock)
    }

    /// `member` was given `acquired` (offset, delivery count) by a request sent at `sent` and
    /// answered at `received`.
    pub fn observe_acquired(
        &mut self,
        member: MemberIdx,
        acquired: &[(i64, i16)],
        sent: Instant,
        received: Instant,
    ) -> Result<(), Mismatch> {
        if acquired.is_empty() {
            return Ok(());
        }
        self.expire_surely(sent);
        let mut offsets: Vec<i64> = acquired.iter().map(|(o, _)| *o).collect();
        offsets.sort_unstable();
        // A record still Acquired in the spec whose lock may have run out: the observation says
        // it did.
        for &o in &offsets {
            if matches!(
                self.sp.record(o).map(|r| r.state),
                Some(RecordState::Acquired(_))
            ) && self.may_have_expired(o, received)
            {
                self.sp.expire_lock(&self.rules, o);
            }
        }
        let before: BTreeMap<i64, RecordState> = offsets
            .iter()
            .filter_map(|o| self.sp.record(*o).map(|r| (*o, r.state)))
            .collect();
        let ranges = self
            .sp
            .acquire(&self.rules, member, &offsets)
            .map_err(|e| {
                let anomaly = match before.get(&e.offset) {
                    Some(RecordState::Acquired(_)) => "double-acquire",
                    Some(RecordState::Acknowledged) => "redelivered-after-accept",
                    Some(RecordState::Archived) => "redelivered-after-archive",
                    _ => "unexpected-acquisition",
                };
                Mismatch {
                    anomaly,
                    detail: format!(
                        "offset {} was acquired but the spec says it is not acquirable: {}",
                        e.offset, e.reason
                    ),
                }
            })?;
        for &o in &offsets {
            self.acquired_at.insert(o, (sent, received));
        }
        let mut wrong = Vec::new();
        for (o, observed) in acquired {
            let expected = ranges
                .iter()
                .find(|r| (r.first_offset..=r.last_offset).contains(o))
                .map(|r| r.delivery_count as i16);
            if expected != Some(*observed) {
                wrong.push(format!(
                    "offset {o}: delivery count {observed}, spec {}",
                    expected.map_or("-".to_string(), |e| e.to_string())
                ));
            }
        }
        if wrong.is_empty() {
            Ok(())
        } else {
            Err(Mismatch {
                anomaly: "delivery-count-mismatch",
                detail: wrong.join("; "),
            })
        }
    }

    /// The spec's answer to `member` acknowledging `batches` now (no state change).
    pub fn expected_ack(&self, member: MemberIdx, batches: &[AckBatch]) -> KafkaCode {
        let mut sp = self.sp.clone();
        match sp.acknowledge(&self.rules, member, &to_spec(batches), false) {
            Ok(_) => KafkaCode::NONE,
            Err(e) => KafkaCode(e.code.0),
        }
    }

    /// `member` acknowledged `batches` in a request sent at `sent`, answered `observed` at
    /// `received`.
    pub fn observe_ack(
        &mut self,
        member: MemberIdx,
        batches: &[AckBatch],
        observed: KafkaCode,
        sent: Instant,
        received: Instant,
    ) -> Result<(), Mismatch> {
        self.expire_surely(sent);
        let spec_batches = to_spec(batches);
        let mut plain = self.sp.clone();
        let plain_code = match plain.acknowledge(&self.rules, member, &spec_batches, false) {
            Ok(_) => KafkaCode::NONE,
            Err(e) => KafkaCode(e.code.0),
        };
        if plain_code == observed {
            self.sp = plain;
            self.forget_terminal();
            return Ok(());
        }
        // Maybe some locks ran out during the request.
        let maybe: Vec<i64> = batches
            .iter()
            .flat_map(|b| b.first_offset..=b.last_offset)
            .filter(|o| self.may_have_expired(*o, received))
            .collect();
        if !maybe.is_empty() {
            let mut expired = self.sp.clone();
            for &o in &maybe {
                expired.expire_lock(&self.rules, o);
            }
            let code = match expired.acknowledge(&self.rules, member, &spec_batches, false) {
                Ok(_) => KafkaCode::NONE,
                Err(e) => KafkaCode(e.code.0),
            };
            if code == observed {
                self.sp = expired;
                for o in maybe {
                    self.acquired_at.remove(&o);
                }
                self.forget_terminal();
                return Ok(());
            }
        }
        Err(Mismatch {
            anomaly: "wrong-error-code",
            detail: format!("acknowledgement answered {observed}, the spec says {plain_code}"),
        })
    }

    /// `member`'s share session ended (epoch −1 or connection drop).
    pub fn observe_session_end(&mut self, member: MemberIdx, sent: Instant) {
        self.expire_surely(sent);
        for c in self.sp.release_session(&self.rules, member) {
            self.acquired_at.remove(&c.offset);
        }
    }

    fn forget_terminal(&mut self) {
        let sp = &self.sp;
        self.acquired_at.retain(|o, _| {
            matches!(
                sp.record(*o).map(|r| r.state),
                Some(RecordState::Acquired(_))
            )
        });
    }
}

fn to_spec(batches: &[AckBatch]) -> Vec<SpecAckBatch> {
    batches
        .iter()
        .map(|b| SpecAckBatch {
            first_offset: b.first_offset,
            last_offset: b.last_offset,
            types: b.types.iter().copied().collect(),
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Running

struct Run<'a> {
    report: ProbeReport,
    on_step: &'a mut (dyn FnMut(&ProbeStep) + Send),
    step_started: Instant,
}

/// Why the smoke round stopped early.
enum Stop {
    /// The broker or share groups cannot be used (exit 3).
    Unusable(String),
    /// Timing made the rest undecidable (exit 2).
    Inconclusive(String),
    /// An expectation failed and the round cannot continue meaningfully.
    Failed,
}

impl From<ClientError> for Stop {
    fn from(e: ClientError) -> Self {
        Stop::Unusable(e.to_string())
    }
}

impl From<MemberError> for Stop {
    fn from(e: MemberError) -> Self {
        Stop::Unusable(e.to_string())
    }
}

impl Run<'_> {
    fn step(&mut self, name: &str, status: StepStatus, detail: String, anomaly: Option<&str>) {
        let step = ProbeStep {
            name: name.to_string(),
            status,
            detail,
            elapsed_ms: self.step_started.elapsed().as_millis() as u64,
            anomaly: anomaly.map(str::to_string),
        };
        (self.on_step)(&step);
        self.report.steps.push(step);
        self.step_started = Instant::now();
    }

    fn info(&mut self, name: &str, detail: String) {
        self.step(name, StepStatus::Info, detail, None);
    }

    fn pass(&mut self, name: &str, detail: String) {
        self.step(name, StepStatus::Pass, detail, None);
    }

    fn fail(&mut self, name: &str, m: Mismatch) -> Stop {
        self.step(name, StepStatus::Fail, m.detail, Some(m.anomaly));
        Stop::Failed
    }
}

/// Run the probe. `on_step` sees each step as it completes (for live printing).
pub async fn run(
    config: &ProbeConfig,
    on_step: &mut (dyn FnMut(&ProbeStep) + Send),
) -> ProbeReport {
    let started = Instant::now();
    let mut run = Run {
        report: ProbeReport {
            bootstrap: config.bootstrap.clone(),
            broker: None,
            profile: None,
            topic: None,
            group: None,
            steps: Vec::new(),
            verdict: Verdict::Pass,
            elapsed_ms: 0,
        },
        on_step,
        step_started: Instant::now(),
    };
    let verdict = match probe(config, &mut run).await {
        Ok(()) => {
            let failed: Vec<String> = run
                .report
                .steps
                .iter()
                .filter(|s| s.status == StepStatus::Fail)
                .map(|s| s.name.clone())
                .collect();
            let inconclusive: Vec<String> = run
                .report
                .steps
                .iter()
                .filter(|s| s.status == StepStatus::Inconclusive)
                .map(|s| format!("{}: {}", s.name, s.detail))
                .collect();
            if !failed.is_empty() {
                Verdict::Violation { failed }
            } else if !inconclusive.is_empty() {
                Verdict::Inconclusive {
                    reason: inconclusive.join("; "),
                }
            } else {
                Verdict::Pass
            }
        }
        Err(Stop::Unusable(reason)) => Verdict::Unusable { reason },
        Err(Stop::Inconclusive(reason)) => Verdict::Inconclusive { reason },
        Err(Stop::Failed) => Verdict::Violation {
            failed: run
                .report
                .steps
                .iter()
                .filter(|s| s.status == StepStatus::Fail)
                .map(|s| s.name.clone())
                .collect(),
        },
    };
    run.report.verdict = verdict;
    run.report.elapsed_ms = started.elapsed().as_millis() as u64;
    run.report
}

const MEMBER_A: MemberIdx = 0;
const MEMBER_B: MemberIdx = 1;

async fn probe(config: &ProbeConfig, run: &mut Run<'_>) -> Result<(), Stop> {
    // --- what the broker is ---------------------------------------------------------------
    let client_config = ClientConfig::new(config.bootstrap.clone()).with_timeout(config.timeout);
    let mut client = match Client::connect(client_config).await {
        Ok(c) => c,
        Err(e) => return Err(Stop::Unusable(e.to_string())),
    };
    let info = client.broker_info();
    let apis: Vec<String> = info
        .share_apis
        .iter()
        .map(|a| match (a.broker, a.negotiated) {
            (Some((lo, hi)), Some(n)) => format!("{} v{lo}-v{hi} (using v{n})", a.api),
            (Some((lo, hi)), None) => format!("{} v{lo}-v{hi} (no common version)", a.api),
            (None, _) => format!("{} absent", a.api),
        })
        .collect();
    run.info(
        "broker",
        format!(
            "{} broker(s), cluster {}; Kafka release (guess): {}; share.version {} (supported {}); {}",
            info.brokers.len(),
            info.cluster_id.as_deref().unwrap_or("?"),
            info.release_guess.as_deref().unwrap_or("unknown"),
            info.share_version,
            info.share_version_supported
                .map(|(lo, hi)| format!("{lo}-{hi}"))
                .unwrap_or_else(|| "-".to_string()),
            apis.join(", ")
        ),
    );
    let profile = profile_for(info.release_guess.as_deref());
    run.report.profile = Some(profile.name.to_string());
    let unusable = info.share_unusable.clone();
    run.report.broker = Some(info);
    if let Some(why) = unusable {
        return Err(Stop::Unusable(why.to_string()));
    }
    run.info(
        "share groups",
        format!(
            "usable; expectations from the spec under profile {}",
            profile.name
        ),
    );
    if config.info_only {
        return Ok(());
    }

    // --- setup ------------------------------------------------------------------------------
    let suffix = &Uuid::new_v4().simple().to_string()[..12];
    let topic = format!("sharecheck-probe-{suffix}");
    let group = format!("sharecheck-probe-{suffix}");
    run.report.topic = Some(topic.clone());
    run.report.group = Some(group.clone());
    let topic_id = client.create_topic(&topic, 1).await?;
    run.info(
        "create topic",
        format!("{topic} (id {}), 1 partition", uuid_to_kafka(&topic_id)),
    );
    let lock_ms = config.lock_duration_ms.to_string();
    match client
        .set_group_configs(
            &group,
            &[
                ("share.auto.offset.reset", "earliest"),
                ("share.record.lock.duration.ms", lock_ms.as_str()),
            ],
        )
        .await
    {
        Ok(()) => run.info(
            "group configs",
            format!("{group}: share.auto.offset.reset=earliest, share.record.lock.duration.ms={lock_ms} (before the first heartbeat)"),
        ),
        Err(e) if e.kafka_code() == Some(KafkaCode::INVALID_CONFIG) => {
            let _ = client.delete_topic(&topic).await;
            return Err(Stop::Unusable(format!(
                "the broker refuses share.record.lock.duration.ms={lock_ms} for a group ({e}); \
                 its group.share.min.record.lock.duration.ms must be <= {lock_ms} for the lock-expiry round"
            )));
        }
        Err(e) => {
            let _ = client.delete_topic(&topic).await;
            return Err(e.into());
        }
    }
    let result = smoke(config, run, &mut client, profile, &topic, topic_id, &group).await;
    match client.delete_topic(&topic).await {
        Ok(()) => run.info("cleanup", format!("deleted {topic}")),
        Err(e) => run.info("cleanup", format!("could not delete {topic}: {e}")),
    }
    result
}

#[allow(clippy::too_many_arguments)]
async fn smoke(
    config: &ProbeConfig,
    run: &mut Run<'_>,
    client: &mut Client,
    profile: Profile,
    topic: &str,
    tid: Uuid,
    group: &str,
) -> Result<(), Stop> {
    let lock = Duration::from_millis(config.lock_duration_ms.max(0) as u64);
    let mut spec = SpecTracker::new(profile, lock);
    let payload = |i: usize| -> (Option<Bytes>, Option<Bytes>) {
        (
            Some(Bytes::from(format!("key-{i}"))),
            Some(Bytes::from(format!("value-{i}"))),
        )
    };

    // --- round 1 ----------------------------------------------------------------------------
    let bases = client.produce(topic, 0, &[5, 5], payload).await?;
    spec.produce(10);
    if bases != [0, 5] {
        return Err(Stop::Unusable(format!(
            "a fresh topic should start at offset 0, got batch base offsets {bases:?}"
        )));
    }
    run.info(
        "produce",
        "10 records in 2 batches of 5 (offsets 0-9)".to_string(),
    );

    let mut a = join(client, run, group, topic, "A", config).await?;
    let fetch_spec = FetchSpec::partitions(vec![(tid, 0)]);

    let want = spec.acquirable();
    let got = fetch_all(
        run,
        &mut a,
        &mut spec,
        MEMBER_A,
        &fetch_spec,
        tid,
        &want,
        config,
        "A fetches",
    )
    .await?;
    check_values(run, "A fetches", &got)?;
    run.pass(
        "A fetches",
        format!("acquired offsets 0-9 with delivery counts {}", counts(&got)),
    );

    // Release 3 records across the batch boundary, piggy-backed on the next fetch.
    let release = vec![AckBatch::range(3, 5, ack::RELEASE)];
    let expected = spec.expected_ack(MEMBER_A, &release);
    let s = Instant::now();
    let out = a
        .fetch(
            &fetch_spec
                .clone()
                .with_acks(vec![acks(tid, release.clone())]),
        )
        .await?;
    let r = Instant::now();
    top_level_ok(run, "A releases 3-5", &out)?;
    let observed = out
        .partition(tid, 0)
        .map(|p| p.ack_error_code)
        .unwrap_or(KafkaCode::NONE);
    if let Err(m) = spec.observe_ack(MEMBER_A, &release, observed, s, r) {
        return Err(run.fail("A releases 3-5", m));
    }
    run.pass(
        "A releases 3-5",
        format!("acknowledgement RELEASE answered {observed} (spec: {expected})"),
    );
    let mut again = out.acquired(tid, 0);
    if let Err(m) = spec.observe_acquired(MEMBER_A, &again, s, r) {
        return Err(run.fail("A fetches the released records", m));
    }
    let want: Vec<i64> = spec.acquirable();
    let first: Vec<i64> = again.iter().map(|(o, _)| *o).collect();
    let rest: Vec<i64> = want
        .iter()
        .copied()
        .filter(|o| !first.contains(o))
        .collect();
    if !rest.is_empty() {
        again.extend(
            fetch_all(
                run,
                &mut a,
                &mut spec,
                MEMBER_A,
                &fetch_spec,
                tid,
                &rest,
                config,
                "A fetches the released records",
            )
            .await?
            .into_iter()
            .map(|r| (r.0, r.1)),
        );
    }
    again.sort_unstable();
    let again_offsets: Vec<i64> = again.iter().map(|(o, _)| *o).collect();
    if again_offsets != [3, 4, 5] {
        return Err(run.fail(
            "A fetches the released records",
            Mismatch {
                anomaly: "lost-record",
                detail: format!("expected offsets 3-5 again, got {again_offsets:?}"),
            },
        ));
    }
    run.pass(
        "A fetches the released records",
        format!(
            "offsets 3-5 redelivered with delivery counts {}",
            counts_pairs(&again)
        ),
    );

    // Accept everything A holds with ShareAcknowledge.
    let accept = vec![AckBatch::range(0, 9, ack::ACCEPT)];
    let expected = spec.expected_ack(MEMBER_A, &accept);
    let s = Instant::now();
    let out = a
        .acknowledge(&[acks(tid, accept.clone())], Epoch::Auto)
        .await?;
    let r = Instant::now();
    if !out.error_code.is_none() {
        return Err(run.fail(
            "A accepts 0-9",
            Mismatch {
                anomaly: "wrong-error-code",
                detail: format!(
                    "ShareAcknowledge answered {} at the top level",
                    out.error_code
                ),
            },
        ));
    }
    let observed = out.partition_error(tid, 0).unwrap_or(KafkaCode::NONE);
    if let Err(m) = spec.observe_ack(MEMBER_A, &accept, observed, s, r) {
        return Err(run.fail("A accepts 0-9", m));
    }
    if observed != KafkaCode::NONE {
        // Allowed only because a lock ran out during the round (the spec agreed): the rest of the
        // round would test timing, not rules.
        run.step(
            "A accepts 0-9",
            StepStatus::Inconclusive,
            format!("answered {observed}: a 1 s lock ran out before the accept arrived (spec: {expected} without expiry)"),
            None,
        );
        return Err(Stop::Inconclusive(
            "the broker was too slow for 1 s locks in round 1".to_string(),
        ));
    }
    run.pass(
        "A accepts 0-9",
        format!("ShareAcknowledge ACCEPT answered {observed}"),
    );

    let s = Instant::now();
    let out = a.close_session(out.broker, Vec::new()).await?;
    spec.observe_session_end(MEMBER_A, s);
    top_level_ok(run, "A closes its session", &out)?;
    let left = a.leave().await?;
    if !left.error_code.is_none() {
        return Err(Stop::Unusable(format!(
            "A could not leave: {}",
            left.error_code
        )));
    }
    run.pass(
        "A closes its session and leaves",
        "ShareFetch epoch -1 and heartbeat epoch -1 answered NONE".to_string(),
    );

    // Member B: nothing is left.
    let mut b = join(client, run, group, topic, "B", config).await?;
    let expected_left = spec.acquirable();
    let patience = Instant::now() + Duration::from_millis(2000);
    let mut fetches = 0;
    loop {
        let s = Instant::now();
        let out = b.fetch(&fetch_spec).await?;
        let r = Instant::now();
        fetches += 1;
        top_level_ok(run, "B finds nothing left", &out)?;
        partition_ok(run, "B finds nothing left", &out, tid)?;
        let got = out.acquired(tid, 0);
        if let Err(m) = spec.observe_acquired(MEMBER_B, &got, s, r) {
            return Err(run.fail("B finds nothing left", m));
        }
        if Instant::now() >= patience {
            break;
        }
    }
    run.pass(
        "B finds nothing left",
        format!(
            "{fetches} fetches over 2 s acquired nothing (spec: {} acquirable)",
            expected_left.len()
        ),
    );

    // --- round 2: lock expiry -------------------------------------------------------------
    let bases = client.produce(topic, 0, &[5], |i| payload(i + 10)).await?;
    spec.produce(5);
    run.info(
        "produce",
        format!(
            "5 more records in 1 batch (base offset {})",
            bases.first().copied().unwrap_or(-1)
        ),
    );
    let want = spec.acquirable();
    let got = fetch_all(
        run,
        &mut b,
        &mut spec,
        MEMBER_B,
        &fetch_spec,
        tid,
        &want,
        config,
        "B fetches",
    )
    .await?;
    check_values(run, "B fetches", &got)?;
    let lock_echo = got.iter().map(|g| g.3).max().unwrap_or(-1);
    run.pass(
        "B fetches",
        format!(
            "acquired offsets {}-{} with delivery counts {}; AcquisitionLockTimeoutMs {lock_echo}",
            want.first().copied().unwrap_or(-1),
            want.last().copied().unwrap_or(-1),
            counts(&got)
        ),
    );
    if lock_echo != config.lock_duration_ms as i64 {
        run.step(
            "lock timeout echo",
            StepStatus::Fail,
            format!(
                "AcquisitionLockTimeoutMs is {lock_echo}, the group's share.record.lock.duration.ms is {}",
                config.lock_duration_ms
            ),
            Some("wrong-lock-timeout"),
        );
    }
    let wait = lock + config.expiry_margin;
    tokio::time::sleep(wait).await;
    run.info(
        "wait",
        format!(
            "{} ms without acknowledging (lock {} ms + margin)",
            wait.as_millis(),
            lock.as_millis()
        ),
    );
    let want = spec_after_expiry(&spec, MEMBER_B);
    let got = fetch_all(
        run,
        &mut b,
        &mut spec,
        MEMBER_B,
        &fetch_spec,
        tid,
        &want,
        config,
        "B fetches after lock expiry",
    )
    .await?;
    run.pass(
        "B fetches after lock expiry",
        format!("redelivered with delivery counts {}", counts(&got)),
    );
    let held = spec.held_by(MEMBER_B);
    let (first, last) = (
        held.first().copied().unwrap_or(0),
        held.last().copied().unwrap_or(0),
    );
    let accept = vec![AckBatch::range(first, last, ack::ACCEPT)];
    let s = Instant::now();
    let out = b
        .acknowledge(&[acks(tid, accept.clone())], Epoch::Auto)
        .await?;
    let r = Instant::now();
    let observed = out.partition_error(tid, 0).unwrap_or(out.error_code);
    if let Err(m) = spec.observe_ack(MEMBER_B, &accept, observed, s, r) {
        return Err(run.fail("B accepts", m));
    }
    if observed.is_none() {
        run.pass("B accepts", format!("offsets {first}-{last} accepted"));
    } else {
        run.step(
            "B accepts",
            StepStatus::Inconclusive,
            format!("answered {observed}: the 1 s lock ran out first"),
            None,
        );
    }
    let s = Instant::now();
    let closed = b.close_session(out.broker, Vec::new()).await?;
    spec.observe_session_end(MEMBER_B, s);
    top_level_ok(run, "B closes its session", &closed)?;
    let left = b.leave().await?;
    run.info(
        "B closes its session and leaves",
        format!(
            "ShareFetch epoch -1: {}, leave: {}",
            closed.error_code, left.error_code
        ),
    );
    Ok(())
}

/// After waiting past every lock of `member`, the spec's acquirable set: the expired records.
fn spec_after_expiry(spec: &SpecTracker, member: MemberIdx) -> Vec<i64> {
    let mut copy = SpecTracker {
        sp: spec.sp.clone(),
        rules: spec.rules,
        lock: spec.lock,
        acquired_at: spec.acquired_at.clone(),
    };
    for o in copy.held_by(member) {
        copy.sp.expire_lock(&copy.rules, o);
    }
    copy.acquirable()
}

fn acks(topic_id: Uuid, batches: Vec<AckBatch>) -> PartitionAcks {
    PartitionAcks {
        topic_id,
        partition: 0,
        batches,
    }
}

async fn join(
    client: &mut Client,
    run: &mut Run<'_>,
    group: &str,
    topic: &str,
    name: &str,
    config: &ProbeConfig,
) -> Result<ShareMember, Stop> {
    let mut mc = MemberConfig::new(group, vec![topic.to_string()]);
    mc.join_timeout = config.join_timeout;
    let m = ShareMember::join(client, mc).await?;
    let hb = m.heartbeat_state();
    run.info(
        &format!("{name} joins"),
        format!(
            "member {} epoch {}, assignment {:?} after {} heartbeat(s)",
            m.member_id(),
            hb.member_epoch,
            m.assignment()
                .iter()
                .map(|(t, p)| format!("{}-{p}", uuid_to_kafka(t)))
                .collect::<Vec<_>>(),
            hb.heartbeats
        ),
    );
    Ok(m)
}

fn top_level_ok(run: &mut Run<'_>, step: &str, out: &FetchOutcome) -> Result<(), Stop> {
    if out.error_code.is_none() {
        return Ok(());
    }
    Err(run.fail(
        step,
        Mismatch {
            anomaly: "wrong-error-code",
            detail: format!(
                "ShareFetch (epoch {}) answered {} at the top level{}",
                out.epoch_sent,
                out.error_code,
                out.error_message
                    .as_deref()
                    .map(|m| format!(": {m}"))
                    .unwrap_or_default()
            ),
        },
    ))
}

fn partition_ok(run: &mut Run<'_>, step: &str, out: &FetchOutcome, tid: Uuid) -> Result<(), Stop> {
    match out.partition(tid, 0) {
        Some(p) if !p.error_code.is_none() => Err(run.fail(
            step,
            Mismatch {
                anomaly: "wrong-error-code",
                detail: format!(
                    "partition error {}{}",
                    p.error_code,
                    p.error_message
                        .as_deref()
                        .map(|m| format!(": {m}"))
                        .unwrap_or_default()
                ),
            },
        )),
        _ => Ok(()),
    }
}

/// (offset, delivery count, value, AcquisitionLockTimeoutMs) of every acquired record.
type Got = (i64, i16, Option<Bytes>, i64);

/// Fetch until every offset in `want` was acquired, feeding each observation to the spec.
#[allow(clippy::too_many_arguments)]
async fn fetch_all(
    run: &mut Run<'_>,
    m: &mut ShareMember,
    spec: &mut SpecTracker,
    who: MemberIdx,
    fetch_spec: &FetchSpec,
    tid: Uuid,
    want: &[i64],
    config: &ProbeConfig,
    step: &str,
) -> Result<Vec<Got>, Stop> {
    let deadline = Instant::now() + config.fetch_patience;
    let mut got: BTreeMap<i64, Got> = BTreeMap::new();
    let mut fetches = 0;
    while !want.iter().all(|o| got.contains_key(o)) {
        if Instant::now() >= deadline {
            let missing: Vec<i64> = want
                .iter()
                .copied()
                .filter(|o| !got.contains_key(o))
                .collect();
            return Err(run.fail(
                step,
                Mismatch {
                    anomaly: "missing-redelivery",
                    detail: format!(
                        "offsets {missing:?} were not delivered within {:?} ({fetches} fetches)",
                        config.fetch_patience
                    ),
                },
            ));
        }
        let s = Instant::now();
        let out = m.fetch(fetch_spec).await?;
        let r = Instant::now();
        fetches += 1;
        top_level_ok(run, step, &out)?;
        partition_ok(run, step, &out, tid)?;
        let acquired = out.acquired(tid, 0);
        if let Err(mm) = spec.observe_acquired(who, &acquired, s, r) {
            return Err(run.fail(step, mm));
        }
        let values: BTreeMap<i64, Option<Bytes>> = out
            .partition(tid, 0)
            .map(|p| {
                p.records
                    .iter()
                    .map(|r| (r.offset, r.value.clone()))
                    .collect()
            })
            .unwrap_or_default();
        for (o, c) in acquired {
            got.insert(
                o,
                (
                    o,
                    c,
                    values.get(&o).cloned().flatten(),
                    out.acquisition_lock_timeout_ms as i64,
                ),
            );
        }
    }
    Ok(got.into_values().collect())
}

/// The payload of every delivered record is the one produced at its offset.
fn check_values(run: &mut Run<'_>, step: &str, got: &[Got]) -> Result<(), Stop> {
    let wrong: Vec<String> = got
        .iter()
        .filter(|(o, _, v, _)| v.as_deref() != Some(format!("value-{o}").as_bytes()))
        .map(|(o, _, v, _)| {
            format!(
                "offset {o}: {:?}",
                v.as_ref().map(|b| String::from_utf8_lossy(b).to_string())
            )
        })
        .collect();
    if wrong.is_empty() {
        return Ok(());
    }
    Err(run.fail(
        step,
        Mismatch {
            anomaly: "lost-record",
            detail: format!("records with wrong or missing data: {}", wrong.join(", ")),
        },
    ))
}

fn counts(got: &[Got]) -> String {
    counts_pairs(&got.iter().map(|g| (g.0, g.1)).collect::<Vec<_>>())
}

/// "1 (x10)" or "2,2,2" style summary.
fn counts_pairs(pairs: &[(i64, i16)]) -> String {
    let mut distinct: Vec<i16> = pairs.iter().map(|p| p.1).collect();
    distinct.dedup();
    if distinct.len() == 1 {
        format!("{} (all {})", distinct[0], pairs.len())
    } else {
        pairs
            .iter()
            .map(|(o, c)| format!("{o}:{c}"))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: Duration = Duration::from_millis(1000);

    #[test]
    fn spec_tracker_accepts_the_smoke_round_and_catches_wrong_counts() {
        let mut t = SpecTracker::new(Profile::KAFKA_4_2, D);
        t.produce(10);
        let now = Instant::now();
        let first: Vec<(i64, i16)> = (0..10).map(|o| (o, 1)).collect();
        assert_eq!(t.observe_acquired(MEMBER_A, &first, now, now), Ok(()));
        let release = vec![AckBatch::range(3, 5, ack::RELEASE)];
        assert_eq!(t.expected_ack(MEMBER_A, &release), KafkaCode::NONE);
        t.observe_ack(MEMBER_A, &release, KafkaCode::NONE, now, now)
            .unwrap();
        assert_eq!(t.acquirable(), vec![3, 4, 5]);
        // Redelivered at count 1 instead of 2: a delivery-count mismatch.
        let wrong = t
            .observe_acquired(MEMBER_A, &[(3, 1)], now, now)
            .unwrap_err();
        assert_eq!(wrong.anomaly, "delivery-count-mismatch");
    }

    #[test]
    fn spec_tracker_flags_redelivery_after_accept() {
        let mut t = SpecTracker::new(Profile::KAFKA_4_2, D);
        t.produce(2);
        let now = Instant::now();
        t.observe_acquired(MEMBER_A, &[(0, 1), (1, 1)], now, now)
            .unwrap();
        let accept = vec![AckBatch::range(0, 1, ack::ACCEPT)];
        t.observe_ack(MEMBER_A, &accept, KafkaCode::NONE, now, now)
            .unwrap();
        assert!(t.acquirable().is_empty());
        let later = now + Duration::from_secs(5);
        let err = t
            .observe_acquired(MEMBER_B, &[(0, 2)], later, later)
            .unwrap_err();
        assert_eq!(err.anomaly, "redelivered-after-accept");
        // A wrong ack answer is a wrong-error-code.
        let err = t
            .observe_ack(MEMBER_A, &accept, KafkaCode::INVALID_REQUEST, later, later)
            .unwrap_err();
        assert_eq!(err.anomaly, "wrong-error-code");
    }

    #[test]
    fn lock_expiry_is_judged_by_the_window() {
        let mut t = SpecTracker::new(Profile::KAFKA_4_2, D);
        t.produce(1);
        let s = Instant::now();
        t.observe_acquired(MEMBER_B, &[(0, 1)], s, s).unwrap();
        // Early: another member cannot have it yet.
        let early = s + Duration::from_millis(100);
        let err = t
            .observe_acquired(MEMBER_A, &[(0, 2)], early, early)
            .unwrap_err();
        assert_eq!(err.anomaly, "double-acquire");
        // Well past the lock: redelivery at count 2 is what the spec says.
        let late = s + Duration::from_millis(2500);
        assert_eq!(t.observe_acquired(MEMBER_B, &[(0, 2)], late, late), Ok(()));
        // Inside the window an accept may fail with 121 (lock ran out) or succeed.
        let edge = late + Duration::from_millis(1100);
        let accept = vec![AckBatch::range(0, 0, ack::ACCEPT)];
        assert_eq!(
            t.observe_ack(
                MEMBER_B,
                &accept,
                KafkaCode::INVALID_RECORD_STATE,
                edge,
                edge
            ),
            Ok(())
        );
    }

    #[test]
    fn profiles_follow_the_release_guess() {
        assert_eq!(profile_for(Some("4.1")).name, "kafka-4.1");
        assert_eq!(profile_for(Some("4.4 or later")).name, "kafka-4.4");
        assert_eq!(profile_for(None).name, "kafka-4.2");
    }

    #[tokio::test]
    async fn unreachable_broker_is_unusable_quickly() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        drop(listener);
        let mut steps = Vec::new();
        let mut sink = |s: &ProbeStep| steps.push(s.name.clone());
        let started = Instant::now();
        let report = run(&ProbeConfig::new(addr), &mut sink).await;
        assert!(
            matches!(report.verdict, Verdict::Unusable { .. }),
            "{:?}",
            report.verdict
        );
        assert!(started.elapsed() < Duration::from_secs(5));
        assert!(report.broker.is_none());
    }
}
