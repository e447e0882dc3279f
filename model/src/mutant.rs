//! Planted bugs in the spec ("mutants").
//!
//! Each mutant is one small, named change to a rule of [`crate::spec`] that a real broker could
//! plausibly ship, most of them modelled on bugs Apache Kafka actually fixed (docs/semantics.md §11).
//! `sharecheck check --mutant NAME` model-checks the spec with that change; every mutant must be caught
//! by at least one property, which proves the properties have teeth. The reference broker reuses the
//! same mutants, so the conformance suite is measured against the same planted bugs.

use serde::Serialize;

/// A planted bug. See [`Mutant::describe`] for what each one changes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mutant {
    /// Re-acquiring an Available record leaves its delivery count unchanged (rule T2).
    NoCountIncrement,
    /// RELEASE of a record at the delivery limit makes it Available instead of Archived (rule T4').
    ReleaseAtLimitAvailable,
    /// Lock expiry also fires for records already acknowledged: an ACCEPTed record becomes
    /// Available again (the timer was not cancelled on ack; cf. KAFKA-19476).
    ExpiryReopensAcknowledged,
    /// The ownership check on acknowledgements is missing: any member may ack any Acquired record.
    NonOwnerAck,
    /// Closing a share session (or dropping its connection) does not release the member's
    /// Acquired records (rule T9; cf. KAFKA-19953, records left locked after session release).
    SessionCloseKeepsLocks,
    /// SPSO advances over an Acquired record as if it were terminal (cf. KAFKA-19859).
    SpsoSkipsAcquired,
    /// Acquisition-lock expiry never fires (rule T8): an abandoned record stays Acquired forever.
    ExpiryNeverFires,
    /// A record Acquired by one member can be acquired by another in a concurrent fetch.
    DoubleAcquire,
    /// An acknowledgement request that fails is not rolled back: the offsets validated before the
    /// failing one stay applied (the per-partition all-or-nothing rule,
    /// `SP.rollbackOrProcessStateUpdates@4.2`).
    NonAtomicAck,
    /// The next fetch starts after the last cached offset and never revisits released records
    /// (`nextFetchOffset` not rewound; cf. KAFKA-19463). A liveness bug only.
    StaleFetchOffset,
    /// Session release decrements the delivery count as 4.1 did (KAFKA-19972), under a profile
    /// that keeps it.
    SessionReleaseDecrements,
    /// The delivery count reported in AcquiredRecords is one less than the count the partition holds.
    ReportedCountOffByOne,
    /// REJECT makes a record Available again instead of archiving it (rule T5).
    RejectRedelivers,
    /// Acknowledging a record that is not Acquired by the caller succeeds silently (no error, no
    /// change) instead of failing with INVALID_RECORD_STATE.
    SilentInvalidAck,
    /// New acquisitions ignore the in-flight window limit (cf. KAFKA-19555).
    WindowOvershoot,
    /// A restart or leader move loses acknowledgements: the reloaded partition has Acknowledged
    /// records Available again (rule T14; an acknowledgement answered before its state was written).
    RestartForgetsAcknowledged,
}

impl Mutant {
    /// Every spec mutant, in a stable order.
    pub const ALL: [Mutant; 16] = [
        Mutant::NoCountIncrement,
        Mutant::ReleaseAtLimitAvailable,
        Mutant::ExpiryReopensAcknowledged,
        Mutant::NonOwnerAck,
        Mutant::SessionCloseKeepsLocks,
        Mutant::SpsoSkipsAcquired,
        Mutant::ExpiryNeverFires,
        Mutant::DoubleAcquire,
        Mutant::NonAtomicAck,
        Mutant::StaleFetchOffset,
        Mutant::SessionReleaseDecrements,
        Mutant::ReportedCountOffByOne,
        Mutant::RejectRedelivers,
        Mutant::SilentInvalidAck,
        Mutant::WindowOvershoot,
        Mutant::RestartForgetsAcknowledged,
    ];

    /// The stable kebab-case name used on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Mutant::NoCountIncrement => "no-count-increment",
            Mutant::ReleaseAtLimitAvailable => "release-at-limit-available",
            Mutant::ExpiryReopensAcknowledged => "expiry-reopens-acknowledged",
            Mutant::NonOwnerAck => "non-owner-ack",
            Mutant::SessionCloseKeepsLocks => "session-close-keeps-locks",
            Mutant::SpsoSkipsAcquired => "spso-skips-acquired",
            Mutant::ExpiryNeverFires => "expiry-never-fires",
            Mutant::DoubleAcquire => "double-acquire",
            Mutant::NonAtomicAck => "non-atomic-ack",
            Mutant::StaleFetchOffset => "stale-fetch-offset",
            Mutant::SessionReleaseDecrements => "session-release-decrements",
            Mutant::ReportedCountOffByOne => "reported-count-off-by-one",
            Mutant::RejectRedelivers => "reject-redelivers",
            Mutant::SilentInvalidAck => "silent-invalid-ack",
            Mutant::WindowOvershoot => "window-overshoot",
            Mutant::RestartForgetsAcknowledged => "restart-forgets-acknowledged",
        }
    }

    /// One line: what the planted bug changes.
    pub fn describe(self) -> &'static str {
        match self {
            Mutant::NoCountIncrement => "re-acquisition does not increment the delivery count",
            Mutant::ReleaseAtLimitAvailable => {
                "RELEASE at the delivery limit returns the record to Available"
            }
            Mutant::ExpiryReopensAcknowledged => "lock expiry also reopens acknowledged records",
            Mutant::NonOwnerAck => "an ack from a member that does not hold the lock is applied",
            Mutant::SessionCloseKeepsLocks => {
                "session close / disconnect does not release acquired records"
            }
            Mutant::SpsoSkipsAcquired => "SPSO advances past an acquired record",
            Mutant::ExpiryNeverFires => "acquisition locks never expire",
            Mutant::DoubleAcquire => "a record acquired by one member is acquired again by another",
            Mutant::NonAtomicAck => {
                "a failing ack request is not rolled back: offsets before the failure stay applied"
            }
            Mutant::StaleFetchOffset => {
                "released records behind the last cached offset are never fetched again"
            }
            Mutant::SessionReleaseDecrements => {
                "session release decrements the delivery count (4.1 behaviour)"
            }
            Mutant::ReportedCountOffByOne => "AcquiredRecords reports the delivery count minus one",
            Mutant::RejectRedelivers => "REJECT makes the record Available instead of Archived",
            Mutant::SilentInvalidAck => {
                "an ack of a record not held by the caller succeeds without effect"
            }
            Mutant::WindowOvershoot => "new acquisitions ignore the in-flight window limit",
            Mutant::RestartForgetsAcknowledged => {
                "a restart or leader move makes acknowledged records available again"
            }
        }
    }

    /// Looks a mutant up by its name.
    pub fn by_name(name: &str) -> Option<Mutant> {
        Mutant::ALL.into_iter().find(|m| m.name() == name)
    }
}

impl std::fmt::Display for Mutant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_round_trip() {
        let mut names: Vec<_> = Mutant::ALL.iter().map(|m| m.name()).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), Mutant::ALL.len());
        for m in Mutant::ALL {
            assert_eq!(Mutant::by_name(m.name()), Some(m));
        }
    }
}
