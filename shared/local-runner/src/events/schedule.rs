//! EventBridge schedule expressions, `rate(…)` and `cron(…)`, and the time each fires next.
//!
//! `cron(minutes hours day-of-month month day-of-week year)`, all in UTC, with `*`, `?`,
//! lists, ranges, steps and month/day names, as EventBridge reads them (day-of-week 1 is
//! Sunday). `L`, `W` and `#` are refused when the runner starts: no Tenantry schedule needs
//! them, and a schedule the runner cannot fire faithfully must not pass unnoticed.

use time::{Duration, OffsetDateTime, Weekday};

/// A parsed schedule expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expression {
    Rate(Duration),
    Cron(Box<Cron>),
}

/// The allowed values of each cron field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cron {
    minutes: Vec<u8>,
    hours: Vec<u8>,
    /// `None`: `?` or `*` (any day).
    days_of_month: Option<Vec<u8>>,
    months: Vec<u8>,
    /// 1 = Sunday … 7 = Saturday; `None`: any.
    days_of_week: Option<Vec<u8>>,
    years: Option<Vec<u16>>,
}

impl Expression {
    pub fn parse(text: &str) -> Result<Expression, String> {
        let text = text.trim();
        if let Some(inner) = text.strip_prefix("rate(").and_then(|t| t.strip_suffix(')')) {
            let (n, unit) = inner.trim().split_once(' ').ok_or_else(|| format!("{text}: rate(value unit)"))?;
            let n: i64 = n.parse().map_err(|_| format!("{text}: the value is a positive whole number"))?;
            let unit = match (unit.trim(), n) {
                ("minute", 1) | ("minutes", 2..) => Duration::minutes(1),
                ("hour", 1) | ("hours", 2..) => Duration::hours(1),
                ("day", 1) | ("days", 2..) => Duration::days(1),
                _ => return Err(format!("{text}: unit is minute(s), hour(s) or day(s), singular for 1")),
            };
            let n = i32::try_from(n).map_err(|_| format!("{text}: too large"))?;
            return Ok(Expression::Rate(unit * n));
        }
        if let Some(inner) = text.strip_prefix("cron(").and_then(|t| t.strip_suffix(')')) {
            let fields: Vec<&str> = inner.split_whitespace().collect();
            let [min, hour, dom, month, dow, year] = fields[..] else {
                return Err(format!("{text}: cron takes six fields"));
            };
            if dom != "?" && dow != "?" {
                return Err(format!("{text}: one of day-of-month and day-of-week must be ?"));
            }
            let any = |f: &str| f == "*" || f == "?";
            let cron = Cron {
                minutes: field(min, 0, 59, &[])?,
                hours: field(hour, 0, 23, &[])?,
                days_of_month: if any(dom) { None } else { Some(field(dom, 1, 31, &[])?) },
                months: field(month, 1, 12, &MONTHS)?,
                days_of_week: if any(dow) { None } else { Some(field(dow, 1, 7, &DAYS)?) },
                years: if year == "*" { None } else { Some(field_u16(year)?) },
            };
            return Ok(Expression::Cron(Box::new(cron)));
        }
        Err(format!("{text}: a schedule is rate(…) or cron(…)"))
    }

    /// The first time strictly after `after` that the schedule fires. A rate fires every
    /// period counted from `start` (when the schedule was created).
    pub fn next_after(&self, start: OffsetDateTime, after: OffsetDateTime) -> Option<OffsetDateTime> {
        match self {
            Expression::Rate(period) => {
                let elapsed = after - start;
                let periods = if elapsed.is_negative() { 0 } else { elapsed.whole_seconds() / period.whole_seconds() };
                Some(start + *period * i32::try_from(periods + 1).ok()?)
            }
            Expression::Cron(cron) => cron.next_after(after),
        }
    }
}

const MONTHS: [&str; 12] = ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"];
const DAYS: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

fn value(text: &str, lo: u8, hi: u8, names: &[&str]) -> Result<u8, String> {
    let v = match names.iter().position(|n| n.eq_ignore_ascii_case(text)) {
        Some(i) => u8::try_from(i).map_err(|e| e.to_string())? + lo,
        None => text.parse::<u8>().map_err(|_| format!("cron: {text} is not a value"))?,
    };
    if (lo..=hi).contains(&v) { Ok(v) } else { Err(format!("cron: {v} is outside {lo}-{hi}")) }
}

fn field(text: &str, lo: u8, hi: u8, names: &[&str]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    for part in text.split(',') {
        let (range, step) = match part.split_once('/') {
            Some((r, s)) => (r, s.parse::<u8>().ok().filter(|s| *s > 0).ok_or_else(|| format!("cron: bad step in {part}"))?),
            None => (part, 1),
        };
        let (from, to) = match range {
            "*" | "?" => (lo, hi),
            r => match r.split_once('-') {
                Some((a, b)) => (value(a, lo, hi, names)?, value(b, lo, hi, names)?),
                None if part.contains('/') => (value(r, lo, hi, names)?, hi),
                None => {
                    let v = value(r, lo, hi, names)?;
                    (v, v)
                }
            },
        };
        if from > to {
            return Err(format!("cron: empty range {part}"));
        }
        out.extend((from..=to).step_by(usize::from(step)));
    }
    out.sort_unstable();
    out.dedup();
    Ok(out)
}

