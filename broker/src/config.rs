//! Broker configuration and the share-group configs a client can set (IncrementalAlterConfigs on
//! resource type GROUP, docs/semantics.md §2.2, §3, §4.2, §4.3, §7.2).

use std::net::SocketAddr;
use std::time::Duration;

/// An inconsistent broker configuration (the message names the setting).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

use sharecheck_model::{AutoOffsetReset, Profile};

use crate::mutant::BrokerMutant;

/// INVALID_CONFIG.
pub const INVALID_CONFIG: i16 = 40;

/// How to run the reference broker. [`BrokerConfig::default`] listens on `127.0.0.1:0` with
/// Apache Kafka's defaults, except where a field says otherwise.
#[derive(Clone, Debug)]
pub struct BrokerConfig {
    /// Where to listen; port 0 picks a free port ([`crate::BrokerHandle::addr`] tells which).
    pub listen: SocketAddr,
    /// The address Metadata, FindCoordinator and DescribeCluster give out (Kafka's
    /// `advertised.listeners`); `None`: the listen address. A proxy in front of the broker sets its own.
    pub advertised: Option<SocketAddr>,
    /// The release whose share-partition rules apply (default `kafka-4.2`).
    pub profile: Profile,
    /// A planted bug, or `None`.
    pub mutant: Option<BrokerMutant>,
    /// The node id in Metadata, FindCoordinator and friends.
    pub node_id: i32,
    /// The cluster id in Metadata.
    pub cluster_id: String,
    /// `group.share.record.lock.duration.ms` (default 30000).
    pub record_lock_duration_ms: i32,
    /// `group.share.min.record.lock.duration.ms`. Kafka's default is 15000; here **1000** (Kafka's
    /// lowest allowed value), so conformance scenarios can use short locks without configuration.
    pub min_record_lock_duration_ms: i32,
    /// `group.share.max.record.lock.duration.ms` (default 60000).
    pub max_record_lock_duration_ms: i32,
    /// `group.share.delivery.count.limit` (default 5).
    pub delivery_limit: u8,
    /// `group.share.min.delivery.count.limit` (default 2, 4.3+).
    pub min_delivery_limit: u8,
    /// `group.share.max.delivery.count.limit` (default 10, 4.3+).
    pub max_delivery_limit: u8,
    /// `group.share.partition.max.record.locks` (default 2000, 4.1+).
    pub max_record_locks: u32,
    /// `group.share.min.partition.max.record.locks` (default 100, 4.3+).
    pub min_max_record_locks: u32,
    /// `group.share.max.partition.max.record.locks` (default 4000, 4.3+).
    pub max_max_record_locks: u32,
    /// `group.share.heartbeat.interval.ms` (default 5000).
    pub heartbeat_interval_ms: i32,
    /// `group.share.session.timeout.ms` (default 45000).
    pub session_timeout_ms: i32,
    /// `group.share.max.size` (default 200).
    pub max_group_size: usize,
    /// `group.share.max.share.sessions` (default 2000, 4.1+).
    pub max_share_sessions: usize,
    /// Largest request frame accepted; a bigger length prefix closes the connection
    /// (Kafka's `socket.request.max.bytes` is 100 MiB; default here 16 MiB).
    pub max_frame_bytes: usize,
    /// A connection with no complete request for this long is closed (`connections.max.idle.ms`,
    /// default 10 minutes).
    pub idle_timeout: Duration,
    /// Writing one response may take at most this long, else the connection is closed.
    pub write_timeout: Duration,
    /// Print one line per request and connection event on stderr.
    pub trace: bool,
    /// `errors.deadletterqueue.topic.name.prefix` (4.4; default `dlq.`, empty: any name): a group's
    /// DLQ topic must start with it, checked when a record is written (docs/semantics.md §19).
    pub dlq_topic_prefix: String,
}

