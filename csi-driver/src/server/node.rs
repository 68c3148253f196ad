//! The CSI Node service: NodeStageVolume starts one FUSE daemon per
//! volume at the staging path (`fuse_daemons`), NodePublishVolume
//! bind-mounts the staging path at each pod's target path (read-only when
//! asked). Every call is idempotent, paths must lie inside the allowed
//! roots, and a failure leaves nothing half-mounted.

use super::{read_only_mode, unsupported_capability};
use crate::fuse_daemons::{FuseDaemons, StagedVolume, VolumeTls};
use crate::metrics::CsiMetrics;
use crate::mounts;
use crate::paths::{allowed_path, PathError};
use alluxio_proto::csi::node_server::Node;
use alluxio_proto::csi::node_service_capability::{rpc, Rpc, Type as CapabilityType};
use alluxio_proto::csi::volume_usage::Unit;
use alluxio_proto::csi::*;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use tonic::{Request, Response, Status};

/// Topology key of the node a volume is staged on.
pub const TOPOLOGY_NODE_KEY: &str = "topology.csi.alluxio.rs/node";

pub struct NodeService {
    pub node_id: String,
    /// Master address used when a volume's context does not name one.
    pub master: String,
    /// Staging and target paths must be inside one of these.
    pub allowed_roots: Vec<PathBuf>,
    pub daemons: Arc<FuseDaemons>,
    pub metrics: Arc<CsiMetrics>,
}

