//! The protocol vocabulary, defined once: Kafka error codes, acknowledge types, acknowledgement
//! batches and member names. The spec, the oracle, the wire client, the reference broker and the
//! trace format all use these types; none of them defines its own copy.

use serde::{Deserialize, Serialize};
use smallvec::SmallVec;
use std::fmt;

/// A log offset.
pub type Offset = i64;

/// A Kafka protocol error code (`Errors.java`), compared as data: a code is something a broker
/// answered, never an exception. `0` is NONE.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ErrorCode(pub i16);

macro_rules! error_codes {
    ($($name:ident = $code:expr,)*) => {
        #[allow(missing_docs)]
        impl ErrorCode {
            $(pub const $name: ErrorCode = ErrorCode($code);)*
            /// Every code Apache Kafka defines, with its name, in code order
            /// (`clients/src/main/java/org/apache/kafka/common/protocol/Errors.java@4.4`).
            pub const ALL: &'static [(ErrorCode, &'static str)] = &[$((ErrorCode($code), stringify!($name)),)*];
        }
    };
}

error_codes! {
    UNKNOWN_SERVER_ERROR = -1,
    NONE = 0,
    OFFSET_OUT_OF_RANGE = 1,
    CORRUPT_MESSAGE = 2,
    UNKNOWN_TOPIC_OR_PARTITION = 3,
    INVALID_FETCH_SIZE = 4,
    LEADER_NOT_AVAILABLE = 5,
    NOT_LEADER_OR_FOLLOWER = 6,
    REQUEST_TIMED_OUT = 7,
    BROKER_NOT_AVAILABLE = 8,
    REPLICA_NOT_AVAILABLE = 9,
    MESSAGE_TOO_LARGE = 10,
    STALE_CONTROLLER_EPOCH = 11,
    OFFSET_METADATA_TOO_LARGE = 12,
    NETWORK_EXCEPTION = 13,
    COORDINATOR_LOAD_IN_PROGRESS = 14,
    COORDINATOR_NOT_AVAILABLE = 15,
    NOT_COORDINATOR = 16,
    INVALID_TOPIC_EXCEPTION = 17,
    RECORD_LIST_TOO_LARGE = 18,
    NOT_ENOUGH_REPLICAS = 19,
    NOT_ENOUGH_REPLICAS_AFTER_APPEND = 20,
    INVALID_REQUIRED_ACKS = 21,
    ILLEGAL_GENERATION = 22,
    INCONSISTENT_GROUP_PROTOCOL = 23,
    INVALID_GROUP_ID = 24,
    UNKNOWN_MEMBER_ID = 25,
    INVALID_SESSION_TIMEOUT = 26,
    REBALANCE_IN_PROGRESS = 27,
    INVALID_COMMIT_OFFSET_SIZE = 28,
    TOPIC_AUTHORIZATION_FAILED = 29,
    GROUP_AUTHORIZATION_FAILED = 30,
    CLUSTER_AUTHORIZATION_FAILED = 31,
    INVALID_TIMESTAMP = 32,
    UNSUPPORTED_SASL_MECHANISM = 33,
    ILLEGAL_SASL_STATE = 34,
    UNSUPPORTED_VERSION = 35,
    TOPIC_ALREADY_EXISTS = 36,
    INVALID_PARTITIONS = 37,
    INVALID_REPLICATION_FACTOR = 38,
    INVALID_REPLICA_ASSIGNMENT = 39,
    INVALID_CONFIG = 40,
    NOT_CONTROLLER = 41,
    INVALID_REQUEST = 42,
    UNSUPPORTED_FOR_MESSAGE_FORMAT = 43,
    POLICY_VIOLATION = 44,
    OUT_OF_ORDER_SEQUENCE_NUMBER = 45,
    DUPLICATE_SEQUENCE_NUMBER = 46,
    INVALID_PRODUCER_EPOCH = 47,
    INVALID_TXN_STATE = 48,
    INVALID_PRODUCER_ID_MAPPING = 49,
    INVALID_TRANSACTION_TIMEOUT = 50,
    CONCURRENT_TRANSACTIONS = 51,
    TRANSACTION_COORDINATOR_FENCED = 52,
    TRANSACTIONAL_ID_AUTHORIZATION_FAILED = 53,
    SECURITY_DISABLED = 54,
    OPERATION_NOT_ATTEMPTED = 55,
    KAFKA_STORAGE_ERROR = 56,
    LOG_DIR_NOT_FOUND = 57,
    SASL_AUTHENTICATION_FAILED = 58,
    UNKNOWN_PRODUCER_ID = 59,
    REASSIGNMENT_IN_PROGRESS = 60,
    DELEGATION_TOKEN_AUTH_DISABLED = 61,
    DELEGATION_TOKEN_NOT_FOUND = 62,
    DELEGATION_TOKEN_OWNER_MISMATCH = 63,
    DELEGATION_TOKEN_REQUEST_NOT_ALLOWED = 64,
    DELEGATION_TOKEN_AUTHORIZATION_FAILED = 65,
    DELEGATION_TOKEN_EXPIRED = 66,
    INVALID_PRINCIPAL_TYPE = 67,
    NON_EMPTY_GROUP = 68,
    GROUP_ID_NOT_FOUND = 69,
    FETCH_SESSION_ID_NOT_FOUND = 70,
    INVALID_FETCH_SESSION_EPOCH = 71,
    LISTENER_NOT_FOUND = 72,
    TOPIC_DELETION_DISABLED = 73,
    FENCED_LEADER_EPOCH = 74,
    UNKNOWN_LEADER_EPOCH = 75,
    UNSUPPORTED_COMPRESSION_TYPE = 76,
    STALE_BROKER_EPOCH = 77,
    OFFSET_NOT_AVAILABLE = 78,
    MEMBER_ID_REQUIRED = 79,
    PREFERRED_LEADER_NOT_AVAILABLE = 80,
    GROUP_MAX_SIZE_REACHED = 81,
    FENCED_INSTANCE_ID = 82,
    ELIGIBLE_LEADERS_NOT_AVAILABLE = 83,
    ELECTION_NOT_NEEDED = 84,
    NO_REASSIGNMENT_IN_PROGRESS = 85,
    GROUP_SUBSCRIBED_TO_TOPIC = 86,
    INVALID_RECORD = 87,
    UNSTABLE_OFFSET_COMMIT = 88,
    THROTTLING_QUOTA_EXCEEDED = 89,
    PRODUCER_FENCED = 90,
    RESOURCE_NOT_FOUND = 91,
    DUPLICATE_RESOURCE = 92,
    UNACCEPTABLE_CREDENTIAL = 93,
    INCONSISTENT_VOTER_SET = 94,
    INVALID_UPDATE_VERSION = 95,
    FEATURE_UPDATE_FAILED = 96,
    PRINCIPAL_DESERIALIZATION_FAILURE = 97,
    SNAPSHOT_NOT_FOUND = 98,
    POSITION_OUT_OF_RANGE = 99,
    UNKNOWN_TOPIC_ID = 100,
    DUPLICATE_BROKER_REGISTRATION = 101,
    BROKER_ID_NOT_REGISTERED = 102,
    INCONSISTENT_TOPIC_ID = 103,
    INCONSISTENT_CLUSTER_ID = 104,
    TRANSACTIONAL_ID_NOT_FOUND = 105,
    FETCH_SESSION_TOPIC_ID_ERROR = 106,
    INELIGIBLE_REPLICA = 107,
    NEW_LEADER_ELECTED = 108,
    OFFSET_MOVED_TO_TIERED_STORAGE = 109,
    FENCED_MEMBER_EPOCH = 110,
    UNRELEASED_INSTANCE_ID = 111,
    UNSUPPORTED_ASSIGNOR = 112,
    STALE_MEMBER_EPOCH = 113,
    MISMATCHED_ENDPOINT_TYPE = 114,
    UNSUPPORTED_ENDPOINT_TYPE = 115,
    UNKNOWN_CONTROLLER_ID = 116,
    UNKNOWN_SUBSCRIPTION_ID = 117,
    TELEMETRY_TOO_LARGE = 118,
    INVALID_REGISTRATION = 119,
    TRANSACTION_ABORTABLE = 120,
    INVALID_RECORD_STATE = 121,
    SHARE_SESSION_NOT_FOUND = 122,
    INVALID_SHARE_SESSION_EPOCH = 123,
    FENCED_STATE_EPOCH = 124,
    INVALID_VOTER_KEY = 125,
    DUPLICATE_VOTER = 126,
    VOTER_NOT_FOUND = 127,
    INVALID_REGULAR_EXPRESSION = 128,
    REBOOTSTRAP_REQUIRED = 129,
    STREAMS_INVALID_TOPOLOGY = 130,
    STREAMS_INVALID_TOPOLOGY_EPOCH = 131,
    STREAMS_TOPOLOGY_FENCED = 132,
    SHARE_SESSION_LIMIT_REACHED = 133,
    GROUP_DELETION_FAILED = 134,
    STREAMS_TOPOLOGY_DESCRIPTION_UPDATE_FAILED = 135,
    CONTROLLER_ID_NOT_REGISTERED = 136,
}

