//! Random and mutated Kafka request frames for fuzzing the broker, shared by `tests/fuzz.rs` and
//! `examples/fuzz_rate.rs`.
//!
//! Three kinds of input: raw random bytes (with a random or a matching length prefix), a valid
//! header of a served API and version followed by a random body, and a valid request (encoded by
//! kafka-protocol) with a few mutations: byte flips, truncation, insertion, and "interesting"
//! 32-bit values (array lengths like 2^30, −2, `i32::MAX`) written over any position.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::incremental_alter_configs_request::{
    AlterConfigsResource, AlterableConfig,
};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::share_acknowledge_request::{
    AcknowledgePartition, AcknowledgeTopic, AcknowledgementBatch as AckAckBatch,
};
use kafka_protocol::messages::share_fetch_request::{
    AcknowledgementBatch, FetchPartition, FetchTopic, ForgottenTopic,
};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Encodable, Request, StrBytes};
use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use proptest::prelude::*;

fn frame<R: Request>(req: &R, version: i16, corr: i32) -> Vec<u8> {
    let mut buf = BytesMut::new();
    buf.put_i32(0);
    RequestHeader::default()
        .with_request_api_key(R::KEY)
        .with_request_api_version(version)
        .with_correlation_id(corr)
        .with_client_id(Some(StrBytes::from_static_str("fuzz")))
        .encode(&mut buf, R::header_version(version))
        .expect("header encodes");
    req.encode(&mut buf, version).expect("request encodes");
    let n = (buf.len() - 4) as i32;
    buf[..4].copy_from_slice(&n.to_be_bytes());
    buf.to_vec()
}

fn batch() -> Bytes {
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
            timestamp: 1_700_000_000_000,
            key: None,
            value: Some(Bytes::from_static(b"fuzz")),
            headers: Default::default(),
        })
        .collect();
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut buf,
        &records,
        &RecordEncodeOptions {
            version: 2,
            compression: Compression::None,
        },
    )
    .expect("batch encodes");
    buf.freeze()
}

