//! The catalog of conformance cases: curated cases from `fixtures/cases/` (embedded at build time)
//! and cases generated from the model's paths.
//!
//! Generated cases come from [`sharecheck_model::graph::transition_examples`]: the shortest model
//! path exercising each transition kind, and each ordered pair of kinds. Each path becomes a script of
//! abstract steps (acknowledgements by relative index), so the suite drives a target through every
//! transition kind — and every pair — the model has; the oracle then judges whatever the target does.

use crate::trace::{
    AckVia, Case, Level, Origin, Selection, Settings, Step, Suite, TraceError, FORMAT_VERSION,
};
use sharecheck_model::graph::{transition_examples, Trace};
use sharecheck_model::model::{Action, Config, ShareModel, Transition};
use sharecheck_model::spec::AckType;
use std::collections::BTreeSet;

include!(concat!(env!("OUT_DIR"), "/curated.rs"));

/// The delivery limit of the generation model (and of the generated cases).
pub const GENERATED_DELIVERY_LIMIT: u8 = 3;

/// The area a transition kind belongs to.
fn area_of(kind: Transition) -> &'static str {
    match kind {
        Transition::Acquire | Transition::Redeliver => "acquire",
        Transition::Accept
        | Transition::Release
        | Transition::Reject
        | Transition::Gap
        | Transition::Renew
        | Transition::AckRefused => "ack",
        Transition::LockExpiry => "lock",
        Transition::ArchiveAtLimit => "delivery-limit",
        Transition::SessionRelease => "session",
        Transition::Restart => "faults",
    }
}

fn member_name(m: u8) -> String {
    sharecheck_model::vocab::member_name(usize::from(m))
}

/// Turns a model trace into abstract steps. `None` when the trace needs something the wire cannot
/// do (RENEW needs ShareAcknowledge v2).
fn steps_of(trace: &Trace) -> Option<Vec<Step>> {
    let mut steps: Vec<Step> = Vec::new();
    let mut state = &trace.init;
    for (action, next) in &trace.steps {
        let step = match *action {
            Action::Produce => {
                if let Some(Step::Produce {
                    records, batches, ..
                }) = steps.last_mut()
                {
                    *records += 1;
                    *batches = Some(batches.unwrap_or(1) + 1);
                    state = next;
                    continue;
                }
                Step::Produce {
                    records: 1,
                    batches: Some(1),
                    partition: 0,
                }
            }
            Action::Fetch {
                member,
                max_records,
            } => Step::Fetch {
                member: member_name(member),
                max_records: u32::from(max_records),
                acquire_mode: None,
            },
            Action::Ack {
                ty: AckType::Renew, ..
            }
            | Action::OddAck { .. } => return None,
            Action::Ack {
                member,
                offsets,
                ty,
            } => {
                let held = state.held[member as usize];
                let held_list: Vec<u32> = (0..8).filter(|o| held & (1 << o) != 0).collect();
                let select = if offsets == held {
                    Selection::ALL
                } else {
                    Selection::Indices(
                        (0..8u32)
                            .filter(|o| offsets & (1 << o) != 0)
                            .filter_map(|o| held_list.iter().position(|h| *h == o))
                            .collect(),
                    )
                };
                Step::Ack {
                    member: member_name(member),
                    select,
                    ty,
                    via: AckVia::ShareAcknowledge,
                    partition: None,
                }
            }
            Action::ExpireLock { .. } => {
                if matches!(steps.last(), Some(Step::WaitLockExpiry)) {
                    state = next;
                    continue;
                }
                Step::WaitLockExpiry
            }
            Action::CloseSession { member } => Step::CloseSession {
                member: member_name(member),
            },
            Action::Disconnect { member } => Step::Disconnect {
                member: member_name(member),
            },
            Action::Crash { member } => Step::Crash {
                member: member_name(member),
            },
            Action::Restart => Step::Restart { hard: false },
        };
        steps.push(step);
        state = next;
    }
    Some(steps)
}

