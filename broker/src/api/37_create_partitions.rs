//! CreatePartitions (37): grow a topic; the new partitions start empty and the coordinator assigns
//! them at the members' next heartbeats. One broker: explicit replica assignments are refused.

use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use kafka_protocol::messages::{CreatePartitionsRequest, CreatePartitionsResponse, RequestHeader};
use sharecheck_model::ErrorCode;
use std::collections::BTreeSet;

use super::util::s;
use crate::server::{ConnCtx, Shared};

pub fn handle(
    shared: &Shared,
    _ctx: &ConnCtx,
    _header: &RequestHeader,
    _version: i16,
    req: CreatePartitionsRequest,
) -> CreatePartitionsResponse {
    let mut st = shared.state();
    let mut seen = BTreeSet::new();
    let duplicated: BTreeSet<String> = req
        .topics
        .iter()
        .map(|t| t.name.0.to_string())
        .filter(|n| !seen.insert(n.clone()))
        .collect();
    let results = req
        .topics
        .iter()
        .map(|t| {
            let name = t.name.0.to_string();
            let result = CreatePartitionsTopicResult::default().with_name(t.name.clone());
            let outcome = if duplicated.contains(&name) {
                Err((
                    ErrorCode::INVALID_REQUEST.0,
                    "Duplicate topic in request.".to_string(),
                ))
            } else if t.assignments.as_ref().is_some_and(|a| !a.is_empty()) {
                Err((
                    ErrorCode::INVALID_REPLICA_ASSIGNMENT.0,
                    "replica assignments are not supported by the single-node reference broker"
                        .to_string(),
                ))
            } else if req.validate_only {
                match st.topics.get(&name) {
                    None => Err((
                        ErrorCode::UNKNOWN_TOPIC_OR_PARTITION.0,
                        format!("The topic '{name}' does not exist."),
                    )),
                    Some(topic) if t.count as usize <= topic.partitions.len() => Err((
                        ErrorCode::INVALID_PARTITIONS.0,
                        format!("Topic already has {} partition(s).", topic.partitions.len()),
                    )),
                    Some(_) => Ok(()),
                }
            } else {
                st.add_partitions(&name, t.count)
            };
            match outcome {
                Ok(()) => result,
                Err((code, message)) => result
                    .with_error_code(code)
                    .with_error_message(Some(s(message))),
            }
        })
        .collect();
    drop(st);
    shared.wake.notify_waiters();
    CreatePartitionsResponse::default().with_results(results)
}
