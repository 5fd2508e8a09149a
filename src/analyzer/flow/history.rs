//! conn.log's `history`: the letters of a connection in order of occurrence, upper case for
//! the originator and lower case for the responder, with Zeek's rules for which letters are
//! recorded once per direction and which on a logarithmic scale.
//!
//! The letters are kept inline (no allocation for the usual short history) and spill to the
//! heap only when a connection's history grows long.

/// Letters recorded at most once per direction; the discriminant is a bit position.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Once {
    Syn = 0,
    Fin = 1,
    Rst = 2,
    Data = 3,
    Ack = 4,
    FinRst = 5,
    MultiFlag = 6,
}

/// Letters held without allocating; longer histories move to the heap.
const INLINE: usize = 22;

#[derive(Debug, Clone)]
enum Letters {
    Inline {
        buf: [u8; INLINE],
        len: u8,
    },
    /// Past `INLINE` letters (rare): boxed, so that the inline form sets the size.
    #[allow(clippy::box_collection)]
    Heap(Box<Vec<u8>>),
}

/// A connection's history string plus the once-per-direction letters already seen.
#[derive(Debug, Clone)]
pub struct History {
    letters: Letters,
    /// Bit `Once as u32` for the originator, +16 for the responder (swapped on a flip).
    seen: u32,
}

impl Default for History {
    fn default() -> Self {
        History {
            letters: Letters::Inline {
                buf: [0; INLINE],
                len: 0,
            },
            seen: 0,
        }
    }
}

impl History {
    pub fn as_str(&self) -> &str {
        let bytes = match &self.letters {
            Letters::Inline { buf, len } => &buf[..usize::from(*len)],
            Letters::Heap(v) => v.as_slice(),
        };
        // Only ASCII letters and '^' are ever pushed.
        std::str::from_utf8(bytes).unwrap_or_default()
    }

    fn push_byte(&mut self, b: u8) {
        match &mut self.letters {
            Letters::Inline { buf, len } if usize::from(*len) < INLINE => {
                buf[usize::from(*len)] = b;
                *len += 1;
            }
            Letters::Inline { buf, len } => {
                let mut v = Vec::with_capacity(INLINE * 2);
                v.extend_from_slice(&buf[..usize::from(*len)]);
                v.push(b);
                self.letters = Letters::Heap(Box::new(v));
            }
            Letters::Heap(v) => v.push(b),
        }
    }

    /// Appends `letter` in the case of the side that sent it.
    pub fn push(&mut self, is_orig: bool, letter: u8) {
        self.push_byte(if is_orig {
            letter.to_ascii_uppercase()
        } else {
            letter.to_ascii_lowercase()
        });
    }

    /// Records a once-per-direction letter; returns whether it had been seen before (in which
    /// case nothing is appended).
    pub fn once(&mut self, is_orig: bool, once: Once, letter: u8) -> bool {
        let bit = 1u32 << (once as u32 + if is_orig { 0 } else { 16 });
        if self.seen & bit != 0 {
            return true;
        }
        self.seen |= bit;
        self.push(is_orig, letter);
        false
    }

    /// `^` alone: the roles were swapped but the once-bits stay with their slots (a UDP
    /// analyzer's flip, `Conn::flip_during_udp_delivery`).
    pub fn mark_flip(&mut self) {
        self.push_byte(b'^');
    }

    /// The roles were swapped (Zeek's `FlipRoles`): the once-bits follow the sides, and a `^`
    /// marks the flip. A connection that began with a SYN-ACK (`H` alone) is rewritten as seen
    /// from the real originator: `^h`.
    pub fn flip(&mut self) {
        self.seen = self.seen.rotate_left(16);
        if self.as_str() == "H" {
            self.letters = Letters::Inline {
                buf: [0; INLINE],
                len: 0,
            };
            self.push_byte(b'^');
            self.push_byte(b'h');
        } else {
            self.push_byte(b'^');
        }
    }
}

/// A letter added at the 1st, 10th, 100th, ... occurrence (`C`, `T`, `W`, `G`).
#[derive(Debug, Clone, Copy)]
pub struct Scaled {
    count: u32,
    threshold: u32,
}

impl Default for Scaled {
    fn default() -> Self {
        Scaled {
            count: 0,
            threshold: 1,
        }
    }
}

impl Scaled {
    /// Counts one occurrence; true when the letter is to be added now.
    pub fn hit(&mut self) -> bool {
        self.count = self.count.saturating_add(1);
        if self.count == self.threshold {
            self.threshold = self.threshold.saturating_mul(10);
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn case_follows_the_side_and_once_letters_repeat_not() {
        let mut h = History::default();
        assert!(!h.once(true, Once::Syn, b'S'));
        assert!(!h.once(false, Once::Syn, b'H'));
        assert!(h.once(true, Once::Syn, b'S'));
        assert!(!h.once(true, Once::Ack, b'A'));
        h.push(false, b'D');
        assert_eq!(h.as_str(), "ShAd");
    }

    #[test]
    fn flip_swaps_once_bits_and_marks_it() {
        let mut h = History::default();
        h.once(true, Once::Data, b'D');
        h.flip();
        // The former originator's D is now the responder's: a new originator D is recorded.
        assert!(!h.once(true, Once::Data, b'D'));
        assert!(h.once(false, Once::Data, b'd'));
        assert_eq!(h.as_str(), "D^D");

        let mut synack = History::default();
        synack.once(true, Once::Syn, b'H');
        synack.flip();
        assert_eq!(synack.as_str(), "^h");
    }

    #[test]
    fn long_histories_spill_to_the_heap_unchanged() {
        let mut h = History::default();
        let mut expect = String::new();
        for i in 0..100 {
            let orig = i % 3 == 0;
            h.push(orig, b'T');
            expect.push(if orig { 'T' } else { 't' });
        }
        assert_eq!(h.as_str(), expect);
    }

    #[test]
    fn scaled_letters_at_powers_of_ten() {
        let mut s = Scaled::default();
        let hits: Vec<u32> = (1..=1000).filter(|_| s.hit()).collect();
        assert_eq!(hits, vec![1, 10, 100, 1000]);
    }
}