#[derive(Debug, thiserror::Error)]
enum NodeError {
    #[error("{0}")]
    InvalidArgument(String),
    #[error(transparent)]
    Path(#[from] PathError),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    AlreadyExists(String),
    #[error("{0}")]
    FailedPrecondition(String),
    #[error("{0}")]
    Internal(String),
}

impl From<NodeError> for Status {
    fn from(e: NodeError) -> Status {
        match e {
            NodeError::InvalidArgument(m) => Status::invalid_argument(m),
            NodeError::Path(e) => Status::invalid_argument(e.to_string()),
            NodeError::NotFound(m) => Status::not_found(m),
            NodeError::AlreadyExists(m) => Status::already_exists(m),
            NodeError::FailedPrecondition(m) => Status::failed_precondition(m),
            NodeError::Internal(m) => Status::internal(m),
        }
    }
}

fn require(value: &str, field: &str) -> Result<(), NodeError> {
    if value.is_empty() {
        Err(NodeError::InvalidArgument(format!("{field} is required")))
    } else {
        Ok(())
    }
}

fn check_capability(c: Option<&VolumeCapability>) -> Result<&VolumeCapability, NodeError> {
    let c = c.ok_or_else(|| NodeError::InvalidArgument("volume_capability is required".into()))?;
    match unsupported_capability(c) {
        Some(why) => Err(NodeError::InvalidArgument(why)),
        None => Ok(c),
    }
}

impl NodeService {
    async fn stage(&self, req: NodeStageVolumeRequest) -> Result<(), NodeError> {
        require(&req.volume_id, "volume_id")?;
        let staging = allowed_path(
            "staging_target_path",
            &req.staging_target_path,
            &self.allowed_roots,
        )?;
        let capability = check_capability(req.volume_capability.as_ref())?;
        let ctx = &req.volume_context;
        let alluxio_path = ctx.get("alluxioPath").cloned().ok_or_else(|| {
            NodeError::InvalidArgument("volume_context.alluxioPath is required".into())
        })?;
        if !alluxio_path.starts_with('/') {
            return Err(NodeError::InvalidArgument(format!(
                "volume_context.alluxioPath {alluxio_path:?} must be absolute"
            )));
        }
        let mut mount_options: Vec<String> = ctx
            .get("mountOptions")
            .map(|o| {
                o.split(',')
                    .filter(|s| !s.is_empty())
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default();
        if let Some(read_type) = ctx.get("readType") {
            mount_options.push(format!("read_type={read_type}"));
        }
        // The cluster's Secret (the StorageClass's node-stage secret) is
        // the daemon's key; checked here so a bad one fails the stage.
        let key_file = match req
            .secrets
            .get(crate::server::controller::CLUSTER_KEY_SECRET)
        {
            None => None,
            Some(hex) => {
                alluxio_common::auth::ClusterKey::from_hex(hex)
                    .map_err(|e| NodeError::InvalidArgument(format!("secret cluster.key: {e}")))?;
                Some(
                    self.daemons
                        .write_key(&req.volume_id, hex)
                        .map_err(|e| NodeError::Internal(e.to_string()))?,
                )
            }
        };
        // A TLS cluster's CA from the same secrets, for the daemon.
        let tls = match secret_tls(&req.secrets)? {
            None => None,
            Some(tls) => Some(VolumeTls {
                ca_file: self
                    .daemons
                    .write_ca(&req.volume_id, tls.ca_pem)
                    .map_err(|e| NodeError::Internal(e.to_string()))?,
                server_name: tls.server_name.map(str::to_string),
            }),
        };
        let wanted = StagedVolume {
            key_file,
            tls,
            volume_id: req.volume_id.clone(),
            staging_path: staging.clone(),
            alluxio_path,
            master: ctx
                .get("masterAddress")
                .cloned()
                .unwrap_or_else(|| self.master.clone()),
            read_only: read_only_mode(capability),
            mount_options,
            pid: 0,
            targets: Vec::new(),
        };
        if let Some(existing) = self.daemons.get(&req.volume_id) {
            let same = existing.staging_path == wanted.staging_path
                && existing.alluxio_path == wanted.alluxio_path
                && existing.read_only == wanted.read_only;
            if !same {
                return Err(NodeError::AlreadyExists(format!(
                    "volume {} is staged at {} with other settings",
                    req.volume_id,
                    existing.staging_path.display()
                )));
            }
            if mounts::is_fuse_mount(&staging) {
                return Ok(());
            }
        }
        if let Some(other) = self.daemons.find_by_path(&staging) {
            if other.volume_id != req.volume_id {
                return Err(NodeError::AlreadyExists(format!(
                    "{} is the staging path of volume {}",
                    staging.display(),
                    other.volume_id
                )));
            }
        }
        std::fs::create_dir_all(&staging).map_err(|e| {
            NodeError::Internal(format!("cannot create {}: {e}", staging.display()))
        })?;
        let started = self
            .daemons
            .start(wanted)
            .await
            .map_err(|e| NodeError::Internal(e.to_string()))?;
        tracing::info!(volume = req.volume_id, pid = started.pid, staging = %staging.display(), "staged");
        Ok(())
    }

    async fn unstage(&self, req: NodeUnstageVolumeRequest) -> Result<(), NodeError> {
        require(&req.volume_id, "volume_id")?;
        let staging = allowed_path(
            "staging_target_path",
            &req.staging_target_path,
            &self.allowed_roots,
        )?;
        if self.daemons.get(&req.volume_id).is_some() {
            self.daemons.stop(&req.volume_id).await;
        } else if mounts::is_fuse_mount(&staging) {
            // Staged by someone we no longer know: just detach it.
            mounts::unmount(&staging, true).map_err(|e| NodeError::Internal(e.to_string()))?;
        }
        tracing::info!(volume = req.volume_id, "unstaged");
        Ok(())
    }

    /// A publish that carries the cluster's Secret (the StorageClass's
    /// node-publish secret; the kubelet calls publish again periodically
    /// with `requiresRepublish`) brings the volume's key file up to date,
    /// so its FUSE daemon, which reads the file again every 10 s, follows
    /// a key rotation.
    fn refresh_key(
        &self,
        volume: &StagedVolume,
        secrets: &std::collections::HashMap<String, String>,
    ) -> Result<(), NodeError> {
        let (Some(key_file), Some(text)) = (
            &volume.key_file,
            secrets.get(crate::server::controller::CLUSTER_KEY_SECRET),
        ) else {
            return Ok(());
        };
        alluxio_common::auth::ClusterKey::from_hex(text)
            .map_err(|e| NodeError::InvalidArgument(format!("secret cluster.key: {e}")))?;
        if std::fs::read_to_string(key_file).is_ok_and(|old| old.trim() == text.trim()) {
            return Ok(());
        }
        self.daemons
            .write_key(&volume.volume_id, text)
            .map_err(|e| NodeError::Internal(e.to_string()))?;
        tracing::info!(
            volume = volume.volume_id,
            "the volume's cluster key changed: written for its daemon"
        );
        Ok(())
    }

    /// Like [`Self::refresh_key`], for a TLS cluster's CA (its daemon
    /// reads the file again too): a renewed CA reaches running volumes.
    fn refresh_ca(
        &self,
        volume: &StagedVolume,
        secrets: &std::collections::HashMap<String, String>,
    ) -> Result<(), NodeError> {
        let Some(tls) = &volume.tls else {
            return Ok(());
        };
        let Some(given) = secret_tls(secrets)? else {
            return Ok(());
        };
        if std::fs::read_to_string(&tls.ca_file).is_ok_and(|old| old == given.ca_pem) {
            return Ok(());
        }
        self.daemons
            .write_ca(&volume.volume_id, given.ca_pem)
            .map_err(|e| NodeError::Internal(e.to_string()))?;
        tracing::info!(
            volume = volume.volume_id,
            "the volume's TLS CA changed: written for its daemon"
        );
        Ok(())
    }

    async fn publish(&self, req: NodePublishVolumeRequest) -> Result<(), NodeError> {
        require(&req.volume_id, "volume_id")?;
        let staging = allowed_path(
            "staging_target_path",
            &req.staging_target_path,
            &self.allowed_roots,
        )?;
        let target = allowed_path("target_path", &req.target_path, &self.allowed_roots)?;
        check_capability(req.volume_capability.as_ref())?;
        let staged = self
            .daemons
            .get(&req.volume_id)
            .filter(|v| v.staging_path == staging);
        if staged.is_none() || !mounts::is_fuse_mount(&staging) {
            return Err(NodeError::FailedPrecondition(format!(
                "volume {} is not staged at {}",
                req.volume_id,
                staging.display()
            )));
        }
        if let Some(v) = &staged {
            self.refresh_key(v, &req.secrets)?;
            self.refresh_ca(v, &req.secrets)?;
        }
        if let Some(m) = mounts::mount_at(&target) {
            // Already done: this volume, published here, the same way.
            let ours = staged
                .as_ref()
                .is_some_and(|v| v.targets.iter().any(|(t, _)| *t == target));
            if ours && m.read_only == req.readonly && m.fs_type.starts_with("fuse") {
                return Ok(());
            }
            return Err(NodeError::AlreadyExists(format!(
                "{} is already mounted ({}, read-only: {})",
                target.display(),
                m.fs_type,
                m.read_only
            )));
        }
        std::fs::create_dir_all(&target)
            .map_err(|e| NodeError::Internal(format!("cannot create {}: {e}", target.display())))?;
        mounts::bind(&staging, &target, req.readonly).map_err(|e| {
            NodeError::Internal(format!("cannot bind-mount {}: {e}", target.display()))
        })?;
        if let Err(e) = self
            .daemons
            .add_target(&req.volume_id, &target, req.readonly)
        {
            let _ = mounts::unmount(&target, true);
            return Err(NodeError::Internal(e.to_string()));
        }
        tracing::info!(volume = req.volume_id, target = %target.display(), readonly = req.readonly, "published");
        Ok(())
    }

    async fn unpublish(&self, req: NodeUnpublishVolumeRequest) -> Result<(), NodeError> {
        require(&req.volume_id, "volume_id")?;
        let target = allowed_path("target_path", &req.target_path, &self.allowed_roots)?;
        while mounts::mount_at(&target).is_some() {
            if mounts::unmount(&target, false).is_err() {
                mounts::unmount(&target, true).map_err(|e| {
                    NodeError::Internal(format!("cannot unmount {}: {e}", target.display()))
                })?;
            }
        }
        match std::fs::remove_dir(&target) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(NodeError::Internal(format!(
                    "cannot remove {}: {e}",
                    target.display()
                )))
            }
        }
        self.daemons
            .remove_target(&target)
            .map_err(|e| NodeError::Internal(e.to_string()))?;
        tracing::info!(volume = req.volume_id, target = %target.display(), "unpublished");
        Ok(())
    }

