//! Getting captures into the store: streamed uploads and `paths` under `spool_dir`.
//!
//! Both build a [`PendingJob`] in `jobs/.tmp-ID/`, invisible to listing and recovery (which
//! deletes such directories). Bytes are hashed (SHA-256) as they are written. `commit` checks
//! every size and writes `job.json`; then the group commit (`commit.rs`), for every job
//! committing at the same time, fsyncs the captures, `job.json` and their directories,
//! renames each directory to `jobs/ID` and fsyncs `jobs/` once: only then is the job durable
//! and may be acknowledged.
//! Dropping a `PendingJob` without committing removes its directory, so a cut stream or a
//! rejected chunk never leaves a half-written job.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use super::commit::{GroupCommit, Staged};
use super::error::{PathRejection, StoreError};
use super::fsutil::TEMP_PREFIX;
use super::index::IndexRow;
use super::model::{validate_tag, ClusterState, JobFile, JobId, JobRecord};
use super::store::{
    give_to_group, record_bytes, JobStore, WorkerAccess, LOGS_DIR, PCAPS_DIR, RECORD_FILE,
};
use crate::time::Timestamp;

/// The most captures one job may hold.
pub const MAX_FILES_PER_JOB: usize = 64;
/// The longest client file name kept as a label.
pub const MAX_FILE_NAME_LEN: usize = 255;

const PCAPNG_MAGIC: [u8; 4] = [0x0a, 0x0d, 0x0d, 0x0a];

/// One file a client declares before sending its bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileDecl {
    pub name: String,
    pub size: u64,
}

/// A job being received. Send it between threads freely; commit it or drop it.
#[derive(Debug)]
pub struct PendingJob {
    id: JobId,
    jobs_dir: PathBuf,
    temp_dir: PathBuf,
    /// The store's group commit (and through it, its index).
    group: Arc<GroupCommit>,
    /// Who the job's workers run as, when not pcapd (`WorkerAccess`).
    worker: Option<WorkerAccess>,
    tag: Option<String>,
    options: Map<String, Value>,
    files: Vec<IncomingFile>,
    /// With `[Cluster]`: the job's cluster fields, written with its first record.
    cluster: Option<ClusterState>,
    /// Set once the temp directory has been renamed into place; Drop must not touch it then.
    committed: bool,
}

#[derive(Debug)]
struct IncomingFile {
    name: String,
    /// The declared size; for a streamed file still open, the most it may grow to.
    declared: u64,
    /// A streamed file whose size is only known at its end.
    open_ended: bool,
    received: u64,
    hasher: Sha256,
    /// The first bytes, enough to recognise pcapng's magic.
    head: Vec<u8>,
    handle: Option<File>,
    part_path: PathBuf,
}

impl IncomingFile {
    fn absorb(&mut self, data: &[u8]) {
        self.hasher.update(data);
        let wanted = PCAPNG_MAGIC.len().saturating_sub(self.head.len());
        self.head.extend_from_slice(&data[..wanted.min(data.len())]);
        self.received += data.len() as u64;
    }

    fn is_pcapng(&self) -> bool {
        self.name.to_ascii_lowercase().ends_with(".pcapng") || self.head == PCAPNG_MAGIC
    }
}

impl JobStore {
    /// Starts receiving an upload of `files`. Everything that can be refused before a byte
    /// arrives is refused here: no files, too many, a name that is not a plain label, a bad
    /// tag, a file over `max_upload` (0 = no cap).
    pub fn begin_upload(
        &self,
        files: Vec<FileDecl>,
        tag: Option<String>,
        options: Map<String, Value>,
        max_upload: u64,
    ) -> Result<PendingJob, StoreError> {
        check_submission(files.iter().map(|decl| decl.name.as_str()), &tag)?;
        for (index, decl) in files.iter().enumerate() {
            if max_upload > 0 && decl.size > max_upload {
                return Err(StoreError::UploadTooLarge {
                    index,
                    name: decl.name.clone(),
                    size: decl.size,
                    max: max_upload,
                });
            }
        }
        PendingJob::create(self, files, tag, options)
    }

