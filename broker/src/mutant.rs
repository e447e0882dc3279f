//! Planted bugs of the reference broker ("mutants"), each observable by a client over the wire.
//!
//! Most are the spec's own mutants ([`sharecheck_model::Mutant`]), passed to every share partition
//! through [`sharecheck_model::Rules::mutant`]: the broker runs the spec, so a bug planted in a
//! rule is a bug of the broker. The rest live in the broker's protocol layer (sessions, timers, error
//! mapping) and are one small, named change each, marked `BrokerMutant::…` where they act.
//!
//! Every mutant listed here must be caught by the conformance suite; spec mutants that a client
//! cannot observe would not be listed (all sixteen are observable: see each description).

use sharecheck_model::Mutant;

/// A planted bug of the reference broker.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum BrokerMutant {
    /// A rule of the share-partition spec is changed (see [`Mutant::describe`]).
    Spec(Mutant),
    /// Acknowledging a record the caller does not hold answers INVALID_REQUEST (42) instead of
    /// INVALID_RECORD_STATE (121) (docs/semantics.md §5.3).
    WrongAckErrorCode,
    /// Acquisition locks expire after half the configured `share.record.lock.duration.ms` (§3).
    EarlyLockExpiry,
    /// ShareFetch/ShareAcknowledge with a share-session epoch other than the expected one is
    /// served as if it were right, instead of INVALID_SHARE_SESSION_EPOCH (123) (§6.1).
    SessionEpochUnchecked,
    /// Dropping the TCP connection does not release the records of the share sessions opened on
    /// it (Kafka 4.0 behaviour; 4.1+ release them, §6.3). An explicit close (epoch −1) still does.
    DisconnectKeepsLocks,
    /// A ShareFetch opening a session (epoch 0) with acknowledgements applies them instead of
    /// failing the request with INVALID_REQUEST (42) (§5.1, `SPM.newContext@4.2:476-480`).
    InitialEpochAcksApplied,
    /// `AcquisitionLockTimeoutMs` reports the broker default lock duration instead of the group's
    /// configured `share.record.lock.duration.ms` (§3, "What the broker reports"); the locks
    /// themselves keep the configured duration.
    LockTimeoutNotEchoed,
    /// A restart or leader move keeps acquisitions and their locks instead of forgetting them
    /// (T14, §10.2): records in flight stay locked until their old deadline.
    RestartKeepsLocks,
    /// The coordinator assigns only the partitions a topic had when it was created: partitions
    /// added later (CreatePartitions) are never assigned (§7.3).
    AddedPartitionUnassigned,
    /// A ShareFetch response lists each partition that acquired records twice (the second entry
    /// empty), which a client may read as two partitions or drop.
    DuplicatePartitionEntry,
    /// A ShareFetch response also lists, empty, every partition of the topic that the share session
    /// does not hold.
    UnrequestedPartitionEntry,
    /// A restart or leader move reloads every delivered record with a delivery count one lower than
    /// was persisted (T14, §10.2): a poison record gets one delivery more than the limit allows.
    RestartLowersCounts,
    /// A partition added to a topic after its creation starts its SPSO at the log end, ignoring
    /// `share.auto.offset.reset=earliest` (§7.3): records produced before its first fetch are lost.
    AddedPartitionAtLogEnd,
    /// RENEW (v2) counts a delivery: the renewed record's delivery count goes up by one (T7 keeps it).
    RenewIncrementsCount,
    /// RENEW (v2) is answered NONE but the lock keeps its old deadline (T7 restarts it).
    RenewKeepsOldDeadline,
    /// A ShareFetch in record-limit acquire mode (v2) acquires one record more than MaxRecords.
    RecordLimitOvershoot,
    /// AlterShareGroupOffsets is answered with success while the group has members, instead of
    /// NON_EMPTY_GROUP (68) (§18.1).
    AlterWithMembers,
    /// AlterShareGroupOffsets is answered with success but a share partition already loaded keeps
    /// its state: records below the new start are still delivered, accepted ones not again (§18.1).
    AlterKeepsOlderRecords,
    /// DeleteShareGroupOffsets is answered with success but the share-group state stays (§18.1).
    DeleteKeepsState,
    /// DescribeShareGroupOffsets v1 reports a lag one higher than end − start − terminal (§18.2).
    LagOffByOne,
    /// IncrementalAlterConfigs accepts group limits outside the broker's bounds (§18.3).
    GroupLimitUnchecked,
    /// The first record archived for a dead-letter reason is not written to the DLQ topic (§19).
    DlqRecordMissing,
    /// Every record archived for a dead-letter reason is written to the DLQ topic twice (§19).
    DlqWrittenTwice,
    /// RENEW succeeds although the group set `share.renew.acknowledge.enable=false` (§16).
    RenewIgnoresDisable,
}

