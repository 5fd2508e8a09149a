//! Just enough X.509 for ssl.log's `sni_matches_cert`: DER walking to a certificate's DNS
//! names (subjectAltName dNSNames, else the subject's common names) and Zeek's hostname
//! check.

/// Minimal DER walking: `(tag, content, rest)` of the element at the start of `data`.
fn der(data: &[u8]) -> Option<(u8, &[u8], &[u8])> {
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

fn der_children(mut data: &[u8]) -> Vec<(u8, &[u8])> {
    let mut out = Vec::new();
    while let Some((tag, content, rest)) = der(data) {
        out.push((tag, content));
        data = rest;
    }
    out
}

const OID_CN: &[u8] = &[0x55, 0x04, 0x03];
const OID_SAN: &[u8] = &[0x55, 0x1d, 0x11];

/// DNS names a certificate is valid for: its subjectAltName dNSNames, or its subject
/// common names when it has no SAN.
fn cert_host_names(cert: &[u8]) -> Vec<String> {
    let Some((_, cert_body, _)) = der(cert) else {
        return Vec::new();
    };
    let Some((_, tbs, _)) = der(cert_body) else {
        return Vec::new();
    };
    let fields = der_children(tbs);
    // Skip the optional [0] version; then serial, signature, issuer, validity, subject.
    let offset = usize::from(fields.first().is_some_and(|f| f.0 == 0xa0));
    let subject = fields.get(offset + 4).map(|f| f.1);
    let mut sans = Vec::new();
    if let Some((_, ext_wrapper)) = fields.iter().find(|f| f.0 == 0xa3) {
        if let Some((_, exts, _)) = der(ext_wrapper) {
            for (_, ext) in der_children(exts) {
                let parts = der_children(ext);
                if parts.first().map(|p| p.1) != Some(OID_SAN) {
                    continue;
                }
                let Some((_, value)) = parts.last() else {
                    continue;
                };
                if let Some((_, names, _)) = der(value) {
                    for (tag, name) in der_children(names) {
                        if tag == 0x82 {
                            sans.push(String::from_utf8_lossy(name).to_ascii_lowercase());
                        }
                    }
                }
            }
        }
    }
    if !sans.is_empty() {
        return sans;
    }
    let mut cns = Vec::new();
    for (_, rdn) in subject.map(der_children).unwrap_or_default() {
        for (_, atv) in der_children(rdn) {
            let parts = der_children(atv);
            if parts.first().map(|p| p.1) == Some(OID_CN) {
                if let Some((_, v)) = parts.get(1) {
                    cns.push(String::from_utf8_lossy(v).to_ascii_lowercase());
                }
            }
        }
    }
    cns
}

/// Hostname check with a single leftmost wildcard label, as Zeek's
/// `x509_check_cert_hostname` does.
pub(crate) fn cert_matches_host(cert: &[u8], host: &str) -> bool {
    let host = host.to_ascii_lowercase();
    cert_host_names(cert).iter().any(|pattern| {
        if let Some(suffix) = pattern.strip_prefix("*.") {
            host.split_once('.')
                .is_some_and(|(label, rest)| !label.is_empty() && rest == suffix)
        } else {
            *pattern == host
        }
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A DER certificate skeleton: tbs with version, serial, sig alg, issuer, validity,
    /// subject (CN) and a SAN extension.
    pub(crate) fn cert(cn: &str, san: &str) -> Vec<u8> {
        fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
            assert!(content.len() < 128);
            let mut v = vec![tag, content.len() as u8];
            v.extend_from_slice(content);
            v
        }
        let mut atv = tlv(0x06, OID_CN);
        atv.extend(tlv(0x0c, cn.as_bytes()));
        let subject = tlv(0x30, &tlv(0x31, &tlv(0x30, &atv)));
        let names = tlv(0x30, &tlv(0x82, san.as_bytes()));
        let mut e = tlv(0x06, OID_SAN);
        e.extend(tlv(0x04, &names));
        let exts = tlv(0xa3, &tlv(0x30, &tlv(0x30, &e)));
        let mut tbs = tlv(0xa0, &tlv(0x02, &[2]));
        tbs.extend(tlv(0x02, &[1]));
        tbs.extend(tlv(0x30, &[]));
        tbs.extend(tlv(0x30, &[]));
        tbs.extend(tlv(0x30, &[]));
        tbs.extend(subject);
        tbs.extend(exts);
        let mut body = tlv(0x30, &tbs);
        body.extend(tlv(0x30, &[]));
        tlv(0x30, &body)
    }

    #[test]
    fn wildcard_matching() {
        let c = cert("cn.test", "*.example.com");
        assert!(cert_matches_host(&c, "WWW.example.com"));
        assert!(!cert_matches_host(&c, "example.com"));
        assert!(!cert_matches_host(&c, "a.b.example.com"));
    }
}
