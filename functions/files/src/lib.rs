//! The files function: uploads straight to S3 against the org's storage quota, processing on
//! upload, downloads.
//!
//! - Routes: reserve an upload (a presigned POST that can write one object key, of exactly
//!   the declared size and type), list, get, rename, delete, and presigned downloads of the
//!   file, its thumbnail and its extracted text. Bytes never pass through Lambda.
//! - Queue `uploads`: the upload bucket's `ObjectCreated` events (through SQS, with a
//!   dead-letter queue): the reservation is settled to the actual size, the type is sniffed
//!   from the bytes, images get a thumbnail and documents their text, and the file becomes
//!   `ready`, `quarantined` or `failed` (with a `file.processed` event).
//! - EventBridge: GuardDuty Malware Protection for S3 scan results, when the stack enables it:
//!   a file is then `ready` only after a clean scan.
//! - Schedule `upload-sweep`: frees the reservations of uploads that never arrived.

mod process;
mod routes;
mod scan;
mod sweep;

pub mod presign;

use std::sync::Arc;

use api::RouteTable;
use http::Method;
use store::Store;

pub use process::{decode_key, on_queue, on_upload_event};
pub use routes::{CreateFile, RenameFile, UploadTicket};
pub use scan::on_scan_result;
pub use store::UPLOAD_PREFIX;
pub use sweep::{SWEEP_SCHEDULE, give_up_stalled, on_schedule, sweep};

/// The environment variable naming the upload bucket.
pub const UPLOAD_BUCKET_ENV: &str = "UPLOAD_BUCKET";
/// The environment variable that turns the malware gate on (`true`, set when the stack
/// enables GuardDuty Malware Protection for the bucket).
pub const MALWARE_PROTECTION_ENV: &str = "MALWARE_PROTECTION";

/// Why the function could not start.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{0} is not set")]
    Missing(&'static str),
    #[error("the AWS configuration has no credentials provider (needed to presign uploads)")]
    NoCredentials,
}

/// What every handler shares: built once at init.
#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub s3: aws_sdk_s3::Client,
    pub bucket: Arc<str>,
    pub signer: presign::PostSigner,
    /// A file is ready only after a clean malware scan.
    pub gated: bool,
    pub limits: media::Limits,
}

impl api::RouteState for AppState {
    fn rate_store(&self) -> Option<&Store> {
        Some(&self.store)
    }
}

impl AppState {
    /// From the platform's AWS configuration and variables.
    pub fn from_platform(platform: &api::Platform) -> Result<AppState, ConfigError> {
        let bucket = platform.var(UPLOAD_BUCKET_ENV).ok_or(ConfigError::Missing(UPLOAD_BUCKET_ENV))?;
        let gated = platform.var(MALWARE_PROTECTION_ENV).is_some_and(|v| v.eq_ignore_ascii_case("true"));
        let aws = &platform.aws;
        let endpoint = aws.endpoint_url();
        // Under an endpoint override (the local endpoint), buckets are addressed by path.
        let s3 = aws_sdk_s3::Client::from_conf(
            aws_sdk_s3::config::Builder::from(aws).force_path_style(endpoint.is_some()).interceptor(telemetry::CallCounter).build(),
        );
        let credentials = aws.credentials_provider().ok_or(ConfigError::NoCredentials)?;
        let region = aws.region().map_or_else(|| "us-east-1".to_owned(), ToString::to_string);
        let signer = presign::PostSigner::new(credentials, region, bucket.clone(), endpoint);
        Ok(AppState { store: platform.store.clone(), s3, bucket: bucket.into(), signer, gated, limits: media::Limits::default() })
    }
}

/// The function's route table.
pub fn routes() -> RouteTable<AppState> {
    use store::{Page, StoredFile};
    RouteTable::default()
        .tag("files", "Files uploaded straight to S3: quota, processing (type, thumbnails, text), downloads")
        .route(
            Method::POST,
            "/orgs/{orgId}/files",
            "createFile",
            "Reserve an upload against the storage quota; answers the file and a presigned POST for exactly its bytes",
            routes::create,
        )
        .takes::<CreateFile>()
        .returns::<UploadTicket>(201)
        .rate_class(domain::RateClass::Uploads)
        .header("Location", "the new file")
        .route(Method::GET, "/orgs/{orgId}/files", "listFiles", "The org's files, newest first; or those of a project or a task", routes::list)
        .returns::<Page<StoredFile>>(200)
        .paginated(&["projectId", "taskId"])
        .route(Method::GET, "/orgs/{orgId}/files/{fileId}", "getFile", "A file: status, metadata", routes::get)
        .returns::<StoredFile>(200)
        .header("ETag", "the file's version")
        .route(Method::PATCH, "/orgs/{orgId}/files/{fileId}", "renameFile", "Rename a file (its uploader, or an admin)", routes::rename)
        .takes::<RenameFile>()
        .returns::<StoredFile>(200)
        .header("ETag", "the file's version")
        .route(
            Method::DELETE,
            "/orgs/{orgId}/files/{fileId}",
            "deleteFile",
            "Delete a file, its thumbnail and its text, and free its storage (its uploader, or an admin)",
            routes::delete,
        )
        .no_content()
        .route(
            Method::GET,
            "/orgs/{orgId}/files/{fileId}/download",
            "downloadFile",
            "Redirects to a short-lived presigned download of a ready file (as an attachment, with its stored content type)",
            routes::download,
        )
        .redirects("a presigned GET of the file, valid for 5 minutes")
        .or_link()
        .errors(&[409])
        .route(
            Method::GET,
            "/orgs/{orgId}/files/{fileId}/thumbnail",
            "fileThumbnail",
            "Redirects to a presigned download of a ready image's thumbnail (JPEG)",
            routes::thumbnail,
        )
        .redirects("a presigned GET of the thumbnail, valid for 5 minutes")
        .or_link()
        .errors(&[409])
        .route(
            Method::GET,
            "/orgs/{orgId}/files/{fileId}/text",
            "fileText",
            "Redirects to a presigned download of a ready document's extracted text (UTF-8)",
            routes::text,
        )
        .redirects("a presigned GET of the text, valid for 5 minutes")
        .or_link()
        .errors(&[409])
}

/// Every way this function is invoked: its routes, the upload queue, the malware scan results
/// and the sweep's schedule.
pub fn handlers(platform: &api::Platform) -> Result<api::Handlers, ConfigError> {
    let app = AppState::from_platform(platform)?;
    let (queue_app, scan_app, schedule_app) = (app.clone(), app.clone(), app.clone());
    Ok(api::Handlers {
        http: Some(routes().with_state(app).0),
        queue: Some(api::handler(move |event| {
            let app = queue_app.clone();
            async move { on_queue(&app, event).await }
        })),
        bus: Some(api::handler(move |event| {
            let app = scan_app.clone();
            async move { on_scan_result(&app, event).await }
        })),
        schedule: Some(api::handler(move |event| {
            let app = schedule_app.clone();
            async move { on_schedule(&app, event).await }
        })),
        ..Default::default()
    })
}
