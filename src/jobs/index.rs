//! The job store's index: one SQLite row per job, so that `list`, dedupe, recovery,
//! retention and the output queue find their jobs without reading every record.
//!
//! The records (`jobs/ID/job.json`) stay the truth. The index holds only what those
//! questions select and sort by (state, tag, creation and settle times, a dedupe key, whether
//! an output step is open); every answer is re-read from the record it names and checked
//! against it, so a stale row can hide a job from one answer but never make up one.
//!
//! How it stays in step (the store's writers do this, see `store.rs` and `commit.rs`):
//! before a record is written, renamed into place or removed, its id is put in the `dirty`
//! table; after the write, the row is updated and the mark removed in one transaction. The
//! database runs in WAL mode with `synchronous = NORMAL`: a commit survives a crash of the
//! process (it is in the WAL file), but a power cut may drop the last commits. So:
//!
//! - opened after a clean close (`open_boot` empty): nothing to repair;
//! - opened after a crash of the process in the same boot (`open_boot` = this boot's id):
//!   only the jobs marked dirty are re-read (a bounded repair);
//! - opened after the machine went down while the index was open (`open_boot` names another
//!   boot), or with a missing, unreadable or older-schema file, or one built for another
//!   `jobs_dir`, or one whose last build did not finish: rebuilt from the records.
//!
//! A clean close also notes `jobs_dir`'s mtime: if it differs at the next open (something
//! else added or removed job directories meanwhile, e.g. an older pcapd), the job
//! directories are counted, and a count that differs from the index's means a rebuild.
//!
//! SQLite on a network file system is unsafe, so the index is per host: cluster mode, where
//! hosts share `jobs_dir`, runs without it (see `docs/cluster.md`).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use rusqlite::{params, Connection, OpenFlags, OptionalExtension};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use super::model::{JobId, JobRecord, JobState};

/// The index's file name in the state directory (with `-wal` and `-shm` beside it).
pub const INDEX_FILE: &str = "jobs.index.sqlite";

/// Bumped whenever the tables change; a different version is rebuilt.
const SCHEMA_VERSION: i64 = 2;
/// How long a statement waits for a lock held by another connection (another pcapd on the
/// same state directory: a mistake, but one that should fail slowly and clearly).
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// Rows written per transaction while rebuilding.
pub(crate) const REBUILD_BATCH: usize = 4096;

/// The tables. `jobs` is a rowid table so that a rebuild appends in order; its indexes
/// ([`INDEXES`]) are created after the rows are in (one sort each, instead of a million
/// random B-tree inserts).
const TABLES: &str = "
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE jobs (
    job_id TEXT NOT NULL,
    state TEXT NOT NULL,
    tag TEXT,
    created_ms INTEGER NOT NULL,
    -- finished_at, or created_at, for terminal jobs; NULL while the job is live
    settled_ms INTEGER,
    -- the first 8 bytes of the dedupe key's SHA-256 (candidates are checked in full)
    dedupe_key INTEGER NOT NULL,
    outputs_open INTEGER NOT NULL
);
CREATE TABLE dirty (job_id TEXT PRIMARY KEY) WITHOUT ROWID;
";

const INDEXES: &str = "
CREATE UNIQUE INDEX jobs_id ON jobs (job_id);
CREATE INDEX jobs_newest ON jobs (created_ms DESC, job_id DESC);
CREATE INDEX jobs_state ON jobs (state, created_ms DESC, job_id DESC);
CREATE INDEX jobs_tag ON jobs (tag, created_ms DESC, job_id DESC);
CREATE INDEX jobs_dedupe ON jobs (dedupe_key);
CREATE INDEX jobs_settled ON jobs (settled_ms, job_id) WHERE settled_ms IS NOT NULL;
CREATE INDEX jobs_outputs ON jobs (settled_ms) WHERE outputs_open = 1;
";

/// SQLite's page cache for the index, in KiB (its default is 2 MiB).
const CACHE_KIB: i64 = 8 * 1024;
/// The WAL is truncated to this after a checkpoint.
const WAL_LIMIT_BYTES: i64 = 64 * 1024 * 1024;

/// An index failure: the store logs it and carries on without the index.
#[derive(Debug, thiserror::Error)]
#[error("job index {path}: {source}")]
pub struct IndexError {
    pub path: PathBuf,
    #[source]
    pub source: rusqlite::Error,
}

/// What one row says about a job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct IndexRow {
    pub job_id: JobId,
    pub state: JobState,
    pub tag: Option<String>,
    pub created_ms: i64,
    pub settled_ms: Option<i64>,
    pub dedupe_key: i64,
    pub outputs_open: bool,
}

