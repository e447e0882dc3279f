//! One share-group member over the wire: join and heartbeat (ShareGroupHeartbeat), share sessions
//! with their epochs (ShareFetch / ShareAcknowledge), acknowledgements, session close, connection
//! drop and leave.
//!
//! The member is deliberately *thin*: it sends what it is told, including invalid requests on
//! purpose ([`Epoch::Raw`], raw acknowledge type codes), and reports what came back as data
//! ([`FetchOutcome`], [`AckOutcome`]) for a runner to record and an oracle to judge. It keeps
//! only the bookkeeping a real client must keep (docs/semantics.md §6.1, §7.1):
//!
//! * the member id: fixed for the member's life, a 22-char base64url Uuid string (4.1 parses it);
//! * the member epoch, from the last heartbeat answer (0 joins, −1 leaves);
//! * per partition-leader broker, the share session's next epoch: 0 opens (no acknowledgements
//!   allowed), then 1, 2, … shared by ShareFetch and ShareAcknowledge, −1 closes. A request that
//!   passes the broker's epoch check advances it even if its partitions fail.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use bytes::{Buf, Bytes};
use kafka_protocol::messages::share_acknowledge_request::{
    AcknowledgePartition, AcknowledgeTopic, AcknowledgementBatch as AckReqBatch,
};
use kafka_protocol::messages::share_fetch_request::{
    AcknowledgementBatch as FetchAckBatch, FetchPartition, FetchTopic, ForgottenTopic,
};
use kafka_protocol::messages::{
    GroupId, ShareAcknowledgeRequest, ShareFetchRequest, ShareGroupHeartbeatRequest,
    ShareGroupHeartbeatResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::RecordBatchDecoder;
use serde::Serialize;
use sharecheck_model::session;
pub use sharecheck_model::vocab::{AckBatch, AckType};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use uuid::Uuid;

use crate::admin::{find_coordinator_on, uuid_to_kafka, Client, ClientError, Cluster};
use crate::v2::{AcquireMode, ShareAcknowledgeV2Request, ShareFetchV2Request, V2};
use crate::wire::{Connection, Exchange, WireError};
use sharecheck_model::ErrorCode;

/// A fresh member id the way the Java client makes one (`Uuid.randomUuid().toString()`).
pub fn random_member_id() -> String {
    uuid_to_kafka(&Uuid::new_v4())
}

/// A fresh member id the way librdkafka 2.16 makes one: standard (not URL-safe) base64 of 16 random
/// bytes, unpadded — always with at least one `+` or `/`, the two characters where the alphabets
/// differ (about half of librdkafka's ids have one).
pub fn standard_base64_member_id() -> String {
    loop {
        let id = random_member_id();
        if id.contains(['-', '_']) {
            return id.replace('-', "+").replace('_', "/");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Requests

/// Acknowledgements for one partition.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PartitionAcks {
    #[serde(serialize_with = "ser_uuid")]
    pub topic_id: Uuid,
    pub partition: i32,
    pub batches: Vec<AckBatch>,
}

/// Which share-session epoch a request carries.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub enum Epoch {
    /// What a correct client sends: 0 without a session, else the session's next epoch.
    #[default]
    Auto,
    /// Exactly this value (error tests); the tracked epoch is still updated from the answer.
    Raw(i32),
}

/// ShareFetch limits (v1 requires all of them; docs/semantics.md §14 step 5).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct FetchLimits {
    pub max_wait_ms: i32,
    pub min_bytes: i32,
    pub max_bytes: i32,
    /// 0 means "acknowledge only, acquire nothing".
    pub max_records: i32,
    pub batch_size: i32,
}

impl Default for FetchLimits {
    fn default() -> Self {
        FetchLimits {
            max_wait_ms: 500,
            min_bytes: 1,
            max_bytes: 8 * 1024 * 1024,
            max_records: 500,
            batch_size: 500,
        }
    }
}

/// One ShareFetch: partitions to fetch, acknowledgements to piggy-back, partitions to forget.
#[derive(Clone, Debug, Default, Serialize)]
pub struct FetchSpec {
    #[serde(serialize_with = "ser_tps")]
    pub partitions: Vec<(Uuid, i32)>,
    pub acks: Vec<PartitionAcks>,
    #[serde(serialize_with = "ser_tps")]
    pub forget: Vec<(Uuid, i32)>,
    pub limits: FetchLimits,
    pub epoch: Epoch,
    /// Send at v2 with these fields (`None`: v1). See [`crate::v2`].
    pub v2: Option<FetchV2>,
}

/// The fields a v2 ShareFetch adds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct FetchV2 {
    /// `ShareAcquireMode`.
    pub acquire_mode: AcquireMode,
    /// `IsRenewAck`: the request only renews and acknowledges (the fetch limits must be 0).
    pub is_renew_ack: bool,
}

impl FetchSpec {
    /// Fetch `partitions` with default limits and the automatic epoch.
    pub fn partitions(partitions: Vec<(Uuid, i32)>) -> FetchSpec {
        FetchSpec {
            partitions,
            ..FetchSpec::default()
        }
    }

    pub fn with_acks(mut self, acks: Vec<PartitionAcks>) -> Self {
        self.acks = acks;
        self
    }

    pub fn with_epoch(mut self, epoch: Epoch) -> Self {
        self.epoch = epoch;
        self
    }

    /// Send it at v2 with these fields.
    pub fn with_v2(mut self, v2: FetchV2) -> Self {
        self.v2 = Some(v2);
        self
    }

    pub fn with_limits(mut self, limits: FetchLimits) -> Self {
        self.limits = limits;
        self
    }
}

// ---------------------------------------------------------------------------------------------
// Outcomes

/// One `AcquiredRecords` entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct AcquiredRange {
    pub first_offset: i64,
    pub last_offset: i64,
    pub delivery_count: i16,
}

impl AcquiredRange {
    pub fn contains(&self, offset: i64) -> bool {
        (self.first_offset..=self.last_offset).contains(&offset)
    }
}

/// A data record the member may process: its offset lies inside an acquired range.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FetchedRecord {
    pub offset: i64,
    pub delivery_count: i16,
    #[serde(serialize_with = "ser_bytes")]
    pub key: Option<Bytes>,
    #[serde(serialize_with = "ser_bytes")]
    pub value: Option<Bytes>,
}

/// One partition of a ShareFetch response.
#[derive(Clone, Debug, Serialize)]
pub struct FetchedPartition {
    #[serde(serialize_with = "ser_uuid")]
    pub topic_id: Uuid,
    pub partition: i32,
    pub error_code: ErrorCode,
    pub error_message: Option<String>,
    pub ack_error_code: ErrorCode,
    pub ack_error_message: Option<String>,
    /// (leader id, leader epoch); (−1, −1) when not given.
    pub current_leader: (i32, i32),
    pub acquired: Vec<AcquiredRange>,
    /// Data records at acquired offsets, in offset order.
    pub records: Vec<FetchedRecord>,
    /// Acquired offsets without a data record (control records, gaps): GAP-ack these.
    pub acquired_without_data: Vec<i64>,
    /// Bytes of a partial batch at the end of `Records` (normal when a size limit cut it).
    pub truncated_bytes: usize,
    /// A batch that could not be decoded (CRC, unsupported compression, …).
    pub decode_issue: Option<String>,
}

