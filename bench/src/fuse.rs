//! FUSE benchmarks: a warm sequential read of a cached 1 GiB file through
//! the mount (with passthrough, and through the daemon) vs `dd` of a plain
//! file in the page cache. Cold reads and small files through FUSE are in
//! `data_path.rs` and `small_files.rs`; this module has their shared
//! helpers.

use crate::data::{mb_s, time_command, Cluster};
use crate::report::{write, Bar};
use alluxio_fuse::{FuseMetrics, FuseMount, FuseOptions};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

pub(crate) async fn mount_at(
    c: &Cluster,
    dir: &Path,
    name: &str,
    options: &[&str],
) -> (FuseMount, PathBuf) {
    let point = dir.join(name);
    std::fs::create_dir_all(&point).expect("mount point");
    let options = FuseOptions::parse(options).expect("options");
    let mount = alluxio_fuse::mount(
        c.fs.clone(),
        "/",
        &point,
        options,
        Arc::new(FuseMetrics::default()),
    )
    .await
    .expect("mount");
    (mount, point)
}

pub(crate) fn dd(file: &Path) -> Command {
    let mut cmd = Command::new("dd");
    cmd.arg(format!("if={}", file.display()))
        .args(["of=/dev/null", "bs=1M", "status=none"]);
    cmd
}

pub(crate) async fn timed(mut cmd: Command) -> f64 {
    tokio::task::spawn_blocking(move || time_command(&mut cmd))
        .await
        .expect("command")
}

fn best(v: &[f64]) -> f64 {
    v.iter().cloned().fold(f64::MAX, f64::min)
}

pub(crate) fn unmount(m: FuseMount) {
    if let Err(e) = m.unmount() {
        eprintln!("unmount: {e}");
    }
}

/// Warm sequential reads of a cached file through the mount vs the page
/// cache.
pub async fn warm_read(out: &Path, size: u64) {
    let dir = tempfile::tempdir().expect("tempdir");
    let (plain, c) = crate::data::plain_file_and_cluster(dir.path(), size).await;
    let (pt, pt_point) = mount_at(&c, dir.path(), "passthrough", &[]).await;
    let (daemon, daemon_point) = mount_at(&c, dir.path(), "daemon", &["nopassthrough"]).await;
    let (pt_file, daemon_file) = (pt_point.join("data.bin"), daemon_point.join("data.bin"));
    // First reads: the cache fills from the UFS; the passthrough mount
    // checks the local copy's checksums once.
    timed(dd(&daemon_file)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    timed(dd(&pt_file)).await;
    timed(dd(&plain)).await;
    let (mut p, mut d, mut page) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..3 {
        p.push(timed(dd(&pt_file)).await);
        page.push(timed(dd(&plain)).await);
        // Through the daemon, without the kernel's copy of the pages.
        drop_page_cache(&daemon_file);
        d.push(timed(dd(&daemon_file)).await);
    }
    let passthrough_opens = pt.state.metrics.passthrough_opens.get();
    unmount(pt);
    unmount(daemon);
    c.worker.shutdown().await;
    c.master.shutdown().await;
    let (p_s, d_s, page_s) = (best(&p), best(&d), best(&page));
    write(
        out,
        "fuse_warm_read",
        "MiB/s",
        &[
            Bar {
                label: "FUSE, passthrough (dd bs=1M)".into(),
                value: mb_s(size, p_s),
            },
            Bar {
                label: "FUSE, through the daemon".into(),
                value: mb_s(size, d_s),
            },
            Bar {
                label: "plain file, page cache (dd)".into(),
                value: mb_s(size, page_s),
            },
        ],
        json!({
            "bytes": size,
            "runs_seconds": {"passthrough": p, "daemon": d, "page_cache": page},
            "passthrough_opens": passthrough_opens,
            "ratio_passthrough_vs_page_cache": page_s / p_s,
            "ratio_daemon_vs_page_cache": page_s / d_s,
            "target_ratio": 0.8,
            "meets_target": page_s / p_s >= 0.8,
            "note": "best of 3 alternating runs; the daemon runs drop the FUSE file's kernel page cache first (POSIX_FADV_DONTNEED) so the daemon really serves them",
        }),
    );
}

fn drop_page_cache(file: &Path) {
    if let Ok(f) = std::fs::File::open(file) {
        // SAFETY: advisory call on an open descriptor.
        unsafe {
            libc::posix_fadvise(
                std::os::fd::AsRawFd::as_raw_fd(&f),
                0,
                0,
                libc::POSIX_FADV_DONTNEED,
            );
        }
    }
}