/// Valid request frames of most served APIs (topic `fuzz` with id `tid`, group `fuzz`).
pub fn seeds(tid: uuid::Uuid) -> Vec<Vec<u8>> {
    let topic = TopicName(StrBytes::from_static_str("fuzz"));
    let group = GroupId(StrBytes::from_static_str("fuzz"));
    let member = StrBytes::from_static_str("fuzz-member-0000000000");
    let mut out = vec![
        frame(
            &ApiVersionsRequest::default()
                .with_client_software_name(StrBytes::from_static_str("fuzz"))
                .with_client_software_version(StrBytes::from_static_str("1")),
            3,
            1,
        ),
        frame(&ApiVersionsRequest::default(), 0, 2),
        frame(&MetadataRequest::default().with_topics(None), 12, 3),
        frame(
            &MetadataRequest::default().with_topics(Some(vec![
                metadata_request::MetadataRequestTopic::default().with_name(Some(topic.clone())),
            ])),
            1,
            4,
        ),
        frame(
            &CreateTopicsRequest::default().with_topics(vec![CreatableTopic::default()
                .with_name(topic.clone())
                .with_num_partitions(2)
                .with_replication_factor(1)]),
            7,
            5,
        ),
        frame(
            &ProduceRequest::default()
                .with_acks(-1)
                .with_timeout_ms(1000)
                .with_topic_data(vec![TopicProduceData::default()
                    .with_name(topic.clone())
                    .with_partition_data(vec![PartitionProduceData::default()
                        .with_index(0)
                        .with_records(Some(batch()))])]),
            9,
            6,
        ),
        frame(
            &IncrementalAlterConfigsRequest::default().with_resources(vec![
                AlterConfigsResource::default()
                    .with_resource_type(32)
                    .with_resource_name(StrBytes::from_static_str("fuzz"))
                    .with_configs(vec![AlterableConfig::default()
                        .with_name(StrBytes::from_static_str("share.auto.offset.reset"))
                        .with_value(Some(StrBytes::from_static_str("earliest")))]),
            ]),
            1,
            7,
        ),
        frame(
            &FindCoordinatorRequest::default()
                .with_coordinator_keys(vec![StrBytes::from_static_str("fuzz")]),
            6,
            8,
        ),
        frame(
            &ShareGroupHeartbeatRequest::default()
                .with_group_id(group.clone())
                .with_member_id(member.clone())
                .with_member_epoch(0)
                .with_subscribed_topic_names(Some(vec![topic.clone()])),
            1,
            9,
        ),
        frame(
            &ShareGroupDescribeRequest::default().with_group_ids(vec![group.clone()]),
            1,
            10,
        ),
        frame(
            &DescribeConfigsRequest::default().with_resources(vec![
                describe_configs_request::DescribeConfigsResource::default()
                    .with_resource_type(32)
                    .with_resource_name(StrBytes::from_static_str("fuzz")),
            ]),
            4,
            11,
        ),
    ];
    // Plain Fetch: v4 (names, not flexible) and v17 (topic ids, flexible, tagged fields: a cluster
    // id, a replica state and a partition's replica directory id).
    for (version, corr) in [(4i16, 30), (17, 31)] {
        let replica = fetch_request::ReplicaState::default()
            .with_replica_id(BrokerId(-1))
            .with_replica_epoch(-1);
        out.push(frame(
            &FetchRequest::default()
                .with_cluster_id(Some(StrBytes::from_static_str("fuzz-cluster")))
                .with_replica_state(replica)
                .with_max_wait_ms(50)
                .with_min_bytes(1)
                .with_max_bytes(1 << 20)
                .with_session_epoch(-1)
                .with_topics(vec![fetch_request::FetchTopic::default()
                    .with_topic(topic.clone())
                    .with_topic_id(tid)
                    .with_partitions(vec![fetch_request::FetchPartition::default()
                        .with_partition(0)
                        .with_fetch_offset(0)
                        .with_replica_directory_id(uuid::Uuid::from_u128(7))
                        .with_partition_max_bytes(1 << 16)])]),
            version,
            corr,
        ));
    }
    for epoch in [0, 1, -1] {
        out.push(frame(
            &ShareFetchRequest::default()
                .with_group_id(Some(group.clone()))
                .with_member_id(Some(member.clone()))
                .with_share_session_epoch(epoch)
                .with_max_wait_ms(50)
                .with_min_bytes(1)
                .with_max_bytes(1 << 20)
                .with_max_records(10)
                .with_batch_size(10)
                .with_topics(vec![FetchTopic::default()
                    .with_topic_id(tid)
                    .with_partitions(vec![FetchPartition::default()
                        .with_partition_index(0)
                        .with_acknowledgement_batches(if epoch == 0 {
                            vec![]
                        } else {
                            vec![AcknowledgementBatch::default()
                                .with_first_offset(0)
                                .with_last_offset(2)
                                .with_acknowledge_types(vec![1, 2, 3])]
                        })])])
                .with_forgotten_topics_data(vec![ForgottenTopic::default()
                    .with_topic_id(tid)
                    .with_partitions(vec![1])]),
            1,
            20 + epoch,
        ));
        out.push(frame(
            &ShareAcknowledgeRequest::default()
                .with_group_id(Some(group.clone()))
                .with_member_id(Some(member.clone()))
                .with_share_session_epoch(epoch)
                .with_topics(vec![AcknowledgeTopic::default()
                    .with_topic_id(tid)
                    .with_partitions(vec![AcknowledgePartition::default()
                        .with_partition_index(0)
                        .with_acknowledgement_batches(vec![AckAckBatch::default()
                            .with_first_offset(0)
                            .with_last_offset(0)
                            .with_acknowledge_types(vec![1])])])]),
            1,
            30 + epoch,
        ));
    }
    out
}

/// The served (API key, version) pairs, for random bodies behind a valid header.
fn served() -> Vec<(i16, i16)> {
    let keys = [0i16, 2, 3, 10, 18, 19, 20, 22, 32, 44, 60, 76, 77, 78, 79];
    keys.iter()
        .flat_map(|k| {
            let r = ApiKey::try_from(*k)
                .map(|a| a.valid_versions())
                .map(|v| (v.min, v.max))
                .unwrap_or((0, 0));
            (r.0..=r.1).map(move |v| (*k, v))
        })
        .collect()
}

/// 32-bit values that break length fields.
const INTERESTING: [i32; 9] = [0, 1, -1, -2, 127, 0x7fff, 1 << 20, 1 << 30, i32::MAX];

#[derive(Clone, Debug)]
enum Mutation {
    Flip(usize, u8),
    Truncate(usize),
    Insert(usize, Vec<u8>),
    Int(usize, i32),
}

fn apply(mut f: Vec<u8>, muts: &[Mutation], fix_length: bool) -> Vec<u8> {
    for m in muts {
        let len = f.len().max(1);
        match m {
            Mutation::Flip(i, x) => {
                let i = 4 + i % len.saturating_sub(4).max(1);
                if let Some(b) = f.get_mut(i) {
                    *b ^= x | 1;
                }
            }
            Mutation::Truncate(i) => f.truncate(4 + i % len),
            Mutation::Insert(i, bytes) => {
                let i = (4 + i % len).min(f.len());
                f.splice(i..i, bytes.iter().copied());
            }
            Mutation::Int(i, v) => {
                let i = 4 + i % len;
                if i + 4 <= f.len() {
                    f[i..i + 4].copy_from_slice(&v.to_be_bytes());
                }
            }
        }
    }
    if fix_length && f.len() >= 4 {
        let n = (f.len() - 4) as i32;
        f[..4].copy_from_slice(&n.to_be_bytes());
    }
    f
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(i, x)| Mutation::Flip(i, x)),
        any::<usize>().prop_map(Mutation::Truncate),
        (
            any::<usize>(),
            proptest::collection::vec(any::<u8>(), 1..16)
        )
            .prop_map(|(i, b)| Mutation::Insert(i, b)),
        (
            any::<usize>(),
            proptest::sample::select(INTERESTING.to_vec())
        )
            .prop_map(|(i, v)| Mutation::Int(i, v)),
    ]
}

