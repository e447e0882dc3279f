//! The streaming judge of a long run (`sharecheck soak`, docs/semantics.md §20): the model's
//! record properties, checked over what members are told, one observation at a time, in memory
//! proportional to the records not yet terminal.
//!
//! The conformance oracle carries every spec state a broker may be in and judges a short scripted
//! case exactly; a soak produces millions of events from many concurrent members, whose
//! observations reach the judge in an order that need not be the broker's. This judge therefore
//! uses only rules that hold whatever that order, with the delivery count as each record's clock
//! (1 on the first acquisition, +1 on each re-acquisition: docs/semantics.md T1, T2):
//!
//! - **delivery-limit-respected**: no delivery carries a count above the limit;
//! - **accepted-never-redelivered** / **archived-never-redelivered**: once an ACCEPT (REJECT, GAP)
//!   of the delivery with count `c` is answered with success, no delivery with a count above `c`
//!   exists, whenever it is seen;
//! - **reported-count-matches**: two deliveries of one record never carry the same count, except
//!   where the spec lets a count repeat (a restart forgets an acquisition, T14; 4.1 decrements
//!   on a session release, T9);
//! - **one-owner**: a record delivered again was freed first: its holder's lock could have
//!   expired (the later delivery was answered no earlier than the first was asked plus the lock
//!   duration, less a tolerance), or the holder sent a RELEASE, left or lost its session, or the
//!   broker restarted before the later delivery was answered. Each member reports what frees its
//!   records *before* it sends it, so that report is always seen before the delivery it allows;
//! - **eventually-all-terminal** (at the end, after a quiet period): every produced record was
//!   accepted, rejected, or delivered up to the limit and then freed (Archived, T4'/T8'/T9).

use crate::model::Prop;
use crate::profile::SessionRelease;
use crate::spec::Offset;
use crate::vocab::AckType;
use crate::{Anomaly, Profile};
use serde::Serialize;
use std::collections::BTreeMap;

/// Milliseconds on the run's clock.
pub type Millis = u64;

/// Findings kept whole (the rest are counted): a broken broker breaks a rule on every record.
pub const KEPT: usize = 200;

/// A member incarnation (a member that crashed and came back is a new one).
pub type MemberNo = u32;

/// What the judge found.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// The property (`one-owner`, …).
    pub property: &'static str,
    /// Its anomaly class.
    pub anomaly: Anomaly,
    pub partition: u32,
    pub offset: Offset,
    /// When it was seen.
    pub at_ms: Millis,
    /// What happened, in words.
    pub detail: String,
}

/// A successful ACCEPT, REJECT or GAP of a record: whatever it was, the record was terminal once
/// it was answered (an acknowledgement of an offset already below the SPSO succeeds and changes
/// nothing, `SP@4.2:1004-1008, 2258`, docs/semantics.md T11, so a success does not say that this member's acknowledgement was the
/// one that ended it — only that it had ended).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct End {
    accepted: bool,
    /// The count of the delivery it acknowledged.
    count: u16,
    /// When its answer came (the earliest, of several).
    answered: Millis,
}

#[derive(Clone, Copy, Debug)]
struct Rec {
    /// The highest count delivered.
    count: u16,
    /// Who got that delivery, and when it was asked for.
    holder: Option<(MemberNo, Millis)>,
    /// The earliest time the holder's claim could have ended other than by expiry.
    freed_at: Option<Millis>,
    /// A count may repeat once (a 4.1 session release since the last delivery; restarts are
    /// judged from their intervals).
    repeat_ok: bool,
    end: Option<End>,
}

impl Rec {
    const NEW: Rec = Rec {
        count: 0,
        holder: None,
        freed_at: None,
        repeat_ok: false,
        end: None,
    };
}

#[derive(Debug, Default)]
struct Part {
    /// One past the highest produced offset.
    log_end: Offset,
    /// Every offset below it ended (accepted or archived by an acknowledgement).
    done_below: Offset,
    /// The latest answer among the acknowledgements that ended the offsets below `done_below`.
    done_answered: Millis,
    /// When a delivery of this partition last came.
    last_delivery: Millis,
    /// Offsets at or above `done_below` that were delivered or acknowledged.
    open: BTreeMap<Offset, Rec>,
}

