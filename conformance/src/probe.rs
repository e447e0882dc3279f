//! `sharecheck probe`: what is this broker, can it do share groups, and does a smoke round of
//! acquire / release / accept / lock expiry behave as KIP-932 says?
//!
//! The description comes from ApiVersions ([`Client::broker_info`]) and the broker's configs. The
//! smoke round is an ordinary conformance case, [`smoke_case`], run by the suite's runner
//! ([`run::run_case`]) and judged by the suite's oracle: the probe itself judges nothing. The round
//! (fresh topic and group, 1 s locks, `share.auto.offset.reset=earliest`, set before any member
//! joins):
//!
//! 1. 10 records in two batches of 5; member A fetches them (delivery count 1), releases 3 of them
//!    across the batch boundary, fetches those 3 again (count 2) and accepts all 10;
//! 2. member B joins and finds nothing left;
//! 3. 5 more records; B fetches them and does not acknowledge; once B's locks have surely expired
//!    A fetches them again (count 2) and accepts them; both close their sessions and leave.

use std::fmt;
use std::time::{Duration, Instant};

use serde::Serialize;
use sharecheck_model::Profile;

use crate::history::Event;
use crate::oracle::{CaseVerdict, Violation};
use crate::run::{self, CaseResult, RunOptions};
use crate::trace::Case;
use sharecheck_client::admin::{BrokerInfo, Client, ClientConfig};

/// How to probe.
#[derive(Clone, Debug)]
pub struct ProbeConfig {
    pub bootstrap: String,
    /// Deadline for connecting and for each request.
    pub timeout: Duration,
    /// The rules to judge by; `None`: guessed from the broker's API versions.
    pub profile: Option<Profile>,
    /// How long a fetch step keeps fetching for records the spec says are surely acquirable (empty
    /// responses are normal while a share partition initialises).
    pub fetch_patience: Duration,
    /// Stop after describing the broker.
    pub info_only: bool,
    /// TLS and SASL (`--command-config`).
    pub security: std::sync::Arc<sharecheck_client::security::Security>,
    /// The smoke round's topic and group are named `PREFIX-0-…` (default `sc-probe-RANDOM`).
    pub prefix: Option<String>,
}

impl ProbeConfig {
    pub fn new(bootstrap: impl Into<String>) -> Self {
        ProbeConfig {
            bootstrap: bootstrap.into(),
            timeout: Duration::from_secs(5),
            profile: None,
            fetch_patience: Duration::from_secs(10),
            info_only: false,
            security: Default::default(),
            prefix: None,
        }
    }
}

/// One printed step: a line of the broker description, or a step of the smoke round as run.
#[derive(Clone, Debug, Serialize)]
pub struct ProbeStep {
    /// The smoke round's step number (1-based); `None` for the broker description.
    pub step: Option<usize>,
    /// What was done (the case step in words, or the description topic).
    pub text: String,
    /// What happened.
    pub outcome: String,
    /// Anomalies the oracle named at this step.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub anomalies: Vec<Violation>,
    /// The spec's record table after the step.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub records: Vec<String>,
}

impl fmt::Display for ProbeStep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.step {
            None => write!(f, "{}: {}", self.text, self.outcome)?,
            Some(n) => write!(f, "{n:>3}. {} -> {}", self.text, self.outcome)?,
        }
        for a in &self.anomalies {
            write!(f, "\n     !! {}: {}", a.kind, a.detail)?;
        }
        Ok(())
    }
}

/// The probe's overall verdict, mapped onto exit codes 0 / 1 / 2 / 3 by the CLI.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "verdict", rename_all = "kebab-case")]
pub enum Verdict {
    Pass,
    /// The oracle named anomalies (each with its step).
    Violation {
        anomalies: Vec<Violation>,
    },
    Inconclusive {
        reason: String,
    },
    Unusable {
        reason: String,
    },
}

/// Everything the probe found.
#[derive(Clone, Debug, Serialize)]
pub struct ProbeReport {
    pub bootstrap: String,
    pub broker: Option<BrokerInfo>,
    /// What the runner took the target for.
    pub implementation: Option<String>,
    /// The spec profile the round was judged under.
    pub profile: Option<String>,
    /// The delivery limit the round ran with.
    pub delivery_limit: Option<u8>,
    pub steps: Vec<ProbeStep>,
    /// The smoke round as the runner returned it (steps, anomalies, request/response history).
    pub round: Option<CaseResult>,
    pub verdict: Verdict,
    pub elapsed_ms: u64,
}

