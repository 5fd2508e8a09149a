//! When connections are due: deadlines kept in buckets of one second of capture time, so a
//! sweep looks only at connections whose deadline has passed instead of the whole table, and
//! scheduling one costs a search among a few hundred buckets rather than a heap of every
//! connection.
//!
//! Entries are lazy. A connection's deadline (the earliest capture time at which one of its
//! timers fires, see `Conn::deadline_ns`) is scheduled when it is created and whenever a
//! packet brings it *earlier* than the one scheduled; a deadline that moves later (the usual
//! case: more activity) costs nothing until the old entry comes up, when the sweep finds the
//! connection not yet expired and schedules its current deadline instead. Entries of
//! connections that are gone, or that were superseded by an earlier one, are dropped when
//! they come up.

use std::collections::BTreeMap;

/// Width of a bucket.
const GRAIN_NS: i64 = 1_000_000_000;

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
    /// Bucket number (`at_ns / GRAIN_NS`, rounded down) → entries due within it.
    buckets: BTreeMap<i64, Vec<Due>>,
    /// Emptied bucket vectors, reused so scheduling does not allocate.
    spare: Vec<Vec<Due>>,
}

impl ExpiryQueue {
    pub fn schedule(&mut self, due: Due) {
        let bucket = due.at_ns.div_euclid(GRAIN_NS);
        let spare = &mut self.spare;
        self.buckets
            .entry(bucket)
            .or_insert_with(|| spare.pop().unwrap_or_default())
            .push(due);
    }

    /// Moves every entry due at or before `now_ns` to `out` (in no particular order).
    pub fn drain_due(&mut self, now_ns: i64, out: &mut Vec<Due>) {
        let now_bucket = now_ns.div_euclid(GRAIN_NS);
        while let Some(mut entry) = self.buckets.first_entry() {
            let bucket = *entry.key();
            if bucket > now_bucket {
                break;
            }
            if bucket < now_bucket {
                let mut whole = entry.remove();
                out.append(&mut whole);
                self.spare.push(whole);
                continue;
            }
            // The bucket `now_ns` falls in: take what is due, keep the rest.
            let list = entry.get_mut();
            let mut i = 0;
            while i < list.len() {
                if list[i].at_ns <= now_ns {
                    out.push(list.swap_remove(i));
                } else {
                    i += 1;
                }
            }
            if list.is_empty() {
                self.spare.push(entry.remove());
            }
            break;
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.buckets.values().map(Vec::len).sum()
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
}
