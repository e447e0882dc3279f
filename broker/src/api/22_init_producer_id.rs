//! InitProducerId (22): producer ids for the idempotent producer (the Java `KafkaProducer`'s
//! default). Sequence numbers are not checked. Transactions are not supported.

use kafka_protocol::messages::{
    InitProducerIdRequest, InitProducerIdResponse, ProducerId, RequestHeader,
};

use crate::server::{ConnCtx, Shared};
use sharecheck_model::ErrorCode;

pub fn handle(
    shared: &Shared,
    _ctx: &ConnCtx,
    _header: &RequestHeader,
    _version: i16,
    req: InitProducerIdRequest,
) -> InitProducerIdResponse {
    let resp = InitProducerIdResponse::default()
        .with_producer_id(ProducerId(-1))
        .with_producer_epoch(-1)
        .with_ongoing_txn_producer_id(ProducerId(-1))
        .with_ongoing_txn_producer_epoch(-1);
    if req.transactional_id.is_some() {
        // No transaction coordinator here.
        return resp.with_error_code(ErrorCode::INVALID_REQUEST.0);
    }
    let id = shared.state().next_producer_id();
    resp.with_producer_id(ProducerId(id)).with_producer_epoch(0)
}
