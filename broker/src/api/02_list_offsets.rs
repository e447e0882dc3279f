//! ListOffsets (2): earliest (−2, −4) is 0, latest (−1, −5) the log end, max timestamp (−3) and
//! lookups by time at record-batch granularity (the first batch whose max timestamp reaches it).

use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::{ListOffsetsRequest, ListOffsetsResponse, RequestHeader};

use crate::server::{ConnCtx, Shared};
use sharecheck_model::ErrorCode;

const LATEST: i64 = -1;
const EARLIEST: i64 = -2;
const MAX_TIMESTAMP: i64 = -3;
const EARLIEST_LOCAL: i64 = -4;
const LATEST_TIERED: i64 = -5;

pub fn handle(
    shared: &Shared,
    _ctx: &ConnCtx,
    _header: &RequestHeader,
    _version: i16,
    req: ListOffsetsRequest,
) -> ListOffsetsResponse {
    let st = shared.state();
    let topics = req
        .topics
        .iter()
        .map(|t| {
            let topic = st.topics.get(t.name.0.as_str());
            let partitions = t
                .partitions
                .iter()
                .map(|p| {
                    let base = ListOffsetsPartitionResponse::default()
                        .with_partition_index(p.partition_index)
                        .with_timestamp(-1)
                        .with_offset(-1)
                        .with_leader_epoch(0);
                    let log = topic.and_then(|t| {
                        usize::try_from(p.partition_index)
                            .ok()
                            .and_then(|i| t.partitions.get(i))
                    });
                    let Some(log) = log else {
                        return base.with_error_code(ErrorCode::UNKNOWN_TOPIC_OR_PARTITION.0);
                    };
                    match p.timestamp {
                        LATEST | LATEST_TIERED => base.with_offset(log.end()),
                        EARLIEST | EARLIEST_LOCAL => base.with_offset(log.start()),
                        MAX_TIMESTAMP => match log.max_timestamp() {
                            Some((o, ts)) => base.with_offset(o).with_timestamp(ts),
                            None => base,
                        },
                        ts if ts >= 0 => match log.offset_for_timestamp(ts) {
                            Some((o, found)) => base.with_offset(o).with_timestamp(found),
                            None => base,
                        },
                        _ => base.with_error_code(ErrorCode::INVALID_REQUEST.0),
                    }
                })
                .collect();
            ListOffsetsTopicResponse::default()
                .with_name(t.name.clone())
                .with_partitions(partitions)
        })
        .collect();
    ListOffsetsResponse::default().with_topics(topics)
}
