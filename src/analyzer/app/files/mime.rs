//! MIME types of file contents from their first bytes: a subset of Zeek's file magic
//! signatures (`base/frameworks/files/magic/*.sig`), strongest match first.

use super::SNIFF_LEN;
use crate::analyzer::app::text::{contains, skip_blank, trim_ws};

/// MIME type of a body from its first bytes: a subset of Zeek's file magic signatures,
/// strongest match first.
pub(crate) fn sniff_mime(data: &[u8]) -> Option<&'static str> {
    let starts = |p: &[u8]| data.starts_with(p);
    let binary: &[(&[u8], &str)] = &[
        (b"\x89PNG\r\n\x1a\n", "image/png"),
        (b"GIF87a", "image/gif"),
        (b"GIF89a", "image/gif"),
        (b"\xff\xd8\xff", "image/jpeg"),
        (b"%PDF", "application/pdf"),
        (b"MZ", "application/x-dosexec"),
        (b"\x1f\x8b", "application/x-gzip"),
        (b"BZh", "application/x-bzip2"),
        (b"\xfd7zXZ\x00", "application/x-xz"),
        (b"7z\xbc\xaf\x27\x1c", "application/x-7z-compressed"),
        (b"Rar!\x1a\x07", "application/x-rar"),
        (b"PK\x03\x04", "application/zip"),
        (b"\x7fELF", "application/x-executable"),
        (b"\xca\xfe\xba\xbe", "application/x-java-applet"),
        (b"FWS", "application/x-shockwave-flash"),
        (b"CWS", "application/x-shockwave-flash"),
        (b"ZWS", "application/x-shockwave-flash"),
        (
            b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1",
            "application/vnd.ms-office",
        ),
        (b"ID3", "audio/mpeg"),
        (b"OggS", "application/ogg"),
        (b"wOFF", "application/font-woff"),
        (b"\x00\x00\x01\x00", "image/x-icon"),
        (b"BM", "image/x-ms-bmp"),
        (b"\xa1\xb2\xc3\xd4", "application/vnd.tcpdump.pcap"),
        (b"\xd4\xc3\xb2\xa1", "application/vnd.tcpdump.pcap"),
        (b"-----BEGIN CERTIFICATE-----", "application/x-pem"),
    ];
    if starts(b"RIFF") && data.get(8..12) == Some(b"WEBP") {
        return Some("image/webp");
    }
    if let Some((_, mime)) = binary.iter().find(|(magic, _)| starts(magic)) {
        if *mime == "application/zip"
            && contains(data.get(..260).unwrap_or(data), b"META-INF/MANIFEST.MF")
        {
            return Some("application/java-archive");
        }
        return Some(mime);
    }
    let text = data.strip_prefix(b"\xef\xbb\xbf").unwrap_or(data);
    let trimmed = skip_blank(text);
    let lower: Vec<u8> = trimmed
        .iter()
        .take(64)
        .map(u8::to_ascii_lowercase)
        .collect();
    let lstarts = |p: &[u8]| lower.starts_with(p);
    if lstarts(b"<!doctype html") || lstarts(b"<html") || lstarts(b"<meta http-equiv") {
        return Some("text/html");
    }
    if lstarts(b"<?xml ") {
        // XHTML documents carry their doctype after the XML declaration.
        let after = lowercase_window(trimmed, 512);
        if contains(&after, b"<!doctype html") || contains(&after, b"<html") {
            return Some("text/html");
        }
        if contains(&after, b"<rss") {
            return Some("text/rss");
        }
        return Some("application/xml");
    }
    if lstarts(b"<head") || lstarts(b"<title") || lstarts(b"<body") {
        return Some("text/html");
    }
    if lstarts(b"<script")
        && (contains(&lower, b"javascript")
            || lstarts(b"<script>var ")
            || lstarts(b"<script>function "))
        || lstarts(b"document.write")
        || lstarts(b"for (;;);")
        || text.strip_prefix(b"(function()").is_some_and(|r| {
            // Zeek's pattern allows blanks and LF, not CR, before the brace.
            r.iter().find(|b| !matches!(b, b' ' | b'\t' | b'\n')) == Some(&b'{')
        })
    {
        return Some("application/javascript");
    }
    if looks_like_json(trimmed) {
        return Some("text/json");
    }
    if text.starts_with(b"#!") {
        let line: Vec<u8> = text.iter().take_while(|&&b| b != b'\n').copied().collect();
        for (interp, mime) in [
            (&b"python"[..], "text/x-python"),
            (b"perl", "text/x-perl"),
            (b"ruby", "text/x-ruby"),
            (b"php", "text/x-php"),
            (b"sh", "text/x-shellscript"),
        ] {
            if contains(&line, interp) {
                return Some(mime);
            }
        }
    }
    if contains(&lowercase_window(data, SNIFF_LEN), b"<?php") {
        return Some("text/x-php");
    }
    let plain = text.len() >= 10
        && text[..10]
            .iter()
            .all(|&b| (0x20..0x7f).contains(&b) || b.is_ascii_whitespace() || b == 0x0b);
    plain.then_some("text/plain")
}

