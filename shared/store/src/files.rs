//! Uploaded files: the item that tracks each one (`ORG#{org}` / `FILE#{id}`), the storage
//! quota it is reserved and settled against, and the keys of its objects in the upload bucket.
//!
//! The life of a file:
//! 1. [`Store::reserve_upload`]: one transaction reserves the declared size on the org
//!    (`storageReserved`, under the plan's quota counted as used plus reserved) and writes the
//!    file as `uploading`, indexed in the `UPLOADS#{day}` bucket of GSI4 by when its
//!    reservation expires.
//! 2. S3 reports the object: [`Store::begin_processing`] settles the reservation to the actual
//!    size and marks the file `processing` with the event's sequencer (later events of the
//!    same object win; earlier or repeated ones are dropped).
//! 3. [`Store::finish_processing`] records what processing found (and the `file.processed`
//!    event): `ready`, `quarantined` or `failed`. With the malware gate on, a file is `ready`
//!    only once a clean scan of the same object (its ETag) is recorded too
//!    ([`Store::record_scan`]), whichever of the two comes first.
//! 4. An upload that never arrives is deleted by the sweep ([`Store::expired_uploads`],
//!    [`Store::expire_upload`]), which frees its reservation; deleting a file frees its bytes.
//!
//! Object keys are built here from the org and file ids, never from a client's input:
//! `uploads/{org}/{file}` for the bytes as uploaded (the prefix the bucket notifies about),
//! `derived/{org}/{file}/…` for what processing makes of them.

use aws_sdk_dynamodb::types::AttributeValue;
use domain::files::{FileId, FileStatus};
use domain::work::{ProjectId, TaskId};
use domain::{Action, DomainError, OrgId, UserId};
use serde::{Deserialize, Serialize};

use crate::Store;
use crate::events::{DomainEvent, EventKind};
use crate::item::{Entity, av, n, s, to_item};
use crate::keys::{self, Gsi, IndexKey};
use crate::notifications::{day_bucket, instant_key};
use crate::orgs::{require, require_member};
use crate::page::{Page, PageRequest, PagedQuery, Sort};
use crate::scope::{OrgPartition, OrgScope, ReadScope};
use crate::tx::{Expr, Tx};

/// The prefix of uploaded objects: `uploads/{org}/{file}`.
pub const UPLOAD_PREFIX: &str = "uploads/";
/// The prefix of what processing derives from an upload: `derived/{org}/{file}/…`.
pub const DERIVED_PREFIX: &str = "derived/";
/// The GSI4 bucket of reservations by expiry.
const UPLOADS: &str = "UPLOADS";
/// The GSI4 bucket of files being processed, by when they count as stalled.
const STALLED: &str = "STALLED";
/// How long a file may stay `processing` (its last change, processing or scan included) before
/// the sweep gives up on it: its message went to the dead-letter queue, say, or the malware
/// scan it waits for never came.
pub const PROCESSING_DEADLINE_SECS: i64 = 6 * 3600;

/// Where a file is attached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Attachment {
    pub project_id: ProjectId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_id: Option<TaskId>,
}

/// An uploaded file, as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StoredFile {
    pub id: FileId,
    pub org_id: OrgId,
    /// The client's name for it (cleaned; only ever metadata).
    pub name: String,
    /// The declared content type, which downloads are served with.
    pub content_type: String,
    /// Bytes: as declared (and reserved) until the upload arrives, then as stored.
    pub size: u64,
    pub status: FileStatus,
    /// Why the file is quarantined or failed, or what is awaited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attached_to: Option<Attachment>,
    pub uploaded_by: UserId,
    pub created_at: String,
    pub updated_at: String,
    pub version: u64,
    /// Until when the reservation of an upload that has not arrived holds (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upload_expires_at: Option<String>,
    /// The type told from the bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detected_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub width: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub height: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pages: Option<u32>,
    /// Characters of extracted text (documents).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub characters: Option<u64>,
    /// Whether the extracted text was cut at the limit.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub text_truncated: bool,
    /// A thumbnail exists (images).
    #[serde(default)]
    pub has_thumbnail: bool,
    /// Extracted text exists (documents).
    #[serde(default)]
    pub has_text: bool,
    /// The malware scan's result, when the gate is on: `NO_THREATS_FOUND`, `THREATS_FOUND`, …
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scan_result: Option<String>,
    /// The S3 sequencer of the object event processed last (orders events of one key).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sequencer: Option<String>,
    /// The ETag of the object processed last (a scan result names the object it scanned by it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
    /// The ETag the scan result is of.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scan_etag: Option<String>,
    /// Processing finished with a file that may be ready; only the malware scan is awaited.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub processed: bool,
}

