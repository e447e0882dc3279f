//! Property-based fuzzing of acknowledgement sequences (`sharecheck fuzz`), shrunk to minimal,
//! replayable conformance cases.
//!
//! **Generation.** A [`FuzzCase`] is a list of member operations ([`Op`]) drawn by proptest
//! strategies ([`case_strategy`]): fetches; acknowledgements of held records with mixed types, by
//! *relative index* into what the member holds (deleting an earlier operation never invalidates
//! a later one, so shrinking works); invalid acknowledgements — records another
//! member holds, records already acknowledged or archived, offsets past the SPEO and below the SPSO,
//! overlapping, unordered and reversed batches, the same offset twice in one request, bad type codes
//! and type counts, wrong share-session epochs; waits for lock expiry; session close; disconnect;
//! silent crash; rejoin. Members are drawn uniformly among several, so interleavings are the norm.
//!
//! **Lowering.** [`lower`] turns a fuzz case into a [`Case`] of [`Step`]s, so every finding is a
//! trace `sharecheck replay` reruns. Valid acknowledgements stay relative (`Step::Ack` with a
//! [`Selection`]) and are resolved by the runner against what the member really holds. Invalid ones
//! need offsets: they are resolved against a *prediction* of the partition (the spec itself, driven
//! as a conforming broker would be) and written as `raw_ack` steps. The prediction only picks
//! offsets; the oracle judges whatever the target does.
//!
//! **Running.** [`Fuzzer::run`] draws case `k` of seed `s` from its own RNG (so the same seed gives
//! the same sequences, whatever the concurrency), runs cases concurrently with
//! the suite's [`Scheduler`], and stops at the first case the oracle fails. That case is shrunk with
//! proptest's value tree (every shrink step reruns against the target, bounded in reruns and time),
//! then step by step, and confirmed by one more rerun: only a failure that reproduces counts.
//!
//! **Timing.** Lock expiry costs real time. Against the in-process reference broker the fuzzer uses
//! a short lock (fuzz-only: real Kafka's floor is 1000 ms) and a small oracle tolerance; fixtures are
//! written with Kafka-legal timing ([`fixture_case`]) and confirmed again that way.

pub mod fixture;
pub mod gen;
pub mod lower;
mod predict;
mod shrink;

pub use fixture::{fixture_case, fixture_file_name, FIXTURE_LOCKS_MS};
pub use gen::{
    case_strategy, case_tree, op_strategy, rng_for, EpochKind, FuzzCase, GenConfig, GenError, Op,
    Pick, Ref, Types, Via, FUZZ_MIN_LOCK_MS, KAFKA_MIN_LOCK_MS, MAX_MEMBERS, MAX_OPS,
};
pub use lower::{case_of, lower, SETTLE_PERCENT};

use crate::oracle::CaseVerdict;
use crate::run::schedule::{Feed, Flow, Scheduler};
use crate::run::{CaseResult, RunOptions};
use crate::target::Target;
use crate::trace::Case;
use proptest::strategy::ValueTree;
use sharecheck_model::spec::Rules;
use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

// ------------------------------------------------------------------------------------------------
// The fuzz loop

/// How a fuzz run goes.
#[derive(Clone, Debug)]
pub struct FuzzOptions {
    /// The seed: case `k` is drawn from `rng_for(seed, k)`.
    pub seed: u64,
    /// Cases to run (at most).
    pub cases: u64,
    /// Stop starting new cases after this long.
    pub time_budget: Option<Duration>,
    /// Cases run at the same time.
    pub jobs: usize,
    /// What to generate.
    pub gen: GenConfig,
    /// Lock duration of every case (the group's `share.record.lock.duration.ms`).
    pub lock_ms: u32,
    /// Runner knobs (oracle tolerance, margin, fetch patience, names).
    pub run: RunOptions,
    /// Most reruns while shrinking.
    pub max_shrink_runs: u32,
    /// Most time spent shrinking.
    pub max_shrink_time: Duration,
}

impl FuzzOptions {
    /// Defaults for `seed` against the in-process reference broker: 256 cases, 64 at a time, a
    /// 200 ms lock, 25 ms of oracle tolerance, 50 ms of fetch patience (a record that should come
    /// back must be missed before its next lock expiry returns it anyway) and 5 ms long polls when
    /// nothing is expected.
    pub fn in_process(seed: u64) -> FuzzOptions {
        FuzzOptions {
            seed,
            cases: 256,
            time_budget: None,
            jobs: 64,
            gen: GenConfig::default(),
            lock_ms: 200,
            run: RunOptions {
                timeout: Duration::from_secs(10),
                fetch_patience: Duration::from_millis(50),
                tolerance_ms: 25,
                margin_ms: 10,
                prefix: format!("sc-fz{seed}"),
                idle_fetch_wait_ms: 5,
                ..RunOptions::default()
            },
            max_shrink_runs: 400,
            max_shrink_time: Duration::from_secs(120),
        }
    }

