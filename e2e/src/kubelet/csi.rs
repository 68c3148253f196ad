//! The kubelet's side of CSI, for pods whose claims are bound to volumes
//! of the node plugin's driver: NodeStageVolume at
//! `<root>/plugins/kubernetes.io/csi/<driver>/<pv>/globalmount` once per
//! node, NodePublishVolume at `<pod dir>/volumes/kubernetes.io~csi/<pv>/mount`
//! per pod (the paths kubelet uses), the reverse when pods go.

use alluxio_proto::csi::node_client::NodeClient;
use alluxio_proto::csi::volume_capability::access_mode::Mode;
use alluxio_proto::csi::volume_capability::{AccessMode, AccessType, MountVolume};
use alluxio_proto::csi::*;
use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim};
use kube::api::Api;
use std::path::{Path, PathBuf};
use tonic::transport::Channel;

/// The node plugin this kubelet calls.
#[derive(Clone, Debug)]
pub struct CsiPlugin {
    pub driver: String,
    pub socket: PathBuf,
}

/// A volume published for one pod.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PublishedVolume {
    pub volume_id: String,
    pub staging: PathBuf,
    pub target: PathBuf,
}

fn capability(modes: &[String]) -> VolumeCapability {
    let mode = match modes.first().map(String::as_str) {
        Some("ReadOnlyMany") => Mode::MultiNodeReaderOnly,
        Some("ReadWriteOnce") | Some("ReadWriteOncePod") => Mode::SingleNodeWriter,
        _ => Mode::MultiNodeMultiWriter,
    };
    VolumeCapability {
        access_type: Some(AccessType::Mount(MountVolume::default())),
        access_mode: Some(AccessMode { mode: mode as i32 }),
    }
}

async fn node_client(plugin: &CsiPlugin) -> NodeClient<Channel> {
    NodeClient::new(crate::csi_client::csi_channel(&plugin.socket).await)
}

/// Stages (idempotently) and publishes the volume bound to `claim` for
/// the pod in `pod_dir`; `None` when the claim's volume is not ours.
pub async fn publish_claim(
    client: &kube::Client,
    plugin: &CsiPlugin,
    root: &Path,
    pod_dir: &Path,
    namespace: &str,
    claim: &str,
    read_only: bool,
) -> Result<Option<PublishedVolume>, String> {
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), namespace);
    let pvc = claims
        .get_opt(claim)
        .await
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("claim {claim} not found"))?;
    let Some(pv_name) = pvc.spec.as_ref().and_then(|s| s.volume_name.clone()) else {
        return Err(format!("claim {claim} is not bound yet"));
    };
    let pv = Api::<PersistentVolume>::all(client.clone())
        .get(&pv_name)
        .await
        .map_err(|e| e.to_string())?;
    let spec = pv.spec.unwrap_or_default();
    let Some(source) = spec.csi.filter(|c| c.driver == plugin.driver) else {
        return Ok(None);
    };
    let capability = capability(&spec.access_modes.unwrap_or_default());
    let staging = root
        .join("plugins/kubernetes.io/csi")
        .join(&plugin.driver)
        .join(&pv_name)
        .join("globalmount");
    let target = pod_dir
        .join("volumes/kubernetes.io~csi")
        .join(&pv_name)
        .join("mount");
    let context = source
        .volume_attributes
        .unwrap_or_default()
        .into_iter()
        .collect();
    // The node-stage and node-publish Secrets the volume names, resolved
    // as the kubelet does.
    let resolve = |r: Option<k8s_openapi::api::core::v1::SecretReference>| async move {
        match r {
            Some(r) => {
                let namespace = r.namespace.clone().unwrap_or_else(|| "default".into());
                let name = r.name.clone().unwrap_or_default();
                crate::provisioner::secret_data(client, &name, &namespace).await
            }
            None => Ok(Default::default()),
        }
    };
    let secrets = resolve(source.node_stage_secret_ref.clone()).await?;
    let publish_secrets = resolve(source.node_publish_secret_ref.clone()).await?;
    let mut node = node_client(plugin).await;
    node.node_stage_volume(NodeStageVolumeRequest {
        volume_id: source.volume_handle.clone(),
        staging_target_path: staging.display().to_string(),
        volume_capability: Some(capability.clone()),
        volume_context: context,
        secrets,
        ..Default::default()
    })
    .await
    .map_err(|e| format!("NodeStageVolume: {e}"))?;
    node.node_publish_volume(NodePublishVolumeRequest {
        volume_id: source.volume_handle.clone(),
        staging_target_path: staging.display().to_string(),
        target_path: target.display().to_string(),
        volume_capability: Some(capability),
        readonly: read_only || source.read_only.unwrap_or(false),
        secrets: publish_secrets,
        ..Default::default()
    })
    .await
    .map_err(|e| format!("NodePublishVolume: {e}"))?;
    Ok(Some(PublishedVolume {
        volume_id: source.volume_handle,
        staging,
        target,
    }))
}

/// Unpublishes `v`, and unstages it too when `last` (no other pod of
/// this node uses it).
pub async fn unpublish(plugin: &CsiPlugin, v: &PublishedVolume, last: bool) {
    let mut node = node_client(plugin).await;
    if let Err(e) = node
        .node_unpublish_volume(NodeUnpublishVolumeRequest {
            volume_id: v.volume_id.clone(),
            target_path: v.target.display().to_string(),
        })
        .await
    {
        eprintln!("process kubelet: NodeUnpublishVolume {}: {e}", v.volume_id);
    }
    if last {
        if let Err(e) = node
            .node_unstage_volume(NodeUnstageVolumeRequest {
                volume_id: v.volume_id.clone(),
                staging_target_path: v.staging.display().to_string(),
            })
            .await
        {
            eprintln!("process kubelet: NodeUnstageVolume {}: {e}", v.volume_id);
        }
    }
}