impl ErrorCode {
    /// Whether the broker refused for want of a permission (an ACL): TOPIC_, GROUP_, CLUSTER_,
    /// TRANSACTIONAL_ID_ or DELEGATION_TOKEN_AUTHORIZATION_FAILED.
    pub fn is_authorization(self) -> bool {
        matches!(self.0, 29 | 30 | 31 | 53 | 65)
    }

    /// Whether this is NONE.
    pub fn is_none(self) -> bool {
        self.0 == 0
    }

    /// Kafka's name for the code (`INVALID_RECORD_STATE`), or `None` for a code Kafka does not define.
    pub fn name(self) -> Option<&'static str> {
        ErrorCode::ALL
            .binary_search_by_key(&self, |(c, _)| *c)
            .ok()
            .map(|i| ErrorCode::ALL[i].1)
    }

    /// The code with this Kafka name.
    pub fn by_name(name: &str) -> Option<ErrorCode> {
        ErrorCode::ALL
            .iter()
            .find(|(_, n)| *n == name)
            .map(|(c, _)| *c)
    }
}

impl From<i16> for ErrorCode {
    fn from(v: i16) -> Self {
        ErrorCode(v)
    }
}

impl fmt::Display for ErrorCode {
    /// `INVALID_RECORD_STATE (121)`, or `UNKNOWN (999)` for a code Kafka does not define.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.name().unwrap_or("UNKNOWN"), self.0)
    }
}

