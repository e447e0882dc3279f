//! A long run is never silent: when stderr is not a terminal (a CI log), commands that run many
//! cases print one heartbeat line there every 30 s — done/total, failures so far, elapsed, seed —
//! so a slow run can be told from a hung one. On a terminal the live progress line does that job.
//! `SHARECHECK_HEARTBEAT_SECS` changes the interval (tests use 1).

use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Default)]
struct Counts {
    done: AtomicU64,
    total: AtomicU64,
    failed: AtomicU64,
}

/// The heartbeat of one run; it stops when dropped.
pub struct Heartbeat {
    counts: Arc<Counts>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Heartbeat {
    /// Starts beating for `command` (`conform`, `fuzz`) with `total` items and `seed`, unless stderr
    /// is a terminal.
    pub fn start(command: &'static str, total: u64, seed: u64) -> Heartbeat {
        let counts = Arc::new(Counts::default());
        counts.total.store(total, Ordering::Relaxed);
        let stop = Arc::new(AtomicBool::new(false));
        let every = std::env::var("SHARECHECK_HEARTBEAT_SECS")
            .ok()
            .and_then(|v| v.parse::<u64>().ok())
            .filter(|s| *s > 0)
            .unwrap_or(30);
        let thread = (!std::io::stderr().is_terminal()).then(|| {
            let (counts, stop) = (counts.clone(), stop.clone());
            std::thread::spawn(move || {
                let started = Instant::now();
                let mut next = Duration::from_secs(every);
                while !stop.load(Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis(100));
                    if started.elapsed() >= next {
                        next += Duration::from_secs(every);
                        eprintln!(
                            "sharecheck {command}: [{}/{}] {} failed so far, {}s elapsed, seed {seed}",
                            counts.done.load(Ordering::Relaxed),
                            counts.total.load(Ordering::Relaxed),
                            counts.failed.load(Ordering::Relaxed),
                            started.elapsed().as_secs()
                        );
                    }
                }
            })
        });
        Heartbeat {
            counts,
            stop,
            thread,
        }
    }

    /// What has happened so far.
    pub fn update(&self, done: u64, failed: u64) {
        self.counts.done.store(done, Ordering::Relaxed);
        self.counts.failed.store(failed, Ordering::Relaxed);
    }
}

impl Drop for Heartbeat {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
