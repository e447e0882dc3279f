//! Explicit-state exploration of the whole model graph, for what Stateright's checkers cannot do
//! soundly: liveness and transition coverage.
//!
//! Stateright 0.31 reports `eventually` counterexamples only at terminal states, so a path that loops
//! forever without reaching the goal goes unnoticed. Here the reachable graph is
//! built once (breadth-first, one state per member permutation), and then:
//!
//! - **liveness** (`AG EF goal`): a backward search from the goal states marks every state that can
//!   still reach the goal; any other reachable state is a counterexample, and the breadth-first parent
//!   links give the shortest path to it;
//! - **coverage**: the first edge exercising each [`Transition`] kind gives a shortest example of it.
//!
//! States with a violated safety property have no successors; they are neither goals nor
//! counterexamples here (the safety check reports them).

use crate::model::{Action, Config, ShareModel, State, Transition, Transitions};
use stateright::{Model, Representative};
use std::collections::{BTreeMap, HashMap};

/// A path through the model: the initial state, then each action with the state it leads to.
#[derive(Clone, Debug)]
pub struct Trace {
    /// The initial state.
    pub init: State,
    /// Each step.
    pub steps: Vec<(Action, State)>,
}

/// What exploring the whole graph found.
#[derive(Clone, Debug)]
pub struct Exploration {
    /// Unique states (one per member permutation).
    pub unique_states: usize,
    /// Edges explored (successor computations that produced a state).
    pub edges: usize,
    /// Longest shortest path from the initial state.
    pub max_depth: usize,
    /// For each transition kind reached, a shortest example ending with it.
    pub coverage: BTreeMap<Transition, Trace>,
    /// A shortest path to a state from which the liveness goal is unreachable, if any.
    pub liveness_counterexample: Option<Trace>,
}

/// A map keyed by fingerprints, which are hashes already: the map uses them as they are.
type FingerprintMap = HashMap<u64, u32, std::hash::BuildHasherDefault<PassThrough>>;

/// The hasher of [`FingerprintMap`]: a `u64` key is its own hash.
#[derive(Default)]
pub(crate) struct PassThrough(u64);

impl std::hash::Hasher for PassThrough {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*b);
        }
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = v;
    }
}

fn fingerprint(s: &State) -> u64 {
    // Fixed seeds: the same state gets the same fingerprint in every run.
    let hasher = ahash::RandomState::with_seeds(0x5eed, 0x4b49_5039, 0x3332, 0x7368_6172);
    hasher.hash_one(s.representative())
}

/// Explores every state reachable in `model` (ignoring its property filter).
pub fn explore(model: &ShareModel) -> Exploration {
    explore_with_progress(model, &mut |_| {})
}

/// As [`explore`], calling `progress` with the unique-state count every 65,536 states.
pub fn explore_with_progress(model: &ShareModel, progress: &mut dyn FnMut(usize)) -> Exploration {
    let config: Config = model.config;
    let mut states: Vec<State> = Vec::new();
    let mut parent: Vec<(u32, Option<Action>)> = Vec::new();
    let mut depth: Vec<u32> = Vec::new();
    let mut index = FingerprintMap::default();
    let mut edges: Vec<(u32, u32)> = Vec::new();
    let mut first_edge: BTreeMap<Transition, (u32, Action, State)> = BTreeMap::new();
    let mut covered = Transitions::default();

    for init in model.init_states() {
        let fp = fingerprint(&init);
        if let std::collections::hash_map::Entry::Vacant(e) = index.entry(fp) {
            e.insert(states.len() as u32);
            states.push(init);
            parent.push((u32::MAX, None));
            depth.push(0);
        }
    }
    let mut actions = Vec::new();
    let mut next = 0usize;
    while next < states.len() {
        let from = next as u32;
        actions.clear();
        model.actions(&states[next], &mut actions);
        for action in actions.drain(..) {
            let Some((succ, kinds)) = model.step(&states[next], &action) else {
                continue;
            };
            if kinds.0 & !covered.0 != 0 {
                for kind in kinds.iter().filter(|k| !covered.contains(*k)) {
                    first_edge.insert(kind, (from, action, succ.clone()));
                }
                covered.extend(kinds);
            }
            let fp = fingerprint(&succ);
            let to = match index.get(&fp) {
                Some(&i) => i,
                None => {
                    let i = states.len() as u32;
                    index.insert(fp, i);
                    states.push(succ);
                    parent.push((from, Some(action)));
                    depth.push(depth[next] + 1);
                    if states.len().is_multiple_of(65_536) {
                        progress(states.len());
                    }
                    i
                }
            };
            edges.push((from, to));
        }
        next += 1;
    }

    let trace_to = |target: u32| -> Trace {
        let mut rev = Vec::new();
        let mut at = target;
        while let (p, Some(a)) = parent[at as usize] {
            rev.push((a, states[at as usize].clone()));
            at = p;
        }
        rev.reverse();
        Trace {
            init: states[at as usize].clone(),
            steps: rev,
        }
    };

    let coverage = first_edge
        .into_iter()
        .map(|(kind, (from, action, succ))| {
            let mut t = trace_to(from);
            t.steps.push((action, succ));
            (kind, t)
        })
        .collect();

    // Backward reachability from the goal states over reversed edges (compressed sparse rows).
    let n = states.len();
    let mut start = vec![0u32; n + 1];
    for &(_, to) in &edges {
        start[to as usize + 1] += 1;
    }
    for i in 0..n {
        start[i + 1] += start[i];
    }
    let mut preds = vec![0u32; edges.len()];
    let mut fill = start.clone();
    for &(from, to) in &edges {
        preds[fill[to as usize] as usize] = from;
        fill[to as usize] += 1;
    }
    let edge_count = edges.len();
    drop(edges);
    let mut can_reach = vec![false; n];
    let mut stack: Vec<u32> = Vec::new();
    for (i, s) in states.iter().enumerate() {
        if s.violations == 0 && s.all_done(&config) {
            can_reach[i] = true;
            stack.push(i as u32);
        }
    }
    while let Some(i) = stack.pop() {
        for &p in &preds[start[i as usize] as usize..start[i as usize + 1] as usize] {
            if !can_reach[p as usize] {
                can_reach[p as usize] = true;
                stack.push(p);
            }
        }
    }
    // States are numbered in breadth-first order, so the first stuck one has a shortest path.
    let stuck = (0..n).find(|&i| !can_reach[i] && states[i].violations == 0);

    Exploration {
        unique_states: n,
        edges: edge_count,
        max_depth: depth.iter().copied().max().unwrap_or(0) as usize,
        coverage,
        liveness_counterexample: stuck.map(|i| trace_to(i as u32)),
    }
}

