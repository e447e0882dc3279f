//! Generators and checks for level (a) of `sharecheck fuzz` (docs/fuzzing.md): long random action
//! sequences through [`ShareModel::step`] with more records, members, restarts and larger delivery
//! limits than the model checker explores, and raw acknowledgement requests against the spec.
//!
//! Shared by `tests/spec_props.rs` and `examples/bench_fuzz.rs` (included there with `#[path]`).
//! Operations name records and members *relatively* (an index into what exists when the operation
//! runs), so proptest can delete any operation while shrinking and the rest still mean something
//! (proptest deletes and simplifies operations independently); an operation that is not enabled when it runs is skipped.

#![allow(dead_code)]

use proptest::prelude::*;
use sharecheck_model::model::{Action, Config, ShareModel, State, MAX_MEMBERS, MAX_RECORDS};
use sharecheck_model::profile::WindowRule;
use sharecheck_model::spec::{
    AckBatch, AckType, ErrorCode, MemberIdx, Offset, RecordState, Rules, SharePartition,
};
use sharecheck_model::{Mutant, Profile};

/// One model-level operation, with relative references.
#[derive(Clone, Debug)]
pub enum MOp {
    /// A record is produced.
    Produce,
    /// Member `member` fetches up to `max_records`.
    Fetch { member: u8, max_records: u8 },
    /// Member `member` acknowledges the held records selected by the bits of `pick` (bit i = its
    /// i-th held record), with type `ty`.
    Ack { member: u8, pick: u8, ty: AckType },
    /// Member `member` acknowledges any offsets (bit o = offset o), held or not: stale, unowned,
    /// already-acknowledged and unfetched records alike.
    AckAny {
        member: u8,
        offsets: u8,
        ty: AckType,
    },
    /// The lock of the `index`-th record whose lock can expire expires.
    Expire { index: u8 },
    /// Member `member` closes its share session.
    Close { member: u8 },
    /// Member `member`'s connection drops.
    Disconnect { member: u8 },
    /// Member `member` crashes silently.
    Crash { member: u8 },
    /// The broker restarts.
    Restart,
}

/// Configurations beyond the model checker's standard bounds (3 records, 2 members, limit 3,
/// window 2, 1 restart): up to the model's maxima of records and members, every profile, delivery
/// limits over Kafka's whole range, windows from 1 to past the record count, up to 3 restarts.
pub fn config() -> impl Strategy<Value = Config> {
    (
        1..=MAX_RECORDS,
        1..=MAX_MEMBERS,
        2u8..=10,
        1u32..=(u32::from(MAX_RECORDS) + 1),
        0u8..=3,
        0..Profile::ALL.len(),
    )
        .prop_map(
            |(records, members, delivery_limit, max_in_flight, restarts, p)| Config {
                records,
                members,
                delivery_limit,
                max_in_flight,
                restarts,
                profile: Profile::ALL[p],
                mutant: None,
                renew_enabled: true,
            },
        )
}

/// Takes `n` values off the front of a generated word: `take(&mut w, n)` is in `0..n`.
fn take(w: &mut u64, n: u64) -> u64 {
    let v = *w % n;
    *w /= n;
    v
}

/// An acknowledge type from a generated word: RELEASE and RENEW weighted up so records stay in
/// flight longer (a terminal record has nothing left to do); ACCEPT is the simplest (0).
fn ack_type_of(w: &mut u64) -> AckType {
    match take(w, 11) {
        0..=2 => AckType::Accept,
        3..=6 => AckType::Release,
        7 => AckType::Reject,
        8 => AckType::Gap,
        _ => AckType::Renew,
    }
}