    /// Starts receiving an upload whose files and sizes are learnt as they arrive (HTTP
    /// multipart): [`PendingJob::add_file`] opens each, [`PendingJob::end_file`] closes it;
    /// no file may pass `max_upload` (0 = no cap).
    pub fn begin_stream(
        &self,
        tag: Option<String>,
        options: Map<String, Value>,
    ) -> Result<PendingJob, StoreError> {
        if let Some(tag) = &tag {
            validate_tag(tag)?;
        }
        PendingJob::create(self, Vec::new(), tag, options)
    }

    /// Stages the files named by `paths` (relative to `spool_dir`, or absolute under it) as a
    /// pending job. Every path is checked before anything is created; the captures are hard
    /// linked when possible, else copied, and hashed either way.
    ///
    /// Hazard: a hard link shares the inode, so a producer that rewrites a spool file in place
    /// (rather than replacing it by rename) changes the job's capture after it was hashed.
    /// Spool writers are expected to write-then-rename, as log shippers do.
    pub fn stage_paths(
        &self,
        spool_dir: &Path,
        paths: &[String],
        tag: Option<String>,
        options: Map<String, Value>,
    ) -> Result<PendingJob, StoreError> {
        let spool = fs::canonicalize(spool_dir).map_err(StoreError::io(spool_dir))?;
        let sources = paths
            .iter()
            .map(|raw| resolve_in_spool(spool_dir, &spool, raw))
            .collect::<Result<Vec<_>, _>>()?;
        check_submission(sources.iter().map(|source| source.name.as_str()), &tag)?;
        let decls = sources
            .iter()
            .map(|source| FileDecl {
                name: source.name.clone(),
                size: source.size,
            })
            .collect();
        let mut pending = PendingJob::create(self, decls, tag, options)?;
        for (index, source) in sources.iter().enumerate() {
            pending.adopt(index, &source.path, LinkPolicy::LinkOrCopy)?;
        }
        Ok(pending)
    }

