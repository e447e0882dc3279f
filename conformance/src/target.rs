//! What a run talks to: a remote Kafka-protocol broker reached by `--bootstrap`, or the embedded
//! reference broker started in-process — its address, what it is, the rules it is judged by, its
//! own limits, and how to restart it when it can be restarted.

use sharecheck_broker::{Broker, BrokerConfig, BrokerError, BrokerHandle, BrokerMutant};
use sharecheck_client::admin::{Client, ClientConfig, ClientError};
use sharecheck_client::release::{self, Release};
use sharecheck_client::security::Security;
use sharecheck_model::Profile;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use crate::trace::Capability;

/// A fault the runner injects.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Restart every broker of the target (`node: None`) or one node; `hard` kills it (SIGKILL)
    /// instead of stopping it. Resolves once it serves again.
    Restart {
        /// The node, or every one.
        node: Option<i32>,
        /// SIGKILL rather than SIGTERM.
        hard: bool,
    },
    /// Move the leadership of one partition (the embedded broker reloads it from what was written,
    /// as a new leader does).
    MoveLeader {
        /// The topic.
        topic: String,
        /// The partition.
        partition: i32,
    },
}

/// Injects faults into the target; resolves once the fault is done and the target serves again.
pub type FaultHook = Arc<
    dyn Fn(Fault) -> Pin<Box<dyn Future<Output = Result<(), TargetError>> + Send>> + Send + Sync,
>;

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
    /// Its brokers (from metadata).
    pub nodes: usize,
    /// The highest ShareFetch/ShareAcknowledge version it serves (2: RENEW, acquire modes).
    pub share_version: i16,
    /// The highest DescribeShareGroupOffsets version it serves, if it serves all of
    /// Describe/Alter/DeleteShareGroupOffsets (1: with `Lag`).
    pub offsets_version: Option<i16>,
    /// Whether it has the group-level limits with broker bounds (KIP-1240): Kafka 4.3+ lists
    /// `group.share.max.delivery.count.limit` among its broker configs.
    pub group_limits: bool,
    /// Whether it has the dead-letter queue (KIP-1191): Kafka's finalized `share.version` ≥ 2.
    pub dlq: bool,
    /// How to inject faults, when it can be done: the embedded broker in-process, a remote one
    /// with `--nemesis`.
    pub faults: Option<FaultHook>,
    /// Whether leader moves go through the fault hook (the embedded broker) rather than over the
    /// wire (AlterPartitionReassignments + ElectLeaders, on a cluster of several brokers).
    pub moves_in_process: bool,
    /// TLS and SASL of every connection to it (`--command-config`; PLAINTEXT for the embedded broker).
    pub security: Arc<Security>,
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Target")
            .field("bootstrap", &self.bootstrap)
            .field("implementation", &self.implementation)
            .field("profile", &self.profile.name)
            .field("delivery_limit", &self.delivery_limit)
            .field("nodes", &self.nodes)
            .field("faults", &self.faults.is_some())
            .field("security", &self.security.describe())
            .finish()
    }
}

impl Target {
    /// Whether the target can do what `cap` asks.
    pub fn can(&self, cap: Capability) -> bool {
        match cap {
            Capability::Restart => self.faults.is_some(),
            Capability::LeaderMove => self.moves_in_process || self.nodes > 1,
            Capability::GroupDeliveryLimit => true,
            Capability::Renew => self.profile.renew && self.share_version >= 2,
            Capability::AcquireMode => self.share_version >= 2,
            Capability::OffsetsAdmin => self.offsets_version.is_some(),
            Capability::Lag => self.offsets_version.is_some_and(|v| v >= 1),
            Capability::GroupLimits => self.group_limits,
            Capability::Dlq => self.dlq,
            Capability::FormerLeader => !self.moves_in_process && self.nodes > 1,
        }
    }

    /// How a client reaches it, with `timeout` on every request.
    pub fn client_config(&self, timeout: Duration) -> ClientConfig {
        ClientConfig::new(self.bootstrap.clone())
            .with_timeout(timeout)
            .with_security(self.security.clone())
    }

    /// The same target without its fault hook (cases then share it safely).
    pub fn without_restarts(&self) -> Target {
        Target {
            faults: None,
            moves_in_process: false,
            ..self.clone()
        }
    }

    /// The same target, faults injected by `nemesis` (a remote target).
    pub fn with_nemesis(self, nemesis: Nemesis) -> Target {
        let config = self.client_config(Duration::from_secs(5));
        let hook: FaultHook = Arc::new(move |fault| {
            let (n, c) = (nemesis.clone(), config.clone());
            Box::pin(async move { n.inject(c, &fault).await })
        });
        Target {
            faults: Some(hook),
            ..self
        }
    }
}

/// Why a target cannot be used (exit code 3).
#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    /// Connecting or talking to it failed.
    #[error("{0}")]
    Client(#[from] ClientError),
    /// It refused for want of a permission (an ACL).
    #[error("{0}")]
    Denied(String),
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
    /// A fault could not be injected, or the target did not come back in time.
    #[error("fault: {0}")]
    Fault(String),
}

/// Faults of a remote target, injected by a command the user gives (`--nemesis CMD`), run as
/// `sh -c CMD` with the fault in environment variables:
///
/// | variable | value |
/// |---|---|
/// | `SHARECHECK_FAULT` | `restart` (SIGTERM, then start again) or `kill` (SIGKILL, then start again) |
/// | `SHARECHECK_NODE` | the node id to restart, or empty for every node |
/// | `SHARECHECK_BOOTSTRAP` | the target's bootstrap address |
///
/// The command must return once the node serves again (exit 0), within the deadline; a non-zero
/// exit or the deadline makes the case inconclusive with the command's last words. After it
/// returns the runner waits until the target answers again. `scripts/kafka restart --port P` is
/// such a command for brokers it started.
#[derive(Clone, Debug)]
pub struct Nemesis {
    /// The shell command.
    pub command: String,
    /// Its deadline.
    pub timeout: Duration,
}