impl fmt::Debug for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Acknowledge types, with their wire codes (`AcknowledgeType.java@4.2`; GAP is wire-only:
/// `ShareAcknowledgeRequest.json`, docs/semantics.md "Acknowledge types").
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AckType {
    /// 0: the offset is not a data record (control marker, compaction hole); archives it.
    Gap,
    /// 1: processed; the record becomes Acknowledged.
    Accept,
    /// 2: give it back for redelivery; Available, or Archived at the delivery limit.
    Release,
    /// 3: unprocessable; the record becomes Archived.
    Reject,
    /// 4: extend the acquisition lock (KIP-1222, v2 requests with IsRenewAck, 4.2+).
    Renew,
}

impl AckType {
    /// Every type, in wire-code order.
    pub const ALL: [AckType; 5] = [
        AckType::Gap,
        AckType::Accept,
        AckType::Release,
        AckType::Reject,
        AckType::Renew,
    ];

    /// The wire code.
    pub fn code(self) -> i8 {
        match self {
            AckType::Gap => 0,
            AckType::Accept => 1,
            AckType::Release => 2,
            AckType::Reject => 3,
            AckType::Renew => 4,
        }
    }

    /// The type for a wire code, if there is one.
    pub fn from_code(code: i8) -> Option<AckType> {
        AckType::ALL.into_iter().find(|t| t.code() == code)
    }

    /// Lower-case name as used in traces and reports.
    pub fn name(self) -> &'static str {
        match self {
            AckType::Gap => "gap",
            AckType::Accept => "accept",
            AckType::Release => "release",
            AckType::Reject => "reject",
            AckType::Renew => "renew",
        }
    }
}

