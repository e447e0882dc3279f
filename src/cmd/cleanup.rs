//! `sharecheck cleanup`: remove the topics and share groups of runs that could not clean up after
//! themselves (killed, or run with `--keep`), by their prefix.

use crate::cmd::target::{load_security, runtime};
use crate::exit::{CmdResult, Fail, Outcome};
use clap::Args;
use sharecheck_client::admin::ClientConfig;
use sharecheck_conformance::cleanup::{check_prefix, cleanup_prefix};
use std::time::Duration;

/// `sharecheck cleanup`.
#[derive(Args, Debug)]
pub struct CleanupArgs {
    /// The broker, HOST:PORT.
    #[arg(long, value_name = "HOST:PORT")]
    pub bootstrap: String,
    /// Kafka client properties: security.protocol, ssl.*, sasl.* (as Kafka's tools take them).
    #[arg(long, value_name = "FILE")]
    pub command_config: Option<std::path::PathBuf>,
    /// Remove every topic and group whose name starts with PREFIX (a run's `--prefix`; conform's
    /// default is `sharecheck-SEED`, printed at its start). Internal topics are never touched.
    #[arg(long, value_name = "PREFIX")]
    pub prefix: String,
    /// List what would be removed, remove nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Deadline in seconds for connecting and for each request.
    #[arg(long, default_value_t = 10)]
    pub timeout: u64,
    /// How long to keep retrying what cannot be removed yet, in seconds.
    #[arg(long, value_name = "SECS", default_value_t = 30)]
    pub patience: u64,
}

pub fn run(args: CleanupArgs) -> CmdResult {
    check_prefix(&args.prefix).map_err(|e| Fail::usage(e.to_string()))?;
    let security = load_security(args.command_config.as_deref())?;
    let rt = runtime()?;
    let timeout = Duration::from_secs(args.timeout.max(1));
    let config = ClientConfig::new(args.bootstrap.clone())
        .with_timeout(timeout)
        .with_security(security);
    let found = rt
        .block_on(async {
            tokio::time::timeout(
                timeout * 4 + Duration::from_secs(args.patience),
                cleanup_prefix(
                    config,
                    &args.prefix,
                    args.dry_run,
                    Duration::from_secs(args.patience),
                ),
            )
            .await
        })
        .map_err(|_| Fail::unusable(format!("{}: no answer in time", args.bootstrap)))?
        .map_err(|e| Fail::unusable(format!("{}: {e}", args.bootstrap)))?;
    let verb = if args.dry_run {
        "would remove"
    } else {
        "removed"
    };
    println!(
        "sharecheck cleanup: prefix {:?} on {}: {} topic(s), {} group(s)",
        args.prefix,
        args.bootstrap,
        found.topics.len(),
        found.groups.len()
    );
    for g in &found.groups {
        if !found.left.iter().any(|(n, _)| n == g) {
            println!("  {verb} group {g}");
        }
    }
    for t in &found.topics {
        if !found.left.iter().any(|(n, _)| n == t) {
            println!("  {verb} topic {t}");
        }
    }
    for (name, why) in &found.left {
        println!("  LEFT {name}: {why}");
    }
    Ok(if found.left.is_empty() {
        Outcome::Pass
    } else {
        Outcome::Inconclusive
    })
}
