//! `sharecheck check` and `sharecheck explore`: model-check the share-partition spec.

use crate::exit::{CmdResult, Fail, Outcome};
use clap::{Args, ValueEnum};
use sharecheck_model::check::{check, CheckReport, Phase, PropertyReport, Status, Verdict};
use sharecheck_model::design::{self, DesignMutant, WriteOrder};
use sharecheck_model::model::{Config, ShareModel};
use sharecheck_model::{Mutant, Profile};
use std::io::{IsTerminal, Write};
use std::time::Instant;

/// Output format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Human-readable text.
    Text,
    /// One JSON object on stdout.
    Json,
}

/// The model's bounds and rules, shared by `check` and `explore`.
#[derive(Args, Debug, Clone)]
pub struct ModelArgs {
    /// Records produced over a run (1-6).
    #[arg(long, default_value_t = Config::STANDARD.records)]
    pub records: u8,
    /// Members of the share group (1-3).
    #[arg(long, default_value_t = Config::STANDARD.members)]
    pub members: u8,
    /// Delivery-count limit (2-10).
    #[arg(long, default_value_t = Config::STANDARD.delivery_limit)]
    pub delivery_limit: u8,
    /// In-flight window limit (share.partition.max.record.locks).
    #[arg(long, default_value_t = Config::STANDARD.max_in_flight)]
    pub max_in_flight: u32,
    /// Broker restarts allowed (0-3).
    #[arg(long, default_value_t = Config::STANDARD.restarts)]
    pub restarts: u8,
    /// Release rules: kafka-4.1, kafka-4.2, kafka-4.3, kafka-4.4.
    #[arg(long, default_value = "kafka-4.2")]
    pub profile: String,
    /// Check the spec with a planted bug (see --list-mutants).
    #[arg(long)]
    pub mutant: Option<String>,
    /// Model the group with `share.renew.acknowledge.enable=false` (4.3+): every RENEW refused.
    #[arg(long)]
    pub renew_disabled: bool,
}

impl ModelArgs {
    fn config(&self) -> Result<Config, Fail> {
        let profile = Profile::by_name(&self.profile).ok_or_else(|| {
            let names: Vec<_> = Profile::ALL.iter().map(|p| p.name).collect();
            Fail::usage(format!(
                "unknown profile '{}'; known: {}",
                self.profile,
                names.join(", ")
            ))
        })?;
        let mutant = match &self.mutant {
            None => None,
            Some(name) => Some(Mutant::by_name(name).ok_or_else(|| {
                Fail::usage(format!(
                    "unknown mutant '{name}'; `sharecheck check --list-mutants` lists them"
                ))
            })?),
        };
        let config = Config {
            records: self.records,
            members: self.members,
            delivery_limit: self.delivery_limit,
            max_in_flight: self.max_in_flight,
            restarts: self.restarts,
            profile,
            mutant,
            renew_enabled: !self.renew_disabled,
        };
        config.validate().map_err(|e| Fail::usage(e.to_string()))?;
        Ok(config)
    }
}

/// `sharecheck check`.
#[derive(Args, Debug)]
pub struct CheckArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// Print the names of the spec mutants (with --design: of the design), one per line, and exit.
    #[arg(long)]
    pub list_mutants: bool,
    /// Check the durability design instead (leader, writes in flight, share coordinator;
    /// docs/research/durability-design.md) under --profile, with --mutant a design mutant.
    #[arg(long)]
    pub design: bool,
    /// With --design: which writes in flight may reach the share coordinator next — any (a
    /// write retried after a coordinator error is overtaken) or per-leader (in the order sent).
    #[arg(long, value_enum, requires = "design")]
    pub write_order: Option<WriteOrderArg>,
    /// With --design: write each violated property's shortest counterexample to this directory
    /// as a conformance case (`sharecheck replay FILE` tries it on a broker).
    #[arg(long, value_name = "DIR", requires = "design")]
    pub export: Option<std::path::PathBuf>,
    /// With --design: a leader move is not one step — the former leader keeps handing out
    /// records from its memory until it applies the metadata change.
    #[arg(long, requires = "design")]
    pub leader_window: bool,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

/// `--write-order`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum WriteOrderArg {
    /// Any write in flight may land next.
    Any,
    /// A leader's writes land in the order sent.
    PerLeader,
}

