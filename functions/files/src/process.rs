//! Processing on upload: the bucket's `ObjectCreated` events, delivered through an SQS queue.
//!
//! Delivery is at least once and in any order. Each event names the object, its size, ETag and
//! sequencer; the store settles the file by sequencer ([`store::Store::begin_processing`]), so a
//! repeated or older event changes nothing, and a later upload of the same key wins. An event
//! for an object that no file owns (never reserved, deleted, expired) deletes the object: it
//! could only take storage that no quota counts. A message that fails is reported alone in
//! `batchItemFailures` and comes back after the visibility timeout (then the dead-letter queue).

use std::time::Duration;

use aws_lambda_events::s3::{S3Event, S3EventRecord};
use aws_lambda_events::sqs::{SqsEvent, SqsMessage};
use aws_sdk_s3::primitives::ByteStream;
use domain::files::FileStatus;
use store::{Arrival, Outcome, StoredFile};

use crate::AppState;

/// Bytes of an upload read for processing: beyond it the type is still sniffed (from the first
/// bytes) and the size and checksum recorded, but no thumbnail or text is made.
pub const PROCESS_MAX_BYTES: u64 = 64 * 1024 * 1024;

/// How long one file's processing may take before it is given up as failed.
pub const PROCESS_TIMEOUT: Duration = Duration::from_secs(40);

/// Handles a batch of the upload queue; answers the ids of the messages that failed.
pub async fn on_queue(app: &AppState, event: SqsEvent) -> Vec<String> {
    let mut failed = Vec::new();
    for message in event.records {
        if let Err(e) = on_message(app, &message).await {
            tracing::error!(error = %e, message_id = ?message.message_id, "an upload event failed");
            failed.extend(message.message_id.clone());
        }
    }
    failed
}

async fn on_message(app: &AppState, message: &SqsMessage) -> Result<(), String> {
    let body = message.body.as_deref().unwrap_or("");
    let value: serde_json::Value = serde_json::from_str(body).map_err(|e| format!("the message is not JSON: {e}"))?;
    // S3 sends `{"Event": "s3:TestEvent", …}` once when the notification is configured.
    if value.get("Records").is_none() {
        tracing::info!(event = ?value.get("Event"), "not an S3 event record; dropped");
        return Ok(());
    }
    let event: S3Event = serde_json::from_value(value).map_err(|e| format!("malformed S3 event: {e}"))?;
    on_upload_event(app, event).await
}

/// Handles one S3 event (all its records; the first failure is the event's).
pub async fn on_upload_event(app: &AppState, event: S3Event) -> Result<(), String> {
    for record in &event.records {
        on_record(app, record).await?;
    }
    Ok(())
}

/// An S3 event's object key as stored: S3 form-encodes keys in events (`+` for a space, `%XX`
/// for other bytes). `None` when the encoding is not valid UTF-8.
pub fn decode_key(raw: &str) -> Option<String> {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = bytes.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok()).and_then(|h| u8::from_str_radix(h, 16).ok())?;
                out.push(hex);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

async fn on_record(app: &AppState, record: &S3EventRecord) -> Result<(), String> {
    let name = record.event_name.as_deref().unwrap_or("");
    if !name.starts_with("ObjectCreated:") {
        tracing::info!(event = name, "not an object creation; dropped");
        return Ok(());
    }
    let object = &record.s3.object;
    let Some(key) = object.key.as_deref().and_then(decode_key) else {
        tracing::warn!(key = ?object.key, "an object key that does not decode; dropped");
        return Ok(());
    };
    let (Some(sequencer), Some(size)) = (object.sequencer.as_deref(), object.size) else {
        return Err(format!("the event of {key} has no sequencer or size"));
    };
    let size = u64::try_from(size).map_err(|_| format!("the event of {key} has a negative size"))?;
    let etag = object.e_tag.as_deref().unwrap_or("").trim_matches('"').to_owned();
    let Some(file) = app.store.file_of_object(&key).await.map_err(|e| e.to_string())? else {
        return drop_orphan(app, &key).await;
    };
    match app.store.begin_processing(&file, sequencer, &etag, size).await.map_err(|e| e.to_string())? {
        Arrival::Unknown => drop_orphan(app, &key).await,
        Arrival::Seen => {
            tracing::info!(key, sequencer, "an event already handled (repeated, or older than one handled); dropped");
            Ok(())
        }
        Arrival::Process(file) => process(app, *file).await,
    }
}

/// Deletes an uploaded object that no file owns.
async fn drop_orphan(app: &AppState, key: &str) -> Result<(), String> {
    if store::parse_upload_key(key).is_none() {
        tracing::warn!(key, "an event for an object outside the upload keys; dropped");
        return Ok(());
    }
    tracing::info!(key, "an upload no file owns (deleted, expired or never reserved); object deleted");
    app.s3.delete_object().bucket(&*app.bucket).key(key).send().await.map_err(|e| aws_sdk_s3::error::DisplayErrorContext(e).to_string())?;
    Ok(())
}