/// Spec mutants in the order they are listed.
const SPEC: [Mutant; 16] = Mutant::ALL;

/// Broker-only mutants in the order they are listed.
const WIRE: [BrokerMutant; 23] = [
    BrokerMutant::WrongAckErrorCode,
    BrokerMutant::EarlyLockExpiry,
    BrokerMutant::SessionEpochUnchecked,
    BrokerMutant::DisconnectKeepsLocks,
    BrokerMutant::InitialEpochAcksApplied,
    BrokerMutant::LockTimeoutNotEchoed,
    BrokerMutant::RestartKeepsLocks,
    BrokerMutant::AddedPartitionUnassigned,
    BrokerMutant::DuplicatePartitionEntry,
    BrokerMutant::UnrequestedPartitionEntry,
    BrokerMutant::RestartLowersCounts,
    BrokerMutant::AddedPartitionAtLogEnd,
    BrokerMutant::RenewIncrementsCount,
    BrokerMutant::RenewKeepsOldDeadline,
    BrokerMutant::RecordLimitOvershoot,
    BrokerMutant::AlterWithMembers,
    BrokerMutant::AlterKeepsOlderRecords,
    BrokerMutant::DeleteKeepsState,
    BrokerMutant::LagOffByOne,
    BrokerMutant::GroupLimitUnchecked,
    BrokerMutant::DlqRecordMissing,
    BrokerMutant::DlqWrittenTwice,
    BrokerMutant::RenewIgnoresDisable,
];

impl BrokerMutant {
    /// Every mutant of the broker: the spec's, then the broker's own.
    pub fn all() -> Vec<BrokerMutant> {
        SPEC.iter()
            .map(|m| BrokerMutant::Spec(*m))
            .chain(WIRE.iter().copied())
            .collect()
    }

