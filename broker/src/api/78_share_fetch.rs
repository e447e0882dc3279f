//! ShareFetch (78), v1 and v2: share-session epochs (§6.1), piggy-backed acknowledgements (§6.2), and
//! acquisition with a long poll (§4.5).
//!
//! Order of work, as Kafka's leader does it: the session epoch is checked and advanced; the
//! acknowledgements are applied per partition through the spec (all or nothing per partition); an
//! epoch −1 request then ends the session and releases the member's records; otherwise records are
//! acquired across the session's partitions (MaxRecords and MaxBytes summed over the request). When
//! nothing can be acquired the request waits up to MaxWaitMs, waking early when records may have
//! become acquirable (produce, release, lock expiry, session end). Any acquisition or partition
//! error answers at once: MinBytes is treated as "at least one record".

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use kafka_protocol::messages::share_fetch_response::{
    AcquiredRecords, PartitionData, ShareFetchableTopicResponse,
};
use kafka_protocol::messages::{ShareFetchRequest, ShareFetchResponse};
use uuid::Uuid;

use super::session::{self, Step};
use super::util::s;
use crate::mutant::BrokerMutant;
use crate::server::{ConnCtx, Shared};
use crate::state::{Acquisition, PartitionError};
use sharecheck_model::ErrorCode;

fn top_error(c: i16, message: String) -> ShareFetchResponse {
    ShareFetchResponse::default()
        .with_error_code(c)
        .with_error_message(Some(s(message)))
}

