//! `sharecheck soak`: a long-running workload under faults, judged as it runs and once it is over
//! by [`sharecheck_model::watch`] (docs/semantics.md §20).
//!
//! A producer writes at a steady rate; share-group members on their own connections fetch, process
//! each record for a random time and acknowledge it with a seeded mix of ACCEPT, RELEASE and REJECT;
//! faults come on a seeded schedule; then a quiet period with no faults and no new records lets
//! every record become terminal. Every observation goes, in the order it was made, to the judge and
//! (with `history`) to a JSON-lines file. Each member reports what frees its records before it sends
//! it, so the judge never sees a delivery before the release that allowed it.

use crate::target::{Fault, Target, TargetError};
use bytes::Bytes;
use serde::Serialize;
use sharecheck_client::admin::{Client, ClientConfig};
use sharecheck_client::member::{Epoch, FetchSpec, MemberConfig, PartitionAcks, ShareMember};
use sharecheck_model::spec::{AckBatch, AckType};
use sharecheck_model::watch::{Finding, MemberNo, Watch};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// A fault the soak schedules.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SoakFault {
    /// A member drops its connections without closing its sessions or leaving, and a new member
    /// takes its place.
    MemberCrash,
    /// A member closes its sessions and leaves the group; a new member takes its place.
    MemberLeave,
    /// A member closes its share sessions (its records are released) and goes on.
    SessionClose,
    /// A member stops working but keeps its connections and its membership: what it holds is
    /// freed only by lock expiry. A new member takes its place.
    MemberHang,
    /// The broker restarts (the embedded one in process, a remote one through `--nemesis`).
    BrokerRestart,
    /// The leadership of one partition moves to another replica (the embedded broker reloads the
    /// partition from what was written, as a new leader does; a remote cluster elects another
    /// replica over the wire: it needs a replication factor above one).
    LeaderMove,
}

impl SoakFault {
    pub const ALL: [SoakFault; 6] = [
        SoakFault::MemberCrash,
        SoakFault::MemberLeave,
        SoakFault::SessionClose,
        SoakFault::MemberHang,
        SoakFault::BrokerRestart,
        SoakFault::LeaderMove,
    ];

    pub fn name(self) -> &'static str {
        match self {
            SoakFault::MemberCrash => "member-crash",
            SoakFault::MemberLeave => "member-leave",
            SoakFault::SessionClose => "session-close",
            SoakFault::MemberHang => "member-hang",
            SoakFault::BrokerRestart => "broker-restart",
            SoakFault::LeaderMove => "leader-move",
        }
    }

    pub fn by_name(name: &str) -> Option<SoakFault> {
        SoakFault::ALL.into_iter().find(|f| f.name() == name)
    }
}

/// What a soak does.
#[derive(Clone, Debug)]
pub struct SoakOptions {
    /// How long records are produced and faults injected.
    pub duration: Duration,
    /// Most time the quiet period may take before what is left is judged.
    pub quiet: Duration,
    pub members: u32,
    pub partitions: u32,
    pub records_per_s: u32,
    /// Processing time of one record, uniform in this range (ms).
    pub processing_ms: (u64, u64),
    /// Weights of ACCEPT, RELEASE, REJECT.
    pub ack_mix: [u32; 3],
    /// Records per million that take longer than the lock to process (their lock expires while
    /// the member works on them).
    pub slow_per_million: u32,
    pub faults: Vec<SoakFault>,
    /// Mean time between faults.
    pub fault_every: Duration,
    pub seed: u64,
    /// The group's `share.record.lock.duration.ms`.
    pub lock_ms: u64,
    /// Lateness allowed on a lock deadline.
    pub tolerance_ms: u64,
    /// Names of the topic and group start with it.
    pub prefix: String,
    /// Deadline of every request.
    pub timeout: Duration,
    /// JSON-lines file of every observation.
    pub history: Option<PathBuf>,
    /// Stop at the first finding (the online check), without a quiet period.
    pub fail_fast: bool,
    /// Delete the topic and group at the end (not for the embedded broker, which ends with the
    /// command).
    pub cleanup: bool,
    /// Build the picture of the run (`SoakReport::timeline`).
    pub timeline: bool,
}

impl SoakOptions {
    /// Records per second the members can process when nothing fails: each member works on one
    /// record at a time, a slow one for the lock plus twice the tolerance. A workload above it
    /// builds a backlog that the quiet period may not drain (the run ends inconclusive).
    pub fn capacity_per_s(&self) -> f64 {
        let slow = f64::from(self.slow_per_million) / 1e6;
        let mean = (self.processing_ms.0 + self.processing_ms.1) as f64 / 2.0;
        let slow_ms = (self.lock_ms + 2 * self.tolerance_ms) as f64;
        let per_record_ms = (1.0 - slow) * mean + slow * slow_ms;
        if per_record_ms <= 0.0 {
            return f64::INFINITY;
        }
        f64::from(self.members) * 1000.0 / per_record_ms
    }
}