/// The operation a generated word stands for. Operations are drawn as plain words and decoded, not
/// built from nested `prop_oneof!`s: generation is then about ten times cheaper (it dominated the
/// run time), and shrinking a word towards 0 still simplifies the operation towards "member A
/// fetches one record". Fetches and acknowledgements dominate; every member is equally likely.
pub fn decode_op(word: u64) -> MOp {
    let mut w = word;
    let slot = take(&mut w, 23);
    let member = take(&mut w, u64::from(MAX_MEMBERS)) as u8;
    match slot {
        0..=5 => MOp::Fetch {
            member,
            max_records: 1 + take(&mut w, u64::from(MAX_RECORDS)) as u8,
        },
        6..=11 => {
            let ty = ack_type_of(&mut w);
            MOp::Ack {
                member,
                pick: take(&mut w, 256) as u8,
                ty,
            }
        }
        12..=14 => MOp::Produce,
        15 | 16 => {
            let ty = ack_type_of(&mut w);
            MOp::AckAny {
                member,
                offsets: take(&mut w, 64) as u8,
                ty,
            }
        }
        17 | 18 => MOp::Expire {
            index: take(&mut w, 256) as u8,
        },
        19 => MOp::Close { member },
        20 => MOp::Disconnect { member },
        21 => MOp::Crash { member },
        _ => MOp::Restart,
    }
}

/// One operation (see [`decode_op`]).
pub fn op() -> impl Strategy<Value = MOp> {
    any::<u64>().prop_map(decode_op)
}

/// The action `op` stands for in state `s`, or `None` when it names nothing that exists.
pub fn action(config: &Config, s: &State, op: &MOp) -> Option<Action> {
    let member_ok = |m: u8| m < config.members;
    let bits = |mask: u8| (0..8u8).filter(move |o| mask & (1 << o) != 0);
    Some(match *op {
        MOp::Produce => Action::Produce,
        MOp::Fetch {
            member,
            max_records,
        } if member_ok(member) => Action::Fetch {
            member,
            max_records,
        },
        MOp::Ack { member, pick, ty } if member_ok(member) => {
            let held: Vec<u8> = bits(s.held[member as usize]).collect();
            if held.is_empty() {
                return None;
            }
            let mut offsets = 0u8;
            for i in bits(pick) {
                offsets |= 1 << held[usize::from(i) % held.len()];
            }
            Action::Ack {
                member,
                offsets,
                ty,
            }
        }
        MOp::AckAny {
            member,
            offsets,
            ty,
        } if member_ok(member) && offsets != 0 => Action::Ack {
            member,
            offsets,
            ty,
        },
        MOp::Expire { index } => {
            let rules = config.rules();
            let can: Vec<Offset> = s
                .part
                .records()
                .map(|(o, _)| o)
                .filter(|o| s.part.lock_can_expire(&rules, *o))
                .collect();
            if can.is_empty() {
                return None;
            }
            Action::ExpireLock {
                offset: can[usize::from(index) % can.len()] as u8,
            }
        }
        MOp::Close { member } if member_ok(member) => Action::CloseSession { member },
        MOp::Disconnect { member } if member_ok(member) => Action::Disconnect { member },
        MOp::Crash { member } if member_ok(member) => Action::Crash { member },
        MOp::Restart if s.restarts < config.restarts => Action::Restart,
        _ => return None,
    })
}

/// Runs `ops` from the initial state through [`ShareModel::step`], checking after every step that
/// no monitor fired and that [`check_state`] holds. Returns the number of steps taken, or the
/// failing prefix of actions and why.
pub fn run_sequence(config: &Config, ops: &[MOp]) -> Result<usize, String> {
    let model = ShareModel::new(*config);
    let mut s = State::initial(config);
    let mut taken: Vec<Action> = Vec::new();
    for op in ops {
        let Some(a) = action(config, &s, op) else {
            continue;
        };
        let Some((n, _)) = model.step(&s, &a) else {
            continue;
        };
        taken.push(a);
        if n.violations != 0 {
            let fired: Vec<&str> = sharecheck_model::model::Prop::SAFETY
                .iter()
                .filter(|p| n.violated(**p))
                .map(|p| p.name())
                .collect();
            return Err(format!(
                "monitor(s) {fired:?} fired after {} step(s): {}",
                taken.len(),
                describe(&taken)
            ));
        }
        if let Err(why) = check_state(config, &n) {
            return Err(format!(
                "{why} after {} step(s): {}",
                taken.len(),
                describe(&taken)
            ));
        }
        if let Action::Fetch {
            member,
            max_records,
        } = a
        {
            check_acquisition_shape(&config.rules(), &s.part, member, max_records)
                .map_err(|why| format!("{why} at step {}: {}", taken.len(), describe(&taken)))?;
        }
        s = n;
    }
    Ok(taken.len())
}