fn field_u16(text: &str) -> Result<Vec<u16>, String> {
    let mut out = Vec::new();
    for part in text.split(',') {
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b): (u16, u16) = (a.parse().map_err(|_| format!("cron: bad year {part}"))?, b.parse().map_err(|_| format!("cron: bad year {part}"))?);
                out.extend(a..=b);
            }
            None => out.push(part.parse().map_err(|_| format!("cron: bad year {part}"))?),
        }
    }
    Ok(out)
}

fn weekday_number(d: Weekday) -> u8 {
    d.number_from_sunday()
}

impl Cron {
    fn day_matches(&self, t: OffsetDateTime) -> bool {
        let dom_ok = self.days_of_month.as_ref().is_none_or(|d| d.contains(&t.day()));
        let dow_ok = self.days_of_week.as_ref().is_none_or(|d| d.contains(&weekday_number(t.weekday())));
        dom_ok
            && dow_ok
            && self.months.contains(&u8::from(t.month()))
            && self.years.as_ref().is_none_or(|y| u16::try_from(t.year()).is_ok_and(|year| y.contains(&year)))
    }

    /// Scans day by day, then within the matching day minute by minute over the allowed
    /// hours and minutes (at most about eight years ahead).
    fn next_after(&self, after: OffsetDateTime) -> Option<OffsetDateTime> {
        let after = after.replace_second(0).ok()?.replace_nanosecond(0).ok()?;
        let mut day = after.replace_time(time::Time::MIDNIGHT);
        for _ in 0..(366 * 8) {
            if self.day_matches(day) {
                for &h in &self.hours {
                    for &m in &self.minutes {
                        let t = day.replace_time(time::Time::from_hms(h, m, 0).ok()?);
                        if t > after {
                            return Some(t);
                        }
                    }
                }
            }
            day += Duration::days(1);
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn next(expr: &str, after: OffsetDateTime) -> OffsetDateTime {
        Expression::parse(expr).unwrap().next_after(datetime!(2026-11-01 00:00 UTC), after).unwrap()
    }

    #[test]
    fn rates_fire_every_period_from_their_start() {
        assert_eq!(next("rate(1 hour)", datetime!(2026-11-01 00:00 UTC)), datetime!(2026-11-01 01:00 UTC));
        assert_eq!(next("rate(1 hour)", datetime!(2026-11-01 03:20 UTC)), datetime!(2026-11-01 04:00 UTC));
        assert_eq!(next("rate(15 minutes)", datetime!(2026-11-01 00:15 UTC)), datetime!(2026-11-01 00:30 UTC));
        assert_eq!(next("rate(2 days)", datetime!(2026-11-02 12:00 UTC)), datetime!(2026-11-03 00:00 UTC));
    }

    #[test]
    fn crons_fire_at_their_next_matching_minute() {
        // every day at 08:00
        assert_eq!(next("cron(0 8 * * ? *)", datetime!(2026-11-27 09:00 UTC)), datetime!(2026-11-28 08:00 UTC));
        assert_eq!(next("cron(0 8 * * ? *)", datetime!(2026-11-27 07:59:30 UTC)), datetime!(2026-11-27 08:00 UTC));
        // weekdays at 08:30 (Friday 2026-11-27 → Monday 2026-11-30)
        assert_eq!(next("cron(30 8 ? * MON-FRI *)", datetime!(2026-11-27 09:00 UTC)), datetime!(2026-11-30 08:30 UTC));
        // every 15 minutes
        assert_eq!(next("cron(0/15 * * * ? *)", datetime!(2026-11-27 10:07 UTC)), datetime!(2026-11-27 10:15 UTC));
        // the first of the month
        assert_eq!(next("cron(0 0 1 * ? *)", datetime!(2026-11-27 10:07 UTC)), datetime!(2026-12-01 00:00 UTC));
        // Sundays (1) only
        assert_eq!(next("cron(0 12 ? * 1 *)", datetime!(2026-11-27 10:00 UTC)), datetime!(2026-11-29 12:00 UTC));
        // a year that has passed never fires
        assert_eq!(Expression::parse("cron(0 12 * * ? 2020)").unwrap().next_after(datetime!(2026-01-01 00:00 UTC), datetime!(2026-11-27 00:00 UTC)), None);
    }

    #[test]
    fn expressions_the_runner_cannot_fire_are_refused() {
        for bad in [
            "rate(0 minutes)",
            "rate(1 minutes)",
            "rate(5 weeks)",
            "cron(0 8 * * * *)",
            "cron(0 8 L * ? *)",
            "cron(0 8 ? * 6#3 *)",
            "cron(0 8 * *)",
            "at(2026-11-27T10:00:00)",
            "cron(61 8 * * ? *)",
        ] {
            assert!(Expression::parse(bad).is_err(), "{bad} was accepted");
        }
    }
}
