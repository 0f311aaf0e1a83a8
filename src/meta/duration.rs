//! Go durations (`60s`, `1m30s`, `1.5h`, `300ms`) as kube-apiserver's flags take them, and
//! their Go spelling (`1m0s`) for messages that quote a duration, and the human spelling
//! kubectl prints for an age (`5s`, `2m3s`, `4d`).
//!
//! Follows Go's `time.ParseDuration` and `time.Duration.String`: a sequence of decimal numbers,
//! each with an optional fraction and a unit (`ns`, `us`/`µs`/`μs`, `ms`, `s`, `m`, `h`); a bare
//! `0` is the only number allowed without a unit. rkube's flags take no negative durations, so
//! a leading `-` is refused rather than returned.

use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    #[error("time: invalid duration {0:?}")]
    Invalid(String),
    #[error("time: missing unit in duration {0:?}")]
    MissingUnit(String),
    #[error("time: unknown unit {unit:?} in duration {text:?}")]
    UnknownUnit { unit: String, text: String },
    #[error("duration {0:?} is negative")]
    Negative(String),
}

const UNITS: [(&str, u128); 9] = [
    ("ns", 1),
    ("us", 1_000),
    ("µs", 1_000),
    ("μs", 1_000),
    ("ms", 1_000_000),
    ("s", 1_000_000_000),
    ("m", 60_000_000_000),
    ("h", 3_600_000_000_000),
    ("", 0),
];

/// Parses a Go duration.
pub fn parse(text: &str) -> Result<Duration, DurationError> {
    let invalid = || DurationError::Invalid(text.to_string());
    let mut rest = text;
    if let Some(r) = rest.strip_prefix('-') {
        if r == "0" {
            return Ok(Duration::ZERO);
        }
        return Err(DurationError::Negative(text.to_string()));
    }
    rest = rest.strip_prefix('+').unwrap_or(rest);
    if rest == "0" {
        return Ok(Duration::ZERO);
    }
    if rest.is_empty() {
        return Err(invalid());
    }
    let mut total: u128 = 0;
    while !rest.is_empty() {
        let whole_len = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        let (whole, after) = rest.split_at(whole_len);
        let (fraction, after) = match after.strip_prefix('.') {
            Some(f) => {
                let len = f.find(|c: char| !c.is_ascii_digit()).unwrap_or(f.len());
                f.split_at(len)
            }
            None => ("", after),
        };
        if whole.is_empty() && fraction.is_empty() {
            return Err(invalid());
        }
        let unit_len = after
            .find(|c: char| c == '.' || c.is_ascii_digit())
            .unwrap_or(after.len());
        let (unit, next) = after.split_at(unit_len);
        if unit.is_empty() {
            return Err(DurationError::MissingUnit(text.to_string()));
        }
        let scale = UNITS
            .iter()
            .find(|(name, _)| *name == unit)
            .map(|(_, scale)| *scale)
            .ok_or_else(|| DurationError::UnknownUnit {
                unit: unit.to_string(),
                text: text.to_string(),
            })?;
        let whole: u128 = if whole.is_empty() {
            0
        } else {
            whole.parse().map_err(|_| invalid())?
        };
        let mut nanos = whole.checked_mul(scale).ok_or_else(invalid)?;
        // The fraction, to nanosecond precision (Go truncates the same way).
        let mut place = scale;
        for digit in fraction.bytes() {
            place /= 10;
            if place == 0 {
                break;
            }
            nanos += u128::from(digit - b'0') * place;
        }
        total = total.checked_add(nanos).ok_or_else(invalid)?;
        rest = next;
    }
    // Go's durations are int64 nanoseconds: about 292 years at most.
    if total > i64::MAX as u128 {
        return Err(invalid());
    }
    Ok(Duration::from_nanos(total as u64))
}

