//! The history of a case: one typed, ordered record of everything that happened — every request
//! and its answer, every fault, wait and join — and the only thing a run produces.
//!
//! The runner records [`Event`]s and nothing else; the [`crate::oracle::Oracle`] judges them, as
//! they arrive during a run and again offline (`sharecheck judge FILE`) from a stored [`History`]:
//! the same events give the same verdict. Times are milliseconds since the case started, from a
//! monotonic clock; members are the trace's names (`A`, `B`, …), and a member that joins again is a
//! new incarnation of the same name.
//!
//! Events carry data, never judgements: error codes as answered, offsets and delivery counts as on
//! the wire, record values as received.

use crate::oracle::{CaseVerdict, Violation};
use serde::{Deserialize, Serialize};
use sharecheck_model::vocab::{AckBatch, ErrorCode, Offset};
use std::collections::BTreeMap;
use std::path::Path;

/// The history format version this build reads and writes.
pub const HISTORY_FORMAT_VERSION: u32 = 1;

/// Milliseconds since the case started.
pub type Millis = u64;

/// The latest time a history may name (about 31 years): far past any case, far below overflow.
pub const MAX_TIME_MS: Millis = 1_000_000_000_000;

/// Acknowledgement batches for one partition of the case's topic.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PartitionAcks {
    /// Partition index.
    pub partition: i32,
    /// The batches, as sent.
    pub batches: Vec<AckBatch>,
}

/// One partition of a ShareFetch response.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FetchedPartition {
    /// Partition index.
    pub partition: i32,
    /// The partition's ErrorCode (fetch part).
    pub error: ErrorCode,
    /// AcknowledgeErrorCode.
    pub ack_error: ErrorCode,
    /// AcquiredRecords, as `[first, last, delivery count]` exactly as on the wire.
    pub acquired: Vec<(Offset, Offset, i16)>,
    /// The data records returned, as `[offset, value]` (lossy UTF-8; `null` for a null value).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub records: Vec<(Offset, Option<String>)>,
}

/// One partition of a ShareAcknowledge response.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AckedPartition {
    /// Partition index.
    pub partition: i32,
    /// The partition's ErrorCode.
    pub error: ErrorCode,
}

/// One partition of a DescribeShareGroupOffsets answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DescribedOffsets {
    /// Partition index.
    pub partition: i32,
    /// `StartOffset` (−1: not initialised).
    pub start_offset: i64,
    /// `Lag` (−1 at v0, or when the broker cannot compute it).
    pub lag: i64,
    /// The partition's ErrorCode.
    pub error: ErrorCode,
}

/// What the oracle needs to know before the first request: the rules the case runs under.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Setup {
    /// The case's topic.
    pub topic: String,
    /// The case's share group.
    pub group: String,
    /// Partitions of the topic.
    pub partitions: u32,
    /// The profile (`kafka-4.2`, …) the target is judged by.
    pub profile: String,
    /// The delivery limit in force for the group.
    pub delivery_limit: u8,
    /// Whether the limit was set at group level (else it is the target's own).
    pub group_delivery_limit: bool,
    /// The in-flight window limit in force.
    pub max_in_flight: u32,
    /// `share.record.lock.duration.ms` of the group.
    pub lock_ms: Millis,
    /// Lateness allowed on lock deadlines and on noticing a dropped connection.
    pub tolerance_ms: Millis,
    /// `share.auto.offset.reset=latest`.
    pub latest_reset: bool,
    /// Most timing alternatives carried before the case is inconclusive.
    pub max_candidates: usize,
    /// The group's dead-letter topic, and whether a broker may write to it (KIP-1191).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dlq: Option<DlqSetup>,
    /// The group set `share.renew.acknowledge.enable=false` (4.3+): RENEW is refused.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub renew_disabled: bool,
    /// The oracle's allowances for Kafka's behaviour that the case switched off.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub without_allowances: Vec<crate::trace::Allowance>,
}

/// The dead-letter topic of a case's group.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DlqSetup {
    /// Its name (`errors.deadletterqueue.topic.name`).
    pub topic: String,
    /// Whether records archived for a dead-letter reason must be written there (else nothing may).
    pub writable: bool,
}

/// One record read from a dead-letter topic: where, and its headers (values as UTF-8 text; a
/// header without a value is absent).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DlqRecord {
    /// The DLQ topic's partition.
    pub partition: i32,
    /// Its offset there.
    pub offset: i64,
    /// Whether it carries a key or a value (a copy of the original; off by default).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub has_data: bool,
    /// Its headers.
    pub headers: BTreeMap<String, String>,
}

