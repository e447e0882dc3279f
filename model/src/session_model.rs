//! The second Stateright model: share-session epochs (docs/semantics.md §6.1, §6.3) of the members
//! of one group on one broker, checked exhaustively.
//!
//! The broker side is [`ShareSessions`] with [`crate::session::judge`] — the one implementation of
//! the epoch rules, which the reference broker and the conformance oracle use too. The member side
//! is a monitor: each member keeps its own account of its session from what it sent and what
//! happened to its connection, and every answer the broker gives is held against the promises of
//! the KIP (`KIP-932 §"Share sessions"`; `SPM.newContext@4.2:456-535`,
//! `SPM.acknowledgeSessionUpdate@4.2:537-562`, `ShareRequestMetadata.nextEpoch@4.2`):
//!
//! - a ShareFetch with epoch 0 and no acknowledgements always opens a session, replacing the
//!   member's existing one (and saying so); with acknowledgements it is INVALID_REQUEST, and a
//!   ShareAcknowledge with epoch 0 is INVALID_SHARE_SESSION_EPOCH — neither touches the session;
//! - without a session every other epoch is SHARE_SESSION_NOT_FOUND;
//! - with a session, the epoch one past the last accepted one (1 after opening, 1 again after
//!   `i32::MAX`) continues it, on ShareFetch and ShareAcknowledge alike; −1 closes it; every other
//!   epoch is INVALID_SHARE_SESSION_EPOCH and leaves it as it was;
//! - a dropped connection or a broker restart ends the session, and the broker's list of sessions
//!   is exactly the members whose sessions are open (the oracle decides "no member left on this
//!   broker" from it).
//!
//! Each request of a member picks an epoch among 0, −1, the right one, the right one + 1 and −2, on
//! each of the three request kinds; one member starts with a session that has already carried
//! `i32::MAX − 1` requests, so that the wrap is reached.

use crate::check::PropertyReport;
use crate::model::PropKind;
use crate::session::{SessionEffect, SessionRequest, ShareSessions};
use crate::spec::ErrorCode;
use stateright::{Model, Property};
use std::fmt;

// The wire values, as the KIP gives them (the monitor states them itself rather than reading the
// rules' constants, so that a wrong constant in the rules is a broken promise here).
/// ShareSessionEpoch that opens a session.
const INITIAL_EPOCH: i32 = 0;
/// ShareSessionEpoch that closes one.
const FINAL_EPOCH: i32 = -1;
/// The epoch a new session expects, and the one after `i32::MAX`.
const FIRST_EPOCH: i32 = 1;

/// Members in the model.
const MEMBERS: u8 = 2;
/// Requests per member.
const REQUESTS: u8 = 4;
/// Broker restarts.
const RESTARTS: u8 = 1;
/// The epoch member 1's session expects at the start: one request before the wrap.
const LONG_SESSION: i32 = i32::MAX - 1;

/// A named promise of the epoch rules (always), or an answer the model must reach (sometimes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SessionProp {
    /// ShareFetch epoch 0 without acknowledgements opens a session, saying whether it replaced one,
    /// and the session then expects epoch 1.
    EpochZeroOpens,
    /// Epoch 0 never carries acknowledgements: ShareFetch with them is INVALID_REQUEST, and
    /// ShareAcknowledge (which cannot open a session) is INVALID_SHARE_SESSION_EPOCH; the session
    /// stays as it was.
    EpochZeroCarriesNoAcks,
    /// Without a session every epoch but 0 is SHARE_SESSION_NOT_FOUND.
    NoSessionNotFound,
    /// With a session the next epoch (last + 1, wrapping from `i32::MAX` to 1) continues it.
    NextEpochContinues,
    /// With a session any other epoch but 0 and −1 is INVALID_SHARE_SESSION_EPOCH and does not
    /// advance it.
    WrongEpochRefused,
    /// With a session epoch −1 closes it.
    FinalEpochCloses,
    /// A dropped connection or a restart ends the session (the broker says whether there was one),
    /// and the broker's sessions are exactly the members' open ones.
    SessionsAreExact,
    /// Reachability: an epoch-0 fetch replaced a session.
    ReachReplaced,
    /// Reachability: a session continued past `i32::MAX` with epoch 1.
    ReachWrap,
    /// Reachability: a ShareAcknowledge continued a session (fetch and acknowledge share the count).
    ReachAckContinues,
    /// Reachability: a session closed with −1 and the member opened a new one.
    ReachReopened,
}

