//! The trace format: a conformance case (target settings + abstract steps) and, once run, its
//! observed history. Stored cases live in `fixtures/` as JSON; generated, curated and fuzz-found cases
//! all use this one format, and `sharecheck replay FILE` reruns any of them.
//!
//! Steps are abstract so a trace survives the broker's legitimate choices: acknowledgements select
//! records *by relative index* into what the member currently holds (in offset order), not by absolute
//! offset, so a shrunk or replayed trace still means something (deleting an earlier step never
//! invalidates a later one). Raw steps with explicit offsets and epochs exist for invalid requests.

use crate::history::History;
use serde::{Deserialize, Serialize};
use sharecheck_client::v2::AcquireMode;
use sharecheck_model::spec::GROUP_LIMITS;
use sharecheck_model::vocab::{valid_member_name, AckBatch, AckType};
use std::fmt;
use std::path::Path;

/// The trace format version this build reads and writes.
pub const FORMAT_VERSION: u32 = 1;

pub use sharecheck_model::vocab::AREAS;

/// MUST or SHOULD: what a failure of the case means for the run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// A safety promise: failing it fails the run.
    Must,
    /// Timeliness or choice: fails the run only with `--strict`.
    Should,
}

/// The smallest suite a case belongs to (smoke ⊂ standard ⊂ full).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Suite {
    /// A handful of basic cases.
    Smoke,
    /// The default suite.
    #[default]
    Standard,
    /// Everything.
    Full,
}

/// Where a case came from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Origin {
    /// Written by hand in `fixtures/`.
    #[default]
    Curated,
    /// Generated from the model's paths.
    Generated,
    /// Found by `sharecheck fuzz` and shrunk.
    Fuzz,
    /// A real broker's divergence, kept as a regression.
    Finding,
}

/// What a case needs from its target beyond the share-group APIs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Capability {
    /// The runner can restart the broker, or one node of it (the embedded reference broker can; a
    /// remote one with `--nemesis`).
    Restart,
    /// Leadership of a partition can move (a cluster of several brokers, or the embedded broker).
    LeaderMove,
    /// The delivery limit can be set per group (`share.delivery.count.limit`, Kafka 4.3+ and the
    /// reference broker).
    GroupDeliveryLimit,
    /// ShareFetch/ShareAcknowledge v2 with RENEW (KIP-1222; Kafka 4.2+): the broker advertises v2
    /// and the profile has RENEW.
    Renew,
    /// ShareFetch v2 with `ShareAcquireMode` (KIP-1206; Kafka 4.2+).
    AcquireMode,
    /// Describe/Alter/DeleteShareGroupOffsets (APIs 90–92; Kafka 4.1+).
    OffsetsAdmin,
    /// DescribeShareGroupOffsets v1, which reports `Lag` (KIP-1226; Kafka 4.2+).
    Lag,
    /// Group-level `share.delivery.count.limit` and `share.partition.max.record.locks` with broker
    /// bounds (KIP-1240; Kafka 4.3+ and the reference broker).
    GroupLimits,
    /// The dead-letter queue (KIP-1191; Kafka 4.4 with `share.version=2`, the embedded broker).
    Dlq,
    /// A leader move over the wire between two brokers, so that the former leader can still be
    /// asked (a cluster of several brokers; not the embedded broker, which moves in process).
    FormerLeader,
}

impl Capability {
    /// Its name in a case's `requires` (`leader-move`, `former-leader`, …).
    pub fn name(self) -> String {
        serde_json::to_value(self)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default()
    }
}

/// `share.auto.offset.reset`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OffsetReset {
    /// From the log start.
    #[default]
    Earliest,
    /// From the high watermark at the first fetch.
    Latest,
}

/// Target settings for a case: applied as group configs before the first member joins.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Partitions of the case's topic (members fetch partition 0).
    #[serde(default = "one")]
    pub partitions: u32,
    /// `share.record.lock.duration.ms` for the case's group.
    #[serde(default = "default_lock_ms")]
    pub lock_duration_ms: u32,
    /// `share.auto.offset.reset` for the case's group.
    #[serde(default)]
    pub auto_offset_reset: OffsetReset,
    /// The delivery limit to ask for (group-level, where the target allows it); otherwise the
    /// target's own limit applies and the oracle uses that.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivery_limit: Option<u8>,
    /// The in-flight window limit to ask for (group-level `share.partition.max.record.locks`, Kafka
    /// 4.3+ and the reference broker); otherwise the target's own limit applies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_in_flight: Option<u32>,
    /// How the case's members make their member ids.
    #[serde(default, skip_serializing_if = "MemberIds::is_default")]
    pub member_ids: MemberIds,
    /// The group's dead-letter queue (needs `dlq`): which topic the group names, and whether it is
    /// one a broker may write to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dlq: Option<DlqTopic>,
    /// `share.renew.acknowledge.enable` for the group (4.3+; needs `group-limits`, the capability of
    /// 4.3's group configs): `false` makes RENEW INVALID_RECORD_STATE.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub renew_acknowledge: Option<bool>,
    /// Behaviours of Apache Kafka the oracle allows by default (each a finding in
    /// docs/findings.md) that this case judges strictly: a SHOULD case that still shows the
    /// divergence after the oracle learnt to accept it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub without_allowances: Vec<Allowance>,
}

