//! The CSI driver, each side by side with the plain alternative:
//! - NodeStageVolume and NodePublishVolume latency (median of rounds);
//! - sequential read of a cached file through a published volume vs
//!   through a plain `alluxio fuse` mount of the same cluster (target: no
//!   measurable loss; the published volume is a bind mount of a FUSE mount
//!   just like the plain one).

use crate::data::{mb_s, plain_file_and_cluster};
use crate::fuse::{dd, timed};
use crate::report::{median, write, Bar};
use alluxio_proto::csi::node_client::NodeClient;
use alluxio_proto::csi::volume_capability::access_mode::Mode;
use alluxio_proto::csi::volume_capability::{AccessMode, AccessType, MountVolume};
use alluxio_proto::csi::*;
use alluxio_testkit::TerminateOnDrop;
use serde_json::json;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn capability() -> VolumeCapability {
    VolumeCapability {
        access_type: Some(AccessType::Mount(MountVolume::default())),
        access_mode: Some(AccessMode {
            mode: Mode::MultiNodeMultiWriter as i32,
        }),
    }
}

pub async fn csi(out: &Path, size: u64, rounds: usize, alluxio: &Path, plugin: &Path) {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_plain, c) = plain_file_and_cluster(dir.path(), size).await;
    let master = c.master.rpc_addr.to_string();
    let kubelet = dir.path().join("kubelet");
    let socket = dir.path().join("csi.sock");
    let _plugin = TerminateOnDrop(
        Command::new(plugin)
            .arg(format!("--endpoint=unix://{}", socket.display()))
            .args(["--mode", "node", "--node-id", "bench", "--master", &master])
            .arg(format!("--allowed-root={}", kubelet.display()))
            .arg(format!(
                "--state-dir={}",
                dir.path().join("state").display()
            ))
            .arg(format!("--alluxio={}", alluxio.display()))
            .args(["--metrics-address", "127.0.0.1:0"])
            .env("ALLUXIO_SECURITY_KEY_FILE", &c.config.security.key_file)
            .env("RUST_LOG", "warn")
            .spawn()
            .expect("alluxio-csi starts"),
    );
    let mut node = NodeClient::new(alluxio_e2e::csi_client::csi_channel(&socket).await);
    let context = HashMap::from([("alluxioPath".to_string(), "/".to_string())]);
    let paths = |i: usize| -> (PathBuf, PathBuf) {
        (
            kubelet.join(format!("plugins/staging/v{i}")),
            kubelet.join(format!("pods/p{i}/volumes/v{i}")),
        )
    };

    // Latency of stage and publish (and their undo), fresh volume each round.
    let (mut stage, mut publish) = (Vec::new(), Vec::new());
    for i in 0..rounds {
        let (staging, target) = paths(i);
        let started = Instant::now();
        node.node_stage_volume(NodeStageVolumeRequest {
            volume_id: format!("v{i}"),
            staging_target_path: staging.display().to_string(),
            volume_capability: Some(capability()),
            volume_context: context.clone(),
            ..Default::default()
        })
        .await
        .expect("stage");
        stage.push(started.elapsed().as_secs_f64() * 1000.0);
        let started = Instant::now();
        node.node_publish_volume(NodePublishVolumeRequest {
            volume_id: format!("v{i}"),
            staging_target_path: staging.display().to_string(),
            target_path: target.display().to_string(),
            volume_capability: Some(capability()),
            ..Default::default()
        })
        .await
        .expect("publish");
        publish.push(started.elapsed().as_secs_f64() * 1000.0);
        if i + 1 < rounds {
            node.node_unpublish_volume(NodeUnpublishVolumeRequest {
                volume_id: format!("v{i}"),
                target_path: target.display().to_string(),
            })
            .await
            .expect("unpublish");
            node.node_unstage_volume(NodeUnstageVolumeRequest {
                volume_id: format!("v{i}"),
                staging_target_path: staging.display().to_string(),
            })
            .await
            .expect("unstage");
        }
    }
    let (stage_ms, publish_ms) = (median(stage.clone()), median(publish.clone()));
    write(
        out,
        "csi_stage_publish_latency",
        "ms",
        &[
            Bar {
                label: "NodeStageVolume (starts a FUSE daemon)".into(),
                value: stage_ms,
            },
            Bar {
                label: "NodePublishVolume (bind mount)".into(),
                value: publish_ms,
            },
        ],
        json!({"rounds": rounds, "stage_ms": stage, "publish_ms": publish, "note": "median of the rounds"}),
    );

    // Reads: the last published volume vs a plain FUSE mount.
    let (_, target) = paths(rounds - 1);
    let plain_point = dir.path().join("plain-mount");
    std::fs::create_dir_all(&plain_point).expect("mount point");
    let _plain_mount = TerminateOnDrop(
        Command::new(alluxio)
            .args(["--master", &master, "fuse"])
            .arg(&plain_point)
            .args(["-o", "allow_other", "--web-port", "0"])
            .stdout(Stdio::null())
            .env("ALLUXIO_SECURITY_KEY_FILE", &c.config.security.key_file)
            .env("RUST_LOG", "warn")
            .spawn()
            .expect("alluxio fuse starts"),
    );
    let plain_file = plain_point.join("data.bin");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !plain_file.exists() {
        assert!(Instant::now() < deadline, "the plain mount never came up");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let volume_file = target.join("data.bin");
    // First reads fill the cache and check the local copy once per daemon.
    timed(dd(&volume_file)).await;
    timed(dd(&plain_file)).await;
    let (mut through_volume, mut through_mount) = (Vec::new(), Vec::new());
    for _ in 0..3 {
        through_volume.push(timed(dd(&volume_file)).await);
        through_mount.push(timed(dd(&plain_file)).await);
    }
    let best = |v: &[f64]| v.iter().cloned().fold(f64::MAX, f64::min);
    let (v_s, m_s) = (best(&through_volume), best(&through_mount));
    write(
        out,
        "csi_read_through_volume",
        "MiB/s",
        &[
            Bar {
                label: "published CSI volume (dd bs=1M)".into(),
                value: mb_s(size, v_s),
            },
            Bar {
                label: "plain alluxio fuse mount".into(),
                value: mb_s(size, m_s),
            },
        ],
        json!({"bytes": size, "runs_seconds": {"volume": through_volume, "plain_mount": through_mount},
               "ratio_volume_vs_plain_mount": m_s / v_s,
               "note": "best of 3 alternating warm reads of a cached file"}),
    );
    // The daemon outlives the plugin by design: undo the last volume.
    let (staging, target) = paths(rounds - 1);
    let _ = node
        .node_unpublish_volume(NodeUnpublishVolumeRequest {
            volume_id: format!("v{}", rounds - 1),
            target_path: target.display().to_string(),
        })
        .await;
    let _ = node
        .node_unstage_volume(NodeUnstageVolumeRequest {
            volume_id: format!("v{}", rounds - 1),
            staging_target_path: staging.display().to_string(),
        })
        .await;
}
