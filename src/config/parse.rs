//! INI text → raw section/key map → typed [`Config`], collecting every problem on the way.
//!
//! Phase one ([`read_raw`]) leaves the INI syntax to `configparser`, set up like Python's
//! `ConfigParser` that bui-monitor uses: `=` or `:` between key and value, `#`/`;` comment
//! lines, no inline comments (a `#` inside a password or a `;` inside a command line is part of
//! the value), section and key names case-insensitive. It sorts the sections into the known
//! ones and reports unknown sections and keys outside any section.
//!
//! Phase two ([`parse_config`]) reads each known key with the parser for its syntax
//! (`values.rs`), starting from the documented default; what a section holds beyond its keys
//! is reported with the list of valid keys. Then the rules that involve several keys or the
//! file system are checked. An empty value (`key =`) means "use the default", so the sample
//! config can list keys without values.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use configparser::ini::{Ini, IniDefault};

use super::embedded::{
    file_defaults, DEFAULT_CLAIM_AFTER, DEFAULT_CLUSTER_GROUP, DEFAULT_CLUSTER_HEARTBEAT,
    DEFAULT_CLUSTER_STREAM, DEFAULT_HTTP_PORT, DEFAULT_MAX_DELIVERIES, DEFAULT_METRICS_PORT,
    DEFAULT_SYSLOG_EXCLUDE, DEFAULT_SYSLOG_FACILITY, DEFAULT_SYSLOG_PREFIX,
    DEFAULT_SYSLOG_SEVERITY, SYSLOG_PORT, SYSLOG_TLS_PORT,
};
use crate::addr_range::AddrRange;

use super::keys::{self, SECTIONS};
use super::values::{
    is_env_name, parse_addr_range, parse_bool, parse_choice, parse_duration, parse_integer,
    parse_ip, parse_list, parse_listen_port, parse_min_free, parse_port, parse_size, ValueProblem,
};
use super::{
    default_state_dir, AnalysisSections, AnalyzerConfig, BackendKind, ClusterConfig, Config,
    ConfigError, ConfigErrors, DetectConfig, DetectorConfig, ExportMode, ExtractConfig,
    ExtractLayout, HttpConfig, LogFormat, MetricsConfig, Settings, SyslogConfig, SyslogFormat,
    SyslogFraming, SyslogProto, SyslogTimestamp, DETECTOR_PLACEHOLDERS, EXTRACT_SOURCES,
    FILE_HASHES,
};

/// The section name prefix of a detector: `[Detector clamav]`.
const DETECTOR_SECTION: &str = "Detector";

/// Where configparser files keys that come before any section header. A header cannot
/// produce this name by accident (it holds a NUL).
const BEFORE_ANY_SECTION: &str = "\u{0}before-any-section";

/// The placeholder a `[Command] command` must contain: the job's captures.
pub(crate) const PCAPS_PLACEHOLDER: &str = "{pcaps}";

/// Shown instead of the value of `password` in every message.
const HIDDEN_VALUE: &str = "<hidden>";

const BACKENDS: &[(&str, BackendKind)] = &[
    ("builtin", BackendKind::Builtin),
    ("zeek", BackendKind::Zeek),
    ("command", BackendKind::Command),
    ("burp", BackendKind::Burp),
];
const LOG_FORMATS: &[(&str, LogFormat)] = &[("tsv", LogFormat::Tsv), ("json", LogFormat::Json)];
const EXPORT_MODES: &[(&str, ExportMode)] =
    &[("copy", ExportMode::Copy), ("move", ExportMode::Move)];
const SYSLOG_PROTOS: &[(&str, SyslogProto)] = &[
    ("udp", SyslogProto::Udp),
    ("tcp", SyslogProto::Tcp),
    ("tls", SyslogProto::Tls),
];
const SYSLOG_FORMATS: &[(&str, SyslogFormat)] = &[
    ("rfc5424", SyslogFormat::Rfc5424),
    ("rfc3164", SyslogFormat::Rfc3164),
];
/// RFC 5424 §6.2.1 facilities by their usual names.
const SYSLOG_FACILITIES: &[(&str, u8)] = &[
    ("kern", 0),
    ("user", 1),
    ("mail", 2),
    ("daemon", 3),
    ("auth", 4),
    ("syslog", 5),
    ("lpr", 6),
    ("news", 7),
    ("uucp", 8),
    ("cron", 9),
    ("authpriv", 10),
    ("ftp", 11),
    ("local0", 16),
    ("local1", 17),
    ("local2", 18),
    ("local3", 19),
    ("local4", 20),
    ("local5", 21),
    ("local6", 22),
    ("local7", 23),
];
const SYSLOG_SEVERITIES: &[(&str, u8)] = &[
    ("emerg", 0),
    ("alert", 1),
    ("crit", 2),
    ("err", 3),
    ("warning", 4),
    ("notice", 5),
    ("info", 6),
    ("debug", 7),
];
const SYSLOG_TIMESTAMPS: &[(&str, SyslogTimestamp)] = &[
    ("send", SyslogTimestamp::Send),
    ("log", SyslogTimestamp::Log),
];
const SYSLOG_FRAMINGS: &[(&str, SyslogFraming)] = &[
    ("non-transparent", SyslogFraming::NonTransparent),
    ("octet-counting", SyslogFraming::OctetCounting),
];

/// The keys of one section as written: lowercased name → value (`None`: a line without `=`).
type RawEntries = BTreeMap<String, Option<String>>;

/// Phase one's result: the known sections present in the file, by canonical name.
pub(crate) struct RawConfig {
    sections: BTreeMap<&'static str, RawEntries>,
    /// `[Detector NAME]` sections by NAME, in file order of their names.
    detectors: BTreeMap<String, RawEntries>,
}

impl RawConfig {
    fn contains(&self, section: &str) -> bool {
        self.sections.contains_key(section)
    }

    /// The sections present and the values written, as the reload diff compares them.
    fn settings(&self) -> Settings {
        let mut settings = Settings::default();
        let detectors = self
            .detectors
            .iter()
            .map(|(name, entries)| (format!("{DETECTOR_SECTION} {name}"), entries));
        let sections = self.sections.iter().map(|(s, e)| (s.to_string(), e));
        for (section, entries) in sections.chain(detectors) {
            settings.add_section(&section);
            for (key, value) in entries {
                if let Some(value) = value {
                    settings.set(&section, key, value);
                }
            }
        }
        settings
    }

    /// The keys written in `section` (lowercased), for the sample-config test.
    #[cfg(test)]
    pub(crate) fn keys(&self, section: &str) -> Vec<String> {
        if section == DETECTOR_SECTION {
            return self
                .detectors
                .values()
                .flat_map(|entries| entries.keys().cloned())
                .collect();
        }
        self.sections
            .get(section)
            .map(|entries| entries.keys().cloned().collect())
            .unwrap_or_default()
    }
}

/// Phase one: INI syntax → known sections. Unknown sections and keys outside any section go to
/// `errors`; `None` when the text is not INI at all (nothing else can then be checked).
pub(crate) fn read_raw(
    text: &str,
    file: &Path,
    errors: &mut Vec<ConfigError>,
) -> Option<RawConfig> {
    let mut syntax = IniDefault::default();
    syntax.default_section = BEFORE_ANY_SECTION.to_string();
    syntax.enable_inline_comments = false;
    syntax.case_sensitive = false;
    syntax.multiline = false;
    let mut ini = Ini::new_from_defaults(syntax);
    let map = match ini.read(text.to_string()) {
        Ok(map) => map,
        Err(problem) => {
            errors.push(ConfigError::file_problem(
                file,
                format!("not an INI file: {problem}"),
            ));
            return None;
        }
    };
    report_duplicate_keys(text, file, errors);
    // HashMap order is random; sorting keeps messages in a stable order.
    let map: BTreeMap<String, RawEntries> = map
        .into_iter()
        .map(|(section, entries)| (section, entries.into_iter().collect()))
        .collect();

    let mut sections = BTreeMap::new();
    let mut detectors = BTreeMap::new();
    for (name, entries) in map {
        if let Some(detector) = detector_name(&name) {
            match detector {
                Ok(detector) => {
                    detectors.insert(detector, entries);
                }
                Err(problem) => errors.push(ConfigError {
                    section: Some(name),
                    problem,
                    valid: Some("[Detector NAME], NAME of letters, digits, _ and -".to_string()),
                    ..ConfigError::file_problem(file, "")
                }),
            }
            continue;
        }
        if name == BEFORE_ANY_SECTION {
            for (key, value) in &entries {
                errors.push(key_error(
                    file,
                    None,
                    key,
                    value.as_deref(),
                    "key before any [Section] header",
                    Some(section_names()),
                ));
            }
            continue;
        }
        match SECTIONS
            .iter()
            .find(|spec| spec.name.eq_ignore_ascii_case(&name))
        {
            Some(spec) => {
                sections.insert(spec.name, entries);
            }
            None => errors.push(ConfigError {
                section: Some(name),
                problem: "unknown section".to_string(),
                valid: Some(section_names()),
                ..ConfigError::file_problem(file, "")
            }),
        }
    }
    Some(RawConfig {
        sections,
        detectors,
    })
}