impl Entity for StoredFile {
    const TYPE: &'static str = "file";
}

/// The key of the uploaded object of file `file` of `org`.
fn upload_key(org: OrgId, file: FileId) -> String {
    format!("{UPLOAD_PREFIX}{org}/{file}")
}

impl StoredFile {
    /// The object the client uploads (with its presigned POST, which stays usable until it
    /// expires).
    pub fn object_key(&self) -> String {
        upload_key(self.org_id, self.id)
    }
    /// The copy of the uploaded bytes that processing checked, which downloads serve: a later
    /// POST to the upload key cannot change what a ready file's download returns.
    pub fn checked_key(&self) -> String {
        format!("{DERIVED_PREFIX}{}/{}/checked", self.org_id, self.id)
    }
    /// The thumbnail processing writes (images).
    pub fn thumbnail_key(&self) -> String {
        format!("{DERIVED_PREFIX}{}/{}/thumbnail.jpg", self.org_id, self.id)
    }
    /// The extracted text processing writes (documents), UTF-8.
    pub fn text_key(&self) -> String {
        format!("{DERIVED_PREFIX}{}/{}/text.txt", self.org_id, self.id)
    }
    /// Every object of the file.
    pub fn object_keys(&self) -> [String; 4] {
        [self.object_key(), self.checked_key(), self.thumbnail_key(), self.text_key()]
    }
    /// Whether the reservation was settled (the upload arrived).
    fn settled(&self) -> bool {
        self.status != FileStatus::Uploading
    }
}

/// The objects of one org in the upload bucket (an org purge deletes under these prefixes).
pub fn org_object_prefixes(org: OrgId) -> [String; 2] {
    [format!("{UPLOAD_PREFIX}{org}/"), format!("{DERIVED_PREFIX}{org}/")]
}

/// The org and file of an uploaded object's key (as S3 reports it, decoded), if it is one.
pub fn parse_upload_key(key: &str) -> Option<(OrgId, FileId)> {
    let rest = key.strip_prefix(UPLOAD_PREFIX)?;
    let (org, file) = rest.split_once('/')?;
    let (org, file): (OrgId, FileId) = (org.parse().ok()?, file.parse().ok()?);
    (upload_key(org, file) == key).then_some((org, file))
}

/// A file about to be uploaded.
#[derive(Debug, Clone)]
pub struct NewFile {
    pub name: String,
    pub content_type: &'static str,
    pub size: u64,
    pub attach_to: Option<Attachment>,
}

/// Which files a listing shows.
#[derive(Debug, Clone, Copy)]
pub enum FileFilter {
    All,
    Project(ProjectId),
    Task(TaskId),
}

/// What an S3 object event means for its file.
#[derive(Debug, Clone, PartialEq)]
pub enum Arrival {
    /// Process it: the file as it now is (`processing`, quota settled).
    Process(Box<StoredFile>),
    /// No file has this object (never reserved, deleted, or its reservation expired).
    Unknown,
    /// This event, or a later one of the same object, was handled already.
    Seen,
}

