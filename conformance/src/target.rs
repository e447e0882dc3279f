//! What a run talks to: a remote Kafka-protocol broker reached by `--bootstrap`, or the embedded
//! reference broker started in-process — its address, what it is, the rules it is judged by, its
//! own limits, and how to restart it when it can be restarted.

use sharecheck_broker::{Broker, BrokerConfig, BrokerError, BrokerHandle, BrokerMutant};
use sharecheck_client::admin::{Client, ClientConfig, ClientError};
use sharecheck_client::release::{self, Release};
use sharecheck_model::Profile;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use crate::trace::Capability;

/// Restarts the target broker; resolves once it serves again.
pub type Restarter =
    Arc<dyn Fn() -> Pin<Box<dyn Future<Output = Result<(), TargetError>> + Send>> + Send + Sync>;

/// What the suite runs against.
#[derive(Clone)]
pub struct Target {
    /// `host:port`.
    pub bootstrap: String,
    /// What it is ("Apache Kafka 4.2 (guessed from API versions)", "sharecheck reference broker").
    pub implementation: String,
    /// The rules it is judged by.
    pub profile: Profile,
    /// Its own delivery limit (broker-level `group.share.delivery.count.limit`).
    pub delivery_limit: u8,
    /// Its in-flight window limit (`group.share.partition.max.record.locks`).
    pub max_in_flight: u32,
    /// How to restart it, when possible.
    pub restarter: Option<Restarter>,
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Target")
            .field("bootstrap", &self.bootstrap)
            .field("implementation", &self.implementation)
            .field("profile", &self.profile.name)
            .field("delivery_limit", &self.delivery_limit)
            .field("restart", &self.restarter.is_some())
            .finish()
    }
}

impl Target {
    /// Whether the target can do what `cap` asks.
    pub fn can(&self, cap: Capability) -> bool {
        match cap {
            Capability::Restart => self.restarter.is_some(),
            Capability::GroupDeliveryLimit => true,
        }
    }

    /// The same target without its restart hook (cases then share it safely).
    pub fn without_restarts(&self) -> Target {
        Target {
            restarter: None,
            ..self.clone()
        }
    }
}

/// Why a target cannot be used (exit code 3).
#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    /// Connecting or talking to it failed.
    #[error("{0}")]
    Client(#[from] ClientError),
    /// It did not answer in time.
    #[error("{addr}: no answer within {}s", .timeout.as_secs())]
    Timeout {
        /// The address.
        addr: String,
        /// The deadline.
        timeout: Duration,
    },
    /// The embedded reference broker did not start.
    #[error("cannot start the embedded reference broker: {0}")]
    Embedded(#[from] BrokerError),
    /// A restart did not complete.
    #[error("restart failed: {0}")]
    Restart(String),
}

/// Connects to `bootstrap` within `timeout`, checks that share groups work there, and learns its
/// profile (unless one is given) and limits.
pub async fn connect(
    bootstrap: &str,
    profile: Option<Profile>,
    timeout: Duration,
) -> Result<Target, TargetError> {
    tokio::time::timeout(timeout, prepare(bootstrap, profile, timeout))
        .await
        .map_err(|_| TargetError::Timeout {
            addr: bootstrap.to_string(),
            timeout,
        })?
}

async fn prepare(
    bootstrap: &str,
    profile: Option<Profile>,
    timeout: Duration,
) -> Result<Target, TargetError> {
    let mut client = Client::connect(ClientConfig::new(bootstrap).with_timeout(timeout)).await?;
    client.check_share_support().map_err(ClientError::from)?;
    let info = client.broker_info();
    let guess = Release::guess(client.versions());
    let profile = profile.unwrap_or_else(|| release::profile_for(guess));
    let node = client.cluster().brokers.keys().next().copied().unwrap_or(0);
    let mut delivery_limit = 5u8;
    let mut max_in_flight = 2000u32;
    if let Ok(entries) = client.describe_configs(4, &node.to_string()).await {
        for e in entries {
            let v = e.value.as_deref().and_then(|v| v.parse::<u64>().ok());
            match (e.name.as_str(), v) {
                ("group.share.delivery.count.limit", Some(v)) => {
                    delivery_limit = v.clamp(2, 255) as u8
                }
                ("group.share.partition.max.record.locks", Some(v)) => {
                    max_in_flight = v.clamp(1, u64::from(u32::MAX)) as u32
                }
                _ => {}
            }
        }
    }
    let implementation = match guess {
        Some(release) => format!("Apache Kafka {release} (guessed from API versions and features)"),
        None => format!(
            "unknown Kafka-protocol broker ({} API keys; judged by {}, the default profile)",
            info.versions.apis.len(),
            profile.name
        ),
    };
    Ok(Target {
        bootstrap: bootstrap.to_string(),
        implementation,
        profile,
        delivery_limit,
        max_in_flight,
        restarter: None,
    })
}

/// How to start the embedded reference broker.
#[derive(Clone, Copy, Debug)]
pub struct EmbeddedOptions {
    /// The rules it follows (and is judged by).
    pub profile: Profile,
    /// A planted bug.
    pub mutant: Option<BrokerMutant>,
    /// Its `group.share.min.record.lock.duration.ms` (Kafka's floor, 1000, unless a fuzz run
    /// wants shorter locks).
    pub min_lock_ms: u32,
    /// Whether cases may restart it.
    pub restartable: bool,
}

impl EmbeddedOptions {
    /// The embedded broker as `conform` uses it: Kafka's lock floor, restartable.
    pub fn new(profile: Profile, mutant: Option<BrokerMutant>) -> EmbeddedOptions {
        EmbeddedOptions {
            profile,
            mutant,
            min_lock_ms: 1000,
            restartable: true,
        }
    }
}

/// A running embedded reference broker and the target that describes it.
pub struct Embedded {
    /// The target.
    pub target: Target,
    /// The broker; it stops when the last handle is dropped.
    pub handle: Arc<BrokerHandle>,
}

/// Starts the embedded reference broker on 127.0.0.1 (a free port) on the current runtime.
pub async fn start_embedded(opts: EmbeddedOptions) -> Result<Embedded, TargetError> {
    let config = BrokerConfig {
        profile: opts.profile,
        mutant: opts.mutant,
        min_record_lock_duration_ms: i32::try_from(opts.min_lock_ms).unwrap_or(i32::MAX),
        ..BrokerConfig::new(([127, 0, 0, 1], 0).into())
    };
    let handle = Arc::new(Broker::start(config).await?);
    let restarter: Option<Restarter> = opts.restartable.then(|| {
        let h = handle.clone();
        let r: Restarter = Arc::new(move || {
            let h = h.clone();
            Box::pin(async move {
                h.restart();
                Ok(())
            })
        });
        r
    });
    let version = env!("CARGO_PKG_VERSION");
    let implementation = match opts.mutant {
        Some(m) => format!(
            "sharecheck reference broker {version} (mutant {})",
            m.name()
        ),
        None => format!("sharecheck reference broker {version}"),
    };
    let c = handle.config();
    let target = Target {
        bootstrap: handle.bootstrap(),
        implementation,
        profile: opts.profile,
        delivery_limit: c.delivery_limit,
        max_in_flight: c.max_record_locks,
        restarter,
    };
    Ok(Embedded { target, handle })
}