/// Serves one ShareFetch (v1, or v2 with `is_renew_ack`); `None` when the connection is being
/// dropped (restart, shutdown). The acquire mode of v2 changes nothing here: this broker always
/// acquires exactly up to MaxRecords (docs/reference-broker.md, deviations).
pub async fn handle(
    shared: &Arc<Shared>,
    ctx: &ConnCtx,
    _version: i16,
    req: ShareFetchRequest,
    is_renew_ack: bool,
    record_limit: bool,
) -> Option<ShareFetchResponse> {
    let cfg = &shared.config;
    let (group, member) = match session::ids(req.group_id.as_ref(), req.member_id.as_ref()) {
        Ok(ids) => ids,
        Err((c, m)) => return Some(top_error(c, m)),
    };
    // KIP-1222: a renewing ShareFetch fetches nothing; any limit but 0 fails the whole request
    // (`KA@4.2:3204-3229`).
    let limits = (
        req.max_bytes,
        req.min_bytes,
        req.max_records,
        req.max_wait_ms,
    );
    if let Some(code) = sharecheck_model::spec::renewing_fetch_error(is_renew_ack, limits) {
        return Some(top_error(
            code.0,
            "maxBytes, minBytes, maxRecords and maxWaitMs must be 0 if isRenewAck is true".into(),
        ));
    }
    let requested: Vec<(Uuid, i32)> = req
        .topics
        .iter()
        .flat_map(|t| {
            t.partitions
                .iter()
                .map(move |p| (t.topic_id, p.partition_index))
        })
        .collect();
    let forgotten: Vec<(Uuid, i32)> = req
        .forgotten_topics_data
        .iter()
        .flat_map(|t| t.partitions.iter().map(move |p| (t.topic_id, *p)))
        .collect();
    let acks: Vec<((Uuid, i32), Vec<sharecheck_model::AckBatch>)> = req
        .topics
        .iter()
        .flat_map(|t| {
            t.partitions
                .iter()
                .filter(|p| !p.acknowledgement_batches.is_empty())
                .map(move |p| {
                    (
                        (t.topic_id, p.partition_index),
                        session::batches(
                            p.acknowledgement_batches
                                .iter()
                                .map(|b| (b.first_offset, b.last_offset, &b.acknowledge_types)),
                        ),
                    )
                })
        })
        .collect();
    let key = (group.clone(), member.clone());
    let mut ack_results: BTreeMap<(Uuid, i32), (i16, Option<String>)> = BTreeMap::new();
    let prepared = {
        let mut st = shared.state();
        match session::advance(
            &mut st,
            cfg,
            &key,
            req.share_session_epoch,
            ctx.id,
            true,
            !acks.is_empty(),
            &requested,
            &forgotten,
        ) {
            Err(e) => Err(e),
            Ok(step) => {
                let mut woke = false;
                for (tp, batches) in &acks {
                    let (c, m, w) = st.acknowledge(
                        cfg,
                        &group,
                        &member,
                        (tp.0, tp.1),
                        batches,
                        is_renew_ack,
                        Instant::now(),
                    );
                    woke |= w;
                    ack_results.insert(*tp, (c, m));
                }
                if step == Step::Close {
                    if let Some(old) = st.sessions.remove(&key) {
                        woke |= st.release_member(cfg, &group, &member, &old.partitions);
                    }
                }
                let lock_ms = if cfg.mutant == Some(BrokerMutant::LockTimeoutNotEchoed) {
                    cfg.record_lock_duration_ms
                } else {
                    st.settings(cfg, &group).record_lock_duration_ms
                };
                Ok((step, lock_ms, st.member_idx(&group, &member), woke))
            }
        }
    };
    let (step, lock_ms, member_idx) = match prepared {
        Ok((step, lock_ms, member_idx, woke)) => {
            if woke {
                shared.wake.notify_waiters();
            }
            (step, lock_ms, member_idx)
        }
        Err((c, m)) => {
            if c == ErrorCode::SHARE_SESSION_LIMIT_REACHED.0 {
                // 4.1+ delays this answer by MaxWaitMs (KAFKA-19231).
                let wait = Duration::from_millis(req.max_wait_ms.clamp(0, 30_000) as u64);
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = ctx.closed.cancelled() => {}
                    _ = ctx.generation.cancelled() => return None,
                }
            }
            return Some(top_error(c, m));
        }
    };
    let Some(member_idx) = member_idx else {
        return Some(top_error(
            ErrorCode::UNKNOWN_SERVER_ERROR.0,
            "the broker's member table for this group is full".to_string(),
        ));
    };

    let mut fetched: BTreeMap<(Uuid, i32), Result<Acquisition, PartitionError>> = BTreeMap::new();
    let fetching = step != Step::Close && req.max_records > 0 && req.max_bytes > 0;
    if fetching {
        // MaxWaitMs is the client's; the broker still bounds every wait (by the idle timeout).
        let wait = Duration::from_millis(req.max_wait_ms.max(0) as u64).min(cfg.idle_timeout);
        let deadline = Instant::now() + wait;
        loop {
            let notified = shared.wake.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let done = {
                let mut st = shared.state();
                let Some(session) = st.sessions.get(&key) else {
                    // Closed or replaced meanwhile (restart): answer with what there is.
                    break;
                };
                let mut parts: Vec<(Uuid, i32)> = session.partitions.iter().copied().collect();
                if !parts.is_empty() {
                    // Rotate the starting partition by epoch, as Kafka does, for fairness.
                    let turn = (req.share_session_epoch.max(0) as usize) % parts.len();
                    parts.rotate_left(turn);
                }
                let mut records_left = req.max_records as usize;
                if record_limit && cfg.mutant == Some(BrokerMutant::RecordLimitOvershoot) {
                    records_left += 1;
                }
                let mut bytes_left = req.max_bytes as usize;
                let now = Instant::now();
                for tp in parts {
                    if records_left == 0 {
                        break;
                    }
                    let first = !fetched.values().any(|r| matches!(r, Ok(a) if a.count > 0));
                    match st.acquire(
                        cfg,
                        &group,
                        member_idx,
                        tp.0,
                        tp.1,
                        records_left,
                        &mut bytes_left,
                        first,
                        now,
                    ) {
                        Ok(a) if a.count > 0 => {
                            records_left = records_left.saturating_sub(a.count);
                            fetched.insert(tp, Ok(a));
                        }
                        Ok(_) => {}
                        Err(e) => {
                            fetched.insert(tp, Err(e));
                        }
                    }
                }
                !fetched.is_empty()
            };
            if done {
                shared.timer_wake.notify_one();
                break;
            }
            if Instant::now() >= deadline {
                break;
            }
            tokio::select! {
                _ = &mut notified => {}
                _ = tokio::time::sleep_until(deadline.into()) => {}
                _ = ctx.closed.cancelled() => break,
                _ = ctx.generation.cancelled() => return None,
            }
        }
    }

    // Response: requested partitions (unless closing), partitions with ack results, partitions
    // with records or errors.
    let mut parts: BTreeMap<(Uuid, i32), PartitionData> = BTreeMap::new();
    let blank = |p: i32| {
        PartitionData::default()
            .with_partition_index(p)
            .with_records(Some(bytes::Bytes::new()))
    };
    if step != Step::Close {
        for tp in &requested {
            parts.entry(*tp).or_insert_with(|| blank(tp.1));
        }
    }
    for (tp, (c, m)) in ack_results {
        let e = parts.entry(tp).or_insert_with(|| blank(tp.1));
        e.acknowledge_error_code = c;
        e.acknowledge_error_message = m.map(s);
    }
    for (tp, r) in fetched {
        let e = parts.entry(tp).or_insert_with(|| blank(tp.1));
        match r {
            Ok(a) => {
                e.acquired_records = a
                    .ranges
                    .iter()
                    .map(|r| {
                        AcquiredRecords::default()
                            .with_first_offset(r.first_offset)
                            .with_last_offset(r.last_offset)
                            .with_delivery_count(i16::from(r.delivery_count))
                    })
                    .collect();
                e.records = Some(a.records);
            }
            Err((c, m)) => {
                e.error_code = c;
                e.error_message = Some(s(m));
            }
        }
    }
    if cfg.mutant == Some(BrokerMutant::UnrequestedPartitionEntry) {
        let st = shared.state();
        let held: Vec<(Uuid, i32)> = st
            .sessions
            .get(&key)
            .map(|s| s.partitions.iter().copied().collect())
            .unwrap_or_default();
        let topics: BTreeSet<Uuid> = parts.keys().map(|(t, _)| *t).collect();
        for t in topics {
            let n = st.topic_by_id(t).map_or(0, |t| t.partitions.len() as i32);
            for p in 0..n {
                if !held.contains(&(t, p)) {
                    parts.entry((t, p)).or_insert_with(|| blank(p));
                }
            }
        }
    }
    let mut topics: BTreeMap<Uuid, Vec<PartitionData>> = BTreeMap::new();
    for ((t, _), p) in parts {
        let twice = cfg.mutant == Some(BrokerMutant::DuplicatePartitionEntry)
            && !p.acquired_records.is_empty();
        let copy = twice.then(|| blank(p.partition_index));
        topics.entry(t).or_default().push(p);
        if let Some(c) = copy {
            topics.entry(t).or_default().push(c);
        }
    }
    Some(
        ShareFetchResponse::default()
            .with_acquisition_lock_timeout_ms(lock_ms)
            .with_responses(
                topics
                    .into_iter()
                    .map(|(t, ps)| {
                        ShareFetchableTopicResponse::default()
                            .with_topic_id(t)
                            .with_partitions(ps)
                    })
                    .collect(),
            ),
    )
}
