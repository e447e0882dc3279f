//! Per-release differences of share-partition semantics.
//!
//! A [`Profile`] names an Apache Kafka release line and switches the few rules that changed between
//! releases. Everything else in [`crate::spec`] is common to 4.1–4.4. Sources: the "Version deltas"
//! column of docs/semantics.md §1.3 and §2.1, and §4.2 for the in-flight window.

use serde::Serialize;

/// What closing a share session (or dropping its connection) does to the member's acquired records
/// (docs/semantics.md §1.3 row T9).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SessionRelease {
    /// 4.2+ (KAFKA-19972, PR #21092): the delivery count is left unchanged and a record at the
    /// delivery limit is archived, exactly as an explicit RELEASE (`SP.releaseAcquiredRecords@4.2:1050`).
    KeepCount,
    /// 4.1 (KAFKA-17541 [1/2], PR #19430): the delivery count is decremented and the record is always
    /// made Available again, never archived (`SP@4.1:1051,1097`). A crash-looping client therefore
    /// receives the same records forever; 4.2.0 reverted this.
    DecrementCount,
}

/// How the in-flight window limit (`group.share.partition.max.record.locks`) caps acquisition of
/// records that were never in the cache (docs/semantics.md §4.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum WindowRule {
    /// 4.2+ (KAFKA-19555 #20253, KAFKA-19808 #20738): new acquisitions never push
    /// `SPEO - SPSO + 1` past the limit (`SP.lastOffsetAndMaxRecordsToAcquire@4.2:1676`).
    CapNewAcquisitions,
    /// 4.1: the limit is checked only before fetching; one fetch may overshoot it
    /// (`SP.canAcquireRecords@4.1`).
    CheckBeforeFetch,
}

/// One Apache Kafka release line's share-partition rules.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct Profile {
    /// Stable name used on the command line and in reports (`kafka-4.2`).
    pub name: &'static str,
    /// Session close / connection drop behaviour (T9).
    pub session_release: SessionRelease,
    /// Whether ack type RENEW (4) exists: KIP-1222, ShareFetch/ShareAcknowledge v2, 4.2+ (T7).
    pub renew: bool,
    /// In-flight window enforcement (§4.2).
    pub window: WindowRule,
}

impl Profile {
    /// Apache Kafka 4.1.x (share groups in preview).
    pub const KAFKA_4_1: Profile = Profile {
        name: "kafka-4.1",
        session_release: SessionRelease::DecrementCount,
        renew: false,
        window: WindowRule::CheckBeforeFetch,
    };
    /// Apache Kafka 4.2.x, the first production release of share groups, and the default.
    pub const KAFKA_4_2: Profile = Profile {
        name: "kafka-4.2",
        session_release: SessionRelease::KeepCount,
        renew: true,
        window: WindowRule::CapNewAcquisitions,
    };
    /// Apache Kafka 4.3.x: 4.2 rules; the group-level delivery limit (KIP-1240) and
    /// `share.renew.acknowledge.enable` are configuration, not rule changes.
    pub const KAFKA_4_3: Profile = Profile {
        name: "kafka-4.3",
        ..Profile::KAFKA_4_2
    };
    /// Apache Kafka 4.4.x: 4.3 rules. The dead-letter queue (KIP-1191) acts only when a group names
    /// a DLQ topic: which records go there is [`crate::spec::dlq_cause`], the same for every profile
    /// (docs/semantics.md §19).
    pub const KAFKA_4_4: Profile = Profile {
        name: "kafka-4.4",
        ..Profile::KAFKA_4_2
    };

    /// Every profile, oldest first.
    pub const ALL: [Profile; 4] = [
        Profile::KAFKA_4_1,
        Profile::KAFKA_4_2,
        Profile::KAFKA_4_3,
        Profile::KAFKA_4_4,
    ];

    /// The default profile (`kafka-4.2`).
    pub const DEFAULT: Profile = Profile::KAFKA_4_2;

    /// Looks a profile up by its name (`kafka-4.1` …) or bare release line (`4.1` …).
    pub fn by_name(name: &str) -> Option<Profile> {
        let wanted = name.strip_prefix("kafka-").unwrap_or(name);
        Profile::ALL
            .into_iter()
            .find(|p| p.name.strip_prefix("kafka-") == Some(wanted))
    }

    /// Whether a group can switch RENEW off (`share.renew.acknowledge.enable`, 4.3+;
    /// `SP@4.3.1:2307-2311`): RENEW exists and the release line is later than 4.2.
    pub fn has_renew_switch(&self) -> bool {
        self.renew && self.name != Profile::KAFKA_4_2.name
    }

    /// The highest acknowledge type code a request may carry under this profile
    /// (`KA.validateAcknowledgementBatches@4.2:4059-4103`: `> 3` is invalid in v1, `> 4` in v2).
    pub fn max_ack_type(&self) -> i8 {
        if self.renew {
            4
        } else {
            3
        }
    }
}

impl Default for Profile {
    fn default() -> Self {
        Profile::DEFAULT
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profiles_are_found_by_name_and_line() {
        assert_eq!(Profile::by_name("kafka-4.1"), Some(Profile::KAFKA_4_1));
        assert_eq!(Profile::by_name("4.3").map(|p| p.name), Some("kafka-4.3"));
        assert_eq!(Profile::by_name("kafka-4.0"), None);
        assert_eq!(Profile::default().name, "kafka-4.2");
    }

    #[test]
    fn only_4_1_decrements_on_session_release() {
        let decrementing: Vec<_> = Profile::ALL
            .iter()
            .filter(|p| p.session_release == SessionRelease::DecrementCount)
            .map(|p| p.name)
            .collect();
        assert_eq!(decrementing, ["kafka-4.1"]);
    }
}
