//! What every command that talks to a broker shares: the target flags, the async runtime, the
//! embedded reference broker or a remote one, profile and mutant names, seeds, and the target part
//! of a rerun command.

use crate::exit::Fail;
use clap::Args;
use sharecheck_broker::{BrokerHandle, BrokerMutant};
use sharecheck_client::security::Security;
use sharecheck_conformance::target::{self, EmbeddedOptions, Target};
use sharecheck_model::Profile;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// Where to run: a broker, or the embedded reference broker.
#[derive(Args, Debug, Clone)]
pub struct TargetArgs {
    /// The broker to test, HOST:PORT. Without it, the embedded reference broker is started in-process.
    #[arg(long, value_name = "HOST:PORT")]
    pub bootstrap: Option<String>,
    /// Kafka client properties for `--bootstrap`: security.protocol (PLAINTEXT, SSL, SASL_PLAINTEXT,
    /// SASL_SSL), ssl.truststore.*, ssl.keystore.* (PEM), ssl.endpoint.identification.algorithm,
    /// sasl.mechanism (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512), sasl.jaas.config, as Kafka's tools take them.
    #[arg(long, value_name = "FILE", requires = "bootstrap")]
    pub command_config: Option<PathBuf>,
    /// Name every topic and share group the command creates PREFIX-SERIAL-CASE (conform's default
    /// `sharecheck-SEED`); conform removes everything with the prefix at its end (and on
    /// SIGINT/SIGTERM) unless `--keep`, and `sharecheck cleanup --prefix` removes what a killed run
    /// left. On a cluster with ACLs, the run's rights are granted on this prefix.
    #[arg(long, value_name = "PREFIX")]
    pub prefix: Option<String>,
    /// Rules to judge by (kafka-4.1 .. kafka-4.4). Default: guessed from the broker's API versions
    /// (kafka-4.2 for the embedded broker).
    #[arg(long)]
    pub profile: Option<String>,
    /// Plant a bug in the embedded reference broker (`sharecheck broker --list-mutants`).
    #[arg(long)]
    pub mutant: Option<String>,
    /// Deadline in seconds for connecting and for each request.
    #[arg(long, default_value_t = 10)]
    pub timeout: u64,
    /// How to inject faults into the `--bootstrap` broker, so cases that restart it run: a shell
    /// command run with SHARECHECK_FAULT (restart|kill), SHARECHECK_NODE (a node id, or empty for
    /// every node) and SHARECHECK_BOOTSTRAP set, returning once the node serves again, e.g.
    /// `scripts/kafka restart --port 19092`.
    #[arg(long, value_name = "CMD", requires = "bootstrap")]
    pub nemesis: Option<String>,
    /// Deadline in seconds of one `--nemesis` run (and of the target answering after it).
    #[arg(long, value_name = "SECS", default_value_t = 180)]
    pub nemesis_timeout: u64,
}

impl TargetArgs {
    /// The flags that name this target again, for a rerun command (` --bootstrap … --mutant …`).
    pub fn rerun_flags(&self) -> String {
        let mut flags = String::new();
        if let Some(b) = &self.bootstrap {
            flags.push_str(&format!(" --bootstrap {b}"));
        }
        if let Some(c) = &self.command_config {
            // The path only: the credentials stay in the file.
            flags.push_str(&format!(
                " --command-config '{}'",
                c.display().to_string().replace('\'', "'\\''")
            ));
        }
        if let Some(m) = &self.mutant {
            flags.push_str(&format!(" --mutant {m}"));
        }
        if let Some(p) = &self.profile {
            flags.push_str(&format!(" --profile {p}"));
        }
        if let Some(p) = &self.prefix {
            flags.push_str(&format!(" --prefix {p}"));
        }
        if let Some(n) = &self.nemesis {
            flags.push_str(&format!(" --nemesis '{}'", n.replace('\'', "'\\''")));
        }
        flags
    }