fn lowercase_window(data: &[u8], n: usize) -> Vec<u8> {
    data.iter().take(n).map(u8::to_ascii_lowercase).collect()
}

/// Zeek's `text/json` signatures: `{"key":` / `{key:` followed by a value start, or an
/// array opening with a scalar and a comma, an object or an array.
fn looks_like_json(t: &[u8]) -> bool {
    let Some((&open, rest)) = t.split_first() else {
        return false;
    };
    let rest = skip_blank(rest);
    match open {
        b'{' => {
            let after_key = if let Some(r) = rest.strip_prefix(b"\"") {
                match r.iter().position(|&b| b == b'"') {
                    Some(end) if end > 0 => &r[end + 1..],
                    _ => return false,
                }
            } else if rest.first().is_some_and(u8::is_ascii_alphabetic) {
                let n = rest
                    .iter()
                    .position(|b| !(b.is_ascii_alphanumeric() || *b == b'_' || *b == b'\\'))
                    .unwrap_or(rest.len());
                &rest[n..]
            } else {
                return rest.first() == Some(&b'}') && skip_blank(&rest[1..]).is_empty();
            };
            let Some(value) = skip_blank(after_key).strip_prefix(b":") else {
                return false;
            };
            let value = skip_blank(value);
            value
                .first()
                .is_some_and(|b| matches!(b, b'"' | b'[' | b'{') || b.is_ascii_digit())
                || value.starts_with(b"true")
                || value.starts_with(b"false")
        }
        b'[' => {
            matches!(rest.first(), Some(b'{') | Some(b'['))
                || (rest.first() == Some(&b']') && skip_blank(&rest[1..]).is_empty())
                || {
                    let scalar_end = rest.iter().position(|&b| b == b',');
                    scalar_end.is_some_and(|n| {
                        let s = trim_ws(&rest[..n]);
                        (s.len() >= 2 && s[0] == b'"' && s[s.len() - 1] == b'"')
                            || (!s.is_empty() && s.iter().all(|b| b.is_ascii_digit() || *b == b'.'))
                            || s == b"true"
                            || s == b"false"
                    })
                }
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mime_sniffing_covers_common_types() {
        assert_eq!(sniff_mime(b"\x89PNG\r\n\x1a\n...."), Some("image/png"));
        assert_eq!(sniff_mime(b"\xff\xd8\xff\xe0"), Some("image/jpeg"));
        assert_eq!(sniff_mime(b"MZ\x90\x00"), Some("application/x-dosexec"));
        assert_eq!(sniff_mime(b"%PDF-1.4"), Some("application/pdf"));
        assert_eq!(sniff_mime(b"PK\x03\x04"), Some("application/zip"));
        assert_eq!(sniff_mime(b"  <!DOCTYPE html><html>"), Some("text/html"));
        assert_eq!(sniff_mime(b"{\"a\": 1}"), Some("text/json"));
        assert_eq!(
            sniff_mime(b"document.write('x')"),
            Some("application/javascript")
        );
        assert_eq!(sniff_mime(b"hello world, plain"), Some("text/plain"));
        assert_eq!(
            sniff_mime(b"(function()\n{ var x;"),
            Some("application/javascript")
        );
        assert_eq!(sniff_mime(b"(function()\r\n{ var x;"), Some("text/plain"));
        assert_eq!(sniff_mime(b"short"), None);
        assert_eq!(sniff_mime(b"\x00\x01\x02binary...."), None);
    }
}
