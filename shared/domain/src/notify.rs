//! Notification preferences: which channel each kind of notification goes to, the member's
//! time zone, quiet hours and digest timing, and the signed tokens behind one-click
//! unsubscribe links (RFC 8058).
//!
//! Local times are resolved with jiff's bundled tz database (the runtime may have no
//! `/usr/share/zoneinfo`). A local time that does not exist on a day (in a spring-forward
//! gap) or exists twice (in a fall-back fold) is resolved "compatibly", as RFC 5545 and
//! Temporal do: a time in a gap moves forward by the gap's length, past the gap; a time in a
//! fold takes the earlier of its two instants.

use std::collections::BTreeMap;
use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use jiff::civil::{Date, Time, Weekday};
use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::{DomainError, FieldError, OrgId, UserId};

/// What a notification is about. Ordered as declared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum NotificationKind {
    /// A task was assigned to the member.
    Assigned,
    /// The member was `@mentioned`.
    Mentioned,
    /// A comment was added to a task the member is involved in.
    Commented,
    /// A task of the member's falls due soon.
    DueSoon,
    /// A task of the member's is past its due date.
    Overdue,
    /// An invitation the member sent was accepted.
    InvitationAccepted,
    /// The member's role in the organization changed.
    RoleChanged,
    /// The member was removed from the organization.
    Removed,
    /// The daily or weekly digest (mail only; set by `digest`, and unsubscribing from it
    /// turns digests off).
    Digest,
}

impl NotificationKind {
    /// Every kind, in order.
    pub const ALL: [NotificationKind; 9] = [
        NotificationKind::Assigned,
        NotificationKind::Mentioned,
        NotificationKind::Commented,
        NotificationKind::DueSoon,
        NotificationKind::Overdue,
        NotificationKind::InvitationAccepted,
        NotificationKind::RoleChanged,
        NotificationKind::Removed,
        NotificationKind::Digest,
    ];

    /// The kind as the API writes it (`snake_case`).
    pub fn as_str(self) -> &'static str {
        match self {
            NotificationKind::Assigned => "assigned",
            NotificationKind::Mentioned => "mentioned",
            NotificationKind::Commented => "commented",
            NotificationKind::DueSoon => "due_soon",
            NotificationKind::Overdue => "overdue",
            NotificationKind::InvitationAccepted => "invitation_accepted",
            NotificationKind::RoleChanged => "role_changed",
            NotificationKind::Removed => "removed",
            NotificationKind::Digest => "digest",
        }
    }

    /// The kind written exactly as [`NotificationKind::as_str`] writes it, else `None`.
    pub fn parse(s: &str) -> Option<NotificationKind> {
        NotificationKind::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// Where this kind goes when the member has not chosen: in the app and by email, except
    /// comments, which are only shown in the app.
    pub fn default_channel(self) -> Channel {
        match self {
            NotificationKind::Commented => Channel::InApp,
            NotificationKind::Digest => Channel::Email,
            _ => Channel::Both,
        }
    }
}

impl fmt::Display for NotificationKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where notifications of one kind are delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    /// Only in the app's notification list.
    InApp,
    /// Only by email.
    Email,
    /// In the app and by email.
    Both,
    /// Nowhere: the kind is muted.
    None,
}

impl Channel {
    /// Whether the app shows the notification.
    pub fn in_app(self) -> bool {
        matches!(self, Channel::InApp | Channel::Both)
    }

    /// Whether the notification is emailed.
    pub fn email(self) -> bool {
        matches!(self, Channel::Email | Channel::Both)
    }
}

/// How often a digest email is sent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum DigestFrequency {
    /// No digest.
    #[default]
    Off,
    /// Every day at the digest hour.
    Daily,
    /// Once a week, on the digest weekday at the digest hour.
    Weekly,
}

/// The JSON Schema pattern of a 24-hour `HH:MM` time.
const HHMM_PATTERN: &str = "^([01][0-9]|2[0-3]):[0-5][0-9]$";
/// The JSON Schema pattern of a weekday name.
const WEEKDAY_PATTERN: &str = "^(monday|tuesday|wednesday|thursday|friday|saturday|sunday)$";

/// A daily window, in the member's local time, in which no notification email is sent
/// immediately. It may wrap midnight (`22:00` to `07:00`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct QuietHours {
    /// When quiet hours begin: a 24-hour local time `HH:MM`, included.
    #[schemars(pattern(HHMM_PATTERN))]
    pub start: String,
    /// When quiet hours end: a 24-hour local time `HH:MM`, excluded; not equal to `start`.
    #[schemars(pattern(HHMM_PATTERN))]
    pub end: String,
}

/// When the digest email is sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct Digest {
    /// Off, daily or weekly.
    pub frequency: DigestFrequency,
    /// The local hour it is sent at, 0 to 23 (at minute 0).
    #[schemars(range(max = 23))]
    pub hour: u8,
    /// The day of a weekly digest, `monday` to `sunday`: required for a weekly digest,
    /// ignored otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(pattern(WEEKDAY_PATTERN))]
    pub weekday: Option<String>,
}

impl Default for Digest {
    /// Off; 08:00 when turned on.
    fn default() -> Self {
        Digest { frequency: DigestFrequency::Off, hour: 8, weekday: None }
    }
}

/// A member's notification preferences, as stored and as the API answers them. A field
/// missing from stored or supplied JSON takes its default.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct Preferences {
    /// The member's choices; a kind not listed uses [`NotificationKind::default_channel`].
    pub channels: BTreeMap<NotificationKind, Channel>,
    /// An IANA time zone name such as `Europe/Paris`; `UTC` by default.
    pub time_zone: String,
    /// When immediate emails wait; none by default.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quiet_hours: Option<QuietHours>,
    /// When the digest is sent; off by default.
    pub digest: Digest,
}

impl Default for Preferences {
    /// No overrides, UTC, no quiet hours, no digest.
    fn default() -> Self {
        Preferences { channels: BTreeMap::new(), time_zone: "UTC".to_owned(), quiet_hours: None, digest: Digest::default() }
    }
}

/// The weekday names, in order, as the API writes them.
const WEEKDAYS: [(&str, Weekday); 7] = [
    ("monday", Weekday::Monday),
    ("tuesday", Weekday::Tuesday),
    ("wednesday", Weekday::Wednesday),
    ("thursday", Weekday::Thursday),
    ("friday", Weekday::Friday),
    ("saturday", Weekday::Saturday),
    ("sunday", Weekday::Sunday),
];

