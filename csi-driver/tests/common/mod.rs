//! A running `alluxio-csi` process against an in-process cluster, and
//! gRPC clients of it over its unix socket.

#![allow(dead_code)]

use alluxio_proto::csi::controller_client::ControllerClient;
use alluxio_proto::csi::identity_client::IdentityClient;
use alluxio_proto::csi::node_client::NodeClient;
use alluxio_proto::csi::volume_capability::access_mode::Mode;
use alluxio_proto::csi::volume_capability::{AccessMode, AccessType, BlockVolume, MountVolume};
use alluxio_proto::csi::VolumeCapability;
use alluxio_testkit::cluster::{Cluster, MIB};
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use tonic::transport::Channel;

pub struct Plugin {
    pub child: Child,
    pub dir: PathBuf,
    pub socket: PathBuf,
    pub master: String,
    pub metrics: String,
}

/// Needs root (mounts); `None` (skip) outside CI without it.
pub fn require_root() -> Option<()> {
    if alluxio_testkit::running_as_root() {
        Some(())
    } else {
        alluxio_testkit::missing_prerequisite("root (FUSE and bind mounts)")
    }
}

pub async fn cluster() -> Cluster {
    alluxio_testkit::cluster::start(1, 64 * MIB, |_| {}).await
}

pub fn master_address(c: &Cluster) -> String {
    c.master.as_ref().unwrap().rpc_addr.to_string()
}

impl Plugin {
    /// Starts the plugin (mode all) with its files under `dir`, for
    /// `cluster` (whose key it finds through its environment, as its own
    /// credentials).
    pub fn start(dir: &Path, cluster: &Cluster) -> Plugin {
        Self::start_with(dir, cluster, true)
    }

    /// Like `start`; without `own_credentials` the plugin has no key of its
    /// own and reaches the master only with the secrets requests carry.
    pub fn start_with(dir: &Path, cluster: &Cluster, own_credentials: bool) -> Plugin {
        let master = &master_address(cluster);
        let key_file = match own_credentials {
            true => cluster.config.security.key_file.clone(),
            false => dir.join("no-such.key"),
        };
        let socket = dir.join("csi/csi.sock");
        let port = alluxio_testkit::free_port().unwrap();
        let metrics = format!("127.0.0.1:{port}");
        let child = Command::new(alluxio_testkit::binaries::built_binary("alluxio-csi"))
            .env("ALLUXIO_SECURITY_KEY_FILE", &key_file)
            .env_remove("ALLUXIO_TOKEN")
            .arg(format!("--endpoint=unix://{}", socket.display()))
            .args(["--mode", "all", "--node-id", "node-0", "--master", master])
            .arg(format!("--allowed-root={}", dir.join("kubelet").display()))
            .arg(format!("--state-dir={}", dir.join("state").display()))
            .arg(format!(
                "--alluxio={}",
                alluxio_testkit::binaries::built_binary("alluxio").display()
            ))
            .args(["--metrics-address", &metrics])
            .spawn()
            .unwrap();
        Plugin {
            child,
            dir: dir.to_path_buf(),
            socket,
            master: master.to_string(),
            metrics,
        }
    }

    /// A channel over the unix socket, once the plugin listens.
    pub async fn channel(&self) -> Channel {
        alluxio_e2e::csi_client::csi_channel(&self.socket).await
    }

    pub async fn identity(&self) -> IdentityClient<Channel> {
        IdentityClient::new(self.channel().await)
    }

    pub async fn controller(&self) -> ControllerClient<Channel> {
        ControllerClient::new(self.channel().await)
    }

    pub async fn node(&self) -> NodeClient<Channel> {
        NodeClient::new(self.channel().await)
    }

    /// A path under the allowed kubelet root.
    pub fn kubelet_path(&self, rest: &str) -> String {
        self.dir.join("kubelet").join(rest).display().to_string()
    }

    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Plugin {
    /// The FUSE daemons outlive the plugin by design; a test (passing or
    /// not) must not leave them, or their mounts, behind.
    fn drop(&mut self) {
        self.kill9();
        kill_daemons_and_mounts(&self.dir);
    }
}

/// Kills the daemons recorded in the plugin's state under `dir` and
/// detaches every mount under `dir`.
pub fn kill_daemons_and_mounts(dir: &Path) {
    if let Ok(entries) = std::fs::read_dir(dir.join("state/volumes")) {
        for e in entries.flatten() {
            let Ok(bytes) = std::fs::read(e.path()) else {
                continue;
            };
            let Ok(v) = serde_json::from_slice::<serde_json::Value>(&bytes) else {
                continue;
            };
            if let Some(pid) = v["pid"].as_u64() {
                alluxio_testkit::signal(pid as u32, libc::SIGKILL);
            }
        }
    }
    let text = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut points: Vec<PathBuf> = alluxio_csi::mounts::parse_mountinfo(&text)
        .into_iter()
        .map(|m| m.mount_point)
        .filter(|p| p.starts_with(dir))
        .collect();
    // Deepest first: targets before the staging mounts they bind.
    points.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    for point in points {
        let _ = alluxio_csi::mounts::unmount(&point, true);
    }
}

pub fn mount_capability(mode: Mode) -> VolumeCapability {
    VolumeCapability {
        access_type: Some(AccessType::Mount(MountVolume::default())),
        access_mode: Some(AccessMode { mode: mode as i32 }),
    }
}

pub fn block_capability() -> VolumeCapability {
    VolumeCapability {
        access_type: Some(AccessType::Block(BlockVolume {})),
        access_mode: Some(AccessMode {
            mode: Mode::SingleNodeWriter as i32,
        }),
    }
}

/// Lines of /proc/self/mountinfo that mention `dir` (to show nothing is left).
pub fn mounts_under(dir: &Path) -> Vec<String> {
    let text = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let needle = dir.display().to_string();
    text.lines()
        .filter(|l| l.contains(&needle))
        .map(str::to_string)
        .collect()
}
