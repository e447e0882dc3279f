//! The soak's picture (`sharecheck soak --report DIR`): one self-contained HTML file with inline SVG
//! and no script or network — a per-partition timeline with a lane per member (each fetched batch
//! from its delivery to its last acknowledgement), broker restarts as bands, member faults as
//! marks, the quiet period shaded, throughput and records held per time bin, deliveries by
//! delivery count, and every finding linked both ways to its mark on the timeline.
//!
//! It is built as the run goes from the same observations the judge sees, in memory bounded by
//! the time bins and [`MAX_SEGMENTS`], not by the history.

use crate::report::matrix::esc;
use crate::soak::{SoakEvent, SoakFault, SoakReport, SoakVerdict};
use sharecheck_model::spec::AckType;
use sharecheck_model::watch::MemberNo;
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;

/// Batches drawn at most; later ones are counted, not drawn (the page stays a few megabytes).
pub const MAX_SEGMENTS: usize = 20_000;

/// Time bins at most: a long run gets wider bins.
const MAX_BINS: u64 = 1_200;

/// What one member held of one partition from one fetch.
#[derive(Clone, Debug)]
struct Segment {
    member: MemberNo,
    partition: u32,
    from_ms: u64,
    /// The last answer to an acknowledgement of it (none: it expired or the member went away).
    last_ack_ms: Option<u64>,
    records: u32,
    accepted: u32,
    released: u32,
    rejected: u32,
    /// Records whose acknowledgement was answered with an error or not at all.
    failed: u32,
    max_count: i16,
}

#[derive(Clone, Copy, Debug, Default)]
struct Bin {
    produced: u64,
    delivered: u64,
    acknowledged: u64,
    /// Records members held at the bin's last sample.
    held: Option<u64>,
    /// Records produced and not yet terminal, at the bin's last sample.
    not_done: Option<u64>,
}

/// A restart (or a leader move, judged as one): begun, done, why it failed, and what moved when it
/// was a leader move.
type RestartBand = (u64, Option<u64>, Option<String>, Option<String>);

/// The report under construction.
#[derive(Clone, Debug)]
pub struct Timeline {
    bin_ms: u64,
    lock_ms: u64,
    delivery_limit: i16,
    partitions: u32,
    bins: Vec<Bin>,
    open: HashMap<(MemberNo, u32), Segment>,
    segments: Vec<Segment>,
    undrawn: u64,
    held: u64,
    /// Deliveries by the delivery count the broker reported.
    counts: BTreeMap<i16, u64>,
    joined: BTreeMap<MemberNo, u64>,
    member_faults: Vec<(u64, MemberNo, SoakFault)>,
    restarts: Vec<RestartBand>,
    quiet_ms: Option<u64>,
    end_ms: u64,
}

impl Timeline {
    /// For a run of about `planned_ms` (duration plus quiet period).
    pub fn new(planned_ms: u64, lock_ms: u64, delivery_limit: i16, partitions: u32) -> Timeline {
        let bin_ms = (planned_ms / MAX_BINS).max(1000).div_ceil(1000) * 1000;
        Timeline {
            bin_ms,
            lock_ms,
            delivery_limit,
            partitions,
            bins: Vec::new(),
            open: HashMap::new(),
            segments: Vec::new(),
            undrawn: 0,
            held: 0,
            counts: BTreeMap::new(),
            joined: BTreeMap::new(),
            member_faults: Vec::new(),
            restarts: Vec::new(),
            quiet_ms: None,
            end_ms: 0,
        }
    }

    fn bin(&mut self, at_ms: u64) -> &mut Bin {
        let i = (at_ms / self.bin_ms) as usize;
        if self.bins.len() <= i {
            self.bins.resize(i + 1, Bin::default());
        }
        self.end_ms = self.end_ms.max(at_ms);
        &mut self.bins[i]
    }

