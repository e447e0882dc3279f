//! Share-session epochs: the rules a partition leader applies to the `ShareSessionEpoch` of every
//! ShareFetch and ShareAcknowledge (docs/semantics.md §6.1, `SPM.newContext@4.2:456-535`,
//! `SPM.acknowledgeSessionUpdate@4.2:537-562`).
//!
//! A share session is identified by (group, member) on one broker; there is no session id on the
//! wire. Epoch 0 on ShareFetch opens a session (replacing an existing one, whose records are *not*
//! released, §6.3) and must carry no acknowledgements; each later request carries exactly the expected
//! epoch, which then advances by one whatever happens to the partitions (ShareFetch and
//! ShareAcknowledge share the counter; after `i32::MAX` it wraps to 1); epoch −1 applies the request's
//! acknowledgements, then closes the session and releases the member's records (T9). ShareAcknowledge
//! can never open a session.

use crate::spec::ErrorCode;
use serde::Serialize;
use std::collections::BTreeMap;

/// Which request carries the epoch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SessionRequest {
    /// ShareFetch, possibly with piggy-backed acknowledgements.
    ShareFetch {
        /// Whether the request carries acknowledgement batches.
        has_acks: bool,
    },
    /// ShareAcknowledge.
    ShareAcknowledge,
}

/// What an accepted epoch does to the session.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SessionEffect {
    /// Epoch 0: a new session (any previous one of the member is replaced without releasing records).
    Opened {
        /// Whether an existing session was replaced.
        replaced: bool,
    },
    /// The expected epoch: the session continues.
    Continued,
    /// Epoch −1: after this request's acknowledgements the session is gone and the member's records
    /// are released.
    Closed,
}

/// The epoch a new session expects next.
pub const FIRST_EPOCH: i32 = 1;
/// The epoch that opens a session.
pub const INITIAL_EPOCH: i32 = 0;
/// The epoch that closes a session.
pub const FINAL_EPOCH: i32 = -1;

/// The epoch after `epoch`: +1, wrapping from `i32::MAX` to 1, not 0 (`ShareRequestMetadata.nextEpoch@4.2`).
pub fn next_epoch(epoch: i32) -> i32 {
    if epoch == i32::MAX {
        FIRST_EPOCH
    } else {
        epoch + 1
    }
}

/// The epoch rules for one request, given the epoch the member's session expects next (`None`: no
/// session). Returns what the request does to the session and the epoch expected afterwards (`None`:
/// no session any more); an `Err` is the top-level error code, and the session is left as it was.
///
/// ShareFetch epoch 0 with acknowledgements → INVALID_REQUEST 42; ShareAcknowledge epoch 0 →
/// INVALID_SHARE_SESSION_EPOCH 123; epoch −1 without a session → SHARE_SESSION_NOT_FOUND 122; any other
/// epoch without a session → 122, and one that is not the expected epoch → 123
/// (`SPM.newContext@4.2:456-535`: only 0 and −1 are special, every other value looks the session up
/// first; `SPM.acknowledgeSessionUpdate@4.2:537-562`).
pub fn judge(
    expected: Option<i32>,
    epoch: i32,
    kind: SessionRequest,
) -> Result<(SessionEffect, Option<i32>), ErrorCode> {
    match (epoch, kind) {
        (INITIAL_EPOCH, SessionRequest::ShareFetch { has_acks: true }) => {
            Err(ErrorCode::INVALID_REQUEST)
        }
        (INITIAL_EPOCH, SessionRequest::ShareAcknowledge) => {
            Err(ErrorCode::INVALID_SHARE_SESSION_EPOCH)
        }
        (INITIAL_EPOCH, SessionRequest::ShareFetch { has_acks: false }) => Ok((
            SessionEffect::Opened {
                replaced: expected.is_some(),
            },
            Some(FIRST_EPOCH),
        )),
        (_, _) if expected.is_none() => Err(ErrorCode::SHARE_SESSION_NOT_FOUND),
        (FINAL_EPOCH, _) => Ok((SessionEffect::Closed, None)),
        (e, _) if Some(e) == expected => Ok((SessionEffect::Continued, Some(next_epoch(e)))),
        _ => Err(ErrorCode::INVALID_SHARE_SESSION_EPOCH),
    }
}

/// The share sessions of one broker, keyed by member (the caller scopes it to one group, or uses a
/// (group, member) key type).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize)]
pub struct ShareSessions<K: Ord> {
    expected: BTreeMap<K, i32>,
}

impl<K: Ord + Clone> ShareSessions<K> {
    /// No sessions.
    pub fn new() -> Self {
        ShareSessions {
            expected: BTreeMap::new(),
        }
    }

