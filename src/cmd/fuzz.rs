//! `sharecheck fuzz`: property-based fuzzing of acknowledgement sequences against a broker (default:
//! the embedded reference broker), every failure shrunk to a minimal case, confirmed by a rerun and
//! written as a regression fixture that `sharecheck replay` reruns.
//!
//! stdout: the seed and a rerun command first, then the summary (cases, cases/s, verdict) and the
//! finding. stderr: progress, only when it is a terminal. Exit codes (DESIGN.md): 0 no failure; 1 a
//! confirmed failure, its fixture written; 2 only inconclusive cases, or a failure that did not
//! reproduce (flaky); 3 the target is unusable; 64 bad flags.

use crate::cmd::target::{runtime, seed_or_random, start_target, TargetArgs};
use crate::exit::{CmdResult, Fail, Outcome};
use clap::Args;
use sharecheck_broker::BrokerMutant;
use sharecheck_conformance::fuzz::{
    self, FuzzOptions, FuzzReport, Fuzzer, GenConfig, Tally, FUZZ_MIN_LOCK_MS, KAFKA_MIN_LOCK_MS,
};
use sharecheck_conformance::oracle::CaseVerdict;
use sharecheck_conformance::report::{self, text};
use sharecheck_conformance::run::{self, CaseResult, RunOptions};
use sharecheck_conformance::target::{self, EmbeddedOptions, Target};
use sharecheck_conformance::trace::{Case, FoundBy};
use sharecheck_model::Profile;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// `sharecheck fuzz`.
#[derive(Args, Debug)]
pub struct FuzzArgs {
    #[command(flatten)]
    pub target: TargetArgs,
    /// Cases to generate and run.
    #[arg(long, default_value_t = 256)]
    pub cases: u64,
    /// Seed of the run (printed; default: random). The same seed gives the same cases.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Stop starting new cases after this many seconds (shrinking a failure may take longer).
    #[arg(long, value_name = "SECS")]
    pub time_budget: Option<u64>,
    /// Where the shrunk failing case is written as a fixture.
    #[arg(long, value_name = "DIR", default_value = "fixtures/regressions")]
    pub out: PathBuf,
    /// Where flaky failures leave their trace and history (default artifacts/fuzz-SEED).
    #[arg(long, value_name = "DIR")]
    pub artifacts: Option<PathBuf>,
    /// Cases run at the same time (default 64 on the embedded broker, 4 on a remote one).
    #[arg(long)]
    pub jobs: Option<usize>,
    /// Members per case (A, B, ...; 1..=8).
    #[arg(long, default_value_t = 3)]
    pub members: u8,
    /// Most operations per case (1..=200).
    #[arg(long, default_value_t = 24)]
    pub max_ops: usize,
    /// Lock duration of the cases, ms. Default: 200 on the embedded broker (a fuzz-only value:
    /// Apache Kafka accepts 1000 and up), 1000 on a remote broker.
    #[arg(long, value_name = "MS")]
    pub lock_ms: Option<u32>,
    /// Never wait for lock expiry (faster; fewer rules exercised).
    #[arg(long)]
    pub no_waits: bool,
    /// Every case's delivery limit (2..=10; default 2..=5 at random). Against a target that accepts
    /// a group's limit and ignores it (kfake, docs/findings.md K1), give its own.
    #[arg(long, value_name = "N")]
    pub delivery_limit: Option<u8>,
    /// Never piggy-back acknowledgements on a ShareFetch with MaxRecords 0 (to get past a target that
    /// acquires records for one, docs/findings.md K3).
    #[arg(long)]
    pub no_fetch_acks: bool,
    /// Most reruns spent shrinking a failure.
    #[arg(long, default_value_t = 400)]
    pub max_shrink_runs: u32,
    /// Most seconds spent shrinking a failure.
    #[arg(long, value_name = "SECS", default_value_t = 120)]
    pub max_shrink_time: u64,
    /// Print case K of the seed as a trace and exit without running anything. The trace gets a
    /// Kafka-legal lock (at least 1000 ms, waits in proportion), so `sharecheck replay` runs it.
    #[arg(long, value_name = "K")]
    pub print_case: Option<u64>,
}

