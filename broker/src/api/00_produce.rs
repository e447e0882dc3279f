//! Produce (0): one magic-v2 record batch per partition into the in-memory log (by topic name up
//! to v12, by topic id from v13). New records join every share partition of the topic partition
//! and wake long-polling ShareFetches. `acks=0` gets no response, as in Kafka.

use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::{ProduceRequest, ProduceResponse, RequestHeader, TopicName};
use uuid::Uuid;

use super::util::s;
use crate::log::CORRUPT_MESSAGE;
use crate::server::{ConnCtx, Shared};
use sharecheck_model::ErrorCode;

pub fn handle(
    shared: &Shared,
    _ctx: &ConnCtx,
    _header: &RequestHeader,
    version: i16,
    req: ProduceRequest,
) -> Option<ProduceResponse> {
    let mut appended = false;
    let mut responses = Vec::with_capacity(req.topic_data.len());
    {
        let mut st = shared.state();
        for t in &req.topic_data {
            let topic_id: Option<Uuid> = if version >= 13 {
                st.topic_by_id(t.topic_id).map(|x| x.id)
            } else {
                st.topics.get(t.name.0.as_str()).map(|x| x.id)
            };
            let unknown_code = if version >= 13 {
                ErrorCode::UNKNOWN_TOPIC_ID.0
            } else {
                ErrorCode::UNKNOWN_TOPIC_OR_PARTITION.0
            };
            let partitions = t
                .partition_data
                .iter()
                .map(|p| {
                    let base = PartitionProduceResponse::default()
                        .with_index(p.index)
                        .with_base_offset(-1)
                        .with_log_append_time_ms(-1)
                        .with_log_start_offset(0);
                    let Some(tid) = topic_id else {
                        return base
                            .with_error_code(unknown_code)
                            .with_error_message(Some(s("This server does not host this topic.")));
                    };
                    let Some(records) = p.records.as_ref() else {
                        return base
                            .with_error_code(CORRUPT_MESSAGE)
                            .with_error_message(Some(s("no records")));
                    };
                    match st.produce(tid, p.index, records) {
                        Ok(offset) => {
                            appended = true;
                            base.with_base_offset(offset)
                        }
                        Err(e) => base
                            .with_error_code(e.code)
                            .with_error_message(Some(s(e.message))),
                    }
                })
                .collect();
            let mut r = TopicProduceResponse::default().with_partition_responses(partitions);
            if version >= 13 {
                r = r.with_topic_id(t.topic_id);
            } else {
                r = r.with_name(TopicName(t.name.0.clone()));
            }
            responses.push(r);
        }
    }
    if appended {
        shared.wake.notify_waiters();
    }
    (req.acks != 0).then(|| ProduceResponse::default().with_responses(responses))
}
