//! X.509 certificates in DER (RFC 5280): just enough ASN.1 walking to reach the fields
//! x509.log shows. Borrowed slices in, typed values out; `None` for anything malformed.

use std::net::IpAddr;

/// One DER element: tag, content, and the bytes after it.
pub(crate) fn der(data: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let tag = *data.first()?;
    let first = *data.get(1)?;
    let (len, hdr) = if first & 0x80 == 0 {
        (usize::from(first), 2)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 {
            return None;
        }
        let bytes = data.get(2..2 + n)?;
        (
            bytes.iter().fold(0usize, |a, &b| a << 8 | usize::from(b)),
            2 + n,
        )
    };
    let content = data.get(hdr..hdr.checked_add(len)?)?;
    Some((tag, content, &data[hdr + len..]))
}

/// The elements of a constructed value, in order (stops at the first malformed one).
pub(crate) fn children(mut data: &[u8]) -> Vec<(u8, &[u8])> {
    let mut out = Vec::new();
    while let Some((tag, content, rest)) = der(data) {
        out.push((tag, content));
        data = rest;
    }
    out
}

pub(crate) const TAG_BOOLEAN: u8 = 0x01;
pub(crate) const TAG_INTEGER: u8 = 0x02;
pub(crate) const TAG_BIT_STRING: u8 = 0x03;
pub(crate) const TAG_OID: u8 = 0x06;
pub(crate) const TAG_UTC_TIME: u8 = 0x17;
pub(crate) const TAG_GENERALIZED_TIME: u8 = 0x18;
pub(crate) const TAG_SEQUENCE: u8 = 0x30;

/// One attribute of a distinguished name: its type OID, the string's ASN.1 tag and bytes,
/// the whole encoded value (for values that are no string), and the index of its RDN
/// (several attributes share one in a multi-valued RDN).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Attribute<'a> {
    pub oid: &'a [u8],
    pub tag: u8,
    pub value: &'a [u8],
    pub encoded: &'a [u8],
    pub rdn: usize,
}

/// The attributes of a Name, in encoded order.
pub(crate) fn name(data: &[u8]) -> Vec<Attribute<'_>> {
    let mut out = Vec::new();
    for (rdn, (_, set)) in children(data).into_iter().enumerate() {
        for (_, atv) in children(set) {
            let Some((TAG_OID, oid, encoded)) = der(atv) else {
                continue;
            };
            if let Some((tag, value, _)) = der(encoded) {
                out.push(Attribute {
                    oid,
                    tag,
                    value,
                    encoded,
                    rdn,
                });
            }
        }
    }
    out
}

