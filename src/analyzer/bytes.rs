//! Bounds-checked big-endian reads over borrowed bytes, shared by the packet decoder and the
//! protocol parsers.
//!
//! Every read returns `None` instead of reading past the end, and a failed read consumes
//! nothing, so a parser can stop at the first short field and keep what it read before it.
//! Nothing here allocates: slices borrow from the input.

/// A cursor over `data` that reads network-order integers and slices.
#[derive(Debug, Clone)]
pub struct ByteReader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> ByteReader<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        ByteReader { data, pos: 0 }
    }

    /// A reader over all of `data` that starts at offset `pos` (DNS names point back into
    /// the whole message, so the message stays reachable).
    pub fn at(data: &'a [u8], pos: usize) -> Self {
        ByteReader { data, pos }
    }

    /// Offset of the next byte to read.
    pub fn pos(&self) -> usize {
        self.pos
    }

    /// The whole input, including what was already read.
    pub fn data(&self) -> &'a [u8] {
        self.data
    }

    /// Bytes left to read.
    pub fn remaining(&self) -> usize {
        self.data.len().saturating_sub(self.pos)
    }

    /// The next `n` bytes.
    pub fn bytes(&mut self, n: usize) -> Option<&'a [u8]> {
        let b = self.data.get(self.pos..self.pos.checked_add(n)?)?;
        self.pos += n;
        Some(b)
    }

    /// Skips `n` bytes; `None` (and nothing skipped) if fewer remain.
    pub fn skip(&mut self, n: usize) -> Option<()> {
        self.bytes(n).map(|_| ())
    }

    /// Moves to offset `pos`, which may be past the end (later reads then fail).
    pub fn seek(&mut self, pos: usize) {
        self.pos = pos;
    }

    fn array<const N: usize>(&mut self) -> Option<[u8; N]> {
        let b = self.data.get(self.pos..)?.first_chunk::<N>()?;
        self.pos += N;
        Some(*b)
    }

    pub fn u8(&mut self) -> Option<u8> {
        self.array::<1>().map(|[b]| b)
    }

    pub fn u16(&mut self) -> Option<u16> {
        self.array().map(u16::from_be_bytes)
    }

    pub fn u24(&mut self) -> Option<u32> {
        self.array::<3>()
            .map(|[a, b, c]| u32::from_be_bytes([0, a, b, c]))
    }

    pub fn u32(&mut self) -> Option<u32> {
        self.array().map(u32::from_be_bytes)
    }

    /// A slice behind a one-byte length.
    pub fn vec8(&mut self) -> Option<&'a [u8]> {
        let start = self.pos;
        let n = self.u8()?;
        self.bytes(n.into()).or_else(|| {
            self.pos = start;
            None
        })
    }

    /// A slice behind a two-byte length.
    pub fn vec16(&mut self) -> Option<&'a [u8]> {
        let start = self.pos;
        let n = self.u16()?;
        self.bytes(n.into()).or_else(|| {
            self.pos = start;
            None
        })
    }

    /// A slice behind a three-byte length.
    pub fn vec24(&mut self) -> Option<&'a [u8]> {
        let start = self.pos;
        let n = self.u24()?;
        self.bytes(n as usize).or_else(|| {
            self.pos = start;
            None
        })
    }

    /// Everything not read yet (empty at or past the end).
    pub fn rest(&mut self) -> &'a [u8] {
        let r = self.data.get(self.pos..).unwrap_or_default();
        self.pos = self.pos.max(self.data.len());
        r
    }
}

/// The big-endian `u16` at offset `at` of `data`.
pub fn be16(data: &[u8], at: usize) -> Option<u16> {
    ByteReader::at(data, at).u16()
}

/// The big-endian `u32` at offset `at` of `data`.
pub fn be32(data: &[u8], at: usize) -> Option<u32> {
    ByteReader::at(data, at).u32()
}

/// The big-endian 24-bit value at offset `at` of `data`.
pub fn be24(data: &[u8], at: usize) -> Option<u32> {
    ByteReader::at(data, at).u24()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_are_big_endian_and_advance() {
        let mut r = ByteReader::new(&[1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
        assert_eq!(r.u8(), Some(1));
        assert_eq!(r.u16(), Some(0x0203));
        assert_eq!(r.u24(), Some(0x040506));
        assert_eq!(r.u32(), Some(0x0708090a));
        assert_eq!(r.pos(), 10);
        assert_eq!(r.remaining(), 0);
        assert_eq!(r.u8(), None);
    }

    #[test]
    fn a_short_read_fails_and_consumes_nothing() {
        let mut r = ByteReader::new(&[1, 2, 3]);
        assert_eq!(r.u32(), None);
        assert_eq!(r.pos(), 0);
        assert_eq!(r.bytes(4), None);
        assert_eq!(r.skip(4), None);
        assert_eq!(r.pos(), 0);
        assert_eq!(r.u24(), Some(0x010203));
        assert_eq!(r.bytes(usize::MAX), None);
    }

    #[test]
    fn length_prefixed_slices() {
        let mut r = ByteReader::new(&[2, 0xa, 0xb, 0, 1, 0xc, 0, 0, 1, 0xd, 9]);
        assert_eq!(r.vec8(), Some(&[0xa, 0xb][..]));
        assert_eq!(r.vec16(), Some(&[0xc][..]));
        assert_eq!(r.vec24(), Some(&[0xd][..]));
        // A length past the end: nothing consumed.
        assert_eq!(r.vec8(), None);
        assert_eq!(r.pos(), 10);
        assert_eq!(r.rest(), &[9]);
        assert_eq!(r.rest(), &[] as &[u8]);
    }

    #[test]
    fn offsets_and_seeking() {
        let data = [0, 0, 0xab, 0xcd, 0xef, 1];
        assert_eq!(be16(&data, 2), Some(0xabcd));
        assert_eq!(be24(&data, 3), Some(0xcdef01));
        assert_eq!(be32(&data, 2), Some(0xabcdef01));
        assert_eq!(be16(&data, 5), None);
        assert_eq!(be16(&data, usize::MAX), None);
        let mut r = ByteReader::at(&data, 4);
        assert_eq!(r.u8(), Some(0xef));
        r.seek(100);
        assert_eq!(r.u8(), None);
        assert_eq!(r.rest(), &[] as &[u8]);
        assert_eq!(r.data().len(), 6);
    }
}
