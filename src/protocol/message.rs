//! What a client may read of an error: every message that leaves pcapd through either front
//! door (the TLS protocol's `ER` payload, the HTTP gateway's JSON `message`) goes through
//! [`client_message`], so no door can leak a server path or echo an unbounded value.
//!
//! - A server path is not the client's business and tells an attacker the layout: a message
//!   of the common `PATH: reason` form loses its `PATH: ` prefix, and any other absolute path
//!   in the text is cut to its file name.
//! - Anything a client sent may come back in a message (a function name, a job id, a tag):
//!   the whole message is cut at [`MAX_CLIENT_MESSAGE`] bytes, with `…` marking the cut.

/// The longest message a client receives, in bytes (the cut is on a character boundary).
pub const MAX_CLIENT_MESSAGE: usize = 256;

/// The client-facing form of an error message.
pub fn client_message(text: &str) -> String {
    let mut out = hide_paths(text);
    if out.len() > MAX_CLIENT_MESSAGE {
        let mut cut = MAX_CLIENT_MESSAGE - '…'.len_utf8();
        while !out.is_char_boundary(cut) {
            cut -= 1;
        }
        out.truncate(cut);
        out.push('…');
    }
    out
}

/// Whether the `/` at byte `i` of `text` starts an absolute path: at the start, or after a
/// space, quote, bracket or `=`.
fn starts_path(text: &[u8], i: usize) -> bool {
    text[i] == b'/'
        && text.get(i + 1).is_some_and(|c| !c.is_ascii_whitespace())
        && (i == 0 || matches!(text[i - 1], b' ' | b'"' | b'\'' | b'(' | b'[' | b'=' | b'`'))
}

/// Where the path starting at `start` ends: at whitespace, a closing quote or bracket, or a
/// `:` that ends the text or is followed by a space.
fn path_end(text: &[u8], start: usize) -> usize {
    let mut i = start;
    while i < text.len() {
        match text[i] {
            b' ' | b'\t' | b'\n' | b'"' | b'\'' | b')' | b']' | b'`' | b',' => return i,
            b':' if text.get(i + 1).is_none_or(|c| *c == b' ') => return i,
            _ => i += 1,
        }
    }
    i
}

fn hide_paths(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    let mut last = 0;
    while i < bytes.len() {
        if !starts_path(bytes, i) {
            i += 1;
            continue;
        }
        let end = path_end(bytes, i);
        out.push_str(&text[last..i]);
        let path = &text[i..end];
        if i == 0 && text[end..].starts_with(": ") {
            // "PATH: reason" → "reason".
            last = end + 2;
        } else {
            out.push_str(path.rsplit('/').find(|c| !c.is_empty()).unwrap_or("/"));
            last = end;
        }
        i = end.max(i + 1);
    }
    out.push_str(&text[last..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_paths_are_hidden() {
        assert_eq!(
            client_message(
                "/var/lib/pcapd/jobs/.tmp-1f/pcaps/.tmp-0.part: No space left on device (os error 28)"
            ),
            "No space left on device (os error 28)"
        );
        assert_eq!(
            client_message("cannot read /srv/pcapd/jobs/abc/pcaps/0.pcap: truncated"),
            "cannot read 0.pcap: truncated"
        );
        assert_eq!(
            client_message("corrupt record \"/a/b/job.json\", skipped"),
            "corrupt record \"job.json\", skipped"
        );
        // Not paths: relative names, ratios, URLs' insides, a lone slash.
        for keep in [
            "file 1 (\"x.pcap\") is 5 bytes",
            "rows 1/2 and a/b",
            "see https://example.org/x",
            "a / b",
            "no job 6f1e",
        ] {
            assert_eq!(client_message(keep), keep);
        }
    }

    #[test]
    fn echoes_are_bounded() {
        let huge = format!("unknown function {:?}", "f".repeat(1_000_000));
        let m = client_message(&huge);
        assert!(
            m.len() <= MAX_CLIENT_MESSAGE && m.ends_with('…'),
            "{}",
            m.len()
        );
        assert!(m.starts_with("unknown function \"fff"));
        // Multi-byte characters are cut whole.
        let m = client_message(&"é".repeat(500));
        assert!(m.len() <= MAX_CLIENT_MESSAGE);
        assert!(m.chars().all(|c| c == 'é' || c == '…'));
        assert_eq!(client_message("short"), "short");
    }
}
