//! The MD5, SHA-1 and SHA-256 of a file, streamed as its bytes are decoded (Zeek's
//! `base/files/hash` analyzers as `frameworks/files/hash-all-files` attaches them).
//!
//! As in Zeek, a file that lost bytes (a gap) gets no hashes: the digest of what was seen
//! would name a file that never existed. An empty file gets none either. Which digests are
//! computed is the run's choice (`[Extract] hashes`, [`HashScope`]): all three by default,
//! none in a run that writes no files.log and extracts nothing (`--logs conn,http`).

use std::cell::Cell;

use md5::Md5;
use sha1::Sha1;
use sha2::{Digest, Sha256};

/// A set of digests, as bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DigestSet(u8);

impl DigestSet {
    pub const NONE: DigestSet = DigestSet(0);
    pub const ALL: DigestSet = DigestSet(7);
    const MD5: u8 = 1;
    const SHA1: u8 = 2;
    const SHA256: u8 = 4;

    /// From names (`md5`, `sha1`, `sha256`, any case); unknown names are left out (the
    /// config checks them).
    pub fn from_names<S: AsRef<str>>(names: &[S]) -> DigestSet {
        DigestSet(names.iter().fold(0, |bits, n| {
            bits | match n.as_ref().to_ascii_lowercase().as_str() {
                "md5" => Self::MD5,
                "sha1" => Self::SHA1,
                "sha256" => Self::SHA256,
                _ => 0,
            }
        }))
    }

    fn has(self, bit: u8) -> bool {
        self.0 & bit != 0
    }
}

thread_local! {
    static DIGESTS: Cell<DigestSet> = const { Cell::new(DigestSet::ALL) };
}

/// The digests computed for the files started on this thread until dropped (then all).
pub struct HashScope(());

impl HashScope {
    pub fn enter(digests: DigestSet) -> HashScope {
        DIGESTS.with(|d| d.set(digests));
        HashScope(())
    }
}

impl Drop for HashScope {
    fn drop(&mut self) {
        DIGESTS.with(|d| d.set(DigestSet::ALL));
    }
}

/// Running digests of one file.
#[derive(Debug, Clone)]
pub(crate) struct Hashes {
    which: DigestSet,
    md5: Md5,
    sha1: Sha1,
    sha256: Sha256,
    fed: bool,
    /// Bytes went missing: no digests at the end.
    broken: bool,
}

impl Default for Hashes {
    fn default() -> Self {
        Hashes {
            which: DigestSet::ALL,
            md5: Md5::default(),
            sha1: Sha1::default(),
            sha256: Sha256::default(),
            fed: false,
            broken: false,
        }
    }
}

/// The finished digests, lowercase hex as files.log writes them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Digests {
    pub md5: Option<String>,
    pub sha1: Option<String>,
    pub sha256: Option<String>,
}

impl Hashes {
    /// Digests for a new file: those this thread's [`HashScope`] asks for.
    pub(crate) fn new() -> Hashes {
        let which = DIGESTS.with(Cell::get);
        Hashes {
            which,
            broken: which == DigestSet::NONE,
            ..Hashes::default()
        }
    }

    pub(crate) fn update(&mut self, data: &[u8]) {
        if self.broken || data.is_empty() {
            return;
        }
        self.fed = true;
        if self.which.has(DigestSet::MD5) {
            self.md5.update(data);
        }
        if self.which.has(DigestSet::SHA1) {
            self.sha1.update(data);
        }
        if self.which.has(DigestSet::SHA256) {
            self.sha256.update(data);
        }
    }

    /// Bytes of the file were never seen.
    pub(crate) fn gap(&mut self) {
        self.broken = true;
    }

    /// The digests, if the file was seen whole and not empty.
    pub(crate) fn finish(&mut self) -> Option<Digests> {
        if self.broken || !self.fed {
            return None;
        }
        let done = std::mem::take(self);
        let which = done.which;
        Some(Digests {
            md5: which.has(DigestSet::MD5).then(|| hex(&done.md5.finalize())),
            sha1: which
                .has(DigestSet::SHA1)
                .then(|| hex(&done.sha1.finalize())),
            sha256: which
                .has(DigestSet::SHA256)
                .then(|| hex(&done.sha256.finalize())),
        })
    }
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 15)]));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_of_known_input_split_anywhere() {
        let mut h = Hashes::default();
        h.update(b"ab");
        h.update(b"c");
        let d = h.finish().unwrap();
        assert_eq!(d.md5.unwrap(), "900150983cd24fb0d6963f7d28e17f72");
        assert_eq!(d.sha1.unwrap(), "a9993e364706816aba3e25717850c26c9cd0d89d");
        assert_eq!(
            d.sha256.unwrap(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn the_scope_chooses_the_digests() {
        let none = HashScope::enter(DigestSet::NONE);
        let mut h = Hashes::new();
        h.update(b"abc");
        assert_eq!(h.finish(), None);
        drop(none);
        let only = HashScope::enter(DigestSet::from_names(&["SHA256", "bogus"]));
        let mut h = Hashes::new();
        h.update(b"abc");
        let d = h.finish().unwrap();
        assert_eq!((d.md5, d.sha1), (None, None));
        assert!(d.sha256.is_some());
        drop(only);
        let mut h = Hashes::new();
        h.update(b"abc");
        assert!(h.finish().unwrap().md5.is_some());
    }

    #[test]
    fn no_digests_after_a_gap_or_for_nothing() {
        let mut h = Hashes::default();
        h.update(b"abc");
        h.gap();
        h.update(b"def");
        assert_eq!(h.finish(), None);
        assert_eq!(Hashes::default().finish(), None);
    }
}
