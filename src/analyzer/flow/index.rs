//! The flow table's index: connection key → slab slot, in a compact open-addressing table.
//!
//! Each entry is one `u64`: the key's 32-bit hash in the high half and the slot + 1 in the
//! low half (0 is an empty entry). The keys are the connections' own (each follows from its
//! connection's ends), so a probe walks 8-byte entries (eight to a cache line) and touches a
//! connection only when the whole 32-bit hash matches, which for a miss almost never
//! happens. A map holding the keys (40 bytes each) spent most of a port scan's time in cache
//! misses on insert and removal.
//!
//! Linear probing, at most 70 % full, removal by backward shift (no tombstones), so probe
//! sequences stay short however many connections come and go. Removal needs the hash and
//! the slot only: it finds the entry by value, without comparing keys. The table grows with
//! the connections alive at once and is rebuilt from the stored hashes.

use std::hash::BuildHasher;

use super::conn::ConnKey;
use super::slab::Slot;
use crate::analyzer::hash::FxBuildHasher;

/// The 32-bit hash of a key the index is addressed with.
pub fn key_hash(key: &ConnKey) -> u32 {
    let h = FxBuildHasher::default().hash_one(key);
    // One more mixing round, so that the low bits (the home position) depend on every bit.
    let mixed = (h ^ (h >> 29)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    (mixed >> 32) as u32
}

#[derive(Default)]
pub struct FlowIndex {
    /// Empty, or a power-of-two number of entries.
    entries: Vec<u64>,
    len: usize,
}

fn entry(hash: u32, slot: Slot) -> u64 {
    u64::from(hash) << 32 | (u64::from(slot) + 1)
}

fn entry_hash(e: u64) -> u32 {
    (e >> 32) as u32
}

fn entry_slot(e: u64) -> Slot {
    (e as u32).wrapping_sub(1)
}

impl FlowIndex {
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.len
    }

    fn mask(&self) -> usize {
        self.entries.len().wrapping_sub(1)
    }

    /// The slot of the entry with `hash` for which `is_key` says yes.
    #[inline]
    pub fn find(&self, hash: u32, mut is_key: impl FnMut(Slot) -> bool) -> Option<Slot> {
        if self.entries.is_empty() {
            return None;
        }
        let mask = self.mask();
        let mut i = hash as usize & mask;
        loop {
            let e = self.entries[i];
            if e == 0 {
                return None;
            }
            if entry_hash(e) == hash && is_key(entry_slot(e)) {
                return Some(entry_slot(e));
            }
            i = (i + 1) & mask;
        }
    }

    /// Starts loading the entry where a probe for `hash` begins.
    #[inline]
    pub fn prefetch(&self, hash: u32) {
        if let Some(e) = self.entries.get(hash as usize & self.mask()) {
            crate::analyzer::prefetch::line(e);
        }
    }

    /// The slot of the first entry with `hash`, keys not compared (a guess, for prefetching).
    #[inline]
    pub fn first_with_hash(&self, hash: u32) -> Option<Slot> {
        self.find(hash, |_| true)
    }

    /// Adds `slot` under `hash`; the caller knows its key is not in the index.
    pub fn insert(&mut self, hash: u32, slot: Slot) {
        debug_assert!(slot < u32::MAX, "slot {slot} does not fit an entry");
        if (self.len + 1) * 10 > self.entries.len() * 7 {
            self.grow();
        }
        let mask = self.mask();
        let mut i = hash as usize & mask;
        while self.entries[i] != 0 {
            i = (i + 1) & mask;
        }
        self.entries[i] = entry(hash, slot);
        self.len += 1;
    }

    /// Removes the entry of `slot` under `hash`; false if there is none.
    pub fn remove(&mut self, hash: u32, slot: Slot) -> bool {
        if self.entries.is_empty() {
            return false;
        }
        let mask = self.mask();
        let wanted = entry(hash, slot);
        let mut i = hash as usize & mask;
        loop {
            let e = self.entries[i];
            if e == 0 {
                return false;
            }
            if e == wanted {
                break;
            }
            i = (i + 1) & mask;
        }
        // Backward shift: pull later entries of the probe run into the hole when their
        // home position is not after the hole (cyclically), so no probe run is broken.
        let mut hole = i;
        let mut j = i;
        loop {
            j = (j + 1) & mask;
            let e = self.entries[j];
            if e == 0 {
                break;
            }
            let home = entry_hash(e) as usize & mask;
            if j.wrapping_sub(home) & mask >= j.wrapping_sub(hole) & mask {
                self.entries[hole] = e;
                hole = j;
            }
        }
        self.entries[hole] = 0;
        self.len -= 1;
        true
    }

    /// Drops every entry and releases the memory.
    pub fn clear(&mut self) {
        *self = FlowIndex::default();
    }

    fn grow(&mut self) {
        let size = (self.entries.len() * 2).max(1024);
        let old = std::mem::replace(&mut self.entries, vec![0; size]);
        let mask = size - 1;
        for e in old.into_iter().filter(|&e| e != 0) {
            let mut i = entry_hash(e) as usize & mask;
            while self.entries[i] != 0 {
                i = (i + 1) & mask;
            }
            self.entries[i] = e;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    /// Deterministic xorshift generator.
    fn next(state: &mut u64) -> u64 {
        *state ^= *state << 13;
        *state ^= *state >> 7;
        *state ^= *state << 17;
        *state
    }

    /// Random inserts, lookups and removals against a `HashMap`, with hashes drawn from a
    /// small set so that long probe runs, equal hashes and wrap-around are all exercised.
    #[test]
    fn behaves_like_a_map_under_collisions_and_churn() {
        for hash_space in [7u64, 5000, 1 << 32] {
            let mut index = FlowIndex::default();
            // slot -> hash; a slot's "key" is the slot itself.
            let mut model: HashMap<Slot, u32> = HashMap::new();
            let mut state = 0x2545_f491_4f6c_dd1d ^ hash_space;
            let mut next_slot: Slot = 0;
            for step in 0..60_000 {
                let r = next(&mut state);
                match r % 5 {
                    0 | 1 => {
                        let hash = (next(&mut state) % hash_space) as u32;
                        index.insert(hash, next_slot);
                        model.insert(next_slot, hash);
                        next_slot += 1;
                    }
                    2 if !model.is_empty() => {
                        let slot = *model.keys().nth((r >> 8) as usize % model.len()).unwrap();
                        let hash = model.remove(&slot).unwrap();
                        assert!(index.remove(hash, slot), "step {step}: {slot} not removed");
                        assert!(!index.remove(hash, slot));
                    }
                    _ => {
                        let slot = (r >> 8) as Slot % (next_slot + 1);
                        let hash = model
                            .get(&slot)
                            .copied()
                            .unwrap_or(((r >> 40) % hash_space) as u32);
                        let found = index.find(hash, |s| s == slot);
                        assert_eq!(
                            found,
                            model.contains_key(&slot).then_some(slot),
                            "step {step}"
                        );
                    }
                }
                assert_eq!(index.len(), model.len());
            }
            for (&slot, &hash) in &model {
                assert_eq!(index.find(hash, |s| s == slot), Some(slot));
                index.prefetch(hash);
                let first = index
                    .first_with_hash(hash)
                    .expect("an entry with this hash");
                assert_eq!(model.get(&first), Some(&hash));
            }
            index.clear();
            assert_eq!(index.find(1, |_| true), None);
            assert!(!index.remove(1, 1));
        }
    }

    #[test]
    fn keys_hash_apart_and_by_direction_agnostic_key() {
        use std::net::{IpAddr, Ipv4Addr};
        let a = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
        let b = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2));
        let k1 = ConnKey::new(a, 1000, b, 80, 6);
        let k2 = ConnKey::new(b, 80, a, 1000, 6);
        assert_eq!(key_hash(&k1), key_hash(&k2));
        // A /16 of sources on one port: home positions in a 2^16 table spread out.
        let mut homes = std::collections::HashSet::new();
        for i in 0..4096u32 {
            let src = IpAddr::V4(Ipv4Addr::from(0x0a00_0000 | i << 4));
            homes.insert(key_hash(&ConnKey::new(src, 40000, b, 443, 6)) & 0xffff);
        }
        assert!(homes.len() > 3800, "{} distinct homes", homes.len());
    }
}
