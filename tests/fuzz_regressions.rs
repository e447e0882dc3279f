//! `sharecheck fuzz` findings kept forever (docs/fuzzing.md), and the fuzz command's contract.
//!
//! Every fixture in `fixtures/regressions/` was found and shrunk by `sharecheck fuzz --mutant NAME`
//! against the embedded reference broker. Each must still fail there (`sharecheck replay FIXTURE
//! --mutant NAME` exits 1) and pass on the correct reference broker (`sharecheck replay FIXTURE`
//! exits 0): the fixture pins the planted bug, and the oracle does not cry wolf on it. The commands
//! are the real binary, so this checks exactly what the README promises.
//!
//! Level (b) of the fuzzer (against the in-process broker over TCP) runs here too, kept small: a
//! few dozen cases on the correct broker pass, and one planted bug is found, shrunk and written.

use assert_cmd::Command;
use sharecheck_conformance::trace::{Case, Origin};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

fn sharecheck() -> Command {
    Command::new(assert_cmd::cargo::cargo_bin!("sharecheck"))
}

fn fixtures() -> Vec<(PathBuf, Case)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/regressions");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let case = Case::load(&p).unwrap_or_else(|e| panic!("{e}"));
            (p, case)
        })
        .collect()
}

/// The exit code of `sharecheck replay FILE [--mutant M]`, and its stdout.
fn replay(file: &Path, mutant: Option<&str>) -> (i32, String) {
    let mut cmd = sharecheck();
    cmd.arg("replay").arg(file);
    if let Some(m) = mutant {
        cmd.args(["--mutant", m]);
    }
    let out = cmd.output().expect("run sharecheck replay");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn every_fuzz_fixture_fails_on_its_mutant_and_passes_on_the_correct_broker() {
    let all = fixtures();
    let mutants: std::collections::BTreeSet<String> = all
        .iter()
        .filter_map(|(_, c)| c.found_by.as_ref().and_then(|f| f.mutant.clone()))
        .collect();
    assert!(
        mutants.len() >= 5,
        "fixtures/regressions pins {} mutants: {mutants:?}",
        mutants.len()
    );
    // One job per replay; a few at a time (the long-lock fixtures spend seconds waiting).
    let mut jobs: Vec<(PathBuf, Option<String>, i32)> = Vec::new();
    for (path, case) in &all {
        assert_eq!(case.origin, Origin::Fuzz, "{}", path.display());
        let found = case
            .found_by
            .as_ref()
            .unwrap_or_else(|| panic!("{}: no found_by", path.display()));
        assert!(
            found.command.starts_with("sharecheck fuzz --seed"),
            "{}",
            path.display()
        );
        assert!(found.steps_before_shrinking >= case.steps.len());
        assert!(case.settings.lock_duration_ms >= 1000, "Kafka-legal lock");
        jobs.push((path.clone(), None, 0));
        if let Some(m) = &found.mutant {
            jobs.push((path.clone(), Some(m.clone()), 1));
        }
    }
    let queue = Mutex::new(jobs);
    let failures = Mutex::new(Vec::<String>::new());
    std::thread::scope(|s| {
        for _ in 0..8 {
            s.spawn(|| loop {
                let Some((path, mutant, want)) = queue.lock().expect("queue").pop() else {
                    break;
                };
                let (code, stdout) = replay(&path, mutant.as_deref());
                if code != want {
                    let verdict = stdout
                        .lines()
                        .rev()
                        .find(|l| l.starts_with("verdict:"))
                        .unwrap_or("")
                        .to_string();
                    failures.lock().expect("failures").push(format!(
                        "sharecheck replay {}{} exited {code}, expected {want}: {verdict}",
                        path.display(),
                        mutant.map(|m| format!(" --mutant {m}")).unwrap_or_default()
                    ));
                }
            });
        }
    });
    let failures = failures.into_inner().expect("failures");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn fuzzing_the_correct_broker_passes_and_prints_seed_and_rate() {
    let scratch = tempfile::tempdir().expect("tempdir");
    let out = sharecheck()
        .args(["fuzz", "--cases", "40", "--seed", "7", "--max-ops", "12"])
        .arg("--artifacts")
        .arg(scratch.path())
        .arg("--out")
        .arg(scratch.path())
        .assert()
        .code(0)
        .get_output()
        .stdout
        .clone();
    let text = String::from_utf8_lossy(&out);
    assert!(text.contains("seed 7"), "{text}");
    assert!(
        text.contains("rerun: sharecheck fuzz --seed 7 --cases 40 --max-ops 12"),
        "{text}"
    );
    assert!(text.contains("cases/s"), "{text}");
    assert!(
        text.contains("40 case(s) in") && text.contains("40 passed, 0 failed"),
        "{text}"
    );
    assert!(text.trim_end().ends_with("verdict: pass"), "{text}");
}

#[test]
fn the_same_seed_prints_the_same_case() {
    let print = |seed: &str| {
        sharecheck()
            .args(["fuzz", "--seed", seed, "--print-case", "3"])
            .assert()
            .code(0)
            .get_output()
            .stdout
            .clone()
    };
    let a = print("11");
    assert_eq!(a, print("11"));
    assert_ne!(a, print("12"));
    let case = Case::parse(&String::from_utf8_lossy(&a), "printed").expect("a valid trace");
    assert_eq!(case.origin, Origin::Fuzz);
}

#[test]
fn a_planted_bug_is_found_shrunk_confirmed_and_written() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = sharecheck()
        .args([
            "fuzz",
            "--cases",
            "50",
            "--seed",
            "7",
            "--mutant",
            "reported-count-off-by-one",
            "--out",
        ])
        .arg(dir.path())
        .arg("--artifacts")
        .arg(dir.path().join("artifacts"))
        .assert()
        .code(1)
        .get_output()
        .stdout
        .clone();
    let text = String::from_utf8_lossy(&out);
    assert!(
        text.contains("confirmed: the shrunk case fails again"),
        "{text}"
    );
    assert!(
        text.contains("replayed on the correct reference broker: pass"),
        "{text}"
    );
    let written: Vec<PathBuf> = std::fs::read_dir(dir.path())
        .expect("out dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    assert_eq!(written.len(), 1, "{written:?}");
    let case = Case::load(&written[0]).expect("the fixture loads");
    // Produce one record, fetch it: the reported delivery count is 0 instead of 1.
    assert_eq!(case.steps.len(), 2, "{}", case.to_json());
    let found = case.found_by.expect("found_by");
    assert_eq!(found.mutant.as_deref(), Some("reported-count-off-by-one"));
    assert_eq!(found.seed, 7);
    assert_eq!(replay(&written[0], Some("reported-count-off-by-one")).0, 1);
    assert_eq!(replay(&written[0], None).0, 0);
}

#[test]
fn bad_flags_and_unusable_targets_get_their_exit_codes() {
    for args in [
        vec!["fuzz", "--cases", "0"],
        vec!["fuzz", "--members", "9"],
        vec!["fuzz", "--max-ops", "0"],
        vec!["fuzz", "--jobs", "0"],
        vec!["fuzz", "--lock-ms", "5"],
        vec!["fuzz", "--mutant", "no-such-bug"],
        vec!["fuzz", "--bootstrap", "127.0.0.1:1", "--lock-ms", "200"],
        vec![
            "fuzz",
            "--bootstrap",
            "127.0.0.1:1",
            "--mutant",
            "double-acquire",
        ],
        vec!["fuzz", "--seed", "minus-one"],
    ] {
        sharecheck().args(&args).assert().code(64);
    }
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let closed = l.local_addr().expect("addr").to_string();
    drop(l);
    sharecheck()
        .args([
            "fuzz",
            "--bootstrap",
            &closed,
            "--timeout",
            "2",
            "--cases",
            "1",
        ])
        .assert()
        .code(3);
}