fn describe(actions: &[Action]) -> String {
    actions
        .iter()
        .map(|a| a.to_string())
        .collect::<Vec<_>>()
        .join("; ")
}

/// Structural invariants of a partition that every reachable state keeps (docs/semantics.md §13):
/// SPSO ≤ cache end ≤ log end; everything below the SPSO terminal; nothing past the cache ever
/// delivered; Acquired records delivered at least once; no count above the delivery limit; the
/// window within its limit under 4.2+ rules.
pub fn check_state(config: &Config, s: &State) -> Result<(), String> {
    check_partition(config, &s.part)?;
    for (o, r) in s.part.records() {
        if let RecordState::Acquired(m) = r.state {
            if m >= u16::from(config.members) {
                return Err(format!("offset {o} is Acquired by unknown member {m}"));
            }
        }
    }
    Ok(())
}

/// What a ShareFetch response's `AcquiredRecords` must look like for the acquisition the leader
/// makes from `part` (spec-vs-wire shape): ranges ascending, disjoint, `first <= last`, counts in
/// 1..=limit, adjacent ranges only when their counts differ, covering exactly the acquired offsets,
/// at most `max_records` of them, each count the partition's count afterwards.
pub fn check_acquisition_shape(
    rules: &Rules,
    part: &SharePartition,
    member: u8,
    max_records: u8,
) -> Result<(), String> {
    let offsets = part.next_acquisition(rules, u32::from(max_records));
    if offsets.len() > usize::from(max_records) {
        return Err(format!(
            "{} offsets acquired for MaxRecords {max_records}",
            offsets.len()
        ));
    }
    if offsets.windows(2).any(|w| w[0] >= w[1]) {
        return Err(format!("acquisition {offsets:?} not ascending"));
    }
    let mut after = part.clone();
    let ranges = after
        .acquire(rules, MemberIdx::from(member), &offsets)
        .map_err(|e| format!("the spec refused its own acquisition {offsets:?}: {e:?}"))?;
    let mut covered: Vec<Offset> = Vec::new();
    for (i, r) in ranges.iter().enumerate() {
        if r.first_offset > r.last_offset {
            return Err(format!("range {r:?} has first > last"));
        }
        if r.delivery_count == 0 || r.delivery_count > rules.delivery_limit {
            return Err(format!(
                "range {r:?}: count outside 1..={}",
                rules.delivery_limit
            ));
        }
        if let Some(prev) = i.checked_sub(1).map(|j| ranges[j]) {
            if prev.last_offset >= r.first_offset {
                return Err(format!(
                    "ranges {prev:?} and {r:?} overlap or are unordered"
                ));
            }
            if prev.last_offset + 1 == r.first_offset && prev.delivery_count == r.delivery_count {
                return Err(format!("ranges {prev:?} and {r:?} should be one"));
            }
        }
        for o in r.first_offset..=r.last_offset {
            let rec = after
                .record(o)
                .ok_or_else(|| format!("range {r:?} past the log"))?;
            if rec.state != RecordState::Acquired(MemberIdx::from(member))
                || rec.delivery_count != r.delivery_count
            {
                return Err(format!("offset {o} reported {r:?}, partition has {rec:?}"));
            }
            covered.push(o);
        }
    }
    if covered != offsets.to_vec() {
        return Err(format!("ranges {ranges:?} do not cover {offsets:?}"));
    }
    Ok(())
}