/// `Some` for a `[Detector …]` header: its NAME, or what is wrong with it.
fn detector_name(section: &str) -> Option<Result<String, String>> {
    let rest = section
        .strip_prefix(&DETECTOR_SECTION.to_ascii_lowercase())
        .filter(|rest| rest.is_empty() || rest.starts_with(char::is_whitespace))?;
    let name = rest.trim();
    let valid = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    Some(if valid {
        Ok(name.to_string())
    } else {
        Err("a detector section needs a NAME".to_string())
    })
}

/// configparser keeps the last of two settings of one key silently; Python's ConfigParser
/// (bui-monitor's) refuses them, and so does pcapd: the operator meant one of them. This walks
/// the lines with configparser's rules (whole-line comments, `=` or `:`, names lowercased) only
/// to find repeats and their line numbers.
fn report_duplicate_keys(text: &str, file: &Path, errors: &mut Vec<ConfigError>) {
    let mut section = BEFORE_ANY_SECTION.to_string();
    let mut first_seen: BTreeMap<(String, String), usize> = BTreeMap::new();
    for (index, line) in text.lines().enumerate() {
        let line_number = index + 1;
        let line = line.trim();
        if line.is_empty() || line.starts_with(['#', ';']) {
            continue;
        }
        if let Some(header) = line.strip_prefix('[') {
            let name = header.rfind(']').map_or(header, |end| &header[..end]);
            section = name.trim().to_lowercase();
            continue;
        }
        let key = line
            .find(['=', ':'])
            .map_or(line, |delimiter| &line[..delimiter])
            .trim()
            .to_lowercase();
        match first_seen.entry((section.clone(), key)) {
            std::collections::btree_map::Entry::Vacant(entry) => {
                entry.insert(line_number);
            }
            std::collections::btree_map::Entry::Occupied(entry) => {
                let (section, key) = entry.key();
                let shown_section = SECTIONS
                    .iter()
                    .find(|spec| spec.name.eq_ignore_ascii_case(section))
                    .map_or(section.as_str(), |spec| spec.name);
                let shown_section = (section != BEFORE_ANY_SECTION).then_some(shown_section);
                errors.push(key_error(
                    file,
                    shown_section,
                    key,
                    None,
                    format!("set twice (lines {} and {line_number})", entry.get()),
                    Some("each key once per section".to_string()),
                ));
            }
        }
    }
}

fn section_names() -> String {
    let names: Vec<String> = SECTIONS
        .iter()
        .map(|spec| format!("[{}]", spec.name))
        .collect();
    names.join(", ")
}

fn section_spec(name: &str) -> &'static keys::SectionDef {
    keys::section(name).expect("only names from SECTIONS are looked up")
}

/// An error about one key; the value of `password` is replaced so it never reaches a log.
fn key_error(
    file: &Path,
    section: Option<&str>,
    key: &str,
    value: Option<&str>,
    problem: impl Into<String>,
    valid: Option<String>,
) -> ConfigError {
    let value = value.map(|value| {
        if key == "password" {
            HIDDEN_VALUE.to_string()
        } else {
            value.to_string()
        }
    });
    ConfigError {
        file: file.to_path_buf(),
        section: section.map(str::to_string),
        key: Some(key.to_string()),
        value,
        problem: problem.into(),
        valid,
    }
}

/// Reads the keys of one section, each once, reporting bad values; what is left at
/// [`Section::finish`] is unknown.
struct Section<'a> {
    file: &'a Path,
    name: &'static str,
    /// The name errors give (`Detector clamav` for a detector's section).
    shown: String,
    entries: RawEntries,
    errors: &'a mut Vec<ConfigError>,
}

impl<'a> Section<'a> {
    fn new(
        raw: &mut RawConfig,
        name: &'static str,
        file: &'a Path,
        errors: &'a mut Vec<ConfigError>,
    ) -> Section<'a> {
        Section {
            file,
            name,
            shown: name.to_string(),
            entries: raw.sections.remove(name).unwrap_or_default(),
            errors,
        }
    }

    /// The section of detector `detector`.
    fn detector(
        detector: &str,
        entries: RawEntries,
        file: &'a Path,
        errors: &'a mut Vec<ConfigError>,
    ) -> Section<'a> {
        Section {
            file,
            name: DETECTOR_SECTION,
            shown: format!("{DETECTOR_SECTION} {detector}"),
            entries,
            errors,
        }
    }

    fn error(
        &mut self,
        key: &str,
        value: Option<&str>,
        problem: impl Into<String>,
        valid: Option<String>,
    ) {
        self.errors.push(key_error(
            self.file,
            Some(&self.shown),
            key,
            value,
            problem,
            valid,
        ));
    }

    /// The text of `key`, or `None` when absent or empty (= default).
    fn text(&mut self, key: &str) -> Option<String> {
        debug_assert!(
            section_spec(self.name).key(key).is_some(),
            "[{}] {key} is missing from SECTIONS",
            self.name
        );
        match self.entries.remove(key) {
            None => None,
            Some(None) => {
                self.error(key, None, "has no value", Some(format!("{key} = VALUE")));
                None
            }
            Some(Some(text)) if text.is_empty() => None,
            Some(Some(text)) => Some(text),
        }
    }

    /// `key` parsed by `parse`, or `default` when absent, empty or bad (bad is reported).
    fn value<T>(
        &mut self,
        key: &str,
        default: T,
        parse: impl FnOnce(&str) -> Result<T, ValueProblem>,
    ) -> T {
        let Some(text) = self.text(key) else {
            return default;
        };
        match parse(&text) {
            Ok(value) => value,
            Err(problem) => {
                self.error(key, Some(&text), problem.problem, Some(problem.valid));
                default
            }
        }
    }

    fn boolean(&mut self, key: &str, default: bool) -> bool {
        self.value(key, default, parse_bool)
    }

    fn port(&mut self, key: &str, default: u16) -> u16 {
        self.value(key, default, parse_port)
    }

    fn listen_port(&mut self, key: &str, default: u16) -> u16 {
        self.value(key, default, parse_listen_port)
    }

    fn ip(&mut self, key: &str, default: IpAddr) -> IpAddr {
        self.value(key, default, parse_ip)
    }

    fn choice<T: Copy>(&mut self, key: &str, default: T, choices: &[(&str, T)]) -> T {
        self.value(key, default, |text| parse_choice(text, choices))
    }

    /// A duration, zero allowed.
    fn duration(&mut self, key: &str, default: Duration) -> Duration {
        self.value(key, default, parse_duration)
    }

    /// A duration that must be more than zero (a deadline of zero would fail everything).
    fn positive_duration(&mut self, key: &str, default: Duration) -> Duration {
        self.value(key, default, |text| {
            let duration = parse_duration(text)?;
            if duration.is_zero() {
                return Err(ValueProblem::new(
                    "must be more than zero",
                    "e.g. 250ms, 30s, 5m",
                ));
            }
            Ok(duration)
        })
    }

    /// A size in bytes, at least `min`.
    fn size(&mut self, key: &str, default: u64, min: u64) -> u64 {
        self.value(key, default, |text| {
            let size = parse_size(text)?;
            if size < min {
                return Err(ValueProblem::new(
                    "too small",
                    format!("at least {min} bytes"),
                ));
            }
            Ok(size)
        })
    }

    fn integer(&mut self, key: &str, default: u64, min: u64, max: u64) -> u64 {
        self.value(key, default, |text| parse_integer(text, min, max))
    }

    fn count_u32(&mut self, key: &str, default: u32, min: u32) -> u32 {
        let value = self.integer(key, u64::from(default), u64::from(min), u64::from(u32::MAX));
        u32::try_from(value).unwrap_or(u32::MAX)
    }

    fn count_usize(&mut self, key: &str, default: usize, min: usize, max: usize) -> usize {
        let to_u64 = |n: usize| u64::try_from(n).unwrap_or(u64::MAX);
        let value = self.integer(key, to_u64(default), to_u64(min), to_u64(max));
        usize::try_from(value).unwrap_or(usize::MAX)
    }

    fn path(&mut self, key: &str) -> Option<PathBuf> {
        self.text(key).map(PathBuf::from)
    }

    /// A comma-separated list of addresses and CIDR ranges (empty when absent).
    fn addr_ranges(&mut self, key: &str) -> Vec<AddrRange> {
        self.value(key, Vec::new(), |text| {
            parse_list(text)
                .iter()
                .map(|item| parse_addr_range(item))
                .collect()
        })
    }

    fn list(&mut self, key: &str, default: Vec<String>) -> Vec<String> {
        self.value(key, default, |text| Ok(parse_list(text)))
    }

    /// Reports every key the section holds that pcapd does not know.
    fn finish(self) {
        let valid = section_spec(self.name).key_names();
        for (key, value) in &self.entries {
            self.errors.push(key_error(
                self.file,
                Some(&self.shown),
                key,
                value.as_deref(),
                "unknown key",
                Some(valid.clone()),
            ));
        }
    }
}