/// The soak's judge, for every partition of the topic.
#[derive(Debug)]
pub struct Watch {
    profile: Profile,
    delivery_limit: u16,
    lock_ms: Millis,
    tolerance_ms: Millis,
    parts: Vec<Part>,
    findings: Vec<Finding>,
    /// Findings per property, all of them (only the first [`KEPT`] are kept whole).
    counts: BTreeMap<&'static str, u64>,
    /// Each broker restart: when it began and when it was done (the broker goes down somewhere in
    /// between), in order.
    restarts: Vec<(Millis, Option<Millis>)>,
    /// Observations judged.
    pub events: u64,
}

impl Watch {
    pub fn new(
        profile: Profile,
        delivery_limit: u8,
        lock_ms: Millis,
        tolerance_ms: Millis,
        partitions: u32,
    ) -> Watch {
        Watch {
            profile,
            delivery_limit: u16::from(delivery_limit),
            lock_ms,
            tolerance_ms,
            parts: (0..partitions).map(|_| Part::default()).collect(),
            findings: Vec::new(),
            counts: BTreeMap::new(),
            restarts: Vec::new(),
            events: 0,
        }
    }

    /// The first [`KEPT`] findings.
    pub fn findings(&self) -> &[Finding] {
        &self.findings
    }

    /// How many findings each property had, in all.
    pub fn counts(&self) -> &BTreeMap<&'static str, u64> {
        &self.counts
    }

    /// Findings in all.
    pub fn found(&self) -> u64 {
        self.counts.values().sum()
    }

    /// Records tracked (delivered or acknowledged, not yet below the done watermark): the judge's
    /// memory.
    pub fn tracked(&self) -> usize {
        self.parts.iter().map(|p| p.open.len()).sum()
    }

    /// Produced records not yet ended by an acknowledgement.
    pub fn not_done(&self) -> u64 {
        self.parts
            .iter()
            .map(|p| (p.log_end - p.done_below) as u64 - p.ended_above() as u64)
            .sum()
    }

    fn part(&mut self, partition: u32) -> Option<&mut Part> {
        self.parts.get_mut(partition as usize)
    }

    fn find(&mut self, prop: Prop, partition: u32, offset: Offset, at: Millis, detail: String) {
        *self.counts.entry(prop.name()).or_default() += 1;
        if self.findings.len() >= KEPT {
            return;
        }
        self.findings.push(Finding {
            property: prop.name(),
            anomaly: prop.anomaly().unwrap_or(Anomaly::WrongErrorCode),
            partition,
            offset,
            at_ms: at,
            detail,
        });
    }

    /// Records up to `log_end` (exclusive) exist in `partition`.
    pub fn produced(&mut self, partition: u32, log_end: Offset) {
        self.events += 1;
        if let Some(p) = self.part(partition) {
            p.log_end = p.log_end.max(log_end);
        }
    }

    /// `member` was handed `offset` with `count`, by a fetch sent at `sent` and answered at
    /// `received`.
    pub fn delivered(
        &mut self,
        member: MemberNo,
        partition: u32,
        offset: Offset,
        count: i16,
        sent: Millis,
        received: Millis,
    ) {
        self.events += 1;
        let (limit, lock, tol) = (self.delivery_limit, self.lock_ms, self.tolerance_ms);
        // A restart that began between the last delivery's fetch and this answer: the last
        // acquisition may be forgotten (T14), and whoever held it lost it.
        let restarts = &self.restarts;
        let Some(p) = self.parts.get_mut(partition as usize) else {
            return;
        };
        let count_u = count.max(0) as u16;
        p.last_delivery = p.last_delivery.max(received);
        if offset < p.done_below {
            if sent <= p.done_answered {
                // Asked for before every acknowledgement below the watermark was answered: the
                // first may have been a no-op on an offset another member had ended.
                return;
            }
            let detail = format!(
                "member {member} was handed offset {offset} (count {count}) after it was accepted or rejected"
            );
            self.find(Prop::TerminalAbsorbing, partition, offset, received, detail);
            return;
        }
        let mut found: Vec<(Prop, String)> = Vec::new();
        if count < 1 || count_u > limit {
            found.push((
                Prop::DeliveryLimitRespected,
                format!("member {member} was handed offset {offset} with count {count}; the limit is {limit}"),
            ));
        }
        let r = p.open.entry(offset).or_insert(Rec::NEW);
        if let Some(end) = r.end {
            if sent > end.answered {
                found.push(ended_yet_delivered(end, member, offset, count, sent));
            }
        }
        let restarted = r.holder.is_some_and(|(_, asked)| {
            restarts
                .iter()
                .rev()
                .take_while(|(_, done)| done.is_none_or(|d| d >= asked))
                .any(|(began, _)| *began <= received)
        });
        if count_u < r.count || (count_u == r.count && !r.repeat_ok && !restarted) {
            found.push((
                if count_u < r.count {
                    Prop::CountNeverDecreases
                } else {
                    Prop::ReportedCountMatches
                },
                format!(
                    "member {member} was handed offset {offset} with count {count}; an earlier delivery had count {}",
                    r.count
                ),
            ));
        }
        if let Some((holder, asked)) = r.holder {
            // The earlier claim ended before this delivery was answered, or could have expired.
            let freed = r.freed_at.is_some_and(|f| f <= received) || restarted;
            let expired = received + tol >= asked + lock;
            if !freed && !expired && count_u >= r.count {
                found.push((
                    Prop::OneOwner,
                    format!(
                        "member {member} was handed offset {offset} (count {count}) {} ms after member {holder} was \
                         (count {}), within its {lock} ms lock, with nothing freeing it",
                        received.saturating_sub(asked),
                        r.count
                    ),
                ));
            }
        }
        if count_u >= r.count {
            r.count = count_u;
            r.holder = Some((member, sent));
            r.freed_at = None;
            r.repeat_ok = false;
        }
        for (prop, detail) in found {
            self.find(prop, partition, offset, received, detail);
        }
    }

    /// `member` is about to send an acknowledgement of `offset`'s delivery with `count`: a RELEASE
    /// frees the record from now on.
    pub fn ack_sent(
        &mut self,
        member: MemberNo,
        partition: u32,
        offset: Offset,
        ty: AckType,
        at: Millis,
    ) {
        self.events += 1;
        if ty != AckType::Release {
            return;
        }
        if let Some(r) = self.part(partition).and_then(|p| p.open.get_mut(&offset)) {
            if r.holder.is_some_and(|(m, _)| m == member) && r.freed_at.is_none() {
                r.freed_at = Some(at);
            }
        }
    }

    /// The acknowledgement of `offset`'s delivery with `count` by `member` was answered with
    /// success.
    pub fn acked(
        &mut self,
        _member: MemberNo,
        partition: u32,
        offset: Offset,
        count: i16,
        ty: AckType,
        at: Millis,
    ) {
        self.events += 1;
        let Some(p) = self.part(partition) else {
            return;
        };
        if offset < p.done_below {
            return;
        }
        let accepted = match ty {
            AckType::Accept => true,
            AckType::Reject | AckType::Gap => false,
            AckType::Release | AckType::Renew => return,
        };
        let end = End {
            accepted,
            count: count.max(0) as u16,
            answered: at,
        };
        let r = p.open.entry(offset).or_insert(Rec::NEW);
        if r.end.is_none_or(|e| e.answered > at) {
            r.end = Some(end);
        }
        // A delivery asked for after this answer, seen before it.
        let late = r
            .holder
            .filter(|(_, asked)| *asked > at)
            .map(|(m, asked)| ended_yet_delivered(end, m, offset, r.count as i16, asked));
        p.advance();
        if let Some((prop, detail)) = late {
            self.find(prop, partition, offset, at, detail);
        }
    }

    /// `member` is about to lose every claim (crash, leave, session close): its records are free
    /// from now on. (4.1 decrements the count on a session release, T9: a count may repeat.)
    pub fn member_gone(&mut self, member: MemberNo, at: Millis) {
        self.events += 1;
        let repeat = self.profile.session_release == SessionRelease::DecrementCount;
        for p in &mut self.parts {
            for r in p.open.values_mut() {
                if r.holder.is_some_and(|(m, _)| m == member) {
                    r.freed_at.get_or_insert(at);
                    r.repeat_ok |= repeat;
                }
            }
        }
    }

    /// A broker is about to restart (or a leader to move): every acquisition may be forgotten and
    /// redelivered with the same count (T14).
    pub fn restart(&mut self, at: Millis) {
        self.events += 1;
        // Judged from the interval in `delivered`: a restart under way between a delivery's fetch
        // and the next delivery's answer frees the record and lets its count repeat.
        self.restarts.push((at, None));
    }

    /// The restart that began last is done: the broker serves again.
    pub fn restart_done(&mut self, at: Millis) {
        self.events += 1;
        if let Some((_, done)) = self.restarts.last_mut() {
            done.get_or_insert(at);
        }
    }

    /// The verdict on what is left once the quiet period is over: every record not ended by an
    /// acknowledgement must have been delivered up to the limit and freed (Archived). A record that
    /// is neither is lost when its partition handed out nothing in the last `settled_ms` (the
    /// members kept asking, and got nothing), and *unsettled* when deliveries were still coming:
    /// the quiet period was too short to tell. Lost records are findings (at most `max` one by
    /// one).
    pub fn finish(&mut self, at: Millis, settled_ms: Millis, max: usize) -> Outstanding {
        let (limit, lock, tol) = (self.delivery_limit, self.lock_ms, self.tolerance_ms);
        let mut lost: Vec<(u32, Offset, String)> = Vec::new();
        let mut out = Outstanding::default();
        for (i, p) in self.parts.iter().enumerate() {
            let settled = p.last_delivery + settled_ms <= at;
            for o in p.done_below..p.log_end {
                let why = match p.open.get(&o) {
                    None => Some("never delivered".to_string()),
                    Some(r) if r.end.is_some() => None,
                    Some(r) => {
                        let free = r.freed_at.is_some()
                            || r.holder.is_some_and(|(_, asked)| at + tol >= asked + lock);
                        if r.count >= limit && free {
                            None
                        } else {
                            Some(format!(
                                "last delivered with count {} of {limit}{}",
                                r.count,
                                if free {
                                    ", then freed, and not delivered again"
                                } else {
                                    ", still locked"
                                }
                            ))
                        }
                    }
                };
                match why {
                    Some(_) if !settled => out.unsettled += 1,
                    Some(why) => {
                        out.lost += 1;
                        if lost.len() < max {
                            lost.push((i as u32, o, why));
                        }
                    }
                    None => {}
                }
            }
        }
        for (partition, offset, why) in lost {
            let detail = format!(
                "offset {offset} of partition {partition} never became terminal: {why}; the partition handed out \
                 nothing in the last {settled_ms} ms"
            );
            self.find(Prop::EventuallyAllTerminal, partition, offset, at, detail);
        }
        out
    }
}

