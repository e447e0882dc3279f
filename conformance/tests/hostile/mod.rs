//! Hostile brokers for the fail-closed tests and the hostile-response benchmark
//! (`tests/hostile_broker.rs`, `examples/hostile_bench.rs`, which includes this file).
//!
//! - [`Proxy`] sits in front of a real broker (the embedded reference broker, advertising the
//!   proxy's address, or any broker): every request goes upstream, and the real response comes back
//!   mutated with probability `p` — bits flipped, a length field set to an extreme, truncated, a
//!   slice duplicated, a random tail, or replaced by random bytes — always behind the right
//!   correlation id and in a frame whose length prefix fits what follows. Sessions therefore get as
//!   deep as the dice allow.
//! - [`random_bytes_broker`] answers every request with random bytes behind the right correlation
//!   id: the fake broker that once aborted `sharecheck probe`.
//!
//! Every mutation is drawn from a seeded generator, so a run is repeatable.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// A small, seeded, dependency-free generator (splitmix64).
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed ^ 0x9E37_79B9_7F4A_7C15)
    }

    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }

    pub fn chance(&mut self, p: f64) -> bool {
        ((self.next() >> 11) as f64 / (1u64 << 53) as f64) < p
    }

    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

/// How a response was mutated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mutation {
    BitFlips,
    ExtremeLength,
    Truncate,
    Duplicate,
    RandomTail,
    RandomBody,
}

pub const MUTATIONS: [Mutation; 6] = [
    Mutation::BitFlips,
    Mutation::ExtremeLength,
    Mutation::Truncate,
    Mutation::Duplicate,
    Mutation::RandomTail,
    Mutation::RandomBody,
];

/// Mutates `body` (the response after its correlation id) as `m` says.
pub fn mutate(rng: &mut Rng, m: Mutation, body: &mut Vec<u8>) {
    match m {
        Mutation::BitFlips => {
            for _ in 0..=rng.below(8) {
                if !body.is_empty() {
                    let i = rng.below(body.len());
                    body[i] ^= 1 << rng.below(8);
                }
            }
        }
        Mutation::ExtremeLength => {
            // An int16/int32/varint-sized field somewhere set to an extreme length.
            let extremes: [&[u8]; 8] = [
                &[0x7f, 0xff, 0xff, 0xff],
                &[0xff, 0xff, 0xff, 0xff],
                &[0x80, 0x00, 0x00, 0x00],
                &[0x40, 0x00, 0x00, 0x00],
                &[0x7f, 0xff],
                &[0xff, 0xfe],
                &[0xff, 0xff, 0xff, 0xff, 0x0f],
                &[0x80, 0x80, 0x80, 0x80, 0x04],
            ];
            let e = extremes[rng.below(extremes.len())];
            if body.len() >= e.len() {
                let i = rng.below(body.len() - e.len() + 1);
                body[i..i + e.len()].copy_from_slice(e);
            }
        }
        Mutation::Truncate => {
            let n = rng.below(body.len() + 1);
            body.truncate(n);
        }
        Mutation::Duplicate => {
            if !body.is_empty() {
                let a = rng.below(body.len());
                let b = (a + 1 + rng.below(64)).min(body.len());
                let slice = body[a..b].to_vec();
                let at = rng.below(body.len() + 1);
                body.splice(at..at, slice);
            }
        }
        Mutation::RandomTail => {
            let n = 1 + rng.below(64);
            body.extend(rng.bytes(n));
        }
        Mutation::RandomBody => {
            let n = rng.below(256);
            *body = rng.bytes(n);
        }
    }
}

/// Counts of what a hostile broker sent.
#[derive(Debug, Default)]
pub struct Counts {
    /// Responses sent.
    pub responses: AtomicU64,
    /// Of those, mutated.
    pub mutated: AtomicU64,
}

fn read_frame(s: &mut TcpStream) -> Option<Vec<u8>> {
    let mut len = [0u8; 4];
    s.read_exact(&mut len).ok()?;
    let n = i32::from_be_bytes(len);
    if !(0..=64 * 1024 * 1024).contains(&n) {
        return None;
    }
    let mut buf = vec![0u8; n as usize];
    s.read_exact(&mut buf).ok()?;
    Some(buf)
}

fn write_frame(s: &mut TcpStream, payload: &[u8]) -> bool {
    let mut out = Vec::with_capacity(payload.len() + 4);
    out.extend_from_slice(&(payload.len() as i32).to_be_bytes());
    out.extend_from_slice(payload);
    s.write_all(&out).is_ok()
}

/// A mutating proxy in front of `upstream`, on the current tokio runtime.
pub struct Proxy {
    pub addr: SocketAddr,
    pub counts: Arc<Counts>,
    task: Option<tokio::task::JoinHandle<()>>,
    /// Mutation probability, in millionths (changed between sessions).
    p_millionths: Arc<AtomicU64>,
}

