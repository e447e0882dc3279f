//! `sharecheck conform`, `sharecheck list` and `sharecheck replay`: the conformance suite.

use crate::cmd::target::{seed_or_random, start_target, TargetArgs};
use crate::exit::{CmdResult, Fail, Outcome};
use clap::{Args, ValueEnum};
use sharecheck_conformance::cleanup::cleanup_prefix;
use sharecheck_conformance::oracle::CaseVerdict;
use sharecheck_conformance::report::baseline::Baseline;
use sharecheck_conformance::report::{self, text, RunVerdict};
use sharecheck_conformance::run::schedule::{run_suite, Scheduler};
use sharecheck_conformance::run::{self, CaseResult, RunOptions};
use sharecheck_conformance::scenario;
use sharecheck_conformance::target::EmbeddedOptions;
use sharecheck_conformance::trace::{Case, Level, Suite};
use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
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
    /// Cases run at the same time (cases mostly wait on lock deadlines; restart cases run alone,
    /// last).
    #[arg(long, default_value_t = 32)]
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
    /// Leave the artifact (trace and recorded history) of every case, passing ones too.
    #[arg(long)]
    pub all_histories: bool,
    /// Keep each case's topics and share group on the target for inspection (by default every case
    /// deletes them at its end, and the run deletes last the groups whose members had not yet timed
    /// out).
    #[arg(long)]
    pub keep: bool,
    /// Run against a broker that is not on loopback without `--prefix` (a shared cluster: the
    /// run creates and deletes topics and groups there).
    #[arg(long)]
    pub shared_cluster_ok: bool,
    /// Judge the run against expected results (case id → verdict and the finding that explains
    /// it): exit 0 when they match, 1 on any difference in either direction, which is printed.
    #[arg(long, value_name = "FILE")]
    pub baseline: Option<PathBuf>,
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
    /// Print the whole result (steps, anomalies, raw request/response history) as one JSON object
    /// (with `--repeat`: the counts and every replay's verdict and anomalies).
    #[arg(long)]
    pub json: bool,
    /// Replay the case N times, each on its own topic and group, and print how often each verdict
    /// and each anomaly came out: the reproduction rate of a timing-dependent finding. Exit 1 when
    /// any replay failed, 2 when none failed and any was inconclusive.
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub repeat: usize,
    /// With `--repeat`: replays run at the same time (a case that restarts the broker runs one at a
    /// time whatever this says).
    #[arg(long, default_value_t = 1)]
    pub jobs: usize,
}

/// The verdict's exit code.
pub fn outcome_of(verdict: RunVerdict) -> Outcome {
    match verdict {
        RunVerdict::Pass => Outcome::Pass,
        RunVerdict::Fail => Outcome::Violation,
        RunVerdict::Inconclusive => Outcome::Inconclusive,
    }
}

