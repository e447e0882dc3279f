//! One model-checking run over a [`Config`]: Stateright for the safety and reachability properties,
//! [`crate::graph`] for liveness and transition coverage, and one single-property breadth-first run
//! per violated safety property for its shortest counterexample (the checkers' own paths need not
//! be shortest).

use crate::graph::{self, Trace};
use crate::model::{Action, Config, Prop, PropKind, ShareModel, State, Transition, SAFETY};
use serde::Serialize;
use stateright::{Checker, HasDiscoveries, Model, Path};
use std::time::Duration;

/// The outcome of one property.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    /// An always/liveness property with no counterexample.
    Holds,
    /// An always/liveness property with a counterexample.
    Violated,
    /// A sometimes property with an example.
    Reached,
    /// A sometimes property without one.
    Unreached,
}

/// One step of a counterexample: the action taken (none for the initial state) and the record table
/// after it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Step {
    /// 0 for the initial state.
    pub step: usize,
    /// What happened.
    pub action: Option<String>,
    /// Each record after it, one line per offset.
    pub records: Vec<String>,
}

/// A property's result.
#[derive(Clone, Debug, Serialize)]
pub struct PropertyReport {
    /// Stable name.
    pub name: String,
    /// always / sometimes / liveness.
    pub kind: PropKind,
    /// holds / violated / reached / unreached.
    pub status: Status,
    /// For a violated property, the shortest path to the violation; otherwise `null`.
    pub counterexample: Option<Vec<Step>>,
}

/// Pass when every safety and liveness property holds and every reachability property is reached.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    /// Everything holds.
    Pass,
    /// Something is violated or unreached.
    Fail,
}

/// The result of [`check`].
#[derive(Clone, Debug, Serialize)]
pub struct CheckReport {
    /// pass / fail.
    pub verdict: Verdict,
    /// The configuration checked.
    pub config: Config,
    /// Unique states (one per member permutation).
    pub states_unique: usize,
    /// States generated, duplicates included.
    pub states_total: usize,
    /// Longest shortest path from the initial state.
    pub max_depth: usize,
    /// Wall time, filled in by the caller (this crate reads no clock).
    pub elapsed_ms: u64,
    /// Every property, safety first.
    pub properties: Vec<PropertyReport>,
}

/// Which phase a progress report is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// The Stateright depth-first search over all properties.
    Safety,
    /// The graph pass for liveness and coverage.
    Liveness,
    /// A breadth-first search for one property's shortest counterexample.
    Counterexample(Prop),
}

/// Renders a Stateright path of the share-partition model as numbered steps.
pub fn steps_of_path(path: Path<State, Action>) -> Vec<Step> {
    steps_of(path, State::table)
}