/// Spells a duration as Go's `Duration.String` does: `1m0s`, `1.5s`, `300ms`, `0s`.
pub fn format(d: Duration) -> String {
    let nanos = d.as_nanos();
    if nanos == 0 {
        return "0s".to_string();
    }
    if nanos < 1_000_000_000 {
        let (scale, unit) = match nanos {
            n if n < 1_000 => (1, "ns"),
            n if n < 1_000_000 => (1_000, "µs"),
            _ => (1_000_000, "ms"),
        };
        return format!("{}{unit}", decimal(nanos, scale));
    }
    let hours = nanos / 3_600_000_000_000;
    let minutes = (nanos / 60_000_000_000) % 60;
    let seconds = decimal(nanos % 60_000_000_000, 1_000_000_000);
    if hours > 0 {
        format!("{hours}h{minutes}m{seconds}s")
    } else if minutes > 0 {
        format!("{minutes}m{seconds}s")
    } else {
        format!("{seconds}s")
    }
}

/// `value / scale` with its fraction, without trailing zeros.
fn decimal(value: u128, scale: u128) -> String {
    let whole = value / scale;
    let fraction = value % scale;
    if fraction == 0 {
        return whole.to_string();
    }
    let width = scale.ilog10() as usize;
    let digits = format!("{fraction:0width$}");
    format!("{whole}.{}", digits.trim_end_matches('0'))
}

/// apimachinery `duration.HumanDuration`: about two significant units ("5s", "2m3s", "3h",
/// "4d", "2y").
pub fn human_duration(d: Duration) -> String {
    let secs = d.as_secs();
    if secs < 60 * 2 {
        return format!("{secs}s");
    }
    let minutes = secs / 60;
    if minutes < 10 {
        let s = secs % 60;
        return if s == 0 {
            format!("{minutes}m")
        } else {
            format!("{minutes}m{s}s")
        };
    }
    if minutes < 60 * 3 {
        return format!("{minutes}m");
    }
    let hours = secs / 3600;
    if hours < 8 {
        let m = minutes % 60;
        return if m == 0 {
            format!("{hours}h")
        } else {
            format!("{hours}h{m}m")
        };
    }
    if hours < 48 {
        return format!("{hours}h");
    }
    if hours < 24 * 8 {
        let h = hours % 24;
        return if h == 0 {
            format!("{}d", hours / 24)
        } else {
            format!("{}d{h}h", hours / 24)
        };
    }
    if hours < 24 * 365 * 2 {
        return format!("{}d", hours / 24);
    }
    if hours < 24 * 365 * 8 {
        let dy = (hours / 24) % 365;
        return if dy == 0 {
            format!("{}y", hours / 24 / 365)
        } else {
            format!("{}y{dy}d", hours / 24 / 365)
        };
    }
    format!("{}y", hours / 24 / 365)
}

