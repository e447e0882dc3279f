//! DescribeCluster (60): the one broker, which is also the controller.

use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use kafka_protocol::messages::{
    BrokerId, DescribeClusterRequest, DescribeClusterResponse, RequestHeader,
};

use super::util::s;
use crate::server::{ConnCtx, Shared};
use sharecheck_model::ErrorCode;

pub fn handle(
    shared: &Shared,
    _ctx: &ConnCtx,
    _header: &RequestHeader,
    version: i16,
    req: DescribeClusterRequest,
) -> DescribeClusterResponse {
    // v0 has no endpoint type: brokers.
    let endpoint_type = if version >= 1 { req.endpoint_type } else { 1 };
    let resp = DescribeClusterResponse::default()
        .with_endpoint_type(req.endpoint_type)
        .with_cluster_id(s(shared.config.cluster_id.clone()))
        .with_controller_id(BrokerId(shared.config.node_id))
        .with_cluster_authorized_operations(i32::MIN);
    // Endpoint type 1 = brokers, 2 = controllers (KIP-919); both are this node.
    if !(endpoint_type == 1 || endpoint_type == 2) {
        return resp
            .with_error_code(ErrorCode::UNSUPPORTED_VERSION.0)
            .with_error_message(Some(s(format!("unknown endpoint type {endpoint_type}"))));
    }
    resp.with_brokers(vec![DescribeClusterBroker::default()
        .with_broker_id(BrokerId(shared.config.node_id))
        .with_host(s(shared.advertised.ip().to_string()))
        .with_port(i32::from(shared.advertised.port()))])
}