/// A raw acknowledgement batch, invalid on purpose as often as not: offsets around the partition
/// (below 0, below the SPSO, past the SPEO, past the log, at the `i64` extremes), reversed ranges,
/// type codes out of range, type counts that do not match.
pub fn raw_batch() -> impl Strategy<Value = AckBatch> {
    let offset = prop_oneof![
        8 => -2i64..12,
        1 => Just(i64::MAX),
        1 => Just(i64::MIN),
    ];
    let code = prop_oneof![6 => 0i8..=4, 1 => -3i8..0, 1 => 5i8..=9];
    (
        offset,
        0i64..4,
        prop::collection::vec(code, 0..=4),
        any::<bool>(),
    )
        .prop_map(|(first, span, types, reversed)| {
            let last = if reversed {
                first.saturating_sub(span.max(1))
            } else {
                first.saturating_add(span)
            };
            AckBatch {
                first_offset: first,
                last_offset: last,
                types: types.into_iter().collect(),
            }
        })
}

/// Checks the spec's answer to one acknowledgement request from `member` against the wire rules
/// (docs/semantics.md §5.3): request-level validation decides first and its error is the answer;
/// an error is 42 or 121 and changes nothing; success changes only records inside the batches, at
/// or above the SPSO, Acquired by `member`, each as its type says.
pub fn check_ack(
    rules: &Rules,
    part: &SharePartition,
    member: MemberIdx,
    batches: &[AckBatch],
    is_renew_ack: bool,
) -> Result<(), String> {
    let mut after = part.clone();
    let answer = after.acknowledge(rules, member, batches, is_renew_ack);
    let validated = SharePartition::validate_ack_batches(rules, batches, is_renew_ack);
    match (&answer, &validated) {
        (Ok(_), Err(v)) => return Err(format!("accepted batches validation refuses: {v:?}")),
        (Err(e), Err(v)) if e != v => {
            return Err(format!("validation says {v:?}, acknowledge says {e:?}"))
        }
        _ => {}
    }
    match answer {
        Err(e) => {
            if ![ErrorCode::INVALID_REQUEST, ErrorCode::INVALID_RECORD_STATE].contains(&e.code) {
                return Err(format!("error {} is neither 42 nor 121", e.code));
            }
            if e.batch >= batches.len() {
                return Err(format!(
                    "error names batch {} of {}",
                    e.batch,
                    batches.len()
                ));
            }
            if after != *part {
                return Err("a refused acknowledgement changed the partition".into());
            }
        }
        Ok(changes) => {
            if after.spso() < part.spso() {
                return Err("the SPSO moved back".into());
            }
            for c in &changes {
                let inside = batches
                    .iter()
                    .find(|b| (b.first_offset..=b.last_offset).contains(&c.offset));
                let Some(b) = inside else {
                    return Err(format!("offset {} changed outside every batch", c.offset));
                };
                if c.offset < part.spso() {
                    return Err(format!("offset {} below the SPSO changed", c.offset));
                }
                if part.record(c.offset) != Some(c.from) {
                    return Err(format!(
                        "change of {} does not start from its state",
                        c.offset
                    ));
                }
                if c.from.state != RecordState::Acquired(member) {
                    return Err(format!(
                        "offset {} changed but was {:?}",
                        c.offset, c.from.state
                    ));
                }
                let code = if b.types.len() == 1 {
                    b.types[0]
                } else {
                    b.types[(c.offset - b.first_offset) as usize]
                };
                let expected = match AckType::from_code(code) {
                    Some(AckType::Accept) => RecordState::Acknowledged,
                    Some(AckType::Reject) | Some(AckType::Gap) => RecordState::Archived,
                    Some(AckType::Renew) => RecordState::Acquired(member),
                    Some(AckType::Release) if c.from.delivery_count >= rules.delivery_limit => {
                        RecordState::Archived
                    }
                    Some(AckType::Release) => RecordState::Available,
                    None => return Err(format!("unknown type {code} accepted")),
                };
                if c.to.state != expected || c.to.delivery_count != c.from.delivery_count {
                    return Err(format!("offset {}: {:?} -> {:?}", c.offset, c.from, c.to));
                }
            }
            for (o, r) in part.records() {
                let changed = after.record(o) != Some(r);
                if changed && !changes.iter().any(|c| c.offset == o) {
                    return Err(format!("offset {o} changed without a reported change"));
                }
            }
        }
    }
    Ok(())
}