/// `translateTimestampSince`: `<unknown>` for no timestamp; up to a second in the future reads
/// as `0s` (clock skew), further is `<invalid>`.
pub fn since(t: Option<jiff::Timestamp>, now: jiff::Timestamp) -> String {
    let Some(t) = t else {
        return "<unknown>".to_string();
    };
    let nanos = now.as_nanosecond() - t.as_nanosecond();
    // Go truncates toward zero when converting seconds to int.
    let secs = nanos / 1_000_000_000;
    if secs < -1 {
        "<invalid>".to_string()
    } else if nanos < 0 {
        "0s".to_string()
    } else {
        let secs = u64::try_from(secs).unwrap_or(u64::MAX);
        let sub = u32::try_from(nanos % 1_000_000_000).unwrap_or(0);
        human_duration(Duration::new(secs, sub))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_what_go_parses() {
        let ok = [
            ("0", Duration::ZERO),
            ("-0", Duration::ZERO),
            ("60s", Duration::from_secs(60)),
            ("+5s", Duration::from_secs(5)),
            ("1m30s", Duration::from_secs(90)),
            ("1h", Duration::from_secs(3600)),
            ("1.5h", Duration::from_secs(5400)),
            ("300ms", Duration::from_millis(300)),
            (".5s", Duration::from_millis(500)),
            ("1.s", Duration::from_secs(1)),
            ("10us", Duration::from_micros(10)),
            ("10µs", Duration::from_micros(10)),
            ("10μs", Duration::from_micros(10)),
            ("7ns", Duration::from_nanos(7)),
            ("2h45m10.5s", Duration::from_millis(9_910_500)),
            ("0s", Duration::ZERO),
        ];
        for (text, want) in ok {
            assert_eq!(parse(text), Ok(want), "{text}");
        }
    }

    #[test]
    fn refuses_what_go_refuses_with_its_message() {
        let bad = [
            ("", "time: invalid duration \"\""),
            ("s", "time: invalid duration \"s\""),
            (".s", "time: invalid duration \".s\""),
            ("30", "time: missing unit in duration \"30\""),
            ("1m30", "time: missing unit in duration \"1m30\""),
            ("1d", "time: unknown unit \"d\" in duration \"1d\""),
            ("5 s", "time: unknown unit \" s\" in duration \"5 s\""),
            ("-1s", "duration \"-1s\" is negative"),
            (
                "9999999999999h",
                "time: invalid duration \"9999999999999h\"",
            ),
        ];
        for (text, want) in bad {
            let got = parse(text).expect_err(text);
            assert_eq!(got.to_string(), want, "{text}");
        }
    }

    #[test]
    fn formats_as_go_does() {
        let cases = [
            (Duration::ZERO, "0s"),
            (Duration::from_secs(60), "1m0s"),
            (Duration::from_secs(90), "1m30s"),
            (Duration::from_secs(3600), "1h0m0s"),
            (Duration::from_millis(1500), "1.5s"),
            (Duration::from_millis(300), "300ms"),
            (Duration::from_micros(1500), "1.5ms"),
            (Duration::from_nanos(7), "7ns"),
            (Duration::from_secs(2), "2s"),
        ];
        for (d, want) in cases {
            assert_eq!(format(d), want);
        }
    }

    #[test]
    fn format_and_parse_agree() {
        for text in ["1m0s", "2h3m4.5s", "250ms", "3s"] {
            let d = parse(text).expect("parses");
            assert_eq!(format(d), text);
        }
    }

    #[test]
    fn human_duration_boundaries() {
        let h = 3600;
        let d = 24 * h;
        let cases: [(u64, &str); 22] = [
            (0, "0s"),
            (5, "5s"),
            (119, "119s"),
            (120, "2m"),
            (123, "2m3s"),
            (599, "9m59s"),
            (600, "10m"),
            (3 * h - 1, "179m"),
            (3 * h, "3h"),
            (3 * h + 30 * 60, "3h30m"),
            (8 * h - 1, "7h59m"),
            (8 * h, "8h"),
            (47 * h + 59 * 60, "47h"),
            (48 * h, "2d"),
            (49 * h, "2d1h"),
            (8 * d - 1, "7d23h"),
            (8 * d, "8d"),
            (4 * d, "4d"),
            (2 * 365 * d - 1, "729d"),
            (2 * 365 * d, "2y"),
            (2 * 365 * d + d, "2y1d"),
            (8 * 365 * d, "8y"),
        ];
        for (secs, want) in cases {
            assert_eq!(
                human_duration(Duration::from_secs(secs)),
                want,
                "secs {secs}"
            );
        }
        assert_eq!(human_duration(Duration::from_millis(1999)), "1s");
        assert_eq!(
            human_duration(Duration::MAX),
            format!("{}y", u64::MAX / 3600 / 24 / 365)
        );
    }

    #[test]
    fn since_reads_clock_skew_as_zero_and_the_far_future_as_invalid() {
        let now: jiff::Timestamp = "2026-01-01T00:00:10Z".parse().expect("time");
        let at = |s: &str| Some(s.parse::<jiff::Timestamp>().expect("time"));
        assert_eq!(since(None, now), "<unknown>");
        assert_eq!(since(at("2026-01-01T00:00:00Z"), now), "10s");
        assert_eq!(since(at("2026-01-01T00:00:10.5Z"), now), "0s");
        assert_eq!(since(at("2026-01-01T00:00:12Z"), now), "<invalid>");
    }
}