impl fmt::Display for AckType {
    /// Upper case, as Kafka names them: `ACCEPT`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name().to_ascii_uppercase())
    }
}

/// One acknowledgement batch as on the wire: an inclusive offset range and either one type code for
/// the whole range or exactly one per offset (`AcknowledgementBatches` in
/// `ShareAcknowledgeRequest.json`). Nothing is validated on construction, so invalid batches can be
/// sent on purpose; [`crate::spec::SharePartition::validate_ack_batches`] says what a broker must
/// refuse.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AckBatch {
    /// First offset, inclusive.
    pub first_offset: Offset,
    /// Last offset, inclusive.
    pub last_offset: Offset,
    /// Wire type codes: one for the whole batch, or one per offset.
    pub types: SmallVec<[i8; 2]>,
}

impl AckBatch {
    /// A batch with one type for the whole range.
    pub fn new(first_offset: Offset, last_offset: Offset, ty: AckType) -> AckBatch {
        AckBatch::with_code(first_offset, last_offset, ty.code())
    }

    /// A batch with one raw type code for the whole range (which may be invalid on purpose).
    pub fn with_code(first_offset: Offset, last_offset: Offset, code: i8) -> AckBatch {
        AckBatch {
            first_offset,
            last_offset,
            types: smallvec::smallvec![code],
        }
    }

    /// Whether `offset` lies inside the batch's range.
    pub fn contains(&self, offset: Offset) -> bool {
        (self.first_offset..=self.last_offset).contains(&offset)
    }

    /// The type code that applies to `offset`: the batch's one code, or the code at the offset's
    /// position in a per-offset list. `None` outside the range or where a (malformed) per-offset
    /// list has no entry for it.
    pub fn type_at(&self, offset: Offset) -> Option<i8> {
        if !self.contains(offset) {
            return None;
        }
        match self.types.as_slice() {
            [one] => Some(*one),
            many => usize::try_from(offset - self.first_offset)
                .ok()
                .and_then(|i| many.get(i).copied()),
        }
    }

    /// The acknowledge type that applies to `offset`, when its code is one.
    pub fn ack_type_at(&self, offset: Offset) -> Option<AckType> {
        self.type_at(offset).and_then(AckType::from_code)
    }

    /// Sorted offsets as the fewest batches of contiguous runs, each with the one type code `code`.
    pub fn runs(offsets: &[Offset], code: i8) -> Vec<AckBatch> {
        let mut out: Vec<AckBatch> = Vec::new();
        for &o in offsets {
            match out.last_mut() {
                Some(b) if b.last_offset.checked_add(1) == Some(o) => b.last_offset = o,
                _ => out.push(AckBatch::with_code(o, o, code)),
            }
        }
        out
    }

    /// The offsets of the range, at most `cap` of them from the first (a hostile or fuzzed range
    /// may span the whole offset space).
    pub fn offsets(&self, cap: i64) -> impl Iterator<Item = Offset> {
        let last = self
            .last_offset
            .min(self.first_offset.saturating_add(cap.max(1) - 1));
        self.first_offset..=last
    }
}

impl fmt::Display for AckBatch {
    /// `3..5:[1]`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}..{}:{:?}",
            self.first_offset,
            self.last_offset,
            self.types.as_slice()
        )
    }
}

/// The type code each offset of `batches` gets, the first batch naming an offset winning (batches
/// may overlap at a boundary).
pub fn type_code_at(batches: &[AckBatch], offset: Offset) -> Option<i8> {
    batches.iter().find_map(|b| b.type_at(offset))
}

