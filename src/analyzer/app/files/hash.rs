//! The MD5, SHA-1 and SHA-256 of a file, streamed as its bytes are decoded (Zeek's
//! `base/files/hash` analyzers as `frameworks/files/hash-all-files` attaches them).
//!
//! As in Zeek, a file that lost bytes (a gap) gets no hashes: the digest of what was seen
//! would name a file that never existed. An empty file gets none either. A run that writes
//! no files.log and extracts nothing (`pcapd analyze --logs conn,http`) skips hashing
//! ([`SkipHashing`]): nobody would see the digests.

use std::cell::Cell;

use md5::Md5;
use sha1::Sha1;
use sha2::{Digest, Sha256};

thread_local! {
    static SKIP: Cell<bool> = const { Cell::new(false) };
}

/// Hashing off for the files started on this thread until dropped.
pub struct SkipHashing(());

impl SkipHashing {
    pub fn enter() -> SkipHashing {
        SKIP.with(|s| s.set(true));
        SkipHashing(())
    }
}

impl Drop for SkipHashing {
    fn drop(&mut self) {
        SKIP.with(|s| s.set(false));
    }
}

/// Running digests of one file.
#[derive(Debug, Clone, Default)]
pub(crate) struct Hashes {
    md5: Md5,
    sha1: Sha1,
    sha256: Sha256,
    fed: bool,
    /// Bytes went missing: no digests at the end.
    broken: bool,
}

/// The finished digests, lowercase hex as files.log writes them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Digests {
    pub md5: String,
    pub sha1: String,
    pub sha256: String,
}

impl Hashes {
    /// Digests for a new file, unless hashing is skipped on this thread.
    pub(crate) fn new() -> Hashes {
        Hashes {
            broken: SKIP.with(Cell::get),
            ..Hashes::default()
        }
    }

    pub(crate) fn update(&mut self, data: &[u8]) {
        if self.broken || data.is_empty() {
            return;
        }
        self.fed = true;
        self.md5.update(data);
        self.sha1.update(data);
        self.sha256.update(data);
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
        Some(Digests {
            md5: hex(&done.md5.finalize()),
            sha1: hex(&done.sha1.finalize()),
            sha256: hex(&done.sha256.finalize()),
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
        assert_eq!(d.md5, "900150983cd24fb0d6963f7d28e17f72");
        assert_eq!(d.sha1, "a9993e364706816aba3e25717850c26c9cd0d89d");
        assert_eq!(
            d.sha256,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn skipped_hashing_gives_no_digests() {
        let skip = SkipHashing::enter();
        let mut h = Hashes::new();
        h.update(b"abc");
        assert_eq!(h.finish(), None);
        drop(skip);
        let mut h = Hashes::new();
        h.update(b"abc");
        assert!(h.finish().is_some());
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
