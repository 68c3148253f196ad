//! `alluxio fuse`: the Alluxio namespace as a POSIX file system.
//!
//! The kernel's requests arrive through /dev/fuse (the pure-Rust `fuser`
//! crate, no libfuse) and are answered from the master (metadata) and the
//! workers (data), through the client library:
//!
//! - `fs.rs`: the `fuser::Filesystem` adapter, which runs every request as
//!   an async task; `meta_ops.rs` and `io_ops.rs`: the operations;
//!   `state.rs`: what they share.
//! - `inodes.rs`: inode numbers (from Alluxio file ids) and their paths;
//!   `handles.rs`: open files and directories; `passthrough.rs`: inodes
//!   the kernel reads from the local worker's copy itself; `prefetch.rs`:
//!   small files fetched ahead of a reader going through a directory.
//! - `options.rs`: `-o` options; `errno.rs`: errors as errno values and
//!   bounded retries; `metrics.rs`; `users.rs`: owner names and ids.
//!
//! Completed files never change (a changed UFS file becomes a new file
//! id, hence a new inode), so their pages stay in the kernel's cache
//! between opens.

mod cache_behind;
pub mod errno;
mod fs;
pub mod handles;
pub mod inodes;
mod io_ops;
mod meta_ops;
pub mod metadata_cache;
pub mod metrics;
pub mod options;
mod passthrough;
mod prefetch;
pub mod state;

pub use metrics::FuseMetrics;
pub use options::FuseOptions;

use alluxio_client::FileSystem;
use alluxio_common::AlluxioError;
use fuser::{BackgroundSession, Config, MountOption, Session, SessionACL};
use state::FuseState;
use std::path::{Path, PathBuf};
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum MountError {
    #[error("mount point {0} does not exist")]
    Missing(PathBuf),
    #[error("mount point {0} is not a directory")]
    NotADirectory(PathBuf),
    #[error("mount point {0} is busy: a {1} file system is already mounted there")]
    Busy(PathBuf, String),
    #[error("mount point {0} is a dead FUSE mount (transport endpoint is not connected); run `umount -l {0}` first")]
    Dead(PathBuf),
    #[error("mount point {0}: {1}")]
    Inaccessible(PathBuf, std::io::Error),
    #[error("{path} in Alluxio cannot be mounted: {source}")]
    Root { path: String, source: AlluxioError },
    #[error("{0} in Alluxio is not a directory")]
    RootNotADirectory(String),
    #[error("cannot mount FUSE at {0}: {1}")]
    Fuse(PathBuf, std::io::Error),
}

/// A mounted file system; unmounted by [`FuseMount::unmount`] (or when
/// dropped).
pub struct FuseMount {
    session: Option<BackgroundSession>,
    mount_point: PathBuf,
    pub state: Arc<FuseState>,
    renewals: tokio::task::JoinHandle<()>,
}

/// Mounts `alluxio_path` of the cluster behind `fs` at `mount_point`.
pub async fn mount(
    fs: FileSystem,
    alluxio_path: &str,
    mount_point: &Path,
    options: FuseOptions,
    metrics: Arc<FuseMetrics>,
) -> Result<FuseMount, MountError> {
    let mount_point = check_mount_point(mount_point)?;
    let root = errno::with_retry(options.retry_timeout, || {
        fs.master()
            .get_status(alluxio_path, options.sync_interval_ms)
    })
    .await
    .map_err(|source| MountError::Root {
        path: alluxio_path.to_string(),
        source,
    })?;
    if !root.folder {
        return Err(MountError::RootNotADirectory(alluxio_path.to_string()));
    }
    let config = session_config(&options);
    let state = Arc::new(FuseState::new(fs, options, &root, metrics));
    let filesystem = fs::AlluxioFuse {
        state: state.clone(),
        runtime: tokio::runtime::Handle::current(),
    };
    let at = mount_point.clone();
    let session = tokio::task::spawn_blocking(move || {
        let session = Session::new(filesystem, &at, &config)?;
        let notifier = session.notifier();
        Ok::<_, std::io::Error>((session.spawn()?, notifier))
    })
    .await
    .map_err(|e| MountError::Fuse(mount_point.clone(), std::io::Error::other(e)))?
    .map_err(|e| MountError::Fuse(mount_point.clone(), e))?;
    let (session, notifier) = session;
    let _ = state.notifier.set(notifier);
    if let Err(e) = set_read_ahead(&mount_point, state.options.read_ahead_kb) {
        tracing::warn!(error = %e, "cannot set the mount's read-ahead; large reads come in 128 KiB pieces");
    }
    let renewals = tokio::spawn(state.clone().renew_leases());
    tracing::info!(
        mount_point = %mount_point.display(),
        alluxio_path,
        passthrough = state.kernel_passthrough.load(std::sync::atomic::Ordering::Relaxed),
        "mounted"
    );
    Ok(FuseMount {
        session: Some(session),
        mount_point,
        state,
        renewals,
    })
}

