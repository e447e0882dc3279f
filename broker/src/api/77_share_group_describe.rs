//! ShareGroupDescribe (77): state, epochs, assignor and members with their assignments.

use std::time::Instant;

use kafka_protocol::messages::share_group_describe_response::{
    Assignment, DescribedGroup, Member, TopicPartitions,
};
use kafka_protocol::messages::{
    RequestHeader, ShareGroupDescribeRequest, ShareGroupDescribeResponse, TopicName,
};

use super::util::s;
use crate::server::{ConnCtx, Shared};
use sharecheck_model::ErrorCode;

pub fn handle(
    shared: &Shared,
    _ctx: &ConnCtx,
    _header: &RequestHeader,
    _version: i16,
    req: ShareGroupDescribeRequest,
) -> ShareGroupDescribeResponse {
    let mut st = shared.state();
    st.expire_members(&shared.config, Instant::now());
    let groups = req
        .group_ids
        .iter()
        .map(|g| {
            let out = DescribedGroup::default()
                .with_group_id(g.clone())
                .with_authorized_operations(i32::MIN);
            let Some(group) = st.groups.get(g.0.as_str()) else {
                return out
                    .with_error_code(ErrorCode::GROUP_ID_NOT_FOUND.0)
                    .with_error_message(Some(s(format!("Group {} not found.", g.0))));
            };
            let members = group
                .members
                .iter()
                .map(|(id, m)| {
                    let mut subscribed: Vec<TopicName> = m
                        .subscribed
                        .iter()
                        .map(|t| TopicName(s(t.clone())))
                        .collect();
                    subscribed.sort_by(|a, b| a.0.cmp(&b.0));
                    Member::default()
                        .with_member_id(s(id.clone()))
                        .with_rack_id(m.rack.clone().map(s))
                        .with_member_epoch(m.epoch)
                        .with_client_id(s(m.client_id.clone()))
                        .with_client_host(s(m.client_host.clone()))
                        .with_subscribed_topic_names(subscribed)
                        .with_assignment(
                            Assignment::default().with_topic_partitions(
                                m.assigned
                                    .iter()
                                    .map(|(t, ps)| {
                                        let name = st
                                            .topic_by_id(*t)
                                            .map(|x| x.name.clone())
                                            .unwrap_or_default();
                                        TopicPartitions::default()
                                            .with_topic_id(*t)
                                            .with_topic_name(TopicName(s(name)))
                                            .with_partitions(ps.iter().copied().collect())
                                    })
                                    .collect(),
                            ),
                        )
                })
                .collect();
            out.with_group_state(s(if group.members.is_empty() {
                "Empty"
            } else {
                "Stable"
            }))
            .with_group_epoch(group.epoch)
            .with_assignment_epoch(group.assignment_epoch)
            .with_assignor_name(s("simple"))
            .with_members(members)
        })
        .collect();
    ShareGroupDescribeResponse::default().with_groups(groups)
}
