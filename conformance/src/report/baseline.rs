//! Expected-results baselines (`sharecheck conform --baseline FILE`): which cases a target is known
//! to fail (or to leave inconclusive), each with the finding that explains it. A run matches its
//! baseline when every listed case has the listed verdict and no unlisted case fails; any difference,
//! in either direction (a new failure, or a known failure that now passes), is reported, so CI stays
//! green while a divergence is real and turns red the day it changes. A timing-dependent finding is
//! listed as `"pass-or-fail"`, with its measured rate in `why`.
//!
//! ```json
//! { "format_version": 1,
//!   "target": "Apache Kafka 4.1.2",
//!   "cases": {
//!     "kip932.offsets.alter-moves-the-start-offset":
//!       { "verdict": "fail", "finding": "F9", "why": "AlterShareGroupOffsets is answered NONE and ignored" } } }
//! ```

use crate::oracle::CaseVerdict;
use crate::run::CaseResult;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::Path;

/// The baseline format this build reads.
pub const BASELINE_FORMAT_VERSION: u32 = 1;

/// The verdict a baseline expects of a case.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Expected {
    /// The case fails (a known divergence).
    Fail,
    /// The case is inconclusive (the target cannot be judged there).
    Inconclusive,
    /// The case is skipped (the target lacks what it needs).
    Skipped,
    /// The case passes or fails by a race (a timing-dependent finding, its measured rate in `why`):
    /// either is as expected, inconclusive or skipped is a difference.
    #[serde(rename = "pass-or-fail")]
    PassOrFail,
}

impl Expected {
    fn admits(self, v: CaseVerdict) -> bool {
        match self {
            Expected::Fail => v == CaseVerdict::Fail,
            Expected::Inconclusive => v == CaseVerdict::Inconclusive,
            Expected::Skipped => v == CaseVerdict::Skipped,
            Expected::PassOrFail => matches!(v, CaseVerdict::Pass | CaseVerdict::Fail),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Expected::Fail => "fail",
            Expected::Inconclusive => "inconclusive",
            Expected::Skipped => "skipped",
            Expected::PassOrFail => "pass or fail",
        }
    }
}

/// One listed case.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    /// The verdict expected.
    pub verdict: Expected,
    /// The finding that explains it (`F9`, docs/findings.md).
    pub finding: String,
    /// Why, in one line.
    pub why: String,
}

/// A baseline file.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Baseline {
    /// [`BASELINE_FORMAT_VERSION`].
    pub format_version: u32,
    /// What it is the baseline of.
    pub target: String,
    /// The cases that do not pass, by id.
    pub cases: BTreeMap<String, Entry>,
}

/// Why a baseline cannot be used (exit 65).
#[derive(Debug, thiserror::Error)]
pub enum BaselineError {
    /// Unreadable.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// Not a baseline.
    #[error("{path}: {message}")]
    Invalid {
        /// The file.
        path: String,
        /// What is wrong.
        message: String,
    },
}

impl Baseline {
    /// Reads a baseline and checks it against the catalog's ids (`known`): a baseline naming a
    /// case that does not exist is stale, and refused.
    pub fn load(path: &Path, known: &[String]) -> Result<Baseline, BaselineError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| BaselineError::Io {
            path: shown.clone(),
            source,
        })?;
        Baseline::parse(&text, &shown, known)
    }

    /// Parses and checks baseline JSON; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str, known: &[String]) -> Result<Baseline, BaselineError> {
        let invalid = |message: String| BaselineError::Invalid {
            path: origin.to_string(),
            message,
        };
        let b: Baseline = serde_json::from_str(text).map_err(|e| invalid(e.to_string()))?;
        if b.format_version != BASELINE_FORMAT_VERSION {
            return Err(invalid(format!(
                "format_version {} is not supported (this build reads {BASELINE_FORMAT_VERSION})",
                b.format_version
            )));
        }
        if let Some(id) = b.cases.keys().find(|id| !known.contains(id)) {
            return Err(invalid(format!("case '{id}' is not in the catalog")));
        }
        if let Some((id, _)) = b.cases.iter().find(|(_, e)| e.finding.trim().is_empty()) {
            return Err(invalid(format!("case '{id}' names no finding")));
        }
        Ok(b)
    }

    /// Every difference between the results and the baseline, one line each: a listed case with
    /// another verdict, an unlisted case that failed. Listed cases that did not run are not
    /// differences (a `--filter` run).
    pub fn differences(&self, results: &[CaseResult]) -> Vec<String> {
        let mut out = Vec::new();
        for r in results {
            match self.cases.get(&r.id) {
                Some(e) if !e.verdict.admits(r.verdict) => out.push(format!(
                    "{}: {} (the baseline expects {}: {} — {})",
                    r.id,
                    verdict_name(r.verdict),
                    e.verdict.name(),
                    e.finding,
                    e.why
                )),
                None if r.verdict == CaseVerdict::Fail => out.push(format!(
                    "{}: fail (not in the baseline: a new failure)",
                    r.id
                )),
                _ => {}
            }
        }
        out
    }
}