/// The correct rules plus a mutant, for "the monitors have teeth" checks.
pub fn with_mutant(config: Config, mutant: Mutant) -> Config {
    Config {
        mutant: Some(mutant),
        ..config
    }
}

/// The state `ops` lead to from the initial state (disabled operations skipped).
pub fn reach(config: &Config, ops: &[MOp]) -> State {
    let model = ShareModel::new(*config);
    let mut s = State::initial(config);
    for op in ops {
        if let Some(a) = action(config, &s, op) {
            if let Some((n, _)) = model.step(&s, &a) {
                s = n;
            }
        }
    }
    s
}

// ------------------------------------------------------------------------------------------------
// The spec alone, at a scale the model's bit masks cannot hold: up to 64 records and 8 members.

/// Most records of a [`big_run`].
pub const BIG_RECORDS: i64 = 64;
/// Most members of a [`big_run`].
pub const BIG_MEMBERS: u16 = 8;

/// One operation on a big partition, with relative references.
#[derive(Clone, Debug)]
pub enum BOp {
    /// Produce `n` records (up to [`BIG_RECORDS`] in all).
    Produce { n: u8 },
    /// Member fetches up to `max` records.
    Fetch { member: u16, max: u8 },
    /// Member acknowledges held records picked by relative index, one type.
    Ack {
        member: u16,
        picks: Vec<u8>,
        ty: AckType,
    },
    /// Member sends a raw request whose batches sit around the SPSO (`shift` is added to every
    /// offset): stale, unowned, past the end, below the start, malformed.
    Raw {
        member: u16,
        shift: i64,
        batches: Vec<AckBatch>,
    },
    /// The lock of the `index`-th Acquired record expires.
    Expire { index: u8 },
    /// Member's share session ends (close or disconnect).
    EndSession { member: u16 },
    /// Member forgets what it holds.
    Crash { member: u16 },
    /// The broker restarts.
    Restart,
}

/// Rules for a big run: any profile, any delivery limit, windows from tiny to unlimited.
pub fn big_rules() -> impl Strategy<Value = Rules> {
    (
        0..Profile::ALL.len(),
        2u8..=10,
        prop_oneof![1u32..=8, Just(16u32), Just(2000u32)],
    )
        .prop_map(|(p, delivery_limit, max_in_flight)| Rules {
            profile: Profile::ALL[p],
            delivery_limit,
            max_in_flight,
            mutant: None,
            renew_enabled: true,
        })
}

/// A raw batch from generated words, as [`raw_batch`] draws them: offsets -2..12 around the
/// request's base (or the `i64` extremes), spans 0..4, reversed ones, 0..=4 type codes from -3..=9.
fn raw_batch_of(w: &mut u64) -> AckBatch {
    let first = match take(w, 10) {
        8 => i64::MAX,
        9 => i64::MIN,
        _ => take(w, 14) as i64 - 2,
    };
    let span = take(w, 4) as i64;
    let reversed = take(w, 6) == 0;
    let last = if reversed {
        first.saturating_sub(span.max(1))
    } else {
        first.saturating_add(span)
    };
    let n = take(w, 5);
    let types = (0..n)
        .map(|_| match take(w, 8) {
            0..=5 => take(w, 5) as i8,
            6 => -1 - take(w, 3) as i8,
            _ => 5 + take(w, 5) as i8,
        })
        .collect();
    AckBatch {
        first_offset: first,
        last_offset: last,
        types,
    }
}