/// What processing found.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Outcome {
    /// `Ready` (the type is allowed and nothing failed), `Quarantined` or `Failed`.
    pub status: Option<FileStatus>,
    pub reason: Option<String>,
    pub detected_type: Option<String>,
    pub sha256: Option<String>,
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub pages: Option<u32>,
    pub characters: Option<u64>,
    pub text_truncated: bool,
    pub has_thumbnail: bool,
    pub has_text: bool,
}

/// A malware scan's verdict on one object.
pub const SCAN_CLEAN: &str = "NO_THREATS_FOUND";
pub const SCAN_THREATS: &str = "THREATS_FOUND";

const QUOTA: DomainError = DomainError::LimitReached("storage");
/// Writes of processing and scan results re-read a file that changed and try again this often.
const WRITE_ATTEMPTS: usize = 5;
const GONE: DomainError = DomainError::NotFound;

impl Store {
    fn file_item(&self, p: &OrgPartition, f: &StoredFile) -> Result<crate::item::Item, DomainError> {
        let mut indexes = keys::file_indexes(p, f);
        if f.status == FileStatus::Uploading
            && let Some(at) = f.upload_expires_at.as_deref().and_then(domain::rfc3339_epoch)
        {
            indexes.push(IndexKey { index: Gsi::Four, pk: day_bucket(UPLOADS, at), sk: format!("{}#{}#{}", instant_key(at), f.org_id, f.id) });
        }
        if f.status == FileStatus::Processing
            && let Some(changed) = domain::rfc3339_epoch(&f.updated_at)
        {
            let at = changed + PROCESSING_DEADLINE_SECS;
            indexes.push(IndexKey { index: Gsi::Four, pk: day_bucket(STALLED, at), sk: format!("{}#{}#{}", instant_key(at), f.org_id, f.id) });
        }
        to_item(f, &keys::file(p, f.id), &indexes)
    }

    /// Reserves `new.size` bytes of the org's storage and records the file as `uploading`,
    /// in one transaction: of concurrent reservations for the last free bytes, exactly those
    /// that fit succeed. The reservation holds until `expires_at` (epoch seconds).
    pub async fn reserve_upload(&self, scope: &OrgScope, new: NewFile, expires_at: i64) -> Result<StoredFile, DomainError> {
        require(scope, Action::WriteWorkload)?;
        require_member(scope)?;
        let plan = scope.org.plan;
        let limits = plan.limits();
        if new.size > limits.max_upload_bytes {
            return Err(DomainError::LimitReached("upload size"));
        }
        let room = limits.storage_bytes.checked_sub(new.size).ok_or(QUOTA)?;
        let now = self.clock.rfc3339();
        let file = StoredFile {
            id: FileId::new(),
            org_id: scope.org_id(),
            name: new.name,
            content_type: new.content_type.to_owned(),
            size: new.size,
            status: FileStatus::Uploading,
            reason: None,
            attached_to: new.attach_to,
            uploaded_by: scope.user.clone(),
            created_at: now.clone(),
            updated_at: now,
            version: 1,
            upload_expires_at: domain::epoch_rfc3339(expires_at),
            detected_type: None,
            sha256: None,
            width: None,
            height: None,
            pages: None,
            characters: None,
            text_truncated: false,
            has_thumbnail: false,
            has_text: false,
            scan_result: None,
            sequencer: None,
            etag: None,
            scan_etag: None,
            processed: false,
        };
        let p = &scope.partition;
        let mut tx = Tx::default();
        tx.update(&self.table, &keys::org(p), committed_quota(new.size, room, plan), QUOTA);
        tx.put(&self.table, self.file_item(p, &file)?, Some(Expr::condition("attribute_not_exists(PK)")), DomainError::Conflict("file id collision"));
        if let Some(a) = &file.attached_to {
            let exists = Expr::condition("attribute_exists(PK)");
            tx.check(&self.table, &keys::project(p, a.project_id), exists.clone(), DomainError::invalid("attachTo.projectId", "no such project"));
            if let Some(task) = a.task_id {
                tx.check(&self.table, &keys::task(p, a.project_id, task), exists, DomainError::invalid("attachTo.taskId", "no such task in this project"));
            }
        }
        self.push_event(&mut tx, &DomainEvent::of_file(self, EventKind::FileUploadStarted, &file, scope.user.as_str()))?;
        tx.run(self).await?;
        Ok(file)
    }

