//! The soak's report as a browser shows it: `sharecheck soak --report DIR` on the embedded broker
//! (60 s, seed 1, with member crashes and broker restarts; it must pass), and once against a
//! planted bug (it must fail, and its findings must link to their marks on the timeline). Headless
//! Chromium renders each page; the test checks the rendered DOM and a screenshot.
//!
//! Needs Debian's `chromium` (or `SHARECHECK_CHROMIUM=/path`), so it is `#[ignore]`d; `.ci/run`
//! installs chromium when it is missing and runs this with `--include-ignored`.

mod browser;

use assert_cmd::Command;
use browser::{pixels, run_chromium};
use std::path::Path;

fn sharecheck() -> Command {
    Command::new(assert_cmd::cargo::cargo_bin!("sharecheck"))
}

fn dom_of(page: &Path) -> String {
    assert!(page.is_file(), "{} was not written", page.display());
    let url = format!("file://{}", page.display());
    String::from_utf8(run_chromium(&["--dump-dom".into(), url])).expect("UTF-8 DOM")
}

#[test]
#[ignore = "needs chromium; .ci/run installs it and runs this"]
fn the_soak_report_renders_its_timelines_faults_charts_and_linked_findings() {
    let dir = tempfile::tempdir().expect("tempdir");

    // The correct broker: exit 0, and a page with every picture.
    let good = dir.path().join("good");
    sharecheck()
        .args(["soak", "--duration", "60s", "--seed", "1"])
        .args([
            "--faults",
            "member-crash,broker-restart",
            "--fault-every",
            "10s",
        ])
        .arg("--report")
        .arg(&good)
        .assert()
        .code(0);
    let page = good.join("soak.html");
    let dom = dom_of(&page);
    assert!(dom.contains("<h1>sharecheck soak</h1>"), "{dom}");
    assert!(dom.contains("verdict: pass"), "the verdict");
    assert!(dom.contains("--seed 1 --duration 60s"), "the rerun command");
    for id in [
        "timeline-p0",
        "timeline-p1",
        "throughput",
        "in-flight",
        "histogram",
    ] {
        assert!(dom.contains(&format!("id=\"{id}\"")), "the picture {id}");
    }
    assert!(
        dom.contains("class=\"seg ok\""),
        "acknowledged batches drawn"
    );
    assert!(dom.contains("class=\"band restart\""), "restarts as bands");
    assert!(dom.contains("class=\"band quiet\""), "the quiet period");
    assert!(
        dom.contains("member-crash of member"),
        "member crashes marked"
    );
    assert!(dom.contains("<title>delivery count 1: "), "the histogram");
    assert!(
        dom.contains("class=\"line acknowledged\" points=\""),
        "throughput line"
    );
    assert!(dom.contains("<p class=\"none\">none</p>"), "no findings");
    assert!(
        !dom.contains("<script"),
        "nothing to run: the page is self-contained"
    );

    let shot = dir.path().join("soak.png");
    run_chromium(&[
        format!("--screenshot={}", shot.display()),
        "--window-size=1300,1200".into(),
        format!("file://{}", page.display()),
    ]);
    let (w, h, px) = pixels(&shot);
    assert_eq!((w, h), (1300, 1200), "the window size asked for");
    let white = px.iter().filter(|p| **p == [255, 255, 255]).count();
    assert!(
        white < px.len() * 97 / 100,
        "a blank page: {white} of {} pixels white",
        px.len()
    );
    let near = |p: &[u8; 3], c: [u8; 3]| p.iter().zip(c).all(|(a, b)| a.abs_diff(b) <= 3);
    let green = px.iter().filter(|p| near(p, [0x43, 0xa0, 0x47])).count();
    assert!(
        green > 2_000,
        "acknowledged batches on screen: {green} green pixels"
    );
    let verdict = px.iter().filter(|p| near(p, [0x2e, 0x7d, 0x32])).count();
    assert!(
        verdict > 200,
        "the green verdict badge on screen: {verdict} pixels"
    );

    // A planted bug: exit 1, and each finding links to its mark and back.
    let bad = dir.path().join("bad");
    sharecheck()
        .args([
            "soak",
            "--mutant",
            "double-acquire",
            "--duration",
            "20s",
            "--seed",
            "7",
        ])
        .args([
            "--faults",
            "member-crash,broker-restart",
            "--fault-every",
            "4s",
            "--fail-fast",
        ])
        .arg("--report")
        .arg(&bad)
        .assert()
        .code(1);
    let dom = dom_of(&bad.join("soak.html"));
    assert!(dom.contains("verdict: fail"), "the verdict");
    assert!(
        dom.contains("<li id=\"finding-0\"><a href=\"#anomaly-0\">"),
        "the first finding links to its mark: {dom}"
    );
    assert!(
        dom.contains("<a href=\"#finding-0\"><circle id=\"anomaly-0\" class=\"anomaly\""),
        "its mark links back"
    );
    // Which property the run trips first depends on timing (--fail-fast stops there); each is one
    // that double-acquire breaks (README, "Soak").
    assert!(
        [
            "one-owner",
            "delivery-limit-respected",
            "count-never-decreases"
        ]
        .iter()
        .any(|p| dom.contains(&format!("<b>{p}</b>"))),
        "the property named: {dom}"
    );
}

#[test]
fn a_report_directory_that_cannot_be_written_fails_before_the_run() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("a-file");
    std::fs::write(&file, "x").expect("write");
    let out = sharecheck()
        .args(["soak", "--duration", "600s", "--report"])
        .arg(file.join("report"))
        .assert()
        .code(74)
        .get_output()
        .clone();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cannot create the report directory"), "{err}");
}
