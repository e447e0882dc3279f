//! DeleteShareGroupOffsets (92): drop a group's share-group state of whole topics (there is no
//! partition list), so the next fetch starts by `share.auto.offset.reset` (docs/semantics.md
//! §18.1). The group must exist (GROUP_ID_NOT_FOUND) and have no members (NON_EMPTY_GROUP); a topic
//! the group has no state for is UNKNOWN_TOPIC_OR_PARTITION, as Kafka answers.

use std::time::Instant;

use kafka_protocol::messages::delete_share_group_offsets_response::DeleteShareGroupOffsetsResponseTopic;
use kafka_protocol::messages::{
    DeleteShareGroupOffsetsRequest, DeleteShareGroupOffsetsResponse, RequestHeader,
};
use uuid::Uuid;

use super::util::s;
use crate::server::{ConnCtx, Shared};
use sharecheck_model::ErrorCode;

pub fn handle(
    shared: &Shared,
    _ctx: &ConnCtx,
    _header: &RequestHeader,
    _version: i16,
    req: DeleteShareGroupOffsetsRequest,
) -> DeleteShareGroupOffsetsResponse {
    let cfg = &shared.config;
    let mut st = shared.state();
    st.expire_members(cfg, Instant::now());
    let group = req.group_id.0.to_string();
    if !st.groups.contains_key(&group) {
        return DeleteShareGroupOffsetsResponse::default()
            .with_error_code(ErrorCode::GROUP_ID_NOT_FOUND.0)
            .with_error_message(Some(s(format!("Group {group} not found."))));
    }
    if st.group_has_members(&group) {
        return DeleteShareGroupOffsetsResponse::default()
            .with_error_code(ErrorCode::NON_EMPTY_GROUP.0)
            .with_error_message(Some(s(format!(
                "The share group {group} has active members."
            ))));
    }
    let responses = req
        .topics
        .iter()
        .map(|t| {
            let out = DeleteShareGroupOffsetsResponseTopic::default()
                .with_topic_name(t.topic_name.clone());
            let Some(id) = st.topic_id(t.topic_name.0.as_str()) else {
                return out
                    .with_topic_id(Uuid::nil())
                    .with_error_code(ErrorCode::UNKNOWN_TOPIC_OR_PARTITION.0)
                    .with_error_message(Some(s("This server does not host this topic.")));
            };
            let out = out.with_topic_id(id);
            if st.delete_offsets(cfg, &group, id) {
                out
            } else {
                out.with_error_code(ErrorCode::UNKNOWN_TOPIC_OR_PARTITION.0)
                    .with_error_message(Some(s("There is no offset information to delete.")))
            }
        })
        .collect();
    DeleteShareGroupOffsetsResponse::default().with_responses(responses)
}