    /// Records that a download link of `file` (its original, or the rendition named) was
    /// handed out to the caller: one put of the event item, nothing else changes.
    /// A platform operator's download (read-only access, no membership) is the platform's.
    pub async fn record_download(&self, scope: &OrgScope, file: &StoredFile, rendition: Option<&str>) -> Result<(), DomainError> {
        let actor = if scope.is_member() { scope.user.as_str() } else { crate::PLATFORM_ACTOR };
        let event = DomainEvent { rendition: rendition.map(str::to_owned), ..DomainEvent::of_file(self, EventKind::FileDownloaded, file, actor) };
        let item = to_item(&event, &keys::event(&event.id), &[])?;
        self.put_new(item, DomainError::Conflict("event id collision")).await
    }

    pub async fn get_file(&self, scope: &impl ReadScope, id: FileId) -> Result<Option<StoredFile>, DomainError> {
        self.get(&keys::file(scope.partition(), id)).await
    }

    /// The org's files, newest first: all, or those attached to a project or a task.
    pub async fn list_files(&self, scope: &impl ReadScope, filter: FileFilter, page: &PageRequest) -> Result<Page<StoredFile>, DomainError> {
        let p = scope.partition();
        match filter {
            FileFilter::All => {
                let partition = keys::org_pk(p);
                self.query_page(&PagedQuery::on_table("files", &partition, Sort::Prefix(keys::FILE_PREFIX)).newest_first(), page).await
            }
            FileFilter::Project(project) => {
                let partition = keys::files_of_project_pk(p, project);
                self.query_page(&PagedQuery::on_index("files-of-project", Gsi::One, &partition, Sort::Prefix(keys::FILE_PREFIX)).newest_first(), page).await
            }
            FileFilter::Task(task) => {
                let partition = keys::files_of_task_pk(p, task);
                self.query_page(&PagedQuery::on_index("files-of-task", Gsi::Two, &partition, Sort::Prefix(keys::FILE_PREFIX)).newest_first(), page).await
            }
        }
    }

    /// Whether the caller may change or delete `file`: members their own, admins any.
    fn may_change_file(scope: &OrgScope, file: &StoredFile) -> Result<(), DomainError> {
        crate::orgs::require_own_or_admin(scope, &file.uploaded_by, "only admins change files uploaded by someone else")
    }

    /// Renames `current` (as read), on the version given by `If-Match` if any.
    pub async fn rename_file(&self, scope: &OrgScope, current: &StoredFile, expected: Option<u64>, name: String) -> Result<StoredFile, DomainError> {
        Self::may_change_file(scope, current)?;
        if expected.is_some_and(|v| v != current.version) {
            return Err(DomainError::StaleVersion);
        }
        let now = self.clock.rfc3339();
        let expr = Expr::update("SET #name = :name, #updated = :now, #version = #version + :one")
            .when("#version = :expected")
            .name("#name", "name")
            .name("#updated", "updatedAt")
            .name("#version", "version")
            .value(":name", s(&name))
            .value(":now", s(&now))
            .value(":one", n(1))
            .value(":expected", n(current.version));
        self.update_one(&keys::file(&scope.partition, current.id), expr, DomainError::StaleVersion).await?;
        Ok(StoredFile { name, updated_at: now, version: current.version + 1, ..current.clone() })
    }

    /// Deletes `current` (as read) and gives its bytes back to the quota: the reservation of an
    /// upload that has not arrived, the stored size of one that has. The caller deletes the
    /// objects ([`StoredFile::object_keys`]).
    pub async fn delete_file(&self, scope: &OrgScope, current: &StoredFile, expected: Option<u64>) -> Result<(), DomainError> {
        Self::may_change_file(scope, current)?;
        if expected.is_some_and(|v| v != current.version) {
            return Err(DomainError::StaleVersion);
        }
        let mut tx = Tx::default();
        self.remove_file(&mut tx, &scope.partition, current);
        self.push_event(&mut tx, &DomainEvent::of_file(self, EventKind::FileDeleted, current, scope.user.as_str()))?;
        tx.run(self).await
    }

