//! The JUnit XML report: one testcase per case, classname = area.

use super::Report;
use crate::oracle::CaseVerdict;
use crate::run::CaseResult;

/// The report as JUnit XML: one testcase per case, classname = area.
pub fn junit(
    report: &Report,
    results: &[CaseResult],
) -> Result<String, quick_junit::SerializeError> {
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
                let kinds: Vec<&str> = r.anomalies.iter().map(|a| a.kind.name()).collect();
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
    j.to_string()
}