/// The scenario areas (`kip932.<area>.<name>`): where a case, and an anomaly, belongs.
pub const AREAS: [&str; 14] = [
    "acquire",
    "ack",
    "lock",
    "delivery-limit",
    "session",
    "spso",
    "errors",
    "claims",
    "faults",
    "partitions",
    "renew",
    "dlq",
    "offsets",
    "group-limits",
];

/// Whether `name` is a member name a trace may use: 1–16 ASCII letters, digits or `-`.
pub fn valid_member_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 16
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
}

/// The name of the `index`-th member of a generated case: `A`, `B`, … `Z`, then `M26`, `M27`, ….
pub fn member_name(index: usize) -> String {
    match u8::try_from(index) {
        Ok(i) if i < 26 => ((b'A' + i) as char).to_string(),
        _ => format!("M{index}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_codes_are_sorted_unique_and_named() {
        assert_eq!(ErrorCode::ALL.len(), 138);
        assert!(ErrorCode::ALL.windows(2).all(|w| w[0].0 < w[1].0));
        assert_eq!(ErrorCode(121).name(), Some("INVALID_RECORD_STATE"));
        assert_eq!(ErrorCode::INVALID_RECORD_STATE, ErrorCode(121));
        assert_eq!(
            ErrorCode::UNKNOWN_SERVER_ERROR.to_string(),
            "UNKNOWN_SERVER_ERROR (-1)"
        );
        assert_eq!(ErrorCode(999).to_string(), "UNKNOWN (999)");
        assert_eq!(
            ErrorCode::by_name("FENCED_STATE_EPOCH"),
            Some(ErrorCode(124))
        );
    }

    #[test]
    fn type_at_never_defaults() {
        let per = AckBatch {
            first_offset: 10,
            last_offset: 12,
            types: smallvec::smallvec![1, 2],
        };
        assert_eq!(per.type_at(10), Some(1));
        assert_eq!(per.type_at(11), Some(2));
        assert_eq!(per.type_at(12), None, "no entry: not ACCEPT by default");
        assert_eq!(per.type_at(9), None);
        assert_eq!(
            AckBatch::new(0, 5, AckType::Reject).ack_type_at(5),
            Some(AckType::Reject)
        );
    }

    #[test]
    fn runs_split_at_gaps() {
        let b = AckBatch::runs(&[1, 2, 3, 5, 7, 8], 2);
        let ranges: Vec<(i64, i64)> = b.iter().map(|b| (b.first_offset, b.last_offset)).collect();
        assert_eq!(ranges, vec![(1, 3), (5, 5), (7, 8)]);
        assert!(b.iter().all(|b| b.types.as_slice() == [2]));
        assert!(AckBatch::runs(&[], 1).is_empty());
        assert_eq!(AckBatch::runs(&[i64::MAX], 1).len(), 1);
    }

    #[test]
    fn capped_offsets() {
        let b = AckBatch::with_code(0, i64::MAX, 1);
        assert_eq!(b.offsets(3).collect::<Vec<_>>(), vec![0, 1, 2]);
        assert_eq!(AckBatch::with_code(5, 4, 1).offsets(10).count(), 0);
    }

    #[test]
    fn member_names() {
        assert_eq!(member_name(0), "A");
        assert_eq!(member_name(25), "Z");
        assert_eq!(member_name(26), "M26");
        assert!(valid_member_name("B-2"));
        assert!(!valid_member_name(""));
        assert!(!valid_member_name("a b"));
    }

    #[test]
    fn serde_shapes() {
        assert_eq!(
            serde_json::to_string(&AckType::Release).unwrap(),
            "\"release\""
        );
        let b: AckBatch =
            serde_json::from_str(r#"{"first_offset": 1, "last_offset": 2, "types": [1, 3]}"#)
                .unwrap();
        assert_eq!(b.types.as_slice(), [1, 3]);
        assert!(serde_json::from_str::<AckBatch>(
            r#"{"first_offset": 1, "last_offset": 2, "types": [1], "x": 0}"#
        )
        .is_err());
        assert_eq!(serde_json::to_string(&ErrorCode(42)).unwrap(), "42");
    }
}