    /// Adds to `tx` the deletion of `file` at its version, with its bytes back to the org.
    fn remove_file(&self, tx: &mut Tx, p: &OrgPartition, file: &StoredFile) {
        let at_version = Expr::condition("#version = :version").name("#version", "version").value(":version", n(file.version));
        tx.delete(&self.table, &keys::file(p, file.id), Some(at_version), DomainError::StaleVersion);
        let release = if file.settled() { storage_change("storageBytes", -signed(file.size)) } else { storage_change("storageReserved", -signed(file.size)) };
        tx.update(&self.table, &keys::org(p), release, GONE);
    }

    /// The file whose uploaded object has key `object_key` (decoded), for the event handlers.
    pub async fn file_of_object(&self, object_key: &str) -> Result<Option<StoredFile>, DomainError> {
        let Some((org, file)) = parse_upload_key(object_key) else { return Ok(None) };
        self.get(&keys::file(&OrgPartition::new(org), file)).await
    }

    /// The plan of an org that is not being deleted (processing checks types against it).
    pub async fn plan_of(&self, org: OrgId) -> Result<Option<domain::Plan>, DomainError> {
        let found: Option<crate::entities::Org> = self.get(&keys::org(&OrgPartition::new(org))).await?;
        Ok(found.filter(|o| o.status != crate::entities::OrgStatus::Deleting).map(|o| o.plan))
    }

    /// Takes in an S3 `ObjectCreated` event of `file`'s object: sequencer `sequencer`, ETag
    /// `etag`, `size` bytes. The first arrival settles the reservation to the actual size; a
    /// later upload of the same key (a newer sequencer) settles the difference and is processed
    /// again; a repeated or older event is [`Arrival::Seen`]. A repeated event of a file still
    /// `processing` (the previous attempt died) is processed again.
    pub async fn begin_processing(&self, file: &StoredFile, sequencer: &str, etag: &str, size: u64) -> Result<Arrival, DomainError> {
        // The file changed since it was read (a rename, a scan result, another event): decide
        // again on the file as it is now.
        self.on_current(file, Arrival::Unknown, |current| async move { self.try_begin(&current, sequencer, etag, size).await }).await
    }

    /// Runs `attempt` on `file`; when the write it makes finds the file changed since it was
    /// read (`StaleVersion`), runs it again on the file as it is now, a few times at most.
    /// Answers `gone` once the file is deleted.
    async fn on_current<T, F, Fut>(&self, file: &StoredFile, gone: T, mut attempt: F) -> Result<T, DomainError>
    where
        F: FnMut(StoredFile) -> Fut,
        Fut: std::future::Future<Output = Result<T, DomainError>>,
    {
        let mut current = file.clone();
        for _ in 0..WRITE_ATTEMPTS {
            match attempt(current.clone()).await {
                Err(DomainError::StaleVersion) => match self.reread(&current).await? {
                    Some(fresh) => current = fresh,
                    None => return Ok(gone),
                },
                other => return other,
            }
        }
        Err(DomainError::Conflict("the file kept changing"))
    }

    /// The file as it is now (`None` once deleted).
    async fn reread(&self, file: &StoredFile) -> Result<Option<StoredFile>, DomainError> {
        self.get(&keys::file(&OrgPartition::new(file.org_id), file.id)).await
    }

