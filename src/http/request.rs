//! Reading what an HTTP request says, without I/O: credentials, the query string, ranges.

use base64::Engine;

use crate::service::ServiceError;

/// The password an `Authorization` header offers: HTTP Basic with any user name, or a
/// bearer token. `None` for a missing or malformed header.
pub fn offered_password(header: Option<&[u8]>) -> Option<String> {
    let header = std::str::from_utf8(header?).ok()?.trim();
    let (scheme, rest) = header.split_once(' ')?;
    let rest = rest.trim();
    if scheme.eq_ignore_ascii_case("bearer") {
        return Some(rest.to_owned());
    }
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(rest)
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (_user, password) = text.split_once(':')?;
    Some(password.to_owned())
}

/// The `key=value` pairs of a query string, percent-decoded; a key given twice, or one not
/// in `known`, is refused.
pub fn query_pairs(
    query: Option<&str>,
    known: &[&str],
) -> Result<Vec<(String, String)>, ServiceError> {
    let mut pairs: Vec<(String, String)> = Vec::new();
    for part in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (key, value) = part.split_once('=').unwrap_or((part, ""));
        let (key, value) = (percent_decode(key)?, percent_decode(value)?);
        if !known.contains(&key.as_str()) {
            return Err(ServiceError::bad_request(format!(
                "unknown query parameter {key:?} (known: {})",
                known.join(", ")
            )));
        }
        if pairs.iter().any(|(k, _)| *k == key) {
            return Err(ServiceError::bad_request(format!(
                "query parameter {key:?} given twice"
            )));
        }
        pairs.push((key, value));
    }
    Ok(pairs)
}

fn percent_decode(text: &str) -> Result<String, ServiceError> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = bytes
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or_else(|| {
                        ServiceError::bad_request(format!("bad percent escape in {text:?}"))
                    })?;
                out.push(hex);
                i += 2;
            }
            other => out.push(other),
        }
        i += 1;
    }
    String::from_utf8(out)
        .map_err(|_| ServiceError::bad_request(format!("{text:?} is not UTF-8 once decoded")))
}

/// A satisfiable byte range of a resource of `size` bytes: `[start, end)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteRange {
    pub start: u64,
    pub end: u64,
}

/// What a `Range` header asks of a resource of `size` bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeRequest {
    /// No header, or one this server ignores (another unit, several ranges): the whole body.
    Whole,
    Partial(ByteRange),
    /// A byte range that starts past the end: 416.
    Unsatisfiable,
}

/// Parses a single `bytes=` range (RFC 9110 §14.1.2): `a-b`, `a-`, `-n`.
pub fn byte_range(header: Option<&[u8]>, size: u64) -> RangeRequest {
    let Some(spec) = header
        .and_then(|h| std::str::from_utf8(h).ok())
        .and_then(|h| h.trim().strip_prefix("bytes="))
    else {
        return RangeRequest::Whole;
    };
    if spec.contains(',') {
        return RangeRequest::Whole;
    }
    let Some((first, last)) = spec.trim().split_once('-') else {
        return RangeRequest::Whole;
    };
    let (first, last) = (first.trim(), last.trim());
    let range = match (first.parse::<u64>(), last.parse::<u64>()) {
        (Ok(start), Ok(last)) if last >= start => (start, last.saturating_add(1).min(size)),
        (Ok(start), Err(_)) if last.is_empty() => (start, size),
        (Err(_), Ok(suffix)) if first.is_empty() => (size.saturating_sub(suffix), size),
        _ => return RangeRequest::Whole,
    };
    if range.0 >= size {
        return RangeRequest::Unsatisfiable;
    }
    RangeRequest::Partial(ByteRange {
        start: range.0,
        end: range.1,
    })
}

/// The file name a multipart part gives, reduced to its last component (some browsers send
/// a whole client path).
pub fn part_file_name(raw: &str) -> &str {
    raw.rsplit(['/', '\\']).next().unwrap_or(raw)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_and_bearer_credentials() {
        // "any:s3cret"
        assert_eq!(
            offered_password(Some(b"Basic YW55OnMzY3JldA==")).as_deref(),
            Some("s3cret")
        );
        assert_eq!(
            offered_password(Some(b"Bearer s3cret")).as_deref(),
            Some("s3cret")
        );
        // A password may hold colons: only the first one separates the user.
        let encoded = base64::engine::general_purpose::STANDARD.encode("u:a:b");
        let header = format!("basic {encoded}");
        assert_eq!(
            offered_password(Some(header.as_bytes())).as_deref(),
            Some("a:b")
        );
        assert_eq!(offered_password(Some(b"Basic !!!")), None);
        assert_eq!(offered_password(Some(b"Digest x")), None);
        assert_eq!(offered_password(None), None);
    }

    #[test]
    fn query_strings_are_decoded_and_checked() {
        let pairs = query_pairs(
            Some("state=done&tag=a%2Bb&limit=5"),
            &["state", "tag", "limit"],
        )
        .unwrap();
        assert_eq!(pairs[1], ("tag".to_string(), "a+b".to_string()));
        assert!(query_pairs(Some("bogus=1"), &["state"])
            .unwrap_err()
            .message
            .contains("unknown query parameter"));
        assert!(query_pairs(Some("tag=a&tag=b"), &["tag"]).is_err());
        assert!(query_pairs(Some("tag=%zz"), &["tag"]).is_err());
    }

    #[test]
    fn ranges() {
        let r = |h: &str| byte_range(Some(h.as_bytes()), 100);
        let part = |start, end| RangeRequest::Partial(ByteRange { start, end });
        assert_eq!(r("bytes=0-9"), part(0, 10));
        assert_eq!(r("bytes=90-"), part(90, 100));
        assert_eq!(r("bytes=-10"), part(90, 100));
        assert_eq!(r("bytes=50-500"), part(50, 100));
        assert_eq!(r("bytes=100-"), RangeRequest::Unsatisfiable);
        assert_eq!(r("bytes=0-1,5-6"), RangeRequest::Whole);
        assert_eq!(r("items=0-1"), RangeRequest::Whole);
        assert_eq!(r("bytes=9-0"), RangeRequest::Whole);
        assert_eq!(byte_range(None, 100), RangeRequest::Whole);
    }

    #[test]
    fn part_names_lose_client_paths() {
        assert_eq!(part_file_name("C:\\Users\\x\\a.pcap"), "a.pcap");
        assert_eq!(part_file_name("dir/b.pcap"), "b.pcap");
        assert_eq!(part_file_name("c.pcap"), "c.pcap");
    }
}
