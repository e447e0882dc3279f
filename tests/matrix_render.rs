//! The compatibility matrix as a browser shows it: `sharecheck matrix` writes `matrix.html` from two
//! real reports (the embedded broker and a planted bug, judged with a baseline), headless Chromium
//! renders it, and the test checks the cells in the rendered DOM and the colours in a screenshot.
//!
//! Needs Debian's `chromium` (or `SHARECHECK_CHROMIUM=/path`), so it is `#[ignore]`d; `.ci/run`
//! installs chromium when it is missing and runs this with `--include-ignored`. Without a browser the
//! test fails, it does not pass quietly.

mod browser;

use assert_cmd::Command;
use browser::{pixels, run_chromium};

fn sharecheck() -> Command {
    Command::new(assert_cmd::cargo::cargo_bin!("sharecheck"))
}

#[test]
#[ignore = "needs chromium; .ci/run installs it and runs this"]
fn the_matrix_renders_in_headless_chromium_with_its_cells_and_colours() {
    let dir = tempfile::tempdir().expect("tempdir");
    let good = dir.path().join("good.json");
    let bad = dir.path().join("bad.json");
    // Two real runs: the correct broker passes, a planted bug fails the case (exit 1).
    for (file, mutant) in [(&good, None), (&bad, Some("lag-off-by-one"))] {
        let mut c = sharecheck();
        c.args(["conform", "--filter", "kip932.offsets.*", "--json"])
            .arg(file)
            .arg("--artifacts")
            .arg(dir.path().join("artifacts"));
        if let Some(m) = mutant {
            c.args(["--mutant", m]);
        }
        c.assert().code(i32::from(mutant.is_some()));
    }
    let baseline = dir.path().join("baseline.json");
    std::fs::write(
        &baseline,
        r#"{"format_version":1,"target":"t","cases":{"kip932.offsets.lag-counts-records-not-yet-terminal":{"verdict":"fail","finding":"K9","why":"planted"}}}"#,
    )
    .expect("write baseline");
    let out = dir.path().join("matrix");
    sharecheck()
        .arg("matrix")
        .arg(format!("reference={}", good.display()))
        .arg(format!("lag-off-by-one={}", bad.display()))
        .arg("--baseline")
        .arg(format!("lag-off-by-one={}", baseline.display()))
        .arg("--out")
        .arg(&out)
        .assert()
        .code(0);
    let page = out.join("matrix.html");
    let url = format!("file://{}", page.display());

    // The DOM as the browser built it (the page is self-contained: nothing to wait for).
    let dom =
        String::from_utf8(run_chromium(&["--dump-dom".into(), url.clone()])).expect("UTF-8 DOM");
    assert!(
        dom.contains("<h1>sharecheck compatibility matrix</h1>"),
        "{dom}"
    );
    for header in ["reference", "lag-off-by-one"] {
        assert!(
            dom.contains(&format!(">{header}<br>")),
            "column {header}: {dom}"
        );
    }
    assert!(
        dom.contains("kip932.offsets.lag-counts-records-not-yet-terminal"),
        "{dom}"
    );
    assert!(dom.contains("class=\"pass\""), "a passing cell: {dom}");
    assert!(
        dom.contains("fail (K9)"),
        "the failing cell names its finding: {dom}"
    );
    assert!(
        dom.contains("class=\"area\""),
        "cases grouped by area: {dom}"
    );
    assert!(
        dom.contains("rerun: sharecheck replay ") && dom.contains("--mutant lag-off-by-one"),
        "the failing cell's rerun command: {dom}"
    );
    assert!(
        dom.contains("rerun: sharecheck conform --filter 'kip932.offsets."),
        "a passing cell's rerun command: {dom}"
    );

    // The screenshot: not blank, and both verdict colours on screen.
    let shot = dir.path().join("matrix.png");
    run_chromium(&[
        format!("--screenshot={}", shot.display()),
        "--window-size=1400,1000".into(),
        url,
    ]);
    let (w, h, px) = pixels(&shot);
    assert_eq!((w, h), (1400, 1000), "the window size asked for");
    let white = px.iter().filter(|p| **p == [255, 255, 255]).count();
    assert!(
        white < px.len() * 98 / 100,
        "a blank page: {white} of {} pixels white",
        px.len()
    );
    let near = |p: &[u8; 3], c: [u8; 3]| p.iter().zip(c).all(|(a, b)| a.abs_diff(b) <= 3);
    let pass = px.iter().filter(|p| near(p, [0xd9, 0xf2, 0xd9])).count();
    let fail = px.iter().filter(|p| near(p, [0xf7, 0xc6, 0xc6])).count();
    assert!(pass > 500, "pass cells on screen: {pass} green pixels");
    assert!(fail > 100, "the failing cell on screen: {fail} red pixels");
}