/// A behaviour of Apache Kafka that the KIP does not forbid and the oracle therefore accepts by
/// default, named so that a case can switch the allowance off (`settings.without_allowances`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Allowance {
    /// F4: a session close (ShareFetch epoch −1) is answered before its release takes effect, so the
    /// release may land up to the tolerance after the answer. Without it: by the answer.
    AsyncCloseRelease,
    /// F5: when a group's last share session on a broker ends, the broker may drop and reload the
    /// group's share partitions, forgetting deliveries whose release was not yet written.
    GroupReload,
    /// F8: after a leader move, the former leader's lock expiries may still be written until the
    /// new leader loads the partition. Without it: a move is a restart of the partition.
    FencedLeaderExpiry,
    /// F10: DescribeShareGroupOffsets's start offset is the one last written, up to one write behind
    /// the SPSO. Without it: the start offset is the SPSO.
    StartOffsetTrails,
}

/// Which allowances are in force (all of them unless a case switches some off).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Allowances {
    /// [`Allowance::AsyncCloseRelease`].
    pub async_close_release: bool,
    /// [`Allowance::GroupReload`].
    pub group_reload: bool,
    /// [`Allowance::FencedLeaderExpiry`].
    pub fenced_leader_expiry: bool,
    /// [`Allowance::StartOffsetTrails`].
    pub start_offset_trails: bool,
}

impl Allowances {
    /// Every allowance but those in `without`.
    pub fn without(without: &[Allowance]) -> Allowances {
        let on = |a| !without.contains(&a);
        Allowances {
            async_close_release: on(Allowance::AsyncCloseRelease),
            group_reload: on(Allowance::GroupReload),
            fenced_leader_expiry: on(Allowance::FencedLeaderExpiry),
            start_offset_trails: on(Allowance::StartOffsetTrails),
        }
    }
}

/// The dead-letter topic a case's group names (`errors.deadletterqueue.topic.name`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DlqTopic {
    /// `dlq.<topic>`, created with `errors.deadletterqueue.group.enable=true`: records go there.
    Enabled,
    /// `dlq.<topic>`, created without `errors.deadletterqueue.group.enable`: nothing may be written.
    NotEnabled,
    /// `<topic>-dlq` (no `dlq.` prefix), created with the flag: nothing may be written.
    Misnamed,
    /// `dlq.<topic>`, never created (auto-creation is off by default): nothing may be written.
    Missing,
}

impl DlqTopic {
    /// The DLQ topic's name for a case topic.
    pub fn name(self, topic: &str) -> String {
        match self {
            DlqTopic::Misnamed => format!("{topic}-dlq"),
            _ => format!("dlq.{topic}"),
        }
    }

    /// Whether a broker may write records there (KIP-1191's checks, docs/semantics.md §19).
    pub fn writable(self) -> bool {
        self == DlqTopic::Enabled
    }
}

/// How members make their (client-generated) member ids.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MemberIds {
    /// As the Java client does: `Uuid.randomUuid().toString()`, URL-safe base64 of 16 random bytes.
    #[default]
    Kafka,
    /// As librdkafka 2.16 does: standard base64 of 16 random bytes, here always with a `+` or a `/`
    /// (characters that are not in Kafka's URL-safe alphabet; finding F6).
    StandardBase64,
}

impl MemberIds {
    fn is_default(&self) -> bool {
        *self == MemberIds::Kafka
    }
}

fn one() -> u32 {
    1
}

fn default_lock_ms() -> u32 {
    1000
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            partitions: 1,
            lock_duration_ms: default_lock_ms(),
            auto_offset_reset: OffsetReset::Earliest,
            delivery_limit: None,
            max_in_flight: None,
            member_ids: MemberIds::Kafka,
            dlq: None,
            renew_acknowledge: None,
            without_allowances: Vec::new(),
        }
    }
}