impl Default for BrokerConfig {
    fn default() -> Self {
        BrokerConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            advertised: None,
            profile: Profile::DEFAULT,
            mutant: None,
            node_id: 1,
            cluster_id: "c2hhcmVjaGVjay1icm9rZXI".to_string(),
            record_lock_duration_ms: 30_000,
            min_record_lock_duration_ms: 1_000,
            max_record_lock_duration_ms: 60_000,
            delivery_limit: 5,
            min_delivery_limit: 2,
            max_delivery_limit: 10,
            max_record_locks: 2_000,
            min_max_record_locks: 100,
            max_max_record_locks: 4_000,
            heartbeat_interval_ms: 5_000,
            session_timeout_ms: 45_000,
            max_group_size: 200,
            max_share_sessions: 2_000,
            max_frame_bytes: 16 * 1024 * 1024,
            idle_timeout: Duration::from_secs(600),
            write_timeout: Duration::from_secs(30),
            trace: false,
            dlq_topic_prefix: "dlq.".to_string(),
        }
    }
}

impl BrokerConfig {
    /// The default configuration listening on `listen`.
    pub fn new(listen: SocketAddr) -> BrokerConfig {
        BrokerConfig {
            listen,
            ..BrokerConfig::default()
        }
    }

    /// Checks the bounds are consistent (as Kafka validates its broker configs at startup).
    pub fn validate(&self) -> Result<(), ConfigError> {
        let lock = (
            self.min_record_lock_duration_ms,
            self.record_lock_duration_ms,
            self.max_record_lock_duration_ms,
        );
        if !(lock.0 >= 1 && lock.0 <= lock.1 && lock.1 <= lock.2) {
            return Err(ConfigError(format!(
                "record lock durations min {} <= default {} <= max {} do not hold",
                lock.0, lock.1, lock.2
            )));
        }
        let dl = (
            self.min_delivery_limit,
            self.delivery_limit,
            self.max_delivery_limit,
        );
        if !(dl.0 >= 2 && dl.0 <= dl.1 && dl.1 <= dl.2) {
            return Err(ConfigError(format!(
                "delivery limits min {} <= default {} <= max {} (min >= 2) do not hold",
                dl.0, dl.1, dl.2
            )));
        }
        let rl = (
            self.min_max_record_locks,
            self.max_record_locks,
            self.max_max_record_locks,
        );
        if !(rl.0 >= 1 && rl.0 <= rl.1 && rl.1 <= rl.2) {
            return Err(ConfigError(format!(
                "record locks min {} <= default {} <= max {} do not hold",
                rl.0, rl.1, rl.2
            )));
        }
        if self.heartbeat_interval_ms < 1 || self.session_timeout_ms <= self.heartbeat_interval_ms {
            return Err(ConfigError(
                "heartbeat interval must be positive and below the session timeout".to_string(),
            ));
        }
        if self.max_frame_bytes < 1024 {
            return Err(ConfigError(
                "max_frame_bytes must be at least 1024".to_string(),
            ));
        }
        Ok(())
    }
}

/// `share.isolation.level` values.
const ISOLATION_LEVELS: [&str; 2] = ["read_uncommitted", "read_committed"];

/// The share-group configs of one group that a client set; `None` means the broker default.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GroupOverrides {
    pub record_lock_duration_ms: Option<i32>,
    pub auto_offset_reset: Option<AutoOffsetReset>,
    pub delivery_limit: Option<u8>,
    pub max_record_locks: Option<u32>,
    pub heartbeat_interval_ms: Option<i32>,
    pub session_timeout_ms: Option<i32>,
    pub isolation_level: Option<&'static str>,
    /// `errors.deadletterqueue.topic.name` (4.4, KIP-1191): the group's DLQ topic; empty or unset
    /// means no DLQ.
    pub dlq_topic: Option<String>,
    /// `share.renew.acknowledge.enable` (4.3, KIP-1222; default true).
    pub renew_enabled: Option<bool>,
}

