//! DescribeShareGroupOffsets (90), v0 and v1 (`Lag`, KIP-1226; `sharecheck_client::offsets`): the
//! start offset and lag of each requested partition (docs/semantics.md §18.2). A partition the
//! group never initialised answers −1 and −1; an unknown topic −1 and no error, as Kafka does.

use kafka_protocol::messages::RequestHeader;
use sharecheck_client::offsets::{
    DescribeOffsetsRequest, DescribeOffsetsResponse, OffsetsGroup, OffsetsPartition, OffsetsTopic,
};
use uuid::Uuid;

use crate::server::{ConnCtx, Shared};

pub fn handle(
    shared: &Shared,
    _ctx: &ConnCtx,
    _header: &RequestHeader,
    _version: i16,
    req: DescribeOffsetsRequest,
) -> DescribeOffsetsResponse {
    let st = shared.state();
    let groups = req
        .0
        .groups
        .iter()
        .map(|g| {
            let group = g.group_id.0.to_string();
            // Null topics: every topic the group has state for; here every topic there is.
            let asked: Vec<(String, Vec<i32>)> = match &g.topics {
                Some(ts) => ts
                    .iter()
                    .map(|t| (t.topic_name.0.to_string(), t.partitions.clone()))
                    .collect(),
                None => st
                    .topics
                    .values()
                    .map(|t| (t.name.clone(), (0..t.partitions.len() as i32).collect()))
                    .collect(),
            };
            let topics = asked
                .into_iter()
                .map(|(name, partitions)| {
                    let id = st.topic_id(&name);
                    OffsetsTopic {
                        topic_id: id.unwrap_or(Uuid::nil()),
                        partitions: partitions
                            .iter()
                            .map(|p| {
                                let (start, lag) = match id {
                                    Some(id) => st.describe_offsets(&shared.config, &group, id, *p),
                                    None => (-1, -1),
                                };
                                OffsetsPartition {
                                    partition_index: *p,
                                    start_offset: start,
                                    leader_epoch: 0,
                                    lag,
                                    error_code: 0,
                                    error_message: None,
                                }
                            })
                            .collect(),
                        topic_name: name,
                    }
                })
                .collect();
            OffsetsGroup {
                group_id: group,
                topics,
                error_code: 0,
                error_message: None,
            }
        })
        .collect();
    DescribeOffsetsResponse {
        throttle_time_ms: 0,
        groups,
    }
}
