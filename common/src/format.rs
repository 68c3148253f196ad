//! Output formatting shared by the CLI and status pages: Alluxio-style
//! timestamps, byte counts and permission strings.

/// `MM-dd-yyyy HH:mm:ss:SSS` in UTC, the format of Alluxio's `ls`.
pub fn format_time_ms(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let millis = ms.rem_euclid(1000);
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{m:02}-{d:02}-{y:04} {:02}:{:02}:{:02}:{millis:03}",
        sod / 3600,
        (sod / 60) % 60,
        sod % 60
    )
}

/// Howard Hinnant's days-to-civil algorithm (proleptic Gregorian).
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// `1536` -> `1536B`, `1.50KB`, `64.00MB`, as Alluxio prints sizes.
pub fn format_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["KB", "MB", "GB", "TB", "PB"];
    if n < 1024 {
        return format!("{n}B");
    }
    let mut value = n as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.2}{}", UNITS[unit])
}

/// `drwxr-xr-x` style string from a directory flag and a mode.
pub fn format_mode(is_dir: bool, mode: u32) -> String {
    let mut s = String::with_capacity(10);
    s.push(if is_dir { 'd' } else { '-' });
    for shift in [6u32, 3, 0] {
        let bits = (mode >> shift) & 7;
        s.push(if bits & 4 != 0 { 'r' } else { '-' });
        s.push(if bits & 2 != 0 { 'w' } else { '-' });
        s.push(if bits & 1 != 0 { 'x' } else { '-' });
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_like_alluxio() {
        assert_eq!(format_time_ms(0), "01-01-1970 00:00:00:000");
        assert_eq!(format_time_ms(1_795_625_282_123), "11-25-2026 16:48:02:123");
        assert_eq!(format_bytes(1000), "1000B");
        assert_eq!(format_bytes(1536), "1.50KB");
        assert_eq!(format_bytes(64 << 20), "64.00MB");
        assert_eq!(format_mode(true, 0o755), "drwxr-xr-x");
        assert_eq!(format_mode(false, 0o640), "-rw-r-----");
    }
}
