//! A small Kafka admin/producer client over [`wire::Connection`](crate::wire::Connection):
//! bootstrap, metadata cache, one connection per broker id, topics, produce with controlled batch
//! boundaries, GROUP configs, FindCoordinator, ShareGroupDescribe, and what the broker is.
//!
//! Topics, configs and features are done over the wire (no Kafka command-line tools):
//! CreateTopics (19), DeleteTopics (20), IncrementalAlterConfigs (44) and DescribeConfigs (32) on
//! resource type GROUP = 32, FindCoordinator (10) with key type GROUP.

use std::collections::BTreeMap;
use std::fmt;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::alter_share_group_offsets_request::{
    AlterShareGroupOffsetsRequestPartition, AlterShareGroupOffsetsRequestTopic,
};
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::create_topics_request::CreatableTopicConfig;
use kafka_protocol::messages::delete_share_group_offsets_request::DeleteShareGroupOffsetsRequestTopic;
use kafka_protocol::messages::delete_topics_request::DeleteTopicState;
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::describe_share_group_offsets_request::{
    DescribeShareGroupOffsetsRequestGroup, DescribeShareGroupOffsetsRequestTopic,
};
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::incremental_alter_configs_request::{
    AlterConfigsResource, AlterableConfig,
};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::share_group_describe_response::DescribedGroup;
use kafka_protocol::messages::{
    AlterShareGroupOffsetsRequest, DeleteShareGroupOffsetsRequest,
    DescribeShareGroupOffsetsRequest, FetchRequest,
};
use kafka_protocol::messages::{
    ApiKey, BrokerId, CreateTopicsRequest, DeleteGroupsRequest, DeleteTopicsRequest,
    DescribeConfigsRequest, FindCoordinatorRequest, GroupId, IncrementalAlterConfigsRequest,
    ListGroupsRequest, MetadataRequest, MetadataResponse, ProduceRequest,
    ShareGroupDescribeRequest, ShareGroupHeartbeatRequest, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use serde::Serialize;
use uuid::Uuid;

use crate::offsets::{DescribeOffsetsRequest, OffsetsGroup, LAG_VERSION};
use crate::release::Release;
use crate::wire::{BrokerVersions, ConnectOptions, Connection, Observer, WireError};
use sharecheck_model::ErrorCode;

/// ConfigResource type GROUP (`ConfigResource.Type.GROUP`), for share-group configs.
pub const RESOURCE_TYPE_GROUP: i8 = 32;
/// ConfigResource type TOPIC.
pub const RESOURCE_TYPE_TOPIC: i8 = 2;
/// ConfigResource type BROKER.
pub const RESOURCE_TYPE_BROKER: i8 = 4;

/// The share-group APIs a member needs, and ShareGroupDescribe.
pub const SHARE_APIS: [ApiKey; 4] = [
    ApiKey::ShareGroupHeartbeat,
    ApiKey::ShareGroupDescribe,
    ApiKey::ShareFetch,
    ApiKey::ShareAcknowledge,
];

/// How long to sleep between polls while waiting for the cluster to settle.
const POLL: Duration = Duration::from_millis(100);

// ---------------------------------------------------------------------------------------------
// Ids

const B64URL: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// A UUID the way Kafka prints it (`Uuid.toString()`): 22 characters of URL-safe base64, no padding.
pub fn uuid_to_kafka(u: &Uuid) -> String {
    let mut out = String::with_capacity(22);
    for chunk in u.as_bytes().chunks(3) {
        let mut n = 0u32;
        for (i, &b) in chunk.iter().enumerate() {
            n |= (b as u32) << (16 - 8 * i);
        }
        for i in 0..=chunk.len() {
            out.push(B64URL[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}

/// Parse Kafka's 22-character base64url UUID form.
pub fn uuid_from_kafka(s: &str) -> Option<Uuid> {
    if s.len() != 22 {
        return None;
    }
    let mut bits = 0u32;
    let mut nbits = 0u32;
    let mut out = Vec::with_capacity(16);
    for c in s.bytes() {
        let v = B64URL.iter().position(|&a| a == c)? as u32;
        bits = (bits << 6) | v;
        nbits += 6;
        if nbits >= 8 {
            nbits -= 8;
            out.push((bits >> nbits) as u8);
            bits &= (1 << nbits) - 1;
        }
    }
    // 22 chars = 132 bits: 16 bytes and 4 leftover bits, which must be zero.
    if out.len() != 16 || bits != 0 {
        return None;
    }
    Uuid::from_slice(&out).ok()
}

fn ser_uuid<S: serde::Serializer>(u: &Uuid, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&uuid_to_kafka(u))
}

// ---------------------------------------------------------------------------------------------
// Errors

/// Why share groups cannot be used on a broker (a typed refusal, checked before any share RPC).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, thiserror::Error)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum ShareSupportError {
    /// The broker does not advertise the share APIs at all (Kafka < 4.0, or another broker).
    #[error("the broker does not advertise the share-group APIs ({}); Kafka 4.1 or later is needed", missing.join(", "))]
    ApisMissing { missing: Vec<String> },
    /// The broker advertises a share API only at versions this client cannot speak (4.0's v0).
    #[error("the broker offers {api} only at v{broker_min}-v{broker_max}, sharecheck speaks v{client_min}-v{client_max} (Kafka 4.0's early-access v0?)")]
    NoCommonVersion {
        api: String,
        broker_min: i16,
        broker_max: i16,
        client_min: i16,
        client_max: i16,
    },
    /// The APIs are advertised (Kafka always does) but the `share.version` feature is 0.
    #[error("share groups are disabled: finalized feature share.version is {level}, needs >= 1 (Kafka 4.1: set share.version=1)")]
    Disabled { level: i16 },
}

/// Check share-group usability from ApiVersions alone.
pub fn check_share_support(v: &BrokerVersions) -> Result<(), ShareSupportError> {
    let required = [
        ApiKey::ShareGroupHeartbeat,
        ApiKey::ShareFetch,
        ApiKey::ShareAcknowledge,
    ];
    let missing: Vec<String> = required
        .iter()
        .filter(|k| v.broker_range(**k).is_none())
        .map(|k| format!("{k:?}"))
        .collect();
    if !missing.is_empty() {
        return Err(ShareSupportError::ApisMissing { missing });
    }
    for k in required {
        if let Some((lo, hi)) = v.broker_range(k) {
            if v.negotiate(k).is_none() {
                let ours = k.valid_versions();
                return Err(ShareSupportError::NoCommonVersion {
                    api: format!("{k:?}"),
                    broker_min: lo,
                    broker_max: hi,
                    client_min: ours.min,
                    client_max: ours.max,
                });
            }
        }
    }
    let level = v.share_version();
    if level < 1 {
        return Err(ShareSupportError::Disabled { level });
    }
    Ok(())
}

/// A client-level failure.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error(transparent)]
    Wire(#[from] WireError),
    /// The broker answered with an error code where success was needed.
    #[error("{api} {context}: {code}{}", message.as_deref().map(|m| format!(": {m}")).unwrap_or_default())]
    Kafka {
        api: &'static str,
        context: String,
        code: ErrorCode,
        message: Option<String>,
    },
    #[error(transparent)]
    ShareGroups(#[from] ShareSupportError),
    #[error("topic {0} is not in the metadata")]
    UnknownTopic(String),
    #[error("broker {0} is not in the metadata")]
    UnknownBroker(i32),
    #[error("{what} did not happen within {waited:?}")]
    Patience { what: String, waited: Duration },
    #[error("invalid argument: {0}")]
    Invalid(String),
    #[error("malformed {api} response: {message}")]
    Malformed { api: &'static str, message: String },
}

impl ClientError {
    /// The Kafka error code, if this is one.
    pub fn kafka_code(&self) -> Option<ErrorCode> {
        match self {
            ClientError::Kafka { code, .. } => Some(*code),
            _ => None,
        }
    }

    /// True when the broker could not be reached or stopped answering.
    pub fn is_unreachable(&self) -> bool {
        matches!(self, ClientError::Wire(w) if w.is_unreachable())
    }

    /// The refusal, when the broker refused for want of a permission (an ACL): the API, the
    /// resource and the code, in words.
    pub fn denied(&self) -> Option<String> {
        match self {
            ClientError::Kafka { code, .. } if code.is_authorization() => Some(self.to_string()),
            _ => None,
        }
    }
}

fn kafka_err(
    api: &'static str,
    context: impl Into<String>,
    code: i16,
    message: &Option<StrBytes>,
) -> ClientError {
    ClientError::Kafka {
        api,
        context: context.into(),
        code: ErrorCode(code),
        message: message.as_ref().map(|m| m.to_string()),
    }
}

/// One record read back from a log ([`Client::read_log`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogRecord {
    /// Its offset.
    pub offset: i64,
    /// Key.
    pub key: Option<Bytes>,
    /// Value.
    pub value: Option<Bytes>,
    /// Headers in order.
    pub headers: Vec<(String, Option<Bytes>)>,
}

/// The answer to AlterShareGroupOffsets or DeleteShareGroupOffsets: Kafka's codes as data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OffsetsAnswer {
    /// The top-level `ErrorCode`.
    pub error: ErrorCode,
    /// The top-level `ErrorMessage`.
    pub message: Option<String>,
    /// Per partition (Alter) or for the topic as partition −1 (Delete): the `ErrorCode`.
    pub parts: Vec<(i32, ErrorCode)>,
}

// ---------------------------------------------------------------------------------------------
// Metadata view

/// One broker from Metadata.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct BrokerAddr {
    pub node_id: i32,
    pub host: String,
    pub port: i32,
    pub rack: Option<String>,
}

impl BrokerAddr {
    /// `host:port` (brackets around IPv6 literals).
    pub fn addr(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

/// One partition from Metadata.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PartitionMeta {
    pub index: i32,
    /// −1 when there is no leader.
    pub leader: i32,
    pub leader_epoch: i32,
    /// The replicas, preferred leader first.
    pub replicas: Vec<i32>,
    pub error: ErrorCode,
}

/// One topic from Metadata.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TopicMeta {
    pub name: String,
    #[serde(serialize_with = "ser_uuid")]
    pub id: Uuid,
    pub partitions: Vec<PartitionMeta>,
}

impl TopicMeta {
    pub fn leader(&self, partition: i32) -> Option<i32> {
        self.partitions
            .iter()
            .find(|p| p.index == partition)
            .map(|p| p.leader)
            .filter(|l| *l >= 0)
    }
}

/// What a member needs to open its own connections: broker addresses, topics, connect options.
#[derive(Clone, Debug)]
pub struct Cluster {
    pub brokers: BTreeMap<i32, BrokerAddr>,
    pub topics: BTreeMap<String, TopicMeta>,
    pub connect: ConnectOptions,
}

impl Cluster {
    pub fn broker(&self, node_id: i32) -> Result<&BrokerAddr, ClientError> {
        self.brokers
            .get(&node_id)
            .ok_or(ClientError::UnknownBroker(node_id))
    }

    /// The topic whose id is `id`.
    pub fn topic_by_id(&self, id: Uuid) -> Option<&TopicMeta> {
        self.topics.values().find(|t| t.id == id)
    }

    /// Open a connection to `node_id`.
    pub async fn connect(&self, node_id: i32) -> Result<Connection, ClientError> {
        let addr = self.broker(node_id)?.addr();
        Ok(Connection::connect_with(&addr, &self.connect).await?)
    }
}

// ---------------------------------------------------------------------------------------------
// Broker description

/// One share API as advertised and as it will be spoken.
#[derive(Clone, Debug, Serialize)]
pub struct ApiSupport {
    pub api: String,
    pub key: i16,
    /// (min, max) the broker advertises.
    pub broker: Option<(i16, i16)>,
    /// The version sharecheck will use.
    pub negotiated: Option<i16>,
}

/// What the broker is, as far as the share-group protocol cares.
#[derive(Clone, Debug, Serialize)]
pub struct BrokerInfo {
    pub bootstrap: String,
    pub cluster_id: Option<String>,
    pub controller_id: i32,
    pub brokers: Vec<BrokerAddr>,
    pub share_apis: Vec<ApiSupport>,
    /// Finalized `share.version` (0 when absent = disabled).
    pub share_version: i16,
    /// (min, max) `share.version` the broker software supports.
    pub share_version_supported: Option<(i16, i16)>,
    /// Finalized `metadata.version` level.
    pub metadata_version: Option<i16>,
    /// Best-effort Apache Kafka release line, derived from API versions and features.
    pub release_guess: Option<Release>,
    /// Why share groups cannot be used, or `None` when they can.
    pub share_unusable: Option<ShareSupportError>,
    pub versions: BrokerVersions,
}

// ---------------------------------------------------------------------------------------------
// Client

/// How to reach a cluster.
#[derive(Clone)]
pub struct ClientConfig {
    /// `host:port` of any broker.
    pub bootstrap: String,
    /// Deadline for each connect and each request; also the patience for cluster-settling waits
    /// (leaders of a new topic, coordinator lookup).
    pub timeout: Duration,
    pub client_id: String,
    pub observer: Option<Observer>,
    /// TLS and SASL for every connection (`--command-config`).
    pub security: std::sync::Arc<crate::security::Security>,
}

impl ClientConfig {
    pub fn new(bootstrap: impl Into<String>) -> Self {
        ClientConfig {
            bootstrap: bootstrap.into(),
            timeout: crate::wire::DEFAULT_TIMEOUT,
            client_id: crate::wire::DEFAULT_CLIENT_ID.to_string(),
            observer: None,
            security: std::sync::Arc::new(crate::security::Security::plaintext()),
        }
    }

    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    pub fn with_security(mut self, security: std::sync::Arc<crate::security::Security>) -> Self {
        self.security = security;
        self
    }

    fn connect_options(&self) -> ConnectOptions {
        ConnectOptions {
            timeout: self.timeout,
            client_id: self.client_id.clone(),
            observer: self.observer.clone(),
            security: self.security.clone(),
        }
    }
}

impl fmt::Debug for ClientConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientConfig")
            .field("bootstrap", &self.bootstrap)
            .field("timeout", &self.timeout)
            .field("client_id", &self.client_id)
            .field("security", &self.security.describe())
            .finish()
    }
}

