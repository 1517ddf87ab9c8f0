//! Uploaded files: their names, the content types a client may declare, and the
//! `Content-Disposition` a download is served with.
//!
//! A file's name is the client's and is only ever metadata: object keys are built from ids
//! (`store`), so a name cannot reach another object, and the name is cleaned here so that it
//! cannot break a header or a path when shown or downloaded.

pub use crate::work::{FileId, FileStatus};
use crate::{FieldError, Plan};

/// The longest name kept, in characters.
pub const NAME_MAX_CHARS: usize = 255;

/// How long a presigned upload stays valid.
pub const UPLOAD_VALID_SECS: i64 = 10 * 60;

/// How long a reservation outlives its presigned upload before the sweep frees it: S3 events
/// arrive within seconds, so an upload that has not been seen after this never will be.
pub const RESERVATION_GRACE_SECS: i64 = 50 * 60;

/// The slowest upload a reservation waits for, in bytes a second: a large file's reservation
/// holds longer, so that an upload started just before its POST expired can finish.
pub const SLOWEST_UPLOAD_BYTES_PER_SEC: u64 = 256 * 1024;

/// Until when (epoch seconds) a reservation of `size` bytes made at `now` holds.
pub fn reservation_expiry(now: i64, size: u64) -> i64 {
    let transfer = i64::try_from(size / SLOWEST_UPLOAD_BYTES_PER_SEC).unwrap_or(i64::MAX / 4);
    now.saturating_add(UPLOAD_VALID_SECS + RESERVATION_GRACE_SECS).saturating_add(transfer)
}

/// How long a presigned download stays valid.
pub const DOWNLOAD_VALID_SECS: u64 = 5 * 60;

/// The content types a client may declare (the types of the most generous plan). What the bytes
/// are is decided later, by sniffing, against the plan's list ([`crate::Limits::file_types`]).
pub const DECLARABLE_TYPES: &[&str] = crate::plan::ALL_FILE_TYPES;

/// A file name as kept: trimmed; control characters, path separators and characters that
/// Windows refuses in names replaced by `_`; 1 to [`NAME_MAX_CHARS`] characters; not `.` or `..`.
pub fn file_name(raw: &str, field: &str) -> Result<String, FieldError> {
    let cleaned: String =
        raw.trim().chars().map(|c| if c.is_control() || matches!(c, '/' | '\\' | ':' | '*' | '?' | '"' | '<' | '>' | '|') { '_' } else { c }).collect();
    let cleaned = cleaned.trim().to_owned();
    if cleaned.is_empty() || cleaned == "." || cleaned == ".." {
        return Err(FieldError::new(field, "a file name is required"));
    }
    if cleaned.chars().count() > NAME_MAX_CHARS {
        return Err(FieldError::new(field, "at most 255 characters"));
    }
    Ok(cleaned)
}

/// The declared content type, lower-cased and without parameters, if it is one a client may
/// declare ([`DECLARABLE_TYPES`]) and the plan allows.
pub fn declared_type(raw: &str, plan: Plan, field: &str) -> Result<&'static str, FieldError> {
    let essence = raw.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    let known = DECLARABLE_TYPES.iter().copied().find(|t| *t == essence);
    match known {
        Some(t) if plan.limits().file_types.contains(&t) => Ok(t),
        Some(_) => Err(FieldError::new(field, "this plan does not accept files of this type")),
        None => Err(FieldError::new(field, "unsupported content type")),
    }
}

/// `Content-Disposition: attachment` for `name`: an ASCII fallback (`filename=`, quotes and
/// backslashes replaced) and the exact name percent-encoded (`filename*=UTF-8''…`, RFC 6266 and
/// RFC 8187), so a browser saves the file under its name and never renders it inline.
pub fn content_disposition(name: &str) -> String {
    let fallback: String = name.chars().map(|c| if c.is_ascii_graphic() && c != '"' && c != '\\' && c != '%' || c == ' ' { c } else { '_' }).collect();
    let mut encoded = String::with_capacity(name.len() * 3);
    for b in name.bytes() {
        // RFC 8187 attr-char: ALPHA / DIGIT / "!" / "#" / "$" / "&" / "+" / "-" / "." / "^" / "_" / "`" / "|" / "~"
        if b.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&b) {
            encoded.push(char::from(b));
        } else {
            encoded.push_str(&format!("%{b:02X}"));
        }
    }
    format!("attachment; filename=\"{fallback}\"; filename*=UTF-8''{encoded}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_cannot_carry_paths_controls_or_header_breaks() {
        assert_eq!(file_name("  report.pdf ", "name").unwrap(), "report.pdf");
        assert_eq!(file_name("../../etc/passwd", "name").unwrap(), ".._.._etc_passwd");
        assert_eq!(file_name("a\r\nSet-Cookie: x", "name").unwrap(), "a__Set-Cookie_ x");
        assert_eq!(file_name("C:\\x\\y.png", "name").unwrap(), "C__x_y.png");
        assert!(file_name("   ", "name").is_err());
        assert!(file_name("..", "name").is_err());
        assert!(file_name(&"é".repeat(256), "name").is_err());
        assert_eq!(file_name(&"é".repeat(255), "name").unwrap().chars().count(), 255);
    }

    #[test]
    fn declared_types_are_normalised_and_checked_against_the_plan() {
        assert_eq!(declared_type("Image/PNG; charset=binary", Plan::Free, "contentType").unwrap(), "image/png");
        assert!(declared_type("application/x-msdownload", Plan::Enterprise, "contentType").is_err());
        let docx = "application/vnd.openxmlformats-officedocument.wordprocessingml.document";
        assert!(declared_type(docx, Plan::Free, "contentType").is_err());
        assert_eq!(declared_type(docx, Plan::Starter, "contentType").unwrap(), docx);
    }

    #[test]
    fn content_disposition_keeps_the_name_and_cannot_be_broken_out_of() {
        let h = content_disposition("résumé \"final\".pdf");
        assert_eq!(h, "attachment; filename=\"r_sum_ _final_.pdf\"; filename*=UTF-8''r%C3%A9sum%C3%A9%20%22final%22.pdf");
        assert!(!content_disposition("a\r\nb").contains('\n'));
    }
}