/// Which records of those a member holds an acknowledgement selects.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Selection {
    /// `"all"`: everything the member holds.
    All(AllMarker),
    /// Relative indices into the member's held records, in offset order; an index past the end
    /// wraps around, so any selection means something (shrinking never invalidates it).
    Indices(Vec<usize>),
}

/// The literal string `"all"`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AllMarker {
    /// all
    All,
}

impl Selection {
    /// Everything held.
    pub const ALL: Selection = Selection::All(AllMarker::All);

    /// The offsets selected from `held` (sorted, deduplicated).
    pub fn pick(&self, held: &[i64]) -> Vec<i64> {
        let mut out: Vec<i64> = match self {
            Selection::All(_) => held.to_vec(),
            Selection::Indices(_) if held.is_empty() => Vec::new(),
            Selection::Indices(ix) => ix.iter().map(|i| held[i % held.len()]).collect(),
        };
        out.sort_unstable();
        out.dedup();
        out
    }
}

/// How an acknowledgement travels.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AckVia {
    /// A ShareAcknowledge request.
    #[default]
    ShareAcknowledge,
    /// Piggy-backed on a ShareFetch (that also fetches nothing: MaxRecords 0).
    ShareFetch,
    /// On the final ShareFetch (epoch −1) that closes the session.
    Close,
}

/// One abstract step of a case.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum Step {
    /// Produce `records` records to a partition (default 0), in `batches` record batches (default:
    /// one per record).
    Produce {
        /// How many.
        records: u32,
        /// In how many batches.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        batches: Option<u32>,
        /// To which partition.
        #[serde(default, skip_serializing_if = "is_zero")]
        partition: u32,
    },
    /// The member joins the group (heartbeat until assigned). Members also join implicitly before
    /// their first fetch.
    Join {
        /// Member name (`A`, `B`, …).
        member: String,
    },
    /// ShareFetch by the member of the partitions it is assigned (one request per partition
    /// leader), repeated with bounded patience until it has received as many records as the spec
    /// says are surely acquirable (up to `max_records`), or once when none are.
    Fetch {
        /// Member name.
        member: String,
        /// MaxRecords.
        #[serde(default = "default_max_records")]
        max_records: u32,
        /// Send at v2 with this `ShareAcquireMode` (needs `acquire-mode`); absent: v1.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        acquire_mode: Option<AcquireMode>,
    },
    /// Acknowledge a selection of the records the member holds, with one type.
    Ack {
        /// Member name.
        member: String,
        /// Which held records.
        select: Selection,
        /// The acknowledge type.
        #[serde(rename = "type")]
        ty: AckType,
        /// ShareAcknowledge, piggy-backed on ShareFetch, or on the closing ShareFetch.
        #[serde(default)]
        via: AckVia,
        /// Only the records of this partition; default: of every partition the member holds records
        /// of (the selection applies in each).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        partition: Option<u32>,
    },
    /// Acknowledge explicit batches (offsets relative to nothing: absolute; may be invalid).
    RawAck {
        /// Member name.
        member: String,
        /// The batches, sent as given.
        batches: Vec<AckBatch>,
        /// How they travel.
        #[serde(default)]
        via: AckVia,
        /// An explicit share-session epoch instead of the correct one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        epoch: Option<i32>,
        /// The partition the batches are for.
        #[serde(default, skip_serializing_if = "is_zero")]
        partition: u32,
        /// Send at v2 with this `IsRenewAck` (needs `renew`); absent: v1.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        is_renew_ack: Option<bool>,
    },
    /// One ShareFetch with an explicit share-session epoch (session-rule tests).
    RawFetch {
        /// Member name.
        member: String,
        /// The epoch to send.
        epoch: i32,
        /// MaxRecords (0: fetch nothing).
        #[serde(default = "default_max_records")]
        max_records: u32,
        /// The partition fetched.
        #[serde(default, skip_serializing_if = "is_zero")]
        partition: u32,
    },
    /// Wait until every lock taken so far has surely expired (deadline + tolerance + margin).
    WaitLockExpiry,
    /// Wait a fixed time.
    Wait {
        /// Milliseconds.
        ms: u64,
    },
    /// Close the member's share session with a final ShareFetch (epoch −1).
    CloseSession {
        /// Member name.
        member: String,
    },
    /// Drop the member's connection to the leader without closing the session.
    Disconnect {
        /// Member name.
        member: String,
    },
    /// The member stops silently: it forgets what it holds; its session and connection stay.
    Crash {
        /// Member name.
        member: String,
    },
    /// The member leaves the group (heartbeat epoch −1); its share session is left alone.
    Leave {
        /// Member name.
        member: String,
    },
    /// The member comes back as a new incarnation: new member id, new connection, holding nothing.
    Rejoin {
        /// Member name.
        member: String,
    },
    /// Restart the broker — every node of it (needs the `restart` capability).
    Restart {
        /// Kill it (SIGKILL) instead of stopping it.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        hard: bool,
    },
    /// Restart (or kill and start again) the node that leads a partition (needs `restart`).
    RestartLeader {
        /// Which partition's leader.
        #[serde(default, skip_serializing_if = "is_zero")]
        partition: u32,
        /// Kill it (SIGKILL) instead of stopping it.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        hard: bool,
    },
    /// Make another replica the leader of a partition (needs `leader-move`).
    MoveLeader {
        /// Which partition.
        #[serde(default, skip_serializing_if = "is_zero")]
        partition: u32,
    },
    /// One ShareFetch sent to the broker that led a partition before the last `move_leader` of
    /// it, at once and without fresh metadata, as a member with stale metadata would (needs
    /// `former-leader`). A broker that has applied the move refuses it (NOT_LEADER_OR_FOLLOWER);
    /// what it hands out is judged like any acquisition after the move.
    FetchFormerLeader {
        /// Member name.
        member: String,
        /// MaxRecords.
        #[serde(default = "default_max_records")]
        max_records: u32,
        /// Which partition.
        #[serde(default, skip_serializing_if = "is_zero")]
        partition: u32,
    },
    /// Add partitions to the case's topic (CreatePartitions).
    AddPartitions {
        /// How many more.
        count: u32,
    },
    /// Delete the case's topic (DeleteTopics) while members hold sessions on it.
    DeleteTopic,
    /// AlterShareGroupOffsets (91): move the start offset of a partition of the case's topic (the
    /// group must have no members; at most the partition's log end).
    AlterOffsets {
        /// The new share-partition start offset.
        start: i64,
        /// Which partition.
        #[serde(default, skip_serializing_if = "is_zero")]
        partition: u32,
    },
    /// DeleteShareGroupOffsets (92) of the case's topic (the group must have no members).
    DeleteOffsets,
    /// DescribeShareGroupOffsets (90) of every partition of the case's topic: the start offset,
    /// and from v1 the lag, judged against the spec.
    DescribeOffsets,
    /// IncrementalAlterConfigs of one group-level limit (`model::spec::GROUP_LIMITS`) while the
    /// case runs; the answer is judged by [`sharecheck_model::spec::group_limit_answer`].
    SetGroupLimit {
        /// The group config.
        name: String,
        /// The value.
        value: i64,
    },
    /// Read the group's dead-letter topic (needs `dlq`) until it holds every record the spec has
    /// sent there, or the step's patience ends; the oracle judges what it holds.
    ExpectDlq,
    /// A claim about the group: every partition of the topic is assigned to some member.
    ExpectAssigned,
    /// A claim about the run so far: the member has received at least this many records in total.
    ExpectReceived {
        /// Member name.
        member: String,
        /// Lower bound.
        at_least: u32,
    },
}

