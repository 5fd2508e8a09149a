//! SMTP tables: the commands Zeek's analyzer knows (`src/analyzer/protocol/smtp/SMTP_cmd.def`),
//! the limits of `base/protocols/smtp/main.zeek`, and the webmail user agents of
//! `policy/protocols/smtp/software.zeek`.

/// A command Zeek's SMTP analyzer recognises; others are "unknown" and raise no event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Command {
    Ehlo,
    Helo,
    Mail,
    Rcpt,
    Data,
    Quit,
    Rset,
    Vrfy,
    Expn,
    Help,
    Noop,
    StartTls,
    XAnonymousTls,
    Send,
    Soml,
    Saml,
    Turn,
    Bdat,
    Etrn,
    Auth,
    /// A line of an AUTH exchange (not a command on the wire).
    AuthAnswer,
    /// The server's greeting answers the connection itself.
    ConnEstablishment,
    /// The `.` line that ends DATA.
    EndOfData,
}

const WORDS: &[(&str, Command)] = &[
    ("EHLO", Command::Ehlo),
    ("HELO", Command::Helo),
    ("MAIL", Command::Mail),
    ("RCPT", Command::Rcpt),
    ("DATA", Command::Data),
    ("QUIT", Command::Quit),
    ("RSET", Command::Rset),
    ("VRFY", Command::Vrfy),
    ("EXPN", Command::Expn),
    ("HELP", Command::Help),
    ("NOOP", Command::Noop),
    ("STARTTLS", Command::StartTls),
    ("X-ANONYMOUSTLS", Command::XAnonymousTls),
    ("SEND", Command::Send),
    ("SOML", Command::Soml),
    ("SAML", Command::Saml),
    ("TURN", Command::Turn),
    ("BDAT", Command::Bdat),
    ("ETRN", Command::Etrn),
    ("AUTH", Command::Auth),
];

impl Command {
    /// The command a client word names (any case).
    pub(crate) fn parse(word: &[u8]) -> Option<Command> {
        WORDS
            .iter()
            .find(|(w, _)| w.as_bytes().eq_ignore_ascii_case(word))
            .map(|&(_, c)| c)
    }

    /// The name `smtp_reply` reports for the command a reply answers.
    pub(crate) fn reply_name(self) -> &'static str {
        match self {
            Command::ConnEstablishment => ">",
            Command::EndOfData => ".",
            Command::AuthAnswer => "AUTH_ANSWER",
            other => WORDS
                .iter()
                .find(|(_, c)| *c == other)
                .map_or("(UNKNOWN)", |(w, _)| w),
        }
    }
}

/// `SMTP::webmail_user_agents` (`policy/protocols/smtp/software.zeek`): user agents of
/// webmail front ends, as (anchored at the start, text).
pub(crate) const WEBMAIL_USER_AGENTS: &[(bool, &str)] = &[
    (true, "iPlanet Messenger"),
    (true, "Sun Java(tm) System Messenger Express"),
    (false, "(IMP)"),
    (true, "SquirrelMail"),
    (true, "NeoMail"),
    (false, "ZimbraWebClient"),
];

/// Whether a user agent is a webmail front end's.
pub(crate) fn is_webmail_agent(agent: &str) -> bool {
    WEBMAIL_USER_AGENTS.iter().any(|&(anchored, text)| {
        if anchored {
            agent.starts_with(text)
        } else {
            agent.contains(text)
        }
    })
}

/// `SMTP::max_invalid_mail_transactions`: past it, the analyzer stops.
pub(crate) const MAX_INVALID_MAIL_TRANSACTIONS: u64 = 25;
/// `SMTP::max_rcptto_addresses`, `max_to_addresses`, `max_cc_addresses`,
/// `max_path_length`.
pub(crate) const MAX_RCPTTO_ADDRESSES: usize = 1000;
pub(crate) const MAX_TO_ADDRESSES: usize = 1000;
pub(crate) const MAX_CC_ADDRESSES: usize = 1000;
pub(crate) const MAX_PATH_LENGTH: usize = 1000;
/// Commands awaiting replies before Zeek drops the queue (`smtp_excessive_pending_cmds`).
pub(crate) const MAX_PENDING_COMMANDS: usize = 1000;
/// `SMTP::bdat_max_line_length`.
pub(crate) const BDAT_MAX_LINE_LENGTH: usize = 4096;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_words() {
        assert_eq!(Command::parse(b"starttls"), Some(Command::StartTls));
        assert_eq!(Command::parse(b"Hello,"), None);
        assert_eq!(Command::EndOfData.reply_name(), ".");
        assert_eq!(Command::Bdat.reply_name(), "BDAT");
        assert!(is_webmail_agent("SquirrelMail/1.4.22"));
        assert!(is_webmail_agent("Horde Application Framework (IMP) 4"));
        assert!(!is_webmail_agent("Mozilla Thunderbird"));
    }
}