    /// `stage_paths` then `commit`: the `submit` request with `paths`.
    pub fn submit_paths(
        &self,
        spool_dir: &Path,
        paths: &[String],
        tag: Option<String>,
        options: Map<String, Value>,
        now: Timestamp,
    ) -> Result<JobRecord, StoreError> {
        self.stage_paths(spool_dir, paths, tag, options)?
            .commit(now)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LinkPolicy {
    LinkOrCopy,
    #[cfg(test)]
    CopyOnly,
}

impl PendingJob {
    fn create(
        store: &JobStore,
        decls: Vec<FileDecl>,
        tag: Option<String>,
        options: Map<String, Value>,
    ) -> Result<PendingJob, StoreError> {
        let (jobs_dir, worker) = (store.jobs_dir(), store.worker_access());
        let id = JobId::generate().map_err(StoreError::io(jobs_dir))?;
        let temp_dir = jobs_dir.join(format!("{TEMP_PREFIX}{id}"));
        fs::create_dir(&temp_dir).map_err(StoreError::io(&temp_dir))?;
        // From here on the directory belongs to `pending`, whose Drop removes it on any error.
        let pcaps_dir = temp_dir.join(PCAPS_DIR);
        let files = decls
            .into_iter()
            .enumerate()
            .map(|(index, decl)| IncomingFile {
                name: decl.name,
                declared: decl.size,
                open_ended: false,
                received: 0,
                hasher: Sha256::new(),
                head: Vec::with_capacity(PCAPNG_MAGIC.len()),
                handle: None,
                part_path: pcaps_dir.join(format!("{TEMP_PREFIX}{index}.part")),
            })
            .collect();
        let pending = PendingJob {
            id,
            jobs_dir: jobs_dir.to_path_buf(),
            temp_dir,
            group: store.group_commit(),
            worker,
            tag,
            options,
            files,
            cluster: None,
            committed: false,
        };
        fs::create_dir(&pcaps_dir).map_err(StoreError::io(&pcaps_dir))?;
        Ok(pending)
    }

    /// The id the job will have once committed.
    pub fn job_id(&self) -> &JobId {
        &self.id
    }

    /// Bytes still expected for file `index` (0 once it is complete).
    pub fn remaining(&self, index: usize) -> Option<u64> {
        self.files
            .get(index)
            .map(|file| file.declared - file.received)
    }

    /// Appends `data` to file `index`. A chunk that would pass the declared size is refused
    /// whole (nothing of it is written); the caller then drops the job.
    pub fn write_chunk(&mut self, index: usize, data: &[u8]) -> Result<(), StoreError> {
        let count = self.files.len();
        let file = self.files.get_mut(index).ok_or_else(|| {
            StoreError::BadRequest(format!(
                "file index {index} out of range ({count} declared)"
            ))
        })?;
        let attempted = file.received + data.len() as u64;
        if attempted > file.declared && file.open_ended {
            return Err(StoreError::UploadTooLarge {
                index,
                name: file.name.clone(),
                size: attempted,
                max: file.declared,
            });
        }
        if attempted > file.declared {
            return Err(StoreError::UploadOverrun {
                index,
                name: file.name.clone(),
                declared: file.declared,
                attempted,
            });
        }
        let handle = match &mut file.handle {
            Some(handle) => handle,
            None => file.handle.insert(
                OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .open(&file.part_path)
                    .map_err(StoreError::io(&file.part_path))?,
            ),
        };
        handle
            .write_all(data)
            .map_err(StoreError::io(&file.part_path))?;
        file.absorb(data);
        Ok(())
    }

    /// Opens the next streamed file (see [`JobStore::begin_stream`]); returns its index.
    pub fn add_file(&mut self, name: &str, max_upload: u64) -> Result<usize, StoreError> {
        let index = self.files.len();
        if index >= MAX_FILES_PER_JOB {
            return Err(too_many_files(index + 1));
        }
        check_file_name(index, name)?;
        let pcaps_dir = self.temp_dir.join(PCAPS_DIR);
        self.files.push(IncomingFile {
            name: name.to_owned(),
            declared: if max_upload == 0 {
                u64::MAX
            } else {
                max_upload
            },
            open_ended: true,
            received: 0,
            hasher: Sha256::new(),
            head: Vec::with_capacity(PCAPNG_MAGIC.len()),
            handle: None,
            part_path: pcaps_dir.join(format!("{TEMP_PREFIX}{index}.part")),
        });
        Ok(index)
    }

    /// Gives the job its cluster fields (`[Cluster]`), in the record `commit` writes.
    pub fn set_cluster(&mut self, cluster: ClusterState) {
        self.cluster = Some(cluster);
    }

    /// Sets the tag of a streamed submission (a form field may come after the files).
    pub fn set_tag(&mut self, tag: Option<String>) -> Result<(), StoreError> {
        if let Some(tag) = &tag {
            validate_tag(tag)?;
        }
        self.tag = tag;
        Ok(())
    }

    /// Closes streamed file `index`: its size is what arrived.
    pub fn end_file(&mut self, index: usize) {
        if let Some(file) = self.files.get_mut(index) {
            file.declared = file.received;
            file.open_ended = false;
        }
    }

    /// The SHA-256 of every file, once every file has exactly its declared size (for dedupe
    /// before committing).
    pub fn sha256s(&self) -> Result<Vec<String>, StoreError> {
        self.files
            .iter()
            .enumerate()
            .map(|(index, file)| {
                if file.received != file.declared {
                    return Err(StoreError::UploadIncomplete {
                        index,
                        name: file.name.clone(),
                        declared: file.declared,
                        received: file.received,
                    });
                }
                Ok(hex(&file.hasher.clone().finalize()))
            })
            .collect()
    }

    /// Makes the job durable and visible as `queued`; see the module comment for the order.
    pub fn commit(mut self, now: Timestamp) -> Result<JobRecord, StoreError> {
        if self.files.is_empty() {
            return Err(StoreError::BadRequest("no files in submission".into()));
        }
        for index in 0..self.files.len() {
            if self.files[index].open_ended {
                self.end_file(index);
            }
        }
        let sha256s = self.sha256s()?;
        let pcaps_dir = self.temp_dir.join(PCAPS_DIR);
        let mut job_files = Vec::with_capacity(self.files.len());
        let mut durable = Vec::with_capacity(self.files.len() + 1);
        for ((index, file), sha256) in self.files.iter_mut().enumerate().zip(sha256s) {
            // Adopted (linked or copied) files are on disk already; an empty upload never
            // got a chunk, so its file is created here. Nothing is fsynced yet: the group
            // commit does that for every job of its batch before any of them is renamed.
            if file.handle.take().is_none() && !file.part_path.exists() {
                File::create(&file.part_path).map_err(StoreError::io(&file.part_path))?;
            }
            let extension = if file.is_pcapng() { "pcapng" } else { "pcap" };
            let stored = format!("{PCAPS_DIR}/{index}.{extension}");
            let final_path = self.temp_dir.join(&stored);
            fs::rename(&file.part_path, &final_path).map_err(StoreError::io(&final_path))?;
            durable.push(final_path);
            job_files.push(JobFile {
                name: file.name.clone(),
                stored,
                size: file.declared,
                sha256,
            });
        }
        let logs_dir = self.temp_dir.join(LOGS_DIR);
        fs::create_dir(&logs_dir).map_err(StoreError::io(&logs_dir))?;
        if let Some(access) = self.worker {
            give_to_group(&self.temp_dir, access, 0o770)?;
            give_to_group(&pcaps_dir, access, 0o750)?;
            for file in &job_files {
                give_to_group(&self.temp_dir.join(&file.stored), access, 0o640)?;
            }
            std::os::unix::fs::chown(&logs_dir, Some(access.uid), Some(access.gid))
                .map_err(StoreError::io(&logs_dir))?;
        }

        let mut record = JobRecord::new_queued(
            self.id.clone(),
            self.tag.take(),
            std::mem::take(&mut self.options),
            job_files,
            now,
        );
        record.cluster = self.cluster.take();
        // The directory is private until renamed: job.json is written in place, made
        // durable with the captures.
        let record_path = self.temp_dir.join(RECORD_FILE);
        let text = record_bytes(&record_path, &record)?;
        OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&record_path)
            .and_then(|mut handle| handle.write_all(&text))
            .map_err(StoreError::io(&record_path))?;
        durable.push(record_path);

        let final_dir = self.jobs_dir.join(self.id.as_str());
        let staged = Staged {
            temp_dir: self.temp_dir.clone(),
            final_dir: final_dir.clone(),
            files: durable,
            dirs: vec![pcaps_dir, self.temp_dir.clone()],
            row: IndexRow::of(&record),
        };
        if let Err(error) = self.group.commit(staged) {
            // Not durable, so not acknowledged: take the job back (renamed or not) rather
            // than leave one the client was told failed.
            let _ = fs::remove_dir_all(&final_dir);
            return Err(error);
        }
        self.committed = true;
        Ok(record)
    }

    /// Fills file `index` from `source`: a hard link (same file system, permitted) or a copy,
    /// hashed either way. The declared size becomes what was actually taken.
    fn adopt(&mut self, index: usize, source: &Path, policy: LinkPolicy) -> Result<(), StoreError> {
        let file = &mut self.files[index];
        let linked = policy == LinkPolicy::LinkOrCopy
            && fs::hard_link(source, &file.part_path).is_ok()
            // link(2) does not follow a final symlink: if the source was swapped for one since
            // it was checked, refuse the link and fall back to copying the checked path.
            && match fs::symlink_metadata(&file.part_path) {
                Ok(metadata) if metadata.is_file() => true,
                _ => {
                    let _ = fs::remove_file(&file.part_path);
                    false
                }
            };
        let (mut reader, reader_path) = if linked {
            (open_no_follow(&file.part_path)?, file.part_path.clone())
        } else {
            (open_no_follow(source)?, source.to_path_buf())
        };
        let mut copy = if linked {
            None
        } else {
            Some(
                OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .open(&file.part_path)
                    .map_err(StoreError::io(&file.part_path))?,
            )
        };
        let mut buffer = vec![0u8; 256 * 1024];
        loop {
            let read = reader
                .read(&mut buffer)
                .map_err(StoreError::io(&reader_path))?;
            if read == 0 {
                break;
            }
            if let Some(copy) = &mut copy {
                copy.write_all(&buffer[..read])
                    .map_err(StoreError::io(&file.part_path))?;
            }
            file.absorb(&buffer[..read]);
        }
        file.declared = file.received;
        file.handle = copy;
        Ok(())
    }
}

impl Drop for PendingJob {
    fn drop(&mut self) {
        if !self.committed {
            if let Err(error) = fs::remove_dir_all(&self.temp_dir) {
                if error.kind() != std::io::ErrorKind::NotFound {
                    tracing::warn!(path = %self.temp_dir.display(), %error,
                        "could not remove an abandoned upload; recovery will");
                }
            }
        }
    }
}

fn open_no_follow(path: &Path) -> Result<File, StoreError> {
    OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .map_err(StoreError::io(path))
}

/// Checks what every submission shares: 1..=64 files, labels that are plain names, the tag.
fn check_submission<'a>(
    names: impl ExactSizeIterator<Item = &'a str>,
    tag: &Option<String>,
) -> Result<(), StoreError> {
    match names.len() {
        0 => return Err(StoreError::BadRequest("no files in submission".into())),
        count if count > MAX_FILES_PER_JOB => return Err(too_many_files(count)),
        _ => {}
    }
    for (index, name) in names.enumerate() {
        check_file_name(index, name)?;
    }
    if let Some(tag) = tag {
        validate_tag(tag)?;
    }
    Ok(())
}

