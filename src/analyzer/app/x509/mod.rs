//! X.509 certificates as Zeek's x509 file analyzer reads them (`base/files/x509/main.zeek`,
//! `src/file_analysis/analyzer/x509/`): the certificate summary of `x509.log`, the
//! SHA-256 fingerprint that ssl.log's chain columns list, and the host-name check behind
//! `sni_matches_cert`.
//!
//! The TLS analyzer hands over each certificate of a clear-text Certificate message
//! ([`log_certificate`]). As in Zeek, a certificate is logged once per run for each
//! (fingerprint, `host_cert`, `client_cert`): Zeek keeps that set for a day of network
//! time (`X509::relog_known_certificates_after`); here it lives as long as the run, which
//! [`X509Scope`] delimits.
//!
//! Layout: `parser` walks the DER, `consts` names OIDs as OpenSSL does, `log` is the row;
//! this file renders values as Zeek prints them.

mod consts;
mod log;
mod parser;

use std::cell::RefCell;
use std::collections::HashSet;
use std::net::IpAddr;

use sha2::{Digest, Sha256};

use super::AppOutput;
use crate::analyzer::log::{Time, Vector};
use consts::{algorithm_name, attribute_name, curve, dotted};
pub use log::{X509Row, X509_SCHEMA};
use parser::{
    alt_names, basic_constraints, bit_length, certificate, children, name, rsa_key,
    strip_leading_zeros, time, AltNames, Attribute, TAG_INTEGER, TAG_OID, TAG_SEQUENCE,
};

/// basicConstraints and subjectAltName.
const OID_BASIC_CONSTRAINTS: &[u8] = &[0x55, 0x1d, 0x13];
const OID_SAN: &[u8] = &[0x55, 0x1d, 0x11];
const OID_CN: &[u8] = &[0x55, 0x04, 0x03];

/// A certificate as x509.log shows it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Certificate {
    /// Lower-case hex SHA-256 of the DER (`X509::hash_function`).
    pub fingerprint: String,
    pub version: u64,
    pub serial: String,
    pub subject: String,
    pub issuer: String,
    pub not_valid_before: Option<f64>,
    pub not_valid_after: Option<f64>,
    pub key_alg: String,
    pub sig_alg: String,
    pub key_type: Option<String>,
    pub key_length: Option<u64>,
    pub exponent: Option<String>,
    pub curve: Option<&'static str>,
    san: Option<AltNames>,
    basic_constraints: Option<(bool, Option<u64>)>,
    /// The subject's common names, lower-cased, for the host-name check.
    common_names: Vec<String>,
}

/// Lower-case hex SHA-256 of a certificate, as in `cert_chain_fps` and `fingerprint`.
pub fn sha256_hex(der_cert: &[u8]) -> String {
    Sha256::digest(der_cert)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

const HEX_UPPER: &[u8; 16] = b"0123456789ABCDEF";

fn hex_upper(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        s.push(char::from(HEX_UPPER[usize::from(b >> 4)]));
        s.push(char::from(HEX_UPPER[usize::from(b & 15)]));
    }
    s
}

/// A serial number as OpenSSL's `i2a_ASN1_INTEGER` prints it: upper-case hex of the
/// magnitude (without DER's sign byte), `-` first when negative.
fn serial_text(content: &[u8]) -> String {
    let negative = content.first().is_some_and(|&b| b & 0x80 != 0);
    if !negative {
        let m = match content {
            [0, rest @ ..] if !rest.is_empty() && rest[0] & 0x80 != 0 => rest,
            _ => content,
        };
        return if m.is_empty() {
            "00".to_owned()
        } else {
            hex_upper(m)
        };
    }
    // Two's complement: invert and add one.
    let mut m: Vec<u8> = content.iter().map(|b| !b).collect();
    for b in m.iter_mut().rev() {
        let (v, carry) = b.overflowing_add(1);
        *b = v;
        if !carry {
            break;
        }
    }
    format!("-{}", hex_upper(strip_leading_zeros(&m)))
}

