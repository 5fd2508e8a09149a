//! Object identifier names as x509.log shows them. Zeek prints certificates with OpenSSL
//! (`src/file_analysis/analyzer/x509/X509.cc`): algorithms by their OpenSSL long names
//! (`i2t_ASN1_OBJECT`), name attributes by their short names (`X509_NAME_print_ex` with
//! `XN_FLAG_RFC2253`), curves by their group names; these tables mirror OpenSSL's
//! `objects.txt` for the identifiers certificates use. Unknown identifiers print as dotted
//! numbers, as OpenSSL prints them.

/// Dotted form of an OID's DER content.
pub(crate) fn dotted(oid: &[u8]) -> String {
    let mut arcs: Vec<u64> = Vec::new();
    let mut acc: u64 = 0;
    for &b in oid {
        acc = (acc << 7) | u64::from(b & 0x7f);
        if b & 0x80 == 0 {
            if arcs.is_empty() {
                let first = (acc / 40).min(2);
                arcs.push(first);
                arcs.push(acc - first * 40);
            } else {
                arcs.push(acc);
            }
            acc = 0;
        }
    }
    arcs.iter()
        .map(u64::to_string)
        .collect::<Vec<_>>()
        .join(".")
}

/// Long names of signature and public-key algorithms.
const ALGORITHMS: [(&str, &str); 27] = [
    ("1.2.840.113549.1.1.1", "rsaEncryption"),
    ("1.2.840.113549.1.1.2", "md2WithRSAEncryption"),
    ("1.2.840.113549.1.1.4", "md5WithRSAEncryption"),
    ("1.2.840.113549.1.1.5", "sha1WithRSAEncryption"),
    ("1.2.840.113549.1.1.10", "rsassaPss"),
    ("1.2.840.113549.1.1.11", "sha256WithRSAEncryption"),
    ("1.2.840.113549.1.1.12", "sha384WithRSAEncryption"),
    ("1.2.840.113549.1.1.13", "sha512WithRSAEncryption"),
    ("1.2.840.113549.1.1.14", "sha224WithRSAEncryption"),
    ("1.3.14.3.2.29", "sha1WithRSA"),
    ("1.2.840.10040.4.1", "dsaEncryption"),
    ("1.2.840.10040.4.3", "dsaWithSHA1"),
    ("2.16.840.1.101.3.4.3.1", "dsa_with_SHA224"),
    ("2.16.840.1.101.3.4.3.2", "dsa_with_SHA256"),
    ("1.2.840.10045.2.1", "id-ecPublicKey"),
    ("1.2.840.10045.4.1", "ecdsa-with-SHA1"),
    ("1.2.840.10045.4.3.1", "ecdsa-with-SHA224"),
    ("1.2.840.10045.4.3.2", "ecdsa-with-SHA256"),
    ("1.2.840.10045.4.3.3", "ecdsa-with-SHA384"),
    ("1.2.840.10045.4.3.4", "ecdsa-with-SHA512"),
    ("1.3.101.110", "X25519"),
    ("1.3.101.111", "X448"),
    ("1.3.101.112", "ED25519"),
    ("1.3.101.113", "ED448"),
    ("1.2.643.2.2.3", "GOST R 34.11-94 with GOST R 34.10-2001"),
    ("1.2.643.2.2.19", "GOST R 34.10-2001"),
    ("1.2.840.113549.1.1.3", "md4WithRSAEncryption"),
];

/// OpenSSL's long name of an algorithm, or its dotted number.
pub(crate) fn algorithm_name(oid: &[u8]) -> String {
    let d = dotted(oid);
    ALGORITHMS
        .iter()
        .find(|(o, _)| *o == d)
        .map_or(d, |(_, n)| (*n).to_owned())
}

/// Short names of distinguished-name attributes.
const ATTRIBUTES: [(&str, &str); 25] = [
    ("2.5.4.3", "CN"),
    ("2.5.4.4", "SN"),
    ("2.5.4.5", "serialNumber"),
    ("2.5.4.6", "C"),
    ("2.5.4.7", "L"),
    ("2.5.4.8", "ST"),
    ("2.5.4.9", "street"),
    ("2.5.4.10", "O"),
    ("2.5.4.11", "OU"),
    ("2.5.4.12", "title"),
    ("2.5.4.13", "description"),
    ("2.5.4.15", "businessCategory"),
    ("2.5.4.17", "postalCode"),
    ("2.5.4.41", "name"),
    ("2.5.4.42", "GN"),
    ("2.5.4.43", "initials"),
    ("2.5.4.44", "generationQualifier"),
    ("2.5.4.46", "dnQualifier"),
    ("2.5.4.65", "pseudonym"),
    ("2.5.4.97", "organizationIdentifier"),
    ("1.2.840.113549.1.9.1", "emailAddress"),
    ("0.9.2342.19200300.100.1.25", "DC"),
    ("0.9.2342.19200300.100.1.1", "UID"),
    ("1.3.6.1.4.1.311.60.2.1.3", "jurisdictionC"),
    ("1.3.6.1.4.1.311.60.2.1.2", "jurisdictionST"),
];

/// The short name of a name attribute, or its dotted number.
pub(crate) fn attribute_name(oid: &[u8]) -> String {
    let d = dotted(oid);
    if d == "1.3.6.1.4.1.311.60.2.1.1" {
        return "jurisdictionL".to_owned();
    }
    ATTRIBUTES
        .iter()
        .find(|(o, _)| *o == d)
        .map_or(d, |(_, n)| (*n).to_owned())
}

/// Named elliptic curves: OpenSSL's group name and the bits of the group order
/// (`EVP_PKEY_bits`).
const CURVES: [(&str, &str, u64); 11] = [
    ("1.2.840.10045.3.1.7", "prime256v1", 256),
    ("1.3.132.0.34", "secp384r1", 384),
    ("1.3.132.0.35", "secp521r1", 521),
    ("1.3.132.0.33", "secp224r1", 224),
    ("1.3.132.0.10", "secp256k1", 256),
    ("1.2.840.10045.3.1.1", "prime192v1", 192),
    ("1.3.36.3.3.2.8.1.1.7", "brainpoolP256r1", 256),
    ("1.3.36.3.3.2.8.1.1.11", "brainpoolP384r1", 384),
    ("1.3.36.3.3.2.8.1.1.13", "brainpoolP512r1", 512),
    ("1.3.132.0.39", "sect571r1", 570),
    ("1.3.132.0.38", "sect571k1", 570),
];

/// A named curve's group name and key size.
pub(crate) fn curve(oid: &[u8]) -> Option<(&'static str, u64)> {
    let d = dotted(oid);
    CURVES
        .iter()
        .find(|(o, _, _)| *o == d)
        .map(|&(_, n, bits)| (n, bits))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        let rsa = [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];
        assert_eq!(dotted(&rsa), "1.2.840.113549.1.1.1");
        assert_eq!(algorithm_name(&rsa), "rsaEncryption");
        assert_eq!(attribute_name(&[0x55, 0x04, 0x03]), "CN");
        assert_eq!(attribute_name(&[0x55, 0x04, 0x63]), "2.5.4.99");
        assert_eq!(
            curve(&[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07]),
            Some(("prime256v1", 256))
        );
    }
}