impl Nemesis {
    /// Runs the command for `fault`, then waits until the target `config` reaches answers.
    pub async fn inject(&self, config: ClientConfig, fault: &Fault) -> Result<(), TargetError> {
        let bootstrap = config.bootstrap.clone();
        let bootstrap = bootstrap.as_str();
        let Fault::Restart { node, hard } = fault else {
            return Err(TargetError::Fault(
                "the nemesis only restarts nodes; leader moves go over the wire".into(),
            ));
        };
        let mut cmd = tokio::process::Command::new("sh");
        cmd.arg("-c")
            .arg(&self.command)
            .env("SHARECHECK_FAULT", if *hard { "kill" } else { "restart" })
            .env(
                "SHARECHECK_NODE",
                node.map_or(String::new(), |n| n.to_string()),
            )
            .env("SHARECHECK_BOOTSTRAP", bootstrap)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true);
        let child = cmd
            .spawn()
            .map_err(|e| TargetError::Fault(format!("cannot run the nemesis: {e}")))?;
        let out = tokio::time::timeout(self.timeout, child.wait_with_output())
            .await
            .map_err(|_| {
                TargetError::Fault(format!(
                    "the nemesis did not finish within {}s",
                    self.timeout.as_secs()
                ))
            })?
            .map_err(|e| TargetError::Fault(format!("the nemesis: {e}")))?;
        if !out.status.success() {
            let last = String::from_utf8_lossy(&out.stderr)
                .lines()
                .last()
                .unwrap_or("")
                .to_string();
            return Err(TargetError::Fault(format!(
                "the nemesis failed ({}): {last}",
                out.status
            )));
        }
        let deadline = tokio::time::Instant::now() + self.timeout;
        loop {
            if Client::connect(config.clone()).await.is_ok() {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(TargetError::Fault(format!(
                    "{bootstrap} does not answer {}s after the nemesis",
                    self.timeout.as_secs()
                )));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

/// Connects to `bootstrap` within `timeout`, checks that share groups work there, and learns its
/// profile (unless one is given) and limits.
pub async fn connect(
    bootstrap: &str,
    profile: Option<Profile>,
    timeout: Duration,
    security: Arc<Security>,
) -> Result<Target, TargetError> {
    tokio::time::timeout(timeout, prepare(bootstrap, profile, timeout, security))
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
    security: Arc<Security>,
) -> Result<Target, TargetError> {
    let mut client = Client::connect(
        ClientConfig::new(bootstrap)
            .with_timeout(timeout)
            .with_security(security.clone()),
    )
    .await?;
    client.check_share_support().map_err(ClientError::from)?;
    let info = client.broker_info();
    let guess = Release::guess(client.versions());
    let profile = profile.unwrap_or_else(|| release::profile_for(guess));
    let node = client.cluster().brokers.keys().next().copied().unwrap_or(0);
    let mut delivery_limit = 5u8;
    let mut max_in_flight = 2000u32;
    let mut group_limits = false;
    // The broker's limits judge every case: a principal that may not read them cannot be judged
    // fairly (fail closed); a broker that does not serve DescribeConfigs keeps Kafka's defaults.
    let described = match client.describe_configs(4, &node.to_string()).await {
        Err(e) if e.denied().is_some() => {
            return Err(TargetError::Denied(format!(
                "{}: reading broker {node}'s configs (the delivery limit and lock bounds every case is judged by): {e}",
                crate::run::MISSING_PERMISSION
            )));
        }
        other => other,
    };
    if let Ok(entries) = described {
        for e in entries {
            group_limits |= e.name == "group.share.max.delivery.count.limit";
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
    let nodes = client.cluster().brokers.len().max(1);
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
        nodes,
        share_version: client.versions().share_rpc_version(),
        offsets_version: offsets_version(client.versions()),
        group_limits,
        dlq: client.versions().share_version() >= 2,
        faults: None,
        moves_in_process: false,
        security,
    })
}

/// The highest DescribeShareGroupOffsets version a broker serves, if it serves APIs 90–92.
pub fn offsets_version(v: &sharecheck_client::wire::BrokerVersions) -> Option<i16> {
    use kafka_protocol::messages::ApiKey;
    let describe = v.broker_range(ApiKey::DescribeShareGroupOffsets)?;
    v.broker_range(ApiKey::AlterShareGroupOffsets)?;
    v.broker_range(ApiKey::DeleteShareGroupOffsets)?;
    Some(describe.1.min(sharecheck_client::offsets::LAG_VERSION))
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
    let faults: Option<FaultHook> = opts.restartable.then(|| {
        let h = handle.clone();
        let hook: FaultHook = Arc::new(move |fault| {
            let h = h.clone();
            Box::pin(async move {
                match fault {
                    // One node: every restart restarts it.
                    Fault::Restart { .. } => h.restart(),
                    Fault::MoveLeader { topic, partition } => {
                        h.reload_partition(&topic, partition)
                            .map_err(|e| TargetError::Fault(e.to_string()))?;
                    }
                }
                Ok(())
            })
        });
        hook
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
        nodes: 1,
        share_version: sharecheck_broker::share_rpc_version(),
        offsets_version: Some(sharecheck_client::offsets::LAG_VERSION),
        group_limits: true,
        dlq: true,
        moves_in_process: faults.is_some(),
        faults,
        security: Arc::new(Security::plaintext()),
    };
    Ok(Embedded { target, handle })
}
