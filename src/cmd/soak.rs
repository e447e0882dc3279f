//! `sharecheck soak`: a long-running workload under faults, judged from its history
//! (`sharecheck_conformance::soak`, docs/semantics.md §20).

use crate::cmd::conform::write_output;
use crate::cmd::target::{seed_or_random, start_target, TargetArgs};
use crate::exit::{CmdResult, Fail, Outcome};
use clap::Args;
use sharecheck_conformance::soak::{self, SoakFault, SoakOptions, SoakTotals, SoakVerdict};
use sharecheck_conformance::soak_report::ReportHeading;
use sharecheck_conformance::target::EmbeddedOptions;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::time::Duration;

/// `sharecheck soak`.
#[derive(Args, Debug)]
pub struct SoakArgs {
    #[command(flatten)]
    pub target: TargetArgs,
    /// How long records are produced and faults injected (`90s`, `10m`, or seconds).
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    pub duration: Duration,
    /// Longest quiet period after it (no faults, no new records) for every record to become
    /// terminal; what is still not terminal then is lost.
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    pub quiet: Duration,
    /// Share-group members.
    #[arg(long, default_value_t = 4)]
    pub members: u32,
    /// Partitions of the soak's topic.
    #[arg(long, default_value_t = 2)]
    pub partitions: u32,
    /// Records produced per second.
    #[arg(long, default_value_t = 100)]
    pub records_per_s: u32,
    /// Processing time of one record, uniform between MIN and MAX milliseconds (`MIN..MAX`).
    #[arg(long, default_value = "0..20", value_parser = parse_range)]
    pub processing: (u64, u64),
    /// Weights of ACCEPT/RELEASE/REJECT (`8/1/1`).
    #[arg(long, default_value = "8/1/1", value_parser = parse_mix)]
    pub ack_mix: [u32; 3],
    /// Percent of records that take longer than the lock to process (lock + 2 × tolerance), so
    /// that their lock expires while a member works on them.
    #[arg(long, default_value_t = 0.2)]
    pub slow: f64,
    /// Faults to inject, comma-separated: member-crash, member-leave, session-close, member-hang
    /// (stops acknowledging but keeps its connections: only lock expiry frees its records),
    /// broker-restart (the embedded broker restarts in process; a remote one needs `--nemesis`),
    /// leader-move (one partition's leadership moves: in process for the embedded broker, to another
    /// replica over the wire for a cluster).
    #[arg(long, value_delimiter = ',', value_parser = parse_fault)]
    pub faults: Vec<SoakFault>,
    /// Mean time between faults (each wait uniform in half to one and a half times it).
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub fault_every: Duration,
    /// The group's acquisition-lock duration in milliseconds.
    #[arg(long, default_value_t = 5000)]
    pub lock_ms: u64,
    /// Lateness allowed on a lock deadline, in milliseconds.
    #[arg(long, default_value_t = 1000)]
    pub tolerance_ms: u64,
    /// Seed of the workload and the fault schedule (printed; default: random).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Write every observation here, one JSON object per line.
    #[arg(long, value_name = "FILE")]
    pub history: Option<PathBuf>,
    /// Write the report (verdict, totals, findings, faults) here as JSON.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Write a picture of the run here: DIR/soak.html, one self-contained page (timelines per
    /// partition with a lane per member, faults, throughput, delivery counts, findings linked).
    #[arg(long, value_name = "DIR")]
    pub report: Option<PathBuf>,
    /// Keep the topic and group.
    #[arg(long)]
    pub keep: bool,
    /// Stop at the first finding (judged online as the run goes), without a quiet period.
    #[arg(long)]
    pub fail_fast: bool,
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, unit) = match s.find(|c: char| !c.is_ascii_digit() && c != '.') {
        Some(i) => s.split_at(i),
        None => (s, "s"),
    };
    let n: f64 = num
        .parse()
        .map_err(|_| format!("'{s}' is not a duration (e.g. 90s, 10m, 500ms)"))?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => return Err(format!("'{s}': the unit must be ms, s, m or h")),
    };
    if !secs.is_finite() || !(0.0..=7.0 * 24.0 * 3600.0).contains(&secs) {
        return Err(format!("'{s}' is out of range (0 to 7 days)"));
    }
    Ok(Duration::from_secs_f64(secs))
}

