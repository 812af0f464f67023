//! Wall-clock time as Ganeti stores it (float seconds since the epoch) and
//! the printed forms our commands and logs use.
//!
//! Everything is printed in UTC: the static binary carries no time-zone
//! database, and appliance hosts commonly run in UTC. (Ganeti prints local
//! time.)

use std::time::{SystemTime, UNIX_EPOCH};

/// Seconds since the epoch, with fractions (Ganeti's `time.time()`).
pub fn now_secs() -> f64 {
    secs_of(SystemTime::now())
}

/// Seconds since the epoch of `t` (0 for times before the epoch).
pub fn secs_of(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// A UTC calendar time broken into its fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UtcTime {
    /// Year (proleptic Gregorian).
    pub year: i64,
    /// Month, 1–12.
    pub month: u32,
    /// Day of the month, 1–31.
    pub day: u32,
    /// Hour, 0–23.
    pub hour: u32,
    /// Minute, 0–59.
    pub minute: u32,
    /// Second, 0–59.
    pub second: u32,
    /// Milliseconds, 0–999.
    pub millis: u32,
}

impl UtcTime {
    /// Breaks down `secs` since the epoch.
    pub fn from_secs(secs: f64) -> UtcTime {
        // Whole milliseconds first, so 0.123 s is 123 ms despite binary floats.
        #[allow(clippy::cast_possible_truncation)] // timestamps fit in i64 milliseconds
        let total_ms = (secs * 1000.0).round() as i64;
        let whole = total_ms.div_euclid(1000);
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)] // 0..=999
        let millis = total_ms.rem_euclid(1000) as u32;
        let (year, month, day) = civil_from_days(whole.div_euclid(86_400));
        let rem = whole.rem_euclid(86_400);
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)] // < 86400
        let rem = rem as u32;
        UtcTime {
            year,
            month,
            day,
            hour: rem / 3600,
            minute: rem % 3600 / 60,
            second: rem % 60,
            millis,
        }
    }

    fn date(&self) -> String {
        format!("{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }
}

/// `YYYY-MM-DD HH:MM:SS` (Ganeti's `FormatTime`), in UTC.
pub fn format_local(secs: f64) -> String {
    let t = UtcTime::from_secs(secs);
    format!("{} {:02}:{:02}:{:02}", t.date(), t.hour, t.minute, t.second)
}

/// Log-line timestamp `YYYY-MM-DD HH:MM:SS,mmm` (Python logging's `asctime`), in UTC.
pub fn format_log_stamp(secs: f64) -> String {
    let t = UtcTime::from_secs(secs);
    format!(
        "{} {:02}:{:02}:{:02},{:03}",
        t.date(),
        t.hour,
        t.minute,
        t.second,
        t.millis
    )
}

/// `YYYY-MM-DD_HH_MM_SS` for file names (no colons, so shells and tools do
/// not split the name), in UTC.
pub fn format_file_stamp(secs: f64) -> String {
    let t = UtcTime::from_secs(secs);
    format!("{}_{:02}_{:02}_{:02}", t.date(), t.hour, t.minute, t.second)
}

/// `Wed Nov 18 11:06:40 2026` (C's `ctime`, as Ganeti prints job log lines), in UTC.
pub fn format_ctime(secs: f64) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let t = UtcTime::from_secs(secs);
    #[allow(clippy::cast_possible_truncation)] // whole seconds fit in i64
    let days = (secs.floor() as i64).div_euclid(86_400);
    let weekday = DAYS[usize::try_from(days.rem_euclid(7)).unwrap_or(0)];
    let month = MONTHS[usize::try_from(t.month.saturating_sub(1))
        .unwrap_or(0)
        .min(11)];
    format!(
        "{weekday} {month} {:>2} {:02}:{:02}:{:02} {}",
        t.day, t.hour, t.minute, t.second, t.year
    )
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
        assert_eq!(
            format_file_stamp(951_782_400.0 + 3723.0),
            "2000-02-29_01_02_03"
        );
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
    }
}