    fn close(&mut self, key: (MemberNo, u32)) {
        if let Some(s) = self.open.remove(&key) {
            self.held = self.held.saturating_sub(u64::from(s.records));
            if self.segments.len() < MAX_SEGMENTS {
                self.segments.push(s);
            } else {
                self.undrawn += 1;
            }
        }
    }

    /// Takes one observation.
    pub fn observe(&mut self, e: &SoakEvent) {
        match e {
            SoakEvent::Produced { at_ms, count, .. } => {
                self.bin(*at_ms).produced += u64::from(*count);
            }
            SoakEvent::Joined { at_ms, member, .. } => {
                self.joined.insert(*member, *at_ms);
            }
            SoakEvent::Delivered {
                member,
                partition,
                received_ms,
                records,
                ..
            } => {
                // The member fetched again: it is done with what it held of the partition.
                self.close((*member, *partition));
                self.bin(*received_ms).delivered += records.len() as u64;
                for (_, c) in records {
                    *self.counts.entry(*c).or_default() += 1;
                }
                self.held += records.len() as u64;
                self.joined.entry(*member).or_insert(*received_ms);
                self.open.insert(
                    (*member, *partition),
                    Segment {
                        member: *member,
                        partition: *partition,
                        from_ms: *received_ms,
                        last_ack_ms: None,
                        records: records.len() as u32,
                        accepted: 0,
                        released: 0,
                        rejected: 0,
                        failed: 0,
                        max_count: records.iter().map(|(_, c)| *c).max().unwrap_or(0),
                    },
                );
            }
            SoakEvent::AckSent { .. } | SoakEvent::MemberError { .. } => {}
            SoakEvent::Acked {
                at_ms,
                member,
                partition,
                records,
                error,
            } => {
                let n = records.iter().filter(|r| r.2 != AckType::Gap).count() as u64;
                if *error == 0 {
                    self.bin(*at_ms).acknowledged += n;
                } else {
                    self.bin(*at_ms);
                }
                if let Some(s) = self.open.get_mut(&(*member, *partition)) {
                    s.last_ack_ms = Some(*at_ms);
                    for (_, _, ty) in records {
                        if *error != 0 {
                            s.failed += 1;
                            continue;
                        }
                        match ty {
                            AckType::Accept => s.accepted += 1,
                            AckType::Release => s.released += 1,
                            AckType::Reject => s.rejected += 1,
                            _ => {}
                        }
                    }
                }
            }
            SoakEvent::MemberGone { at_ms, member, how } => {
                self.bin(*at_ms);
                if *how != SoakFault::MemberLeave || self.quiet_ms.is_none() {
                    self.member_faults.push((*at_ms, *member, *how));
                }
                for p in 0..self.partitions {
                    self.close((*member, p));
                }
            }
            SoakEvent::Restart { at_ms } => {
                self.bin(*at_ms);
                self.restarts.push((*at_ms, None, None, None));
            }
            SoakEvent::RestartDone { at_ms, error } => {
                self.bin(*at_ms);
                if let Some(r) = self.restarts.iter_mut().rev().find(|r| r.1.is_none()) {
                    r.1 = Some(*at_ms);
                    r.2 = error.clone();
                }
            }
            SoakEvent::QuietBegins { at_ms } => {
                self.bin(*at_ms);
                self.quiet_ms = Some(*at_ms);
            }
        }
    }

    /// A sample of the records not yet terminal (the judge's count), about once a second.
    pub fn sample(&mut self, at_ms: u64, not_done: u64) {
        let held = self.held;
        let b = self.bin(at_ms);
        b.held = Some(held);
        b.not_done = Some(not_done);
    }

