//! MIME types of file contents from their first bytes, by Zeek's own file magic signatures
//! kept as data in `magic.tsv` (a mirror of `base/frameworks/files/magic/*.sig`).
//!
//! Zeek's rule matcher compiles each `file-magic` pattern so that it matches from the first
//! byte of the BOF buffer (a prefix match) with `.` matching any byte including newline; the
//! MIME type of the strongest matching signature wins, and among equally strong ones the
//! smallest type name (Zeek keeps them in an ordered set per strength). All patterns run as
//! one [`RegexSet`] over the sniffed bytes, compiled once per process.

use std::sync::LazyLock;

use regex::bytes::{RegexSet, RegexSetBuilder};

/// The signature table, one signature a line (see the file's header).
const MAGIC_TSV: &str = include_str!("magic.tsv");

/// One signature of the table.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Signature {
    strength: i32,
    mime: &'static str,
    name: &'static str,
    pattern: &'static str,
}

/// What is wrong with a line of `magic.tsv`.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub(crate) enum MagicError {
    #[error("magic.tsv line {line}: expected 4 tab-separated fields")]
    Fields { line: usize },
    #[error("magic.tsv line {line}: strength {value:?} is not an integer")]
    Strength { line: usize, value: String },
    #[error("magic.tsv: pattern set does not compile: {0}")]
    Compile(String),
}

/// The compiled table.
struct Magic {
    sigs: Vec<Signature>,
    set: RegexSet,
}

fn parse_table(text: &'static str) -> Result<Vec<Signature>, MagicError> {
    let mut sigs = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line_no = i + 1;
        let mut f = line.splitn(4, '\t');
        let (Some(strength), Some(mime), Some(name), Some(pattern)) =
            (f.next(), f.next(), f.next(), f.next())
        else {
            return Err(MagicError::Fields { line: line_no });
        };
        let strength = strength.parse().map_err(|_| MagicError::Strength {
            line: line_no,
            value: strength.to_owned(),
        })?;
        sigs.push(Signature {
            strength,
            mime,
            name,
            pattern,
        });
    }
    Ok(sigs)
}

/// Rewrites a Zeek pattern in the `regex` crate's syntax, anchored at the first byte.
///
/// The two dialects agree on what the signatures use (`\xHH`, classes with POSIX names,
/// counted repetition, groups) except for escapes: Zeek reads `\<` and `\>` as the plain
/// characters (the crate as word boundaries), and a `[` inside a class as a literal (the
/// crate as a nested class) unless it opens a POSIX name.
fn translate(pattern: &str) -> String {
    let mut out = String::with_capacity(pattern.len() + 16);
    out.push_str("^(?s-u:");
    let mut chars = pattern.chars().peekable();
    let mut in_class = false;
    let mut class_start = false;
    while let Some(c) = chars.next() {
        let at_class_start = std::mem::take(&mut class_start);
        match c {
            '\\' => match chars.next() {
                Some(e @ ('<' | '>')) => out.push(e),
                Some(e) => {
                    out.push('\\');
                    out.push(e);
                }
                None => out.push_str("\\\\"),
            },
            '[' if !in_class => {
                in_class = true;
                class_start = true;
                out.push('[');
                if chars.peek() == Some(&'^') {
                    out.push(chars.next().unwrap_or('^'));
                }
            }
            '[' if chars.peek() == Some(&':') => {
                // A POSIX name such as `[:space:]`: copied through its closing `:]`.
                out.push('[');
                for n in chars.by_ref() {
                    out.push(n);
                    if n == ']' {
                        break;
                    }
                }
            }
            '[' => out.push_str("\\["),
            ']' if in_class && !at_class_start => {
                in_class = false;
                out.push(']');
            }
            '&' | '-' | '~' if in_class && chars.peek() == Some(&c) => {
                // Doubled, these are set operators for the crate; Zeek means the characters.
                out.push('\\');
                out.push(c);
            }
            _ => out.push(c),
        }
    }
    out.push(')');
    out
}

