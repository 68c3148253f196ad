//! Helpers of the FUSE tests: a real mount of an in-process cluster that
//! is unmounted when dropped, and blocking calls off the runtime that
//! serves it.
#![allow(dead_code)] // each test file uses its own share of these

use alluxio_fuse::metrics::OpLabels;
use alluxio_fuse::{FuseMetrics, FuseMount, FuseOptions};
use alluxio_testkit::cluster::Cluster;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub fn fuse_available() -> bool {
    let root = alluxio_testkit::running_as_root();
    if root && Path::new("/dev/fuse").exists() {
        return true;
    }
    alluxio_testkit::missing_prerequisite::<()>("root and /dev/fuse for FUSE mounts");
    false
}

pub struct Mounted {
    mount: Option<FuseMount>,
    pub point: PathBuf,
    pub metrics: Arc<FuseMetrics>,
    _dir: tempfile::TempDir,
}

impl Mounted {
    pub fn path(&self, rel: &str) -> PathBuf {
        self.point.join(rel)
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        if let Some(m) = self.mount.take() {
            let _ = m.unmount();
        }
    }
}

pub async fn mount(c: &Cluster, alluxio_path: &str, options: &[&str]) -> Mounted {
    let dir = tempfile::tempdir().unwrap();
    let point = dir.path().join("mnt");
    std::fs::create_dir(&point).unwrap();
    let options = FuseOptions::parse(options).unwrap();
    let metrics = Arc::new(FuseMetrics::default());
    let mount = alluxio_fuse::mount(c.fs.clone(), alluxio_path, &point, options, metrics.clone())
        .await
        .unwrap();
    Mounted {
        mount: Some(mount),
        point,
        metrics,
        _dir: dir,
    }
}

/// Blocking file-system calls run off the runtime that serves the mount.
pub async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.unwrap()
}

pub fn errno<T>(r: std::io::Result<T>) -> i32 {
    match r {
        Ok(_) => 0,
        Err(e) => e.raw_os_error().unwrap_or(-1),
    }
}

impl Mounted {
    /// How many `op` requests (lookup, getattr, open, ...) the kernel sent.
    pub fn requests(&self, op: &'static str) -> u64 {
        self.metrics
            .operations
            .get_or_create(&OpLabels { op })
            .get()
    }
}
