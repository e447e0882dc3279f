//! Metadata (3): one broker, leader of every partition, topic ids (v10+) for the share APIs.
//! Topics are never auto-created.

use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::{
    BrokerId, MetadataRequest, MetadataResponse, RequestHeader, TopicName,
};
use uuid::Uuid;

use super::util::s;
use crate::server::{ConnCtx, Shared};
use crate::state::Topic;
use sharecheck_model::ErrorCode;

/// "Authorized operations not requested" (`Integer.MIN_VALUE`).
const NO_OPERATIONS: i32 = i32::MIN;

fn topic_entry(t: &Topic, node: i32) -> MetadataResponseTopic {
    MetadataResponseTopic::default()
        .with_name(Some(TopicName(s(t.name.clone()))))
        .with_topic_id(t.id)
        .with_topic_authorized_operations(NO_OPERATIONS)
        .with_partitions(
            (0..t.partitions.len() as i32)
                .map(|p| {
                    MetadataResponsePartition::default()
                        .with_partition_index(p)
                        .with_leader_id(BrokerId(node))
                        .with_leader_epoch(0)
                        .with_replica_nodes(vec![BrokerId(node)])
                        .with_isr_nodes(vec![BrokerId(node)])
                })
                .collect(),
        )
}

pub fn handle(
    shared: &Shared,
    _ctx: &ConnCtx,
    _header: &RequestHeader,
    version: i16,
    req: MetadataRequest,
) -> MetadataResponse {
    let node = shared.config.node_id;
    let st = shared.state();
    let all = match &req.topics {
        None => true,
        // v0 has no null: an empty list asks for every topic.
        Some(list) => version == 0 && list.is_empty(),
    };
    let topics: Vec<MetadataResponseTopic> = match &req.topics {
        _ if all => st.topics.values().map(|t| topic_entry(t, node)).collect(),
        None => Vec::new(),
        Some(list) => list
            .iter()
            .map(|rt| {
                let by_name = rt.name.as_ref().map(|n| n.0.to_string());
                let found = match &by_name {
                    Some(n) => st.topics.get(n),
                    None => st.topic_by_id(rt.topic_id),
                };
                match found {
                    Some(t) => topic_entry(t, node),
                    None if by_name.is_none() => MetadataResponseTopic::default()
                        .with_error_code(ErrorCode::UNKNOWN_TOPIC_ID.0)
                        .with_topic_id(rt.topic_id)
                        .with_topic_authorized_operations(NO_OPERATIONS),
                    None => MetadataResponseTopic::default()
                        .with_error_code(ErrorCode::UNKNOWN_TOPIC_OR_PARTITION.0)
                        .with_name(rt.name.clone())
                        .with_topic_id(Uuid::nil())
                        .with_topic_authorized_operations(NO_OPERATIONS),
                }
            })
            .collect(),
    };
    MetadataResponse::default()
        .with_brokers(vec![MetadataResponseBroker::default()
            .with_node_id(BrokerId(node))
            .with_host(s(shared.advertised.ip().to_string()))
            .with_port(i32::from(shared.advertised.port()))])
        .with_cluster_id(Some(s(shared.config.cluster_id.clone())))
        .with_controller_id(BrokerId(node))
        .with_cluster_authorized_operations(NO_OPERATIONS)
        .with_topics(topics)
}
