//! AlterShareGroupOffsets (91): set the start offset of share partitions of a group with no members
//! (NON_EMPTY_GROUP otherwise); the share partition starts again there with no state
//! (docs/semantics.md §18.1). A group that does not exist is created, as Kafka does.

use std::time::Instant;

use kafka_protocol::messages::alter_share_group_offsets_response::{
    AlterShareGroupOffsetsResponsePartition, AlterShareGroupOffsetsResponseTopic,
};
use kafka_protocol::messages::{
    AlterShareGroupOffsetsRequest, AlterShareGroupOffsetsResponse, RequestHeader,
};
use uuid::Uuid;

use super::util::s;
use crate::mutant::BrokerMutant;
use crate::server::{ConnCtx, Shared};
use sharecheck_model::ErrorCode;

pub fn handle(
    shared: &Shared,
    _ctx: &ConnCtx,
    _header: &RequestHeader,
    _version: i16,
    req: AlterShareGroupOffsetsRequest,
) -> AlterShareGroupOffsetsResponse {
    let cfg = &shared.config;
    let mut st = shared.state();
    st.expire_members(cfg, Instant::now());
    let group = req.group_id.0.to_string();
    if group.is_empty() {
        return AlterShareGroupOffsetsResponse::default()
            .with_error_code(ErrorCode::INVALID_GROUP_ID.0)
            .with_error_message(Some(s("The group id is empty.")));
    }
    if st.group_has_members(&group) && cfg.mutant != Some(BrokerMutant::AlterWithMembers) {
        return AlterShareGroupOffsetsResponse::default()
            .with_error_code(ErrorCode::NON_EMPTY_GROUP.0)
            .with_error_message(Some(s(format!(
                "The share group {group} has active members; offsets can be altered only when it is empty."
            ))));
    }
    let responses = req
        .topics
        .iter()
        .map(|t| {
            let id = st.topic_id(t.topic_name.0.as_str());
            let partitions = t
                .partitions
                .iter()
                .map(|p| {
                    let out = AlterShareGroupOffsetsResponsePartition::default()
                        .with_partition_index(p.partition_index);
                    let result = match id {
                        Some(id) => {
                            st.alter_start(cfg, &group, id, p.partition_index, p.start_offset)
                        }
                        None => Err((
                            ErrorCode::UNKNOWN_TOPIC_OR_PARTITION.0,
                            "This server does not host this topic-partition.".to_string(),
                        )),
                    };
                    match result {
                        Ok(()) => out,
                        Err((code, message)) => out
                            .with_error_code(code)
                            .with_error_message(Some(s(message))),
                    }
                })
                .collect();
            AlterShareGroupOffsetsResponseTopic::default()
                .with_topic_name(t.topic_name.clone())
                .with_topic_id(id.unwrap_or(Uuid::nil()))
                .with_partitions(partitions)
        })
        .collect();
    AlterShareGroupOffsetsResponse::default().with_responses(responses)
}