fn default_max_records() -> u32 {
    10
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

impl Step {
    /// The member a step is about, if any.
    pub fn member(&self) -> Option<&str> {
        match self {
            Step::Join { member }
            | Step::Fetch { member, .. }
            | Step::Ack { member, .. }
            | Step::RawAck { member, .. }
            | Step::RawFetch { member, .. }
            | Step::CloseSession { member }
            | Step::Disconnect { member }
            | Step::Crash { member }
            | Step::Leave { member }
            | Step::Rejoin { member }
            | Step::ExpectReceived { member, .. } => Some(member),
            _ => None,
        }
    }
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Step::Produce {
                records,
                batches,
                partition,
            } => {
                match batches {
                    Some(b) => write!(f, "produce {records} record(s) in {b} batch(es)")?,
                    None => write!(f, "produce {records} record(s)")?,
                }
                if *partition != 0 {
                    write!(f, " to partition {partition}")?;
                }
                Ok(())
            }
            Step::Join { member } => write!(f, "{member} joins"),
            Step::Fetch {
                member,
                max_records,
                acquire_mode,
            } => {
                write!(f, "{member} fetches (max {max_records})")?;
                match acquire_mode {
                    Some(AcquireMode::RecordLimit) => write!(f, " in record-limit mode"),
                    Some(AcquireMode::BatchOptimized) => write!(f, " in batch-optimized mode (v2)"),
                    None => Ok(()),
                }
            }
            Step::Ack {
                member,
                select,
                ty,
                via,
                partition,
            } => {
                let sel = match select {
                    Selection::All(_) => "all held".to_string(),
                    Selection::Indices(ix) => format!("held{ix:?}"),
                };
                let via = match via {
                    AckVia::ShareAcknowledge => "",
                    AckVia::ShareFetch => " on ShareFetch",
                    AckVia::Close => " on session close",
                };
                let part = partition.map_or(String::new(), |p| format!(" of partition {p}"));
                write!(f, "{member} acks {ty} {sel}{part}{via}")
            }
            Step::RawAck {
                member,
                batches,
                epoch,
                via,
                partition,
                is_renew_ack,
            } => {
                let b: Vec<String> = batches.iter().map(|b| b.to_string()).collect();
                write!(f, "{member} sends raw acks [{}] via {via:?}", b.join(", "))?;
                if let Some(r) = is_renew_ack {
                    write!(f, " v2 (IsRenewAck {r})")?;
                }
                if let Some(e) = epoch {
                    write!(f, " with epoch {e}")?;
                }
                if *partition != 0 {
                    write!(f, " for partition {partition}")?;
                }
                Ok(())
            }
            Step::RawFetch {
                member,
                epoch,
                max_records,
                partition,
            } => {
                write!(f, "{member} fetches with epoch {epoch} (max {max_records})")?;
                if *partition != 0 {
                    write!(f, " from partition {partition}")?;
                }
                Ok(())
            }
            Step::WaitLockExpiry => write!(f, "wait for lock expiry"),
            Step::Wait { ms } => write!(f, "wait {ms} ms"),
            Step::CloseSession { member } => write!(f, "{member} closes its share session"),
            Step::Disconnect { member } => write!(f, "{member} drops its connection"),
            Step::Crash { member } => write!(f, "{member} crashes silently"),
            Step::Leave { member } => write!(f, "{member} leaves the group"),
            Step::Rejoin { member } => write!(f, "{member} rejoins as a new member"),
            Step::Restart { hard: false } => write!(f, "restart the broker"),
            Step::Restart { hard: true } => write!(f, "kill the broker and start it again"),
            Step::RestartLeader { partition, hard } => write!(
                f,
                "{} the leader of partition {partition}",
                if *hard { "kill and restart" } else { "restart" }
            ),
            Step::MoveLeader { partition } => {
                write!(f, "move the leadership of partition {partition}")
            }
            Step::FetchFormerLeader {
                member,
                max_records,
                partition,
            } => write!(
                f,
                "{member} fetches up to {max_records} of partition {partition} from its former leader"
            ),
            Step::AddPartitions { count } => write!(f, "add {count} partition(s) to the topic"),
            Step::DeleteTopic => write!(f, "delete the topic"),
            Step::AlterOffsets { start, partition } => {
                write!(
                    f,
                    "alter the share-group start offset of partition {partition} to {start}"
                )
            }
            Step::DeleteOffsets => write!(f, "delete the share-group offsets of the topic"),
            Step::ExpectDlq => write!(f, "read the dead-letter topic"),
            Step::DescribeOffsets => write!(f, "describe the share-group offsets and lag"),
            Step::SetGroupLimit { name, value } => write!(f, "set group config {name}={value}"),
            Step::ExpectAssigned => write!(f, "expect every partition assigned to a member"),
            Step::ExpectReceived { member, at_least } => {
                write!(f, "expect {member} received at least {at_least}")
            }
        }
    }
}

