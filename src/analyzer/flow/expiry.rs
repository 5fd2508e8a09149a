//! When connections are due: deadlines kept in buckets of one second of capture time, so a
//! sweep looks only at connections whose deadline has passed instead of the whole table.
//! The buckets of the next [`NEAR_SPAN`] seconds are a ring indexed by the second (scheduling
//! is an index and a push); the rare deadline further out (a capture that jumps in time)
//! waits in an ordered map.
//!
//! Entries are lazy. A connection's deadline (the earliest capture time at which one of its
//! timers fires, see `Conn::deadline_ns`) is scheduled when it is created and whenever a
//! packet brings it *earlier* than the one scheduled; a deadline that moves later (the usual
//! case: more activity) costs nothing until the old entry comes up, when the sweep finds the
//! connection not yet expired and schedules its current deadline instead. Entries of
//! connections that are gone, or that were superseded by an earlier one, are dropped when
//! they come up.

use std::collections::{BTreeMap, VecDeque};

/// Width of a bucket.
const GRAIN_NS: i64 = 1_000_000_000;
/// Seconds covered by the ring; longer than the longest timer (an hour of inactivity).
const NEAR_SPAN: i64 = 4096;

/// One scheduled check: the connection in table slot `slot` with serial `serial` may be
/// due at `at_ns`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Due {
    pub at_ns: i64,
    pub serial: u64,
    pub slot: u32,
}

#[derive(Debug, Default)]
pub struct ExpiryQueue {
    /// `near[i]` holds the entries due within second `base + i` (`at_ns / GRAIN_NS`, rounded
    /// down).
    near: VecDeque<Vec<Due>>,
    base: i64,
    /// Entries due before `base` when they were scheduled (capture time that went back).
    early: Vec<Due>,
    /// Entries due `NEAR_SPAN` seconds or more after `base`, by second.
    far: BTreeMap<i64, Vec<Due>>,
    /// Emptied bucket vectors, reused so scheduling does not allocate.
    spare: Vec<Vec<Due>>,
}

impl ExpiryQueue {
    pub fn schedule(&mut self, due: Due) {
        let bucket = due.at_ns.div_euclid(GRAIN_NS);
        if self.near.is_empty() {
            self.base = bucket;
        }
        if bucket < self.base {
            self.early.push(due);
            return;
        }
        let offset = bucket.saturating_sub(self.base);
        if offset >= NEAR_SPAN {
            let spare = &mut self.spare;
            self.far
                .entry(bucket)
                .or_insert_with(|| spare.pop().unwrap_or_default())
                .push(due);
            return;
        }
        let index = offset as usize;
        while self.near.len() <= index {
            let empty = self.spare.pop().unwrap_or_default();
            self.near.push_back(empty);
        }
        self.near[index].push(due);
    }

    /// Moves every entry due at or before `now_ns` to `out` (in no particular order).
    pub fn drain_due(&mut self, now_ns: i64, out: &mut Vec<Due>) {
        let now_bucket = now_ns.div_euclid(GRAIN_NS);
        if !self.early.is_empty() {
            take_due(&mut self.early, now_ns, out);
        }
        while self.base < now_bucket {
            let Some(mut whole) = self.near.pop_front() else {
                break;
            };
            self.base += 1;
            out.append(&mut whole);
            self.spare.push(whole);
        }
        if self.base == now_bucket {
            if let Some(list) = self.near.front_mut() {
                take_due(list, now_ns, out);
            }
        }
        while let Some(mut entry) = self.far.first_entry() {
            if *entry.key() > now_bucket {
                break;
            }
            take_due(entry.get_mut(), now_ns, out);
            if !entry.get().is_empty() {
                break;
            }
            self.spare.push(entry.remove());
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.early.len()
            + self
                .near
                .iter()
                .chain(self.far.values())
                .map(Vec::len)
                .sum::<usize>()
    }
}

/// Moves the entries of `list` due at or before `now_ns` to `out`.
fn take_due(list: &mut Vec<Due>, now_ns: i64, out: &mut Vec<Due>) {
    let mut i = 0;
    while i < list.len() {
        if list[i].at_ns <= now_ns {
            out.push(list.swap_remove(i));
        } else {
            i += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn due(at_ns: i64, serial: u64) -> Due {
        Due {
            at_ns,
            serial,
            slot: serial as u32,
        }
    }

    #[test]
    fn drains_exactly_what_is_due() {
        let mut q = ExpiryQueue::default();
        let s = GRAIN_NS;
        for (at_ns, serial) in [
            (3 * s, 1),
            (s, 2),
            (2 * s + 5, 3),
            (s, 4),
            (2 * s + 9, 5),
            (-s, 6),
        ] {
            q.schedule(due(at_ns, serial));
        }
        let mut got = Vec::new();
        q.drain_due(2 * s + 5, &mut got);
        let mut serials: Vec<u64> = got.iter().map(|d| d.serial).collect();
        serials.sort_unstable();
        assert_eq!(serials, vec![2, 3, 4, 6]);
        assert_eq!(q.len(), 2);
        got.clear();
        q.drain_due(2 * s + 8, &mut got);
        assert!(got.is_empty());
        q.drain_due(10 * s, &mut got);
        let mut serials: Vec<u64> = got.iter().map(|d| d.serial).collect();
        serials.sort_unstable();
        assert_eq!(serials, vec![1, 5]);
        assert_eq!(q.len(), 0);
    }

    /// Deadlines far out (beyond the ring) and in the past of the ring's base come out
    /// exactly when due, and a random schedule drains exactly as a sorted list would.
    #[test]
    fn far_past_and_random_deadlines() {
        let s = GRAIN_NS;
        let mut q = ExpiryQueue::default();
        q.schedule(due(100 * s, 1));
        q.schedule(due(100 * s + 86_400 * s, 2)); // a day later: far
        q.schedule(due(50 * s, 3)); // before the base
        let mut got = Vec::new();
        q.drain_due(50 * s, &mut got);
        assert_eq!(got.iter().map(|d| d.serial).collect::<Vec<_>>(), vec![3]);
        got.clear();
        q.drain_due(100 * s + 86_399 * s, &mut got);
        assert_eq!(got.iter().map(|d| d.serial).collect::<Vec<_>>(), vec![1]);
        got.clear();
        q.drain_due(100 * s + 86_400 * s, &mut got);
        assert_eq!(got.iter().map(|d| d.serial).collect::<Vec<_>>(), vec![2]);

        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let mut q = ExpiryQueue::default();
        let mut all = Vec::new();
        let mut now = 1_000 * s;
        for serial in 0..20_000u64 {
            let at = now + (next() % (5_000 * s as u64)) as i64 - 100 * s;
            q.schedule(due(at, serial));
            all.push(at);
            if serial % 100 == 0 {
                now += (next() % (20 * s as u64)) as i64;
                let mut got = Vec::new();
                q.drain_due(now, &mut got);
                for d in &got {
                    assert!(d.at_ns <= now);
                    all[d.serial as usize] = i64::MAX; // drained
                }
                assert!(
                    all.iter().all(|&at| at == i64::MAX || at > now),
                    "missed a due entry"
                );
            }
        }
    }
}
