//! What a worker is told to run: the analyzer and its settings, passed from the daemon to
//! `pcapd worker --settings JSON`. These types belong to the backends; the daemon builds
//! them from its configuration and the worker hands them to [`super::Backend::start`].

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::config::{
    AnalyzerConfig, BackendKind, CommandConfig, DetectConfig, ExtractConfig, LogFormat, ZeekConfig,
};

/// The analyzers a worker can run (`burp` children are not `pcapd worker`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AnalyzerKind {
    Builtin,
    Zeek,
    Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OutputFormat {
    Tsv,
    Json,
}

impl From<LogFormat> for OutputFormat {
    fn from(format: LogFormat) -> OutputFormat {
        match format {
            LogFormat::Tsv => OutputFormat::Tsv,
            LogFormat::Json => OutputFormat::Json,
        }
    }
}

impl From<OutputFormat> for LogFormat {
    fn from(format: OutputFormat) -> LogFormat {
        match format {
            OutputFormat::Tsv => LogFormat::Tsv,
            OutputFormat::Json => LogFormat::Json,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ZeekSettings {
    pub zeekbin: PathBuf,
    #[serde(default)]
    pub scripts: Vec<String>,
    #[serde(default)]
    pub args: Vec<String>,
}

/// Everything a worker needs, passed as `pcapd worker --settings JSON`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkerSettings {
    pub backend: AnalyzerKind,
    pub format: OutputFormat,
    pub zeek: ZeekSettings,
    /// `[Command] command`; required for backend = command.
    pub command: Option<String>,
    /// Default for a job that does not say (zeek `-C`, the builtin analyzer's checksum check).
    pub ignore_checksums: bool,
    /// Longest job line accepted on stdin.
    pub max_line: usize,
    /// `[Extract]`: files the builtin analyzer writes under the job's `extract_files/`.
    #[serde(default)]
    pub extract: ExtractConfig,
    /// `[Detect]` and the detectors run on extracted files after each job.
    #[serde(default)]
    pub detect: DetectConfig,
    /// `[Analyzer]`: options of the builtin analyzer's logs.
    #[serde(default)]
    pub analyzer: AnalyzerConfig,
}

#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("backend = burp does not run pcapd workers")]
    BurpBackend,
    #[error("invalid worker settings JSON: {0}")]
    Json(#[from] serde_json::Error),
}

impl WorkerSettings {
    /// Settings for the workers of a daemon configured so.
    pub fn from_config(
        backend: BackendKind,
        format: LogFormat,
        zeek: &ZeekConfig,
        command: &CommandConfig,
        ignore_checksums: bool,
        max_line: usize,
    ) -> Result<WorkerSettings, SettingsError> {
        let backend = match backend {
            BackendKind::Builtin => AnalyzerKind::Builtin,
            BackendKind::Zeek => AnalyzerKind::Zeek,
            BackendKind::Command => AnalyzerKind::Command,
            BackendKind::Burp => return Err(SettingsError::BurpBackend),
        };
        Ok(WorkerSettings {
            backend,
            format: format.into(),
            zeek: ZeekSettings {
                zeekbin: zeek.zeekbin.clone(),
                scripts: zeek.scripts.clone(),
                args: zeek.args.clone(),
            },
            command: command.command.clone(),
            ignore_checksums,
            max_line,
            extract: ExtractConfig::default(),
            detect: DetectConfig::default(),
            analyzer: AnalyzerConfig::default(),
        })
    }

    /// The same settings with `[Extract]` and `[Detect]` as configured.
    pub fn with_files(mut self, extract: &ExtractConfig, detect: &DetectConfig) -> WorkerSettings {
        self.extract = extract.clone();
        self.detect = detect.clone();
        self
    }

    /// The same settings with `[Analyzer]` as configured.
    pub fn with_analyzer(mut self, analyzer: &AnalyzerConfig) -> WorkerSettings {
        self.analyzer = *analyzer;
        self
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    pub fn from_json(text: &str) -> Result<WorkerSettings, SettingsError> {
        Ok(serde_json::from_str(text)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_round_trip_through_json() {
        let original = WorkerSettings {
            backend: AnalyzerKind::Command,
            format: OutputFormat::Json,
            zeek: ZeekSettings {
                zeekbin: PathBuf::from("zeek"),
                scripts: vec![],
                args: vec![],
            },
            command: Some("true".into()),
            ignore_checksums: true,
            max_line: 4096,
            extract: ExtractConfig {
                mime: vec!["application/*".into()],
                ..ExtractConfig::default()
            },
            detect: DetectConfig {
                detectors: vec![crate::config::DetectorConfig {
                    name: "yara".into(),
                    mime: vec!["*".into()],
                    command: "yara /r.yar {file}".into(),
                    hit_exit: None,
                    hit_output: true,
                }],
                ..DetectConfig::default()
            },
            analyzer: AnalyzerConfig {
                community_id: false,
                community_id_seed: 7,
            },
        };
        let parsed = WorkerSettings::from_json(&original.to_json()).expect("parses");
        assert_eq!(parsed, original);
        assert!(WorkerSettings::from_json(r#"{"backend": "burp"}"#).is_err());
    }

    #[test]
    fn burp_is_not_a_worker_backend() {
        let zeek = ZeekConfig {
            zeekbin: PathBuf::from("zeek"),
            scripts: vec![],
            args: vec![],
        };
        let result = WorkerSettings::from_config(
            BackendKind::Burp,
            LogFormat::Tsv,
            &zeek,
            &CommandConfig::default(),
            true,
            100,
        );
        assert!(matches!(result, Err(SettingsError::BurpBackend)));
    }
}
