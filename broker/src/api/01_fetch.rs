//! Fetch (1), v4–v18: plain (non-share) reads of the log, so ordinary consumers can read a topic and
//! clients that key protocol features on Fetch work. librdkafka, for one, produces record-batch
//! (magic v2) messages only to brokers that advertise Fetch v4 or later: without this API its
//! producer falls back to magic 0 message sets, which this broker refuses.
//!
//! What is served: whole stored batches from the one holding `fetch_offset`, up to the partition's
//! and the request's byte limits (the first batch of the response always fits, as in Kafka);
//! `OFFSET_OUT_OF_RANGE` past the log end; the high watermark, last stable offset and log start
//! offset. When nothing is available the request waits up to MaxWaitMs (bounded by the idle
//! timeout), waking on produce. Fetch sessions (KIP-227) are declined: the response's session id is
//! always 0, which tells clients to keep sending full fetches; an incremental fetch of a session id
//! this broker never gave is `FETCH_SESSION_ID_NOT_FOUND`. No follower fetching, no transactions
//! (the last stable offset is the high watermark).

use std::sync::Arc;
use std::time::{Duration, Instant};

use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
use kafka_protocol::messages::{BrokerId, FetchRequest, FetchResponse};

use crate::server::{ConnCtx, Shared};
use crate::state::State;
use sharecheck_model::ErrorCode;

/// OFFSET_OUT_OF_RANGE.
const OFFSET_OUT_OF_RANGE: i16 = 1;
/// FETCH_SESSION_ID_NOT_FOUND.
const FETCH_SESSION_ID_NOT_FOUND: i16 = 70;

/// Serves one Fetch; `None` when the connection is being dropped (restart, shutdown).
pub async fn handle(
    shared: &Arc<Shared>,
    ctx: &ConnCtx,
    version: i16,
    req: FetchRequest,
) -> Option<FetchResponse> {
    if version >= 7 && req.session_id != 0 {
        return Some(
            FetchResponse::default()
                .with_error_code(FETCH_SESSION_ID_NOT_FOUND)
                .with_session_id(0),
        );
    }
    let wait = Duration::from_millis(req.max_wait_ms.max(0) as u64).min(shared.config.idle_timeout);
    let deadline = Instant::now() + wait;
    loop {
        let notified = shared.wake.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        let (resp, bytes, errors) = {
            let st = shared.state();
            read(&st, version, &req)
        };
        let enough = bytes > 0 && bytes >= req.min_bytes.max(1) as usize;
        if enough || errors || Instant::now() >= deadline {
            return Some(resp);
        }
        tokio::select! {
            _ = &mut notified => {}
            _ = tokio::time::sleep_until(deadline.into()) => {}
            _ = ctx.closed.cancelled() => return Some(resp),
            _ = ctx.generation.cancelled() => return None,
        }
    }
}

/// One pass over the requested partitions: the response, the record bytes in it, and whether some
/// partition answered with an error (which answers at once, as in Kafka).
fn read(st: &State, version: i16, req: &FetchRequest) -> (FetchResponse, usize, bool) {
    let mut bytes_left = if req.max_bytes > 0 {
        req.max_bytes as usize
    } else {
        usize::MAX
    };
    let mut total = 0usize;
    let mut errors = false;
    let responses = req
        .topics
        .iter()
        .map(|t| {
            let topic = if version >= 13 {
                st.topic_by_id(t.topic_id)
            } else {
                st.topics.get(t.topic.0.as_str())
            };
            let partitions = t
                .partitions
                .iter()
                .map(|p| {
                    let base = PartitionData::default()
                        .with_partition_index(p.partition)
                        .with_high_watermark(-1)
                        .with_last_stable_offset(-1)
                        .with_log_start_offset(-1)
                        .with_preferred_read_replica(BrokerId(-1))
                        .with_aborted_transactions(Some(Vec::new()));
                    let log = topic.and_then(|t| {
                        usize::try_from(p.partition)
                            .ok()
                            .and_then(|i| t.partitions.get(i))
                    });
                    let Some(log) = log else {
                        errors = true;
                        let c = if version >= 13 && topic.is_none() {
                            ErrorCode::UNKNOWN_TOPIC_ID.0
                        } else {
                            ErrorCode::UNKNOWN_TOPIC_OR_PARTITION.0
                        };
                        return base.with_error_code(c);
                    };
                    let base = base
                        .with_high_watermark(log.end())
                        .with_last_stable_offset(log.end())
                        .with_log_start_offset(log.start());
                    if p.fetch_offset < log.start() || p.fetch_offset > log.end() {
                        errors = true;
                        return base.with_error_code(OFFSET_OUT_OF_RANGE);
                    }
                    let mut out = bytes::BytesMut::new();
                    let mut part_left = p.partition_max_bytes.max(0) as usize;
                    if let Some(mut bi) = log.batch_index(p.fetch_offset) {
                        while let Some(b) = log.batch(bi) {
                            let size = b.bytes.len();
                            let first = total == 0 && out.is_empty();
                            if !first && (size > part_left || size > bytes_left) {
                                break;
                            }
                            out.extend_from_slice(&b.bytes);
                            part_left = part_left.saturating_sub(size);
                            bytes_left = bytes_left.saturating_sub(size);
                            bi += 1;
                        }
                    }
                    total += out.len();
                    base.with_records(Some(out.freeze()))
                })
                .collect();
            FetchableTopicResponse::default()
                .with_topic(t.topic.clone())
                .with_topic_id(t.topic_id)
                .with_partitions(partitions)
        })
        .collect();
    (
        FetchResponse::default()
            .with_session_id(0)
            .with_responses(responses),
        total,
        errors,
    )
}
