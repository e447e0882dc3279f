//! `sharecheck conform`, `sharecheck list` and `sharecheck replay`: the conformance suite.

use crate::exit::{CmdResult, Fail, Outcome};
use clap::{Args, ValueEnum};
use sharecheck_broker::{Broker, BrokerConfig, BrokerHandle, BrokerMutant};
use sharecheck_conformance::report::{self, RunVerdict};
use sharecheck_conformance::run::{self, CaseResult, CaseVerdict, RunOptions, Target};
use sharecheck_conformance::scenario;
use sharecheck_conformance::trace::{Case, Level, Suite};
use sharecheck_model::Profile;
use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Which suite.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum SuiteArg {
    /// A handful of basic cases.
    Smoke,
    /// The default.
    Standard,
    /// Everything, including the longer model-generated pairs.
    Full,
}

impl From<SuiteArg> for Suite {
    fn from(s: SuiteArg) -> Suite {
        match s {
            SuiteArg::Smoke => Suite::Smoke,
            SuiteArg::Standard => Suite::Standard,
            SuiteArg::Full => Suite::Full,
        }
    }
}

/// Where to run: a broker, or the embedded reference broker.
#[derive(Args, Debug, Clone)]
pub struct TargetArgs {
    /// The broker to test, HOST:PORT. Without it, the embedded reference broker is started in-process.
    #[arg(long, value_name = "HOST:PORT")]
    pub bootstrap: Option<String>,
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
}

/// `sharecheck conform`.
#[derive(Args, Debug)]
pub struct ConformArgs {
    #[command(flatten)]
    pub target: TargetArgs,
    /// Which suite.
    #[arg(long, value_enum, default_value_t = SuiteArg::Standard)]
    pub suite: SuiteArg,
    /// Only cases whose id contains PATTERN (or matches it, with `*`).
    #[arg(long, value_name = "PATTERN")]
    pub filter: Option<String>,
    /// SHOULD failures fail the run too.
    #[arg(long)]
    pub strict: bool,
    /// Cases run at the same time.
    #[arg(long, default_value_t = 8)]
    pub jobs: usize,
    /// Write the JSON report here.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Write JUnit XML here.
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// Where failed and inconclusive cases leave their trace and history (default artifacts/conform-SEED).
    #[arg(long, value_name = "DIR")]
    pub artifacts: Option<PathBuf>,
    /// Seed naming this run's topics and groups (printed; default: random).
    #[arg(long)]
    pub seed: Option<u64>,
}

/// `sharecheck list`.
#[derive(Args, Debug)]
pub struct ListArgs {
    /// Which suite.
    #[arg(long, value_enum, default_value_t = SuiteArg::Full)]
    pub suite: SuiteArg,
    /// Only cases whose id contains PATTERN (or matches it, with `*`).
    #[arg(long, value_name = "PATTERN")]
    pub filter: Option<String>,
    /// One JSON array on stdout.
    #[arg(long)]
    pub json: bool,
}

/// `sharecheck replay`.
#[derive(Args, Debug)]
pub struct ReplayArgs {
    /// A trace file (a fixture, or an artifact of a failed run).
    pub file: PathBuf,
    #[command(flatten)]
    pub target: TargetArgs,
    /// Print the whole result (steps, anomalies, raw request/response history) as one JSON object.
    #[arg(long)]
    pub json: bool,
}

/// A running target and what keeps it alive.
pub struct Running {
    pub target: Target,
    /// Keeps the embedded broker running until the command ends.
    pub _broker: Option<Arc<BrokerHandle>>,
    pub runtime: tokio::runtime::Runtime,
}

fn runtime() -> Result<tokio::runtime::Runtime, Fail> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| Fail::unusable(format!("cannot start the async runtime: {e}")))
}

