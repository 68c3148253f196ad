//! Mount points as the kernel sees them (`/proc/self/mountinfo`), bind
//! mounts and unmounts, and whether a FUSE mount still has a daemon.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// One line of `/proc/self/mountinfo` that matters here.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MountEntry {
    pub mount_point: PathBuf,
    pub fs_type: String,
    pub source: String,
    pub read_only: bool,
    /// The per-mount options (`ro`, `nosuid`, `nodev`, ...).
    pub options: Vec<String>,
}

impl MountEntry {
    pub fn has_option(&self, option: &str) -> bool {
        self.options.iter().any(|o| o == option)
    }
}

/// Undoes the octal escapes mountinfo uses for spaces and the like.
fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' && i + 3 < bytes.len() {
            if let Ok(v) = u8::from_str_radix(&field[i + 1..i + 4], 8) {
                out.push(v);
                i += 4;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Parses mountinfo text.
pub fn parse_mountinfo(text: &str) -> Vec<MountEntry> {
    text.lines()
        .filter_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            let fields: Vec<&str> = left.split(' ').collect();
            let options = fields.get(5)?;
            let mut right = right.split(' ');
            let fs_type = right.next()?.to_string();
            let source = right.next().unwrap_or("").to_string();
            Some(MountEntry {
                mount_point: PathBuf::from(unescape(fields.get(4)?)),
                fs_type,
                source,
                read_only: options.split(',').any(|o| o == "ro"),
                options: options.split(',').map(str::to_string).collect(),
            })
        })
        .collect()
}

/// The topmost mount at exactly `path`, if any.
pub fn mount_at(path: &Path) -> Option<MountEntry> {
    let text = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    parse_mountinfo(&text)
        .into_iter()
        .rev()
        .find(|m| m.mount_point == path)
}

fn cstring(path: &Path) -> std::io::Result<CString> {
    CString::new(path.as_os_str().as_bytes())
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidInput, "NUL in path"))
}

fn check(rc: libc::c_int) -> std::io::Result<()> {
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Bind-mounts `source` at `target`, read-only when asked, and always
/// `nosuid` and `nodev`: a volume never grants privileges or devices (a
/// bind remount that left them out would drop them).
pub fn bind(source: &Path, target: &Path, read_only: bool) -> std::io::Result<()> {
    let (s, t) = (cstring(source)?, cstring(target)?);
    let null = std::ptr::null();
    // SAFETY: `s` and `t` are NUL-terminated strings that outlive the
    // calls; the file-system type and data may be null for a bind mount.
    unsafe {
        check(libc::mount(
            s.as_ptr(),
            t.as_ptr(),
            null,
            libc::MS_BIND,
            null.cast(),
        ))?;
        let mut remount = libc::MS_BIND | libc::MS_REMOUNT | libc::MS_NOSUID | libc::MS_NODEV;
        if read_only {
            remount |= libc::MS_RDONLY;
        }
        if let Err(e) = check(libc::mount(null, t.as_ptr(), null, remount, null.cast())) {
            libc::umount2(t.as_ptr(), libc::MNT_DETACH);
            return Err(e);
        }
    }
    Ok(())
}

/// Unmounts `path`; with `detach`, lazily (works on a dead FUSE mount
/// and on a busy one).
pub fn unmount(path: &Path, detach: bool) -> std::io::Result<()> {
    let p = cstring(path)?;
    let flags = if detach { libc::MNT_DETACH } else { 0 };
    // SAFETY: `p` is a NUL-terminated string that outlives the call.
    check(unsafe { libc::umount2(p.as_ptr(), flags) })
}

/// Whether the topmost mount at `path` is a FUSE file system.
pub fn is_fuse_mount(path: &Path) -> bool {
    mount_at(path).is_some_and(|m| m.fs_type.starts_with("fuse"))
}

/// Whether a FUSE mount at `path` answers (a dead daemon gives ENOTCONN).
pub fn is_connected(path: &Path) -> bool {
    match std::fs::metadata(path) {
        Ok(_) => true,
        Err(e) => e.raw_os_error() != Some(libc::ENOTCONN),
    }
}

/// Capacity and use of the file system at `path` (statvfs): bytes total,
/// available, used; inodes total, free, used.
pub fn usage(path: &Path) -> std::io::Result<[i64; 6]> {
    let p = cstring(path)?;
    // SAFETY: statvfs is plain old data, valid when zeroed.
    let mut s: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `p` is a NUL-terminated string and `s` a writable statvfs.
    check(unsafe { libc::statvfs(p.as_ptr(), &mut s) })?;
    let block = s.f_frsize as i64;
    let total = s.f_blocks as i64 * block;
    let available = s.f_bavail as i64 * block;
    let inodes = s.f_files as i64;
    let inodes_free = s.f_ffree as i64;
    Ok([
        total,
        available,
        total - s.f_bfree as i64 * block,
        inodes,
        inodes_free,
        inodes - inodes_free,
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_lines_parse_with_escapes_and_options() {
        let text = "36 25 0:32 / /var/lib/kubelet/pods/x/volumes/a\\040b rw,relatime shared:1 - fuse.alluxio alluxio rw,user_id=0\n\
                    37 25 0:33 / /mnt/ro ro,relatime - fuse.alluxio alluxio ro\n";
        let m = parse_mountinfo(text);
        assert_eq!(m.len(), 2);
        assert_eq!(
            m[0].mount_point,
            PathBuf::from("/var/lib/kubelet/pods/x/volumes/a b")
        );
        assert_eq!(m[0].fs_type, "fuse.alluxio");
        assert!(!m[0].read_only);
        assert!(m[1].read_only);
    }
}
