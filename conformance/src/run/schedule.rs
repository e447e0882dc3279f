//! One case scheduler for every command that runs many cases (`conform`, `fuzz`): up to `jobs`
//! cases at a time, each on its own topic and group, with results handed back as they finish.
//!
//! What to start next and what to do with a result is the caller's [`Feed`]; the scheduler only
//! keeps `jobs` cases in flight, numbers their topics, and drains what is running when the feed
//! says stop.

use super::{run_case, CaseResult, RunOptions};
use crate::target::Target;
use crate::trace::Case;
use futures::FutureExt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// Whether to keep starting cases.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flow {
    /// Start more.
    Continue,
    /// Start no more (those running still finish and are handed back).
    Stop,
}

/// The caller's side of a scheduled run.
pub trait Feed {
    /// The next case to start (with the caller's index for it), or `None` when nothing more
    /// should start now.
    fn next(&mut self) -> Option<(u64, Case)>;
    /// A case finished.
    fn done(&mut self, index: u64, case: Case, result: CaseResult) -> Flow;
}

/// Runs cases against one target, numbering their topics uniquely across every call.
#[derive(Clone)]
pub struct Scheduler {
    target: Target,
    opts: RunOptions,
    serial: Arc<AtomicUsize>,
}

impl Scheduler {
    /// A scheduler for `target` with the runner's options.
    pub fn new(target: Target, opts: RunOptions) -> Scheduler {
        Scheduler {
            target,
            opts,
            serial: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// The target.
    pub fn target(&self) -> &Target {
        &self.target
    }

    /// The runner's options.
    pub fn options(&self) -> &RunOptions {
        &self.opts
    }

    /// Runs one case now.
    pub async fn run_one(&self, case: &Case) -> CaseResult {
        let serial = self.serial.fetch_add(1, Ordering::Relaxed);
        run_case(&self.target, &self.opts, case, serial).await
    }

    /// Runs what `feed` gives, `jobs` at a time, until it gives nothing more or says stop, and
    /// every started case has been handed back.
    pub async fn run(&self, jobs: usize, feed: &mut dyn Feed) {
        let jobs = jobs.max(1);
        let mut set = tokio::task::JoinSet::new();
        let mut flow = Flow::Continue;
        loop {
            while flow == Flow::Continue && set.len() < jobs {
                let Some((index, case)) = feed.next() else {
                    break;
                };
                let (target, opts) = (self.target.clone(), self.opts.clone());
                let serial = self.serial.fetch_add(1, Ordering::Relaxed);
                set.spawn(async move {
                    let run = std::panic::AssertUnwindSafe(run_case(&target, &opts, &case, serial));
                    let result = match run.catch_unwind().await {
                        Ok(result) => result,
                        // A bug of the runner: the case is reported inconclusive with the panic's
                        // message, and the run goes on.
                        Err(panic) => super::not_run(
                            &case,
                            &format!("the runner panicked: {}", panic_text(&panic)),
                        ),
                    };
                    (index, case, result)
                });
            }
            let Some(joined) = set.join_next().await else {
                break;
            };
            if let Ok((index, case, result)) = joined {
                if feed.done(index, case, result) == Flow::Stop {
                    flow = Flow::Stop;
                }
            }
        }
    }
}

fn panic_text(panic: &Box<dyn std::any::Any + Send>) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(no message)".to_string())
}

/// Runs a suite: the cases that need the broker to themselves (they restart it) after all the
/// others, one at a time. `progress(done, total, result)` is called as each case ends. When a
/// case finds the target gone ([`CaseResult::unreachable`]), no further case starts; the results
/// of cases that never ran are `None`.
pub async fn run_suite(
    scheduler: &Scheduler,
    cases: &[Case],
    jobs: usize,
    progress: &mut dyn FnMut(usize, usize, &CaseResult),
) -> Vec<Option<CaseResult>> {
    struct Suite<'a> {
        cases: &'a [Case],
        order: std::vec::IntoIter<usize>,
        results: Vec<Option<CaseResult>>,
        done: usize,
        progress: &'a mut dyn FnMut(usize, usize, &CaseResult),
        gone: bool,
    }
    impl Feed for Suite<'_> {
        fn next(&mut self) -> Option<(u64, Case)> {
            if self.gone {
                return None;
            }
            self.order.next().map(|i| (i as u64, self.cases[i].clone()))
        }
        fn done(&mut self, index: u64, _case: Case, result: CaseResult) -> Flow {
            self.done += 1;
            (self.progress)(self.done, self.cases.len(), &result);
            self.gone |= result.unreachable.is_some();
            self.results[index as usize] = Some(result);
            if self.gone {
                Flow::Stop
            } else {
                Flow::Continue
            }
        }
    }
    let exclusive = |c: &Case| c.requires.contains(&crate::trace::Capability::Restart);
    let (shared, alone): (Vec<usize>, Vec<usize>) =
        (0..cases.len()).partition(|i| !exclusive(&cases[*i]));
    let mut suite = Suite {
        cases,
        order: shared.into_iter(),
        results: vec![None; cases.len()],
        done: 0,
        progress,
        gone: false,
    };
    scheduler.run(jobs, &mut suite).await;
    suite.order = alone.into_iter();
    scheduler.run(1, &mut suite).await;
    suite.results
}