/// The smoke round as a trace. Every response is judged by the oracle (delivery counts, error codes,
/// records that must come back and did not); the `expect_received` steps state the round's claims
/// in records received, which hold on every timing the oracle allows.
const SMOKE_ROUND: &str = r#"{
  "format_version": 1,
  "id": "kip932.claims.probe-smoke-round",
  "level": "must",
  "rule": "records are delivered once each, RELEASEd and lock-expired records come back with the delivery count incremented, accepted records never come back",
  "source": "KIP-932; docs/semantics.md T1, T2, T4, T8 (sharecheck probe)",
  "suite": "smoke",
  "origin": "curated",
  "settings": {"lock_duration_ms": 1000, "auto_offset_reset": "earliest"},
  "steps": [
    {"op": "produce", "records": 10, "batches": 2},
    {"op": "join", "member": "A"},
    {"op": "fetch", "member": "A", "max_records": 10},
    {"op": "expect_received", "member": "A", "at_least": 10},
    {"op": "ack", "member": "A", "select": [3, 4, 5], "type": "release", "via": "share-fetch"},
    {"op": "fetch", "member": "A", "max_records": 10},
    {"op": "expect_received", "member": "A", "at_least": 13},
    {"op": "ack", "member": "A", "select": "all", "type": "accept"},
    {"op": "join", "member": "B"},
    {"op": "fetch", "member": "B", "max_records": 10},
    {"op": "produce", "records": 5, "batches": 1},
    {"op": "fetch", "member": "B", "max_records": 10},
    {"op": "expect_received", "member": "B", "at_least": 5},
    {"op": "wait_lock_expiry"},
    {"op": "fetch", "member": "A", "max_records": 10},
    {"op": "expect_received", "member": "A", "at_least": 18},
    {"op": "ack", "member": "A", "select": "all", "type": "accept"},
    {"op": "close_session", "member": "A"},
    {"op": "close_session", "member": "B"},
    {"op": "leave", "member": "A"},
    {"op": "leave", "member": "B"}
  ]
}"#;

/// The probe's smoke round.
pub fn smoke_case() -> Case {
    Case::parse(SMOKE_ROUND, "the probe's smoke round").expect("the built-in smoke round is valid")
}

/// Run the probe. `on_step` sees each description line as it is found and each step of the smoke
/// round once the round has run.
pub async fn run(
    config: &ProbeConfig,
    on_step: &mut (dyn FnMut(&ProbeStep) + Send),
) -> ProbeReport {
    let started = Instant::now();
    let mut report = ProbeReport {
        bootstrap: config.bootstrap.clone(),
        broker: None,
        implementation: None,
        profile: None,
        delivery_limit: None,
        steps: Vec::new(),
        round: None,
        verdict: Verdict::Pass,
        elapsed_ms: 0,
    };
    let mut emit = |report: &mut ProbeReport, step: ProbeStep| {
        on_step(&step);
        report.steps.push(step);
    };
    report.verdict = probe(config, &mut report, &mut emit).await;
    report.elapsed_ms = started.elapsed().as_millis() as u64;
    report
}

fn info(text: &str, outcome: String) -> ProbeStep {
    ProbeStep {
        step: None,
        text: text.to_string(),
        outcome,
        anomalies: Vec::new(),
        records: Vec::new(),
    }
}