async fn read_frame_async<R: tokio::io::AsyncRead + Unpin>(s: &mut R) -> Option<Vec<u8>> {
    use tokio::io::AsyncReadExt;
    let mut len = [0u8; 4];
    s.read_exact(&mut len).await.ok()?;
    let n = i32::from_be_bytes(len);
    if !(0..=64 * 1024 * 1024).contains(&n) {
        return None;
    }
    let mut buf = vec![0u8; n as usize];
    s.read_exact(&mut buf).await.ok()?;
    Some(buf)
}

async fn write_frame_async<W: tokio::io::AsyncWrite + Unpin>(s: &mut W, payload: &[u8]) -> bool {
    use tokio::io::AsyncWriteExt;
    let mut out = Vec::with_capacity(payload.len() + 4);
    out.extend_from_slice(&(payload.len() as i32).to_be_bytes());
    out.extend_from_slice(payload);
    s.write_all(&out).await.is_ok()
}

impl Proxy {
    /// Binds a free loopback port; call [`Proxy::serve`] once the upstream is known.
    pub async fn bind() -> (Proxy, tokio::net::TcpListener) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        (
            Proxy {
                addr,
                counts: Arc::new(Counts::default()),
                task: None,
                p_millionths: Arc::new(AtomicU64::new(0)),
            },
            listener,
        )
    }

    /// Sets the probability that a response is mutated.
    pub fn set_p(&self, p: f64) {
        self.p_millionths
            .store((p.clamp(0.0, 1.0) * 1e6) as u64, Ordering::Relaxed);
    }

    /// Serves connections on `listener`, forwarding to `upstream`; connection `k` draws its
    /// mutations from `seed` and `k`.
    pub fn serve(&mut self, listener: tokio::net::TcpListener, upstream: SocketAddr, seed: u64) {
        let (counts, p) = (self.counts.clone(), self.p_millionths.clone());
        self.task = Some(tokio::spawn(async move {
            let mut k = 0u64;
            while let Ok((client, _)) = listener.accept().await {
                let (counts, p) = (counts.clone(), p.clone());
                let mut rng = Rng::new(seed.wrapping_mul(1_000_003).wrapping_add(k));
                k += 1;
                tokio::spawn(async move {
                    let Ok(mut server) = tokio::net::TcpStream::connect(upstream).await else {
                        return;
                    };
                    let mut client = client;
                    while let Some(req) = read_frame_async(&mut client).await {
                        if !write_frame_async(&mut server, &req).await {
                            return;
                        }
                        let Some(mut resp) = read_frame_async(&mut server).await else {
                            return;
                        };
                        let p = p.load(Ordering::Relaxed) as f64 / 1e6;
                        if resp.len() >= 4 && rng.chance(p) {
                            let mut body = resp.split_off(4);
                            let m = MUTATIONS[rng.below(MUTATIONS.len())];
                            mutate(&mut rng, m, &mut body);
                            resp.extend(body);
                            counts.mutated.fetch_add(1, Ordering::Relaxed);
                        }
                        counts.responses.fetch_add(1, Ordering::Relaxed);
                        if !write_frame_async(&mut client, &resp).await {
                            return;
                        }
                    }
                });
            }
        }));
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        if let Some(t) = self.task.take() {
            t.abort();
        }
    }
}

/// A broker that answers every request with random bytes (0..512 of them) behind the request's
/// correlation id. Returns its address and the counts.
pub fn random_bytes_broker(seed: u64) -> (SocketAddr, Arc<Counts>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let counts = Arc::new(Counts::default());
    let c = counts.clone();
    std::thread::spawn(move || {
        for (k, conn) in listener.incoming().enumerate() {
            let Ok(mut s) = conn else { continue };
            let c = c.clone();
            let mut rng = Rng::new(seed.wrapping_mul(7_919).wrapping_add(k as u64));
            std::thread::spawn(move || {
                let _ = s.set_read_timeout(Some(Duration::from_secs(30)));
                while let Some(req) = read_frame(&mut s) {
                    if req.len() < 8 {
                        return;
                    }
                    let mut resp = req[4..8].to_vec();
                    let n = rng.below(512);
                    resp.extend(rng.bytes(n));
                    c.responses.fetch_add(1, Ordering::Relaxed);
                    c.mutated.fetch_add(1, Ordering::Relaxed);
                    if !write_frame(&mut s, &resp) {
                        return;
                    }
                }
            });
        }
    });
    (addr, counts)
}

/// Counts panics anywhere in the process (threads and tasks included) from the moment it is
/// installed; the default hook still prints them.
pub fn count_panics() -> Arc<AtomicU64> {
    let n = Arc::new(AtomicU64::new(0));
    let counter = n.clone();
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        counter.fetch_add(1, Ordering::Relaxed);
        default(info);
    }));
    n
}