/// One event of a history.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case", deny_unknown_fields)]
pub enum Event {
    /// The case's topic and group exist and are configured; the rules in force.
    Setup(Setup),
    /// The case did not run: the target lacks what it needs.
    Skipped {
        /// Why.
        reason: String,
    },
    /// The case could not be set up (topic, group configs): it cannot be judged.
    SetupFailed {
        /// Why.
        reason: String,
    },
    /// A step of the case begins.
    Step {
        /// 1-based.
        step: usize,
        /// The step, in words.
        text: String,
    },
    /// A step ended; what happened, in words.
    StepEnd {
        /// 1-based.
        step: usize,
        /// What happened.
        outcome: String,
    },
    /// The runner could not complete a step (a connection failed, a request timed out): the case
    /// cannot be judged past it.
    StepFailed {
        /// 1-based.
        step: usize,
        /// Why.
        reason: String,
    },
    /// A member joined the group (a new incarnation when the name joined before).
    Join {
        /// 1-based step.
        step: usize,
        /// Member name.
        member: String,
        /// The member id it joined with.
        member_id: String,
        /// First heartbeat sent.
        sent_ms: Millis,
        /// Assignment received.
        received_ms: Millis,
    },
    /// Records were produced.
    Produce {
        /// 1-based step.
        step: usize,
        /// Partition index.
        partition: i32,
        /// Records per batch.
        batches: Vec<u32>,
        /// Base offset of each batch, as answered.
        base_offsets: Vec<Offset>,
        /// Record `k` of the step (0-based, across batches) has value `value_prefix` + `k`.
        value_prefix: String,
        /// Sent.
        sent_ms: Millis,
        /// Answered.
        received_ms: Millis,
    },
    /// A fetch step begins: the member fetches for up to `patience_ms` for the records that every
    /// account of the spec says are acquirable once the events due by `horizon_ms` have happened.
    FetchBegin {
        /// 1-based step.
        step: usize,
        /// Member name.
        member: String,
        /// The partitions it fetches.
        #[serde(default = "partition_zero")]
        partitions: Vec<i32>,
        /// MaxRecords of the step.
        max_records: u32,
        /// Events due by then count as happened.
        horizon_ms: Millis,
        /// How long the member keeps fetching.
        patience_ms: Millis,
    },
    /// The fetch step's last ShareFetch was answered.
    FetchEnd {
        /// 1-based step.
        step: usize,
        /// Member name.
        member: String,
    },
    /// A ShareFetch and its answer.
    ShareFetch {
        /// 1-based step.
        step: usize,
        /// Member name.
        member: String,
        /// The broker (node id) it went to: the leader of the partitions it names.
        #[serde(default)]
        broker: i32,
        /// The partitions it asked records of (empty: none).
        #[serde(default = "partition_zero")]
        requested: Vec<i32>,
        /// ShareSessionEpoch sent.
        epoch: i32,
        /// MaxRecords sent (0: fetches nothing).
        max_records: u32,
        /// Piggy-backed acknowledgements.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        acks: Vec<PartitionAcks>,
        /// Sent.
        sent_ms: Millis,
        /// Answered.
        received_ms: Millis,
        /// Top-level ErrorCode.
        error: ErrorCode,
        /// AcquisitionLockTimeoutMs.
        lock_timeout_ms: i32,
        /// The case topic's partitions in the response.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        partitions: Vec<FetchedPartition>,
        /// Sent at v2 with `IsRenewAck` true (a renewing ShareFetch fetches nothing).
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        is_renew_ack: bool,
        /// Sent at v2 in record-limit acquire mode (never more than MaxRecords).
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        record_limit: bool,
    },
    /// A ShareAcknowledge and its answer.
    ShareAcknowledge {
        /// 1-based step.
        step: usize,
        /// Member name.
        member: String,
        /// The broker (node id) it went to.
        #[serde(default)]
        broker: i32,
        /// ShareSessionEpoch sent.
        epoch: i32,
        /// The acknowledgements.
        acks: Vec<PartitionAcks>,
        /// Sent.
        sent_ms: Millis,
        /// Answered.
        received_ms: Millis,
        /// Top-level ErrorCode.
        error: ErrorCode,
        /// The case topic's partitions in the response.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        partitions: Vec<AckedPartition>,
        /// Sent at v2 with `IsRenewAck` true.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        is_renew_ack: bool,
        /// AcquisitionLockTimeoutMs of a v2 answer.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        lock_timeout_ms: Option<i32>,
    },
    /// The member's connection to a broker was dropped without closing its session there.
    Disconnect {
        /// 1-based step.
        step: usize,
        /// Member name.
        member: String,
        /// The broker (node id) whose connection dropped.
        #[serde(default)]
        broker: i32,
        /// When.
        at_ms: Millis,
    },
    /// The member stopped silently: it forgot what it held; its session and connection stay.
    Crash {
        /// 1-based step.
        step: usize,
        /// Member name.
        member: String,
        /// When.
        at_ms: Millis,
    },
    /// The member left the group (heartbeat with epoch −1).
    Leave {
        /// 1-based step.
        step: usize,
        /// Member name.
        member: String,
        /// The heartbeat's ErrorCode.
        error: ErrorCode,
        /// Sent.
        sent_ms: Millis,
        /// Answered.
        received_ms: Millis,
    },
    /// A broker was restarted (asked at `sent_ms`, serving again at `received_ms`): the whole target,
    /// or one node of a cluster.
    Restart {
        /// 1-based step.
        step: usize,
        /// The node restarted; `None`: every broker of the target.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        node: Option<i32>,
        /// Killed (SIGKILL) rather than stopped.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        hard: bool,
        /// Asked.
        sent_ms: Millis,
        /// Done.
        received_ms: Millis,
    },
    /// Leadership of a partition moved to another replica.
    LeaderMove {
        /// 1-based step.
        step: usize,
        /// Partition index.
        partition: i32,
        /// The leader before.
        from: i32,
        /// The leader after.
        to: i32,
        /// Asked.
        sent_ms: Millis,
        /// Done (the new leader serves the partition).
        received_ms: Millis,
    },
    /// Partitions were added to the case's topic (CreatePartitions).
    PartitionsAdded {
        /// 1-based step.
        step: usize,
        /// The partition count now.
        total: u32,
        /// Asked.
        sent_ms: Millis,
        /// Answered.
        received_ms: Millis,
    },
    /// The case's topic was deleted.
    TopicDeleted {
        /// 1-based step.
        step: usize,
        /// DeleteTopics' ErrorCode for it.
        error: ErrorCode,
        /// Asked.
        sent_ms: Millis,
        /// Answered.
        received_ms: Millis,
    },
    /// AlterShareGroupOffsets (91) of one partition of the case's topic, and its answer.
    OffsetsAltered {
        /// 1-based step.
        step: usize,
        /// Partition index.
        partition: i32,
        /// The start offset asked for.
        start: i64,
        /// The top-level ErrorCode.
        error: ErrorCode,
        /// The partition's ErrorCode, if the answer has the partition.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        partition_error: Option<ErrorCode>,
        /// Sent.
        sent_ms: Millis,
        /// Answered.
        received_ms: Millis,
    },
    /// DeleteShareGroupOffsets (92) of the case's topic, and its answer.
    OffsetsDeleted {
        /// 1-based step.
        step: usize,
        /// The top-level ErrorCode.
        error: ErrorCode,
        /// The topic's ErrorCode, if the answer has the topic.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        topic_error: Option<ErrorCode>,
        /// Sent.
        sent_ms: Millis,
        /// Answered.
        received_ms: Millis,
    },
    /// DescribeShareGroupOffsets (90) of the case's topic, and its answer.
    OffsetsDescribed {
        /// 1-based step.
        step: usize,
        /// The version sent (1 carries `Lag`).
        version: i16,
        /// The group-level ErrorCode.
        error: ErrorCode,
        /// Each partition answered.
        partitions: Vec<DescribedOffsets>,
        /// Sent.
        sent_ms: Millis,
        /// Answered.
        received_ms: Millis,
    },
    /// What the group's dead-letter topic held.
    DlqRead {
        /// 1-based step.
        step: usize,
        /// Every record, in order (empty when the topic does not exist).
        records: Vec<DlqRecord>,
        /// The topic does not exist.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        missing: bool,
        /// First read.
        sent_ms: Millis,
        /// Last answer.
        received_ms: Millis,
    },
    /// IncrementalAlterConfigs of one group-level limit, and its answer.
    GroupLimitSet {
        /// 1-based step.
        step: usize,
        /// The group config.
        name: String,
        /// The value.
        value: i64,
        /// The resource's ErrorCode.
        error: ErrorCode,
        /// Sent.
        sent_ms: Millis,
        /// Answered.
        received_ms: Millis,
    },
    /// A member's assignment, as its last heartbeat answer gave it.
    Assignment {
        /// 1-based step.
        step: usize,
        /// Member name.
        member: String,
        /// Partitions of the case's topic assigned to it.
        partitions: Vec<i32>,
        /// When.
        at_ms: Millis,
    },
    /// The runner waited.
    Wait {
        /// 1-based step.
        step: usize,
        /// From.
        from_ms: Millis,
        /// Until.
        until_ms: Millis,
    },
    /// A claim of the case: the member has received at least this many records so far.
    Claim {
        /// 1-based step.
        step: usize,
        /// Member name.
        member: String,
        /// Lower bound.
        at_least: u32,
    },
    /// A claim of the case: every partition of the topic is assigned to some member (judged from
    /// the `Assignment` events of the same step).
    ClaimAssigned {
        /// 1-based step.
        step: usize,
        /// How long the runner waited for the assignment to cover the topic.
        waited_ms: Millis,
    },
}

