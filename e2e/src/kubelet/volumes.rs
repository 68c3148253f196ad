//! The process kubelet's volumes on the host: ConfigMap and Secret files
//! with their mode, fsGroup ownership, the service-account volume's
//! place, and the kubelet's shared directories (for Bidirectional mount
//! propagation) and container root filesystems it cleans up.

use super::image;
use std::path::{Path, PathBuf};

/// Where a pod's service-account token, CA and namespace are mounted.
pub const SERVICE_ACCOUNT_DIR: &str = "/var/run/secrets/kubernetes.io/serviceaccount";

/// The kubelet's directories where CSI plugins mount (staging under
/// `plugins`, publishing under `pods`). With images configured they are
/// bind-mounted on themselves and made shared, as a node's
/// `/var/lib/kubelet` is, so that a Bidirectional volume carries the
/// mounts of a plugin running in a container out to the host.
pub const SHARED_DIRS: [&str; 2] = ["pods", "plugins"];

pub fn share_kubelet_dirs(root: &Path) -> Result<(), String> {
    for dir in SHARED_DIRS {
        let dir = root.join(dir);
        std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        let path = std::ffi::CString::new(dir.display().to_string()).map_err(|e| e.to_string())?;
        let null = std::ptr::null::<libc::c_char>();
        // SAFETY: NUL-terminated paths that outlive the calls, null where
        // mount(2) allows it.
        let rc = unsafe {
            let bound = libc::mount(
                path.as_ptr(),
                path.as_ptr(),
                null,
                libc::MS_BIND,
                std::ptr::null(),
            );
            if bound == 0 {
                libc::mount(null, path.as_ptr(), null, libc::MS_SHARED, std::ptr::null())
            } else {
                bound
            }
        };
        if rc != 0 {
            return Err(format!(
                "cannot share {}: {}",
                dir.display(),
                std::io::Error::last_os_error()
            ));
        }
    }
    Ok(())
}

/// Detaches every container root filesystem still mounted under `root`
/// (pods whose stop did not finish before the kubelet went).
pub fn unmount_all_rootfs(root: &Path) {
    let Ok(pods) = std::fs::read_dir(root.join("containers")) else {
        return;
    };
    for pod in pods.flatten() {
        for container in std::fs::read_dir(pod.path())
            .into_iter()
            .flatten()
            .flatten()
        {
            image::unmount_rootfs(&container.path());
        }
    }
}

pub fn unshare_kubelet_dirs(root: &Path) {
    for dir in SHARED_DIRS {
        if let Ok(path) = std::ffi::CString::new(root.join(dir).display().to_string()) {
            // SAFETY: a NUL-terminated path; failing (not mounted) is fine.
            unsafe { libc::umount2(path.as_ptr(), libc::MNT_DETACH) };
        }
    }
}

/// Writes a ConfigMap's or Secret's keys as files with `mode` (the
/// volume's `defaultMode`, as the kubelet applies it).
pub fn write_files(
    dir: &Path,
    files: impl Iterator<Item = (String, Vec<u8>)>,
    mode: u32,
) -> Result<PathBuf, String> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    for (name, bytes) in files {
        if name.contains('/') || name.starts_with('.') {
            return Err(format!("volume key {name:?} is not a file name"));
        }
        let path = dir.join(name);
        std::fs::write(&path, bytes).map_err(|e| e.to_string())?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode & 0o777))
            .map_err(|e| e.to_string())?;
    }
    Ok(dir.to_path_buf())
}

/// Brings the files of a running pod's Secret (or ConfigMap) volume up to
/// date, as the kubelet does within about a minute of a change: each
/// changed file is replaced at once (a new file with the old one's mode
/// and owner, renamed over it), so a reader sees the old bytes or the new
/// ones. Keys added or removed since the pod started are left alone.
pub fn refresh_files(
    dir: &Path,
    files: impl Iterator<Item = (String, Vec<u8>)>,
) -> Result<(), String> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    for (name, bytes) in files {
        let path = dir.join(&name);
        let Ok(meta) = std::fs::metadata(&path) else {
            continue;
        };
        if std::fs::read(&path).is_ok_and(|old| old == bytes) {
            continue;
        }
        let new = dir.join(format!(".{name}.new"));
        std::fs::write(&new, &bytes).map_err(|e| e.to_string())?;
        std::fs::set_permissions(&new, std::fs::Permissions::from_mode(meta.mode() & 0o777))
            .map_err(|e| e.to_string())?;
        std::os::unix::fs::chown(&new, Some(meta.uid()), Some(meta.gid()))
            .map_err(|e| e.to_string())?;
        std::fs::rename(&new, &path).map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// The group `gid` owns everything in the volume, which is group-readable
/// (and group-writable unless `read_only`), directories setgid so that new
/// files keep the group: the kubelet's `SetVolumeOwnership`.
pub fn apply_fs_group(dir: &Path, gid: u32, read_only: bool) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let mask = if read_only { 0o440 } else { 0o660 };
    let mut pending = vec![dir.to_path_buf()];
    while let Some(path) = pending.pop() {
        let meta = std::fs::symlink_metadata(&path)?;
        if meta.file_type().is_symlink() {
            continue;
        }
        std::os::unix::fs::lchown(&path, None, Some(gid))?;
        let mut mode = meta.permissions().mode() | mask;
        if meta.is_dir() {
            mode |= 0o2000 | 0o110;
            for entry in std::fs::read_dir(&path)? {
                pending.push(entry?.path());
            }
        }
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode & 0o7777))?;
    }
    Ok(())
}
