//! TLS name tables transcribed from Zeek's `base/protocols/ssl/consts.zeek` (versions,
//! cipher suites, named groups, alert descriptions) and the `ssl_history` letters of
//! `base/protocols/ssl/main.zeek`: keep them in step with those scripts. A code missing
//! from a table gets the placeholder Zeek's `&default` function gives it.

use std::borrow::Cow;

/// Zeek's `SSL::version_strings` (`base/protocols/ssl/consts.zeek`).
pub(crate) fn version_name(v: u16) -> Cow<'static, str> {
    Cow::Borrowed(match v {
        0x0002 => "SSLv2",
        0x0300 => "SSLv3",
        0x0301 => "TLSv10",
        0x0302 => "TLSv11",
        0x0303 => "TLSv12",
        0x0304 => "TLSv13",
        0xfeff => "DTLSv10",
        0xfefd => "DTLSv12",
        0xfefc => "DTLSv13",
        0x7f00..=0x7fff => return Cow::Owned(format!("TLSv13-draft{}", v & 0xff)),
        other => return Cow::Owned(format!("unknown-{other}")),
    })
}

/// IANA cipher suite names as Zeek prints them (`SSL::cipher_desc`,
/// `base/protocols/ssl/consts.zeek`), for the suites seen in practice.
pub(crate) fn cipher_name(c: u16) -> Cow<'static, str> {
    let name = match c {
        0x0000 => "TLS_NULL_WITH_NULL_NULL",
        0x0001 => "TLS_RSA_WITH_NULL_MD5",
        0x0002 => "TLS_RSA_WITH_NULL_SHA",
        0x0004 => "TLS_RSA_WITH_RC4_128_MD5",
        0x0005 => "TLS_RSA_WITH_RC4_128_SHA",
        0x000a => "TLS_RSA_WITH_3DES_EDE_CBC_SHA",
        0x0016 => "TLS_DHE_RSA_WITH_3DES_EDE_CBC_SHA",
        0x002f => "TLS_RSA_WITH_AES_128_CBC_SHA",
        0x0032 => "TLS_DHE_DSS_WITH_AES_128_CBC_SHA",
        0x0033 => "TLS_DHE_RSA_WITH_AES_128_CBC_SHA",
        0x0035 => "TLS_RSA_WITH_AES_256_CBC_SHA",
        0x0038 => "TLS_DHE_DSS_WITH_AES_256_CBC_SHA",
        0x0039 => "TLS_DHE_RSA_WITH_AES_256_CBC_SHA",
        0x003c => "TLS_RSA_WITH_AES_128_CBC_SHA256",
        0x003d => "TLS_RSA_WITH_AES_256_CBC_SHA256",
        0x0041 => "TLS_RSA_WITH_CAMELLIA_128_CBC_SHA",
        0x0045 => "TLS_DHE_RSA_WITH_CAMELLIA_128_CBC_SHA",
        0x0067 => "TLS_DHE_RSA_WITH_AES_128_CBC_SHA256",
        0x006b => "TLS_DHE_RSA_WITH_AES_256_CBC_SHA256",
        0x0084 => "TLS_RSA_WITH_CAMELLIA_256_CBC_SHA",
        0x0088 => "TLS_DHE_RSA_WITH_CAMELLIA_256_CBC_SHA",
        0x009c => "TLS_RSA_WITH_AES_128_GCM_SHA256",
        0x009d => "TLS_RSA_WITH_AES_256_GCM_SHA384",
        0x009e => "TLS_DHE_RSA_WITH_AES_128_GCM_SHA256",
        0x009f => "TLS_DHE_RSA_WITH_AES_256_GCM_SHA384",
        0x00ff => "TLS_EMPTY_RENEGOTIATION_INFO_SCSV",
        0x1301 => "TLS_AES_128_GCM_SHA256",
        0x1302 => "TLS_AES_256_GCM_SHA384",
        0x1303 => "TLS_CHACHA20_POLY1305_SHA256",
        0x1304 => "TLS_AES_128_CCM_SHA256",
        0x1305 => "TLS_AES_128_CCM_8_SHA256",
        0x5600 => "TLS_FALLBACK_SCSV",
        0xc002 => "TLS_ECDH_ECDSA_WITH_RC4_128_SHA",
        0xc004 => "TLS_ECDH_ECDSA_WITH_AES_128_CBC_SHA",
        0xc005 => "TLS_ECDH_ECDSA_WITH_AES_256_CBC_SHA",
        0xc007 => "TLS_ECDHE_ECDSA_WITH_RC4_128_SHA",
        0xc008 => "TLS_ECDHE_ECDSA_WITH_3DES_EDE_CBC_SHA",
        0xc009 => "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA",
        0xc00a => "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA",
        0xc00c => "TLS_ECDH_RSA_WITH_RC4_128_SHA",
        0xc00e => "TLS_ECDH_RSA_WITH_AES_128_CBC_SHA",
        0xc00f => "TLS_ECDH_RSA_WITH_AES_256_CBC_SHA",
        0xc011 => "TLS_ECDHE_RSA_WITH_RC4_128_SHA",
        0xc012 => "TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA",
        0xc013 => "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA",
        0xc014 => "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA",
        0xc023 => "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256",
        0xc024 => "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA384",
        0xc027 => "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256",
        0xc028 => "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA384",
        0xc02b => "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
        0xc02c => "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
        0xc02f => "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
        0xc030 => "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
        0xc09c => "TLS_RSA_WITH_AES_128_CCM",
        0xc09d => "TLS_RSA_WITH_AES_256_CCM",
        0xc0ac => "TLS_ECDHE_ECDSA_WITH_AES_128_CCM",
        0xc0ad => "TLS_ECDHE_ECDSA_WITH_AES_256_CCM",
        0xcca8 => "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
        0xcca9 => "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
        0xccaa => "TLS_DHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
        0xcc13 => "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256_OLD",
        0xcc14 => "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256_OLD",
        0xcc15 => "TLS_DHE_RSA_WITH_CHACHA20_POLY1305_SHA256_OLD",
        other => return Cow::Owned(format!("unknown-{other}")),
    };
    Cow::Borrowed(name)
}

