//! The sharecheck reference broker: a single-node Kafka-protocol server whose share partitions are
//! [`sharecheck_model::spec::SharePartition`]s, with planted-bug variants ([`BrokerMutant`]).
//!
//! It speaks enough of the Kafka protocol for real clients (the Java `KafkaProducer`, `Admin` and
//! `KafkaShareConsumer`, and sharecheck's own wire client) to create topics, produce, configure share
//! groups and consume through share groups: ApiVersions, Metadata, Produce, ListOffsets,
//! FindCoordinator, CreateTopics, DeleteTopics, InitProducerId, DescribeConfigs,
//! IncrementalAlterConfigs, DescribeCluster, ShareGroupHeartbeat, ShareGroupDescribe, ShareFetch and
//! ShareAcknowledge (`src/api/`, one file per API key). Logs are in memory; nothing is persisted.
//!
//! ```no_run
//! # async fn demo() -> Result<(), sharecheck_broker::BrokerError> {
//! use sharecheck_broker::{Broker, BrokerConfig, BrokerMutant};
//! let handle = Broker::start(BrokerConfig {
//!     mutant: BrokerMutant::by_name("no-count-increment"),
//!     ..BrokerConfig::default() // 127.0.0.1:0, profile kafka-4.2
//! })
//! .await?;
//! println!("bootstrap {}", handle.bootstrap());
//! handle.restart(); // drop connections and sessions; SharePartition::restart everywhere
//! handle.shutdown().await;
//! # Ok(()) }
//! ```

mod api;
mod config;
mod coordinator;
pub use sharecheck_client::guard;
/// The highest ShareFetch/ShareAcknowledge version this broker serves (both APIs).
pub fn share_rpc_version() -> i16 {
    use kafka_protocol::messages::ApiKey;
    [ApiKey::ShareFetch, ApiKey::ShareAcknowledge]
        .into_iter()
        .filter_map(api::served)
        .map(|(_, max)| max)
        .min()
        .unwrap_or(0)
}

pub mod log;
mod mutant;
mod server;
mod state;

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

pub use config::{BrokerConfig, ConfigError, GroupOverrides, GroupSettings, GROUP_CONFIG_NAMES};
pub use mutant::BrokerMutant;
pub use sharecheck_model::{AutoOffsetReset, Mutant, Profile};

use server::Shared;
use tokio::task::JoinHandle;

/// Why the broker could not start.
#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    /// The configuration is inconsistent.
    #[error("invalid broker configuration: {0}")]
    Config(#[from] config::ConfigError),
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    /// An embedded request schema is broken (a build defect).
    #[error(transparent)]
    Schema(#[from] guard::GuardError),
    /// What was asked of a running broker does not exist.
    #[error("{0}")]
    Unknown(String),
}

/// The reference broker.
pub struct Broker;

impl Broker {
    /// Binds `config.listen` and serves on the current tokio runtime until
    /// [`BrokerHandle::shutdown`] (or until the handle is dropped).
    pub async fn start(config: BrokerConfig) -> Result<BrokerHandle, BrokerError> {
        config.validate()?;
        guard::init()?;
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .map_err(|source| BrokerError::Bind {
                addr: config.listen,
                source,
            })?;
        let addr = listener.local_addr().map_err(|source| BrokerError::Bind {
            addr: config.listen,
            source,
        })?;
        let shared = Arc::new(Shared::new(config, addr));
        let accept = tokio::spawn(server::accept_loop(shared.clone(), listener));
        let timers = tokio::spawn(server::timer_loop(shared.clone()));
        Ok(BrokerHandle {
            shared,
            tasks: vec![accept, timers],
        })
    }
}

/// Counters of a running broker.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BrokerStats {
    /// Connections accepted so far.
    pub connections: u64,
    /// Connections open now.
    pub open_connections: u64,
    /// Requests answered (or served without answer, acks=0 Produce).
    pub requests: u64,
    /// Connections closed because of a malformed, oversized or unsupported request.
    pub rejected_frames: u64,
    /// Connection tasks that panicked (a bug: always 0).
    pub panics: u64,
    /// In-process restarts so far.
    pub restarts: u64,
    /// Share sessions open now.
    pub sessions: usize,
    /// Share partitions loaded.
    pub share_partitions: usize,
    /// Topics.
    pub topics: usize,
}

