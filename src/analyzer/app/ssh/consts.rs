//! SSH name tables: how Zeek's analyzer reads the negotiated key-exchange method
//! (`update_kex` in `src/analyzer/protocol/ssh/ssh-protocol.pac`), the message numbers of
//! `consts.pac`, and the compression algorithms of `SSH::compression_algorithms`
//! (`scripts/base/protocols/ssh/main.zeek`).

/// SSH-2 message numbers (RFC 4253, 4419, 4432, 4462, 5656).
pub(crate) const MSG_KEXINIT: u8 = 20;
pub(crate) const MSG_NEWKEYS: u8 = 21;
/// SSH-1: the client's session key, after which the client encrypts.
pub(crate) const SSH1_CMSG_SESSION_KEY: u8 = 3;

/// The family of key exchange, which says how the messages after KEXINIT read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KexMethod {
    /// `diffie-hellman-group*`: KEXDH_REPLY (31) carries the host key.
    Dh,
    /// `diffie-hellman-group-exchange-*`: KEX_DH_GEX_REPLY (33).
    DhGex,
    /// ECDH, ECMQV, curve25519, sntrup761, ML-KEM hybrids: KEX_ECDH_REPLY (31).
    Ecc,
    /// GSS-API key exchange: KEXGSS_HOSTKEY (33).
    Gss,
    /// RSA key exchange: no host key message Zeek reads.
    Rsa,
}

impl KexMethod {
    /// The message type whose first string is the server's host key.
    pub(crate) fn host_key_message(self) -> Option<u8> {
        match self {
            KexMethod::Dh | KexMethod::Ecc => Some(31),
            KexMethod::DhGex | KexMethod::Gss => Some(33),
            KexMethod::Rsa => None,
        }
    }
}

/// Exact names, then name prefixes, in the order Zeek tries them.
const EXACT: [(&str, KexMethod); 10] = [
    ("rsa1024-sha1", KexMethod::Rsa),
    ("rsa2048-sha256", KexMethod::Rsa),
    ("diffie-hellman-group1-sha1", KexMethod::Dh),
    ("diffie-hellman-group14-sha1", KexMethod::Dh),
    ("diffie-hellman-group14-sha256", KexMethod::Dh),
    ("diffie-hellman-group16-sha512", KexMethod::Dh),
    ("diffie-hellman-group18-sha512", KexMethod::Dh),
    ("diffie-hellman-group-exchange-sha1", KexMethod::DhGex),
    ("diffie-hellman-group-exchange-sha256", KexMethod::DhGex),
    // Zeek tests this one between the prefixes; no prefix matches it, so checking the
    // exact names first gives the same answers.
    ("ecmqv-sha2", KexMethod::Ecc),
];

const PREFIXES: [(&str, KexMethod); 5] = [
    ("gss-", KexMethod::Gss),
    ("ecdh-sha2-", KexMethod::Ecc),
    ("curve25519-sha256", KexMethod::Ecc),
    ("sntrup761x25519-sha512", KexMethod::Ecc),
    ("mlkem", KexMethod::Ecc),
];

/// The key-exchange family of a negotiated algorithm; `None` is Zeek's
/// `ssh_unknown_kex_algorithm`.
pub(crate) fn kex_method(name: &str) -> Option<KexMethod> {
    EXACT
        .iter()
        .find(|(n, _)| *n == name)
        .or_else(|| PREFIXES.iter().find(|(p, _)| name.starts_with(p)))
        .map(|&(_, m)| m)
}

/// `SSH::compression_algorithms`: with these, encrypted packet sizes say nothing about the
/// authentication, so Zeek makes no guess.
pub(crate) fn is_compression(name: &str) -> bool {
    matches!(name, "zlib" | "zlib@openssh.com")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kex_families() {
        assert_eq!(
            kex_method("curve25519-sha256@libssh.org"),
            Some(KexMethod::Ecc)
        );
        assert_eq!(
            kex_method("diffie-hellman-group-exchange-sha256"),
            Some(KexMethod::DhGex)
        );
        assert_eq!(
            kex_method("diffie-hellman-group14-sha256"),
            Some(KexMethod::Dh)
        );
        assert_eq!(
            kex_method("sntrup761x25519-sha512@openssh.com"),
            Some(KexMethod::Ecc)
        );
        assert_eq!(kex_method("mlkem768x25519-sha256"), Some(KexMethod::Ecc));
        assert_eq!(kex_method("gss-gex-sha1-abc"), Some(KexMethod::Gss));
        assert_eq!(kex_method("rsa2048-sha256"), Some(KexMethod::Rsa));
        assert_eq!(kex_method("made-up"), None);
        assert_eq!(KexMethod::DhGex.host_key_message(), Some(33));
        assert!(is_compression("zlib@openssh.com"));
        assert!(!is_compression("none"));
    }
}