/// The big-run operation a generated word pair stands for (as [`decode_op`]: cheap to generate,
/// shrinks towards "member A fetches one record").
pub fn decode_big_op(word: u64, more: u64) -> BOp {
    let mut w = word;
    let slot = take(&mut w, 28);
    let member = take(&mut w, u64::from(BIG_MEMBERS)) as u16;
    match slot {
        0..=7 => BOp::Fetch {
            member,
            max: 1 + take(&mut w, 16) as u8,
        },
        8..=15 => {
            let ty = ack_type_of(&mut w);
            let n = 1 + take(&mut w, 6) as usize;
            let mut m = more;
            BOp::Ack {
                member,
                picks: (0..n).map(|_| take(&mut m, 256) as u8).collect(),
                ty,
            }
        }
        16..=18 => BOp::Produce {
            n: 1 + take(&mut w, 8) as u8,
        },
        19..=21 => {
            let shift = take(&mut w, 23) as i64 - 3;
            let n = 1 + take(&mut w, 4);
            let mut m = more;
            BOp::Raw {
                member,
                shift,
                batches: (0..n).map(|_| raw_batch_of(&mut m)).collect(),
            }
        }
        22..=24 => BOp::Expire {
            index: take(&mut w, 256) as u8,
        },
        25 => BOp::EndSession { member },
        26 => BOp::Crash { member },
        _ => BOp::Restart,
    }
}

/// One big-run operation (see [`decode_big_op`]).
pub fn big_op() -> impl Strategy<Value = BOp> {
    (any::<u64>(), any::<u64>()).prop_map(|(w, m)| decode_big_op(w, m))
}

