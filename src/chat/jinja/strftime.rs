//! `strftime_now(format)`: Python's `datetime.strftime` (glibc's conversions, C locale) on an
//! instant, in UTC.

use std::fmt::Write as _;
use std::time::{SystemTime, UNIX_EPOCH};

const DAYS: [&str; 7] = [
    "Sunday",
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
];
const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

/// A broken-down UTC time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Tm {
    year: i64,
    /// 1..=12
    month: u32,
    /// 1..=31
    day: u32,
    hour: u32,
    minute: u32,
    second: u32,
    micros: u32,
    /// 0 = Sunday
    weekday: u32,
    /// 0-based day of the year
    yday: u32,
    /// Seconds since the epoch.
    epoch: i64,
}

impl Tm {
    fn at(t: SystemTime) -> Tm {
        let (secs, micros) = match t.duration_since(UNIX_EPOCH) {
            Ok(d) => (d.as_secs().min(i64::MAX as u64) as i64, d.subsec_micros()),
            Err(e) => {
                // Before 1970: floor to the second below.
                let d = e.duration();
                let s = -(d.as_secs().min(i64::MAX as u64 / 2) as i64);
                match d.subsec_micros() {
                    0 => (s, 0),
                    m => (s - 1, 1_000_000 - m),
                }
            }
        };
        let days = secs.div_euclid(86_400);
        let rem = secs.rem_euclid(86_400) as u32;
        let (year, month, day) = civil_from_days(days);
        let yday = (days - days_from_civil(year, 1, 1)) as u32;
        Tm {
            year,
            month,
            day,
            hour: rem / 3600,
            minute: rem / 60 % 60,
            second: rem % 60,
            micros,
            weekday: (days + 4).rem_euclid(7) as u32,
            yday,
            epoch: secs,
        }
    }
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian (Howard Hinnant's
/// `civil_from_days`).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z.saturating_add(719_468);
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// The inverse of [`civil_from_days`].
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// ISO 8601 week-based year and week number.
fn iso_week(tm: &Tm) -> (i64, u32) {
    let wday = (tm.weekday + 6) % 7; // Monday = 0
    let yday = i64::from(tm.yday);
    let week = (yday - i64::from(wday) + 10) / 7;
    let weeks_in = |year: i64| {
        let jan1 = (days_from_civil(year, 1, 1) + 4).rem_euclid(7); // 0 = Sunday
        let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
        if jan1 == 4 || (leap && jan1 == 3) {
            53
        } else {
            52
        }
    };
    if week < 1 {
        (tm.year - 1, weeks_in(tm.year - 1))
    } else if week > i64::from(weeks_in(tm.year)) {
        (tm.year + 1, 1)
    } else {
        (tm.year, week as u32)
    }
}

/// Formats `t` like `datetime.strftime(format)` on Linux: the C-locale conversions of glibc,
/// Python's `%f`, `%z` = `+0000` and `%Z` = `UTC`, glibc's `-` (no padding) and `_` (space
/// padding) flags; an unknown conversion is copied as it is.
pub(super) fn format(t: SystemTime, format: &str) -> String {
    let tm = Tm::at(t);
    let mut out = String::with_capacity(format.len() + 16);
    let mut chars = format.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let flag = match chars.peek() {
            Some(&f @ ('-' | '_' | '0')) => {
                chars.next();
                Some(f)
            }
            _ => None,
        };
        let Some(conv) = chars.next() else {
            out.push('%');
            if let Some(f) = flag {
                out.push(f);
            }
            break;
        };
        // A number padded to `width` with `pad`, unless a flag says otherwise.
        let num = |out: &mut String, n: i64, width: usize, pad: char| {
            let pad = match flag {
                Some('-') => return write!(out, "{n}"),
                Some('_') => ' ',
                Some('0') => '0',
                _ => pad,
            };
            if pad == '0' {
                write!(out, "{n:0width$}")
            } else {
                write!(out, "{n:width$}")
            }
        };
        let hour12 = match tm.hour % 12 {
            0 => 12,
            h => h,
        };
        let day_name = DAYS[tm.weekday as usize % 7];
        let month_name = MONTHS[(tm.month as usize + 11) % 12];
        let _ = match conv {
            'a' => write!(out, "{}", &day_name[..3]),
            'A' => write!(out, "{day_name}"),
            'b' | 'h' => write!(out, "{}", &month_name[..3]),
            'B' => write!(out, "{month_name}"),
            'c' => write!(
                out,
                "{} {} {:2} {:02}:{:02}:{:02} {}",
                &day_name[..3],
                &month_name[..3],
                tm.day,
                tm.hour,
                tm.minute,
                tm.second,
                tm.year
            ),
            'C' => num(&mut out, tm.year.div_euclid(100), 2, '0'),
            'd' => num(&mut out, tm.day.into(), 2, '0'),
            'D' => write!(
                out,
                "{:02}/{:02}/{:02}",
                tm.month,
                tm.day,
                tm.year.rem_euclid(100)
            ),
            'e' => num(&mut out, tm.day.into(), 2, ' '),
            'f' => write!(out, "{:06}", tm.micros),
            'F' => write!(out, "{}-{:02}-{:02}", tm.year, tm.month, tm.day),
            'g' => num(&mut out, iso_week(&tm).0.rem_euclid(100), 2, '0'),
            'G' => write!(out, "{}", iso_week(&tm).0),
            'H' => num(&mut out, tm.hour.into(), 2, '0'),
            'I' => num(&mut out, hour12.into(), 2, '0'),
            'j' => num(&mut out, i64::from(tm.yday) + 1, 3, '0'),
            'k' => num(&mut out, tm.hour.into(), 2, ' '),
            'l' => num(&mut out, hour12.into(), 2, ' '),
            'm' => num(&mut out, tm.month.into(), 2, '0'),
            'M' => num(&mut out, tm.minute.into(), 2, '0'),
            'n' => writeln!(out),
            'p' => write!(out, "{}", if tm.hour < 12 { "AM" } else { "PM" }),
            'P' => write!(out, "{}", if tm.hour < 12 { "am" } else { "pm" }),
            'r' => write!(
                out,
                "{:02}:{:02}:{:02} {}",
                hour12,
                tm.minute,
                tm.second,
                if tm.hour < 12 { "AM" } else { "PM" }
            ),
            'R' => write!(out, "{:02}:{:02}", tm.hour, tm.minute),
            's' => write!(out, "{}", tm.epoch),
            'S' => num(&mut out, tm.second.into(), 2, '0'),
            't' => write!(out, "\t"),
            'T' | 'X' => write!(out, "{:02}:{:02}:{:02}", tm.hour, tm.minute, tm.second),
            'u' => write!(out, "{}", (tm.weekday + 6) % 7 + 1),
            'U' => num(&mut out, i64::from((tm.yday + 7 - tm.weekday) / 7), 2, '0'),
            'V' => num(&mut out, iso_week(&tm).1.into(), 2, '0'),
            'w' => write!(out, "{}", tm.weekday),
            'W' => num(
                &mut out,
                i64::from((tm.yday + 7 - (tm.weekday + 6) % 7) / 7),
                2,
                '0',
            ),
            'x' => write!(
                out,
                "{:02}/{:02}/{:02}",
                tm.month,
                tm.day,
                tm.year.rem_euclid(100)
            ),
            'y' => num(&mut out, tm.year.rem_euclid(100), 2, '0'),
            'Y' => write!(out, "{}", tm.year),
            'z' => write!(out, "+0000"),
            'Z' => write!(out, "UTC"),
            '%' => write!(out, "%"),
            other => {
                out.push('%');
                if let Some(f) = flag {
                    out.push(f);
                }
                write!(out, "{other}")
            }
        };
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn civil_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
        assert_eq!(civil_from_days(19_930), (2024, 7, 26));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        for d in [-800_000, -1, 0, 59, 11_016, 19_930, 2_000_000] {
            let (y, m, day) = civil_from_days(d);
            assert_eq!(days_from_civil(y, m, day), d);
        }
    }

    #[test]
    fn formats_like_python() {
        // 2024-07-26 12:34:56 UTC, a Friday.
        let t = at(1_721_997_296);
        assert_eq!(format(t, "%d %b %Y"), "26 Jul 2024");
        assert_eq!(format(t, "%Y-%m-%d %H:%M:%S"), "2024-07-26 12:34:56");
        assert_eq!(
            format(t, "%A %B %j %I%p %-d %e %u %w %%"),
            "Friday July 208 12PM 26 26 5 5 %"
        );
        assert_eq!(
            format(t, "%c|%D|%G-W%V|%U|%W|%z %Z|%Q"),
            "Fri Jul 26 12:34:56 2024|07/26/24|2024-W30|29|30|+0000 UTC|%Q"
        );
        assert_eq!(format(at(0), "%F %T %a"), "1970-01-01 00:00:00 Thu");
        assert_eq!(
            format(UNIX_EPOCH - Duration::from_secs(1), "%F %T"),
            "1969-12-31 23:59:59"
        );
        assert_eq!(format(t, "trailing %"), "trailing %");
        // Far future and far past do not panic.
        for t in [
            UNIX_EPOCH.checked_add(Duration::from_secs(1 << 62)),
            UNIX_EPOCH.checked_sub(Duration::from_secs(1 << 62)),
        ] {
            let _ = format(t.expect("representable"), "%c %G %V %j %s");
        }
    }
}