/// The effective settings of one group.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GroupSettings {
    pub record_lock_duration_ms: i32,
    pub auto_offset_reset: AutoOffsetReset,
    pub delivery_limit: u8,
    pub max_record_locks: u32,
    pub heartbeat_interval_ms: i32,
    pub session_timeout_ms: i32,
    pub renew_enabled: bool,
}

/// The group config names this broker knows, in the order DescribeConfigs lists them.
pub const GROUP_CONFIG_NAMES: [&str; 9] = [
    "share.record.lock.duration.ms",
    "share.auto.offset.reset",
    "share.delivery.count.limit",
    "share.partition.max.record.locks",
    "share.heartbeat.interval.ms",
    "share.session.timeout.ms",
    "share.isolation.level",
    "errors.deadletterqueue.topic.name",
    "share.renew.acknowledge.enable",
];

fn reset_name(r: AutoOffsetReset) -> &'static str {
    match r {
        AutoOffsetReset::Earliest => "earliest",
        AutoOffsetReset::Latest => "latest",
    }
}

impl GroupOverrides {
    /// The effective settings under `broker`.
    pub fn settings(&self, broker: &BrokerConfig) -> GroupSettings {
        GroupSettings {
            record_lock_duration_ms: self
                .record_lock_duration_ms
                .unwrap_or(broker.record_lock_duration_ms),
            auto_offset_reset: self.auto_offset_reset.unwrap_or(AutoOffsetReset::Latest),
            delivery_limit: self.delivery_limit.unwrap_or(broker.delivery_limit),
            max_record_locks: self.max_record_locks.unwrap_or(broker.max_record_locks),
            heartbeat_interval_ms: self
                .heartbeat_interval_ms
                .unwrap_or(broker.heartbeat_interval_ms),
            session_timeout_ms: self.session_timeout_ms.unwrap_or(broker.session_timeout_ms),
            renew_enabled: self.renew_enabled.unwrap_or(true),
        }
    }