/// Runs `ops` on one big partition, checking the safety properties of [`sharecheck_model::model::Prop`]
/// after every operation with monitors written against the spec's observable results (one owner,
/// only the owner acks, unowned acks refused, accepted and archived records never redelivered,
/// counts never decreasing but on restart and 4.1 session release, the delivery limit, terminal
/// states absorbing, SPSO monotonic and never past a non-terminal record, the window limit, atomic
/// acknowledgements, session release) plus [`check_ack`] on every request. Returns the number of
/// operations that changed something.
pub fn big_run(rules: &Rules, members: u16, ops: &[BOp]) -> Result<usize, String> {
    use std::collections::BTreeSet;
    let members = members.clamp(1, BIG_MEMBERS);
    let mut part = SharePartition::new(0);
    let mut held: Vec<BTreeSet<Offset>> = vec![BTreeSet::new(); members as usize];
    let mut accepted: BTreeSet<Offset> = BTreeSet::new();
    let mut archived: BTreeSet<Offset> = BTreeSet::new();
    let mut deliveries: Vec<u8> = Vec::new();
    let keeps_count =
        rules.profile.session_release == sharecheck_model::profile::SessionRelease::KeepCount;
    let mut effective = 0;
    for (i, op) in ops.iter().enumerate() {
        let before = part.clone();
        let at = |why: String| format!("operation {} ({op:?}): {why}", i + 1);
        let mut count_may_drop = false;
        match op {
            BOp::Produce { n } => {
                let n = i64::from(*n).min(BIG_RECORDS - part.log_end());
                if n <= 0 {
                    continue;
                }
                part.produce(n as usize);
                deliveries.resize(part.log_end() as usize, 0);
            }
            BOp::Fetch { member, max } => {
                let m = member % members;
                check_acquisition_shape(rules, &part, m as u8, *max).map_err(at)?;
                let offsets = part.next_acquisition(rules, u32::from(*max));
                if offsets.is_empty() {
                    continue;
                }
                part.acquire(rules, m, &offsets)
                    .map_err(|e| at(format!("{e:?}")))?;
                for &o in &offsets {
                    let was = before.record(o).map(|r| r.state);
                    if was != Some(RecordState::Available) {
                        return Err(at(format!("offset {o} acquired from {was:?} (one-owner)")));
                    }
                    if accepted.contains(&o) || archived.contains(&o) {
                        return Err(at(format!("offset {o} redelivered after accept/archive")));
                    }
                    let d = &mut deliveries[o as usize];
                    *d = d.saturating_add(1);
                    let reported = part.record(o).map_or(0, |r| r.delivery_count);
                    let over = if keeps_count { *d } else { reported };
                    if over > rules.delivery_limit {
                        return Err(at(format!("offset {o} delivered {over} times")));
                    }
                    held[m as usize].insert(o);
                }
                if rules.profile.window == WindowRule::CapNewAcquisitions
                    && part.window() > u64::from(rules.max_in_flight)
                    && part.cache_end() > before.cache_end()
                {
                    return Err(at(format!("window {} over the limit", part.window())));
                }
            }
            BOp::Ack { member, picks, ty } => {
                let m = member % members;
                let list: Vec<Offset> = held[m as usize].iter().copied().collect();
                if list.is_empty() {
                    continue;
                }
                let mut chosen: Vec<Offset> = picks
                    .iter()
                    .map(|p| list[usize::from(*p) % list.len()])
                    .collect();
                chosen.sort_unstable();
                chosen.dedup();
                let mut batches: Vec<AckBatch> = Vec::new();
                for o in chosen {
                    match batches.last_mut() {
                        Some(b) if b.last_offset + 1 == o => b.last_offset = o,
                        _ => batches.push(AckBatch::new(o, o, *ty)),
                    }
                }
                let renew = *ty == AckType::Renew;
                apply_ack(
                    rules,
                    &mut part,
                    m,
                    &batches,
                    renew,
                    &mut held,
                    &mut accepted,
                    &mut archived,
                )
                .map_err(at)?;
            }
            BOp::Raw {
                member,
                shift,
                batches,
            } => {
                let m = member % members;
                let base = part.spso().saturating_add(*shift);
                let moved: Vec<AckBatch> = batches
                    .iter()
                    .map(|b| AckBatch {
                        first_offset: b.first_offset.saturating_add(base),
                        last_offset: b.last_offset.saturating_add(base),
                        types: b.types.clone(),
                    })
                    .collect();
                let renew = moved
                    .iter()
                    .any(|b| b.types.contains(&AckType::Renew.code()));
                apply_ack(
                    rules,
                    &mut part,
                    m,
                    &moved,
                    renew,
                    &mut held,
                    &mut accepted,
                    &mut archived,
                )
                .map_err(at)?;
            }
            BOp::Expire { index } => {
                let can: Vec<Offset> = part
                    .records()
                    .map(|(o, _)| o)
                    .filter(|o| part.lock_can_expire(rules, *o))
                    .collect();
                if can.is_empty() {
                    continue;
                }
                part.expire_lock(rules, can[usize::from(*index) % can.len()]);
            }
            BOp::EndSession { member } => {
                let m = member % members;
                part.release_session(rules, m);
                held[m as usize].clear();
                count_may_drop = !keeps_count;
                if part
                    .records()
                    .any(|(_, r)| r.state == RecordState::Acquired(m))
                {
                    return Err(at("records still Acquired after session release".into()));
                }
                if !keeps_count {
                    for (o, r) in part.records() {
                        deliveries[o as usize] = r.delivery_count;
                    }
                }
            }
            BOp::Crash { member } => {
                held[(member % members) as usize].clear();
                continue;
            }
            BOp::Restart => {
                part.restart(rules);
                count_may_drop = true;
                for (o, r) in part.records() {
                    deliveries[o as usize] = r.delivery_count;
                }
            }
        }
        if part != before {
            effective += 1;
        }
        for (o, b) in before.records() {
            let a = part
                .record(o)
                .ok_or_else(|| at(format!("offset {o} vanished")))?;
            if b.state.is_terminal() && a != b {
                return Err(at(format!("terminal offset {o} changed {b:?} -> {a:?}")));
            }
            if a.delivery_count < b.delivery_count && !count_may_drop {
                return Err(at(format!("offset {o} count went down")));
            }
            if a.state == RecordState::Archived {
                archived.insert(o);
            }
        }
        if part.spso() < before.spso() {
            return Err(at("the SPSO moved back".into()));
        }
        let config = Config {
            records: MAX_RECORDS,
            members: MAX_MEMBERS,
            delivery_limit: rules.delivery_limit,
            max_in_flight: rules.max_in_flight,
            restarts: 0,
            profile: rules.profile,
            mutant: None,
            renew_enabled: rules.renew_enabled,
        };
        check_partition(&config, &part).map_err(at)?;
    }
    Ok(effective)
}

