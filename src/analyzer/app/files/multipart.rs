//! `multipart/*` bodies (RFC 2046) split into their parts, and the file name a part's
//! Content-Disposition gives.

use crate::analyzer::app::escape_bytes;
use crate::analyzer::app::text::trim_ws;

/// One part of a `multipart/*` body: its Content-Disposition filename and content.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Part<'a> {
    pub filename: Option<String>,
    pub content: &'a [u8],
}

/// Splits a complete `multipart/*` body at its `boundary` (RFC 2046): the preamble and
/// epilogue are dropped, a part cut short by the end of the body keeps what it has.
pub(crate) fn multipart_parts<'a>(body: &'a [u8], boundary: &[u8]) -> Vec<Part<'a>> {
    let mut delim = b"--".to_vec();
    delim.extend_from_slice(boundary);
    let find = |from: usize| -> Option<usize> {
        // A delimiter starts the body or a line.
        (from..body.len().saturating_sub(delim.len() - 1))
            .find(|&i| body[i..].starts_with(&delim) && (i == 0 || body[i - 1] == b'\n'))
    };
    let mut parts = Vec::new();
    let Some(mut at) = find(0) else {
        return parts;
    };
    loop {
        let after = at + delim.len();
        if body.get(after..after + 2) == Some(b"--") {
            break;
        }
        let Some(line_end) = body[after..].iter().position(|&b| b == b'\n') else {
            break;
        };
        let mut pos = after + line_end + 1;
        let mut filename = None;
        // Part headers up to the empty line.
        while let Some(len) = body[pos..].iter().position(|&b| b == b'\n') {
            let line = &body[pos..pos + len];
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            pos += len + 1;
            if line.is_empty() {
                break;
            }
            if let Some(colon) = line.iter().position(|&b| b == b':') {
                if line[..colon].eq_ignore_ascii_case(b"content-disposition") {
                    filename = disposition_filename(&line[colon + 1..]);
                }
            }
        }
        let pos = pos.min(body.len());
        let next = find(pos);
        let end = next.unwrap_or(body.len());
        let mut content = &body[pos..end];
        if next.is_some() {
            // The line break before a delimiter belongs to the delimiter.
            content = content.strip_suffix(b"\n").unwrap_or(content);
            content = content.strip_suffix(b"\r").unwrap_or(content);
        }
        parts.push(Part { filename, content });
        match next {
            Some(n) => at = n,
            None => break,
        }
    }
    parts
}

/// The `filename` parameter of a Content-Disposition header value.
pub(crate) fn disposition_filename(v: &[u8]) -> Option<String> {
    let lower = v.to_ascii_lowercase();
    let at = lower.windows(9).position(|w| w == b"filename=")?;
    let rest = &v[at + 9..];
    let name = if let Some(r) = rest.strip_prefix(b"\"") {
        &r[..r.iter().position(|&b| b == b'"').unwrap_or(r.len())]
    } else {
        &rest[..rest.iter().position(|&b| b == b';').unwrap_or(rest.len())]
    };
    Some(escape_bytes(trim_ws(name)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multipart_bodies_split_into_parts() {
        let body = b"preamble\r\n--XyZ\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nvalue one\r\n--XyZ\r\nContent-Disposition: form-data; name=\"f\"; filename=\"x.png\"\r\nContent-Type: image/png\r\n\r\n\x89PNG\r\n\x1a\n\r\n--XyZ--\r\nepilogue";
        let parts = multipart_parts(body, b"XyZ");
        assert_eq!(
            parts,
            vec![
                Part {
                    filename: None,
                    content: b"value one"
                },
                Part {
                    filename: Some("x.png".into()),
                    content: b"\x89PNG\r\n\x1a\n"
                },
            ]
        );
        assert!(multipart_parts(b"no delimiter here", b"XyZ").is_empty());
        // Cut short: the last part keeps what arrived.
        assert_eq!(multipart_parts(b"--b\r\n\r\nabc", b"b")[0].content, b"abc");
    }
}