impl Event {
    /// The step an event belongs to (0 for setup and skip).
    pub fn step(&self) -> usize {
        match self {
            Event::Setup(_) | Event::Skipped { .. } | Event::SetupFailed { .. } => 0,
            Event::Step { step, .. }
            | Event::StepEnd { step, .. }
            | Event::StepFailed { step, .. }
            | Event::Join { step, .. }
            | Event::Produce { step, .. }
            | Event::FetchBegin { step, .. }
            | Event::FetchEnd { step, .. }
            | Event::ShareFetch { step, .. }
            | Event::ShareAcknowledge { step, .. }
            | Event::Disconnect { step, .. }
            | Event::Crash { step, .. }
            | Event::Leave { step, .. }
            | Event::Restart { step, .. }
            | Event::LeaderMove { step, .. }
            | Event::PartitionsAdded { step, .. }
            | Event::TopicDeleted { step, .. }
            | Event::OffsetsAltered { step, .. }
            | Event::OffsetsDeleted { step, .. }
            | Event::OffsetsDescribed { step, .. }
            | Event::GroupLimitSet { step, .. }
            | Event::DlqRead { step, .. }
            | Event::Assignment { step, .. }
            | Event::Wait { step, .. }
            | Event::Claim { step, .. }
            | Event::ClaimAssigned { step, .. } => *step,
        }
    }
}

