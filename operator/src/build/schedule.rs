//! Cron schedules of `Load` resources: the five classic fields (minute,
//! hour, day of month, month, day of week; UTC), each `*`, a number, a
//! range `a-b`, a step `*/n` or `a-b/n`, or a comma list of those. As in
//! cron, when both day fields are restricted a day matching either runs.

use k8s_openapi::jiff::{civil::DateTime, tz::TimeZone, Timestamp, ToSpan};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Schedule {
    minutes: Vec<bool>,
    hours: Vec<bool>,
    days: Vec<bool>,
    months: Vec<bool>,
    weekdays: Vec<bool>,
    days_restricted: bool,
    weekdays_restricted: bool,
}

/// A field's allowed values, `min..=max`, as flags indexed by value.
fn field(text: &str, min: u32, max: u32, name: &str) -> Result<(Vec<bool>, bool), String> {
    let mut allowed = vec![false; max as usize + 1];
    let bad = |why: &str| format!("schedule {name} field {text:?}: {why}");
    for part in text.split(',') {
        let (range, step) = match part.split_once('/') {
            Some((r, s)) => (
                r,
                s.parse::<u32>()
                    .map_err(|_| bad("the step is not a number"))?,
            ),
            None => (part, 1),
        };
        if step == 0 {
            return Err(bad("a step of 0"));
        }
        let (lo, hi) = if range == "*" {
            (min, max)
        } else if let Some((a, b)) = range.split_once('-') {
            let a = a.parse().map_err(|_| bad("not a number"))?;
            let b = b.parse().map_err(|_| bad("not a number"))?;
            (a, b)
        } else {
            let v = range.parse().map_err(|_| bad("not a number"))?;
            // `5/10` means from 5 to the end, in steps of 10.
            (v, if part.contains('/') { max } else { v })
        };
        if lo < min || hi > max || lo > hi {
            return Err(bad(&format!("values must be within {min}-{max}")));
        }
        for v in (lo..=hi).step_by(step as usize) {
            allowed[v as usize] = true;
        }
    }
    Ok((allowed, text != "*"))
}

impl Schedule {
    pub fn parse(text: &str) -> Result<Schedule, String> {
        let fields: Vec<&str> = text.split_whitespace().collect();
        let [m, h, dom, mon, dow] = fields[..] else {
            return Err(format!(
                "schedule {text:?} must have 5 fields (minute hour day-of-month month day-of-week)"
            ));
        };
        let (mut weekdays, weekdays_restricted) = field(dow, 0, 7, "day-of-week")?;
        // 7 is Sunday too.
        if weekdays[7] {
            weekdays[0] = true;
        }
        let (days, days_restricted) = field(dom, 1, 31, "day-of-month")?;
        Ok(Schedule {
            minutes: field(m, 0, 59, "minute")?.0,
            hours: field(h, 0, 23, "hour")?.0,
            days,
            months: field(mon, 1, 12, "month")?.0,
            weekdays,
            days_restricted,
            weekdays_restricted,
        })
    }

    fn matches(&self, t: &DateTime) -> bool {
        let day = self.days[t.day() as usize];
        let weekday = self.weekdays[t.weekday().to_sunday_zero_offset() as usize];
        let day_ok = match (self.days_restricted, self.weekdays_restricted) {
            (true, true) => day || weekday,
            (true, false) => day,
            (false, true) => weekday,
            (false, false) => true,
        };
        self.minutes[t.minute() as usize]
            && self.hours[t.hour() as usize]
            && self.months[t.month() as usize]
            && day_ok
    }

    /// The first scheduled minute after `now`, within four years (`None`:
    /// never, such as February 30th).
    pub fn next_after(&self, now: Timestamp) -> Option<Timestamp> {
        let utc = now.to_zoned(TimeZone::UTC).datetime();
        let mut t = utc.with().second(0).subsec_nanosecond(0).build().ok()?;
        for _ in 0..(4 * 366 * 24 * 60) {
            t = t.checked_add(1.minute()).ok()?;
            if !self.months[t.month() as usize] {
                // Skip to the first minute of the next month.
                t = t.first_of_month().with().hour(0).minute(0).build().ok()?;
                t = t
                    .checked_add(1.month())
                    .ok()?
                    .checked_sub(1.minute())
                    .ok()?;
                continue;
            }
            if self.matches(&t) {
                return t.to_zoned(TimeZone::UTC).ok().map(|z| z.timestamp());
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn next(schedule: &str, now: &str) -> String {
        Schedule::parse(schedule)
            .unwrap()
            .next_after(at(now))
            .unwrap()
            .to_string()
    }

    #[test]
    fn next_times_follow_cron() {
        assert_eq!(
            next("0 3 * * *", "2026-12-02T10:35:20Z"),
            "2026-12-03T03:00:00Z"
        );
        assert_eq!(
            next("*/15 * * * *", "2026-12-02T10:35:20Z"),
            "2026-12-02T10:45:00Z"
        );
        assert_eq!(
            next("30 10 * * *", "2026-12-02T10:29:59Z"),
            "2026-12-02T10:30:00Z"
        );
        // Strictly after: the current minute does not count again.
        assert_eq!(
            next("30 10 * * *", "2026-12-02T10:30:00Z"),
            "2026-12-03T10:30:00Z"
        );
        // Mondays (2026-12-07 is one), also written as 1-1 and in a list.
        assert_eq!(
            next("0 0 * * 1", "2026-12-02T00:00:00Z"),
            "2026-12-07T00:00:00Z"
        );
        assert_eq!(
            next("0 0 * * 6,1-1", "2026-12-02T00:00:00Z"),
            "2026-12-05T00:00:00Z"
        );
        // Sunday as 7; a month far ahead; either day field when both are set.
        assert_eq!(
            next("0 0 * * 7", "2026-12-02T00:00:00Z"),
            "2026-12-06T00:00:00Z"
        );
        assert_eq!(
            next("0 12 1 6 *", "2026-12-02T00:00:00Z"),
            "2027-06-01T12:00:00Z"
        );
        assert_eq!(
            next("0 0 15 * 1", "2026-12-02T00:00:00Z"),
            "2026-12-07T00:00:00Z"
        );
    }

    #[test]
    fn impossible_and_malformed_schedules() {
        assert_eq!(
            Schedule::parse("0 0 30 2 *")
                .unwrap()
                .next_after(at("2026-01-01T00:00:00Z")),
            None
        );
        for bad in [
            "",
            "* * * *",
            "60 * * * *",
            "* 24 * * *",
            "*/0 * * * *",
            "a * * * *",
            "5-1 * * * *",
            "* * 0 * *",
        ] {
            assert!(Schedule::parse(bad).is_err(), "{bad:?} was accepted");
        }
    }
}