/// Writes `text` to `path`; exit 74 when it cannot.
pub fn write_output(path: &Path, text: &str) -> Result<(), Fail> {
    std::fs::write(path, text)
        .map_err(|e| Fail::cannot_write(format!("cannot write {}: {e}", path.display())))
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
    let baseline = match &args.baseline {
        Some(path) => {
            let known: Vec<String> = catalog.iter().map(|c| c.id.clone()).collect();
            Some(
                Baseline::load(path, &known)
                    .map_err(|e| Fail::malformed(format!("baseline {e}")))?,
            )
        }
        None => None,
    };
    if let Some(b) = &args.target.bootstrap {
        if !is_loopback(b) && args.target.prefix.is_none() && !args.shared_cluster_ok {
            return Err(Fail::usage(format!(
                "{b} is not on loopback: a run creates and deletes topics and share groups there; \
                 name them with --prefix (e.g. --prefix sharecheck-$USER) or pass --shared-cluster-ok"
            )));
        }
    }
    let seed = seed_or_random(args.seed);
    let running = start_target(&args.target, EmbeddedOptions::new)?;
    let target = running.target.clone();
    let prefix = args
        .target
        .prefix
        .clone()
        .unwrap_or_else(|| format!("sharecheck-{seed}"));
    let opts = RunOptions {
        prefix: prefix.clone(),
        timeout: args.target.deadline(),
        keep: args.keep,
        ..RunOptions::default()
    };
    println!(
        "sharecheck conform: {} case(s) of the {:?} suite",
        cases.len(),
        args.suite
    );
    println!("target: {} ({})", target.bootstrap, target.implementation);
    println!(
        "profile: {}; delivery limit {}; seed {seed}; jobs {}; prefix {prefix}",
        target.profile.name, target.delivery_limit, args.jobs
    );
    let _ = std::io::stdout().flush();
    let tty = std::io::stderr().is_terminal();
    let started = Instant::now();
    let heartbeat = crate::cmd::heartbeat::Heartbeat::start("conform", cases.len() as u64, seed);
    let mut failed = 0u64;
    let mut progress = |done: usize, total: usize, r: &CaseResult| {
        failed += u64::from(r.verdict == CaseVerdict::Fail);
        heartbeat.update(done as u64, failed);
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
    let scheduler = Scheduler::new(target.clone(), opts.clone());
    let ran = running.runtime.block_on(async {
        tokio::select! {
            ran = run_suite(&scheduler, &cases, args.jobs, &mut progress) => Ok(ran),
            signal = interrupt() => Err(signal),
        }
    });
    drop(heartbeat);
    if tty {
        eprint!("\r\x1b[2K");
    }
    let ran = match ran {
        Ok(ran) => ran,
        Err(signal) => {
            return interrupted(&running, &target, &opts, args.keep, signal);
        }
    };
    // A run stopped for want of a permission still reaches the target: it removes what it made.
    let target_gone = ran.iter().flatten().any(|r| {
        r.unreachable
            .as_ref()
            .is_some_and(|why| !why.contains(run::MISSING_PERMISSION))
    });
    // A cleanup refused for want of a permission: the run ends with exit 3 naming it.
    let mut left_behind: Option<String> = None;
    if !args.keep && running._broker.is_none() && !target_gone {
        // Members dropped without leaving (a rejoin, a restart) keep a group until their session
        // times out: Kafka's default group.share.session.timeout.ms is 45 s, and after a restart the
        // coordinator took 61 s to expire one (Kafka 4.2.2, the CI run at 1ecbbd3). (The in-process broker
        // and its groups end with this command: nothing to wait for.)
        let (late, left) = running.runtime.block_on(run::delete_leftover_groups(
            &target,
            &opts,
            Duration::from_secs(180),
        ));
        let rest = running.runtime.block_on(cleanup_prefix(
            target.client_config(opts.timeout),
            &run_names(&opts.prefix),
            false,
            Duration::from_secs(30),
        ));
        if let Ok(rest) = &rest {
            if !rest.topics.is_empty() || !rest.groups.is_empty() {
                println!(
                    "cleanup: {} topic(s) and {} group(s) with prefix {} were still there{}",
                    rest.topics.len(),
                    rest.groups.len(),
                    opts.prefix,
                    match rest.left.first() {
                        None => " and are removed".to_string(),
                        Some((name, why)) => format!(
                            "; {} of them could not be removed, e.g. {name}: {why}; `sharecheck cleanup --bootstrap {} --prefix {}` removes them later",
                            rest.left.len(),
                            target.bootstrap,
                            run_names(&opts.prefix)
                        ),
                    }
                );
            }
            if let Some(d) = &rest.denied {
                left_behind = Some(format!("the cleanup: {}: {d}", run::MISSING_PERMISSION));
            }
        }
        if left.is_empty() && rest.as_ref().is_ok_and(|r| r.left.is_empty()) {
            println!(
                "cleanup: every case deleted its topics and share group ({late} group(s) deleted at the end)"
            );
        } else if !left.is_empty() && left_behind.is_none() {
            println!(
                "cleanup: {} share group(s) still had members after 180 s and are left: {}",
                left.len(),
                left.join(", ")
            );
        }
    }
    let gone = ran
        .iter()
        .flatten()
        .find_map(|r| r.unreachable.as_ref().map(|why| format!("{}: {why}", r.id)));
    let results: Vec<CaseResult> = ran
        .into_iter()
        .zip(&cases)
        .map(|(r, c)| r.unwrap_or_else(|| run::not_started(c, "not run: the target went away")))
        .collect();
    let artifacts_dir = args
        .artifacts
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("artifacts/conform-{seed}")));
    let mut artifacts: BTreeMap<String, PathBuf> = BTreeMap::new();
    let mut unwritten: Option<String> = None;
    for r in results.iter().filter(|r| {
        args.all_histories || matches!(r.verdict, CaseVerdict::Fail | CaseVerdict::Inconclusive)
    }) {
        match report::artifact::write(&artifacts_dir, r, &target) {
            Ok(p) => {
                artifacts.insert(r.id.clone(), p);
            }
            Err(e) => {
                unwritten.get_or_insert_with(|| {
                    format!(
                        "cannot write the artifact of {} in {}: {e}",
                        r.id,
                        artifacts_dir.display()
                    )
                });
            }
        }
    }
    let flags = args.target.rerun_flags();
    let rep = report::build(
        &target,
        &seed.to_string(),
        &results,
        args.strict,
        &artifacts,
        &flags,
    );
    let rerun = |p: &Path| report::rerun_command("", Some(p), &flags);
    print!(
        "{}",
        text::suite(
            &results,
            &rep,
            &artifacts,
            &rerun,
            started.elapsed().as_secs_f64()
        )
    );
    if let Some(path) = &args.json {
        let json = serde_json::to_string_pretty(&rep)
            .map_err(|e| Fail::cannot_write(format!("cannot encode the JSON report: {e}")))?;
        write_output(path, &json)?;
    }
    if let Some(path) = &args.junit {
        let xml = report::junit::junit(&rep, &results)
            .map_err(|e| Fail::cannot_write(format!("cannot encode JUnit XML: {e}")))?;
        write_output(path, &xml)?;
    }
    drop(running);
    if let Some(why) = unwritten {
        return Err(Fail::cannot_write(why));
    }
    if let Some(why) = gone.or(left_behind) {
        return Err(stopped(&why));
    }
    if let Some(b) = &baseline {
        let differences = b.differences(&results);
        let listed = results
            .iter()
            .filter(|r| b.cases.contains_key(&r.id))
            .count();
        if differences.is_empty() {
            println!(
                "baseline {}: results match ({listed} listed case(s) ran as expected); exit by the baseline",
                b.target
            );
            return Ok(
                if results
                    .iter()
                    .any(|r| r.verdict == CaseVerdict::Inconclusive && !b.cases.contains_key(&r.id))
                {
                    Outcome::Inconclusive
                } else {
                    Outcome::Pass
                },
            );
        }
        println!("baseline {}: {} difference(s)", b.target, differences.len());
        for d in &differences {
            println!("  {d}");
        }
        return Ok(Outcome::Violation);
    }
    Ok(outcome_of(rep.verdict))
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
    if args.repeat == 0 || args.jobs == 0 {
        return Err(Fail::usage("--repeat and --jobs must be at least 1"));
    }
    let case: Case = Case::load(&args.file).map_err(Fail::input)?;
    if args.repeat > 1 {
        return replay_repeated(&args, case);
    }
    let running = start_target(&args.target, EmbeddedOptions::new)?;
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
    let mut opts = RunOptions {
        timeout: args.target.deadline(),
        ..RunOptions::default()
    };
    if let Some(p) = &args.target.prefix {
        opts.prefix = p.clone();
    }
    let r = running
        .runtime
        .block_on(run::run_case(&target, &opts, &case, 0));
    if args.json {
        println!("{}", serde_json::to_string_pretty(&r).unwrap_or_default());
    } else {
        println!("delivery limit {}", r.delivery_limit);
        print!("{}", text::steps(&r.steps, &r.anomalies, &r.notes));
        println!();
        println!(
            "{}",
            text::verdict_line(
                r.verdict,
                &r.anomalies,
                r.reason.as_deref(),
                Some(r.duration_ms)
            )
        );
    }
    if let Some(why) = &r.unreachable {
        return Err(stopped(why));
    }
    case_outcome(r.verdict, r.reason.as_deref())
}

