//! ShareAcknowledge (79), v1: acknowledgements outside a fetch, on the share session's epoch
//! counter (which it shares with ShareFetch); it can never open a session (epoch 0 → 123) and
//! epoch −1 closes the session after applying the acknowledgements (§6.1). The acknowledged
//! partitions need not be in the session (`SPM.acknowledge@4.2:290`).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use kafka_protocol::messages::share_acknowledge_response::{
    PartitionData, ShareAcknowledgeTopicResponse,
};
use kafka_protocol::messages::{ShareAcknowledgeRequest, ShareAcknowledgeResponse};
use uuid::Uuid;

use super::session::{self, Step};
use super::util::s;
use crate::mutant::BrokerMutant;
use crate::server::{ConnCtx, Shared};

fn top_error(c: i16, message: String) -> ShareAcknowledgeResponse {
    ShareAcknowledgeResponse::default()
        .with_error_code(c)
        .with_error_message(Some(s(message)))
}

/// Serves one ShareAcknowledge (v1, or v2 with `is_renew_ack`). The answer's
/// `AcquisitionLockTimeoutMs` (v2) is the second value: the group's lock duration.
pub fn handle(
    shared: &Arc<Shared>,
    ctx: &ConnCtx,
    _version: i16,
    req: ShareAcknowledgeRequest,
    is_renew_ack: bool,
) -> (ShareAcknowledgeResponse, i32) {
    let cfg = &shared.config;
    let (group, member) = match session::ids(req.group_id.as_ref(), req.member_id.as_ref()) {
        Ok(ids) => ids,
        Err((c, m)) => return (top_error(c, m), 0),
    };
    let key = (group.clone(), member.clone());
    let mut results: BTreeMap<(Uuid, i32), (i16, Option<String>)> = BTreeMap::new();
    let mut woke = false;
    let lock_ms;
    {
        let mut st = shared.state();
        let step = match session::advance(
            &mut st,
            cfg,
            &key,
            req.share_session_epoch,
            ctx.id,
            false,
            true,
            &[],
            &[],
        ) {
            Ok(step) => step,
            Err((c, m)) => return (top_error(c, m), 0),
        };
        for t in &req.topics {
            for p in &t.partitions {
                let tp = (t.topic_id, p.partition_index);
                let batches = session::batches(
                    p.acknowledgement_batches
                        .iter()
                        .map(|b| (b.first_offset, b.last_offset, &b.acknowledge_types)),
                );
                let (c, m, w) = st.acknowledge(
                    cfg,
                    &group,
                    &member,
                    tp,
                    &batches,
                    is_renew_ack,
                    Instant::now(),
                );
                woke |= w;
                // A partition named twice keeps its first error.
                let slot = results.entry(tp).or_insert((c, m.clone()));
                if slot.0 == 0 {
                    *slot = (c, m);
                }
            }
        }
        if step == Step::Close {
            if let Some(old) = st.sessions.remove(&key) {
                woke |= st.release_member(cfg, &group, &member, &old.partitions);
            }
        }
        lock_ms = if cfg.mutant == Some(BrokerMutant::LockTimeoutNotEchoed) {
            cfg.record_lock_duration_ms
        } else {
            st.settings(cfg, &group).record_lock_duration_ms
        };
    }
    if woke {
        shared.wake.notify_waiters();
    }
    let mut topics: BTreeMap<Uuid, Vec<PartitionData>> = BTreeMap::new();
    for ((t, p), (c, m)) in results {
        topics.entry(t).or_default().push(
            PartitionData::default()
                .with_partition_index(p)
                .with_error_code(c)
                .with_error_message(m.map(s)),
        );
    }
    let resp = ShareAcknowledgeResponse::default().with_responses(
        topics
            .into_iter()
            .map(|(t, ps)| {
                ShareAcknowledgeTopicResponse::default()
                    .with_topic_id(t)
                    .with_partitions(ps)
            })
            .collect(),
    );
    (resp, lock_ms)
}