fn partition_zero() -> Vec<i32> {
    vec![0]
}

/// Where a history was recorded.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetInfo {
    /// `host:port`.
    pub address: String,
    /// What it is.
    pub implementation: String,
}

/// What the run that recorded a history concluded (kept for comparison; `judge` decides anew).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Recorded {
    /// The verdict.
    pub verdict: CaseVerdict,
    /// The anomalies.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub anomalies: Vec<Violation>,
    /// Why inconclusive or skipped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// A stored history: the `history` of an artifact or fixture.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct History {
    /// Must be [`HISTORY_FORMAT_VERSION`].
    pub format_version: u32,
    /// The target it was recorded against.
    pub target: TargetInfo,
    /// What the recording run concluded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recorded: Option<Recorded>,
    /// The events, in order.
    pub events: Vec<Event>,
}

/// Why a history cannot be judged.
#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    /// The format version is not this build's.
    #[error(
        "history format_version {0} is not supported (this build reads {HISTORY_FORMAT_VERSION})"
    )]
    Version(u32),
    /// The events do not make a history: what is wrong, at which event (0-based).
    #[error("event {index}: {what}")]
    Invalid {
        /// 0-based index into the events.
        index: usize,
        /// What is wrong.
        what: String,
    },
}

impl History {
    /// Checks what serde cannot: the version, a setup first (or a skip), known profile, steps in
    /// order, times that never go back within an event.
    pub fn validate(&self) -> Result<(), HistoryError> {
        if self.format_version != HISTORY_FORMAT_VERSION {
            return Err(HistoryError::Version(self.format_version));
        }
        validate_events(&self.events)
    }
}