    /// Checks the flags that need no broker.
    pub fn validate(&self) -> Result<(Option<Profile>, Option<BrokerMutant>), Fail> {
        let profile = profile_arg(self.profile.as_deref())?;
        let mutant = self.mutant.as_deref().map(broker_mutant).transpose()?;
        if self.bootstrap.is_some() && mutant.is_some() {
            return Err(Fail::usage(
                "--mutant plants a bug in the embedded broker; it cannot be used with --bootstrap",
            ));
        }
        if self.timeout == 0 {
            return Err(Fail::usage("--timeout must be at least 1 second"));
        }
        if self.nemesis.as_deref().is_some_and(|n| n.trim().is_empty()) {
            return Err(Fail::usage("--nemesis needs a command"));
        }
        if self.nemesis_timeout == 0 {
            return Err(Fail::usage("--nemesis-timeout must be at least 1 second"));
        }
        if let Some(p) = &self.prefix {
            sharecheck_conformance::cleanup::check_prefix(p)
                .map_err(|e| Fail::usage(format!("--prefix: {e}")))?;
        }
        Ok((profile, mutant))
    }

    /// The request deadline.
    pub fn deadline(&self) -> Duration {
        Duration::from_secs(self.timeout)
    }
}

/// The security of `--command-config FILE` (PLAINTEXT without it): exit 66 when the file or a PEM
/// file it names cannot be read, 65 when it says something sharecheck cannot use.
pub fn load_security(path: Option<&Path>) -> Result<Arc<Security>, Fail> {
    match path {
        None => Ok(Arc::new(Security::plaintext())),
        Some(p) => Security::from_file(p).map(Arc::new).map_err(|e| {
            let msg = format!("--command-config {}: {e}", p.display());
            if e.is_unreadable() {
                Fail::no_input(msg)
            } else {
                Fail::malformed(msg)
            }
        }),
    }
}

/// A running target and what keeps it alive.
pub struct Running {
    pub target: Target,
    /// Keeps the embedded broker running until the command ends.
    pub _broker: Option<Arc<BrokerHandle>>,
    pub runtime: tokio::runtime::Runtime,
}

/// The async runtime every command runs on (two workers: the machine's cores).
pub fn runtime() -> Result<tokio::runtime::Runtime, Fail> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| Fail::unusable(format!("cannot start the async runtime: {e}")))
}

/// The profile named `name`, or a usage error listing the known ones.
pub fn profile_arg(name: Option<&str>) -> Result<Option<Profile>, Fail> {
    match name {
        None => Ok(None),
        Some(n) => Profile::by_name(n.trim()).map(Some).ok_or_else(|| {
            let names: Vec<_> = Profile::ALL.iter().map(|p| p.name).collect();
            Fail::usage(format!(
                "unknown profile '{n}'; known: {}",
                names.join(", ")
            ))
        }),
    }
}

/// The broker mutant named `name`, or a usage error.
pub fn broker_mutant(name: &str) -> Result<BrokerMutant, Fail> {
    BrokerMutant::all()
        .into_iter()
        .find(|m| m.name() == name)
        .ok_or_else(|| {
            Fail::usage(format!(
                "unknown mutant '{name}'; `sharecheck broker --list-mutants` lists them"
            ))
        })
}

/// `--seed`, or a fresh one (printed by the caller, so the run can be repeated).
pub fn seed_or_random(seed: Option<u64>) -> u64 {
    seed.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64 % 1_000_000_000)
            .unwrap_or(1)
    })
}

/// Starts the embedded broker (`embedded` says how), or connects to `--bootstrap`; exit 3 when the
/// target is unusable.
pub fn start_target(
    args: &TargetArgs,
    embedded: impl FnOnce(Profile, Option<BrokerMutant>) -> EmbeddedOptions,
) -> Result<Running, Fail> {
    let (profile, mutant) = args.validate()?;
    let security = load_security(args.command_config.as_deref())?;
    let rt = runtime()?;
    match &args.bootstrap {
        Some(addr) => {
            let mut target = rt
                .block_on(target::connect(addr, profile, args.deadline(), security))
                .map_err(|e| Fail::unusable(e.to_string()))?;
            if let Some(command) = &args.nemesis {
                target = target.with_nemesis(target::Nemesis {
                    command: command.clone(),
                    timeout: Duration::from_secs(args.nemesis_timeout),
                });
            }
            Ok(Running {
                target,
                _broker: None,
                runtime: rt,
            })
        }
        None => {
            let opts = embedded(profile.unwrap_or(Profile::DEFAULT), mutant);
            let started = rt
                .block_on(target::start_embedded(opts))
                .map_err(|e| Fail::unusable(e.to_string()))?;
            Ok(Running {
                target: started.target,
                _broker: Some(started.handle),
                runtime: rt,
            })
        }
    }
}