/// `replay --repeat N`: the case N times, `--jobs` at a time, and the rate of each outcome.
fn replay_repeated(args: &ReplayArgs, case: Case) -> CmdResult {
    let seed = seed_or_random(None);
    let running = start_target(&args.target, EmbeddedOptions::new)?;
    let target = running.target.clone();
    let opts = RunOptions {
        prefix: args
            .target
            .prefix
            .clone()
            .unwrap_or_else(|| format!("sharecheck-{seed}")),
        timeout: args.target.deadline(),
        ..RunOptions::default()
    };
    if !args.json {
        println!(
            "replay {} × {} ({} at a time) against {} ({}); profile {}; seed {seed}",
            case.id,
            args.repeat,
            args.jobs,
            target.bootstrap,
            target.implementation,
            target.profile.name
        );
    }
    let _ = std::io::stdout().flush();
    let cases = vec![case; args.repeat];
    let tty = std::io::stderr().is_terminal();
    let mut progress = |done: usize, total: usize, r: &CaseResult| {
        if tty {
            eprint!("\r\x1b[2K[{done}/{total}] {:?}", r.verdict);
            let _ = std::io::stderr().flush();
        }
    };
    let scheduler = Scheduler::new(target.clone(), opts);
    let ran = running
        .runtime
        .block_on(run_suite(&scheduler, &cases, args.jobs, &mut progress));
    if tty {
        eprint!("\r\x1b[2K");
    }
    let results: Vec<&CaseResult> = ran.iter().flatten().collect();
    let mut verdicts: BTreeMap<String, usize> = BTreeMap::new();
    let mut outcomes: BTreeMap<String, usize> = BTreeMap::new();
    for r in &results {
        *verdicts
            .entry(format!("{:?}", r.verdict).to_lowercase())
            .or_default() += 1;
        let what = match (r.anomalies.first(), &r.reason) {
            (Some(a), _) => format!("{} at step {}", a.kind.name(), a.step),
            (None, Some(why)) => why.clone(),
            (None, None) => "pass".to_string(),
        };
        *outcomes.entry(what).or_default() += 1;
    }
    let count = |v: CaseVerdict| results.iter().filter(|r| r.verdict == v).count();
    let (failed, inconclusive) = (count(CaseVerdict::Fail), count(CaseVerdict::Inconclusive));
    if args.json {
        let each: Vec<serde_json::Value> = results
            .iter()
            .map(|r| {
                serde_json::json!({
                    "verdict": r.verdict,
                    "anomalies": r.anomalies,
                    "reason": r.reason,
                    "duration_ms": r.duration_ms,
                })
            })
            .collect();
        let out = serde_json::json!({
            "case": cases[0].id,
            "target": {"address": target.bootstrap, "implementation": target.implementation},
            "profile": target.profile.name,
            "seed": seed.to_string(),
            "replays": args.repeat,
            "ran": results.len(),
            "verdicts": verdicts,
            "outcomes": outcomes,
            "each": each,
        });
        println!("{}", serde_json::to_string_pretty(&out).unwrap_or_default());
    } else {
        println!("{} of {} replays ran:", results.len(), args.repeat);
        for (what, n) in &outcomes {
            println!("  {n:>5} × {what}");
        }
        println!(
            "failed {failed} of {} ({:.0}%), inconclusive {inconclusive}",
            results.len(),
            100.0 * failed as f64 / results.len().max(1) as f64
        );
    }
    if let Some(why) = results.iter().find_map(|r| r.unreachable.as_ref()) {
        return Err(stopped(why));
    }
    Ok(if failed > 0 {
        Outcome::Violation
    } else if inconclusive > 0 {
        Outcome::Inconclusive
    } else {
        Outcome::Pass
    })
}