fn too_many_files(count: usize) -> StoreError {
    StoreError::BadRequest(format!(
        "{count} files in submission; at most {MAX_FILES_PER_JOB} are allowed"
    ))
}

/// Client names are labels in job.json, never paths; anything that looks like one is refused
/// so no consumer is tempted to treat it as such.
fn check_file_name(index: usize, name: &str) -> Result<(), StoreError> {
    let plain = !name.is_empty()
        && name.len() <= MAX_FILE_NAME_LEN
        && name != "."
        && name != ".."
        && !name.contains(['/', '\\'])
        && !name.chars().any(char::is_control);
    if plain {
        Ok(())
    } else {
        Err(StoreError::BadRequest(format!(
            "file {index}: name {name:?} must be a plain file name (no separators or control characters, 1..={MAX_FILE_NAME_LEN} bytes)"
        )))
    }
}

/// A `paths` entry resolved to a regular file inside the spool.
struct SpoolSource {
    name: String,
    path: PathBuf,
    size: u64,
}

fn resolve_in_spool(
    configured: &Path,
    canonical: &Path,
    raw: &str,
) -> Result<SpoolSource, StoreError> {
    let reject = |reason| StoreError::PathRejected {
        path: raw.to_owned(),
        reason,
    };
    if raw.is_empty() {
        return Err(reject(PathRejection::Empty));
    }
    if raw.contains('\0') {
        return Err(reject(PathRejection::NulByte));
    }
    let given = Path::new(raw);
    if given.components().any(|part| part == Component::ParentDir) {
        return Err(reject(PathRejection::ParentComponent));
    }
    let lexical = if given.is_absolute() {
        if !(given.starts_with(configured) || given.starts_with(canonical)) {
            return Err(reject(PathRejection::OutsideSpool));
        }
        given.to_path_buf()
    } else {
        canonical.join(given)
    };
    let resolved = match fs::canonicalize(&lexical) {
        Ok(resolved) => resolved,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            return Err(reject(PathRejection::Missing))
        }
        Err(error) => return Err(StoreError::io(&lexical)(error)),
    };
    if !resolved.starts_with(canonical) {
        return Err(reject(PathRejection::SymlinkOutside));
    }
    let metadata = fs::metadata(&resolved).map_err(StoreError::io(&resolved))?;
    if !metadata.is_file() {
        return Err(reject(PathRejection::NotRegularFile));
    }
    let name = given
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .ok_or_else(|| reject(PathRejection::NotRegularFile))?;
    Ok(SpoolSource {
        name,
        path: resolved,
        size: metadata.len(),
    })
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jobs::fsutil::testdir::TestDir;
    use crate::jobs::model::JobState;
    use crate::jobs::store::tests::indexed;
    use std::os::unix::fs::MetadataExt;

    const SHA_ABC: &str = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
    const SHA_EMPTY: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
    /// SHA-256 of "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq" (FIPS 180-2).
    const SHA_448: &str = "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1";
    const MSG_448: &[u8] = b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";

    fn now() -> Timestamp {
        Timestamp::from_unix_millis(1_700_000_000_000)
    }

    fn decl(name: &str, size: usize) -> FileDecl {
        FileDecl {
            name: name.into(),
            size: size as u64,
        }
    }

    fn entries(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn upload_happy_path_hashes_names_and_durable_layout() {
        let dir = TestDir::new("upload");
        let store = indexed(&dir);
        let mut pcapng = PCAPNG_MAGIC.to_vec();
        pcapng.extend_from_slice(b"rest");
        let files = vec![
            decl("first.pcap", 3),
            decl("trace.PCAPNG", 0),
            decl("sniffed.cap", pcapng.len()),
            decl("fips.pcap", MSG_448.len()),
        ];
        let mut options = Map::new();
        options.insert("format".into(), Value::from("json"));
        let mut pending = store
            .begin_upload(files, Some("sensor-1".into()), options.clone(), 1 << 20)
            .unwrap();
        let id = pending.job_id().clone();
        assert!(dir.path().join(format!(".tmp-{id}")).is_dir());

        pending.write_chunk(0, b"a").unwrap();
        pending.write_chunk(0, b"bc").unwrap();
        // Magic split across chunks still identifies pcapng.
        pending.write_chunk(2, &pcapng[..2]).unwrap();
        pending.write_chunk(2, &pcapng[2..]).unwrap();
        for piece in MSG_448.chunks(5) {
            pending.write_chunk(3, piece).unwrap();
        }
        assert_eq!(pending.remaining(3), Some(0));
        assert_eq!(pending.sha256s().unwrap()[3], SHA_448);

        let record = pending.commit(now()).unwrap();
        assert_eq!(record.job_id, id);
        assert_eq!(record.state, JobState::Queued);
        assert_eq!(record.tag.as_deref(), Some("sensor-1"));
        assert_eq!(record.options, options);
        assert_eq!(record.created_at, now());
        let summary: Vec<(&str, &str, u64, &str)> = record
            .files
            .iter()
            .map(|f| {
                (
                    f.name.as_str(),
                    f.stored.as_str(),
                    f.size,
                    f.sha256.as_str(),
                )
            })
            .collect();
        assert_eq!(summary[0], ("first.pcap", "pcaps/0.pcap", 3, SHA_ABC));
        assert_eq!(summary[1], ("trace.PCAPNG", "pcaps/1.pcapng", 0, SHA_EMPTY));
        assert_eq!(summary[2].1, "pcaps/2.pcapng");
        assert_eq!(summary[3], ("fips.pcap", "pcaps/3.pcap", 56, SHA_448));

        assert_eq!(entries(dir.path()), [id.to_string()]);
        assert_eq!(entries(&store.job_dir(&id)), ["job.json", "logs", "pcaps"]);
        assert_eq!(
            entries(&store.job_dir(&id).join("pcaps")),
            ["0.pcap", "1.pcapng", "2.pcapng", "3.pcap"]
        );
        let paths = store.pcap_paths(&record);
        assert_eq!(fs::read(&paths[0]).unwrap(), b"abc");
        assert_eq!(fs::read(&paths[2]).unwrap(), pcapng);
        assert_eq!(store.load(&id).unwrap(), record);
        assert_eq!(record.submit_answer()["sha256"][0], SHA_ABC);
    }

    #[test]
    fn overrun_is_refused_and_leaves_no_job() {
        let dir = TestDir::new("overrun");
        let store = indexed(&dir);
        let mut pending = store
            .begin_upload(vec![decl("a.pcap", 4)], None, Map::new(), 0)
            .unwrap();
        pending.write_chunk(0, b"abc").unwrap();
        let error = pending.write_chunk(0, b"de").unwrap_err();
        assert!(matches!(
            error,
            StoreError::UploadOverrun {
                index: 0,
                declared: 4,
                attempted: 5,
                ..
            }
        ));
        assert_eq!(error.code().as_str(), "upload_size_mismatch");
        drop(pending);
        assert!(entries(dir.path()).is_empty());
    }

    #[test]
    fn short_upload_cannot_commit_and_leaves_nothing() {
        let dir = TestDir::new("short");
        let store = indexed(&dir);
        let mut pending = store
            .begin_upload(
                vec![decl("a.pcap", 3), decl("b.pcap", 2)],
                None,
                Map::new(),
                0,
            )
            .unwrap();
        pending.write_chunk(0, b"abc").unwrap();
        pending.write_chunk(1, b"x").unwrap();
        let error = pending.commit(now()).unwrap_err();
        assert!(matches!(
            error,
            StoreError::UploadIncomplete {
                index: 1,
                declared: 2,
                received: 1,
                ..
            }
        ));
        assert!(entries(dir.path()).is_empty());
    }

    #[test]
    fn dropping_without_commit_removes_the_temp_dir() {
        let dir = TestDir::new("drop");
        let store = indexed(&dir);
        let mut pending = store
            .begin_upload(vec![decl("a.pcap", 3)], None, Map::new(), 0)
            .unwrap();
        pending.write_chunk(0, b"abc").unwrap();
        assert_eq!(entries(dir.path()).len(), 1);
        drop(pending);
        assert!(entries(dir.path()).is_empty());
        assert!(store.list(&Default::default()).unwrap().is_empty());
    }

    #[test]
    fn declarations_are_checked_before_any_byte() {
        let dir = TestDir::new("decls");
        let store = indexed(&dir);
        let begin = |files: Vec<FileDecl>, tag: Option<&str>, max: u64| {
            store
                .begin_upload(files, tag.map(str::to_owned), Map::new(), max)
                .map(|_| ())
                .unwrap_err()
        };
        assert_eq!(begin(vec![], None, 0).code().as_str(), "bad_request");
        let many = (0..65).map(|i| decl(&format!("{i}.pcap"), 1)).collect();
        assert!(begin(many, None, 0).to_string().contains("at most 64"));
        for bad in ["", "..", "../x.pcap", "dir/x.pcap", "c:\\x.pcap", "a\nb"] {
            assert_eq!(
                begin(vec![decl(bad, 1)], None, 0).code().as_str(),
                "bad_request",
                "{bad:?}"
            );
        }
        assert_eq!(
            begin(vec![decl("a.pcap", 1)], Some("a b"), 0)
                .code()
                .as_str(),
            "bad_tag"
        );
        let large = begin(vec![decl("ok.pcap", 1), decl("big.pcap", 11)], None, 10);
        assert!(matches!(
            large,
            StoreError::UploadTooLarge {
                index: 1,
                size: 11,
                max: 10,
                ..
            }
        ));
        assert!(entries(dir.path()).is_empty());

        let mut pending = store
            .begin_upload(vec![decl("a.pcap", 1)], None, Map::new(), 0)
            .unwrap();
        assert_eq!(
            pending.write_chunk(1, b"x").unwrap_err().code().as_str(),
            "bad_request"
        );
    }

    struct Spool {
        _root: TestDir,
        spool: PathBuf,
        outside: PathBuf,
        store: JobStore,
    }

    fn spool() -> Spool {
        let root = TestDir::new("spool");
        let spool = root.path().join("spool");
        let outside = root.path().join("outside");
        fs::create_dir_all(spool.join("day1")).unwrap();
        fs::create_dir_all(&outside).unwrap();
        fs::write(spool.join("day1/a.pcap"), b"abc").unwrap();
        fs::write(spool.join("b.pcapng"), MSG_448).unwrap();
        fs::write(outside.join("secret.pcap"), b"secret").unwrap();
        std::os::unix::fs::symlink(outside.join("secret.pcap"), spool.join("escape.pcap")).unwrap();
        std::os::unix::fs::symlink(&outside, spool.join("escape-dir")).unwrap();
        std::os::unix::fs::symlink(spool.join("day1/a.pcap"), spool.join("alias.pcap")).unwrap();
        let store = JobStore::open(&root.path().join("jobs")).unwrap();
        Spool {
            _root: root,
            spool,
            outside,
            store,
        }
    }

    #[test]
    fn submit_paths_links_hashes_and_commits() {
        let s = spool();
        let absolute = s.spool.join("b.pcapng").to_string_lossy().into_owned();
        let paths = ["day1/a.pcap".to_owned(), absolute, "alias.pcap".to_owned()];
        let record = s
            .store
            .submit_paths(&s.spool, &paths, Some("t".into()), Map::new(), now())
            .unwrap();
        let summary: Vec<(&str, &str, &str)> = record
            .files
            .iter()
            .map(|f| (f.name.as_str(), f.stored.as_str(), f.sha256.as_str()))
            .collect();
        assert_eq!(
            summary,
            [
                ("a.pcap", "pcaps/0.pcap", SHA_ABC),
                ("b.pcapng", "pcaps/1.pcapng", SHA_448),
                ("alias.pcap", "pcaps/2.pcap", SHA_ABC),
            ]
        );
        let stored = s.store.pcap_paths(&record);
        // Same file system: a hard link, not a copy.
        let source_inode = fs::metadata(s.spool.join("day1/a.pcap")).unwrap().ino();
        assert_eq!(fs::metadata(&stored[0]).unwrap().ino(), source_inode);
        assert_eq!(s.store.load(&record.job_id).unwrap(), record);
        assert_eq!(entries(s.store.jobs_dir()), [record.job_id.to_string()]);
    }

    #[test]
    fn copy_fallback_hashes_while_copying() {
        let s = spool();
        let mut pending =
            PendingJob::create(&s.store, vec![decl("b.pcapng", 0)], None, Map::new()).unwrap();
        pending
            .adopt(0, &s.spool.join("b.pcapng"), LinkPolicy::CopyOnly)
            .unwrap();
        let record = pending.commit(now()).unwrap();
        assert_eq!(record.files[0].sha256, SHA_448);
        assert_eq!(record.files[0].size, MSG_448.len() as u64);
        let stored = &s.store.pcap_paths(&record)[0];
        assert_eq!(fs::read(stored).unwrap(), MSG_448);
        let source_inode = fs::metadata(s.spool.join("b.pcapng")).unwrap().ino();
        assert_ne!(fs::metadata(stored).unwrap().ino(), source_inode);
    }

    #[test]
    fn submit_paths_rejects_escapes_with_typed_reasons() {
        let s = spool();
        let outside_abs = s.outside.join("secret.pcap").to_string_lossy().into_owned();
        let cases = [
            ("", PathRejection::Empty),
            ("../outside/secret.pcap", PathRejection::ParentComponent),
            ("day1/../b.pcapng", PathRejection::ParentComponent),
            (outside_abs.as_str(), PathRejection::OutsideSpool),
            ("/etc/passwd", PathRejection::OutsideSpool),
            ("escape.pcap", PathRejection::SymlinkOutside),
            ("escape-dir/secret.pcap", PathRejection::SymlinkOutside),
            ("day1", PathRejection::NotRegularFile),
            ("missing.pcap", PathRejection::Missing),
            ("day1/a.pcap\0x", PathRejection::NulByte),
        ];
        for (path, expected) in cases {
            // A good path first proves one bad entry refuses the whole submission.
            let paths = ["day1/a.pcap".to_owned(), path.to_owned()];
            let error = s
                .store
                .submit_paths(&s.spool, &paths, None, Map::new(), now())
                .unwrap_err();
            match error {
                StoreError::PathRejected { path: got, reason } => {
                    assert_eq!((got.as_str(), reason), (path, expected));
                }
                other => panic!("{path:?}: unexpected {other}"),
            }
        }
        assert!(entries(s.store.jobs_dir()).is_empty());
    }
}