/// One observation, as the history file carries it.
#[derive(Clone, Debug, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum SoakEvent {
    Produced {
        at_ms: u64,
        partition: u32,
        base_offset: i64,
        count: u32,
    },
    Joined {
        at_ms: u64,
        member: MemberNo,
        member_id: String,
    },
    Delivered {
        member: MemberNo,
        partition: u32,
        sent_ms: u64,
        received_ms: u64,
        /// (offset, delivery count)
        records: Vec<(i64, i16)>,
    },
    AckSent {
        at_ms: u64,
        member: MemberNo,
        partition: u32,
        /// (offset, delivery count, type)
        records: Vec<(i64, i16, AckType)>,
    },
    Acked {
        at_ms: u64,
        member: MemberNo,
        partition: u32,
        records: Vec<(i64, i16, AckType)>,
        /// The error code, 0 when it succeeded.
        error: i16,
    },
    MemberGone {
        at_ms: u64,
        member: MemberNo,
        how: SoakFault,
    },
    Restart {
        at_ms: u64,
    },
    RestartDone {
        at_ms: u64,
        /// Why the restart failed, if it did.
        error: Option<String>,
    },
    MemberError {
        at_ms: u64,
        member: MemberNo,
        error: String,
    },
    QuietBegins {
        at_ms: u64,
    },
}

/// How the soak ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SoakVerdict {
    /// Every record terminal, nothing found.
    Pass,
    /// A property broke.
    Fail,
    /// Nothing broke, but the run could not judge everything (no record was ever delivered).
    Inconclusive,
}

/// Running totals, for progress and the report.
#[derive(Clone, Debug, Default, Serialize)]
pub struct SoakTotals {
    pub elapsed_ms: u64,
    pub produced: u64,
    pub delivered: u64,
    pub acked: u64,
    pub faults: u64,
    pub member_errors: u64,
    /// Produced records not yet ended by an acknowledgement.
    pub not_done: u64,
    /// Records the judge tracks (its memory).
    pub tracked: usize,
    /// The most it tracked at once (sampled once a second).
    pub peak_tracked: usize,
    pub events: u64,
    pub findings: u64,
}

/// The outcome of a soak.
#[derive(Clone, Debug, Serialize)]
pub struct SoakReport {
    pub verdict: SoakVerdict,
    pub seed: u64,
    pub topic: String,
    pub group: String,
    pub totals: SoakTotals,
    /// Records that never became terminal, their partition settled (findings), and those whose
    /// partition still handed records out when the quiet period ended (inconclusive).
    pub outstanding: sharecheck_model::watch::Outstanding,
    /// Findings per property, all of them.
    pub counts: BTreeMap<&'static str, u64>,
    /// The first findings, whole (`sharecheck_model::watch::KEPT`).
    pub findings: Vec<Finding>,
    /// Why it is inconclusive, or other notes.
    pub notes: Vec<String>,
    pub faults: Vec<(u64, String)>,
    /// The picture of the run, when asked for (`SoakOptions::timeline`).
    #[serde(skip)]
    pub timeline: Option<crate::soak_report::Timeline>,
}

/// A setup that failed (the target is unusable: exit 3).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct SoakSetupError(pub String);

/// SplitMix64: the soak's seeded randomness (no dependency, the same stream on every machine).
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        if hi <= lo {
            lo
        } else {
            lo + self.next_u64() % (hi - lo + 1)
        }
    }
    /// An index drawn with these weights.
    pub fn weighted(&mut self, weights: &[u32]) -> usize {
        let total: u64 = weights.iter().map(|w| u64::from(*w)).sum();
        let mut x = self.next_u64() % total.max(1);
        for (i, w) in weights.iter().enumerate() {
            if x < u64::from(*w) {
                return i;
            }
            x -= u64::from(*w);
        }
        0
    }
}

struct Shared {
    started: Instant,
    events: mpsc::UnboundedSender<SoakEvent>,
    /// No faults, no records: members work until told to stop.
    quiet: AtomicBool,
    stop: AtomicBool,
    next_member: AtomicU32,
}

impl Shared {
    fn now(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }
    fn send(&self, e: SoakEvent) {
        let _ = self.events.send(e);
    }
    fn member_error(&self, member: MemberNo, error: String) {
        self.send(SoakEvent::MemberError {
            at_ms: self.now(),
            member,
            error,
        });
    }
}