/// Both phases and the cross-key rules; `Err` holds every problem found.
pub(crate) fn parse_config(text: &str, file: &Path) -> Result<Config, ConfigErrors> {
    let mut errors = Vec::new();
    // Editors on some systems start UTF-8 files with a byte-order mark; it is not a key.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let Some(mut raw) = read_raw(text, file, &mut errors) else {
        return Err(ConfigErrors(errors));
    };
    let syslog_present = raw.contains("Syslog");
    let http_present = raw.contains("Http");
    let cluster_present = raw.contains("Cluster");
    let metrics_present = raw.contains("Metrics");

    let mut config = file_defaults(default_state_dir());
    config.source = Some(file.to_path_buf());
    config.settings = raw.settings();
    read_global(&mut config, &mut raw, file, &mut errors);
    read_worker(&mut config, &mut raw, file, &mut errors);
    read_backends(&mut config, &mut raw, file, &mut errors);
    read_outputs(&mut config, &mut raw, file, &mut errors);
    if syslog_present {
        config.syslog = Some(read_syslog(&mut raw, file, &mut errors));
    }
    if http_present {
        let mut http = Section::new(&mut raw, "Http", file, &mut errors);
        config.http = Some(HttpConfig {
            port: http.listen_port("port", DEFAULT_HTTP_PORT),
            bind: http.ip("bind", config.global.bind),
            ssl: http.boolean("ssl", config.global.ssl),
            metrics_auth: http.boolean("metrics_auth", true),
        });
        http.finish();
    }
    if metrics_present {
        let mut metrics = Section::new(&mut raw, "Metrics", file, &mut errors);
        config.metrics = Some(MetricsConfig {
            port: metrics.listen_port("port", DEFAULT_METRICS_PORT),
            bind: metrics.ip("bind", IpAddr::V4(Ipv4Addr::LOCALHOST)),
        });
        metrics.finish();
    }
    if cluster_present {
        config.cluster = Some(read_cluster(&mut raw, file, &mut errors));
    }
    {
        let mut jobs = Section::new(&mut raw, "Jobs", file, &mut errors);
        let defaults = config.jobs.clone();
        config.jobs.keep = jobs.duration("keep", defaults.keep);
        config.jobs.max_disk = jobs.size("max_disk", defaults.max_disk, 0);
        config.jobs.dedupe = jobs.boolean("dedupe", defaults.dedupe);
        jobs.finish();
    }
    config.extract = read_extract(&mut raw, file, &mut errors);
    config.detect = read_detect(&mut raw, file, &mut errors);
    config.analyzer = read_analyzer(&mut raw, file, &mut errors);

    check_rules(&config, file, &mut errors);
    if errors.is_empty() {
        Ok(config)
    } else {
        Err(ConfigErrors(errors))
    }
}

/// `[Extract]`, the detector sections and `[Analyzer]` of `text`, nothing else read.
pub(crate) fn parse_files_sections(
    text: &str,
    file: &Path,
) -> Result<AnalysisSections, ConfigErrors> {
    let mut errors = Vec::new();
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let Some(mut raw) = read_raw(text, file, &mut errors) else {
        return Err(ConfigErrors(errors));
    };
    let extract = read_extract(&mut raw, file, &mut errors);
    let detect = read_detect(&mut raw, file, &mut errors);
    let analyzer = read_analyzer(&mut raw, file, &mut errors);
    if errors.is_empty() {
        Ok(AnalysisSections {
            extract,
            detect,
            analyzer,
        })
    } else {
        Err(ConfigErrors(errors))
    }
}

fn read_analyzer(
    raw: &mut RawConfig,
    file: &Path,
    errors: &mut Vec<ConfigError>,
) -> AnalyzerConfig {
    let defaults = AnalyzerConfig::default();
    let mut section = Section::new(raw, "Analyzer", file, errors);
    let community_id = section.boolean("community_id", defaults.community_id);
    let seed = section.integer(
        "community_id_seed",
        u64::from(defaults.community_id_seed),
        0,
        u64::from(u16::MAX),
    );
    section.finish();
    AnalyzerConfig {
        community_id,
        community_id_seed: u16::try_from(seed).unwrap_or(defaults.community_id_seed),
    }
}

fn read_extract(raw: &mut RawConfig, file: &Path, errors: &mut Vec<ConfigError>) -> ExtractConfig {
    let mut section = Section::new(raw, "Extract", file, errors);
    let defaults = ExtractConfig::default();
    let mime = section.value("mime", defaults.mime.clone(), parse_mime_globs);
    let sources = section.value("sources", defaults.sources.clone(), parse_extract_sources);
    let extract = ExtractConfig {
        mime,
        sources,
        max_file: section.size("max_file", defaults.max_file, 1),
        max_total: section.size("max_total", defaults.max_total, 1),
        layout: section.choice(
            "layout",
            defaults.layout,
            &[("flat", ExtractLayout::Flat), ("mime", ExtractLayout::Mime)],
        ),
        hashes: section.value("hashes", defaults.hashes.clone(), parse_hashes),
    };
    section.finish();
    extract
}

/// `[Extract] hashes`: digest names, comma-separated, or `none`.
pub(crate) fn parse_hashes(text: &str) -> Result<Vec<String>, ValueProblem> {
    let names = parse_list(text);
    if names.len() == 1 && names[0].eq_ignore_ascii_case("none") {
        return Ok(Vec::new());
    }
    let mut hashes = Vec::new();
    for name in names {
        let lower = name.to_ascii_lowercase();
        if !FILE_HASHES.contains(&lower.as_str()) {
            return Err(ValueProblem::new(
                format!("unknown digest `{name}`"),
                "md5, sha1, sha256 (comma-separated), or none",
            ));
        }
        hashes.push(lower);
    }
    Ok(hashes)
}

fn read_detect(raw: &mut RawConfig, file: &Path, errors: &mut Vec<ConfigError>) -> DetectConfig {
    let defaults = DetectConfig::default();
    let mut section = Section::new(raw, "Detect", file, errors);
    let timeout = section.positive_duration("timeout", defaults.timeout);
    let max_output = section.size("max_output", defaults.max_output, 1);
    section.finish();
    let mut detectors = Vec::new();
    for (name, entries) in std::mem::take(&mut raw.detectors) {
        let mut section = Section::detector(&name, entries, file, errors);
        let mime = section.value("mime", vec!["*".to_string()], parse_mime_globs);
        let command_given = section.entries.contains_key("command");
        let command = section.value("command", None, |text| {
            check_placeholders(text).map(|()| Some(text.to_string()))
        });
        let hit_exit = section.value("hit_exit", None, |text| {
            parse_integer(text, 1, 255).map(|n| Some(n as i32))
        });
        let hit_output = section.boolean("hit_output", false);
        if !command_given {
            section.error(
                "command",
                None,
                "is required",
                Some("the command run on each file, with {file}, {mime}, {fuid}".to_string()),
            );
        }
        if hit_exit.is_none() && !hit_output {
            section.error(
                "hit_exit",
                None,
                "a detector needs hit_exit or hit_output = true",
                Some(
                    "hit_exit = STATUS (e.g. 1 for clamscan) or hit_output = true (yara)"
                        .to_string(),
                ),
            );
        }
        section.finish();
        if let Some(command) = command {
            detectors.push(DetectorConfig {
                name,
                mime,
                command,
                hit_exit,
                hit_output,
            });
        }
    }
    DetectConfig {
        timeout,
        max_output,
        detectors,
    }
}

/// A detector's command may name only `{file}`, `{mime}` and `{fuid}`.
fn check_placeholders(command: &str) -> Result<(), ValueProblem> {
    let mut rest = command;
    while let Some(open) = rest.find('{') {
        let after = &rest[open + 1..];
        let Some(close) = after.find('}') else {
            break;
        };
        let name = &after[..close];
        let word = !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
        if word && !DETECTOR_PLACEHOLDERS.contains(&name) {
            return Err(ValueProblem::new(
                format!("unknown placeholder {{{name}}}"),
                "{file}, {mime}, {fuid}",
            ));
        }
        rest = &after[close + 1..];
    }
    Ok(())
}

/// `[Extract] mime`: a comma-separated list of MIME type globs.
pub(crate) fn parse_mime_globs(text: &str) -> Result<Vec<String>, ValueProblem> {
    let globs = parse_list(text);
    match globs.iter().find(|g| !valid_mime_glob(g)) {
        Some(bad) => Err(ValueProblem::new(
            format!("`{bad}` is not a MIME type glob"),
            "MIME types or globs such as application/pdf, application/*, * (comma-separated)",
        )),
        None => Ok(globs),
    }
}

/// `[Extract] sources`: a comma-separated list of known sources, any case.
pub(crate) fn parse_extract_sources(text: &str) -> Result<Vec<String>, ValueProblem> {
    let mut sources = Vec::new();
    for item in parse_list(text) {
        let Some(known) = EXTRACT_SOURCES
            .iter()
            .find(|s| s.eq_ignore_ascii_case(&item))
        else {
            return Err(ValueProblem::new(
                format!("unknown source `{item}`"),
                EXTRACT_SOURCES.join(", "),
            ));
        };
        sources.push(known.to_string());
    }
    Ok(sources)
}