impl SessionProp {
    /// Every property, safety first.
    pub const ALL: [SessionProp; 11] = [
        SessionProp::EpochZeroOpens,
        SessionProp::EpochZeroCarriesNoAcks,
        SessionProp::NoSessionNotFound,
        SessionProp::NextEpochContinues,
        SessionProp::WrongEpochRefused,
        SessionProp::FinalEpochCloses,
        SessionProp::SessionsAreExact,
        SessionProp::ReachReplaced,
        SessionProp::ReachWrap,
        SessionProp::ReachAckContinues,
        SessionProp::ReachReopened,
    ];

    /// The stable kebab-case name.
    pub fn name(self) -> &'static str {
        match self {
            SessionProp::EpochZeroOpens => "session-epoch-zero-opens",
            SessionProp::EpochZeroCarriesNoAcks => "session-epoch-zero-carries-no-acks",
            SessionProp::NoSessionNotFound => "session-none-is-not-found",
            SessionProp::NextEpochContinues => "session-next-epoch-continues",
            SessionProp::WrongEpochRefused => "session-wrong-epoch-refused",
            SessionProp::FinalEpochCloses => "session-final-epoch-closes",
            SessionProp::SessionsAreExact => "session-list-is-exact",
            SessionProp::ReachReplaced => "session-reach-replaced",
            SessionProp::ReachWrap => "session-reach-wrap",
            SessionProp::ReachAckContinues => "session-reach-ack-continues",
            SessionProp::ReachReopened => "session-reach-reopened",
        }
    }

    /// Always or sometimes.
    pub fn kind(self) -> PropKind {
        match self {
            SessionProp::ReachReplaced
            | SessionProp::ReachWrap
            | SessionProp::ReachAckContinues
            | SessionProp::ReachReopened => PropKind::Sometimes,
            _ => PropKind::Always,
        }
    }

    fn bit(self) -> u16 {
        1 << SessionProp::ALL
            .iter()
            .position(|p| *p == self)
            .unwrap_or(0)
    }
}

/// A member's choice of epoch, relative to its own account of its session.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EpochChoice {
    /// 0.
    Initial,
    /// −1.
    Final,
    /// The epoch its session expects (1 when it has none).
    Right,
    /// One past that.
    Ahead,
    /// −2.
    Negative,
}

/// What happens next.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SessionAction {
    /// A request of `kind` from `member` with the epoch `choice` names.
    Request {
        /// Who sends it.
        member: u8,
        /// Which epoch.
        choice: EpochChoice,
        /// ShareFetch (with or without acknowledgements) or ShareAcknowledge.
        kind: SessionRequest,
    },
    /// The member's connection drops.
    Disconnect {
        /// Whose.
        member: u8,
    },
    /// The broker restarts: every session is lost.
    Restart,
}

impl fmt::Display for SessionAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            SessionAction::Request {
                member,
                choice,
                kind,
            } => {
                let what = match kind {
                    SessionRequest::ShareFetch { has_acks: false } => "ShareFetch",
                    SessionRequest::ShareFetch { has_acks: true } => "ShareFetch with acks",
                    SessionRequest::ShareAcknowledge => "ShareAcknowledge",
                };
                write!(f, "member m{member} sends {what}, epoch {choice:?}")
            }
            SessionAction::Disconnect { member } => write!(f, "member m{member} disconnects"),
            SessionAction::Restart => write!(f, "broker restarts"),
        }
    }
}

/// The model's state: the broker's sessions, each member's own account, and ghost bits.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SessionState {
    /// The broker's share sessions, as the rules keep them.
    pub broker: ShareSessions<u8>,
    /// Per member, the epoch its session expects by its own account (`None`: no session).
    pub own: [Option<i32>; MEMBERS as usize],
    /// Per member, whether it closed a session with −1 (for [`SessionProp::ReachReopened`]).
    closed: [bool; MEMBERS as usize],
    /// Requests sent per member.
    sent: [u8; MEMBERS as usize],
    /// Restarts so far.
    restarts: u8,
    /// Sticky bits: violated promises and reached answers ([`SessionProp::ALL`] order).
    bits: u16,
    /// The last answer, for counterexamples.
    answer: Option<Result<SessionEffect, ErrorCode>>,
}