/// The run target of an embedded reference broker: its address, its name (with the planted bug, if
/// any) and the delivery and in-flight limits it was started with.
pub fn embedded_target(
    handle: &BrokerHandle,
    mutant: Option<BrokerMutant>,
    profile: Profile,
    restarter: Option<run::Restarter>,
) -> Target {
    let version = env!("CARGO_PKG_VERSION");
    let implementation = match mutant {
        Some(m) => format!(
            "sharecheck reference broker {version} (mutant {})",
            m.name()
        ),
        None => format!("sharecheck reference broker {version}"),
    };
    let c = handle.config();
    Target {
        bootstrap: handle.bootstrap(),
        implementation,
        profile,
        delivery_limit: c.delivery_limit,
        max_in_flight: c.max_record_locks,
        restarter,
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

fn profile_arg(name: &Option<String>) -> Result<Option<Profile>, Fail> {
    match name {
        None => Ok(None),
        Some(n) => Profile::by_name(n).map(Some).ok_or_else(|| {
            let names: Vec<_> = Profile::ALL.iter().map(|p| p.name).collect();
            Fail::usage(format!(
                "unknown profile '{n}'; known: {}",
                names.join(", ")
            ))
        }),
    }
}

/// Starts the embedded broker, or connects to `--bootstrap`; exit 3 when the target is unusable.
pub fn start_target(args: &TargetArgs) -> Result<Running, Fail> {
    let profile = profile_arg(&args.profile)?;
    let mutant = args.mutant.as_deref().map(broker_mutant).transpose()?;
    if args.bootstrap.is_some() && mutant.is_some() {
        return Err(Fail::usage(
            "--mutant plants a bug in the embedded broker; it cannot be used with --bootstrap",
        ));
    }
    if args.timeout == 0 {
        return Err(Fail::usage("--timeout must be at least 1 second"));
    }
    let timeout = Duration::from_secs(args.timeout);
    let rt = runtime()?;
    match &args.bootstrap {
        Some(addr) => {
            let target = rt.block_on(async {
                tokio::time::timeout(timeout, run::prepare_target(addr, profile, timeout))
                    .await
                    .map_err(|_| {
                        Fail::unusable(format!("{addr}: no answer within {}s", args.timeout))
                    })?
                    .map_err(|e| Fail::unusable(format!("{addr}: {e}")))
            })?;
            Ok(Running {
                target,
                _broker: None,
                runtime: rt,
            })
        }
        None => {
            let profile = profile.unwrap_or(Profile::DEFAULT);
            let mut config = BrokerConfig::new(([127, 0, 0, 1], 0).into());
            config.profile = profile;
            config.mutant = mutant;
            let handle = rt.block_on(Broker::start(config)).map_err(|e| {
                Fail::unusable(format!("cannot start the embedded reference broker: {e}"))
            })?;
            let handle = Arc::new(handle);
            let restart_handle = handle.clone();
            let restarter: run::Restarter = Arc::new(move || {
                let h = restart_handle.clone();
                Box::pin(async move {
                    h.restart();
                    Ok(())
                })
            });
            let target = embedded_target(&handle, mutant, profile, Some(restarter));
            Ok(Running {
                target,
                _broker: Some(handle),
                runtime: rt,
            })
        }
    }
}

fn rerun_command(path: &std::path::Path, args: &TargetArgs) -> String {
    let mut cmd = format!("sharecheck replay {}", path.display());
    if let Some(b) = &args.bootstrap {
        cmd.push_str(&format!(" --bootstrap {b}"));
    }
    if let Some(m) = &args.mutant {
        cmd.push_str(&format!(" --mutant {m}"));
    }
    if let Some(p) = &args.profile {
        cmd.push_str(&format!(" --profile {p}"));
    }
    cmd
}

fn first_line(r: &CaseResult) -> String {
    match (r.anomalies.first(), &r.reason) {
        (Some(a), _) => {
            let more = if r.anomalies.len() > 1 {
                format!(" (+{} more)", r.anomalies.len() - 1)
            } else {
                String::new()
            };
            format!("{} at step {}: {}{more}", a.kind, a.step, a.detail)
        }
        (None, Some(why)) => why.clone(),
        (None, None) => String::new(),
    }
}

pub fn conform(args: ConformArgs) -> CmdResult {
    if args.jobs == 0 {
        return Err(Fail::usage("--jobs must be at least 1"));
    }
    let catalog = scenario::catalog().map_err(|e| Fail::malformed(e.to_string()))?;
    let cases = scenario::select(&catalog, args.suite.into(), args.filter.as_deref());
    if cases.is_empty() {
        return Err(Fail::usage(format!(
            "no case selected (suite {:?}, filter {:?}); `sharecheck list` shows the catalog",
            args.suite,
            args.filter.as_deref().unwrap_or("")
        )));
    }
    let seed = args.seed.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64 % 1_000_000_000)
            .unwrap_or(1)
    });
    let running = start_target(&args.target)?;
    let target = running.target.clone();
    let opts = RunOptions {
        run_id: format!("{seed}"),
        jobs: args.jobs,
        timeout: Duration::from_secs(args.target.timeout),
        ..RunOptions::default()
    };
    println!(
        "sharecheck conform: {} case(s) of the {:?} suite",
        cases.len(),
        args.suite
    );
    println!("target: {} ({})", target.bootstrap, target.implementation);
    println!(
        "profile: {}; delivery limit {}; seed {seed}; jobs {}",
        target.profile.name, target.delivery_limit, args.jobs
    );
    let tty = std::io::stderr().is_terminal();
    let started = Instant::now();
    let progress = move |done: usize, total: usize, r: &CaseResult| {
        if tty {
            eprint!(
                "\r\x1b[2K[{done}/{total}] {:.0}s {} {:?}",
                started.elapsed().as_secs_f64(),
                r.id,
                r.verdict
            );
            let _ = std::io::stderr().flush();
        }
    };
    let results = running
        .runtime
        .block_on(run::run_suite(&target, &opts, &cases, &progress));
    if tty {
        eprint!("\r\x1b[2K");
    }
    let artifacts_dir = args
        .artifacts
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("artifacts/conform-{seed}")));
    let mut artifacts: BTreeMap<String, PathBuf> = BTreeMap::new();
    for r in results
        .iter()
        .filter(|r| matches!(r.verdict, CaseVerdict::Fail | CaseVerdict::Inconclusive))
    {
        match report::write_artifact(&artifacts_dir, r, &target) {
            Ok(p) => {
                artifacts.insert(r.id.clone(), p);
            }
            Err(e) => eprintln!("sharecheck: cannot write the artifact of {}: {e}", r.id),
        }
    }
    for r in &results {
        let tag = match (r.verdict, r.level) {
            (CaseVerdict::Fail, Level::Must) => "FAIL",
            (CaseVerdict::Fail, Level::Should) => "FAIL (should)",
            (CaseVerdict::Inconclusive, _) => "INCONCLUSIVE",
            _ => continue,
        };
        println!("{tag} {}: {}", r.id, first_line(r));
        if let Some(p) = artifacts.get(&r.id) {
            println!("    rerun: {}", rerun_command(p, &args.target));
        }
    }
    let noted: Vec<&CaseResult> = results.iter().filter(|r| !r.notes.is_empty()).collect();
    if !noted.is_empty() {
        println!(
            "\n{} case(s) saw responses the spec does not judge, for example:",
            noted.len()
        );
        for r in noted.iter().take(3) {
            println!("  {}: {}", r.id, r.notes[0]);
        }
    }
    let rep = report::build(
        &target,
        &seed.to_string(),
        &results,
        args.strict,
        &artifacts,
    );
    println!();
    println!(
        "{:<16} {:>6} {:>6} {:>12} {:>7}",
        "area", "pass", "fail", "inconclusive", "skipped"
    );
    for (area, [p, f, i, s]) in report::by_area(&results) {
        println!("{area:<16} {p:>6} {f:>6} {i:>12} {s:>7}");
    }
    let s = &rep.summary;
    println!(
        "\n{} case(s): {} passed, {} failed, {} inconclusive, {} skipped in {:.1}s; transitions exercised {}/{}{}",
        s.total,
        s.passed,
        s.failed,
        s.inconclusive,
        s.skipped,
        started.elapsed().as_secs_f64(),
        rep.coverage.transitions_exercised,
        rep.coverage.transitions_total,
        if rep.coverage.missing.is_empty() { String::new() } else { format!(" (missing: {})", rep.coverage.missing.join(", ")) }
    );
    println!(
        "verdict: {}",
        serde_json::to_value(rep.verdict)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default()
    );
    if let Some(path) = &args.json {
        let text = serde_json::to_string_pretty(&rep)
            .map_err(|e| Fail::usage(format!("cannot encode the JSON report: {e}")))?;
        std::fs::write(path, text)
            .map_err(|e| Fail::usage(format!("cannot write {}: {e}", path.display())))?;
    }
    if let Some(path) = &args.junit {
        let xml = report::junit(&rep, &results)
            .map_err(|e| Fail::usage(format!("cannot encode JUnit XML: {e}")))?;
        std::fs::write(path, xml)
            .map_err(|e| Fail::usage(format!("cannot write {}: {e}", path.display())))?;
    }
    drop(running);
    Ok(match rep.verdict {
        RunVerdict::Pass => Outcome::Pass,
        RunVerdict::Fail => Outcome::Violation,
        RunVerdict::Inconclusive => Outcome::Inconclusive,
    })
}