/// The exit code of one judged case (replay, judge): a skipped case could not run on the target.
pub fn case_outcome(verdict: CaseVerdict, reason: Option<&str>) -> CmdResult {
    match verdict {
        CaseVerdict::Pass => Ok(Outcome::Pass),
        CaseVerdict::Fail => Ok(Outcome::Violation),
        CaseVerdict::Inconclusive => Ok(Outcome::Inconclusive),
        CaseVerdict::Skipped => Err(Fail::unusable(format!(
            "the case cannot run on this target: {}",
            reason.unwrap_or_default()
        ))),
    }
}

/// Whether `bootstrap` (HOST:PORT, or a comma-separated list) names only loopback addresses.
fn is_loopback(bootstrap: &str) -> bool {
    bootstrap.split(',').all(|hp| {
        let host = hp.trim().rsplit_once(':').map_or(hp.trim(), |(h, _)| h);
        let host = host.trim_start_matches('[').trim_end_matches(']');
        host.eq_ignore_ascii_case("localhost")
            || host
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback())
    })
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM, with the outcome to exit with.
async fn interrupt() -> Outcome {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            return tokio::select! {
                _ = tokio::signal::ctrl_c() => Outcome::Interrupted,
                _ = term.recv() => Outcome::Terminated,
            };
        }
    }
    match tokio::signal::ctrl_c().await {
        Ok(()) => Outcome::Interrupted,
        // No signal handling: never resolve.
        Err(_) => std::future::pending().await,
    }
}