fn parse_weekday(s: &str) -> Option<Weekday> {
    WEEKDAYS.iter().find(|(name, _)| *name == s).map(|&(_, w)| w)
}

/// A strict 24-hour `HH:MM`.
fn parse_hhmm(s: &str) -> Option<Time> {
    let b = s.as_bytes();
    if b.len() != 5 || b[2] != b':' || ![0, 1, 3, 4].iter().all(|&i| b[i].is_ascii_digit()) {
        return None;
    }
    let num = |i: usize| (b[i] - b'0') * 10 + (b[i + 1] - b'0');
    let (hour, minute) = (num(0), num(3));
    if hour > 23 || minute > 59 {
        return None;
    }
    Time::new(i8::try_from(hour).ok()?, i8::try_from(minute).ok()?, 0, 0).ok()
}

/// The zone named `name` in the bundled database (case-insensitively), unless unknown.
fn lookup_zone(name: &str) -> Option<TimeZone> {
    if name.is_empty() || name.len() > 64 {
        return None;
    }
    TimeZone::get(name).ok().filter(|tz| !tz.is_unknown())
}

/// The instant `time` on `date` in `tz`, resolved compatibly (see the module docs).
fn resolve(tz: &TimeZone, date: Date, time: Time) -> Option<Timestamp> {
    tz.to_ambiguous_timestamp(date.to_datetime(time)).compatible().ok()
}

/// `date` moved by `days` days.
fn add_days(date: Date, days: i32) -> Option<Date> {
    date.checked_add(days.days()).ok()
}

impl Preferences {
    /// Where notifications of `kind` go: the member's choice, else the kind's default.
    pub fn channel(&self, kind: NotificationKind) -> Channel {
        self.channels.get(&kind).copied().unwrap_or_else(|| kind.default_channel())
    }

    /// Validates a client-supplied value, naming every invalid field at once
    /// ([`DomainError::Invalid`]): `timeZone`, `quietHours.start`, `quietHours.end`,
    /// `quietHours` (start equal to end), `digest.hour` and `digest.weekday` (required for a
    /// weekly digest). The time zone comes back in its database spelling
    /// (`america/new_york` becomes `America/New_York`); a weekday given with another
    /// frequency is kept when valid and dropped otherwise.
    pub fn validate(mut self) -> Result<Preferences, DomainError> {
        let mut errors = Vec::new();
        match lookup_zone(&self.time_zone) {
            Some(tz) => {
                if let Some(name) = tz.iana_name() {
                    self.time_zone = name.to_owned();
                }
            }
            None => errors.push(FieldError::new("timeZone", "must be an IANA time zone name such as Europe/Paris or UTC")),
        }
        if let Some(q) = &self.quiet_hours {
            let start = parse_hhmm(&q.start);
            let end = parse_hhmm(&q.end);
            if start.is_none() {
                errors.push(FieldError::new("quietHours.start", "must be a 24-hour time HH:MM such as 22:00"));
            }
            if end.is_none() {
                errors.push(FieldError::new("quietHours.end", "must be a 24-hour time HH:MM such as 07:00"));
            }
            if start.is_some() && start == end {
                errors.push(FieldError::new("quietHours", "start and end must differ"));
            }
        }
        if self.digest.hour > 23 {
            errors.push(FieldError::new("digest.hour", "must be 0 to 23"));
        }
        let weekday_ok = self.digest.weekday.as_deref().and_then(parse_weekday).is_some();
        if self.digest.frequency == DigestFrequency::Weekly {
            if !weekday_ok {
                errors.push(FieldError::new("digest.weekday", "a weekly digest needs a weekday: monday to sunday"));
            }
        } else if !weekday_ok {
            self.digest.weekday = None;
        }
        if errors.is_empty() { Ok(self) } else { Err(DomainError::Invalid(errors)) }
    }

    /// The zone the preferences name; an unknown name (only possible in an unvalidated
    /// value) reads as UTC.
    fn zone(&self) -> TimeZone {
        lookup_zone(&self.time_zone).unwrap_or(TimeZone::UTC)
    }

    /// If the instant `at` (unix seconds) falls within quiet hours in the member's time zone,
    /// the unix second they end; else `None` (also when quiet hours are unset or invalid).
    ///
    /// Each day's quiet hours are the instants from that day's local `start` to the local
    /// `end` (on the next day when `end` is before `start`), both resolved compatibly: the
    /// window is as long as the clocks say, an hour less or more across a DST change; a local
    /// time in a spring-forward gap moves forward past the gap, and one that occurs twice in
    /// a fall-back fold is its first occurrence (so quiet hours happen once a day).
    pub fn quiet_until(&self, at: i64) -> Option<i64> {
        let q = self.quiet_hours.as_ref()?;
        let (start, end) = (parse_hhmm(&q.start)?, parse_hhmm(&q.end)?);
        if start == end {
            return None;
        }
        let tz = self.zone();
        let now = Timestamp::from_second(at).ok()?;
        let today = tz.to_datetime(now).date();
        // The windows that start the day before yesterday to tomorrow: any that can hold `now`.
        (-2..=1)
            .filter_map(|n| {
                let day = add_days(today, n)?;
                let end_day = if end < start { day.tomorrow().ok()? } else { day };
                let from = resolve(&tz, day, start)?;
                let until = resolve(&tz, end_day, end)?;
                (from <= now && now < until).then_some(until.as_second())
            })
            .max()
    }

    /// The first digest instant strictly after `after` (unix seconds): local `hour:00` every
    /// day (daily) or on the digest weekday (weekly), in the member's time zone. `None` when
    /// the digest is off, its hour or weekday is invalid, or `after` is outside jiff's range
    /// (about years -9999 to 9999).
    ///
    /// An hour in a spring-forward gap resolves past the gap (02:00 on a day that skips from
    /// 02:00 to 03:00 is sent at 03:00); an hour that occurs twice takes the first. An hour
    /// that a transition would move onto another local date is skipped for that day, so no
    /// two digests ever fall on one local date.
    pub fn next_digest_after(&self, after: i64) -> Option<i64> {
        self.next_digest_in(&self.zone(), after)
    }