/// A MIME type glob: `*`, or type and subtype of token characters where `*` may stand for any
/// run of them.
pub(crate) fn valid_mime_glob(glob: &str) -> bool {
    let token = |part: &str| {
        !part.is_empty()
            && part
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$&^_.+-*".contains(&b))
    };
    glob == "*"
        || glob
            .split_once('/')
            .is_some_and(|(t, s)| token(t) && token(s))
}

fn read_global(
    config: &mut Config,
    raw: &mut RawConfig,
    file: &Path,
    errors: &mut Vec<ConfigError>,
) {
    let mut section = Section::new(raw, "Global", file, errors);
    let global = &mut config.global;
    global.port = section.listen_port("port", global.port);
    global.bind = section.ip("bind", global.bind);
    global.pool = section.count_usize("pool", global.pool, 1, 4096);
    global.ssl = section.boolean("ssl", global.ssl);
    global.sslcert = section.path("sslcert");
    global.sslkey = section.path("sslkey");
    global.password = section.text("password");
    global.password_file = section.path("password_file");
    global.backend = section.choice("backend", global.backend, BACKENDS);
    if let Some(state_dir) = section.path("state_dir") {
        global.state_dir = state_dir;
    }
    global.jobs_dir = section
        .path("jobs_dir")
        .unwrap_or_else(|| global.state_dir.join("jobs"));
    global.spool_dir = section.path("spool_dir");
    global.max_connections =
        section.count_usize("max_connections", global.max_connections, 1, usize::MAX);
    global.max_queue = section.count_usize("max_queue", global.max_queue, 1, usize::MAX);
    // A request frame must hold at least a small JSON object with a password.
    global.max_request = section.size("max_request", global.max_request, 1024);
    global.max_chunk = section.size("max_chunk", global.max_chunk, 1024);
    global.max_upload = section.size("max_upload", global.max_upload, 1);
    global.handshake_timeout =
        section.positive_duration("handshake_timeout", global.handshake_timeout);
    global.login_timeout = section.positive_duration("login_timeout", global.login_timeout);
    global.request_timeout = section.positive_duration("request_timeout", global.request_timeout);
    global.idle_timeout = section.positive_duration("idle_timeout", global.idle_timeout);
    global.auth_delay = section.duration("auth_delay", global.auth_delay);
    global.auth_exempt = section.addr_ranges("auth_exempt");
    global.min_free = section.value("min_free", global.min_free, parse_min_free);
    section.finish();
}

fn read_worker(
    config: &mut Config,
    raw: &mut RawConfig,
    file: &Path,
    errors: &mut Vec<ConfigError>,
) {
    let mut section = Section::new(raw, "Worker", file, errors);
    let worker = &mut config.worker;
    worker.timeout = section.positive_duration("timeout", worker.timeout);
    worker.timeout_per_gb = section.duration("timeout_per_gb", worker.timeout_per_gb);
    worker.grace = section.duration("grace", worker.grace);
    worker.retries = section.count_u32("retries", worker.retries, 0);
    worker.max_jobs = section.integer("max_jobs", worker.max_jobs, 0, u64::MAX);
    worker.recycle_memory = section.size("recycle_memory", worker.recycle_memory, 0);
    worker.memory_limit = section.size("memory_limit", worker.memory_limit, 0);
    let env = section.list("env", worker.env.clone());
    let bad_names: Vec<&str> = env
        .iter()
        .map(String::as_str)
        .filter(|name| !is_env_name(name))
        .collect();
    if bad_names.is_empty() {
        worker.env = env;
    } else {
        let joined = env.join(", ");
        section.error(
            "env",
            Some(&joined),
            format!("not environment variable names: {}", bad_names.join(", ")),
            Some("names of letters, digits and _, separated by commas or spaces".to_string()),
        );
    }
    worker.user = section.text("user");
    worker.group = section.text("group");
    worker.max_restarts = section.count_u32("max_restarts", worker.max_restarts, 1);
    worker.restart_window = section.positive_duration("restart_window", worker.restart_window);
    // A worker's result line lists its logs and warnings; less than this cannot hold one.
    let max_line = section.size("max_line", worker.max_line as u64, 1024);
    worker.max_line = usize::try_from(max_line).unwrap_or(usize::MAX);
    worker.start_timeout = section.positive_duration("start_timeout", worker.start_timeout);
    worker.backoff_max = section.positive_duration("backoff_max", worker.backoff_max);
    section.finish();
}

/// `[Burp]`, `[Zeek]` and `[Command]`: how each analyzer is started.
fn read_backends(
    config: &mut Config,
    raw: &mut RawConfig,
    file: &Path,
    errors: &mut Vec<ConfigError>,
) {
    let mut burp = Section::new(raw, "Burp", file, errors);
    if let Some(burpbin) = burp.path("burpbin") {
        config.burp.burpbin = burpbin;
    }
    if let Some(bconfcli) = burp.path("bconfcli") {
        config.burp.bconfcli = bconfcli;
    }
    config.burp.timeout = burp.positive_duration("timeout", config.burp.timeout);
    burp.finish();

    let mut zeek = Section::new(raw, "Zeek", file, errors);
    if let Some(zeekbin) = zeek.path("zeekbin") {
        config.zeek.zeekbin = zeekbin;
    }
    config.zeek.scripts = zeek.list("scripts", Vec::new());
    config.zeek.args = zeek.list("args", Vec::new());
    zeek.finish();

    let mut command = Section::new(raw, "Command", file, errors);
    config.command.command = command.text("command");
    command.finish();
}

fn read_outputs(
    config: &mut Config,
    raw: &mut RawConfig,
    file: &Path,
    errors: &mut Vec<ConfigError>,
) {
    let mut section = Section::new(raw, "Output", file, errors);
    let output = &mut config.output;
    output.format = section.choice("format", output.format, LOG_FORMATS);
    output.export_dir = section.path("export_dir");
    output.export_mode = section.choice("export_mode", output.export_mode, EXPORT_MODES);
    output.export_files = section.boolean("export_files", output.export_files);
    section.finish();
}

fn read_syslog(raw: &mut RawConfig, file: &Path, errors: &mut Vec<ConfigError>) -> SyslogConfig {
    let mut section = Section::new(raw, "Syslog", file, errors);
    let host = section.text("host");
    if host.is_none() {
        section.error(
            "host",
            None,
            "required when [Syslog] is present",
            Some("host = NAME or ADDRESS".to_string()),
        );
    }
    let proto = section.choice("proto", SyslogProto::Udp, SYSLOG_PROTOS);
    let (default_port, default_framing) = match proto {
        SyslogProto::Udp | SyslogProto::Tcp => (SYSLOG_PORT, SyslogFraming::NonTransparent),
        // RFC 5425 makes octet counting the framing of syslog over TLS.
        SyslogProto::Tls => (SYSLOG_TLS_PORT, SyslogFraming::OctetCounting),
    };
    let port = section.port("port", default_port);
    let format = section.choice("format", SyslogFormat::Rfc5424, SYSLOG_FORMATS);
    let framing = section.choice("framing", default_framing, SYSLOG_FRAMINGS);
    let prefix = section
        .text("prefix")
        .unwrap_or_else(|| DEFAULT_SYSLOG_PREFIX.to_string());
    let default_exclude = DEFAULT_SYSLOG_EXCLUDE
        .iter()
        .map(|name| name.to_string())
        .collect();
    // Brocapi's blacklist named files (`reporter.log`); pcapd matches log names.
    let exclude = section
        .list("exclude", default_exclude)
        .into_iter()
        .map(|name| {
            name.strip_suffix(".log")
                .map(str::to_string)
                .unwrap_or(name)
        })
        .collect();
    let ca = section.path("ca");
    let facility = section.choice("facility", DEFAULT_SYSLOG_FACILITY, SYSLOG_FACILITIES);
    let severity = section.choice("severity", DEFAULT_SYSLOG_SEVERITY, SYSLOG_SEVERITIES);
    let hostname = section.text("hostname");
    if let Some(name) = &hostname {
        if crate::jobs::validate_tag(name).is_err() {
            section.error(
                "hostname",
                Some(name),
                "must be 1 to 64 printable ASCII characters without spaces (it is a syslog HOSTNAME)",
                None,
            );
        }
    }
    let timestamp = section.choice("timestamp", SyslogTimestamp::Send, SYSLOG_TIMESTAMPS);
    section.finish();
    SyslogConfig {
        facility,
        severity,
        hostname,
        timestamp,
        host: host.unwrap_or_default(),
        port,
        proto,
        format,
        framing,
        prefix,
        exclude,
        ca,
    }
}

