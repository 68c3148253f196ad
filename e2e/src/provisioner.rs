//! External-provisioner's part, for the simulation: claims of a
//! StorageClass whose provisioner is `driver` get a volume from the CSI
//! controller (CreateVolume) and a PersistentVolume bound to them; when a
//! claim goes, its PersistentVolume (reclaim policy Delete) is deleted
//! with DeleteVolume. Volume names are `pvc-<claim uid>`, as
//! external-provisioner names them.
//!
//! Secrets, as external-provisioner handles them: the StorageClass's
//! `csi.storage.k8s.io/provisioner-secret-{name,namespace}` name a Secret
//! whose data goes to CreateVolume and DeleteVolume as `secrets`;
//! `csi.storage.k8s.io/node-stage-secret-{name,namespace}` and
//! `node-publish-secret-{name,namespace}` become the PersistentVolume's
//! `nodeStageSecretRef` and `nodePublishSecretRef`, which the kubelet
//! resolves for NodeStageVolume and NodePublishVolume. Every `csi.storage.k8s.io/` parameter is stripped
//! before the driver sees the parameters.

use alluxio_proto::csi::controller_client::ControllerClient;
use alluxio_proto::csi::volume_capability::access_mode::Mode;
use alluxio_proto::csi::volume_capability::{AccessMode, AccessType, MountVolume};
use alluxio_proto::csi::{
    CapacityRange, CreateVolumeRequest, DeleteVolumeRequest, VolumeCapability,
};
use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim, Secret};
use k8s_openapi::api::storage::v1::StorageClass;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::ResourceExt;
use serde_json::json;
use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::time::Duration;
use tonic::transport::Channel;

pub struct Provisioner {
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Provisioner {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn access_mode(mode: &str) -> Mode {
    match mode {
        "ReadWriteOnce" | "ReadWriteOncePod" => Mode::SingleNodeWriter,
        "ReadOnlyMany" => Mode::MultiNodeReaderOnly,
        _ => Mode::MultiNodeMultiWriter,
    }
}

fn bytes_of(quantity: &str) -> i64 {
    let units = [
        ("Ki", 1i64 << 10),
        ("Mi", 1 << 20),
        ("Gi", 1 << 30),
        ("Ti", 1 << 40),
    ];
    for (suffix, factor) in units {
        if let Some(n) = quantity.strip_suffix(suffix) {
            return n.parse::<i64>().unwrap_or(0) * factor;
        }
    }
    quantity.parse().unwrap_or(0)
}

/// Prefix of the parameters meant for the provisioner, not the driver.
const RESERVED_PREFIX: &str = "csi.storage.k8s.io/";

/// The Secret a StorageClass names for `purpose` (`provisioner`,
/// `node-stage`), as (name, namespace).
fn secret_ref(parameters: &BTreeMap<String, String>, purpose: &str) -> Option<(String, String)> {
    let name = parameters.get(&format!("{RESERVED_PREFIX}{purpose}-secret-name"))?;
    let namespace = parameters.get(&format!("{RESERVED_PREFIX}{purpose}-secret-namespace"))?;
    Some((name.clone(), namespace.clone()))
}

/// A Secret's data as the `secrets` map of a CSI request.
pub async fn secret_data(
    client: &kube::Client,
    name: &str,
    namespace: &str,
) -> Result<HashMap<String, String>, String> {
    let secret = Api::<Secret>::namespaced(client.clone(), namespace)
        .get_opt(name)
        .await
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("Secret {namespace}/{name} not found"))?;
    Ok(secret
        .data
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k, String::from_utf8_lossy(&v.0).into_owned()))
        .collect())
}

/// The provisioner secrets of a StorageClass's parameters (none if it
/// names no Secret).
async fn provisioner_secrets(
    client: &kube::Client,
    parameters: &BTreeMap<String, String>,
) -> Result<HashMap<String, String>, String> {
    match secret_ref(parameters, "provisioner") {
        Some((name, namespace)) => secret_data(client, &name, &namespace).await,
        None => Ok(HashMap::new()),
    }
}

