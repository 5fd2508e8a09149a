//! MIME messages (RFC 2045/2046) read line by line as Zeek's MIME analyzer reads mail
//! (`src/analyzer/protocol/mime/MIME.cc`): entities nested through `multipart/*` boundaries
//! and `message/*` bodies, their header fields, and the content of each leaf entity decoded
//! from its Content-Transfer-Encoding (base64, quoted-printable, or as is).
//!
//! [`MimeMessage`] turns lines into [`MimeEvent`]s; the protocol analyzer (SMTP) makes a
//! file of each entity that has content, as Zeek's file analysis does.

/// What a line of the message revealed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum MimeEvent {
    /// An entity starts (the message itself, a part, an enclosed message).
    BeginEntity,
    /// A header field of the current entity: the name upper-cased, the value after the
    /// colon and the blanks that follow it, continuation lines joined.
    Header { name: String, value: Vec<u8> },
    /// Decoded content of the current entity.
    Data(Vec<u8>),
    /// `len` bytes of content were never seen.
    Gap(u64),
    /// The current entity ended.
    EndEntity,
}

/// Deepest nesting of entities followed (Zeek's `MIME::max_depth`).
const MAX_DEPTH: usize = 100;
/// Most bytes of one header field kept (continuation lines past it are dropped).
const MAX_HEADER_BYTES: usize = 64 * 1024;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Kind {
    /// A `multipart/*` entity with its boundary.
    Multipart(Vec<u8>),
    /// A `message/*` entity: its body is an entity of its own.
    Message,
    Leaf,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Encoding {
    Base64,
    QuotedPrintable,
    /// 7bit, 8bit, binary, or anything unknown: content as is.
    Identity,
}

#[derive(Debug)]
struct Entity {
    in_header: bool,
    ended: bool,
    header: Option<Vec<u8>>,
    kind: Kind,
    encoding: Encoding,
    base64: Base64,
    /// The CRLF that ended the last content line, held back: before a boundary it belongs
    /// to the delimiter (only for parts of a multipart entity).
    delayed_crlf: bool,
    in_multipart: bool,
    /// Some content was decoded (what [`Content::Presence`] stops at).
    has_content: bool,
}

impl Entity {
    fn new(in_multipart: bool) -> Self {
        Entity {
            in_header: true,
            ended: false,
            header: None,
            kind: Kind::Leaf,
            encoding: Encoding::Identity,
            base64: Base64::default(),
            delayed_crlf: false,
            in_multipart,
            has_content: false,
        }
    }
}

/// How much of each leaf entity's content a reader decodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Content {
    /// All of it: the entity's file is counted, hashed, sniffed or extracted.
    Decoded,
    /// Only up to its first decoded bytes, which say that the entity has content (and so a
    /// file, whose id the protocol's log lists); the rest is skipped. For runs that keep
    /// neither files.log nor extracted files, where decoding the bodies would be wasted.
    Presence,
}

/// One message being read.
#[derive(Debug)]
pub(crate) struct MimeMessage {
    /// The entity being read and its ancestors, the message first. An entity that ended
    /// stays until its parent moves on (lines after a closing boundary are dropped).
    stack: Vec<Entity>,
    content: Content,
}

impl MimeMessage {
    /// Starts a message: its top-level entity begins. `content` says how much of the
    /// entities' content to decode into [`MimeEvent::Data`].
    pub(crate) fn new(content: Content, out: &mut Vec<MimeEvent>) -> Self {
        out.push(MimeEvent::BeginEntity);
        MimeMessage {
            stack: vec![Entity::new(false)],
            content,
        }
    }

    /// One line of the message, without its line end; `crlf` says whether one followed.
    pub(crate) fn line(&mut self, line: &[u8], crlf: bool, out: &mut Vec<MimeEvent>) {
        let mut i = 0;
        while i < self.stack.len() {
            let e = &mut self.stack[i];
            if e.in_header {
                if line.first().is_none_or(|&b| b == 0) {
                    self.finish_header(i, out);
                    self.stack[i].in_header = false;
                    if !self.stack[i].ended {
                        self.begin_body(i, out);
                    }
                } else if matches!(line[0], b' ' | b'\t') {
                    match e.header.as_mut() {
                        Some(h) if h.len() < MAX_HEADER_BYTES => h.extend_from_slice(line),
                        Some(_) => {}
                        None => e.header = Some(line.trim_ascii_start().to_vec()),
                    }
                } else {
                    self.finish_header(i, out);
                    self.stack[i].header = Some(line.to_vec());
                }
                return;
            }
            if let Kind::Multipart(boundary) = &e.kind {
                if let Some(closing) = delimiter(line, boundary) {
                    self.end_children(i, out);
                    if closing {
                        self.end_entity(i, out);
                    } else if !self.stack[i].ended {
                        self.begin_child(out);
                    }
                    return;
                }
            }
            if e.kind != Kind::Leaf {
                // Content of a part or enclosed message (dropped when there is none: a
                // preamble or an epilogue).
                i += 1;
                continue;
            }
            if e.has_content && self.content == Content::Presence {
                return;
            }
            let data = decode_line(e, line, crlf);
            if !data.is_empty() {
                e.has_content = true;
                out.push(MimeEvent::Data(data));
            }
            return;
        }
    }