/// Decimal text of an unsigned big-endian integer.
fn decimal(n: &[u8]) -> String {
    let mut n = strip_leading_zeros(n).to_vec();
    if n.is_empty() {
        return "0".to_owned();
    }
    let mut digits = Vec::new();
    while !n.is_empty() {
        let mut rem = 0u32;
        for b in n.iter_mut() {
            let cur = rem << 8 | u32::from(*b);
            *b = (cur / 10) as u8;
            rem = cur % 10;
        }
        digits.push(b'0' + rem as u8);
        n = strip_leading_zeros(&n).to_vec();
    }
    digits.reverse();
    String::from_utf8(digits).unwrap_or_default()
}

/// A name attribute's string as UTF-8 (`ASN1_STRFLGS_UTF8_CONVERT`); `None` for a value
/// that is no string type.
fn attribute_text(a: &Attribute<'_>) -> Option<String> {
    Some(match a.tag {
        // UTF8String, PrintableString, IA5String, NumericString, VisibleString.
        0x0c | 0x13 | 0x16 | 0x12 | 0x1a => String::from_utf8_lossy(a.value).into_owned(),
        // T61String: OpenSSL reads it as Latin-1.
        0x14 => a.value.iter().map(|&b| char::from(b)).collect(),
        // BMPString (UCS-2) and UniversalString (UCS-4).
        0x1e => a
            .value
            .chunks(2)
            .map(|c| {
                let u = c.iter().fold(0u32, |acc, &b| acc << 8 | u32::from(b));
                char::from_u32(u).unwrap_or('\u{fffd}')
            })
            .collect(),
        0x1c => a
            .value
            .chunks(4)
            .map(|c| {
                let u = c.iter().fold(0u32, |acc, &b| acc << 8 | u32::from(b));
                char::from_u32(u).unwrap_or('\u{fffd}')
            })
            .collect(),
        _ => return None,
    })
}

/// Escapes a value as `ASN1_STRFLGS_RFC2253` does: RFC 2253 specials with a backslash,
/// control characters and every byte of a non-ASCII character as `\XX`.
fn escape_rfc2253(text: &str, out: &mut String) {
    let bytes = text.as_bytes();
    for (i, &b) in bytes.iter().enumerate() {
        let edge = i == 0 || i + 1 == bytes.len();
        match b {
            b',' | b'+' | b'"' | b'\\' | b'<' | b'>' | b';' => {
                out.push('\\');
                out.push(char::from(b));
            }
            b'#' if i == 0 => out.push_str("\\#"),
            b' ' if edge => out.push_str("\\ "),
            0..=0x1f | 0x7f..=0xff => {
                out.push('\\');
                out.push(char::from(HEX_UPPER[usize::from(b >> 4)]));
                out.push(char::from(HEX_UPPER[usize::from(b & 15)]));
            }
            _ => out.push(char::from(b)),
        }
    }
}

