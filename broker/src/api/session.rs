//! Share sessions, shared by ShareFetch (78) and ShareAcknowledge (79): identity checks, the epoch
//! rules and acknowledgement batches (kip932-semantics.md §5.1, §6.1).

use std::collections::BTreeSet;

use kafka_protocol::messages::GroupId;
use kafka_protocol::protocol::StrBytes;
use sharecheck_model::spec::AckBatch;
use uuid::Uuid;

use crate::config::BrokerConfig;
use crate::mutant::BrokerMutant;
use crate::state::{code, PartitionError, ShareSession, State};

/// What a request does to its share session.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// Epoch 0: a new session (replacing any old one of the same member).
    Open,
    /// The expected epoch: the session continues.
    Continue,
    /// Epoch −1: acknowledgements are applied, then the session ends and the member's records in
    /// its partitions are released.
    Close,
}

/// The group and member ids of a share request: both present and non-empty, the member id at most
/// 36 characters (`KA.isMemberIdValid@4.2:4226`), else INVALID_REQUEST at the top level.
pub fn ids(
    group: Option<&GroupId>,
    member: Option<&StrBytes>,
) -> Result<(String, String), PartitionError> {
    let group = match group {
        Some(g) if !g.0.is_empty() => g.0.to_string(),
        _ => {
            return Err((
                code::INVALID_REQUEST,
                "GroupId must be set and non-empty.".to_string(),
            ))
        }
    };
    let member = match member {
        Some(m) if !m.is_empty() && m.chars().count() <= 36 => m.to_string(),
        _ => {
            return Err((
                code::INVALID_REQUEST,
                "MemberId must be 1 to 36 characters.".to_string(),
            ))
        }
    };
    Ok((group, member))
}

/// The epoch after `n` (wraps to 1 after `i32::MAX`, §6.1).
pub fn next_epoch(n: i32) -> i32 {
    if n == i32::MAX {
        1
    } else {
        n + 1
    }
}

/// Applies the epoch rules of §6.1 to the session of `key` (`SPM.newContext@4.2:456-535`,
/// `SPM.acknowledgeSessionUpdate@4.2:537-562`). `fetch` is true for ShareFetch (which may open a
/// session and adds the partitions it lists), false for ShareAcknowledge.
#[allow(clippy::too_many_arguments)]
pub fn advance(
    st: &mut State,
    cfg: &BrokerConfig,
    key: &(String, String),
    epoch: i32,
    conn: u64,
    fetch: bool,
    has_acks: bool,
    add: &[(Uuid, i32)],
    forget: &[(Uuid, i32)],
) -> Result<Step, PartitionError> {
    let apply = |parts: &mut BTreeSet<(Uuid, i32)>| {
        parts.extend(add.iter().copied());
        for f in forget {
            parts.remove(f);
        }
    };
    match epoch {
        0 if !fetch => Err((
            code::INVALID_SHARE_SESSION_EPOCH,
            "ShareAcknowledge cannot open a share session (epoch 0).".to_string(),
        )),
        0 => {
            if has_acks && cfg.mutant != Some(BrokerMutant::InitialEpochAcksApplied) {
                return Err((
                    code::INVALID_REQUEST,
                    "Acknowledgements are not allowed in a ShareFetch that opens a share session."
                        .to_string(),
                ));
            }
            if !st.sessions.contains_key(key) && st.sessions.len() >= cfg.max_share_sessions {
                return Err((
                    code::SHARE_SESSION_LIMIT_REACHED,
                    format!(
                        "The broker has {} share sessions, its limit.",
                        st.sessions.len()
                    ),
                ));
            }
            // The old session (if any) is replaced; its member's records are not released (§6.3).
            let mut partitions = BTreeSet::new();
            apply(&mut partitions);
            st.sessions.insert(
                key.clone(),
                ShareSession {
                    conn,
                    next_epoch: 1,
                    partitions,
                },
            );
            Ok(Step::Open)
        }
        -1 => {
            if st.sessions.contains_key(key) {
                Ok(Step::Close)
            } else {
                Err((
                    code::SHARE_SESSION_NOT_FOUND,
                    "There is no share session to close.".to_string(),
                ))
            }
        }
        n => {
            let Some(session) = st.sessions.get_mut(key) else {
                return Err((
                    code::SHARE_SESSION_NOT_FOUND,
                    "The share session was not found.".to_string(),
                ));
            };
            if n != session.next_epoch && cfg.mutant != Some(BrokerMutant::SessionEpochUnchecked) {
                return Err((
                    code::INVALID_SHARE_SESSION_EPOCH,
                    format!(
                        "The share session epoch is {n}, the expected epoch is {}.",
                        session.next_epoch
                    ),
                ));
            }
            session.next_epoch = next_epoch(n);
            if fetch {
                apply(&mut session.partitions);
            }
            Ok(Step::Continue)
        }
    }
}

/// Wire acknowledgement batches as the spec takes them.
pub fn batches<'a>(wire: impl Iterator<Item = (i64, i64, &'a Vec<i8>)>) -> Vec<AckBatch> {
    wire.map(|(first_offset, last_offset, types)| AckBatch {
        first_offset,
        last_offset,
        types: types.iter().copied().collect(),
    })
    .collect()
}
