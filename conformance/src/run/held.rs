//! What each member of a case holds: the runner's client-side bookkeeping, which a real consumer
//! keeps too (the records it was given and has not yet acknowledged). Steps select records *by
//! relative index* into this list, so it decides which offsets an `ack` step names; it judges
//! nothing.

use sharecheck_model::vocab::{type_code_at, AckBatch, AckType, Offset};

/// Most offsets of one acquired range a member takes in (a hostile range may span 2^63).
const MAX_RANGE: i64 = 100_000;

/// The records one member holds, in offset order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Held {
    offsets: Vec<Offset>,
}

impl Held {
    /// The held offsets, sorted.
    pub fn offsets(&self) -> &[Offset] {
        &self.offsets
    }

    /// A fetch answered with these acquired ranges (`[first, last, delivery count]`).
    pub fn acquired(&mut self, ranges: &[(Offset, Offset, i16)]) {
        for &(first, last, _) in ranges {
            let last = last.min(first.saturating_add(MAX_RANGE - 1));
            self.offsets.extend(first..=last);
        }
        self.offsets.sort_unstable();
        self.offsets.dedup();
    }

    /// Acknowledgements answered with success: the acknowledged records are no longer held,
    /// except those RENEWed (the member keeps them under a fresh lock).
    pub fn acknowledged(&mut self, batches: &[AckBatch]) {
        self.offsets.retain(|o| match type_code_at(batches, *o) {
            None => true,
            Some(code) => code == AckType::Renew.code(),
        });
    }

    /// The member's session ended, or it forgot everything (crash, rejoin, restart).
    pub fn clear(&mut self) {
        self.offsets.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn acquisitions_merge_in_order() {
        let mut h = Held::default();
        h.acquired(&[(5, 6, 1), (0, 1, 2)]);
        h.acquired(&[(1, 2, 1)]);
        assert_eq!(h.offsets(), [0, 1, 2, 5, 6]);
    }

    #[test]
    fn acknowledged_records_go_except_renewed() {
        let mut h = Held::default();
        h.acquired(&[(0, 5, 1)]);
        h.acknowledged(&[
            AckBatch::new(0, 1, AckType::Accept),
            AckBatch::new(2, 2, AckType::Renew),
            AckBatch {
                first_offset: 3,
                last_offset: 4,
                types: vec![AckType::Release.code(), AckType::Renew.code()].into(),
            },
        ]);
        assert_eq!(h.offsets(), [2, 4, 5]);
        h.clear();
        assert!(h.offsets().is_empty());
    }

    #[test]
    fn a_hostile_range_is_capped() {
        let mut h = Held::default();
        h.acquired(&[(0, i64::MAX, 1)]);
        assert_eq!(h.offsets().len(), MAX_RANGE as usize);
    }
}