    /// A session of `key` that expects `expected` next, as if it had already carried
    /// `expected − 1` requests (the session model starts one just before the wrap).
    pub fn resume(&mut self, key: K, expected: i32) {
        self.expected.insert(key, expected);
    }

    /// The epoch the member's session expects next, if it has one.
    pub fn expected(&self, key: &K) -> Option<i32> {
        self.expected.get(key).copied()
    }

    /// Judges `epoch` on a request of `kind` from `key` with [`judge`], and advances the session
    /// when accepted.
    pub fn on_request(
        &mut self,
        key: &K,
        epoch: i32,
        kind: SessionRequest,
    ) -> Result<SessionEffect, ErrorCode> {
        let (effect, next) = judge(self.expected(key), epoch, kind)?;
        match next {
            Some(n) => {
                self.expected.insert(key.clone(), n);
            }
            None => {
                self.expected.remove(key);
            }
        }
        Ok(effect)
    }

    /// The member's session disappears without a request (its connection dropped, §6.3). Returns
    /// whether there was one; the caller releases its records.
    pub fn drop_session(&mut self, key: &K) -> bool {
        self.expected.remove(key).is_some()
    }

    /// The keys that have a session.
    pub fn keys(&self) -> impl Iterator<Item = &K> {
        self.expected.keys()
    }

    /// Whether there is no session at all.
    pub fn is_empty(&self) -> bool {
        self.expected.is_empty()
    }

    /// Every session is lost (broker restart, §10.2).
    pub fn clear(&mut self) {
        self.expected.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FETCH: SessionRequest = SessionRequest::ShareFetch { has_acks: false };
    const FETCH_ACKS: SessionRequest = SessionRequest::ShareFetch { has_acks: true };
    const ACK: SessionRequest = SessionRequest::ShareAcknowledge;

    #[test]
    fn open_continue_close() {
        let mut s = ShareSessions::new();
        assert_eq!(
            s.on_request(&"a", 0, FETCH),
            Ok(SessionEffect::Opened { replaced: false })
        );
        assert_eq!(
            s.on_request(&"a", 1, FETCH_ACKS),
            Ok(SessionEffect::Continued)
        );
        assert_eq!(
            s.on_request(&"a", 2, ACK),
            Ok(SessionEffect::Continued),
            "fetch and ack share the counter"
        );
        assert_eq!(s.expected(&"a"), Some(3));
        assert_eq!(s.on_request(&"a", -1, ACK), Ok(SessionEffect::Closed));
        assert_eq!(s.expected(&"a"), None);
    }

    #[test]
    fn epoch_errors() {
        let mut s = ShareSessions::new();
        assert_eq!(
            s.on_request(&"a", 0, FETCH_ACKS),
            Err(ErrorCode::INVALID_REQUEST)
        );
        assert_eq!(
            s.on_request(&"a", 0, ACK),
            Err(ErrorCode::INVALID_SHARE_SESSION_EPOCH)
        );
        assert_eq!(
            s.on_request(&"a", 1, FETCH),
            Err(ErrorCode::SHARE_SESSION_NOT_FOUND)
        );
        assert_eq!(
            s.on_request(&"a", -1, FETCH),
            Err(ErrorCode::SHARE_SESSION_NOT_FOUND)
        );
        s.on_request(&"a", 0, FETCH).unwrap();
        assert_eq!(
            s.on_request(&"a", 2, FETCH),
            Err(ErrorCode::INVALID_SHARE_SESSION_EPOCH)
        );
        assert_eq!(
            s.on_request(&"a", -2, FETCH),
            Err(ErrorCode::INVALID_SHARE_SESSION_EPOCH)
        );
        assert_eq!(
            s.expected(&"a"),
            Some(1),
            "a rejected epoch does not advance the session"
        );
        // Without a session every epoch but 0 is SHARE_SESSION_NOT_FOUND, negative ones too.
        assert_eq!(
            s.on_request(&"b", -2, ACK),
            Err(ErrorCode::SHARE_SESSION_NOT_FOUND)
        );
        assert_eq!(
            s.on_request(&"b", -1, ACK),
            Err(ErrorCode::SHARE_SESSION_NOT_FOUND)
        );
    }

    #[test]
    fn reopen_replaces_and_wraps() {
        let mut s = ShareSessions::new();
        s.on_request(&"a", 0, FETCH).unwrap();
        s.on_request(&"a", 1, FETCH).unwrap();
        assert_eq!(
            s.on_request(&"a", 0, FETCH),
            Ok(SessionEffect::Opened { replaced: true })
        );
        assert_eq!(s.expected(&"a"), Some(1));
        assert_eq!(next_epoch(i32::MAX), 1);
        assert!(s.drop_session(&"a"));
        assert!(!s.drop_session(&"a"));
    }
}
