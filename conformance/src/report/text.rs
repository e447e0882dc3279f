//! The human-readable report: what `conform` prints after a run, and what `replay` and `judge`
//! print for one case. Rendering only: every verdict here was decided by the oracle.

use super::{by_area, Report};
use crate::oracle::{CaseVerdict, StepRecord, Violation};
use crate::run::CaseResult;
use crate::trace::Level;
use std::collections::BTreeMap;
use std::fmt::Write;
use std::path::{Path, PathBuf};

/// The first anomaly of a result (with how many more), or why it is inconclusive or skipped.
pub fn first_line(anomalies: &[Violation], reason: Option<&str>) -> String {
    match (anomalies.first(), reason) {
        (Some(a), _) => {
            let more = if anomalies.len() > 1 {
                format!(" (+{} more)", anomalies.len() - 1)
            } else {
                String::new()
            };
            format!("{} at step {}: {}{more}", a.kind, a.step, a.detail)
        }
        (None, Some(why)) => why.to_string(),
        (None, None) => String::new(),
    }
}

/// [`first_line`] of a case result.
pub fn result_line(r: &CaseResult) -> String {
    first_line(&r.anomalies, r.reason.as_deref())
}

/// The lines `conform` prints after a run: every failed or inconclusive case with its rerun
/// command, examples of unjudged notes, the per-area table, the summary and the verdict.
/// `rerun(artifact)` is the command that reruns a case from its artifact.
pub fn suite(
    results: &[CaseResult],
    report: &Report,
    artifacts: &BTreeMap<String, PathBuf>,
    rerun: &dyn Fn(&Path) -> String,
    elapsed_secs: f64,
) -> String {
    let mut out = String::new();
    for r in results {
        let tag = match (r.verdict, r.level) {
            (CaseVerdict::Fail, Level::Must) => "FAIL",
            (CaseVerdict::Fail, Level::Should) => "FAIL (should)",
            (CaseVerdict::Inconclusive, _) => "INCONCLUSIVE",
            _ => continue,
        };
        let _ = writeln!(out, "{tag} {}: {}", r.id, result_line(r));
        if let Some(p) = artifacts.get(&r.id) {
            let _ = writeln!(out, "    rerun: {}", rerun(p));
        }
    }
    let noted: Vec<&CaseResult> = results.iter().filter(|r| !r.notes.is_empty()).collect();
    if !noted.is_empty() {
        let _ = writeln!(
            out,
            "\n{} case(s) saw responses the spec does not judge, for example:",
            noted.len()
        );
        for r in noted.iter().take(3) {
            let _ = writeln!(out, "  {}: {}", r.id, r.notes[0]);
        }
    }
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "{:<16} {:>6} {:>6} {:>12} {:>7}",
        "area", "pass", "fail", "inconclusive", "skipped"
    );
    for (area, [p, f, i, s]) in by_area(results) {
        let _ = writeln!(out, "{area:<16} {p:>6} {f:>6} {i:>12} {s:>7}");
    }
    let s = &report.summary;
    let missing = if report.coverage.missing.is_empty() {
        String::new()
    } else {
        format!(" (missing: {})", report.coverage.missing.join(", "))
    };
    let _ = writeln!(
        out,
        "\n{} case(s): {} passed, {} failed, {} inconclusive, {} skipped in {elapsed_secs:.1}s; transitions exercised {}/{}{missing}",
        s.total,
        s.passed,
        s.failed,
        s.inconclusive,
        s.skipped,
        report.coverage.transitions_exercised,
        report.coverage.transitions_total,
    );
    let _ = writeln!(out, "verdict: {}", report.verdict.name());
    out
}

/// One case step by step — the step, what happened, the spec's record table after it and the
/// anomalies at it — then the notes; as `replay` and `judge` print it.
pub fn steps(steps: &[StepRecord], anomalies: &[Violation], notes: &[String]) -> String {
    let mut out = String::new();
    for s in steps {
        let _ = writeln!(out, "\n{:>3}. {}\n     -> {}", s.step, s.text, s.outcome);
        for line in &s.records {
            let _ = writeln!(out, "        {line}");
        }
        for a in anomalies.iter().filter(|a| a.step == s.step) {
            let _ = writeln!(out, "     !! {}: {}", a.kind, a.detail);
        }
    }
    // Anomalies at steps that left no step record (a history cut short).
    for a in anomalies
        .iter()
        .filter(|a| !steps.iter().any(|s| s.step == a.step))
    {
        let _ = writeln!(out, "     !! step {}: {}: {}", a.step, a.kind, a.detail);
    }
    for n in notes {
        let _ = writeln!(out, "note: {n}");
    }
    out
}

/// The last line of `replay` and `judge`.
pub fn verdict_line(
    verdict: CaseVerdict,
    anomalies: &[Violation],
    reason: Option<&str>,
    duration_ms: Option<u64>,
) -> String {
    match verdict {
        CaseVerdict::Pass => match duration_ms {
            Some(ms) => format!("verdict: pass ({ms} ms)"),
            None => "verdict: pass".to_string(),
        },
        CaseVerdict::Fail => format!("verdict: FAIL: {}", first_line(anomalies, reason)),
        CaseVerdict::Inconclusive => {
            format!("verdict: inconclusive: {}", reason.unwrap_or_default())
        }
        CaseVerdict::Skipped => format!("verdict: skipped: {}", reason.unwrap_or_default()),
    }
}