    /// The page.
    pub fn render(mut self, report: &SoakReport, heading: &ReportHeading) -> String {
        let keys: Vec<_> = self.open.keys().copied().collect();
        for k in keys {
            self.close(k);
        }
        self.end_ms = self.end_ms.max(report.totals.elapsed_ms);
        // A leader move is judged as a restart; the fault log says which one it was.
        for r in &mut self.restarts {
            if let Some((_, what)) = report.faults.iter().find(|(at, _)| *at == r.0) {
                if what.starts_with("leader-move") {
                    r.3 = Some(what.clone());
                }
            }
        }
        let mut members: Vec<MemberNo> = self.joined.keys().copied().collect();
        for s in &self.segments {
            if !self.joined.contains_key(&s.member) {
                members.push(s.member);
            }
        }
        members.sort_unstable();
        members.dedup();

        let mut h = String::with_capacity(64 * 1024 + self.segments.len() * 200);
        let verdict = match report.verdict {
            SoakVerdict::Pass => "pass",
            SoakVerdict::Fail => "fail",
            SoakVerdict::Inconclusive => "inconclusive",
        };
        let _ = write!(
            h,
            "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
             <title>sharecheck soak: {verdict} (seed {seed})</title>\n<style>{STYLE}</style></head>\n<body>\n\
             <h1>sharecheck soak</h1>\n<p class=\"verdict {verdict}\" id=\"verdict\">verdict: {verdict}</p>\n",
            seed = report.seed
        );
        let t = &report.totals;
        let _ = writeln!(
            h,
            "<table class=\"facts\">\
             <tr><th>target</th><td>{}</td></tr>\
             <tr><th>profile</th><td>{}; delivery limit {}; lock {} ms</td></tr>\
             <tr><th>workload</th><td>{}</td></tr>\
             <tr><th>seed</th><td>{} — rerun: <code>{}</code></td></tr>\
             <tr><th>topic, group</th><td>{}, {}</td></tr>\
             <tr><th>totals</th><td>{:.1} s; produced {}, delivered {}, acknowledged {}, not terminal {}; \
             {} fault(s); {} member error(s); {} observation(s) judged</td></tr></table>",
            esc(&heading.target),
            esc(&heading.profile),
            self.delivery_limit,
            self.lock_ms,
            esc(&heading.workload),
            report.seed,
            esc(&heading.rerun),
            esc(&report.topic),
            esc(&report.group),
            t.elapsed_ms as f64 / 1000.0,
            t.produced,
            t.delivered,
            t.acked,
            t.not_done,
            t.faults,
            t.member_errors,
            t.events
        );
        for n in &report.notes {
            let _ = writeln!(h, "<p class=\"note\">{}</p>", esc(n));
        }

        // Findings, each linked to its mark.
        let _ = writeln!(h, "<h2 id=\"findings\">Findings</h2>");
        if report.findings.is_empty() {
            let _ = writeln!(h, "<p class=\"none\">none</p>");
        } else {
            let _ = write!(h, "<p>");
            for (p, n) in &report.counts {
                let _ = write!(h, "<span class=\"count\">{p}: {n}</span> ");
            }
            let _ = writeln!(h, "</p>\n<ol class=\"findings\">");
            for (i, f) in report.findings.iter().enumerate() {
                let _ = writeln!(
                    h,
                    "<li id=\"finding-{i}\"><a href=\"#anomaly-{i}\">{:.3} s</a> <b>{}</b> partition {} offset {}: {}</li>",
                    f.at_ms as f64 / 1000.0,
                    f.property,
                    f.partition,
                    f.offset,
                    esc(&f.detail)
                );
            }
            let _ = writeln!(h, "</ol>");
        }

        let x = Scale {
            end_ms: self.end_ms.max(1),
        };
        let _ = writeln!(
            h,
            "<h2>Timeline</h2>\n<p class=\"legend\">A lane per member; a bar per fetched batch of one partition, \
             from its delivery to its last acknowledgement (<span class=\"k ok\">all acknowledged</span> \
             <span class=\"k rel\">some released or rejected</span> <span class=\"k bad\">some acknowledgements refused</span> \
             <span class=\"k gone\">never acknowledged: its locks expired, or the member went away</span>). \
             <span class=\"k restart\">broker restart</span> <span class=\"k move\">leader move</span> <span class=\"k quiet\">quiet period</span> \
             member faults: ✕ crash, ◇ hang, ○ session close, ↩ leave; <span class=\"k anomaly\">finding</span>.</p>"
        );
        if self.undrawn > 0 {
            let _ = writeln!(
                h,
                "<p class=\"note\">The first {MAX_SEGMENTS} batches are drawn; {} later ones are not.</p>",
                self.undrawn
            );
        }
        let lane = 14u32;
        for p in 0..self.partitions {
            let height = 24 + lane * members.len() as u32 + 20;
            let _ = writeln!(
                h,
                "<h3>partition {p}</h3>\n<svg id=\"timeline-p{p}\" class=\"timeline\" width=\"{W}\" height=\"{height}\" \
                 viewBox=\"0 0 {W} {height}\" xmlns=\"http://www.w3.org/2000/svg\">"
            );
            self.bands(&mut h, &x, 0, height - 20);
            for (row, m) in members.iter().enumerate() {
                let y = 24 + lane * row as u32;
                let _ = writeln!(
                    h,
                    "<text class=\"lane\" x=\"2\" y=\"{}\">member {m}</text>",
                    y + lane - 3
                );
            }
            for s in self.segments.iter().filter(|s| s.partition == p) {
                let row = members.binary_search(&s.member).unwrap_or(0) as u32;
                let y = 24 + lane * row + 2;
                let to = s.last_ack_ms.unwrap_or(s.from_ms + self.lock_ms);
                let class = if s.failed > 0 {
                    "bad"
                } else if s.last_ack_ms.is_none() {
                    "gone"
                } else if s.released + s.rejected > 0 {
                    "rel"
                } else {
                    "ok"
                };
                let (x0, x1) = (x.at(s.from_ms), x.at(to.max(s.from_ms)));
                let _ = writeln!(
                    h,
                    "<rect class=\"seg {class}\" x=\"{x0:.1}\" y=\"{y}\" width=\"{:.1}\" height=\"{}\"><title>member {} \
                     partition {p}: {} record(s) {:.3}–{:.3} s; accepted {}, released {}, rejected {}, refused or \
                     unanswered {}; highest delivery count {}</title></rect>",
                    (x1 - x0).max(1.0),
                    lane - 4,
                    s.member,
                    s.records,
                    s.from_ms as f64 / 1000.0,
                    to as f64 / 1000.0,
                    s.accepted,
                    s.released,
                    s.rejected,
                    s.failed,
                    s.max_count
                );
            }
            for (at, m, how) in &self.member_faults {
                let Ok(row) = members.binary_search(m) else {
                    continue;
                };
                let y = 24 + lane * row as u32 + lane - 3;
                let sign = match how {
                    SoakFault::MemberCrash => "✕",
                    SoakFault::MemberHang => "◇",
                    SoakFault::SessionClose => "○",
                    _ => "↩",
                };
                let _ = writeln!(
                    h,
                    "<text class=\"fault\" x=\"{:.1}\" y=\"{y}\">{sign}<title>{:.3} s: {} of member {m}</title></text>",
                    x.at(*at),
                    *at as f64 / 1000.0,
                    how.name()
                );
            }
            for (i, f) in report.findings.iter().enumerate() {
                if f.partition != p {
                    continue;
                }
                let _ = writeln!(
                    h,
                    "<a href=\"#finding-{i}\"><circle id=\"anomaly-{i}\" class=\"anomaly\" cx=\"{:.1}\" cy=\"12\" r=\"6\">\
                     <title>{} at {:.3} s, offset {}</title></circle></a>",
                    x.at(f.at_ms),
                    f.property,
                    f.at_ms as f64 / 1000.0,
                    f.offset
                );
            }
            x.axis(&mut h, height - 20);
            let _ = writeln!(h, "</svg>");
        }

        // Throughput and records held, per bin.
        let per_s = 1000.0 / self.bin_ms as f64;
        let series = |f: &dyn Fn(&Bin) -> Option<f64>| -> Vec<(u64, f64)> {
            self.bins
                .iter()
                .enumerate()
                .filter_map(|(i, b)| f(b).map(|v| (i as u64 * self.bin_ms + self.bin_ms / 2, v)))
                .collect()
        };
        let rates = [
            ("produced", series(&|b| Some(b.produced as f64 * per_s))),
            ("delivered", series(&|b| Some(b.delivered as f64 * per_s))),
            (
                "acknowledged",
                series(&|b| Some(b.acknowledged as f64 * per_s)),
            ),
        ];
        let _ = writeln!(
            h,
            "<h2>Throughput</h2>\n<p class=\"legend\">records per second, in bins of {} s: \
             <span class=\"k produced\">produced</span> <span class=\"k delivered\">delivered</span> \
             <span class=\"k acknowledged\">acknowledged with success</span></p>",
            self.bin_ms / 1000
        );
        self.chart(&mut h, "throughput", &x, &rates);
        let levels = [
            ("held", series(&|b| b.held.map(|v| v as f64))),
            ("not-done", series(&|b| b.not_done.map(|v| v as f64))),
        ];
        let _ = writeln!(
            h,
            "<h2>In flight</h2>\n<p class=\"legend\"><span class=\"k held\">records members held</span> \
             <span class=\"k not-done\">records produced and not yet terminal</span></p>"
        );
        self.chart(&mut h, "in-flight", &x, &levels);

        // Deliveries by delivery count.
        let _ = writeln!(
            h,
            "<h2>Delivery counts</h2>\n<p class=\"legend\">deliveries by the delivery count the broker reported; \
             the delivery limit is {}</p>",
            self.delivery_limit
        );
        let max_n = self.counts.values().copied().max().unwrap_or(0).max(1) as f64;
        let top = self
            .counts
            .keys()
            .copied()
            .max()
            .unwrap_or(0)
            .max(self.delivery_limit);
        let bars = top.max(1) as usize;
        let bw = (600 / bars).clamp(8, 60) as f64;
        let hh = 160.0;
        let _ = writeln!(
            h,
            "<svg id=\"histogram\" width=\"{}\" height=\"{}\" xmlns=\"http://www.w3.org/2000/svg\">",
            bw * bars as f64 + 80.0,
            hh + 40.0
        );
        for c in 1..=top {
            let n = self.counts.get(&c).copied().unwrap_or(0);
            let bh = if n == 0 {
                0.0
            } else {
                // Logarithmic: one redelivery in thousands still shows.
                ((n as f64).ln_1p() / max_n.ln_1p() * hh).max(2.0)
            };
            let x0 = 40.0 + (c - 1) as f64 * bw;
            let class = if c > self.delivery_limit {
                "bar over"
            } else {
                "bar"
            };
            let _ = writeln!(
                h,
                "<rect class=\"{class}\" x=\"{x0:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{bh:.1}\"><title>delivery count {c}: {n}</title></rect>\
                 <text class=\"tick\" x=\"{:.1}\" y=\"{:.1}\">{c}</text><text class=\"tick\" x=\"{:.1}\" y=\"{:.1}\">{n}</text>",
                10.0 + hh - bh,
                bw - 2.0,
                x0 + bw / 2.0 - 3.0,
                hh + 24.0,
                x0 + 2.0,
                (10.0 + hh - bh - 3.0).max(9.0)
            );
        }
        let _ = writeln!(h, "</svg>");

        // Faults, in words.
        let _ = writeln!(h, "<h2>Faults</h2>");
        if report.faults.is_empty() {
            let _ = writeln!(h, "<p class=\"none\">none</p>");
        } else {
            let _ = writeln!(h, "<ol class=\"faults\">");
            for (at, what) in &report.faults {
                let _ = writeln!(h, "<li>{:.1} s: {}</li>", *at as f64 / 1000.0, esc(what));
            }
            let _ = writeln!(h, "</ol>");
        }
        let _ = writeln!(h, "</body></html>");
        h
    }