/// The kinds of session run against a hostile broker: each is what one command does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Session {
    /// `sharecheck probe`.
    Probe,
    /// `sharecheck conform` (three quick cases).
    Conform,
    /// `sharecheck fuzz` (three short cases).
    Fuzz,
    /// `sharecheck replay` (one fixture).
    Replay,
}

pub const SESSIONS: [Session; 4] = [
    Session::Probe,
    Session::Conform,
    Session::Fuzz,
    Session::Replay,
];

/// Runs one session against `bootstrap` with short deadlines and returns what it concluded, in the
/// words of the command's exit code: pass, fail, inconclusive or unusable.
pub async fn run_session(kind: Session, bootstrap: &str, seed: u64) -> &'static str {
    use sharecheck_conformance::oracle::CaseVerdict;
    use sharecheck_conformance::run::schedule::{run_suite, Scheduler};
    use sharecheck_conformance::run::RunOptions;
    use sharecheck_conformance::{fuzz, probe, scenario, target, trace};
    let timeout = Duration::from_secs(1);
    let opts = RunOptions {
        timeout,
        fetch_patience: Duration::from_millis(300),
        tolerance_ms: 50,
        margin_ms: 20,
        prefix: format!("sc-hostile-{seed}"),
        idle_fetch_wait_ms: 5,
        ..RunOptions::default()
    };
    let verdict = |v: CaseVerdict| match v {
        CaseVerdict::Pass => "pass",
        CaseVerdict::Fail => "fail",
        CaseVerdict::Inconclusive => "inconclusive",
        CaseVerdict::Skipped => "unusable",
    };
    if kind == Session::Probe {
        let mut config = probe::ProbeConfig::new(bootstrap);
        config.timeout = timeout;
        config.fetch_patience = Duration::from_millis(500);
        return match probe::run(&config, &mut |_| {}).await.verdict {
            probe::Verdict::Pass => "pass",
            probe::Verdict::Violation { .. } => "fail",
            probe::Verdict::Inconclusive { .. } => "inconclusive",
            probe::Verdict::Unusable { .. } => "unusable",
        };
    }
    let Ok(target) = target::connect(bootstrap, None, timeout, Default::default()).await else {
        return "unusable";
    };
    match kind {
        Session::Probe => unreachable!(),
        Session::Conform => {
            let cases = scenario::select(catalog(), trace::Suite::Standard, Some("kip932.errors."));
            let cases = &cases[..cases.len().min(3)];
            let scheduler = Scheduler::new(target, opts);
            let results = run_suite(&scheduler, cases, 3, &mut |_, _, _| {}).await;
            let worst = results
                .iter()
                .flatten()
                .map(|r| r.verdict)
                .max_by_key(|v| match v {
                    CaseVerdict::Fail => 3,
                    CaseVerdict::Inconclusive => 2,
                    CaseVerdict::Skipped => 1,
                    CaseVerdict::Pass => 0,
                });
            worst.map_or("unusable", verdict)
        }
        Session::Fuzz => {
            let mut fo = fuzz::FuzzOptions::in_process(seed);
            fo.cases = 3;
            fo.jobs = 3;
            fo.lock_ms = 100;
            fo.run = opts;
            fo.max_shrink_runs = 3;
            fo.max_shrink_time = Duration::from_secs(3);
            let report = fuzz::Fuzzer::new(target, fo).run(&mut |_| {}).await;
            if report.finding.is_some() {
                "fail"
            } else if report.tally.inconclusive > 0 || !report.flaky.is_empty() {
                "inconclusive"
            } else {
                "pass"
            }
        }
        Session::Replay => {
            let case = catalog()
                .iter()
                .find(|c| c.id == "kip932.ack.release-redelivers")
                .expect("the fixture is in the catalog");
            let r = sharecheck_conformance::run::run_case(&target, &opts, case, 0).await;
            verdict(r.verdict)
        }
    }
}

/// The catalog, built once (generating it explores the model).
fn catalog() -> &'static [sharecheck_conformance::trace::Case] {
    static CATALOG: std::sync::OnceLock<Vec<sharecheck_conformance::trace::Case>> =
        std::sync::OnceLock::new();
    CATALOG.get_or_init(|| sharecheck_conformance::scenario::catalog().expect("catalog"))
}

/// A reference broker behind a mutating proxy: returns the proxy (its `addr` is the bootstrap) and
/// the broker's handle (keep it alive).
pub async fn proxied_reference_broker(seed: u64) -> (Proxy, sharecheck_broker::BrokerHandle) {
    let (mut proxy, listener) = Proxy::bind().await;
    let config = sharecheck_broker::BrokerConfig {
        advertised: Some(proxy.addr),
        min_record_lock_duration_ms: 10,
        ..sharecheck_broker::BrokerConfig::default()
    };
    let broker = sharecheck_broker::Broker::start(config)
        .await
        .expect("the reference broker starts");
    proxy.serve(listener, broker.addr(), seed);
    (proxy, broker)
}