    /// Counts the outcome of `op` on `volume` and answers it.
    fn counted<T>(
        &self,
        volume: &str,
        op: &'static str,
        result: Result<(), NodeError>,
        response: T,
    ) -> Result<Response<T>, Status> {
        self.metrics.count(volume, op, result.is_ok());
        result?;
        Ok(Response::new(response))
    }

    fn stats(
        &self,
        req: NodeGetVolumeStatsRequest,
    ) -> Result<NodeGetVolumeStatsResponse, NodeError> {
        require(&req.volume_id, "volume_id")?;
        require(&req.volume_path, "volume_path")?;
        let staged = self.daemons.get(&req.volume_id).ok_or_else(|| {
            NodeError::NotFound(format!("volume {} is not staged here", req.volume_id))
        })?;
        let path = PathBuf::from(&req.volume_path);
        let known = staged.staging_path == path || staged.targets.iter().any(|(t, _)| *t == path);
        if !known {
            return Err(NodeError::NotFound(format!(
                "{} is not a path of volume {}",
                req.volume_path, req.volume_id
            )));
        }
        if !mounts::is_connected(&path) {
            return Ok(NodeGetVolumeStatsResponse {
                usage: Vec::new(),
                volume_condition: Some(VolumeCondition {
                    abnormal: true,
                    message: "the FUSE daemon does not answer; it is being restarted".into(),
                }),
            });
        }
        let [total, available, used, inodes, inodes_free, inodes_used] =
            mounts::usage(&path).map_err(|e| NodeError::Internal(e.to_string()))?;
        Ok(NodeGetVolumeStatsResponse {
            usage: vec![
                VolumeUsage {
                    available,
                    total,
                    used,
                    unit: Unit::Bytes as i32,
                },
                VolumeUsage {
                    available: inodes_free,
                    total: inodes,
                    used: inodes_used,
                    unit: Unit::Inodes as i32,
                },
            ],
            volume_condition: Some(VolumeCondition {
                abnormal: false,
                message: String::new(),
            }),
        })
    }
}

#[tonic::async_trait]
impl Node for NodeService {
    async fn node_stage_volume(
        &self,
        req: Request<NodeStageVolumeRequest>,
    ) -> Result<Response<NodeStageVolumeResponse>, Status> {
        let req = req.into_inner();
        let volume = req.volume_id.clone();
        let result = self.stage(req).await;
        self.counted(&volume, "stage", result, NodeStageVolumeResponse {})
    }