impl FetchedPartition {
    /// Every acquired offset with its delivery count.
    pub fn acquired_offsets(&self) -> Vec<(i64, i16)> {
        self.acquired
            .iter()
            .flat_map(|r| {
                let last = r.last_offset.min(r.first_offset.saturating_add(MAX_RANGE));
                (r.first_offset..=last).map(move |o| (o, r.delivery_count))
            })
            .collect()
    }
}

/// What one ShareFetch returned.
#[derive(Clone, Debug, Serialize)]
pub struct FetchOutcome {
    pub broker: i32,
    pub version: i16,
    pub epoch_sent: i32,
    pub sent_at: SystemTime,
    /// Send → receive.
    pub elapsed: Duration,
    pub throttle_time_ms: i32,
    pub error_code: ErrorCode,
    pub error_message: Option<String>,
    pub acquisition_lock_timeout_ms: i32,
    pub partitions: Vec<FetchedPartition>,
    /// The epoch this member will send next on this broker (None: no session).
    pub next_epoch: Option<i32>,
    /// Sent at v2 with `IsRenewAck` true.
    pub is_renew_ack: bool,
    /// Sent at v2 in record-limit acquire mode.
    pub record_limit: bool,
}

impl FetchOutcome {
    /// A refusal for want of a permission, top-level or of a partition (TOPIC_AUTHORIZATION_FAILED
    /// when the principal may not Read the topic), in words.
    pub fn denied(&self, group: &str) -> Option<String> {
        denied_in(
            "ShareFetch",
            group,
            self.error_code,
            self.partitions
                .iter()
                .flat_map(|p| [(p.partition, p.error_code), (p.partition, p.ack_error_code)]),
        )
    }

    pub fn partition(&self, topic_id: Uuid, partition: i32) -> Option<&FetchedPartition> {
        self.partitions
            .iter()
            .find(|p| p.topic_id == topic_id && p.partition == partition)
    }

    /// Every acquired (offset, delivery count) of one partition; empty if it is absent.
    pub fn acquired(&self, topic_id: Uuid, partition: i32) -> Vec<(i64, i16)> {
        self.partition(topic_id, partition)
            .map(|p| p.acquired_offsets())
            .unwrap_or_default()
    }

    /// Number of acquired offsets over all partitions.
    pub fn acquired_count(&self) -> usize {
        self.partitions
            .iter()
            .flat_map(|p| p.acquired.iter())
            .map(|r| {
                r.last_offset
                    .saturating_sub(r.first_offset)
                    .saturating_add(1)
                    .clamp(0, MAX_RANGE + 1) as usize
            })
            .sum()
    }
}

/// One partition of a ShareAcknowledge response.
#[derive(Clone, Debug, Serialize)]
pub struct AckedPartition {
    #[serde(serialize_with = "ser_uuid")]
    pub topic_id: Uuid,
    pub partition: i32,
    pub error_code: ErrorCode,
    pub error_message: Option<String>,
}

/// What one ShareAcknowledge returned.
#[derive(Clone, Debug, Serialize)]
pub struct AckOutcome {
    pub broker: i32,
    pub version: i16,
    pub epoch_sent: i32,
    pub sent_at: SystemTime,
    pub elapsed: Duration,
    pub error_code: ErrorCode,
    pub error_message: Option<String>,
    /// `AcquisitionLockTimeoutMs` (v2 responses only).
    pub acquisition_lock_timeout_ms: Option<i32>,
    pub partitions: Vec<AckedPartition>,
    pub next_epoch: Option<i32>,
    /// Sent at v2 with `IsRenewAck` true.
    pub is_renew_ack: bool,
}

impl AckOutcome {
    /// A refusal for want of a permission, top-level or of a partition, in words.
    pub fn denied(&self, group: &str) -> Option<String> {
        denied_in(
            "ShareAcknowledge",
            group,
            self.error_code,
            self.partitions.iter().map(|p| (p.partition, p.error_code)),
        )
    }

    pub fn partition_error(&self, topic_id: Uuid, partition: i32) -> Option<ErrorCode> {
        self.partitions
            .iter()
            .find(|p| p.topic_id == topic_id && p.partition == partition)
            .map(|p| p.error_code)
    }
}

/// One ShareGroupHeartbeat answer.
#[derive(Clone, Debug, Serialize)]
pub struct HeartbeatOutcome {
    pub epoch_sent: i32,
    pub sent_at: SystemTime,
    pub elapsed: Duration,
    pub error_code: ErrorCode,
    pub error_message: Option<String>,
    pub member_epoch: i32,
    pub heartbeat_interval_ms: i32,
    /// `None` when the assignment did not change since the last answer.
    pub assignment: Option<Vec<Assigned>>,
}

/// Partitions of one topic assigned to the member.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Assigned {
    #[serde(serialize_with = "ser_uuid")]
    pub topic_id: Uuid,
    pub partitions: Vec<i32>,
}

/// What the heartbeat loop knows, shared with the member.
#[derive(Clone, Debug, Default, Serialize)]
pub struct HeartbeatState {
    pub member_epoch: i32,
    pub heartbeat_interval_ms: i32,
    pub assignment: Vec<Assigned>,
    pub heartbeats: u64,
    /// Times the member was fenced (FENCED_MEMBER_EPOCH / UNKNOWN_MEMBER_ID) and rejoined with 0.
    pub rejoins: u64,
    pub last_error: ErrorCode,
    pub last_error_message: Option<String>,
    /// The last transport failure of the loop, if any.
    pub last_failure: Option<String>,
}

// ---------------------------------------------------------------------------------------------
// Errors