    /// `len` bytes of the message were never seen.
    pub(crate) fn gap(&mut self, len: u64, out: &mut Vec<MimeEvent>) {
        out.push(MimeEvent::Gap(len));
    }

    /// The message ended: every open entity ends, innermost first.
    pub(crate) fn finish(&mut self, out: &mut Vec<MimeEvent>) {
        self.end_children(0, out);
        if !self.stack.is_empty() {
            self.end_entity(0, out);
        }
        self.stack.clear();
    }

    fn begin_child(&mut self, out: &mut Vec<MimeEvent>) {
        if self.stack.len() >= MAX_DEPTH {
            return;
        }
        let in_multipart = self
            .stack
            .last()
            .is_some_and(|p| matches!(p.kind, Kind::Multipart(_)));
        self.stack.push(Entity::new(in_multipart));
        out.push(MimeEvent::BeginEntity);
    }

    fn begin_body(&mut self, i: usize, out: &mut Vec<MimeEvent>) {
        if self.stack[i].kind == Kind::Message {
            self.begin_child(out);
        }
    }

    /// Ends the entities below `i`, innermost first.
    fn end_children(&mut self, i: usize, out: &mut Vec<MimeEvent>) {
        while self.stack.len() > i + 1 {
            let last = self.stack.len() - 1;
            self.end_entity(last, out);
            self.stack.pop();
        }
    }

    fn end_entity(&mut self, i: usize, out: &mut Vec<MimeEvent>) {
        if self.stack[i].ended {
            return;
        }
        self.stack[i].ended = true;
        if self.stack[i].in_header {
            self.finish_header(i, out);
            self.stack[i].in_header = false;
        } else if self.stack[i].encoding == Encoding::Base64
            && !(self.stack[i].has_content && self.content == Content::Presence)
        {
            let rest = self.stack[i].base64.finish();
            if !rest.is_empty() {
                out.push(MimeEvent::Data(rest));
            }
        }
        out.push(MimeEvent::EndEntity);
    }

    /// Completes the header field being read: reports it and applies Content-Type and
    /// Content-Transfer-Encoding to the entity.
    fn finish_header(&mut self, i: usize, out: &mut Vec<MimeEvent>) {
        let e = &mut self.stack[i];
        let Some(line) = e.header.take() else {
            return;
        };
        let name_end = line
            .iter()
            .position(|&b| b == b':' || b.is_ascii_whitespace() || b.is_ascii_control())
            .unwrap_or(line.len());
        let rest = line[name_end..].trim_ascii_start();
        if name_end == 0 || rest.first() != Some(&b':') {
            return;
        }
        let name = String::from_utf8_lossy(&line[..name_end]).to_ascii_uppercase();
        let value = rest[1..].trim_ascii_start().to_vec();
        match name.as_str() {
            "CONTENT-TYPE" => {
                if let Some(kind) = content_kind(&value) {
                    e.kind = kind;
                }
            }
            "CONTENT-TRANSFER-ENCODING" => {
                let token = value
                    .split(|b| b.is_ascii_whitespace() || *b == b';')
                    .next()
                    .unwrap_or_default()
                    .to_ascii_lowercase();
                e.encoding = match token.as_slice() {
                    b"base64" => Encoding::Base64,
                    b"quoted-printable" => Encoding::QuotedPrintable,
                    _ => Encoding::Identity,
                };
            }
            _ => {}
        }
        out.push(MimeEvent::Header { name, value });
    }
}

