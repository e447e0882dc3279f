//! Hostile input files never panic: traces, fixtures and histories — mutated copies of the real
//! ones and arbitrary JSON — are either refused with a reason (exit 65 at the CLI) or accepted and
//! then judged without a panic, an abort or a hang. Fixed seeds; `PROPTEST_CASES` raises the count.

use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
use sharecheck_conformance::history::{self, History};
use sharecheck_conformance::oracle;
use sharecheck_conformance::trace::Case;
use std::path::PathBuf;

fn fixtures() -> Vec<(String, String)> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fixtures");
    let mut out = Vec::new();
    for dir in ["cases", "regressions"] {
        let mut files: Vec<PathBuf> = std::fs::read_dir(root.join(dir))
            .expect("fixtures")
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        files.sort();
        for f in files {
            let text = std::fs::read_to_string(&f).expect("fixture");
            out.push((f.display().to_string(), text));
        }
    }
    out.push(("a recorded history".into(), recorded_history()));
    out
}

/// A real recorded history: a case run on the reference broker, stored as an artifact is.
fn recorded_history() -> String {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        use sharecheck_conformance::target::{start_embedded, EmbeddedOptions};
        let e = start_embedded(EmbeddedOptions::new(
            sharecheck_model::Profile::DEFAULT,
            None,
        ))
        .await
        .expect("broker");
        let catalog = sharecheck_conformance::scenario::catalog().expect("catalog");
        let case = catalog
            .iter()
            .find(|c| c.id == "kip932.ack.release-redelivers")
            .expect("case");
        let opts = sharecheck_conformance::run::RunOptions::default();
        let r = sharecheck_conformance::run::run_case(&e.target, &opts, case, 0).await;
        let mut c = case.clone();
        c.history = Some(r.stored_history(&e.target));
        c.to_json()
    })
}

/// Accepting or refusing is fine; panicking is not. Whatever parses is judged.
fn digest(text: &str) {
    if let Ok(case) = Case::parse(text, "fuzzed") {
        if let Some(h) = &case.history {
            let _ = oracle::judge(&h.events, None);
        }
    }
    if let Ok(h) = serde_json::from_str::<History>(text) {
        if h.validate().is_ok() {
            let _ = oracle::judge(&h.events, None);
        }
    }
}

/// One mutation of JSON text: a byte flipped, a span cut or doubled, or a number replaced by an
/// extreme one.
fn mutate(text: &str, choice: u8, at: usize, len: usize) -> String {
    let mut b = text.as_bytes().to_vec();
    if b.is_empty() {
        return String::new();
    }
    let at = at % b.len();
    let end = (at + len % 64).min(b.len());
    match choice % 5 {
        0 => b[at] ^= 1 << (len % 8),
        1 => {
            b.drain(at..end);
        }
        2 => {
            let dup = b[at..end].to_vec();
            b.splice(at..at, dup);
        }
        _ => {
            const EXTREMES: [&str; 8] = [
                "-1",
                "0",
                "9223372036854775807",
                "-9223372036854775808",
                "18446744073709551615",
                "1e308",
                "4294967296",
                "65536",
            ];
            // The next number at or after `at`.
            if let Some(start) = (at..b.len()).find(|i| b[*i].is_ascii_digit()) {
                let stop = (start..b.len())
                    .find(|i| !b[*i].is_ascii_digit())
                    .unwrap_or(b.len());
                let e = EXTREMES[len % EXTREMES.len()].as_bytes().to_vec();
                b.splice(start..stop, e);
            }
        }
    }
    String::from_utf8_lossy(&b).into_owned()
}

fn runner(seed: u8, cases: u32) -> TestRunner {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(cases);
    TestRunner::new_with_rng(
        Config {
            cases,
            failure_persistence: None,
            ..Config::default()
        },
        TestRng::from_seed(RngAlgorithm::ChaCha, &[seed; 32]),
    )
}

#[test]
fn mutated_fixtures_and_histories_never_panic() {
    let files = fixtures();
    assert!(files.len() > 70, "{} files", files.len());
    let mut r = runner(7, 3000);
    r.run(
        &(
            0..files.len(),
            prop::collection::vec((any::<u8>(), any::<usize>(), any::<usize>()), 1..4),
        ),
        |(i, muts)| {
            let mut text = files[i].1.clone();
            for (c, at, len) in muts {
                text = mutate(&text, c, at, len);
            }
            digest(&text);
            Ok(())
        },
    )
    .expect("no panic");
}