/// A distinguished name as `X509_NAME_print_ex(…, XN_FLAG_RFC2253)` prints it: attributes
/// last to first, `,` between RDNs and `+` inside one, short names, values that are no
/// string dumped as `#` and the hex of their encoding.
fn name_text(attrs: &[Attribute<'_>]) -> String {
    let mut out = String::new();
    let mut prev_rdn = None;
    for a in attrs.iter().rev() {
        if let Some(p) = prev_rdn {
            out.push(if p == a.rdn { '+' } else { ',' });
        }
        prev_rdn = Some(a.rdn);
        out.push_str(&attribute_name(a.oid));
        out.push('=');
        match attribute_text(a) {
            Some(text) => escape_rfc2253(&text, &mut out),
            None => {
                out.push('#');
                out.push_str(&hex_upper(a.encoded));
            }
        }
    }
    out
}

impl Certificate {
    /// Reads a DER certificate; `None` when it is not one.
    pub fn parse(der_cert: &[u8]) -> Option<Certificate> {
        let raw = certificate(der_cert)?;
        let subject = name(raw.subject);
        let key_alg_dotted = dotted(raw.key_alg);
        let mut cert = Certificate {
            fingerprint: sha256_hex(der_cert),
            version: raw.version + 1,
            serial: serial_text(raw.serial),
            subject: name_text(&subject),
            issuer: name_text(&name(raw.issuer)),
            not_valid_before: raw.not_before.and_then(time),
            not_valid_after: raw.not_after.and_then(time),
            key_alg: algorithm_name(raw.key_alg),
            sig_alg: algorithm_name(raw.sig_alg),
            common_names: subject
                .iter()
                .filter(|a| a.oid == OID_CN)
                .filter_map(attribute_text)
                .map(|s| s.to_ascii_lowercase())
                .collect(),
            ..Certificate::default()
        };
        match key_alg_dotted.as_str() {
            // rsaEncryption, and md5WithRSAEncryption as some RDP servers label RSA keys.
            "1.2.840.113549.1.1.1" | "1.2.840.113549.1.1.4" => {
                cert.key_type = Some("rsa".into());
                if let Some((n, e)) = rsa_key(raw.key) {
                    cert.key_length = Some(bit_length(n));
                    cert.exponent = Some(decimal(e));
                }
            }
            "1.2.840.113549.1.1.10" => {
                cert.key_type = Some("RSA-PSS".into());
                cert.key_length = rsa_key(raw.key).map(|(n, _)| bit_length(n));
            }
            "1.2.840.10040.4.1" => {
                cert.key_type = Some("dsa".into());
                cert.key_length = raw
                    .key_params
                    .filter(|p| p.0 == TAG_SEQUENCE)
                    .and_then(|(_, pqg)| children(pqg).first().copied())
                    .filter(|p| p.0 == TAG_INTEGER)
                    .map(|(_, p)| bit_length(p));
            }
            "1.2.840.10045.2.1" => {
                cert.key_type = Some("ecdsa".into());
                if let Some((name, bits)) = raw
                    .key_params
                    .filter(|p| p.0 == TAG_OID)
                    .and_then(|(_, oid)| curve(oid))
                {
                    cert.curve = Some(name);
                    cert.key_length = Some(bits);
                }
            }
            "1.3.101.112" | "1.3.101.110" => {
                cert.key_type = Some(cert.key_alg.clone());
                cert.key_length = Some(253);
            }
            "1.3.101.113" => {
                cert.key_type = Some("ED448".into());
                cert.key_length = Some(456);
            }
            "1.3.101.111" => {
                cert.key_type = Some("X448".into());
                cert.key_length = Some(448);
            }
            _ => {}
        }
        for (oid, value) in raw.extensions {
            if oid == OID_BASIC_CONSTRAINTS {
                cert.basic_constraints = basic_constraints(value);
            } else if oid == OID_SAN {
                cert.san = alt_names(value);
            }
        }
        Some(cert)
    }

    /// DNS names the certificate is valid for: its subjectAltName dNSNames, or its
    /// subject's common names when it lists none.
    fn host_names(&self) -> Vec<String> {
        match self.san.as_ref().and_then(|s| s.dns.as_ref()) {
            Some(dns) if !dns.is_empty() => dns.iter().map(|d| d.to_ascii_lowercase()).collect(),
            _ => self.common_names.clone(),
        }
    }

    /// Hostname check with a single leftmost wildcard label, as Zeek's
    /// `x509_check_cert_hostname` does.
    pub fn matches_host(&self, host: &str) -> bool {
        let host = host.to_ascii_lowercase();
        self.host_names().iter().any(|pattern| {
            if let Some(suffix) = pattern.strip_prefix("*.") {
                host.split_once('.')
                    .is_some_and(|(label, rest)| !label.is_empty() && rest == suffix)
            } else {
                *pattern == host
            }
        })
    }
}

thread_local! {
    /// (fingerprint, host_cert, client_cert) already logged in this run.
    static LOGGED: RefCell<HashSet<(String, bool, bool)>> = RefCell::new(HashSet::new());
}

/// One run's memory of logged certificates: cleared on entry and when dropped.
pub struct X509Scope(());

impl X509Scope {
    pub fn enter() -> X509Scope {
        LOGGED.with(|l| l.borrow_mut().clear());
        X509Scope(())
    }
}

impl Drop for X509Scope {
    fn drop(&mut self) {
        LOGGED.with(|l| l.borrow_mut().clear());
    }
}

/// Writes a certificate's x509.log line unless the run logged it already. `host_cert` is
/// the first certificate of its Certificate message (Zeek's `application/x-x509-user-cert`),
/// `client_cert` one the client sent.
pub fn log_certificate(
    ts: f64,
    cert: &Certificate,
    host_cert: bool,
    client_cert: bool,
    out: &mut AppOutput<'_>,
) {
    let key = (cert.fingerprint.clone(), host_cert, client_cert);
    if !LOGGED.with(|l| l.borrow_mut().insert(key)) {
        return;
    }
    let san = cert.san.as_ref();
    fn vector(v: Option<&Vec<String>>) -> Option<Vector<'_, String>> {
        v.map(|v| Vector(v.as_slice()))
    }
    out.logs.write(&X509Row {
        ts: Time(ts),
        fingerprint: &cert.fingerprint,
        version: cert.version,
        serial: &cert.serial,
        subject: &cert.subject,
        issuer: &cert.issuer,
        not_valid_before: cert.not_valid_before.map(Time),
        not_valid_after: cert.not_valid_after.map(Time),
        key_alg: &cert.key_alg,
        sig_alg: &cert.sig_alg,
        key_type: cert.key_type.as_deref(),
        key_length: cert.key_length,
        exponent: cert.exponent.as_deref(),
        curve: cert.curve,
        san_dns: vector(san.and_then(|s| s.dns.as_ref())),
        san_uri: vector(san.and_then(|s| s.uri.as_ref())),
        san_email: vector(san.and_then(|s| s.email.as_ref())),
        san_ip: san
            .and_then(|s| s.ip.as_ref())
            .map(|v| Vector::<IpAddr>(v.as_slice())),
        ca: cert.basic_constraints.map(|b| b.0),
        path_len: cert.basic_constraints.and_then(|b| b.1),
        host_cert,
        client_cert,
    });
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::analyzer::app::tests::Collect;
    use crate::analyzer::log::tests::OwnedValue;

    fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
        let mut v = vec![tag];
        let len = content.len();
        if len < 128 {
            v.push(len as u8);
        } else {
            v.push(0x82);
            v.extend_from_slice(&(len as u16).to_be_bytes());
        }
        v.extend_from_slice(content);
        v
    }

    fn atv(oid: &[u8], tag: u8, value: &str) -> Vec<u8> {
        let mut a = tlv(0x06, oid);
        a.extend(tlv(tag, value.as_bytes()));
        tlv(0x30, &a)
    }

    /// A DER certificate: v3, serial 0x00F1 (sign byte), issuer `CN=ca`, subject
    /// `C=US,O=a\, b,CN=cn` with a multi-valued last RDN, an RSA key (2048-bit modulus,
    /// exponent 65537), basicConstraints CA:false and a SAN with `san`.
    pub(crate) fn cert(cn: &str, san: &str) -> Vec<u8> {
        let issuer = tlv(0x30, &tlv(0x31, &atv(OID_CN, 0x0c, "ca")));
        let mut subject = tlv(0x31, &atv(&[0x55, 4, 6], 0x13, "US"));
        subject.extend(tlv(0x31, &atv(&[0x55, 4, 10], 0x0c, "a, b")));
        let mut last = atv(OID_CN, 0x0c, cn);
        last.extend(atv(&[0x55, 4, 11], 0x0c, "unit"));
        subject.extend(tlv(0x31, &last));
        let subject = tlv(0x30, &subject);
        let mut validity = tlv(0x17, b"120411003757Z");
        validity.extend(tlv(0x18, b"20491231235959Z"));
        let rsa_oid = [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];
        let mut alg = tlv(0x06, &rsa_oid);
        alg.extend(tlv(0x05, &[]));
        let mut modulus = vec![0x00, 0xc0];
        modulus.extend_from_slice(&[0x11; 255]);
        let mut rsa = tlv(0x02, &modulus);
        rsa.extend(tlv(0x02, &[0x01, 0x00, 0x01]));
        let mut bits = vec![0];
        bits.extend(tlv(0x30, &rsa));
        let mut spki = tlv(0x30, &alg);
        spki.extend(tlv(0x03, &bits));
        let mut bc = tlv(0x06, OID_BASIC_CONSTRAINTS);
        bc.extend(tlv(0x04, &tlv(0x30, &[])));
        let mut e = tlv(0x06, OID_SAN);
        e.extend(tlv(0x04, &tlv(0x30, &tlv(0x82, san.as_bytes()))));
        let mut exts = tlv(0x30, &bc);
        exts.extend(tlv(0x30, &e));
        let sha256_rsa = [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0b];
        let mut tbs = tlv(0xa0, &tlv(0x02, &[2]));
        tbs.extend(tlv(0x02, &[0x00, 0xf1]));
        tbs.extend(tlv(0x30, &tlv(0x06, &sha256_rsa)));
        tbs.extend(issuer);
        tbs.extend(tlv(0x30, &validity));
        tbs.extend(subject);
        tbs.extend(tlv(0x30, &spki));
        tbs.extend(tlv(0xa3, &tlv(0x30, &exts)));
        let mut body = tlv(0x30, &tbs);
        body.extend(tlv(0x30, &tlv(0x06, &sha256_rsa)));
        body.extend(tlv(0x03, &[0, 1, 2, 3]));
        tlv(0x30, &body)
    }

    #[test]
    fn certificate_fields_print_as_zeek_prints_them() {
        let der_cert = cert("www.test", "*.example.com");
        let c = Certificate::parse(&der_cert).expect("certificate");
        assert_eq!(c.version, 3);
        assert_eq!(c.serial, "F1");
        assert_eq!(c.subject, "OU=unit+CN=www.test,O=a\\, b,C=US");
        assert_eq!(c.issuer, "CN=ca");
        assert_eq!(c.not_valid_before, Some(1_334_104_677.0));
        assert_eq!(c.not_valid_after, Some(2_524_607_999.0));
        assert_eq!(c.key_alg, "rsaEncryption");
        assert_eq!(c.sig_alg, "sha256WithRSAEncryption");
        assert_eq!(c.key_type.as_deref(), Some("rsa"));
        assert_eq!(c.key_length, Some(2048));
        assert_eq!(c.exponent.as_deref(), Some("65537"));
        assert_eq!(c.basic_constraints, Some((false, None)));
        assert!(c.matches_host("WWW.example.com"));
        assert!(!c.matches_host("example.com"));
        assert!(!c.matches_host("a.b.example.com"));
        assert!(Certificate::parse(&der_cert[..40]).is_none());
    }

    #[test]
    fn values_and_names() {
        assert_eq!(serial_text(&[0x00]), "00");
        assert_eq!(serial_text(&[0x0b, 0x67, 0x71]), "0B6771");
        assert_eq!(serial_text(&[0xff]), "-01");
        assert_eq!(decimal(&[0x01, 0x00, 0x01]), "65537");
        assert_eq!(decimal(&[0x00]), "0");
        let mut s = String::new();
        escape_rfc2253(" #a;é ", &mut s);
        assert_eq!(s, "\\ #a\\;\\C3\\A9\\ ");
    }

    #[test]
    fn each_certificate_is_logged_once_per_run() {
        let _scope = X509Scope::enter();
        let c = Certificate::parse(&cert("a", "a")).expect("certificate");
        let mut sink = Collect::default();
        let mut weirds = Vec::new();
        let mut expected = Vec::new();
        let mut out = AppOutput {
            logs: &mut sink,
            weirds: &mut weirds,
            expected: &mut expected,
        };
        log_certificate(1.0, &c, true, false, &mut out);
        log_certificate(2.0, &c, true, false, &mut out);
        log_certificate(2.0, &c, false, false, &mut out);
        let rows = sink.of("x509");
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0][1], OwnedValue::Str(c.fingerprint.clone()));
        assert_eq!(rows[0][13], OwnedValue::Unset);
        assert_eq!(
            rows[0][14],
            OwnedValue::Vector(vec![OwnedValue::Str("a".into())])
        );
        assert_eq!(rows[0][15], OwnedValue::Unset);
        assert_eq!(rows[0][18], OwnedValue::Bool(false));
        assert_eq!(rows[0][19], OwnedValue::Unset);
    }
}
