//! The FUSE daemons of staged volumes, which must outlive the plugin.
//!
//! Each staged volume gets its own `alluxio fuse` process, started in a
//! new session (so neither a signal to the plugin's process group nor the
//! plugin's death reaches it) and recorded in a state file under the
//! plugin's state directory: volume, staging path, Alluxio path, master,
//! options, pid, and the target paths it is published at. A restarted
//! plugin reads these files and adopts the daemons that still run. A
//! daemon that died (or whose mount no longer answers) is replaced: the
//! dead mount is detached, a new daemon mounts the staging path, and every
//! published target is bind-mounted again, so readers using the target
//! paths recover without the pods being restarted.

use crate::metrics::CsiMetrics;
use crate::mounts;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a new daemon may take to mount.
const MOUNT_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StagedVolume {
    pub volume_id: String,
    pub staging_path: PathBuf,
    pub alluxio_path: String,
    pub master: String,
    pub read_only: bool,
    /// Extra `-o` options for `alluxio fuse` (from the volume's context).
    pub mount_options: Vec<String>,
    pub pid: u32,
    /// Published target paths and whether each is read-only.
    pub targets: Vec<(PathBuf, bool)>,
    /// The cluster key the daemon mints its tokens from (written from
    /// NodeStageVolume's secrets, mode 0600); none: the plugin's own
    /// environment decides.
    #[serde(default)]
    pub key_file: Option<PathBuf>,
    /// How the daemon checks the cluster's servers when it has TLS (from
    /// the same secrets).
    #[serde(default)]
    pub tls: Option<VolumeTls>,
}

/// A TLS cluster's CA (written from the secrets' `ca.crt`) and the name
/// its servers' certificates carry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VolumeTls {
    pub ca_file: PathBuf,
    pub server_name: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error("cannot start the FUSE daemon: {0}")]
    Spawn(std::io::Error),
    #[error("the FUSE daemon did not mount {path}: {log}")]
    NotMounted { path: String, log: String },
    #[error("cannot record the volume's state: {0}")]
    State(std::io::Error),
}

pub struct FuseDaemons {
    alluxio: PathBuf,
    state_dir: PathBuf,
    volumes: Mutex<HashMap<String, StagedVolume>>,
    /// Daemons this plugin process started (reaped here); adopted ones
    /// belong to init.
    children: Mutex<HashMap<u32, std::process::Child>>,
}

/// File name for a volume id (which may hold any characters).
fn state_file_name(volume_id: &str) -> String {
    let hex: String = volume_id.bytes().map(|b| format!("{b:02x}")).collect();
    format!("{hex}.json")
}

/// Whether `pid` runs (not a zombie) and is an `alluxio fuse` daemon.
fn daemon_alive(pid: u32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    let state = stat
        .rsplit_once(") ")
        .and_then(|(_, rest)| rest.chars().next());
    if matches!(state, Some('Z') | Some('X') | None) {
        return false;
    }
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|c| c.split(|b| *b == 0).any(|arg| arg == b"fuse"))
        .unwrap_or(false)
}