/// Reads the object (the version this event is about: `If-Match` its ETag), derives what it
/// can, writes the derived objects and records the outcome.
async fn process(app: &AppState, file: StoredFile) -> Result<(), String> {
    let key = file.object_key();
    let mut get = app.s3.get_object().bucket(&*app.bucket).key(&key);
    if let Some(etag) = file.etag.as_deref().filter(|e| !e.is_empty()) {
        get = get.if_match(format!("\"{etag}\""));
    }
    if file.size > PROCESS_MAX_BYTES {
        get = get.range(format!("bytes=0-{}", 64 * 1024 - 1));
    }
    let object = match get.send().await {
        Ok(object) => object,
        Err(e) => {
            let status = e.raw_response().map(|r| r.status().as_u16());
            if matches!(status, Some(404 | 412)) {
                // Replaced or deleted since: the event of what replaced it does the work.
                tracing::info!(key, ?status, "the object changed since its event; dropped");
                return Ok(());
            }
            return Err(aws_sdk_s3::error::DisplayErrorContext(e).to_string());
        }
    };
    let bytes = object.body.collect().await.map_err(|e| format!("reading {key}: {e}"))?.into_bytes();
    let plan = app.store.plan_of(file.org_id).await.map_err(|e| e.to_string())?;
    let Some(plan) = plan else {
        tracing::info!(key, "the org is gone; dropped");
        return Ok(());
    };
    let (declared, limits, whole) = (file.content_type.clone(), app.limits, file.size <= PROCESS_MAX_BYTES);
    let work = tokio::task::spawn_blocking(move || analyse(&bytes, &declared, plan.limits().file_types, &limits, whole));
    let (mut outcome, derived) = match tokio::time::timeout(PROCESS_TIMEOUT, work).await {
        Ok(Ok(done)) => done,
        Ok(Err(e)) => (failed(format!("processing stopped: {e}")), Derived::default()),
        Err(_) => (failed(format!("processing took longer than {} s", PROCESS_TIMEOUT.as_secs())), Derived::default()),
    };
    if outcome.status == Some(FileStatus::Ready) && !keep_checked_copy(app, &file).await? {
        tracing::info!(key, "the object was replaced while it was processed; the newer upload's event does the work");
        return Ok(());
    }
    if let Some(thumbnail) = derived.thumbnail {
        put(app, &file.thumbnail_key(), thumbnail, media::THUMBNAIL_CONTENT_TYPE).await?;
        outcome.has_thumbnail = true;
    }
    if let Some(text) = derived.text {
        put(app, &file.text_key(), text.into_bytes(), "text/plain; charset=utf-8").await?;
        outcome.has_text = true;
    }
    let status = outcome.status;
    match app.store.finish_processing(&file, outcome, app.gated).await.map_err(|e| e.to_string())? {
        Some(done) => {
            tracing::info!(key, status = %done.status, "processed");
            // Without the malware gate nothing reads the upload again (with it, the scanner
            // does; the scan result's handler deletes it).
            if !app.gated {
                delete_upload(app, &done).await;
            }
        }
        None => {
            // Deleted or replaced meanwhile. If deleted, what this wrote belongs to no file.
            if app.store.file_of_object(&key).await.map_err(|e| e.to_string())?.is_none() {
                for k in [file.thumbnail_key(), file.text_key()] {
                    let _ = app.s3.delete_object().bucket(&*app.bucket).key(&k).send().await;
                }
            }
            tracing::info!(key, ?status, "the file changed while it was processed; result dropped");
        }
    }
    Ok(())
}

/// Copies the uploaded object to the file's checked key, which downloads serve; `false` when
/// the upload key no longer holds the bytes that were checked (a newer POST replaced them: the
/// copy's ETag differs from the event's, so the copy is deleted again). POST uploads are single
/// part and the bucket encrypts with SSE-S3, so an object's ETag is the MD5 of its bytes and a
/// copy of the same bytes has the same ETag.
async fn keep_checked_copy(app: &AppState, file: &StoredFile) -> Result<bool, String> {
    let checked = file.checked_key();
    let copied = app
        .s3
        .copy_object()
        .bucket(&*app.bucket)
        .copy_source(format!("{}/{}", app.bucket, file.object_key()))
        .key(&checked)
        .send()
        .await
        .map_err(|e| aws_sdk_s3::error::DisplayErrorContext(e).to_string())?;
    let etag = copied.copy_object_result().and_then(|r| r.e_tag()).unwrap_or("").trim_matches('"');
    if file.etag.as_deref().is_some_and(|e| !e.is_empty() && e != etag) {
        let _ = app.s3.delete_object().bucket(&*app.bucket).key(&checked).send().await;
        return Ok(false);
    }
    Ok(true)
}