impl From<WriteOrderArg> for WriteOrder {
    fn from(a: WriteOrderArg) -> WriteOrder {
        match a {
            WriteOrderArg::Any => WriteOrder::Any,
            WriteOrderArg::PerLeader => WriteOrder::PerLeader,
        }
    }
}

/// `sharecheck explore`.
#[derive(Args, Debug)]
pub struct ExploreArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// Port on 127.0.0.1.
    #[arg(long, default_value_t = 3000)]
    pub port: u16,
}

pub fn run(args: CheckArgs) -> CmdResult {
    if args.design {
        return run_design(&args);
    }
    if args.list_mutants {
        for m in Mutant::ALL {
            println!("{}", m.name());
        }
        return Ok(Outcome::Pass);
    }
    let config = args.model.config()?;
    let started = Instant::now();
    let tty = std::io::stderr().is_terminal();
    let mut last_draw = Instant::now();
    let mut progress = |phase: Phase, states: usize| {
        if tty && last_draw.elapsed().as_millis() >= 200 {
            last_draw = Instant::now();
            let what = match phase {
                Phase::Safety => "safety".to_string(),
                Phase::Liveness => "liveness".to_string(),
                Phase::Counterexample(p) => format!("counterexample for {}", p.name()),
            };
            let rate = states as f64 / started.elapsed().as_secs_f64().max(1e-3);
            eprint!("\r\x1b[2K[{what}] {states} states, {rate:.0} states/s");
            let _ = std::io::stderr().flush();
        }
    };
    let mut report = check(config, &mut progress);
    if tty {
        eprint!("\r\x1b[2K");
    }
    report.elapsed_ms = started.elapsed().as_millis() as u64;
    match args.format {
        Format::Json => {
            let json = serde_json::to_string_pretty(&report).map_err(|e| Fail {
                outcome: Outcome::Violation,
                message: format!("cannot encode the report: {e}"),
            })?;
            println!("{json}");
        }
        Format::Text => print_text(&report),
    }
    Ok(match report.verdict {
        Verdict::Pass => Outcome::Pass,
        Verdict::Fail => Outcome::Violation,
    })
}

fn print_text(r: &CheckReport) {
    let c = &r.config;
    println!("sharecheck check: the KIP-932 share-partition model");
    println!(
        "config: profile {}, {} records, {} members, delivery limit {}, in-flight limit {}, {} restart(s), mutant {}",
        c.profile.name,
        c.records,
        c.members,
        c.delivery_limit,
        c.max_in_flight,
        c.restarts,
        c.mutant.map_or("none".to_string(), |m| m.name().to_string())
    );
    let secs = r.elapsed_ms as f64 / 1000.0;
    println!(
        "states: {} unique (one per member permutation), {} total, depth {}; {:.2} s",
        r.states_unique, r.states_total, r.max_depth, secs
    );
    println!();
    print_properties(&r.properties);
    println!();
    let verdict = match r.verdict {
        Verdict::Pass => "pass: every safety and liveness property holds and every reachability property is reached",
        Verdict::Fail => "FAIL: a property is violated or unreached",
    };
    println!("verdict: {verdict}");
}