pub fn list(args: ListArgs) -> CmdResult {
    let catalog = scenario::catalog().map_err(|e| Fail::malformed(e.to_string()))?;
    let cases = scenario::select(&catalog, args.suite.into(), args.filter.as_deref());
    if cases.is_empty() {
        return Err(Fail::usage("no case selected"));
    }
    if args.json {
        let items: Vec<serde_json::Value> = cases
            .iter()
            .map(|c| {
                serde_json::json!({"id": c.id, "area": c.area(), "level": c.level, "suite": c.suite, "origin": c.origin,
                    "rule": c.rule, "source": c.source, "requires": c.requires, "steps": c.steps.len()})
            })
            .collect();
        println!(
            "{}",
            serde_json::to_string_pretty(&items).unwrap_or_default()
        );
        return Ok(Outcome::Pass);
    }
    let mut area = String::new();
    for c in &cases {
        if c.area() != area {
            area = c.area().to_string();
            println!("\n{area}");
        }
        let level = match c.level {
            Level::Must => "MUST",
            Level::Should => "SHOULD",
        };
        println!(
            "  {:<58} {level:<6} {:<8} {}",
            c.id,
            format!("{:?}", c.suite).to_lowercase(),
            c.rule
        );
        println!("  {:<58} {:<6} {:<8} source: {}", "", "", "", c.source);
    }
    println!("\n{} case(s)", cases.len());
    Ok(Outcome::Pass)
}