fn verdict_name(v: CaseVerdict) -> &'static str {
    match v {
        CaseVerdict::Pass => "pass",
        CaseVerdict::Fail => "fail",
        CaseVerdict::Inconclusive => "inconclusive",
        CaseVerdict::Skipped => "skipped",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(id: &str, verdict: CaseVerdict) -> CaseResult {
        let case = crate::scenario::curated().expect("catalog").remove(0);
        let mut r = crate::run::not_run(&case, "test");
        r.id = id.to_string();
        r.verdict = verdict;
        r
    }

    fn known() -> Vec<String> {
        vec![
            "kip932.a.x".into(),
            "kip932.a.y".into(),
            "kip932.a.z".into(),
        ]
    }

    const B: &str = r#"{"format_version":1,"target":"t","cases":{"kip932.a.x":{"verdict":"fail","finding":"F9","why":"w"}}}"#;

    #[test]
    fn matching_results_have_no_differences() {
        let b = Baseline::parse(B, "b", &known()).unwrap();
        let rs = [
            result("kip932.a.x", CaseVerdict::Fail),
            result("kip932.a.y", CaseVerdict::Pass),
            result("kip932.a.z", CaseVerdict::Skipped),
        ];
        assert!(b.differences(&rs).is_empty());
    }

    #[test]
    fn a_new_failure_and_a_fixed_one_are_both_differences() {
        let b = Baseline::parse(B, "b", &known()).unwrap();
        let rs = [
            result("kip932.a.x", CaseVerdict::Pass),
            result("kip932.a.y", CaseVerdict::Fail),
        ];
        let d = b.differences(&rs);
        assert_eq!(d.len(), 2, "{d:?}");
        assert!(d[0].starts_with("kip932.a.x: pass (the baseline expects fail: F9"));
        assert!(d[1].contains("a new failure"));
    }

    #[test]
    fn stale_or_malformed_baselines_are_refused() {
        let stale = B.replace("kip932.a.x", "kip932.a.gone");
        assert!(Baseline::parse(&stale, "b", &known())
            .unwrap_err()
            .to_string()
            .contains("not in the catalog"));
        assert!(Baseline::parse("{", "b", &known()).is_err());
        let extra = B.replace("\"target\"", "\"oops\":1,\"target\"");
        assert!(Baseline::parse(&extra, "b", &known()).is_err());
        let v2 = B.replace("\"format_version\":1", "\"format_version\":2");
        assert!(Baseline::parse(&v2, "b", &known()).is_err());
        let nofinding = B.replace("\"F9\"", "\" \"");
        assert!(Baseline::parse(&nofinding, "b", &known()).is_err());
    }

    #[test]
    fn a_race_admits_pass_and_fail_but_nothing_else() {
        let b = Baseline::parse(
            r#"{"format_version":1,"target":"t","cases":{"kip932.a.x":{"verdict":"pass-or-fail","finding":"F4","why":"10 of 100"}}}"#,
            "b",
            &known(),
        )
        .unwrap();
        for (v, ok) in [
            (CaseVerdict::Pass, true),
            (CaseVerdict::Fail, true),
            (CaseVerdict::Inconclusive, false),
            (CaseVerdict::Skipped, false),
        ] {
            assert_eq!(
                b.differences(&[result("kip932.a.x", v)]).is_empty(),
                ok,
                "{v:?}"
            );
        }
    }
}