/// `sharecheck check --design`: the durability-design model under a profile.
fn run_design(args: &CheckArgs) -> CmdResult {
    if args.list_mutants {
        for m in DesignMutant::ALL {
            println!("{}\t{}", m.name(), m.description());
        }
        return Ok(Outcome::Pass);
    }
    let profile = Profile::by_name(&args.model.profile).ok_or_else(|| {
        let names: Vec<_> = Profile::ALL.iter().map(|p| p.name).collect();
        Fail::usage(format!(
            "unknown profile '{}'; known: {}",
            args.model.profile,
            names.join(", ")
        ))
    })?;
    let mutant = match &args.model.mutant {
        None => None,
        Some(name) => Some(DesignMutant::by_name(name).ok_or_else(|| {
            Fail::usage(format!(
                "unknown design mutant '{name}'; `sharecheck check --design --list-mutants` lists them"
            ))
        })?),
    };
    let started = Instant::now();
    let order = args.write_order.map_or(WriteOrder::Any, WriteOrder::from);
    let window = args.leader_window;
    let report = design::check_design(profile, mutant, order, window);
    let mut exported = Vec::new();
    if let Some(dir) = &args.export {
        std::fs::create_dir_all(dir)
            .map_err(|e| Fail::cannot_write(format!("cannot create {}: {e}", dir.display())))?;
        for (prop, actions) in &report.counterexamples {
            let case = crate::cmd::design_export::case_of(profile, order, window, *prop, actions);
            let path = dir.join(format!("{}.json", case.id));
            let mut text = case.to_json();
            text.push('\n');
            crate::cmd::conform::write_output(&path, &text)?;
            exported.push(path);
        }
    }
    let (properties, states) = (report.properties, report.states);
    let elapsed_ms = started.elapsed().as_millis() as u64;
    let failed = properties
        .iter()
        .any(|p| matches!(p.status, Status::Violated | Status::Unreached));
    match args.format {
        Format::Json => {
            let json = serde_json::json!({
                "format_version": 1,
                "model": "durability-design",
                "profile": profile.name,
                "mutant": mutant.map(|m| m.name()),
                "bounds": {
                    "records": design::RECORDS,
                    "delivery_limit": design::LIMIT,
                    "faults": design::FAULTS,
                    "writes_in_flight": design::IN_FLIGHT,
                },
                "write_order": order.name(),
                "leader_window": window,
                "states_unique": states,
                "elapsed_ms": elapsed_ms,
                "properties": properties,
                "exported": exported,
                "verdict": if failed { "fail" } else { "pass" },
            });
            println!("{json:#}");
        }
        Format::Text => {
            println!(
                "sharecheck check --design: Kafka's durability design for one share partition"
            );
            println!(
                "config: profile {}, {} records, delivery limit {}, {} fault(s), {} write(s) in flight ({} order){}, mutant {}",
                profile.name,
                design::RECORDS,
                design::LIMIT,
                design::FAULTS,
                design::IN_FLIGHT,
                order.name(),
                if window { ", leader window" } else { "" },
                mutant.map_or("none", |m| m.name())
            );
            println!(
                "states: {states} unique; {:.2} s",
                elapsed_ms as f64 / 1000.0
            );
            println!();
            print_properties(&properties);
            println!();
            for path in &exported {
                println!("exported: {}", path.display());
            }
            println!(
                "verdict: {}",
                if failed {
                    "FAIL: a promise is broken by the design (or a behaviour is unreached)"
                } else {
                    "pass: every promise holds across reloads and every fault is reached"
                }
            );
        }
    }
    Ok(if failed {
        Outcome::Violation
    } else {
        Outcome::Pass
    })
}

/// Each property with its status, and a violated one's shortest counterexample.
fn print_properties(properties: &[PropertyReport]) {
    for p in properties {
        let status = match p.status {
            Status::Holds => "holds",
            Status::Violated => "VIOLATED",
            Status::Reached => "reached",
            Status::Unreached => "UNREACHED",
        };
        let kind = serde_json::to_value(p.kind)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        println!("  {status:<10} {kind:<10} {}", p.name);
        if let Some(steps) = &p.counterexample {
            println!(
                "      shortest counterexample, {} step(s):",
                steps.len().saturating_sub(1)
            );
            for s in steps {
                match &s.action {
                    None => println!("      {:>3}. (initial state)", s.step),
                    Some(a) => println!("      {:>3}. {a}", s.step),
                }
                if s.records.is_empty() {
                    println!("             (no records yet)");
                }
                for line in &s.records {
                    println!("             {line}");
                }
            }
        }
    }
}

pub fn explore(args: ExploreArgs) -> CmdResult {
    use stateright::Model;
    let config = args.model.config()?;
    let addr = ("127.0.0.1", args.port);
    // Stateright's server panics when it cannot bind; find out first and say so.
    std::net::TcpListener::bind(addr)
        .map_err(|e| Fail::usage(format!("cannot listen on 127.0.0.1:{}: {e}", args.port)))?;
    println!(
        "Stateright Explorer on http://127.0.0.1:{}/ (Ctrl-C to stop)",
        args.port
    );
    let _ = std::io::stdout().flush();
    ShareModel::new(config).checker().threads(1).serve(addr);
    Ok(Outcome::Pass)
}