/// One config entry from DescribeConfigs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ConfigEntry {
    pub name: String,
    pub value: Option<String>,
    pub read_only: bool,
    /// `ConfigSource` code (1 dynamic topic/group, 5 static broker, 5.. see Kafka's DescribeConfigsResponse).
    pub source: i8,
}

/// Admin + produce client with a metadata cache and one connection per broker.
pub struct Client {
    config: ClientConfig,
    bootstrap: Connection,
    conns: BTreeMap<i32, Connection>,
    brokers: BTreeMap<i32, BrokerAddr>,
    topics: BTreeMap<String, TopicMeta>,
    cluster_id: Option<String>,
    controller_id: i32,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("config", &self.config)
            .field("brokers", &self.brokers)
            .field("topics", &self.topics.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl Client {
    /// Connect to the bootstrap broker, negotiate versions and learn the brokers. A bootstrap list
    /// (`host:port,host:port`) is tried in order until one answers (a node of it may be down).
    pub async fn connect(config: ClientConfig) -> Result<Client, ClientError> {
        let opts = config.connect_options();
        let mut last = None;
        let mut bootstrap = None;
        for addr in config
            .bootstrap
            .split(',')
            .map(str::trim)
            .filter(|a| !a.is_empty())
        {
            match Connection::connect_with(addr, &opts).await {
                Ok(c) => {
                    bootstrap = Some(c);
                    break;
                }
                Err(e) => last = Some(e),
            }
        }
        let bootstrap = match (bootstrap, last) {
            (Some(c), _) => c,
            (None, Some(e)) => return Err(e.into()),
            (None, None) => {
                return Err(ClientError::Invalid(format!(
                    "no bootstrap address in '{}'",
                    config.bootstrap
                )))
            }
        };
        let mut client = Client {
            config,
            bootstrap,
            conns: BTreeMap::new(),
            brokers: BTreeMap::new(),
            topics: BTreeMap::new(),
            cluster_id: None,
            controller_id: -1,
        };
        match client.refresh_metadata(&[]).await {
            Ok(_) => Ok(client),
            // A SASL listener answers ApiVersions, then closes a client that does not authenticate
            // at its next request (Kafka's SaslServerAuthenticator).
            Err(ClientError::Wire(WireError::Closed {
                addr,
                partial: false,
            })) if client.config.security.sasl.is_none() => {
                Err(ClientError::Wire(WireError::WrongProtocol {
                    message: "closed the connection at the first request after ApiVersions, as a SASL listener does with a client that does not authenticate: if it is one, set security.protocol=SASL_PLAINTEXT or SASL_SSL and sasl.* in --command-config".to_string(),
                    addr,
                }))
            }
            Err(e) => Err(e),
        }
    }

    pub fn config(&self) -> &ClientConfig {
        &self.config
    }

    /// ApiVersions of the bootstrap broker.
    pub fn versions(&self) -> &BrokerVersions {
        self.bootstrap.versions()
    }

    /// The bootstrap connection, for requests any broker may answer.
    pub fn bootstrap(&mut self) -> &mut Connection {
        &mut self.bootstrap
    }

    /// Share-group usability of the bootstrap broker.
    pub fn check_share_support(&self) -> Result<(), ShareSupportError> {
        check_share_support(self.versions())
    }

    /// What the broker is.
    pub fn broker_info(&self) -> BrokerInfo {
        let v = self.versions().clone();
        BrokerInfo {
            bootstrap: self.config.bootstrap.clone(),
            cluster_id: self.cluster_id.clone(),
            controller_id: self.controller_id,
            brokers: self.brokers.values().cloned().collect(),
            share_apis: SHARE_APIS
                .iter()
                .map(|k| ApiSupport {
                    api: format!("{k:?}"),
                    key: *k as i16,
                    broker: v.broker_range(*k),
                    // ShareFetch/ShareAcknowledge go to v2 through crate::v2.
                    negotiated: match (k, v.broker_range(*k)) {
                        (ApiKey::ShareFetch | ApiKey::ShareAcknowledge, Some((lo, hi))) => {
                            (lo <= crate::v2::V2 && hi >= 1).then(|| hi.min(crate::v2::V2))
                        }
                        _ => v.negotiate(*k),
                    },
                })
                .collect(),
            share_version: v.share_version(),
            share_version_supported: v.supported_features.get("share.version").copied(),
            metadata_version: v.finalized_features.get("metadata.version").map(|r| r.1),
            release_guess: Release::guess(&v),
            share_unusable: check_share_support(&v).err(),
            versions: v,
        }
    }

    /// A snapshot of brokers and topics for members.
    pub fn cluster(&self) -> Cluster {
        Cluster {
            brokers: self.brokers.clone(),
            topics: self.topics.clone(),
            connect: self.config.connect_options(),
        }
    }

    pub fn topic(&self, name: &str) -> Option<&TopicMeta> {
        self.topics.get(name)
    }

    /// Metadata for `topics` (none: brokers only). Topics answered with an error are dropped from
    /// the cache.
    pub async fn refresh_metadata(&mut self, topics: &[&str]) -> Result<(), ClientError> {
        // Never create a topic by asking about it (Kafka's default for this field is true, and so
        // is `auto.create.topics.enable` on a broker left at its defaults).
        let req = MetadataRequest::default()
            .with_allow_auto_topic_creation(false)
            .with_topics(Some(
                topics
                    .iter()
                    .map(|t| {
                        MetadataRequestTopic::default()
                            .with_name(Some(TopicName(StrBytes::from_string(t.to_string()))))
                    })
                    .collect(),
            ));
        let resp = self.bootstrap.send(&req).await?;
        self.absorb_metadata(&resp);
        Ok(())
    }

    fn absorb_metadata(&mut self, resp: &MetadataResponse) {
        self.cluster_id = resp.cluster_id.as_ref().map(|c| c.to_string());
        self.controller_id = resp.controller_id.0;
        for b in &resp.brokers {
            self.brokers.insert(
                b.node_id.0,
                BrokerAddr {
                    node_id: b.node_id.0,
                    host: b.host.to_string(),
                    port: b.port,
                    rack: b.rack.as_ref().map(|r| r.to_string()),
                },
            );
        }
        for t in &resp.topics {
            let Some(name) = t.name.as_ref().map(|n| n.0.to_string()) else {
                continue;
            };
            if t.error_code != 0 {
                self.topics.remove(&name);
                continue;
            }
            let mut partitions: Vec<PartitionMeta> = t
                .partitions
                .iter()
                .map(|p| PartitionMeta {
                    index: p.partition_index,
                    leader: p.leader_id.0,
                    leader_epoch: p.leader_epoch,
                    replicas: p.replica_nodes.iter().map(|r| r.0).collect(),
                    error: ErrorCode(p.error_code),
                })
                .collect();
            partitions.sort_by_key(|p| p.index);
            self.topics.insert(
                name.clone(),
                TopicMeta {
                    name,
                    id: t.topic_id,
                    partitions,
                },
            );
        }
    }

    /// The connection to broker `node_id` (opened on first use, reopened if poisoned).
    pub async fn connection(&mut self, node_id: i32) -> Result<&mut Connection, ClientError> {
        let stale = self
            .conns
            .get(&node_id)
            .is_none_or(|c| c.poisoned().is_some());
        if stale {
            let addr = self
                .brokers
                .get(&node_id)
                .ok_or(ClientError::UnknownBroker(node_id))?
                .addr();
            let conn = Connection::connect_with(&addr, &self.config.connect_options()).await?;
            self.conns.insert(node_id, conn);
        }
        self.conns
            .get_mut(&node_id)
            .ok_or(ClientError::UnknownBroker(node_id))
    }

    /// The leader of `topic`/`partition`, refreshing metadata if it is not known.
    pub async fn leader(&mut self, topic: &str, partition: i32) -> Result<i32, ClientError> {
        if let Some(l) = self.topics.get(topic).and_then(|t| t.leader(partition)) {
            return Ok(l);
        }
        self.refresh_metadata(&[topic]).await?;
        let t = self
            .topics
            .get(topic)
            .ok_or_else(|| ClientError::UnknownTopic(topic.to_string()))?;
        t.leader(partition).ok_or_else(|| ClientError::Patience {
            what: format!("a leader for {topic}-{partition}"),
            waited: Duration::ZERO,
        })
    }

    /// Create a topic (cluster-default replication factor) and wait until every partition has a
    /// leader. Returns its topic id.
    pub async fn create_topic(&mut self, name: &str, partitions: i32) -> Result<Uuid, ClientError> {
        self.create_topic_with(name, partitions, &[]).await
    }

    /// [`create_topic`](Self::create_topic) with topic configs.
    pub async fn create_topic_with(
        &mut self,
        name: &str,
        partitions: i32,
        configs: &[(&str, &str)],
    ) -> Result<Uuid, ClientError> {
        if partitions < 1 {
            return Err(ClientError::Invalid(format!(
                "a topic needs at least one partition, not {partitions}"
            )));
        }
        let timeout_ms = duration_ms(self.config.timeout);
        let req = CreateTopicsRequest::default()
            .with_timeout_ms(timeout_ms)
            .with_topics(vec![CreatableTopic::default()
                .with_name(TopicName(StrBytes::from_string(name.to_string())))
                .with_num_partitions(partitions)
                .with_replication_factor(-1)
                .with_configs(
                    configs
                        .iter()
                        .map(|(k, v)| {
                            CreatableTopicConfig::default()
                                .with_name(StrBytes::from_string(k.to_string()))
                                .with_value(Some(StrBytes::from_string(v.to_string())))
                        })
                        .collect(),
                )]);
        let resp = self.bootstrap.send(&req).await?;
        let t = resp
            .topics
            .iter()
            .find(|t| t.name.0.as_str() == name)
            .ok_or_else(|| ClientError::Malformed {
                api: "CreateTopics",
                message: format!("no result for topic {name}"),
            })?;
        if t.error_code != 0 {
            return Err(kafka_err(
                "CreateTopics",
                format!("topic {name}"),
                t.error_code,
                &t.error_message,
            ));
        }
        let created_id = t.topic_id;
        // Wait until metadata shows every partition with a leader.
        let deadline = Instant::now() + self.config.timeout;
        loop {
            self.refresh_metadata(&[name]).await?;
            if let Some(meta) = self.topics.get(name) {
                let ready = meta.partitions.len() == partitions as usize
                    && meta
                        .partitions
                        .iter()
                        .all(|p| p.leader >= 0 && p.error.is_none());
                if ready {
                    if !created_id.is_nil() && meta.id != created_id {
                        return Err(ClientError::Malformed {
                            api: "Metadata",
                            message: format!(
                                "topic {name} has id {} in metadata but {} from CreateTopics",
                                uuid_to_kafka(&meta.id),
                                uuid_to_kafka(&created_id)
                            ),
                        });
                    }
                    return Ok(meta.id);
                }
            }
            if Instant::now() >= deadline {
                return Err(ClientError::Patience {
                    what: format!("leaders for every partition of new topic {name}"),
                    waited: self.config.timeout,
                });
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Delete a topic by name.
    pub async fn delete_topic(&mut self, name: &str) -> Result<(), ClientError> {
        let topic_name = TopicName(StrBytes::from_string(name.to_string()));
        let version = self.bootstrap.version_for::<DeleteTopicsRequest>()?;
        let mut req =
            DeleteTopicsRequest::default().with_timeout_ms(duration_ms(self.config.timeout));
        if version >= 6 {
            req.topics = vec![DeleteTopicState::default().with_name(Some(topic_name))];
        } else {
            req.topic_names = vec![topic_name];
        }
        let resp = self.bootstrap.send(&req).await?;
        for r in &resp.responses {
            if r.error_code != 0 {
                return Err(kafka_err(
                    "DeleteTopics",
                    format!("topic {name}"),
                    r.error_code,
                    &r.error_message,
                ));
            }
        }
        self.topics.remove(name);
        Ok(())
    }

    /// Grow `topic` to `total` partitions (CreatePartitions) and wait until metadata shows every
    /// one of them with a leader.
    pub async fn create_partitions(&mut self, topic: &str, total: i32) -> Result<(), ClientError> {
        use kafka_protocol::messages::create_partitions_request::CreatePartitionsTopic;
        use kafka_protocol::messages::CreatePartitionsRequest;
        let req = CreatePartitionsRequest::default()
            .with_timeout_ms(duration_ms(self.config.timeout))
            .with_topics(vec![CreatePartitionsTopic::default()
                .with_name(TopicName(StrBytes::from_string(topic.to_string())))
                .with_count(total)
                .with_assignments(None)]);
        let resp = self.bootstrap.send(&req).await?;
        for r in &resp.results {
            if r.error_code != 0 {
                return Err(kafka_err(
                    "CreatePartitions",
                    format!("topic {topic}"),
                    r.error_code,
                    &r.error_message,
                ));
            }
        }
        self.wait_for_leaders(topic, total).await
    }

    /// Wait until metadata shows `partitions` partitions of `topic`, each with a leader.
    pub async fn wait_for_leaders(
        &mut self,
        topic: &str,
        partitions: i32,
    ) -> Result<(), ClientError> {
        let deadline = Instant::now() + self.config.timeout;
        loop {
            self.refresh_metadata(&[topic]).await?;
            let ready = self.topics.get(topic).is_some_and(|m| {
                m.partitions.len() == partitions as usize
                    && m.partitions
                        .iter()
                        .all(|p| p.leader >= 0 && p.error.is_none())
            });
            if ready {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(ClientError::Patience {
                    what: format!("leaders for every partition of {topic}"),
                    waited: self.config.timeout,
                });
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Make `to` the leader of `topic`-`partition`: reorder its replicas so `to` is the preferred
    /// one (AlterPartitionReassignments), elect the preferred leader (ElectLeaders), and wait until
    /// metadata shows it. `to` must be one of the replicas.
    pub async fn move_leader(
        &mut self,
        topic: &str,
        partition: i32,
        to: i32,
    ) -> Result<(), ClientError> {
        use kafka_protocol::messages::alter_partition_reassignments_request::{
            ReassignablePartition, ReassignableTopic,
        };
        use kafka_protocol::messages::elect_leaders_request::TopicPartitions;
        use kafka_protocol::messages::{AlterPartitionReassignmentsRequest, ElectLeadersRequest};
        self.refresh_metadata(&[topic]).await?;
        let replicas = self
            .topics
            .get(topic)
            .and_then(|t| t.partitions.iter().find(|p| p.index == partition))
            .map(|p| p.replicas.clone())
            .ok_or_else(|| ClientError::UnknownTopic(format!("{topic}-{partition}")))?;
        if !replicas.contains(&to) {
            return Err(ClientError::Invalid(format!(
                "node {to} is not a replica of {topic}-{partition} (replicas {replicas:?})"
            )));
        }
        let mut order = vec![to];
        order.extend(replicas.iter().copied().filter(|r| *r != to));
        let name = TopicName(StrBytes::from_string(topic.to_string()));
        let alter = AlterPartitionReassignmentsRequest::default()
            .with_timeout_ms(duration_ms(self.config.timeout))
            .with_topics(vec![ReassignableTopic::default()
                .with_name(name.clone())
                .with_partitions(vec![ReassignablePartition::default()
                    .with_partition_index(partition)
                    .with_replicas(Some(
                        order.into_iter().map(BrokerId).collect(),
                    ))])]);
        let resp = self.bootstrap.send(&alter).await?;
        if resp.error_code != 0 {
            return Err(kafka_err(
                "AlterPartitionReassignments",
                format!("{topic}-{partition}"),
                resp.error_code,
                &resp.error_message,
            ));
        }
        for p in resp.responses.iter().flat_map(|t| t.partitions.iter()) {
            if p.error_code != 0 {
                return Err(kafka_err(
                    "AlterPartitionReassignments",
                    format!("{topic}-{partition}"),
                    p.error_code,
                    &p.error_message,
                ));
            }
        }
        let deadline = Instant::now() + self.config.timeout;
        loop {
            let elect = ElectLeadersRequest::default()
                .with_election_type(0)
                .with_timeout_ms(duration_ms(self.config.timeout))
                .with_topic_partitions(Some(vec![TopicPartitions::default()
                    .with_topic(name.clone())
                    .with_partitions(vec![partition])]));
            let resp = self.bootstrap.send(&elect).await?;
            // ELECTION_NOT_NEEDED (84): `to` leads already.
            let code = resp
                .replica_election_results
                .iter()
                .flat_map(|t| t.partition_result.iter())
                .map(|p| p.error_code)
                .find(|c| *c != 0 && *c != 84);
            self.refresh_metadata(&[topic]).await?;
            let leads = self
                .topics
                .get(topic)
                .and_then(|t| t.leader(partition))
                .is_some_and(|l| l == to);
            if leads {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(match code {
                    Some(c) => kafka_err("ElectLeaders", format!("{topic}-{partition}"), c, &None),
                    None => ClientError::Patience {
                        what: format!("node {to} to lead {topic}-{partition}"),
                        waited: self.config.timeout,
                    },
                });
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Produce to one partition, one Produce request per batch (Kafka accepts exactly one record
    /// batch per partition per request). `batches[i]` is the number of records in batch `i`;
    /// `payload(n)` gives (key, value) of the `n`-th record of this call. Records of a batch share
    /// one producer-side batch (`sequence = offset`: kafka-protocol's batch encoder splits a batch
    /// wherever the sequence does not follow the offset), so each becomes one log batch.
    /// Returns the base offset of each batch.
    pub async fn produce<F>(
        &mut self,
        topic: &str,
        partition: i32,
        batches: &[usize],
        mut payload: F,
    ) -> Result<Vec<i64>, ClientError>
    where
        F: FnMut(usize) -> (Option<Bytes>, Option<Bytes>),
    {
        if batches.contains(&0) {
            return Err(ClientError::Invalid(
                "a batch needs at least one record".to_string(),
            ));
        }
        if !self.topics.contains_key(topic) {
            self.refresh_metadata(&[topic]).await?;
        }
        let topic_id = self
            .topics
            .get(topic)
            .map(|t| t.id)
            .ok_or_else(|| ClientError::UnknownTopic(topic.to_string()))?;
        let mut n = 0usize;
        let mut base_offsets = Vec::with_capacity(batches.len());
        for &count in batches {
            let now_ms = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_millis() as i64)
                .unwrap_or(0);
            let records: Vec<Record> = (0..count)
                .map(|i| {
                    let (key, value) = payload(n + i);
                    Record {
                        transactional: false,
                        control: false,
                        delete_horizon: false,
                        partition_leader_epoch: -1,
                        producer_id: -1,
                        producer_epoch: -1,
                        timestamp_type: TimestampType::Creation,
                        offset: i as i64,
                        sequence: i as i32,
                        timestamp: now_ms,
                        key,
                        value,
                        headers: Default::default(),
                    }
                })
                .collect();
            n += count;
            let batch = encode_batch(&records)?;
            base_offsets.push(
                self.produce_batch(topic, topic_id, partition, batch)
                    .await?,
            );
        }
        Ok(base_offsets)
    }

    /// Send one already-encoded record batch; retries retriable leadership errors until the
    /// deadline.
    async fn produce_batch(
        &mut self,
        topic: &str,
        topic_id: Uuid,
        partition: i32,
        batch: Bytes,
    ) -> Result<i64, ClientError> {
        let deadline = Instant::now() + self.config.timeout;
        let timeout_ms = duration_ms(self.config.timeout);
        loop {
            let leader = self.leader(topic, partition).await?;
            let req = ProduceRequest::default()
                .with_acks(-1)
                .with_timeout_ms(timeout_ms)
                .with_topic_data(vec![TopicProduceData::default()
                    .with_name(TopicName(StrBytes::from_string(topic.to_string())))
                    .with_topic_id(topic_id)
                    .with_partition_data(vec![PartitionProduceData::default()
                        .with_index(partition)
                        .with_records(Some(batch.clone()))])]);
            let resp = self.connection(leader).await?.send(&req).await?;
            let p = resp
                .responses
                .iter()
                .flat_map(|t| t.partition_responses.iter())
                .find(|p| p.index == partition)
                .ok_or_else(|| ClientError::Malformed {
                    api: "Produce",
                    message: format!("no result for partition {partition}"),
                })?;
            let code = ErrorCode(p.error_code);
            if code.is_none() {
                return Ok(p.base_offset);
            }
            let retriable = [
                ErrorCode::NOT_LEADER_OR_FOLLOWER,
                ErrorCode::LEADER_NOT_AVAILABLE,
                ErrorCode::UNKNOWN_TOPIC_OR_PARTITION,
            ]
            .contains(&code);
            if !retriable || Instant::now() >= deadline {
                return Err(kafka_err(
                    "Produce",
                    format!("{topic}-{partition}"),
                    p.error_code,
                    &p.error_message,
                ));
            }
            self.topics.remove(topic);
            tokio::time::sleep(POLL).await;
        }
    }

    /// Set share-group configs (IncrementalAlterConfigs, resource GROUP, op SET). Works before the
    /// group exists — do it before the first heartbeat for `share.auto.offset.reset`.
    pub async fn set_group_configs(
        &mut self,
        group: &str,
        configs: &[(&str, &str)],
    ) -> Result<(), ClientError> {
        let ops: Vec<(&str, Option<&str>)> = configs.iter().map(|(k, v)| (*k, Some(*v))).collect();
        self.alter_group_configs(group, &ops).await
    }

    /// IncrementalAlterConfigs on a GROUP: `Some(v)` sets, `None` deletes (back to the broker default).
    pub async fn alter_group_configs(
        &mut self,
        group: &str,
        ops: &[(&str, Option<&str>)],
    ) -> Result<(), ClientError> {
        let req = IncrementalAlterConfigsRequest::default().with_resources(vec![
            AlterConfigsResource::default()
                .with_resource_type(RESOURCE_TYPE_GROUP)
                .with_resource_name(StrBytes::from_string(group.to_string()))
                .with_configs(
                    ops.iter()
                        .map(|(k, v)| {
                            AlterableConfig::default()
                                .with_name(StrBytes::from_string(k.to_string()))
                                .with_config_operation(if v.is_some() { 0 } else { 1 })
                                .with_value(v.map(|v| StrBytes::from_string(v.to_string())))
                        })
                        .collect(),
                ),
        ]);
        let resp = self.bootstrap.send(&req).await?;
        for r in &resp.responses {
            if r.error_code != 0 {
                return Err(kafka_err(
                    "IncrementalAlterConfigs",
                    format!("group {group}"),
                    r.error_code,
                    &r.error_message,
                ));
            }
        }
        Ok(())
    }

    /// DescribeConfigs of a GROUP: every config the broker reports for it.
    pub async fn describe_group_configs(
        &mut self,
        group: &str,
    ) -> Result<Vec<ConfigEntry>, ClientError> {
        self.describe_configs(RESOURCE_TYPE_GROUP, group).await
    }

    /// DescribeConfigs of any resource (GROUP = 32, TOPIC = 2, BROKER = 4 with the node id as name).
    pub async fn describe_configs(
        &mut self,
        resource_type: i8,
        name: &str,
    ) -> Result<Vec<ConfigEntry>, ClientError> {
        let req = DescribeConfigsRequest::default().with_resources(vec![
            DescribeConfigsResource::default()
                .with_resource_type(resource_type)
                .with_resource_name(StrBytes::from_string(name.to_string()))
                .with_configuration_keys(None),
        ]);
        let resp = self.bootstrap.send(&req).await?;
        let r = resp.results.first().ok_or_else(|| ClientError::Malformed {
            api: "DescribeConfigs",
            message: "no result".to_string(),
        })?;
        if r.error_code != 0 {
            return Err(kafka_err(
                "DescribeConfigs",
                format!("resource {resource_type}/{name}"),
                r.error_code,
                &r.error_message,
            ));
        }
        Ok(r.configs
            .iter()
            .map(|c| ConfigEntry {
                name: c.name.to_string(),
                value: c.value.as_ref().map(|v| v.to_string()),
                read_only: c.read_only,
                source: c.config_source,
            })
            .collect())
    }

    /// The group coordinator's node id (FindCoordinator, key type GROUP), retrying
    /// COORDINATOR_NOT_AVAILABLE / COORDINATOR_LOAD_IN_PROGRESS / NOT_COORDINATOR until the deadline.
    pub async fn find_coordinator(&mut self, group: &str) -> Result<i32, ClientError> {
        let node = find_coordinator_on(&mut self.bootstrap, group, self.config.timeout).await?;
        if !self.brokers.contains_key(&node) {
            self.refresh_metadata(&[]).await?;
        }
        Ok(node)
    }

    /// ShareGroupDescribe of one group, at its coordinator. The per-group error code is data in
    /// the returned [`DescribedGroup`].
    pub async fn describe_share_group(
        &mut self,
        group: &str,
    ) -> Result<DescribedGroup, ClientError> {
        let coordinator = self.find_coordinator(group).await?;
        let req = ShareGroupDescribeRequest::default()
            .with_group_ids(vec![GroupId(StrBytes::from_string(group.to_string()))]);
        let resp = self.connection(coordinator).await?.send(&req).await?;
        resp.groups
            .into_iter()
            .next()
            .ok_or_else(|| ClientError::Malformed {
                api: "ShareGroupDescribe",
                message: "no group in the response".to_string(),
            })
    }

    /// AlterShareGroupOffsets (91) of one topic's partitions, at the group's coordinator: the
    /// top-level and per-partition error codes are data.
    pub async fn alter_share_group_offsets(
        &mut self,
        group: &str,
        topic: &str,
        starts: &[(i32, i64)],
    ) -> Result<OffsetsAnswer, ClientError> {
        let coordinator = self.find_coordinator(group).await?;
        let req = AlterShareGroupOffsetsRequest::default()
            .with_group_id(GroupId(StrBytes::from_string(group.to_string())))
            .with_topics(vec![AlterShareGroupOffsetsRequestTopic::default()
                .with_topic_name(TopicName(StrBytes::from_string(topic.to_string())))
                .with_partitions(
                    starts
                        .iter()
                        .map(|(p, o)| {
                            AlterShareGroupOffsetsRequestPartition::default()
                                .with_partition_index(*p)
                                .with_start_offset(*o)
                        })
                        .collect(),
                )]);
        let resp = self.connection(coordinator).await?.send(&req).await?;
        Ok(OffsetsAnswer {
            error: ErrorCode(resp.error_code),
            message: resp.error_message.map(|m| m.to_string()),
            parts: resp
                .responses
                .iter()
                .filter(|t| t.topic_name.as_str() == topic)
                .flat_map(|t| t.partitions.iter())
                .map(|p| (p.partition_index, ErrorCode(p.error_code)))
                .collect(),
        })
    }

    /// DeleteShareGroupOffsets (92) of one topic (there is no partition list), at the group's
    /// coordinator: the top-level code, and the topic's as partition −1 of `parts`.
    pub async fn delete_share_group_offsets(
        &mut self,
        group: &str,
        topic: &str,
    ) -> Result<OffsetsAnswer, ClientError> {
        let coordinator = self.find_coordinator(group).await?;
        let req = DeleteShareGroupOffsetsRequest::default()
            .with_group_id(GroupId(StrBytes::from_string(group.to_string())))
            .with_topics(vec![DeleteShareGroupOffsetsRequestTopic::default()
                .with_topic_name(TopicName(StrBytes::from_string(
                    topic.to_string(),
                )))]);
        let resp = self.connection(coordinator).await?.send(&req).await?;
        Ok(OffsetsAnswer {
            error: ErrorCode(resp.error_code),
            message: resp.error_message.map(|m| m.to_string()),
            parts: resp
                .responses
                .iter()
                .filter(|t| t.topic_name.as_str() == topic)
                .map(|t| (-1, ErrorCode(t.error_code)))
                .collect(),
        })
    }

    /// DeleteGroups (42) of one group, at its coordinator: the group and its share-group state go.
    /// A group that is already gone (GROUP_ID_NOT_FOUND) is not an error; one that still has
    /// members is ([`ClientError::Kafka`] with NON_EMPTY_GROUP).
    pub async fn delete_group(&mut self, group: &str) -> Result<(), ClientError> {
        let coordinator = self.find_coordinator(group).await?;
        let req = DeleteGroupsRequest::default()
            .with_groups_names(vec![GroupId(StrBytes::from_string(group.to_string()))]);
        let resp = self.connection(coordinator).await?.send(&req).await?;
        let code = resp
            .results
            .iter()
            .find(|r| r.group_id.as_str() == group)
            .map(|r| r.error_code)
            .ok_or_else(|| ClientError::Malformed {
                api: "DeleteGroups",
                message: format!("no result for group {group}"),
            })?;
        match ErrorCode(code) {
            ErrorCode::NONE | ErrorCode::GROUP_ID_NOT_FOUND => Ok(()),
            _ => Err(kafka_err(
                "DeleteGroups",
                format!("group {group}"),
                code,
                &None,
            )),
        }
    }

    /// Every topic of the cluster (Metadata with a null topic list): `(name, internal)`.
    pub async fn list_topics(&mut self) -> Result<Vec<(String, bool)>, ClientError> {
        let req = MetadataRequest::default()
            .with_allow_auto_topic_creation(false)
            .with_topics(None);
        let resp = self.bootstrap.send(&req).await?;
        self.absorb_metadata(&resp);
        Ok(resp
            .topics
            .iter()
            .filter(|t| t.error_code == 0)
            .filter_map(|t| Some((t.name.as_ref()?.0.to_string(), t.is_internal)))
            .collect())
    }

    /// ListGroups (16) on every broker of the cluster (each lists the groups it coordinates):
    /// `(group id, type)` of every group, each once. The type is empty below v5.
    pub async fn list_groups(&mut self) -> Result<Vec<(String, String)>, ClientError> {
        self.refresh_metadata(&[]).await?;
        let nodes: Vec<i32> = self.brokers.keys().copied().collect();
        let mut out: BTreeMap<String, String> = BTreeMap::new();
        for node in nodes {
            let resp = self
                .connection(node)
                .await?
                .send(&ListGroupsRequest::default())
                .await?;
            if resp.error_code != 0 {
                return Err(kafka_err(
                    "ListGroups",
                    format!("broker {node}"),
                    resp.error_code,
                    &None,
                ));
            }
            for g in resp.groups {
                out.insert(g.group_id.to_string(), g.group_type.to_string());
            }
        }
        Ok(out.into_iter().collect())
    }

    /// Ends `member_id`'s membership of share group `group` on its behalf: ShareGroupHeartbeat with
    /// MemberEpoch −1 at the coordinator (a member that is already gone is not an error). The
    /// coordinator ties no member to a connection, so this is how a tool empties a group whose
    /// members were dropped without leaving, instead of waiting out their session timeout.
    pub async fn leave_share_group(
        &mut self,
        group: &str,
        member_id: &str,
    ) -> Result<(), ClientError> {
        let coordinator = self.find_coordinator(group).await?;
        let req = ShareGroupHeartbeatRequest::default()
            .with_group_id(GroupId(StrBytes::from_string(group.to_string())))
            .with_member_id(StrBytes::from_string(member_id.to_string()))
            .with_member_epoch(-1);
        let resp = self.connection(coordinator).await?.send(&req).await?;
        match ErrorCode(resp.error_code) {
            ErrorCode::NONE | ErrorCode::UNKNOWN_MEMBER_ID | ErrorCode::GROUP_ID_NOT_FOUND => {
                Ok(())
            }
            _ => Err(kafka_err(
                "ShareGroupHeartbeat",
                format!("leave of member {member_id} of group {group}"),
                resp.error_code,
                &resp.error_message,
            )),
        }
    }

    /// DescribeShareGroupOffsets (90) of one topic's partitions, at the group's coordinator, at v1
    /// (with `Lag`) when the coordinator serves it, else v0 (lag −1).
    pub async fn describe_share_group_offsets(
        &mut self,
        group: &str,
        topic: &str,
        partitions: &[i32],
    ) -> Result<(i16, OffsetsGroup), ClientError> {
        let coordinator = self.find_coordinator(group).await?;
        let req = DescribeOffsetsRequest(DescribeShareGroupOffsetsRequest::default().with_groups(
            vec![DescribeShareGroupOffsetsRequestGroup::default()
                .with_group_id(GroupId(StrBytes::from_string(group.to_string())))
                .with_topics(Some(vec![DescribeShareGroupOffsetsRequestTopic::default()
                    .with_topic_name(TopicName(StrBytes::from_string(topic.to_string())))
                    .with_partitions(partitions.to_vec())]))],
        ));
        let conn = self.connection(coordinator).await?;
        let version = match conn
            .versions()
            .broker_range(ApiKey::DescribeShareGroupOffsets)
        {
            Some((lo, hi)) if lo <= LAG_VERSION && hi >= LAG_VERSION => LAG_VERSION,
            _ => 0,
        };
        let resp = conn
            .exchange_with(&req, Some(version), None)
            .await?
            .response;
        let group = resp
            .groups
            .into_iter()
            .find(|g| g.group_id == group)
            .ok_or_else(|| ClientError::Malformed {
                api: "DescribeShareGroupOffsets",
                message: format!("no group {group} in the response"),
            })?;
        Ok((version, group))
    }

    /// Every data record of one partition of `topic` from offset `from` up to its high watermark
    /// (Fetch from the leader, READ_UNCOMMITTED, several rounds of at most 1 MiB), with its
    /// headers; for reading what a broker wrote (a dead-letter topic). The topic must be in the
    /// metadata cache ([`Client::refresh_metadata`]).
    pub async fn read_log(
        &mut self,
        topic: &str,
        partition: i32,
        from: i64,
    ) -> Result<Vec<LogRecord>, ClientError> {
        let meta = self
            .topic(topic)
            .ok_or_else(|| ClientError::Invalid(format!("topic {topic} is not in the metadata")))?;
        let topic_id = meta.id;
        let leader = self.leader(topic, partition).await?;
        let mut out: Vec<LogRecord> = Vec::new();
        let mut next = from;
        // A hostile broker cannot keep this going: every round must move forward.
        for _ in 0..1000 {
            let req = FetchRequest::default()
                .with_replica_id(BrokerId(-1))
                .with_max_wait_ms(0)
                .with_min_bytes(0)
                .with_max_bytes(1 << 20)
                .with_isolation_level(0)
                .with_session_id(0)
                .with_session_epoch(-1)
                .with_topics(vec![FetchTopic::default()
                    .with_topic(TopicName(StrBytes::from_string(topic.to_string())))
                    .with_topic_id(topic_id)
                    .with_partitions(vec![FetchPartition::default()
                        .with_partition(partition)
                        .with_fetch_offset(next)
                        .with_current_leader_epoch(-1)
                        .with_last_fetched_epoch(-1)
                        .with_log_start_offset(-1)
                        .with_partition_max_bytes(1 << 20)])]);
            let resp = self.connection(leader).await?.send(&req).await?;
            if resp.error_code != 0 {
                return Err(kafka_err(
                    "Fetch",
                    format!("{topic}-{partition}"),
                    resp.error_code,
                    &None,
                ));
            }
            let Some(p) = resp
                .responses
                .iter()
                .flat_map(|t| t.partitions.iter())
                .find(|p| p.partition_index == partition)
            else {
                return Err(ClientError::Malformed {
                    api: "Fetch",
                    message: format!("no answer for {topic}-{partition}"),
                });
            };
            if p.error_code != 0 {
                return Err(kafka_err(
                    "Fetch",
                    format!("{topic}-{partition}"),
                    p.error_code,
                    &None,
                ));
            }
            let (records, _, issue) = crate::member::decode_batches(p.records.as_ref());
            if let Some(why) = issue {
                return Err(ClientError::Malformed {
                    api: "Fetch",
                    message: format!("{topic}-{partition}: {why}"),
                });
            }
            let before = next;
            for r in records.into_iter().filter(|r| r.offset >= before) {
                next = r.offset + 1;
                out.push(LogRecord {
                    offset: r.offset,
                    key: r.key,
                    value: r.value,
                    headers: r
                        .headers
                        .into_iter()
                        .map(|(k, v)| (k.to_string(), v))
                        .collect(),
                });
            }
            if next >= p.high_watermark || next == before {
                break;
            }
        }
        Ok(out)
    }

    /// The node id of a broker by its `BrokerId`.
    pub fn broker(&self, id: BrokerId) -> Option<&BrokerAddr> {
        self.brokers.get(&id.0)
    }
}

/// FindCoordinator (key type GROUP) for `group` over `conn`, retrying the coordinator-not-ready
/// errors for up to `patience`. Returns the coordinator's node id.
pub async fn find_coordinator_on(
    conn: &mut Connection,
    group: &str,
    patience: Duration,
) -> Result<i32, ClientError> {
    let deadline = Instant::now() + patience;
    let version = conn.version_for::<FindCoordinatorRequest>()?;
    loop {
        let key = StrBytes::from_string(group.to_string());
        let mut req = FindCoordinatorRequest::default().with_key_type(0);
        if version >= 4 {
            req.coordinator_keys = vec![key];
        } else {
            req.key = key;
        }
        let resp = conn.send(&req).await?;
        let (code, message, node) = if version >= 4 {
            let c = resp
                .coordinators
                .first()
                .ok_or_else(|| ClientError::Malformed {
                    api: "FindCoordinator",
                    message: "no coordinator entry".to_string(),
                })?;
            (c.error_code, c.error_message.clone(), c.node_id.0)
        } else {
            (resp.error_code, resp.error_message.clone(), resp.node_id.0)
        };
        let kc = ErrorCode(code);
        if kc.is_none() {
            return Ok(node);
        }
        let retriable = [
            ErrorCode::COORDINATOR_NOT_AVAILABLE,
            ErrorCode::COORDINATOR_LOAD_IN_PROGRESS,
            ErrorCode::NOT_COORDINATOR,
        ]
        .contains(&kc);
        if !retriable || Instant::now() >= deadline {
            return Err(kafka_err(
                "FindCoordinator",
                format!("group {group}"),
                code,
                &message,
            ));
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Encode records as one uncompressed magic-v2 batch.
pub fn encode_batch(records: &[Record]) -> Result<Bytes, ClientError> {
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut buf,
        records,
        &RecordEncodeOptions {
            version: 2,
            compression: Compression::None,
        },
    )
    .map_err(|e| ClientError::Invalid(format!("cannot encode records: {e}")))?;
    Ok(buf.freeze())
}

fn duration_ms(d: Duration) -> i32 {
    i32::try_from(d.as_millis()).unwrap_or(i32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::release::tests::versions;
    use kafka_protocol::records::RecordBatchDecoder;

    #[test]
    fn kafka_uuid_round_trips() {
        // The cluster id scripts/kafka formats with, a real Kafka Uuid string.
        let s = "q1Sh-9_ISia_zwGINzRvyQ";
        let u = uuid_from_kafka(s).expect("valid");
        assert_eq!(uuid_to_kafka(&u), s);
        assert_eq!(uuid_to_kafka(&Uuid::nil()), "AAAAAAAAAAAAAAAAAAAAAA");
        for _ in 0..100 {
            let u = Uuid::new_v4();
            let s = uuid_to_kafka(&u);
            assert_eq!(s.len(), 22);
            assert_eq!(uuid_from_kafka(&s), Some(u));
        }
        assert_eq!(uuid_from_kafka("short"), None);
        assert_eq!(uuid_from_kafka("q1Sh-9_ISia_zwGINzRvy!"), None);
        // Non-zero leftover bits are not a canonical encoding.
        assert_eq!(uuid_from_kafka("q1Sh-9_ISia_zwGINzRvyR"), None);
    }

    #[test]
    fn records_with_sequence_equal_offset_form_one_batch() {
        let records: Vec<Record> = (0..3)
            .map(|i| Record {
                transactional: false,
                control: false,
                delete_horizon: false,
                partition_leader_epoch: -1,
                producer_id: -1,
                producer_epoch: -1,
                timestamp_type: TimestampType::Creation,
                offset: i,
                sequence: i as i32,
                timestamp: 0,
                key: None,
                value: Some(Bytes::from(format!("v{i}"))),
                headers: Default::default(),
            })
            .collect();
        let mut bytes = encode_batch(&records).unwrap();
        let info = RecordBatchDecoder::decode_batch_info(&mut bytes.clone()).unwrap();
        assert_eq!(info.len(), 1);
        assert_eq!(info[0].record_count, 3);
        let sets = RecordBatchDecoder::decode_all(&mut bytes).unwrap();
        assert_eq!(sets[0].records.len(), 3);
    }

    #[test]
    fn share_support_is_refused_with_a_reason() {
        assert_eq!(
            check_share_support(&versions(None, None, None)),
            Err(ShareSupportError::ApisMissing {
                missing: vec![
                    "ShareGroupHeartbeat".into(),
                    "ShareFetch".into(),
                    "ShareAcknowledge".into()
                ]
            })
        );
        assert!(matches!(
            check_share_support(&versions(Some(0), Some(1), None)),
            Err(ShareSupportError::NoCommonVersion { .. })
        ));
        // Advertised but disabled: the 4.1 default.
        assert_eq!(
            check_share_support(&versions(Some(1), None, None)),
            Err(ShareSupportError::Disabled { level: 0 })
        );
        assert_eq!(
            check_share_support(&versions(Some(2), Some(1), None)),
            Ok(())
        );
        let msg = ShareSupportError::Disabled { level: 0 }.to_string();
        assert!(msg.contains("share.version"), "{msg}");
    }
}
