//! The `upload-sweep` schedule: frees the storage reserved for uploads that never arrived, and
//! gives up on files stuck `processing` ([`give_up_stalled`]).
//!
//! A reservation holds until its presigned POST has expired plus a grace period
//! ([`domain::files::RESERVATION_GRACE_SECS`]) for a late S3 event. Each run reads the
//! `UPLOADS#{day}` buckets from where the previous run got to, deletes each expired upload's
//! item and reservation in one transaction, and deletes its object in case the upload did land
//! after all (its event then finds no file and is dropped).

use crate::AppState;

/// The schedule's id (the registry's and the event's `detail.schedule`).
pub const SWEEP_SCHEDULE: &str = "upload-sweep";

/// How far back the first run looks.
const FIRST_LOOKBACK_SECS: i64 = 7 * 86_400;

/// One run: the uploads whose reservations were freed.
pub async fn sweep(app: &AppState) -> Result<usize, String> {
    let now = app.store.clock().epoch();
    let since = app.store.sweep_mark(SWEEP_SCHEDULE).await.map_err(|e| e.to_string())?.unwrap_or(now - FIRST_LOOKBACK_SECS);
    let expired = app.store.expired_uploads(since, now).await.map_err(|e| e.to_string())?;
    let mut freed = 0;
    for file in &expired {
        if app.store.expire_upload(file).await.map_err(|e| e.to_string())? {
            freed += 1;
            if let Err(e) = app.s3.delete_object().bucket(&*app.bucket).key(file.object_key()).send().await {
                tracing::warn!(error = %aws_sdk_s3::error::DisplayErrorContext(&e), "deleting the object of an expired upload failed");
            }
        }
    }
    // Days before today's are done; today's bucket is read again next time.
    app.store.set_sweep_mark(SWEEP_SCHEDULE, now - now.rem_euclid(86_400)).await.map_err(|e| e.to_string())?;
    tracing::info!(freed, "upload sweep");
    Ok(freed)
}

/// The sweep mark of [`give_up_stalled`].
const STALLED_MARK: &str = "upload-sweep/stalled";

/// Files still `processing` long after their last change (their message went to the
/// dead-letter queue, or the malware scan never came) become `failed`, or `quarantined` when
/// only the scan was awaited, so that no file waits forever. Answers how many.
pub async fn give_up_stalled(app: &AppState) -> Result<usize, String> {
    let now = app.store.clock().epoch();
    let since = app.store.sweep_mark(STALLED_MARK).await.map_err(|e| e.to_string())?.unwrap_or(now - FIRST_LOOKBACK_SECS);
    let stalled = app.store.stalled_files(since, now).await.map_err(|e| e.to_string())?;
    let mut given_up = 0;
    for file in &stalled {
        if let Some(f) = app.store.give_up_processing(file).await.map_err(|e| e.to_string())? {
            tracing::warn!(org_id = %f.org_id, file_id = %f.id, status = %f.status, "a stalled file given up");
            given_up += 1;
        }
    }
    app.store.set_sweep_mark(STALLED_MARK, now - now.rem_euclid(86_400)).await.map_err(|e| e.to_string())?;
    Ok(given_up)
}

pub async fn on_schedule(app: &AppState, event: api::ScheduledEvent) -> Result<(), String> {
    if event.detail.schedule != SWEEP_SCHEDULE {
        return Err(format!("unknown schedule {}", event.detail.schedule));
    }
    sweep(app).await?;
    give_up_stalled(app).await.map(|_| ())
}