impl IndexRow {
    pub fn of(record: &JobRecord) -> IndexRow {
        IndexRow {
            job_id: record.job_id.clone(),
            state: record.state,
            tag: record.tag.clone(),
            created_ms: record.created_at.unix_millis(),
            settled_ms: record.state.is_terminal().then(|| {
                record
                    .finished_at
                    .unwrap_or(record.created_at)
                    .unix_millis()
            }),
            dedupe_key: dedupe_key(&record.sha256s(), &record.options),
            outputs_open: record.outputs_pending(),
        }
    }
}

/// The key under which identical submissions meet: the first 8 bytes of the SHA-256 of the
/// captures' hashes in order and the options (serde_json maps serialize sorted, so equal
/// options give equal text). Candidates are compared field by field, so a collision costs a
/// record read, never a wrong answer.
pub(crate) fn dedupe_key(sha256s: &[String], options: &Map<String, Value>) -> i64 {
    let text = serde_json::to_vec(&(sha256s, options)).unwrap_or_default();
    let digest = Sha256::digest(&text);
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    i64::from_be_bytes(first)
}

/// The filters of `list` that the index answers.
#[derive(Debug, Clone, Default)]
pub(crate) struct RowFilter<'a> {
    pub state: Option<JobState>,
    pub tag: Option<&'a str>,
    pub since_ms: Option<i64>,
}

/// A position in newest-first order: rows strictly after it.
pub(crate) type Cursor = (i64, JobId);

/// What the index needs from the records after opening.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Catchup {
    /// Clean close: the index is complete.
    Nothing,
    /// A crash of the process: these jobs were being written; re-read them.
    Repair(Vec<JobId>),
    /// Rebuild every row from the records, for the reason given.
    Rebuild(&'static str),
}

pub(crate) struct JobIndex {
    path: PathBuf,
    conn: Mutex<Connection>,
    /// [`OPEN`], [`CLOSED`] or [`BROKEN`].
    state: AtomicU8,
}

/// In use: reads come from it, writes go to it.
const OPEN: u8 = 0;
/// Closed cleanly at shutdown; a write after that breaks it.
const CLOSED: u8 = 1;
/// A write failed or came after the close: the file is deleted (the next start rebuilds
/// it) and the store answers from the records.
const BROKEN: u8 = 2;

impl JobIndex {
    /// Opens (creating, or recreating when unreadable) the index at `path` for the store at
    /// `jobs_dir`, and says what must be read from the records before it can be trusted.
    pub fn open(path: &Path, jobs_dir: &Path) -> Result<(JobIndex, Catchup), IndexError> {
        match JobIndex::open_existing(path, jobs_dir) {
            Ok(opened) => Ok(opened),
            Err(error) => {
                tracing::warn!(%error, "job index unreadable; recreating it from the records");
                remove_files(path);
                JobIndex::open_existing(path, jobs_dir)
            }
        }
    }

    fn open_existing(path: &Path, jobs_dir: &Path) -> Result<(JobIndex, Catchup), IndexError> {
        let err = |source| IndexError {
            path: path.to_path_buf(),
            source,
        };
        if let Some(parent) = path.parent() {
            let _ = std::fs::create_dir_all(parent);
        }
        create_private(path);
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_CREATE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(err)?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(err)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(err)?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(err)?;
        conn.pragma_update(None, "cache_size", -CACHE_KIB)
            .map_err(err)?;
        conn.pragma_update(None, "journal_size_limit", WAL_LIMIT_BYTES)
            .map_err(err)?;
        let index = JobIndex {
            path: path.to_path_buf(),
            conn: Mutex::new(conn),
            state: AtomicU8::new(OPEN),
        };
        let catchup = index.catchup(jobs_dir).map_err(err)?;
        index.mark_open(jobs_dir).map_err(err)?;
        Ok((index, catchup))
    }