fn session_config(options: &FuseOptions) -> Config {
    let mut mount_options = vec![
        MountOption::FSName("alluxio".to_string()),
        MountOption::Subtype("alluxio".to_string()),
    ];
    if options.read_only {
        mount_options.push(MountOption::RO);
    }
    if options.default_permissions {
        mount_options.push(MountOption::DefaultPermissions);
    }
    for flag in &options.kernel {
        mount_options.push(match flag.as_str() {
            "noatime" => MountOption::NoAtime,
            "atime" => MountOption::Atime,
            "nodev" => MountOption::NoDev,
            "dev" => MountOption::Dev,
            "nosuid" => MountOption::NoSuid,
            "suid" => MountOption::Suid,
            "noexec" => MountOption::NoExec,
            "exec" => MountOption::Exec,
            "sync" => MountOption::Sync,
            "async" => MountOption::Async,
            _ => MountOption::DirSync,
        });
    }
    let mut config = Config::default();
    config.mount_options = mount_options;
    config.acl = if options.allow_other {
        SessionACL::All
    } else {
        SessionACL::RootAndOwner
    };
    config.n_threads = Some(options.threads);
    config.clone_fd = options.threads > 1;
    config
}

/// Sets the kernel read-ahead of the mounted file system, through the
/// sysfs entry of its backing device (named by its device number).
fn set_read_ahead(mount_point: &Path, kb: u32) -> std::io::Result<()> {
    use std::os::unix::fs::MetadataExt;
    let dev = std::fs::metadata(mount_point)?.dev();
    let (major, minor) = (libc::major(dev), libc::minor(dev));
    std::fs::write(
        format!("/sys/class/bdi/{major}:{minor}/read_ahead_kb"),
        kb.to_string(),
    )
}

/// An existing directory with nothing mounted on it.
fn check_mount_point(path: &Path) -> Result<PathBuf, MountError> {
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(MountError::Missing(path.to_path_buf()))
        }
        Err(e) if e.raw_os_error() == Some(libc::ENOTCONN) => {
            return Err(MountError::Dead(path.to_path_buf()))
        }
        Err(e) => return Err(MountError::Inaccessible(path.to_path_buf(), e)),
    };
    if !meta.is_dir() {
        return Err(MountError::NotADirectory(path.to_path_buf()));
    }
    let path = path
        .canonicalize()
        .map_err(|e| MountError::Inaccessible(path.to_path_buf(), e))?;
    if let Some(fs_type) = mounted_at(&path) {
        return Err(MountError::Busy(path, fs_type));
    }
    Ok(path)
}

/// The file system type mounted exactly at `path`, from
/// /proc/self/mountinfo (mount point is field 5, the type follows " - ").
pub fn mounted_at(path: &Path) -> Option<String> {
    let table = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    let wanted = path.to_str()?;
    table.lines().rev().find_map(|line| {
        let point = unescape_mountinfo(line.split(' ').nth(4)?);
        let fs_type = line.split(" - ").nth(1)?.split(' ').next()?;
        (point == wanted).then(|| fs_type.to_string())
    })
}

/// mountinfo writes space, tab, newline and backslash as octal escapes.
fn unescape_mountinfo(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\\' {
            let code: String = chars.by_ref().take(3).collect();
            match u8::from_str_radix(&code, 8) {
                Ok(b) => out.push(b as char),
                Err(_) => {
                    out.push('\\');
                    out.push_str(&code);
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

impl FuseMount {
    pub fn mount_point(&self) -> &Path {
        &self.mount_point
    }

    /// False once the kernel ended the session (someone ran umount).
    pub fn is_alive(&self) -> bool {
        self.session
            .as_ref()
            .is_some_and(|s| !s.guard.is_finished())
    }

    /// Unmounts and waits for the session to end. A busy mount point (a
    /// process still has a file or its working directory there) is
    /// detached instead: it disappears from the namespace now and its
    /// users get errors.
    pub fn unmount(mut self) -> Result<(), String> {
        self.unmount_inner()
    }

    fn unmount_inner(&mut self) -> Result<(), String> {
        self.renewals.abort();
        let Some(session) = self.session.take() else {
            return Ok(());
        };
        if session.guard.is_finished() {
            return session.join().map_err(|e| e.to_string());
        }
        match session.umount_and_join() {
            Ok(()) => Ok(()),
            Err(e) => {
                tracing::warn!(error = %e, "unmount failed; detaching the mount");
                let path = std::ffi::CString::new(self.mount_point.as_os_str().as_encoded_bytes())
                    .map_err(|e| e.to_string())?;
                // SAFETY: a valid NUL-terminated path.
                let rc = unsafe { libc::umount2(path.as_ptr(), libc::MNT_DETACH) };
                if rc == 0 {
                    Ok(())
                } else {
                    Err(format!(
                        "cannot unmount {}: {e}; detach failed: {}",
                        self.mount_point.display(),
                        std::io::Error::last_os_error()
                    ))
                }
            }
        }
    }
}

impl Drop for FuseMount {
    fn drop(&mut self) {
        if let Err(e) = self.unmount_inner() {
            tracing::warn!(error = e, "unmount on drop failed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_escapes_are_decoded() {
        assert_eq!(unescape_mountinfo("/mnt/a\\040b"), "/mnt/a b");
        assert_eq!(unescape_mountinfo("/plain"), "/plain");
    }

    #[test]
    fn the_root_is_a_mount_point_and_a_fresh_directory_is_not() {
        assert!(mounted_at(Path::new("/")).is_some());
        let dir = tempfile::tempdir().unwrap();
        assert!(mounted_at(dir.path()).is_none());
        assert!(matches!(
            check_mount_point(&dir.path().join("missing")),
            Err(MountError::Missing(_))
        ));
        let file = dir.path().join("file");
        std::fs::write(&file, b"x").unwrap();
        assert!(matches!(
            check_mount_point(&file),
            Err(MountError::NotADirectory(_))
        ));
    }
}