/// Why a member operation could not produce an outcome. Kafka error codes in a response are not
/// errors: they are in the outcome.
#[derive(Debug, thiserror::Error)]
pub enum MemberError {
    #[error(transparent)]
    Client(#[from] ClientError),
    #[error(transparent)]
    Wire(#[from] WireError),
    #[error("ShareGroupHeartbeat for group {group}: {code}{}", message.as_deref().map(|m| format!(": {m}")).unwrap_or_default())]
    Heartbeat {
        group: String,
        code: ErrorCode,
        message: Option<String>,
    },
    #[error("member {member_id} got no assignment in group {group} within {waited:?} (member epoch {epoch}, {heartbeats} heartbeats)")]
    JoinTimeout {
        group: String,
        member_id: String,
        waited: Duration,
        epoch: i32,
        heartbeats: u64,
    },
    #[error("topic id {0} is not in the member's metadata")]
    UnknownTopicId(String),
    #[error("partition {topic}-{partition} has no known leader")]
    NoLeader { topic: String, partition: i32 },
    #[error("the partitions of one request have different leaders: {0:?}")]
    MixedLeaders(Vec<i32>),
    #[error("nothing to send: no partitions and no acknowledgements")]
    EmptyRequest,
    #[error("acknowledgements cannot ride on a session-opening ShareFetch (epoch 0); send Epoch::Raw(0) to do it on purpose")]
    AcksNeedSession,
    #[error("no share session with broker {0}, and ShareAcknowledge cannot open one; send Epoch::Raw to do it on purpose")]
    NoSession(i32),
    #[error("member {0} has no heartbeat running (not joined, or already left)")]
    NotJoined(String),
    #[error("the heartbeat task failed: {0}")]
    HeartbeatTask(String),
}

fn denied_in(
    api: &str,
    group: &str,
    top: ErrorCode,
    partitions: impl Iterator<Item = (i32, ErrorCode)>,
) -> Option<String> {
    if top.is_authorization() {
        return Some(format!("{api} for group {group}: {top}"));
    }
    partitions
        .filter(|(_, c)| c.is_authorization())
        .map(|(p, c)| format!("{api} for group {group}, partition {p}: {c}"))
        .next()
}

impl MemberError {
    /// The refusal, when the broker refused for want of a permission (an ACL).
    pub fn denied(&self) -> Option<String> {
        match self {
            MemberError::Client(c) => c.denied(),
            MemberError::Heartbeat { code, .. } if code.is_authorization() => {
                Some(self.to_string())
            }
            _ => None,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Session-epoch bookkeeping

/// The epoch the broker expects next after a request that carried `sent` and got top-level
/// `error`, as the broker's session rules ([`sharecheck_model::session`], docs/semantics.md §6.1)
/// imply for a client that only sees the answer: an accepted opening epoch leads to
/// [`FIRST_EPOCH`](session::FIRST_EPOCH); an accepted final epoch ends the session; any other
/// accepted epoch advances by [`session::next_epoch`]; SHARE_SESSION_NOT_FOUND means there is no
/// session; any other top-level error means the request was refused before the session moved.
pub fn next_session_epoch(current: Option<i32>, sent: i32, error: ErrorCode) -> Option<i32> {
    if error == ErrorCode::SHARE_SESSION_NOT_FOUND {
        return None;
    }
    if !error.is_none() {
        return current;
    }
    match sent {
        session::INITIAL_EPOCH => Some(session::FIRST_EPOCH),
        session::FINAL_EPOCH => None,
        n => Some(session::next_epoch(n)),
    }
}

// ---------------------------------------------------------------------------------------------
// Records

/// Decode the data records of a `Records` field (ShareFetch or Fetch): stops cleanly at a truncated
/// trailing batch (returning its length); skips, and reports, a batch that does not decode or whose
/// counts do not fit its bytes (the guard checks them before the decoder sizes anything); skips
/// control records.
pub fn decode_batches(
    records: Option<&Bytes>,
) -> (Vec<kafka_protocol::records::Record>, usize, Option<String>) {
    let mut out = Vec::new();
    let mut truncated = 0usize;
    let mut issue = None;
    let Some(all) = records else {
        return (out, truncated, issue);
    };
    let mut rest = all.clone();
    // Batch header: base offset (8) + batch length (4), then `length` bytes.
    while rest.has_remaining() {
        if rest.remaining() < 12 {
            truncated = rest.remaining();
            break;
        }
        let len = i32::from_be_bytes([rest[8], rest[9], rest[10], rest[11]]);
        if len < 0 {
            issue = Some(format!("negative batch length {len}"));
            break;
        }
        let total = 12 + len as usize;
        if rest.remaining() < total {
            truncated = rest.remaining();
            break;
        }
        let mut batch = rest.split_to(total);
        if let Err(e) = crate::guard::check_records(&batch) {
            issue.get_or_insert_with(|| e.to_string());
            continue;
        }
        match RecordBatchDecoder::decode(&mut batch) {
            Ok(set) => out.extend(set.records.into_iter().filter(|r| !r.control)),
            Err(e) => {
                issue.get_or_insert_with(|| format!("undecodable batch: {e}"));
            }
        }
    }
    (out, truncated, issue)
}

/// Most offsets of one acquired range expanded offset by offset.
const MAX_RANGE: i64 = 100_000;

/// Decode the `Records` of one ShareFetch partition and keep only what the member owns: data
/// records whose offset lies in an acquired range. Stops cleanly at a truncated trailing batch;
/// skips (and reports) a batch that does not decode; skips control records (their offsets are
/// reported as acquired without data).
pub fn decode_acquired(
    records: Option<&Bytes>,
    acquired: &[AcquiredRange],
) -> (Vec<FetchedRecord>, Vec<i64>, usize, Option<String>) {
    let mut out: BTreeMap<i64, FetchedRecord> = BTreeMap::new();
    let (decoded, truncated, issue) = decode_batches(records);
    for r in decoded {
        if let Some(range) = acquired.iter().find(|a| a.contains(r.offset)) {
            out.insert(
                r.offset,
                FetchedRecord {
                    offset: r.offset,
                    delivery_count: range.delivery_count,
                    key: r.key,
                    value: r.value,
                },
            );
        }
    }
    // A hostile range may span 2^63 offsets: at most MAX_RANGE of each are listed.
    let without: Vec<i64> = acquired
        .iter()
        .flat_map(|a| a.first_offset..=a.last_offset.min(a.first_offset.saturating_add(MAX_RANGE)))
        .filter(|o| !out.contains_key(o))
        .collect();
    (out.into_values().collect(), without, truncated, issue)
}

// ---------------------------------------------------------------------------------------------
// The member

/// How a member identifies itself.
#[derive(Clone, Debug)]
pub struct MemberConfig {
    pub group_id: String,
    /// Fixed for the member's life; see [`random_member_id`].
    pub member_id: String,
    /// `SubscribedTopicNames`.
    pub topics: Vec<String>,
    pub rack_id: Option<String>,
    /// How long [`ShareMember::join`] may wait for a non-empty assignment.
    pub join_timeout: Duration,
}

impl MemberConfig {
    pub fn new(group_id: impl Into<String>, topics: Vec<String>) -> Self {
        MemberConfig {
            group_id: group_id.into(),
            member_id: random_member_id(),
            topics,
            rack_id: None,
            join_timeout: Duration::from_secs(30),
        }
    }
}

struct Session {
    conn: Option<Connection>,
    next_epoch: Option<i32>,
}

struct Heartbeat {
    stop: oneshot::Sender<bool>,
    task: JoinHandle<Option<Result<HeartbeatOutcome, MemberError>>>,
}

/// One share-group member. Dropping it stops its heartbeat without leaving.
pub struct ShareMember {
    config: MemberConfig,
    cluster: Cluster,
    state: Arc<Mutex<HeartbeatState>>,
    heartbeat: Option<Heartbeat>,
    sessions: BTreeMap<i32, Session>,
}

impl fmt::Debug for ShareMember {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ShareMember")
            .field("group", &self.config.group_id)
            .field("member_id", &self.config.member_id)
            .field("sessions", &self.session_epochs())
            .finish()
    }
}

impl Drop for ShareMember {
    fn drop(&mut self) {
        if let Some(hb) = self.heartbeat.take() {
            hb.task.abort();
        }
    }
}

fn lock(state: &Mutex<HeartbeatState>) -> std::sync::MutexGuard<'_, HeartbeatState> {
    // A panic elsewhere while holding the lock leaves plain data behind: keep using it.
    state.lock().unwrap_or_else(|p| p.into_inner())
}

impl ShareMember {
    /// A member that has not joined: it can fetch and acknowledge (the partition leader does not
    /// check membership, docs/semantics.md §7.3) but has no heartbeat.
    pub fn new(cluster: Cluster, config: MemberConfig) -> ShareMember {
        ShareMember {
            config,
            cluster,
            state: Arc::new(Mutex::new(HeartbeatState::default())),
            heartbeat: None,
            sessions: BTreeMap::new(),
        }
    }

    /// Join the group: ShareGroupHeartbeat with epoch 0 and the subscription, repeated at the
    /// returned interval with the returned epoch until the assignment is non-empty (4.1+ assigns
    /// only initialised share partitions, §7.3), within `join_timeout`. Then heartbeats continue in
    /// a background task until [`leave`](Self::leave) or drop.
    pub async fn join(
        client: &mut Client,
        config: MemberConfig,
    ) -> Result<ShareMember, MemberError> {
        let topics: Vec<&str> = config.topics.iter().map(|s| s.as_str()).collect();
        client.refresh_metadata(&topics).await?;
        let mut member = ShareMember::new(client.cluster(), config);
        member.join_now(client).await?;
        Ok(member)
    }

    async fn join_now(&mut self, client: &mut Client) -> Result<(), MemberError> {
        let started = Instant::now();
        let deadline = started + self.config.join_timeout;
        let mut coordinator = client.find_coordinator(&self.config.group_id).await?;
        let mut conn = self.cluster_for(client).connect(coordinator).await?;
        lock(&self.state).member_epoch = 0;
        loop {
            let epoch = lock(&self.state).member_epoch;
            let out = send_heartbeat(&mut conn, &self.config, epoch).await?;
            absorb_heartbeat(&self.state, &out);
            let code = out.error_code;
            if code.is_none() {
                if !lock(&self.state).assignment.is_empty() {
                    break;
                }
            } else if [
                ErrorCode::NOT_COORDINATOR,
                ErrorCode::COORDINATOR_NOT_AVAILABLE,
                ErrorCode::COORDINATOR_LOAD_IN_PROGRESS,
            ]
            .contains(&code)
            {
                coordinator = client.find_coordinator(&self.config.group_id).await?;
                conn = self.cluster_for(client).connect(coordinator).await?;
            } else {
                return Err(MemberError::Heartbeat {
                    group: self.config.group_id.clone(),
                    code,
                    message: out.error_message,
                });
            }
            let interval = Duration::from_millis(out.heartbeat_interval_ms.clamp(100, 5000) as u64);
            let now = Instant::now();
            if now + interval > deadline {
                let s = lock(&self.state).clone();
                return Err(MemberError::JoinTimeout {
                    group: self.config.group_id.clone(),
                    member_id: self.config.member_id.clone(),
                    waited: started.elapsed(),
                    epoch: s.member_epoch,
                    heartbeats: s.heartbeats,
                });
            }
            tokio::time::sleep(interval).await;
        }
        // Topics may have been created since the cluster snapshot: refresh for routing.
        let topics: Vec<&str> = self.config.topics.iter().map(|s| s.as_str()).collect();
        client.refresh_metadata(&topics).await?;
        self.cluster = client.cluster();
        let (stop, stopped) = oneshot::channel();
        let task = tokio::spawn(heartbeat_loop(
            conn,
            self.cluster.clone(),
            self.config.clone(),
            self.state.clone(),
            stopped,
        ));
        self.heartbeat = Some(Heartbeat { stop, task });
        Ok(())
    }

    fn cluster_for(&self, client: &Client) -> Cluster {
        let mut c = client.cluster();
        c.connect = self.cluster.connect.clone();
        c
    }

    pub fn member_id(&self) -> &str {
        &self.config.member_id
    }

    pub fn group_id(&self) -> &str {
        &self.config.group_id
    }

    /// A snapshot of the heartbeat state (member epoch, assignment, errors).
    pub fn heartbeat_state(&self) -> HeartbeatState {
        lock(&self.state).clone()
    }

    /// Every assigned (topic id, partition).
    pub fn assignment(&self) -> Vec<(Uuid, i32)> {
        lock(&self.state)
            .assignment
            .iter()
            .flat_map(|a| a.partitions.iter().map(move |p| (a.topic_id, *p)))
            .collect()
    }

    /// Replace the metadata used for leader routing (after NOT_LEADER_OR_FOLLOWER, say).
    pub fn set_cluster(&mut self, cluster: Cluster) {
        self.cluster = cluster;
    }

    /// Route by `client`'s current metadata, keeping this member's connect options.
    pub fn update_routing(&mut self, client: &Client) {
        self.cluster = self.cluster_for(client);
    }

    /// Brokers this member has a share session (or a connection for one) with.
    pub fn session_brokers(&self) -> Vec<i32> {
        self.sessions.keys().copied().collect()
    }

    /// The share session's next epoch per broker (`None`: no session).
    pub fn session_epochs(&self) -> BTreeMap<i32, Option<i32>> {
        self.sessions
            .iter()
            .map(|(b, s)| (*b, s.next_epoch))
            .collect()
    }

    pub fn session_epoch(&self, broker: i32) -> Option<i32> {
        self.sessions.get(&broker).and_then(|s| s.next_epoch)
    }

    /// Override the tracked next epoch (error tests).
    pub fn set_session_epoch(&mut self, broker: i32, epoch: Option<i32>) {
        self.session(broker).next_epoch = epoch;
    }

    fn session(&mut self, broker: i32) -> &mut Session {
        self.sessions.entry(broker).or_insert(Session {
            conn: None,
            next_epoch: None,
        })
    }

    /// The leader of a partition, by topic id.
    pub fn leader_of(&self, topic_id: Uuid, partition: i32) -> Result<i32, MemberError> {
        let t = self
            .cluster
            .topic_by_id(topic_id)
            .ok_or_else(|| MemberError::UnknownTopicId(uuid_to_kafka(&topic_id)))?;
        t.leader(partition).ok_or_else(|| MemberError::NoLeader {
            topic: t.name.clone(),
            partition,
        })
    }

    fn common_leader<'a>(
        &self,
        parts: impl Iterator<Item = &'a (Uuid, i32)>,
    ) -> Result<i32, MemberError> {
        let mut leaders: Vec<i32> = Vec::new();
        for (t, p) in parts {
            let l = self.leader_of(*t, *p)?;
            if !leaders.contains(&l) {
                leaders.push(l);
            }
        }
        match leaders.as_slice() {
            [] => Err(MemberError::EmptyRequest),
            [one] => Ok(*one),
            _ => Err(MemberError::MixedLeaders(leaders)),
        }
    }

    /// The open connection to `broker`, opened if needed. A replaced connection means the broker
    /// dropped the old session (4.1+ release sessions on disconnect, §7.4), so the tracked epoch
    /// is reset.
    async fn session_conn(&mut self, broker: i32) -> Result<&mut Connection, MemberError> {
        let cluster = self.cluster.clone();
        let s = self.session(broker);
        let usable = s.conn.as_ref().is_some_and(|c| c.poisoned().is_none());
        if !usable {
            if s.conn.take().is_some() {
                s.next_epoch = None;
            }
            s.conn = Some(cluster.connect(broker).await?);
        }
        match s.conn.as_mut() {
            Some(c) => Ok(c),
            None => Err(MemberError::Client(ClientError::UnknownBroker(broker))),
        }
    }

    fn choose_epoch(
        &mut self,
        broker: i32,
        epoch: Epoch,
        has_acks: bool,
    ) -> Result<i32, MemberError> {
        match epoch {
            Epoch::Raw(e) => Ok(e),
            Epoch::Auto => match self.session(broker).next_epoch {
                Some(e) => Ok(e),
                None if has_acks => Err(MemberError::AcksNeedSession),
                None => Ok(0),
            },
        }
    }

    /// Send one ShareFetch to the leader of the listed partitions.
    pub async fn fetch(&mut self, spec: &FetchSpec) -> Result<FetchOutcome, MemberError> {
        let mut routed: Vec<(Uuid, i32)> = spec.partitions.clone();
        routed.extend(spec.acks.iter().map(|a| (a.topic_id, a.partition)));
        let broker = self.common_leader(routed.iter())?;
        let epoch = self.choose_epoch(broker, spec.epoch, !spec.acks.is_empty())?;
        self.fetch_at(broker, spec, epoch).await
    }

    /// Fetch every assigned partition (no acknowledgements, default limits).
    pub async fn fetch_assigned(&mut self) -> Result<FetchOutcome, MemberError> {
        let spec = FetchSpec::partitions(self.assignment());
        self.fetch(&spec).await
    }

    /// Send one ShareFetch to `broker` (the leader of its partitions, as the caller routed them),
    /// with the epoch `spec` asks for.
    pub async fn fetch_to(
        &mut self,
        broker: i32,
        spec: &FetchSpec,
    ) -> Result<FetchOutcome, MemberError> {
        let epoch = self.choose_epoch(broker, spec.epoch, !spec.acks.is_empty())?;
        self.fetch_at(broker, spec, epoch).await
    }

    /// Send one ShareFetch to `broker` with exactly `epoch`.
    pub async fn fetch_at(
        &mut self,
        broker: i32,
        spec: &FetchSpec,
        epoch: i32,
    ) -> Result<FetchOutcome, MemberError> {
        let req = build_share_fetch(&self.config, spec, epoch);
        let extra = Duration::from_millis(spec.limits.max_wait_ms.max(0) as u64);
        let conn = self.session_conn(broker).await?;
        let timeout = conn.timeout() + extra;
        let ex = match spec.v2 {
            None => conn.exchange_with(&req, None, Some(timeout)).await?,
            Some(v2) => {
                let req = ShareFetchV2Request {
                    v1: req,
                    acquire_mode: v2.acquire_mode,
                    is_renew_ack: v2.is_renew_ack,
                };
                let ex = conn.exchange_with(&req, Some(V2), Some(timeout)).await?;
                Exchange {
                    api_key: ex.api_key,
                    version: ex.version,
                    correlation_id: ex.correlation_id,
                    sent_at: ex.sent_at,
                    elapsed: ex.elapsed,
                    response: ex.response.0,
                }
            }
        };
        let resp = ex.response;
        let error_code = ErrorCode(resp.error_code);
        let s = self.session(broker);
        s.next_epoch = next_session_epoch(s.next_epoch, epoch, error_code);
        let mut partitions = Vec::new();
        for t in &resp.responses {
            for p in &t.partitions {
                let acquired: Vec<AcquiredRange> = p
                    .acquired_records
                    .iter()
                    .map(|a| AcquiredRange {
                        first_offset: a.first_offset,
                        last_offset: a.last_offset,
                        delivery_count: a.delivery_count,
                    })
                    .collect();
                let (records, acquired_without_data, truncated_bytes, decode_issue) =
                    decode_acquired(p.records.as_ref(), &acquired);
                partitions.push(FetchedPartition {
                    topic_id: t.topic_id,
                    partition: p.partition_index,
                    error_code: ErrorCode(p.error_code),
                    error_message: p.error_message.as_ref().map(|m| m.to_string()),
                    ack_error_code: ErrorCode(p.acknowledge_error_code),
                    ack_error_message: p.acknowledge_error_message.as_ref().map(|m| m.to_string()),
                    current_leader: (p.current_leader.leader_id, p.current_leader.leader_epoch),
                    acquired,
                    records,
                    acquired_without_data,
                    truncated_bytes,
                    decode_issue,
                });
            }
        }
        Ok(FetchOutcome {
            broker,
            version: ex.version,
            epoch_sent: epoch,
            sent_at: ex.sent_at,
            elapsed: ex.elapsed,
            throttle_time_ms: resp.throttle_time_ms,
            error_code,
            error_message: resp.error_message.as_ref().map(|m| m.to_string()),
            acquisition_lock_timeout_ms: resp.acquisition_lock_timeout_ms,
            partitions,
            next_epoch: self.session_epoch(broker),
            is_renew_ack: spec.v2.is_some_and(|v| v.is_renew_ack),
            record_limit: spec
                .v2
                .is_some_and(|v| v.acquire_mode == AcquireMode::RecordLimit),
        })
    }

    /// Send one ShareAcknowledge to the leader of the acknowledged partitions.
    pub async fn acknowledge(
        &mut self,
        acks: &[PartitionAcks],
        epoch: Epoch,
    ) -> Result<AckOutcome, MemberError> {
        let parts: Vec<(Uuid, i32)> = acks.iter().map(|a| (a.topic_id, a.partition)).collect();
        let broker = self.common_leader(parts.iter())?;
        self.acknowledge_to(broker, acks, epoch).await
    }

    /// Send one ShareAcknowledge to `broker` (as the caller routed it) with the epoch asked for.
    pub async fn acknowledge_to(
        &mut self,
        broker: i32,
        acks: &[PartitionAcks],
        epoch: Epoch,
    ) -> Result<AckOutcome, MemberError> {
        let epoch = self.resolve_epoch(broker, epoch)?;
        self.acknowledge_at(broker, acks, epoch).await
    }

    /// Send one ShareAcknowledge to `broker` with exactly `epoch` (v1).
    pub async fn acknowledge_at(
        &mut self,
        broker: i32,
        acks: &[PartitionAcks],
        epoch: i32,
    ) -> Result<AckOutcome, MemberError> {
        self.acknowledge_version(broker, acks, epoch, None).await
    }

    /// The epoch a ShareAcknowledge sends: as given, or the session's.
    fn resolve_epoch(&self, broker: i32, epoch: Epoch) -> Result<i32, MemberError> {
        match epoch {
            Epoch::Raw(e) => Ok(e),
            Epoch::Auto => self
                .session_epoch(broker)
                .ok_or(MemberError::NoSession(broker)),
        }
    }

    /// Send one ShareAcknowledge v2 to `broker` (as the caller routed it) with `IsRenewAck`.
    pub async fn acknowledge_v2_to(
        &mut self,
        broker: i32,
        acks: &[PartitionAcks],
        epoch: Epoch,
        is_renew_ack: bool,
    ) -> Result<AckOutcome, MemberError> {
        let epoch = self.resolve_epoch(broker, epoch)?;
        self.acknowledge_v2_at(broker, acks, epoch, is_renew_ack)
            .await
    }

    /// Send one ShareAcknowledge v2 to `broker` with exactly `epoch` and `IsRenewAck`.
    pub async fn acknowledge_v2_at(
        &mut self,
        broker: i32,
        acks: &[PartitionAcks],
        epoch: i32,
        is_renew_ack: bool,
    ) -> Result<AckOutcome, MemberError> {
        self.acknowledge_version(broker, acks, epoch, Some(is_renew_ack))
            .await
    }

    /// `renew`: `None` sends v1; `Some(is_renew_ack)` sends v2.
    async fn acknowledge_version(
        &mut self,
        broker: i32,
        acks: &[PartitionAcks],
        epoch: i32,
        renew: Option<bool>,
    ) -> Result<AckOutcome, MemberError> {
        let req = build_share_acknowledge(&self.config, acks, epoch);
        let conn = self.session_conn(broker).await?;
        let (ex, lock_timeout) = match renew {
            None => (conn.exchange(&req).await?, None),
            Some(is_renew_ack) => {
                let req = ShareAcknowledgeV2Request {
                    v1: req,
                    is_renew_ack,
                };
                let ex = conn.exchange_with(&req, Some(V2), None).await?;
                let lock = ex.response.acquisition_lock_timeout_ms;
                let ex = Exchange {
                    api_key: ex.api_key,
                    version: ex.version,
                    correlation_id: ex.correlation_id,
                    sent_at: ex.sent_at,
                    elapsed: ex.elapsed,
                    response: ex.response.v1,
                };
                (ex, Some(lock))
            }
        };
        let resp = ex.response;
        let error_code = ErrorCode(resp.error_code);
        let s = self.session(broker);
        s.next_epoch = next_session_epoch(s.next_epoch, epoch, error_code);
        let partitions = resp
            .responses
            .iter()
            .flat_map(|t| {
                t.partitions.iter().map(move |p| AckedPartition {
                    topic_id: t.topic_id,
                    partition: p.partition_index,
                    error_code: ErrorCode(p.error_code),
                    error_message: p.error_message.as_ref().map(|m| m.to_string()),
                })
            })
            .collect();
        Ok(AckOutcome {
            broker,
            version: ex.version,
            epoch_sent: epoch,
            sent_at: ex.sent_at,
            elapsed: ex.elapsed,
            error_code,
            error_message: resp.error_message.as_ref().map(|m| m.to_string()),
            acquisition_lock_timeout_ms: lock_timeout,
            partitions,
            next_epoch: self.session_epoch(broker),
            is_renew_ack: renew == Some(true),
        })
    }

    /// The highest ShareFetch/ShareAcknowledge version `broker` advertises (connecting if needed):
    /// 2 means RENEW and acquire modes ([`crate::v2`]).
    pub async fn share_version_on(&mut self, broker: i32) -> Result<i16, MemberError> {
        let conn = self.session_conn(broker).await?;
        Ok(conn.versions().share_rpc_version())
    }

    /// Close the share session on `broker` with a final ShareFetch (epoch −1), applying `acks`
    /// first; the broker then releases this member's remaining acquired records there (T9).
    pub async fn close_session(
        &mut self,
        broker: i32,
        acks: Vec<PartitionAcks>,
    ) -> Result<FetchOutcome, MemberError> {
        let spec = FetchSpec {
            acks,
            limits: FetchLimits {
                max_wait_ms: 0,
                min_bytes: 0,
                max_bytes: 0,
                max_records: 0,
                batch_size: 0,
            },
            ..FetchSpec::default()
        };
        self.fetch_at(broker, &spec, -1).await
    }

    /// Close every open share session (brokers with a tracked epoch).
    pub async fn close_all_sessions(&mut self) -> Result<Vec<FetchOutcome>, MemberError> {
        let open: Vec<i32> = self
            .sessions
            .iter()
            .filter(|(_, s)| s.next_epoch.is_some())
            .map(|(b, _)| *b)
            .collect();
        let mut out = Vec::new();
        for b in open {
            out.push(self.close_session(b, Vec::new()).await?);
        }
        Ok(out)
    }

    /// Close the TCP connection to `broker` without closing the share session. Kafka 4.1+ then
    /// releases the session's records as for a close (§7.4); the next request opens a new
    /// connection and, with [`Epoch::Auto`], a new session.
    pub fn drop_connection(&mut self, broker: i32) {
        if let Some(s) = self.sessions.get_mut(&broker) {
            s.conn = None;
            s.next_epoch = None;
        }
    }

    /// Leave the group: stop the heartbeat loop and send ShareGroupHeartbeat with epoch −1.
    /// Share sessions are left alone (close them first to release records).
    pub async fn leave(&mut self) -> Result<HeartbeatOutcome, MemberError> {
        let hb = self
            .heartbeat
            .take()
            .ok_or_else(|| MemberError::NotJoined(self.config.member_id.clone()))?;
        let _ = hb.stop.send(true);
        let patience = self.cluster.connect.timeout * 2;
        match tokio::time::timeout(patience, hb.task).await {
            Err(_) => Err(MemberError::HeartbeatTask(format!(
                "no leave answer within {patience:?}"
            ))),
            Ok(Err(join)) => Err(MemberError::HeartbeatTask(join.to_string())),
            Ok(Ok(None)) => Err(MemberError::HeartbeatTask(
                "the loop ended without leaving".to_string(),
            )),
            Ok(Ok(Some(result))) => {
                // A member that left holds no partitions, whatever it was last told.
                lock(&self.state).assignment.clear();
                result
            }
        }
    }

    /// Stop heartbeating without leaving (the coordinator fences the member after its session
    /// timeout).
    pub async fn stop_heartbeat(&mut self) {
        if let Some(hb) = self.heartbeat.take() {
            let _ = hb.stop.send(false);
            let _ = tokio::time::timeout(self.cluster.connect.timeout, hb.task).await;
        }
    }

    /// Close every session, then leave. Returns the leave answer.
    pub async fn close(mut self) -> Result<HeartbeatOutcome, MemberError> {
        let closed = self.close_all_sessions().await;
        let left = self.leave().await;
        closed?;
        left
    }
}

fn build_share_fetch(config: &MemberConfig, spec: &FetchSpec, epoch: i32) -> ShareFetchRequest {
    // Partitions to fetch and partitions carrying acks go into one topic/partition map.
    let mut topics: BTreeMap<Uuid, BTreeMap<i32, Vec<FetchAckBatch>>> = BTreeMap::new();
    for (t, p) in &spec.partitions {
        topics.entry(*t).or_default().entry(*p).or_default();
    }
    for a in &spec.acks {
        let batches = topics
            .entry(a.topic_id)
            .or_default()
            .entry(a.partition)
            .or_default();
        batches.extend(a.batches.iter().map(|b| {
            FetchAckBatch::default()
                .with_first_offset(b.first_offset)
                .with_last_offset(b.last_offset)
                .with_acknowledge_types(b.types.to_vec())
        }));
    }
    let mut forgotten: BTreeMap<Uuid, Vec<i32>> = BTreeMap::new();
    for (t, p) in &spec.forget {
        forgotten.entry(*t).or_default().push(*p);
    }
    ShareFetchRequest::default()
        .with_group_id(Some(GroupId(StrBytes::from_string(
            config.group_id.clone(),
        ))))
        .with_member_id(Some(StrBytes::from_string(config.member_id.clone())))
        .with_share_session_epoch(epoch)
        .with_max_wait_ms(spec.limits.max_wait_ms)
        .with_min_bytes(spec.limits.min_bytes)
        .with_max_bytes(spec.limits.max_bytes)
        .with_max_records(spec.limits.max_records)
        .with_batch_size(spec.limits.batch_size)
        .with_topics(
            topics
                .into_iter()
                .map(|(t, parts)| {
                    FetchTopic::default().with_topic_id(t).with_partitions(
                        parts
                            .into_iter()
                            .map(|(p, batches)| {
                                FetchPartition::default()
                                    .with_partition_index(p)
                                    .with_acknowledgement_batches(batches)
                            })
                            .collect(),
                    )
                })
                .collect(),
        )
        .with_forgotten_topics_data(
            forgotten
                .into_iter()
                .map(|(t, ps)| {
                    ForgottenTopic::default()
                        .with_topic_id(t)
                        .with_partitions(ps)
                })
                .collect(),
        )
}

fn build_share_acknowledge(
    config: &MemberConfig,
    acks: &[PartitionAcks],
    epoch: i32,
) -> ShareAcknowledgeRequest {
    let mut topics: BTreeMap<Uuid, BTreeMap<i32, Vec<AckReqBatch>>> = BTreeMap::new();
    for a in acks {
        topics
            .entry(a.topic_id)
            .or_default()
            .entry(a.partition)
            .or_default()
            .extend(a.batches.iter().map(|b| {
                AckReqBatch::default()
                    .with_first_offset(b.first_offset)
                    .with_last_offset(b.last_offset)
                    .with_acknowledge_types(b.types.to_vec())
            }));
    }
    ShareAcknowledgeRequest::default()
        .with_group_id(Some(GroupId(StrBytes::from_string(
            config.group_id.clone(),
        ))))
        .with_member_id(Some(StrBytes::from_string(config.member_id.clone())))
        .with_share_session_epoch(epoch)
        .with_topics(
            topics
                .into_iter()
                .map(|(t, parts)| {
                    AcknowledgeTopic::default()
                        .with_topic_id(t)
                        .with_partitions(
                            parts
                                .into_iter()
                                .map(|(p, batches)| {
                                    AcknowledgePartition::default()
                                        .with_partition_index(p)
                                        .with_acknowledgement_batches(batches)
                                })
                                .collect(),
                        )
                })
                .collect(),
        )
}

/// One ShareGroupHeartbeat with `epoch`; the subscription is sent when joining (epoch 0).
pub async fn send_heartbeat(
    conn: &mut Connection,
    config: &MemberConfig,
    epoch: i32,
) -> Result<HeartbeatOutcome, MemberError> {
    let mut req = ShareGroupHeartbeatRequest::default()
        .with_group_id(GroupId(StrBytes::from_string(config.group_id.clone())))
        .with_member_id(StrBytes::from_string(config.member_id.clone()))
        .with_member_epoch(epoch)
        .with_rack_id(config.rack_id.clone().map(StrBytes::from_string));
    if epoch == 0 {
        req.subscribed_topic_names = Some(
            config
                .topics
                .iter()
                .map(|t| TopicName(StrBytes::from_string(t.clone())))
                .collect(),
        );
    }
    let ex = conn.exchange(&req).await?;
    Ok(heartbeat_outcome(
        epoch,
        ex.sent_at,
        ex.elapsed,
        ex.response,
    ))
}

fn heartbeat_outcome(
    epoch_sent: i32,
    sent_at: SystemTime,
    elapsed: Duration,
    r: ShareGroupHeartbeatResponse,
) -> HeartbeatOutcome {
    HeartbeatOutcome {
        epoch_sent,
        sent_at,
        elapsed,
        error_code: ErrorCode(r.error_code),
        error_message: r.error_message.as_ref().map(|m| m.to_string()),
        member_epoch: r.member_epoch,
        heartbeat_interval_ms: r.heartbeat_interval_ms,
        assignment: r.assignment.map(|a| {
            a.topic_partitions
                .into_iter()
                .map(|tp| Assigned {
                    topic_id: tp.topic_id,
                    partitions: tp.partitions,
                })
                .collect()
        }),
    }
}

fn absorb_heartbeat(state: &Mutex<HeartbeatState>, out: &HeartbeatOutcome) {
    let mut s = lock(state);
    s.heartbeats += 1;
    s.last_error = out.error_code;
    s.last_error_message = out.error_message.clone();
    if out.error_code.is_none() {
        s.member_epoch = out.member_epoch;
        if out.heartbeat_interval_ms > 0 {
            s.heartbeat_interval_ms = out.heartbeat_interval_ms;
        }
        if let Some(a) = &out.assignment {
            s.assignment = a.clone();
        }
    } else if out.error_code == ErrorCode::FENCED_MEMBER_EPOCH
        || out.error_code == ErrorCode::UNKNOWN_MEMBER_ID
    {
        // What the Java client does: rejoin with epoch 0 and the subscription.
        s.member_epoch = 0;
        s.rejoins += 1;
    }
}

/// The background heartbeat: every interval, one heartbeat with the current epoch. On a stop
/// message `true` it leaves (epoch −1) and returns that answer; on `false` it just stops.
async fn heartbeat_loop(
    conn: Connection,
    cluster: Cluster,
    config: MemberConfig,
    state: Arc<Mutex<HeartbeatState>>,
    mut stop: oneshot::Receiver<bool>,
) -> Option<Result<HeartbeatOutcome, MemberError>> {
    let mut conn = Some(conn);
    loop {
        let interval_ms = lock(&state).heartbeat_interval_ms.clamp(100, 15_000);
        let leave = tokio::select! {
            msg = &mut stop => Some(msg.unwrap_or(false)),
            _ = tokio::time::sleep(Duration::from_millis(interval_ms as u64)) => None,
        };
        if leave == Some(false) {
            return None;
        }
        let c = match conn.take() {
            Some(c) if c.poisoned().is_none() => c,
            _ => match reconnect_coordinator(&cluster, &config).await {
                Ok(c) => c,
                Err(e) => {
                    if leave == Some(true) {
                        return Some(Err(e));
                    }
                    lock(&state).last_failure = Some(e.to_string());
                    continue;
                }
            },
        };
        let mut c = c;
        let epoch = if leave == Some(true) {
            -1
        } else {
            lock(&state).member_epoch
        };
        let result = send_heartbeat(&mut c, &config, epoch).await;
        if leave == Some(true) {
            if let Ok(out) = &result {
                let mut s = lock(&state);
                s.heartbeats += 1;
                s.last_error = out.error_code;
                if out.error_code.is_none() {
                    s.member_epoch = out.member_epoch;
                }
            }
            return Some(result);
        }
        match result {
            Ok(out) => {
                let moved = [
                    ErrorCode::NOT_COORDINATOR,
                    ErrorCode::COORDINATOR_NOT_AVAILABLE,
                ]
                .contains(&out.error_code);
                absorb_heartbeat(&state, &out);
                if !moved {
                    conn = Some(c);
                }
            }
            Err(e) => lock(&state).last_failure = Some(e.to_string()),
        }
    }
}

async fn reconnect_coordinator(
    cluster: &Cluster,
    config: &MemberConfig,
) -> Result<Connection, MemberError> {
    // Any broker answers FindCoordinator: try each (one may be down, restarting).
    let mut last = MemberError::Client(ClientError::UnknownBroker(-1));
    for any in cluster.brokers.keys().copied() {
        let mut c = match cluster.connect(any).await {
            Ok(c) => c,
            Err(e) => {
                last = e.into();
                continue;
            }
        };
        let node =
            match find_coordinator_on(&mut c, &config.group_id, cluster.connect.timeout).await {
                Ok(n) => n,
                Err(e) => {
                    last = e.into();
                    continue;
                }
            };
        if node == any {
            return Ok(c);
        }
        match cluster.connect(node).await {
            Ok(c) => return Ok(c),
            Err(e) => last = e.into(),
        }
    }
    Err(last)
}

// ---------------------------------------------------------------------------------------------
// Serde helpers

fn ser_uuid<S: serde::Serializer>(u: &Uuid, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&uuid_to_kafka(u))
}

fn ser_tps<S: serde::Serializer>(tps: &[(Uuid, i32)], s: S) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeSeq;
    let mut seq = s.serialize_seq(Some(tps.len()))?;
    for (t, p) in tps {
        seq.serialize_element(&(uuid_to_kafka(t), p))?;
    }
    seq.end()
}