    async fn try_begin(&self, file: &StoredFile, sequencer: &str, etag: &str, size: u64) -> Result<Arrival, DomainError> {
        if let Some(seen) = &file.sequencer {
            match sequencer_order(sequencer, seen) {
                std::cmp::Ordering::Less => return Ok(Arrival::Seen),
                std::cmp::Ordering::Equal if file.status != FileStatus::Processing || file.processed => return Ok(Arrival::Seen),
                std::cmp::Ordering::Equal => return Ok(Arrival::Process(Box::new(file.clone()))),
                std::cmp::Ordering::Greater => {}
            }
        }
        let p = OrgPartition::new(file.org_id);
        let now = self.clock.rfc3339();
        let next = StoredFile {
            status: FileStatus::Processing,
            size,
            reason: None,
            updated_at: now,
            version: file.version + 1,
            upload_expires_at: None,
            sequencer: Some(sequencer.to_owned()),
            etag: Some(etag.to_owned()),
            processed: false,
            ..file.clone()
        };
        let mut tx = Tx::default();
        let at_version = Expr::condition("#version = :version").name("#version", "version").value(":version", n(file.version));
        tx.put(&self.table, self.file_item(&p, &next)?, Some(at_version), DomainError::StaleVersion);
        if file.settled() {
            let delta = signed(size) - signed(file.size);
            if delta != 0 {
                tx.update(&self.table, &keys::org(&p), storage_change("storageBytes", delta), GONE);
            }
        } else {
            let settle = Expr::update("ADD #reserved :release, #used :size, #committed :difference")
                .when("attribute_exists(PK)")
                .name("#reserved", "storageReserved")
                .name("#used", "storageBytes")
                .name("#committed", "storageCommitted")
                .value(":release", AttributeValue::N((-signed(file.size)).to_string()))
                .value(":size", n(size))
                .value(":difference", AttributeValue::N((signed(size) - signed(file.size)).to_string()));
            tx.update(&self.table, &keys::org(&p), settle, GONE);
        }
        match tx.run(self).await {
            Ok(()) => Ok(Arrival::Process(Box::new(next))),
            Err(DomainError::NotFound) => Ok(Arrival::Unknown),
            Err(e) => Err(e),
        }
    }

    /// Records what processing of `file` (as [`Store::begin_processing`] answered it) found,
    /// unless a newer upload of the object or a deletion overtook it (then `Ok(None)`). With
    /// `gated`, a file that would be ready waits for a clean malware scan of its object.
    /// The `file.processed` event is written when the file reaches its final status.
    pub async fn finish_processing(&self, file: &StoredFile, outcome: Outcome, gated: bool) -> Result<Option<StoredFile>, DomainError> {
        let outcome = &outcome;
        self.on_current(file, None, |current| async move {
            // Renamed or scanned meanwhile: the same upload, so the result is recorded on the
            // file as it is now. Replaced by a newer upload, or done: the result is moot.
            if current.sequencer != file.sequencer || current.status != FileStatus::Processing || current.processed {
                return Ok(None);
            }
            let mut next = StoredFile {
                reason: outcome.reason.clone(),
                detected_type: outcome.detected_type.clone(),
                sha256: outcome.sha256.clone(),
                width: outcome.width,
                height: outcome.height,
                pages: outcome.pages,
                characters: outcome.characters,
                text_truncated: outcome.text_truncated,
                has_thumbnail: outcome.has_thumbnail,
                has_text: outcome.has_text,
                updated_at: self.clock.rfc3339(),
                version: current.version + 1,
                ..current.clone()
            };
            match outcome.status.unwrap_or(FileStatus::Failed) {
                FileStatus::Ready => {
                    next.processed = true;
                    next.status = FileStatus::Processing;
                    apply_scan(&mut next, gated);
                }
                other => next.status = other,
            }
            self.write_processed(&current, next).await.map(Some)
        })
        .await
    }

