//! Projects and tasks: their ids, statuses, validated text, labels, due dates, the
//! fractional ranks that order a board column, and `@handle` mentions.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use time::format_description::well_known::Rfc3339;
use time::{Date, Month, OffsetDateTime, UtcOffset};
use ulid::Ulid;

use crate::{FieldError, IdError};

/// A ULID id newtype, shaped like [`crate::OrgId`].
macro_rules! ulid_id {
    ($($(#[$doc:meta])* $name:ident;)*) => {$(
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(Ulid);

        impl $name {
            /// A new id, ordered by creation time to the millisecond.
            pub fn new() -> Self {
                $name(Ulid::new())
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl FromStr for $name {
            type Err = IdError;
            fn from_str(s: &str) -> Result<Self, IdError> {
                if s.len() != 26 {
                    return Err(IdError("must be a 26-character ULID"));
                }
                Ulid::from_string(s).map($name).map_err(|_| IdError("must be a ULID"))
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                String::deserialize(d)?.parse().map_err(serde::de::Error::custom)
            }
        }

        impl schemars::JsonSchema for $name {
            fn schema_name() -> std::borrow::Cow<'static, str> {
                stringify!($name).into()
            }
            fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
                schemars::json_schema!({ "type": "string", "pattern": "^[0-9A-HJKMNP-TV-Z]{26}$", "description": "A ULID" })
            }
        }
    )*};
}

pub(crate) use ulid_id;

ulid_id! {
    /// A project id: a ULID.
    ProjectId;
    /// A task id: a ULID.
    TaskId;
    /// A comment id: a ULID.
    CommentId;
    /// A file id: a ULID.
    FileId;
}

/// A closed set of values written as fixed strings in the API and in keys, ordered as declared.
macro_rules! str_enum {
    ($(#[$meta:meta])* $name:ident { $(#[$fm:meta])* $first:ident = $fs:literal $(, $(#[$vm:meta])* $v:ident = $s:literal)* $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema)]
        pub enum $name {
            $(#[$fm])*
            #[serde(rename = $fs)]
            $first,
            $($(#[$vm])* #[serde(rename = $s)] $v,)*
        }

        impl $name {
            /// Every value, in order.
            pub const ALL: &'static [$name] = &[$name::$first $(, $name::$v)*];

            /// The value as the API writes it.
            pub fn as_str(self) -> &'static str {
                match self {
                    $name::$first => $fs,
                    $($name::$v => $s,)*
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = IdError;
            /// Exactly one of the API values.
            fn from_str(s: &str) -> Result<Self, IdError> {
                $name::ALL.iter().copied().find(|v| v.as_str() == s).ok_or(IdError(concat!("must be one of ", $fs $(, ", ", $s)*)))
            }
        }
    };
}

str_enum! {
    /// Where an uploaded file stands: reserved and awaiting its bytes, being processed, ready to
    /// download, quarantined (its type or a malware scan refused it) or failed (processing could
    /// not finish, e.g. a corrupt document).
    FileStatus { Uploading = "uploading", Processing = "processing", Ready = "ready", Quarantined = "quarantined", Failed = "failed" }
}

str_enum! {
    /// Whether a project is active or archived.
    ProjectStatus { Active = "active", Archived = "archived" }
}

str_enum! {
    /// Where a task stands.
    TaskStatus { Todo = "todo", InProgress = "in_progress", Blocked = "blocked", Done = "done", Canceled = "canceled" }
}

impl TaskStatus {
    /// Whether the task still needs work (todo, in progress or blocked).
    pub fn is_open(self) -> bool {
        matches!(self, TaskStatus::Todo | TaskStatus::InProgress | TaskStatus::Blocked)
    }
}

str_enum! {
    /// How urgent a task is; ordered from `None` to `Urgent`.
    #[derive(Default)]
    Priority { #[default] None = "none", Low = "low", Medium = "medium", High = "high", Urgent = "urgent" }
}

/// A trimmed single line of 1 to `max` characters without control characters.
fn one_line(field: &str, raw: &str, max: usize) -> Result<String, FieldError> {
    let s = raw.trim();
    if s.is_empty() {
        return Err(FieldError::new(field, "must not be empty"));
    }
    if s.chars().count() > max {
        return Err(FieldError::new(field, format!("must be at most {max} characters")));
    }
    if s.chars().any(char::is_control) {
        return Err(FieldError::new(field, "must not contain control characters"));
    }
    Ok(s.to_owned())
}

/// A project's name: 1 to 100 characters after trimming, no control characters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(transparent)]
pub struct ProjectName(String);

impl ProjectName {
    pub const MAX_CHARS: usize = 100;

    /// Validates `raw` (reported as `field`).
    pub fn parse(field: &str, raw: &str) -> Result<ProjectName, FieldError> {
        one_line(field, raw, Self::MAX_CHARS).map(ProjectName)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A task's title: 1 to 200 characters after trimming, no control characters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(transparent)]
pub struct TaskTitle(String);

impl TaskTitle {
    pub const MAX_CHARS: usize = 200;

    /// Validates `raw` (reported as `field`).
    pub fn parse(field: &str, raw: &str) -> Result<TaskTitle, FieldError> {
        one_line(field, raw, Self::MAX_CHARS).map(TaskTitle)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The longest project description, in characters.
pub const PROJECT_DESCRIPTION_MAX: usize = 2_000;
/// The longest task description, in characters.
pub const TASK_DESCRIPTION_MAX: usize = 10_000;
/// The longest comment, in characters.
pub const COMMENT_MAX: usize = 5_000;

/// Markdown text of at most `max_chars` characters, kept as given; control characters other
/// than newlines and tabs are refused.
pub fn description(field: &str, raw: &str, max_chars: usize) -> Result<String, FieldError> {
    if raw.chars().count() > max_chars {
        return Err(FieldError::new(field, format!("must be at most {max_chars} characters")));
    }
    if raw.chars().any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t')) {
        return Err(FieldError::new(field, "must not contain control characters other than newlines and tabs"));
    }
    Ok(raw.to_owned())
}

/// A comment's markdown text: trimmed, not empty, at most [`COMMENT_MAX`] characters.
pub fn comment_text(field: &str, raw: &str) -> Result<String, FieldError> {
    let s = raw.trim();
    if s.is_empty() {
        return Err(FieldError::new(field, "must not be empty"));
    }
    description(field, s, COMMENT_MAX)
}

/// The most labels on one task.
pub const MAX_LABELS_PER_TASK: usize = 10;
/// The most distinct labels in one organization.
pub const MAX_LABELS_PER_ORG: usize = 100;

/// A task label: trimmed, lower-cased, 1 to 32 characters, no control characters and none
/// of `,` `;` `#` (list separators and the key delimiter).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(transparent)]
pub struct Label(String);

impl Label {
    pub const MAX_CHARS: usize = 32;

    /// Validates and normalises `raw` (reported as `field`).
    pub fn parse(field: &str, raw: &str) -> Result<Label, FieldError> {
        let s = raw.trim().to_lowercase();
        if s.is_empty() {
            return Err(FieldError::new(field, "must not be empty"));
        }
        if s.chars().count() > Self::MAX_CHARS {
            return Err(FieldError::new(field, "must be at most 32 characters"));
        }
        if s.chars().any(char::is_control) {
            return Err(FieldError::new(field, "must not contain control characters"));
        }
        if s.contains([',', ';', '#']) {
            return Err(FieldError::new(field, "must not contain ',', ';' or '#'"));
        }
        Ok(Label(s))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A task's labels: each validated (as `field[i]`), duplicates dropped keeping the first,
/// at most [`MAX_LABELS_PER_TASK`] left.
pub fn labels(field: &str, raw: &[String]) -> Result<Vec<Label>, Vec<FieldError>> {
    let mut out: Vec<Label> = Vec::new();
    let mut errors = Vec::new();
    for (i, r) in raw.iter().enumerate() {
        match Label::parse(&format!("{field}[{i}]"), r) {
            Ok(label) if !out.contains(&label) => out.push(label),
            Ok(_) => {}
            Err(e) => errors.push(e),
        }
    }
    if out.len() > MAX_LABELS_PER_TASK {
        errors.push(FieldError::new(field, format!("at most {MAX_LABELS_PER_TASK} labels")));
    }
    if errors.is_empty() { Ok(out) } else { Err(errors) }
}

/// A due date: an RFC 3339 full-date (`2026-12-01`) or date-time
/// (`2026-12-01T17:00:00+02:00`), years 0000 to 9999.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Due(String);

/// A parsed due date or query bound.
enum DueValue {
    Date(Date),
    /// In UTC, within years 0000 to 9999.
    At(OffsetDateTime),
}

const DUE_FORMAT: &str = "must be a date (2026-12-01) or an RFC 3339 date-time with an offset (2026-12-01T17:00:00Z)";

impl DueValue {
    fn parse(raw: &str) -> Option<DueValue> {
        let s = raw.trim();
        let b = s.as_bytes();
        let digits = |r: std::ops::Range<usize>| b.get(r).is_some_and(|d| d.iter().all(u8::is_ascii_digit));
        if !(digits(0..4) && b.get(4) == Some(&b'-') && digits(5..7) && b.get(7) == Some(&b'-') && digits(8..10)) {
            return None;
        }
        if b.len() == 10 {
            let num = |r: std::ops::Range<usize>| s.get(r).and_then(|n| n.parse::<u16>().ok());
            let year = i32::from(num(0..4)?);
            let month = Month::try_from(u8::try_from(num(5..7)?).ok()?).ok()?;
            let day = u8::try_from(num(8..10)?).ok()?;
            return Date::from_calendar_date(year, month, day).ok().map(DueValue::Date);
        }
        // The time crate accepts any separator; RFC 3339 allows `T`, `t` and (by its note) a space.
        if !matches!(b.get(10), Some(b'T' | b't' | b' ')) {
            return None;
        }
        let at = OffsetDateTime::parse(s, &Rfc3339).ok()?.checked_to_offset(UtcOffset::UTC)?;
        (0..=9999).contains(&at.year()).then_some(DueValue::At(at))
    }
}

fn date_str(d: Date) -> String {
    format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
}

/// `YYYY-MM-DDTHH:MM:SSZ`, fractions dropped.
fn instant_str(at: OffsetDateTime) -> String {
    format!("{}T{:02}:{:02}:{:02}Z", date_str(at.date()), at.hour(), at.minute(), at.second())
}

impl Due {
    /// Validates `raw` (reported as `field`).
    pub fn parse(field: &str, raw: &str) -> Result<Due, FieldError> {
        match DueValue::parse(raw) {
            Some(DueValue::Date(d)) => Ok(Due(date_str(d))),
            Some(DueValue::At(at)) => Ok(Due(instant_str(at))),
            None => Err(FieldError::new(field, DUE_FORMAT)),
        }
    }

    /// The canonical form: `YYYY-MM-DD` for a date, `YYYY-MM-DDTHH:MM:SSZ` (UTC) for a date-time.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The instant it falls due, `YYYY-MM-DDTHH:MM:SSZ`, sortable in index keys; a date is
    /// due at the end of that day in UTC.
    pub fn key(&self) -> String {
        if self.0.len() == 10 { format!("{}T23:59:59Z", self.0) } else { self.0.clone() }
    }
}

/// A due-date query bound in [`Due::key`]'s format: a date means the start of that day in
/// UTC; a date-time is converted to UTC.
pub fn due_bound(field: &str, raw: &str) -> Result<String, FieldError> {
    match DueValue::parse(raw) {
        Some(DueValue::Date(d)) => Ok(format!("{}T00:00:00Z", date_str(d))),
        Some(DueValue::At(at)) => Ok(instant_str(at)),
        None => Err(FieldError::new(field, DUE_FORMAT)),
    }
}

impl Serialize for Due {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Due {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Due::parse("due", &s).map_err(|e| serde::de::Error::custom(e.message))
    }
}

impl schemars::JsonSchema for Due {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Due".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "description": "An RFC 3339 full-date (2026-12-01, due at the end of that day UTC) or date-time with an offset (2026-12-01T17:00:00+02:00, returned in UTC)"
        })
    }
}

/// The rank alphabet, in ASCII order: comparing ranks as strings compares them as ranks.
const RANK_DIGITS: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
const RANK_BASE: u8 = 62;
const RANK_MAX_LEN: usize = 128;

/// The digits of `s`, trailing zeros dropped; each byte outside the alphabet rounded to the
/// next alphabet character up (`up`: the result is not below `s`) or down (not above it).
fn rank_digits(s: &str, up: bool) -> Vec<u8> {
    let gap = |above: u8| if up { above } else { above - 1 };
    let mut d: Vec<u8> = s
        .bytes()
        .map(|b| match b {
            b'0'..=b'9' => b - b'0',
            b'A'..=b'Z' => b - b'A' + 10,
            b'a'..=b'z' => b - b'a' + 36,
            0..b'0' => 0,
            b':'..=b'@' => gap(10),
            b'['..=b'`' => gap(36),
            _ => 61,
        })
        .collect();
    trim_zeros(&mut d);
    d
}

fn trim_zeros(d: &mut Vec<u8>) {
    while d.last() == Some(&0) {
        d.pop();
    }
}

fn rank_string(digits: &[u8]) -> String {
    digits.iter().map(|&d| char::from(RANK_DIGITS[usize::from(d % RANK_BASE)])).collect()
}

/// The shortest digit string strictly between `a` and `b` (`None` = above everything),
/// read as base-62 fractions. Requires `a < b`; neither ends in zero.
fn rank_midpoint(mut a: &[u8], mut b: Option<&[u8]>) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        if let Some(hi) = b {
            // Copy the common prefix (`a` padded with zeros).
            let n = hi.iter().enumerate().take_while(|&(i, &d)| a.get(i).copied().unwrap_or(0) == d).count();
            out.extend_from_slice(&hi[..n]);
            a = a.get(n..).unwrap_or(&[]);
            b = hi.get(n..).filter(|rest| !rest.is_empty());
        }
        let da = a.first().copied().unwrap_or(0);
        let db = b.and_then(|hi| hi.first().copied()).unwrap_or(RANK_BASE);
        if db > da + 1 {
            out.push(da + (db - da) / 2);
            return out;
        }
        if b.is_some_and(|hi| hi.len() > 1) {
            out.push(db);
            return out;
        }
        out.push(da);
        a = a.get(1..).unwrap_or(&[]);
        b = None;
    }
}

/// A rank strictly after `lo` and strictly before `hi` (either may be absent), as short as
/// possible and never ending in `0`. If `lo >= hi`, `hi` is ignored.
pub fn rank_between(lo: Option<&str>, hi: Option<&str>) -> String {
    let lo = lo.map(|l| rank_digits(l, true)).unwrap_or_default();
    let hi = hi.map(|h| rank_digits(h, false)).filter(|hi| !hi.is_empty() && lo < *hi);
    rank_string(&rank_midpoint(&lo, hi.as_deref()))
}

/// `n` strictly increasing ranks after `lo`, evenly spread and of one short length (3
/// characters for 100,000 after nothing): for appending many items in order.
pub fn ranks_after(lo: Option<&str>, n: usize) -> Vec<String> {
    if n == 0 {
        return Vec::new();
    }
    let lo = lo.map(|l| rank_digits(l, true)).unwrap_or_default();
    let zs = lo.iter().take_while(|&&d| d == RANK_BASE - 1).count();
    let (prefix, rest) = lo.split_at(zs);
    let base = u128::from(RANK_BASE);
    let n = u128::try_from(n).unwrap_or(u128::MAX / 4);
    // Find the fewest digits `width` with room for n values spaced at least 2 apart above
    // `rest` (truncated to `width` digits): there is then always a value not ending in 0.
    let (mut width, mut lower, mut space) = (0usize, 0u128, 1u128);
    loop {
        width += 1;
        lower = lower.saturating_mul(base).saturating_add(u128::from(rest.get(width - 1).copied().unwrap_or(0)));
        space = space.saturating_mul(base);
        if space - lower >= 2 * n + 2 {
            break;
        }
    }
    let step = (space - lower) / (n + 1);
    (1..=n)
        .map(|i| {
            let mut v = lower + i * step;
            if v % base == 0 {
                v += 1;
            }
            let mut digits = vec![0u8; width];
            for d in digits.iter_mut().rev() {
                *d = u8::try_from(v % base).unwrap_or(0);
                v /= base;
            }
            let mut s = rank_string(prefix);
            s.push_str(&rank_string(&digits));
            s
        })
        .collect()
}

/// Whether `s` is a well-formed rank: 1 to 128 alphabet characters, not ending in `0`.
pub fn is_rank(s: &str) -> bool {
    !s.is_empty() && s.len() <= RANK_MAX_LEN && s.bytes().all(|b| b.is_ascii_alphanumeric()) && !s.ends_with('0')
}

fn is_handle_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')
}

/// The most mentions taken from one text.
const MAX_MENTIONS: usize = 20;

/// The `@handle`s mentioned in `text`, lower-cased, in order of first appearance, at most
/// 20. An `@` counts at the start or after a character that is not alphanumeric, `.`, `_`,
/// `-` or `@` (so an email address mentions nobody); trailing `.`, `_`, `-` are dropped;
/// handles outside 2 to 40 characters are ignored.
pub fn mentioned_handles(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut prev: Option<char> = None;
    for (i, c) in text.char_indices() {
        let starts = c == '@' && prev.is_none_or(|p| !(p.is_alphanumeric() || matches!(p, '.' | '_' | '-' | '@')));
        prev = Some(c);
        if !starts {
            continue;
        }
        let rest = text.get(i + 1..).unwrap_or("");
        let end = rest.find(|c| !is_handle_char(c)).unwrap_or(rest.len());
        let handle = rest.get(..end).unwrap_or("").trim_end_matches(['.', '_', '-']).to_ascii_lowercase();
        if (2..=40).contains(&handle.len()) && !out.contains(&handle) {
            out.push(handle);
            if out.len() == MAX_MENTIONS {
                break;
            }
        }
    }
    out
}

/// The longest base of a member handle, before its `-xxxx` suffix.
const HANDLE_BASE_MAX: usize = 24;

/// `s` lower-cased, each run of characters outside `[a-z0-9]` made one `-`, trimmed of `-`,
/// at most 24 characters.
fn handle_base(s: &str) -> String {
    let mut out = String::new();
    for c in s.to_lowercase().chars() {
        if c.is_ascii_lowercase() || c.is_ascii_digit() {
            out.push(c);
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    let trimmed = out.trim_matches('-');
    trimmed.get(..HANDLE_BASE_MAX).unwrap_or(trimmed).trim_end_matches('-').to_owned()
}

/// 4 characters of `[a-z0-9]` from FNV-1a 64 of `s`: the same on every platform and Rust version.
fn handle_suffix(s: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in s.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    const ALPHABET: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut v = h % 36u64.pow(4);
    let mut out = [b'0'; 4];
    for d in out.iter_mut().rev() {
        *d = ALPHABET[usize::try_from(v % 36).unwrap_or(0)];
        v /= 36;
    }
    out.iter().map(|&b| char::from(b)).collect()
}

/// A member's stable, readable handle, such as `ann-x7k2`: the email's local part (before
/// any `+`), else the display name, else `user`, made `[a-z0-9-]`, then `-` and 4
/// characters from a hash of `user_id`. Always a valid mention.
pub fn member_handle(email: Option<&str>, display_name: Option<&str>, user_id: &str) -> String {
    let local = email.map(|e| {
        let local = e.rsplit_once('@').map_or(e, |(l, _)| l);
        local.split('+').next().unwrap_or(local)
    });
    let base = [local, display_name].into_iter().flatten().map(handle_base).find(|b| !b.is_empty()).unwrap_or_else(|| "user".to_owned());
    format!("{base}-{}", handle_suffix(user_id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_and_reject_non_ulids() {
        let id = TaskId::new();
        assert_eq!(id.to_string().parse::<TaskId>().unwrap(), id);
        assert_eq!(serde_json::to_string(&id).unwrap(), format!("\"{id}\""));
        assert_eq!(serde_json::from_str::<TaskId>(&format!("\"{id}\"")).unwrap(), id);
        assert!("not-a-ulid".parse::<ProjectId>().is_err());
        assert!("01HZZZZZZZZZZZZZZZZZZZZZZ#".parse::<CommentId>().is_err());
        assert!(serde_json::from_str::<ProjectId>("\"x\"").is_err());
        let schema = serde_json::to_value(schemars::schema_for!(CommentId)).unwrap();
        assert_eq!(schema["pattern"], "^[0-9A-HJKMNP-TV-Z]{26}$");
    }

    #[test]
    fn enums_use_api_strings() {
        assert_eq!(serde_json::to_string(&TaskStatus::InProgress).unwrap(), "\"in_progress\"");
        assert_eq!(serde_json::to_string(&ProjectStatus::Archived).unwrap(), "\"archived\"");
        assert_eq!(serde_json::to_string(&Priority::None).unwrap(), "\"none\"");
        for s in TaskStatus::ALL {
            assert_eq!(s.as_str().parse::<TaskStatus>().unwrap(), *s);
            assert_eq!(serde_json::to_string(s).unwrap(), format!("\"{s}\""));
        }
        for p in Priority::ALL {
            assert_eq!(p.as_str().parse::<Priority>().unwrap(), *p);
            assert_eq!(serde_json::to_string(p).unwrap(), format!("\"{p}\""));
        }
        assert_eq!(TaskStatus::ALL.len(), 5);
        assert_eq!(Priority::default(), Priority::None);
        assert!(Priority::Urgent > Priority::Low);
        let open: Vec<_> = TaskStatus::ALL.iter().filter(|s| s.is_open()).map(|s| s.as_str()).collect();
        assert_eq!(open, ["todo", "in_progress", "blocked"]);
        assert_eq!("In_progress".parse::<TaskStatus>().unwrap_err().0, "must be one of todo, in_progress, blocked, done, canceled");
        assert!("".parse::<Priority>().is_err());
    }

    #[test]
    fn names_and_titles_are_one_trimmed_line() {
        assert_eq!(ProjectName::parse("name", "  Launch ").unwrap().as_str(), "Launch");
        assert!(ProjectName::parse("name", " ").is_err());
        assert!(ProjectName::parse("name", &"é".repeat(100)).is_ok());
        assert_eq!(ProjectName::parse("name", &"x".repeat(101)).unwrap_err().field, "name");
        assert!(ProjectName::parse("name", "a\nb").is_err());
        assert!(TaskTitle::parse("title", &"x".repeat(200)).is_ok());
        assert_eq!(TaskTitle::parse("title", &"x".repeat(201)).unwrap_err().message, "must be at most 200 characters");
        assert!(TaskTitle::parse("title", "tab\there").is_err());
        assert_eq!(serde_json::to_string(&TaskTitle::parse("t", "Hi").unwrap()).unwrap(), "\"Hi\"");
    }

    #[test]
    fn descriptions_and_comments_allow_newlines_and_tabs_only() {
        assert_eq!(description("d", "# Title\r\n\n\t- item  ", 100).unwrap(), "# Title\r\n\n\t- item  ");
        assert!(description("d", "bell\u{7}", 100).is_err());
        assert!(description("d", "", 100).is_ok());
        assert!(description("d", &"é".repeat(PROJECT_DESCRIPTION_MAX), PROJECT_DESCRIPTION_MAX).is_ok());
        assert!(description("d", &"x".repeat(PROJECT_DESCRIPTION_MAX + 1), PROJECT_DESCRIPTION_MAX).is_err());
        assert_eq!(comment_text("body", "  looks good\n").unwrap(), "looks good");
        assert_eq!(comment_text("body", " \n ").unwrap_err().message, "must not be empty");
        assert!(comment_text("body", &"x".repeat(COMMENT_MAX)).is_ok());
        assert!(comment_text("body", &"x".repeat(COMMENT_MAX + 1)).is_err());
        assert!(comment_text("body", "a\u{0}b").is_err());
    }

    #[test]
    fn labels_are_normalised_deduplicated_and_capped() {
        assert_eq!(Label::parse("l", "  Needs Review ").unwrap().as_str(), "needs review");
        for bad in ["", "a,b", "a;b", "a#b", "a\u{1}b", &"x".repeat(33)] {
            assert!(Label::parse("l", bad).is_err(), "{bad:?}");
        }
        let raw: Vec<String> = ["Bug", "ui", "bug ", "UI", "api"].map(String::from).to_vec();
        let got: Vec<_> = labels("labels", &raw).unwrap().into_iter().map(|l| l.as_str().to_owned()).collect();
        assert_eq!(got, ["bug", "ui", "api"]);
        let errs = labels("labels", &["ok".into(), "".into(), "a#b".into()]).unwrap_err();
        assert_eq!(errs.iter().map(|e| e.field.as_str()).collect::<Vec<_>>(), ["labels[1]", "labels[2]"]);
        let ten: Vec<String> = (0..10).map(|i| format!("l{i}")).chain(["L0".to_owned()]).collect();
        assert_eq!(labels("labels", &ten).unwrap().len(), 10);
        let eleven: Vec<String> = (0..11).map(|i| format!("l{i}")).collect();
        assert_eq!(labels("labels", &eleven).unwrap_err(), [FieldError::new("labels", "at most 10 labels")]);
    }

    fn due(raw: &str) -> (String, String) {
        let d = Due::parse("due", raw).unwrap();
        (d.as_str().to_owned(), d.key())
    }

    #[test]
    fn due_dates_are_normalised_to_utc() {
        assert_eq!(due("2026-12-01"), ("2026-12-01".into(), "2026-12-01T23:59:59Z".into()));
        assert_eq!(due(" 2024-02-29 "), ("2024-02-29".into(), "2024-02-29T23:59:59Z".into()));
        assert_eq!(due("2026-12-01T17:00:00+02:00"), ("2026-12-01T15:00:00Z".into(), "2026-12-01T15:00:00Z".into()));
        assert_eq!(due("2026-12-01T23:30:00.987-01:00").0, "2026-12-02T00:30:00Z");
        assert_eq!(due("2026-12-31t22:00:00z").0, "2026-12-31T22:00:00Z");
        assert_eq!(due("2026-12-31 22:00:00Z").0, "2026-12-31T22:00:00Z");
        assert_eq!(due("0000-01-01").1, "0000-01-01T23:59:59Z");
        assert_eq!(due("9999-12-31T23:59:59Z").0, "9999-12-31T23:59:59Z");
        for bad in [
            "",
            "2026-13-01",
            "2023-02-29",
            "2026-1-01",
            "+2026-12-01",
            "12/01/2026",
            "2026-12-01T17:00:00",
            "2026-12-01X17:00:00Z",
            "2026-12-01T25:00:00Z",
            "0000-01-01T00:30:00+01:00",
            "9999-12-31T23:00:00-02:00",
            "10000-01-01",
            "2026-12-01junk",
        ] {
            let err = Due::parse("tasks[0].due", bad).unwrap_err();
            assert_eq!(err.field, "tasks[0].due", "{bad}");
        }
    }

    #[test]
    fn due_serde_uses_the_canonical_string() {
        let d: Due = serde_json::from_str("\"2026-12-01T17:00:00+02:00\"").unwrap();
        assert_eq!(serde_json::to_string(&d).unwrap(), "\"2026-12-01T15:00:00Z\"");
        let err = serde_json::from_str::<Due>("\"tomorrow\"").unwrap_err().to_string();
        assert!(err.contains("must be a date"), "{err}");
        let schema = serde_json::to_value(schemars::schema_for!(Due)).unwrap();
        assert_eq!(schema["type"], "string");
    }

    #[test]
    fn due_bounds_start_a_date_and_convert_a_date_time() {
        assert_eq!(due_bound("from", "2026-12-01").unwrap(), "2026-12-01T00:00:00Z");
        assert_eq!(due_bound("to", "2026-12-01T01:00:00+02:00").unwrap(), "2026-11-30T23:00:00Z");
        assert_eq!(due_bound("to", "soon").unwrap_err().field, "to");
        // A date-only due falls after the start of its day and before the next day.
        let key = due("2026-12-01").1;
        assert!(due_bound("f", "2026-12-01").unwrap() <= key && key < due_bound("t", "2026-12-02").unwrap());
    }

    /// A small deterministic pseudo-random generator for the property tests.
    struct Lcg(u64);
    impl Lcg {
        fn below(&mut self, n: usize) -> usize {
            self.0 = self.0.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            usize::try_from(self.0 >> 33).unwrap() % n
        }
    }

    #[test]
    fn rank_between_basics() {
        assert_eq!(rank_between(None, None), "V");
        assert!(is_rank(&rank_between(None, None)));
        assert_eq!(rank_between(Some("V"), Some("W")), "VV");
        assert_eq!(rank_between(None, Some("1")), "0V");
        assert_eq!(rank_between(None, Some("01")), "00V");
        assert_eq!(rank_between(Some("z"), None), "zV");
        assert_eq!(rank_between(Some("Vz"), Some("W")), "VzV");
        assert_eq!(rank_between(Some("A"), Some("AV")), "AF");
        assert_eq!(rank_between(Some("V"), Some("V1")), "V0V");
        // Corrupt input: lo >= hi ignores hi; an empty or all-zero hi has nothing below it.
        assert!(rank_between(Some("b"), Some("a")).as_str() > "b");
        assert!(rank_between(Some("b"), Some("b")).as_str() > "b");
        assert!(is_rank(&rank_between(None, Some(""))));
        assert!(is_rank(&rank_between(None, Some("000"))));
        // Characters outside the alphabet do not panic and still give a valid rank.
        for (lo, hi) in [("a!", "b"), ("a", "b~"), ("ä", "ö"), ("", ""), ("V[", "V]"), (" ", "0")] {
            let r = rank_between(Some(lo), Some(hi));
            assert!(is_rank(&r), "{lo:?} {hi:?} -> {r:?}");
        }
        assert!(rank_between(Some("a!"), Some("b")).as_str() > "a!");
        assert!(rank_between(Some("a"), Some("b~")).as_str() < "b~");
    }

    #[test]
    fn is_rank_checks_shape() {
        assert!(is_rank("V") && is_rank("0V") && is_rank(&"z".repeat(128)));
        assert!(!is_rank("") && !is_rank("V0") && !is_rank("a-b") && !is_rank(&"z".repeat(129)) && !is_rank("é"));
    }

    #[test]
    fn random_insertions_keep_strict_order() {
        let mut rng = Lcg(7);
        let mut ranks: Vec<String> = Vec::new();
        for _ in 0..1_000 {
            let at = rng.below(ranks.len() + 1);
            let lo = at.checked_sub(1).map(|i| ranks[i].as_str());
            let hi = ranks.get(at).map(String::as_str);
            let r = rank_between(lo, hi);
            assert!(is_rank(&r), "{r}");
            assert!(lo.is_none_or(|lo| lo < r.as_str()) && hi.is_none_or(|hi| r.as_str() < hi), "{lo:?} < {r} < {hi:?}");
            ranks.insert(at, r);
        }
        assert!(ranks.windows(2).all(|w| w[0] < w[1]));
        let longest = ranks.iter().map(String::len).max().unwrap();
        assert!(longest <= 8, "{longest}");
    }

    #[test]
    fn repeated_insertion_at_one_spot_grows_slowly() {
        // Always between the same two neighbours, always at the front, always at the end.
        for (lo, hi, move_lo) in [(Some("V"), Some("W"), true), (None, Some("V"), false), (Some("V"), None, true)] {
            let (mut lo, mut hi) = (lo.map(String::from), hi.map(String::from));
            let mut r = String::new();
            for _ in 0..1_000 {
                r = rank_between(lo.as_deref(), hi.as_deref());
                assert!(lo.as_deref().is_none_or(|lo| lo < r.as_str()) && hi.as_deref().is_none_or(|hi| r.as_str() < hi), "{lo:?} < {r} < {hi:?}");
                assert!(!r.ends_with('0'));
                if move_lo { lo = Some(r.clone()) } else { hi = Some(r.clone()) }
            }
            // About one character per log2(62) ≈ 5.95 insertions.
            assert!((150..=210).contains(&r.len()), "{}", r.len());
        }
    }

    #[test]
    fn ranks_after_are_increasing_and_short() {
        assert_eq!(ranks_after(None, 0), Vec::<String>::new());
        assert_eq!(ranks_after(None, 1), ["V"]);
        assert_eq!(ranks_after(Some("V"), 1), [rank_between(Some("V"), None)]);
        for (lo, n, max_len) in [(None, 100_000, 3), (Some("V"), 1_000, 3), (Some("zzzz"), 100, 6), (Some("a1b2c3"), 61, 2), (Some("z"), 100_000, 4)] {
            let ranks = ranks_after(lo, n);
            assert_eq!(ranks.len(), n);
            assert!(ranks.iter().all(|r| is_rank(r) && r.len() <= max_len), "{lo:?} {n}: {:?}", ranks.last());
            assert!(lo.is_none_or(|lo| lo < ranks[0].as_str()));
            assert!(ranks.windows(2).all(|w| w[0] < w[1]));
            // Room remains between neighbours, after the last and before the first.
            let mid = rank_between(Some(&ranks[0]), Some(&ranks[1.min(n - 1)]));
            assert!(n == 1 || (ranks[0] < mid && mid < ranks[1]));
        }
    }

    #[test]
    fn mentions_follow_the_grammar() {
        assert_eq!(mentioned_handles("@Ann-x7k2 please ask @bob_1, thanks @ann-x7k2."), ["ann-x7k2", "bob_1"]);
        assert_eq!(mentioned_handles("mail bob@example.com or a.@bo or x_@bo or -@bo or @@bo"), Vec::<String>::new());
        assert_eq!(mentioned_handles("(@carl) [@dee]\n@eve..."), ["carl", "dee", "eve"]);
        assert_eq!(mentioned_handles("@a @a_ @é @ab"), ["ab"]);
        assert_eq!(mentioned_handles("née@abc"), Vec::<String>::new());
        assert_eq!(mentioned_handles(&format!("@{} @{}", "x".repeat(40), "y".repeat(41))), ["x".repeat(40)]);
        let many: String = (0..30).map(|i| format!("@user{i} ")).collect();
        let got = mentioned_handles(&many);
        assert_eq!(got.len(), 20);
        assert_eq!(got[19], "user19");
    }

    #[test]
    fn member_handles_are_readable_stable_and_mentionable() {
        let h = member_handle(Some("Ann.Lee+work@example.com"), Some("Ann"), "u-1");
        assert!(h.starts_with("ann-lee-") && h.len() == "ann-lee-".len() + 4, "{h}");
        assert_eq!(h, member_handle(Some("ann.lee@other.org"), None, "u-1"), "stable; depends on the local part and id only");
        assert_ne!(h, member_handle(Some("ann.lee@example.com"), None, "u-2"));
        // Pinned values (FNV-1a 64, mod 36^4, base 36), checked against an independent implementation.
        assert_eq!(handle_suffix(""), "ux45");
        assert!(h.ends_with("-rc5e"), "{h}");
        assert!(member_handle(None, Some("Zoë Ångström"), "x").starts_with("zo-ngstr-m-"));
        assert!(member_handle(Some("+tag@x.com"), Some("李小龙"), "x").starts_with("user-"));
        assert!(member_handle(Some("李@x.com"), Some("Bo"), "x").starts_with("bo-"));
        let long = member_handle(None, Some("The Quite Extraordinarily Long-Named Person"), "x");
        assert_eq!(long.len(), 24 + 5, "{long}");
        let inputs = [
            (Some("a@b.co"), None),
            (Some("__x__@b.co"), None),
            (None, Some("   ")),
            (None, Some("Ω")),
            (None, Some("Renée O'Brien-Smith")),
            (None, Some("a--------------------------b")),
            (None, Some("abcdefghijklmnopqrstuvw-xyz")),
            (Some("no-at-sign"), None),
            (Some(""), Some("")),
            (None, None),
            (None, Some("🙂 emoji 🙂")),
            (None, Some("İstanbul ß")),
        ];
        for (i, (email, name)) in inputs.into_iter().enumerate() {
            for id in ["", "1", "sub-123", "0f8fad5b-d9cb-469f-a165-70867728950e", &"x".repeat(128), &i.to_string()] {
                let h = member_handle(email, name, id);
                assert!(h.len() <= 29 && h.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'), "{h}");
                assert_eq!(mentioned_handles(&format!("hi @{h}")), std::slice::from_ref(&h), "{email:?} {name:?}");
                assert_eq!(mentioned_handles(&format!("@{h}, thanks")), std::slice::from_ref(&h));
            }
        }
    }
}