    fn catchup(&self, jobs_dir: &Path) -> rusqlite::Result<Catchup> {
        let conn = self.lock();
        let has_meta: bool = conn.query_row(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'meta'",
            [],
            |row| row.get::<_, i64>(0).map(|n| n > 0),
        )?;
        if !has_meta {
            drop(conn);
            self.reset()?;
            return Ok(Catchup::Rebuild("no index yet"));
        }
        let meta = |key: &str| -> rusqlite::Result<Option<String>> {
            conn.query_row("SELECT value FROM meta WHERE key = ?1", [key], |row| {
                row.get(0)
            })
            .optional()
            .map(Option::flatten)
        };
        let version = meta("schema")?;
        let built_for = meta("jobs_dir")?;
        let complete = meta("complete")?;
        let open_boot = meta("open_boot")?;
        let dir_mtime = meta("dir_mtime")?;
        let reason = if version.as_deref() != Some(&SCHEMA_VERSION.to_string()) {
            Some("index schema changed")
        } else if built_for.as_deref() != Some(&*jobs_dir.to_string_lossy()) {
            Some("index built for another jobs_dir")
        } else if complete.as_deref() != Some("1") {
            Some("the last rebuild did not finish")
        } else {
            match open_boot {
                Some(boot) if boot_id().as_deref() != Some(boot.as_str()) => {
                    Some("the machine went down while the index was open")
                }
                _ => None,
            }
        };
        if let Some(reason) = reason {
            drop(conn);
            self.reset()?;
            return Ok(Catchup::Rebuild(reason));
        }
        if dir_mtime.is_some() && dir_mtime != dir_mtime_of(jobs_dir) {
            let rows: i64 = conn.query_row("SELECT count(*) FROM jobs", [], |row| row.get(0))?;
            if usize::try_from(rows).ok() != count_job_dirs(jobs_dir) {
                drop(conn);
                self.reset()?;
                return Ok(Catchup::Rebuild(
                    "jobs were added or removed by another program",
                ));
            }
        }
        let mut statement = conn.prepare("SELECT job_id FROM dirty")?;
        let dirty = statement
            .query_map([], |row| row.get::<_, String>(0))?
            .filter_map(|id| id.ok().and_then(|id| JobId::parse(&id).ok()))
            .collect::<Vec<_>>();
        Ok(if dirty.is_empty() {
            Catchup::Nothing
        } else {
            Catchup::Repair(dirty)
        })
    }

    /// Drops every row and starts an empty index, marked incomplete until
    /// [`JobIndex::finish_rebuild`].
    fn reset(&self) -> rusqlite::Result<()> {
        let conn = self.lock();
        conn.execute_batch(
            "DROP TABLE IF EXISTS meta; DROP TABLE IF EXISTS jobs; DROP TABLE IF EXISTS dirty;",
        )?;
        conn.execute_batch(TABLES)?;
        conn.execute(
            "INSERT INTO meta (key, value) VALUES ('schema', ?1)",
            [SCHEMA_VERSION.to_string()],
        )?;
        Ok(())
    }

    /// Notes that the index is open in this boot, durably (it is what tells a later start
    /// that a power cut may have dropped commits), and for which `jobs_dir`.
    fn mark_open(&self, jobs_dir: &Path) -> rusqlite::Result<()> {
        let conn = self.lock();
        conn.pragma_update(None, "synchronous", "FULL")?;
        let written = conn.execute_batch("BEGIN").and_then(|()| {
            set_meta(&conn, "open_boot", boot_id().as_deref())?;
            set_meta(&conn, "jobs_dir", Some(&*jobs_dir.to_string_lossy()))?;
            set_meta(&conn, "dir_mtime", None)?;
            conn.execute_batch("COMMIT")
        });
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        written
    }