/// What a finished soak left not terminal.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Outstanding {
    /// Records lost: their partition had settled.
    pub lost: u64,
    /// Records whose partition was still handing records out when the quiet period ended.
    pub unsettled: u64,
}

fn ended_yet_delivered(
    end: End,
    member: MemberNo,
    offset: Offset,
    count: i16,
    asked: Millis,
) -> (Prop, String) {
    let (prop, what) = if end.accepted {
        (Prop::AcceptedNeverRedelivered, "accepted")
    } else {
        (Prop::ArchivedNeverRedelivered, "rejected")
    };
    (
        prop,
        format!(
            "member {member} asked at {asked} ms and was handed offset {offset} (count {count}); it was {what} \
             (the delivery with count {}) and the answer came at {} ms",
            end.count, end.answered
        ),
    )
}

impl Part {
    /// Drops the ended records at the watermark.
    fn advance(&mut self) {
        while let Some(r) = self.open.get(&self.done_below) {
            let Some(end) = r.end else {
                break;
            };
            self.done_answered = self.done_answered.max(end.answered);
            self.open.remove(&self.done_below);
            self.done_below += 1;
        }
    }

    fn ended_above(&self) -> usize {
        self.open.values().filter(|r| r.end.is_some()).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn watch() -> Watch {
        let mut w = Watch::new(Profile::KAFKA_4_2, 3, 1000, 100, 1);
        w.produced(0, 2);
        w
    }

    fn names(w: &Watch) -> Vec<&'static str> {
        w.findings().iter().map(|f| f.property).collect()
    }