/// What one fetch handed a member in one partition: (partition, (offset, count) of each acquired
/// record, the acquired offsets without a data record).
type Fetched = (u32, Vec<(i64, i16)>, Vec<i64>);

/// A command to one member slot.
#[derive(Clone, Copy, Debug)]
enum Order {
    Fault(SoakFault),
}

/// Runs the soak against `target`; `progress` sees the totals about once a second.
pub async fn soak(
    target: &Target,
    opts: &SoakOptions,
    progress: &mut (dyn FnMut(&SoakTotals) + Send),
) -> Result<SoakReport, SoakSetupError> {
    // The seed makes the workload, not the names: a second run with one seed gets its own topic.
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let topic = format!("{}-soak-{stamp}", opts.prefix);
    let group = format!("{topic}-g");
    let config = target.client_config(opts.timeout);
    let mut admin = Client::connect(config.clone())
        .await
        .map_err(|e| SoakSetupError(format!("setup: {e}")))?;
    let topic_id = admin
        .create_topic(&topic, opts.partitions as i32)
        .await
        .map_err(|e| SoakSetupError(format!("setup: create topic {topic}: {e}")))?;
    let lock = opts.lock_ms.to_string();
    if let Err(e) = admin
        .set_group_configs(
            &group,
            &[
                ("share.auto.offset.reset", "earliest"),
                ("share.record.lock.duration.ms", lock.as_str()),
            ],
        )
        .await
    {
        let _ = admin.delete_topic(&topic).await;
        return Err(SoakSetupError(format!(
            "setup: group configs of {group}: {e}"
        )));
    }

    let (tx, mut rx) = mpsc::unbounded_channel();
    let shared = Arc::new(Shared {
        started: Instant::now(),
        events: tx,
        quiet: AtomicBool::new(false),
        stop: AtomicBool::new(false),
        next_member: AtomicU32::new(1),
    });
    let mut rng = Rng::new(opts.seed);

    // Members, each in a slot that replaces it after a crash or leave.
    let mut slots = Vec::new();
    for _ in 0..opts.members {
        let (otx, orx) = mpsc::unbounded_channel::<Order>();
        let seed = rng.next_u64();
        let task = tokio::spawn(member_slot(
            shared.clone(),
            config.clone(),
            group.clone(),
            topic.clone(),
            topic_id,
            opts.clone(),
            seed,
            orx,
        ));
        slots.push((otx, task));
    }
    let producer = tokio::spawn(produce(
        shared.clone(),
        config.clone(),
        topic.clone(),
        opts.clone(),
    ));
    // Faults, on a seeded schedule.
    let fault_task = {
        let shared = shared.clone();
        let orders: Vec<_> = slots.iter().map(|(o, _)| o.clone()).collect();
        let opts = opts.clone();
        let hook = target.faults.clone();
        let (move_target, move_config, move_topic) =
            (target.clone(), config.clone(), topic.clone());
        let mut rng = Rng::new(rng.next_u64());
        tokio::spawn(async move {
            let mut log = Vec::new();
            if opts.faults.is_empty() {
                return log;
            }
            let mean = opts.fault_every.as_millis().max(1) as u64;
            loop {
                let wait = rng.range(mean / 2, mean + mean / 2);
                tokio::time::sleep(Duration::from_millis(wait)).await;
                if shared.quiet.load(Ordering::SeqCst) {
                    return log;
                }
                let fault = opts.faults[rng.range(0, opts.faults.len() as u64 - 1) as usize];
                let at = shared.now();
                match fault {
                    SoakFault::BrokerRestart => {
                        let Some(hook) = &hook else {
                            log.push((at, "broker-restart skipped: no way to restart".to_string()));
                            continue;
                        };
                        shared.send(SoakEvent::Restart { at_ms: at });
                        let r = hook(Fault::Restart {
                            node: None,
                            hard: false,
                        })
                        .await;
                        let error = r.err().map(|e| e.to_string());
                        shared.send(SoakEvent::RestartDone {
                            at_ms: shared.now(),
                            error: error.clone(),
                        });
                        log.push((
                            at,
                            match error {
                                None => "broker-restart".to_string(),
                                Some(e) => format!("broker-restart failed: {e}"),
                            },
                        ));
                    }
                    SoakFault::LeaderMove => {
                        let partition = rng.range(0, u64::from(opts.partitions) - 1) as i32;
                        // Judged as a restart (an interval in which acquisitions may be forgotten
                        // and counts redelivered), for every partition: weaker than the move
                        // needs, never wrong.
                        shared.send(SoakEvent::Restart { at_ms: at });
                        let r =
                            move_leader(&move_target, &move_config, &move_topic, partition).await;
                        shared.send(SoakEvent::RestartDone {
                            at_ms: shared.now(),
                            error: r.as_ref().err().map(|e| e.to_string()),
                        });
                        log.push((
                            at,
                            match r {
                                Ok(how) => format!("leader-move of partition {partition}: {how}"),
                                Err(e) => {
                                    format!("leader-move of partition {partition} failed: {e}")
                                }
                            },
                        ));
                    }
                    f => {
                        let slot = rng.range(0, orders.len() as u64 - 1) as usize;
                        let _ = orders[slot].send(Order::Fault(f));
                        log.push((at, format!("{} (member slot {slot})", f.name())));
                    }
                }
            }
        })
    };

    // The judge, and the history file.
    let mut watch = Watch::new(
        target.profile,
        target.delivery_limit,
        opts.lock_ms,
        opts.tolerance_ms,
        opts.partitions,
    );
    let mut history = match &opts.history {
        Some(path) => Some(std::io::BufWriter::new(
            std::fs::File::create(path).map_err(|e| {
                SoakSetupError(format!("cannot write the history {}: {e}", path.display()))
            })?,
        )),
        None => None,
    };
    let mut totals = SoakTotals::default();
    let mut timeline = opts.timeline.then(|| {
        crate::soak_report::Timeline::new(
            (opts.duration + opts.quiet).as_millis() as u64,
            opts.lock_ms,
            target.delivery_limit.into(),
            opts.partitions,
        )
    });
    let mut last_progress = Instant::now();
    let quiet_from = opts.duration;
    let end_by = opts.duration + opts.quiet;
    let mut quiet_started: Option<Instant> = None;
    let mut notes = Vec::new();
    loop {
        let elapsed = shared.started.elapsed();
        if quiet_started.is_none() && elapsed >= quiet_from {
            shared.quiet.store(true, Ordering::SeqCst);
            shared.send(SoakEvent::QuietBegins {
                at_ms: shared.now(),
            });
            quiet_started = Some(Instant::now());
        }
        if quiet_started.is_some() && (watch.not_done() == 0 && producer.is_finished()) {
            // Every record ended by an acknowledgement: nothing left to wait for.
            break;
        }
        if elapsed >= end_by {
            break;
        }
        if opts.fail_fast && watch.found() > 0 {
            notes.push(format!(
                "stopped at {:.1} s on the first finding (--fail-fast): no quiet period, nothing judged lost",
                shared.now() as f64 / 1000.0
            ));
            break;
        }
        match tokio::time::timeout(Duration::from_millis(200), rx.recv()).await {
            Ok(Some(e)) => {
                take(
                    &mut watch,
                    &mut totals,
                    history.as_mut(),
                    timeline.as_mut(),
                    &e,
                );
                // Drain what is queued without waiting.
                while let Ok(e) = rx.try_recv() {
                    take(
                        &mut watch,
                        &mut totals,
                        history.as_mut(),
                        timeline.as_mut(),
                        &e,
                    );
                }
            }
            Ok(None) => break,
            Err(_) => {}
        }
        if last_progress.elapsed() >= Duration::from_secs(1) {
            last_progress = Instant::now();
            totals.elapsed_ms = shared.now();
            totals.not_done = watch.not_done();
            totals.tracked = watch.tracked();
            totals.peak_tracked = totals.peak_tracked.max(totals.tracked);
            totals.events = watch.events;
            totals.findings = watch.found();
            if let Some(t) = timeline.as_mut() {
                t.sample(totals.elapsed_ms, totals.not_done);
            }
            progress(&totals);
        }
    }
    shared.quiet.store(true, Ordering::SeqCst);
    shared.stop.store(true, Ordering::SeqCst);
    let faults = fault_task.await.unwrap_or_default();
    let _ = producer.await;
    for (o, task) in slots {
        drop(o);
        let _ = tokio::time::timeout(opts.timeout * 3, task).await;
    }
    // What the members said on their way out.
    while let Ok(e) = rx.try_recv() {
        take(
            &mut watch,
            &mut totals,
            history.as_mut(),
            timeline.as_mut(),
            &e,
        );
    }
    if let Some(mut h) = history {
        let _ = h.flush();
    }
    // A partition has settled when it handed nothing out for two lock durations (every lock of
    // a member that went quiet has expired since, and members kept asking).
    let outstanding = if opts.fail_fast && watch.found() > 0 {
        sharecheck_model::watch::Outstanding::default()
    } else {
        watch.finish(shared.now(), 2 * opts.lock_ms + opts.tolerance_ms, 20)
    };
    totals.elapsed_ms = shared.now();
    totals.not_done = watch.not_done();
    totals.tracked = watch.tracked();
    totals.events = watch.events;
    totals.findings = watch.found();
    totals.faults = faults.len() as u64;
    if opts.cleanup {
        // A fresh connection: the first may have died with a broker restart.
        if let Ok(Ok(c)) = tokio::time::timeout(opts.timeout, Client::connect(config.clone())).await
        {
            admin = c;
        }
        match tokio::time::timeout(opts.timeout, admin.delete_topic(&topic)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => notes.push(format!("the topic {topic} could not be deleted: {e}")),
            Err(_) => notes.push(format!(
                "the topic {topic} could not be deleted within {:?}",
                opts.timeout
            )),
        }
        // Members that crashed keep the group until their session times out (Kafka's default
        // group.share.session.timeout.ms is 45 s): try for a while.
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            match tokio::time::timeout(
                opts.timeout,
                crate::cleanup::delete_group_emptying(&mut admin, &group),
            )
            .await
            {
                Ok(Ok(())) => break,
                _ if Instant::now() >= deadline => {
                    notes.push(format!(
                        "the group {group} could not be deleted within 120 s: `sharecheck cleanup --prefix {}` removes it",
                        opts.prefix
                    ));
                    break;
                }
                _ => tokio::time::sleep(Duration::from_secs(2)).await,
            }
        }
    }
    let findings = watch.findings().to_vec();
    let counts = watch.counts().clone();
    let verdict = if watch.found() > 0 {
        SoakVerdict::Fail
    } else if totals.delivered == 0 {
        notes.push("no record was ever delivered".to_string());
        SoakVerdict::Inconclusive
    } else if outstanding.unsettled > 0 {
        notes.push(format!(
            "{} record(s) were not terminal when the quiet period ended, and their partitions were still \
             handing records out: lengthen --quiet to judge them",
            outstanding.unsettled
        ));
        SoakVerdict::Inconclusive
    } else {
        SoakVerdict::Pass
    };
    Ok(SoakReport {
        verdict,
        seed: opts.seed,
        topic,
        group,
        totals,
        outstanding,
        counts,
        findings,
        notes,
        faults,
        timeline,
    })
}