    /// [`Preferences::next_digest_after`] in `tz`.
    fn next_digest_in(&self, tz: &TimeZone, after: i64) -> Option<i64> {
        let weekday = match self.digest.frequency {
            DigestFrequency::Off => return None,
            DigestFrequency::Daily => None,
            DigestFrequency::Weekly => Some(parse_weekday(self.digest.weekday.as_deref()?)?),
        };
        if self.digest.hour > 23 {
            return None;
        }
        let time = Time::new(i8::try_from(self.digest.hour).ok()?, 0, 0, 0).ok()?;
        let after = Timestamp::from_second(after).ok()?;
        let today = tz.to_datetime(after).date();
        // Two days back covers a local date that a transition moved backwards; nine ahead
        // covers a whole week after tomorrow.
        (-2..=9)
            .filter_map(|n| {
                let day = add_days(today, n)?;
                if weekday.is_some_and(|w| day.weekday() != w) {
                    return None;
                }
                let at = resolve(tz, day, time)?;
                (at > after && tz.to_datetime(at).date() == day).then_some(at.as_second())
            })
            .min()
    }
}

/// `at` (unix seconds) in the preferences' time zone; an instant outside jiff's range is
/// clamped to it.
fn zoned(prefs: &Preferences, at: i64) -> jiff::Zoned {
    let ts = Timestamp::from_second(at).unwrap_or(if at < 0 { Timestamp::MIN } else { Timestamp::MAX });
    ts.to_zoned(prefs.zone())
}

/// The local calendar date (`YYYY-MM-DD`) of the instant `at` (unix seconds) in the
/// preferences' time zone: the name of the digest period it falls in.
pub fn local_date(prefs: &Preferences, at: i64) -> String {
    zoned(prefs, at).date().to_string()
}

/// The instant `at` (unix seconds) as the member reads it in their time zone, with the
/// zone's abbreviation: `Mon 9 Mar 2026, 08:00 EDT`.
pub fn local_time_label(prefs: &Preferences, at: i64) -> String {
    let z = zoned(prefs, at);
    jiff::fmt::strtime::format("%a %-d %b %Y, %H:%M %Z", &z).unwrap_or_else(|_| z.to_string())
}

/// The longest token [`UnsubscribeToken::verify`] reads.
const TOKEN_MAX_LEN: usize = 1024;
/// The first line of every token payload.
const TOKEN_VERSION: &str = "v1";
/// MACed before the payload, so that a MAC made with the same key for another purpose
/// never verifies as an unsubscribe token.
const TOKEN_CONTEXT: &[u8] = b"tenantry/unsubscribe\n";

/// A one-click unsubscribe token (RFC 8058): it names exactly one user, organization and
/// notification kind, and is signed with HMAC-SHA256.
///
/// The token is `base64url(payload) "." base64url(mac)` without padding, where the payload
/// is `v1\n{user}\n{org}\n{kind}` and the MAC is over a fixed context string and the
/// payload. None of the fields can contain a newline, and base64url has no `.`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct UnsubscribeToken {
    /// Who unsubscribes.
    pub user: UserId,
    /// In which organization.
    pub org: OrgId,
    /// From which kind of notification.
    pub kind: NotificationKind,
}

/// Why an unsubscribe token was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Not a token: too long, not two base64url parts, or a payload that does not parse.
    #[error("malformed unsubscribe token")]
    Malformed,
    /// A well-formed token whose MAC does not match (edited, or signed with another key).
    #[error("unsubscribe token signature does not match")]
    BadSignature,
}

fn token_mac(key: &[u8], payload: &[u8]) -> Hmac<Sha256> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(TOKEN_CONTEXT);
    mac.update(payload);
    mac
}

/// `payload` and its MAC, encoded as a token.
fn seal(payload: &[u8], key: &[u8]) -> String {
    let tag = token_mac(key, payload).finalize().into_bytes();
    format!("{}.{}", URL_SAFE_NO_PAD.encode(payload), URL_SAFE_NO_PAD.encode(tag))
}

impl UnsubscribeToken {
    /// The signed token, URL-safe as it is (`[A-Za-z0-9_-]` and one `.`). `key` should be
    /// at least 32 random bytes; tokens signed with an empty key never verify.
    pub fn sign(&self, key: &[u8]) -> String {
        seal(format!("{TOKEN_VERSION}\n{}\n{}\n{}", self.user, self.org, self.kind).as_bytes(), key)
    }