/// Shortest example traces for every transition kind and for every ordered pair of kinds (a path
/// on which an edge of the first kind is followed, later, by an edge of the second). The conformance
/// suite turns them into cases, so every transition kind — and every pair — the model has is
/// exercised against a real broker.
pub fn transition_examples(
    model: &ShareModel,
) -> BTreeMap<(Transition, Option<Transition>), Trace> {
    // Build the graph with labelled edges.
    let mut states: Vec<State> = Vec::new();
    let mut index = FingerprintMap::default();
    let mut edges: Vec<Vec<(u32, Action, Transitions)>> = Vec::new();
    for init in model.init_states() {
        index.entry(fingerprint(&init)).or_insert_with(|| {
            states.push(init);
            edges.push(Vec::new());
            (states.len() - 1) as u32
        });
    }
    let mut actions = Vec::new();
    let mut next = 0usize;
    while next < states.len() {
        actions.clear();
        model.actions(&states[next], &mut actions);
        for action in actions.drain(..) {
            let Some((succ, kinds)) = model.step(&states[next], &action) else {
                continue;
            };
            let fp = fingerprint(&succ);
            let to = match index.get(&fp) {
                Some(&i) => i,
                None => {
                    let i = states.len() as u32;
                    index.insert(fp, i);
                    states.push(succ);
                    edges.push(Vec::new());
                    i
                }
            };
            edges[next].push((to, action, kinds));
        }
        next += 1;
    }
    let mut out = BTreeMap::new();
    // Product breadth-first search over (state, saw-the-first-kind) for each first kind; `None`
    // as the first kind finds single-kind examples.
    let firsts: Vec<Option<Transition>> = std::iter::once(None)
        .chain(Transition::ALL.into_iter().map(Some))
        .collect();
    for first in firsts {
        let n = states.len();
        let mut parent: Vec<Option<(u32, usize, usize)>> = vec![None; 2 * n];
        let mut seen = vec![false; 2 * n];
        let mut queue = std::collections::VecDeque::new();
        let start_flag = usize::from(first.is_none());
        seen[start_flag * n] = true;
        queue.push_back((0u32, start_flag));
        while let Some((i, flag)) = queue.pop_front() {
            for (e, (to, _, kinds)) in edges[i as usize].iter().enumerate() {
                if flag == 1 {
                    for second in kinds.iter() {
                        let key = match first {
                            None => (second, None),
                            Some(f) => (f, Some(second)),
                        };
                        if out.contains_key(&key) {
                            continue;
                        }
                        // Rebuild the path: parents back to the start, then this edge.
                        let mut rev = Vec::new();
                        let mut at = (i, flag);
                        while let Some((p, pflag, pe)) = parent[at.1 * n + at.0 as usize] {
                            let (pto, paction, _) = &edges[p as usize][pe];
                            rev.push((*paction, states[*pto as usize].clone()));
                            at = (p, pflag);
                        }
                        rev.reverse();
                        let (_, action, _) = &edges[i as usize][e];
                        rev.push((*action, states[*to as usize].clone()));
                        out.insert(
                            key,
                            Trace {
                                init: states[0].clone(),
                                steps: rev,
                            },
                        );
                    }
                }
                let to_flag = if flag == 1 || first.is_some_and(|f| kinds.contains(f)) {
                    1
                } else {
                    0
                };
                let slot = to_flag * n + *to as usize;
                if !seen[slot] {
                    seen[slot] = true;
                    parent[slot] = Some((i, flag, e));
                    queue.push_back((*to, to_flag));
                }
            }
        }
    }
    out
}