/// The command line that reruns this search.
fn rerun_command(args: &FuzzArgs, seed: u64) -> String {
    let mut cmd = format!(
        "sharecheck fuzz --seed {seed} --cases {}{}",
        args.cases,
        args.target.rerun_flags()
    );
    if args.members != 3 {
        cmd.push_str(&format!(" --members {}", args.members));
    }
    if args.max_ops != 24 {
        cmd.push_str(&format!(" --max-ops {}", args.max_ops));
    }
    if let Some(l) = args.lock_ms {
        cmd.push_str(&format!(" --lock-ms {l}"));
    }
    if args.no_waits {
        cmd.push_str(" --no-waits");
    }
    if let Some(l) = args.delivery_limit {
        cmd.push_str(&format!(" --delivery-limit {l}"));
    }
    if args.no_fetch_acks {
        cmd.push_str(" --no-fetch-acks");
    }
    if let Some(t) = args.time_budget {
        cmd.push_str(&format!(" --time-budget {t}"));
    }
    cmd
}

fn validate(args: &FuzzArgs) -> Result<(), Fail> {
    if args.cases == 0 {
        return Err(Fail::usage("--cases must be at least 1"));
    }
    if args.jobs == Some(0) {
        return Err(Fail::usage("--jobs must be at least 1"));
    }
    if args.time_budget == Some(0) {
        return Err(Fail::usage("--time-budget must be at least 1 second"));
    }
    if args.max_shrink_time == 0 {
        return Err(Fail::usage("--max-shrink-time must be at least 1 second"));
    }
    GenConfig {
        members: args.members,
        max_ops: args.max_ops,
        waits: !args.no_waits,
        delivery_limit: args.delivery_limit,
        no_fetch_acks: args.no_fetch_acks,
    }
    .validate()
    .map_err(|e| Fail::usage(e.to_string()))?;
    if let Some(l) = args.lock_ms {
        let floor = if args.target.bootstrap.is_some() {
            KAFKA_MIN_LOCK_MS
        } else {
            FUZZ_MIN_LOCK_MS
        };
        if l < floor || l > 3_600_000 {
            let why = if args.target.bootstrap.is_some() {
                "a remote broker needs Kafka-legal values"
            } else {
                "the embedded broker's fuzz floor"
            };
            return Err(Fail::usage(format!(
                "--lock-ms must be {floor}..=3600000 ({why}), got {l}"
            )));
        }
    }
    Ok(())
}

/// Starts an embedded reference broker on `rt` and describes it as a target (no restarts: fuzz
/// cases share the broker). `min_lock_ms` is its `group.share.min.record.lock.duration.ms`.
fn embedded(
    rt: &tokio::runtime::Runtime,
    profile: Profile,
    mutant: Option<BrokerMutant>,
    min_lock_ms: u32,
) -> Result<target::Embedded, Fail> {
    let opts = EmbeddedOptions {
        profile,
        mutant,
        min_lock_ms,
        restartable: false,
    };
    rt.block_on(target::start_embedded(opts))
        .map_err(|e| Fail::unusable(e.to_string()))
}

fn first_anomaly(r: &CaseResult) -> String {
    match r.anomalies.first() {
        Some(_) => text::result_line(r),
        None => format!(
            "{:?}: {}",
            r.verdict,
            r.reason.as_deref().unwrap_or_default()
        ),
    }
}

fn print_steps(case: &Case, result: &CaseResult) {
    for (i, s) in case.steps.iter().enumerate() {
        println!("  {:>3}. {s}", i + 1);
        for a in result.anomalies.iter().filter(|a| a.step == i + 1) {
            println!("       !! {}: {}", a.kind, a.detail);
        }
    }
}