impl SessionState {
    /// Marks promise `p` broken unless `ok`.
    fn promise(&mut self, p: SessionProp, ok: bool) {
        if !ok {
            self.bits |= p.bit();
        }
    }

    fn has(&self, p: SessionProp) -> bool {
        self.bits & p.bit() != 0
    }

    fn table(&self) -> Vec<String> {
        let mut out: Vec<String> = (0..MEMBERS)
            .map(|m| {
                let show =
                    |e: Option<i32>| e.map_or("no session".to_string(), |e| format!("expects {e}"));
                format!(
                    "m{m}: broker {}, member's own account {}",
                    show(self.broker.expected(&m)),
                    show(self.own[m as usize])
                )
            })
            .collect();
        if let Some(a) = self.answer {
            out.push(format!("answer: {a:?}"));
        }
        out
    }
}

/// The session model (no parameters: its bounds are fixed and small).
#[derive(Clone, Copy, Debug, Default)]
pub struct SessionModel;

fn after(epoch: i32) -> i32 {
    // The member's own count: +1, and 1 again after i32::MAX (never 0, which opens).
    epoch.checked_add(1).unwrap_or(FIRST_EPOCH)
}

impl Model for SessionModel {
    type State = SessionState;
    type Action = SessionAction;

    fn init_states(&self) -> Vec<SessionState> {
        let mut broker = ShareSessions::new();
        broker.resume(1, LONG_SESSION);
        vec![SessionState {
            broker,
            own: [None, Some(LONG_SESSION)],
            closed: [false; MEMBERS as usize],
            sent: [0; MEMBERS as usize],
            restarts: 0,
            bits: 0,
            answer: None,
        }]
    }

    fn actions(&self, s: &SessionState, out: &mut Vec<SessionAction>) {
        let violations = SessionProp::ALL
            .iter()
            .filter(|p| p.kind() == PropKind::Always)
            .any(|p| s.has(*p));
        if violations {
            return;
        }
        for member in 0..MEMBERS {
            if s.sent[member as usize] < REQUESTS {
                for choice in [
                    EpochChoice::Initial,
                    EpochChoice::Final,
                    EpochChoice::Right,
                    EpochChoice::Ahead,
                    EpochChoice::Negative,
                ] {
                    for kind in [
                        SessionRequest::ShareFetch { has_acks: false },
                        SessionRequest::ShareFetch { has_acks: true },
                        SessionRequest::ShareAcknowledge,
                    ] {
                        out.push(SessionAction::Request {
                            member,
                            choice,
                            kind,
                        });
                    }
                }
            }
            if s.own[member as usize].is_some() {
                out.push(SessionAction::Disconnect { member });
            }
        }
        if s.restarts < RESTARTS {
            out.push(SessionAction::Restart);
        }
    }