/// Arbitrary JSON in the shape of a history: events with any names, any numbers.
fn event() -> impl Strategy<Value = serde_json::Value> {
    let num = prop_oneof![
        Just(serde_json::json!(0)),
        Just(serde_json::json!(-1)),
        Just(serde_json::json!(i64::MAX)),
        Just(serde_json::json!(i64::MIN)),
        Just(serde_json::json!(u64::MAX)),
        (0i64..2000).prop_map(|n| serde_json::json!(n)),
    ];
    let kinds = prop_oneof![
        Just("share_fetch"),
        Just("share_acknowledge"),
        Just("produce"),
        Just("join"),
        Just("disconnect"),
        Just("restart"),
        Just("fetch_begin"),
        Just("fetch_end"),
        Just("claim"),
        Just("step_end"),
    ];
    (kinds, prop::collection::vec(num, 12), 0usize..3).prop_map(|(kind, n, m)| {
        let member = ["A", "B", ""][m];
        let acks = serde_json::json!([{"partition": 0, "batches": [
            {"first_offset": n[8], "last_offset": n[9], "types": [n[10]]}]}]);
        let partitions = serde_json::json!([{"partition": 0, "error": n[5], "ack_error": n[11],
            "acquired": [[n[8], n[9], n[10]]], "records": [[n[8], "p0"]]}]);
        match kind {
            "share_fetch" => serde_json::json!({"event": kind, "step": n[0], "member": member,
                "epoch": n[1], "max_records": n[2], "acks": acks, "sent_ms": n[3],
                "received_ms": n[4], "error": n[5], "lock_timeout_ms": n[6],
                "partitions": partitions}),
            "share_acknowledge" => serde_json::json!({"event": kind, "step": n[0],
                "member": member, "epoch": n[1], "acks": acks, "sent_ms": n[3],
                "received_ms": n[4], "error": n[5],
                "partitions": [{"partition": 0, "error": n[11]}]}),
            "produce" => serde_json::json!({"event": kind, "step": n[0], "partition": 0,
                "batches": [n[7]], "base_offsets": [n[8]], "value_prefix": "p", "sent_ms": n[3],
                "received_ms": n[4]}),
            "join" => serde_json::json!({"event": kind, "step": n[0], "member": member,
                "member_id": "x", "sent_ms": n[3], "received_ms": n[4]}),
            "disconnect" => serde_json::json!({"event": kind, "step": n[0], "member": member,
                "at_ms": n[3]}),
            "restart" => serde_json::json!({"event": kind, "step": n[0], "sent_ms": n[3],
                "received_ms": n[4]}),
            "fetch_begin" => serde_json::json!({"event": kind, "step": n[0], "member": member,
                "max_records": n[2], "horizon_ms": n[4], "patience_ms": n[6]}),
            "fetch_end" => serde_json::json!({"event": kind, "step": n[0], "member": member}),
            "claim" => serde_json::json!({"event": kind, "step": n[0], "member": member,
                "at_least": n[9]}),
            _ => serde_json::json!({"event": "step_end", "step": n[0], "outcome": "o"}),
        }
    })
}

/// How many arbitrary histories were valid enough to be judged (so the test cannot pass by
/// refusing everything).
static JUDGED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

#[test]
fn arbitrary_event_histories_never_panic() {
    let mut r = runner(11, 2000);
    r.run(
        &(prop::collection::vec(event(), 0..24), 1u64..4000, 2u8..6),
        |(mut events, lock, limit)| {
            // Steps in order, so that most histories get past validation and are judged.
            for (i, e) in events.iter_mut().enumerate() {
                e["step"] = serde_json::json!(i + 1);
            }
            let mut all = vec![
                serde_json::json!({"event": "setup", "topic": "t", "group": "g",
                "partitions": 1, "profile": "kafka-4.2", "delivery_limit": limit,
                "group_delivery_limit": true, "max_in_flight": 2000, "lock_ms": lock,
                "tolerance_ms": 300, "latest_reset": false, "max_candidates": 64}),
            ];
            all.extend(events);
            let h = serde_json::json!({"format_version": history::HISTORY_FORMAT_VERSION,
                "target": {"address": "a", "implementation": "i"}, "events": all});
            if let Ok(h) = serde_json::from_value::<History>(h.clone()) {
                if h.validate().is_ok() {
                    JUDGED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
            }
            digest(&h.to_string());
            Ok(())
        },
    )
    .expect("no panic");
    let judged = JUDGED.load(std::sync::atomic::Ordering::Relaxed);
    eprintln!("{judged} arbitrary histories judged");
    assert!(judged > 100, "only {judged} histories were judged");
}
