//! Wall-clock time as Ganeti stores it (float seconds since the epoch) and
//! as our commands print it.

use std::time::{SystemTime, UNIX_EPOCH};

/// Seconds since the epoch, with fractions (Ganeti's `time.time()`).
pub fn now_secs() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// Formats a timestamp as `YYYY-MM-DD HH:MM:SS` (Ganeti's `FormatTime`).
///
/// Printed in UTC: the static binary carries no time-zone database, and
/// appliance hosts commonly run in UTC.
pub fn format_local(secs: f64) -> String {
    let (date, time) = split(secs);
    format!("{date} {time}")
}

/// `(YYYY-MM-DD, HH:MM:SS)` in UTC.
fn split(secs: f64) -> (String, String) {
    #[allow(clippy::cast_possible_truncation)] // timestamps fit in i64 seconds
    let s = secs.floor() as i64;
    let days = s.div_euclid(86_400);
    let rem = s.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    (
        format!("{y:04}-{m:02}-{d:02}"),
        format!("{:02}:{:02}:{:02}", rem / 3600, (rem % 3600) / 60, rem % 60),
    )
}

/// Log-line timestamp `YYYY-MM-DD HH:MM:SS,mmm` (UTC).
pub fn format_log_stamp(secs: f64) -> String {
    let (date, time) = split(secs);
    #[allow(clippy::cast_possible_truncation)] // 0..=999
    let millis = ((secs - secs.floor()) * 1000.0) as u32;
    format!("{date} {time},{:03}", millis.min(999))
}

/// Days since 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)] // 1..=31, 1..=12
    (if m <= 2 { y + 1 } else { y }, m as u32, d as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_known_instants() {
        assert_eq!(format_local(0.0), "1970-01-01 00:00:00");
        assert_eq!(format_local(1_795_000_000.0), "2026-11-18 11:06:40");
        assert_eq!(format_log_stamp(951_782_400.25), "2000-02-29 00:00:00,250");
    }
}
