//! A small file system of a chosen size — a size-limited tmpfs the test
//! mounts itself (root only) — for what happens when a disk is full:
//! writes get a real ENOSPC from the kernel, not a simulated one.

use std::path::{Path, PathBuf};
use std::process::Command;

pub struct SmallDisk {
    path: PathBuf,
    _dir: tempfile::TempDir,
}

impl SmallDisk {
    /// A new empty file system of `bytes` bytes, unmounted when dropped.
    /// None (a skip locally, a failure under CI) when not root.
    pub fn mount(bytes: u64) -> Option<SmallDisk> {
        if !crate::running_as_root() {
            return crate::missing_prerequisite("root, to mount a size-limited tmpfs");
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("disk");
        std::fs::create_dir(&path).expect("mount point");
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={bytes},mode=0755")])
            .arg("tmpfs")
            .arg(&path)
            .status()
            .expect("mount(8)");
        assert!(status.success(), "mounting a {bytes}-byte tmpfs failed");
        Some(SmallDisk { path, _dir: dir })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Fills what is left of the disk with `name`; deleting it frees the
    /// space again.
    pub fn fill(&self, name: &str) -> PathBuf {
        use std::io::Write;
        let file = self.path.join(name);
        let mut f = std::fs::File::create(&file).expect("filler file");
        let chunk = vec![0u8; 64 << 10];
        while f.write_all(&chunk).is_ok() {}
        // The last partial chunk: byte by byte until nothing fits.
        while f.write_all(&[0]).is_ok() {}
        file
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.path).status();
    }
}