/// A run stopped by a signal: the cases in flight are dropped, and unless `--keep` everything
/// with the run's prefix is removed from an external target (a second signal skips that).
fn interrupted(
    running: &crate::cmd::target::Running,
    target: &sharecheck_conformance::target::Target,
    opts: &RunOptions,
    keep: bool,
    signal: Outcome,
) -> CmdResult {
    let name = if signal == Outcome::Terminated {
        "SIGTERM"
    } else {
        "SIGINT"
    };
    if keep || running._broker.is_some() {
        println!("interrupted ({name}): the cases in flight are dropped; nothing removed");
        return Ok(signal);
    }
    println!(
        "interrupted ({name}): removing every topic and share group with prefix {} (again to skip)",
        opts.prefix
    );
    let _ = std::io::stdout().flush();
    let names = run_names(&opts.prefix);
    let done = running.runtime.block_on(async {
        tokio::select! {
            done = cleanup_prefix(target.client_config(opts.timeout), &names, false, Duration::from_secs(30)) => Some(done),
            _ = interrupt() => None,
        }
    });
    match done {
        Some(Ok(c)) if c.left.is_empty() => println!(
            "cleanup: removed {} topic(s) and {} group(s); nothing with prefix {} remains",
            c.topics.len(),
            c.groups.len(),
            opts.prefix
        ),
        Some(Ok(c)) => println!(
            "cleanup: left {}; `sharecheck cleanup --bootstrap {} --prefix {}` removes them later",
            c.left.iter().map(|(n, w)| format!("{n} ({w})")).collect::<Vec<_>>().join(", "),
            target.bootstrap,
            opts.prefix
        ),
        Some(Err(e)) => println!(
            "cleanup failed: {e}; `sharecheck cleanup --bootstrap {} --prefix {}` removes what is left",
            target.bootstrap, opts.prefix
        ),
        None => println!(
            "cleanup skipped; `sharecheck cleanup --bootstrap {} --prefix {}` removes what is left",
            target.bootstrap, opts.prefix
        ),
    }
    Ok(signal)
}

/// What the names of a run with `prefix` start with: `PREFIX-` (so that removing run
/// `sharecheck-42` never touches run `sharecheck-421`).
fn run_names(prefix: &str) -> String {
    format!("{prefix}-")
}

/// Why a run stopped before its end (exit 3): the target went away, or refused for want of a
/// permission (then every later case would fail the same way).
fn stopped(why: &str) -> Fail {
    if why.contains(run::MISSING_PERMISSION) {
        Fail::unusable(format!(
            "stopped: the run's principal lacks a permission (the ACLs a run needs: docs/real-kafka.md, \"Least privilege\"), during {why}"
        ))
    } else {
        Fail::unusable(format!("the target went away during {why}"))
    }
}
