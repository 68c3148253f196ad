//! `alluxio fuse` options: `-o name[=value],...`, parsed and checked before
//! anything is mounted. Options the kernel understands are passed to it;
//! the rest configure the daemon. An unknown option is an error naming it.

use alluxio_client::{parse_read_type, parse_write_type};
use alluxio_common::units::SyncInterval;
use alluxio_proto::grpc::{ReadType, WriteType};
use std::time::Duration;

#[derive(Clone, Debug, PartialEq)]
pub struct FuseOptions {
    /// Let users other than the one who mounted use the mount.
    pub allow_other: bool,
    /// Refuse every change (EROFS).
    pub read_only: bool,
    /// How long the kernel may cache attributes and name lookups.
    pub attr_timeout: Duration,
    pub entry_timeout: Duration,
    /// How long the daemon answers for a completed file from metadata it
    /// holds (see `metadata_cache`); `None`: `attr_timeout`.
    pub metadata_cache_ttl: Option<Duration>,
    /// `None`: the client configuration's read and write types.
    pub read_type: Option<ReadType>,
    pub write_type: Option<WriteType>,
    /// Hand locally cached files to the kernel (Linux 6.9+).
    pub passthrough: bool,
    /// With `passthrough`: hand the kernel the UFS file itself when the
    /// file is not cached here and its mount is a directory this host
    /// sees; the local worker caches the file after it is closed.
    pub ufs_passthrough: bool,
    /// Metadata sync interval for lookups and listings (ms; -1 never,
    /// 0 always); `None`: the master's default.
    pub sync_interval_ms: Option<i64>,
    /// How long an operation retries an unreachable master or worker
    /// before failing with EIO.
    pub retry_timeout: Duration,
    /// Threads reading requests from /dev/fuse.
    pub threads: usize,
    /// Kernel read-ahead of the mount in KiB (its bdi's read_ahead_kb):
    /// large sequential reads arrive as 1 MiB requests instead of 128 KiB.
    pub read_ahead_kb: u32,
    /// Let the kernel check permission bits (`default_permissions`).
    pub default_permissions: bool,
    /// Small files fetched ahead of a reader going through a directory in
    /// order; `None`: [`READ_ONLY_PREFETCH_FILES`] on a read-only mount,
    /// off otherwise.
    pub prefetch_files: Option<usize>,
    /// Files bigger than this are not fetched ahead whole.
    pub prefetch_file_max: u64,
    /// Read-only mounts: the kernel opens and closes files without asking
    /// the daemon (FUSE "no open" support), so that reading a small file
    /// in the page cache costs no round trip; files are then never handed
    /// to passthrough.
    pub no_open: bool,
    /// Kernel options passed through unchanged (noatime, nodev, ...).
    pub kernel: Vec<String>,
}

impl Default for FuseOptions {
    fn default() -> Self {
        FuseOptions {
            allow_other: false,
            read_only: false,
            attr_timeout: Duration::from_secs(1),
            entry_timeout: Duration::from_secs(1),
            metadata_cache_ttl: None,
            read_type: None,
            write_type: None,
            passthrough: true,
            ufs_passthrough: true,
            sync_interval_ms: None,
            retry_timeout: Duration::from_secs(30),
            threads: 2,
            read_ahead_kb: 8192,
            default_permissions: true,
            prefetch_files: None,
            prefetch_file_max: 4 << 20,
            no_open: false,
            kernel: Vec::new(),
        }
    }
}

/// The metadata cache's default TTL on a read-only mount.
pub const READ_ONLY_METADATA_TTL: Duration = Duration::from_secs(60);

/// Files fetched ahead by default on a read-only mount (a dataset being
/// read), as many at once.
pub const READ_ONLY_PREFETCH_FILES: usize = 16;

/// Kernel mount options accepted as they are.
const KERNEL_FLAGS: &[&str] = &[
    "noatime", "atime", "nodev", "dev", "nosuid", "suid", "noexec", "exec", "sync", "async",
    "dirsync",
];