fn parse_range(s: &str) -> Result<(u64, u64), String> {
    let (a, b) = s
        .split_once("..")
        .ok_or_else(|| format!("'{s}' is not MIN..MAX (milliseconds)"))?;
    let lo: u64 = a
        .trim()
        .parse()
        .map_err(|_| format!("'{a}' is not a number"))?;
    let hi: u64 = b
        .trim()
        .parse()
        .map_err(|_| format!("'{b}' is not a number"))?;
    if lo > hi || hi > 600_000 {
        return Err(format!(
            "'{s}': MIN must not exceed MAX, and MAX is at most 600000 ms"
        ));
    }
    Ok((lo, hi))
}

fn parse_mix(s: &str) -> Result<[u32; 3], String> {
    let parts: Vec<&str> = s.split('/').collect();
    let [a, r, j] = parts[..] else {
        return Err(format!(
            "'{s}' is not ACCEPT/RELEASE/REJECT weights (e.g. 8/1/1)"
        ));
    };
    let w = |x: &str| {
        x.trim()
            .parse::<u32>()
            .map_err(|_| format!("'{x}' is not a weight"))
    };
    let mix = [w(a)?, w(r)?, w(j)?];
    if mix.iter().sum::<u32>() == 0 {
        return Err("the weights add up to zero".to_string());
    }
    Ok(mix)
}

fn parse_fault(s: &str) -> Result<SoakFault, String> {
    SoakFault::by_name(s.trim()).ok_or_else(|| {
        let names: Vec<&str> = SoakFault::ALL.iter().map(|f| f.name()).collect();
        format!("unknown fault '{s}' (known: {})", names.join(", "))
    })
}