/// One fuzz input: the bytes to write on a fresh connection.
pub fn input(tid: uuid::Uuid) -> impl Strategy<Value = Vec<u8>> {
    let seeds = seeds(tid);
    let served = served();
    prop_oneof![
        // Raw bytes, random length prefix included.
        proptest::collection::vec(any::<u8>(), 0..256),
        // Raw bytes behind a matching length prefix.
        proptest::collection::vec(any::<u8>(), 0..256).prop_map(|b| {
            let mut f = (b.len() as i32).to_be_bytes().to_vec();
            f.extend(b);
            f
        }),
        // A valid header of a served API, then random bytes.
        (
            proptest::sample::select(served),
            any::<i32>(),
            proptest::collection::vec(any::<u8>(), 0..128)
        )
            .prop_map(|((k, v), corr, body)| {
                let mut f = Vec::new();
                f.extend_from_slice(&0i32.to_be_bytes());
                f.extend_from_slice(&k.to_be_bytes());
                f.extend_from_slice(&v.to_be_bytes());
                f.extend_from_slice(&corr.to_be_bytes());
                f.extend_from_slice(&(-1i16).to_be_bytes()); // null client id
                if (k == 18 && v >= 3)
                    || (k != 18
                        && ApiKey::try_from(k)
                            .map(|a| a.request_header_version(v) >= 2)
                            .unwrap_or(false))
                {
                    f.push(0); // no header tagged fields
                }
                f.extend(body);
                let n = (f.len() - 4) as i32;
                f[..4].copy_from_slice(&n.to_be_bytes());
                f
            }),
        // A valid request, mutated.
        (
            proptest::sample::select(seeds),
            proptest::collection::vec(mutation(), 1..4),
            prop::bool::weighted(0.9)
        )
            .prop_map(|(f, muts, fix)| apply(f, &muts, fix)),
    ]
}

/// Creates topic `fuzz` (2 partitions) with 3 records in partition 0 and returns its id, so
/// seeded requests reach share partitions.
pub async fn prepare(bootstrap: &str) -> uuid::Uuid {
    use sharecheck_client::admin::{Client, ClientConfig};
    let mut c = Client::connect(ClientConfig::new(bootstrap).with_timeout(Duration::from_secs(10)))
        .await
        .expect("client");
    let tid = c.create_topic("fuzz", 2).await.expect("topic");
    c.set_group_configs("fuzz", &[("share.auto.offset.reset", "earliest")])
        .await
        .expect("configs");
    c.produce("fuzz", 0, &[3], |_| (None, Some(Bytes::from_static(b"x"))))
        .await
        .expect("produce");
    tid
}

/// Writes `bytes` on a fresh connection and reads whatever comes back for a moment; never fails
/// (the broker may close the connection, which is a legal answer).
pub fn send(addr: SocketAddr, bytes: &[u8], read_for: Duration) -> usize {
    let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_secs(2)) else {
        return 0;
    };
    let _ = s.set_write_timeout(Some(Duration::from_secs(2)));
    let _ = s.set_read_timeout(Some(read_for));
    if s.write_all(bytes).is_err() {
        return 0;
    }
    let mut buf = [0u8; 4096];
    let mut got = 0;
    while let Ok(n) = s.read(&mut buf) {
        if n == 0 {
            break;
        }
        got += n;
    }
    got
}

/// A valid ApiVersions v3 round trip: true when the broker answered it.
pub fn api_versions_answered(addr: SocketAddr) -> bool {
    let req = frame(
        &ApiVersionsRequest::default()
            .with_client_software_name(StrBytes::from_static_str("fuzz"))
            .with_client_software_version(StrBytes::from_static_str("1")),
        3,
        77,
    );
    let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_secs(2)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    if s.write_all(&req).is_err() {
        return false;
    }
    let mut len = [0u8; 4];
    if s.read_exact(&mut len).is_err() {
        return false;
    }
    let n = i32::from_be_bytes(len);
    if !(8..1 << 20).contains(&n) {
        return false;
    }
    let mut body = vec![0u8; n as usize];
    if s.read_exact(&mut body).is_err() {
        return false;
    }
    // Correlation id, then (header v0) the error code 0.
    body[..4] == 77i32.to_be_bytes() && body[4..6] == [0, 0]
}