impl FuseOptions {
    /// How long completed files' metadata is answered from the daemon:
    /// `metadata_cache_ttl`, else a minute on a read-only mount (a dataset
    /// being read), else `attr_timeout`.
    pub fn metadata_ttl(&self) -> Duration {
        match self.metadata_cache_ttl {
            Some(ttl) => ttl,
            None if self.read_only => READ_ONLY_METADATA_TTL.max(self.attr_timeout),
            None => self.attr_timeout,
        }
    }

    /// How many small files are fetched ahead of an in-order reader.
    pub fn files_ahead(&self) -> usize {
        match self.prefetch_files {
            Some(n) => n,
            None if self.read_only => READ_ONLY_PREFETCH_FILES,
            None => 0,
        }
    }

    /// Parses the values of every `-o` flag (each may hold a comma list).
    pub fn parse<S: AsRef<str>>(groups: &[S]) -> Result<FuseOptions, String> {
        let mut o = FuseOptions::default();
        for group in groups {
            for item in group.as_ref().split(',').filter(|s| !s.is_empty()) {
                let (name, value) = match item.split_once('=') {
                    Some((n, v)) => (n, Some(v)),
                    None => (item, None),
                };
                o.apply(name, value)?;
            }
        }
        if o.no_open && !o.read_only {
            return Err("option no_open needs a read-only mount (ro): writes need opens".into());
        }
        if o.no_open && !o.default_permissions {
            return Err("option no_open needs default_permissions: without opens, only the kernel checks who may read cached pages".into());
        }
        Ok(o)
    }

    fn apply(&mut self, name: &str, value: Option<&str>) -> Result<(), String> {
        let need = || value.ok_or_else(|| format!("option {name} needs a value ({name}=...)"));
        match name {
            "allow_other" => self.allow_other = true,
            "ro" => self.read_only = true,
            "rw" => self.read_only = false,
            "attr_timeout" => self.attr_timeout = seconds(name, need()?)?,
            "entry_timeout" => self.entry_timeout = seconds(name, need()?)?,
            "metadata_cache_ttl" => self.metadata_cache_ttl = Some(seconds(name, need()?)?),
            "read_type" => {
                self.read_type = Some(parse_read_type(need()?).map_err(|e| e.to_string())?)
            }
            "write_type" => {
                self.write_type = Some(parse_write_type(need()?).map_err(|e| e.to_string())?)
            }
            "passthrough" => self.passthrough = true,
            "nopassthrough" => self.passthrough = false,
            "ufs_passthrough" => self.ufs_passthrough = true,
            "noufs_passthrough" => self.ufs_passthrough = false,
            "sync_interval" => {
                let v: SyncInterval = need()?
                    .parse()
                    .map_err(|e| format!("option sync_interval: {e}"))?;
                self.sync_interval_ms = Some(v.as_millis());
            }
            "retry_timeout" => self.retry_timeout = seconds(name, need()?)?,
            "threads" => {
                self.threads = need()?
                    .parse()
                    .ok()
                    .filter(|n| (1..=64).contains(n))
                    .ok_or_else(|| format!("option threads must be 1 to 64, not {value:?}"))?
            }
            "read_ahead_kb" => {
                self.read_ahead_kb = need()?
                    .parse()
                    .map_err(|_| format!("option read_ahead_kb must be a number, not {value:?}"))?
            }
            "prefetch_files" => {
                self.prefetch_files = Some(
                    need()?
                        .parse()
                        .ok()
                        .filter(|n| *n <= 256)
                        .ok_or_else(|| {
                            format!("option prefetch_files must be 0 to 256, not {value:?}")
                        })?,
                )
            }
            "prefetch_file_max" => {
                self.prefetch_file_max = alluxio_common::units::ByteSize::parse(need()?)
                    .ok()
                    .map(|b| b.0)
                    .filter(|b| *b <= 64 << 20)
                    .ok_or_else(|| {
                        format!("option prefetch_file_max must be a size up to 64MiB, not {value:?}")
                    })?
            }
            "no_open" => self.no_open = true,
            "default_permissions" => self.default_permissions = true,
            "no_default_permissions" => self.default_permissions = false,
            flag if KERNEL_FLAGS.contains(&flag) && value.is_none() => {
                self.kernel.push(flag.to_string())
            }
            _ => {
                return Err(format!(
                    "unknown mount option {name:?} (known: allow_other, ro, rw, attr_timeout, \
                     entry_timeout, metadata_cache_ttl, read_type, write_type, passthrough, nopassthrough, \
                     ufs_passthrough, noufs_passthrough, sync_interval, retry_timeout, threads, \
                     read_ahead_kb, prefetch_files, prefetch_file_max, no_open, default_permissions, no_default_permissions, {})",
                    KERNEL_FLAGS.join(", ")
                ))
            }
        }
        Ok(())
    }
}