/// The raw parts of a certificate the log needs.
#[derive(Debug, Clone, Default)]
pub(crate) struct RawCert<'a> {
    /// X.509 version as encoded (0 = v1).
    pub version: u64,
    pub serial: &'a [u8],
    pub issuer: &'a [u8],
    pub subject: &'a [u8],
    pub not_before: Option<(u8, &'a [u8])>,
    pub not_after: Option<(u8, &'a [u8])>,
    pub key_alg: &'a [u8],
    pub key_params: Option<(u8, &'a [u8])>,
    /// The subjectPublicKey BIT STRING without its unused-bits byte.
    pub key: &'a [u8],
    pub sig_alg: &'a [u8],
    /// Extensions: (OID, extnValue content).
    pub extensions: Vec<(&'a [u8], &'a [u8])>,
}

/// Splits a certificate into its fields.
pub(crate) fn certificate(der_cert: &[u8]) -> Option<RawCert<'_>> {
    let (TAG_SEQUENCE, body, _) = der(der_cert)? else {
        return None;
    };
    let top = children(body);
    let (TAG_SEQUENCE, tbs) = *top.first()? else {
        return None;
    };
    let sig_alg = top
        .get(1)
        .and_then(|(_, alg)| children(alg).first().copied())
        .filter(|(t, _)| *t == TAG_OID)
        .map_or(&[][..], |(_, oid)| oid);
    let fields = children(tbs);
    let mut i = 0;
    let mut version = 0;
    if let Some(&(0xa0, v)) = fields.first() {
        if let Some((TAG_INTEGER, n, _)) = der(v) {
            version = n.iter().fold(0u64, |a, &b| a << 8 | u64::from(b));
        }
        i = 1;
    }
    let serial = fields.get(i).filter(|f| f.0 == TAG_INTEGER)?.1;
    let issuer = fields.get(i + 2)?.1;
    let validity = children(fields.get(i + 3)?.1);
    let subject = fields.get(i + 4)?.1;
    let spki = children(fields.get(i + 5)?.1);
    let alg = spki.first().map(|a| children(a.1)).unwrap_or_default();
    let key = spki
        .get(1)
        .filter(|k| k.0 == TAG_BIT_STRING)
        .and_then(|k| k.1.get(1..))
        .unwrap_or_default();
    let mut extensions = Vec::new();
    if let Some((_, wrapper)) = fields.iter().find(|f| f.0 == 0xa3) {
        if let Some((TAG_SEQUENCE, exts, _)) = der(wrapper) {
            for (_, ext) in children(exts) {
                let parts = children(ext);
                if let (Some(&(TAG_OID, oid)), Some(&(0x04, value))) = (parts.first(), parts.last())
                {
                    extensions.push((oid, value));
                }
            }
        }
    }
    Some(RawCert {
        version,
        serial,
        issuer,
        subject,
        not_before: validity.first().copied(),
        not_after: validity.get(1).copied(),
        key_alg: alg
            .first()
            .filter(|a| a.0 == TAG_OID)
            .map_or(&[][..], |a| a.1),
        key_params: alg.get(1).copied(),
        key,
        sig_alg,
        extensions,
    })
}

/// Seconds since the epoch of a UTCTime (years 1950–2049) or GeneralizedTime, `Z` or with
/// a `+hhmm`/`-hhmm` offset; fractions of a second are dropped.
pub(crate) fn time((tag, text): (u8, &[u8])) -> Option<f64> {
    let digits = |s: &[u8]| -> Option<i64> {
        s.iter().try_fold(0i64, |a, &b| {
            b.is_ascii_digit().then(|| a * 10 + i64::from(b - b'0'))
        })
    };
    let (year, rest) = match tag {
        TAG_UTC_TIME => {
            let yy = digits(text.get(..2)?)?;
            (if yy < 50 { 2000 + yy } else { 1900 + yy }, text.get(2..)?)
        }
        TAG_GENERALIZED_TIME => (digits(text.get(..4)?)?, text.get(4..)?),
        _ => return None,
    };
    let month = digits(rest.get(..2)?)?;
    let day = digits(rest.get(2..4)?)?;
    let hour = digits(rest.get(4..6)?)?;
    let minute = digits(rest.get(6..8)?)?;
    let (second, mut tail) = match rest.get(8..10).and_then(digits) {
        Some(s) => (s, &rest[10..]),
        None => (0, &rest[8..]),
    };
    if let Some(frac) = tail.strip_prefix(b".") {
        let n = frac.iter().take_while(|b| b.is_ascii_digit()).count();
        tail = &frac[n..];
    }
    let offset = match tail {
        [b'+' | b'-', ..] if tail.len() >= 5 => {
            let sign = if tail[0] == b'-' { -1 } else { 1 };
            sign * (digits(&tail[1..3])? * 3600 + digits(&tail[3..5])? * 60)
        }
        _ => 0,
    };
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return None;
    }
    // Days from 1970-01-01 to the civil date (Howard Hinnant's algorithm).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some((days * 86_400 + hour * 3600 + minute * 60 + second - offset) as f64)
}

/// basicConstraints: `cA` (default false) and `pathLenConstraint`.
pub(crate) fn basic_constraints(value: &[u8]) -> Option<(bool, Option<u64>)> {
    let (TAG_SEQUENCE, seq, _) = der(value)? else {
        return None;
    };
    let mut ca = false;
    let mut path_len = None;
    for (tag, content) in children(seq) {
        match tag {
            TAG_BOOLEAN => ca = content.first().is_some_and(|&b| b != 0),
            TAG_INTEGER if content.len() <= 8 => {
                path_len = Some(content.iter().fold(0u64, |a, &b| a << 8 | u64::from(b)))
            }
            _ => {}
        }
    }
    Some((ca, path_len))
}

