//! Share sessions, shared by ShareFetch (78) and ShareAcknowledge (79): identity checks, the epoch
//! rules and acknowledgement batches (docs/semantics.md §5.1, §6.1).

use std::collections::BTreeSet;

use kafka_protocol::messages::GroupId;
use kafka_protocol::protocol::StrBytes;
use sharecheck_model::session::{judge, SessionEffect, SessionRequest};
use sharecheck_model::spec::{AckBatch, ErrorCode};
use uuid::Uuid;

use crate::config::BrokerConfig;
use crate::mutant::BrokerMutant;
use crate::state::{PartitionError, ShareSession, State};

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
                ErrorCode::INVALID_REQUEST.0,
                "GroupId must be set and non-empty.".to_string(),
            ))
        }
    };
    let member = match member {
        Some(m) if !m.is_empty() && m.chars().count() <= 36 => m.to_string(),
        _ => {
            return Err((
                ErrorCode::INVALID_REQUEST.0,
                "MemberId must be 1 to 36 characters.".to_string(),
            ))
        }
    };
    Ok((group, member))
}

/// Applies the epoch rules of §6.1 — [`sharecheck_model::session::judge`], the one implementation —
/// to the session of `key`, and keeps the broker's own session data (the connection it was opened
/// on, its partitions). `fetch` is true for ShareFetch (which may open a session and adds the
/// partitions it lists), false for ShareAcknowledge.
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
    let expected = st.sessions.get(key).map(|s| s.next_epoch);
    let kind = if fetch {
        // The planted bug applies acknowledgements on an opening fetch instead of refusing them.
        let has_acks = has_acks && cfg.mutant != Some(BrokerMutant::InitialEpochAcksApplied);
        SessionRequest::ShareFetch { has_acks }
    } else {
        SessionRequest::ShareAcknowledge
    };
    // The planted bug takes any positive epoch of an existing session as the expected one.
    let judged_epoch = match (cfg.mutant, expected) {
        (Some(BrokerMutant::SessionEpochUnchecked), Some(e)) if epoch > 0 => e,
        _ => epoch,
    };
    let (effect, next) = judge(expected, judged_epoch, kind).map_err(|c| {
        let message = match c {
            ErrorCode::INVALID_REQUEST => {
                "Acknowledgements are not allowed in a ShareFetch that opens a share session."
                    .to_string()
            }
            ErrorCode::SHARE_SESSION_NOT_FOUND => "The share session was not found.".to_string(),
            _ if epoch == 0 => {
                "ShareAcknowledge cannot open a share session (epoch 0).".to_string()
            }
            _ => format!(
                "The share session epoch is {epoch}, the expected epoch is {}.",
                expected.unwrap_or(0)
            ),
        };
        (c.0, message)
    })?;
    match effect {
        SessionEffect::Opened { replaced } => {
            if !replaced && st.sessions.len() >= cfg.max_share_sessions {
                return Err((
                    ErrorCode::SHARE_SESSION_LIMIT_REACHED.0,
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
                    next_epoch: next.unwrap_or(1),
                    partitions,
                },
            );
            Ok(Step::Open)
        }
        SessionEffect::Closed => Ok(Step::Close),
        SessionEffect::Continued => {
            if let Some(session) = st.sessions.get_mut(key) {
                session.next_epoch = next.unwrap_or(session.next_epoch);
                if fetch {
                    apply(&mut session.partitions);
                }
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
