//! What a broker's ApiVersions answer says about its Apache Kafka release line.
//!
//! The markers are protocol facts of Apache Kafka's message schemas and feature levels: the share
//! APIs appear at v1 in 4.1 (v0 in 4.0, early access); ShareFetch/ShareAcknowledge v2 appear in
//! 4.2; the highest supported `metadata.version` level rises with every release; 4.4 supports
//! `share.version` 2. Levels measured on real brokers (docs/wire-client.md, "Release guess"):
//! 4.1.2 → 27, 4.2.2 → 29, 4.3.1 → 30, 4.4.0 → 33. Another Kafka-protocol broker may look like any
//! of these: this is a guess, and it is reported as one.

use crate::wire::BrokerVersions;
use kafka_protocol::messages::ApiKey;
use serde::Serialize;
use sharecheck_model::Profile;
use std::fmt;

/// Highest supported `metadata.version` level of Kafka 4.3.1 (measured; 4.2.2 has 29).
pub const METADATA_VERSION_4_3: i16 = 30;
/// Above every 4.3 level (Kafka 4.4.0 measured at 33).
pub const METADATA_VERSION_4_4: i16 = 31;

/// An Apache Kafka release line, as far as ApiVersions can tell.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Release {
    /// No share APIs at all: before 4.0.
    BeforeShareGroups,
    /// Share APIs at v0 only: the 4.0 early access.
    EarlyAccess40,
    /// ShareFetch v1 with `metadata.version`: 4.1.
    Kafka41,
    /// ShareFetch v2, `metadata.version` below the 4.3 level: 4.2.
    Kafka42,
    /// The 4.3 `metadata.version` level.
    Kafka43,
    /// A 4.4 `metadata.version` level or `share.version` 2.
    Kafka44OrLater,
    /// ShareFetch v2 without `metadata.version`: 4.2 or a later line.
    Kafka42OrLater,
}

impl Release {
    /// The guess, or `None` when the broker does not look like any Apache Kafka release (a broker
    /// with ShareFetch v1 and no `metadata.version` — sharecheck's reference broker is one).
    pub fn guess(v: &BrokerVersions) -> Option<Release> {
        let fetch = v.broker_range(ApiKey::ShareFetch);
        let mv_max = v.supported_features.get("metadata.version").map(|r| r.1);
        let sv_max = v.supported_features.get("share.version").map(|r| r.1);
        Some(match fetch {
            None => Release::BeforeShareGroups,
            Some((_, 0)) => Release::EarlyAccess40,
            Some((_, 1)) if mv_max.is_some() => Release::Kafka41,
            Some((_, 1)) => return None,
            _ => match (mv_max, sv_max) {
                (Some(l), _) if l >= METADATA_VERSION_4_4 => Release::Kafka44OrLater,
                (_, Some(s)) if s >= 2 => Release::Kafka44OrLater,
                (Some(l), _) if l >= METADATA_VERSION_4_3 => Release::Kafka43,
                (Some(_), _) => Release::Kafka42,
                (None, _) => Release::Kafka42OrLater,
            },
        })
    }

    /// The spec profile whose rules this release follows, or `None` for releases without
    /// production share groups.
    pub fn profile(self) -> Option<Profile> {
        match self {
            Release::BeforeShareGroups | Release::EarlyAccess40 => None,
            Release::Kafka41 => Some(Profile::KAFKA_4_1),
            Release::Kafka42 | Release::Kafka42OrLater => Some(Profile::KAFKA_4_2),
            Release::Kafka43 => Some(Profile::KAFKA_4_3),
            Release::Kafka44OrLater => Some(Profile::KAFKA_4_4),
        }
    }
}

/// The profile a broker is judged by when none is asked for: its release's, or
/// [`Profile::DEFAULT`] when the release is not recognised (say so to the user).
pub fn profile_for(guess: Option<Release>) -> Profile {
    guess.and_then(Release::profile).unwrap_or(Profile::DEFAULT)
}

impl fmt::Display for Release {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Release::BeforeShareGroups => "< 4.0 (no share APIs)",
            Release::EarlyAccess40 => "4.0 (early-access share APIs v0)",
            Release::Kafka41 => "4.1",
            Release::Kafka42 => "4.2",
            Release::Kafka43 => "4.3",
            Release::Kafka44OrLater => "4.4 or later",
            Release::Kafka42OrLater => "4.2 or later",
        })
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use kafka_protocol::messages::api_versions_response::{
        ApiVersion, FinalizedFeatureKey, SupportedFeatureKey,
    };
    use kafka_protocol::messages::ApiVersionsResponse;
    use kafka_protocol::protocol::StrBytes;

    pub(crate) fn versions(
        fetch_max: Option<i16>,
        share_level: Option<i16>,
        mv: Option<i16>,
    ) -> BrokerVersions {
        let mut keys = vec![ApiVersion::default().with_api_key(18).with_max_version(4)];
        if let Some(m) = fetch_max {
            for key in [76, 77, 78, 79] {
                let max = if key >= 78 { m } else { m.min(1) };
                keys.push(
                    ApiVersion::default()
                        .with_api_key(key)
                        .with_min_version(if m == 0 { 0 } else { 1 })
                        .with_max_version(max),
                );
            }
        }
        let mut resp = ApiVersionsResponse::default().with_api_keys(keys);
        if let Some(l) = share_level {
            resp.finalized_features = vec![FinalizedFeatureKey::default()
                .with_name(StrBytes::from_static_str("share.version"))
                .with_max_version_level(l)
                .with_min_version_level(l)];
        }
        if let Some(mv) = mv {
            resp.supported_features = vec![SupportedFeatureKey::default()
                .with_name(StrBytes::from_static_str("metadata.version"))
                .with_min_version(7)
                .with_max_version(mv)];
        }
        BrokerVersions::from_response(&resp, 4)
    }

    #[test]
    fn release_guess_follows_markers() {
        let g = |f, s, m| Release::guess(&versions(f, s, m));
        assert_eq!(g(Some(1), Some(1), Some(27)), Some(Release::Kafka41));
        assert_eq!(g(Some(2), Some(1), Some(29)), Some(Release::Kafka42));
        assert_eq!(g(Some(2), Some(1), Some(30)), Some(Release::Kafka43));
        assert_eq!(g(Some(2), Some(1), Some(33)), Some(Release::Kafka44OrLater));
        assert_eq!(g(Some(2), Some(1), None), Some(Release::Kafka42OrLater));
        assert_eq!(g(None, None, None), Some(Release::BeforeShareGroups));
        assert_eq!(g(Some(0), None, None), Some(Release::EarlyAccess40));
        // ShareFetch v1 without metadata.version: not Apache Kafka 4.1 (the reference broker).
        assert_eq!(g(Some(1), Some(1), None), None);
    }

    #[test]
    fn profiles_follow_the_release() {
        assert_eq!(Release::Kafka41.profile(), Some(Profile::KAFKA_4_1));
        assert_eq!(Release::Kafka44OrLater.profile(), Some(Profile::KAFKA_4_4));
        assert_eq!(Release::Kafka42OrLater.profile(), Some(Profile::KAFKA_4_2));
        assert_eq!(Release::EarlyAccess40.profile(), None);
        assert_eq!(Release::Kafka44OrLater.to_string(), "4.4 or later");
        assert_eq!(profile_for(None), Profile::DEFAULT);
        assert_eq!(profile_for(Some(Release::Kafka41)), Profile::KAFKA_4_1);
    }
}
