//! Shrinking: a failing case is simplified with proptest's value tree over its operations, then
//! step by step, every candidate rerun on the target (bounded in reruns and time), and the result
//! confirmed by one more rerun.

use super::{Finding, FuzzCase, Fuzzer};
use crate::oracle::CaseVerdict;
use crate::run::CaseResult;
use crate::trace::Case;
use proptest::strategy::ValueTree;
use std::collections::HashMap;
use std::time::Instant;

impl Fuzzer {
    /// Shrinks a failing case with its value tree, then step by step; then reruns the result once
    /// to confirm it.
    pub async fn shrink(
        &self,
        index: u64,
        mut tree: Box<dyn ValueTree<Value = FuzzCase>>,
        original: Case,
        original_result: CaseResult,
    ) -> Finding {
        let started = Instant::now();
        let mut runs: u32 = 0;
        let mut cache: HashMap<String, bool> = HashMap::new();
        cache.insert(steps_key(&original), true);
        let mut best = (original.clone(), original_result.clone());
        let over = |runs: u32| {
            runs >= self.opts.max_shrink_runs || started.elapsed() >= self.opts.max_shrink_time
        };
        // Phase 1: proptest's shrinking over the operations (relative references survive it).
        if tree.simplify() {
            while !over(runs) {
                let candidate = self.lowered(&tree.current(), index);
                let key = steps_key(&candidate);
                let failed = match cache.get(&key) {
                    Some(f) => *f,
                    None => {
                        runs += 1;
                        let r = self.run_one(&candidate).await;
                        let failed = r.verdict == CaseVerdict::Fail;
                        cache.insert(key, failed);
                        if failed && candidate.steps.len() <= best.0.steps.len() {
                            best = (candidate.clone(), r);
                        }
                        failed
                    }
                };
                let more = if failed {
                    tree.simplify()
                } else {
                    tree.complicate()
                };
                if !more {
                    break;
                }
            }
        }
        // Phase 2: the steps themselves — cut everything after the first anomaly, then try
        // deleting each remaining step (last first).
        let mut budget_hit = over(runs);
        if !budget_hit {
            if let Some(first) = best.1.anomalies.iter().map(|a| a.step).min() {
                if first < best.0.steps.len() {
                    let mut c = best.0.clone();
                    c.steps.truncate(first.max(1));
                    runs += 1;
                    let r = self.run_one(&c).await;
                    if r.verdict == CaseVerdict::Fail {
                        best = (c, r);
                    }
                }
            }
            let mut i = best.0.steps.len();
            while i > 0 && best.0.steps.len() > 1 {
                if over(runs) {
                    budget_hit = true;
                    break;
                }
                i -= 1;
                if i >= best.0.steps.len() {
                    continue;
                }
                let mut c = best.0.clone();
                c.steps.remove(i);
                if let std::collections::hash_map::Entry::Vacant(slot) = cache.entry(steps_key(&c))
                {
                    runs += 1;
                    let r = self.run_one(&c).await;
                    let failed = r.verdict == CaseVerdict::Fail;
                    slot.insert(failed);
                    if failed {
                        best = (c, r);
                    }
                }
            }
        }
        let shrink_time = started.elapsed();
        let rerun = self.run_one(&best.0).await;
        let confirmed = (rerun.verdict == CaseVerdict::Fail).then_some(rerun);
        Finding {
            index,
            original,
            original_result,
            shrunk: best.0,
            shrunk_result: best.1,
            shrink_runs: runs,
            shrink_time,
            shrink_budget_hit: budget_hit,
            confirmed,
        }
    }
}

fn steps_key(case: &Case) -> String {
    serde_json::to_string(&(&case.settings, &case.steps)).unwrap_or_default()
}
