//! Byte-string helpers shared by the text protocols (HTTP, MIME): blanks, trimming,
//! substring search.

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
}