/// One observation: judged, counted, and written to the history.
fn take(
    watch: &mut Watch,
    totals: &mut SoakTotals,
    history: Option<&mut std::io::BufWriter<std::fs::File>>,
    timeline: Option<&mut crate::soak_report::Timeline>,
    e: &SoakEvent,
) {
    judge(watch, e, totals);
    if let Some(t) = timeline {
        t.observe(e);
    }
    if let Some(h) = history {
        if serde_json::to_writer(&mut *h, e).is_ok() {
            let _ = h.write_all(b"\n");
        }
    }
}

fn judge(watch: &mut Watch, e: &SoakEvent, totals: &mut SoakTotals) {
    match e {
        SoakEvent::Produced {
            partition,
            base_offset,
            count,
            ..
        } => {
            totals.produced += u64::from(*count);
            watch.produced(*partition, base_offset + i64::from(*count));
        }
        SoakEvent::Delivered {
            member,
            partition,
            sent_ms,
            received_ms,
            records,
        } => {
            totals.delivered += records.len() as u64;
            for (o, c) in records {
                watch.delivered(*member, *partition, *o, *c, *sent_ms, *received_ms);
            }
        }
        SoakEvent::AckSent {
            at_ms,
            member,
            partition,
            records,
        } => {
            for (o, _, ty) in records {
                watch.ack_sent(*member, *partition, *o, *ty, *at_ms);
            }
        }
        SoakEvent::Acked {
            at_ms,
            member,
            partition,
            records,
            error,
        } => {
            if *error == 0 {
                totals.acked += records.len() as u64;
                for (o, c, ty) in records {
                    watch.acked(*member, *partition, *o, *c, *ty, *at_ms);
                }
            }
        }
        SoakEvent::MemberGone { at_ms, member, .. } => watch.member_gone(*member, *at_ms),
        SoakEvent::Restart { at_ms } => watch.restart(*at_ms),
        SoakEvent::RestartDone { at_ms, .. } => watch.restart_done(*at_ms),
        SoakEvent::MemberError { .. } => totals.member_errors += 1,
        SoakEvent::Joined { .. } | SoakEvent::QuietBegins { .. } => {}
    }
}

