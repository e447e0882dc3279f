//! The model's properties and nothing else: the test command that measures how complete they are
//! (docs/mutation.md, `cargo mutants --file model/src/spec.rs --file model/src/session.rs`).
//!
//! A spec mutant changes the reference broker and the oracle alike (both call `model::spec`), so only
//! the model's own monitors — over what members are told — can notice it. These tests pin no state
//! counts and call no spec function directly: a mutant is caught here only if some named safety
//! property is violated, some record state or transition kind becomes unreachable, or liveness
//! fails, in the standard configuration under every profile or in one bigger configuration.

use sharecheck_model::check::{check, Status, Verdict};
use sharecheck_model::model::Config;
use sharecheck_model::Profile;

fn every_property_holds(config: Config) {
    let report = check(config, &mut |_, _| {});
    let broken: Vec<String> = report
        .properties
        .iter()
        .filter(|p| !matches!(p.status, Status::Holds | Status::Reached))
        .map(|p| format!("{} ({:?})", p.name, p.status))
        .collect();
    assert!(
        broken.is_empty() && report.verdict == Verdict::Pass,
        "{} records, {} members, limit {}, window {}, {}: {broken:?}",
        config.records,
        config.members,
        config.delivery_limit,
        config.max_in_flight,
        config.profile.name
    );
}

#[test]
fn the_standard_configuration_keeps_every_property_under_every_profile() {
    for profile in Profile::ALL {
        every_property_holds(Config {
            profile,
            ..Config::STANDARD
        });
    }
}

#[test]
fn a_bigger_configuration_keeps_every_property() {
    // Four records with a window of three: acquisitions that stop at the window, SPSO moves past
    // several terminal records at once, and a delivery limit of two reached by every route.
    every_property_holds(Config {
        records: 4,
        members: 2,
        delivery_limit: 2,
        max_in_flight: 3,
        restarts: 1,
        ..Config::STANDARD
    });
}

#[test]
fn the_standard_configuration_keeps_every_property_with_renew_disabled() {
    // `share.renew.acknowledge.enable=false` (4.3+): every RENEW is refused, and
    // `renew-refused-when-disabled` watches that none is answered with success.
    for profile in Profile::ALL.into_iter().filter(|p| p.has_renew_switch()) {
        every_property_holds(Config {
            profile,
            renew_enabled: false,
            ..Config::STANDARD
        });
    }
}