/// Named groups (`SSL::ec_curves`, `base/protocols/ssl/consts.zeek`).
pub(crate) fn curve_name(g: u16) -> Cow<'static, str> {
    let name = match g {
        1..=22 => {
            const OLD: [&str; 22] = [
                "sect163k1",
                "sect163r1",
                "sect163r2",
                "sect193r1",
                "sect193r2",
                "sect233k1",
                "sect233r1",
                "sect239k1",
                "sect283k1",
                "sect283r1",
                "sect409k1",
                "sect409r1",
                "sect571k1",
                "sect571r1",
                "secp160k1",
                "secp160r1",
                "secp160r2",
                "secp192k1",
                "secp192r1",
                "secp224k1",
                "secp224r1",
                "secp256k1",
            ];
            OLD[usize::from(g - 1)]
        }
        23 => "secp256r1",
        24 => "secp384r1",
        25 => "secp521r1",
        26 => "brainpoolP256r1",
        27 => "brainpoolP384r1",
        28 => "brainpoolP512r1",
        29 => "x25519",
        30 => "x448",
        256 => "ffdhe2048",
        257 => "ffdhe3072",
        258 => "ffdhe4096",
        259 => "ffdhe6144",
        260 => "ffdhe8192",
        0x11ec => "X25519MLKEM768",
        0x6399 => "X25519Kyber768Draft00",
        0xff01 => "arbitrary_explicit_prime_curves",
        0xff02 => "arbitrary_explicit_char2_curves",
        other => return Cow::Owned(format!("unknown-{other}")),
    };
    Cow::Borrowed(name)
}

/// TLS alert descriptions (`SSL::alert_descriptions`, `base/protocols/ssl/consts.zeek`).
pub(crate) fn alert_name(d: u8) -> Cow<'static, str> {
    let name = match d {
        0 => "close_notify",
        10 => "unexpected_message",
        20 => "bad_record_mac",
        21 => "decryption_failed",
        22 => "record_overflow",
        30 => "decompression_failure",
        40 => "handshake_failure",
        41 => "no_certificate",
        42 => "bad_certificate",
        43 => "unsupported_certificate",
        44 => "certificate_revoked",
        45 => "certificate_expired",
        46 => "certificate_unknown",
        47 => "illegal_parameter",
        48 => "unknown_ca",
        49 => "access_denied",
        50 => "decode_error",
        51 => "decrypt_error",
        60 => "export_restriction",
        70 => "protocol_version",
        71 => "insufficient_security",
        80 => "internal_error",
        86 => "inappropriate_fallback",
        90 => "user_canceled",
        100 => "no_renegotiation",
        109 => "missing_extension",
        110 => "unsupported_extension",
        111 => "certificate_unobtainable",
        112 => "unrecognized_name",
        113 => "bad_certificate_status_response",
        114 => "bad_certificate_hash_value",
        115 => "unknown_psk_identity",
        116 => "certificate_required",
        120 => "no_application_protocol",
        other => return Cow::Owned(format!("unknown-{other}")),
    };
    Cow::Borrowed(name)
}

/// Zeek's `ssl_history` letter of a handshake message type, as documented with
/// `SSL::Info$ssl_history` in `base/protocols/ssl/main.zeek` (client letters are upper case).
pub(crate) fn handshake_letter(msg_type: u8) -> char {
    match msg_type {
        0 => 'h',
        1 => 'c',
        2 => 's',
        3 => 'v',
        4 => 't',
        5 => 'e',
        8 => 'o',
        11 => 'x',
        12 => 'k',
        13 => 'r',
        14 => 'n',
        15 => 'y',
        16 => 'g',
        20 => 'f',
        21 => 'w',
        22 => 'u',
        23 => 'a',
        24 => 'p',
        254 => 'm',
        _ => 'z',
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_codes_get_zeeks_placeholders() {
        assert_eq!(version_name(0x0303), "TLSv12");
        assert_eq!(version_name(0x7f1c), "TLSv13-draft28");
        assert_eq!(cipher_name(0x1301), "TLS_AES_128_GCM_SHA256");
        assert_eq!(cipher_name(0x1234), "unknown-4660");
        assert_eq!(curve_name(1), "sect163k1");
        assert_eq!(curve_name(29), "x25519");
        assert_eq!(alert_name(40), "handshake_failure");
        assert_eq!(alert_name(255), "unknown-255");
        assert_eq!((handshake_letter(1), handshake_letter(99)), ('c', 'z'));
    }
}
