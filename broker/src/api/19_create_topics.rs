//! CreateTopics (19): in-memory topics with a fresh topic id. One broker: replication factor −1
//! or 1; explicit replica assignments are refused; topic configs are kept (only
//! `errors.deadletterqueue.group.enable` means anything here, docs/semantics.md §19).

use kafka_protocol::messages::create_topics_response::CreatableTopicResult;
use kafka_protocol::messages::{CreateTopicsRequest, CreateTopicsResponse, RequestHeader};
use sharecheck_model::ErrorCode;

use super::util::s;
use crate::server::{ConnCtx, Shared};
use crate::state::valid_topic_name;

pub fn handle(
    shared: &Shared,
    _ctx: &ConnCtx,
    _header: &RequestHeader,
    _version: i16,
    req: CreateTopicsRequest,
) -> CreateTopicsResponse {
    let mut st = shared.state();
    let topics = req
        .topics
        .iter()
        .map(|t| {
            let name = t.name.0.to_string();
            let result = CreatableTopicResult::default()
                .with_name(t.name.clone())
                .with_num_partitions(-1)
                .with_replication_factor(-1);
            let fail = |c: i16, m: String| {
                result
                    .clone()
                    .with_error_code(c)
                    .with_error_message(Some(s(m)))
            };
            if !t.assignments.is_empty() {
                return fail(
                    ErrorCode::INVALID_REQUEST.0,
                    "replica assignments are not supported by the single-node reference broker"
                        .to_string(),
                );
            }
            if !(t.replication_factor == -1 || t.replication_factor == 1) {
                return fail(
                    ErrorCode::INVALID_REPLICATION_FACTOR.0,
                    format!(
                        "Replication factor {} is larger than the number of brokers (1).",
                        t.replication_factor
                    ),
                );
            }
            let partitions = if t.num_partitions == -1 {
                1
            } else {
                t.num_partitions
            };
            if req.validate_only {
                if let Err(m) = valid_topic_name(&name) {
                    return fail(ErrorCode::INVALID_TOPIC_EXCEPTION.0, m.0);
                }
                if st.topics.contains_key(&name) {
                    return fail(
                        ErrorCode::TOPIC_ALREADY_EXISTS.0,
                        format!("Topic '{name}' already exists."),
                    );
                }
                return result
                    .with_num_partitions(partitions)
                    .with_replication_factor(1);
            }
            match st.create_topic(&name, partitions) {
                Ok(id) => {
                    if let Some(topic) = st.topics.get_mut(&name) {
                        topic.configs = t
                            .configs
                            .iter()
                            .filter_map(|c| {
                                Some((c.name.to_string(), c.value.as_ref()?.to_string()))
                            })
                            .collect();
                    }
                    result
                        .with_topic_id(id)
                        .with_num_partitions(partitions)
                        .with_replication_factor(1)
                        .with_configs(Some(Vec::new()))
                }
                Err((c, m)) => fail(c, m),
            }
        })
        .collect();
    CreateTopicsResponse::default().with_topics(topics)
}
