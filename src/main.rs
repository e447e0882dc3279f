//! `sharecheck`: model-checked specification and conformance suite for Kafka share groups (KIP-932).
//!
//! Every command exits with the codes in DESIGN.md; see [`exit::Outcome`].

mod cmd;
mod exit;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Parser, Debug)]
#[command(
    name = "sharecheck",
    version,
    about = "Model-checked specification and conformance suite for Kafka share groups (KIP-932)"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Model-check the share-partition spec: properties, counterexamples, mutants.
    Check(cmd::check::CheckArgs),
    /// Serve Stateright's Explorer web UI over the model, on 127.0.0.1.
    Explore(cmd::check::ExploreArgs),
    /// Run the conformance suite against a broker (default: the embedded reference broker).
    Conform(cmd::conform::ConformArgs),
    /// Rerun one recorded case, show its history and verdict.
    Replay(cmd::conform::ReplayArgs),
    /// Judge a recorded history again, with no broker.
    Judge(cmd::judge::JudgeArgs),
    /// Print the scenario catalog.
    List(cmd::conform::ListArgs),
    /// One compatibility matrix (HTML, Markdown, JSON) from several conform reports.
    Matrix(cmd::matrix::MatrixArgs),
    /// Fuzz acknowledgement sequences against a broker; shrink each failure to a replayable fixture.
    Fuzz(cmd::fuzz::FuzzArgs),
    /// Long-running workload under faults, judged from its history.
    Soak(cmd::soak::SoakArgs),
    /// Connect to a broker, report its share-group support, run a smoke round.
    Probe(cmd::probe::ProbeArgs),
    /// Remove the topics and share groups of earlier runs by their prefix.
    Cleanup(cmd::cleanup::CleanupArgs),
    /// Run the reference broker standalone (optionally a mutant) until SIGINT/SIGTERM.
    Broker(cmd::broker::BrokerArgs),
}

fn main() -> ExitCode {
    // Die quietly on a closed pipe (`sharecheck check | head`) like other command-line tools,
    // instead of panicking in println!.
    #[cfg(unix)]
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            use clap::error::ErrorKind;
            let code = match e.kind() {
                ErrorKind::DisplayHelp
                | ErrorKind::DisplayVersion
                | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => 0,
                _ => exit::Outcome::Usage.code(),
            };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    let result = match cli.command {
        Command::Check(args) => cmd::check::run(args),
        Command::Explore(args) => cmd::check::explore(args),
        Command::Probe(args) => cmd::probe::run(args),
        Command::Soak(args) => cmd::soak::soak(args),
        Command::Broker(args) => cmd::broker::run(args),
        Command::Conform(args) => cmd::conform::conform(args),
        Command::Replay(args) => cmd::conform::replay(args),
        Command::Judge(args) => cmd::judge::run(args),
        Command::List(args) => cmd::conform::list(args),
        Command::Matrix(args) => cmd::matrix::run(args),
        Command::Fuzz(args) => cmd::fuzz::run(args),
        Command::Cleanup(args) => cmd::cleanup::run(args),
    };
    match result {
        Ok(outcome) => outcome.into(),
        Err(fail) => {
            eprintln!("sharecheck: {fail}");
            fail.outcome.into()
        }
    }
}