fn read_cluster(raw: &mut RawConfig, file: &Path, errors: &mut Vec<ConfigError>) -> ClusterConfig {
    let mut section = Section::new(raw, "Cluster", file, errors);
    let redis = section.text("redis");
    match &redis {
        None => section.error(
            "redis",
            None,
            "required when [Cluster] is present",
            Some("redis = redis://HOST:PORT/ or rediss://HOST:PORT/".to_string()),
        ),
        Some(url) if !(url.starts_with("redis://") || url.starts_with("rediss://")) => section
            .error(
                "redis",
                Some(url),
                "not a Redis URL",
                Some("redis://HOST:PORT/DB or rediss://HOST:PORT/DB (TLS)".to_string()),
            ),
        Some(_) => {}
    }
    let password_file = section.path("password_file");
    let stream = section
        .text("stream")
        .unwrap_or_else(|| DEFAULT_CLUSTER_STREAM.to_string());
    let group = section
        .text("group")
        .unwrap_or_else(|| DEFAULT_CLUSTER_GROUP.to_string());
    let node = section.text("node");
    if let Some(name) = &node {
        if crate::jobs::validate_tag(name).is_err() {
            section.error(
                "node",
                Some(name),
                "must be 1 to 64 printable ASCII characters without spaces",
                None,
            );
        }
    }
    let claim_after = section.positive_duration("claim_after", DEFAULT_CLAIM_AFTER);
    let heartbeat = section.positive_duration("heartbeat", DEFAULT_CLUSTER_HEARTBEAT);
    if heartbeat * 2 > claim_after {
        section.error(
            "heartbeat",
            Some(&format!("{heartbeat:?}")),
            "must be at most half of claim_after, or a live host's jobs would be claimed",
            Some(format!("at most {:?}", claim_after / 2)),
        );
    }
    let max_deliveries = section.count_u32("max_deliveries", DEFAULT_MAX_DELIVERIES, 1);
    section.finish();
    ClusterConfig {
        redis: redis.unwrap_or_default(),
        password_file,
        stream,
        group,
        node,
        claim_after,
        heartbeat,
        max_deliveries,
    }
}

/// The rules that involve several keys or the file system.
fn check_rules(config: &Config, file: &Path, errors: &mut Vec<ConfigError>) {
    let global = &config.global;
    let mut error =
        |section: &str, key: &str, value: Option<&str>, problem: &str, valid: Option<&str>| {
            errors.push(key_error(
                file,
                Some(section),
                key,
                value,
                problem,
                valid.map(str::to_string),
            ));
        };

    let http_ssl = config.http.as_ref().is_some_and(|http| http.ssl);
    if global.ssl || http_ssl {
        let why = if global.ssl {
            "required when ssl = true"
        } else {
            "required when [Http] ssl = true"
        };
        for (key, path) in [("sslcert", &global.sslcert), ("sslkey", &global.sslkey)] {
            match path {
                None => error("Global", key, None, why, Some("the path of a PEM file")),
                Some(path) => {
                    if let Err(problem) = readable_file(path) {
                        error("Global", key, Some(&path.to_string_lossy()), &problem, None);
                    }
                }
            }
        }
    }

    match (&global.password, &global.password_file) {
        (Some(_), Some(path)) => error(
            "Global",
            "password_file",
            Some(&path.to_string_lossy()),
            "set either password or password_file, not both",
            None,
        ),
        (None, None) => error(
            "Global",
            "password",
            None,
            "a password is required",
            Some("password = SECRET, or password_file = FILE whose first line is the password"),
        ),
        (None, Some(path)) => {
            if let Err(problem) = read_password_file(path) {
                error(
                    "Global",
                    "password_file",
                    Some(&path.to_string_lossy()),
                    &problem,
                    None,
                );
            }
        }
        (Some(_), None) => {}
    }

    if let Some(spool_dir) = &global.spool_dir {
        if !spool_dir.is_dir() {
            error(
                "Global",
                "spool_dir",
                Some(&spool_dir.to_string_lossy()),
                "not an existing directory",
                None,
            );
        }
    }

    match &config.command.command {
        Some(command) if !command.contains(PCAPS_PLACEHOLDER) => error(
            "Command",
            "command",
            Some(command),
            "does not contain {pcaps}",
            Some("a shell command line with {pcaps} (the captures) and optionally {out} (the log directory)"),
        ),
        None if global.backend == BackendKind::Command => error(
            "Command",
            "command",
            None,
            "required when backend = command",
            Some("a shell command line with {pcaps} (the captures) and optionally {out} (the log directory)"),
        ),
        _ => {}
    }

    if let Some(user) = &config.worker.user {
        if let Err(problem) = account_exists(user, |name| {
            nix::unistd::User::from_name(name).map(|user| user.is_some())
        }) {
            error(
                "Worker",
                "user",
                Some(user),
                &problem,
                Some("a user name or numeric uid"),
            );
        }
    }
    if let Some(group) = &config.worker.group {
        if let Err(problem) = account_exists(group, |name| {
            nix::unistd::Group::from_name(name).map(|group| group.is_some())
        }) {
            error(
                "Worker",
                "group",
                Some(group),
                &problem,
                Some("a group name or numeric gid"),
            );
        }
    }

    if let Some(syslog) = &config.syslog {
        if syslog.proto == SyslogProto::Tls {
            match &syslog.ca {
                None => error(
                    "Syslog",
                    "ca",
                    None,
                    "required when proto = tls",
                    Some("the PEM file of the CA that signed the syslog server's certificate"),
                ),
                Some(ca) => {
                    if let Err(problem) = readable_file(ca) {
                        error("Syslog", "ca", Some(&ca.to_string_lossy()), &problem, None);
                    }
                }
            }
        }
    }

    if let Some(path) = config
        .cluster
        .as_ref()
        .and_then(|c| c.password_file.as_ref())
    {
        if let Err(problem) = readable_file(path) {
            error(
                "Cluster",
                "password_file",
                Some(&path.to_string_lossy()),
                &problem,
                None,
            );
        }
    }

    // Listeners on overlapping addresses need ports of their own (0: any free port).
    let mut listeners = vec![("Global", global.bind, global.port)];
    if let Some(http) = &config.http {
        listeners.push(("Http", http.bind, http.port));
    }
    if let Some(metrics) = &config.metrics {
        listeners.push(("Metrics", metrics.bind, metrics.port));
    }
    for (index, &(section, bind, port)) in listeners.iter().enumerate() {
        let clash = listeners[..index]
            .iter()
            .find(|&&(_, other_bind, other_port)| {
                let overlapping =
                    bind == other_bind || bind.is_unspecified() || other_bind.is_unspecified();
                port == other_port && port != 0 && overlapping
            });
        if let Some((other, _, _)) = clash {
            error(
                section,
                "port",
                Some(&port.to_string()),
                &format!("the same port as [{other}] port"),
                Some("a port no other listener uses"),
            );
        }
    }
}

/// `Err` says why `path` cannot serve as an input file.
fn readable_file(path: &Path) -> Result<(), String> {
    let file = std::fs::File::open(path).map_err(|error| format!("cannot read: {error}"))?;
    let metadata = file
        .metadata()
        .map_err(|error| format!("cannot read: {error}"))?;
    if !metadata.is_file() {
        return Err("not a regular file".to_string());
    }
    Ok(())
}

/// Numeric ids are taken as they are; names must exist in the account database.
fn account_exists(
    name: &str,
    lookup: impl FnOnce(&str) -> nix::Result<bool>,
) -> Result<(), String> {
    if name.parse::<u32>().is_ok() {
        return Ok(());
    }
    match lookup(name) {
        Ok(true) => Ok(()),
        Ok(false) => Err("no such account".to_string()),
        Err(errno) => Err(format!("cannot look up: {errno}")),
    }
}

/// The first line of a password file, without its line ending; `Err` says what is wrong.
fn read_password_file(path: &Path) -> Result<String, String> {
    let text = std::fs::read_to_string(path).map_err(|error| format!("cannot read: {error}"))?;
    match text.lines().next() {
        Some(line) if !line.is_empty() => Ok(line.to_string()),
        _ => Err("the first line (the password) is empty".to_string()),
    }
}

