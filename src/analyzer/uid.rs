//! Connection uids as Zeek writes them: `C` followed by base62 digits of a 96-bit value.
//!
//! A [`Uid`] is stored inline (no heap allocation per connection) and reads as a `&str`.
//! [`UidGenerator`] makes them from a deterministic pseudo-random sequence, so the same
//! capture gives the same uids on every run while uids stay unique within one run.

use std::fmt;
use std::ops::Deref;

/// `C` + at most 17 base62 digits of a 96-bit value (62^17 > 2^96).
const MAX_LEN: usize = 18;

/// One connection's uid.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Uid {
    bytes: [u8; MAX_LEN],
    len: u8,
}

impl Uid {
    /// The uid of a 96-bit value (`value < 2^96`; higher bits are ignored).
    pub fn from_bits(value: u128) -> Uid {
        const DIGITS: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
        // 62^10 fits a u64: the 96-bit value is split into base-62^10 limbs so that the digit
        // loop runs on u64 arithmetic (u128 division is a slow library call).
        const LIMB: u128 = 839_299_365_868_340_224; // 62^10
        let value = value & ((1u128 << 96) - 1);
        let limbs = [
            (value % LIMB) as u64,
            (value / LIMB % LIMB) as u64,
            (value / LIMB / LIMB) as u64,
        ];
        let mut bytes = [0u8; MAX_LEN];
        bytes[0] = b'C';
        let mut len = 1;
        // Least significant digit first. Every limb but the most significant non-zero one
        // is written with all its 10 digits (its zeros are inner digits of the number).
        let top = limbs.iter().rposition(|&l| l != 0);
        for (i, &limb) in limbs.iter().enumerate() {
            let Some(top) = top else { break };
            if i > top {
                break;
            }
            let mut l = limb;
            let mut digits = 0;
            while (i < top && digits < 10) || (i == top && l > 0) {
                bytes[len] = DIGITS[(l % 62) as usize];
                l /= 62;
                len += 1;
                digits += 1;
            }
        }
        Uid {
            bytes,
            len: len as u8,
        }
    }

    /// A uid with a fixed text, for tests (at most 18 ASCII bytes).
    pub fn from_static(text: &'static str) -> Uid {
        assert!(text.is_ascii() && text.len() <= MAX_LEN, "uid {text:?}");
        let mut bytes = [0u8; MAX_LEN];
        bytes[..text.len()].copy_from_slice(text.as_bytes());
        Uid {
            bytes,
            len: text.len() as u8,
        }
    }

    pub fn as_str(&self) -> &str {
        // Only ASCII digits and letters are ever stored.
        std::str::from_utf8(&self.bytes[..usize::from(self.len)]).unwrap_or_default()
    }
}

impl Deref for Uid {
    type Target = str;

    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl fmt::Display for Uid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for Uid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

/// Deterministic uids for one analysis run (splitmix64 stream, fixed seed).
pub struct UidGenerator {
    state: u64,
}

impl Default for UidGenerator {
    fn default() -> Self {
        UidGenerator {
            state: 0x9e37_79b9_7f4a_7c15,
        }
    }
}

impl UidGenerator {
    pub fn next_uid(&mut self) -> Uid {
        let high = u128::from(splitmix64(&mut self.state)) << 32;
        let low = u128::from(splitmix64(&mut self.state) as u32);
        Uid::from_bits(high | low)
    }
}

fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uids_are_c_and_base62_and_stable() {
        let mut g = UidGenerator::default();
        let a = g.next_uid();
        let b = g.next_uid();
        assert_ne!(a, b);
        assert!(
            a.starts_with('C') && a.len() > 10 && a.len() <= MAX_LEN,
            "{a}"
        );
        assert!(a[1..].bytes().all(|c| c.is_ascii_alphanumeric()));
        let mut again = UidGenerator::default();
        assert_eq!(again.next_uid(), a);
        assert_eq!(Uid::from_bits(0).as_str(), "C");
        assert_eq!(Uid::from_bits(61).as_str(), "Cz");
        assert_eq!(Uid::from_bits(62).as_str(), "C01");
        assert_eq!(Uid::from_bits(u128::MAX).len(), MAX_LEN);
        // The limb split gives the digits plain base-62 division gives.
        let mut state = 7u64;
        for _ in 0..10_000 {
            let v = (u128::from(splitmix64(&mut state)) << 64 | u128::from(splitmix64(&mut state)))
                >> (splitmix64(&mut state) % 100);
            assert_eq!(
                Uid::from_bits(v).as_str(),
                slow_uid(v & ((1u128 << 96) - 1)),
                "{v}"
            );
        }
        assert_eq!(
            Uid::from_bits(839_299_365_868_340_224).as_str(),
            slow_uid(839_299_365_868_340_224)
        );
    }

    fn slow_uid(mut value: u128) -> String {
        const DIGITS: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
        let mut s = String::from("C");
        while value > 0 {
            s.push(char::from(DIGITS[(value % 62) as usize]));
            value /= 62;
        }
        s
    }
}