pub fn run(args: FuzzArgs) -> CmdResult {
    validate(&args)?;
    let seed = seed_or_random(args.seed);
    let remote = args.target.bootstrap.is_some();
    let (profile, mutant) = args.target.validate()?;
    let profile = profile.unwrap_or(Profile::DEFAULT);
    let mut opts = if remote {
        FuzzOptions::remote(seed)
    } else {
        FuzzOptions::in_process(seed)
    };
    if let Some(p) = &args.target.prefix {
        opts.run.prefix = p.clone();
    }
    opts.cases = args.cases;
    opts.time_budget = args.time_budget.map(Duration::from_secs);
    if let Some(j) = args.jobs {
        opts.jobs = j;
    }
    opts.gen = GenConfig {
        members: args.members,
        max_ops: args.max_ops,
        waits: !args.no_waits,
        delivery_limit: args.delivery_limit,
        no_fetch_acks: args.no_fetch_acks,
    };
    if let Some(l) = args.lock_ms {
        opts.lock_ms = l;
        if !remote {
            // A record that should have come back must come back well before its next lock
            // expiry would return it anyway, or the fetch's patience hides the bug.
            opts.run.fetch_patience = Duration::from_millis(u64::from(l / 4).clamp(20, 500));
        }
    }
    opts.max_shrink_runs = args.max_shrink_runs;
    opts.max_shrink_time = Duration::from_secs(args.max_shrink_time);
    opts.run.timeout = args.target.deadline();
    if let Some(k) = args.print_case {
        // The prediction needs the target's rules: the embedded broker's defaults, or Kafka's.
        let target = Target {
            bootstrap: args.target.bootstrap.clone().unwrap_or_default(),
            implementation: String::new(),
            profile,
            delivery_limit: 5,
            max_in_flight: 2000,
            nodes: 1,
            share_version: 1,
            offsets_version: None,
            group_limits: false,
            dlq: false,
            faults: None,
            moves_in_process: false,
            security: Default::default(),
        };
        opts.lock_ms = opts.lock_ms.max(KAFKA_MIN_LOCK_MS);
        let case = Fuzzer::new(target, opts)
            .case(k)
            .map_err(|e| Fail::usage(e.to_string()))?;
        println!("{}", case.to_json());
        return Ok(Outcome::Pass);
    }

    // The target: a remote broker as `conform` reaches it, or an embedded broker whose lock floor
    // allows the short fuzz lock.
    let (rt, target, _broker) = if remote {
        let running = start_target(&args.target, EmbeddedOptions::new)?;
        (running.runtime, running.target, None)
    } else {
        let rt = runtime()?;
        let started = embedded(&rt, profile, mutant, FUZZ_MIN_LOCK_MS)?;
        (rt, started.target, Some(started.handle))
    };
    let target: Target = target.without_restarts();
    let rerun = rerun_command(&args, seed);
    println!(
        "sharecheck fuzz: seed {seed}, {} case(s) of up to {} operation(s), {} member(s), {} at a time",
        args.cases, opts.gen.max_ops, opts.gen.members, opts.jobs
    );
    println!("target: {} ({})", target.bootstrap, target.implementation);
    let lock_note = if !remote && opts.lock_ms < KAFKA_MIN_LOCK_MS {
        " (fuzz-only: Apache Kafka needs >= 1000 ms; fixtures are written with Kafka-legal locks)"
    } else {
        ""
    };
    println!(
        "profile: {}; lock {} ms{lock_note}; oracle tolerance {} ms",
        target.profile.name, opts.lock_ms, opts.run.tolerance_ms
    );
    println!("rerun: {rerun}");
    let _ = std::io::stdout().flush();

    let fuzzer = Fuzzer::new(target.clone(), opts.clone());
    let tty = std::io::stderr().is_terminal();
    let started = Instant::now();
    let total = opts.cases;
    let heartbeat = crate::cmd::heartbeat::Heartbeat::start("fuzz", total, seed);
    let mut progress = |t: &Tally| {
        heartbeat.update(t.cases, t.failed);
        if tty {
            let secs = started.elapsed().as_secs_f64().max(1e-3);
            eprint!(
                "\r\x1b[2K[{}/{total}] {:.1}s, {:.0} cases/s",
                t.cases,
                secs,
                t.cases as f64 / secs
            );
            let _ = std::io::stderr().flush();
        }
    };
    let report: FuzzReport = rt.block_on(fuzzer.run(&mut progress));
    drop(heartbeat);
    if tty {
        eprint!("\r\x1b[2K");
    }
    if remote {
        // The groups of cases whose dropped members had not yet timed out (shrink reruns included).
        let (_, left) = rt.block_on(run::delete_leftover_groups(
            &target,
            &opts.run,
            std::time::Duration::from_secs(180),
        ));
        if !left.is_empty() {
            println!(
                "cleanup: {} share group(s) still had members after 180 s and are left: {}",
                left.len(),
                left.join(", ")
            );
        }
    }
    let t = &report.tally;
    println!(
        "{} case(s) in {:.1}s ({:.1} cases/s, {} steps): {} passed, {} failed, {} inconclusive{}",
        t.cases,
        t.elapsed.as_secs_f64(),
        t.rate(),
        t.steps,
        t.passed,
        t.failed,
        t.inconclusive,
        if t.budget_hit {
            format!(
                " (time budget of {}s reached)",
                args.time_budget.unwrap_or(0)
            )
        } else {
            String::new()
        }
    );
    if let Some((i, why)) = &t.first_inconclusive {
        println!("first inconclusive case: {i}: {why}");
    }

    let artifacts = args
        .artifacts
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("artifacts/fuzz-{seed}")));
    for f in &report.flaky {
        println!(
            "flaky: case {} failed once ({}) and gave {:?} when rerun; not a finding",
            f.index,
            first_anomaly(&f.result),
            f.rerun
        );
        print_steps(&f.case, &f.result);
        match report::artifact::write(&artifacts, &f.result, &target) {
            Ok(p) => println!("    history: {}", p.display()),
            Err(e) => eprintln!(
                "sharecheck: cannot write the artifact of case {}: {e}",
                f.index
            ),
        }
        println!(
            "    the case as a replayable trace: sharecheck fuzz --seed {seed} --print-case {}{}",
            f.index,
            if args.members != 3 || args.max_ops != 24 || args.no_waits {
                " (with this run's generation flags)"
            } else {
                ""
            }
        );
    }
    if let Some(why) = &t.target_gone {
        println!("verdict: target unusable");
        return Err(Fail::unusable(format!("the target went away during {why}")));
    }
    let Some(finding) = report.finding else {
        if t.cases > 0 && t.setup_failures == t.cases {
            let why = t
                .first_inconclusive
                .as_ref()
                .map_or("", |(_, w)| w.as_str());
            println!("verdict: target unusable");
            return Err(Fail::unusable(format!(
                "{}: every case failed to set up: {why}",
                target.bootstrap
            )));
        }
        return Ok(if t.inconclusive > 0 || !report.flaky.is_empty() {
            println!("verdict: inconclusive");
            Outcome::Inconclusive
        } else {
            println!("verdict: pass");
            Outcome::Pass
        });
    };

    println!(
        "\nFAIL case {} (seed {seed}): {}",
        finding.index,
        first_anomaly(&finding.original_result)
    );
    println!(
        "shrunk: {} step(s) -> {} step(s) in {} rerun(s), {:.1}s{}",
        finding.original.steps.len(),
        finding.shrunk.steps.len(),
        finding.shrink_runs,
        finding.shrink_time.as_secs_f64(),
        if finding.shrink_budget_hit {
            " (shrink budget reached)"
        } else {
            ""
        }
    );
    print_steps(&finding.shrunk, &finding.shrunk_result);
    let Some(confirmed) = &finding.confirmed else {
        // Fuzzer::run only returns a finding once it is confirmed.
        println!("verdict: inconclusive (the shrunk case did not fail again)");
        return Ok(Outcome::Inconclusive);
    };
    println!(
        "confirmed: the shrunk case fails again on the target ({})",
        first_anomaly(confirmed)
    );

    let found = FoundBy {
        command: rerun.clone(),
        seed,
        case: finding.index,
        target: target.implementation.clone(),
        mutant: mutant.map(|m| m.name().to_string()),
        steps_before_shrinking: finding.original.steps.len(),
        shrink_runs: finding.shrink_runs,
    };
    let mut fixture = fuzz::fixture_case(&finding.shrunk, confirmed, found.clone(), 0);

    // The fixture as `sharecheck replay` runs it: Kafka-legal lock, default tolerances, a broker
    // with Kafka's lock floor. Embedded only (a remote run already used Kafka-legal timing). The
    // shortest lock of FIXTURE_LOCKS_MS under which it still fails is kept.
    if !remote {
        let replay_opts = RunOptions {
            timeout: opts.run.timeout,
            ..RunOptions::default()
        };
        let started = embedded(&rt, profile, mutant, KAFKA_MIN_LOCK_MS)?;
        let planted = started.target.without_restarts();
        let mut reproduced: Option<(Case, CaseResult)> = None;
        let mut tried: Vec<String> = Vec::new();
        for lock in fuzz::FIXTURE_LOCKS_MS {
            let candidate = fuzz::fixture_case(&finding.shrunk, confirmed, found.clone(), lock);
            if tried.contains(&candidate.settings.lock_duration_ms.to_string()) {
                continue;
            }
            let r = rt.block_on(run::run_case(&planted, &replay_opts, &candidate, 0));
            tried.push(candidate.settings.lock_duration_ms.to_string());
            if r.verdict == CaseVerdict::Fail {
                reproduced = Some((candidate, r));
                break;
            }
        }
        drop(started);
        let Some((kept, as_replayed)) = reproduced else {
            println!(
                "not reproduced with Kafka-legal timing (lock {} ms); no fixture written",
                tried.join(", ")
            );
            println!("verdict: fail (confirmed on the fuzz target only)");
            return Ok(Outcome::Violation);
        };
        fixture = kept;
        println!(
            "replayed with lock {} ms: fails on {} ({})",
            fixture.settings.lock_duration_ms,
            planted.implementation,
            first_anomaly(&as_replayed)
        );
        if mutant.is_some() {
            let correct = embedded(&rt, profile, None, KAFKA_MIN_LOCK_MS)?;
            let on_correct = rt.block_on(run::run_case(&correct.target, &replay_opts, &fixture, 0));
            drop(correct);
            if on_correct.verdict == CaseVerdict::Pass {
                println!("replayed on the correct reference broker: pass");
            } else {
                println!(
                    "replayed on the correct reference broker: {:?} ({}) -- the spec, the broker or the oracle disagree here",
                    on_correct.verdict,
                    first_anomaly(&on_correct)
                );
                let note = fixture.notes.take().unwrap_or_default();
                fixture.notes = Some(format!(
                    "{note}; the correct reference broker also gave {:?} when found",
                    on_correct.verdict
                ));
            }
        }
    }
    let path = write_fixture(&args.out, &fixture)?;
    println!("fixture: {}", path.display());
    let replay = format!(
        "sharecheck replay {}{}",
        path.display(),
        args.target.rerun_flags()
    );
    println!("rerun the fixture: {replay}");
    println!("verdict: fail");
    Ok(Outcome::Violation)
}

fn write_fixture(dir: &Path, case: &Case) -> Result<PathBuf, Fail> {
    std::fs::create_dir_all(dir)
        .map_err(|e| Fail::cannot_write(format!("cannot create {}: {e}", dir.display())))?;
    let path = dir.join(fuzz::fixture_file_name(case));
    let mut text = case.to_json();
    text.push('\n');
    crate::cmd::conform::write_output(&path, &text)?;
    Ok(path)
}
