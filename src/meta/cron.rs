//! Cron schedules as upstream's CronJobs read them: robfig/cron v3's `ParseStandard` (five
//! fields, or a descriptor such as `@daily` or `@every 1h30m`, after an optional `TZ=` or
//! `CRON_TZ=` prefix) and its `Next`, in the schedule's time zone. The API server validates a
//! schedule with [`parse_standard`] and quotes its error; the CronJob controller computes run
//! times with [`Schedule::next`].
//!
//! Written here rather than taken from a crate because the crates on offer read cron
//! differently from robfig in ways a user sees: they take seconds or years as extra fields,
//! accept `L`, `W`, `#` or a day of week `7` that upstream refuses, join day of month and day
//! of week with AND where robfig fires when either matches (unless one of them is `*` or `?`),
//! and word their errors differently, while the API server must quote robfig's. The time
//! zones come from jiff, whose database falls back to a bundled copy where the system has
//! none, as Go's `time/tzdata` does for kube-apiserver.

use jiff::civil::date;
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp, ToSpan, Zoned};

/// Set in a field that was written `*` or `?` (robfig `starBit`): day of month and day of week
/// then combine with AND rather than OR.
const STAR: u64 = 1 << 63;

/// A field's bounds and the names it accepts (robfig `bounds`).
struct Bounds {
    min: u32,
    max: u32,
    names: &'static [&'static str],
}

const MINUTES: Bounds = Bounds {
    min: 0,
    max: 59,
    names: &[],
};
const HOURS: Bounds = Bounds {
    min: 0,
    max: 23,
    names: &[],
};
const DOM: Bounds = Bounds {
    min: 1,
    max: 31,
    names: &[],
};
/// Month names, `jan` being 1.
const MONTHS: Bounds = Bounds {
    min: 1,
    max: 12,
    names: &[
        "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
    ],
};
/// Day names, `sun` being 0.
const DOW: Bounds = Bounds {
    min: 0,
    max: 6,
    names: &["sun", "mon", "tue", "wed", "thu", "fri", "sat"],
};

/// A parsed schedule: when it fires, and the zone a `TZ=` prefix named, if any.
#[derive(Debug, Clone, PartialEq)]
pub struct Schedule {
    when: When,
    zone: Option<TimeZone>,
}

#[derive(Debug, Clone, PartialEq)]
enum When {
    /// Bit sets of the minutes, hours, days of month, months and days of week that match
    /// (robfig `SpecSchedule`, whose seconds are always 0 with the standard parser).
    Fields {
        minute: u64,
        hour: u64,
        dom: u64,
        month: u64,
        dow: u64,
    },
    /// `@every`: a fixed delay of whole seconds (robfig `ConstantDelaySchedule`).
    Every(SignedDuration),
}

fn bit(n: i8) -> u64 {
    1 << n
}

/// robfig `getBits`: every `step`th value from `min` to `max`.
fn bits(min: u32, max: u32, step: u32) -> u64 {
    (min..=max)
        .step_by(step as usize)
        .fold(0, |acc, i| acc | (1 << i))
}

fn all(b: &Bounds) -> u64 {
    bits(b.min, b.max, 1) | STAR
}

/// Go's `strconv.Atoi` error for a string that is not a decimal int.
fn parse_int(expr: &str) -> Result<u32, String> {
    let digits = expr.strip_prefix(['+', '-']).unwrap_or(expr);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "failed to parse int from {expr}: strconv.Atoi: parsing {expr:?}: invalid syntax"
        ));
    }
    let Ok(n) = expr.parse::<i64>() else {
        return Err(format!(
            "failed to parse int from {expr}: strconv.Atoi: parsing {expr:?}: value out of range"
        ));
    };
    if n < 0 {
        return Err(format!("negative number ({n}) not allowed: {expr}"));
    }
    // Anything past a field's bounds is refused by the caller; this only keeps it a u32.
    Ok(u32::try_from(n).unwrap_or(u32::MAX))
}

fn int_or_name(expr: &str, b: &Bounds) -> Result<u32, String> {
    let lower = expr.to_ascii_lowercase();
    match b.names.iter().position(|n| *n == lower) {
        Some(i) => Ok(i as u32 + b.min),
        None => parse_int(expr),
    }
}

