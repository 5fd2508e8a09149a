//! Byte-string helpers shared by the text protocols (HTTP, MIME, FTP, SMTP): blanks,
//! trimming, substring search, and the line splitter of the line-based protocols.

/// `data` without its leading blanks (space, tab, CR, LF).
pub(crate) fn skip_blank(data: &[u8]) -> &[u8] {
    let start = data
        .iter()
        .position(|b| !matches!(b, b' ' | b'\t' | b'\r' | b'\n'))
        .unwrap_or(data.len());
    &data[start..]
}

/// Whether `needle` occurs in `hay`.
pub(crate) fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// `s` without leading and trailing blanks.
pub(crate) fn trim_ws(s: &[u8]) -> &[u8] {
    let s = skip_blank(s);
    let end = s
        .iter()
        .rposition(|b| !matches!(b, b' ' | b'\t' | b'\r' | b'\n'))
        .map_or(0, |p| p + 1);
    &s[..end]
}

/// Splits one side's stream into lines as Zeek's content-line analyzer does for FTP and
/// SMTP: a line ends at LF, a CR before it is dropped, and a line longer than `max` is cut
/// there (its rest becomes the next line) so that a side without newlines holds at most
/// `max` bytes.
#[derive(Debug)]
pub(crate) struct Lines {
    buf: Vec<u8>,
    max: usize,
}

impl Lines {
    pub(crate) fn new(max: usize) -> Self {
        Lines {
            buf: Vec::new(),
            max,
        }
    }

    /// Reads the first line completed by `data` into `line` (replacing what it held) and
    /// advances `data` past it; false once `data` is used up (an unfinished line is held
    /// back for the next call). One line at a time, so that a protocol can switch to raw
    /// bytes after a line (SMTP's `BDAT`, TLS after `STARTTLS`). The caller keeps `line`
    /// from call to call, so that reading a line allocates nothing.
    pub(crate) fn next_line(&mut self, data: &mut &[u8], line: &mut Vec<u8>) -> bool {
        line.clear();
        while !data.is_empty() {
            let room = self.max.saturating_sub(self.buf.len()).max(1);
            let window = &data[..data.len().min(room)];
            match memchr::memchr(b'\n', window) {
                Some(i) => {
                    line.append(&mut self.buf);
                    line.extend_from_slice(&window[..i]);
                    *data = &data[i + 1..];
                    if line.last() == Some(&b'\r') {
                        line.pop();
                    }
                    return true;
                }
                None => {
                    self.buf.extend_from_slice(window);
                    *data = &data[window.len()..];
                    if self.buf.len() >= self.max {
                        line.append(&mut self.buf);
                        return true;
                    }
                }
            }
        }
        false
    }

    /// The bytes of an unfinished line, given up (a gap, or the end of the stream).
    pub(crate) fn take_partial(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blanks_and_search() {
        assert_eq!(skip_blank(b" \t\r\nx y "), b"x y ");
        assert_eq!(trim_ws(b"  x y \r\n"), b"x y");
        assert_eq!(trim_ws(b" \t "), b"");
        assert!(contains(b"chunked, gzip", b"gzip"));
        assert!(!contains(b"gz", b"gzip"));
    }

    #[test]
    fn lines_split_at_lf_and_are_capped() {
        let mut lines = Lines::new(8);
        let mut got = Vec::new();
        let mut line = Vec::new();
        for mut chunk in [&b"ab\r\ncd"[..], b"e\nfghijklmnop\n", b"x"] {
            while lines.next_line(&mut chunk, &mut line) {
                got.push(line.clone());
            }
        }
        assert_eq!(got, [&b"ab"[..], b"cde", b"fghijklm", b"nop"]);
        assert_eq!(lines.take_partial(), b"x");
    }
}
