//! The malware gate: GuardDuty Malware Protection for S3 scans each new object of the upload
//! bucket and publishes a "GuardDuty Malware Protection Object Scan Result" event to the
//! default event bus; a rule (made only when the stack enables the protection plan) sends
//! those of the upload bucket here. The result is recorded on the file of the scanned object
//! (matched by ETag, so a result for an older upload of the key is ignored): a clean scan makes
//! a processed file ready, threats quarantine it, whichever of processing and scan comes first.

use aws_lambda_events::eventbridge::EventBridgeEvent;
use serde_json::Value;

use crate::AppState;

/// The detail type of a scan result.
pub const SCAN_RESULT_DETAIL_TYPE: &str = "GuardDuty Malware Protection Object Scan Result";

/// What a scan result event says: the object's key and ETag, and the verdict
/// (`NO_THREATS_FOUND`, `THREATS_FOUND`, `UNSUPPORTED`, `ACCESS_DENIED`, `FAILED`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanResult {
    pub bucket: String,
    pub key: String,
    pub etag: String,
    pub result: String,
}

/// The scan result an event carries, if it is one.
pub fn scan_result(event: &EventBridgeEvent<Value>) -> Option<ScanResult> {
    if event.detail_type != SCAN_RESULT_DETAIL_TYPE {
        return None;
    }
    let d = &event.detail;
    let text = |pointer: &str| d.pointer(pointer).and_then(Value::as_str).map(str::to_owned);
    Some(ScanResult {
        bucket: text("/s3ObjectDetails/bucketName")?,
        key: text("/s3ObjectDetails/objectKey")?,
        etag: text("/s3ObjectDetails/eTag").unwrap_or_default().trim_matches('"').to_owned(),
        result: text("/scanResultDetails/scanResultStatus").or_else(|| text("/scanStatus"))?,
    })
}

/// Records one scan result. Results of other buckets, of objects no file owns, and of older
/// uploads are dropped with a log line.
pub async fn on_scan_result(app: &AppState, event: EventBridgeEvent<Value>) -> Result<(), String> {
    let Some(scan) = scan_result(&event) else {
        tracing::warn!(detail_type = ?event.detail_type, "not a malware scan result; dropped");
        return Ok(());
    };
    if scan.bucket != *app.bucket {
        tracing::warn!(bucket = scan.bucket, "a scan result of another bucket; dropped");
        return Ok(());
    }
    // GuardDuty reports keys as stored (not form-encoded, unlike S3 notifications).
    let Some(file) = app.store.file_of_object(&scan.key).await.map_err(|e| e.to_string())? else {
        tracing::info!(key = scan.key, "a scan result for an object no file owns; dropped");
        return Ok(());
    };
    match app.store.record_scan(&file, &scan.etag, &scan.result).await.map_err(|e| e.to_string())? {
        Some(f) => {
            tracing::info!(key = scan.key, result = scan.result, status = %f.status, "scan result recorded");
            // Scanned and processed: the checked copy is what stays.
            if f.status != domain::files::FileStatus::Processing && f.scan_etag == f.etag {
                crate::process::delete_upload(app, &f).await;
            }
        }
        None => tracing::info!(key = scan.key, "a scan result of an older upload, or the file changed meanwhile; dropped"),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> EventBridgeEvent<Value> {
        let raw = std::fs::read_to_string(testkit::events_dir().join("eventbridge/guardduty-malware-scan-result.json")).unwrap();
        serde_json::from_str(&raw).unwrap()
    }

    #[test]
    fn the_real_event_shape_is_read() {
        let scan = scan_result(&sample()).unwrap();
        assert_eq!(scan.bucket, "tenantry-prod-uploads-123456789012");
        assert_eq!(scan.key, "uploads/01JDQ2V3X4Y5Z6A7B8C9D0E1F2/01JDQ3A9K7M2N4P6Q8R0S2T4V6");
        assert_eq!((scan.etag.as_str(), scan.result.as_str()), ("5b2d0b8a4f4e6a1c9b1d3f7e2a8c6d40", "NO_THREATS_FOUND"));
        assert_eq!(api::event_kind(&serde_json::to_value(sample()).unwrap()), api::EventKind::Bus);
    }

    #[test]
    fn other_events_are_not_scan_results() {
        let mut other = sample();
        other.detail_type = "GuardDuty Malware Protection Resource Status".into();
        assert_eq!(scan_result(&other), None);
        let mut skipped = sample();
        skipped.detail = serde_json::json!({"scanStatus": "SKIPPED", "s3ObjectDetails": {"bucketName": "b", "objectKey": "k"}});
        assert_eq!(scan_result(&skipped).map(|s| s.result), Some("SKIPPED".into()), "a scan without a result says why");
    }
}