/// robfig `getRange`: `*`, `?`, `N`, `N-M`, each with an optional `/step` (`N/step` runs to
/// the field's maximum); a step above one drops the star mark.
fn range(expr: &str, b: &Bounds) -> Result<u64, String> {
    let range_and_step: Vec<&str> = expr.split('/').collect();
    let low_and_high: Vec<&str> = range_and_step[0].split('-').collect();
    let (start, mut end, mut extra);
    if low_and_high[0] == "*" || low_and_high[0] == "?" {
        (start, end, extra) = (b.min, b.max, STAR);
    } else {
        start = int_or_name(low_and_high[0], b)?;
        end = match low_and_high.len() {
            1 => start,
            2 => int_or_name(low_and_high[1], b)?,
            _ => return Err(format!("too many hyphens: {expr}")),
        };
        extra = 0;
    }
    let step = match range_and_step.len() {
        1 => 1,
        2 => {
            let step = parse_int(range_and_step[1])?;
            if low_and_high.len() == 1 {
                end = b.max;
            }
            if step > 1 {
                extra = 0;
            }
            step
        }
        _ => return Err(format!("too many slashes: {expr}")),
    };
    if start < b.min {
        return Err(format!(
            "beginning of range ({start}) below minimum ({}): {expr}",
            b.min
        ));
    }
    if end > b.max {
        return Err(format!(
            "end of range ({end}) above maximum ({}): {expr}",
            b.max
        ));
    }
    if start > end {
        return Err(format!(
            "beginning of range ({start}) beyond end of range ({end}): {expr}"
        ));
    }
    if step == 0 {
        return Err(format!("step of range should be a positive number: {expr}"));
    }
    Ok(bits(start, end, step) | extra)
}

/// robfig `getField`: the union of comma-separated ranges (empty ones are skipped).
fn field(text: &str, b: &Bounds) -> Result<u64, String> {
    text.split(',')
        .filter(|r| !r.is_empty())
        .try_fold(0, |acc, r| Ok(acc | range(r, b)?))
}

/// A zone by its IANA name, spelled exactly as the database spells it (Go's
/// `time.LoadLocation` reads a file of that name; jiff's lookup ignores case). The error is
/// Go's.
pub fn time_zone(name: &str) -> Result<TimeZone, String> {
    let unknown = || format!("unknown time zone {name}");
    if name.is_empty() || name == "UTC" {
        return Ok(TimeZone::UTC);
    }
    let tz = TimeZone::get(name).map_err(|_| unknown())?;
    if tz.iana_name() != Some(name) {
        return Err(unknown());
    }
    Ok(tz)
}

/// robfig `parseDescriptor`.
fn descriptor(spec: &str) -> Result<When, String> {
    let fields = |minute, hour, dom, month, dow| When::Fields {
        minute,
        hour,
        dom,
        month,
        dow,
    };
    let first = |b: &Bounds| 1u64 << b.min;
    Ok(match spec {
        "@yearly" | "@annually" => fields(1, 1, first(&DOM), first(&MONTHS), all(&DOW)),
        "@monthly" => fields(1, 1, first(&DOM), all(&MONTHS), all(&DOW)),
        "@weekly" => fields(1, 1, all(&DOM), all(&MONTHS), first(&DOW)),
        "@daily" | "@midnight" => fields(1, 1, all(&DOM), all(&MONTHS), all(&DOW)),
        "@hourly" => fields(1, all(&HOURS), all(&DOM), all(&MONTHS), all(&DOW)),
        _ => {
            let Some(text) = spec.strip_prefix("@every ") else {
                return Err(format!("unrecognized descriptor: {spec}"));
            };
            // Go's ParseDuration takes a sign; a negative delay is below robfig's minimum.
            let (negative, unsigned) = match text.strip_prefix('-') {
                Some(rest) => (true, rest),
                None => (false, text),
            };
            let d = super::duration::parse(unsigned)
                .map_err(|e| format!("failed to parse duration {spec}: {e}"))?;
            // robfig `Every`: whole seconds, at least one.
            let secs = if negative { 0 } else { d.as_secs() };
            When::Every(SignedDuration::from_secs(secs.max(1) as i64))
        }
    })
}

/// robfig/cron v3 `ParseStandard`, with its error messages.
pub fn parse_standard(spec: &str) -> Result<Schedule, String> {
    if spec.is_empty() {
        return Err("empty spec string".into());
    }
    let mut spec = spec;
    let mut zone = None;
    if spec.starts_with("TZ=") || spec.starts_with("CRON_TZ=") {
        let eq = spec.find('=').unwrap_or(0);
        let end = spec.find(' ').unwrap_or(spec.len());
        let name = &spec[eq + 1..end];
        zone = Some(time_zone(name).map_err(|e| format!("provided bad location {name}: {e}"))?);
        spec = spec[end..].trim();
    }
    if spec.starts_with('@') {
        return Ok(Schedule {
            when: descriptor(spec)?,
            zone,
        });
    }
    let fields: Vec<&str> = spec.split_whitespace().collect();
    if fields.len() != 5 {
        return Err(format!(
            "expected exactly 5 fields, found {}: [{}]",
            fields.len(),
            fields.join(" ")
        ));
    }
    Ok(Schedule {
        when: When::Fields {
            minute: field(fields[0], &MINUTES)?,
            hour: field(fields[1], &HOURS)?,
            dom: field(fields[2], &DOM)?,
            month: field(fields[3], &MONTHS)?,
            dow: field(fields[4], &DOW)?,
        },
        zone,
    })
}