    /// Sets (`Some`) or removes (`None`) one config, validating it like Kafka's `GroupConfig`
    /// (`GroupConfig.java@4.3`): unknown names and out-of-range values are INVALID_CONFIG (40).
    pub fn set(
        &mut self,
        name: &str,
        value: Option<&str>,
        broker: &BrokerConfig,
    ) -> Result<(), (i16, String)> {
        let bad = |m: String| Err((INVALID_CONFIG, m));
        let int = |v: &str| -> Result<i64, (i16, String)> {
            v.trim().parse::<i64>().map_err(|_| {
                (
                    INVALID_CONFIG,
                    format!("Invalid value {v} for configuration {name}: Not a number of type INT"),
                )
            })
        };
        let unchecked = broker.mutant == Some(crate::mutant::BrokerMutant::GroupLimitUnchecked)
            && sharecheck_model::spec::group_limit_answer(name, 0).is_some();
        let range = |v: i64, lo: i64, hi: i64| -> Result<i64, (i16, String)> {
            if (v < lo || v > hi) && !unchecked {
                Err((
                    INVALID_CONFIG,
                    format!("{name} must be between {lo} and {hi}, not {v}"),
                ))
            } else {
                Ok(v)
            }
        };
        match name {
            "share.record.lock.duration.ms" => {
                self.record_lock_duration_ms = match value {
                    None => None,
                    Some(v) => Some(range(
                        int(v)?,
                        broker.min_record_lock_duration_ms.into(),
                        broker.max_record_lock_duration_ms.into(),
                    )? as i32),
                }
            }
            "share.auto.offset.reset" => {
                self.auto_offset_reset = match value.map(|v| v.trim().to_ascii_lowercase()) {
                    None => None,
                    Some(v) if v == "earliest" => Some(AutoOffsetReset::Earliest),
                    Some(v) if v == "latest" => Some(AutoOffsetReset::Latest),
                    Some(v) if v.starts_with("by_duration:") => {
                        return bad(format!(
                            "{name}={v}: by_duration is not supported by the reference broker (the spec has no by_duration reset)"
                        ))
                    }
                    Some(v) => return bad(format!("Invalid value {v} for configuration {name}")),
                }
            }
            "share.delivery.count.limit" => {
                self.delivery_limit = match value {
                    None => None,
                    Some(v) => Some(range(
                        int(v)?,
                        broker.min_delivery_limit.into(),
                        broker.max_delivery_limit.into(),
                    )? as u8),
                }
            }
            "share.partition.max.record.locks" => {
                self.max_record_locks = match value {
                    None => None,
                    Some(v) => Some(range(
                        int(v)?,
                        broker.min_max_record_locks.into(),
                        broker.max_max_record_locks.into(),
                    )? as u32),
                }
            }
            "share.heartbeat.interval.ms" => {
                self.heartbeat_interval_ms = match value {
                    None => None,
                    Some(v) => Some(range(int(v)?, 1, i32::MAX.into())? as i32),
                }
            }
            "share.session.timeout.ms" => {
                self.session_timeout_ms = match value {
                    None => None,
                    Some(v) => Some(range(int(v)?, 1, i32::MAX.into())? as i32),
                }
            }
            "share.isolation.level" => {
                self.isolation_level = match value.map(|v| v.trim().to_ascii_lowercase()) {
                    None => None,
                    Some(v) => match ISOLATION_LEVELS.iter().find(|l| **l == v) {
                        Some(l) => Some(*l),
                        None => return bad(format!("Invalid value {v} for configuration {name}")),
                    },
                }
            }
            "share.renew.acknowledge.enable" => {
                self.renew_enabled = match value.map(|v| v.trim().to_ascii_lowercase()) {
                    None => None,
                    Some(v) if v == "true" => Some(true),
                    Some(v) if v == "false" => Some(false),
                    Some(v) => {
                        return bad(format!(
                            "Invalid value {v} for configuration {name}: Expected value to be either true or false"
                        ))
                    }
                }
            }
            "errors.deadletterqueue.topic.name" => {
                // Only `__` is refused when the config is set (`GroupConfig@4.4:667-673`); the
                // prefix and the topic itself are checked when a record is written.
                if value.is_some_and(|v| v.starts_with("__")) {
                    return bad(format!(
                        "{name}: DLQ topic name must not start with '__'"
                    ));
                }
                self.dlq_topic = value.map(str::to_string);
            }
            _ => return bad(format!("Unknown group config name: {name}")),
        }
        let s = self.settings(broker);
        if s.heartbeat_interval_ms >= s.session_timeout_ms {
            return bad(format!(
                "share.heartbeat.interval.ms ({}) must be less than share.session.timeout.ms ({})",
                s.heartbeat_interval_ms, s.session_timeout_ms
            ));
        }
        Ok(())
    }

    /// `(name, value, set explicitly)` for every known config, for DescribeConfigs.
    pub fn describe(&self, broker: &BrokerConfig) -> Vec<(&'static str, String, bool)> {
        let s = self.settings(broker);
        GROUP_CONFIG_NAMES
            .iter()
            .map(|name| {
                let (value, set) = match *name {
                    "share.record.lock.duration.ms" => (
                        s.record_lock_duration_ms.to_string(),
                        self.record_lock_duration_ms.is_some(),
                    ),
                    "share.auto.offset.reset" => (
                        reset_name(s.auto_offset_reset).to_string(),
                        self.auto_offset_reset.is_some(),
                    ),
                    "share.delivery.count.limit" => {
                        (s.delivery_limit.to_string(), self.delivery_limit.is_some())
                    }
                    "share.partition.max.record.locks" => (
                        s.max_record_locks.to_string(),
                        self.max_record_locks.is_some(),
                    ),
                    "share.heartbeat.interval.ms" => (
                        s.heartbeat_interval_ms.to_string(),
                        self.heartbeat_interval_ms.is_some(),
                    ),
                    "share.session.timeout.ms" => (
                        s.session_timeout_ms.to_string(),
                        self.session_timeout_ms.is_some(),
                    ),
                    "share.renew.acknowledge.enable" => {
                        (s.renew_enabled.to_string(), self.renew_enabled.is_some())
                    }
                    "errors.deadletterqueue.topic.name" => (
                        self.dlq_topic.clone().unwrap_or_default(),
                        self.dlq_topic.is_some(),
                    ),
                    _ => (
                        self.isolation_level
                            .unwrap_or("read_uncommitted")
                            .to_string(),
                        self.isolation_level.is_some(),
                    ),
                };
                (*name, value, set)
            })
            .collect()
    }
}

