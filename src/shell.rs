//! Command lines operators write for `sh` (`[Command] command`, a detector's `command`):
//! quoting the values pcapd puts into them, and starting them.
//!
//! Most such lines are one program and its arguments (`zeek -C -r {pcaps} local`,
//! `clamscan --no-summary {file}`), and starting `/bin/sh` only to split them into words
//! costs a process image, about a millisecond of CPU, per job or per file. So a line made
//! only of what `sh` would merely split (plain word characters, blanks, single-quoted
//! strings, backslash escapes), whose first word is neither a reserved word nor a builtin of
//! `sh`, is started directly with the words `sh` would have made. Every other line goes to
//! `/bin/sh -c`, and so does a plain line whose direct start fails: `sh` then reports the
//! missing or unusable program as it always did (exit 127 or 126, its message on stderr). A
//! program started directly gets `PWD` in its environment, as `sh` exports it.

use std::io;
use std::process::{Child, Command};

/// POSIX single-quoting: safe for any byte string except NUL (paths have none).
pub fn quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

/// Words that `sh` treats itself (reserved words and the builtins of Debian's `dash`): a line
/// starting with one runs through `sh`, where a program of the same name may differ (`echo`).
const SH_OWN_WORDS: &[&str] = &[
    "!", "{", "}", "case", "do", "done", "elif", "else", "esac", "fi", "for", "if", "in", "then",
    "until", "while", ".", ":", "[", "alias", "bg", "break", "cd", "command", "continue", "echo",
    "eval", "exec", "exit", "export", "false", "fc", "fg", "getopts", "hash", "jobs", "kill",
    "local", "printf", "pwd", "read", "readonly", "return", "set", "shift", "test", "times",
    "trap", "true", "type", "ulimit", "umask", "unalias", "unset", "wait",
];

/// Whether `sh` runs `word`, as the first word of a command, itself rather than as a program.
pub fn is_sh_own_word(word: &str) -> bool {
    SH_OWN_WORDS.contains(&word)
}

/// A command line written for `sh`, ready to start.
#[derive(Debug, Clone)]
pub struct ShellLine {
    line: String,
    /// The words `sh` would split the line into, when that is all it would do.
    words: Option<Vec<String>>,
}

impl ShellLine {
    pub fn new(line: String) -> ShellLine {
        let words = plain_words(&line).filter(|words| {
            words
                .first()
                .is_some_and(|first| !first.is_empty() && !is_sh_own_word(first))
        });
        ShellLine { line, words }
    }

    /// Whether the line starts without `sh`.
    #[cfg(test)]
    pub fn is_direct(&self) -> bool {
        self.words.is_some()
    }

    /// Starts the line: its program directly when it is plain, through `/bin/sh -c` otherwise
    /// or when the direct start fails. `configure` sets up each `Command` before it is
    /// spawned (directory, stdio, environment, process group).
    pub fn spawn(&self, configure: impl Fn(&mut Command) -> io::Result<()>) -> io::Result<Child> {
        if let Some(words) = &self.words {
            let mut direct = Command::new(&words[0]);
            direct.args(&words[1..]);
            configure(&mut direct)?;
            // `sh` exports `PWD`, its working directory, to what it runs: so does this.
            let pwd_given = direct.get_envs().any(|(name, _)| name == "PWD");
            if let (Some(dir), false) = (direct.get_current_dir(), pwd_given) {
                let dir = std::path::absolute(dir)?;
                direct.env("PWD", dir);
            }
            if let Ok(child) = direct.spawn() {
                return Ok(child);
            }
        }
        let mut sh = Command::new("/bin/sh");
        sh.arg("-c").arg(&self.line);
        configure(&mut sh)?;
        sh.spawn()
    }
}

