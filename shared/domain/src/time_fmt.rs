use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// Current time as RFC 3339 UTC, the format of every timestamp we store.
pub fn now_rfc3339() -> String {
    OffsetDateTime::now_utc()
        .replace_nanosecond(0)
        .unwrap_or_else(|_| OffsetDateTime::now_utc())
        .format(&Rfc3339)
        .unwrap_or_default()
}

/// `yyyy-mm` of now (UTC): the key of a monthly usage record.
pub fn month_key() -> String {
    let now = OffsetDateTime::now_utc();
    format!("{:04}-{:02}", now.year(), u8::from(now.month()))
}