pub fn replay(args: ReplayArgs) -> CmdResult {
    let case: Case = Case::load(&args.file).map_err(|e| match e {
        sharecheck_conformance::trace::TraceError::Io { .. } => Fail::usage(e.to_string()),
        _ => Fail::malformed(e.to_string()),
    })?;
    let running = start_target(&args.target)?;
    let target = running.target.clone();
    if !args.json {
        println!(
            "replay {} ({:?}, {}): {}",
            case.id, case.level, case.source, case.rule
        );
        println!(
            "target: {} ({}); profile {}",
            target.bootstrap, target.implementation, target.profile.name
        );
    }
    let opts = RunOptions {
        jobs: 1,
        timeout: Duration::from_secs(args.target.timeout),
        ..RunOptions::default()
    };
    let r = running
        .runtime
        .block_on(run::run_case(&target, &opts, &case, 0));
    if args.json {
        println!("{}", serde_json::to_string_pretty(&r).unwrap_or_default());
        return Ok(match r.verdict {
            CaseVerdict::Pass => Outcome::Pass,
            CaseVerdict::Fail => Outcome::Violation,
            CaseVerdict::Inconclusive => Outcome::Inconclusive,
            CaseVerdict::Skipped => Outcome::TargetUnusable,
        });
    }
    println!("delivery limit {}", r.delivery_limit);
    for s in &r.steps {
        println!("\n{:>3}. {}\n     -> {}", s.step, s.text, s.outcome);
        for line in &s.records {
            println!("        {line}");
        }
        for a in r.anomalies.iter().filter(|a| a.step == s.step) {
            println!("     !! {}: {}", a.kind, a.detail);
        }
    }
    for n in &r.notes {
        println!("note: {n}");
    }
    println!();
    match r.verdict {
        CaseVerdict::Pass => {
            println!("verdict: pass ({} ms)", r.duration_ms);
            Ok(Outcome::Pass)
        }
        CaseVerdict::Fail => {
            println!("verdict: FAIL: {}", first_line(&r));
            Ok(Outcome::Violation)
        }
        CaseVerdict::Inconclusive => {
            println!("verdict: inconclusive: {}", r.reason.unwrap_or_default());
            Ok(Outcome::Inconclusive)
        }
        CaseVerdict::Skipped => Err(Fail::unusable(format!(
            "the case cannot run on this target: {}",
            r.reason.unwrap_or_default()
        ))),
    }
}