    /// Restart bands and the quiet period, from `top` to `bottom`.
    fn bands(&self, h: &mut String, x: &Scale, top: u32, bottom: u32) {
        if let Some(q) = self.quiet_ms {
            let _ = writeln!(
                h,
                "<rect class=\"band quiet\" x=\"{:.1}\" y=\"{top}\" width=\"{:.1}\" height=\"{}\"><title>quiet period from {:.1} s</title></rect>",
                x.at(q),
                (x.at(self.end_ms) - x.at(q)).max(1.0),
                bottom - top,
                q as f64 / 1000.0
            );
        }
        for (from, to, error, moved) in &self.restarts {
            let to = to.unwrap_or(self.end_ms);
            let (class, what) = match moved {
                Some(m) => ("move", esc(m)),
                None => ("restart", "broker restart".to_string()),
            };
            let _ = writeln!(
                h,
                "<rect class=\"band {class}\" x=\"{:.1}\" y=\"{top}\" width=\"{:.1}\" height=\"{}\"><title>{what} {:.1}–{:.1} s{}</title></rect>",
                x.at(*from),
                (x.at(to) - x.at(*from)).max(2.0),
                bottom - top,
                *from as f64 / 1000.0,
                to as f64 / 1000.0,
                error.as_deref().map(|e| format!(" (failed: {})", esc(e))).unwrap_or_default()
            );
        }
    }