async fn produce(shared: Arc<Shared>, config: ClientConfig, topic: String, opts: SoakOptions) {
    let tick = Duration::from_millis(100);
    let per_tick = f64::from(opts.records_per_s) / 10.0;
    let mut owed = 0.0;
    let mut client: Option<Client> = None;
    let mut next = 0u32;
    let mut written = 0u64;
    while !shared.quiet.load(Ordering::SeqCst) {
        tokio::time::sleep(tick).await;
        owed += per_tick;
        let n = owed.floor() as usize;
        if n == 0 {
            continue;
        }
        if client.is_none() {
            client = Client::connect(config.clone()).await.ok();
        }
        let Some(c) = client.as_mut() else { continue };
        let partition = next % opts.partitions;
        match c
            .produce(&topic, partition as i32, &[n], |k| {
                (
                    None,
                    Some(Bytes::from(format!("soak-{}", written + k as u64))),
                )
            })
            .await
        {
            Ok(bases) => {
                owed -= n as f64;
                written += n as u64;
                next += 1;
                shared.send(SoakEvent::Produced {
                    at_ms: shared.now(),
                    partition,
                    base_offset: bases.first().copied().unwrap_or(0),
                    count: n as u32,
                });
            }
            Err(_) => {
                // Not known to be written (a restart, a timeout): retried on the next tick. A
                // record written but not reported is never judged lost: the judge counts only
                // what was reported produced.
                client = None;
            }
        }
    }
}

