//! Presigned requests to the upload bucket, so that bytes never pass through Lambda.
//!
//! Uploads are browser-based POSTs with a SigV4-signed policy
//! (<https://docs.aws.amazon.com/AmazonS3/latest/API/sigv4-HTTPPOSTConstructPolicy.html>):
//! the policy names the one object key, the content type and `content-length-range` with the
//! declared size as both bounds, so S3 itself refuses any other key, type or size. The SDK
//! presigns only single requests (GET, PUT), not POST policies, so the policy is built here
//! and signed with the SDK's own SigV4 functions (`aws-sigv4`) and the function's credentials.
//! Downloads are SDK-presigned GETs.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use base64::Engine;
use serde::Serialize;
use serde_json::{Value, json};
use time::OffsetDateTime;

/// How a client uploads a file: a multipart/form-data POST to `url` with `fields` (in any
/// order) followed by the file as the last part, named `file`.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PresignedUpload {
    /// Always `POST`.
    pub method: String,
    pub url: String,
    /// The form fields to send before the file.
    pub fields: BTreeMap<String, String>,
    /// When the request stops being accepted (RFC 3339).
    pub expires_at: String,
}

/// Why a request could not be signed.
#[derive(Debug, thiserror::Error)]
pub enum SignError {
    #[error("no credentials to sign with: {0}")]
    Credentials(String),
}

/// Signs POST policies for one bucket.
#[derive(Clone)]
pub struct PostSigner {
    credentials: SharedCredentialsProvider,
    region: String,
    bucket: String,
    /// Where the form is posted: the bucket's virtual-hosted URL on AWS, path-style under an
    /// endpoint override (the local endpoint).
    url: String,
}

impl std::fmt::Debug for PostSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostSigner").field("bucket", &self.bucket).field("url", &self.url).finish_non_exhaustive()
    }
}

/// What one upload may be.
pub struct UploadPolicy<'a> {
    pub key: &'a str,
    pub content_type: &'a str,
    pub size: u64,
    pub valid_for: Duration,
}

impl PostSigner {
    pub fn new(credentials: SharedCredentialsProvider, region: String, bucket: String, endpoint: Option<&str>) -> PostSigner {
        let url = match endpoint {
            Some(e) => format!("{}/{bucket}", e.trim_end_matches('/')),
            None => format!("https://{bucket}.s3.{region}.amazonaws.com/"),
        };
        PostSigner { credentials, region, bucket, url }
    }

    /// A presigned POST for exactly `policy`, signed at `now`.
    pub async fn sign(&self, policy: &UploadPolicy<'_>, now: SystemTime) -> Result<PresignedUpload, SignError> {
        let creds = self.credentials.provide_credentials().await.map_err(|e| SignError::Credentials(e.to_string()))?;
        let at = OffsetDateTime::from(now);
        let date = format!("{:04}{:02}{:02}", at.year(), u8::from(at.month()), at.day());
        let amz_date = format!("{date}T{:02}{:02}{:02}Z", at.hour(), at.minute(), at.second());
        let credential = format!("{}/{date}/{}/s3/aws4_request", creds.access_key_id(), self.region);
        let expires = at + policy.valid_for;
        let expiration = format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.000Z",
            expires.year(),
            u8::from(expires.month()),
            expires.day(),
            expires.hour(),
            expires.minute(),
            expires.second()
        );

        let mut fields = BTreeMap::from([
            ("key".to_owned(), policy.key.to_owned()),
            ("Content-Type".to_owned(), policy.content_type.to_owned()),
            ("x-amz-algorithm".to_owned(), "AWS4-HMAC-SHA256".to_owned()),
            ("x-amz-credential".to_owned(), credential),
            ("x-amz-date".to_owned(), amz_date),
        ]);
        if let Some(token) = creds.session_token() {
            fields.insert("x-amz-security-token".to_owned(), token.to_owned());
        }
        let mut conditions: Vec<Value> = vec![json!({ "bucket": self.bucket }), json!(["content-length-range", policy.size, policy.size])];
        conditions.extend(fields.iter().map(|(k, v)| json!({ k: v })));
        let document = json!({ "expiration": expiration, "conditions": conditions });
        let encoded = base64::engine::general_purpose::STANDARD.encode(document.to_string());
        let key = aws_sigv4::sign::v4::generate_signing_key(creds.secret_access_key(), now, &self.region, "s3");
        let signature = aws_sigv4::sign::v4::calculate_signature(key, encoded.as_bytes());
        fields.insert("policy".to_owned(), encoded);
        fields.insert("x-amz-signature".to_owned(), signature);
        Ok(PresignedUpload { method: "POST".into(), url: self.url.clone(), fields, expires_at: domain::rfc3339(expires) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_credential_types::Credentials;

    #[tokio::test]
    async fn the_policy_pins_key_type_and_exact_size_and_is_signed() {
        let creds = SharedCredentialsProvider::new(Credentials::new("AKID", "SECRET", Some("TOKEN".into()), None, "test"));
        let signer = PostSigner::new(creds, "us-east-1".into(), "bucket".into(), None);
        let at = OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap();
        let up = signer
            .sign(&UploadPolicy { key: "uploads/o/f", content_type: "image/png", size: 10, valid_for: Duration::from_secs(600) }, at.into())
            .await
            .unwrap();
        assert_eq!(up.url, "https://bucket.s3.us-east-1.amazonaws.com/");
        assert_eq!(up.fields["key"], "uploads/o/f");
        assert_eq!(up.fields["x-amz-security-token"], "TOKEN");
        let policy: Value = serde_json::from_slice(&base64::engine::general_purpose::STANDARD.decode(&up.fields["policy"]).unwrap()).unwrap();
        let conditions = policy["conditions"].as_array().unwrap();
        assert!(conditions.contains(&json!(["content-length-range", 10, 10])));
        assert!(conditions.contains(&json!({"key": "uploads/o/f"})));
        assert!(conditions.contains(&json!({"Content-Type": "image/png"})));
        assert!(conditions.contains(&json!({"x-amz-security-token": "TOKEN"})));
        assert_eq!(policy["expiration"], "2027-01-15T08:10:00.000Z");
        let key = aws_sigv4::sign::v4::generate_signing_key("SECRET", at.into(), "us-east-1", "s3");
        assert_eq!(up.fields["x-amz-signature"], aws_sigv4::sign::v4::calculate_signature(key, up.fields["policy"].as_bytes()));
    }
}
