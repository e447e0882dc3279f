//! The compatibility matrix as a browser shows it: `sharecheck matrix` writes `matrix.html` from two
//! real reports (the embedded broker and a planted bug, judged with a baseline), headless Chromium
//! renders it, and the test checks the cells in the rendered DOM and the colours in a screenshot.
//!
//! Needs Debian's `chromium` (or `SHARECHECK_CHROMIUM=/path`), so it is `#[ignore]`d; `.ci/run`
//! installs chromium when it is missing and runs this with `--include-ignored`. Without a browser the
//! test fails, it does not pass quietly.

use assert_cmd::Command;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

fn sharecheck() -> Command {
    Command::new(assert_cmd::cargo::cargo_bin!("sharecheck"))
}

fn chromium() -> PathBuf {
    if let Ok(p) = std::env::var("SHARECHECK_CHROMIUM") {
        return PathBuf::from(p);
    }
    for name in ["chromium", "chromium-browser", "google-chrome"] {
        if let Some(dir) = std::env::var_os("PATH")
            .iter()
            .flat_map(std::env::split_paths)
            .find(|d| d.join(name).is_file())
        {
            return dir.join(name);
        }
    }
    panic!("no chromium on PATH (apt-get install chromium, or set SHARECHECK_CHROMIUM)");
}

/// Runs headless Chromium with a deadline: a browser that hangs fails the test, it does not hang it.
fn run_chromium(args: &[String]) -> Vec<u8> {
    let profile = tempfile::tempdir().expect("profile dir");
    let mut child = std::process::Command::new(chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--hide-scrollbars",
            "--no-first-run",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start chromium");
    let mut stdout = child.stdout.take().expect("stdout");
    let reader = std::thread::spawn(move || {
        let mut out = Vec::new();
        std::io::Read::read_to_end(&mut stdout, &mut out).expect("read chromium");
        out
    });
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("wait chromium") {
            assert!(status.success(), "chromium {args:?}: {status}");
            return reader.join().expect("reader");
        }
        if start.elapsed() > Duration::from_secs(120) {
            let _ = child.kill();
            panic!("chromium {args:?} did not finish in 120 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The screenshot's pixels, RGB.
fn pixels(png_path: &Path) -> (u32, u32, Vec<[u8; 3]>) {
    let decoder = png::Decoder::new(std::fs::File::open(png_path).expect("screenshot"));
    let mut reader = decoder.read_info().expect("a PNG");
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).expect("a frame");
    let step = match info.color_type {
        png::ColorType::Rgb => 3,
        png::ColorType::Rgba => 4,
        other => panic!("screenshot colour type {other:?}"),
    };
    assert_eq!(info.bit_depth, png::BitDepth::Eight);
    let px = buf[..info.buffer_size()]
        .chunks_exact(step)
        .map(|c| [c[0], c[1], c[2]])
        .collect();
    (info.width, info.height, px)
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
