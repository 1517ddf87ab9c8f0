//! One pass of an export job: sections in a fixed order, each read page by page through the
//! store, as JSON Lines into a zip that goes to S3 by multipart upload, then the file contents
//! (each ready file's checked copy, read in ranges), then `manifest.json`.
//!
//! Resumable: whenever 5 MiB of zip are waiting, the writer is checkpointed (a full flush, see
//! `media::zipwrite`), the bytes are uploaded as the next part, and the checkpoint is stored
//! on the job (conditional on its version): the upload id, the parts with their ETags, the
//! zip's state (central directory entries so far, bytes written, the open entry), the step,
//! the position in the section after the last record written, the bytes of the current file
//! written, and the counts. When the pass's time slice is spent it stops right after such a
//! checkpoint and sends itself its message again; a pass that dies instead is redelivered and
//! resumes from the last checkpoint, so whatever came after it is written again, once. A
//! message for a finished job does nothing.

use std::collections::BTreeMap;
use std::time::Instant;

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use media::zipwrite::{ZipError, ZipState, ZipWriter};
use serde::{Deserialize, Serialize};
use store::{ExportScope, ExportTarget, Section, SectionCursor};

use crate::AppState;

/// Parts of the multipart upload: S3's minimum (but the last).
pub const PART_SIZE: usize = 5 * 1024 * 1024;
/// A file's bytes are read in ranges of this size.
const CHUNK: u64 = 1024 * 1024;
/// Records read per page.
const PAGE: i32 = 500;
/// A pass's lease outlasts its slice by this much (the upload of its last part, its checkpoint).
const LEASE_MARGIN_SECS: i64 = 120;

/// What the worker stores on the job between passes.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Checkpoint {
    #[serde(rename = "upload")]
    pub upload_id: Option<String>,
    /// (part number, ETag) of the uploaded parts.
    pub parts: Vec<(i32, String)>,
    pub zip: ZipState,
    /// Which step (a section's records, or the file contents after `files.jsonl`).
    pub step: usize,
    /// The position after the last record written (the file whose bytes are being written
    /// comes right after it).
    pub cursor: SectionCursor,
    /// Bytes of the current file written.
    #[serde(default)]
    pub file_offset: u64,
    pub counts: BTreeMap<String, u64>,
}

/// How a pass ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PassOutcome {
    /// The job is finished (or was never there): a redelivered message.
    NothingToDo,
    /// Another pass holds the job.
    Busy,
    /// Its slice is spent: checkpointed, the message sent again.
    Paused,
    Complete,
    /// Failed for good (too large for a zip without zip64): the job says why.
    Failed,
}

#[derive(Debug, Clone, Copy)]
enum Step {
    Records(Section),
    /// The bytes of the files listed in `files.jsonl`.
    Contents,
}

fn steps(scope: &ExportScope) -> Vec<Step> {
    let mut steps = Vec::new();
    for section in scope.sections() {
        steps.push(Step::Records(*section));
        if *section == Section::Files {
            steps.push(Step::Contents);
        }
    }
    steps
}

/// Why a pass stopped early.
enum Stop {
    /// At a checkpoint, its slice spent.
    Paused,
    /// For good.
    Failed(String),
    /// To be retried (the message is redelivered).
    Retry(String),
}

impl From<ZipError> for Stop {
    fn from(e: ZipError) -> Self {
        match e {
            ZipError::TooLarge(_) => Stop::Failed(e.to_string()),
            _ => Stop::Retry(e.to_string()),
        }
    }
}

impl From<domain::DomainError> for Stop {
    fn from(e: domain::DomainError) -> Self {
        Stop::Retry(e.to_string())
    }
}

fn s3_error<E: std::error::Error + Send + Sync + 'static, R: std::fmt::Debug>(what: &str, e: aws_sdk_s3::error::SdkError<E, R>) -> Stop {
    Stop::Retry(format!("{what}: {}", aws_sdk_s3::error::DisplayErrorContext(e)))
}

/// One pass of the job `target` names.
pub async fn run_pass(app: &AppState, target: &ExportTarget) -> Result<PassOutcome, String> {
    let Some(mut scope) = app.store.export_scope(target).await.map_err(|e| e.to_string())? else { return Ok(PassOutcome::NothingToDo) };
    let lease = i64::try_from(app.slice.as_secs()).unwrap_or(i64::MAX / 2) + LEASE_MARGIN_SECS;
    if !app.store.export_pass(&mut scope, lease).await.map_err(|e| e.to_string())? {
        return Ok(PassOutcome::Busy);
    }
    let deadline = Instant::now() + app.slice;
    let mut pass = Pass { app, target, deadline, cp: Checkpoint::default(), writer: ZipWriter::new(0) };
    match pass.run(&mut scope).await {
        Ok(()) => Ok(PassOutcome::Complete),
        Err(Stop::Paused) => Ok(PassOutcome::Paused),
        Err(Stop::Retry(e)) => Err(e),
        Err(Stop::Failed(why)) => {
            tracing::error!(export_id = %target.export_id, why, "export failed");
            if let Some(upload) = &pass.cp.upload_id {
                let _ = app.s3.abort_multipart_upload().bucket(&*app.export_bucket).key(&scope.job().object_key).upload_id(upload).send().await;
            }
            app.store.finish_export(&mut scope, Err(why)).await.map_err(|e| e.to_string())?;
            Ok(PassOutcome::Failed)
        }
    }
}