    async fn node_unstage_volume(
        &self,
        req: Request<NodeUnstageVolumeRequest>,
    ) -> Result<Response<NodeUnstageVolumeResponse>, Status> {
        let req = req.into_inner();
        let volume = req.volume_id.clone();
        let result = self.unstage(req).await;
        self.counted(&volume, "unstage", result, NodeUnstageVolumeResponse {})
    }

    async fn node_publish_volume(
        &self,
        req: Request<NodePublishVolumeRequest>,
    ) -> Result<Response<NodePublishVolumeResponse>, Status> {
        let req = req.into_inner();
        let volume = req.volume_id.clone();
        let result = self.publish(req).await;
        self.counted(&volume, "publish", result, NodePublishVolumeResponse {})
    }

    async fn node_unpublish_volume(
        &self,
        req: Request<NodeUnpublishVolumeRequest>,
    ) -> Result<Response<NodeUnpublishVolumeResponse>, Status> {
        let req = req.into_inner();
        let volume = req.volume_id.clone();
        let result = self.unpublish(req).await;
        self.counted(&volume, "unpublish", result, NodeUnpublishVolumeResponse {})
    }

    async fn node_get_volume_stats(
        &self,
        req: Request<NodeGetVolumeStatsRequest>,
    ) -> Result<Response<NodeGetVolumeStatsResponse>, Status> {
        Ok(Response::new(self.stats(req.into_inner())?))
    }

    async fn node_get_capabilities(
        &self,
        _: Request<NodeGetCapabilitiesRequest>,
    ) -> Result<Response<NodeGetCapabilitiesResponse>, Status> {
        let rpc = |t: rpc::Type| NodeServiceCapability {
            r#type: Some(CapabilityType::Rpc(Rpc { r#type: t as i32 })),
        };
        Ok(Response::new(NodeGetCapabilitiesResponse {
            capabilities: vec![
                rpc(rpc::Type::StageUnstageVolume),
                rpc(rpc::Type::GetVolumeStats),
                rpc(rpc::Type::VolumeCondition),
            ],
        }))
    }

    async fn node_get_info(
        &self,
        _: Request<NodeGetInfoRequest>,
    ) -> Result<Response<NodeGetInfoResponse>, Status> {
        Ok(Response::new(NodeGetInfoResponse {
            node_id: self.node_id.clone(),
            max_volumes_per_node: 0,
            accessible_topology: Some(Topology {
                segments: HashMap::from([(TOPOLOGY_NODE_KEY.to_string(), self.node_id.clone())]),
            }),
        }))
    }
}

/// The TLS part of a request's secrets, a broken CA refused as the
/// request's fault.
fn secret_tls(
    secrets: &HashMap<String, String>,
) -> Result<Option<crate::server::controller::SecretTls<'_>>, NodeError> {
    crate::server::controller::secret_tls(secrets)
        .map_err(|e| NodeError::InvalidArgument(e.message().to_string()))
}
