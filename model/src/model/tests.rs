//! The model's regression tests: pinned state counts (a changed number is a changed model and must be
//! approved), properties on the correct spec under every profile, and every mutant caught.

use super::*;
use crate::check::{check, steps_of_path, Status, Verdict};
use crate::graph;
use stateright::Checker;

fn with(config: Config, mutant: Mutant) -> Config {
    Config {
        mutant: Some(mutant),
        ..config
    }
}

const SMALL: Config = Config {
    records: 2,
    members: 2,
    delivery_limit: 2,
    max_in_flight: 2,
    restarts: 1,
    ..Config::STANDARD
};

#[test]
fn state_counts_are_pinned() {
    // Breadth-first without symmetry, depth-first with member symmetry, and the graph pass (which
    // must agree with the depth-first count: both keep one state per member permutation).
    for (config, bfs, dfs_sym) in [
        (SMALL, 1_746, 935),
        (Config::STANDARD, 73_475, 37_817),
        (
            Config {
                profile: Profile::KAFKA_4_1,
                ..Config::STANDARD
            },
            213_691,
            108_645,
        ),
    ] {
        let model = ShareModel::new(config);
        let plain = model.clone().checker().spawn_bfs().join();
        assert_eq!(plain.unique_state_count(), bfs, "bfs count for {config:?}");
        let sym = model.clone().checker().symmetry().spawn_dfs().join();
        assert_eq!(
            sym.unique_state_count(),
            dfs_sym,
            "dfs+symmetry count for {config:?}"
        );
        assert_eq!(
            graph::explore(&model).unique_states,
            dfs_sym,
            "graph pass for {config:?}"
        );
    }
}

#[test]
fn correct_spec_passes_under_every_profile() {
    for profile in Profile::ALL {
        let report = check(
            Config {
                profile,
                ..Config::STANDARD
            },
            &mut |_, _| {},
        );
        let bad: Vec<_> = report
            .properties
            .iter()
            .filter(|p| !matches!(p.status, Status::Holds | Status::Reached))
            .map(|p| p.name.clone())
            .collect();
        assert!(bad.is_empty(), "{}: {bad:?}", profile.name);
        assert_eq!(report.verdict, Verdict::Pass);
        let renew = report.properties.iter().any(|p| p.name == "covers-renew");
        assert_eq!(
            renew, profile.renew,
            "RENEW coverage only where the profile has it"
        );
    }
}

#[test]
fn every_mutant_is_caught_with_a_counterexample() {
    for mutant in Mutant::ALL {
        let report = check(with(Config::STANDARD, mutant), &mut |_, _| {});
        assert_eq!(report.verdict, Verdict::Fail, "{mutant} not caught");
        let witnessed = report.properties.iter().any(|p| {
            p.status == Status::Violated && p.counterexample.as_ref().is_some_and(|c| c.len() > 1)
        });
        assert!(
            witnessed,
            "{mutant}: no violated property with a counterexample"
        );
    }
}

/// Which property catches which mutant, with the length of its shortest counterexample (actions).
#[test]
fn mutants_are_caught_by_the_expected_property() {
    let expect = [
        (Mutant::DoubleAcquire, Prop::OneOwner, 3),
        (Mutant::NonOwnerAck, Prop::OnlyOwnerAcks, 5),
        (Mutant::SilentInvalidAck, Prop::UnownedAckRejected, 4),
        (Mutant::RejectRedelivers, Prop::ArchivedNeverRedelivered, 4),
        (
            Mutant::ExpiryReopensAcknowledged,
            Prop::TerminalAbsorbing,
            4,
        ),
        (
            Mutant::SessionReleaseDecrements,
            Prop::CountNeverDecreases,
            3,
        ),
        (
            Mutant::ReleaseAtLimitAvailable,
            Prop::DeliveryLimitRespected,
            8,
        ),
        (Mutant::NoCountIncrement, Prop::DeliveryLimitRespected, 8),
        (
            Mutant::SpsoSkipsAcquired,
            Prop::SpsoNeverPassesNonTerminal,
            4,
        ),
        (Mutant::WindowOvershoot, Prop::WindowLimitRespected, 4),
        (Mutant::ReportedCountOffByOne, Prop::ReportedCountMatches, 2),
        (Mutant::NonAtomicAck, Prop::AckAtomic, 5),
        (
            Mutant::SessionCloseKeepsLocks,
            Prop::SessionCloseReleases,
            3,
        ),
    ];
    for (mutant, prop, len) in expect {
        let steps = crate::check::shortest_counterexample(
            with(Config::STANDARD, mutant),
            prop,
            &mut |_, _| {},
        )
        .unwrap_or_else(|| panic!("{mutant}: {} not violated", prop.name()));
        assert_eq!(
            steps.len() - 1,
            len,
            "{mutant}: shortest counterexample to {}",
            prop.name()
        );
    }
}

#[test]
fn liveness_catches_locks_that_never_expire_and_fetches_that_never_look_back() {
    for mutant in [Mutant::ExpiryNeverFires, Mutant::StaleFetchOffset] {
        let model = ShareModel::new(with(Config::STANDARD, mutant));
        let stuck = graph::explore(&model).liveness_counterexample;
        assert!(stuck.is_some(), "{mutant}: liveness not violated");
    }
    let model = ShareModel::new(Config::STANDARD);
    assert!(graph::explore(&model).liveness_counterexample.is_none());
}