/// The checks of [`History::validate`] on bare events.
pub fn validate_events(events: &[Event]) -> Result<(), HistoryError> {
    let invalid = |index: usize, what: String| Err(HistoryError::Invalid { index, what });
    match events.first() {
        None => return invalid(0, "no events".into()),
        Some(Event::Setup(s)) => {
            if sharecheck_model::Profile::by_name(&s.profile).is_none() {
                return invalid(0, format!("unknown profile '{}'", s.profile));
            }
            if s.lock_ms == 0 || s.delivery_limit == 0 || s.max_candidates == 0 {
                return invalid(
                    0,
                    "setup: lock_ms, delivery_limit and max_candidates must be positive".into(),
                );
            }
            if s.lock_ms > 3_600_000 || s.tolerance_ms > 600_000 || s.max_candidates > 4096 {
                return invalid(
                    0,
                    "setup: lock_ms at most 3600000, tolerance_ms at most 600000, max_candidates at most 4096"
                        .into(),
                );
            }
        }
        Some(Event::Skipped { .. } | Event::SetupFailed { .. }) if events.len() == 1 => {
            return Ok(())
        }
        Some(_) => return invalid(0, "a history starts with a setup event".into()),
    }
    let mut last_step = 0;
    for (i, e) in events.iter().enumerate().skip(1) {
        if matches!(
            e,
            Event::Setup(_) | Event::Skipped { .. } | Event::SetupFailed { .. }
        ) {
            return invalid(
                i,
                "setup, setup failure or skip after the first event".into(),
            );
        }
        let step = e.step();
        if step < last_step {
            return invalid(i, format!("step {step} after step {last_step}"));
        }
        last_step = step;
        let (sent, received) = match e {
            Event::Join {
                sent_ms,
                received_ms,
                ..
            }
            | Event::Produce {
                sent_ms,
                received_ms,
                ..
            }
            | Event::ShareFetch {
                sent_ms,
                received_ms,
                ..
            }
            | Event::ShareAcknowledge {
                sent_ms,
                received_ms,
                ..
            }
            | Event::Leave {
                sent_ms,
                received_ms,
                ..
            }
            | Event::Restart {
                sent_ms,
                received_ms,
                ..
            }
            | Event::LeaderMove {
                sent_ms,
                received_ms,
                ..
            }
            | Event::PartitionsAdded {
                sent_ms,
                received_ms,
                ..
            }
            | Event::TopicDeleted {
                sent_ms,
                received_ms,
                ..
            } => (*sent_ms, *received_ms),
            Event::Wait {
                from_ms, until_ms, ..
            } => (*from_ms, *until_ms),
            _ => (0, 0),
        };
        if received < sent {
            return invalid(
                i,
                format!("answered at {received} ms before it was sent at {sent} ms"),
            );
        }
        let at = match e {
            Event::Disconnect { at_ms, .. }
            | Event::Crash { at_ms, .. }
            | Event::Assignment { at_ms, .. } => *at_ms,
            Event::FetchBegin {
                horizon_ms,
                patience_ms,
                ..
            } => horizon_ms.saturating_add(*patience_ms),
            _ => received,
        };
        if at.max(received) > MAX_TIME_MS {
            return invalid(
                i,
                format!("a time past {MAX_TIME_MS} ms (a case lasts hours, not years)"),
            );
        }
        if let Event::Produce {
            batches,
            base_offsets,
            ..
        } = e
        {
            if batches.len() != base_offsets.len() && !base_offsets.is_empty() {
                return invalid(i, "produce: one base offset per batch".into());
            }
            if batches.iter().map(|b| u64::from(*b)).sum::<u64>() > 10_000_000 {
                return invalid(i, "produce: more than 10,000,000 records".into());
            }
        }
    }
    Ok(())
}

/// Reads a history from a file: an artifact (a case with its `history`) or a bare history.
pub fn load(
    path: &Path,
) -> Result<(Option<crate::trace::Case>, History), crate::trace::TraceError> {
    use crate::trace::TraceError;
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| TraceError::Io {
        path: shown.clone(),
        source,
    })?;
    let value: serde_json::Value = serde_json::from_str(&text).map_err(|e| TraceError::Parse {
        path: shown.clone(),
        message: e.to_string(),
    })?;
    let (case, history) = if value.get("steps").is_some() {
        let case = crate::trace::Case::parse(&text, &shown)?;
        let Some(h) = case.history.clone() else {
            return Err(TraceError::Invalid {
                path: shown,
                message: "the trace has no recorded history to judge (replay it instead)".into(),
            });
        };
        (Some(case), h)
    } else {
        let h: History = serde_json::from_value(value).map_err(|e| TraceError::Parse {
            path: shown.clone(),
            message: e.to_string(),
        })?;
        (None, h)
    };
    history.validate().map_err(|e| TraceError::Invalid {
        path: shown,
        message: format!("history: {e}"),
    })?;
    Ok((case, history))
}