    fn chart(&self, h: &mut String, id: &str, x: &Scale, series: &[(&str, Vec<(u64, f64)>)]) {
        let height = 180u32;
        let plot = (10.0, (height - 30) as f64);
        let max = series
            .iter()
            .flat_map(|(_, s)| s.iter().map(|p| p.1))
            .fold(0.0f64, f64::max)
            .max(1.0);
        let _ = writeln!(
            h,
            "<svg id=\"{id}\" class=\"chart\" width=\"{W}\" height=\"{height}\" viewBox=\"0 0 {W} {height}\" xmlns=\"http://www.w3.org/2000/svg\">"
        );
        self.bands(h, x, 0, height - 20);
        let y = |v: f64| plot.1 - v / max * (plot.1 - plot.0);
        let _ = writeln!(
            h,
            "<text class=\"tick\" x=\"2\" y=\"{:.1}\">{max:.0}</text><text class=\"tick\" x=\"2\" y=\"{:.1}\">0</text>",
            plot.0 + 8.0,
            plot.1
        );
        for (name, points) in series {
            let mut d = String::new();
            for (t, v) in points {
                let _ = write!(d, "{:.1},{:.1} ", x.at(*t), y(*v));
            }
            let _ = writeln!(
                h,
                "<polyline class=\"line {name}\" points=\"{}\"><title>{name}</title></polyline>",
                d.trim_end()
            );
        }
        x.axis(h, height - 20);
        let _ = writeln!(h, "</svg>");
    }
}