/// A running broker. Dropping it stops the broker (without waiting).
pub struct BrokerHandle {
    shared: Arc<Shared>,
    tasks: Vec<JoinHandle<()>>,
}

impl BrokerHandle {
    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.shared.addr
    }

    /// `host:port` for clients.
    pub fn bootstrap(&self) -> String {
        self.shared.addr.to_string()
    }

    /// Its configuration.
    pub fn config(&self) -> &BrokerConfig {
        &self.shared.config
    }

    /// The planted bug, if any.
    pub fn mutant(&self) -> Option<BrokerMutant> {
        self.shared.config.mutant
    }

    /// Restarts the broker in place, as a leader restart without leadership change (T14,
    /// docs/semantics.md §10.2): every connection is dropped, every share session and lock timer
    /// is lost, and every share partition runs [`sharecheck_model::spec::SharePartition::restart`]
    /// (acquired records revert to their last persisted state). Logs, topics, group configs and
    /// group memberships stay; the listener keeps its address.
    pub fn restart(&self) {
        self.shared.restart();
    }

    /// Moves the leadership of `topic`-`partition` in place: the reference broker stays its leader,
    /// and every share partition of it reloads from what was written, as on a new leader (T14 for
    /// that partition; acquisitions are forgotten, sessions stay).
    pub fn reload_partition(&self, topic: &str, partition: i32) -> Result<usize, BrokerError> {
        let mut state = self.shared.state();
        let id = state
            .topic_id(topic)
            .ok_or_else(|| BrokerError::Unknown(format!("no topic {topic}")))?;
        let n = state.reload_partition(&self.shared.config, id, partition);
        drop(state);
        self.shared.trace(|| {
            format!("leader move: {n} share partition(s) of {topic}-{partition} reloaded")
        });
        self.shared.wake.notify_waiters();
        Ok(n)
    }

    /// Counters.
    pub fn stats(&self) -> BrokerStats {
        let s = &self.shared.stats;
        let (sessions, share_partitions, topics) = self.shared.state().counts();
        BrokerStats {
            connections: s.connections.load(Ordering::Relaxed),
            open_connections: s.open_connections.load(Ordering::Relaxed),
            requests: s.requests.load(Ordering::Relaxed),
            rejected_frames: s.rejected_frames.load(Ordering::Relaxed),
            panics: s.panics.load(Ordering::Relaxed),
            restarts: s.restarts.load(Ordering::Relaxed),
            sessions,
            share_partitions,
            topics,
        }
    }

    /// The spec state of one share partition, if it is loaded (tests and diagnostics).
    pub fn share_partition(
        &self,
        group: &str,
        topic_id: uuid::Uuid,
        partition: i32,
    ) -> Option<sharecheck_model::SharePartition> {
        self.shared
            .state()
            .share_partition(group, topic_id, partition)
            .cloned()
    }

    /// Stops accepting, closes every connection and waits (at most 5 s) for the tasks to end.
    pub async fn shutdown(mut self) {
        self.shared.shutdown.cancel();
        for t in self.tasks.drain(..) {
            let _ = tokio::time::timeout(Duration::from_secs(5), t).await;
        }
    }

    /// Resolves when the broker has been shut down (by [`BrokerHandle::shutdown`] or a drop of
    /// another clone of its token); for the standalone CLI.
    pub async fn closed(&self) {
        self.shared.shutdown.cancelled().await;
    }
}

impl Drop for BrokerHandle {
    fn drop(&mut self) {
        self.shared.shutdown.cancel();
    }
}

/// Resolves on SIGINT or SIGTERM (Unix) / Ctrl-C (elsewhere): the standalone broker's stop signal.
pub async fn shutdown_signal() -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut int = signal(SignalKind::interrupt())?;
        let mut term = signal(SignalKind::terminate())?;
        tokio::select! {
            _ = int.recv() => {}
            _ = term.recv() => {}
        }
        Ok(())
    }
    #[cfg(not(unix))]
    {
        tokio::signal::ctrl_c().await
    }
}
