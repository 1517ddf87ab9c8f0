//! Time, from a clock that is passed in: expiry, rate windows, reminders and digests are all
//! decided by "now", so a test or the local runner sets the time instead of sleeping.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// Where "now" comes from. Cheap to clone; clones share one time.
///
/// - [`Clock::system`]: the system clock (Lambda).
/// - [`Clock::offset`]: the system clock plus an offset that only grows, for the local
///   runner: time flows as usual, and [`Clock::advance`] jumps ahead to fire a schedule.
/// - [`Clock::fixed`]: a time that moves only when told, for tests.
#[derive(Clone, Debug, Default)]
pub struct Clock(Mode);

#[derive(Clone, Debug, Default)]
enum Mode {
    #[default]
    System,
    /// Milliseconds added to the system time.
    Offset(Arc<AtomicI64>),
    /// Unix milliseconds.
    Fixed(Arc<AtomicI64>),
}

fn unix_ms(t: OffsetDateTime) -> i64 {
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

fn from_unix_ms(ms: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

impl Clock {
    pub fn system() -> Self {
        Clock(Mode::System)
    }

    /// The system clock that [`Clock::advance`] can move ahead.
    pub fn offset() -> Self {
        Clock(Mode::Offset(Arc::new(AtomicI64::new(0))))
    }

    /// A clock standing at `at` until it is advanced or set.
    pub fn fixed(at: OffsetDateTime) -> Self {
        Clock(Mode::Fixed(Arc::new(AtomicI64::new(unix_ms(at)))))
    }

    /// Now, in UTC.
    pub fn now(&self) -> OffsetDateTime {
        match &self.0 {
            Mode::System => OffsetDateTime::now_utc(),
            Mode::Offset(offset) => from_unix_ms(unix_ms(OffsetDateTime::now_utc()).saturating_add(offset.load(Ordering::SeqCst))),
            Mode::Fixed(at) => from_unix_ms(at.load(Ordering::SeqCst)),
        }
    }

    /// Moves the clock ahead by `by`. Returns false (and does nothing) on the system clock,
    /// which nobody may move.
    pub fn advance(&self, by: std::time::Duration) -> bool {
        let ms = i64::try_from(by.as_millis()).unwrap_or(i64::MAX);
        match &self.0 {
            Mode::System => false,
            Mode::Offset(a) | Mode::Fixed(a) => {
                a.fetch_add(ms, Ordering::SeqCst);
                true
            }
        }
    }

    /// Whether [`Clock::advance`] moves this clock.
    pub fn is_adjustable(&self) -> bool {
        !matches!(self.0, Mode::System)
    }

    /// Now as Unix seconds (the format of `ttl` and expiry attributes).
    pub fn epoch(&self) -> i64 {
        self.now().unix_timestamp()
    }

    /// Now as Unix milliseconds (the time part of ids that sort by time).
    pub fn epoch_millis(&self) -> i64 {
        unix_ms(self.now())
    }

    /// Now as RFC 3339 UTC to the second, the format of every timestamp we store.
    pub fn rfc3339(&self) -> String {
        rfc3339(self.now())
    }

    /// `yyyy-mm` of now (UTC): the key of a monthly usage record.
    /// The first instant of next month (UTC), in epoch seconds: when monthly budgets reset.
    pub fn next_month_epoch(&self) -> i64 {
        let now = self.now();
        let (year, month) = if now.month() == time::Month::December { (now.year() + 1, time::Month::January) } else { (now.year(), now.month().next()) };
        time::Date::from_calendar_date(year, month, 1).map_or(i64::MAX, |d| d.midnight().assume_utc().unix_timestamp())
    }

    pub fn month_key(&self) -> String {
        let now = self.now();
        format!("{:04}-{:02}", now.year(), u8::from(now.month()))
    }
}

/// Epoch seconds as RFC 3339 UTC (`None` outside the years the format can write).
pub fn epoch_rfc3339(epoch: i64) -> Option<String> {
    OffsetDateTime::from_unix_timestamp(epoch).ok().map(rfc3339)
}

/// Epoch seconds of an RFC 3339 time (`None` when it is not one).
pub fn rfc3339_epoch(t: &str) -> Option<i64> {
    OffsetDateTime::parse(t, &Rfc3339).ok().map(OffsetDateTime::unix_timestamp)
}

/// `t` as RFC 3339 UTC to the second.
pub fn rfc3339(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    t.replace_nanosecond(0).unwrap_or(t).format(&Rfc3339).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn fixed_clock_moves_only_when_advanced() {
        let clock = Clock::fixed(time::macros::datetime!(2026-01-31 23:59:30 UTC));
        assert_eq!(clock.rfc3339(), "2026-01-31T23:59:30Z");
        assert_eq!(clock.month_key(), "2026-01");
        let shared = clock.clone();
        assert!(shared.advance(Duration::from_secs(60)));
        assert_eq!(clock.rfc3339(), "2026-02-01T00:00:30Z", "clones share one time");
        assert_eq!(clock.month_key(), "2026-02");
        assert_eq!(clock.epoch(), 1_769_904_030);
    }

    #[test]
    fn offset_clock_runs_ahead_of_the_system_clock() {
        let clock = Clock::offset();
        let before = OffsetDateTime::now_utc();
        assert!(clock.advance(Duration::from_secs(3 * 3600)));
        let diff = clock.now() - before;
        // The clock keeps milliseconds, so it may read up to 1 ms behind `before` + 3 h.
        assert!(diff > time::Duration::hours(3) - time::Duration::milliseconds(2) && diff < time::Duration::hours(3) + time::Duration::minutes(1), "{diff}");
    }

    #[test]
    fn the_system_clock_cannot_be_moved() {
        let clock = Clock::system();
        assert!(!clock.advance(Duration::from_secs(60)));
        assert!(!clock.is_adjustable());
        assert!((clock.now() - OffsetDateTime::now_utc()).abs() < time::Duration::seconds(5));
    }
}
