//! When connections are due: a min-heap of (deadline, connection) so that a sweep looks only
//! at connections whose deadline has passed instead of the whole table.
//!
//! Entries are lazy. A connection's deadline (the earliest capture time at which one of its
//! timers fires, see `Conn::deadline_ns`) is pushed when it is created and whenever a
//! packet brings it *earlier* than the one scheduled; a deadline that moves later (the usual
//! case: more activity) costs nothing until the old entry comes up, when the sweep finds the
//! connection not yet expired and pushes its current deadline instead. Entries of connections
//! that are gone, or that were superseded by an earlier push, are dropped when they come up.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

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
    heap: BinaryHeap<Reverse<Due>>,
}

impl ExpiryQueue {
    pub fn schedule(&mut self, due: Due) {
        self.heap.push(Reverse(due));
    }

    /// The next entry due at or before `now_ns`, earliest first.
    pub fn pop_due(&mut self, now_ns: i64) -> Option<Due> {
        match self.heap.peek() {
            Some(Reverse(due)) if due.at_ns <= now_ns => self.heap.pop().map(|Reverse(d)| d),
            _ => None,
        }
    }

    pub fn len(&self) -> usize {
        self.heap.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pops_only_what_is_due_in_order() {
        let mut q = ExpiryQueue::default();
        for (at_ns, serial) in [(30, 1), (10, 2), (20, 3), (10, 4)] {
            q.schedule(Due {
                at_ns,
                serial,
                slot: serial as u32,
            });
        }
        let mut got = Vec::new();
        while let Some(d) = q.pop_due(20) {
            got.push((d.at_ns, d.serial));
        }
        assert_eq!(got, vec![(10, 2), (10, 4), (20, 3)]);
        assert_eq!(q.len(), 1);
        assert!(q.pop_due(29).is_none());
        assert_eq!(q.pop_due(30).map(|d| d.serial), Some(1));
    }
}
