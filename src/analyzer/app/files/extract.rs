//! Extraction of files to the job's `extract_files/` as `[Extract]` chooses (Zeek's
//! `base/files/extract`, BroAPT's store by MIME type).
//!
//! One [`ExtractScope`] per analysis run holds the policy, the directory and the job's byte
//! budget; it is entered by `analyze` for the duration of the run (a thread-local, so the
//! flow table that creates the protocol analyzers needs no knowledge of it). A file decides
//! once its MIME type is known whether it is extracted ([`begin`]), then writes through an
//! [`Extraction`] that enforces `max_file` and `max_total`: bytes past either are dropped
//! and the file is flagged cut off, so neither a decompression bomb nor a 10 GB body can
//! exceed them.
//!
//! Names are pcapd's, never the traffic's: `extract-<ts>-<source>-<fuid>` (Zeek's), under
//! `<type>/<subtype>/` with `layout = mime`. Files are created new (never through an
//! existing name or link) with mode 0640.

use std::cell::RefCell;
use std::fs::{DirBuilder, File, OpenOptions};
use std::io::{BufWriter, Seek, SeekFrom, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use crate::config::{ExtractConfig, ExtractLayout};

/// The directory under a job's log directory that extracted files go to (Zeek's
/// `FileExtract::prefix`).
pub const EXTRACT_DIR: &str = "extract_files";

/// Mode of an extracted file: readable by the group, never executable.
const FILE_MODE: u32 = 0o640;
const DIR_MODE: u32 = 0o750;

/// Bytes gathered before a write to an extracted file: bodies arrive a segment at a time.
/// Below malloc's mmap threshold, so that a buffer per file costs no page faults.
const WRITE_BUFFER: usize = 64 * 1024;

/// Directory of files of no known type under `layout = mime`.
const UNKNOWN_TYPE_DIR: &str = "unknown";

/// What extraction did in one run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExtractStats {
    /// Files written (whole or cut off).
    pub files: u64,
    /// Bytes written.
    pub bytes: u64,
    /// Files cut off by `max_file` or `max_total`.
    pub cutoff: u64,
    /// Problems writing (a full disk, say), each once.
    pub warnings: Vec<String>,
}

struct Scope {
    config: ExtractConfig,
    dir: PathBuf,
    stats: ExtractStats,
}

thread_local! {
    static SCOPE: RefCell<Option<Scope>> = const { RefCell::new(None) };
}

/// Extraction on for the current thread until dropped (or [`ExtractScope::finish`]ed).
pub struct ExtractScope(());

impl ExtractScope {
    /// Files of this run go under `dir` as `config` says.
    pub fn enter(config: &ExtractConfig, dir: &Path) -> ExtractScope {
        SCOPE.with(|s| {
            *s.borrow_mut() = Some(Scope {
                config: config.clone(),
                dir: dir.to_path_buf(),
                stats: ExtractStats::default(),
            })
        });
        ExtractScope(())
    }

    /// Ends the scope and says what was extracted.
    pub fn finish(self) -> ExtractStats {
        SCOPE
            .with(|s| s.borrow_mut().take())
            .map(|scope| scope.stats)
            .unwrap_or_default()
    }
}

impl Drop for ExtractScope {
    fn drop(&mut self) {
        SCOPE.with(|s| s.borrow_mut().take());
    }
}

/// Whether `mime` (None = no type found) matches one of `globs`.
pub fn mime_matches(globs: &[String], mime: Option<&str>) -> bool {
    globs.iter().any(|g| match mime {
        _ if g == "*" => true,
        Some(m) => glob_match(g.as_bytes(), m.as_bytes()),
        None => false,
    })
}

/// `*` matches any run of characters; comparison ignores ASCII case.
pub(crate) fn glob_match(glob: &[u8], text: &[u8]) -> bool {
    match glob.split_first() {
        None => text.is_empty(),
        Some((b'*', rest)) => (0..=text.len()).any(|i| glob_match(rest, &text[i..])),
        Some((g, rest)) => text
            .split_first()
            .is_some_and(|(t, tail)| g.eq_ignore_ascii_case(t) && glob_match(rest, tail)),
    }
}

/// Zeek's name of an extracted file: `extract-<ts>-<source>-<fuid>`.
fn file_name(ts: f64, source: &str, fuid: &str) -> String {
    format!("extract-{ts:.6}-{source}-{fuid}")
}

