//! `sharecheck broker`: run the reference broker standalone, in the foreground, until SIGINT or
//! SIGTERM.
//!
//! Prints one line on stdout when it is ready, `listening on HOST:PORT`. Exit codes (DESIGN.md):
//! 0 after a clean stop; 3 when it cannot listen; 64 for bad flags.

use std::io::Write;
use std::net::SocketAddr;

use crate::exit::{CmdResult, Fail, Outcome};
use sharecheck_broker::{Broker, BrokerConfig, BrokerMutant, Profile};

#[derive(clap::Args, Debug)]
pub struct BrokerArgs {
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, value_name = "HOST:PORT", default_value = "127.0.0.1:9092")]
    pub listen: String,
    /// Release whose share-partition rules apply: kafka-4.1, kafka-4.2, kafka-4.3, kafka-4.4.
    #[arg(long, value_name = "PROFILE", default_value = "kafka-4.2")]
    pub profile: String,
    /// Run with this planted bug (see --list-mutants).
    #[arg(long, value_name = "NAME")]
    pub mutant: Option<String>,
    /// Print the mutant names, one per line, and exit.
    #[arg(long)]
    pub list_mutants: bool,
    /// Print one line per request on stderr.
    #[arg(long)]
    pub trace: bool,
    /// Address to give clients in Metadata, FindCoordinator and DescribeCluster (a proxy in front
    /// of the broker); default: the listen address.
    #[arg(long, value_name = "IP:PORT")]
    pub advertised: Option<String>,
}

pub fn run(args: BrokerArgs) -> CmdResult {
    if args.list_mutants {
        for m in BrokerMutant::all() {
            println!("{}", m.name());
        }
        return Ok(Outcome::Pass);
    }
    let listen: SocketAddr = args
        .listen
        .trim()
        .parse()
        .map_err(|_| Fail::usage(format!("--listen must be IP:PORT, not {:?}", args.listen)))?;
    let profile = Profile::by_name(args.profile.trim()).ok_or_else(|| {
        let names: Vec<&str> = Profile::ALL.iter().map(|p| p.name).collect();
        Fail::usage(format!(
            "unknown --profile {:?} (one of {})",
            args.profile,
            names.join(", ")
        ))
    })?;
    let mutant = match args.mutant.as_deref() {
        None => None,
        Some(name) => Some(BrokerMutant::by_name(name.trim()).ok_or_else(|| {
            Fail::usage(format!("unknown --mutant {name:?} (see --list-mutants)"))
        })?),
    };
    let advertised = match args.advertised.as_deref() {
        None => None,
        Some(a) => Some(
            a.trim()
                .parse::<SocketAddr>()
                .map_err(|_| Fail::usage(format!("--advertised must be IP:PORT, not {a:?}")))?,
        ),
    };
    let config = BrokerConfig {
        listen,
        advertised,
        profile,
        mutant,
        trace: args.trace,
        ..BrokerConfig::default()
    };
    let runtime = crate::cmd::target::runtime()?;
    runtime.block_on(async move {
        let handle = Broker::start(config)
            .await
            .map_err(|e| Fail::unusable(e.to_string()))?;
        println!("listening on {}", handle.addr());
        let _ = std::io::stdout().flush();
        eprintln!(
            "sharecheck broker: profile {}{}; stop with Ctrl-C",
            profile.name,
            mutant
                .map(|m| format!(", mutant {m} ({})", m.describe()))
                .unwrap_or_default()
        );
        let stopped = tokio::select! {
            r = sharecheck_broker::shutdown_signal() => r,
            _ = handle.closed() => Ok(()),
        };
        if let Err(e) = stopped {
            eprintln!("sharecheck broker: cannot wait for signals: {e}");
        }
        handle.shutdown().await;
        Ok(Outcome::Pass)
    })
}
