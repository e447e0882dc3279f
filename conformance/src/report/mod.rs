//! Reports of a conformance run: the JSON report (stable field names), JUnit XML, and the artifacts
//! left for every failed or inconclusive case (its trace with the observed history, plus a one-line
//! rerun command).

pub mod artifact;
pub mod baseline;
pub mod junit;
pub mod matrix;
pub mod text;

use crate::oracle::{CaseVerdict, Violation};
use crate::run::{transitions_total, CaseResult};
use crate::target::Target;
use crate::trace::Level;
use serde::Serialize;
use sharecheck_model::model::Transitions;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// The run's verdict.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RunVerdict {
    /// Every selected case passed (or was skipped), or only SHOULD cases failed without `--strict`.
    Pass,
    /// A MUST case failed, or a SHOULD case with `--strict`.
    Fail,
    /// Nothing failed, but something could not be judged.
    Inconclusive,
}

impl RunVerdict {
    /// `pass`, `fail`, `inconclusive`.
    pub fn name(self) -> &'static str {
        match self {
            RunVerdict::Pass => "pass",
            RunVerdict::Fail => "fail",
            RunVerdict::Inconclusive => "inconclusive",
        }
    }
}

/// `target` in the JSON report.
#[derive(Clone, Debug, Serialize)]
pub struct TargetReport {
    /// `host:port`.
    pub address: String,
    /// What it is.
    pub implementation: String,
}

/// `summary` in the JSON report.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Summary {
    /// Cases selected.
    pub total: usize,
    /// Passed.
    pub passed: usize,
    /// Failed.
    pub failed: usize,
    /// Inconclusive.
    pub inconclusive: usize,
    /// Skipped for a missing capability.
    pub skipped: usize,
}

/// One case in the JSON report.
#[derive(Clone, Debug, Serialize)]
pub struct CaseReport {
    /// Case id.
    pub id: String,
    /// Area.
    pub area: String,
    /// must / should.
    pub level: Level,
    /// pass / fail / inconclusive / skipped.
    pub verdict: CaseVerdict,
    /// Named anomalies.
    pub anomalies: Vec<Violation>,
    /// Why inconclusive or skipped.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Wall time.
    pub duration_ms: u64,
    /// The artifact file, for failed and inconclusive cases.
    pub artifact: Option<String>,
    /// The command that runs this case again on this target: `sharecheck replay ARTIFACT …` where
    /// there is an artifact, `sharecheck conform --filter ID …` otherwise.
    pub rerun: String,
    /// Observations the spec does not judge (e.g. a partition error on an ack-only fetch).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

/// `coverage` in the JSON report.
#[derive(Clone, Debug, Serialize)]
pub struct Coverage {
    /// Transition kinds the suite can exercise on this target.
    pub transitions_total: usize,
    /// Those the target went through in this run.
    pub transitions_exercised: usize,
    /// The ones it did not.
    pub missing: Vec<String>,
}

/// The JSON report.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// "sharecheck".
    pub tool: &'static str,
    /// This build's version.
    pub version: &'static str,
    /// The target.
    pub target: TargetReport,
    /// The profile the target was judged by.
    pub profile: String,
    /// The run's seed (names topics and groups).
    pub seed: String,
    /// pass / fail / inconclusive.
    pub verdict: RunVerdict,
    /// Counts.
    pub summary: Summary,
    /// Every case.
    pub cases: Vec<CaseReport>,
    /// Transition coverage.
    pub coverage: Coverage,
}

/// The command that runs case `id` again: from its artifact when it has one. `flags` name the
/// target as the run was given it (` --bootstrap …`, ` --mutant …`, …).
pub fn rerun_command(id: &str, artifact: Option<&std::path::Path>, flags: &str) -> String {
    match artifact {
        Some(p) => format!("sharecheck replay {}{flags}", p.display()),
        None => format!("sharecheck conform --filter '{id}'{flags}"),
    }
}

/// Builds the report. `artifacts` maps case ids to the artifact files written for them;
/// `rerun_flags` name the target in each case's rerun command.
pub fn build(
    target: &Target,
    seed: &str,
    results: &[CaseResult],
    strict: bool,
    artifacts: &BTreeMap<String, PathBuf>,
    rerun_flags: &str,
) -> Report {
    let mut summary = Summary {
        total: results.len(),
        ..Summary::default()
    };
    let mut fail = false;
    let mut inconclusive = false;
    for r in results {
        match r.verdict {
            CaseVerdict::Pass => summary.passed += 1,
            CaseVerdict::Fail => {
                summary.failed += 1;
                fail |= r.level == Level::Must || strict;
            }
            CaseVerdict::Inconclusive => {
                summary.inconclusive += 1;
                inconclusive = true;
            }
            CaseVerdict::Skipped => summary.skipped += 1,
        }
    }
    let verdict = if fail {
        RunVerdict::Fail
    } else if inconclusive {
        RunVerdict::Inconclusive
    } else {
        RunVerdict::Pass
    };
    let mut exercised = Transitions::default();
    for r in results {
        exercised.extend(r.exercised);
    }
    let total = transitions_total(target);
    let missing: Vec<String> = total
        .iter()
        .filter(|t| !exercised.contains(**t))
        .map(|t| t.name().to_string())
        .collect();
    Report {
        tool: "sharecheck",
        version: env!("CARGO_PKG_VERSION"),
        target: TargetReport {
            address: target.bootstrap.clone(),
            implementation: target.implementation.clone(),
        },
        profile: target.profile.name.to_string(),
        seed: seed.to_string(),
        verdict,
        summary,
        cases: results
            .iter()
            .map(|r| CaseReport {
                id: r.id.clone(),
                area: r.area.clone(),
                level: r.level,
                verdict: r.verdict,
                anomalies: r.anomalies.clone(),
                reason: r.reason.clone(),
                duration_ms: r.duration_ms,
                artifact: artifacts.get(&r.id).map(|p| p.display().to_string()),
                rerun: rerun_command(
                    &r.id,
                    artifacts.get(&r.id).map(PathBuf::as_path),
                    rerun_flags,
                ),
                notes: r.notes.clone(),
            })
            .collect(),
        coverage: Coverage {
            transitions_total: total.len(),
            transitions_exercised: total.len() - missing.len(),
            missing,
        },
    }
}

/// Per-area counts: (passed, failed, inconclusive, skipped).
pub fn by_area(results: &[CaseResult]) -> BTreeMap<String, [usize; 4]> {
    let mut out: BTreeMap<String, [usize; 4]> = BTreeMap::new();
    for r in results {
        let e = out.entry(r.area.clone()).or_default();
        let k = match r.verdict {
            CaseVerdict::Pass => 0,
            CaseVerdict::Fail => 1,
            CaseVerdict::Inconclusive => 2,
            CaseVerdict::Skipped => 3,
        };
        e[k] += 1;
    }
    out
}
