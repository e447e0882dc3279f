//! `sharecheck check --design --export DIR`: each shortest counterexample of the durability-design
//! model as a conformance case, so that `sharecheck replay` can try it on a real broker.
//!
//! The member's steps and the faults become case steps; the share coordinator's choices (which
//! write lands when, which is lost) cannot be forced over the wire, so they are left to the broker
//! and listed in the case's notes. A replay therefore shows whether the broker *happens* to take
//! the ordering the model found; run it many times.

use sharecheck_conformance::trace::{
    Allowance, Capability, Case, Level, Origin, Selection, Settings, Step, Suite, FORMAT_VERSION,
};
use sharecheck_model::design::{
    self, DesignAction, DesignModel, DesignProfile, DesignProp, WriteOrder, LIMIT, RECORDS,
};
use sharecheck_model::spec::RecordState;
use sharecheck_model::Profile;
use stateright::Model;

/// The one member of the design model, on the wire.
const MEMBER: &str = "A";

/// The case for `prop`'s counterexample `actions` under `profile` and `order`.
pub fn case_of(
    profile: Profile,
    order: WriteOrder,
    leader_window: bool,
    prop: DesignProp,
    actions: &[DesignAction],
) -> Case {
    let model = DesignModel {
        profile: DesignProfile::of(profile),
        mutant: None,
        order,
        leader_window,
    };
    let mut state = model.init_states().remove(0);
    let mut steps = vec![Step::Produce {
        records: u32::from(RECORDS),
        batches: None,
        partition: 0,
    }];
    let mut requires = Vec::new();
    let mut unforced = Vec::new();
    let mut path = Vec::new();
    for (i, action) in actions.iter().enumerate() {
        path.push(format!("{}. {action}", i + 1));
        let step = match action {
            DesignAction::Load => None,
            DesignAction::Fetch(_) => Some(Step::Fetch {
                member: MEMBER.into(),
                max_records: 1,
                acquire_mode: None,
            }),
            // Sent to the former leader at once; whether it has applied the move by then is the
            // cluster's timing, which the wire cannot force.
            DesignAction::OldFetch(_) => {
                requires.push(Capability::FormerLeader);
                unforced.push(format!(
                    "{} (the former leader must not have applied the move yet)",
                    i + 1
                ));
                Some(Step::FetchFormerLeader {
                    member: MEMBER.into(),
                    max_records: 1,
                    partition: 0,
                })
            }
            DesignAction::OldLearns => {
                unforced.push(format!("{}", i + 1));
                None
            }
            DesignAction::Ack(o, t) => {
                let held: Vec<i64> = state.loaded.as_ref().map_or_else(Vec::new, |l| {
                    (0..i64::from(RECORDS))
                        .filter(|&x| {
                            l.part.record(x).map(|r| r.state)
                                == Some(RecordState::Acquired(design::MEMBER))
                        })
                        .collect()
                });
                let index = held.iter().position(|x| x == o).unwrap_or(0);
                Some(Step::Ack {
                    member: MEMBER.into(),
                    select: Selection::Indices(vec![index]),
                    ty: *t,
                    via: Default::default(),
                    partition: None,
                })
            }
            DesignAction::Expire(_) => Some(Step::WaitLockExpiry),
            DesignAction::CloseSession => Some(Step::CloseSession {
                member: MEMBER.into(),
            }),
            DesignAction::Land(_) | DesignAction::Lose(_) => {
                unforced.push(format!("{}", i + 1));
                None
            }
            // The group goes empty when the connection holding its last share session drops
            // (ShareSessionCache.onDisconnect@4.2.1:282-296); the member comes back as a new one.
            DesignAction::GroupEmpty => Some(Step::Rejoin {
                member: MEMBER.into(),
            }),
            DesignAction::LeaderChange { crash: true } => {
                requires.push(Capability::Restart);
                Some(Step::RestartLeader {
                    partition: 0,
                    hard: true,
                })
            }
            DesignAction::LeaderChange { crash: false } => {
                requires.push(Capability::LeaderMove);
                Some(Step::MoveLeader { partition: 0 })
            }
        };
        steps.extend(step);
        if let Some(next) = model.next_state(&state, action.clone()) {
            state = next;
        }
    }
    if prop == DesignProp::StartOffsetNeverBack {
        steps.push(Step::DescribeOffsets);
        requires.push(Capability::OffsetsAdmin);
    }
    // A liveness counterexample ends where the coordinator's state can no longer become terminal;
    // what makes that visible on the wire is the next read: the group goes empty, and the fetch
    // after it must not hand out what was acknowledged.
    let observe = prop == DesignProp::EventuallyAllTerminal;
    if observe {
        steps.push(Step::Rejoin {
            member: MEMBER.into(),
        });
        steps.push(Step::Fetch {
            member: MEMBER.into(),
            max_records: 1,
            acquire_mode: None,
        });
    }
    requires.sort();
    requires.dedup();
    let name = prop.name().trim_start_matches("design-");
    let line = profile.name.trim_start_matches("kafka-").replace('.', "");
    let mut settings = Settings {
        delivery_limit: Some(LIMIT),
        ..Settings::default()
    };
    // The forgotten count is what the oracle allows by default (F5); judged strictly here.
    let level = if prop == DesignProp::UnloadKeepsCounts {
        settings.without_allowances = vec![Allowance::GroupReload];
        Level::Should
    } else {
        Level::Must
    };
    Case {
        format_version: FORMAT_VERSION,
        id: format!(
            "kip932.faults.design-{name}-{line}-{}{}",
            order.name(),
            if leader_window { "-window" } else { "" }
        ),
        level,
        rule: format!(
            "the durability design's shortest way to break {} under {} ({} write order), tried on the wire",
            prop.name(),
            profile.name,
            order.name()
        ),
        source: "model/src/design.rs; docs/research/durability-design.md; docs/findings.md".into(),
        suite: Suite::Full,
        origin: Origin::Generated,
        settings,
        requires,
        steps,
        notes: Some(format!(
            "Exported by `sharecheck check --design --profile {} --write-order {}{} --export DIR`. \
             The model's path: {}. Left to the broker (the wire cannot force which write reaches \
             the share coordinator when): step(s) {}. The model's member fetches one record at a \
             time and its lock expiries are one record's; here a fetch takes the lowest available \
             and a wait expires every lock.{}",
            profile.name.trim_start_matches("kafka-"),
            order.name(),
            if leader_window { " --leader-window" } else { "" },
            path.join("; "),
            if unforced.is_empty() {
                "none".to_string()
            } else {
                unforced.join(", ")
            },
            if observe {
                " The last two steps (the group goes empty, a fetch) are not the model's: they \
                 read back what the coordinator kept."
            } else {
                ""
            }
        )),
        history: None,
        found_by: None,
    }
}
