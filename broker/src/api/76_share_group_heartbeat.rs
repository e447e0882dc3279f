//! ShareGroupHeartbeat (76): join (epoch 0), steady heartbeats, leave (epoch −1) and the
//! assignment (docs/semantics.md §7; the coordinator is [`crate::coordinator`]).

use std::time::Instant;

use kafka_protocol::messages::share_group_heartbeat_response::{Assignment, TopicPartitions};
use kafka_protocol::messages::{
    RequestHeader, ShareGroupHeartbeatRequest, ShareGroupHeartbeatResponse,
};

use super::util::s;
use crate::coordinator::Heartbeat;
use crate::server::{ConnCtx, Shared};

pub fn handle(
    shared: &Shared,
    ctx: &ConnCtx,
    header: &RequestHeader,
    _version: i16,
    req: ShareGroupHeartbeatRequest,
) -> ShareGroupHeartbeatResponse {
    let client_host = format!("/{}", ctx.peer.ip());
    let answer = shared.state().heartbeat(
        &shared.config,
        Heartbeat {
            group: req.group_id.0.as_str(),
            member: req.member_id.as_str(),
            epoch: req.member_epoch,
            rack: req.rack_id.as_deref(),
            subscribed: req
                .subscribed_topic_names
                .as_ref()
                .map(|v| v.iter().map(|t| t.0.to_string()).collect()),
            client_id: header.client_id.as_deref().unwrap_or(""),
            client_host: &client_host,
        },
        Instant::now(),
    );
    let mut resp = ShareGroupHeartbeatResponse::default()
        .with_error_code(answer.error)
        .with_error_message(answer.message.map(s));
    if answer.error != 0 {
        return resp;
    }
    resp = resp
        .with_member_id(Some(req.member_id.clone()))
        .with_member_epoch(answer.member_epoch)
        .with_heartbeat_interval_ms(answer.heartbeat_interval_ms);
    if let Some(a) = answer.assignment {
        resp = resp.with_assignment(Some(
            Assignment::default().with_topic_partitions(
                a.into_iter()
                    .map(|(t, ps)| {
                        TopicPartitions::default()
                            .with_topic_id(t)
                            .with_partitions(ps.into_iter().collect())
                    })
                    .collect(),
            ),
        ));
    }
    resp
}