/// [`check_state`]'s invariants of the partition alone, for a partition of any size.
fn check_partition(config: &Config, p: &SharePartition) -> Result<(), String> {
    if !(p.spso() <= p.cache_end() && p.cache_end() <= p.log_end()) {
        return Err(format!(
            "SPSO {} / cache end {} / log end {} out of order",
            p.spso(),
            p.cache_end(),
            p.log_end()
        ));
    }
    for (o, r) in p.records() {
        if o < p.spso() && !r.state.is_terminal() {
            return Err(format!("offset {o} below the SPSO is {:?}", r.state));
        }
        if o >= p.cache_end() && (r.state != RecordState::Available || r.delivery_count != 0) {
            return Err(format!("offset {o} past the cache is {r:?}"));
        }
        if matches!(r.state, RecordState::Acquired(_)) && r.delivery_count == 0 {
            return Err(format!("offset {o} is Acquired with delivery count 0"));
        }
        if r.delivery_count > config.delivery_limit {
            return Err(format!(
                "offset {o} has delivery count {} above the limit {}",
                r.delivery_count, config.delivery_limit
            ));
        }
    }
    if config.profile.window == WindowRule::CapNewAcquisitions
        && p.window() > u64::from(config.max_in_flight)
    {
        return Err(format!(
            "window {} above the limit {}",
            p.window(),
            config.max_in_flight
        ));
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn apply_ack(
    rules: &Rules,
    part: &mut SharePartition,
    member: MemberIdx,
    batches: &[AckBatch],
    renew: bool,
    held: &mut [std::collections::BTreeSet<Offset>],
    accepted: &mut std::collections::BTreeSet<Offset>,
    archived: &mut std::collections::BTreeSet<Offset>,
) -> Result<(), String> {
    check_ack(rules, part, member, batches, renew)?;
    let before = part.clone();
    if part.acknowledge(rules, member, batches, renew).is_err() {
        return Ok(());
    }
    for b in batches {
        if b.last_offset < before.spso() {
            continue;
        }
        for o in b.first_offset.max(before.spso())..=b.last_offset {
            if before.record(o).map(|r| r.state) != Some(RecordState::Acquired(member)) {
                return Err(format!("offset {o} acknowledged without being held"));
            }
            let code = if b.types.len() == 1 {
                b.types[0]
            } else {
                b.types[(o - b.first_offset) as usize]
            };
            match AckType::from_code(code) {
                Some(AckType::Accept) => {
                    accepted.insert(o);
                }
                Some(AckType::Reject) | Some(AckType::Gap) => {
                    archived.insert(o);
                }
                _ => {}
            }
            if code != AckType::Renew.code() {
                held[member as usize].remove(&o);
            }
        }
    }
    Ok(())
}
