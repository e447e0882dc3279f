//! The oracle's vocabulary: the stable names of everything a broker can be caught doing wrong.
//!
//! Every judge — the conformance oracle, the model's properties, the fuzzer's areas — names what it
//! found with an [`Anomaly`]. The kebab-case names appear verbatim in reports, artifacts, fixtures'
//! file names and CI logs, so a name is never renamed: add a variant instead (DESIGN.md, "Anomaly
//! names"). The table in DESIGN.md/README lists them; a test checks the list against [`Anomaly::ALL`].

use serde::{Deserialize, Serialize};
use std::fmt;

macro_rules! anomalies {
    ($($(#[doc = $doc:literal])* $variant:ident = $name:literal, $area:literal;)*) => {
        /// A named anomaly (kebab-case on the wire and in reports).
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        pub enum Anomaly {
            $($(#[doc = $doc])* #[serde(rename = $name)] $variant,)*
        }

        impl Anomaly {
            /// Every anomaly, in declaration order.
            pub const ALL: &'static [Anomaly] = &[$(Anomaly::$variant,)*];

            /// The stable kebab-case name.
            pub fn name(self) -> &'static str {
                match self {
                    $(Anomaly::$variant => $name,)*
                }
            }

            /// The scenario area (DESIGN.md "Scenario IDs") where cases about this anomaly live.
            pub fn area(self) -> &'static str {
                match self {
                    $(Anomaly::$variant => $area,)*
                }
            }

            /// What it means, in one line.
            pub fn meaning(self) -> &'static str {
                match self {
                    $(Anomaly::$variant => concat!($($doc),*).trim_start(),)*
                }
            }
        }
    };
}

anomalies! {
    /// A record was handed to a member while another member (or the same one, in one response) held it.
    DoubleAcquire = "double-acquire", "acquire";
    /// A record was acquired out of order: past offsets the spec says are acquirable first.
    OutOfOrderAcquisition = "out-of-order-acquisition", "acquire";
    /// An offset was acquired that is not in the log.
    PhantomRecord = "phantom-record", "acquire";
    /// Records were acquired by a request that must not acquire any (refused, closing, MaxRecords 0).
    UnexpectedAcquisition = "unexpected-acquisition", "acquire";
    /// More records were in flight than the in-flight window limit allows.
    WindowLimitExceeded = "window-limit-exceeded", "acquire";
    /// A ShareFetch in record-limit acquire mode (v2) acquired more records than its MaxRecords.
    RecordLimitExceeded = "record-limit-exceeded", "acquire";
    /// An ACCEPTed (acknowledged) record was delivered again.
    RedeliveredAfterAccept = "redelivered-after-accept", "ack";
    /// An archived record (REJECT, GAP, delivery limit) was delivered again.
    RedeliveredAfterArchive = "redelivered-after-archive", "ack";
    /// An acknowledgement of a record the member did not hold was answered with success.
    AckAcceptedForUnownedRecord = "ack-accepted-for-unowned-record", "ack";
    /// Part of a refused acknowledgement request was applied (acknowledgements are all or nothing).
    NonAtomicAck = "non-atomic-ack", "ack";
    /// A response carried an error code other than the one the spec or the session rules require.
    WrongErrorCode = "wrong-error-code", "errors";
    /// A response no client can interpret: an inverted range or an impossible field value.
    MalformedResponse = "malformed-response", "errors";
    /// One ShareFetch response lists the same partition twice.
    DuplicatePartition = "duplicate-partition", "partitions";
    /// A response carries a partition neither the request nor its share session holds.
    UnrequestedPartition = "unrequested-partition", "partitions";
    /// Acquired ranges of one response overlap or repeat an offset.
    OverlappingRanges = "overlapping-ranges", "partitions";
    /// A partition of a subscribed topic stayed assigned to no member of the group.
    PartitionUnassigned = "partition-unassigned", "partitions";
    /// A member got back a record it still held under an unexpired lock.
    EarlyRedelivery = "early-redelivery", "lock";
    /// AcquisitionLockTimeoutMs differed from the group's configured lock duration.
    WrongLockTimeout = "wrong-lock-timeout", "lock";
    /// A delivery count differed from the spec's.
    DeliveryCountMismatch = "delivery-count-mismatch", "delivery-limit";
    /// A record was delivered more times than the delivery limit allows.
    DeliveryLimitExceeded = "delivery-limit-exceeded", "delivery-limit";
    /// The share-partition start offset moved back, or past a record that was not yet terminal.
    SpsoRegressed = "spso-regressed", "spso";
    /// A record that every account of the spec says is available was never delivered again.
    MissingRedelivery = "missing-redelivery", "claims";
    /// A produced record that every account of the spec says is acquirable was never delivered.
    LostRecord = "lost-record", "claims";
    /// A delivered record carried a value other than the one produced at its offset.
    CorruptedRecord = "corrupted-record", "claims";
    /// A claim step of a case (a member received at least N records) did not hold.
    ClaimNotMet = "claim-not-met", "claims";
    /// AlterShareGroupOffsets or DeleteShareGroupOffsets was answered with the wrong code (success while the group has members, a refusal while it has none).
    OffsetsAnswerWrong = "offsets-answer-wrong", "offsets";
    /// DescribeShareGroupOffsets reported a start offset other than the spec's share-partition start offset.
    StartOffsetMismatch = "start-offset-mismatch", "offsets";
    /// DescribeShareGroupOffsets v1 reported a lag other than the spec's: end offset − start offset − records already terminal above it.
    LagMismatch = "lag-mismatch", "offsets";
    /// A group-level limit outside every broker's range was accepted, or one inside every range was refused.
    GroupLimitAnswerWrong = "group-limit-answer-wrong", "group-limits";
    /// A record archived for a dead-letter reason (REJECT, or the delivery limit) never reached the group's DLQ topic.
    DlqMissing = "dlq-missing", "dlq";
    /// The DLQ topic holds a record the spec never sent there (accepted, released below the limit, GAP, or a DLQ topic a broker must not write to).
    DlqUnexpected = "dlq-unexpected", "dlq";
    /// One archived record was written to the DLQ topic more than once.
    DlqDuplicate = "dlq-duplicate", "dlq";
    /// A DLQ record's __dlq.errors.* headers are missing or name the wrong topic, partition, group, delivery count or cause.
    DlqHeaderWrong = "dlq-header-wrong", "dlq";
}

impl fmt::Display for Anomaly {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A name that is not an anomaly's.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown anomaly '{0}'")]
pub struct UnknownAnomaly(pub String);

impl std::str::FromStr for Anomaly {
    type Err = UnknownAnomaly;
    fn from_str(s: &str) -> Result<Anomaly, UnknownAnomaly> {
        Anomaly::ALL
            .iter()
            .copied()
            .find(|a| a.name() == s)
            .ok_or_else(|| UnknownAnomaly(s.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_kebab_unique_and_round_trip() {
        let mut seen = std::collections::BTreeSet::new();
        for a in Anomaly::ALL {
            let n = a.name();
            assert!(n.chars().all(|c| c.is_ascii_lowercase() || c == '-'), "{n}");
            assert!(seen.insert(n), "{n} twice");
            assert_eq!(serde_json::to_string(a).unwrap(), format!("\"{n}\""));
            assert_eq!(n.parse::<Anomaly>().unwrap(), *a);
            assert!(!a.meaning().is_empty());
        }
    }

    #[test]
    fn areas_are_scenario_areas() {
        for a in Anomaly::ALL {
            assert!(crate::vocab::AREAS.contains(&a.area()), "{a}: {}", a.area());
        }
    }
}