/// A conformance case: what to do and what the spec says about it, plus the history once run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Case {
    /// Must be [`FORMAT_VERSION`].
    pub format_version: u32,
    /// `kip932.<area>.<name>`.
    pub id: String,
    /// must / should.
    pub level: Level,
    /// The rule, in one line.
    pub rule: String,
    /// Where the rule comes from (KIP section or Kafka source file).
    pub source: String,
    /// The smallest suite that includes the case.
    #[serde(default)]
    pub suite: Suite,
    /// Curated, generated, fuzz, finding.
    #[serde(default)]
    pub origin: Origin,
    /// Target settings.
    #[serde(default)]
    pub settings: Settings,
    /// What the target must be able to do.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub requires: Vec<Capability>,
    /// The steps.
    pub steps: Vec<Step>,
    /// Free-form notes (e.g. the finding this case documents).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notes: Option<String>,
    /// The recorded history of a run, when the file was written after one (an artifact, or a
    /// finding's fixture); `sharecheck judge FILE` judges it again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub history: Option<History>,
    /// How `sharecheck fuzz` found the case (fuzz-found fixtures only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub found_by: Option<FoundBy>,
}

/// How a fuzz-found case was found: enough to find it again, and the planted bug it exposes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FoundBy {
    /// The `sharecheck fuzz` command line that found it.
    pub command: String,
    /// The run's seed.
    pub seed: u64,
    /// The case number within the run.
    pub case: u64,
    /// The target it failed on, as the run described it.
    pub target: String,
    /// The reference broker's planted bug it was found with (`--mutant`), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mutant: Option<String>,
    /// Steps of the generated case before shrinking.
    pub steps_before_shrinking: usize,
    /// Reruns on the target spent shrinking it.
    pub shrink_runs: u32,
}

