//! Man pages and shell completions, generated from what the program already knows: the clap
//! definitions (`pcapd(1)` and one page per subcommand, completions for bash, zsh and fish)
//! and the configuration key table (`pcapd.cfg(5)`), so they never disagree with `--help`
//! or with `pcapd sample-config`. The Debian package runs `pcapd manpages` and `pcapd
//! completions` at build time (`packaging/build-deb.sh`).

use std::io::Write;
use std::path::{Path, PathBuf};

use clap::CommandFactory;
use clap_complete::Shell;
use clap_mangen::roff::{bold, italic, roman, Roff};

use super::Cli;
use crate::config::keys::{Reload, SECTIONS};

/// Writes `pcapd.1`, `pcapd-<subcommand>.1` for every visible subcommand and `pcapd.cfg.5`
/// into `dir` (created if missing); returns the files written.
pub fn write_man_pages(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir)?;
    let mut command = Cli::command().disable_help_subcommand(true);
    command.build();
    let mut written = Vec::new();
    let top = clap_mangen::Man::new(command.clone()).manual("pcapd manual");
    written.push(top.generate_to(dir)?);
    // Built, each subcommand's display name is its full name: `pcapd-serve(1)`.
    for sub in command.get_subcommands().filter(|s| !s.is_hide_set()) {
        let page = clap_mangen::Man::new(sub.clone()).manual("pcapd manual");
        written.push(page.generate_to(dir)?);
    }
    let config = dir.join("pcapd.cfg.5");
    std::fs::write(&config, config_page())?;
    written.push(config);
    Ok(written)
}

/// Writes the completion script for `shell` to `out`.
pub fn write_completions(shell: Shell, out: &mut dyn Write) {
    let mut command = Cli::command();
    clap_complete::generate(shell, &mut command, "pcapd", out);
}

/// `pcapd.cfg(5)`: the file's syntax, then every section and key of the key table with its
/// default, its explanation and whether a reload applies it.
pub fn config_page() -> String {
    let mut page = Roff::new();
    page.control(
        "TH",
        [
            "PCAPD.CFG",
            "5",
            "",
            concat!("pcapd ", env!("CARGO_PKG_VERSION")),
            "pcapd manual",
        ],
    );
    page.control("SH", ["NAME"]);
    page.text([roman("pcapd.cfg - configuration file of the pcapd daemon")]);
    page.control("SH", ["SYNOPSIS"]);
    page.text([bold("/etc/pcapd/pcapd.cfg")]);
    page.control("SH", ["DESCRIPTION"]);
    paragraph(
        &mut page,
        "pcapd reads one INI file: the file given with -c, else /etc/pcapd/pcapd.cfg if it \
         exists, else it runs on embedded defaults. Section and key names are \
         case-insensitive; unknown sections or keys are errors. Comments take whole lines \
         (starting with # or ;). A key left empty means its default.",
    );
    paragraph(
        &mut page,
        "Durations are seconds (30) or a number with ms, s, m, h or d (250ms, 5m, 7d). Sizes \
         are bytes or a number with K, M, G or T, powers of 1024 (512K, 4G). Booleans are \
         true/false, yes/no, on/off or 1/0. Lists are names separated by commas or spaces.",
    );
    paragraph(
        &mut page,
        "Sections marked optional are turned on by their presence. Keys marked reload are \
         applied by SIGHUP (systemctl reload pcapd); the others take effect at the next \
         start, and a reload reports them as waiting for a restart.",
    );
    paragraph(
        &mut page,
        "Check a file with pcapd check-config -c FILE (exit status 0: good, 64: errors). \
         pcapd sample-config prints every key below, documented, with its default.",
    );
    for section in SECTIONS {
        let optional = if section.optional { " (optional)" } else { "" };
        page.control("SH", [format!("[{}]{optional}", section.header).as_str()]);
        if !section.doc.is_empty() {
            paragraph(&mut page, &section.doc.join(" "));
        }
        for key in section.keys {
            page.control("TP", []);
            let mut head = vec![bold(key.name)];
            if !key.default.is_empty() {
                head.push(roman(" = "));
                head.push(italic(key.default));
            }
            head.push(roman(match key.reload {
                Reload::Live => "  (reload)",
                Reload::Restart => "",
            }));
            page.text(head);
            let doc = key.doc.join(" ");
            page.text([roman(if doc.is_empty() {
                "See the key before it.".to_owned()
            } else {
                doc
            })]);
        }
    }
    page.control("SH", ["FILES"]);
    page.control("TP", []);
    page.text([bold("/etc/pcapd/pcapd.cfg")]);
    page.text([roman("The configuration file.")]);
    page.control("TP", []);
    page.text([bold("/usr/share/doc/pcapd/pcapd.sample.cfg")]);
    page.text([roman(
        "Every key with its default, as pcapd sample-config prints it.",
    )]);
    page.control("SH", ["SEE ALSO"]);
    page.text([
        bold("pcapd"),
        roman("(1), "),
        bold("pcapd-check-config"),
        roman("(1), "),
        bold("systemctl"),
        roman("(1)"),
    ]);
    page.render()
}

fn paragraph(page: &mut Roff, text: &str) {
    page.control("PP", []);
    page.text([roman(text)]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_config_page_documents_every_key() {
        let page = config_page();
        for section in SECTIONS {
            assert!(page.contains(&format!("[{}]", section.header)));
            for key in section.keys {
                assert!(
                    page.contains(&format!("\\fB{}\\fR", key.name.replace('-', "\\-"))),
                    "[{}] {} missing",
                    section.name,
                    key.name
                );
            }
        }
    }

    #[test]
    fn every_subcommand_gets_a_page_and_completions_name_them() {
        let dir = std::env::temp_dir().join(format!("pcapd-man-{}", std::process::id()));
        let pages = write_man_pages(&dir).unwrap();
        let names: Vec<String> = pages
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        for expected in ["pcapd.1", "pcapd-serve.1", "pcapd-submit.1", "pcapd.cfg.5"] {
            assert!(
                names.iter().any(|n| n == expected),
                "{expected} in {names:?}"
            );
        }
        assert!(
            !names.iter().any(|n| n == "pcapd-worker.1"),
            "hidden worker"
        );
        let top = std::fs::read_to_string(dir.join("pcapd.1")).unwrap();
        assert!(top.contains("check\\-config"));
        std::fs::remove_dir_all(&dir).unwrap();
        for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
            let mut script = Vec::new();
            write_completions(shell, &mut script);
            let script = String::from_utf8(script).unwrap();
            assert!(script.contains("submit") && script.contains("ignore-checksums"));
        }
    }
}