/// Deletes the uploaded object once processing (and the scan) are done with it: the checked
/// copy is what stays. An upload that replaced it meanwhile is a newer object with an event of
/// its own; deleting it would lose that upload, so only an object with the file's ETag goes.
pub(crate) async fn delete_upload(app: &AppState, file: &StoredFile) {
    let key = file.object_key();
    let Some(etag) = file.etag.as_deref().filter(|e| !e.is_empty()) else { return };
    let head = app.s3.head_object().bucket(&*app.bucket).key(&key).send().await;
    if head.as_ref().ok().and_then(|h| h.e_tag()).map(|e| e.trim_matches('"')) != Some(etag) {
        return;
    }
    if let Err(e) = app.s3.delete_object().bucket(&*app.bucket).key(&key).send().await {
        tracing::warn!(error = %aws_sdk_s3::error::DisplayErrorContext(&e), key, "deleting a processed upload failed (the lifecycle rule will)");
    }
}

async fn put(app: &AppState, key: &str, bytes: Vec<u8>, content_type: &str) -> Result<(), String> {
    app.s3
        .put_object()
        .bucket(&*app.bucket)
        .key(key)
        .content_type(content_type)
        .body(ByteStream::from(bytes))
        .send()
        .await
        .map_err(|e| aws_sdk_s3::error::DisplayErrorContext(e).to_string())?;
    Ok(())
}

/// What processing makes besides the file item's fields.
#[derive(Default)]
struct Derived {
    thumbnail: Option<Vec<u8>>,
    text: Option<String>,
}

fn failed(reason: String) -> Outcome {
    Outcome { status: Some(FileStatus::Failed), reason: Some(reason), ..Default::default() }
}

/// The verdict on an upload's bytes: its type (sniffed) against the plan's types and the
/// declared type, then what can be derived from it. `whole` is false when only the first bytes
/// of a large file were read.
fn analyse(bytes: &[u8], declared: &str, allowed: &[&str], limits: &media::Limits, whole: bool) -> (Outcome, Derived) {
    // The first bytes of a large file may end inside a UTF-8 character: not a reason to call
    // its text binary.
    let head = match std::str::from_utf8(bytes) {
        Err(e) if !whole && e.error_len().is_none() => &bytes[..e.valid_up_to()],
        _ => bytes,
    };
    let sniffed = media::sniff(head);
    let detected = if sniffed == media::Sniffed::Text && declared.starts_with("text/") { declared.to_owned() } else { sniffed.mime().to_owned() };
    let mut outcome = Outcome { detected_type: Some(detected.clone()), sha256: whole.then(|| media::sha256_hex(bytes)), ..Default::default() };
    if !allowed.contains(&sniffed.mime()) {
        outcome.status = Some(FileStatus::Quarantined);
        outcome.reason = Some(format!("the content is {detected}, which this plan does not accept"));
        return (outcome, Derived::default());
    }
    if !media::matches_declared(sniffed, declared) {
        outcome.status = Some(FileStatus::Quarantined);
        outcome.reason = Some(format!("the content is {detected}, not the declared {declared}"));
        return (outcome, Derived::default());
    }
    if !whole {
        outcome.status = Some(FileStatus::Ready);
        outcome.reason = Some(format!("not processed: larger than {} MiB", PROCESS_MAX_BYTES / (1024 * 1024)));
        return (outcome, Derived::default());
    }
    let mut derived = Derived::default();
    match media::process(bytes, sniffed, limits) {
        Ok(media::Processed::Image(picture)) => {
            outcome.width = Some(picture.width);
            outcome.height = Some(picture.height);
            derived.thumbnail = Some(picture.thumbnail.bytes);
            outcome.status = Some(FileStatus::Ready);
        }
        Ok(media::Processed::Document(extract)) => {
            outcome.pages = extract.pages;
            outcome.characters = u64::try_from(extract.characters).ok();
            outcome.text_truncated = extract.truncated;
            derived.text = Some(extract.text);
            outcome.status = Some(FileStatus::Ready);
        }
        Ok(media::Processed::Other(_)) => outcome.status = Some(FileStatus::Ready),
        Err(failure) => {
            outcome.status = Some(FileStatus::Failed);
            outcome.reason = Some(failure.reason);
        }
    }
    (outcome, derived)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The sample delivery (an SQS message whose body is S3's event) parses as the handler
    /// parses it, and its key names the file it was built for.
    #[test]
    fn the_real_delivery_shape_is_read() {
        let raw = std::fs::read_to_string(testkit::events_dir().join("sqs/s3-object-created.json")).unwrap();
        let sqs: SqsEvent = serde_json::from_str(&raw).unwrap();
        let body = sqs.records[0].body.as_deref().unwrap();
        let s3: S3Event = serde_json::from_str(body).unwrap();
        let object = &s3.records[0].s3.object;
        let key = decode_key(object.key.as_deref().unwrap()).unwrap();
        assert!(store::parse_upload_key(&key).is_some(), "{key}");
        assert!(object.sequencer.is_some() && object.size.is_some() && object.e_tag.is_some());
    }

    #[test]
    fn event_keys_are_form_decoded() {
        assert_eq!(decode_key("uploads/a/b+c%2Bd%C3%A9").as_deref(), Some("uploads/a/b c+dé"));
        assert_eq!(decode_key("a%2"), None);
        assert_eq!(decode_key("a%FF"), None);
    }
}