/// The words of `line` if `sh` would do nothing but split it into them: unquoted word
/// characters, blanks between words, `'…'` strings and `\x` escapes; `None` for anything
/// else (expansions, globs, redirections, operators, comments, assignments, newlines,
/// double quotes, non-ASCII text).
fn plain_words(line: &str) -> Option<Vec<String>> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            ' ' | '\t' => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            '\'' => {
                in_word = true;
                loop {
                    match chars.next()? {
                        '\'' => break,
                        inner => word.push(inner),
                    }
                }
            }
            '\\' => match chars.next()? {
                '\n' => return None,
                escaped => {
                    in_word = true;
                    word.push(escaped);
                }
            },
            // An assignment before the program (`LANG=C zeek`) is the shell's.
            '=' if words.is_empty() => return None,
            c if c.is_ascii_alphanumeric() || "_./:,@%+-=".contains(c) => {
                in_word = true;
                word.push(c);
            }
            _ => return None,
        }
    }
    if in_word {
        words.push(word);
    }
    (!words.is_empty()).then_some(words)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Stdio;

    #[test]
    fn quotes_for_sh() {
        assert_eq!(quote("a b"), "'a b'");
        assert_eq!(quote("it's"), r"'it'\''s'");
        assert_eq!(quote(""), "''");
    }

    #[test]
    fn plain_lines_are_split_as_sh_splits_them() {
        let words = |line: &str| plain_words(line);
        assert_eq!(
            words("zeek -C -r '/j/a b.pcap'  local"),
            Some(vec![
                "zeek".into(),
                "-C".into(),
                "-r".into(),
                "/j/a b.pcap".into(),
                "local".into()
            ])
        );
        assert_eq!(
            words(&format!("scan {} x''y ''", quote("it's"))),
            Some(vec![
                "scan".into(),
                "it's".into(),
                "xy".into(),
                String::new()
            ])
        );
        assert_eq!(words(r"a\ b c\'d"), Some(vec!["a b".into(), "c'd".into()]));
        assert_eq!(
            words("tool --opt=1 k=v"),
            Some(vec!["tool".into(), "--opt=1".into(), "k=v".into()])
        );
        for shell in [
            "a > b",
            "a | b",
            "a; b",
            "a && b",
            "a $X",
            "a `b`",
            "a *",
            "a ?",
            "a [b]",
            "~/a",
            "a # c",
            "LANG=C a",
            "a \"b\"",
            "a\nb",
            "a 'unterminated",
            "a \\",
            "(a)",
            "a &",
            "a é",
            "",
        ] {
            assert_eq!(words(shell), None, "{shell:?}");
        }
    }

    #[test]
    fn sh_words_and_builtins_go_through_sh() {
        assert!(ShellLine::new("clamscan --no-summary '/x'".into()).is_direct());
        for line in [
            "exec zeek -r x",
            "echo a\\nb",
            "test -s x",
            "if true",
            "'' x",
            "a=b c",
        ] {
            assert!(!ShellLine::new(line.into()).is_direct(), "{line:?}");
        }
    }

    fn output(line: &str) -> (Option<i32>, String, String) {
        let child = ShellLine::new(line.into())
            .spawn(|c| {
                c.stdout(Stdio::piped()).stderr(Stdio::piped());
                Ok(())
            })
            .unwrap();
        let out = child.wait_with_output().unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    #[test]
    fn pwd_is_exported_as_sh_exports_it() {
        let dir = std::env::temp_dir().canonicalize().unwrap();
        for line in ["/usr/bin/printenv PWD", "/usr/bin/printenv PWD; :"] {
            let child = ShellLine::new(line.into())
                .spawn(|c| {
                    c.current_dir(&dir).stdout(Stdio::piped());
                    Ok(())
                })
                .unwrap();
            let out = child.wait_with_output().unwrap();
            assert_eq!(
                String::from_utf8_lossy(&out.stdout).trim(),
                dir.to_string_lossy(),
                "{line}"
            );
        }
    }

    #[test]
    fn direct_and_sh_lines_run_alike() {
        assert_eq!(output("printf '%s|' a 'b c' d\\ e").1, "a|b c|d e|");
        assert_eq!(
            output("/usr/bin/printf '%s|' a 'b c' d\\ e").1,
            "a|b c|d e|"
        );
        assert_eq!(output("sh -c 'exit 3'").0, Some(3));
        // A missing program is reported by sh, as before.
        let (code, _, err) = output("/nonexistent/pcapd-tool -x");
        assert_eq!(code, Some(127));
        assert!(err.contains("/nonexistent/pcapd-tool"), "{err}");
    }
}