/// What the page says about the run that the report does not carry.
#[derive(Clone, Debug, Default)]
pub struct ReportHeading {
    pub target: String,
    pub profile: String,
    pub workload: String,
    pub rerun: String,
}

/// Width of the time-based pictures, and their left margin for lane names.
const W: u32 = 1200;
const LEFT: f64 = 80.0;

struct Scale {
    end_ms: u64,
}

impl Scale {
    fn at(&self, ms: u64) -> f64 {
        LEFT + (ms.min(self.end_ms) as f64 / self.end_ms as f64) * (f64::from(W) - LEFT - 10.0)
    }

    fn axis(&self, h: &mut String, y: u32) {
        let secs = self.end_ms as f64 / 1000.0;
        let step = [
            1.0, 2.0, 5.0, 10.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0,
        ]
        .into_iter()
        .find(|s| secs / s <= 12.0)
        .unwrap_or(7200.0);
        let _ = writeln!(
            h,
            "<line class=\"axis\" x1=\"{LEFT}\" y1=\"{y}\" x2=\"{}\" y2=\"{y}\"/>",
            f64::from(W) - 10.0
        );
        let mut s = 0.0;
        while s <= secs {
            let xs = self.at((s * 1000.0) as u64);
            let _ = writeln!(
                h,
                "<text class=\"tick\" x=\"{xs:.1}\" y=\"{}\">{s} s</text>",
                y + 14
            );
            s += step;
        }
    }
}