    #[test]
    fn a_calm_run_finds_nothing_and_forgets_what_ended() {
        let mut w = watch();
        w.delivered(1, 0, 0, 1, 0, 5);
        w.delivered(1, 0, 1, 1, 0, 5);
        w.ack_sent(1, 0, 1, AckType::Release, 10);
        w.delivered(2, 0, 1, 2, 11, 12);
        w.acked(1, 0, 0, 1, AckType::Accept, 20);
        w.acked(2, 0, 1, 2, AckType::Reject, 30);
        assert_eq!(w.finish(40, 10_000, 10), Outstanding::default());
        assert!(w.findings().is_empty(), "{:?}", w.findings());
        assert_eq!(w.tracked(), 0);
    }

    #[test]
    fn a_second_holder_within_the_lock_is_one_owner_broken() {
        let mut w = watch();
        w.delivered(1, 0, 0, 1, 0, 5);
        w.delivered(2, 0, 0, 2, 100, 200);
        assert_eq!(names(&w), ["one-owner"]);
        // After the lock could have expired it is a redelivery.
        let mut w = watch();
        w.delivered(1, 0, 0, 1, 0, 5);
        w.delivered(2, 0, 0, 2, 900, 901);
        assert!(w.findings().is_empty());
    }

    #[test]
    fn an_accepted_record_seen_again_is_caught_in_either_order() {
        let mut w = watch();
        w.delivered(1, 0, 0, 1, 0, 5);
        w.acked(1, 0, 0, 1, AckType::Accept, 10);
        w.delivered(2, 0, 0, 2, 2000, 2001);
        // Offset 0 was forgotten once it ended: what is below the watermark is terminal.
        assert_eq!(names(&w), ["terminal-absorbing"]);
        let mut w = watch();
        w.produced(0, 3);
        w.delivered(1, 0, 1, 1, 0, 5);
        w.acked(1, 0, 1, 1, AckType::Accept, 10);
        w.delivered(2, 0, 1, 2, 2000, 2001);
        assert_eq!(names(&w), ["accepted-never-redelivered"]);
        // The answer reaches the judge after the delivery it should have prevented.
        let mut w = watch();
        w.produced(0, 3);
        w.delivered(1, 0, 1, 1, 0, 5);
        w.delivered(2, 0, 1, 2, 2000, 2001);
        w.acked(1, 0, 1, 1, AckType::Accept, 10);
        assert_eq!(names(&w), ["accepted-never-redelivered"]);
    }