/// Checks `model` breadth-first on one thread (each counterexample a shortest one) and reports
/// `props` (name, kind) from what it discovered, each violation's path rendered with `table`;
/// also the number of unique states. The second and third models (sessions, design) use it.
pub fn check_props<M>(
    model: M,
    props: impl IntoIterator<Item = (&'static str, PropKind)>,
    table: impl Fn(&M::State) -> Vec<String> + Copy,
) -> (Vec<PropertyReport>, usize)
where
    M: Model + Send + Sync + 'static,
    M::State: std::fmt::Debug + std::hash::Hash + Clone + PartialEq + Send + Sync + 'static,
    M::Action: std::fmt::Display + std::fmt::Debug + Clone + PartialEq + Send + Sync + 'static,
{
    let checker = model.checker().threads(1).spawn_bfs().join();
    let discoveries = checker.discoveries();
    let reports = props
        .into_iter()
        .map(|(name, kind)| {
            let found = discoveries.get(name).cloned();
            let status = match (kind, found.is_some()) {
                (PropKind::Sometimes, true) => Status::Reached,
                (PropKind::Sometimes, false) => Status::Unreached,
                (_, true) => Status::Violated,
                (_, false) => Status::Holds,
            };
            PropertyReport {
                name: name.to_string(),
                kind,
                status,
                counterexample: if status == Status::Violated {
                    found.map(|p| steps_of(p, table))
                } else {
                    None
                },
            }
        })
        .collect();
    (reports, checker.unique_state_count())
}

/// Renders a Stateright path of any model as numbered steps, each state as `table` lines.
pub fn steps_of<S, A: std::fmt::Display>(
    path: Path<S, A>,
    table: impl Fn(&S) -> Vec<String>,
) -> Vec<Step> {
    let mut out = Vec::new();
    let mut pending: Option<String> = None;
    for (i, (state, action)) in path.into_vec().into_iter().enumerate() {
        out.push(Step {
            step: i,
            action: pending.take(),
            records: table(&state),
        });
        pending = action.map(|a| a.to_string());
    }
    out
}

/// Renders a graph trace as numbered steps.
pub fn steps_of_trace(trace: &Trace) -> Vec<Step> {
    let mut out = vec![Step {
        step: 0,
        action: None,
        records: trace.init.table(),
    }];
    for (i, (action, state)) in trace.steps.iter().enumerate() {
        out.push(Step {
            step: i + 1,
            action: Some(action.to_string()),
            records: state.table(),
        });
    }
    out
}

fn join_with_progress<C: Checker<ShareModel>>(
    checker: C,
    phase: Phase,
    progress: &mut dyn FnMut(Phase, usize),
) -> C {
    // Poll often (a standard check takes a tenth of a second), report a few times a second.
    let mut polls = 0u32;
    while !checker.is_done() {
        if polls.is_multiple_of(40) {
            progress(phase, checker.unique_state_count());
        }
        polls += 1;
        std::thread::sleep(Duration::from_millis(5));
    }
    checker.join()
}

/// The shortest counterexample to one safety property: a single-threaded breadth-first run that
/// checks only that property and stops at its first violation.
pub fn shortest_counterexample(
    config: Config,
    prop: Prop,
    progress: &mut dyn FnMut(Phase, usize),
) -> Option<Vec<Step>> {
    let model = ShareModel::new(config).only(prop);
    let checker = model
        .checker()
        .threads(1)
        .finish_when(HasDiscoveries::AnyFailures)
        .spawn_bfs();
    let checker = join_with_progress(checker, Phase::Counterexample(prop), progress);
    checker.discovery(prop.name()).map(steps_of_path)
}

/// Model-checks `config`. `progress` is called a few times a second with the phase and the number of
/// unique states so far.
pub fn check(config: Config, progress: &mut dyn FnMut(Phase, usize)) -> CheckReport {
    let model = ShareModel::new(config);
    // First every safety property as one conjunction (fast); only when it fails, each on its own,
    // so the report names every violated property.
    let fast = model
        .safety_conjunction()
        .checker()
        .threads(1)
        .symmetry()
        .spawn_dfs();
    let mut checker = join_with_progress(fast, Phase::Safety, progress);
    if checker.discoveries().contains_key(SAFETY) {
        let each = model.clone().checker().threads(1).symmetry().spawn_dfs();
        checker = join_with_progress(each, Phase::Safety, progress);
    }
    let states_unique = checker.unique_state_count();
    let states_total = checker.state_count();
    let discoveries = checker.discoveries();

    let mut properties = Vec::new();
    for prop in Prop::SAFETY {
        let violated = discoveries.contains_key(prop.name());
        let counterexample = if violated {
            shortest_counterexample(config, prop, progress)
        } else {
            None
        };
        properties.push(PropertyReport {
            name: prop.name().to_string(),
            kind: PropKind::Always,
            status: if violated {
                Status::Violated
            } else {
                Status::Holds
            },
            counterexample,
        });
    }
    for prop in Prop::REACH {
        let reached = discoveries.contains_key(prop.name());
        properties.push(PropertyReport {
            name: prop.name().to_string(),
            kind: PropKind::Sometimes,
            status: if reached {
                Status::Reached
            } else {
                Status::Unreached
            },
            counterexample: None,
        });
    }

    let mut graph_progress = |n| progress(Phase::Liveness, n);
    let exploration = graph::explore_with_progress(&model, &mut graph_progress);
    for kind in Transition::ALL
        .into_iter()
        .filter(|t| t.applies_to(&config.profile))
    {
        properties.push(PropertyReport {
            name: format!("covers-{}", kind.name()),
            kind: PropKind::Sometimes,
            status: if exploration.coverage.contains_key(&kind) {
                Status::Reached
            } else {
                Status::Unreached
            },
            counterexample: None,
        });
    }
    let live = exploration.liveness_counterexample.as_ref();
    properties.push(PropertyReport {
        name: Prop::EventuallyAllTerminal.name().to_string(),
        kind: PropKind::Liveness,
        status: if live.is_some() {
            Status::Violated
        } else {
            Status::Holds
        },
        counterexample: live.map(steps_of_trace),
    });

    // The share-session epoch rules are a model of their own (no profile differs in them).
    let (sessions, _) = crate::session_model::check_sessions();
    properties.extend(sessions);

    let pass = properties
        .iter()
        .all(|p| matches!(p.status, Status::Holds | Status::Reached));
    CheckReport {
        verdict: if pass { Verdict::Pass } else { Verdict::Fail },
        config,
        states_unique,
        states_total,
        max_depth: exploration.max_depth,
        elapsed_ms: 0,
        properties,
    }
}