    fn next_state(&self, s: &SessionState, action: SessionAction) -> Option<SessionState> {
        let mut n = s.clone();
        match action {
            SessionAction::Request {
                member,
                choice,
                kind,
            } => {
                let m = member as usize;
                n.sent[m] += 1;
                let own = s.own[m];
                let right = own.unwrap_or(FIRST_EPOCH);
                let epoch = match choice {
                    EpochChoice::Initial => INITIAL_EPOCH,
                    EpochChoice::Final => FINAL_EPOCH,
                    EpochChoice::Right => right,
                    EpochChoice::Ahead => after(right),
                    EpochChoice::Negative => -2,
                };
                let answer = n.broker.on_request(&member, epoch, kind);
                n.answer = Some(answer);
                let unchanged = n.broker == s.broker;
                if epoch == INITIAL_EPOCH {
                    if kind == (SessionRequest::ShareFetch { has_acks: false }) {
                        n.promise(
                            SessionProp::EpochZeroOpens,
                            answer
                                == Ok(SessionEffect::Opened {
                                    replaced: own.is_some(),
                                })
                                && n.broker.expected(&member) == Some(FIRST_EPOCH),
                        );
                        if own.is_some() {
                            n.bits |= SessionProp::ReachReplaced.bit();
                        }
                        if s.closed[m] {
                            n.bits |= SessionProp::ReachReopened.bit();
                        }
                        n.own[m] = Some(FIRST_EPOCH);
                    } else {
                        let code = if kind == SessionRequest::ShareAcknowledge {
                            ErrorCode::INVALID_SHARE_SESSION_EPOCH
                        } else {
                            ErrorCode::INVALID_REQUEST
                        };
                        n.promise(
                            SessionProp::EpochZeroCarriesNoAcks,
                            answer == Err(code) && unchanged,
                        );
                    }
                } else if let Some(expected) = own {
                    if epoch == FINAL_EPOCH {
                        n.promise(
                            SessionProp::FinalEpochCloses,
                            answer == Ok(SessionEffect::Closed)
                                && n.broker.expected(&member).is_none(),
                        );
                        n.own[m] = None;
                        n.closed[m] = true;
                    } else if epoch == expected {
                        let next = after(expected);
                        n.promise(
                            SessionProp::NextEpochContinues,
                            answer == Ok(SessionEffect::Continued)
                                && n.broker.expected(&member) == Some(next),
                        );
                        if next == FIRST_EPOCH {
                            n.bits |= SessionProp::ReachWrap.bit();
                        }
                        if kind == SessionRequest::ShareAcknowledge {
                            n.bits |= SessionProp::ReachAckContinues.bit();
                        }
                        n.own[m] = Some(next);
                    } else {
                        n.promise(
                            SessionProp::WrongEpochRefused,
                            answer == Err(ErrorCode::INVALID_SHARE_SESSION_EPOCH) && unchanged,
                        );
                    }
                } else {
                    n.promise(
                        SessionProp::NoSessionNotFound,
                        answer == Err(ErrorCode::SHARE_SESSION_NOT_FOUND) && unchanged,
                    );
                }
            }
            SessionAction::Disconnect { member } => {
                let had = n.broker.drop_session(&member);
                n.promise(
                    SessionProp::SessionsAreExact,
                    had == s.own[member as usize].is_some(),
                );
                n.own[member as usize] = None;
                n.answer = None;
            }
            SessionAction::Restart => {
                n.broker.clear();
                n.own = [None; MEMBERS as usize];
                n.restarts += 1;
                n.answer = None;
            }
        }
        let listed: Vec<u8> = n.broker.keys().copied().collect();
        let open: Vec<u8> = (0..MEMBERS)
            .filter(|m| n.own[*m as usize].is_some())
            .collect();
        let exact = listed == open
            && n.broker.is_empty() == open.is_empty()
            && (0..MEMBERS).all(|m| n.broker.expected(&m).is_some() == n.own[m as usize].is_some());
        n.promise(SessionProp::SessionsAreExact, exact);
        Some(n)
    }

    fn properties(&self) -> Vec<Property<Self>> {
        macro_rules! prop {
            ($p:expr) => {
                match $p.kind() {
                    PropKind::Sometimes => {
                        Property::<SessionModel>::sometimes($p.name(), |_, s: &SessionState| {
                            s.has($p)
                        })
                    }
                    _ => Property::<SessionModel>::always($p.name(), |_, s: &SessionState| {
                        !s.has($p)
                    }),
                }
            };
        }
        vec![
            prop!(SessionProp::EpochZeroOpens),
            prop!(SessionProp::EpochZeroCarriesNoAcks),
            prop!(SessionProp::NoSessionNotFound),
            prop!(SessionProp::NextEpochContinues),
            prop!(SessionProp::WrongEpochRefused),
            prop!(SessionProp::FinalEpochCloses),
            prop!(SessionProp::SessionsAreExact),
            prop!(SessionProp::ReachReplaced),
            prop!(SessionProp::ReachWrap),
            prop!(SessionProp::ReachAckContinues),
            prop!(SessionProp::ReachReopened),
        ]
    }

    fn format_action(&self, action: &SessionAction) -> String {
        action.to_string()
    }
}

/// Model-checks the session model (breadth-first, so each counterexample is a shortest one) and
/// reports every property; `states` is the number of unique states.
pub fn check_sessions() -> (Vec<PropertyReport>, usize) {
    let (reports, states, _) = crate::check::check_props(
        SessionModel,
        SessionProp::ALL.iter().map(|p| (p.name(), p.kind())),
        None,
        SessionState::table,
    );
    (reports, states)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::Status;

    #[test]
    fn every_session_promise_holds_and_every_answer_is_reached() {
        let (reports, states) = check_sessions();
        for r in &reports {
            assert!(
                matches!(r.status, Status::Holds | Status::Reached),
                "{}: {:?}",
                r.name,
                r.status
            );
        }
        assert!(states > 100, "{states} states");
    }
}