    #[test]
    fn a_late_acknowledgement_of_a_record_another_member_ended_is_no_finding() {
        // Member 1's lock expired, member 2 got and accepted the record; member 1's ACCEPT then
        // succeeds without effect (the offset is below the SPSO).
        let mut w = watch();
        w.produced(0, 3);
        w.delivered(1, 0, 1, 1, 0, 5);
        w.delivered(2, 0, 1, 2, 1000, 1001);
        w.acked(2, 0, 1, 2, AckType::Accept, 1100);
        w.acked(1, 0, 1, 1, AckType::Accept, 1500);
        assert!(w.findings().is_empty(), "{:?}", w.findings());
    }

    #[test]
    fn counts_above_the_limit_or_repeated_are_caught_but_a_restart_may_repeat_one() {
        let mut w = watch();
        w.delivered(1, 0, 0, 4, 0, 5);
        assert_eq!(names(&w), ["delivery-limit-respected"]);
        let mut w = watch();
        w.delivered(1, 0, 0, 1, 0, 5);
        w.delivered(2, 0, 0, 1, 2000, 2001);
        assert_eq!(names(&w), ["reported-count-matches"]);
        let mut w = watch();
        w.delivered(1, 0, 0, 1, 0, 5);
        w.restart(50);
        w.delivered(2, 0, 0, 1, 60, 61);
        assert!(w.findings().is_empty(), "{:?}", w.findings());
        // The restart was under way while the first delivery was asked for and answered.
        let mut w = watch();
        w.restart(3);
        w.delivered(1, 0, 0, 1, 4, 5);
        w.restart_done(30);
        w.delivered(2, 0, 0, 1, 60, 61);
        assert!(w.findings().is_empty(), "{:?}", w.findings()); // A restart over before the first delivery was asked for frees nothing.
        let mut w = watch();
        w.restart(1);
        w.restart_done(2);
        w.delivered(1, 0, 0, 1, 4, 5);
        w.delivered(2, 0, 0, 1, 60, 61);
        assert_eq!(names(&w), ["reported-count-matches", "one-owner"]);
    }

    #[test]
    fn what_never_ends_is_lost_and_what_reached_the_limit_is_archived() {
        let mut w = watch();
        w.delivered(1, 0, 0, 3, 0, 5);
        w.member_gone(1, 10);
        // Offset 1 was never delivered; offset 0 reached the limit and was freed. While the
        // partition still hands records out, that is unsettled; once it stopped, lost.
        assert_eq!(
            w.finish(20, 1000, 10),
            Outstanding {
                lost: 0,
                unsettled: 1
            }
        );
        assert!(w.findings().is_empty());
        assert_eq!(
            w.finish(2000, 1000, 10),
            Outstanding {
                lost: 1,
                unsettled: 0
            }
        );
        assert_eq!(names(&w), ["eventually-all-terminal"]);
        assert_eq!(w.findings()[0].offset, 1);
    }
}