const STYLE: &str = "body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222;background:#fff}\
h1{margin:0 0 .3em}h2{margin:1.4em 0 .3em;font-size:1.15em}h3{margin:.8em 0 .2em;font-size:1em}\
.verdict{display:inline-block;padding:.2em .8em;border-radius:4px;font-weight:bold;color:#fff}\
.verdict.pass{background:#2e7d32}.verdict.fail{background:#c62828}.verdict.inconclusive{background:#ef6c00}\
table.facts th{text-align:left;padding-right:1em;vertical-align:top}code{font-size:12px}\
.note{color:#8a4b00}.none{color:#666}.count{margin-right:1em}\
svg{display:block;border:1px solid #ddd;margin:.2em 0}\
.seg.ok{fill:#43a047}.seg.rel{fill:#1e88e5}.seg.bad{fill:#fb8c00}.seg.gone{fill:#9e9e9e}\
.band.restart{fill:#e53935;fill-opacity:.18}.band.move{fill:#8e24aa;fill-opacity:.22}.band.quiet{fill:#607d8b;fill-opacity:.10}\
.anomaly{fill:#d50000;stroke:#000;stroke-width:1}.fault{font-size:12px;fill:#b71c1c}\
.lane,.tick{font-size:10px;fill:#555}.axis{stroke:#999}\
.line{fill:none;stroke-width:1.5}.line.produced{stroke:#6d4c41}.line.delivered{stroke:#1e88e5}\
.line.acknowledged{stroke:#43a047}.line.held{stroke:#8e24aa}.line.not-done{stroke:#fb8c00}\
.bar{fill:#1e88e5}.bar.over{fill:#d50000}\
.k{display:inline-block;padding:0 .4em;margin-right:.3em;border-left:12px solid}\
.k.ok{border-color:#43a047}.k.rel{border-color:#1e88e5}.k.bad{border-color:#fb8c00}.k.gone{border-color:#9e9e9e}\
.k.restart{border-color:#f4b4b3}.k.move{border-color:#dcbce3}.k.quiet{border-color:#dfe5e8}.k.anomaly{border-color:#d50000}\
.k.produced{border-color:#6d4c41}.k.delivered{border-color:#1e88e5}.k.acknowledged{border-color:#43a047}\
.k.held{border-color:#8e24aa}.k.not-done{border-color:#fb8c00}";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::soak::SoakTotals;
    use sharecheck_model::watch::Finding;

    fn report(findings: Vec<Finding>) -> SoakReport {
        SoakReport {
            verdict: if findings.is_empty() {
                SoakVerdict::Pass
            } else {
                SoakVerdict::Fail
            },
            seed: 7,
            topic: "t<1>".into(),
            group: "g".into(),
            totals: SoakTotals {
                elapsed_ms: 30_000,
                ..SoakTotals::default()
            },
            outstanding: Default::default(),
            counts: findings.iter().map(|f| (f.property, 1)).collect(),
            findings,
            notes: vec![],
            faults: vec![
                (2_000, "broker-restart".into()),
                (8_000, "leader-move of partition 0: node 1 to node 2".into()),
            ],
            timeline: None,
        }
    }

    fn delivered(
        member: MemberNo,
        at: u64,
        offsets: std::ops::Range<i64>,
        count: i16,
    ) -> SoakEvent {
        SoakEvent::Delivered {
            member,
            partition: 0,
            sent_ms: at,
            received_ms: at,
            records: offsets.map(|o| (o, count)).collect(),
        }
    }

    #[test]
    fn batches_restarts_counts_and_findings_are_drawn_and_linked() {
        let mut t = Timeline::new(30_000, 5_000, 5, 1);
        t.observe(&SoakEvent::Produced {
            at_ms: 100,
            partition: 0,
            base_offset: 0,
            count: 10,
        });
        t.observe(&delivered(1, 200, 0..10, 1));
        t.observe(&SoakEvent::Acked {
            at_ms: 900,
            member: 1,
            partition: 0,
            records: (0..10).map(|o| (o, 1, AckType::Accept)).collect(),
            error: 0,
        });
        t.sample(1_000, 0);
        t.observe(&SoakEvent::Restart { at_ms: 2_000 });
        t.observe(&SoakEvent::RestartDone {
            at_ms: 4_000,
            error: None,
        });
        // Member 2 takes a batch and crashes: its bar is grey, its fault marked.
        t.observe(&delivered(2, 5_000, 10..12, 2));
        t.observe(&SoakEvent::MemberGone {
            at_ms: 6_000,
            member: 2,
            how: SoakFault::MemberCrash,
        });
        t.observe(&SoakEvent::Restart { at_ms: 8_000 });
        t.observe(&SoakEvent::RestartDone {
            at_ms: 8_500,
            error: None,
        });
        t.observe(&SoakEvent::QuietBegins { at_ms: 20_000 });
        let f = Finding {
            property: "one-owner",
            anomaly: sharecheck_model::Anomaly::WrongErrorCode,
            partition: 0,
            offset: 11,
            at_ms: 7_000,
            detail: "held by <1> and 2".into(),
        };
        let page = t.render(&report(vec![f]), &ReportHeading::default());
        assert!(page.contains("class=\"seg ok\""), "{page}");
        assert!(page.contains("class=\"seg gone\""), "{page}");
        assert!(page.contains("class=\"band restart\""));
        assert!(page.contains("class=\"band move\""));
        assert!(
            page.contains("<title>leader-move of partition 0: node 1 to node 2 8.0–8.5 s</title>")
        );
        // One timeline and two charts: the restart in each, the move not counted as one.
        assert_eq!(page.matches("class=\"band restart\"").count(), 3);
        assert!(page.contains("class=\"band quiet\""));
        assert!(page.contains("<title>6.000 s: member-crash of member 2</title>"));
        assert!(page.contains("<li id=\"finding-0\"><a href=\"#anomaly-0\">"));
        assert!(page.contains("<a href=\"#finding-0\"><circle id=\"anomaly-0\""));
        assert!(page.contains("held by &lt;1&gt; and 2"), "escaped detail");
        assert!(page.contains("t&lt;1&gt;"), "escaped topic");
        assert!(page.contains("<title>delivery count 1: 10</title>"));
        assert!(page.contains("<title>delivery count 2: 2</title>"));
        assert!(page.contains("<title>delivery count 5: 0</title>"));
        assert!(
            !page.contains("<script"),
            "no script: the page works from a file"
        );
    }

    #[test]
    fn long_runs_get_wider_bins_and_a_bounded_page() {
        let t = Timeline::new(10 * 3_600_000, 5_000, 5, 1);
        assert_eq!(t.bin_ms, 30_000);
        let mut t = Timeline::new(60_000, 5_000, 5, 1);
        assert_eq!(t.bin_ms, 1_000);
        for i in 0..(MAX_SEGMENTS as u64 + 10) {
            t.observe(&delivered(1, i, 0..1, 1));
        }
        let page = t.render(&report(vec![]), &ReportHeading::default());
        assert!(page.contains("10 later ones are not"), "undrawn counted");
    }
}