fn ser_bytes<S: serde::Serializer>(b: &Option<Bytes>, s: S) -> Result<S::Ok, S::Error> {
    match b {
        None => s.serialize_none(),
        Some(b) => s.serialize_str(&String::from_utf8_lossy(b)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admin::encode_batch;
    use kafka_protocol::records::{Record, TimestampType};

    fn record(offset: i64, control: bool) -> Record {
        Record {
            transactional: false,
            control,
            delete_horizon: false,
            partition_leader_epoch: 0,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: TimestampType::Creation,
            offset,
            sequence: offset as i32,
            timestamp: 0,
            key: Some(Bytes::from(format!("k{offset}"))),
            value: Some(Bytes::from(format!("v{offset}"))),
            headers: Default::default(),
        }
    }

    /// Two batches: offsets 0..=2 and 3..=4, as a broker would return them.
    fn two_batches() -> (Bytes, Bytes) {
        let a: Vec<Record> = (0..3).map(|o| record(o, false)).collect();
        let b: Vec<Record> = (3..5).map(|o| record(o, false)).collect();
        (encode_batch(&a).unwrap(), encode_batch(&b).unwrap())
    }

    fn range(first: i64, last: i64, count: i16) -> AcquiredRange {
        AcquiredRange {
            first_offset: first,
            last_offset: last,
            delivery_count: count,
        }
    }

    #[test]
    fn only_acquired_offsets_are_delivered() {
        let (a, b) = two_batches();
        let mut all = a.to_vec();
        all.extend_from_slice(&b);
        let all = Bytes::from(all);
        let acquired = [range(1, 1, 2), range(3, 4, 1)];
        let (recs, without, truncated, issue) = decode_acquired(Some(&all), &acquired);
        let offs: Vec<(i64, i16)> = recs.iter().map(|r| (r.offset, r.delivery_count)).collect();
        assert_eq!(offs, vec![(1, 2), (3, 1), (4, 1)]);
        assert_eq!(recs[0].value.as_deref(), Some(&b"v1"[..]));
        assert!(without.is_empty());
        assert_eq!((truncated, issue), (0, None));
    }

    #[test]
    fn truncated_trailing_batch_is_cut_not_fatal() {
        let (a, b) = two_batches();
        let mut all = a.to_vec();
        all.extend_from_slice(&b[..b.len() - 5]);
        let all = Bytes::from(all);
        let acquired = [range(0, 4, 1)];
        let (recs, without, truncated, issue) = decode_acquired(Some(&all), &acquired);
        assert_eq!(
            recs.iter().map(|r| r.offset).collect::<Vec<_>>(),
            vec![0, 1, 2]
        );
        assert_eq!(without, vec![3, 4]);
        assert_eq!(truncated, b.len() - 5);
        assert_eq!(issue, None);
        // A tail shorter than a batch header.
        let mut short = a.to_vec();
        short.extend_from_slice(&[0, 0, 0]);
        let (recs, _, truncated, _) = decode_acquired(Some(&Bytes::from(short)), &acquired);
        assert_eq!((recs.len(), truncated), (3, 3));
    }

    #[test]
    fn corrupt_batch_is_reported_and_skipped() {
        let (a, b) = two_batches();
        let mut bad = a.to_vec();
        let last = bad.len() - 1;
        bad[last] ^= 0xff; // breaks the CRC of the first batch
        bad.extend_from_slice(&b);
        let (recs, without, _, issue) = decode_acquired(Some(&Bytes::from(bad)), &[range(0, 4, 1)]);
        assert_eq!(
            recs.iter().map(|r| r.offset).collect::<Vec<_>>(),
            vec![3, 4]
        );
        assert_eq!(without, vec![0, 1, 2]);
        assert!(issue.is_some());
    }

    #[test]
    fn control_records_count_as_without_data() {
        let recs: Vec<Record> = vec![record(0, false), record(1, true)];
        let mut batch_a = encode_batch(&recs[..1]).unwrap().to_vec();
        // A control batch of its own (control is a batch attribute).
        let ctrl = encode_batch(&[Record {
            offset: 0,
            sequence: 0,
            ..recs[1].clone()
        }])
        .unwrap();
        // Rebase the control batch to offset 1: base offset is the first 8 bytes.
        let mut ctrl = ctrl.to_vec();
        ctrl[..8].copy_from_slice(&1i64.to_be_bytes());
        batch_a.extend_from_slice(&ctrl);
        let (out, without, _, issue) =
            decode_acquired(Some(&Bytes::from(batch_a)), &[range(0, 1, 1)]);
        assert_eq!(issue, None);
        assert_eq!(out.iter().map(|r| r.offset).collect::<Vec<_>>(), vec![0]);
        assert_eq!(without, vec![1]);
    }

    #[test]
    fn no_records_means_everything_without_data() {
        let (recs, without, truncated, issue) = decode_acquired(None, &[range(5, 6, 1)]);
        assert!(recs.is_empty());
        assert_eq!(without, vec![5, 6]);
        assert_eq!((truncated, issue), (0, None));
    }

    #[test]
    fn session_epochs_follow_the_rules() {
        let ok = ErrorCode::NONE;
        assert_eq!(next_session_epoch(None, 0, ok), Some(1));
        assert_eq!(next_session_epoch(Some(1), 1, ok), Some(2));
        assert_eq!(next_session_epoch(Some(7), -1, ok), None);
        assert_eq!(next_session_epoch(Some(i32::MAX), i32::MAX, ok), Some(1));
        assert_eq!(
            next_session_epoch(Some(3), 5, ErrorCode::INVALID_SHARE_SESSION_EPOCH),
            Some(3)
        );
        assert_eq!(
            next_session_epoch(Some(3), 3, ErrorCode::SHARE_SESSION_NOT_FOUND),
            None
        );
        assert_eq!(
            next_session_epoch(None, 0, ErrorCode::INVALID_REQUEST),
            None
        );
    }

    #[test]
    fn standard_base64_member_ids_differ_from_kafka_ones() {
        for _ in 0..50 {
            let id = standard_base64_member_id();
            assert_eq!(id.len(), 22, "{id}");
            assert!(id.contains(['+', '/']), "{id}");
            assert!(id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '+' || c == '/'));
        }
    }

    #[test]
    fn member_ids_look_like_kafka_uuids() {
        let id = random_member_id();
        assert_eq!(id.len(), 22);
        assert!(id
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_'));
        assert!(crate::admin::uuid_from_kafka(&id).is_some());
        assert_ne!(random_member_id(), id);
    }

    #[test]
    fn fetch_request_merges_partitions_and_acks() {
        let t = Uuid::new_v4();
        let config = MemberConfig::new("g", vec!["t".into()]);
        let spec = FetchSpec::partitions(vec![(t, 0)]).with_acks(vec![PartitionAcks {
            topic_id: t,
            partition: 0,
            batches: vec![AckBatch::new(0, 2, AckType::Release)],
        }]);
        let req = build_share_fetch(&config, &spec, 4);
        assert_eq!(req.share_session_epoch, 4);
        assert_eq!(req.topics.len(), 1);
        assert_eq!(req.topics[0].partitions.len(), 1);
        let p = &req.topics[0].partitions[0];
        assert_eq!(p.acknowledgement_batches.len(), 1);
        assert_eq!(p.acknowledgement_batches[0].acknowledge_types, vec![2]);
        assert_eq!(req.member_id.as_deref(), Some(config.member_id.as_str()));
        assert_eq!(req.group_id.as_ref().map(|g| g.0.as_str()), Some("g"));
        // v1 encodes it.
        crate::wire::encode_request(&req, 1, 1, &StrBytes::from_static_str("x")).unwrap();
    }
}