pub fn soak(args: SoakArgs) -> CmdResult {
    if args.members == 0 || args.members > 64 {
        return Err(Fail::usage("--members must be 1 to 64"));
    }
    if args.partitions == 0 || args.partitions > 64 {
        return Err(Fail::usage("--partitions must be 1 to 64"));
    }
    if args.records_per_s == 0 || args.records_per_s > 100_000 {
        return Err(Fail::usage("--records-per-s must be 1 to 100000"));
    }
    if !(0.0..=100.0).contains(&args.slow) {
        return Err(Fail::usage("--slow is a percentage, 0 to 100"));
    }
    if args.lock_ms < 100 {
        return Err(Fail::usage("--lock-ms must be at least 100"));
    }
    if args.faults.contains(&SoakFault::BrokerRestart)
        && args.target.bootstrap.is_some()
        && args.target.nemesis.is_none()
    {
        return Err(Fail::usage(
            "--faults broker-restart against --bootstrap needs --nemesis CMD (how to restart it)",
        ));
    }
    // A report directory that cannot be written fails now, before the run, not after it.
    let report_page = match &args.report {
        Some(dir) => {
            std::fs::create_dir_all(dir).map_err(|e| {
                Fail::cannot_write(format!(
                    "cannot create the report directory {}: {e}",
                    dir.display()
                ))
            })?;
            let page = dir.join("soak.html");
            std::fs::write(&page, "")
                .map_err(|e| Fail::cannot_write(format!("cannot write {}: {e}", page.display())))?;
            Some(page)
        }
        None => None,
    };
    let seed = seed_or_random(args.seed);
    let running = start_target(&args.target, EmbeddedOptions::new)?;
    let target = running.target.clone();
    let prefix = args
        .target
        .prefix
        .clone()
        .unwrap_or_else(|| format!("sharecheck-{seed}"));
    let opts = SoakOptions {
        duration: args.duration,
        quiet: args.quiet,
        members: args.members,
        partitions: args.partitions,
        records_per_s: args.records_per_s,
        processing_ms: args.processing,
        ack_mix: args.ack_mix,
        slow_per_million: (args.slow * 10_000.0).round() as u32,
        faults: args.faults.clone(),
        fault_every: args.fault_every,
        seed,
        lock_ms: args.lock_ms,
        tolerance_ms: args.tolerance_ms,
        prefix,
        timeout: args.target.deadline(),
        history: args.history.clone(),
        fail_fast: args.fail_fast,
        cleanup: !args.keep && running._broker.is_none(),
        timeline: report_page.is_some(),
    };
    let faults: Vec<&str> = opts.faults.iter().map(|f| f.name()).collect();
    println!(
        "sharecheck soak: {} s + up to {} s quiet; {} members, {} partitions, {} records/s; faults: {}",
        opts.duration.as_secs(),
        opts.quiet.as_secs(),
        opts.members,
        opts.partitions,
        opts.records_per_s,
        if faults.is_empty() { "none".to_string() } else { faults.join(",") }
    );
    println!("target: {} ({})", target.bootstrap, target.implementation);
    println!(
        "profile: {}; delivery limit {}; lock {} ms; seed {seed}",
        target.profile.name, target.delivery_limit, opts.lock_ms
    );
    let capacity = opts.capacity_per_s();
    if capacity < f64::from(opts.records_per_s) * 1.25 {
        eprintln!(
            "warning: {} members process about {capacity:.0} records/s (--processing, --slow, --lock-ms), \
             close to or below --records-per-s {}: a backlog builds up, and what the quiet period \
             cannot drain leaves the run inconclusive",
            opts.members, opts.records_per_s
        );
    }
    let _ = std::io::stdout().flush();
    let tty = std::io::stderr().is_terminal();
    let mut last_line = std::time::Instant::now();
    let mut progress = |t: &SoakTotals| {
        // A line every second on a terminal, every ten seconds otherwise (CI logs).
        if tty {
            eprint!("\r\x1b[2K{}", progress_line(t));
        } else if last_line.elapsed() >= Duration::from_secs(10) {
            last_line = std::time::Instant::now();
            eprintln!("{}", progress_line(t));
        }
    };
    let mut report = running
        .runtime
        .block_on(soak::soak(&target, &opts, &mut progress))
        .map_err(|e| Fail::unusable(e.to_string()))?;
    if tty {
        eprint!("\r\x1b[2K");
    }
    let t = &report.totals;
    println!("{}", progress_line(t));
    println!(
        "judged {} events; the judge tracked at most {} records at once; {} fault(s)",
        t.events, t.peak_tracked, t.faults
    );
    for (at, f) in &report.faults {
        println!("  fault at {:.1} s: {f}", *at as f64 / 1000.0);
    }
    for (property, n) in &report.counts {
        println!("  {n} finding(s) of {property}");
    }
    for f in report.findings.iter().take(10) {
        println!(
            "  FINDING {} ({:?}) partition {} offset {} at {:.1} s: {}",
            f.property,
            f.anomaly,
            f.partition,
            f.offset,
            f.at_ms as f64 / 1000.0,
            f.detail
        );
    }
    if report.findings.len() > 10 {
        println!(
            "  … the first {} are in the --json report",
            report.findings.len()
        );
    }
    if report.outstanding.lost > 0 {
        println!(
            "  {} record(s) never became terminal",
            report.outstanding.lost
        );
    }
    for n in &report.notes {
        println!("  note: {n}");
    }
    if let Some(path) = &args.json {
        let text = serde_json::to_string_pretty(&report)
            .map_err(|e| Fail::cannot_write(format!("report: {e}")))?;
        write_output(path, &text)?;
    }
    let rerun = rerun_command(&args, seed);
    if let (Some(page), Some(timeline)) = (&report_page, report.timeline.take()) {
        let heading = ReportHeading {
            target: format!("{} ({})", target.bootstrap, target.implementation),
            profile: target.profile.name.to_string(),
            workload: format!(
                "{} s + up to {} s quiet; {} members, {} partitions, {} records/s, processing {}..{} ms, \
                 {} % slow, ack mix {}/{}/{}; faults: {} every {} s",
                opts.duration.as_secs(),
                opts.quiet.as_secs(),
                opts.members,
                opts.partitions,
                opts.records_per_s,
                opts.processing_ms.0,
                opts.processing_ms.1,
                args.slow,
                opts.ack_mix[0],
                opts.ack_mix[1],
                opts.ack_mix[2],
                if faults.is_empty() { "none".to_string() } else { faults.join(",") },
                opts.fault_every.as_secs_f64()
            ),
            rerun: rerun.clone(),
        };
        write_output(page, &timeline.render(&report, &heading))?;
        println!("report: {}", page.display());
    }
    println!(
        "verdict: {} (seed {seed}; rerun: {rerun})",
        match report.verdict {
            SoakVerdict::Pass => "pass",
            SoakVerdict::Fail => "FAIL",
            SoakVerdict::Inconclusive => "inconclusive",
        },
    );
    Ok(match report.verdict {
        SoakVerdict::Pass => Outcome::Pass,
        SoakVerdict::Fail => Outcome::Violation,
        SoakVerdict::Inconclusive => Outcome::Inconclusive,
    })
}