async fn probe(
    config: &ProbeConfig,
    report: &mut ProbeReport,
    emit: &mut (dyn FnMut(&mut ProbeReport, ProbeStep) + Send),
) -> Verdict {
    let unusable = |reason: String| Verdict::Unusable { reason };
    // --- what the broker is ---------------------------------------------------------------
    let client_config = ClientConfig::new(config.bootstrap.clone())
        .with_timeout(config.timeout)
        .with_security(config.security.clone());
    let mut client = match Client::connect(client_config).await {
        Ok(c) => c,
        Err(e) => return unusable(e.to_string()),
    };
    let described = client.broker_info();
    let apis: Vec<String> = described
        .share_apis
        .iter()
        .map(|a| match (a.broker, a.negotiated) {
            (Some((lo, hi)), Some(n)) => format!("{} v{lo}-v{hi} (using v{n})", a.api),
            (Some((lo, hi)), None) => format!("{} v{lo}-v{hi} (no common version)", a.api),
            (None, _) => format!("{} absent", a.api),
        })
        .collect();
    let line =
        format!(
        "{} broker(s), cluster {}; Kafka release (guess): {}; share.version {} (supported {}); {}",
        described.brokers.len(),
        described.cluster_id.as_deref().unwrap_or("?"),
        described.release_guess.map_or("unknown".to_string(), |r| r.to_string()),
        described.share_version,
        described
            .share_version_supported
            .map(|(lo, hi)| format!("{lo}-{hi}"))
            .unwrap_or_else(|| "-".to_string()),
        apis.join(", ")
    );
    emit(report, info("broker", line));
    let why_not = described.share_unusable.clone();
    report.broker = Some(described);
    if let Some(why) = why_not {
        return unusable(why.to_string());
    }
    let case = smoke_case();
    let lock_ms = i64::from(case.settings.lock_duration_ms);
    let (min_lock, max_lock) = lock_bounds(&mut client).await;
    drop(client);
    let target = match crate::target::connect(
        &config.bootstrap,
        config.profile,
        config.timeout,
        config.security.clone(),
    )
    .await
    {
        Ok(t) => t,
        Err(e) => return unusable(e.to_string()),
    };
    report.implementation = Some(target.implementation.clone());
    report.profile = Some(target.profile.name.to_string());
    report.delivery_limit = Some(target.delivery_limit);
    let locks = match (min_lock, max_lock) {
        (Some(lo), Some(hi)) => format!("; record locks {lo}-{hi} ms"),
        _ => String::new(),
    };
    emit(
        report,
        info(
            "share groups",
            format!(
                "usable; {}; judged under profile {}; delivery limit {}{locks}",
                target.implementation, target.profile.name, target.delivery_limit
            ),
        ),
    );
    let yes = |b: bool| if b { "yes" } else { "no" };
    emit(
        report,
        info(
            "features",
            format!(
                "RENEW and acquire modes (ShareFetch/ShareAcknowledge v2, 4.2+): {}; share-group offsets administration (APIs 90-92): {}, with lag (v1, 4.2+): {}; group limits (4.3+): {}; share.version 2 (dead-letter queue, 4.4+): {}",
                yes(target.can(crate::trace::Capability::Renew)),
                yes(target.can(crate::trace::Capability::OffsetsAdmin)),
                yes(target.can(crate::trace::Capability::Lag)),
                yes(target.can(crate::trace::Capability::GroupLimits)),
                yes(report.broker.as_ref().is_some_and(|b| b.share_version >= 2)),
            ),
        ),
    );
    if config.info_only {
        return Verdict::Pass;
    }
    if min_lock.is_some_and(|lo| lo > lock_ms) || max_lock.is_some_and(|hi| hi < lock_ms) {
        return unusable(format!(
            "the broker allows record locks of {}-{} ms only; the smoke round needs \
             share.record.lock.duration.ms={lock_ms} for its group (set \
             group.share.min.record.lock.duration.ms <= {lock_ms})",
            min_lock.unwrap_or(0),
            max_lock.unwrap_or(0)
        ));
    }

    // --- the smoke round ------------------------------------------------------------------
    let opts = RunOptions {
        timeout: config.timeout,
        fetch_patience: config.fetch_patience,
        prefix: config
            .prefix
            .clone()
            .unwrap_or_else(|| format!("sc-probe-{:08x}", crate::run::rand_u32())),
        ..RunOptions::default()
    };
    emit(
        report,
        info(
            "smoke round",
            format!(
                "{} ({} steps, {lock_ms} ms locks), judged by the conformance oracle",
                case.id,
                case.steps.len()
            ),
        ),
    );
    let result = run::run_case(&target, &opts, &case, 0).await;
    report.delivery_limit = Some(result.delivery_limit);
    for s in &result.steps {
        let step = ProbeStep {
            step: Some(s.step),
            text: s.text.clone(),
            outcome: match delivery_counts(&result.history, s.step) {
                Some(counts) => format!("{}; {counts}", s.outcome),
                None => s.outcome.clone(),
            },
            anomalies: result
                .anomalies
                .iter()
                .filter(|a| a.step == s.step)
                .cloned()
                .collect(),
            records: s.records.clone(),
        };
        emit(report, step);
    }
    let verdict = match result.verdict {
        CaseVerdict::Pass => Verdict::Pass,
        CaseVerdict::Fail => Verdict::Violation {
            anomalies: result.anomalies.clone(),
        },
        CaseVerdict::Inconclusive => Verdict::Inconclusive {
            reason: result.reason.clone().unwrap_or_default(),
        },
        CaseVerdict::Skipped => Verdict::Unusable {
            reason: result.reason.clone().unwrap_or_default(),
        },
    };
    report.round = Some(result);
    verdict
}