#[allow(clippy::too_many_arguments)]
async fn member_slot(
    shared: Arc<Shared>,
    config: ClientConfig,
    group: String,
    topic: String,
    topic_id: uuid::Uuid,
    opts: SoakOptions,
    seed: u64,
    mut orders: mpsc::UnboundedReceiver<Order>,
) {
    let mut rng = Rng::new(seed);
    while !shared.stop.load(Ordering::SeqCst) {
        let no = shared.next_member.fetch_add(1, Ordering::SeqCst);
        let mut client = match Client::connect(config.clone()).await {
            Ok(c) => c,
            Err(e) => {
                shared.member_error(no, format!("connect: {e}"));
                tokio::time::sleep(Duration::from_millis(500)).await;
                continue;
            }
        };
        let mut mc = MemberConfig::new(group.clone(), vec![topic.clone()]);
        mc.join_timeout = opts.timeout * 4;
        let member = match ShareMember::join(&mut client, mc).await {
            Ok(m) => m,
            Err(e) => {
                shared.member_error(no, format!("join: {e}"));
                tokio::time::sleep(Duration::from_millis(500)).await;
                continue;
            }
        };
        shared.send(SoakEvent::Joined {
            at_ms: shared.now(),
            member: no,
            member_id: member.member_id().to_string(),
        });
        let ended = work(
            &shared,
            &mut client,
            member,
            no,
            (&topic, topic_id),
            &opts,
            &mut rng,
            &mut orders,
        )
        .await;
        if ended {
            return;
        }
    }
}