    /// The token's contents, if `token` is one [`UnsubscribeToken::sign`] made with `key`.
    /// The MAC is compared in constant time before the payload is read. Never panics,
    /// whatever the input; an empty `key` verifies nothing.
    pub fn verify(token: &str, key: &[u8]) -> Result<UnsubscribeToken, TokenError> {
        if token.len() > TOKEN_MAX_LEN {
            return Err(TokenError::Malformed);
        }
        let (body, tag) = token.split_once('.').ok_or(TokenError::Malformed)?;
        // Strict decoding: no padding, no stray bits, no second `.` (not in the alphabet).
        let payload = URL_SAFE_NO_PAD.decode(body).map_err(|_| TokenError::Malformed)?;
        let tag = URL_SAFE_NO_PAD.decode(tag).map_err(|_| TokenError::Malformed)?;
        if key.is_empty() {
            return Err(TokenError::BadSignature);
        }
        token_mac(key, &payload).verify_slice(&tag).map_err(|_| TokenError::BadSignature)?;
        let text = std::str::from_utf8(&payload).map_err(|_| TokenError::Malformed)?;
        let mut lines = text.split('\n');
        let (Some(TOKEN_VERSION), Some(user), Some(org), Some(kind), None) = (lines.next(), lines.next(), lines.next(), lines.next(), lines.next()) else {
            return Err(TokenError::Malformed);
        };
        Ok(UnsubscribeToken {
            user: user.parse().map_err(|_| TokenError::Malformed)?,
            org: org.parse().map_err(|_| TokenError::Malformed)?,
            kind: NotificationKind::parse(kind).ok_or(TokenError::Malformed)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Unix seconds of an RFC 3339 instant.
    fn ts(s: &str) -> i64 {
        s.parse::<Timestamp>().unwrap().as_second()
    }

    /// The instant as RFC 3339 UTC, for readable failures.
    fn utc(at: i64) -> String {
        Timestamp::from_second(at).unwrap().to_string()
    }

    fn quiet(tz: &str, start: &str, end: &str) -> Preferences {
        Preferences { time_zone: tz.to_owned(), quiet_hours: Some(QuietHours { start: start.to_owned(), end: end.to_owned() }), ..Preferences::default() }
    }

    fn digest(tz: &str, frequency: DigestFrequency, hour: u8, weekday: Option<&str>) -> Preferences {
        Preferences { time_zone: tz.to_owned(), digest: Digest { frequency, hour, weekday: weekday.map(String::from) }, ..Preferences::default() }
    }

    fn fields(err: DomainError) -> Vec<String> {
        match err {
            DomainError::Invalid(errors) => errors.into_iter().map(|e| e.field).collect(),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn enums_use_api_strings() {
        let names: Vec<String> = NotificationKind::ALL.iter().map(|k| serde_json::to_string(k).unwrap()).collect();
        assert_eq!(
            names,
            [
                "\"assigned\"",
                "\"mentioned\"",
                "\"commented\"",
                "\"due_soon\"",
                "\"overdue\"",
                "\"invitation_accepted\"",
                "\"role_changed\"",
                "\"removed\"",
                "\"digest\""
            ]
        );
        for k in NotificationKind::ALL {
            assert_eq!(serde_json::to_string(&k).unwrap(), format!("\"{}\"", k.as_str()));
            assert_eq!(NotificationKind::parse(k.as_str()), Some(k));
            assert_eq!(k.to_string(), k.as_str());
        }
        assert!(NotificationKind::ALL.windows(2).all(|w| w[0] < w[1]), "ALL is in declaration order");
        assert_eq!(NotificationKind::parse("Assigned"), None);
        assert_eq!(NotificationKind::parse("dueSoon"), None);
        assert_eq!(NotificationKind::parse(""), None);
        let defaults: Vec<Channel> = NotificationKind::ALL.iter().map(|k| k.default_channel()).collect();
        use Channel::{Both, Email, InApp};
        assert_eq!(defaults, [Both, Both, InApp, Both, Both, Both, Both, Both, Email]);

        let channels = [Channel::InApp, Channel::Email, Channel::Both, Channel::None];
        let json: Vec<String> = channels.iter().map(|c| serde_json::to_string(c).unwrap()).collect();
        assert_eq!(json, ["\"in_app\"", "\"email\"", "\"both\"", "\"none\""]);
        assert_eq!(channels.map(Channel::in_app), [true, false, true, false]);
        assert_eq!(channels.map(Channel::email), [false, true, true, false]);
        let freq: Vec<String> =
            [DigestFrequency::Off, DigestFrequency::Daily, DigestFrequency::Weekly].iter().map(|f| serde_json::to_string(f).unwrap()).collect();
        assert_eq!(freq, ["\"off\"", "\"daily\"", "\"weekly\""]);
    }

    #[test]
    fn preferences_default_and_json_shape() {
        let d = Preferences::default();
        assert_eq!(serde_json::to_value(&d).unwrap(), serde_json::json!({"channels": {}, "timeZone": "UTC", "digest": {"frequency": "off", "hour": 8}}));
        assert_eq!(serde_json::from_str::<Preferences>("{}").unwrap(), d, "missing fields take their defaults");
        let p: Preferences = serde_json::from_str(
            r#"{"channels":{"commented":"both","due_soon":"none"},"timeZone":"Europe/Berlin",
                "quietHours":{"start":"22:00","end":"07:00"},"digest":{"frequency":"weekly","hour":9,"weekday":"friday"}}"#,
        )
        .unwrap();
        assert_eq!(p.channel(NotificationKind::Commented), Channel::Both);
        assert_eq!(p.channel(NotificationKind::DueSoon), Channel::None);
        assert_eq!(p.channel(NotificationKind::Assigned), Channel::Both, "not overridden: the default");
        assert_eq!(d.channel(NotificationKind::Commented), Channel::InApp);
        assert_eq!(p.digest, Digest { frequency: DigestFrequency::Weekly, hour: 9, weekday: Some("friday".into()) });
        let back = serde_json::to_value(&p).unwrap();
        assert_eq!(back["channels"], serde_json::json!({"commented": "both", "due_soon": "none"}));
        assert_eq!(back["quietHours"], serde_json::json!({"start": "22:00", "end": "07:00"}));
        assert_eq!(serde_json::from_value::<Preferences>(back).unwrap(), p);
        assert!(serde_json::from_str::<Preferences>(r#"{"channels":{"nope":"both"}}"#).is_err());
        assert!(serde_json::from_str::<Preferences>(r#"{"channels":{"assigned":"sms"}}"#).is_err());
        let schema = serde_json::to_value(schemars::schema_for!(Preferences)).unwrap().to_string();
        assert!(schema.contains("timeZone") && schema.contains(HHMM_PATTERN), "{schema}");
    }

    #[test]
    fn validation_accepts_good_values_and_normalises() {
        let p = Preferences { time_zone: "america/new_york".into(), ..quiet("", "22:00", "07:00") }.validate().unwrap();
        assert_eq!(p.time_zone, "America/New_York");
        assert_eq!(Preferences::default().validate().unwrap(), Preferences::default());
        for tz in ["UTC", "Europe/Berlin", "Asia/Kolkata", "America/Argentina/Buenos_Aires", "Etc/GMT+5"] {
            assert_eq!(quiet(tz, "00:00", "23:59").validate().unwrap().time_zone, tz);
        }
        let weekly = digest("UTC", DigestFrequency::Weekly, 23, Some("sunday")).validate().unwrap();
        assert_eq!(weekly.digest.weekday.as_deref(), Some("sunday"));
        assert_eq!(digest("UTC", DigestFrequency::Daily, 0, Some("someday")).validate().unwrap().digest.weekday, None);
        assert_eq!(digest("UTC", DigestFrequency::Off, 8, Some("monday")).validate().unwrap().digest.weekday.as_deref(), Some("monday"));
    }

    #[test]
    fn validation_names_every_bad_field() {
        for tz in ["", "Mars/Olympus", "Etc/Unknown", "EST+5", "../etc/passwd", &"A/".repeat(40), "America/New York"] {
            assert_eq!(fields(quiet(tz, "22:00", "07:00").validate().unwrap_err()), ["timeZone"], "{tz:?}");
        }
        for bad in ["24:00", "7:00", "07:60", "07-00", "07:00 ", "", "0700", "ab:cd", "٠٧:٠٠", "+7:00"] {
            assert_eq!(fields(quiet("UTC", bad, "07:30").validate().unwrap_err()), ["quietHours.start"], "{bad:?}");
            assert_eq!(fields(quiet("UTC", "07:30", bad).validate().unwrap_err()), ["quietHours.end"], "{bad:?}");
        }
        assert_eq!(fields(quiet("UTC", "22:00", "22:00").validate().unwrap_err()), ["quietHours"]);
        assert_eq!(fields(digest("UTC", DigestFrequency::Daily, 24, None).validate().unwrap_err()), ["digest.hour"]);
        for weekday in [None, Some(""), Some("Monday"), Some("mon"), Some("funday")] {
            assert_eq!(fields(digest("UTC", DigestFrequency::Weekly, 8, weekday).validate().unwrap_err()), ["digest.weekday"], "{weekday:?}");
        }
        let all = Preferences {
            time_zone: "Nowhere".into(),
            quiet_hours: Some(QuietHours { start: "25:00".into(), end: "x".into() }),
            ..digest("", DigestFrequency::Weekly, 99, None)
        };
        let err = all.validate().unwrap_err();
        assert_eq!(fields(err.clone()), ["timeZone", "quietHours.start", "quietHours.end", "digest.hour", "digest.weekday"]);
        assert_eq!(err.to_string(), "invalid input");
    }

    #[test]
    fn quiet_hours_wrap_midnight() {
        let p = quiet("UTC", "22:00", "07:00");
        assert_eq!(p.quiet_until(ts("2026-05-01T22:00:00Z")).map(utc).as_deref(), Some("2026-05-02T07:00:00Z"), "start is included");
        assert_eq!(p.quiet_until(ts("2026-05-01T23:59:59Z")).map(utc).as_deref(), Some("2026-05-02T07:00:00Z"));
        assert_eq!(p.quiet_until(ts("2026-05-02T00:00:00Z")).map(utc).as_deref(), Some("2026-05-02T07:00:00Z"));
        assert_eq!(p.quiet_until(ts("2026-05-02T06:59:59Z")).map(utc).as_deref(), Some("2026-05-02T07:00:00Z"));
        assert_eq!(p.quiet_until(ts("2026-05-02T07:00:00Z")), None, "end is excluded");
        assert_eq!(p.quiet_until(ts("2026-05-02T12:00:00Z")), None);
        assert_eq!(p.quiet_until(ts("2026-05-02T21:59:59Z")), None);

        let lunch = quiet("UTC", "12:00", "13:30");
        assert_eq!(lunch.quiet_until(ts("2026-05-02T12:45:00Z")).map(utc).as_deref(), Some("2026-05-02T13:30:00Z"));
        assert_eq!(lunch.quiet_until(ts("2026-05-02T23:00:00Z")), None);
        assert_eq!(lunch.quiet_until(ts("2026-05-02T03:00:00Z")), None);

        // In a time zone: 22:00-07:00 in Tokyo (UTC+9) is 13:00-22:00 UTC.
        let tokyo = quiet("Asia/Tokyo", "22:00", "07:00");
        assert_eq!(tokyo.quiet_until(ts("2026-05-02T15:00:00Z")).map(utc).as_deref(), Some("2026-05-02T22:00:00Z"));
        assert_eq!(tokyo.quiet_until(ts("2026-05-02T12:59:59Z")), None);

        assert_eq!(Preferences::default().quiet_until(ts("2026-05-02T03:00:00Z")), None, "no quiet hours");
        assert_eq!(quiet("UTC", "03:00", "03:00").quiet_until(ts("2026-05-02T03:00:00Z")), None, "empty window");
        assert_eq!(quiet("UTC", "3am", "07:00").quiet_until(ts("2026-05-02T04:00:00Z")), None, "unvalidated garbage");
        assert_eq!(p.quiet_until(i64::MAX), None);
        assert_eq!(p.quiet_until(i64::MIN), None);
    }

    #[test]
    fn quiet_hours_across_dst_in_new_york() {
        let p = quiet("America/New_York", "22:00", "07:00");
        // Spring forward, 2026-03-08 02:00 EST -> 03:00 EDT: the night is an hour shorter.
        assert_eq!(p.quiet_until(ts("2026-03-07T23:00:00-05:00")).map(utc).as_deref(), Some("2026-03-08T11:00:00Z"), "07:00 EDT");
        assert_eq!(p.quiet_until(ts("2026-03-08T01:59:59-05:00")).map(utc).as_deref(), Some("2026-03-08T11:00:00Z"));
        assert_eq!(p.quiet_until(ts("2026-03-08T03:00:00-04:00")).map(utc).as_deref(), Some("2026-03-08T11:00:00Z"));
        assert_eq!(p.quiet_until(ts("2026-03-08T07:00:00-04:00")), None);
        // Fall back, 2026-11-01 02:00 EDT -> 01:00 EST: an hour longer.
        assert_eq!(p.quiet_until(ts("2026-10-31T23:00:00-04:00")).map(utc).as_deref(), Some("2026-11-01T12:00:00Z"), "07:00 EST");
        assert_eq!(p.quiet_until(ts("2026-11-01T01:30:00-04:00")).map(utc).as_deref(), Some("2026-11-01T12:00:00Z"));
        assert_eq!(p.quiet_until(ts("2026-11-01T01:30:00-05:00")).map(utc).as_deref(), Some("2026-11-01T12:00:00Z"));
        assert_eq!(p.quiet_until(ts("2026-11-01T06:59:00-05:00")).map(utc).as_deref(), Some("2026-11-01T12:00:00Z"));
        assert_eq!(p.quiet_until(ts("2026-11-01T07:00:00-05:00")), None);
        assert_eq!(p.quiet_until(ts("2026-11-01T21:59:00-05:00")), None);
        assert_eq!(p.quiet_until(ts("2026-11-01T22:00:00-05:00")).map(utc).as_deref(), Some("2026-11-02T12:00:00Z"));

        // An end inside the gap (02:30 does not exist on 2026-03-08) moves past it: 03:30 EDT.
        let gap_end = quiet("America/New_York", "23:00", "02:30");
        assert_eq!(gap_end.quiet_until(ts("2026-03-08T01:45:00-05:00")).map(utc).as_deref(), Some("2026-03-08T07:30:00Z"));
        assert_eq!(gap_end.quiet_until(ts("2026-03-08T03:29:59-04:00")).map(utc).as_deref(), Some("2026-03-08T07:30:00Z"));
        assert_eq!(gap_end.quiet_until(ts("2026-03-08T03:30:00-04:00")), None);
        // The next night is back to normal: 02:30 EDT.
        assert_eq!(gap_end.quiet_until(ts("2026-03-09T01:00:00-04:00")).map(utc).as_deref(), Some("2026-03-09T06:30:00Z"));
        // A start inside the gap moves past it too: 02:30 -> 03:30 EDT.
        let gap_start = quiet("America/New_York", "02:30", "06:00");
        assert_eq!(gap_start.quiet_until(ts("2026-03-08T03:15:00-04:00")), None);
        assert_eq!(gap_start.quiet_until(ts("2026-03-08T03:30:00-04:00")).map(utc).as_deref(), Some("2026-03-08T10:00:00Z"));
        // An end in the fold (01:30 happens twice on 2026-11-01) is the first 01:30, EDT.
        let fold_end = quiet("America/New_York", "00:30", "01:30");
        assert_eq!(fold_end.quiet_until(ts("2026-11-01T01:15:00-04:00")).map(utc).as_deref(), Some("2026-11-01T05:30:00Z"));
        assert_eq!(fold_end.quiet_until(ts("2026-11-01T01:15:00-05:00")), None, "quiet hours happen once a day");
    }

    #[test]
    fn quiet_hours_across_dst_in_berlin() {
        let p = quiet("Europe/Berlin", "22:00", "07:00");
        // 2026-03-29 02:00 CET -> 03:00 CEST.
        assert_eq!(p.quiet_until(ts("2026-03-28T23:00:00+01:00")).map(utc).as_deref(), Some("2026-03-29T05:00:00Z"), "07:00 CEST");
        assert_eq!(p.quiet_until(ts("2026-03-29T05:00:00Z")), None);
        // 2026-10-25 03:00 CEST -> 02:00 CET.
        assert_eq!(p.quiet_until(ts("2026-10-24T23:00:00+02:00")).map(utc).as_deref(), Some("2026-10-25T06:00:00Z"), "07:00 CET");
        assert_eq!(p.quiet_until(ts("2026-10-25T05:30:00Z")).map(utc).as_deref(), Some("2026-10-25T06:00:00Z"), "06:30 CET is still quiet");
        assert_eq!(p.quiet_until(ts("2026-10-25T06:00:00Z")), None);
    }

    /// `n` successive digests after `from`, each as RFC 3339 in the zone.
    fn digests(p: &Preferences, from: &str, n: usize) -> Vec<String> {
        let tz = p.zone();
        let mut at = ts(from);
        (0..n)
            .map(|_| {
                at = p.next_digest_after(at).unwrap();
                Timestamp::from_second(at).unwrap().to_zoned(tz.clone()).strftime("%Y-%m-%dT%H:%M%:z").to_string()
            })
            .collect()
    }

    #[test]
    fn daily_digests_keep_the_local_hour_across_dst() {
        let ny = digest("America/New_York", DigestFrequency::Daily, 8, None);
        assert_eq!(
            digests(&ny, "2026-03-06T14:00:00Z", 4),
            ["2026-03-07T08:00-05:00", "2026-03-08T08:00-04:00", "2026-03-09T08:00-04:00", "2026-03-10T08:00-04:00"]
        );
        assert_eq!(ny.next_digest_after(ts("2026-03-07T13:00:00Z")), Some(ts("2026-03-08T12:00:00Z")));
        assert_eq!(digests(&ny, "2026-10-30T20:00:00Z", 3), ["2026-10-31T08:00-04:00", "2026-11-01T08:00-05:00", "2026-11-02T08:00-05:00"]);
        assert_eq!(ny.next_digest_after(ts("2026-10-31T12:00:00Z")), Some(ts("2026-11-01T13:00:00Z")));

        let berlin = digest("Europe/Berlin", DigestFrequency::Daily, 8, None);
        assert_eq!(digests(&berlin, "2026-03-28T00:00:00Z", 2), ["2026-03-28T08:00+01:00", "2026-03-29T08:00+02:00"]);
        assert_eq!(digests(&berlin, "2026-10-24T00:00:00Z", 2), ["2026-10-24T08:00+02:00", "2026-10-25T08:00+01:00"]);

        // Strictly after: a digest instant itself gives the next day's.
        assert_eq!(ny.next_digest_after(ts("2026-03-09T12:00:00Z")), Some(ts("2026-03-10T12:00:00Z")));
        assert_eq!(ny.next_digest_after(ts("2026-03-09T11:59:59Z")), Some(ts("2026-03-09T12:00:00Z")));
        // Off, a bad hour, an out-of-range instant: none.
        assert_eq!(digest("UTC", DigestFrequency::Off, 8, None).next_digest_after(0), None);
        assert_eq!(digest("UTC", DigestFrequency::Daily, 24, None).next_digest_after(0), None);
        assert_eq!(ny.next_digest_after(i64::MAX), None);
        assert_eq!(digest("UTC", DigestFrequency::Daily, 0, None).next_digest_after(0), Some(86_400));
    }

    #[test]
    fn digest_hours_in_a_gap_or_fold() {
        // 02:00 does not exist on 2026-03-08 in New York: that day's digest is at 03:00 EDT.
        let gap = digest("America/New_York", DigestFrequency::Daily, 2, None);
        assert_eq!(digests(&gap, "2026-03-06T12:00:00Z", 3), ["2026-03-07T02:00-05:00", "2026-03-08T03:00-04:00", "2026-03-09T02:00-04:00"]);
        assert_eq!(gap.next_digest_after(ts("2026-03-07T07:00:00Z")), Some(ts("2026-03-08T07:00:00Z")));
        // 01:00 happens twice on 2026-11-01: the first, EDT; never the second as well.
        let fold = digest("America/New_York", DigestFrequency::Daily, 1, None);
        assert_eq!(fold.next_digest_after(ts("2026-11-01T04:00:00Z")), Some(ts("2026-11-01T05:00:00Z")));
        assert_eq!(fold.next_digest_after(ts("2026-11-01T05:00:00Z")), Some(ts("2026-11-02T06:00:00Z")), "not 01:00 EST the same day");
        assert_eq!(digests(&fold, "2026-10-31T00:00:00Z", 3), ["2026-10-31T01:00-04:00", "2026-11-01T01:00-04:00", "2026-11-02T01:00-05:00"]);
    }

    #[test]
    fn digests_never_repeat_a_local_date() {
        // Samoa skipped 2011-12-30 entirely; Lord Howe moves its clocks by half an hour.
        // A zone whose clocks skip from 23:00 to midnight: 23:00 on that day would resolve to
        // 00:00 the next day, which has its own 23:00 digest. That day has none instead.
        let late = TimeZone::posix("XST5XDT,M3.2.0/23,M11.1.0/1").unwrap();
        let p = digest("UTC", DigestFrequency::Daily, 23, None);
        let mut at = ts("2026-03-06T12:00:00Z");
        let mut got = Vec::new();
        for _ in 0..4 {
            at = p.next_digest_in(&late, at).unwrap();
            got.push(Timestamp::from_second(at).unwrap().to_zoned(late.clone()).strftime("%Y-%m-%dT%H:%M%:z").to_string());
        }
        assert_eq!(got, ["2026-03-06T23:00-05:00", "2026-03-07T23:00-05:00", "2026-03-09T23:00-04:00", "2026-03-10T23:00-04:00"]);
        let apia = digest("Pacific/Apia", DigestFrequency::Daily, 8, None);
        assert_eq!(digests(&apia, "2011-12-28T00:00:00-10:00", 3), ["2011-12-28T08:00-10:00", "2011-12-29T08:00-10:00", "2011-12-31T08:00+14:00"]);
        for (tz, hour, from) in [
            ("America/New_York", 2, "2025-12-31T00:00:00Z"),
            ("America/New_York", 1, "2025-12-31T00:00:00Z"),
            ("Europe/Berlin", 2, "2025-12-31T00:00:00Z"),
            ("Australia/Lord_Howe", 2, "2025-12-31T00:00:00Z"),
            ("Pacific/Apia", 23, "2011-06-01T00:00:00Z"),
            ("Pacific/Apia", 0, "2011-06-01T00:00:00Z"),
        ] {
            let p = digest(tz, DigestFrequency::Daily, hour, None);
            let all = digests(&p, from, 400);
            for w in all.windows(2) {
                assert!(w[0][..10] < w[1][..10], "{tz} {hour}: {} then {}", w[0], w[1]);
            }
            let odd: Vec<_> = all.iter().filter(|d| d[11..13] != format!("{hour:02}")).collect();
            assert!(odd.len() <= 2, "{tz} {hour}: only gap days move: {odd:?}");
        }
    }

    #[test]
    fn weekly_digests_pick_the_weekday() {
        // 2026-03-09 is a Monday.
        let p = digest("America/New_York", DigestFrequency::Weekly, 8, Some("monday"));
        assert_eq!(p.next_digest_after(ts("2026-03-09T11:59:59Z")), Some(ts("2026-03-09T12:00:00Z")));
        assert_eq!(p.next_digest_after(ts("2026-03-09T12:00:00Z")), Some(ts("2026-03-16T12:00:00Z")), "never `after` itself");
        assert_eq!(p.next_digest_after(ts("2026-03-04T00:00:00Z")), Some(ts("2026-03-09T12:00:00Z")), "across the spring change");
        assert_eq!(digests(&p, "2026-10-20T00:00:00Z", 3), ["2026-10-26T08:00-04:00", "2026-11-02T08:00-05:00", "2026-11-09T08:00-05:00"]);
        for (name, day) in
            [("tuesday", "10"), ("wednesday", "11"), ("thursday", "12"), ("friday", "13"), ("saturday", "14"), ("sunday", "15"), ("monday", "16")]
        {
            let p = digest("UTC", DigestFrequency::Weekly, 8, Some(name));
            assert_eq!(p.next_digest_after(ts("2026-03-09T08:00:00Z")).map(utc), Some(format!("2026-03-{day}T08:00:00Z")), "{name}");
        }
        // The weekday is the local one: Monday 07:00 in Tokyo is Sunday 22:00 UTC.
        let tokyo = digest("Asia/Tokyo", DigestFrequency::Weekly, 7, Some("monday"));
        assert_eq!(tokyo.next_digest_after(ts("2026-03-08T12:00:00Z")).map(utc).as_deref(), Some("2026-03-08T22:00:00Z"));
        assert_eq!(digest("UTC", DigestFrequency::Weekly, 8, None).next_digest_after(0), None);
        assert_eq!(digest("UTC", DigestFrequency::Weekly, 8, Some("Monday")).next_digest_after(0), None);
    }

    #[test]
    fn local_dates_and_labels() {
        let ny = Preferences { time_zone: "America/New_York".into(), ..Preferences::default() };
        assert_eq!(local_date(&ny, ts("2026-03-09T12:00:00Z")), "2026-03-09");
        assert_eq!(local_date(&ny, ts("2026-03-10T03:30:00Z")), "2026-03-09", "23:30 the evening before");
        assert_eq!(local_time_label(&ny, ts("2026-03-09T12:00:00Z")), "Mon 9 Mar 2026, 08:00 EDT");
        assert_eq!(local_time_label(&ny, ts("2026-01-15T17:05:00Z")), "Thu 15 Jan 2026, 12:05 EST");
        let berlin = Preferences { time_zone: "Europe/Berlin".into(), ..Preferences::default() };
        assert_eq!(local_time_label(&berlin, ts("2026-12-24T23:30:00Z")), "Fri 25 Dec 2026, 00:30 CET");
        assert_eq!(local_date(&berlin, ts("2026-12-24T23:30:00Z")), "2026-12-25");
        assert_eq!(local_time_label(&Preferences::default(), 0), "Thu 1 Jan 1970, 00:00 UTC");
        let unknown = Preferences { time_zone: "Nowhere/Special".into(), ..Preferences::default() };
        assert_eq!(local_date(&unknown, ts("2026-03-10T03:30:00Z")), "2026-03-10", "unknown zone reads as UTC");
        // Out of range: clamped, no panic.
        assert!(!local_date(&ny, i64::MAX).is_empty() && !local_time_label(&ny, i64::MIN).is_empty());
    }

    const KEY: &[u8] = b"0123456789abcdef0123456789abcdef";

    fn token(user: &str, kind: NotificationKind) -> UnsubscribeToken {
        UnsubscribeToken { user: user.parse().unwrap(), org: "01HZ0000000000000000000000".parse().unwrap(), kind }
    }

    /// The token's two parts, decoded.
    fn parts(t: &str) -> (Vec<u8>, Vec<u8>) {
        let (p, m) = t.split_once('.').unwrap();
        (URL_SAFE_NO_PAD.decode(p).unwrap(), URL_SAFE_NO_PAD.decode(m).unwrap())
    }

    fn join(payload: &[u8], mac: &[u8]) -> String {
        format!("{}.{}", URL_SAFE_NO_PAD.encode(payload), URL_SAFE_NO_PAD.encode(mac))
    }

    #[test]
    fn tokens_round_trip() {
        for kind in NotificationKind::ALL {
            let t = token("0f8fad5b-d9cb-469f-a165-70867728950e", kind);
            let s = t.sign(KEY);
            assert!(s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.'), "{s}");
            assert_eq!(s.matches('.').count(), 1);
            assert_eq!(s, t.sign(KEY), "deterministic");
            assert_eq!(UnsubscribeToken::verify(&s, KEY).unwrap(), t);
            let (payload, mac) = parts(&s);
            assert_eq!(payload, format!("v1\n0f8fad5b-d9cb-469f-a165-70867728950e\n01HZ0000000000000000000000\n{kind}").as_bytes());
            assert_eq!(mac.len(), 32);
        }
        let long = token(&"u".repeat(UserId::MAX_LEN), NotificationKind::InvitationAccepted);
        assert!(long.sign(KEY).len() < TOKEN_MAX_LEN);
        assert_eq!(UnsubscribeToken::verify(&long.sign(KEY), KEY).unwrap(), long);
    }

    #[test]
    fn tampered_tokens_fail() {
        let t = token("user-1", NotificationKind::Mentioned);
        let s = t.sign(KEY);
        let (payload, mac) = parts(&s);
        assert_eq!(UnsubscribeToken::verify(&s, b"another key entirely, 32 bytes!!"), Err(TokenError::BadSignature));
        assert_eq!(UnsubscribeToken::verify(&s, b""), Err(TokenError::BadSignature));
        assert_eq!(UnsubscribeToken::verify(&t.sign(b""), b""), Err(TokenError::BadSignature), "an empty key verifies nothing");
        for i in 0..payload.len() {
            let mut p = payload.clone();
            p[i] ^= 1;
            assert_eq!(UnsubscribeToken::verify(&join(&p, &mac), KEY), Err(TokenError::BadSignature), "payload byte {i}");
        }
        for i in 0..mac.len() {
            let mut m = mac.clone();
            m[i] ^= 0x80;
            assert_eq!(UnsubscribeToken::verify(&join(&payload, &m), KEY), Err(TokenError::BadSignature), "mac byte {i}");
        }
        assert_eq!(UnsubscribeToken::verify(&join(&payload, &mac[..16]), KEY), Err(TokenError::BadSignature), "truncated MAC");
        assert_eq!(UnsubscribeToken::verify(&join(&payload, &[mac.as_slice(), &[0]].concat()), KEY), Err(TokenError::BadSignature));
        assert_eq!(UnsubscribeToken::verify(&join(&payload, &[]), KEY), Err(TokenError::BadSignature));
        assert!(UnsubscribeToken::verify(&join(&payload[..payload.len() - 1], &mac), KEY).is_err(), "truncated payload");
        // Every prefix of the token, every one-character edit: refused, never a panic.
        for n in 0..s.len() {
            assert!(UnsubscribeToken::verify(&s[..n], KEY).is_err(), "prefix {n}");
        }
        for i in 0..s.len() {
            for c in ['A', 'z', '0', '-', '_', '.', '=', '+', '/', ' ', 'é'] {
                let mut edited: String = s.chars().take(i).collect();
                edited.push(c);
                edited.extend(s.chars().skip(i + 1));
                if edited != s {
                    assert!(UnsubscribeToken::verify(&edited, KEY).is_err(), "{edited}");
                }
            }
        }
    }

    #[test]
    fn tokens_cannot_be_turned_into_another() {
        let mine = token("user-1", NotificationKind::Mentioned);
        let theirs = token("user-2", NotificationKind::Mentioned);
        let other_kind = token("user-1", NotificationKind::Removed);
        let (my_payload, my_mac) = parts(&mine.sign(KEY));
        for target in [&theirs, &other_kind] {
            let (payload, mac) = parts(&target.sign(KEY));
            assert_ne!(mac, my_mac);
            assert_eq!(UnsubscribeToken::verify(&join(&payload, &my_mac), KEY), Err(TokenError::BadSignature));
            assert_eq!(UnsubscribeToken::verify(&join(&my_payload, &mac), KEY), Err(TokenError::BadSignature));
        }
        // Nor into another org's.
        let other_org = UnsubscribeToken { org: OrgId::new(), ..mine.clone() };
        let (payload, _) = parts(&other_org.sign(KEY));
        assert_eq!(UnsubscribeToken::verify(&join(&payload, &my_mac), KEY), Err(TokenError::BadSignature));
        // A MAC over the bare payload (no context) does not verify either.
        let mut bare = Hmac::<Sha256>::new_from_slice(KEY).unwrap();
        bare.update(&my_payload);
        assert_eq!(UnsubscribeToken::verify(&join(&my_payload, &bare.finalize().into_bytes()), KEY), Err(TokenError::BadSignature));
    }

    #[test]
    fn garbage_tokens_fail_without_panic() {
        let good = token("user-1", NotificationKind::Assigned).sign(KEY);
        let huge = "A".repeat(1_000_000);
        let padded = format!("{good}{}", "A".repeat(TOKEN_MAX_LEN - good.len() + 1));
        let garbage = [
            "",
            ".",
            "..",
            "a.b",
            "abc",
            "x.y.z",
            "====.====",
            "é.é",
            "\0.\0",
            " . ",
            &huge,
            &format!("{huge}.{huge}"),
            &padded,
            &format!("{good}."),
            &format!(".{good}"),
            &format!("{good}.{good}"),
            &format!("{good}="),
            &format!(" {good}"),
            &format!("{good}\n"),
            &good.replace('.', ""),
        ];
        for g in garbage {
            assert!(UnsubscribeToken::verify(g, KEY).is_err(), "{:?}", g.get(..40));
        }
        assert_eq!(UnsubscribeToken::verify(&huge, KEY), Err(TokenError::Malformed));
        assert_eq!(UnsubscribeToken::verify(&padded, KEY), Err(TokenError::Malformed));
        // Correctly signed payloads that are not tokens: refused as malformed.
        for payload in [
            "",
            "v1",
            "v2\nuser-1\n01HZ0000000000000000000000\nassigned",
            "v1\nuser-1\n01HZ0000000000000000000000\nAssigned",
            "v1\nuser 1\n01HZ0000000000000000000000\nassigned",
            "v1\n\n01HZ0000000000000000000000\nassigned",
            "v1\nuser-1\nnot-a-ulid\nassigned",
            "v1\nuser-1\n01HZ0000000000000000000000\nassigned\n",
            "v1\nuser-1\n01HZ0000000000000000000000\nassigned\nextra",
            "v1\r\nuser-1\r\n01HZ0000000000000000000000\r\nassigned",
        ] {
            assert_eq!(UnsubscribeToken::verify(&seal(payload.as_bytes(), KEY), KEY), Err(TokenError::Malformed), "{payload:?}");
        }
        assert_eq!(UnsubscribeToken::verify(&seal(&[0xff, 0xfe], KEY), KEY), Err(TokenError::Malformed));
        assert!(UnsubscribeToken::verify(&seal(b"v1\nuser-1\n01HZ0000000000000000000000\nassigned", KEY), KEY).is_ok(), "the control case verifies");
    }
}
