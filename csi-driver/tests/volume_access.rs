//! A provisioned volume is writable by the pod that mounts it whatever
//! user the pod runs as (like an emptyDir: the volume's directory is
//! 0777), and what the pod creates belongs to the pod's user. Real
//! CreateVolume, NodeStageVolume and NodePublishVolume over the plugin's
//! socket, real FUSE and bind mounts; the "pod" is a process with an
//! unprivileged uid. Needs root.

mod common;

use alluxio_proto::csi::volume_capability::access_mode::Mode;
use alluxio_proto::csi::*;
use common::*;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::process::Command;

const POD_USER: u32 = 4321;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_non_root_pod_writes_its_volume_as_itself() {
    if require_root().is_none() {
        return;
    }
    let cluster = cluster().await;
    let dir = tempfile::tempdir().unwrap();
    // The pod's process must reach the target path.
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let plugin = Plugin::start(dir.path(), &cluster);
    let volume = plugin
        .controller()
        .await
        .create_volume(CreateVolumeRequest {
            name: "pvc-pod".into(),
            volume_capabilities: vec![mount_capability(Mode::MultiNodeMultiWriter)],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .volume
        .unwrap();
    let staging = plugin.kubelet_path("plugins/staging/pvc-pod");
    let target = plugin.kubelet_path("pods/p/volumes/pvc-pod");
    let mut node = plugin.node().await;
    node.node_stage_volume(NodeStageVolumeRequest {
        volume_id: volume.volume_id.clone(),
        staging_target_path: staging.clone(),
        volume_capability: Some(mount_capability(Mode::MultiNodeMultiWriter)),
        volume_context: volume.volume_context.clone(),
        ..Default::default()
    })
    .await
    .unwrap();
    node.node_publish_volume(NodePublishVolumeRequest {
        volume_id: volume.volume_id.clone(),
        staging_target_path: staging.clone(),
        target_path: target.clone(),
        volume_capability: Some(mount_capability(Mode::MultiNodeMultiWriter)),
        volume_context: volume.volume_context.clone(),
        ..Default::default()
    })
    .await
    .unwrap();
    // The kubelet's directories above the target, as a real kubelet
    // leaves them, let the pod's user through.
    let mut up = std::path::Path::new(&target).parent();
    while let Some(p) = up.filter(|p| p.starts_with(dir.path())) {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755)).unwrap();
        up = p.parent();
    }

    let script = format!("echo from the pod > {target}/out.txt && mkdir {target}/part");
    let wrote = tokio::task::spawn_blocking(move || {
        let mut cmd = Command::new("sh");
        cmd.args(["-c", &script]);
        // SAFETY: only setgroups(2), setgid(2) and setuid(2) between fork
        // and exec, all async-signal-safe.
        unsafe {
            cmd.pre_exec(|| {
                if libc::setgroups(0, std::ptr::null()) != 0
                    || libc::setgid(POD_USER) != 0
                    || libc::setuid(POD_USER) != 0
                {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        cmd.output().unwrap()
    })
    .await
    .unwrap();
    assert!(
        wrote.status.success(),
        "{}",
        String::from_utf8_lossy(&wrote.stderr)
    );
    let base = &volume.volume_context["alluxioPath"];
    for name in ["out.txt", "part"] {
        let status = cluster
            .client
            .get_status(&format!("{base}/{name}"), None)
            .await
            .unwrap();
        assert_eq!(status.owner, POD_USER.to_string(), "{name}");
    }
    node.node_unpublish_volume(NodeUnpublishVolumeRequest {
        volume_id: volume.volume_id.clone(),
        target_path: target,
    })
    .await
    .unwrap();
    node.node_unstage_volume(NodeUnstageVolumeRequest {
        volume_id: volume.volume_id,
        staging_target_path: staging,
    })
    .await
    .unwrap();
}