/// robfig `dayMatches`: with `*` (or `?`) in either day field both must match, otherwise
/// either one.
fn day_matches(dom: u64, dow: u64, t: &Zoned) -> bool {
    let dom_match = bit(t.day()) & dom != 0;
    let dow_match = bit(t.weekday().to_sunday_zero_offset()) & dow != 0;
    if dom & STAR != 0 || dow & STAR != 0 {
        dom_match && dow_match
    } else {
        dom_match || dow_match
    }
}

impl Schedule {
    /// The first time after `after` that the schedule fires, read in the zone a `TZ=` prefix
    /// named or else in `zone`; `None` when nothing matches within five years (robfig's zero
    /// time), as for `0 0 30 2 *`.
    pub fn next(&self, after: Timestamp, zone: &TimeZone) -> Option<Timestamp> {
        let zone = self.zone.as_ref().unwrap_or(zone);
        match &self.when {
            When::Every(delay) => {
                let nanos = SignedDuration::from_nanos(i64::from(after.subsec_nanosecond()));
                after.checked_add(*delay - nanos).ok()
            }
            When::Fields {
                minute,
                hour,
                dom,
                month,
                dow,
            } => next_match(
                after.to_zoned(zone.clone()),
                [*minute, *hour, *dom, *month, *dow],
            )
            .map(|z| z.timestamp()),
        }
    }
}

/// robfig `SpecSchedule.Next`: from the next whole second, move the month, then the day,
/// hour, minute and second forward until each matches, starting over when one wraps. Hours
/// and smaller units move in elapsed time, so a wall-clock hour that a DST change skips never
/// fires and one it repeats fires twice, as upstream. Deviation: a day starts at its first
/// instant (jiff's rule) where robfig's midnight correction may land an hour off in zones
/// whose DST change skips midnight.
fn next_match(after: Zoned, [minute, hour, dom, month, dow]: [u64; 5]) -> Option<Zoned> {
    let tz = after.time_zone().clone();
    let start_of = |d: jiff::civil::Date| d.to_zoned(tz.clone()).ok();
    let nanos = i64::from(after.subsec_nanosecond());
    let mut t = after
        .checked_add(SignedDuration::from_secs(1) - SignedDuration::from_nanos(nanos))
        .ok()?;
    let mut added = false;
    let year_limit = t.year() + 5;
    'wrap: loop {
        if t.year() > year_limit {
            return None;
        }
        while bit(t.month()) & month == 0 {
            if !added {
                added = true;
                t = start_of(date(t.year(), t.month(), 1))?;
            }
            t = start_of(t.date().first_of_month().checked_add(1.month()).ok()?)?;
            if t.month() == 1 {
                continue 'wrap;
            }
        }
        while !day_matches(dom, dow, &t) {
            if !added {
                added = true;
                t = start_of(t.date())?;
            }
            t = start_of(t.date().tomorrow().ok()?)?;
            if t.day() == 1 {
                continue 'wrap;
            }
        }
        while bit(t.hour()) & hour == 0 {
            if !added {
                added = true;
                t = truncate(&t, i64::from(t.minute()) * 60 + i64::from(t.second()))?;
            }
            t = t.checked_add(1.hour()).ok()?;
            if t.hour() == 0 {
                continue 'wrap;
            }
        }
        while bit(t.minute()) & minute == 0 {
            if !added {
                added = true;
                t = truncate(&t, i64::from(t.second()))?;
            }
            t = t.checked_add(1.minute()).ok()?;
            if t.minute() == 0 {
                continue 'wrap;
            }
        }
        // The standard parser's seconds field is always 0.
        while t.second() != 0 {
            if !added {
                added = true;
                t = truncate(&t, 0)?;
            }
            t = t.checked_add(1.second()).ok()?;
            if t.second() == 0 {
                continue 'wrap;
            }
        }
        return Some(t);
    }
}