/// subjectAltName entries by kind; `None` for a kind that does not occur.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct AltNames {
    pub dns: Option<Vec<String>>,
    pub uri: Option<Vec<String>>,
    pub email: Option<Vec<String>>,
    pub ip: Option<Vec<IpAddr>>,
}

pub(crate) fn alt_names(value: &[u8]) -> Option<AltNames> {
    let (TAG_SEQUENCE, seq, _) = der(value)? else {
        return None;
    };
    let mut names = AltNames::default();
    let push = |v: &mut Option<Vec<String>>, s: &[u8]| {
        v.get_or_insert_with(Vec::new)
            .push(crate::analyzer::app::escape_bytes(s))
    };
    for (tag, content) in children(seq) {
        match tag {
            0x81 => push(&mut names.email, content),
            0x82 => push(&mut names.dns, content),
            0x86 => push(&mut names.uri, content),
            0x87 => {
                let ip = match content.len() {
                    4 => <[u8; 4]>::try_from(content).ok().map(IpAddr::from),
                    16 => <[u8; 16]>::try_from(content).ok().map(IpAddr::from),
                    _ => None,
                };
                if let Some(ip) = ip {
                    names.ip.get_or_insert_with(Vec::new).push(ip);
                }
            }
            _ => {}
        }
    }
    Some(names)
}

/// The significant bits of an unsigned big-endian integer.
pub(crate) fn bit_length(n: &[u8]) -> u64 {
    let n = strip_leading_zeros(n);
    match n.first() {
        None => 0,
        Some(&b) => (n.len() as u64 - 1) * 8 + u64::from(8 - b.leading_zeros()),
    }
}

pub(crate) fn strip_leading_zeros(n: &[u8]) -> &[u8] {
    let start = n.iter().position(|&b| b != 0).unwrap_or(n.len());
    &n[start..]
}

/// An RSA public key (`RSAPublicKey`): modulus and exponent.
pub(crate) fn rsa_key(key: &[u8]) -> Option<(&[u8], &[u8])> {
    let (TAG_SEQUENCE, seq, _) = der(key)? else {
        return None;
    };
    let parts = children(seq);
    match (parts.first(), parts.get(1)) {
        (Some(&(TAG_INTEGER, n)), Some(&(TAG_INTEGER, e))) => Some((n, e)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times() {
        assert_eq!(
            time((TAG_UTC_TIME, b"120411003757Z")),
            Some(1_334_104_677.0)
        );
        assert_eq!(
            time((TAG_GENERALIZED_TIME, b"20491231235959Z")),
            Some(2_524_607_999.0)
        );
        assert_eq!(time((TAG_UTC_TIME, b"700101000000Z")), Some(0.0));
        assert_eq!(time((TAG_UTC_TIME, b"700101010000+0100")), Some(0.0));
        assert_eq!(time((TAG_UTC_TIME, b"7001")), None);
    }

    #[test]
    fn integers_and_constraints() {
        assert_eq!(bit_length(&[0x00, 0x80, 0x00]), 16);
        assert_eq!(bit_length(&[0x01, 0x00, 0x01]), 17);
        assert_eq!(
            basic_constraints(&[0x30, 0x06, 0x01, 0x01, 0xff, 0x02, 0x01, 0x00]),
            Some((true, Some(0)))
        );
        assert_eq!(basic_constraints(&[0x30, 0x00]), Some((false, None)));
        let san = [
            0x30, 0x0d, 0x82, 0x01, b'a', 0x87, 0x04, 10, 0, 0, 1, 0x81, 0x02, b'x', b'y',
        ];
        let names = alt_names(&san).expect("san");
        assert_eq!(names.dns, Some(vec!["a".to_string()]));
        assert_eq!(names.ip, Some(vec!["10.0.0.1".parse().expect("ip")]));
        assert_eq!(names.email, Some(vec!["xy".to_string()]));
        assert_eq!(names.uri, None);
    }
}