struct Pass<'a> {
    app: &'a AppState,
    target: &'a ExportTarget,
    deadline: Instant,
    cp: Checkpoint,
    writer: ZipWriter,
}

impl Pass<'_> {
    async fn run(&mut self, scope: &mut ExportScope) -> Result<(), Stop> {
        let app = self.app;
        let key = scope.job().object_key.clone();
        match scope.job().checkpoint.as_deref().map(serde_json::from_str::<Checkpoint>) {
            Some(Ok(cp)) => {
                self.writer = ZipWriter::resume(cp.zip.clone());
                self.cp = cp;
            }
            Some(Err(e)) => return Err(Stop::Failed(format!("unreadable checkpoint: {e}"))),
            None => {
                let created = domain::rfc3339_epoch(&scope.job().created_at).unwrap_or(0);
                self.writer = ZipWriter::new(created);
                let out = app
                    .s3
                    .create_multipart_upload()
                    .bucket(&*app.export_bucket)
                    .key(&key)
                    .content_type("application/zip")
                    .send()
                    .await
                    .map_err(|e| s3_error("starting the upload", e))?;
                self.cp = Checkpoint { upload_id: out.upload_id, zip: self.writer.checkpoint()?, ..Checkpoint::default() };
                // Recorded at once, so that no other upload is ever started for this job.
                self.save(scope, false).await?;
            }
        }
        let steps = steps(scope);
        while let Some(step) = steps.get(self.cp.step).copied() {
            match step {
                Step::Records(section) => self.records(scope, section).await?,
                Step::Contents => self.contents(scope).await?,
            }
            self.cp.step += 1;
            self.cp.cursor = SectionCursor::default();
            self.cp.file_offset = 0;
        }
        // The manifest, the central directory, the last part.
        let job = scope.job();
        let manifest = serde_json::json!({
            "exportId": job.id,
            "kind": job.kind,
            "orgId": job.org_id,
            "userId": job.user_id,
            "createdAt": job.created_at,
            "sections": scope.sections().iter().map(|s| s.file_name()).collect::<Vec<_>>(),
            "counts": self.cp.counts,
        });
        self.writer.start_entry("manifest.json")?;
        self.writer.write(&serde_json::to_vec_pretty(&manifest).unwrap_or_default())?;
        self.writer.finish_entry()?;
        self.writer.finish()?;
        let rest = self.writer.take_output();
        let upload = self.cp.upload_id.clone().unwrap_or_default();
        let number = i32::try_from(self.cp.parts.len() + 1).map_err(|_| Stop::Failed("too many parts".into()))?;
        let etag = self.upload_part(&key, &upload, number, rest).await?;
        self.cp.parts.push((number, etag));
        let parts: Vec<CompletedPart> = self.cp.parts.iter().map(|(n, e)| CompletedPart::builder().part_number(*n).e_tag(e).build()).collect();
        let completed = app
            .s3
            .complete_multipart_upload()
            .bucket(&*app.export_bucket)
            .key(&key)
            .upload_id(&upload)
            .multipart_upload(CompletedMultipartUpload::builder().set_parts(Some(parts)).build())
            .send()
            .await;
        if let Err(e) = completed {
            // Completed by an earlier pass that died before recording it: the object is there.
            let there = app.s3.head_object().bucket(&*app.export_bucket).key(&key).send().await.is_ok();
            if !there {
                return Err(s3_error("completing the upload", e));
            }
        }
        let bytes = self.writer.written();
        app.store.finish_export(scope, Ok((self.cp.counts.clone(), bytes))).await?;
        Ok(())
    }

    async fn upload_part(&self, key: &str, upload: &str, number: i32, bytes: Vec<u8>) -> Result<String, Stop> {
        let app = self.app;
        let out = app
            .s3
            .upload_part()
            .bucket(&*app.export_bucket)
            .key(key)
            .upload_id(upload)
            .part_number(number)
            .body(ByteStream::from(bytes))
            .send()
            .await
            .map_err(|e| s3_error("uploading a part", e))?;
        out.e_tag.ok_or_else(|| Stop::Retry("a part without an ETag".into()))
    }

    /// Stores the checkpoint; `release`: the pass ends here.
    async fn save(&mut self, scope: &mut ExportScope, release: bool) -> Result<(), Stop> {
        let json = serde_json::to_string(&self.cp).map_err(|e| Stop::Retry(e.to_string()))?;
        self.app.store.export_progress(scope, json, self.cp.counts.clone(), self.writer.written(), release).await?;
        Ok(())
    }

    /// Uploads a part when 5 MiB wait, checkpoints, and stops when the slice is spent.
    async fn maybe_part(&mut self, scope: &mut ExportScope) -> Result<(), Stop> {
        if self.writer.pending() < PART_SIZE {
            return Ok(());
        }
        let state = self.writer.checkpoint()?;
        let bytes = self.writer.take_output();
        let number = i32::try_from(self.cp.parts.len() + 1).map_err(|_| Stop::Failed("too many parts".into()))?;
        let upload = self.cp.upload_id.clone().unwrap_or_default();
        let etag = self.upload_part(&scope.job().object_key, &upload, number, bytes).await?;
        self.cp.parts.push((number, etag));
        self.cp.zip = state;
        let stop = Instant::now() >= self.deadline;
        self.save(scope, stop).await?;
        if stop {
            self.app.enqueue(self.target).await?;
            return Err(Stop::Paused);
        }
        Ok(())
    }

    async fn records(&mut self, scope: &mut ExportScope, section: Section) -> Result<(), Stop> {
        if !self.writer.in_entry() {
            self.writer.start_entry(section.file_name())?;
        }
        loop {
            let page = self.app.store.export_page(scope, section, &self.cp.cursor, PAGE).await?;
            for record in page.records {
                let mut line = serde_json::to_vec(&record.value).map_err(|e| Stop::Retry(e.to_string()))?;
                line.push(b'\n');
                self.writer.write(&line)?;
                *self.cp.counts.entry(section.name().to_owned()).or_default() += 1;
                self.cp.cursor = record.position;
                self.maybe_part(scope).await?;
            }
            match page.next {
                Some(next) => self.cp.cursor = next,
                None => break,
            }
        }
        self.writer.finish_entry()?;
        Ok(())
    }

    /// Each ready file's bytes as `files/{fileId}/{name}`, in ranges.
    async fn contents(&mut self, scope: &mut ExportScope) -> Result<(), Stop> {
        let Some(bucket) = self.app.upload_bucket.clone() else { return Ok(()) };
        loop {
            let page = self.app.store.export_page(scope, Section::Files, &self.cp.cursor, PAGE).await?;
            for record in page.records {
                match &record.object {
                    Some(object) => self.copy_file(scope, &bucket, object).await?,
                    // A file resumed part-way that has no bytes to export any more: its entry
                    // ends where it got to.
                    None if self.writer.in_entry() => self.writer.finish_entry()?,
                    None => {}
                }
                self.cp.cursor = record.position;
                self.cp.file_offset = 0;
                self.maybe_part(scope).await?;
            }
            match page.next {
                Some(next) => self.cp.cursor = next,
                None => return Ok(()),
            }
        }
    }

    async fn copy_file(&mut self, scope: &mut ExportScope, bucket: &str, object: &store::ExportObject) -> Result<(), Stop> {
        loop {
            let from = self.cp.file_offset;
            let got = self.app.s3.get_object().bucket(bucket).key(&object.key).range(format!("bytes={from}-{}", from + CHUNK - 1)).send().await;
            let out = match got {
                Ok(out) => out,
                Err(e) => {
                    let service = e.as_service_error();
                    if service.is_some_and(aws_sdk_s3::operation::get_object::GetObjectError::is_no_such_key) && !self.writer.in_entry() {
                        // Deleted meanwhile: its metadata says what it was.
                        tracing::warn!(key = %object.key, "a file's object is gone; exported without its bytes");
                        return Ok(());
                    }
                    // Past the end (an empty file, or one that ended on a range's edge).
                    let past_end = e.raw_response().is_some_and(|r| r.status().as_u16() == 416);
                    if past_end {
                        break;
                    }
                    return Err(s3_error("reading a file", e));
                }
            };
            let total = out.content_range().and_then(|r| r.rsplit('/').next()).and_then(|t| t.parse::<u64>().ok());
            let bytes = out.body.collect().await.map_err(|e| Stop::Retry(format!("reading a file: {e}")))?.into_bytes();
            if !self.writer.in_entry() {
                self.writer.start_entry(&object.path)?;
            }
            self.writer.write(&bytes)?;
            self.cp.file_offset += bytes.len() as u64;
            let done = bytes.is_empty() || total.is_none_or(|t| self.cp.file_offset >= t);
            if done {
                break;
            }
            self.maybe_part(scope).await?;
        }
        if !self.writer.in_entry() {
            self.writer.start_entry(&object.path)?;
        }
        self.writer.finish_entry()?;
        *self.cp.counts.entry("file-contents".to_owned()).or_default() += 1;
        Ok(())
    }
}