fn compile(sigs: Vec<Signature>) -> Result<Magic, MagicError> {
    let set = RegexSetBuilder::new(sigs.iter().map(|s| translate(s.pattern)))
        .unicode(false)
        .size_limit(64 << 20)
        .dfa_size_limit(16 << 20)
        .build()
        .map_err(|e| MagicError::Compile(e.to_string()))?;
    Ok(Magic { sigs, set })
}

static MAGIC: LazyLock<Magic> = LazyLock::new(|| {
    // The table is part of the binary and checked by the tests: a failure here is a bug.
    parse_table(MAGIC_TSV)
        .and_then(compile)
        .unwrap_or_else(|e| panic!("{e}"))
});

/// The signature that decides the type of a file starting with `head` (its BOF buffer).
fn deciding(head: &[u8]) -> Option<&'static Signature> {
    let magic = &*MAGIC;
    magic
        .set
        .matches(head)
        .iter()
        .map(|i| &magic.sigs[i])
        .max_by(|a, b| a.strength.cmp(&b.strength).then(b.mime.cmp(a.mime)))
}

/// The MIME type Zeek's signatures give a file starting with `head` (its BOF buffer).
pub(crate) fn sniff_mime(head: &[u8]) -> Option<&'static str> {
    deciding(head).map(|s| s.mime)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_parses_and_every_pattern_compiles() {
        let sigs = parse_table(MAGIC_TSV).unwrap();
        assert!(sigs.len() > 300, "{} signatures", sigs.len());
        for s in &sigs {
            if let Err(e) = regex::bytes::RegexBuilder::new(&translate(s.pattern))
                .unicode(false)
                .size_limit(16 << 20)
                .build()
            {
                panic!("{} ({}): {e}", s.name, s.pattern);
            }
        }
        assert_eq!(
            parse_table("# c\n1\ttext/x\n"),
            Err(MagicError::Fields { line: 2 })
        );
        assert!(matches!(
            parse_table("x\ta\tb\tc\n"),
            Err(MagicError::Strength { line: 1, .. })
        ));
    }

    #[test]
    fn translation_keeps_zeek_meaning() {
        assert_eq!(translate(r"\<jnlp\x20"), r"^(?s-u:<jnlp\x20)");
        assert_eq!(translate(r"[^[:space:]]"), r"^(?s-u:[^[:space:]])");
        assert_eq!(translate(r"[]a]"), r"^(?s-u:[]a])");
        assert_eq!(translate(r"[a[b]"), r"^(?s-u:[a\[b])");
    }

    #[test]
    fn common_types_are_sniffed_as_zeek_does() {
        let cases: &[(&[u8], &str)] = &[
            (b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR", "image/png"),
            (b"GIF89a\x01\x00\x01\x00", "image/gif"),
            (b"\xff\xd8\xff\xe0\0\x10JFIF\0", "image/jpeg"),
            (b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n", "application/pdf"),
            (b"MZ\x90\x00\x03\x00\x00\x00", "application/x-dosexec"),
            (b"PK\x03\x04\x14\x00\x00\x00", "application/zip"),
            (b"\x1f\x8b\x08\x00\x00\x00", "application/x-gzip"),
            (b"  <!DOCTYPE html><html>", "text/html"),
            (b"{\"a\": 1}", "text/json"),
            (b"document.write('x')", "application/javascript"),
            (b"hello world, plain text", "text/plain"),
            (b"(function()\n{ var x;", "application/javascript"),
            (b"#!/bin/sh\necho hi\n", "text/x-shellscript"),
        ];
        for (data, want) in cases {
            assert_eq!(
                sniff_mime(data),
                Some(*want),
                "{:?} decided by {:?}",
                String::from_utf8_lossy(data),
                deciding(data).map(|s| s.name)
            );
        }
        assert_eq!(sniff_mime(b"short"), None);
        assert_eq!(sniff_mime(b""), None);
    }
}
