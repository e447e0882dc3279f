//! One model-checking run over a [`Config`]: Stateright for the safety and reachability properties,
//! [`crate::graph`] for liveness and transition coverage, and one single-property breadth-first run
//! per violated safety property for its shortest counterexample (the checkers' own paths need not
//! be shortest). The session and design models are checked by [`breadth_first`] alone.

use crate::graph::{self, Trace};
use crate::model::{Action, Config, Prop, PropKind, ShareModel, State, Transition, SAFETY};
use serde::Serialize;
use stateright::{Checker, Model, Path};
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
/// also the number of unique states and each violated property's path as actions (for export).
/// The second and third models (sessions, design) use it.
#[allow(clippy::type_complexity)]
pub fn check_props<M>(
    model: M,
    props: impl IntoIterator<Item = (&'static str, PropKind)>,
    live: Option<&Quiet<'_, M>>,
    table: impl Fn(&M::State) -> Vec<String> + Copy,
) -> (
    Vec<PropertyReport>,
    usize,
    Vec<(&'static str, Vec<M::Action>)>,
)
where
    M: Model + Send + Sync + 'static,
    M::State: std::fmt::Debug + std::hash::Hash + Clone + PartialEq + Send + Sync + 'static,
    M::Action: std::fmt::Display + std::fmt::Debug + Clone + PartialEq + Send + Sync + 'static,
{
    let search = breadth_first(&model, false, live, &mut |_| {});
    let mut paths = Vec::new();
    let reports = props
        .into_iter()
        .map(|(name, kind)| {
            // The one liveness property is the `live` one.
            let found = match kind {
                PropKind::Liveness => search.stuck.clone(),
                _ => search.found.get(name).cloned(),
            };
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
                    found.map(|p| {
                        paths.push((name, p.clone().into_actions()));
                        steps_of(p, table)
                    })
                } else {
                    None
                },
            }
        })
        .collect();
    (reports, search.unique, paths)
}

fn fingerprint<T: std::hash::Hash>(t: &T) -> u64 {
    use std::hash::Hasher;
    // SipHash with fixed keys: the same fingerprints on every run.
    let mut h = std::collections::hash_map::DefaultHasher::new();
    t.hash(&mut h);
    h.finish()
}

/// Where a state was first generated from: its parent's index and the index of the action (in
/// `Model::actions` order) that led from it; an initial state is its own parent, the action its
/// index among the initial states.
#[derive(Clone, Copy)]
struct Origin {
    parent: u32,
    action: u32,
}

/// Each state's index (in the order first generated), by fingerprint.
type Indices =
    std::collections::HashMap<u64, u32, std::hash::BuildHasherDefault<crate::graph::PassThrough>>;

/// Each property's first state as a path, by property name.
pub type Found<M> =
    std::collections::HashMap<&'static str, Path<<M as Model>::State, <M as Model>::Action>>;

/// A liveness property `AG EF goal` over the *quiet* steps: from every reachable state, steps
/// that `quiet` admits (no more faults) can still reach a state satisfying `goal`. Under fair
/// scheduling of a finite graph that is "once faults stop, the goal is eventually reached".
pub struct Quiet<'a, M: Model> {
    /// The state every quiet run must be able to reach.
    pub goal: &'a dyn Fn(&M::State) -> bool,
    /// Whether a step is one that goes on after faults stop.
    pub quiet: &'a dyn Fn(&M::Action) -> bool,
}

/// What [`breadth_first`] found.
pub struct Search<M: Model> {
    /// Each property's first state as a path.
    pub found: Found<M>,
    /// Unique states.
    pub unique: usize,
    /// With a [`Quiet`] property: a shortest path to a state from which no quiet run reaches
    /// the goal, if there is one.
    pub stuck: Option<Path<M::State, M::Action>>,
}

