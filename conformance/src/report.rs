//! Reports of a conformance run: the JSON report (stable field names), JUnit XML, and the artifacts
//! left for every failed or inconclusive case (its trace with the observed history, plus a one-line
//! rerun command).

use crate::run::{transitions_total, CaseResult, CaseVerdict, Target};
use crate::trace::{Case, Level};
use serde::Serialize;
use serde_json::json;
use sharecheck_model::model::Transitions;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

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
    pub anomalies: Vec<crate::oracle::Anomaly>,
    /// Why inconclusive or skipped.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Wall time.
    pub duration_ms: u64,
    /// The artifact file, for failed and inconclusive cases.
    pub artifact: Option<String>,
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

/// Builds the report. `artifacts` maps case ids to the artifact files written for them.
pub fn build(
    target: &Target,
    seed: &str,
    results: &[CaseResult],
    strict: bool,
    artifacts: &BTreeMap<String, PathBuf>,
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

/// The report as JUnit XML: one testcase per case, classname = area.
pub fn junit(report: &Report, results: &[CaseResult]) -> Result<String, String> {
    use quick_junit::{NonSuccessKind, Report as JReport, TestCase, TestCaseStatus, TestSuite};
    let mut suite = TestSuite::new("sharecheck conform");
    for r in results {
        let status = match r.verdict {
            CaseVerdict::Pass => TestCaseStatus::success(),
            CaseVerdict::Skipped => {
                let mut s = TestCaseStatus::skipped();
                if let Some(why) = &r.reason {
                    s.set_message(why.clone());
                }
                s
            }
            CaseVerdict::Fail => {
                let mut s = TestCaseStatus::non_success(NonSuccessKind::Failure);
                let kinds: Vec<&str> = r.anomalies.iter().map(|a| a.kind.as_str()).collect();
                s.set_message(kinds.join(", "));
                s.set_description(
                    r.anomalies
                        .iter()
                        .map(|a| format!("step {}: {}: {}", a.step, a.kind, a.detail))
                        .collect::<Vec<_>>()
                        .join("\n"),
                );
                s
            }
            CaseVerdict::Inconclusive => {
                let mut s = TestCaseStatus::non_success(NonSuccessKind::Error);
                s.set_message(format!(
                    "inconclusive: {}",
                    r.reason.clone().unwrap_or_default()
                ));
                s
            }
        };
        let mut tc = TestCase::new(r.id.clone(), status);
        tc.set_classname(r.area.clone());
        tc.set_time(std::time::Duration::from_millis(r.duration_ms));
        suite.add_test_case(tc);
    }
    let mut j = JReport::new(format!(
        "sharecheck {} against {}",
        report.version, report.target.address
    ));
    j.add_test_suite(suite);
    j.to_string().map_err(|e| e.to_string())
}

/// Writes the artifact of one case: the case with its history and the judged steps.
pub fn write_artifact(
    dir: &Path,
    result: &CaseResult,
    target: &Target,
) -> std::io::Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    let path = dir.join(format!("{}.json", result.id));
    let mut case: Case = result.case.clone();
    case.history = Some(json!({
        "target": {"address": target.bootstrap, "implementation": target.implementation},
        "profile": target.profile.name,
        "delivery_limit": result.delivery_limit,
        "verdict": result.verdict,
        "anomalies": result.anomalies,
        "reason": result.reason,
        "notes": result.notes,
        "steps": result.steps,
        "events": result.history,
    }));
    std::fs::write(&path, case.to_json())?;
    Ok(path)
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