/// `t` less `seconds` and its fraction of a second, in elapsed time.
fn truncate(t: &Zoned, seconds: i64) -> Option<Zoned> {
    let back = SignedDuration::from_secs(seconds)
        + SignedDuration::from_nanos(i64::from(t.subsec_nanosecond()));
    t.checked_sub(back).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> Timestamp {
        s.parse().expect("time")
    }

    fn nexts(spec: &str, from: &str, zone: &str, n: usize) -> Vec<String> {
        let schedule = parse_standard(spec).expect(spec);
        let tz = time_zone(zone).expect(zone);
        let mut t = utc(from);
        let mut out = Vec::new();
        for _ in 0..n {
            t = schedule.next(t, &tz).expect("a next time");
            out.push(t.to_zoned(tz.clone()).strftime("%FT%T%:z %a").to_string());
        }
        out
    }

    #[test]
    fn errors_are_robfigs() {
        let cases = [
            ("bad", "expected exactly 5 fields, found 1: [bad]"),
            ("* * * *", "expected exactly 5 fields, found 4: [* * * *]"),
            ("* * * * * *", "expected exactly 5 fields, found 6: [* * * * * *]"),
            ("60 * * * *", "end of range (60) above maximum (59): 60"),
            ("* * 0 * *", "beginning of range (0) below minimum (1): 0"),
            ("* * * * 7", "end of range (7) above maximum (6): 7"),
            ("5-2 * * * *", "beginning of range (5) beyond end of range (2): 5-2"),
            ("1-2-3 * * * *", "too many hyphens: 1-2-3"),
            ("*/2/3 * * * *", "too many slashes: */2/3"),
            ("*/0 * * * *", "step of range should be a positive number: */0"),
            (
                "x * * * *",
                "failed to parse int from x: strconv.Atoi: parsing \"x\": invalid syntax",
            ),
            ("*/-1 * * * *", "negative number (-1) not allowed: -1"),
            (
                "* -1 * * *",
                "failed to parse int from : strconv.Atoi: parsing \"\": invalid syntax",
            ),
            ("* * * JANUARY *", "failed to parse int from JANUARY: strconv.Atoi: parsing \"JANUARY\": invalid syntax"),
            ("* * L * *", "failed to parse int from L: strconv.Atoi: parsing \"L\": invalid syntax"),
            ("@reboot", "unrecognized descriptor: @reboot"),
            (
                "@every x",
                "failed to parse duration @every x: time: invalid duration \"x\"",
            ),
            (
                "TZ=Mars/Base * * * * *",
                "provided bad location Mars/Base: unknown time zone Mars/Base",
            ),
        ];
        for (spec, want) in cases {
            assert_eq!(parse_standard(spec).expect_err(spec), want, "{spec}");
        }
        for spec in [
            "*/1 * * * *",
            "0 0 * * ?",
            "15,45 9-17/2 1,15 JAN-jun MON-fri",
            "@yearly",
            "@annually",
            "@monthly",
            "@weekly",
            "@daily",
            "@midnight",
            "@hourly",
            "@every 1h30m",
            "TZ=Europe/Paris 0 9 * * *",
            "CRON_TZ=UTC @daily",
            "  0   0  * * *  ",
        ] {
            assert!(parse_standard(spec).is_ok(), "{spec}");
        }
    }

    #[test]
    fn next_times_follow_fields_steps_and_names() {
        assert_eq!(
            nexts("*/1 * * * *", "2024-01-01T00:00:30Z", "UTC", 2),
            [
                "2024-01-01T00:01:00+00:00 Mon",
                "2024-01-01T00:02:00+00:00 Mon"
            ]
        );
        assert_eq!(
            nexts("*/20 * * * *", "2024-01-01T00:00:00Z", "UTC", 3),
            [
                "2024-01-01T00:20:00+00:00 Mon",
                "2024-01-01T00:40:00+00:00 Mon",
                "2024-01-01T01:00:00+00:00 Mon"
            ]
        );
        assert_eq!(
            nexts("30 6-16/4 * * MON-FRI", "2024-01-05T15:00:00Z", "UTC", 3),
            [
                "2024-01-08T06:30:00+00:00 Mon",
                "2024-01-08T10:30:00+00:00 Mon",
                "2024-01-08T14:30:00+00:00 Mon"
            ]
        );
        assert_eq!(
            nexts("0 0 1 FEB,aug *", "2024-03-01T00:00:00Z", "UTC", 2),
            [
                "2024-08-01T00:00:00+00:00 Thu",
                "2025-02-01T00:00:00+00:00 Sat"
            ]
        );
        assert_eq!(
            nexts("@weekly", "2024-01-01T00:00:00Z", "UTC", 1),
            ["2024-01-07T00:00:00+00:00 Sun"]
        );
        assert_eq!(
            nexts("@yearly", "2024-06-01T00:00:00Z", "UTC", 1),
            ["2025-01-01T00:00:00+00:00 Wed"]
        );
        // A time exactly on the schedule is not "after" it.
        assert_eq!(
            nexts("@hourly", "2024-01-01T05:00:00Z", "UTC", 1),
            ["2024-01-01T06:00:00+00:00 Mon"]
        );
        // `@every` counts from the given time, in whole seconds.
        let every = parse_standard("@every 90s").expect("valid");
        assert_eq!(
            every.next(utc("2024-01-01T00:00:00.5Z"), &TimeZone::UTC),
            Some(utc("2024-01-01T00:01:30Z"))
        );
        let tiny = parse_standard("@every 10ms").expect("valid");
        assert_eq!(
            tiny.next(utc("2024-01-01T00:00:00Z"), &TimeZone::UTC),
            Some(utc("2024-01-01T00:00:01Z"))
        );
        // Nothing matches the 30th of February.
        let never = parse_standard("0 0 30 2 *").expect("valid");
        assert_eq!(
            never.next(utc("2024-01-01T00:00:00Z"), &TimeZone::UTC),
            None
        );
    }

    #[test]
    fn day_of_month_and_day_of_week_match_either_unless_one_is_a_star() {
        // The 13th or any Friday.
        assert_eq!(
            nexts("0 0 13 * 5", "2024-09-01T00:00:00Z", "UTC", 3),
            [
                "2024-09-06T00:00:00+00:00 Fri",
                "2024-09-13T00:00:00+00:00 Fri",
                "2024-09-20T00:00:00+00:00 Fri"
            ]
        );
        assert_eq!(
            nexts("0 0 13 * 1", "2024-09-10T00:00:00Z", "UTC", 2),
            [
                "2024-09-13T00:00:00+00:00 Fri",
                "2024-09-16T00:00:00+00:00 Mon"
            ]
        );
        // A star (or `?`) in one day field leaves the other alone deciding.
        assert_eq!(
            nexts("0 0 * * 1", "2024-09-10T00:00:00Z", "UTC", 1),
            ["2024-09-16T00:00:00+00:00 Mon"]
        );
        assert_eq!(
            nexts("0 0 13 * ?", "2024-09-10T00:00:00Z", "UTC", 1),
            ["2024-09-13T00:00:00+00:00 Fri"]
        );
        // A stepped star is a restriction: `*/2` days of week (Sun, Tue, Thu, Sat) or the 1st.
        assert_eq!(
            nexts("0 0 1 * */2", "2024-09-01T12:00:00Z", "UTC", 2),
            [
                "2024-09-03T00:00:00+00:00 Tue",
                "2024-09-05T00:00:00+00:00 Thu"
            ]
        );
    }

    #[test]
    fn time_zones_and_daylight_saving_changes() {
        assert_eq!(
            nexts("0 9 * * *", "2024-01-01T00:00:00Z", "Europe/Paris", 1),
            ["2024-01-01T09:00:00+01:00 Mon"]
        );
        // A TZ= prefix overrides the zone given.
        let prefixed = parse_standard("TZ=Asia/Tokyo 0 9 * * *").expect("valid");
        assert_eq!(
            prefixed.next(utc("2024-01-01T00:00:00Z"), &TimeZone::UTC),
            Some(utc("2024-01-02T00:00:00Z"))
        );
        // 02:30 does not exist in New York on 10 March 2024: that day has no run.
        assert_eq!(
            nexts("30 2 * * *", "2024-03-09T12:00:00Z", "America/New_York", 2),
            [
                "2024-03-11T02:30:00-04:00 Mon",
                "2024-03-12T02:30:00-04:00 Tue"
            ]
        );
        // 01:30 happens twice on 3 November 2024: both fire, as with robfig.
        assert_eq!(
            nexts("30 1 * * *", "2024-11-03T04:00:00Z", "America/New_York", 3),
            [
                "2024-11-03T01:30:00-04:00 Sun",
                "2024-11-03T01:30:00-05:00 Sun",
                "2024-11-04T01:30:00-05:00 Mon"
            ]
        );
    }

    #[test]
    fn time_zone_names_are_exact_iana_names() {
        assert!(time_zone("America/New_York").is_ok());
        assert!(time_zone("UTC").is_ok());
        assert!(time_zone("Etc/GMT+5").is_ok());
        assert_eq!(
            time_zone("america/new_york").expect_err("case"),
            "unknown time zone america/new_york"
        );
        assert_eq!(
            time_zone("Mars/Olympus").expect_err("unknown"),
            "unknown time zone Mars/Olympus"
        );
    }
}