    /// The stable kebab-case name (`--mutant NAME`); spec mutants keep the spec's names.
    pub fn name(self) -> &'static str {
        match self {
            BrokerMutant::Spec(m) => m.name(),
            BrokerMutant::WrongAckErrorCode => "wrong-ack-error-code",
            BrokerMutant::EarlyLockExpiry => "early-lock-expiry",
            BrokerMutant::SessionEpochUnchecked => "session-epoch-unchecked",
            BrokerMutant::DisconnectKeepsLocks => "disconnect-keeps-locks",
            BrokerMutant::InitialEpochAcksApplied => "initial-epoch-acks-applied",
            BrokerMutant::LockTimeoutNotEchoed => "lock-timeout-not-echoed",
            BrokerMutant::RestartKeepsLocks => "restart-keeps-locks",
            BrokerMutant::AddedPartitionUnassigned => "added-partition-unassigned",
            BrokerMutant::DuplicatePartitionEntry => "duplicate-partition-entry",
            BrokerMutant::UnrequestedPartitionEntry => "unrequested-partition-entry",
            BrokerMutant::RestartLowersCounts => "restart-lowers-counts",
            BrokerMutant::AddedPartitionAtLogEnd => "added-partition-at-log-end",
            BrokerMutant::RenewIncrementsCount => "renew-increments-count",
            BrokerMutant::RenewKeepsOldDeadline => "renew-keeps-old-deadline",
            BrokerMutant::RecordLimitOvershoot => "record-limit-overshoot",
            BrokerMutant::AlterWithMembers => "alter-with-members",
            BrokerMutant::AlterKeepsOlderRecords => "alter-keeps-older-records",
            BrokerMutant::DeleteKeepsState => "delete-keeps-state",
            BrokerMutant::LagOffByOne => "lag-off-by-one",
            BrokerMutant::GroupLimitUnchecked => "group-limit-unchecked",
            BrokerMutant::DlqRecordMissing => "dlq-record-missing",
            BrokerMutant::DlqWrittenTwice => "dlq-written-twice",
            BrokerMutant::RenewIgnoresDisable => "renew-ignores-disable",
        }
    }

    /// One line: what the planted bug changes.
    pub fn describe(self) -> &'static str {
        match self {
            BrokerMutant::Spec(m) => m.describe(),
            BrokerMutant::WrongAckErrorCode => {
                "acking a record not held by the caller answers INVALID_REQUEST (42) instead of INVALID_RECORD_STATE (121)"
            }
            BrokerMutant::EarlyLockExpiry => "acquisition locks expire at half the configured duration",
            BrokerMutant::SessionEpochUnchecked => {
                "a wrong share-session epoch is accepted instead of INVALID_SHARE_SESSION_EPOCH (123)"
            }
            BrokerMutant::DisconnectKeepsLocks => {
                "a dropped connection does not release its share sessions' acquired records"
            }
            BrokerMutant::InitialEpochAcksApplied => {
                "acknowledgements on an epoch-0 ShareFetch are applied instead of INVALID_REQUEST (42)"
            }
            BrokerMutant::LockTimeoutNotEchoed => {
                "AcquisitionLockTimeoutMs reports the broker default, not the group's lock duration"
            }
            BrokerMutant::RestartKeepsLocks => {
                "a restart or leader move keeps acquisitions locked instead of forgetting them"
            }
            BrokerMutant::AddedPartitionUnassigned => {
                "partitions added to a topic after its creation are never assigned"
            }
            BrokerMutant::DuplicatePartitionEntry => {
                "a ShareFetch response lists each partition with records twice"
            }
            BrokerMutant::UnrequestedPartitionEntry => {
                "a ShareFetch response lists partitions the share session does not hold"
            }
            BrokerMutant::RestartLowersCounts => {
                "a restart or leader move reloads delivery counts one lower than persisted"
            }
            BrokerMutant::AddedPartitionAtLogEnd => {
                "a partition added after the topic's creation starts at the log end, ignoring earliest"
            }
            BrokerMutant::RenewIncrementsCount => {
                "RENEW raises the renewed record's delivery count by one"
            }
            BrokerMutant::RenewKeepsOldDeadline => {
                "RENEW is answered NONE but the lock keeps its old deadline"
            }
            BrokerMutant::RecordLimitOvershoot => {
                "record-limit acquire mode acquires one record more than MaxRecords"
            }
            BrokerMutant::AlterWithMembers => {
                "AlterShareGroupOffsets succeeds while the group has members, not NON_EMPTY_GROUP (68)"
            }
            BrokerMutant::AlterKeepsOlderRecords => {
                "AlterShareGroupOffsets succeeds but a loaded share partition keeps its old state"
            }
            BrokerMutant::DeleteKeepsState => {
                "DeleteShareGroupOffsets succeeds but the share-group state stays"
            }
            BrokerMutant::LagOffByOne => "DescribeShareGroupOffsets reports the lag one too high",
            BrokerMutant::GroupLimitUnchecked => {
                "group limits outside the broker's bounds are accepted instead of INVALID_CONFIG"
            }
            BrokerMutant::DlqRecordMissing => {
                "the first record archived for a dead-letter reason never reaches the DLQ topic"
            }
            BrokerMutant::DlqWrittenTwice => "every dead-lettered record is written to the DLQ twice",
            BrokerMutant::RenewIgnoresDisable => {
                "RENEW succeeds although the group set share.renew.acknowledge.enable=false"
            }
        }
    }

    /// Looks a mutant up by name.
    pub fn by_name(name: &str) -> Option<BrokerMutant> {
        BrokerMutant::all().into_iter().find(|m| m.name() == name)
    }

    /// The spec mutant to run the share partitions with, if this is one.
    pub fn spec_mutant(self) -> Option<Mutant> {
        match self {
            BrokerMutant::Spec(m) => Some(m),
            _ => None,
        }
    }
}

impl std::fmt::Display for BrokerMutant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for BrokerMutant {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        BrokerMutant::by_name(s).ok_or_else(|| format!("unknown mutant {s:?} (see --list-mutants)"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_round_trip() {
        let all = BrokerMutant::all();
        assert_eq!(all.len(), 39);
        let mut names: Vec<_> = all.iter().map(|m| m.name()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), all.len());
        for m in all {
            assert_eq!(BrokerMutant::by_name(m.name()), Some(m));
            assert!(!m.describe().is_empty());
        }
    }
}