/// What makes a case invalid (beyond what its JSON shape says).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidTrace(pub String);

impl InvalidTrace {
    fn new(what: impl Into<String>) -> InvalidTrace {
        InvalidTrace(what.into())
    }
}

/// Why a trace file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum TraceError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// Not valid JSON for a case.
    #[error("{path}: not a sharecheck trace: {message}")]
    Parse {
        /// The file.
        path: String,
        /// serde's message, with line and column.
        message: String,
    },
    /// Valid JSON, but the case makes no sense.
    #[error("{path}: invalid trace: {message}")]
    Invalid {
        /// The file.
        path: String,
        /// What is wrong.
        message: String,
    },
}

impl Case {
    /// The area: the second component of the id.
    pub fn area(&self) -> &str {
        self.id.split('.').nth(1).unwrap_or("")
    }

    /// Reads and validates a trace file.
    pub fn load(path: &Path) -> Result<Case, TraceError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| TraceError::Io {
            path: shown.clone(),
            source,
        })?;
        Case::parse(&text, &shown)
    }

    /// Parses and validates trace JSON; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Case, TraceError> {
        let case: Case = serde_json::from_str(text).map_err(|e| TraceError::Parse {
            path: origin.to_string(),
            message: e.to_string(),
        })?;
        case.validate().map_err(|e| TraceError::Invalid {
            path: origin.to_string(),
            message: e.0,
        })?;
        Ok(case)
    }

    /// Checks everything serde cannot: version, id shape, members, sizes.
    pub fn validate(&self) -> Result<(), InvalidTrace> {
        if self.format_version != FORMAT_VERSION {
            return Err(InvalidTrace::new(format!(
                "format_version {} is not supported (this build reads {FORMAT_VERSION})",
                self.format_version
            )));
        }
        let parts: Vec<&str> = self.id.split('.').collect();
        if parts.len() != 3
            || parts[0] != "kip932"
            || !AREAS.contains(&parts[1])
            || parts[2].is_empty()
        {
            return Err(InvalidTrace::new(format!(
                "id '{}' is not kip932.<area>.<name> with area one of {}",
                self.id,
                AREAS.join(", ")
            )));
        }
        if !parts[2]
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        {
            return Err(InvalidTrace::new(format!(
                "id '{}': the name must be kebab-case",
                self.id
            )));
        }
        if self.steps.is_empty() {
            return Err(InvalidTrace::new("no steps"));
        }
        if self.steps.len() > 10_000 {
            return Err(InvalidTrace::new(format!(
                "{} steps is more than the 10000 allowed",
                self.steps.len()
            )));
        }
        if !(1..=64).contains(&self.settings.partitions) {
            return Err(InvalidTrace::new("settings.partitions must be 1..=64"));
        }
        if !(1000..=3_600_000).contains(&self.settings.lock_duration_ms) {
            return Err(InvalidTrace::new(
                "settings.lock_duration_ms must be 1000..=3600000 (Kafka's range)",
            ));
        }
        if self
            .settings
            .max_in_flight
            .is_some_and(|w| !(1..=10_000).contains(&w))
        {
            return Err(InvalidTrace::new(
                "settings.max_in_flight must be 1..=10000",
            ));
        }
        if let Some(l) = self.settings.delivery_limit {
            if !(2..=10).contains(&l) {
                return Err(InvalidTrace::new(
                    "settings.delivery_limit must be 2..=10 (Kafka's range)",
                ));
            }
        }
        // A fault step needs its capability declared: the scheduler runs restarting cases alone, and
        // skips cases a target cannot do.
        for (i, step) in self.steps.iter().enumerate() {
            let needs = match step {
                Step::Restart { .. } | Step::RestartLeader { .. } => Some(Capability::Restart),
                Step::MoveLeader { .. } => Some(Capability::LeaderMove),
                Step::FetchFormerLeader { .. } => Some(Capability::FormerLeader),
                Step::Ack {
                    ty: AckType::Renew, ..
                }
                | Step::RawAck {
                    is_renew_ack: Some(_),
                    ..
                } => Some(Capability::Renew),
                Step::Fetch {
                    acquire_mode: Some(_),
                    ..
                } => Some(Capability::AcquireMode),
                Step::AlterOffsets { .. } | Step::DeleteOffsets | Step::DescribeOffsets => {
                    Some(Capability::OffsetsAdmin)
                }
                Step::ExpectDlq => Some(Capability::Dlq),
                Step::SetGroupLimit { name, .. } => GROUP_LIMITS
                    .iter()
                    .find(|l| l.config == name)
                    .and_then(|l| l.since_4_3.then_some(Capability::GroupLimits)),
                _ => None,
            };
            if let Step::SetGroupLimit { name, .. } = step {
                if !GROUP_LIMITS.iter().any(|l| l.config == name) {
                    return Err(InvalidTrace::new(format!(
                        "step {}: {name} is not a group limit (one of {})",
                        i + 1,
                        GROUP_LIMITS.map(|l| l.config).join(", ")
                    )));
                }
            }
            if let Some(cap) = needs.filter(|c| !self.requires.contains(c)) {
                return Err(InvalidTrace::new(format!(
                    "step {}: '{step}' needs \"requires\": [\"{}\"]",
                    i + 1,
                    cap.name()
                )));
            }
            if let Step::FetchFormerLeader { partition, .. } = step {
                let moved = self.steps[..i]
                    .iter()
                    .any(|s| matches!(s, Step::MoveLeader { partition: p } if p == partition));
                if !moved {
                    return Err(InvalidTrace::new(format!(
                        "step {}: '{step}' needs an earlier move_leader of partition {partition}",
                        i + 1
                    )));
                }
            }
        }
        if self.settings.renew_acknowledge.is_some()
            && !self.requires.contains(&Capability::GroupLimits)
        {
            return Err(InvalidTrace::new(
                "settings.renew_acknowledge needs \"requires\": [\"group-limits\"] (a 4.3 group config)",
            ));
        }
        if self.settings.dlq.is_some() && !self.requires.contains(&Capability::Dlq) {
            return Err(InvalidTrace::new(
                "settings.dlq needs \"requires\": [\"dlq\"]",
            ));
        }
        // Partition indices name partitions the topic has at that step.
        let mut total = self.settings.partitions;
        let mut produced: std::collections::BTreeMap<u32, u64> = Default::default();
        for (i, step) in self.steps.iter().enumerate() {
            if let Step::Produce {
                records, partition, ..
            } = step
            {
                *produced.entry(*partition).or_default() += u64::from(*records);
            }
            if let Step::AlterOffsets { start, partition } = step {
                let end = produced.get(partition).copied().unwrap_or(0);
                if *start < 0 || *start as u64 > end {
                    return Err(InvalidTrace::new(format!(
                        "step {}: start offset {start} is outside 0..={end} (the records produced to partition {partition} so far)",
                        i + 1
                    )));
                }
            }
            let named = match step {
                Step::Produce { partition, .. }
                | Step::RawAck { partition, .. }
                | Step::RawFetch { partition, .. }
                | Step::RestartLeader { partition, .. }
                | Step::MoveLeader { partition }
                | Step::FetchFormerLeader { partition, .. }
                | Step::AlterOffsets { partition, .. } => Some(*partition),
                Step::Ack { partition, .. } => *partition,
                _ => None,
            };
            if let Some(p) = named.filter(|p| *p >= total) {
                return Err(InvalidTrace::new(format!(
                    "step {}: partition {p}, but the topic has {total} partition(s) then",
                    i + 1
                )));
            }
            if let Step::AddPartitions { count } = step {
                if *count == 0 || *count > 64 - total {
                    return Err(InvalidTrace::new(format!(
                        "step {}: add 1 or more partitions, to at most 64",
                        i + 1
                    )));
                }
                total += count;
            }
            if let Some(m) = step.member() {
                if !valid_member_name(m) {
                    return Err(InvalidTrace::new(format!(
                        "step {}: member name '{m}' must be 1-16 letters, digits or '-'",
                        i + 1
                    )));
                }
            }
            match step {
                Step::Produce {
                    records, batches, ..
                } => {
                    if *records == 0 || *records > 100_000 {
                        return Err(InvalidTrace::new(format!(
                            "step {}: produce 1..=100000 records",
                            i + 1
                        )));
                    }
                    if let Some(b) = batches {
                        if *b == 0 || b > records {
                            return Err(InvalidTrace::new(format!(
                                "step {}: batches must be 1..=records",
                                i + 1
                            )));
                        }
                    }
                }
                Step::Fetch { max_records, .. } if *max_records == 0 || *max_records > 100_000 => {
                    return Err(InvalidTrace::new(format!(
                        "step {}: max_records must be 1..=100000",
                        i + 1
                    )));
                }
                Step::RawAck { batches, .. } if batches.is_empty() || batches.len() > 1000 => {
                    return Err(InvalidTrace::new(format!(
                        "step {}: raw_ack needs 1..=1000 batches",
                        i + 1
                    )));
                }
                Step::Wait { ms } if *ms > 600_000 => {
                    return Err(InvalidTrace::new(format!(
                        "step {}: wait at most 600000 ms",
                        i + 1
                    )));
                }
                _ => {}
            }
        }
        if let Some(h) = &self.history {
            h.validate()
                .map_err(|e| InvalidTrace::new(format!("history: {e}")))?;
        }
        Ok(())
    }

    /// The case as pretty JSON (with its history, if any).
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> &'static str {
        r#"{
          "format_version": 1,
          "id": "kip932.ack.release-redelivers",
          "level": "must",
          "rule": "a released record is redelivered with its count incremented",
          "source": "docs/semantics.md T2, T4",
          "settings": {"lock_duration_ms": 5000},
          "steps": [
            {"op": "produce", "records": 2},
            {"op": "fetch", "member": "A"},
            {"op": "ack", "member": "A", "select": [0], "type": "release"},
            {"op": "ack", "member": "A", "select": "all", "type": "accept", "via": "share-fetch"},
            {"op": "raw_ack", "member": "A", "batches": [{"first_offset": 0, "last_offset": 1, "types": [1]}], "epoch": 7},
            {"op": "wait_lock_expiry"}
          ]
        }"#
    }

    #[test]
    fn parses_and_round_trips() {
        let case = Case::parse(sample(), "sample").unwrap();
        assert_eq!(case.area(), "ack");
        assert_eq!(case.settings.partitions, 1);
        assert_eq!(case.suite, Suite::Standard);
        assert!(matches!(
            case.steps[3],
            Step::Ack {
                select: Selection::All(_),
                via: AckVia::ShareFetch,
                ..
            }
        ));
        let again = Case::parse(&case.to_json(), "again").unwrap();
        assert_eq!(again, case);
    }

    #[test]
    fn bad_traces_get_clear_errors() {
        let err = Case::parse("{", "f.json").unwrap_err().to_string();
        assert!(err.starts_with("f.json: not a sharecheck trace"), "{err}");
        let wrong_op = sample().replace("\"produce\"", "\"produc\"");
        assert!(Case::parse(&wrong_op, "f")
            .unwrap_err()
            .to_string()
            .contains("unknown variant"));
        let version = sample().replace("\"format_version\": 1", "\"format_version\": 9");
        assert!(Case::parse(&version, "f")
            .unwrap_err()
            .to_string()
            .contains("format_version 9"));
        let id = sample().replace("kip932.ack.", "kip932.nope.");
        assert!(Case::parse(&id, "f")
            .unwrap_err()
            .to_string()
            .contains("is not kip932.<area>.<name>"));
        let member = sample().replace("\"member\": \"A\"}", "\"member\": \"\"}");
        assert!(Case::parse(&member, "f")
            .unwrap_err()
            .to_string()
            .contains("member name"));
        let lock = sample().replace("5000", "10");
        assert!(Case::parse(&lock, "f")
            .unwrap_err()
            .to_string()
            .contains("lock_duration_ms"));
    }

    /// `fetch_former_leader` needs `former-leader` declared and an earlier move of its partition.
    #[test]
    fn a_former_leader_fetch_needs_a_move_before_it() {
        let case = |requires: &str, steps: &str| {
            format!(
                r#"{{"format_version": 1, "id": "kip932.faults.x", "level": "should", "rule": "r",
                "source": "s", "requires": [{requires}], "steps": [{{"op": "produce", "records": 2}}, {steps}]}}"#
            )
        };
        let ask = r#"{"op": "fetch_former_leader", "member": "A"}"#;
        let moved = format!(r#"{{"op": "move_leader"}}, {ask}"#);
        let both = r#""leader-move", "former-leader""#;
        assert!(Case::parse(&case(both, &moved), "f").is_ok());
        let undeclared = Case::parse(&case(r#""leader-move""#, &moved), "f").unwrap_err();
        assert!(
            undeclared.to_string().contains("[\"former-leader\"]"),
            "{undeclared}"
        );
        let unmoved = Case::parse(&case(both, ask), "f").unwrap_err();
        assert!(
            unmoved
                .to_string()
                .contains("needs an earlier move_leader of partition 0"),
            "{unmoved}"
        );
    }

    #[test]
    fn selections_wrap_and_dedupe() {
        let held = [3, 5, 9];
        assert_eq!(Selection::Indices(vec![4, 0, 3]).pick(&held), vec![3, 5]);
        assert_eq!(Selection::ALL.pick(&held), vec![3, 5, 9]);
        assert!(Selection::Indices(vec![1]).pick(&[]).is_empty());
    }
}
