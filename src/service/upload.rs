//! Submissions whose captures are streamed in: the TLS protocol's declared files
//! ([`DeclaredUpload`]) and the HTTP gateway's multipart parts ([`StreamUpload`]).
//!
//! An upload owns its pending job until it is committed; dropped unfinished (a client gone,
//! a refused chunk), the pending job removes what was received.

use std::sync::Arc;

use super::intake::{Intake, Submitted};
use super::{JobOptions, ServiceError, Tag};
use crate::jobs::{PendingJob, StoreError};
use crate::ledger::blocking;
use crate::protocol::ErrorCode;

/// An upload in progress.
struct Upload {
    intake: Arc<Intake>,
    options: JobOptions,
    pending: Option<PendingJob>,
}

impl Upload {
    fn new(intake: Arc<Intake>, pending: PendingJob, options: JobOptions) -> Upload {
        Upload {
            intake,
            options,
            pending: Some(pending),
        }
    }

    /// Runs `step` on the pending job on a blocking thread.
    async fn with_pending<T: Send + 'static>(
        &mut self,
        step: impl FnOnce(&mut PendingJob) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, ServiceError> {
        let mut pending = self.pending.take().ok_or_else(finished)?;
        let (pending, result) = blocking(move || {
            let result = step(&mut pending);
            (pending, result)
        })
        .await;
        self.pending = Some(pending);
        result.map_err(|e| {
            let e = ServiceError::from(e);
            self.intake.refused(&e);
            e
        })
    }

    async fn finish(mut self) -> Result<Submitted, ServiceError> {
        let pending = self.pending.take().ok_or_else(finished)?;
        let options = std::mem::take(&mut self.options);
        let intake = self.intake.clone();
        intake
            .settle(pending, options)
            .await
            .inspect_err(|e| intake.refused(e))
    }
}

fn finished() -> ServiceError {
    ServiceError::new(ErrorCode::Internal, "upload already finished")
}

/// The TLS protocol's upload: sizes declared in the request, bytes in the frames after it.
pub struct DeclaredUpload {
    sizes: Vec<u64>,
    upload: Upload,
}

impl DeclaredUpload {
    pub(super) fn new(
        intake: Arc<Intake>,
        sizes: Vec<u64>,
        pending: PendingJob,
        options: JobOptions,
    ) -> DeclaredUpload {
        DeclaredUpload {
            sizes,
            upload: Upload::new(intake, pending, options),
        }
    }

    pub fn sizes(&self) -> &[u64] {
        &self.sizes
    }

    /// Stores the next chunk of file `index`; hands the buffer back for reuse.
    pub async fn write(&mut self, index: usize, data: Vec<u8>) -> Result<Vec<u8>, ServiceError> {
        let data = self
            .upload
            .with_pending(move |pending| pending.write_chunk(index, &data).map(|()| data))
            .await?;
        self.upload.intake.stored(data.len());
        Ok(data)
    }

    pub async fn finish(self) -> Result<Submitted, ServiceError> {
        self.upload.finish().await
    }
}

/// The HTTP gateway's upload: files opened one after another, each as long as it turns out.
pub struct StreamUpload {
    max_upload: u64,
    current: Option<usize>,
    upload: Upload,
}

impl StreamUpload {
    pub(super) fn new(
        intake: Arc<Intake>,
        max_upload: u64,
        pending: PendingJob,
        options: JobOptions,
    ) -> StreamUpload {
        StreamUpload {
            max_upload,
            current: None,
            upload: Upload::new(intake, pending, options),
        }
    }

    /// Opens the next file (closing the previous one).
    pub async fn next_file(&mut self, name: String) -> Result<(), ServiceError> {
        let (previous, max) = (self.current.take(), self.max_upload);
        let index = self
            .upload
            .with_pending(move |pending| {
                if let Some(previous) = previous {
                    pending.end_file(previous);
                }
                pending.add_file(&name, max)
            })
            .await?;
        self.current = Some(index);
        Ok(())
    }

    /// Appends to the current file.
    pub async fn write(&mut self, data: bytes::Bytes) -> Result<(), ServiceError> {
        let index = self
            .current
            .ok_or_else(|| ServiceError::new(ErrorCode::Internal, "no file is open"))?;
        let len = data.len();
        self.upload
            .with_pending(move |pending| pending.write_chunk(index, &data))
            .await?;
        self.upload.intake.stored(len);
        Ok(())
    }

    /// Sets the submission's tag (checked already: [`Tag::parse`]).
    pub async fn set_tag(&mut self, tag: Tag) -> Result<(), ServiceError> {
        self.upload
            .with_pending(move |pending| pending.set_tag(Some(tag.into_inner())))
            .await
    }

    /// Makes the job durable and queues it.
    pub async fn finish(self) -> Result<Submitted, ServiceError> {
        self.upload.finish().await
    }
}
