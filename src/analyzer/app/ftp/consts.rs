//! FTP tables of Zeek's scripts: `base/protocols/ftp/main.zeek` (`logged_commands`,
//! `guest_ids`, `file_cmds`, `directory_cmds`, the length limits) and
//! `base/protocols/ftp/utils-commands.zeek` (`cmd_reply_code`, which replies suit which
//! command when replies are matched with pending commands).

/// Commands whose command/reply pairs are written to ftp.log (`FTP::logged_commands`).
pub(crate) const LOGGED_COMMANDS: &[&str] = &[
    "APPE", "DELE", "RETR", "STOR", "STOU", "ACCT", "PORT", "PASV", "EPRT", "EPSV",
];

/// User names treated as anonymous: their password is logged (`FTP::guest_ids`).
pub(crate) const GUEST_IDS: &[&str] = &["anonymous", "ftp", "ftpuser", "guest"];

/// Commands whose argument names a file or directory: ftp.log shows it as a URL
/// (`file_cmds`).
pub(crate) const FILE_CMDS: &[&str] = &[
    "APPE", "CWD", "DELE", "MKD", "RETR", "RMD", "RNFR", "RNTO", "STOR", "STOU", "REST", "SIZE",
    "MDTM",
];

/// Commands that show or change the working directory, with their success code
/// (`directory_cmds`).
pub(crate) const DIRECTORY_CMDS: &[(&str, u64)] = &[
    ("CWD", 250),
    ("CDUP", 200),
    ("CDUP", 250),
    ("PWD", 257),
    ("XPWD", 257),
];

/// Commands a client may send before the server answers (`FTP::max_pending_commands`).
pub(crate) const MAX_PENDING_COMMANDS: usize = 20;
/// `FTP::max_user_length`, `FTP::max_password_length`.
pub(crate) const MAX_USER_LENGTH: usize = 128;
pub(crate) const MAX_PASSWORD_LENGTH: usize = 128;
/// `FTP::max_arg_length`, `FTP::max_reply_msg_length`.
pub(crate) const MAX_ARG_LENGTH: usize = 4096;
pub(crate) const MAX_REPLY_MSG_LENGTH: usize = 4096;

/// The password column of users that are not guests.
pub(crate) const HIDDEN_PASSWORD: &str = "<hidden>";

/// `cmd_reply_code`: the reply codes each command expects (RFC 959 and extensions).
const CMD_REPLY_CODE: &[(&str, &[u64])] = &[
    ("<init>", &[120, 220, 421, 0]),
    ("USER", &[230, 331, 332, 421, 530, 500, 501]),
    ("PASS", &[230, 202, 332, 421, 530, 500, 501, 503]),
    ("ACCT", &[230, 202, 421, 530, 500, 501, 503]),
    ("CWD", &[250, 421, 500, 501, 502, 530, 550]),
    ("CDUP", &[200, 250, 421, 500, 501, 502, 530, 550]),
    ("SMNT", &[202, 250, 421, 500, 501, 502, 530, 550]),
    ("REIN", &[120, 220, 421, 500, 502]),
    ("QUIT", &[221, 500, 0]),
    ("PORT", &[200, 421, 500, 501, 530]),
    ("PASV", &[227, 421, 500, 501, 502, 530]),
    ("MODE", &[200, 421, 500, 501, 502, 504, 530]),
    ("TYPE", &[200, 421, 500, 501, 504, 530]),
    ("STRU", &[200, 421, 500, 501, 504, 530]),
    ("ALLO", &[200, 202, 421, 500, 501, 504, 530]),
    ("REST", &[200, 350, 421, 500, 501, 502, 530]),
    (
        "STOR",
        &[
            110, 125, 150, 226, 250, 421, 425, 426, 451, 551, 552, 532, 450, 452, 553, 500, 501,
            530, 550,
        ],
    ),
    (
        "STOU",
        &[
            110, 125, 150, 226, 250, 421, 425, 426, 451, 551, 552, 532, 450, 452, 553, 500, 501,
            530, 550,
        ],
    ),
    (
        "RETR",
        &[
            110, 125, 150, 226, 250, 421, 425, 426, 451, 450, 500, 501, 530, 550,
        ],
    ),
    (
        "LIST",
        &[
            125, 150, 226, 250, 421, 425, 426, 451, 450, 500, 501, 502, 530, 550,
        ],
    ),
    (
        "NLST",
        &[
            125, 150, 226, 250, 421, 425, 426, 451, 450, 500, 501, 502, 530, 550,
        ],
    ),
    (
        "APPE",
        &[
            125, 150, 226, 250, 421, 425, 426, 451, 551, 552, 532, 450, 550, 452, 553, 500, 501,
            502, 530,
        ],
    ),
    ("RNFR", &[350, 421, 450, 550, 500, 501, 502, 530]),
    ("RNTO", &[250, 421, 532, 553, 500, 501, 502, 503, 530]),
    ("DELE", &[250, 421, 450, 550, 500, 501, 502, 530]),
    ("RMD", &[250, 421, 500, 501, 502, 530, 550]),
    ("MKD", &[257, 421, 500, 501, 502, 530, 550]),
    ("PWD", &[257, 421, 500, 501, 502, 550]),
    ("ABOR", &[225, 226, 421, 500, 501, 502]),
    ("SYST", &[215, 421, 500, 501, 502, 530]),
    ("STAT", &[211, 212, 213, 421, 450, 500, 501, 502, 530]),
    ("HELP", &[200, 211, 214, 421, 500, 501, 502]),
    ("SITE", &[200, 202, 214, 500, 501, 502, 530]),
    ("NOOP", &[200, 421, 500]),
    ("LPRT", &[500, 501, 521]),
    ("FEAT", &[211, 500, 502]),
    ("OPTS", &[200, 451, 501]),
    ("EPSV", &[229, 500, 501]),
    ("EPRT", &[200, 500, 501, 522]),
    ("SIZE", &[213, 500, 501, 550]),
    ("MDTM", &[213, 500, 501, 550]),
    ("MLST", &[150, 226, 250, 500, 501, 550]),
    ("MLSD", &[150, 226, 250, 500, 501, 550]),
    ("CLNT", &[200, 500]),
    ("MACB", &[200, 500, 550]),
    ("<missing>", &[0]),
];

/// Whether `code` is a reply `cmd` expects.
pub(crate) fn expects_reply(cmd: &str, code: u64) -> bool {
    CMD_REPLY_CODE
        .iter()
        .any(|(c, codes)| *c == cmd && codes.contains(&code))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reply_table() {
        assert!(expects_reply("RETR", 150));
        assert!(expects_reply("QUIT", 221));
        assert!(!expects_reply("RETR", 227));
        assert!(!expects_reply("XYZ", 200));
    }
}