/// Whether `source` (a files.log source) is one `[Extract] sources` names.
fn source_listed(sources: &[String], source: &str) -> bool {
    let family = if source == "FTP_DATA" { "FTP" } else { source };
    sources.iter().any(|s| s == family)
}

/// Whether the run's policy may extract files of `source` (a files.log source), whatever
/// their type.
pub(crate) fn may_extract(source: &str) -> bool {
    SCOPE.with(|s| {
        s.borrow().as_ref().is_some_and(|scope| {
            !scope.config.mime.is_empty() && source_listed(&scope.config.sources, source)
        })
    })
}

/// Starts extracting a file if the run's policy wants it: `None` when extraction is off, the
/// type or source is not chosen, or the file cannot be created (a warning of the run).
pub(crate) fn begin(
    ts: f64,
    source: &str,
    fuid: &str,
    mime: Option<&'static str>,
) -> Option<Extraction> {
    SCOPE.with(|s| {
        let mut guard = s.borrow_mut();
        let scope = guard.as_mut()?;
        let config = &scope.config;
        if !source_listed(&config.sources, source) || !mime_matches(&config.mime, mime) {
            return None;
        }
        let name = file_name(ts, source, fuid);
        let relative = match config.layout {
            ExtractLayout::Flat => name,
            ExtractLayout::Mime => format!("{}/{name}", mime.unwrap_or(UNKNOWN_TYPE_DIR)),
        };
        let path = scope.dir.join(&relative);
        match create(&path) {
            Ok(file) => {
                scope.stats.files += 1;
                Some(Extraction {
                    file: BufWriter::with_capacity(WRITE_BUFFER, file),
                    name: relative,
                    limit: config.max_file,
                    size: 0,
                    cutoff: false,
                })
            }
            Err(e) => {
                warn(scope, format!("cannot create {}: {e}", path.display()));
                None
            }
        }
    })
}

fn create(path: &Path) -> std::io::Result<File> {
    if let Some(parent) = path.parent() {
        DirBuilder::new()
            .recursive(true)
            .mode(DIR_MODE)
            .create(parent)?;
    }
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(FILE_MODE)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
}

fn warn(scope: &mut Scope, warning: String) {
    if !scope.stats.warnings.contains(&warning) {
        scope.stats.warnings.push(warning);
    }
}

/// Takes up to `want` bytes of the run's `max_total` budget; returns how many were granted.
fn reserve(want: u64) -> u64 {
    SCOPE.with(|s| {
        let mut guard = s.borrow_mut();
        let Some(scope) = guard.as_mut() else {
            return 0;
        };
        let granted = want.min(scope.config.max_total.saturating_sub(scope.stats.bytes));
        scope.stats.bytes += granted;
        granted
    })
}

/// One file being written.
#[derive(Debug)]
pub(crate) struct Extraction {
    file: BufWriter<File>,
    /// Path under `extract_files/`, as files.log's `extracted` gives it.
    pub name: String,
    limit: u64,
    /// Bytes written or skipped over (holes where bytes were missing).
    size: u64,
    cutoff: bool,
}

/// files.log's view of an extraction when the file ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Extracted {
    pub name: String,
    pub cutoff: bool,
    /// Set when cut off: the bytes kept (Zeek logs the size only then).
    pub size: Option<u64>,
}

impl Extraction {
    /// Appends decoded bytes, as far as the limits allow.
    pub(crate) fn write(&mut self, data: &[u8]) {
        if self.cutoff || data.is_empty() {
            return;
        }
        let room = self.limit.saturating_sub(self.size);
        let want = (data.len() as u64).min(room);
        let granted = reserve(want);
        let n = usize::try_from(granted).unwrap_or(usize::MAX);
        if let Err(e) = self.file.write_all(&data[..n]) {
            self.fail(e);
            return;
        }
        self.size += granted;
        if granted < data.len() as u64 {
            self.cut();
        }
    }

    /// `len` bytes of the file were never seen: they stay a hole (zeros) in the file, counted
    /// against `max_file` as Zeek counts missing bytes against its limit.
    pub(crate) fn gap(&mut self, len: u64) {
        if self.cutoff {
            return;
        }
        let skip = len.min(self.limit.saturating_sub(self.size));
        let offset = i64::try_from(skip).unwrap_or(i64::MAX);
        if let Err(e) = self.file.seek(SeekFrom::Current(offset)) {
            self.fail(e);
            return;
        }
        self.size += skip;
        if skip < len {
            self.cut();
        }
    }