/// "delivery count 1 for 0-9" / "delivery count 2 for 3-5": what the step's ShareFetch responses
/// said, read back from the runner's history (for the reader; the oracle has judged them).
fn delivery_counts(history: &[Event], step: usize) -> Option<String> {
    let mut ranges: Vec<(i64, i64, i16)> = history
        .iter()
        .filter(|e| e.step() == step)
        .filter_map(|e| match e {
            Event::ShareFetch { partitions, .. } => Some(partitions),
            _ => None,
        })
        .flatten()
        .flat_map(|p| p.acquired.iter().copied())
        .collect();
    if ranges.is_empty() {
        return None;
    }
    ranges.sort_unstable();
    let mut by_count: Vec<(i16, Vec<String>)> = Vec::new();
    for (first, last, count) in ranges {
        let range = if first == last {
            first.to_string()
        } else {
            format!("{first}-{last}")
        };
        match by_count.iter_mut().find(|(c, _)| *c == count) {
            Some((_, rs)) => rs.push(range),
            None => by_count.push((count, vec![range])),
        }
    }
    let parts: Vec<String> = by_count
        .into_iter()
        .map(|(c, rs)| format!("delivery count {c} for {}", rs.join(",")))
        .collect();
    Some(parts.join(", "))
}

/// The broker's `group.share.{min,max}.record.lock.duration.ms`, where it says.
async fn lock_bounds(client: &mut Client) -> (Option<i64>, Option<i64>) {
    let node = client.cluster().brokers.keys().next().copied().unwrap_or(0);
    let (mut lo, mut hi) = (None, None);
    if let Ok(entries) = client.describe_configs(4, &node.to_string()).await {
        for e in entries {
            let v = e.value.as_deref().and_then(|v| v.parse::<i64>().ok());
            match e.name.as_str() {
                "group.share.min.record.lock.duration.ms" => lo = v,
                "group.share.max.record.lock.duration.ms" => hi = v,
                _ => {}
            }
        }
    }
    (lo, hi)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trace::{OffsetReset, Step};

    #[test]
    fn the_smoke_round_is_a_valid_case() {
        let case = smoke_case();
        assert_eq!(case.settings.lock_duration_ms, 1000);
        assert_eq!(case.settings.auto_offset_reset, OffsetReset::Earliest);
        assert!(case.requires.is_empty());
        assert_eq!(
            case.steps[0],
            Step::Produce {
                records: 10,
                batches: Some(2),
                partition: 0,
            }
        );
        assert!(case.steps.contains(&Step::WaitLockExpiry));
        let claims: Vec<&Step> = case
            .steps
            .iter()
            .filter(|s| matches!(s, Step::ExpectReceived { .. }))
            .collect();
        assert_eq!(claims.len(), 4);
    }

    #[tokio::test]
    async fn unreachable_broker_is_unusable_quickly() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        drop(listener);
        let mut steps = Vec::new();
        let mut sink = |s: &ProbeStep| steps.push(s.text.clone());
        let started = Instant::now();
        let report = run(&ProbeConfig::new(addr), &mut sink).await;
        assert!(
            matches!(report.verdict, Verdict::Unusable { .. }),
            "{:?}",
            report.verdict
        );
        assert!(started.elapsed() < Duration::from_secs(5));
        assert!(report.broker.is_none());
        assert!(steps.is_empty());
    }
}
