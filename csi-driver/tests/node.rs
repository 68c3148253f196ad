//! Node RPCs of the real plugin process with real FUSE and bind mounts:
//! stage, publish (read-only and read-write), stats, every call twice,
//! the spec's errors, nothing left mounted; then the FUSE daemons outliving
//! a kill -9 of the plugin (a read in progress finishes, the restarted
//! plugin adopts them) and a kill -9 of a daemon (the plugin brings the
//! mount back and new reads through the same target path work).

mod common;

use alluxio_proto::csi::node_client::NodeClient;
use alluxio_proto::csi::volume_capability::access_mode::Mode;
use alluxio_proto::csi::*;
use alluxio_proto::grpc::WriteType;
use bytes::Bytes;
use common::*;
use std::collections::HashMap;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::{Duration, Instant};
use tonic::transport::Channel;
use tonic::Code;

fn stage_request(plugin: &Plugin, volume: &str, path: &str, mode: Mode) -> NodeStageVolumeRequest {
    NodeStageVolumeRequest {
        volume_id: volume.into(),
        staging_target_path: plugin.kubelet_path(&format!("plugins/staging/{volume}")),
        volume_capability: Some(mount_capability(mode)),
        volume_context: HashMap::from([("alluxioPath".to_string(), path.to_string())]),
        ..Default::default()
    }
}

fn publish_request(
    plugin: &Plugin,
    volume: &str,
    pod: &str,
    readonly: bool,
) -> NodePublishVolumeRequest {
    NodePublishVolumeRequest {
        volume_id: volume.into(),
        staging_target_path: plugin.kubelet_path(&format!("plugins/staging/{volume}")),
        target_path: plugin.kubelet_path(&format!("pods/{pod}/volumes/{volume}")),
        volume_capability: Some(mount_capability(Mode::MultiNodeMultiWriter)),
        readonly,
        ..Default::default()
    }
}

/// Stages volume `v1` (Alluxio path `/ds`, read-only) and publishes it
/// read-only for `pod-a`.
async fn stage_and_publish_read_only(node: &mut NodeClient<Channel>, plugin: &Plugin) {
    node.node_stage_volume(stage_request(
        plugin,
        "v1",
        "/ds",
        Mode::MultiNodeReaderOnly,
    ))
    .await
    .unwrap();
    node.node_publish_volume(publish_request(plugin, "v1", "pod-a", true))
        .await
        .unwrap();
}

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