/// One member incarnation's life. Returns true when the soak is over (the member closed), false
/// when a fault or repeated errors ended it and a new member should take its place.
#[allow(clippy::too_many_arguments)]
async fn work(
    shared: &Arc<Shared>,
    client: &mut Client,
    mut member: ShareMember,
    no: MemberNo,
    (topic, topic_id): (&str, uuid::Uuid),
    opts: &SoakOptions,
    rng: &mut Rng,
    orders: &mut mpsc::UnboundedReceiver<Order>,
) -> bool {
    let mut errors = 0u32;
    loop {
        if shared.stop.load(Ordering::SeqCst) {
            shared.send(SoakEvent::MemberGone {
                at_ms: shared.now(),
                member: no,
                how: SoakFault::MemberLeave,
            });
            let _ = tokio::time::timeout(opts.timeout * 2, member.close()).await;
            return true;
        }
        // Fetch every assigned partition, grouped by leader.
        let assigned = member.assignment();
        if assigned.is_empty() {
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        }
        let mut by_leader: BTreeMap<i32, Vec<(uuid::Uuid, i32)>> = BTreeMap::new();
        let mut routing_failed = false;
        for (t, p) in assigned {
            match member.leader_of(t, p) {
                Ok(l) => by_leader.entry(l).or_default().push((t, p)),
                Err(_) => routing_failed = true,
            }
        }
        if routing_failed {
            if client.refresh_metadata(&[topic]).await.is_ok() {
                member.update_routing(client);
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        }
        let mut fetched: Vec<Fetched> = Vec::new();
        let mut stale_routing = false;
        let fetch_sent = Instant::now();
        for (broker, parts) in by_leader {
            let mut spec = FetchSpec::partitions(parts);
            spec.limits.max_wait_ms = 200;
            spec.limits.max_records = 50;
            let sent = shared.now();
            match member.fetch_to(broker, &spec).await {
                Ok(out) if out.error_code.is_none() => {
                    errors = 0;
                    let received = shared.now();
                    for p in &out.partitions {
                        if p.topic_id != topic_id {
                            continue;
                        }
                        if !p.error_code.is_none() {
                            // Not the leader (any more): ask where the partition is now.
                            stale_routing = true;
                        }
                        let recs = p.acquired_offsets();
                        if recs.is_empty() {
                            continue;
                        }
                        shared.send(SoakEvent::Delivered {
                            member: no,
                            partition: p.partition as u32,
                            sent_ms: sent,
                            received_ms: received,
                            records: recs.clone(),
                        });
                        fetched.push((p.partition as u32, recs, p.acquired_without_data.clone()));
                    }
                }
                Ok(out) => {
                    errors += 1;
                    shared.member_error(no, format!("ShareFetch: {:?}", out.error_code));
                    member.drop_connection(broker);
                }
                Err(e) => {
                    errors += 1;
                    shared.member_error(no, format!("ShareFetch: {e}"));
                    member.drop_connection(broker);
                }
            }
        }
        if stale_routing && client.refresh_metadata(&[topic]).await.is_ok() {
            member.update_routing(client);
        }
        // A fault comes while the member holds what it just fetched: a crash strands those
        // records, a session close releases them, a hang keeps them locked until they expire.
        if let Ok(Order::Fault(f)) = orders.try_recv() {
            if !shared.quiet.load(Ordering::SeqCst) {
                if f == SoakFault::MemberHang {
                    // It keeps its connections and its heartbeat, and never acknowledges again;
                    // it closes when the soak ends. A new member takes the slot.
                    let (shared, timeout) = (shared.clone(), opts.timeout);
                    tokio::spawn(async move {
                        while !shared.stop.load(Ordering::SeqCst) {
                            tokio::time::sleep(Duration::from_millis(100)).await;
                        }
                        shared.send(SoakEvent::MemberGone {
                            at_ms: shared.now(),
                            member: no,
                            how: SoakFault::MemberLeave,
                        });
                        let _ = tokio::time::timeout(timeout * 2, member.close()).await;
                    });
                    return false;
                }
                shared.send(SoakEvent::MemberGone {
                    at_ms: shared.now(),
                    member: no,
                    how: f,
                });
                match f {
                    SoakFault::MemberCrash => {
                        drop(member);
                        return false;
                    }
                    SoakFault::MemberLeave => {
                        let _ = tokio::time::timeout(opts.timeout * 2, member.close()).await;
                        return false;
                    }
                    SoakFault::SessionClose => {
                        let _ =
                            tokio::time::timeout(opts.timeout, member.close_all_sessions()).await;
                        continue;
                    }
                    SoakFault::MemberHang | SoakFault::BrokerRestart | SoakFault::LeaderMove => {}
                }
            }
        }
        if errors > 0 {
            if errors >= 20 {
                // A member that cannot make progress is replaced (its records were released when its
                // connections dropped).
                shared.send(SoakEvent::MemberGone {
                    at_ms: shared.now(),
                    member: no,
                    how: SoakFault::MemberCrash,
                });
                return false;
            }
            if client.refresh_metadata(&[topic]).await.is_ok() {
                member.update_routing(client);
            }
            tokio::time::sleep(Duration::from_millis(100 * u64::from(errors.min(10)))).await;
            continue;
        }
        // Process, then acknowledge each partition's records. What is done is acknowledged before
        // a slow record (a member does not hold finished work hostage to it), and once the locks
        // of this fetch have run out the member drops the rest unprocessed: they went back to the
        // pool when their locks expired. Without that, one slow record would expire a whole
        // batch, the batch would come back larger, and a loaded run would never catch up.
        let deadline =
            fetch_sent + Duration::from_millis(opts.lock_ms.saturating_sub(opts.tolerance_ms));
        for (partition, recs, gaps) in fetched {
            let mut acks: Vec<(i64, i16, AckType)> = Vec::new();
            for (o, c) in recs {
                let ty = if gaps.contains(&o) {
                    AckType::Gap
                } else {
                    if Instant::now() >= deadline {
                        break;
                    }
                    // No slow records in the quiet period: it is there for every record to end.
                    let slow = rng.range(0, 999_999) < u64::from(opts.slow_per_million)
                        && !shared.quiet.load(Ordering::SeqCst);
                    let ms = if slow {
                        acknowledge(
                            shared,
                            &mut member,
                            no,
                            topic_id,
                            partition,
                            std::mem::take(&mut acks),
                        )
                        .await;
                        opts.lock_ms + 2 * opts.tolerance_ms
                    } else {
                        rng.range(opts.processing_ms.0, opts.processing_ms.1)
                    };
                    if ms > 0 {
                        tokio::time::sleep(Duration::from_millis(ms)).await;
                    }
                    [AckType::Accept, AckType::Release, AckType::Reject]
                        [rng.weighted(&opts.ack_mix)]
                };
                acks.push((o, c, ty));
            }
            acknowledge(shared, &mut member, no, topic_id, partition, acks).await;
        }
    }
}

/// Moves the leadership of `topic`-`partition`: in process for the embedded broker, else to another
/// replica over the wire. Says where it went.
async fn move_leader(
    target: &Target,
    config: &ClientConfig,
    topic: &str,
    partition: i32,
) -> Result<String, TargetError> {
    if target.moves_in_process {
        let Some(hook) = &target.faults else {
            return Err(TargetError::Fault("the target cannot move leaders".into()));
        };
        hook(Fault::MoveLeader {
            topic: topic.to_string(),
            partition,
        })
        .await?;
        return Ok("reloaded in process".to_string());
    }
    let work = async {
        let mut c = Client::connect(config.clone()).await?;
        c.refresh_metadata(&[topic]).await?;
        let meta = c
            .topic(topic)
            .and_then(|t| t.partitions.iter().find(|p| p.index == partition))
            .cloned()
            .ok_or_else(|| {
                TargetError::Fault(format!("no partition {partition} in the metadata"))
            })?;
        let to = meta
            .replicas
            .iter()
            .copied()
            .find(|r| *r != meta.leader)
            .ok_or_else(|| {
                TargetError::Fault(format!(
                    "one replica only ({:?}): nothing to move to",
                    meta.replicas
                ))
            })?;
        c.move_leader(topic, partition, to).await?;
        Ok(format!("node {} to node {to}", meta.leader))
    };
    tokio::time::timeout(config.timeout * 6, work)
        .await
        .unwrap_or_else(|_| {
            Err(TargetError::Timeout {
                addr: config.bootstrap.clone(),
                timeout: config.timeout * 6,
            })
        })
}

/// Acknowledges `acks` (offset, delivery count, type) of one partition, each record its own
/// batch, and reports what was sent and what came back; nothing when `acks` is empty.
async fn acknowledge(
    shared: &Shared,
    member: &mut ShareMember,
    no: MemberNo,
    topic_id: uuid::Uuid,
    partition: u32,
    acks: Vec<(i64, i16, AckType)>,
) {
    if acks.is_empty() {
        return;
    }
    let batches: Vec<AckBatch> = acks
        .iter()
        .map(|(o, _, ty)| AckBatch::new(*o, *o, *ty))
        .collect();
    let pa = PartitionAcks {
        topic_id,
        partition: partition as i32,
        batches,
    };
    shared.send(SoakEvent::AckSent {
        at_ms: shared.now(),
        member: no,
        partition,
        records: acks.clone(),
    });
    let error = match member.acknowledge(&[pa], Epoch::Auto).await {
        Ok(out) => {
            if !out.error_code.is_none() {
                out.error_code.0
            } else {
                out.partition_error(topic_id, partition as i32)
                    .map(|c| c.0)
                    .unwrap_or(0)
            }
        }
        Err(e) => {
            shared.member_error(no, format!("ShareAcknowledge: {e}"));
            // Not known to be applied: judged as not answered.
            -1
        }
    };
    shared.send(SoakEvent::Acked {
        at_ms: shared.now(),
        member: no,
        partition,
        records: acks,
        error,
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(members: u32, processing_ms: (u64, u64), slow_per_million: u32) -> SoakOptions {
        SoakOptions {
            duration: Duration::from_secs(60),
            quiet: Duration::from_secs(60),
            members,
            partitions: 2,
            records_per_s: 100,
            processing_ms,
            ack_mix: [8, 1, 1],
            slow_per_million,
            faults: Vec::new(),
            fault_every: Duration::from_secs(10),
            seed: 1,
            lock_ms: 5000,
            tolerance_ms: 1000,
            prefix: "t".into(),
            timeout: Duration::from_secs(5),
            history: None,
            fail_fast: false,
            cleanup: false,
            timeline: false,
        }
    }

    #[test]
    fn capacity_counts_slow_records_at_the_lock_plus_twice_the_tolerance() {
        // 10 ms a record on average: 100 records/s a member.
        assert_eq!(options(4, (0, 20), 0).capacity_per_s(), 400.0);
        // 1 % slow at 7 s each: 0.99 × 10 + 0.01 × 7000 = 79.9 ms a record, 50 records/s for
        // four members — half the default production rate (the CI configuration that ran
        // inconclusive on a loaded machine).
        let c = options(4, (0, 20), 10_000).capacity_per_s();
        assert!((c - 4000.0 / 79.9).abs() < 1e-9, "{c}");
        assert!(options(4, (0, 20), 2_000).capacity_per_s() > 125.0);
        assert_eq!(options(4, (0, 0), 0).capacity_per_s(), f64::INFINITY);
    }
}