/// Broker configs reported by DescribeConfigs on the BROKER resource: the share-group bounds a
/// client may want to discover.
pub fn broker_configs(b: &BrokerConfig) -> Vec<(&'static str, String)> {
    vec![
        (
            "group.share.record.lock.duration.ms",
            b.record_lock_duration_ms.to_string(),
        ),
        (
            "group.share.min.record.lock.duration.ms",
            b.min_record_lock_duration_ms.to_string(),
        ),
        (
            "group.share.max.record.lock.duration.ms",
            b.max_record_lock_duration_ms.to_string(),
        ),
        (
            "group.share.delivery.count.limit",
            b.delivery_limit.to_string(),
        ),
        (
            "group.share.min.delivery.count.limit",
            b.min_delivery_limit.to_string(),
        ),
        (
            "group.share.max.delivery.count.limit",
            b.max_delivery_limit.to_string(),
        ),
        (
            "group.share.partition.max.record.locks",
            b.max_record_locks.to_string(),
        ),
        (
            "group.share.min.partition.max.record.locks",
            b.min_max_record_locks.to_string(),
        ),
        (
            "group.share.max.partition.max.record.locks",
            b.max_max_record_locks.to_string(),
        ),
        (
            "group.share.heartbeat.interval.ms",
            b.heartbeat_interval_ms.to_string(),
        ),
        (
            "group.share.session.timeout.ms",
            b.session_timeout_ms.to_string(),
        ),
        ("group.share.max.size", b.max_group_size.to_string()),
        (
            "group.share.max.share.sessions",
            b.max_share_sessions.to_string(),
        ),
        ("socket.request.max.bytes", b.max_frame_bytes.to_string()),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_configs_validate_like_kafka() {
        let b = BrokerConfig::default();
        let mut g = GroupOverrides::default();
        assert_eq!(
            g.set("share.record.lock.duration.ms", Some("1000"), &b),
            Ok(())
        );
        assert_eq!(
            g.set("share.record.lock.duration.ms", Some("999"), &b)
                .map_err(|e| e.0),
            Err(INVALID_CONFIG)
        );
        assert_eq!(g.set("share.delivery.count.limit", Some("2"), &b), Ok(()));
        assert_eq!(
            g.set("share.delivery.count.limit", Some("1"), &b)
                .map_err(|e| e.0),
            Err(INVALID_CONFIG)
        );
        assert_eq!(
            g.set("share.auto.offset.reset", Some("EARLIEST"), &b),
            Ok(())
        );
        assert!(g
            .set("share.auto.offset.reset", Some("by_duration:PT1H"), &b)
            .is_err());
        assert!(g.set("no.such.config", Some("1"), &b).is_err());
        let s = g.settings(&b);
        assert_eq!(s.record_lock_duration_ms, 1000);
        assert_eq!(s.delivery_limit, 2);
        assert_eq!(s.auto_offset_reset, AutoOffsetReset::Earliest);
        assert_eq!(g.set("share.delivery.count.limit", None, &b), Ok(()));
        assert_eq!(g.settings(&b).delivery_limit, 5);
        assert!(b.validate().is_ok());
    }
}
