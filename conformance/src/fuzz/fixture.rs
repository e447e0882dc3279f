//! Fixtures: a shrunk failing case written with Kafka-legal timing, named after what it found,
//! for `fixtures/regressions/` (rerun by the tests forever).

use super::gen::KAFKA_MIN_LOCK_MS;
use crate::run::CaseResult;
use crate::trace::{Case, FoundBy, Level, Origin, Settings, Step, Suite, FORMAT_VERSION};

/// Kebab-case: lower-case letters, digits and single dashes.
fn kebab(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        let c = c.to_ascii_lowercase();
        if c.is_ascii_lowercase() || c.is_ascii_digit() {
            out.push(c);
        } else if !out.ends_with('-') && !out.is_empty() {
            out.push('-');
        }
    }
    out.trim_end_matches('-').to_string()
}

/// The fixture for a shrunk failing case: Kafka-legal timing (the lock raised to `lock_ms`, at
/// least [`KAFKA_MIN_LOCK_MS`], fixed waits scaled with it), an id naming what it was found on, the
/// first anomaly as its rule, and how it was found.
///
/// Which lock reproduces a timing-dependent failure under `sharecheck replay`'s default tolerances
/// (500 ms oracle tolerance, 5 s fetch patience) is for the caller to find out: see
/// [`FIXTURE_LOCKS_MS`].
pub fn fixture_case(shrunk: &Case, result: &CaseResult, found: FoundBy, lock_ms: u32) -> Case {
    let from = shrunk.settings.lock_duration_ms.max(1);
    let to = lock_ms.max(from).max(KAFKA_MIN_LOCK_MS);
    let steps: Vec<Step> = shrunk
        .steps
        .iter()
        .map(|s| match s {
            Step::Wait { ms } => Step::Wait {
                ms: ms * u64::from(to) / u64::from(from),
            },
            other => other.clone(),
        })
        .collect();
    let first = result.anomalies.first();
    let kind = first.map_or("failure", |a| a.kind.name());
    let area = first.map_or("claims", |a| a.kind.area());
    let on = found.mutant.clone().unwrap_or_else(|| "target".to_string());
    let name = kebab(&format!("fuzz-{on}-{kind}-seed-{}", found.seed));
    let detail = first.map_or(String::new(), |a| {
        format!(" (step {}: {})", a.step, a.detail)
    });
    Case {
        format_version: FORMAT_VERSION,
        id: format!("kip932.{area}.{name}"),
        level: Level::Must,
        rule: format!(
            "every response is one the spec allows; found by sharecheck fuzz as {kind} on {}",
            found.target
        ),
        source: "sharecheck fuzz (conformance/src/fuzz/), docs/semantics.md".to_string(),
        suite: Suite::Full,
        origin: Origin::Fuzz,
        settings: Settings {
            lock_duration_ms: to,
            ..shrunk.settings.clone()
        },
        requires: shrunk.requires.clone(),
        steps,
        notes: Some(format!("first anomaly when found: {kind}{detail}")),
        history: None,
        found_by: Some(found),
    }
}

/// Lock durations to try, in order, when a fixture is written with Kafka-legal timing: the first
/// one under which the replayed fixture still fails is kept. A failure that needs a record to stay
/// locked longer than the replay's fetch patience (5 s) needs the long ones.
pub const FIXTURE_LOCKS_MS: [u32; 3] = [KAFKA_MIN_LOCK_MS, 3_000, 12_000];

/// The file name of a fixture: its id without the `kip932.` prefix, plus `.json`.
pub fn fixture_file_name(case: &Case) -> String {
    format!("{}.json", case.id.trim_start_matches("kip932."))
}
