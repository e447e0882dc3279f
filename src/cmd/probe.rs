//! `sharecheck probe`: connect to a broker, report its share-group support, run a smoke round (a
//! built-in conformance case, judged by the conformance oracle).
//!
//! Exit codes (DESIGN.md): 0 every expectation held; 1 one did not (named on stderr);
//! 2 something was inconclusive (a timing window); 3 the broker is unreachable or cannot do share
//! groups, with a one-line reason; 64 bad flags.

use std::io::Write;
use std::time::Duration;

use crate::exit::{CmdResult, Fail, Outcome};
use sharecheck_conformance::probe::{self, ProbeConfig, ProbeReport, ProbeStep, Verdict};

#[derive(clap::Args, Debug)]
pub struct ProbeArgs {
    /// The broker to probe, HOST:PORT.
    #[arg(long, value_name = "HOST:PORT")]
    pub bootstrap: String,
    /// Kafka client properties: security.protocol, ssl.*, sasl.* (as Kafka's tools take them).
    #[arg(long, value_name = "FILE")]
    pub command_config: Option<std::path::PathBuf>,
    /// Name the smoke round's topic and share group PREFIX-… (default `sc-probe-RANDOM`); on a
    /// cluster with ACLs, the rights are granted on this prefix.
    #[arg(long, value_name = "PREFIX")]
    pub prefix: Option<String>,
    /// Deadline in seconds for connecting and for each request.
    #[arg(long, value_name = "SECS", default_value_t = 5.0)]
    pub timeout: f64,
    /// Only describe the broker; skip the smoke round.
    #[arg(long)]
    pub info_only: bool,
    /// Print the report as one JSON object on stdout instead of text.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: ProbeArgs) -> CmdResult {
    if !(args.timeout.is_finite() && args.timeout > 0.0 && args.timeout <= 3600.0) {
        return Err(Fail::usage(format!(
            "--timeout must be a number of seconds in (0, 3600], not {}",
            args.timeout
        )));
    }
    let bootstrap = args.bootstrap.trim().to_string();
    if bootstrap.is_empty() || !bootstrap.contains(':') {
        return Err(Fail::usage(format!(
            "--bootstrap must be HOST:PORT, not {:?}",
            args.bootstrap
        )));
    }
    let mut config = ProbeConfig::new(bootstrap);
    config.timeout = Duration::from_secs_f64(args.timeout);
    config.info_only = args.info_only;
    config.security = crate::cmd::target::load_security(args.command_config.as_deref())?;
    if let Some(p) = &args.prefix {
        sharecheck_conformance::cleanup::check_prefix(p)
            .map_err(|e| Fail::usage(format!("--prefix: {e}")))?;
    }
    config.prefix = args.prefix.clone();

    let runtime = crate::cmd::target::runtime()?;
    let json = args.json;
    let mut print = |step: &ProbeStep| {
        if !json {
            print_step(step);
        }
    };
    if !json {
        println!("probing {}", config.bootstrap);
    }
    let report = runtime.block_on(probe::run(&config, &mut print));
    if json {
        match serde_json::to_string_pretty(&report) {
            Ok(s) => println!("{s}"),
            Err(e) => return Err(Fail::unusable(format!("cannot render the report: {e}"))),
        }
    }
    finish(&report, json)
}

fn print_step(step: &ProbeStep) {
    println!("  {}", step.to_string().replace('\n', "\n  "));
    // The spec's record table where something went wrong.
    if !step.anomalies.is_empty() {
        for line in &step.records {
            println!("          {line}");
        }
    }
    let _ = std::io::stdout().flush();
}

fn finish(report: &ProbeReport, json: bool) -> CmdResult {
    match &report.verdict {
        Verdict::Pass => {
            if !json {
                println!("PASS: every expectation held ({} ms)", report.elapsed_ms);
            }
            Ok(Outcome::Pass)
        }
        Verdict::Violation { anomalies } => {
            let steps = report
                .round
                .as_ref()
                .map(|r| r.steps.as_slice())
                .unwrap_or(&[]);
            let named: Vec<String> = anomalies
                .iter()
                .map(|a| {
                    let text = steps
                        .iter()
                        .find(|s| s.step == a.step)
                        .map(|s| format!(" ({})", s.text))
                        .unwrap_or_default();
                    format!("{} at step {}{text}", a.kind, a.step)
                })
                .collect();
            let detail = anomalies
                .first()
                .map(|a| format!(": {}", a.detail))
                .unwrap_or_default();
            let more = if named.len() > 1 {
                format!("; also {}", named[1..].join("; "))
            } else {
                String::new()
            };
            eprintln!(
                "sharecheck: probe: expectation failed: {}{detail}{more}",
                named.first().map(String::as_str).unwrap_or("?")
            );
            Ok(Outcome::Violation)
        }
        Verdict::Inconclusive { reason } => {
            eprintln!("sharecheck: probe: inconclusive: {reason}");
            Ok(Outcome::Inconclusive)
        }
        Verdict::Unusable { reason } => Err(Fail::unusable(one_line(reason))),
    }
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}