#[test]
fn stale_ack_after_expiry_is_refused_not_applied() {
    // Member A's lock expires, B takes the record, A's late ACCEPT must fail and change nothing.
    let model = ShareModel::new(Config::STANDARD);
    let actions = [
        Action::Produce,
        Action::Fetch {
            member: 0,
            max_records: 1,
        },
        Action::ExpireLock { offset: 0 },
        Action::Fetch {
            member: 1,
            max_records: 1,
        },
        Action::Ack {
            member: 0,
            offsets: 1,
            ty: AckType::Accept,
        },
    ];
    let path = stateright::Path::from_actions(&model, State::initial(&model.config), &actions)
        .expect("every action is enabled along the way");
    let last = path.last_state().clone();
    assert_eq!(last.violations, 0);
    assert_eq!(
        last.part.record(0).map(|r| (r.state, r.delivery_count)),
        Some((RecordState::Acquired(1), 2))
    );
    let steps = steps_of_path(path);
    assert_eq!(steps.len(), 6);
    assert_eq!(steps[5].action.as_deref(), Some("member A acks ACCEPT [0]"));
}

#[test]
fn representative_is_a_canonical_member_renaming() {
    let model = ShareModel::new(Config::STANDARD);
    let s = model
        .next_state(&State::initial(&model.config), Action::Produce)
        .unwrap();
    let a = model
        .next_state(
            &s,
            Action::Fetch {
                member: 0,
                max_records: 1,
            },
        )
        .unwrap();
    let b = model
        .next_state(
            &s,
            Action::Fetch {
                member: 1,
                max_records: 1,
            },
        )
        .unwrap();
    assert_ne!(a, b);
    assert_eq!(a.representative(), b.representative());
    assert_eq!(a.representative().representative(), a.representative());
}

#[test]
fn config_bounds_are_validated() {
    assert!(Config::STANDARD.validate().is_ok());
    assert!(Config {
        records: 7,
        ..Config::STANDARD
    }
    .validate()
    .unwrap_err()
    .0
    .contains("--records"));
    assert!(Config {
        members: 0,
        ..Config::STANDARD
    }
    .validate()
    .unwrap_err()
    .0
    .contains("--members"));
    assert!(Config {
        delivery_limit: 1,
        ..Config::STANDARD
    }
    .validate()
    .unwrap_err()
    .0
    .contains("--delivery-limit"));
    // 4.2 has RENEW but no switch to turn it off; 4.3 has both.
    assert!(Config {
        renew_enabled: false,
        ..Config::STANDARD
    }
    .validate()
    .unwrap_err()
    .0
    .contains("--renew-disabled needs kafka-4.3"));
    assert!(Config {
        renew_enabled: false,
        profile: crate::Profile::KAFKA_4_3,
        ..Config::STANDARD
    }
    .validate()
    .is_ok());
}

#[test]
fn transition_examples_cover_every_kind_and_pair() {
    let examples = graph::transition_examples(&ShareModel::new(Config::STANDARD));
    for kind in Transition::ALL {
        let t = examples
            .get(&(kind, None))
            .unwrap_or_else(|| panic!("no example of {kind:?}"));
        let model = ShareModel::new(Config::STANDARD);
        // The example is a real path of the model, ending with that kind.
        let mut s = t.init.clone();
        let mut last = Transitions::default();
        for (a, next) in &t.steps {
            let (n, k) = model.step(&s, a).expect("enabled");
            assert_eq!(&n, next);
            s = n;
            last = k;
        }
        assert!(last.contains(kind));
    }
    let pairs = examples
        .keys()
        .filter(|(_, second)| second.is_some())
        .count();
    assert!(pairs > 100, "{pairs} pairs");
}

#[test]
fn batches_of_splits_a_mask_into_contiguous_runs() {
    let runs = |mask: u8| -> Vec<(Offset, Offset)> {
        batches_of(mask, AckType::Accept)
            .iter()
            .map(|b| (b.first_offset, b.last_offset))
            .collect()
    };
    assert_eq!(runs(0), vec![]);
    assert_eq!(runs(0b1), vec![(0, 0)]);
    assert_eq!(runs(0b1011), vec![(0, 1), (3, 3)]);
    assert_eq!(runs(0b0110_0100), vec![(2, 2), (5, 6)]);
    assert_eq!(runs(0xff), vec![(0, 7)]);
    assert_eq!(runs(0b1000_0001), vec![(0, 0), (7, 7)]);
    assert!(batches_of(0b101, AckType::Reject)
        .iter()
        .all(|b| b.types.as_slice() == [AckType::Reject.code()]));
}

#[test]
fn a_failing_conjunction_is_checked_again_property_by_property() {
    // The fast pass checks the safety properties as one; a mutant that breaks two of them must still
    // have both named, each with its own counterexample.
    let report = check(with(Config::STANDARD, Mutant::NonOwnerAck), &mut |_, _| {});
    assert_eq!(report.verdict, Verdict::Fail);
    let violated: Vec<&str> = report
        .properties
        .iter()
        .filter(|p| p.status == Status::Violated)
        .map(|p| p.name.as_str())
        .collect();
    assert!(violated.len() >= 2, "{violated:?}");
    assert!(!violated.contains(&SAFETY));
    assert!(report
        .properties
        .iter()
        .filter(|p| p.status == Status::Violated)
        .all(|p| p.counterexample.as_ref().is_some_and(|c| c.len() > 1)));
}

#[test]
fn every_safety_property_is_monitored_by_the_checker() {
    // A `Prop` in SAFETY that `properties()` leaves out can never be reported violated.
    let model = ShareModel::new(Config::STANDARD);
    let monitored: Vec<&str> = model.properties().iter().map(|p| p.name).collect();
    for prop in Prop::SAFETY {
        assert!(
            monitored.contains(&prop.name()),
            "{} is not monitored",
            prop.name()
        );
    }
}
