//! Which positions of one input are done: a watermark below which every position is
//! done, and the done positions beyond it. Invocations finish out of order, so the set
//! beyond the watermark holds the ones that finished ahead of a slower one; it stays
//! small (about what is in flight, or waiting for retries) and is stored as ranges.

use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// The done positions of one input.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DoneSet {
    below: u64,
    beyond: BTreeSet<u64>,
}

impl DoneSet {
    /// Records `pos` as done; `false` when it already was (so it is not counted twice).
    pub fn mark(&mut self, pos: u64) -> bool {
        if pos < self.below {
            return false;
        }
        if pos > self.below {
            return self.beyond.insert(pos);
        }
        self.below += 1;
        // Whatever finished ahead and is now contiguous joins the watermark.
        while self.beyond.first() == Some(&self.below) {
            self.beyond.pop_first();
            self.below += 1;
        }
        true
    }

    /// Whether `pos` is done.
    pub fn contains(&self, pos: u64) -> bool {
        pos < self.below || self.beyond.contains(&pos)
    }

    /// Every position below this one is done.
    pub fn watermark(&self) -> u64 {
        self.below
    }

    /// How many positions are done.
    pub fn len(&self) -> u64 {
        self.below + self.beyond.len() as u64
    }

    /// Whether nothing is done.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The done positions beyond the watermark, as half-open ranges `[start, end)`.
    pub fn ranges_beyond(&self) -> Vec<[u64; 2]> {
        let mut ranges: Vec<[u64; 2]> = Vec::new();
        for &p in &self.beyond {
            match ranges.last_mut() {
                Some(last) if last[1] == p => last[1] = p + 1,
                _ => ranges.push([p, p + 1]),
            }
        }
        ranges
    }
}

/// How a [`DoneSet`] is written in the state file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DoneRecord {
    /// Every position below this is done.
    pub done_below: u64,
    /// Done positions beyond `done_below`, as half-open ranges `[start, end)`.
    #[serde(default)]
    pub done_beyond: Vec<[u64; 2]>,
}

impl From<&DoneSet> for DoneRecord {
    fn from(set: &DoneSet) -> DoneRecord {
        DoneRecord {
            done_below: set.below,
            done_beyond: set.ranges_beyond(),
        }
    }
}

impl From<&DoneRecord> for DoneSet {
    fn from(record: &DoneRecord) -> DoneSet {
        let mut set = DoneSet {
            below: record.done_below,
            beyond: BTreeSet::new(),
        };
        // Through `mark`, so a hand-edited record with ranges touching the watermark
        // still gives a normal set. Ranges come from our own file: their sizes are
        // what finished out of order, not attacker-chosen.
        for &[start, end] in &record.done_beyond {
            for p in start..end {
                set.mark(p);
            }
        }
        set
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_order_completion_moves_only_the_watermark() {
        let mut d = DoneSet::default();
        for p in 0..5 {
            assert!(d.mark(p));
        }
        assert_eq!((d.watermark(), d.len()), (5, 5));
        assert!(d.ranges_beyond().is_empty());
        assert!(!d.mark(3), "already done");
        assert_eq!(d.len(), 5);
    }

    #[test]
    fn out_of_order_completion_closes_the_gap() {
        let mut d = DoneSet::default();
        for p in [1, 2, 4, 5, 6, 9] {
            d.mark(p);
        }
        assert_eq!(d.watermark(), 0);
        assert_eq!(d.ranges_beyond(), vec![[1, 3], [4, 7], [9, 10]]);
        assert!(d.contains(5) && !d.contains(3) && !d.contains(0));
        assert!(!d.mark(5));
        d.mark(0);
        assert_eq!(d.watermark(), 3);
        d.mark(3);
        assert_eq!(d.watermark(), 7);
        assert_eq!(d.ranges_beyond(), vec![[9, 10]]);
        assert_eq!(d.len(), 8);
    }

    #[test]
    fn the_record_round_trips() {
        let mut d = DoneSet::default();
        for p in [0, 1, 2, 5, 6, 8] {
            d.mark(p);
        }
        let record = DoneRecord::from(&d);
        assert_eq!(record.done_below, 3);
        assert_eq!(record.done_beyond, vec![[5, 7], [8, 9]]);
        let json = serde_json::to_string(&record).unwrap();
        assert_eq!(json, r#"{"done_below":3,"done_beyond":[[5,7],[8,9]]}"#);
        let back = DoneSet::from(&serde_json::from_str::<DoneRecord>(&json).unwrap());
        assert_eq!(back, d);
        // Ranges that touch the watermark are folded into it.
        let odd = DoneSet::from(&DoneRecord {
            done_below: 3,
            done_beyond: vec![[3, 5], [7, 8]],
        });
        assert_eq!((odd.watermark(), odd.ranges_beyond()), (5, vec![[7, 8]]));
    }
}