fn seconds(name: &str, raw: &str) -> Result<Duration, String> {
    raw.parse::<f64>()
        .ok()
        .filter(|s| s.is_finite() && *s >= 0.0)
        .map(Duration::from_secs_f64)
        .ok_or_else(|| format!("option {name} must be a number of seconds, not {raw:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_without_options() {
        let empty: [&str; 0] = [];
        assert_eq!(FuseOptions::parse(&empty).unwrap(), FuseOptions::default());
    }

    #[test]
    fn parses_comma_lists_across_flags() {
        let o = FuseOptions::parse(&[
            "ro,allow_other,attr_timeout=2.5",
            "read_type=no_cache,write_type=MUST_CACHE,nopassthrough,noatime,sync_interval=0",
        ])
        .unwrap();
        assert!(o.read_only && o.allow_other && !o.passthrough);
        assert_eq!(o.attr_timeout, Duration::from_millis(2500));
        assert_eq!(
            o.metadata_ttl(),
            READ_ONLY_METADATA_TTL,
            "read-only: a minute"
        );
        let rw = FuseOptions::parse(&["attr_timeout=3"]).unwrap();
        assert_eq!(rw.metadata_ttl(), Duration::from_secs(3));
        let set = FuseOptions::parse(&["ro,metadata_cache_ttl=0"]).unwrap();
        assert_eq!(set.metadata_ttl(), Duration::ZERO);
        assert_eq!(o.files_ahead(), READ_ONLY_PREFETCH_FILES, "read-only: on");
        assert_eq!(rw.files_ahead(), 0, "off where files are written");
        let p = FuseOptions::parse(&["prefetch_files=4,prefetch_file_max=1MiB"]).unwrap();
        assert_eq!((p.files_ahead(), p.prefetch_file_max), (4, 1 << 20));
        assert!(FuseOptions::parse(&["ro,no_open"]).unwrap().no_open);
        assert_eq!(o.read_type, Some(ReadType::NoCache));
        assert_eq!(o.write_type, Some(WriteType::MustCache));
        assert_eq!(o.sync_interval_ms, Some(0));
        assert_eq!(o.kernel, vec!["noatime".to_string()]);
    }

    #[test]
    fn rejects_bad_options_with_their_name() {
        for (bad, needle) in [
            ("bogus", "unknown mount option \"bogus\""),
            ("attr_timeout=soon", "attr_timeout"),
            ("attr_timeout", "needs a value"),
            ("read_type=FAST", "unknown read type"),
            ("threads=0", "threads"),
            ("prefetch_files=1000", "prefetch_files"),
            ("no_open", "needs a read-only mount"),
            (
                "ro,no_open,no_default_permissions",
                "needs default_permissions",
            ),
            ("prefetch_file_max=1GiB", "prefetch_file_max"),
            ("noatime=1", "unknown mount option \"noatime\""),
        ] {
            let err = FuseOptions::parse(&[bad]).unwrap_err();
            assert!(err.contains(needle), "{bad}: {err}");
        }
    }
}