    /// Appends rows during a rebuild (the table has no index yet: plain inserts, in order).
    pub fn load(&self, rows: &[IndexRow]) -> Result<(), IndexError> {
        let mut conn = self.lock();
        let tx = conn.transaction().map_err(|s| self.error(s))?;
        {
            let mut insert = tx
                .prepare_cached(
                    "INSERT INTO jobs (job_id, state, tag, created_ms, settled_ms, dedupe_key, outputs_open)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                )
                .map_err(|s| self.error(s))?;
            for row in rows {
                insert.execute(row_params(row)).map_err(|s| self.error(s))?;
            }
        }
        tx.commit().map_err(|s| self.error(s))
    }

    /// A rebuild loaded every row: creates the indexes, and the index may be trusted from
    /// then on.
    pub fn finish_rebuild(&self) -> Result<(), IndexError> {
        let conn = self.lock();
        conn.execute_batch(INDEXES)
            .and_then(|()| set_meta(&conn, "complete", Some("1")))
            .map_err(|source| self.error(source))
    }

    /// Clean close: checkpoints the WAL into the database (fsynced) and clears `open_boot`,
    /// so the next start trusts the index as it is.
    pub fn close(&self, jobs_dir: &Path) {
        if self
            .state
            .compare_exchange(OPEN, CLOSED, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            return;
        }
        let conn = self.lock();
        let closed = (|| {
            conn.pragma_update(None, "synchronous", "FULL")?;
            conn.execute_batch("BEGIN")?;
            set_meta(&conn, "open_boot", None)?;
            set_meta(&conn, "dir_mtime", dir_mtime_of(jobs_dir).as_deref())?;
            conn.execute_batch("COMMIT")?;
            conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
        })();
        if let Err(source) = closed {
            tracing::warn!(error = %self.error(source), "job index not closed cleanly; the next start repairs it");
        }
    }

    pub fn is_usable(&self) -> bool {
        self.state.load(Ordering::Acquire) == OPEN
    }

    /// Gives the index up after a failed write: the store answers from the records, and the
    /// file is removed so that the next start rebuilds it.
    pub fn give_up(&self, error: &IndexError) {
        if self.state.swap(BROKEN, Ordering::AcqRel) != BROKEN {
            tracing::error!(%error, "job index failed; answering from the records until the next start rebuilds it");
            remove_files(&self.path);
        }
    }

    /// Runs a write if the index is open; a write it cannot take (closed already) or that
    /// fails breaks it, so that it is never trusted while behind.
    fn write(&self, change: impl FnOnce() -> Result<(), IndexError>) {
        match self.state.load(Ordering::Acquire) {
            OPEN => {
                if let Err(error) = change() {
                    self.give_up(&error);
                }
            }
            CLOSED if self.state.swap(BROKEN, Ordering::AcqRel) == CLOSED => {
                tracing::warn!(
                    "a job record changed after the job index was closed; the next start rebuilds it"
                );
                remove_files(&self.path);
            }
            _ => {}
        }
    }

    /// Notes that these jobs' records are about to change on disk.
    pub fn note_dirty(&self, ids: &[&JobId]) {
        self.write(|| self.mark_dirty(ids));
    }

    /// Notes records now durable on disk (their rows, and the end of their dirty marks).
    pub fn note_written(&self, rows: &[IndexRow]) {
        self.write(|| self.put(rows));
    }

    /// Notes jobs removed from disk.
    pub fn note_removed(&self, ids: &[&JobId]) {
        self.write(|| self.remove(ids));
    }

    fn mark_dirty(&self, ids: &[&JobId]) -> Result<(), IndexError> {
        let mut conn = self.lock();
        let tx = conn.transaction().map_err(|s| self.error(s))?;
        {
            let mut insert = tx
                .prepare_cached("INSERT OR IGNORE INTO dirty (job_id) VALUES (?1)")
                .map_err(|s| self.error(s))?;
            for id in ids {
                insert.execute([id.as_str()]).map_err(|s| self.error(s))?;
            }
        }
        tx.commit().map_err(|s| self.error(s))
    }

    /// Writes the rows of records now on disk and clears their dirty marks, in one
    /// transaction.
    pub(crate) fn put(&self, rows: &[IndexRow]) -> Result<(), IndexError> {
        let mut conn = self.lock();
        let tx = conn.transaction().map_err(|s| self.error(s))?;
        {
            let mut upsert = tx
                .prepare_cached(
                    "INSERT OR REPLACE INTO jobs (job_id, state, tag, created_ms, settled_ms, dedupe_key, outputs_open)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                )
                .map_err(|s| self.error(s))?;
            let mut clean = tx
                .prepare_cached("DELETE FROM dirty WHERE job_id = ?1")
                .map_err(|s| self.error(s))?;
            for row in rows {
                upsert.execute(row_params(row)).map_err(|s| self.error(s))?;
                clean
                    .execute([row.job_id.as_str()])
                    .map_err(|s| self.error(s))?;
            }
        }
        tx.commit().map_err(|s| self.error(s))
    }

    /// Removes the rows (and dirty marks) of jobs no longer on disk.
    fn remove(&self, ids: &[&JobId]) -> Result<(), IndexError> {
        let mut conn = self.lock();
        let tx = conn.transaction().map_err(|s| self.error(s))?;
        {
            let mut delete = tx
                .prepare_cached("DELETE FROM jobs WHERE job_id = ?1")
                .map_err(|s| self.error(s))?;
            let mut clean = tx
                .prepare_cached("DELETE FROM dirty WHERE job_id = ?1")
                .map_err(|s| self.error(s))?;
            for id in ids {
                delete.execute([id.as_str()]).map_err(|s| self.error(s))?;
                clean.execute([id.as_str()]).map_err(|s| self.error(s))?;
            }
        }
        tx.commit().map_err(|s| self.error(s))
    }

    /// Up to `limit` jobs matching `filter`, newest first (created_at, then job id, both
    /// descending), strictly after `after`.
    pub fn page(
        &self,
        filter: &RowFilter<'_>,
        after: Option<&Cursor>,
        limit: usize,
    ) -> Result<Vec<Cursor>, IndexError> {
        let mut sql = String::from("SELECT created_ms, job_id FROM jobs WHERE 1");
        let mut values: Vec<rusqlite::types::Value> = Vec::new();
        if let Some(state) = filter.state {
            values.push(state.as_str().to_owned().into());
            sql.push_str(&format!(" AND state = ?{}", values.len()));
        }
        if let Some(tag) = filter.tag {
            values.push(tag.to_owned().into());
            sql.push_str(&format!(" AND tag = ?{}", values.len()));
        }
        if let Some(since) = filter.since_ms {
            values.push(since.into());
            sql.push_str(&format!(" AND created_ms >= ?{}", values.len()));
        }
        if let Some((created, id)) = after {
            values.push((*created).into());
            values.push(id.as_str().to_owned().into());
            sql.push_str(&format!(
                " AND (created_ms, job_id) < (?{}, ?{})",
                values.len() - 1,
                values.len()
            ));
        }
        values.push(i64::try_from(limit).unwrap_or(i64::MAX).into());
        sql.push_str(&format!(
            " ORDER BY created_ms DESC, job_id DESC LIMIT ?{}",
            values.len()
        ));
        let conn = self.lock();
        let mut statement = conn.prepare_cached(&sql).map_err(|s| self.error(s))?;
        let rows = statement
            .query_map(rusqlite::params_from_iter(values), |row| {
                Ok((row.get::<_, i64>(0)?, row.get::<_, String>(1)?))
            })
            .map_err(|s| self.error(s))?;
        collect_ids(rows, |(created, id)| {
            Some((created, JobId::parse(&id).ok()?))
        })
        .map_err(|s| self.error(s))
    }

    /// Jobs with this dedupe key that may answer a duplicate (live or `done`), newest first.
    pub fn duplicates(&self, key: i64) -> Result<Vec<JobId>, IndexError> {
        self.ids(
            "SELECT job_id FROM jobs WHERE dedupe_key = ?1
               AND state IN ('queued', 'running', 'interrupted', 'done')
             ORDER BY created_ms DESC, job_id DESC",
            params![key],
        )
    }

    /// Jobs not yet terminal: what recovery looks at.
    pub fn live(&self) -> Result<Vec<JobId>, IndexError> {
        self.ids(
            "SELECT job_id FROM jobs WHERE state IN ('queued', 'running', 'interrupted')",
            params![],
        )
    }

    /// Terminal jobs in settle order (oldest first, then by id), strictly after `after`,
    /// settled at or before `until_ms`.
    pub fn settled(
        &self,
        after: Option<&(i64, JobId)>,
        until_ms: i64,
        limit: usize,
    ) -> Result<Vec<(i64, JobId)>, IndexError> {
        let (after_ms, after_id) = match after {
            Some((ms, id)) => (*ms, id.as_str().to_owned()),
            None => (i64::MIN, String::new()),
        };
        let conn = self.lock();
        let mut statement = conn
            .prepare_cached(
                "SELECT settled_ms, job_id FROM jobs
                 WHERE settled_ms IS NOT NULL AND (settled_ms, job_id) > (?1, ?2) AND settled_ms <= ?3
                 ORDER BY settled_ms, job_id LIMIT ?4",
            )
            .map_err(|s| self.error(s))?;
        let rows = statement
            .query_map(
                params![
                    after_ms,
                    after_id,
                    until_ms,
                    i64::try_from(limit).unwrap_or(i64::MAX)
                ],
                |row| Ok((row.get::<_, i64>(0)?, row.get::<_, String>(1)?)),
            )
            .map_err(|s| self.error(s))?;
        collect_ids(rows, |(ms, id)| Some((ms, JobId::parse(&id).ok()?))).map_err(|s| self.error(s))
    }

    /// Done jobs with a syslog or export step still open, in the order they finished.
    pub fn outputs_open(&self) -> Result<Vec<JobId>, IndexError> {
        self.ids(
            "SELECT job_id FROM jobs WHERE outputs_open = 1 ORDER BY settled_ms, job_id",
            params![],
        )
    }

    #[cfg(test)]
    pub fn count(&self) -> Result<usize, IndexError> {
        let conn = self.lock();
        conn.query_row("SELECT count(*) FROM jobs", [], |row| row.get::<_, i64>(0))
            .map(|n| usize::try_from(n).unwrap_or(0))
            .map_err(|s| self.error(s))
    }

    fn ids(&self, sql: &str, values: &[&dyn rusqlite::ToSql]) -> Result<Vec<JobId>, IndexError> {
        let conn = self.lock();
        let mut statement = conn.prepare_cached(sql).map_err(|s| self.error(s))?;
        let rows = statement
            .query_map(values, |row| row.get::<_, String>(0))
            .map_err(|s| self.error(s))?;
        collect_ids(rows, |id| JobId::parse(&id).ok()).map_err(|s| self.error(s))
    }

    fn lock(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the connection leaves SQLite consistent (an open
        // transaction is rolled back when its guard drops).
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn error(&self, source: rusqlite::Error) -> IndexError {
        IndexError {
            path: self.path.clone(),
            source,
        }
    }
}

/// Collects query rows, skipping ones that do not parse (a row the index wrote is always
/// valid; a hand-edited one is ignored rather than failing every answer).
fn collect_ids<R, T>(
    rows: impl Iterator<Item = rusqlite::Result<R>>,
    parse: impl Fn(R) -> Option<T>,
) -> rusqlite::Result<Vec<T>> {
    let mut out = Vec::new();
    for row in rows {
        if let Some(value) = parse(row?) {
            out.push(value);
        }
    }
    Ok(out)
}

/// A row's columns in `jobs` order, as statement parameters.
type RowParams<'a> = (
    &'a str,
    &'static str,
    Option<&'a str>,
    i64,
    Option<i64>,
    i64,
    bool,
);

fn row_params(row: &IndexRow) -> RowParams<'_> {
    (
        row.job_id.as_str(),
        row.state.as_str(),
        row.tag.as_deref(),
        row.created_ms,
        row.settled_ms,
        row.dedupe_key,
        row.outputs_open,
    )
}

fn set_meta(conn: &Connection, key: &str, value: Option<&str>) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT OR REPLACE INTO meta (key, value) VALUES (?1, ?2)",
        params![key, value],
    )
    .map(drop)
}

