//! Identity and Controller RPCs of the real plugin process over its unix
//! socket, against an in-process cluster: success, idempotency and the
//! errors the CSI spec defines.

mod common;

use alluxio_proto::csi::volume_capability::access_mode::Mode;
use alluxio_proto::csi::*;
use common::*;
use std::collections::HashMap;
use tonic::Code;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identity_and_controller_rpcs_follow_the_spec() {
    let cluster = cluster().await;
    let dir = tempfile::tempdir().unwrap();
    let plugin = Plugin::start(dir.path(), &cluster);

    let mut identity = plugin.identity().await;
    let info = identity
        .get_plugin_info(GetPluginInfoRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(info.name, "csi.alluxio.rs");
    assert!(!info.vendor_version.is_empty());
    let ready = identity.probe(ProbeRequest {}).await.unwrap().into_inner();
    assert_eq!(ready.ready, Some(true));
    let caps = identity
        .get_plugin_capabilities(GetPluginCapabilitiesRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(caps.capabilities.len(), 2);

    let mut controller = plugin.controller().await;
    let caps = controller
        .controller_get_capabilities(ControllerGetCapabilitiesRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(caps.capabilities.len(), 2);

    let request = |name: &str, required: i64, caps: Vec<VolumeCapability>| CreateVolumeRequest {
        name: name.into(),
        capacity_range: Some(CapacityRange {
            required_bytes: required,
            limit_bytes: 0,
        }),
        volume_capabilities: caps,
        parameters: HashMap::from([
            ("readType".to_string(), "CACHE".to_string()),
            (
                "csi.storage.k8s.io/pvc/name".to_string(),
                "data".to_string(),
            ),
        ]),
        ..Default::default()
    };
    let rwx = || vec![mount_capability(Mode::MultiNodeMultiWriter)];
    let created = controller
        .create_volume(request("pvc-1", 1 << 30, rwx()))
        .await
        .unwrap()
        .into_inner()
        .volume
        .unwrap();
    assert_eq!(created.volume_id, "pvc-1");
    assert_eq!(created.capacity_bytes, 1 << 30);
    assert_eq!(created.volume_context["alluxioPath"], "/csi/volumes/pvc-1");
    assert_eq!(created.volume_context["readType"], "CACHE");
    let status = cluster
        .client
        .get_status("/csi/volumes/pvc-1", None)
        .await
        .unwrap();
    assert!(status.folder);

    // Idempotent by name; a smaller request fits the existing volume.
    let again = controller
        .create_volume(request("pvc-1", 1 << 20, rwx()))
        .await
        .unwrap()
        .into_inner()
        .volume
        .unwrap();
    assert_eq!(again, created);
    // The same name with an incompatible capacity or parameters.
    let err = controller
        .create_volume(request("pvc-1", 2 << 30, rwx()))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::AlreadyExists, "{err}");
    let mut other = request("pvc-1", 1 << 30, rwx());
    other
        .parameters
        .insert("readType".into(), "NO_CACHE".into());
    let err = controller.create_volume(other).await.unwrap_err();
    assert_eq!(err.code(), Code::AlreadyExists, "{err}");

    // Bad requests.
    for (bad, why) in [
        (request("", 1, rwx()), "name is required"),
        (request("a/b", 1, rwx()), "one path component"),
        (request("pvc-2", 1, vec![]), "volume_capabilities"),
        (
            request("pvc-2", 1, vec![block_capability()]),
            "block volumes",
        ),
    ] {
        let err = controller.create_volume(bad).await.unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{err}");
        assert!(err.message().contains(why), "{err}");
    }
    let mut unknown = request("pvc-2", 1, rwx());
    unknown.parameters.insert("colour".into(), "blue".into());
    let err = controller.create_volume(unknown).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().contains("colour"), "{err}");

    // ValidateVolumeCapabilities.
    let validate = |id: &str, caps: Vec<VolumeCapability>| ValidateVolumeCapabilitiesRequest {
        volume_id: id.into(),
        volume_capabilities: caps,
        ..Default::default()
    };
    let ok = controller
        .validate_volume_capabilities(validate("pvc-1", rwx()))
        .await
        .unwrap()
        .into_inner();
    assert!(ok.confirmed.is_some());
    let block = controller
        .validate_volume_capabilities(validate("pvc-1", vec![block_capability()]))
        .await
        .unwrap()
        .into_inner();
    assert!(
        block.confirmed.is_none() && block.message.contains("block"),
        "{block:?}"
    );
    let err = controller
        .validate_volume_capabilities(validate("nope", rwx()))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    let err = controller
        .validate_volume_capabilities(validate("pvc-1", vec![]))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);

    // GetCapacity: the live worker's free cache. The volume record just
    // written reserved a whole block while it was written, and the master
    // learns of the release at the next heartbeat: wait for that.
    let capacity = alluxio_testkit::eventually(
        "free cache reported",
        std::time::Duration::from_secs(20),
        || {
            let mut controller = controller.clone();
            async move {
                let c = controller
                    .get_capacity(GetCapacityRequest::default())
                    .await
                    .unwrap()
                    .into_inner();
                (c.available_capacity > 0).then_some(c)
            }
        },
    )
    .await;
    let workers = cluster.client.worker_infos().await.unwrap();
    assert!(
        capacity.available_capacity <= 64 << 20,
        "{capacity:?} with workers {workers:?}"
    );

    // DeleteVolume is idempotent; the volume is gone afterwards.
    for _ in 0..2 {
        controller
            .delete_volume(DeleteVolumeRequest {
                volume_id: "pvc-1".into(),
                ..Default::default()
            })
            .await
            .unwrap();
    }
    let err = controller
        .validate_volume_capabilities(validate("pvc-1", rwx()))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    assert!(cluster
        .client
        .get_status("/csi/volumes/pvc-1", None)
        .await
        .is_err());
    let err = controller
        .delete_volume(DeleteVolumeRequest::default())
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);

    // A StorageClass of another cluster names its master: the volume id
    // carries it, so DeleteVolume reaches the same master.
    let mut named = request("pvc-3", 1, rwx());
    named
        .parameters
        .insert("masterAddress".into(), master_address(&cluster));
    let volume = controller
        .create_volume(named)
        .await
        .unwrap()
        .into_inner()
        .volume
        .unwrap();
    assert_eq!(
        volume.volume_id,
        format!("pvc-3@{}", master_address(&cluster))
    );
    assert_eq!(
        volume.volume_context["masterAddress"],
        master_address(&cluster)
    );
    controller
        .delete_volume(DeleteVolumeRequest {
            volume_id: volume.volume_id,
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(cluster
        .client
        .get_status("/csi/volumes/pvc-3", None)
        .await
        .is_err());

    // basePath puts volumes under another directory (a Mount's path).
    let mut based = request("pvc-4", 1, rwx());
    based
        .parameters
        .insert("basePath".into(), "/mounts/s3/".into());
    let volume = controller
        .create_volume(based)
        .await
        .unwrap()
        .into_inner()
        .volume
        .unwrap();
    assert_eq!(volume.volume_context["alluxioPath"], "/mounts/s3/pvc-4");
    let status = cluster.client.get_status("/mounts/s3/pvc-4", None).await;
    assert!(status.unwrap().folder);
    controller
        .delete_volume(DeleteVolumeRequest {
            volume_id: "pvc-4".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    let status = cluster.client.get_status("/mounts/s3/pvc-4", None).await;
    assert!(status.is_err());
    let mut relative = request("pvc-5", 1, rwx());
    relative
        .parameters
        .insert("basePath".into(), "mounts/../x".into());
    let err = controller.create_volume(relative).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument, "{err}");
}