async fn write_dataset(cluster: &alluxio_testkit::cluster::Cluster, path: &str, len: usize) {
    cluster
        .fs
        .write_file(path, WriteType::CacheThrough, [Bytes::from(pattern(len))])
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stage_publish_and_their_errors_with_real_mounts() {
    if require_root().is_none() {
        return;
    }
    let cluster = cluster().await;
    write_dataset(&cluster, "/data/set/a.bin", 100_000).await;
    let dir = tempfile::tempdir().unwrap();
    let plugin = Plugin::start(dir.path(), &cluster);
    let mut node = plugin.node().await;

    let info = node
        .node_get_info(NodeGetInfoRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(info.node_id, "node-0");
    assert_eq!(
        info.accessible_topology.unwrap().segments["topology.csi.alluxio.rs/node"],
        "node-0"
    );
    let caps = node
        .node_get_capabilities(NodeGetCapabilitiesRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(caps.capabilities.len(), 3);

    // Publishing before staging is a failed precondition.
    let err = node
        .node_publish_volume(publish_request(&plugin, "v1", "pod-a", true))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition, "{err}");

    // Stage twice (idempotent), publish read-only and read-write.
    for _ in 0..2 {
        node.node_stage_volume(stage_request(
            &plugin,
            "v1",
            "/data",
            Mode::MultiNodeMultiWriter,
        ))
        .await
        .unwrap();
    }
    for _ in 0..2 {
        node.node_publish_volume(publish_request(&plugin, "v1", "pod-a", true))
            .await
            .unwrap();
    }
    node.node_publish_volume(publish_request(&plugin, "v1", "pod-b", false))
        .await
        .unwrap();
    let ro = Path::new(&plugin.kubelet_path("pods/pod-a/volumes/v1")).to_path_buf();
    let rw = Path::new(&plugin.kubelet_path("pods/pod-b/volumes/v1")).to_path_buf();
    assert_eq!(
        std::fs::read(ro.join("set/a.bin")).unwrap(),
        pattern(100_000)
    );
    let refused = std::fs::write(ro.join("set/new.txt"), "x").unwrap_err();
    assert_eq!(refused.raw_os_error(), Some(libc::EROFS), "{refused}");
    std::fs::write(rw.join("set/new.txt"), "written by a pod\n").unwrap();
    // The file completes when the kernel releases it, just after close.
    let deadline = Instant::now() + Duration::from_secs(10);
    let written = loop {
        match cluster.fs.open("/data/set/new.txt", None).await {
            Ok(f) => break f,
            Err(e) => assert!(Instant::now() < deadline, "{e}"),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(
        &written.read_at(0, written.len()).await.unwrap()[..],
        b"written by a pod\n"
    );
    // Publishing the same target with another read-only flag conflicts.
    let err = node
        .node_publish_volume(publish_request(&plugin, "v1", "pod-a", false))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::AlreadyExists, "{err}");
    // So does another volume at a target that is already in use.
    node.node_stage_volume(stage_request(
        &plugin,
        "v9",
        "/data",
        Mode::MultiNodeMultiWriter,
    ))
    .await
    .unwrap();
    let mut taken = publish_request(&plugin, "v9", "pod-b", false);
    taken.target_path = rw.display().to_string();
    let err = node.node_publish_volume(taken).await.unwrap_err();
    assert_eq!(err.code(), Code::AlreadyExists, "{err}");
    node.node_unstage_volume(NodeUnstageVolumeRequest {
        volume_id: "v9".into(),
        staging_target_path: plugin.kubelet_path("plugins/staging/v9"),
    })
    .await
    .unwrap();

    // Stats of a published path; errors for unknown volumes and paths.
    let stats = node
        .node_get_volume_stats(NodeGetVolumeStatsRequest {
            volume_id: "v1".into(),
            volume_path: ro.display().to_string(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(stats.usage.len(), 2);
    assert!(stats.usage[0].total > 0);
    assert!(!stats.volume_condition.unwrap().abnormal);
    let err = node
        .node_get_volume_stats(NodeGetVolumeStatsRequest {
            volume_id: "nope".into(),
            volume_path: ro.display().to_string(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);

    // Invalid arguments: each missing field, paths outside the roots or
    // with '..', block access, a staging path another volume uses.
    let mut bad = Vec::new();
    let mut r = stage_request(&plugin, "v2", "/data", Mode::SingleNodeWriter);
    r.volume_id.clear();
    bad.push(("volume_id", r));
    let mut r = stage_request(&plugin, "v2", "/data", Mode::SingleNodeWriter);
    r.staging_target_path.clear();
    bad.push(("staging_target_path is required", r));
    let mut r = stage_request(&plugin, "v2", "/data", Mode::SingleNodeWriter);
    r.volume_capability = None;
    bad.push(("volume_capability", r));
    let mut r = stage_request(&plugin, "v2", "/data", Mode::SingleNodeWriter);
    r.staging_target_path = "/etc/alluxio-csi-test".into();
    bad.push(("outside the allowed roots", r));
    let mut r = stage_request(&plugin, "v2", "/data", Mode::SingleNodeWriter);
    r.staging_target_path = plugin.kubelet_path("plugins/../../escape");
    bad.push(("without '..'", r));
    let mut r = stage_request(&plugin, "v2", "/data", Mode::SingleNodeWriter);
    r.volume_capability = Some(block_capability());
    bad.push(("block volumes", r));
    let mut r = stage_request(&plugin, "v2", "/data", Mode::SingleNodeWriter);
    r.volume_context.clear();
    bad.push(("alluxioPath", r));
    for (why, request) in bad {
        let err = node.node_stage_volume(request).await.unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{why}: {err}");
        assert!(err.message().contains(why), "{why}: {err}");
    }
    let mut r = publish_request(&plugin, "v1", "pod-c", false);
    r.target_path.clear();
    let err = node.node_publish_volume(r).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    let mut other = stage_request(&plugin, "v2", "/data", Mode::SingleNodeWriter);
    other.staging_target_path = plugin.kubelet_path("plugins/staging/v1");
    let err = node.node_stage_volume(other).await.unwrap_err();
    assert_eq!(err.code(), Code::AlreadyExists, "{err}");
    // A staging path that failed to mount leaves nothing behind.
    let err = node
        .node_stage_volume(stage_request(
            &plugin,
            "v3",
            "/no/such/dir",
            Mode::SingleNodeWriter,
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Internal, "{err}");
    assert!(mounts_under(&dir.path().join("kubelet/plugins/staging/v3")).is_empty());

    // Unpublish and unstage, each twice; nothing stays mounted.
    for pod in ["pod-a", "pod-b"] {
        for _ in 0..2 {
            node.node_unpublish_volume(NodeUnpublishVolumeRequest {
                volume_id: "v1".into(),
                target_path: plugin.kubelet_path(&format!("pods/{pod}/volumes/v1")),
            })
            .await
            .unwrap();
        }
    }
    assert!(!ro.exists());
    for _ in 0..2 {
        node.node_unstage_volume(NodeUnstageVolumeRequest {
            volume_id: "v1".into(),
            staging_target_path: plugin.kubelet_path("plugins/staging/v1"),
        })
        .await
        .unwrap();
    }
    assert!(
        mounts_under(dir.path()).is_empty(),
        "{:?}",
        mounts_under(dir.path())
    );
    let (_, metrics) = alluxio_testkit::http_get::http_get(&plugin.metrics, "/metrics")
        .await
        .unwrap();
    assert!(
        metrics.contains(r#"alluxio_csi_operations_total{volume="v1",op="publish"} 6"#),
        "{metrics}"
    );
    assert!(metrics.contains(r#"alluxio_csi_operation_errors_total{volume="v1",op="publish"} 3"#));
}

fn fuse_pid(dir: &Path) -> u32 {
    let states = std::fs::read_dir(dir.join("state/volumes")).unwrap();
    for e in states.flatten() {
        if e.path().extension().is_some_and(|x| x == "json") {
            let v: serde_json::Value =
                serde_json::from_slice(&std::fs::read(e.path()).unwrap()).unwrap();
            return v["pid"].as_u64().unwrap() as u32;
        }
    }
    panic!("no staged volume recorded");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fuse_daemons_outlive_the_plugin_and_dead_ones_are_replaced() {
    if require_root().is_none() {
        return;
    }
    let cluster = cluster().await;
    let len = 8 << 20;
    write_dataset(&cluster, "/ds/big.bin", len).await;
    let dir = tempfile::tempdir().unwrap();
    let mut plugin = Plugin::start(dir.path(), &cluster);
    let mut node = plugin.node().await;
    stage_and_publish_read_only(&mut node, &plugin).await;
    let target = Path::new(&plugin.kubelet_path("pods/pod-a/volumes/v1")).to_path_buf();
    // A read-only publish keeps nosuid and nodev, and only root may reach
    // the plugin's socket.
    let published = alluxio_csi::mounts::mount_at(&target).unwrap();
    assert!(published.read_only, "{published:?}");
    assert!(
        published.has_option("nosuid") && published.has_option("nodev"),
        "{published:?}"
    );
    let socket_mode = std::fs::metadata(&plugin.socket)
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(socket_mode & 0o777, 0o600);

    // A reader in the middle of the file when the plugin is killed.
    let file = target.join("big.bin");
    let (started_tx, started_rx) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut f = std::fs::File::open(file).unwrap();
        let mut out = Vec::new();
        let mut chunk = vec![0u8; 256 << 10];
        loop {
            let n = f.read(&mut chunk).unwrap();
            if n == 0 {
                break;
            }
            out.extend_from_slice(&chunk[..n]);
            if out.len() == n {
                started_tx.send(()).unwrap();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        out
    });
    started_rx.recv().unwrap();
    plugin.kill9();
    let read = reader.join().unwrap();
    assert!(
        read == pattern(len),
        "the read across the plugin's death got wrong bytes"
    );

    // The restarted plugin adopts the daemon: same pid, calls still idempotent.
    let pid = fuse_pid(dir.path());
    let plugin = Plugin::start(dir.path(), &cluster);
    let mut node = plugin.node().await;
    stage_and_publish_read_only(&mut node, &plugin).await;
    assert_eq!(fuse_pid(dir.path()), pid);

    // kill -9 of the daemon: the plugin mounts again and binds the target
    // again; a new read through the same target path works.
    alluxio_testkit::signal(pid, libc::SIGKILL);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if fuse_pid(dir.path()) != pid {
            if let Ok(bytes) = std::fs::read(target.join("big.bin")) {
                assert!(bytes == pattern(len));
                break;
            }
        }
        assert!(Instant::now() < deadline, "the volume never came back");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (_, metrics) = alluxio_testkit::http_get::http_get(&plugin.metrics, "/metrics")
        .await
        .unwrap();
    assert!(
        metrics.contains("alluxio_csi_volume_recoveries_total 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("alluxio_csi_fuse_processes_alive 1"),
        "{metrics}"
    );

    node.node_unpublish_volume(NodeUnpublishVolumeRequest {
        volume_id: "v1".into(),
        target_path: target.display().to_string(),
    })
    .await
    .unwrap();
    node.node_unstage_volume(NodeUnstageVolumeRequest {
        volume_id: "v1".into(),
        staging_target_path: plugin.kubelet_path("plugins/staging/v1"),
    })
    .await
    .unwrap();
    assert!(
        mounts_under(dir.path()).is_empty(),
        "{:?}",
        mounts_under(dir.path())
    );
}

/// A publish carrying the cluster's Secret (the kubelet repeats it with
/// `requiresRepublish`) brings a rotated key to the volume's FUSE daemon:
/// the key file the plugin keeps for it is replaced, a broken key is
/// refused and changes nothing, and the volume reads on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_republished_secret_updates_the_volumes_key() {
    if require_root().is_none() {
        return;
    }
    let cluster = cluster().await;
    write_dataset(&cluster, "/keyed/a.bin", 50_000).await;
    let dir = tempfile::tempdir().unwrap();
    // No key of its own: only the secrets the requests carry.
    let plugin = Plugin::start_with(dir.path(), &cluster, false);
    let mut node = plugin.node().await;
    let old = cluster.key();
    let secrets = |text: String| HashMap::from([("cluster.key".to_string(), text)]);
    let mut stage = stage_request(&plugin, "k1", "/keyed", Mode::MultiNodeReaderOnly);
    stage.secrets = secrets(old.to_text());
    node.node_stage_volume(stage).await.unwrap();
    let mut publish = publish_request(&plugin, "k1", "pod-a", true);
    publish.secrets = secrets(old.to_text());
    node.node_publish_volume(publish.clone()).await.unwrap();
    let target = Path::new(&plugin.kubelet_path("pods/pod-a/volumes/k1")).to_path_buf();
    assert_eq!(
        std::fs::read(target.join("a.bin")).unwrap(),
        pattern(50_000)
    );
    let key_files: Vec<_> = std::fs::read_dir(dir.path().join("state/volumes"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "key"))
        .collect();
    assert_eq!(key_files.len(), 1, "{key_files:?}");
    let key_file = &key_files[0];
    assert_eq!(
        std::fs::read_to_string(key_file).unwrap().trim(),
        old.to_hex()
    );

    // The first step of a rotation, republished.
    let rotated = old
        .rotated(alluxio_common::auth::RotationStep::Add)
        .unwrap();
    publish.secrets = secrets(rotated.to_text());
    node.node_publish_volume(publish.clone()).await.unwrap();
    assert_eq!(
        std::fs::read_to_string(key_file).unwrap().trim(),
        rotated.to_text().trim()
    );
    let mode = std::fs::metadata(key_file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    // A broken key: refused, the file as it was.
    publish.secrets = secrets("not a key".into());
    let err = node.node_publish_volume(publish.clone()).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument, "{err}");
    assert_eq!(
        std::fs::read_to_string(key_file).unwrap().trim(),
        rotated.to_text().trim()
    );
    assert_eq!(
        std::fs::read(target.join("a.bin")).unwrap(),
        pattern(50_000)
    );
    node.node_unpublish_volume(NodeUnpublishVolumeRequest {
        volume_id: "k1".into(),
        target_path: plugin.kubelet_path("pods/pod-a/volumes/k1"),
    })
    .await
    .unwrap();
    node.node_unstage_volume(NodeUnstageVolumeRequest {
        volume_id: "k1".into(),
        staging_target_path: plugin.kubelet_path("plugins/staging/k1"),
    })
    .await
    .unwrap();
}

/// A volume of a TLS cluster: the secrets carry the cluster's CA and
/// server name beside its key (as the operator's Secret does), the
/// plugin writes the CA for the volume's FUSE daemon, which reaches the
/// master and the worker only over TLS; a broken CA is refused at stage.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tls_clusters_volume_is_read_over_tls() {
    if require_root().is_none() {
        return;
    }
    let certs_dir = tempfile::tempdir().unwrap();
    let certs =
        alluxio_testkit::tls::TlsFiles::generate_for(certs_dir.path(), &["DNS:cache.test.alluxio"]);
    let cluster = alluxio_testkit::cluster::start(1, 64 * alluxio_testkit::cluster::MIB, |c| {
        certs.apply(c);
        c.security.tls.server_name = "cache.test.alluxio".into();
    })
    .await;
    write_dataset(&cluster, "/secure/a.bin", 70_000).await;
    let dir = tempfile::tempdir().unwrap();
    let plugin = Plugin::start_with(dir.path(), &cluster, false);
    let mut node = plugin.node().await;
    let ca = std::fs::read_to_string(certs.ca()).unwrap();
    let secrets = HashMap::from([
        ("cluster.key".to_string(), cluster.key().to_text()),
        ("ca.crt".to_string(), ca),
        (
            "tls-server-name".to_string(),
            "cache.test.alluxio".to_string(),
        ),
    ]);

    let mut broken = stage_request(&plugin, "t0", "/secure", Mode::MultiNodeReaderOnly);
    broken.secrets = secrets.clone();
    broken
        .secrets
        .insert("ca.crt".into(), "not a certificate".into());
    let err = node.node_stage_volume(broken).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument, "{err}");

    let mut stage = stage_request(&plugin, "t1", "/secure", Mode::MultiNodeReaderOnly);
    stage.secrets = secrets.clone();
    node.node_stage_volume(stage).await.unwrap();
    let mut publish = publish_request(&plugin, "t1", "pod-a", true);
    publish.secrets = secrets;
    node.node_publish_volume(publish).await.unwrap();
    let target = Path::new(&plugin.kubelet_path("pods/pod-a/volumes/t1")).to_path_buf();
    assert_eq!(
        std::fs::read(target.join("a.bin")).unwrap(),
        pattern(70_000)
    );
    node.node_unpublish_volume(NodeUnpublishVolumeRequest {
        volume_id: "t1".into(),
        target_path: plugin.kubelet_path("pods/pod-a/volumes/t1"),
    })
    .await
    .unwrap();
    node.node_unstage_volume(NodeUnstageVolumeRequest {
        volume_id: "t1".into(),
        staging_target_path: plugin.kubelet_path("plugins/staging/t1"),
    })
    .await
    .unwrap();
}