    /// Records a malware scan's result of the object with ETag `etag` of `file`: a clean scan
    /// makes a processed file ready, threats quarantine it whatever its state. A result for an
    /// older upload of the object is ignored (`Ok(None)`).
    pub async fn record_scan(&self, file: &StoredFile, etag: &str, result: &str) -> Result<Option<StoredFile>, DomainError> {
        self.on_current(file, None, |current| async move {
            // A result for another upload of the key than the one processed is kept (it may be
            // of an upload whose event has not arrived yet), unless the processed upload has
            // its own result already; `apply_scan` only ever acts on a result of the processed one.
            let has_own = current.etag.is_some() && current.scan_etag == current.etag;
            if has_own && current.etag.as_deref() != Some(etag) {
                return Ok(None);
            }
            let mut next = StoredFile {
                scan_result: Some(result.to_owned()),
                scan_etag: Some(etag.to_owned()),
                updated_at: self.clock.rfc3339(),
                version: current.version + 1,
                ..current.clone()
            };
            apply_scan(&mut next, true);
            self.write_processed(&current, next).await.map(Some)
        })
        .await
    }

    /// Writes `next` over `file` at its version, with the `file.processed` event when `next`
    /// reached a final status that `file` had not.
    /// `StaleVersion` when `file` changed since it was read.
    async fn write_processed(&self, file: &StoredFile, next: StoredFile) -> Result<StoredFile, DomainError> {
        let p = OrgPartition::new(file.org_id);
        let mut tx = Tx::default();
        let at_version = Expr::condition("#version = :version").name("#version", "version").value(":version", n(file.version));
        tx.put(&self.table, self.file_item(&p, &next)?, Some(at_version), DomainError::StaleVersion);
        let finished = matches!(next.status, FileStatus::Ready | FileStatus::Quarantined | FileStatus::Failed);
        if finished && next.status != file.status {
            let event = DomainEvent { file_status: Some(next.status), ..DomainEvent::of_file(self, EventKind::FileProcessed, &next, crate::SYSTEM_ACTOR) };
            self.push_event(&mut tx, &event)?;
        }
        tx.run(self).await?;
        Ok(next)
    }

    /// Uploads whose reservation expired by `now` (epoch seconds), from the day of `since` on.
    pub async fn expired_uploads(&self, since: i64, now: i64) -> Result<Vec<StoredFile>, DomainError> {
        let found: Vec<StoredFile> = self.bucketed(UPLOADS, since, now).await?;
        Ok(found.into_iter().filter(|f| f.status == FileStatus::Uploading).collect())
    }

    /// Files still `processing` past their deadline by `now`, from the day of `since` on.
    pub async fn stalled_files(&self, since: i64, now: i64) -> Result<Vec<StoredFile>, DomainError> {
        let found: Vec<StoredFile> = self.bucketed(STALLED, since, now).await?;
        Ok(found.into_iter().filter(|f| f.status == FileStatus::Processing).collect())
    }

    /// Gives up on a stalled file: `failed` (processing did not finish), or `quarantined` when
    /// only the malware scan was awaited (a file is never ready unscanned). `Ok(None)` when it
    /// moved on meanwhile.
    pub async fn give_up_processing(&self, file: &StoredFile) -> Result<Option<StoredFile>, DomainError> {
        self.on_current(file, None, |current| async move {
            let deadline = domain::rfc3339_epoch(&current.updated_at).map_or(0, |t| t + PROCESSING_DEADLINE_SECS);
            if current.status != FileStatus::Processing || deadline > self.clock.epoch() {
                return Ok(None);
            }
            let (status, reason) = if current.processed {
                (FileStatus::Quarantined, "the malware scan did not arrive in time")
            } else {
                (FileStatus::Failed, "processing did not finish in time")
            };
            let next = StoredFile { status, reason: Some(reason.into()), updated_at: self.clock.rfc3339(), version: current.version + 1, ..current.clone() };
            self.write_processed(&current, next).await.map(Some)
        })
        .await
    }

