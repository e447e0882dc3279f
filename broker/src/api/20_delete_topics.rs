//! DeleteTopics (20): by name (all versions) or by topic id (v6+). The topic's log and share
//! partitions go with it.

use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::{
    DeleteTopicsRequest, DeleteTopicsResponse, RequestHeader, TopicName,
};
use uuid::Uuid;

use super::util::s;
use crate::server::{ConnCtx, Shared};
use sharecheck_model::ErrorCode;

pub fn handle(
    shared: &Shared,
    _ctx: &ConnCtx,
    _header: &RequestHeader,
    version: i16,
    req: DeleteTopicsRequest,
) -> DeleteTopicsResponse {
    let targets: Vec<(Option<String>, Uuid)> = if version >= 6 {
        req.topics
            .iter()
            .map(|t| (t.name.as_ref().map(|n| n.0.to_string()), t.topic_id))
            .collect()
    } else {
        req.topic_names
            .iter()
            .map(|n| (Some(n.0.to_string()), Uuid::nil()))
            .collect()
    };
    let mut st = shared.state();
    let responses = targets
        .into_iter()
        .map(|(name, id)| {
            let name = name.or_else(|| st.topic_by_id(id).map(|t| t.name.clone()));
            let result = DeletableTopicResult::default()
                .with_name(name.clone().map(|n| TopicName(s(n))))
                .with_topic_id(id);
            match name.and_then(|n| st.delete_topic(&n)) {
                Some(deleted) => result.with_topic_id(deleted),
                None if id.is_nil() => result
                    .with_error_code(ErrorCode::UNKNOWN_TOPIC_OR_PARTITION.0)
                    .with_error_message(Some(s("This server does not host this topic-partition."))),
                None => result
                    .with_error_code(ErrorCode::UNKNOWN_TOPIC_ID.0)
                    .with_error_message(Some(s("This server does not host this topic ID."))),
            }
        })
        .collect();
    drop(st);
    shared.wake.notify_waiters();
    DeleteTopicsResponse::default().with_responses(responses)
}