impl Provisioner {
    /// Provisions for `driver` through the controller at `socket`.
    pub async fn start(client: kube::Client, driver: &str, socket: &Path) -> Provisioner {
        let controller = ControllerClient::new(crate::csi_client::csi_channel(socket).await);
        let driver = driver.to_string();
        let task = tokio::spawn(async move {
            let mut controller = controller;
            loop {
                if let Err(e) = sync(&client, &driver, &mut controller).await {
                    eprintln!("provisioner: {e}");
                }
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        });
        Provisioner { task }
    }
}

async fn sync(
    client: &kube::Client,
    driver: &str,
    controller: &mut ControllerClient<Channel>,
) -> Result<(), String> {
    let classes: Vec<StorageClass> = Api::<StorageClass>::all(client.clone())
        .list(&ListParams::default())
        .await
        .map_err(|e| e.to_string())?
        .items
        .into_iter()
        .filter(|c| c.provisioner == driver)
        .collect();
    let claims = Api::<PersistentVolumeClaim>::all(client.clone())
        .list(&ListParams::default())
        .await
        .map_err(|e| e.to_string())?
        .items;
    let volumes_api: Api<PersistentVolume> = Api::all(client.clone());
    for claim in &claims {
        let spec = claim.spec.clone().unwrap_or_default();
        let Some(class) = classes
            .iter()
            .find(|c| Some(c.name_any()) == spec.storage_class_name)
        else {
            continue;
        };
        if spec.volume_name.is_some() || claim.metadata.deletion_timestamp.is_some() {
            continue;
        }
        let name = format!("pvc-{}", claim.uid().unwrap_or_default());
        let requested = spec
            .resources
            .as_ref()
            .and_then(|r| r.requests.as_ref())
            .and_then(|r| r.get("storage"))
            .map_or(0, |q| bytes_of(&q.0));
        let modes = spec.access_modes.clone().unwrap_or_default();
        let capabilities = modes
            .iter()
            .map(|m| VolumeCapability {
                access_type: Some(AccessType::Mount(MountVolume::default())),
                access_mode: Some(AccessMode {
                    mode: access_mode(m) as i32,
                }),
            })
            .collect();
        let class_parameters = class.parameters.clone().unwrap_or_default();
        let secrets = provisioner_secrets(client, &class_parameters).await?;
        let reference = |purpose| {
            secret_ref(&class_parameters, purpose)
                .map(|(name, namespace)| json!({"name": name, "namespace": namespace}))
        };
        let (node_stage_secret, node_publish_secret) =
            (reference("node-stage"), reference("node-publish"));
        let volume = controller
            .create_volume(CreateVolumeRequest {
                name: name.clone(),
                capacity_range: Some(CapacityRange {
                    required_bytes: requested,
                    limit_bytes: 0,
                }),
                volume_capabilities: capabilities,
                parameters: class_parameters
                    .iter()
                    .filter(|(k, _)| !k.starts_with(RESERVED_PREFIX))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
                secrets,
                ..Default::default()
            })
            .await
            .map_err(|e| format!("CreateVolume {name}: {e}"))?
            .into_inner()
            .volume
            .ok_or("CreateVolume returned no volume")?;
        let pv: PersistentVolume = serde_json::from_value(json!({
            "metadata": {"name": name, "annotations": {"pv.kubernetes.io/provisioned-by": driver}},
            "spec": {
                "capacity": {"storage": volume.capacity_bytes.to_string()},
                "accessModes": modes,
                "persistentVolumeReclaimPolicy": "Delete",
                "storageClassName": class.name_any(),
                "claimRef": {"namespace": claim.namespace(), "name": claim.name_any(), "uid": claim.uid()},
                "csi": {"driver": driver, "volumeHandle": volume.volume_id,
                        "volumeAttributes": volume.volume_context,
                        "nodeStageSecretRef": node_stage_secret,
                        "nodePublishSecretRef": node_publish_secret},
            },
        }))
        .map_err(|e| e.to_string())?;
        if volumes_api
            .get_opt(&name)
            .await
            .map_err(|e| e.to_string())?
            .is_none()
        {
            volumes_api
                .create(&PostParams::default(), &pv)
                .await
                .map_err(|e| e.to_string())?;
        }
        let claims_api: Api<PersistentVolumeClaim> =
            Api::namespaced(client.clone(), &claim.namespace().unwrap_or_default());
        let params = PatchParams::default();
        claims_api
            .patch(
                &claim.name_any(),
                &params,
                &Patch::Merge(json!({"spec": {"volumeName": name}})),
            )
            .await
            .map_err(|e| e.to_string())?;
        claims_api
            .patch_status(
                &claim.name_any(),
                &params,
                &Patch::Merge(json!({"status": {"phase": "Bound"}})),
            )
            .await
            .map_err(|e| e.to_string())?;
    }
    // Released volumes: their claim is gone.
    for pv in volumes_api
        .list(&ListParams::default())
        .await
        .map_err(|e| e.to_string())?
        .items
    {
        let spec = pv.spec.clone().unwrap_or_default();
        let Some(csi) = spec.csi.as_ref().filter(|c| c.driver == driver) else {
            continue;
        };
        let Some(claim_ref) = &spec.claim_ref else {
            continue;
        };
        let bound = claims.iter().any(|c| c.uid() == claim_ref.uid);
        if !bound && spec.persistent_volume_reclaim_policy.as_deref() == Some("Delete") {
            // The provisioner secret of the volume's StorageClass, if it
            // still exists.
            let class_parameters = classes
                .iter()
                .find(|c| Some(c.name_any()) == spec.storage_class_name)
                .and_then(|c| c.parameters.clone())
                .unwrap_or_default();
            let secrets = provisioner_secrets(client, &class_parameters).await?;
            controller
                .delete_volume(DeleteVolumeRequest {
                    volume_id: csi.volume_handle.clone(),
                    secrets,
                })
                .await
                .map_err(|e| format!("DeleteVolume {}: {e}", csi.volume_handle))?;
            volumes_api
                .delete(&pv.name_any(), &DeleteParams::default())
                .await
                .map_err(|e| e.to_string())?;
        }
    }
    Ok(())
}