/// This boot's id (Linux), which tells a restart of pcapd from a restart of the machine.
fn boot_id() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .ok()
        .map(|text| text.trim().to_owned())
}

/// `jobs_dir`'s modification time (it changes when a job directory is added or removed).
fn dir_mtime_of(jobs_dir: &Path) -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    let metadata = std::fs::metadata(jobs_dir).ok()?;
    Some(format!("{}.{:09}", metadata.mtime(), metadata.mtime_nsec()))
}

/// Entries of `jobs_dir` named like a job (names only: no record is read).
fn count_job_dirs(jobs_dir: &Path) -> Option<usize> {
    let entries = std::fs::read_dir(jobs_dir).ok()?;
    Some(
        entries
            .filter_map(Result::ok)
            .filter(|entry| {
                entry
                    .file_name()
                    .to_str()
                    .is_some_and(|name| JobId::parse(name).is_ok())
            })
            .count(),
    )
}

/// Creates the database file readable by pcapd only (SQLite gives its WAL and shared-memory
/// files the database file's mode).
fn create_private(path: &Path) {
    use std::os::unix::fs::OpenOptionsExt;
    let _ = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path);
}

/// Deletes the database and its WAL and shared-memory files.
pub(crate) fn remove_files(path: &Path) {
    for suffix in ["", "-wal", "-shm"] {
        let mut name = path.as_os_str().to_owned();
        name.push(suffix);
        let _ = std::fs::remove_file(PathBuf::from(name));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jobs::error::StoreError;
    use crate::jobs::fsutil::testdir::TestDir;
    use crate::jobs::model::{ErrorKind, JobError};
    use crate::jobs::store::tests::{indexed, put_job};
    use crate::jobs::store::{write_record_in, Indexing, JobStore, ListFilter};
    use crate::time::Timestamp;
    use std::time::Duration;

    fn at(millis: i64) -> Timestamp {
        Timestamp::from_unix_millis(millis)
    }

    /// xorshift64*: a reproducible random store without a dependency.
    struct Random(u64);

    impl Random {
        fn below(&mut self, n: u64) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n
        }
    }

    const TAGS: [Option<&str>; 4] = [None, Some("alpha"), Some("beta"), Some("gamma")];

    /// Jobs with random tags, creation times (many equal, so the id decides) and states.
    fn random_store(store: &JobStore, random: &mut Random, jobs: usize) {
        for n in 0..jobs {
            let tag = TAGS[random.below(4) as usize];
            let created = 1_000 * random.below(40) as i64;
            let job = put_job(store, tag, created, format!("{n}").as_bytes());
            let id = &job.job_id;
            let then = created + 10;
            match random.below(5) {
                0 => {}
                1 => drop(store.update(id, |r| r.start(at(then), 1)).unwrap()),
                2 => drop(
                    store
                        .update(id, |r| {
                            r.start(at(then), 1)?;
                            r.finish_done(at(then + 1), vec![], 0, vec![])
                        })
                        .unwrap(),
                ),
                3 => drop(
                    store
                        .update(id, |r| {
                            r.start(at(then), 1)?;
                            r.finish_failed(at(then + 1), JobError::new(ErrorKind::Analyzer, "x"))
                        })
                        .unwrap(),
                ),
                _ => drop(store.update(id, |r| r.cancel(at(then))).unwrap()),
            }
        }
    }

    fn random_filter(random: &mut Random) -> ListFilter {
        ListFilter {
            state: match random.below(6) {
                0 => Some(JobState::Queued),
                1 => Some(JobState::Running),
                2 => Some(JobState::Done),
                3 => Some(JobState::Failed),
                _ => None,
            },
            tag: TAGS[random.below(4) as usize].map(str::to_owned),
            limit: match random.below(3) {
                0 => None,
                _ => Some(random.below(60) as usize),
            },
            since: (random.below(2) == 0).then(|| at(1_000 * random.below(40) as i64).to_string()),
        }
    }

    fn ids(jobs: Vec<JobRecord>) -> Vec<JobId> {
        jobs.into_iter().map(|job| job.job_id).collect()
    }

    fn scan_list(store: &JobStore, filter: &ListFilter) -> Vec<JobId> {
        let since = filter
            .since
            .as_deref()
            .map(|s| Timestamp::parse(s).unwrap());
        ids(store.list_by_scan(filter, since).unwrap())
    }

    #[test]
    fn list_through_the_index_equals_the_full_scan_on_a_random_store() {
        let dir = TestDir::new("index-random");
        let store = indexed(&dir);
        assert!(store.index().is_some());
        let mut random = Random(0x9e37_79b9_7f4a_7c15);
        random_store(&store, &mut random, 300);
        for _ in 0..300 {
            let filter = random_filter(&mut random);
            assert_eq!(
                ids(store.list(&filter).unwrap()),
                scan_list(&store, &filter),
                "{filter:?}"
            );
        }
    }

    #[test]
    fn a_missing_index_is_rebuilt_from_the_records() {
        let dir = TestDir::new("index-rebuild");
        let plain = JobStore::open(dir.path()).unwrap();
        let mut random = Random(42);
        random_store(&plain, &mut random, 120);
        drop(plain);
        assert!(!dir.index_path().exists());

        let store = indexed(&dir);
        let index = store.index().unwrap();
        assert_eq!(index.count().unwrap(), 120);
        for _ in 0..50 {
            let filter = random_filter(&mut random);
            assert_eq!(
                ids(store.list(&filter).unwrap()),
                scan_list(&store, &filter)
            );
        }
        drop(store);

        // Closed cleanly: the next open trusts it as it is.
        let (_, catchup) = JobIndex::open(&dir.index_path(), dir.path()).unwrap();
        assert_eq!(catchup, Catchup::Nothing);
    }

    #[test]
    fn a_crash_between_record_and_index_is_repaired_at_open() {
        let dir = TestDir::new("index-repair");
        let store = indexed(&dir);
        let job = put_job(&store, Some("t"), 1_000, b"x");
        // The record changes on disk, but the process dies before the index row follows:
        // the dirty mark is all the index has.
        let mut running = store.load(&job.job_id).unwrap();
        running.start(at(2_000), 7).unwrap();
        store.index().unwrap().note_dirty(&[&job.job_id]);
        write_record_in(&store.job_dir(&job.job_id), &running).unwrap();
        // A job directory renamed into place, then the crash before its row.
        let ghost = put_job(&JobStore::open(dir.path()).unwrap(), None, 3_000, b"y");
        store.index().unwrap().note_dirty(&[&ghost.job_id]);
        std::mem::forget(store); // no clean close

        let store = indexed(&dir);
        let running_only = ListFilter {
            state: Some(JobState::Running),
            ..ListFilter::default()
        };
        assert_eq!(
            ids(store.list(&running_only).unwrap()),
            std::slice::from_ref(&job.job_id)
        );
        assert_eq!(
            ids(store.list(&ListFilter::default()).unwrap()),
            [ghost.job_id.clone(), job.job_id.clone()]
        );
        // Recovery sees both (and cleans only the live and repaired directories).
        let recovery = store.recover(at(10_000)).unwrap();
        assert_eq!(recovery.requeue, [job.job_id, ghost.job_id]);
    }

    #[test]
    fn jobs_added_by_another_program_while_closed_cause_a_rebuild() {
        let dir = TestDir::new("index-foreign");
        let store = indexed(&dir);
        put_job(&store, None, 1_000, b"a");
        drop(store);
        // An older pcapd (no index) accepts a job; the directory's mtime moves on.
        std::thread::sleep(Duration::from_millis(20));
        let foreign = put_job(&JobStore::open(dir.path()).unwrap(), None, 2_000, b"b");
        let store = indexed(&dir);
        assert_eq!(store.index().unwrap().count().unwrap(), 2);
        assert_eq!(
            store.list(&ListFilter::default()).unwrap()[0].job_id,
            foreign.job_id
        );
    }

    #[test]
    fn an_unclean_stop_in_another_boot_or_a_corrupt_file_rebuilds() {
        let dir = TestDir::new("index-boot");
        let store = indexed(&dir);
        put_job(&store, None, 1_000, b"a");
        drop(store);
        // As if the machine had died while the index was open.
        let conn = Connection::open(dir.index_path()).unwrap();
        set_meta(&conn, "open_boot", Some("another-boot")).unwrap();
        drop(conn);
        let (index, catchup) = JobIndex::open(&dir.index_path(), dir.path()).unwrap();
        assert!(matches!(catchup, Catchup::Rebuild(_)), "{catchup:?}");
        drop(index);
        assert_eq!(indexed(&dir).list(&ListFilter::default()).unwrap().len(), 1);

        std::fs::write(
            dir.index_path(),
            b"this is not a database, not even close..........",
        )
        .unwrap();
        remove_wal(&dir);
        let store = indexed(&dir);
        assert_eq!(store.index().unwrap().count().unwrap(), 1);
    }

    fn remove_wal(dir: &TestDir) {
        for suffix in ["-wal", "-shm"] {
            let mut name = dir.index_path().into_os_string();
            name.push(suffix);
            let _ = std::fs::remove_file(name);
        }
    }

    #[test]
    fn dedupe_through_the_index_takes_the_newest_live_or_done_match() {
        let dir = TestDir::new("index-dedupe");
        let store = indexed(&dir);
        let older = put_job(&store, None, 1_000, b"same");
        let newer = put_job(&store, None, 2_000, b"same");
        let hashes = older.sha256s();
        let found = store.find_duplicate(&hashes, &Map::new()).unwrap();
        assert_eq!(found.map(|j| j.job_id), Some(newer.job_id.clone()));
        store
            .update(&newer.job_id, |r| r.cancel(at(3_000)))
            .unwrap();
        let found = store.find_duplicate(&hashes, &Map::new()).unwrap();
        assert_eq!(found.map(|j| j.job_id), Some(older.job_id.clone()));
        // Options are part of the key.
        let mut options = Map::new();
        options.insert("format".into(), Value::from("json"));
        assert!(store.find_duplicate(&hashes, &options).unwrap().is_none());
    }

    #[test]
    fn retention_removes_index_rows_and_a_closed_index_is_never_trusted_behind() {
        let dir = TestDir::new("index-retention");
        let store = indexed(&dir);
        let done = put_job(&store, None, 1_000, b"a");
        store
            .update(&done.job_id, |r| {
                r.start(at(1_500), 1)?;
                r.finish_done(at(2_000), vec![], 0, vec![])
            })
            .unwrap();
        let queued = put_job(&store, None, 1_000, b"b");
        let removed = store.sweep(Duration::from_secs(1), 0, at(10_000)).unwrap();
        assert_eq!(removed, std::slice::from_ref(&done.job_id));
        assert_eq!(store.index().unwrap().count().unwrap(), 1);
        assert_eq!(
            ids(store.list(&ListFilter::default()).unwrap()),
            std::slice::from_ref(&queued.job_id)
        );

        // A write after the clean close breaks the index: the next start rebuilds it.
        store.close_index();
        store
            .update(&queued.job_id, |r| r.cancel(at(11_000)))
            .unwrap();
        assert!(store.index().is_none());
        assert!(!dir.index_path().exists());
        drop(store);
        let store = indexed(&dir);
        let cancelled = ListFilter {
            state: Some(JobState::Cancelled),
            ..ListFilter::default()
        };
        assert_eq!(ids(store.list(&cancelled).unwrap()), [queued.job_id]);
    }

    #[test]
    fn outputs_pending_follows_the_records() {
        let dir = TestDir::new("index-outputs");
        let store = indexed(&dir);
        let job = put_job(&store, None, 1_000, b"a");
        store
            .update(&job.job_id, |r| {
                r.start(at(1_500), 1)?;
                r.finish_done(at(2_000), vec![], 0, vec![])?;
                r.forwarding = Some(crate::jobs::Forwarding::pending());
                Ok::<(), StoreError>(())
            })
            .unwrap();
        assert_eq!(
            store.outputs_pending().unwrap(),
            std::slice::from_ref(&job.job_id)
        );
        store
            .update(&job.job_id, |r| {
                if let Some(f) = &mut r.forwarding {
                    f.state = crate::jobs::OutputState::Done;
                }
                Ok::<(), StoreError>(())
            })
            .unwrap();
        assert!(store.outputs_pending().unwrap().is_empty());
        let plain = JobStore::open_for(dir.path(), None, Indexing::Off).unwrap();
        assert!(plain.outputs_pending().unwrap().is_empty());
    }
}