/// A strict breadth-first search of `model` on one thread: for each always property the first
/// state in breadth-first order that violates it, for each sometimes property the first that
/// satisfies it — so every path is a shortest one — and the number of unique states (eventually
/// properties are not evaluated). With `stop_when_found`, it stops once every property has one.
/// With `live`, it also keeps the quiet steps between states and then searches backwards from the
/// goal states: any reachable state not reached backwards breaks the property, and the first
/// such in breadth-first order gives a shortest path (`live` explores the whole graph).
///
/// Stateright 0.31's own breadth-first checker is not used for this: it records the *last*
/// violating state it pops, not the first (`checker/bfs.rs:262` inserts the discovery on every
/// violating state), and a sticky violation is then reported through a path that runs on past
/// the step that broke the promise, and its worker hands work through a job market, so the order is
/// not strictly breadth-first either. Its `eventually` properties are checked only at terminal
/// states, which a quiet cycle never reaches.
pub fn breadth_first<M>(
    model: &M,
    stop_when_found: bool,
    live: Option<&Quiet<'_, M>>,
    progress: &mut dyn FnMut(usize),
) -> Search<M>
where
    M: Model,
    M::State: std::hash::Hash + Clone + PartialEq,
    M::Action: Clone + PartialEq,
{
    use stateright::Expectation;
    use std::collections::VecDeque;
    let stop_when_found = stop_when_found && live.is_none();
    let props: Vec<_> = model
        .properties()
        .into_iter()
        .filter(|p| p.expectation != Expectation::Eventually)
        .collect();
    let mut found: Vec<Option<u32>> = vec![None; props.len()];
    let mut indices = Indices::default();
    let mut origins: Vec<Origin> = Vec::new();
    // With `live`: the quiet steps as (to, from), and which states are goals.
    let mut quiet_edges: Vec<(u32, u32)> = Vec::new();
    let mut goals: Vec<bool> = Vec::new();
    let mut queue = VecDeque::new();
    for (i, s) in model.init_states().into_iter().enumerate() {
        let fp = fingerprint(&s);
        let idx = origins.len() as u32;
        if let std::collections::hash_map::Entry::Vacant(e) = indices.entry(fp) {
            e.insert(idx);
            origins.push(Origin {
                parent: idx,
                action: i as u32,
            });
            queue.push_back((s, idx));
        }
    }
    let mut actions = Vec::new();
    let mut popped = 0usize;
    while let Some((state, idx)) = queue.pop_front() {
        popped += 1;
        if popped.is_multiple_of(1 << 16) {
            progress(indices.len());
        }
        for (p, slot) in props.iter().zip(found.iter_mut()) {
            if slot.is_none() {
                let hit = match p.expectation {
                    Expectation::Always => !(p.condition)(model, &state),
                    _ => (p.condition)(model, &state),
                };
                if hit {
                    *slot = Some(idx);
                }
            }
        }
        if let Some(live) = live {
            goals.push((live.goal)(&state));
        }
        if stop_when_found && found.iter().all(Option::is_some) {
            break;
        }
        model.actions(&state, &mut actions);
        for (i, action) in actions.drain(..).enumerate() {
            let quiet = live.is_some_and(|l| (l.quiet)(&action));
            let Some(next) = model.next_state(&state, action) else {
                continue;
            };
            if !model.within_boundary(&next) {
                continue;
            }
            let nfp = fingerprint(&next);
            let next_idx = match indices.entry(nfp) {
                std::collections::hash_map::Entry::Occupied(e) => *e.get(),
                std::collections::hash_map::Entry::Vacant(e) => {
                    let n = origins.len() as u32;
                    e.insert(n);
                    origins.push(Origin {
                        parent: idx,
                        action: i as u32,
                    });
                    queue.push_back((next, n));
                    n
                }
            };
            if quiet {
                quiet_edges.push((next_idx, idx));
            }
        }
    }
    let stuck = live.and_then(|_| {
        // Backwards from the goals over the quiet steps; states are indexed in breadth-first
        // order, so the lowest unmarked index is a nearest stuck state.
        quiet_edges.sort_unstable();
        let mut starts = vec![0usize; goals.len() + 1];
        for &(to, _) in &quiet_edges {
            starts[to as usize + 1] += 1;
        }
        for i in 0..goals.len() {
            starts[i + 1] += starts[i];
        }
        let mut marked = goals.clone();
        let mut stack: Vec<u32> = (0..goals.len() as u32)
            .filter(|&i| goals[i as usize])
            .collect();
        while let Some(to) = stack.pop() {
            let to = to as usize;
            for &(_, from) in &quiet_edges[starts[to]..starts[to + 1]] {
                if !marked[from as usize] {
                    marked[from as usize] = true;
                    stack.push(from);
                }
            }
        }
        let first = marked.iter().position(|m| !m)?;
        Some(path_to(model, &origins, first as u32))
    });
    let found = props
        .iter()
        .zip(&found)
        .filter_map(|(p, idx)| Some((p.name, path_to(model, &origins, (*idx)?))))
        .collect();
    Search {
        found,
        unique: indices.len(),
        stuck,
    }
}

/// Replays the recorded origins from an initial state to the state with index `idx`.
fn path_to<M>(model: &M, origins: &[Origin], mut idx: u32) -> Path<M::State, M::Action>
where
    M: Model,
    M::State: Clone + PartialEq,
    M::Action: Clone + PartialEq,
{
    let mut steps = Vec::new();
    let init = loop {
        let o = origins[idx as usize];
        if o.parent == idx {
            break o.action as usize;
        }
        steps.push(o.action as usize);
        idx = o.parent;
    };
    steps.reverse();
    let first = model.init_states().swap_remove(init);
    let mut state = first.clone();
    let mut taken = Vec::with_capacity(steps.len());
    for i in steps {
        let mut actions = Vec::new();
        model.actions(&state, &mut actions);
        let action = actions.swap_remove(i);
        state = model
            .next_state(&state, action.clone())
            .expect("a recorded step replays (the model is deterministic)");
        taken.push(action);
    }
    Path::from_actions(model, first, taken.iter())
        .expect("a recorded path replays (the model is deterministic)")
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

/// The shortest counterexample to one safety property: a strict breadth-first run
/// ([`breadth_first`]) that checks only that property and stops at its first violation.
pub fn shortest_counterexample(
    config: Config,
    prop: Prop,
    progress: &mut dyn FnMut(Phase, usize),
) -> Option<Vec<Step>> {
    let model = ShareModel::new(config).only(prop);
    let mut search = breadth_first(&model, true, None, &mut |n| {
        progress(Phase::Counterexample(prop), n)
    });
    search.found.remove(prop.name()).map(steps_of_path)
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
        .filter(|t| t.happens_in(&config))
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