/// The kind of entity a Content-Type value makes, `None` if it names no type. A multipart
/// type without a boundary is content like any other (Zeek treats it as
/// `application/octet-stream`).
fn content_kind(value: &[u8]) -> Option<Kind> {
    let (ty, rest) = split_at_any(value, b";");
    let (major, _) = split_at_any(ty, b"/");
    let major = major.trim_ascii().to_ascii_lowercase();
    if major.is_empty() || !ty.contains(&b'/') {
        return None;
    }
    match major.as_slice() {
        b"multipart" => Some(
            parameter(rest, b"boundary")
                .map(Kind::Multipart)
                .unwrap_or(Kind::Leaf),
        ),
        b"message" => Some(Kind::Message),
        _ => Some(Kind::Leaf),
    }
}

fn split_at_any<'a>(s: &'a [u8], set: &[u8]) -> (&'a [u8], &'a [u8]) {
    match s.iter().position(|b| set.contains(b)) {
        Some(i) => (&s[..i], &s[i + 1..]),
        None => (s, &[]),
    }
}

/// The value of parameter `name` in `; a=b; name="value"`, unquoted.
fn parameter(params: &[u8], name: &[u8]) -> Option<Vec<u8>> {
    let mut rest = params;
    while !rest.is_empty() {
        let (param, after) = next_parameter(rest);
        rest = after;
        let Some(eq) = param.iter().position(|&b| b == b'=') else {
            continue;
        };
        if param[..eq].trim_ascii().eq_ignore_ascii_case(name) {
            let v = param[eq + 1..].trim_ascii();
            let v = match v.strip_prefix(b"\"") {
                Some(q) => &q[..q.iter().position(|&b| b == b'"').unwrap_or(q.len())],
                None => v,
            };
            return (!v.is_empty()).then(|| v.to_vec());
        }
    }
    None
}

/// Splits the first `;`-separated parameter off, honouring quotes.
fn next_parameter(s: &[u8]) -> (&[u8], &[u8]) {
    let mut quoted = false;
    for (i, &b) in s.iter().enumerate() {
        match b {
            b'"' => quoted = !quoted,
            b';' if !quoted => return (&s[..i], &s[i + 1..]),
            _ => {}
        }
    }
    (s, &[])
}

/// Whether `line` is a delimiter of `boundary`: `Some(true)` for the closing one.
fn delimiter(line: &[u8], boundary: &[u8]) -> Option<bool> {
    let rest = line.strip_prefix(b"--")?.strip_prefix(boundary)?;
    Some(rest.starts_with(b"--"))
}

/// The content one line of a leaf entity carries.
fn decode_line(e: &mut Entity, line: &[u8], crlf: bool) -> Vec<u8> {
    match e.encoding {
        Encoding::Base64 => e.base64.decode(line),
        Encoding::QuotedPrintable => quoted_printable(line),
        Encoding::Identity => {
            let mut out = Vec::with_capacity(line.len() + 4);
            if std::mem::take(&mut e.delayed_crlf) {
                out.extend_from_slice(b"\r\n");
            }
            out.extend_from_slice(line);
            if crlf {
                if e.in_multipart {
                    e.delayed_crlf = true;
                } else {
                    out.extend_from_slice(b"\r\n");
                }
            }
            out
        }
    }
}

/// One quoted-printable line (RFC 2045 6.7) as Zeek decodes it: trailing blanks dropped,
/// `=XX` decoded, a final `=` a soft line break, otherwise the line ends with CRLF; bad
/// escapes are kept as they are.
fn quoted_printable(line: &[u8]) -> Vec<u8> {
    let end = line
        .iter()
        .rposition(|&b| b != b' ' && b != b'\t')
        .map_or(0, |i| i + 1);
    let mut out = Vec::with_capacity(end + 2);
    let mut soft_break = false;
    let mut i = 0;
    while i < end {
        let b = line[i];
        if b == b'=' {
            if i + 1 == end {
                soft_break = true;
            } else if let (Some(h), Some(l)) = (
                line.get(i + 1).and_then(|&c| hex(c)),
                line.get(i + 2).and_then(|&c| hex(c)),
            ) {
                out.push(h << 4 | l);
                i += 2;
            } else {
                out.push(b);
            }
        } else {
            out.push(b);
        }
        i += 1;
    }
    if !soft_break {
        out.extend_from_slice(b"\r\n");
    }
    out
}

fn hex(c: u8) -> Option<u8> {
    (c as char).to_digit(16).map(|d| d as u8)
}

/// A streaming base64 decoder: characters outside the alphabet are skipped, a quad is
/// decoded as soon as it is complete, padding ends it early.
#[derive(Debug, Default)]
struct Base64 {
    quad: [u8; 4],
    have: usize,
    /// Padding was seen: the rest of the entity is ignored.
    done: bool,
}