    fn cut(&mut self) {
        self.cutoff = true;
        SCOPE.with(|s| {
            if let Some(scope) = s.borrow_mut().as_mut() {
                scope.stats.cutoff += 1;
            }
        });
    }

    fn fail(&mut self, e: std::io::Error) {
        let warning = format!("extracting {}: {e}", self.name);
        SCOPE.with(|s| {
            if let Some(scope) = s.borrow_mut().as_mut() {
                warn(scope, warning);
            }
        });
        self.cut();
    }

    /// Closes the file (a trailing hole gets its length).
    pub(crate) fn finish(self) -> Extracted {
        let mut cutoff = self.cutoff;
        let closed = self
            .file
            .into_inner()
            .map_err(|e| e.into_error())
            .and_then(|file| file.set_len(self.size));
        if let Err(e) = closed {
            let warning = format!("extracting {}: {e}", self.name);
            SCOPE.with(|s| {
                if let Some(scope) = s.borrow_mut().as_mut() {
                    warn(scope, warning);
                }
            });
            cutoff = true;
        }
        Extracted {
            name: self.name,
            cutoff,
            size: cutoff.then_some(self.size),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn config(
        mime: &[&str],
        max_file: u64,
        max_total: u64,
        layout: ExtractLayout,
    ) -> ExtractConfig {
        ExtractConfig {
            mime: mime.iter().map(|m| m.to_string()).collect(),
            max_file,
            max_total,
            layout,
            ..ExtractConfig::default()
        }
    }

    fn tempdir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("pcapd-extract-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn globs_match_types_and_star_matches_untyped_files() {
        let globs = vec!["application/*".to_string(), "TEXT/plain".to_string()];
        assert!(mime_matches(&globs, Some("application/x-dosexec")));
        assert!(mime_matches(&globs, Some("text/plain")));
        assert!(!mime_matches(&globs, Some("text/html")));
        assert!(!mime_matches(&globs, None));
        assert!(mime_matches(&["*".to_string()], None));
        assert!(glob_match(b"*/*ml", b"text/html"));
        assert!(!glob_match(b"image/*", b"text/image/x"));
    }

    #[test]
    fn limits_cut_files_and_the_job_budget() {
        let dir = tempdir("limits");
        let scope = ExtractScope::enter(&config(&["*"], 10, 15, ExtractLayout::Mime), &dir);
        let mut a = begin(1.5, "HTTP", "Fa", Some("text/plain")).unwrap();
        a.write(b"0123456");
        a.write(b"789abc");
        let a = a.finish();
        assert_eq!(a.name, "text/plain/extract-1.500000-HTTP-Fa");
        assert_eq!((a.cutoff, a.size), (true, Some(10)));
        let mut b = begin(2.0, "HTTP", "Fb", None).unwrap();
        b.gap(2);
        b.write(b"xyzzy!");
        let b = b.finish();
        assert_eq!((b.cutoff, b.size), (true, Some(7)));
        assert!(begin(2.0, "SMTP", "Fc", None).is_some());
        let stats = scope.finish();
        assert_eq!((stats.files, stats.bytes, stats.cutoff), (3, 15, 2));
        assert_eq!(std::fs::read(dir.join(&a.name)).unwrap(), b"0123456789");
        let b_path = dir.join(&b.name);
        assert_eq!(std::fs::read(&b_path).unwrap(), b"\0\0xyzzy");
        let mode = std::fs::metadata(&b_path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, FILE_MODE);
        assert!(
            begin(3.0, "HTTP", "Fd", None).is_none(),
            "no scope, no extraction"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn sources_and_existing_names_are_respected() {
        let dir = tempdir("sources");
        let mut cfg = config(&["*"], 100, 100, ExtractLayout::Flat);
        cfg.sources = vec!["FTP".to_string()];
        let scope = ExtractScope::enter(&cfg, &dir);
        assert!(begin(1.0, "HTTP", "Fa", None).is_none());
        let e = begin(1.0, "FTP_DATA", "Fa", None).unwrap();
        assert!(
            begin(1.0, "FTP_DATA", "Fa", None).is_none(),
            "never overwritten"
        );
        let done = e.finish();
        assert_eq!((done.cutoff, done.size), (false, None));
        let stats = scope.finish();
        assert_eq!(stats.files, 1);
        assert_eq!(stats.warnings.len(), 1, "{:?}", stats.warnings);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