impl FuseDaemons {
    /// Opens the state directory and adopts the volumes recorded there.
    pub fn open(alluxio: &Path, state_dir: &Path) -> std::io::Result<FuseDaemons> {
        let dir = state_dir.join("volumes");
        std::fs::create_dir_all(&dir)?;
        let mut volumes = HashMap::new();
        for entry in std::fs::read_dir(&dir)?.flatten() {
            let path = entry.path();
            if path.extension().is_some_and(|e| e == "json") {
                match std::fs::read(&path).map(|b| serde_json::from_slice::<StagedVolume>(&b)) {
                    Ok(Ok(v)) => {
                        tracing::info!(
                            volume = v.volume_id,
                            pid = v.pid,
                            "adopted a staged volume"
                        );
                        volumes.insert(v.volume_id.clone(), v);
                    }
                    _ => tracing::warn!("ignoring the unreadable state file {}", path.display()),
                }
            }
        }
        Ok(FuseDaemons {
            alluxio: alluxio.to_path_buf(),
            state_dir: state_dir.to_path_buf(),
            volumes: Mutex::new(volumes),
            children: Mutex::new(HashMap::new()),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, StagedVolume>> {
        self.volumes.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn get(&self, volume_id: &str) -> Option<StagedVolume> {
        self.lock().get(volume_id).cloned()
    }

    /// The staged volume whose staging path or a target is `path`.
    pub fn find_by_path(&self, path: &Path) -> Option<StagedVolume> {
        self.lock()
            .values()
            .find(|v| v.staging_path == path || v.targets.iter().any(|(t, _)| t == path))
            .cloned()
    }

    fn save(&self, v: &StagedVolume) -> Result<(), DaemonError> {
        let path = self
            .state_dir
            .join("volumes")
            .join(state_file_name(&v.volume_id));
        let tmp = path.with_extension("tmp");
        let bytes = serde_json::to_vec_pretty(v).map_err(|e| DaemonError::State(e.into()))?;
        // Written, renamed into place, and the directory fsynced: a
        // restarted plugin finds every daemon it acknowledged.
        std::fs::File::create(&tmp)
            .and_then(|mut f| {
                use std::io::Write;
                f.write_all(&bytes)?;
                f.sync_all()
            })
            .and_then(|_| std::fs::rename(&tmp, &path))
            .and_then(|_| alluxio_common::io::sync_parent(&path))
            .map_err(DaemonError::State)?;
        self.lock().insert(v.volume_id.clone(), v.clone());
        Ok(())
    }

    fn forget(&self, volume_id: &str) {
        let path = self
            .state_dir
            .join("volumes")
            .join(state_file_name(volume_id));
        let _ = std::fs::remove_file(path);
        let _ = std::fs::remove_file(self.key_path(volume_id));
        self.lock().remove(volume_id);
    }

    /// Where a volume's cluster key is kept.
    pub fn key_path(&self, volume_id: &str) -> PathBuf {
        self.state_dir
            .join("volumes")
            .join(state_file_name(volume_id).replace(".json", ".key"))
    }

    /// Writes `hex` as the volume's key file (mode 0600, replaced
    /// atomically) and returns its path.
    pub fn write_key(&self, volume_id: &str, hex: &str) -> Result<PathBuf, DaemonError> {
        let path = self.key_path(volume_id);
        let text = format!("{}\n", hex.trim());
        alluxio_common::io::replace_private(&path, text.as_bytes()).map_err(DaemonError::State)?;
        Ok(path)
    }

    /// Writes `pem` as the volume's CA file (replaced atomically) and
    /// returns its path.
    pub fn write_ca(&self, volume_id: &str, pem: &str) -> Result<PathBuf, DaemonError> {
        let path = self
            .state_dir
            .join("volumes")
            .join(state_file_name(volume_id).replace(".json", ".ca.crt"));
        alluxio_common::io::replace_private(&path, pem.as_bytes()).map_err(DaemonError::State)?;
        Ok(path)
    }

    fn log_path(&self, volume_id: &str) -> PathBuf {
        self.state_dir
            .join("volumes")
            .join(state_file_name(volume_id).replace(".json", ".log"))
    }

    /// Starts a daemon for `v` (its pid is filled in) and waits until
    /// the staging path is mounted. On failure nothing stays mounted.
    pub async fn start(&self, mut v: StagedVolume) -> Result<StagedVolume, DaemonError> {
        let log_path = self.log_path(&v.volume_id);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .map_err(DaemonError::Spawn)?;
        let log2 = log.try_clone().map_err(DaemonError::Spawn)?;
        let mut options = vec!["allow_other".to_string()];
        if v.read_only {
            options.push("ro".into());
        }
        options.extend(v.mount_options.iter().cloned());
        let mut cmd = std::process::Command::new(&self.alluxio);
        cmd.args([
            "--master",
            &v.master,
            "fuse",
            "--alluxio-path",
            &v.alluxio_path,
        ])
        .arg(&v.staging_path)
        .args(["-o", &options.join(","), "--web-port", "0"])
        .stdin(std::process::Stdio::null())
        .stdout(log)
        .stderr(log2);
        if let Some(key_file) = &v.key_file {
            cmd.env("ALLUXIO_SECURITY_KEY_FILE", key_file);
        }
        if let Some(tls) = &v.tls {
            cmd.args(["-D", "security.tls.enabled=true", "-D"])
                .arg(format!("security.tls.ca_file={}", tls.ca_file.display()));
            if let Some(name) = &tls.server_name {
                cmd.args(["-D", &format!("security.tls.server_name={name}")]);
            }
        }
        // A session of its own: the plugin's death or a signal to its
        // process group does not reach the daemon.
        // SAFETY: the hook only calls setsid(2), which is async-signal-safe,
        // as code between fork and exec must be.
        unsafe {
            use std::os::unix::process::CommandExt;
            cmd.pre_exec(|| {
                libc::setsid();
                Ok(())
            });
        }
        let child = cmd.spawn().map_err(DaemonError::Spawn)?;
        v.pid = child.id();
        self.children
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(v.pid, child);
        let deadline = Instant::now() + MOUNT_TIMEOUT;
        loop {
            let mounted =
                mounts::is_fuse_mount(&v.staging_path) && mounts::is_connected(&v.staging_path);
            if mounted {
                break;
            }
            if !daemon_alive(v.pid) || Instant::now() > deadline {
                self.kill(v.pid);
                let log = std::fs::read_to_string(&log_path).unwrap_or_default();
                let tail: String = log.lines().rev().take(5).collect::<Vec<_>>().join(" | ");
                return Err(DaemonError::NotMounted {
                    path: v.staging_path.display().to_string(),
                    log: tail,
                });
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        if let Err(e) = self.save(&v) {
            self.kill(v.pid);
            let _ = mounts::unmount(&v.staging_path, true);
            return Err(e);
        }
        Ok(v)
    }

    fn kill(&self, pid: u32) {
        // SAFETY: kill(2) takes plain integers and touches no memory of ours.
        unsafe { libc::kill(pid as i32, libc::SIGKILL) };
        if let Some(mut child) = self
            .children
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&pid)
        {
            let _ = child.wait();
        }
    }

    /// Stops the daemon of `volume_id` (it unmounts on SIGTERM) and
    /// forgets the volume.
    pub async fn stop(&self, volume_id: &str) {
        let Some(v) = self.get(volume_id) else {
            return;
        };
        if daemon_alive(v.pid) {
            // SAFETY: kill(2) takes plain integers and touches no memory of ours.
            unsafe { libc::kill(v.pid as i32, libc::SIGTERM) };
            let deadline = Instant::now() + Duration::from_secs(10);
            while daemon_alive(v.pid) && Instant::now() < deadline {
                self.reap();
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            if daemon_alive(v.pid) {
                self.kill(v.pid);
            }
        }
        if mounts::mount_at(&v.staging_path).is_some() {
            let _ = mounts::unmount(&v.staging_path, true);
        }
        self.reap();
        self.forget(volume_id);
    }

    /// Records that `volume_id` is published at `target`.
    pub fn add_target(
        &self,
        volume_id: &str,
        target: &Path,
        read_only: bool,
    ) -> Result<(), DaemonError> {
        let Some(mut v) = self.get(volume_id) else {
            return Ok(());
        };
        if !v.targets.iter().any(|(t, _)| t == target) {
            v.targets.push((target.to_path_buf(), read_only));
            self.save(&v)?;
        }
        Ok(())
    }

    pub fn remove_target(&self, target: &Path) -> Result<(), DaemonError> {
        let Some(mut v) = self
            .find_by_path(target)
            .filter(|v| v.staging_path != target)
        else {
            return Ok(());
        };
        v.targets.retain(|(t, _)| t != target);
        self.save(&v)
    }

    /// Collects exit statuses of daemons started by this process.
    fn reap(&self) {
        self.children
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|_, c| matches!(c.try_wait(), Ok(None)));
    }

    /// Finds daemons that died or mounts that stopped answering and
    /// restores them; updates the alive gauge.
    pub async fn check_all(&self, metrics: &CsiMetrics) {
        self.reap();
        let volumes: Vec<StagedVolume> = self.lock().values().cloned().collect();
        let mut alive = 0;
        for v in volumes {
            let healthy = daemon_alive(v.pid)
                && mounts::is_fuse_mount(&v.staging_path)
                && mounts::is_connected(&v.staging_path);
            if healthy {
                alive += 1;
                continue;
            }
            tracing::warn!(
                volume = v.volume_id,
                pid = v.pid,
                "FUSE daemon gone; restoring the volume"
            );
            match self.recover(v).await {
                Ok(_) => {
                    alive += 1;
                    metrics.fuse_restarts.inc();
                    metrics.recoveries.inc();
                }
                Err(e) => tracing::error!("cannot restore a volume: {e}"),
            }
        }
        metrics.fuse_alive.set(alive);
    }

    async fn recover(&self, v: StagedVolume) -> Result<StagedVolume, DaemonError> {
        if daemon_alive(v.pid) {
            self.kill(v.pid);
        }
        // Detach the dead mounts (targets first: they are binds of it).
        for (target, _) in &v.targets {
            if mounts::mount_at(target).is_some() {
                let _ = mounts::unmount(target, true);
            }
        }
        while mounts::mount_at(&v.staging_path).is_some() {
            if mounts::unmount(&v.staging_path, true).is_err() {
                break;
            }
        }
        let v = self.start(v).await?;
        for (target, read_only) in &v.targets {
            if let Err(e) = mounts::bind(&v.staging_path, target, *read_only) {
                tracing::error!(volume = v.volume_id, target = %target.display(), "cannot bind again: {e}");
            }
        }
        tracing::info!(volume = v.volume_id, pid = v.pid, "volume restored");
        Ok(v)
    }
}