impl Base64 {
    fn decode(&mut self, data: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(data.len() / 4 * 3 + 3);
        let mut rest = data;
        if self.have == 0 && !self.done {
            // The common line: whole quads of the alphabet, decoded by the base64 crate
            // (several times faster than a byte at a time); the rest goes the slow way.
            let clean = data
                .iter()
                .position(|&c| SEXTETS[usize::from(c)] == NOT_BASE64)
                .unwrap_or(data.len());
            let whole = clean / 4 * 4;
            if whole > 0 {
                use base64::Engine;
                out.resize(whole / 4 * 3, 0);
                match base64::engine::general_purpose::STANDARD_NO_PAD
                    .decode_slice_unchecked(&data[..whole], &mut out)
                {
                    Ok(written) => {
                        out.truncate(written);
                        rest = &data[whole..];
                    }
                    // Not expected for whole quads of the alphabet; the slow path decides.
                    Err(_) => out.clear(),
                }
            }
        }
        for &c in rest {
            if self.done {
                break;
            }
            if c == b'=' {
                self.flush_partial(&mut out);
                self.done = true;
                continue;
            }
            let Some(v) = sextet(c) else { continue };
            self.quad[self.have] = v;
            self.have += 1;
            if self.have == 4 {
                let [a, b, c, d] = self.quad;
                out.extend_from_slice(&[a << 2 | b >> 4, b << 4 | c >> 2, c << 6 | d]);
                self.have = 0;
            }
        }
        out
    }

    /// The bytes of an incomplete last quad.
    fn flush_partial(&mut self, out: &mut Vec<u8>) {
        let [a, b, c, _] = self.quad;
        match self.have {
            2 => out.push(a << 2 | b >> 4),
            3 => out.extend_from_slice(&[a << 2 | b >> 4, b << 4 | c >> 2]),
            _ => {}
        }
        self.have = 0;
    }

    fn finish(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        if !self.done {
            self.flush_partial(&mut out);
        }
        out
    }
}

/// [`SEXTETS`]' mark for a byte outside the alphabet.
const NOT_BASE64: u8 = 0xff;

/// Each byte's value in the standard base64 alphabet, or [`NOT_BASE64`].
const SEXTETS: [u8; 256] = {
    let mut table = [NOT_BASE64; 256];
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut i = 0;
    while i < 64 {
        table[alphabet[i] as usize] = i as u8;
        i += 1;
    }
    table
};

fn sextet(c: u8) -> Option<u8> {
    match SEXTETS[usize::from(c)] {
        NOT_BASE64 => None,
        v => Some(v),
    }
}

/// The file name a Content-Disposition (`filename=`) or Content-Type (`name=`) value gives,
/// as Zeek's `extract_filename_from_content_disposition` reads it: after the last
/// `name=` (or `name*=`), unquoted, without an RFC 2231 charset and language, and
/// %-decoded.
pub(crate) fn header_filename(value: &[u8]) -> Option<Vec<u8>> {
    let lower = value.to_ascii_lowercase();
    let mut after = None;
    for i in 0..lower.len().saturating_sub(3) {
        if &lower[i..i + 4] != b"name" {
            continue;
        }
        let mut j = i + 4;
        while matches!(lower.get(j), Some(b' ' | b'\t')) {
            j += 1;
        }
        if lower.get(j) == Some(&b'*') {
            j += 1;
        }
        if lower.get(j) == Some(&b'=') {
            j += 1;
            while matches!(lower.get(j), Some(b' ' | b'\t')) {
                j += 1;
            }
            after = Some(j);
        }
    }
    let mut name = &value[after?..];
    if let Some(q) = name.strip_prefix(b"\"") {
        name = &q[..q.iter().position(|&b| b == b'"').unwrap_or(q.len())];
    }
    let name = strip_charset_language(name);
    Some(unescape_uri(name))
}

/// `charset'language'rest` (RFC 2231) to `rest`.
fn strip_charset_language(name: &[u8]) -> &[u8] {
    let token = |b: &u8| b.is_ascii_alphanumeric() || b"!#$%&+-^_`{}~".contains(b);
    let first = name.iter().take_while(|b| token(b)).count();
    if first == 0 || name.get(first) != Some(&b'\'') {
        return name;
    }
    let second = name[first + 1..].iter().take_while(|b| token(b)).count();
    if name.get(first + 1 + second) != Some(&b'\'') {
        return name;
    }
    // Zeek strips up to the last quote pair greedily.
    let last = name
        .iter()
        .rposition(|&b| b == b'\'')
        .unwrap_or(first + 1 + second);
    &name[last + 1..]
}

