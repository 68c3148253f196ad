//! The FUSE daemon's Prometheus metrics (served on its HTTP port).
//!
//! Reads through passthrough never reach the daemon, so they cannot be
//! counted byte by byte: `passthrough_opened_bytes` counts the size of
//! every file opened that way, next to the bytes the daemon served itself.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OpLabels {
    pub op: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ErrorLabels {
    pub op: &'static str,
    pub errno: String,
}

#[derive(Default)]
pub struct FuseMetrics {
    pub operations: Family<OpLabels, Counter>,
    pub errors: Family<ErrorLabels, Counter>,
    pub bytes_read_daemon: Counter,
    pub bytes_written: Counter,
    pub passthrough_opens: Counter,
    pub passthrough_opened_bytes: Counter,
    pub passthrough_fallbacks: Counter,
    /// Opens passed through to the UFS object (a local-directory mount),
    /// and bytes the local worker cached after those reads.
    pub ufs_passthrough_opens: Counter,
    pub cached_behind_bytes: Counter,
    pub open_handles: Gauge,
    /// Lookups, getattrs and opens answered from the metadata cache.
    pub metadata_cache_hits: Counter,
    /// Small files handed to the prefetcher, and opens that found theirs.
    pub prefetched_files: Counter,
    pub prefetch_hits: Counter,
}

impl FuseMetrics {
    pub fn register(registry: &mut Registry) -> Self {
        let m = FuseMetrics::default();
        registry.register(
            "alluxio_fuse_operations",
            "FUSE requests by operation",
            m.operations.clone(),
        );
        registry.register(
            "alluxio_fuse_metadata_cache_hits",
            "Lookups, getattrs and opens answered from metadata the daemon holds, without the master",
            m.metadata_cache_hits.clone(),
        );
        registry.register(
            "alluxio_fuse_ufs_passthrough_opens",
            "Opens served by kernel passthrough to the file's UFS object (a local-directory mount)",
            m.ufs_passthrough_opens.clone(),
        );
        registry.register(
            "alluxio_fuse_cached_behind_bytes",
            "Bytes the local worker cached after files were read by passthrough from the UFS",
            m.cached_behind_bytes.clone(),
        );
        registry.register(
            "alluxio_fuse_prefetched_files",
            "Small files fetched ahead of a reader going through a directory in order",
            m.prefetched_files.clone(),
        );
        registry.register(
            "alluxio_fuse_prefetch_hits",
            "Opens whose file had been fetched ahead",
            m.prefetch_hits.clone(),
        );
        registry.register(
            "alluxio_fuse_errors",
            "FUSE requests answered with an error, by operation and errno",
            m.errors.clone(),
        );
        registry.register(
            "alluxio_fuse_bytes_read_daemon",
            "Bytes read through the daemon (not passthrough)",
            m.bytes_read_daemon.clone(),
        );
        registry.register(
            "alluxio_fuse_bytes_written",
            "Bytes written through the mount",
            m.bytes_written.clone(),
        );
        registry.register(
            "alluxio_fuse_passthrough_opens",
            "Opens served by kernel passthrough to the local worker's copy",
            m.passthrough_opens.clone(),
        );
        registry.register(
            "alluxio_fuse_passthrough_opened_bytes",
            "Size of the files opened with passthrough (the kernel reads them directly)",
            m.passthrough_opened_bytes.clone(),
        );
        registry.register(
            "alluxio_fuse_passthrough_fallbacks",
            "Opens of locally cached files that could not use passthrough",
            m.passthrough_fallbacks.clone(),
        );
        registry.register(
            "alluxio_fuse_open_handles",
            "Open file and directory handles",
            m.open_handles.clone(),
        );
        m
    }

    pub fn count(&self, op: &'static str) {
        self.operations.get_or_create(&OpLabels { op }).inc();
    }

    pub fn error(&self, op: &'static str, errno: fuser::Errno) {
        let errno = errno_name(errno.code());
        self.errors.get_or_create(&ErrorLabels { op, errno }).inc();
    }
}

fn errno_name(code: i32) -> String {
    let name = match code {
        libc::EPERM => "EPERM",
        libc::ENOENT => "ENOENT",
        libc::EIO => "EIO",
        libc::EBADF => "EBADF",
        libc::EACCES => "EACCES",
        libc::EBUSY => "EBUSY",
        libc::EEXIST => "EEXIST",
        libc::EXDEV => "EXDEV",
        libc::ENOTDIR => "ENOTDIR",
        libc::EISDIR => "EISDIR",
        libc::EINVAL => "EINVAL",
        libc::ENOSPC => "ENOSPC",
        libc::EROFS => "EROFS",
        libc::ENOTEMPTY => "ENOTEMPTY",
        libc::ENOTSUP => "ENOTSUP",
        libc::ENODATA => "ENODATA",
        libc::ENOSYS => "ENOSYS",
        _ => return code.to_string(),
    };
    name.to_string()
}
