//! ssh.log: its row and schema.

use crate::analyzer::log::{log_row, ConnId, Enum, Time};

log_row! {
    /// One ssh.log line (Zeek's `SSH::Info`, `base/protocols/ssh/main.zeek`).
    pub struct SshRow<'a> => SSH_SCHEMA("ssh") {
        ts: Time,
        id: ConnId<'a>,
        version: Option<u64>,
        auth_success: Option<bool>,
        auth_attempts: u64,
        direction: Option<Enum>,
        client: Option<&'a str>,
        server: Option<&'a str>,
        cipher_alg: Option<&'a str>,
        mac_alg: Option<&'a str>,
        compression_alg: Option<&'a str>,
        kex_alg: Option<&'a str>,
        host_key_alg: Option<&'a str>,
        host_key_fingerprint: Option<&'a str>,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analyzer::app::tests::conn;
    use crate::analyzer::app::Transport;
    use crate::analyzer::log::tests::assert_fully_set_row_matches_schema;

    #[test]
    fn ssh_row_matches_its_schema() {
        let c = conn(Transport::Tcp, 22);
        assert_fully_set_row_matches_schema(&SshRow {
            ts: Time(1.0),
            id: c.id(),
            version: Some(2),
            auth_success: Some(true),
            auth_attempts: 1,
            direction: Some(Enum("OUTBOUND")),
            client: Some("SSH-2.0-OpenSSH_9.7"),
            server: Some("SSH-2.0-OpenSSH_9.2"),
            cipher_alg: Some("aes128-ctr"),
            mac_alg: Some("hmac-sha2-256"),
            compression_alg: Some("none"),
            kex_alg: Some("curve25519-sha256"),
            host_key_alg: Some("ssh-ed25519"),
            host_key_fingerprint: Some("SHA256:r320Lqxo0ynw5yApL29KprGBbs+TkC9q"),
        });
    }
}
