//! The prediction: what a conforming broker would do with the steps lowered so far, by the spec
//! itself. Lowering uses it only to pick offsets for invalid acknowledgements (records another
//! member holds, already acknowledged, past the end, …); the oracle judges whatever the target does.

use super::gen::{Ref, Via, MAX_MEMBERS};
use sharecheck_model::spec::{AckBatch, MemberIdx, Offset, RecordState, Rules, SharePartition};

#[derive(Clone, Debug, Default)]
pub(super) struct SimMember {
    pub(super) idx: MemberIdx,
    pub(super) held: Vec<Offset>,
    pub(super) session: bool,
    pub(super) joined: bool,
}

/// What a conforming broker would do with the steps so far: only used to pick offsets.
pub(super) struct Prediction {
    rules: Rules,
    pub(super) part: SharePartition,
    members: Vec<SimMember>,
    pub(super) next_idx: MemberIdx,
    pub(super) lock_ms: u64,
    pub(super) now: u64,
    locks: Vec<Lock>,
}

/// A lock the prediction holds: its deadline, the member, and the offsets with their counts.
type Lock = (u64, MemberIdx, Vec<(Offset, u8)>);

impl Prediction {
    pub(super) fn new(rules: Rules, members: u8, lock_ms: u64) -> Prediction {
        let members = (0..members)
            .map(|m| SimMember {
                idx: MemberIdx::from(m),
                ..SimMember::default()
            })
            .collect();
        Prediction {
            rules,
            part: SharePartition::new(0),
            members,
            next_idx: MemberIdx::from(MAX_MEMBERS),
            lock_ms,
            now: 0,
            locks: Vec::new(),
        }
    }

    pub(super) fn member(&mut self, m: u8) -> &mut SimMember {
        let i = usize::from(m).min(self.members.len().saturating_sub(1));
        &mut self.members[i]
    }

    pub(super) fn fetch(&mut self, m: u8, max_records: u32) {
        let idx = self.member(m).idx;
        let offsets = self.part.next_acquisition(&self.rules, max_records);
        if let Ok(ranges) = self.part.acquire(&self.rules, idx, &offsets) {
            let counts: Vec<(Offset, u8)> = ranges
                .iter()
                .flat_map(|r| (r.first_offset..=r.last_offset).map(move |o| (o, r.delivery_count)))
                .collect();
            self.locks.push((self.now + self.lock_ms, idx, counts));
            let mm = self.member(m);
            for o in offsets {
                if !mm.held.contains(&o) {
                    mm.held.push(o);
                }
            }
            mm.held.sort_unstable();
        }
        let mm = self.member(m);
        mm.session = true;
        mm.joined = true;
        self.now += 1;
    }

    pub(super) fn ack(&mut self, m: u8, batches: &[AckBatch], via: Via) {
        let mm = self.member(m);
        mm.joined = true;
        if via != Via::Close && !mm.session {
            return;
        }
        let idx = mm.idx;
        let ok = self
            .part
            .acknowledge(&self.rules, idx, batches, false)
            .is_ok();
        if ok {
            let mm = self.member(m);
            mm.held.retain(|o| !batches.iter().any(|b| b.contains(*o)));
        }
        if via == Via::Close && self.member(m).session {
            self.end_session(m);
        }
        self.now += 1;
    }

    pub(super) fn end_session(&mut self, m: u8) {
        let idx = self.member(m).idx;
        self.part.release_session(&self.rules, idx);
        let mm = self.member(m);
        mm.held.clear();
        mm.session = false;
    }

    pub(super) fn fire_locks(&mut self, until: u64) {
        let rules = self.rules;
        let mut pending = Vec::new();
        for (deadline, member, offsets) in std::mem::take(&mut self.locks) {
            if deadline > until {
                pending.push((deadline, member, offsets));
                continue;
            }
            self.part.expire_acquisition(&rules, member, &offsets);
        }
        self.locks = pending;
    }

    /// Offsets of records in `state`-matching states, in offset order.
    fn offsets_where(&self, pred: impl Fn(RecordState) -> bool) -> Vec<Offset> {
        self.part
            .records()
            .filter(|(_, r)| pred(r.state))
            .map(|(o, _)| o)
            .collect()
    }

    pub(super) fn resolve(&self, m: u8, r: &Ref) -> Option<(Offset, Offset)> {
        let i = usize::from(m).min(self.members.len().saturating_sub(1));
        let me = &self.members[i];
        let at = |list: &[Offset], index: u8| -> Option<Offset> {
            (!list.is_empty()).then(|| list[usize::from(index) % list.len()])
        };
        match *r {
            Ref::Held { index, len } => {
                let h = &me.held;
                if h.is_empty() {
                    return None;
                }
                let a = usize::from(index) % h.len();
                let b = (a + usize::from(len.max(1)) - 1).min(h.len() - 1);
                Some((h[a], h[b]))
            }
            Ref::OtherHeld { index } => {
                let mut list: Vec<Offset> =
                    self.offsets_where(|s| matches!(s, RecordState::Acquired(x) if x != me.idx));
                for (j, other) in self.members.iter().enumerate() {
                    if j != i {
                        list.extend(other.held.iter().copied());
                    }
                }
                list.retain(|o| !me.held.contains(o));
                list.sort_unstable();
                list.dedup();
                at(&list, index).map(|o| (o, o))
            }
            Ref::Acknowledged { index } => at(
                &self.offsets_where(|s| s == RecordState::Acknowledged),
                index,
            )
            .map(|o| (o, o)),
            Ref::Archived { index } => {
                let list: Vec<Offset> = self
                    .offsets_where(|s| s == RecordState::Archived)
                    .into_iter()
                    .filter(|o| *o >= 0)
                    .collect();
                at(&list, index).map(|o| (o, o))
            }
            Ref::Available { index } => {
                at(&self.offsets_where(|s| s == RecordState::Available), index).map(|o| (o, o))
            }
            Ref::BeyondEnd { by } => {
                let o = self.part.cache_end().max(self.part.spso()) + Offset::from(by);
                Some((o, o))
            }
            Ref::BelowStart { by } => {
                let spso = self.part.spso();
                (spso > 0).then(|| {
                    let o = (spso - 1 - Offset::from(by)).max(0);
                    (o, o)
                })
            }
            Ref::Reversed { index } => {
                let o = at(&me.held, index).unwrap_or(0);
                Some((o + 1, o))
            }
        }
    }
}