/// The command that runs the same workload and fault schedule again.
fn rerun_command(args: &SoakArgs, seed: u64) -> String {
    let faults: Vec<&str> = args.faults.iter().map(|f| f.name()).collect();
    let mut c = format!(
        "sharecheck soak{} --seed {seed} --duration {}s --quiet {}s --members {} --partitions {} \
         --records-per-s {} --processing {}..{} --slow {} --ack-mix {}/{}/{} --lock-ms {} --tolerance-ms {}",
        args.target.rerun_flags(),
        args.duration.as_secs_f64(),
        args.quiet.as_secs_f64(),
        args.members,
        args.partitions,
        args.records_per_s,
        args.processing.0,
        args.processing.1,
        args.slow,
        args.ack_mix[0],
        args.ack_mix[1],
        args.ack_mix[2],
        args.lock_ms,
        args.tolerance_ms
    );
    if !faults.is_empty() {
        c.push_str(&format!(
            " --faults {} --fault-every {}s",
            faults.join(","),
            args.fault_every.as_secs_f64()
        ));
    }
    if args.fail_fast {
        c.push_str(" --fail-fast");
    }
    c
}

fn progress_line(t: &SoakTotals) -> String {
    let secs = (t.elapsed_ms as f64 / 1000.0).max(0.001);
    format!(
        "soak {:.0} s: produced {} ({:.0}/s), delivered {}, acknowledged {}, not yet terminal {}, tracked {}, \
         member errors {}, findings {}",
        secs,
        t.produced,
        t.produced as f64 / secs,
        t.delivered,
        t.acked,
        t.not_done,
        t.tracked,
        t.member_errors,
        t.findings
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_parse_and_bad_ones_are_refused() {
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("7"), Ok(Duration::from_secs(7)));
        assert!(parse_duration("5 parsecs").is_err());
        assert!(parse_duration("-1s").is_err());
        assert_eq!(parse_range("5..50"), Ok((5, 50)));
        assert!(parse_range("50..5").is_err());
        assert_eq!(parse_mix("8/1/1"), Ok([8, 1, 1]));
        assert!(parse_mix("0/0/0").is_err());
        assert!(parse_mix("1/2").is_err());
        assert_eq!(parse_fault("member-crash"), Ok(SoakFault::MemberCrash));
        assert!(parse_fault("meteor").is_err());
    }
}
