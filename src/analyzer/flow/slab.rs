//! Storage for live connections: fixed-size chunks of slots with a free list, so growing the
//! table never moves a connection (a `Vec` of connections would copy them all, hundreds of
//! bytes each, every time it doubled) and a freed slot is reused by the next connection.

/// Slots per chunk (a power of two).
const CHUNK_BITS: u32 = 10;
const CHUNK: usize = 1 << CHUNK_BITS;

pub type Slot = u32;

pub struct Slab<T> {
    chunks: Vec<Box<[Option<T>]>>,
    free: Vec<Slot>,
    /// Slots handed out so far (free or not).
    used: usize,
    live: usize,
}

impl<T> Default for Slab<T> {
    fn default() -> Self {
        Slab {
            chunks: Vec::new(),
            free: Vec::new(),
            used: 0,
            live: 0,
        }
    }
}

impl<T> Slab<T> {
    pub fn insert(&mut self, value: T) -> Slot {
        self.live += 1;
        if let Some(slot) = self.free.pop() {
            *self.entry(slot) = Some(value);
            return slot;
        }
        if self.used == self.chunks.len() * CHUNK {
            self.chunks.push(
                (0..CHUNK)
                    .map(|_| None)
                    .collect::<Vec<_>>()
                    .into_boxed_slice(),
            );
        }
        let slot = self.used as Slot;
        self.used += 1;
        *self.entry(slot) = Some(value);
        slot
    }

    fn entry(&mut self, slot: Slot) -> &mut Option<T> {
        &mut self.chunks[(slot >> CHUNK_BITS) as usize][slot as usize & (CHUNK - 1)]
    }

    pub fn get(&self, slot: Slot) -> Option<&T> {
        self.chunks
            .get((slot >> CHUNK_BITS) as usize)?
            .get(slot as usize & (CHUNK - 1))?
            .as_ref()
    }

    pub fn get_mut(&mut self, slot: Slot) -> Option<&mut T> {
        self.chunks
            .get_mut((slot >> CHUNK_BITS) as usize)?
            .get_mut(slot as usize & (CHUNK - 1))?
            .as_mut()
    }

    /// Starts loading the memory of the value in `slot` (see `prefetch`).
    pub fn prefetch(&self, slot: Slot) {
        if let Some(entry) = self
            .chunks
            .get((slot >> CHUNK_BITS) as usize)
            .and_then(|chunk| chunk.get(slot as usize & (CHUNK - 1)))
        {
            crate::analyzer::prefetch::object(entry);
        }
    }

    /// Drops the value in `slot` in place and frees the slot.
    pub fn discard(&mut self, slot: Slot) {
        let Some(entry) = self
            .chunks
            .get_mut((slot >> CHUNK_BITS) as usize)
            .and_then(|chunk| chunk.get_mut(slot as usize & (CHUNK - 1)))
        else {
            return;
        };
        if entry.is_some() {
            *entry = None;
            self.free.push(slot);
            self.live -= 1;
        }
    }

    pub fn len(&self) -> usize {
        self.live
    }

    /// Every live value with its slot.
    pub fn iter(&self) -> impl Iterator<Item = (Slot, &T)> {
        self.chunks.iter().enumerate().flat_map(|(c, chunk)| {
            chunk
                .iter()
                .enumerate()
                .filter_map(move |(i, v)| v.as_ref().map(|v| (((c << CHUNK_BITS) | i) as Slot, v)))
        })
    }

    /// Drops everything and releases the memory.
    pub fn clear(&mut self) {
        *self = Slab::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_stable_and_reused() {
        let mut s = Slab::default();
        let slots: Vec<Slot> = (0..3000).map(|i| s.insert(i)).collect();
        assert_eq!(s.len(), 3000);
        assert_eq!(s.get(slots[2500]), Some(&2500));
        s.discard(slots[7]);
        assert_eq!(s.get(slots[7]), None);
        let again = s.insert(99);
        assert_eq!(again, slots[7]);
        *s.get_mut(again).expect("live") += 1;
        assert_eq!(s.get(again), Some(&100));
        assert_eq!(s.iter().count(), 3000);
        s.discard(again);
        s.discard(again);
        assert_eq!((s.len(), s.get(again)), (2999, None));
        assert_eq!(s.insert(5), again);
        assert!(s.get(1 << 30).is_none());
        s.clear();
        assert_eq!((s.len(), s.iter().count()), (0, 0));
    }
}