/// `%XX` sequences decoded (Zeek's `unescape_URI`).
fn unescape_uri(s: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        if s[i] == b'%' {
            if let (Some(h), Some(l)) = (
                s.get(i + 1).and_then(|&c| hex(c)),
                s.get(i + 2).and_then(|&c| hex(c)),
            ) {
                out.push(h << 4 | l);
                i += 3;
                continue;
            }
        }
        out.push(s[i]);
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(lines: &[&str]) -> Vec<MimeEvent> {
        read_with(Content::Decoded, lines)
    }

    fn read_with(content: Content, lines: &[&str]) -> Vec<MimeEvent> {
        let mut out = Vec::new();
        let mut m = MimeMessage::new(content, &mut out);
        for l in lines {
            m.line(l.as_bytes(), true, &mut out);
        }
        m.finish(&mut out);
        out
    }

    fn data_of(events: &[MimeEvent]) -> Vec<Vec<u8>> {
        let mut files = Vec::new();
        let mut cur: Option<Vec<u8>> = None;
        for e in events {
            match e {
                MimeEvent::Data(d) => cur.get_or_insert_with(Vec::new).extend_from_slice(d),
                MimeEvent::BeginEntity | MimeEvent::EndEntity => files.extend(cur.take()),
                _ => {}
            }
        }
        files
    }

    const NESTED: &[&str] = &[
        "Subject: hi",
        "Content-Type: multipart/mixed;",
        "\tboundary=\"outer\"",
        "",
        "preamble",
        "--outer",
        "Content-Type: multipart/alternative; boundary=inner",
        "",
        "--inner",
        "Content-Type: text/plain",
        "",
        "line one",
        "line two",
        "--inner",
        "Content-Transfer-Encoding: quoted-printable",
        "",
        "caf=C3=A9 =",
        "soft",
        "--inner--",
        "--outer",
        "Content-Transfer-Encoding: base64",
        "Content-Disposition: attachment; filename=\"a.bin\"",
        "",
        "aGVsbG8g",
        "d29ybGQ=",
        "--outer--",
        "epilogue",
    ];

    #[test]
    fn nested_multipart_with_encodings() {
        let ev = read(NESTED);
        let begins = ev.iter().filter(|e| **e == MimeEvent::BeginEntity).count();
        let ends = ev.iter().filter(|e| **e == MimeEvent::EndEntity).count();
        assert_eq!((begins, ends), (5, 5));
        assert_eq!(
            data_of(&ev),
            vec![
                b"line one\r\nline two".to_vec(),
                "café soft\r\n".as_bytes().to_vec(),
                b"hello world".to_vec()
            ]
        );
        assert!(ev.contains(&MimeEvent::Header {
            name: "SUBJECT".into(),
            value: b"hi".to_vec()
        }));
    }

    #[test]
    fn presence_stops_at_each_entitys_first_bytes() {
        let full = read(NESTED);
        let presence = read_with(Content::Presence, NESTED);
        let structure = |ev: &[MimeEvent]| -> Vec<MimeEvent> {
            ev.iter()
                .filter(|e| !matches!(e, MimeEvent::Data(_)))
                .cloned()
                .collect()
        };
        assert_eq!(structure(&presence), structure(&full));
        // The same entities have content, each seen up to its first decoded line.
        assert_eq!(
            data_of(&presence),
            vec![
                b"line one".to_vec(),
                "café ".as_bytes().to_vec(),
                b"hello ".to_vec()
            ]
        );
    }

    #[test]
    fn a_single_part_message_keeps_its_line_ends() {
        let ev = read(&["From: a@b", "", "Hello!"]);
        assert_eq!(data_of(&ev), vec![b"Hello!\r\n".to_vec()]);
        // A message of headers only carries no content.
        assert_eq!(data_of(&read(&["Hello, Alice (1)"])), Vec::<Vec<u8>>::new());
    }

    #[test]
    fn file_names_from_header_values() {
        let f = |v: &str| header_filename(v.as_bytes()).map(|n| String::from_utf8(n).unwrap());
        assert_eq!(
            f("attachment;\tfilename=\"NEWS.txt\""),
            Some("NEWS.txt".into())
        );
        assert_eq!(f("text/plain; name=a%20b.txt"), Some("a b.txt".into()));
        assert_eq!(
            f("attachment; filename*=UTF-8''r%C3%A9sum%C3%A9.pdf"),
            Some("résumé.pdf".into())
        );
        assert_eq!(f("inline"), None);
    }
}