    /// Defaults for `seed` against a remote broker: Kafka-legal lock (1000 ms), the runner's
    /// default tolerance, 4 cases at a time.
    pub fn remote(seed: u64) -> FuzzOptions {
        FuzzOptions {
            jobs: 4,
            lock_ms: KAFKA_MIN_LOCK_MS,
            run: RunOptions {
                prefix: format!("sc-fz{seed}-{:04x}", std::process::id() & 0xffff),
                ..RunOptions::default()
            },
            ..FuzzOptions::in_process(seed)
        }
    }
}

/// Counts of a fuzz run.
#[derive(Clone, Debug, Default)]
pub struct Tally {
    /// Cases run (not counting shrink reruns).
    pub cases: u64,
    /// Passed.
    pub passed: u64,
    /// Failed.
    pub failed: u64,
    /// Inconclusive.
    pub inconclusive: u64,
    /// Steps run in those cases.
    pub steps: u64,
    /// Wall time of the generation phase (without shrinking).
    pub elapsed: Duration,
    /// The first inconclusive case and why.
    pub first_inconclusive: Option<(u64, String)>,
    /// Whether the time budget stopped the run before `cases`.
    pub budget_hit: bool,
    /// Set when a case found the target gone (connections refused or reset): the run stops.
    pub target_gone: Option<String>,
    /// Cases that could not even be set up (their topic or group configs were refused).
    pub setup_failures: u64,
}

impl Tally {
    /// Cases per second of the generation phase.
    pub fn rate(&self) -> f64 {
        let s = self.elapsed.as_secs_f64();
        if s > 0.0 {
            self.cases as f64 / s
        } else {
            0.0
        }
    }
}

/// A failing case, shrunk and confirmed (or not).
#[derive(Clone, Debug)]
pub struct Finding {
    /// The case number in the run.
    pub index: u64,
    /// The generated case as it first failed.
    pub original: Case,
    /// Its result.
    pub original_result: CaseResult,
    /// The shrunk case.
    pub shrunk: Case,
    /// The shrunk case's failing result.
    pub shrunk_result: CaseResult,
    /// Reruns spent shrinking (cache hits not counted).
    pub shrink_runs: u32,
    /// Time spent shrinking.
    pub shrink_time: Duration,
    /// Whether the shrink budget ran out before shrinking was done.
    pub shrink_budget_hit: bool,
    /// The confirming rerun of the shrunk case, when it failed again.
    pub confirmed: Option<CaseResult>,
}

/// What a fuzz run found.
#[derive(Clone, Debug)]
pub struct FuzzReport {
    /// Counts.
    pub tally: Tally,
    /// The first failure that reproduced, shrunk.
    pub finding: Option<Finding>,
    /// Failures that did not reproduce when rerun.
    pub flaky: Vec<Flaky>,
}

/// A failure that did not reproduce: the case (shrunk, if shrinking got that far), its failing
/// result, and what the rerun gave.
#[derive(Clone, Debug)]
pub struct Flaky {
    /// The case number in the run.
    pub index: u64,
    /// The case that failed once.
    pub case: Case,
    /// Its failing result.
    pub result: CaseResult,
    /// The verdict of the rerun.
    pub rerun: CaseVerdict,
}

/// Most flaky failures a run collects before it stops.
pub const MAX_FLAKY: usize = 3;

/// Runs fuzz cases against one target.
pub struct Fuzzer {
    scheduler: Scheduler,
    opts: FuzzOptions,
    rules: Rules,
}

impl Fuzzer {
    /// A fuzzer for `target` (the prediction uses the target's profile and window limit).
    pub fn new(target: Target, opts: FuzzOptions) -> Fuzzer {
        let rules = Rules {
            delivery_limit: target.delivery_limit,
            max_in_flight: target.max_in_flight,
            ..Rules::kafka_defaults(target.profile)
        };
        Fuzzer {
            scheduler: Scheduler::new(target, opts.run.clone()),
            opts,
            rules,
        }
    }

    /// The options.
    pub fn options(&self) -> &FuzzOptions {
        &self.opts
    }

    /// Case `index` as it runs.
    pub fn case(&self, index: u64) -> Result<Case, GenError> {
        let tree = case_tree(&self.opts.gen, self.opts.seed, index)?;
        Ok(self.lowered(&tree.current(), index))
    }

    fn lowered(&self, fc: &FuzzCase, index: u64) -> Case {
        case_of(fc, index, &self.opts.gen, &self.rules, self.opts.lock_ms)
    }

    /// Runs one case on the target (a fresh topic and group each time).
    pub async fn run_one(&self, case: &Case) -> CaseResult {
        self.scheduler.run_one(case).await
    }