/// [`Config::password`]: the inline password, or the first line of `password_file` read now.
pub(crate) fn read_password(config: &Config) -> Result<String, ConfigError> {
    if let Some(password) = &config.global.password {
        return Ok(password.clone());
    }
    match &config.global.password_file {
        Some(path) => read_password_file(path).map_err(|problem| ConfigError {
            file: path.clone(),
            section: Some("Global".to_string()),
            key: Some("password_file".to_string()),
            value: Some(path.to_string_lossy().into_owned()),
            problem,
            valid: None,
        }),
        None => Err(ConfigError {
            file: config
                .source
                .clone()
                .unwrap_or_else(|| PathBuf::from("<embedded defaults>")),
            section: Some("Global".to_string()),
            key: Some("password".to_string()),
            value: None,
            problem: "no password configured".to_string(),
            valid: Some("password = SECRET or password_file = FILE".to_string()),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::test_support::TestDir;
    use std::collections::BTreeSet;

    const SAMPLE: &str = include_str!("../../share/pcapd/etc/pcapd.sample.cfg");
    const BUI_MONITOR_DOC: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../shared/seeds/000_7ac13200805701bb.txt"
    );
    const FILE: &str = "/etc/pcapd/test.cfg";

    fn parse(text: &str) -> Result<Config, ConfigErrors> {
        parse_config(text, Path::new(FILE))
    }

    fn errors_of(text: &str) -> Vec<ConfigError> {
        match parse(text) {
            Ok(_) => panic!("expected errors for:\n{text}"),
            Err(errors) => errors.0,
        }
    }

    /// (section, key) of each error, for asserting which problems were found.
    fn locations(errors: &[ConfigError]) -> Vec<(String, String)> {
        errors
            .iter()
            .map(|error| {
                (
                    error.section.clone().unwrap_or_default(),
                    error.key.clone().unwrap_or_default(),
                )
            })
            .collect()
    }

    fn location(section: &str, key: &str) -> (String, String) {
        (section.to_string(), key.to_string())
    }

    /// The smallest valid file: no TLS, an inline password.
    const MINIMAL: &str = "[Global]\nssl = false\npassword = s3cret\n";

    #[test]
    fn a_minimal_file_gets_every_documented_default() {
        let config = parse(MINIMAL).unwrap();
        let defaults = file_defaults(default_state_dir());
        assert_eq!(config.source, Some(PathBuf::from(FILE)));
        assert_eq!(config.global.port, 11111);
        assert_eq!(config.global.bind, "::1".parse::<IpAddr>().unwrap());
        assert_eq!(config.global.pool, defaults.global.pool);
        assert!(!config.global.ssl);
        assert_eq!(config.global.backend, BackendKind::Builtin);
        assert_eq!(config.global.jobs_dir, config.global.state_dir.join("jobs"));
        assert_eq!(config.global.max_request, 1 << 20);
        assert_eq!(config.global.max_upload, 4 << 30);
        assert_eq!(config.global.idle_timeout, Duration::from_secs(300));
        assert_eq!(config.worker.timeout, Duration::from_secs(600));
        assert_eq!(config.worker.env, ["PATH", "LANG", "LC_ALL", "TZ"]);
        assert_eq!(config.worker.max_line, 64 * 1024);
        assert_eq!(config.burp.timeout, Duration::from_secs(15));
        assert_eq!(config.burp.burpbin, PathBuf::from("/usr/sbin/burp"));
        assert_eq!(config.zeek.zeekbin, PathBuf::from("zeek"));
        assert_eq!(config.output.format, LogFormat::Tsv);
        assert_eq!(config.output.export_mode, ExportMode::Copy);
        assert_eq!(config.jobs.keep, Duration::from_secs(7 * 86400));
        assert!(config.syslog.is_none());
        assert!(config.http.is_none());
        assert_eq!(config.password().unwrap(), "s3cret");
    }

    #[test]
    fn values_of_every_syntax_are_read() {
        let config = parse(
            "[Global]\nssl = off\npassword = x\nport = 2000\nbind = 0.0.0.0\npool = 3\n\
             backend = ZEEK\nstate_dir = /srv/pcapd\nmax_upload = 1.5G\nauth_delay = 250ms\nauth_exempt = 10.0.0.0/8, ::1\n\
             [Worker]\ntimeout = 2h\nenv = PATH HOME, TZ\nretries = 2\nmemory_limit = 512M\n\
             [Zeek]\nscripts = local hash-all-files\n\
             [Output]\nformat = json\nexport_mode = move\nexport_dir = /srv/export\n\
             [Jobs]\nkeep = 0\ndedupe = yes\nmax_disk = 10G\n\
             [Analyzer]\ncommunity_id = no\ncommunity_id_seed = 65535\n",
        )
        .unwrap();
        assert!(!config.analyzer.community_id);
        assert_eq!(config.analyzer.community_id_seed, 65535);
        assert_eq!(config.analyzer.community_id(), None);
        assert_eq!(config.global.port, 2000);
        assert_eq!(config.global.bind, "0.0.0.0".parse::<IpAddr>().unwrap());
        assert_eq!(config.global.pool, 3);
        assert_eq!(config.global.backend, BackendKind::Zeek);
        assert_eq!(config.global.jobs_dir, PathBuf::from("/srv/pcapd/jobs"));
        assert_eq!(config.global.max_upload, 3 << 29);
        assert_eq!(config.global.auth_delay, Duration::from_millis(250));
        assert_eq!(
            config
                .global
                .auth_exempt
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>(),
            ["10.0.0.0/8", "::1/128"]
        );
        assert_eq!(config.worker.timeout, Duration::from_secs(7200));
        assert_eq!(config.worker.env, ["PATH", "HOME", "TZ"]);
        assert_eq!(config.worker.retries, 2);
        assert_eq!(config.worker.memory_limit, 512 << 20);
        assert_eq!(config.zeek.scripts, ["local", "hash-all-files"]);
        assert_eq!(config.output.format, LogFormat::Json);
        assert_eq!(config.output.export_mode, ExportMode::Move);
        assert_eq!(config.output.export_dir, Some(PathBuf::from("/srv/export")));
        assert_eq!(config.jobs.keep, Duration::ZERO);
        assert!(config.jobs.dedupe);
        assert_eq!(config.jobs.max_disk, 10 << 30);
    }

    #[test]
    fn section_and_key_names_are_case_insensitive() {
        let config =
            parse("[GLOBAL]\nSSL = False\nPassword = x\nPort = 1234\n[burp]\nTimeout = 30\n")
                .unwrap();
        assert_eq!(config.global.port, 1234);
        assert!(!config.global.ssl);
        assert_eq!(config.burp.timeout, Duration::from_secs(30));
    }

    #[test]
    fn a_byte_order_mark_is_ignored() {
        let config = parse("\u{feff}[Global]\nssl = false\npassword = x\n").unwrap();
        assert!(!config.global.ssl);
    }

    #[test]
    fn comment_characters_inside_values_are_kept() {
        let config =
            parse("[Global]\nssl = 0\npassword = pa#ss;word\n# a comment\n; another\n").unwrap();
        assert_eq!(config.password().unwrap(), "pa#ss;word");
    }

    #[test]
    fn an_unknown_key_is_an_error_listing_the_valid_keys() {
        let errors =
            errors_of("[Global]\nssl = false\npassword = x\nprot = 1\n[Burp]\nbin = /bin/burp\n");
        assert_eq!(
            locations(&errors),
            [location("Global", "prot"), location("Burp", "bin")]
        );
        assert_eq!(errors[0].problem, "unknown key");
        assert_eq!(errors[0].value.as_deref(), Some("1"));
        let valid = errors[0].valid.as_deref().unwrap();
        assert!(valid.starts_with("port, bind, pool, ssl"), "{valid}");
        assert_eq!(
            errors[1].valid.as_deref(),
            Some("burpbin, bconfcli, timeout")
        );
        assert_eq!(
            errors[1].to_string(),
            format!(
                "{FILE}: [Burp] bin = /bin/burp: unknown key (valid: burpbin, bconfcli, timeout)"
            )
        );
    }

    #[test]
    fn an_unknown_section_and_keys_outside_sections_are_errors() {
        let errors =
            errors_of("port = 1\n[Global]\nssl = false\npassword = x\n[Monitor]\npool = 2\n");
        assert_eq!(
            locations(&errors),
            [location("", "port"), location("monitor", "")]
        );
        assert_eq!(errors[0].problem, "key before any [Section] header");
        assert_eq!(errors[1].problem, "unknown section");
        assert!(errors[1]
            .valid
            .as_deref()
            .unwrap()
            .contains("[Global], [Worker], [Burp]"));
        assert_eq!(
            errors[1].to_string(),
            format!(
                "{FILE}: [monitor]: unknown section (valid: [Global], [Worker], [Burp], [Zeek], \
                 [Command], [Output], [Syslog], [Http], [Metrics], [Cluster], [Jobs], [Analyzer], [Extract], [Detect], [Detector])"
            )
        );
    }

    #[test]
    fn every_error_is_collected_and_reported() {
        let errors = errors_of(
            "[Global]\nport = 70000\nssl = maybe\npool = 0\nmax_request = lots\n\
             [Worker]\ntimeout = 10 parsecs\nenv = PATH, BAD-NAME\n\
             [Output]\nformat = xml\n[Jobs]\nkeep = -1\n",
        );
        assert_eq!(
            locations(&errors),
            [
                location("Global", "port"),
                location("Global", "pool"),
                location("Global", "ssl"),
                location("Global", "max_request"),
                location("Worker", "timeout"),
                location("Worker", "env"),
                location("Output", "format"),
                location("Jobs", "keep"),
                // A bad value leaves the default (ssl = true), which needs a certificate.
                location("Global", "sslcert"),
                location("Global", "sslkey"),
                location("Global", "password"),
            ]
        );
        let text = ConfigErrors(errors).to_string();
        assert_eq!(text.lines().count(), 11, "{text}");
        assert!(text.lines().all(|line| line.starts_with(FILE)), "{text}");
    }

    #[test]
    fn bad_values_name_file_section_key_value_and_what_is_valid() {
        let errors = errors_of(
            "[Global]\nssl = false\npassword = x\nidle_timeout = 0\n\
             [Worker]\ngrace = soon\nrecycle_memory = 2X\ndedupe = 1\n\
             [Jobs]\ndedupe = perhaps\n",
        );
        let lines: Vec<String> = errors.iter().map(ToString::to_string).collect();
        assert_eq!(
            lines,
            [
                format!("{FILE}: [Global] idle_timeout = 0: must be more than zero (valid: e.g. 250ms, 30s, 5m)"),
                format!("{FILE}: [Worker] grace = soon: not a duration (valid: {})", super::super::values::DURATION_VALID),
                format!("{FILE}: [Worker] recycle_memory = 2X: unknown size unit `x` (valid: {})", super::super::values::SIZE_VALID),
                format!("{FILE}: [Worker] dedupe = 1: unknown key (valid: {})", section_spec("Worker").key_names()),
                format!("{FILE}: [Jobs] dedupe = perhaps: not a boolean (valid: true/false, yes/no, on/off, 1/0)"),
            ]
        );
    }

    #[test]
    fn enum_values_list_the_valid_choices() {
        let errors = errors_of("[Global]\nssl = false\npassword = x\nbackend = suricata\n");
        assert_eq!(
            errors[0].to_string(),
            format!("{FILE}: [Global] backend = suricata: unknown value (valid: builtin, zeek, command, burp)")
        );
    }

    #[test]
    fn a_line_without_a_value_and_broken_syntax_are_errors() {
        let errors = errors_of("[Global]\nssl = false\npassword = x\npool\n");
        assert_eq!(locations(&errors), [location("Global", "pool")]);
        assert_eq!(errors[0].problem, "has no value");

        let errors = errors_of("[Global\nport = 1\n");
        assert_eq!(errors.len(), 1);
        assert!(
            errors[0].problem.starts_with("not an INI file"),
            "{}",
            errors[0]
        );
        assert_eq!(errors[0].section, None);
    }

    #[test]
    fn a_key_set_twice_is_an_error_naming_both_lines() {
        let errors =
            errors_of("[Global]\nssl = false\npassword = x\nPort = 1\n[Jobs]\n[global]\nport: 2\n");
        assert_eq!(locations(&errors), [location("Global", "port")]);
        assert_eq!(errors[0].problem, "set twice (lines 4 and 7)");
    }

    #[test]
    fn empty_values_mean_the_default() {
        let config =
            parse("[Global]\nssl = false\npassword = x\nport =\npool =\nspool_dir =\n").unwrap();
        assert_eq!(config.global.port, 11111);
        assert_eq!(config.global.spool_dir, None);
    }

    #[test]
    fn ssl_needs_readable_certificate_and_key_files() {
        let errors = errors_of("[Global]\npassword = x\n");
        assert_eq!(
            locations(&errors),
            [location("Global", "sslcert"), location("Global", "sslkey")]
        );
        assert_eq!(errors[0].problem, "required when ssl = true");

        let dir = TestDir::new("missing-cert");
        let key = dir.file("key.pem", "not checked for PEM here", 0o600);
        let missing = dir.path().join("cert.pem");
        let text = format!(
            "[Global]\npassword = x\nsslcert = {}\nsslkey = {}\n",
            missing.display(),
            key.display()
        );
        let errors = errors_of(&text);
        assert_eq!(locations(&errors), [location("Global", "sslcert")]);
        assert_eq!(
            errors[0].value.as_deref(),
            Some(&*missing.to_string_lossy())
        );
        assert!(
            errors[0].problem.starts_with("cannot read: "),
            "{}",
            errors[0]
        );

        let text = format!(
            "[Global]\npassword = x\nsslcert = {}\nsslkey = {}\n",
            dir.path().display(),
            key.display()
        );
        let errors = errors_of(&text);
        assert_eq!(errors[0].problem, "not a regular file");

        let cert = dir.file("cert.pem", "x", 0o644);
        let text = format!(
            "[Global]\npassword = x\nsslcert = {}\nsslkey = {}\n",
            cert.display(),
            key.display()
        );
        let config = parse(&text).unwrap();
        assert_eq!(config.global.sslcert, Some(cert));
    }

    #[test]
    fn a_password_is_required_from_exactly_one_source() {
        let errors = errors_of("[Global]\nssl = false\n");
        assert_eq!(locations(&errors), [location("Global", "password")]);
        assert_eq!(errors[0].problem, "a password is required");

        let dir = TestDir::new("password-sources");
        let file = dir.file("password", "from-file\nsecond line\n", 0o600);
        let text = format!(
            "[Global]\nssl = false\npassword = x\npassword_file = {}\n",
            file.display()
        );
        let errors = errors_of(&text);
        assert_eq!(locations(&errors), [location("Global", "password_file")]);

        let text = format!(
            "[Global]\nssl = false\npassword_file = {}\n",
            file.display()
        );
        let config = parse(&text).unwrap();
        assert_eq!(config.password().unwrap(), "from-file");
        // Read on every call: a rotated file is picked up by a reload.
        dir.file("password", "rotated\r\n", 0o600);
        assert_eq!(config.password().unwrap(), "rotated");
        std::fs::remove_file(&file).unwrap();
        let error = config.password().unwrap_err();
        assert_eq!(error.file, file);
        assert!(error
            .to_string()
            .starts_with(&format!("{}: [Global] password_file", file.display())));

        let empty = dir.file("empty", "\n", 0o600);
        let text = format!(
            "[Global]\nssl = false\npassword_file = {}\n",
            empty.display()
        );
        let errors = errors_of(&text);
        assert_eq!(errors[0].problem, "the first line (the password) is empty");
    }

    #[test]
    fn the_password_value_never_appears_in_messages() {
        let error = key_error(
            Path::new(FILE),
            Some("Global"),
            "password",
            Some("s3cret"),
            "x",
            None,
        );
        assert_eq!(error.value.as_deref(), Some(HIDDEN_VALUE));
        assert!(!error.to_string().contains("s3cret"));
    }

    #[test]
    fn the_command_backend_needs_a_command_with_pcaps() {
        let errors = errors_of("[Global]\nssl = false\npassword = x\nbackend = command\n");
        assert_eq!(locations(&errors), [location("Command", "command")]);
        assert_eq!(errors[0].problem, "required when backend = command");

        let errors = errors_of(
            "[Global]\nssl = false\npassword = x\nbackend = command\n[Command]\ncommand = tshark -r x\n",
        );
        assert_eq!(errors[0].problem, "does not contain {pcaps}");
        assert_eq!(errors[0].value.as_deref(), Some("tshark -r x"));

        let config = parse(
            "[Global]\nssl = false\npassword = x\nbackend = command\n\
             [Command]\ncommand = tshark -r {pcaps} > {out}/x.txt; echo done\n",
        )
        .unwrap();
        assert_eq!(
            config.command.command.as_deref(),
            Some("tshark -r {pcaps} > {out}/x.txt; echo done")
        );
    }

    #[test]
    fn syslog_presence_turns_forwarding_on_and_needs_a_host() {
        let errors = errors_of("[Global]\nssl = false\npassword = x\n[Syslog]\nproto = tcp\n");
        assert_eq!(locations(&errors), [location("Syslog", "host")]);

        let config = parse(
            "[Global]\nssl = false\npassword = x\n[Syslog]\nhost = logs.example\nproto = tcp\n\
             exclude = reporter.log, weird\n",
        )
        .unwrap();
        let syslog = config.syslog.unwrap();
        assert_eq!(syslog.host, "logs.example");
        assert_eq!(syslog.port, 514);
        assert_eq!(syslog.proto, SyslogProto::Tcp);
        assert_eq!(syslog.format, SyslogFormat::Rfc5424);
        assert_eq!(syslog.framing, SyslogFraming::NonTransparent);
        assert_eq!(syslog.prefix, "pcapd_{log}");
        assert_eq!(syslog.exclude, ["reporter", "weird"]);
    }

    #[test]
    fn syslog_over_tls_defaults_to_6514_octet_counting_and_needs_a_ca() {
        let errors =
            errors_of("[Global]\nssl = false\npassword = x\n[Syslog]\nhost = h\nproto = tls\n");
        assert_eq!(locations(&errors), [location("Syslog", "ca")]);

        let dir = TestDir::new("syslog-ca");
        let ca = dir.file("ca.pem", "x", 0o644);
        let text = format!(
            "[Global]\nssl = false\npassword = x\n[Syslog]\nhost = h\nproto = tls\nca = {}\n",
            ca.display()
        );
        let syslog = parse(&text).unwrap().syslog.unwrap();
        assert_eq!(syslog.port, 6514);
        assert_eq!(syslog.framing, SyslogFraming::OctetCounting);
        assert_eq!(syslog.ca, Some(ca));
    }

    #[test]
    fn http_presence_turns_the_gateway_on_with_global_defaults() {
        let config =
            parse("[Global]\nssl = false\npassword = x\nbind = 127.0.0.1\n[Http]\n").unwrap();
        let http = config.http.unwrap();
        assert_eq!(http.port, 8080);
        assert_eq!(http.bind, "127.0.0.1".parse::<IpAddr>().unwrap());
        assert!(!http.ssl);

        let errors = errors_of("[Global]\nssl = false\npassword = x\n[Http]\nport = 11111\n");
        assert_eq!(locations(&errors), [location("Http", "port")]);

        // The gateway's TLS uses the [Global] certificate, so it needs one even when ssl is off.
        let errors = errors_of("[Global]\nssl = false\npassword = x\n[Http]\nssl = true\n");
        assert_eq!(
            locations(&errors),
            [location("Global", "sslcert"), location("Global", "sslkey")]
        );
        assert_eq!(errors[0].problem, "required when [Http] ssl = true");
    }

    #[test]
    fn worker_accounts_and_environment_names_are_checked() {
        let errors = errors_of(
            "[Global]\nssl = false\npassword = x\n[Worker]\nuser = no-such-user-pcapd\ngroup = 0\nenv = PATH, 1BAD\n",
        );
        assert_eq!(
            locations(&errors),
            [location("Worker", "env"), location("Worker", "user")]
        );
        assert_eq!(errors[0].problem, "not environment variable names: 1BAD");
        assert_eq!(errors[1].problem, "no such account");

        let config =
            parse("[Global]\nssl = false\npassword = x\n[Worker]\nuser = root\ngroup = 0\n")
                .unwrap();
        assert_eq!(config.worker.user.as_deref(), Some("root"));
    }

    #[test]
    fn spool_dir_must_be_an_existing_directory() {
        let errors =
            errors_of("[Global]\nssl = false\npassword = x\nspool_dir = /nonexistent/spool\n");
        assert_eq!(locations(&errors), [location("Global", "spool_dir")]);
        let dir = TestDir::new("spool");
        let text = format!(
            "[Global]\nssl = false\npassword = x\nspool_dir = {}\n",
            dir.path().display()
        );
        assert_eq!(
            parse(&text).unwrap().global.spool_dir.as_deref(),
            Some(dir.path())
        );
    }

    /// bui-monitor's documented `buimonitor.cfg`, taken from its documentation at test time,
    /// with its `[Burp]` section uncommented and the certificate paths pointed at real files.
    #[test]
    fn a_bui_monitor_config_with_backend_burp_parses() {
        let doc = std::fs::read_to_string(BUI_MONITOR_DOC).expect("shared/seeds beside the crate");
        let start = doc
            .find("\t# Burp-UI monitor configuration file")
            .expect("the config block");
        let block: Vec<&str> = doc[start..]
            .lines()
            .take_while(|line| line.starts_with('\t') || line.is_empty())
            .map(|line| line.trim_start_matches('\t'))
            .collect();
        let dir = TestDir::new("bui-monitor");
        let cert = dir.file("ssl_cert-server.pem", "x", 0o644);
        let key = dir.file("ssl_cert-server.key", "x", 0o600);
        let mut text = String::new();
        for line in block {
            let line = match line.strip_prefix('#') {
                Some(setting) if !setting.starts_with('#') && !setting.starts_with(' ') => setting,
                _ => line,
            };
            let line = line
                .replace(
                    "/var/lib/burp/ssl/server/ssl_cert-server.pem",
                    &cert.to_string_lossy(),
                )
                .replace(
                    "/var/lib/burp/ssl/server/ssl_cert-server.key",
                    &key.to_string_lossy(),
                );
            text.push_str(&line);
            text.push('\n');
            if line == "[Global]" {
                text.push_str("backend = burp\n");
            }
        }
        assert!(
            text.contains("\n[Burp]\n") && text.contains("\nburpbin = "),
            "{text}"
        );

        let config = parse(&text).unwrap();
        assert_eq!(config.global.backend, BackendKind::Burp);
        assert_eq!(config.global.port, 11111);
        assert_eq!(config.global.bind, "::1".parse::<IpAddr>().unwrap());
        assert_eq!(config.global.pool, 5);
        assert!(config.global.ssl);
        assert_eq!(config.global.sslcert, Some(cert));
        assert_eq!(config.global.sslkey, Some(key));
        assert_eq!(config.password().unwrap(), "password123456");
        assert_eq!(config.burp.burpbin, PathBuf::from("/usr/sbin/burp"));
        assert_eq!(config.burp.bconfcli, PathBuf::from("/etc/burp/burp.conf"));
        assert_eq!(config.burp.timeout, Duration::from_secs(15));
    }

    /// The sample with every setting uncommented: `#key = value` → `key = value`,
    /// `#[Section]` → `[Section]`; `##` explanations stay comments.
    fn uncommented_sample() -> String {
        SAMPLE
            .lines()
            .map(|line| match line.strip_prefix('#') {
                Some(setting) if !setting.starts_with('#') => setting,
                _ => line,
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    #[test]
    fn the_sample_documents_every_key_and_its_defaults_are_valid() {
        let text = uncommented_sample();
        let mut errors = Vec::new();
        let raw = read_raw(&text, Path::new("pcapd.sample.cfg"), &mut errors).unwrap();
        assert!(errors.is_empty(), "{}", ConfigErrors(errors));
        for spec in SECTIONS {
            let written: BTreeSet<String> = raw.keys(spec.name).into_iter().collect();
            let expected: BTreeSet<String> =
                spec.keys.iter().map(|key| key.name.to_string()).collect();
            assert_eq!(written, expected, "[{}] in the sample", spec.name);
        }

        // Uncommented, the sample is valid except for what has no default.
        let errors = errors_of(&text);
        assert_eq!(
            locations(&errors),
            [
                location("Syslog", "host"),
                location("Cluster", "redis"),
                location("Global", "sslcert"),
                location("Global", "sslkey"),
                location("Global", "password"),
            ],
            "{}",
            ConfigErrors(errors.clone())
        );
    }

    #[test]
    fn the_sample_as_is_only_lacks_credentials() {
        let errors = errors_of(SAMPLE);
        assert_eq!(
            locations(&errors),
            [
                location("Global", "sslcert"),
                location("Global", "sslkey"),
                location("Global", "password"),
            ]
        );
    }

    #[test]
    fn extract_section_reads_globs_sources_sizes_and_layout() {
        let base = "[Global]\nssl = false\npassword = x\n";
        let config = parse(base).unwrap();
        assert!(!config.extract.enabled());
        assert_eq!(config.extract.max_file, 100 << 20);
        let config = parse(&format!(
            "{base}[Extract]\nmime = application/*, text/plain\nsources = http\nmax_file = 10M\n\
             max_total = 1G\nlayout = mime\n"
        ))
        .unwrap();
        assert_eq!(config.extract.mime, ["application/*", "text/plain"]);
        assert_eq!(config.extract.sources, ["HTTP"]);
        assert_eq!(config.extract.max_file, 10 << 20);
        assert_eq!(config.extract.layout, ExtractLayout::Mime);
        assert!(config.extract.enabled());
        assert_eq!(config.extract.hashes, ["md5", "sha1", "sha256"]);
        let config = parse(&format!("{base}[Extract]\nhashes = SHA256\n")).unwrap();
        assert_eq!(config.extract.hashes, ["sha256"]);
        let config = parse(&format!("{base}[Extract]\nhashes = none\n")).unwrap();
        assert!(config.extract.hashes.is_empty());
        let errors = errors_of(&format!("{base}[Extract]\nhashes = sha512\n"));
        assert_eq!(locations(&errors), [location("Extract", "hashes")]);
        let errors = errors_of(&format!(
            "{base}[Extract]\nmime = pdf\nsources = GOPHER\nmax_file = 0\nlayout = tree\n"
        ));
        assert_eq!(
            locations(&errors),
            [
                location("Extract", "mime"),
                location("Extract", "sources"),
                location("Extract", "max_file"),
                location("Extract", "layout"),
            ],
            "{}",
            ConfigErrors(errors.clone())
        );
        assert!(errors[0].problem.contains("`pdf`"), "{}", errors[0].problem);
    }

    #[test]
    fn detector_sections_are_read_by_name_and_checked() {
        let base = "[Global]\nssl = false\npassword = x\n";
        let config = parse(&format!(
            "{base}[Detect]\ntimeout = 5s\n[Detector clamav]\nmime = application/x-dosexec, application/pdf\n\
             command = clamscan --no-summary -d /sigs {{file}}\nhit_exit = 1\n\
             [Detector yara]\ncommand = yara /r.yar {{file}}\nhit_output = true\n"
        ))
        .unwrap();
        let d = &config.detect;
        assert_eq!(d.timeout, Duration::from_secs(5));
        assert_eq!(d.detectors.len(), 2);
        assert_eq!(d.detectors[0].name, "clamav");
        assert_eq!(d.detectors[0].hit_exit, Some(1));
        assert_eq!(d.detectors[1].mime, ["*"]);
        assert!(d.detectors[1].hit_output);
        let errors = errors_of(&format!(
            "{base}[Detector a]\ncommand = scan {{path}}\nhit_exit = 1\n[Detector b]\nmime = *\n\
             [Detector]\ncommand = x\n[Detector c]\ncommand = x {{file}}\nbogus = 1\n"
        ));
        assert_eq!(
            locations(&errors),
            [
                location("detector", ""),
                location("Detector a", "command"),
                location("Detector b", "command"),
                location("Detector b", "hit_exit"),
                location("Detector c", "hit_exit"),
                location("Detector c", "bogus"),
            ],
            "{}",
            ConfigErrors(errors.clone())
        );
        assert!(
            errors[1].problem.contains("{path}"),
            "{}",
            errors[1].problem
        );
    }

    #[test]
    fn every_key_in_sections_is_read_by_the_parser() {
        // A key the parser does not take would be left over and reported as unknown.
        let mut text = String::new();
        for spec in SECTIONS {
            text.push_str(&format!("[{}]\n", spec.name));
            for key in spec.keys {
                text.push_str(&format!("{} =\n", key.name));
            }
        }
        let errors = errors_of(&text);
        assert!(
            errors.iter().all(|error| error.problem != "unknown key"),
            "{}",
            ConfigErrors(errors)
        );
    }
}
