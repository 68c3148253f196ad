//! `alluxio fuse` as a process: bad mount points, SIGTERM, and data written
//! through the mount read back with `alluxio fs cat` and from the UFS.
//! Needs root and /dev/fuse (a missing prerequisite fails under CI).

mod common;

use common::MasterProcess;
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

fn fuse_available() -> bool {
    // SAFETY: geteuid has no preconditions.
    if alluxio_testkit::running_as_root() && Path::new("/dev/fuse").exists() {
        return true;
    }
    alluxio_testkit::missing_prerequisite::<()>("root and /dev/fuse for FUSE mounts");
    false
}

fn is_mounted(point: &Path) -> bool {
    let point = point.canonicalize().unwrap();
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .any(|l| l.split(' ').nth(4) == point.to_str())
}

fn start_fuse(master: &MasterProcess, point: &Path, options: &str) -> Child {
    let child = master
        .command()
        .args(["--master", &master.address(), "fuse"])
        .arg(point)
        .args(["-o", options, "--web-port", "0"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !is_mounted(point) {
        assert!(Instant::now() < deadline, "never mounted");
        std::thread::sleep(Duration::from_millis(20));
    }
    child
}

#[test]
fn bad_mount_points_fail_with_a_clear_error() {
    if !fuse_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let master = MasterProcess::start(dir.path(), &[]);
    let missing = dir.path().join("missing");
    let err = master.fails(&["fuse", missing.to_str().unwrap(), "--web-port", "0"]);
    assert!(err.contains("does not exist"), "{err}");

    let file = dir.path().join("file");
    std::fs::write(&file, b"x").unwrap();
    let err = master.fails(&["fuse", file.to_str().unwrap(), "--web-port", "0"]);
    assert!(err.contains("not a directory"), "{err}");

    let err = master.fails(&["fuse", dir.path().to_str().unwrap(), "-o", "bogus"]);
    assert!(err.contains("unknown mount option \"bogus\""), "{err}");

    // A second mount on a mount point in use is refused.
    let point = dir.path().join("mnt");
    std::fs::create_dir(&point).unwrap();
    let mut first = start_fuse(&master, &point, "write_type=THROUGH");
    let err = master.fails(&["fuse", point.to_str().unwrap(), "--web-port", "0"]);
    assert!(err.contains("busy"), "{err}");
    alluxio_testkit::signal(first.id(), libc::SIGTERM);
    assert!(first.wait().unwrap().success());
}

#[test]
fn written_through_the_mount_read_with_fs_cat_and_unmounted_on_sigterm() {
    if !fuse_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let master = MasterProcess::start(dir.path(), &[]);
    let point = dir.path().join("mnt");
    std::fs::create_dir(&point).unwrap();
    let mut fuse = start_fuse(&master, &point, "write_type=THROUGH");

    std::fs::create_dir(point.join("out")).unwrap();
    let content: Vec<u8> = (0..3_000_000u32).map(|i| (i % 253) as u8).collect();
    std::fs::write(point.join("out/part-0"), &content).unwrap();
    assert_eq!(std::fs::read(point.join("out/part-0")).unwrap(), content);
    // The UFS has it as soon as the file is complete.
    let in_ufs = master.ufs.join("out/part-0");
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::fs::read(&in_ufs).ok().as_deref() != Some(&content[..]) {
        assert!(Instant::now() < deadline, "not in the UFS");
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = master.cli(&["fs", "cat", "/out/part-0"]);
    assert!(out.status.success());
    assert!(out.stdout == content, "fs cat returned other bytes");

    // SIGTERM: a clean unmount and exit status 0.
    alluxio_testkit::signal(fuse.id(), libc::SIGTERM);
    assert!(fuse.wait().unwrap().success());
    assert!(!is_mounted(&point));
    assert!(std::fs::read_dir(&point).unwrap().next().is_none());
}