/// The cases generated from the model (standard configuration, delivery limit 3).
pub fn generated() -> Vec<Case> {
    let model = ShareModel::new(Config {
        delivery_limit: GENERATED_DELIVERY_LIMIT,
        ..Config::STANDARD
    });
    let examples = transition_examples(&model);
    let mut seen: BTreeSet<String> = BTreeSet::new();
    let mut out = Vec::new();
    // Single kinds first, so a pair whose path equals a single kind's does not hide it.
    let mut ordered: Vec<_> = examples.iter().collect();
    ordered.sort_by_key(|((first, second), _)| (second.is_some(), *first, *second));
    for ((first, second), trace) in ordered {
        let Some(steps) = steps_of(trace) else {
            continue;
        };
        let key = serde_json::to_string(&steps).unwrap_or_default();
        if !seen.insert(key) {
            continue;
        }
        let last = second.unwrap_or(*first);
        if last == Transition::Renew || *first == Transition::Renew {
            continue;
        }
        let (name, rule, suite) = match second {
            None => (
                format!("model-{}", first.name()),
                format!("the shortest model path to a {} transition: every response is one the spec allows", first.name()),
                Suite::Smoke,
            ),
            Some(s) => (
                format!("model-{}-then-{}", first.name(), s.name()),
                format!("the shortest model path with {} then {}: every response is one the spec allows", first.name(), s.name()),
                if steps.len() <= 9 { Suite::Standard } else { Suite::Full },
            ),
        };
        let requires = if steps.iter().any(|s| matches!(s, Step::Restart { .. })) {
            vec![crate::trace::Capability::Restart]
        } else {
            Vec::new()
        };
        out.push(Case {
            format_version: FORMAT_VERSION,
            id: format!("kip932.{}.{name}", area_of(last)),
            level: Level::Must,
            rule,
            source: "sharecheck model (model/src/model.rs), docs/semantics.md".to_string(),
            suite,
            origin: Origin::Generated,
            settings: Settings {
                delivery_limit: Some(GENERATED_DELIVERY_LIMIT),
                ..Settings::default()
            },
            requires,
            steps,
            notes: None,
            history: None,
            found_by: None,
        });
    }
    out
}

/// The curated cases embedded from `fixtures/cases/`.
pub fn curated() -> Result<Vec<Case>, TraceError> {
    CURATED
        .iter()
        .map(|(name, json)| Case::parse(json, &format!("fixtures/cases/{name}")))
        .collect()
}

/// The whole catalog, sorted by id; ids are unique.
pub fn catalog() -> Result<Vec<Case>, TraceError> {
    let mut cases = curated()?;
    cases.extend(generated());
    cases.sort_by(|a, b| a.id.cmp(&b.id));
    if let Some(w) = cases.windows(2).find(|w| w[0].id == w[1].id) {
        return Err(TraceError::Invalid {
            path: "catalog".into(),
            message: format!("duplicate case id {}", w[0].id),
        });
    }
    Ok(cases)
}

/// The cases of `suite` (smoke ⊂ standard ⊂ full) whose id contains `filter` (a substring, or a
/// glob with `*`).
pub fn select(cases: &[Case], suite: Suite, filter: Option<&str>) -> Vec<Case> {
    cases
        .iter()
        .filter(|c| c.suite <= suite && filter.is_none_or(|f| matches_filter(&c.id, f)))
        .cloned()
        .collect()
}

/// Substring match, or a glob when the pattern has `*`.
pub fn matches_filter(id: &str, pattern: &str) -> bool {
    if !pattern.contains('*') {
        return id.contains(pattern);
    }
    let parts: Vec<&str> = pattern.split('*').collect();
    let mut rest = id;
    for (i, part) in parts.iter().enumerate() {
        if i == 0 {
            if !rest.starts_with(part) {
                return false;
            }
            rest = &rest[part.len()..];
        } else if i == parts.len() - 1 {
            return rest.ends_with(part);
        } else if let Some(pos) = rest.find(part) {
            rest = &rest[pos + part.len()..];
        } else {
            return false;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalog_loads_with_unique_ids_and_areas() {
        let cases = catalog().expect("the embedded catalog is valid");
        assert!(cases.len() >= 60, "{} cases", cases.len());
        for c in &cases {
            assert!(crate::trace::AREAS.contains(&c.area()), "{}", c.id);
        }
        let smoke = select(&cases, Suite::Smoke, None).len();
        let standard = select(&cases, Suite::Standard, None).len();
        assert!(smoke < standard && standard <= cases.len());
    }

    #[test]
    fn generated_cases_cover_every_wire_transition() {
        let cases = generated();
        for kind in Transition::ALL
            .into_iter()
            .filter(|t| *t != Transition::Renew)
        {
            let id = format!("model-{}", kind.name());
            assert!(
                cases.iter().any(|c| c.id.ends_with(&id)),
                "no generated case for {kind:?}"
            );
        }
        assert!(cases.iter().all(|c| c.validate().is_ok()));
    }

    #[test]
    fn filters() {
        assert!(matches_filter("kip932.ack.x", "ack"));
        assert!(matches_filter("kip932.ack.x", "kip932.*.x"));
        assert!(!matches_filter("kip932.ack.x", "kip932.lock.*"));
        assert!(matches_filter("kip932.lock.y", "*lock*"));
    }
}