    /// Deletes an upload that never arrived and frees its reservation; `Ok(false)` when it
    /// arrived (or changed) meanwhile.
    pub async fn expire_upload(&self, file: &StoredFile) -> Result<bool, DomainError> {
        // Renamed meanwhile (still uploading: expired all the same), or arrived (left alone).
        self.on_current(file, false, |current| async move {
            if current.status != FileStatus::Uploading {
                return Ok(false);
            }
            let mut tx = Tx::default();
            self.remove_file(&mut tx, &OrgPartition::new(current.org_id), &current);
            match tx.run(self).await {
                Ok(()) => Ok(true),
                Err(DomainError::NotFound) => Ok(false),
                Err(e) => Err(e),
            }
        })
        .await
    }
}

/// The quota's reservation: `storageBytes + storageReserved + size <= limit`. DynamoDB
/// conditions cannot add two attributes, so the org keeps their sum too (`storageCommitted`),
/// changed by the same updates; the condition compares it with the room left for `size`.
fn committed_quota(size: u64, room: u64, plan: domain::Plan) -> Expr {
    Expr::update("ADD #reserved :size, #committed :size")
        .when("#status = :active AND #plan = :plan AND (attribute_not_exists(#committed) OR #committed <= :room)")
        .name("#reserved", "storageReserved")
        .name("#committed", "storageCommitted")
        .name("#status", "status")
        .name("#plan", "plan")
        .value(":size", n(size))
        .value(":active", av(&crate::entities::OrgStatus::Active))
        .value(":plan", av(&plan))
        .value(":room", n(room))
}

/// Changes one of the org's storage counters (and their sum) by `delta` bytes.
fn storage_change(counter: &str, delta: i64) -> Expr {
    Expr::update("ADD #counter :delta, #committed :delta")
        .when("attribute_exists(PK)")
        .name("#counter", counter)
        .name("#committed", "storageCommitted")
        .value(":delta", AttributeValue::N(delta.to_string()))
}

fn signed(bytes: u64) -> i64 {
    i64::try_from(bytes).unwrap_or(i64::MAX)
}

/// Settles a processed file's status by its scan: threats quarantine it; without the gate, or
/// with a clean scan of this very object, it is ready; otherwise it waits for the scan.
fn apply_scan(file: &mut StoredFile, gated: bool) {
    let scan_of_this = file.scan_etag.is_some() && file.scan_etag == file.etag;
    let result = if scan_of_this { file.scan_result.as_deref() } else { None };
    if result == Some(SCAN_THREATS) {
        file.status = FileStatus::Quarantined;
        file.reason = Some("the malware scan found a threat".into());
        return;
    }
    if !file.processed || file.status != FileStatus::Processing {
        return;
    }
    match (gated, result) {
        (false, _) | (true, Some(SCAN_CLEAN)) => {
            file.status = FileStatus::Ready;
            file.reason = None;
        }
        (true, Some(other)) => {
            file.status = FileStatus::Quarantined;
            file.reason = Some(format!("the malware scan did not complete ({other})"));
        }
        (true, None) => file.reason = Some("awaiting the malware scan".into()),
    }
}

/// Orders two S3 sequencers of one key: hexadecimal strings of possibly different lengths,
/// compared as numbers (S3's rule: pad the shorter with leading zeros).
pub fn sequencer_order(a: &str, b: &str) -> std::cmp::Ordering {
    let width = a.len().max(b.len());
    format!("{a:0>width$}").to_ascii_uppercase().cmp(&format!("{b:0>width$}").to_ascii_uppercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upload_keys_round_trip_and_nothing_else_parses() {
        let (org, file) = (OrgId::new(), FileId::new());
        assert_eq!(parse_upload_key(&upload_key(org, file)), Some((org, file)));
        assert_eq!(parse_upload_key(&format!("{}/x", upload_key(org, file))), None);
        assert_eq!(parse_upload_key(&format!("derived/{org}/{file}")), None);
        assert_eq!(parse_upload_key("uploads/../x"), None);
    }

    #[test]
    fn sequencers_compare_as_numbers() {
        use std::cmp::Ordering::*;
        assert_eq!(sequencer_order("0A", "9"), Greater);
        assert_eq!(sequencer_order("00055AED", "55aed"), Equal);
        assert_eq!(sequencer_order("1", "10"), Less);
    }
}