    /// Runs up to `opts.cases` cases, `opts.jobs` at a time, until the first failure that
    /// reproduces: it is rerun once before shrinking, shrunk, and rerun once more to confirm. A
    /// failure that does not reproduce is kept as flaky and the run goes on (at most
    /// [`MAX_FLAKY`] of them). `progress(tally)` is called after each case.
    pub async fn run(&self, progress: &mut dyn FnMut(&Tally)) -> FuzzReport {
        let started = Instant::now();
        let mut gen = Generation {
            fuzzer: self,
            started,
            next: 0,
            tally: Tally::default(),
            trees: HashMap::new(),
            failures: BTreeMap::new(),
            progress,
        };
        let mut flaky: Vec<Flaky> = Vec::new();
        let mut generation = Duration::ZERO;
        loop {
            let phase = Instant::now();
            self.scheduler.run(self.opts.jobs, &mut gen).await;
            generation += phase.elapsed();
            // Lowest-numbered failure first: every case before it was started, so the choice does
            // not depend on which cases happened to run beside each other.
            for (index, (case, result)) in std::mem::take(&mut gen.failures) {
                let Some(tree) = gen.trees.remove(&index) else {
                    continue;
                };
                if flaky.len() >= MAX_FLAKY {
                    continue;
                }
                let again = self.run_one(&case).await;
                if again.verdict != CaseVerdict::Fail {
                    flaky.push(Flaky {
                        index,
                        case,
                        result,
                        rerun: again.verdict,
                    });
                    continue;
                }
                let finding = self.shrink(index, tree, case.clone(), result.clone()).await;
                if finding.confirmed.is_some() {
                    gen.tally.elapsed = generation;
                    return FuzzReport {
                        tally: gen.tally,
                        finding: Some(finding),
                        flaky,
                    };
                }
                flaky.push(Flaky {
                    index,
                    case: finding.shrunk,
                    result: finding.shrunk_result,
                    rerun: CaseVerdict::Pass,
                });
            }
            gen.trees.clear();
            let budget_over = gen.budget_over();
            if gen.next >= self.opts.cases || flaky.len() >= MAX_FLAKY || budget_over || gen.gone()
            {
                if budget_over && gen.next < self.opts.cases {
                    gen.tally.budget_hit = true;
                }
                break;
            }
        }
        gen.tally.elapsed = generation;
        FuzzReport {
            tally: gen.tally,
            finding: None,
            flaky,
        }
    }
}

/// The generation phase as the scheduler's feed: draws case after case until a failure, the case
/// count or the time budget stops it.
struct Generation<'a> {
    fuzzer: &'a Fuzzer,
    started: Instant,
    next: u64,
    tally: Tally,
    trees: HashMap<u64, Box<dyn ValueTree<Value = FuzzCase>>>,
    failures: BTreeMap<u64, (Case, CaseResult)>,
    progress: &'a mut dyn FnMut(&Tally),
}

impl Generation<'_> {
    fn budget_over(&self) -> bool {
        self.fuzzer
            .opts
            .time_budget
            .is_some_and(|b| self.started.elapsed() >= b)
    }

    fn gone(&self) -> bool {
        self.tally.target_gone.is_some()
    }
}

impl Feed for Generation<'_> {
    fn next(&mut self) -> Option<(u64, Case)> {
        let total = self.fuzzer.opts.cases;
        loop {
            if !self.failures.is_empty() || self.next >= total || self.gone() {
                return None;
            }
            if self.budget_over() {
                self.tally.budget_hit = true;
                return None;
            }
            let index = self.next;
            self.next += 1;
            match case_tree(&self.fuzzer.opts.gen, self.fuzzer.opts.seed, index) {
                Ok(tree) => {
                    let case = self.fuzzer.lowered(&tree.current(), index);
                    self.trees.insert(index, tree);
                    return Some((index, case));
                }
                Err(why) => {
                    self.tally.cases += 1;
                    self.tally.inconclusive += 1;
                    self.tally.first_inconclusive.get_or_insert((index, why.0));
                }
            }
        }
    }

    fn done(&mut self, index: u64, case: Case, result: CaseResult) -> Flow {
        let t = &mut self.tally;
        t.cases += 1;
        t.steps += result.steps.len() as u64;
        if matches!(
            result.history.first(),
            Some(crate::history::Event::SetupFailed { .. })
        ) {
            t.setup_failures += 1;
        }
        if let Some(why) = &result.unreachable {
            t.target_gone
                .get_or_insert_with(|| format!("{}: {why}", result.id));
        }
        match result.verdict {
            CaseVerdict::Pass | CaseVerdict::Skipped => {
                t.passed += 1;
                self.trees.remove(&index);
            }
            CaseVerdict::Inconclusive => {
                t.inconclusive += 1;
                if t.first_inconclusive
                    .as_ref()
                    .is_none_or(|(i, _)| index < *i)
                {
                    t.first_inconclusive = Some((index, result.reason.clone().unwrap_or_default()));
                }
                self.trees.remove(&index);
            }
            CaseVerdict::Fail => {
                t.failed += 1;
                self.failures.insert(index, (case, result));
            }
        }
        (self.progress)(&self.tally);
        if self.gone() {
            Flow::Stop
        } else {
            Flow::Continue
        }
    }
}

#[cfg(test)]
mod tests;
