//! Human-friendly quantities in configuration: byte sizes (`64MiB`, `1GB`,
//! `1048576`) and durations (`5min`, `300ms`), both accepted as YAML strings
//! or plain numbers.

use serde::{de, Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::time::Duration;

/// A number of bytes, parsed from `"64MiB"`, `"64MB"` (also binary, as in
/// Alluxio), `"512k"` or a plain integer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct ByteSize(pub u64);

impl ByteSize {
    /// A rate such as `200MiB/s` (or just `200MiB`): bytes per second,
    /// more than 0 (load jobs' `--bandwidth`, a `Load`'s `bandwidth`).
    pub fn parse_per_second(s: &str) -> Result<u64, String> {
        let bytes = ByteSize::parse(s.trim().trim_end_matches("/s"))?.0;
        if bytes == 0 {
            return Err("a bandwidth must be more than 0 bytes per second".to_string());
        }
        Ok(bytes)
    }

    pub fn parse(s: &str) -> Result<ByteSize, String> {
        let s = s.trim();
        let split = s
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(s.len());
        let (num, unit) = s.split_at(split);
        let num: f64 = num.parse().map_err(|_| {
            format!("invalid byte size {s:?}: expected a number and a unit like 64MiB")
        })?;
        let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
            "" | "b" => 1,
            "k" | "kb" | "kib" => 1 << 10,
            "m" | "mb" | "mib" => 1 << 20,
            "g" | "gb" | "gib" => 1 << 30,
            "t" | "tb" | "tib" => 1 << 40,
            other => return Err(format!("invalid byte size {s:?}: unknown unit {other:?}")),
        };
        Ok(ByteSize((num * mult as f64) as u64))
    }
}

impl fmt::Display for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let units = [
            (1u64 << 40, "TiB"),
            (1 << 30, "GiB"),
            (1 << 20, "MiB"),
            (1 << 10, "KiB"),
        ];
        for (size, name) in units {
            if self.0 >= size && self.0.is_multiple_of(size) {
                return write!(f, "{}{}", self.0 / size, name);
            }
        }
        write!(f, "{}", self.0)
    }
}

impl Serialize for ByteSize {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            N(u64),
            S(String),
        }
        match Raw::deserialize(d)? {
            Raw::N(n) => Ok(ByteSize(n)),
            Raw::S(s) => ByteSize::parse(&s).map_err(de::Error::custom),
        }
    }
}

/// A duration parsed by humantime (`"5min"`, `"250ms"`, `"1h 30m"`) or a
/// plain integer of milliseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConfigDuration(pub Duration);

impl Serialize for ConfigDuration {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&humantime::format_duration(self.0).to_string())
    }
}

impl<'de> Deserialize<'de> for ConfigDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            N(u64),
            S(String),
        }
        match Raw::deserialize(d)? {
            Raw::N(n) => Ok(ConfigDuration(Duration::from_millis(n))),
            Raw::S(s) => humantime::parse_duration(&s)
                .map(ConfigDuration)
                .map_err(|e| de::Error::custom(format!("invalid duration {s:?}: {e}"))),
        }
    }
}

/// Mount option with a mount's own metadata sync interval (read by the
/// master, ignored by UFS clients); the operator sets it from a Mount's
/// `syncInterval`.
pub const SYNC_INTERVAL_OPTION: &str = "sync_interval";

/// Metadata sync interval: `-1` never, `0` on every access, otherwise at most
/// once per interval. Written as an integer of milliseconds or a duration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SyncInterval(pub i64);

impl SyncInterval {
    pub const NEVER: SyncInterval = SyncInterval(-1);

    pub fn as_millis(self) -> i64 {
        self.0
    }
}

impl std::str::FromStr for SyncInterval {
    type Err = String;

    /// `-1`, `0`, a number of milliseconds, or a duration such as `30s`.
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim().parse::<i64>() {
            Ok(n) if n >= -1 => Ok(SyncInterval(n)),
            Ok(n) => Err(format!(
                "invalid sync interval {n}: use -1 (never), 0 (always) or a positive duration"
            )),
            Err(_) => humantime::parse_duration(s.trim())
                .map(|d| SyncInterval(d.as_millis() as i64))
                .map_err(|e| format!("invalid sync interval {s:?}: {e}")),
        }
    }
}

impl Serialize for SyncInterval {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_i64(self.0)
    }
}

impl<'de> Deserialize<'de> for SyncInterval {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            N(i64),
            S(String),
        }
        match Raw::deserialize(d)? {
            Raw::N(n) if n >= -1 => Ok(SyncInterval(n)),
            Raw::N(n) => Err(de::Error::custom(format!(
                "invalid sync interval {n}: use -1 (never), 0 (always) or a positive duration"
            ))),
            Raw::S(s) => s.parse().map_err(de::Error::custom),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_byte_sizes() {
        assert_eq!(ByteSize::parse("64MiB").unwrap().0, 64 << 20);
        assert_eq!(ByteSize::parse("64MB").unwrap().0, 64 << 20);
        assert_eq!(ByteSize::parse("1.5k").unwrap().0, 1536);
        assert_eq!(ByteSize::parse("42").unwrap().0, 42);
        assert!(ByteSize::parse("12 parsecs").is_err());
        assert_eq!(ByteSize(64 << 20).to_string(), "64MiB");
    }
}
